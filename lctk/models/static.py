"""Static token embeddings distilled from a sentence embedder (model2vec-style), built locally.

Distillation runs every vocabulary token through the transformer once (`[CLS] t [SEP]`, the
token's output row), weights each token vector by smooth inverse frequency a/(a + p(t)) with
p(t) counted over a reference text corpus (this Python's standard library, on every machine),
and stores the result. Encoding a text is then a tokenizer pass and a sum of rows: no
transformer, no torch import, thousands of texts a second on one core.

The folder (cache_dir()/static/<name>-<source digest>/) holds `vectors.npy` (float16, V x d),
`tokenizer.json` (copied from the source model) and `lctk-static.json` (metadata).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lctk.config import writable_cache_subdir
from lctk.errors import ModelError, first_line
from lctk.storage import atomic_directory, file_lock

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

META_FILE = "lctk-static.json"
FORMAT = 1
SIF_A = 1e-3  # smooth-inverse-frequency constant (measured best of 1e-3/1e-4 on CoSQA, bench/search.py)
REFERENCE_FILES = 1500  # standard-library .py files counted for token frequencies (sorted, deterministic)
BATCH = 2048


def is_static_folder(path: Path) -> bool:
    return (path / META_FILE).is_file()


_TOKENIZERS: dict[bytes, Tokenizer] = {}


def shared_tokenizer(path: Path) -> Tokenizer:
    """The tokenizer of a tokenizer.json, padding and truncation off, parsed once per process per
    content: the static and the full MiniLM carry the same file, and parsing it costs ~30 ms of a
    CLI search. Shared between models: never change its settings."""
    from tokenizers import Tokenizer

    raw = path.read_bytes()
    digest = hashlib.sha256(raw).digest()
    if digest not in _TOKENIZERS:
        tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        _TOKENIZERS[digest] = tokenizer
    return _TOKENIZERS[digest]


GATHER_TOKENS = 2048  # gathered rows stay in cache; a whole package at once gathered GBs (~40 s for pip)


class TokenizerText:
    """Token counting and cutting over a `tokenizers.Tokenizer` in `self.tokenizer` (no special tokens)."""
    tokenizer: Tokenizer

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.token_ids(texts)]

    def cut_text(self, text: str, limit: int) -> list[tuple[str, int]]:
        return cut_by_offsets(self.tokenizer.encode(text, add_special_tokens=False), text, limit)


class StaticEmbedder(TokenizerText):
    """Sum of per-token vectors over a text's WordPiece tokens, L2-normalised."""

    def __init__(self, folder: Path, model_id: str):
        try:
            meta = json.loads((folder / META_FILE).read_text())
            # mapped, float16 as stored: a text gathers its own rows (converting the whole table on
            # load cost ~0.2 s of every CLI search)
            self.vectors = np.load(folder / "vectors.npy", mmap_mode="r")
            self.tokenizer = shared_tokenizer(folder / "tokenizer.json")
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load static embedder {folder}: {first_line(exc)}") from None
        self.model_id = model_id
        self.fingerprint = str(meta.get("digest", ""))
        self.dim = int(self.vectors.shape[1])
        self.max_tokens = int(meta.get("max_tokens", 512))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        start = 0
        while start < len(ids):  # gather at most ~GATHER_TOKENS token vectors at a time (memory, not speed)
            stop, size = start, 0
            while stop < len(ids) and (stop == start or size + len(ids[stop]) <= GATHER_TOKENS):
                size += len(ids[stop])
                stop += 1
            self._sum_into(out[start:stop], ids[start:stop])
            start = stop
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def _sum_into(self, out: np.ndarray, ids: Sequence[Sequence[int]]) -> None:
        lengths = np.array([len(x) for x in ids])
        flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(lengths.sum()))
        nonempty = lengths > 0
        if flat.size:
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
            out[nonempty] = np.add.reduceat(self.vectors[flat].astype(np.float32), starts, axis=0)


def cut_by_offsets(encoding, text: str, limit: int) -> list[tuple[str, int]]:
    """Cut `text` into pieces of at most `limit` tokens at token boundaries (from an Encoding's offsets)."""
    offsets = encoding.offsets
    if len(offsets) <= limit:
        return [(text, len(offsets))]
    pieces = []
    step = max(limit - max(limit // 16, 1), 1)  # word pieces re-tokenise a little differently at a cut
    for first in range(0, len(offsets), step):
        last = min(first + step, len(offsets)) - 1
        start = offsets[first][0] if first else 0
        end = offsets[last + 1][0] if last + 1 < len(offsets) else len(text)
        pieces.append((text[start:end], last - first + 1))
    return pieces


def source_digest(source: Path) -> str:
    """Digest of the source model's weights file and tokenizer (names the distilled folder)."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        path = source / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(f"format{FORMAT}:sif{SIF_A}:ref{REFERENCE_FILES}".encode())
    return digest.hexdigest()[:16]


def ensure_static(source: Path, name: str) -> Path:
    """Return the distilled folder for `source`, building it once (atomically) if missing."""
    digest = source_digest(source)
    target = writable_cache_subdir("static") / f"{name}-{digest}"
    if is_static_folder(target):
        return target
    with file_lock(target.with_name(target.name + ".lock")):
        if is_static_folder(target):
            return target
        log.info("building the %s embedder from %s (one time, ~30 s; cached in %s)", name, source, target.parent)
        with atomic_directory(target) as tmp:
            _distill(source, tmp, digest)
    return target


def _distill(source: Path, folder: Path, digest: str) -> None:
    from tokenizers import Tokenizer

    from lctk.models.torch_backend import import_transformers

    torch, transformers = import_transformers()
    tokenizer_file = source / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(f"{source}: no tokenizer.json; static distillation needs a fast tokenizer")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    try:
        model = transformers.AutoModel.from_pretrained(str(source), dtype=torch.float32).eval()
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"cannot load embedding model {source}: {first_line(exc)}") from None
    vocab = tokenizer.get_vocab_size()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise ModelError(f"{source}: static distillation supports BERT-style tokenizers ([CLS]/[SEP]) only")
    vectors = np.zeros((vocab, int(model.config.hidden_size)), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vocab, BATCH):
            ids = torch.arange(start, min(start + BATCH, vocab))
            batch = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            vectors[start : start + len(ids)] = hidden[:, 1].float().numpy()  # the token's own output row
    probability = _reference_frequencies(tokenizer, vocab)
    vectors *= (SIF_A / (SIF_A + probability))[:, None]
    np.save(folder / "vectors.npy", vectors.astype(np.float16))
    shutil.copyfile(tokenizer_file, folder / "tokenizer.json")
    meta = {"format": FORMAT, "source": str(source), "digest": digest, "sif_a": SIF_A, "dim": vectors.shape[1]}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def _reference_frequencies(tokenizer, vocab: int) -> np.ndarray:
    """Token probabilities over this Python's standard library (add-one smoothed)."""
    counts = np.ones(vocab, dtype=np.float64)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)[:REFERENCE_FILES]
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        np.add.at(counts, np.asarray(encoding.ids, dtype=np.int64), 1)
    return counts / counts.sum()
