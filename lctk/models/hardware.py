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


ENV_THREADS = "LCTK_THREADS"  # threads each backend uses; `lctk batch` sets it in every worker (cores split between them)


def core_count() -> int:
    """Return the CPU cores this process may run on (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_count() -> int:
    """Return the threads a backend should use: LCTK_THREADS when set, else every core this process may run on."""
    setting = os.environ.get(ENV_THREADS, "").strip()
    if not setting:
        return core_count()
    try:
        threads = int(setting)
    except ValueError:
        threads = 0
    if threads < 1:
        from lctk.errors import UsageError

        raise UsageError(f"{ENV_THREADS}={setting!r} is not a number of threads; give a whole number of 1 or more")
    return threads
