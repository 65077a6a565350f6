"""Atomic writes: temp file in the same directory, fsync, rename — never a half-written file."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from lctk.errors import CacheError


def fsync_directory(path: Path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


STALE_TEMP_S = 3600.0  # a temp sibling untouched this long belongs to a killed writer


def sweep_stale_temps(target: Path, older_than_s: float = STALE_TEMP_S) -> None:
    """Remove `.{name}.*.tmp` leftovers of writers killed before their rename (a converted model's is ~0.5 GB)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - stale.lstat().st_mtime > older_than_s:
                    if stale.is_dir() and not stale.is_symlink():
                        shutil.rmtree(stale, ignore_errors=True)
                    else:
                        stale.unlink()


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `target` only when the block completes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_directory(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_file(target) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temp directory that becomes `target` (renamed) only when the block completes.

    Every file inside is fsynced before the rename. If `target` appeared meanwhile (another
    process finished first), the new copy is discarded and the existing one kept.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb+") as handle:
                    os.fsync(handle.fileno())
        fsync_directory(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
        fsync_directory(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def file_lock(path: Path, timeout_s: float = -1):
    """Return an inter-process lock on `path` (a FileLock context manager)."""
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create lock directory {path.parent}: {exc.strerror or exc}") from None
    return FileLock(str(path), timeout=timeout_s)


@contextlib.contextmanager
def waiting_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the inter-process lock on `path`; if another process holds it, call `on_wait` once
    (to say "waiting for lock") and block until it is free."""
    from filelock import Timeout

    lock = file_lock(path)
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
