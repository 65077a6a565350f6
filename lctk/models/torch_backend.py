"""PyTorch/transformers backend: CUDA + bf16 when a GPU is visible, else CPU float32."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lctk.errors import BackendUnavailableError, ModelError, UsageError, first_line
from lctk.models.chat import END_OF_TURN_TOKENS, prompt_text, stream_text
from lctk.models.protocols import GenerationStats, GenerationStream, Message, Tokenization, lookup_draft

LOGITS_CHUNK_FLOATS = 1 << 25  # rows of logits materialised at once: 128 MB of float32
# A batched row decides a token only when its top two logits are this far apart: ~100x the
# largest difference measured between batched and one-token float32 logits on CPU (7.6e-5 on
# smollm2-135m, 1.0e-4 on gemma3-270m; see _lookup_ids). About 1% of greedy steps come closer.
TIE_MARGIN_LOGITS = 1e-2


def import_transformers():
    """Import torch and transformers offline and quietly, or raise BackendUnavailableError."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader draws raw tqdm bars on stderr
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the torch backend needs torch and transformers ({exc}); fix: pip install 'torch==2.13.0' "
            "transformers, or use --backend llama"
        ) from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers


def pick_device(torch, requested: str | None = None) -> tuple[str, object]:
    """Return (device, dtype): CUDA with bfloat16 when available (or requested), else CPU float32."""
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, torch.bfloat16 if device.startswith("cuda") else torch.float32


