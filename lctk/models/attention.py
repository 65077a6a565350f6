"""Last-layer attention of chosen query rows, without materialising any attention tensor.

The torch backend loads models with the attention implementation registered here. It runs
PyTorch SDPA for every layer, like the default `sdpa`, and, only while a capture is armed, also
computes softmax(q·kᵀ) for the armed layer and query rows from the very query/key states the
model uses (after RoPE and q/k norms), so it equals eager attention at the cost of
(heads × rows × tokens) floats instead of (layers × heads × tokens²).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import torch

IMPLEMENTATION = "lctk_sdpa_capture"


@dataclass
class CaptureRequest:
    """Which layer and query rows to capture; `result` is (B, rows, T) summed over heads."""

    layer_idx: int
    rows: torch.Tensor  # (R,) int64 query positions
    result: torch.Tensor | None = None


_ACTIVE: contextvars.ContextVar[CaptureRequest | None] = contextvars.ContextVar("lctk_capture", default=None)


@contextlib.contextmanager
def capture(layer_idx: int, rows: torch.Tensor) -> Iterator[CaptureRequest]:
    """Arm a capture of `rows` of layer `layer_idx` for the forward passes inside the block."""
    request = CaptureRequest(layer_idx, rows)
    token = _ACTIVE.set(request)
    try:
        yield request
    finally:
        _ACTIVE.reset(token)


def _row_probabilities(module, query, key, attention_mask, scaling, softcap, rows):
    """Return (B, R, T) attention probabilities of query rows, summed over heads, in fp32."""
    groups = getattr(module, "num_key_value_groups", 1)
    q = query[:, :, rows].float()  # (B, H, R, D)
    k = key.float().repeat_interleave(groups, dim=1) if groups > 1 else key.float()  # (B, H, T, D)
    if scaling is None:
        scaling = q.shape[-1] ** -0.5
    scores = torch.matmul(q, k.transpose(2, 3)) * scaling  # (B, H, R, T)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    kv_len = k.shape[2]
    if attention_mask is None:
        # SDPA ran with is_causal: a query at absolute position p sees keys 0..p.
        offset = kv_len - query.shape[2]
        cols = torch.arange(kv_len, device=scores.device)
        visible = cols[None, :] <= (rows.to(scores.device)[:, None] + offset)  # (R, T)
        scores = scores.masked_fill(~visible[None, None], float("-inf"))
    else:
        mask = attention_mask[:, :, rows, :kv_len]  # (B, 1, R, T)
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    return torch.softmax(scores, dim=-1).sum(dim=1)


def capture_attention_forward(module, query, key, value, attention_mask, **kwargs):
    """SDPA attention that also records the armed layer's query-row probabilities."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    request = _ACTIVE.get()
    if request is not None and getattr(module, "layer_idx", None) == request.layer_idx:
        request.result = _row_probabilities(
            module, query, key, attention_mask, kwargs.get("scaling"), kwargs.get("softcap"), request.rows
        )
    if kwargs.get("softcap") is not None:  # SDPA has no logit soft-capping (Gemma 2): run eager
        from transformers.models.gemma2.modeling_gemma2 import eager_attention_forward

        return eager_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def register() -> str:
    """Register the capturing implementation (and its SDPA mask) with transformers; idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, capture_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)
    return IMPLEMENTATION
