"""Sentence embedder on transformers: mean pooling over real tokens, L2-normalised."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lctk.errors import ModelError, first_line

DEFAULT_MAX_TOKENS = 256
BATCH_SIZE = 32


class TorchEmbedder:
    """A sentence-transformers model folder (BERT-style encoder + mean pooling)."""

    def __init__(self, folder: Path, model_id: str):
        from lctk.models.torch_backend import import_transformers, pick_device

        torch, transformers = import_transformers()
        self._torch = torch
        self.model_id = model_id
        self.max_tokens = sentence_max_tokens(folder)
        _check_pooling(folder)
        self.device, _ = pick_device(torch)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
            self.model = transformers.AutoModel.from_pretrained(str(folder), dtype=torch.float32)
        except (ValueError, OSError, KeyError) as exc:
            raise ModelError(f"cannot load embedding model {folder}: {first_line(exc)}") from None
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        weights = folder / "model.safetensors"
        stamp = weights.stat() if weights.is_file() else folder.stat()
        self.fingerprint = f"{stamp.st_size}-{stamp.st_mtime_ns}"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def cut_text(self, text: str, limit: int) -> list[tuple[str, int]]:
        from lctk.models.static import cut_by_offsets

        encoding = self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
        return cut_by_offsets(encoding, text, limit)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (len(texts), dim) unit vectors; texts are batched by length."""
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        with torch.inference_mode():
            for start in range(0, len(order), BATCH_SIZE):
                index = order[start : start + BATCH_SIZE]
                enc = self.tokenizer(
                    [texts[i] for i in index], padding=True, truncation=True,
                    max_length=self.max_tokens, return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**enc).last_hidden_state.float()  # (B, T, d)
                mask = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[index] = pooled.cpu().numpy()
        return out


def sentence_max_tokens(folder: Path) -> int:
    """The folder's max_seq_length (sentence_bert_config.json), else 256."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        try:
            return int(json.loads(config.read_text()).get("max_seq_length", DEFAULT_MAX_TOKENS))
        except (ValueError, TypeError):
            pass
    return DEFAULT_MAX_TOKENS


def _check_pooling(folder: Path) -> None:
    """Refuse folders whose declared pooling is not mean pooling (the only one implemented)."""
    pooling = folder / "1_Pooling" / "config.json"
    if not pooling.is_file():
        return
    try:
        modes = json.loads(pooling.read_text())
    except ValueError:
        raise ModelError(f"{pooling} is not valid JSON") from None
    if not modes.get("pooling_mode_mean_tokens", True):
        raise ModelError(f"{folder}: only mean-pooling sentence embedders are supported")
