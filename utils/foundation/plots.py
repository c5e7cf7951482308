"""PNG plots of a run (matplotlib, headless): losses, Re-ID curves, CMC, confusion matrix,
open-set DET curves.

matplotlib is the standard, well-kept plotting library; hand-written image code would be
longer and worse.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.foundation.io import atomic_path  # noqa: E402


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_pretext(history: list, path: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for scale in history[0]:
        ax.plot([h[scale] for h in history], label=scale)
    ax.set(xlabel="pre-training epoch", ylabel="reconstruction loss", yscale="log",
           title="Self-supervised pretext losses")
    ax.legend()
    _save(fig, path)


def plot_reid(history: list, path: str, selection_name: str) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot([h["train_loss"] for h in history], label="train")
    a1.plot([h["sel_loss"] for h in history], label=selection_name)
    a1.set(xlabel="Re-ID epoch", ylabel="cross-entropy", yscale="log")
    a1.legend()
    a2.plot([h["train_acc"] for h in history], label="train")
    a2.plot([h["sel_acc"] for h in history], label=selection_name)
    a2.set(xlabel="Re-ID epoch", ylabel="Rank-1", ylim=(0, 1))
    a2.legend()
    _save(fig, path)


def plot_cmc(cmc: np.ndarray, path: str, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    ranks = np.arange(1, len(cmc) + 1)
    ax.plot(ranks, cmc, marker=".")
    ax.set(xlabel="rank", ylabel="matching rate", ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_confusion(matrix: np.ndarray, path: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set(xlabel="predicted identity", ylabel="true identity", title="Confusion matrix")
    fig.colorbar(im, ax=ax)
    _save(fig, path)


def save_run_plots(folder: str, result: dict) -> list:
    """Write every plot the result has data for; returns the written paths."""
    written = []
    if result.get("pretext_history"):
        plot_pretext(result["pretext_history"], os.path.join(folder, "pretext_losses.png"))
        written.append("pretext_losses.png")
    if result.get("reid_history"):
        plot_reid(result["reid_history"], os.path.join(folder, "reid_curves.png"),
                  result.get("selection_set", "selection"))
        written.append("reid_curves.png")
    if result.get("cmc") is not None:
        plot_cmc(np.asarray(result["cmc"]), os.path.join(folder, "cmc.png"),
                 result.get("cmc_title", "CMC"))
        written.append("cmc.png")
    if result.get("confusion") is not None:
        plot_confusion(np.asarray(result["confusion"]), os.path.join(folder, "confusion.png"))
        written.append("confusion.png")
    return written


def plot_learning_curve(points: list, path: str, title: str) -> None:
    """points: (pre-training epochs, Rank-1, nAUC) per run, as fractions."""
    epochs, rank1, nauc = zip(*points)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [100 * v for v in rank1], "o-", label="Rank-1")
    ax.plot(epochs, [100 * v for v in nauc], "s--", label="nAUC")
    ax.set(xlabel="pre-training epochs", ylabel="%", title=title, xticks=list(epochs))
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


DET_TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)


def plot_det(curves: dict, path: str, title: str, targets=(0.01, 0.05, 0.10),
             floor: float = 0.002) -> None:
    """Open-set DET curves (utils/foundation/openset.py): FNIR against FPIR, both on the
    normal-deviate scale that ISO/IEC 19795-1 draws them on. curves: {label: (fpir, fnir)}.
    Rates of 0 and 1 (not on that scale) are drawn at `floor` and 1 - `floor`; dotted
    lines mark the FPIR targets."""
    from scipy.stats import norm
    deviate = lambda r: norm.ppf(np.clip(np.asarray(r, float), floor, 1 - floor))  # noqa: E731
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, (fpir, fnir) in curves.items():
        order = np.argsort(np.asarray(fpir), kind="stable")
        ax.plot(deviate(np.asarray(fpir)[order]), deviate(np.asarray(fnir)[order]),
                drawstyle="steps-post", label=label)
    for target in targets:
        ax.axvline(deviate(target), color="grey", linestyle=":", linewidth=0.8)
    ticks = [t for t in DET_TICKS if floor <= t <= 1 - floor]
    labels = [f"{100 * t:g}" for t in ticks]
    ax.set_xticks(deviate(ticks), labels)
    ax.set_yticks(deviate(ticks), labels)
    edge = deviate([floor, 1 - floor]) + np.array([-0.15, 0.15])   # rates of 0 and 1 stay visible
    ax.set(xlim=edge, ylim=edge,
           xlabel="FPIR: searches by people not enrolled that return a name (%)",
           ylabel="FNIR: enrolled people's searches without their name (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)
