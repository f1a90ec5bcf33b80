"""The replay report's figures (matplotlib, Agg): per-class PQ, confusion, bird's-eye views, camera overlays.

Figures color by *ground-truth class* from one categorical palette (predicted vocabulary entries take the
color of the class they map to), so a class has one color in every figure and neighbouring classes are easy
to tell apart. A run without ground truth (no scorer) draws only the prediction, in its vocabulary's own
colors (those the node publishes), and no per-class PQ or confusion.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from ov_panoptic_ros.core.frame import UNLABELED  # noqa: E402

UNLABELED_RGB = np.array([150, 150, 150], dtype=np.uint8)
BASE_COLOR, NOVEL_COLOR = "#3b6fb6", "#e07b39"
DPI = 110


def draw_figures(out: Path, scorer, doc: dict, samples: list) -> tuple[list[str], dict[str, str]]:
    """Every figure into `out`; (names drawn, {name: error} for those that failed)."""
    drawn, errors = [], {}
    for name, draw in _figure_jobs(scorer, doc, samples):
        try:
            draw(out / name)
            drawn.append(name)
        except Exception as e:  # a figure is a convenience; the numbers are already on disk
            errors[name] = f"{type(e).__name__}: {e}"
        finally:
            plt.close("all")
    return drawn, errors


def _figure_jobs(scorer, doc: dict, samples: list):
    jobs = []
    if doc.get("metrics"):
        jobs.append(("pq_per_class.png", lambda p: plot_pq_per_class(p, scorer.classes, doc["metrics"])))
        jobs.append(("confusion.png", lambda p: plot_confusion(p, scorer)))
    for s in samples:
        jobs.append((f"bev_frame{s.index:05d}.png", lambda p, s=s: plot_bev(p, s, scorer)))
        for k, cam in enumerate(s.frame.cameras):
            jobs.append((f"camera_frame{s.index:05d}_{cam.name}.png",
                         lambda p, s=s, k=k: plot_camera(p, s, k, scorer)))
    return jobs


# --------------------------------------------------------------------------------------------------
# Per-class PQ
# --------------------------------------------------------------------------------------------------
def plot_pq_per_class(path: Path, classes, metrics: dict) -> None:
    """Bars of PQ per class, base classes then novel ones (hatched, other color), with group means."""
    order = [i for i in classes.evaluated if not classes.is_novel[i]] + \
            [i for i in classes.evaluated if classes.is_novel[i]]
    per_class = metrics["classes"]
    values = [per_class[classes.names[i]]["PQ"] or 0.0 for i in order]
    novel = [classes.is_novel[i] for i in order]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(order) + 2) + 2.6, 4.6))
    x = np.arange(len(order))
    bars = ax.bar(x, values, color=[NOVEL_COLOR if n else BASE_COLOR for n in novel],
                  hatch=None, edgecolor="black", linewidth=0.6)
    absent = set(metrics.get("absent_classes", []))
    for bar, n, v, i in zip(bars, novel, values, order):
        if n:
            bar.set_hatch("//")
        text = "absent" if classes.names[i] in absent else f"{v:.2f}"
        ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, text, ha="center", va="bottom", fontsize=8)
    n_base = len(order) - sum(novel)
    if 0 < n_base < len(order):
        ax.axvline(n_base - 0.5, color="gray", linestyle=":", linewidth=1)
    groups = metrics.get("groups", {})
    for key, color, label in (("base", BASE_COLOR, "base"), ("novel", NOVEL_COLOR, "novel")):
        pq = groups.get(key, {}).get("PQ")
        if pq is not None:
            ax.axhline(pq, color=color, linestyle="--", linewidth=1.2, label=f"mean PQ {label} = {pq:.3f}")
    ax.set_xticks(x, [_class_tick(classes, i) for i in order], rotation=35, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("PQ (panoptic quality)")
    ax.set_xlabel("ground-truth class  (T = thing, S = stuff)")
    ax.set_title(f"Per-class PQ — overall PQ {metrics['PQ']:.3f}, PQ† {metrics['PQ_dagger']:.3f}, "
                 f"mIoU {metrics['mIoU']:.3f}")
    handles = [Patch(facecolor=BASE_COLOR, edgecolor="black", label="base class"),
               Patch(facecolor=NOVEL_COLOR, edgecolor="black", hatch="//", label="novel class")]
    ax.legend(handles=handles + ax.get_legend_handles_labels()[0], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=8, title="absent = no GT and no prediction\n(scores 0, as in the devkit)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def _class_tick(classes, i: int) -> str:
    return f"{classes.names[i]} ({'T' if classes.is_thing[i] else 'S'})"


# --------------------------------------------------------------------------------------------------
# Confusion
# --------------------------------------------------------------------------------------------------
def plot_confusion(path: Path, scorer) -> None:
    """Row-normalized GT class x predicted vocabulary entry (+ unlabeled); novel GT rows are marked."""
    classes, vocab = scorer.classes, scorer.vocabulary
    rows = list(classes.evaluated)
    counts = scorer.confusion[rows].astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    col_names = [_vocab_tick(vocab.names[j], scorer, j) for j in range(len(vocab.names))] + ["(unlabeled)"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(col_names) + 3), max(4.5, 0.5 * len(rows) + 2)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r in range(norm.shape[0]):
        for c in range(norm.shape[1]):
            if norm[r, c] >= 0.005:
                ax.text(c, r, f"{norm[r, c]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[r, c] > 0.6 else "black")
    ax.set_xticks(range(len(col_names)), col_names, rotation=40, ha="right", fontsize=8)
    ylabels = [f"{classes.names[i]}{' (novel)' if classes.is_novel[i] else ''}  [{int(totals[k, 0])}]"
               for k, i in enumerate(rows)]
    ax.set_yticks(range(len(rows)), ylabels, fontsize=8)
    for tick, i in zip(ax.get_yticklabels(), rows):
        if classes.is_novel[i]:
            tick.set_color(NOVEL_COLOR)
            tick.set_fontweight("bold")
    ax.set_xlabel("predicted vocabulary entry  (→ ground-truth class it maps to)")
    ax.set_ylabel("ground-truth class  [points]")
    ax.set_title("Confusion, row-normalized (fraction of each class's points)")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="fraction of GT points")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def _vocab_tick(name: str, scorer, j: int) -> str:
    if scorer is None:
        return name
    target = scorer.mapping.lut[j]
    gt = scorer.classes.names[target] if target != UNLABELED else "unmapped"
    return name if gt.lower() == name.lower() else f"{name} → {gt}"


# --------------------------------------------------------------------------------------------------
# Bird's-eye view
# --------------------------------------------------------------------------------------------------
def _gt_palette(classes) -> np.ndarray:
    """(C, 3) uint8: a categorical palette over ground-truth class indices, without grays (gray = unlabeled)."""
    tab10, tab20 = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    rgb = [tab10(i)[:3] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + \
          [tab20(i)[:3] for i in (1, 3, 5, 7, 9, 11, 13, 17, 19)]
    rgb += [plt.get_cmap("hsv")(k / max(classes.n_classes - len(rgb), 1))[:3]
            for k in range(max(classes.n_classes - len(rgb), 0))]
    return (np.array(rgb[:classes.n_classes]) * 255).round().astype(np.uint8).reshape(-1, 3)


def _vocab_palette(scorer, vocabulary) -> np.ndarray:
    """Per vocabulary entry the color of the GT class it maps to; unmapped entries are gray. Without ground
    truth (no scorer), the entry's own color."""
    if scorer is None:
        return vocabulary.colors()
    gt = np.vstack([_gt_palette(scorer.classes), UNLABELED_RGB[None]])
    lut = np.minimum(scorer.mapping.lut, len(gt) - 1)
    return gt[lut]


