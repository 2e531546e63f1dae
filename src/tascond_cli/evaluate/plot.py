"""The field's colour-barcode figure: ground truth above predictions, one fixed colour per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tascond_cli.fsio import atomic_file


def class_colors(num_classes: int) -> np.ndarray:
    """A fixed RGBA colour per class index (same class, same colour, in every figure)."""
    from matplotlib import colormaps

    palette = np.concatenate([colormaps[name](np.arange(20)) for name in ("tab20", "tab20b", "tab20c")])  # (60, 4)
    reps = -(-num_classes // len(palette))
    return np.tile(palette, (reps, 1))[:num_classes]


def plot_barcode(
    path: Path | str,
    title: str,
    rows: Sequence[tuple[str, np.ndarray]],
    class_names: Sequence[str],
) -> None:
    """Write a PNG with one horizontal colour bar per (name, labels) row, top to bottom.

    ``rows[0]`` is conventionally the ground truth; labels are class indices of equal length.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    num_classes = len(class_names)
    colors = class_colors(num_classes)
    cmap = ListedColormap(colors)
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 0.55 * len(rows) + 1.1), squeeze=False)
    present = set()
    for ax, (name, labels) in zip(axes[:, 0], rows):
        labels = np.asarray(labels)
        present.update(np.unique(labels).tolist())
        ax.imshow(labels[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=num_classes - 0.5, interpolation="nearest")
        ax.set_yticks([0])
        ax.set_yticklabels([name])
        ax.set_xticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[0, 0].set_title(title, fontsize=10)
    handles = [Patch(color=colors[c], label=class_names[c]) for c in sorted(present)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.02 * ((len(handles) - 1) // 6), 1, 1))
    with atomic_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
