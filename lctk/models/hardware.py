"""What accelerator is present, found without importing torch (which costs seconds)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def gpu_visible() -> bool:
    """Return True when a CUDA GPU is visible to this process."""
    if "torch" in sys.modules:  # already paid for: ask torch itself
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def cpu_count() -> int:
    """Return the CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