class TorchLanguageModel:
    """A causal LM on transformers implementing LanguageModel and AttentionModel."""

    backend = "torch"

    def __init__(self, checkpoint: Path, model_id: str, device: str | None = None):
        torch, transformers = import_transformers()
        from lctk.models import attention

        self._torch = torch
        self.model_id = model_id
        self.device, self.dtype = pick_device(torch, device)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                str(checkpoint), dtype=self.dtype, attn_implementation=attention.register()
            )
        except (ValueError, OSError, KeyError) as exc:
            raise ModelError(f"transformers cannot load {checkpoint}: {first_line(exc)}") from None
        self.model.to(self.device).eval()
        config = self.model.config
        self.max_context_tokens = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        self.num_layers = int(config.num_hidden_layers)
        self.num_heads = int(config.num_attention_heads)
        self._base = getattr(self.model, self.model.base_model_prefix)
        self._head = self.model.get_output_embeddings()
        self._softcap = getattr(config, "final_logit_softcapping", None)
        self.chat_template = getattr(self.tokenizer, "chat_template", None)
        self.bos_token = self.tokenizer.bos_token or ""
        self.eos_token = self.tokenizer.eos_token or ""
        self._stop_ids = self._end_of_turn_ids()
        # transformers 5.x renamed the KV-cache argument from `past_key_values` to `cache`.
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _end_of_turn_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.model.config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(int(i) for i in source)
        unk = self.tokenizer.unk_token_id
        for token in END_OF_TURN_TOKENS:
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != unk:
                ids.add(token_id)
        return ids

    # --- tokens -------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Return token ids (the model's BOS added when add_special)."""
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def tokenize_with_offsets(self, text: str, add_special: bool = True) -> Tokenization:
        """Return ids and character spans (special tokens get (0, 0))."""
        enc = self.tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        return Tokenization(tuple(enc["input_ids"]), tuple((int(s), int(e)) for s, e in enc["offset_mapping"]))

    def detokenize(self, ids: Sequence[int]) -> str:
        """Return the text of `ids`, special tokens dropped."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of `text` without special tokens."""
        return len(self.tokenize(text, add_special=False))

    def _check_length(self, n: int) -> None:
        if n > self.max_context_tokens:
            raise ModelError(f"{n} tokens exceed the context of {self.model_id} ({self.max_context_tokens} tokens)")

    # --- scoring ------------------------------------------------------------------------
    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """Return float32 (len(ids),) log p(ids[i] | ids[:i]); index 0 is NaN."""
        return self.token_logprobs_batch([ids])[0]

    def token_logprobs_batch(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Return token_logprobs of each sequence, in one right-padded forward pass."""
        torch = self._torch
        lengths = [len(ids) for ids in batch]
        results = [np.full(n, np.nan, dtype=np.float32) for n in lengths]
        if not batch or max(lengths) < 2:
            return results
        self._check_length(max(lengths))
        width = max(lengths)
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
            mask[row, : len(ids)] = 1
        with torch.inference_mode():
            hidden = self._base(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False
            ).last_hidden_state  # (B, T, d)
            for row, n in enumerate(lengths):
                if n >= 2:
                    targets = input_ids[row, 1:n].to(self.device)  # hidden[t] predicts token t + 1
                    results[row][1:] = self._gather_logprobs(hidden[row, : n - 1], targets)
        return results

    def _gather_logprobs(self, hidden, targets) -> np.ndarray:
        """Apply the LM head a few rows at a time and pick each row's target log-prob."""
        torch = self._torch
        rows = max(1, LOGITS_CHUNK_FLOATS // self._head.weight.shape[0])
        out = []
        for start in range(0, hidden.shape[0], rows):
            logits = self._head(hidden[start : start + rows]).float()  # (r, V)
            if self._softcap:
                logits = torch.tanh(logits / self._softcap) * self._softcap
            logprobs = torch.log_softmax(logits, dim=-1)
            out.append(logprobs.gather(1, targets[start : start + rows, None])[:, 0].cpu())
        return torch.cat(out).numpy().astype(np.float32)

    # --- attention ----------------------------------------------------------------------
    def last_layer_attention(self, ids: Sequence[int], query_rows: Sequence[int]) -> np.ndarray:
        """Return float32 (len(query_rows), len(ids)): last-layer attention summed over heads.

        Each head's row sums to 1 over the positions the row can see, so a row sums to num_heads.
        """
        from lctk.models import attention

        torch = self._torch
        n = len(ids)
        self._check_length(n)
        rows = torch.tensor([int(r) for r in query_rows], dtype=torch.long)
        if len(rows) == 0 or int(rows.min()) < 0 or int(rows.max()) >= n:
            raise ModelError(f"query rows must lie in 0..{n - 1}")
        input_ids = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        with torch.inference_mode(), attention.capture(self.num_layers - 1, rows.to(self.device)) as request:
            self._base(input_ids=input_ids, use_cache=False)
        if request.result is None:
            raise ModelError(f"{self.model_id}: its attention layers do not use the transformers attention interface")
        return request.result[0].float().cpu().numpy()

    # --- generation ---------------------------------------------------------------------
    def format_chat(self, messages: Sequence[Message]) -> str:
        """Render messages with the model's chat template (plain layout if it has none)."""
        return prompt_text(messages, self.chat_template, self.bos_token, self.eos_token)

    def generate(
        self,
        prompt: str | Sequence[Message],
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        *,
        lookup_tokens: int = 0,
    ) -> GenerationStream:
        """Stream a continuation; greedy when temperature is 0, then drafting by prompt lookup if asked."""
        if lookup_tokens < 0:
            raise UsageError(f"lookup tokens must be 0 or more, not {lookup_tokens}")
        text = prompt_text(prompt, self.chat_template, self.bos_token, self.eos_token)
        add_bos = not (self.bos_token and text.startswith(self.bos_token))
        ids = self.tokenize(text, add_special=add_bos)
        self._check_length(len(ids) + max_tokens)
        stats = GenerationStats(prompt_tokens=len(ids))
        return GenerationStream(self._stream(ids, max_tokens, temperature, seed, lookup_tokens, stats), stats)

    def _stream(self, ids, max_tokens, temperature, seed, lookup_tokens, stats) -> Iterator[str]:
        started = time.perf_counter()
        stats.finish_reason = "length"
        if max_tokens <= 0:
            stats.generate_s = time.perf_counter() - started
            return
        # TIE_MARGIN_LOGITS is measured on float32; bf16 rounding moves logits far more.
        if lookup_tokens and temperature == 0 and self.dtype == self._torch.float32:
            tokens = self._lookup_ids(ids, max_tokens, lookup_tokens, stats)
        else:
            tokens = self._sampled_ids(ids, temperature, seed)
        yield from stream_text(tokens, self._stop_ids, self.detokenize, max_tokens, stats, started)

    def _sampled_ids(self, ids: list[int], temperature: float, seed: int) -> Iterator[int]:
        """Yield one id per forward pass: the argmax at temperature 0, else a sample."""
        torch = self._torch
        generator = torch.Generator(device=self.device).manual_seed(seed)
        step_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        past = None
        with torch.inference_mode():
            while True:
                out = self.model(input_ids=step_ids, use_cache=True, logits_to_keep=1, **{self._cache_arg: past})
                past = getattr(out, self._cache_arg)
                logits = out.logits[0, -1].float()  # (V,)
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    next_id = int(torch.multinomial(probs, 1, generator=generator))
                else:
                    next_id = int(torch.argmax(logits))
                yield next_id
                step_ids = torch.tensor([[next_id]], dtype=torch.long, device=self.device)

    def _lookup_ids(self, ids: list[int], max_tokens: int, lookup_tokens: int, stats) -> Iterator[int]:
        """Yield the ids greedy `_sampled_ids` yields, several per forward pass when drafts are accepted.

        A forward pass over k+1 tokens rounds differently from k+1 one-token passes (MKL sums
        a 1-row and an n-row matrix product in different orders: logits move by up to ~1e-4),
        so a batched row decides a token only when its top two logits are TIE_MARGIN_LOGITS
        apart. A closer call, or a cache about to lose the states a rollback needs, replays the
        tokens since the last exact state one at a time, as plain decoding ran them.
        """
        torch = self._torch
        seq = list(ids)
        with torch.inference_mode():
            prompt_ids = torch.tensor([seq], dtype=torch.long, device=self.device)
            out = self.model(input_ids=prompt_ids, use_cache=True, logits_to_keep=1)  # as _sampled_ids does
            cache = getattr(out, self._cache_arg)
            limit = _rollback_limit(cache)  # the cache crops exactly while shorter than this
            exact = len(seq)  # cache positions [0, exact) hold what plain decoding holds
            token = int(torch.argmax(out.logits[0, -1].float()))
            while True:
                seq.append(token)
                yield token
                budget = max_tokens - (len(seq) - len(ids))  # tokens the stream may still take
                if budget <= 0:
                    return
                base = len(seq) - 1  # the cache holds seq[:base]; `token` is its next input
                draft = lookup_draft(seq, min(lookup_tokens, budget - 1, limit - base - 2), self._stop_ids)
                if not draft and exact < base and base + 1 >= limit:
                    token, exact = self._replay(cache, base, seq, exact), len(seq)
                    continue
                logits = self._forward([token, *draft], cache)  # (1 + k, V)
                if not draft and exact == base:  # one token on an exact cache: plain decoding itself
                    token, exact = int(torch.argmax(logits[0])), len(seq)
                    continue
                greedy, certain = _decisions(logits)
                accepted = 0
                while accepted < len(draft) and certain[accepted] and draft[accepted] == greedy[accepted]:
                    accepted += 1
                if accepted < len(draft):
                    cache.crop(-(len(draft) - accepted))  # negative: remove that many trailing positions
                stats.draft_proposed += len(draft)
                for drafted in draft[:accepted]:
                    stats.draft_accepted += 1
                    seq.append(drafted)
                    yield drafted
                if certain[accepted]:
                    token = greedy[accepted]
                else:  # the cache now holds all of seq
                    token, exact = self._replay(cache, len(seq), seq, exact), len(seq)

    def _forward(self, tokens: list[int], cache):
        """Run `tokens` through the model on `cache`; return float32 (len(tokens), V) logits."""
        input_ids = self._torch.tensor([tokens], dtype=self._torch.long, device=self.device)
        kwargs = {self._cache_arg: cache, "logits_to_keep": len(tokens)}
        return self.model(input_ids=input_ids, use_cache=True, **kwargs).logits[0].float()

    def _replay(self, cache, cached: int, seq: list[int], exact: int) -> int:
        """Recompute seq[exact:] one token at a time, as plain decoding did; return the argmax after seq.

        `cache` holds seq[:cached], of which seq[:exact] exactly as plain decoding left it.
        """
        if cached > exact:
            cache.crop(-(cached - exact))
        for token in seq[exact:]:
            logits = self._forward([token], cache)
        return int(self._torch.argmax(logits[0]))

    def close(self) -> None:
        """Release the model's memory."""
        self.model = None


def _decisions(logits) -> tuple[list[int], list[bool]]:
    """Return each row's argmax, and whether float32 rounding cannot have changed it."""
    import torch

    top = torch.topk(logits, 2, dim=-1)  # values, indices: (rows, 2)
    return top.indices[:, 0].tolist(), (top.values[:, 0] - top.values[:, 1] >= TIE_MARGIN_LOGITS).tolist()


def _rollback_limit(cache) -> int:
    """Return the cache length below which `cache.crop` restores exactly what it held (0: never).

    A full-attention layer always crops exactly; a sliding-window layer only until its window
    fills and it starts dropping its oldest states. Caches without `activate_past_recording` and
    `is_croppable` (transformers 4) are not trusted to crop: generation then decodes plainly.
    """
    if not hasattr(cache, "activate_past_recording") or not getattr(cache, "is_croppable", False):
        return 0
    cache.activate_past_recording()
    windows = [layer.sliding_window for layer in cache.layers if getattr(layer, "is_sliding", False)]
    return min(windows, default=1 << 62)
