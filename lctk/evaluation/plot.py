"""Figures for `lctk eval`: the needle-in-a-haystack heat map (depth x length), retention vs ratio."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lctk.errors import InputError


def _target(path: str | os.PathLike) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise InputError(f"--plot {path}: give a .png file name")
    if not target.parent.is_dir():
        raise InputError(f"--plot {path}: no such directory {target.parent}")
    return target


def _save(figure, target: Path) -> Path:
    """Write the figure to a temporary file, then rename it into place."""
    import matplotlib.pyplot as plt

    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(temporary, dpi=120, format="png")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
    return target


def _wrap(title: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def retention_chart(summary: dict, path: str | os.PathLike, title: str) -> Path:
    """Write a PNG of retention vs compression ratio, one line per method, one panel per task kind."""
    target = _target(path)
    plt = _pyplot()
    kinds = list(summary)
    figure, panels = plt.subplots(1, max(1, len(kinds)), figsize=(5.0 * max(1, len(kinds)), 3.8), squeeze=False)
    for panel, kind in zip(panels[0], kinds):
        for method, entry in summary[kind].items():
            ratios = sorted(entry["retention"])
            panel.plot(ratios, [entry["retention"][r] for r in ratios], marker="o", label=method,
                       linewidth=2.4 if method == "lctk" else 1.4)
        panel.set_xscale("log", base=2)
        panel.set_xlabel("compression ratio")
        panel.set_ylabel("retention")
        panel.set_ylim(-0.02, 1.02)
        panel.set_title(f"{kind} retention", fontsize=10)
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
    figure.suptitle(_wrap(title, 90 * max(1, len(kinds))), fontsize=10)
    figure.tight_layout()
    return _save(figure, target)


def heatmap(rows: Sequence[dict], path: str | os.PathLike, title: str, field: str = "score") -> Path:
    """Write a PNG heat map of `field` (0..1) by needle depth (rows) and document length (columns).

    Red is 0, green is 1, each cell labelled with its value; written to a temporary file and
    renamed, so an interrupted run never leaves half a PNG.
    """
    target = _target(path)
    plt = _pyplot()
    from matplotlib.colors import LinearSegmentedColormap

    lengths = sorted({r["length"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    cells = {(r["length"], r["depth"]): r[field] for r in rows}
    grid = [[cells.get((length, depth), float("nan")) for length in lengths] for depth in depths]
    colours = LinearSegmentedColormap.from_list("score", ["#d7301f", "#fdcc8a", "#1a9850"])
    width = max(4.0, 1.1 * len(lengths) + 2.5)
    figure, axes = plt.subplots(figsize=(width, max(3.0, 0.6 * len(depths) + 1.8)))
    image = axes.imshow(grid, cmap=colours, vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(lengths)), [f"{n / 1024:g}k" if n % 256 == 0 else f"{n:,}" for n in lengths])
    axes.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
    axes.set_xlabel("document length (tokens)")
    axes.set_ylabel("needle depth")
    axes.set_title(_wrap(title, int(width * 8)), fontsize=10)
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            if value == value:  # not NaN
                axes.text(x, y, f"{value:.0%}", ha="center", va="center", fontsize=8, color="black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    return _save(figure, target)
