"""A BERT sentence embedder in NumPy: the same vectors as transformers, without importing torch.

Loading torch and transformers costs ~3 s per process; a search query that re-scores a few dozen
blocks needs ~0.1 s of model compute. This module reads a sentence-transformers BERT folder
(config.json, model.safetensors, tokenizer.json, mean pooling) directly and runs the encoder with
NumPy's BLAS. Its vectors equal `TorchEmbedder`'s to float32 rounding (tests/test_search.py).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from lctk.errors import ModelError, first_line
from lctk.models.static import TokenizerText, shared_tokenizer

# Padded tokens per forward pass. Small enough that the attention scores (rows x 12 x L^2 floats,
# 25 MB at 8 x 256 tokens) stay under glibc's largest mmap threshold (32 MB), so their memory is
# reused rather than page-faulted in anew every layer. End to end, 2,048 and 4,096 measured the
# same within this machine's noise (±20% between identical runs).
BATCH_TOKENS = 2048
BATCH_ROWS = 32
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def supports(folder: Path) -> bool:
    """True for a BERT folder this module can run (absolute positions, GELU, safetensors)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a .safetensors file into NumPy arrays (the format is a JSON header + raw buffers)."""
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
    # mapped, not read: tensors used as stored (embeddings, biases, norms) are never copied
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=start).reshape(info["shape"])
    return tensors


Norm = tuple[np.ndarray, np.ndarray]  # LayerNorm weight, bias
# one encoder layer: qkv weight (in, 3d), bias, output weight, bias, norm, FFN in weight, bias, FFN out weight, bias, norm
Layer = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Norm, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Norm]


class NumpyBertEmbedder(TokenizerText):
    """Mean-pooled, L2-normalised BERT sentence vectors computed with NumPy."""

    def __init__(self, folder: Path, model_id: str, max_tokens: int | None = None):
        try:
            config = json.loads((folder / "config.json").read_text())
            weights = read_safetensors(folder / "model.safetensors")
            self.tokenizer = shared_tokenizer(folder / "tokenizer.json")
        except (OSError, ValueError, KeyError, struct.error) as exc:
            raise ModelError(f"cannot load embedding model {folder}: {first_line(exc)}") from None
        self.model_id = model_id
        stamp = (folder / "model.safetensors").stat()
        self.fingerprint = f"{stamp.st_size}-{stamp.st_mtime_ns}"
        from lctk.models.embedder import sentence_max_tokens

        self.max_tokens = max_tokens or sentence_max_tokens(folder)
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.layers_n = int(config["num_hidden_layers"])
        w = {k: v.astype(np.float32, copy=False) for k, v in weights.items() if v.dtype != np.int64}
        self.word, self.position, self.token_type = (w[f"embeddings.{n}.weight"] for n in ("word_embeddings", "position_embeddings", "token_type_embeddings"))
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[Layer] = []  # (in, out) weights as transposed views of the mapped (out, in) tensors
        for i in range(self.layers_n):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append((
                qkv_w, qkv_b,
                w[p + "attention.output.dense.weight"].T, w[p + "attention.output.dense.bias"],
                (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                w[p + "intermediate.dense.weight"].T, w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T, w[p + "output.dense.bias"],
                (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            ))
        self._contiguous: list[Layer] | None = None  # contiguous (in, out) copies, made for the first large batch or the second call
        self._calls = 0
        # BERT vocabularies always hold both
        self._cls, self._sep = cast(int, self.tokenizer.token_to_id("[CLS]")), cast(int, self.tokenizer.token_to_id("[SEP]"))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        body = self.max_tokens - 2
        ids = [[self._cls, *body_ids[:body], self._sep] for body_ids in self.token_ids(texts)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            size = min(BATCH_ROWS, len(order) - start)
            while size > 1 and len(ids[order[start + size - 1]]) * size > BATCH_TOKENS:
                size //= 2  # lengths ascend: the last row of a batch is its longest
            index = order[start : start + size]
            out[index] = self._forward([ids[i] for i in index])
            start += size
        return out

    def _layers_for(self, tokens: int) -> list[Layer]:
        """The layers' weights for a batch of `tokens`: transposed views for a process's first short
        text (copying them costs ~45 ms, several times a query's forward pass), contiguous copies
        (~1.3x faster) for bulk work and from the second call on."""
        self._calls += 1
        if tokens < COPY_FROM_TOKENS and self._calls < 2:
            return self._contiguous or self.layers
        if self._contiguous is None:
            copy = np.ascontiguousarray
            self._contiguous = [(copy(qkv_w), qkv_b, copy(o_w), o_b, norm1, copy(i_w), i_b, copy(f_w), f_b, norm2)
                                for qkv_w, qkv_b, o_w, o_b, norm1, i_w, i_b, f_w, f_b, norm2 in self.layers]
        return self._contiguous

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        n, length = len(batch), max(len(x) for x in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self.word[ids] + self.position[:length][None] + self.token_type[0][None, None]
        x = _layer_norm(x, *self.embed_norm, self.eps)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # (n, 1, 1, L)
        d, h = self.dim, self.heads
        hd = d // h
        scale = np.float32(1.0 / math.sqrt(hd))
        for qkv_w, qkv_b, o_w, o_b, norm1, i_w, i_b, f_w, f_b, norm2 in self._layers_for(n * length):
            qkv = x @ qkv_w + qkv_b  # (n, L, 3d)
            q, k, v = (qkv[..., j * d : (j + 1) * d].reshape(n, length, h, hd).transpose(0, 2, 1, 3) for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
            x = _layer_norm(x + context @ o_w + o_b, *norm1, self.eps)
            inner = _gelu(x @ i_w + i_b)
            x = _layer_norm(x + inner @ f_w + f_b, *norm2, self.eps)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.where(norms == 0, 1.0, norms)


COPY_FROM_TOKENS = 64  # batches this large use contiguous weight copies (matmul over transposed views: ~1.5x slower)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


GELU_CHUNK = 1 << 15  # elements per pass of the GELU: its temporaries stay in the CPU's cache


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's "gelu", written over `x` (a C-contiguous temporary) and returned.

    A cache-sized chunk at a time: the ~20 element-wise passes of the erf then run in cache
    instead of streaming ~50 MB temporaries through memory (0.04 s against 0.12 s for 32 x 256
    tokens, steady state, 2 cores; a first call in a fresh process saved more). The same
    float32 operations in the same order as 0.5 * x * (1 + erf(x / sqrt 2)): identical output.
    """
    flat = x.reshape(-1)  # a view: x is contiguous
    size = min(GELU_CHUNK, flat.size)
    z, a, t, poly = (np.empty(size, dtype=np.float32) for _ in range(4))
    root2 = np.float32(math.sqrt(2.0))
    for start in range(0, flat.size, size):
        part = flat[start : start + size]
        n = len(part)
        zn, an, tn, pn = z[:n], a[:n], t[:n], poly[:n]
        np.divide(part, root2, out=zn)
        _erf(zn, an, tn, pn)
        pn += 1.0
        np.multiply(part, 0.5, out=zn)
        np.multiply(zn, pn, out=part)
    return x


def _erf(x: np.ndarray, a: np.ndarray, t: np.ndarray, poly: np.ndarray) -> None:
    """erf(x) into `poly` by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7); `a`, `t` are scratch of x's shape."""
    np.abs(x, out=a)
    np.multiply(a, np.float32(0.3275911), out=t)
    t += 1.0
    np.reciprocal(t, out=t)
    np.multiply(t, np.float32(1.061405429), out=poly)
    poly -= np.float32(1.453152027)
    poly *= t
    poly += np.float32(1.421413741)
    poly *= t
    poly -= np.float32(0.284496736)
    poly *= t
    poly += np.float32(0.254829592)
    poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    np.copysign(poly, x, out=poly)