def _colors(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    lut = np.vstack([palette, UNLABELED_RGB[None]])
    idx = np.where(labels.astype(np.int64) < len(palette), labels, len(palette)).astype(np.int64)
    return lut[idx] / 255.0


def plot_bev(path: Path, sample, scorer) -> None:
    """Prediction (mapped to GT classes) and ground truth side by side, same colors, thing outlines; without
    ground truth (no scorer), the prediction alone."""
    panels, palette, names, is_thing = _bev_panels(sample, scorer)
    xy = sample.frame.points[:, :2]
    lo, hi = _bev_extent(xy)
    aspect = (hi[1] - lo[1]) / max(hi[0] - lo[0], 1e-6)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.5 * len(panels), 8.0),
                                                      float(np.clip(6.0 * aspect + 1.8, 4.0, 10.0))),
                             sharex=True, sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (labels, inst, title) in zip(axes, panels):
        order = np.argsort(labels < len(palette), kind="stable")  # unlabeled first, classes drawn on top
        ax.scatter(xy[order, 0], xy[order, 1], c=_colors(labels[order], palette), s=3, linewidths=0)
        _outline_instances(ax, xy, labels, inst, is_thing, palette)
        ax.set_title(title)
        ax.set_xlabel("x forward [m]")
        ax.set_aspect("equal")
        ax.grid(True, linewidth=0.3, alpha=0.5)
    axes[0].set_ylabel("y left [m]")
    axes[0].set_xlim(lo[0], hi[0])
    axes[0].set_ylim(lo[1], hi[1])
    present = np.unique(np.concatenate([labels[labels < len(palette)] for labels, _, _ in panels])).astype(int)
    handles = [Patch(color=palette[i] / 255.0, label=names[i]) for i in present]
    handles.append(Patch(color=UNLABELED_RGB / 255.0, label="unlabeled" if scorer is None else "unlabeled / unmapped"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(f"Bird's-eye view, frame {sample.index} (stamp {sample.stamp_ns / 1e9:.3f} s)")
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    fig.savefig(path, dpi=DPI)


def _bev_panels(sample, scorer) -> tuple[list, np.ndarray, list[str], np.ndarray]:
    """(panels as (labels, instances, title), palette, legend name and thing flag per label): ground-truth
    classes with ground truth; without it, the prediction's own vocabulary."""
    if scorer is None:
        vocabulary = sample.vocabulary
        return ([(sample.pred_labels, sample.pred_instances, "prediction")], vocabulary.colors(), vocabulary.names,
                ~vocabulary.is_stuff)
    classes = scorer.classes
    names = [f"{n}{' (novel)' if novel else ''}" for n, novel in zip(classes.names, classes.is_novel)]
    panels = [(scorer.mapping(sample.pred_labels), sample.pred_instances, "prediction (mapped to GT classes)"),
              (sample.gt_labels, sample.gt_instances, "ground truth")]
    return panels, _gt_palette(classes), names, np.asarray(classes.is_thing, dtype=bool)


def _bev_extent(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits holding 98% of the points (a few far returns would otherwise shrink the scene)."""
    if not len(xy):
        return np.array([-10.0, -10.0]), np.array([10.0, 10.0])
    lo, hi = np.percentile(xy, [1, 99], axis=0)
    return lo - 3.0, hi + 3.0


def _outline_instances(ax, xy, labels, instances, is_thing, palette) -> None:
    """An axis-aligned box around each thing instance (cheap, and enough to see splits and merges)."""
    thing = np.zeros(len(palette) + 1, dtype=bool)
    thing[:len(palette)] = is_thing
    lab = np.minimum(labels.astype(np.int64), len(palette))
    keep = thing[lab] & (instances > 0)
    if not keep.any():
        return
    keys = lab[keep] * (2**32) + instances[keep].astype(np.int64)
    pts = xy[keep]
    for key in np.unique(keys):
        sel = pts[keys == key]
        if len(sel) < 3:
            continue
        (x0, y0), (x1, y1) = sel.min(axis=0), sel.max(axis=0)
        color = palette[int(key // 2**32)] / 255.0
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color * 0.6, linewidth=1.0))


# --------------------------------------------------------------------------------------------------
# Camera overlay
# --------------------------------------------------------------------------------------------------
def plot_camera(path: Path, sample, k: int, scorer) -> None:
    """The camera image with the visible LiDAR points drawn on it, colored by predicted class."""
    import torch

    from ov_panoptic_ros.core.config import ProjectionConfig
    from ov_panoptic_ros.core.geometry import project_points

    cam, image = sample.frame.cameras[k], sample.frame.images[k]
    proj = project_points(torch.from_numpy(sample.frame.points), [cam], ProjectionConfig())
    uv = proj.uv.numpy()  # one camera: every pair is a point it sees
    labels = sample.pred_labels[proj.point.numpy()]
    vocabulary = sample.vocabulary if scorer is None else scorer.vocabulary
    palette = _vocab_palette(scorer, vocabulary)
    fig, ax = plt.subplots(figsize=(7.5, 7.5 * cam.height / cam.width + 1.2))
    gray = image.astype(np.float32).mean(axis=2)  # gray background: the class colors of the points stand out
    ax.imshow(gray, cmap="gray", vmin=-60, vmax=300, extent=(-0.5, cam.width - 0.5, cam.height - 0.5, -0.5))
    size = float(np.clip(9000.0 / max(cam.width, 1), 6, 40))
    ax.scatter(uv[:, 0], uv[:, 1], c=_colors(labels, palette), s=size, linewidths=0.4, edgecolors="black")
    ax.set_xlim(-0.5, cam.width - 0.5)
    ax.set_ylim(cam.height - 0.5, -0.5)
    ax.set_xlabel("u [px]")
    ax.set_ylabel("v [px]")
    ax.set_title(f"{cam.name}, frame {sample.index}: {uv.shape[0]} LiDAR points, colored by predicted class")
    present = np.unique(labels[labels < len(palette)]).astype(int)
    handles = [Patch(color=palette[i] / 255.0, label=_vocab_tick(vocabulary.names[i], scorer, i)) for i in present]
    if (labels >= len(palette)).any():
        handles.append(Patch(color=UNLABELED_RGB / 255.0, label="unlabeled"))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(handles), 5),
                  fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
