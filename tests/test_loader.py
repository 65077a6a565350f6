"""Backend choice per operation."""

import pytest

from lctk.errors import UsageError
from lctk.models.loader import choose_backend
from lctk.models.registry import GGUF, HF


def test_auto_uses_the_measured_fastest_backend():
    assert choose_backend("auto", "generate", GGUF, gpu=False).backend == "llama"
    assert choose_backend("auto", "score", GGUF, gpu=False).backend == "llama"
    assert choose_backend("auto", "generate", GGUF, gpu=True).backend == "torch"
    assert choose_backend("auto", "attention", GGUF, gpu=False).backend == "torch"
    assert "auto" in choose_backend("auto", "generate", GGUF, gpu=False).reason


def test_explicit_choices_and_impossible_ones():
    assert choose_backend("torch", "generate", GGUF, gpu=False).backend == "torch"
    assert choose_backend("auto", "generate", HF, gpu=False).backend == "torch"
    with pytest.raises(UsageError, match="torch"):
        choose_backend("llama", "generate", HF)
    with pytest.raises(UsageError, match="only on the torch backend"):
        choose_backend("llama", "attention", GGUF)
    with pytest.raises(UsageError, match="unknown backend"):
        choose_backend("cuda", "generate", GGUF)
