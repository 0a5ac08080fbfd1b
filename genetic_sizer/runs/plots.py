"""Plots of a run (the only module importing matplotlib): fitness curves, the champion's allocation,
equity curves against the classical allocations, the Pareto front of multi-objective runs, and efficient frontiers
(``genetic-sizer frontier``).

Each function writes one PNG and returns its path; the Agg backend is used, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fitness_curve(logbook: list[dict], objectives, path: Path, genes=None) -> Path:
    """Best and mean (± std) of each objective by generation; with strategy genes (a
    :class:`~genetic_sizer.evolution.genes.GeneSpace`), one more panel of where the population's strategies are: the
    mean drift band (± std) and the share of each calendar policy, and with a leverage gene a panel of the mean leverage
    (± std)."""
    plt = _plt()
    band_panel = genes is not None and (genes.threshold is not None or genes.rebalance is not None)
    lev_panel = genes is not None and genes.leverage is not None
    n_panels = len(objectives) + band_panel + lev_panel
    fig, axes = plt.subplots(n_panels, 1, figsize=(8, 2.8 * n_panels), squeeze=False, sharex=True)
    gens = [r["gen"] for r in logbook]
    for ax, name in zip(axes[: len(objectives), 0], objectives, strict=True):
        best = np.array([r[f"{name}_best"] for r in logbook])
        mean = np.array([r[f"{name}_mean"] for r in logbook])
        std = np.array([r[f"{name}_std"] for r in logbook])
        ax.plot(gens, best, label="best", color="C0")
        ax.plot(gens, mean, label="mean", color="C1")
        ax.fill_between(gens, mean - std, mean + std, color="C1", alpha=0.2, label="mean ± std")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="lower right")
    if band_panel:
        ax = axes[len(objectives), 0]
        if genes.threshold is not None:
            mean = np.array([r["threshold_mean"] for r in logbook])
            std = np.array([r["threshold_std"] for r in logbook])
            ax.plot(gens, mean, color="C2", label="drift band (mean)")
            ax.fill_between(gens, mean - std, mean + std, color="C2", alpha=0.2)
            ax.set_ylabel("drift band")
        if genes.rebalance is not None:
            share = ax.twinx() if genes.threshold is not None else ax
            total = np.array([sum(r[f"rebalance_{c}"] for c in genes.rebalance) for r in logbook], dtype=float)
            for k, code in enumerate(genes.rebalance):
                count = np.array([r[f"rebalance_{code}"] for r in logbook], dtype=float)
                share.plot(gens, count / total, ls="--", color=f"C{3 + k}", label=f"rebalance {code}")
            share.set_ylabel("share of the population")
            share.set_ylim(0, 1)
            share.legend(loc="upper right", fontsize=7)
        if genes.threshold is not None:
            ax.legend(loc="upper left", fontsize=7)
        ax.set_title("strategy genes of the population", fontsize=9)
        ax.grid(alpha=0.3)
    if lev_panel:
        ax = axes[-1, 0]
        mean = np.array([r["leverage_mean"] for r in logbook])
        std = np.array([r["leverage_std"] for r in logbook])
        ax.plot(gens, mean, color="C9", label="leverage (mean)")
        ax.fill_between(gens, mean - std, mean + std, color="C9", alpha=0.2)
        ax.set_ylabel("gross leverage")
        lo, hi = genes.leverage
        ax.set_title(f"leverage gene of the population (evolved in [{lo:g}, {hi:g}])", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("generation")
    fig.suptitle("Fitness by generation (in sample: the window the run evolved on)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def allocation(symbols, weights, path: Path, title: str = "Champion allocation") -> Path:
    plt = _plt()
    w = np.asarray(weights)
    order = np.argsort(-np.abs(w))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(w)), 3.5))
    ax.bar([symbols[k] for k in order], w[order], color=np.where(w[order] >= 0, "C0", "C3"))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("weight")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def equity_windows(panels, path: Path) -> Path:
    """Equity curves, one panel per window: ``panels`` is ``[(window name, index, {name: values}), ...]``
    (in sample, then out of sample when the run held a window out)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 + 4 * len(panels), 4), squeeze=False)
    for ax, (window, index, curves) in zip(axes[0], panels, strict=True):
        for k, (name, v) in enumerate(curves.items()):
            ax.plot(index, v, label=name, lw=2.0 if k == 0 else 1.0)
        ax.set_yscale("log")
        ax.set_title(window.replace("_", "-"))
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", rotation=30)
    axes[0, 0].set_ylabel("portfolio value")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto(fitness: np.ndarray, objectives, champion: int, path: Path) -> Path:
    plt = _plt()
    f = np.asarray(fitness)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    color = f[:, 2] if f.shape[1] > 2 else None
    sc = ax.scatter(f[:, 1], f[:, 0], c=color, cmap="viridis", s=18)
    if color is not None:
        fig.colorbar(sc, ax=ax, label=objectives[2])
    ax.scatter(f[champion, 1], f[champion, 0], marker="*", s=220, color="C3", label="champion")
    ax.set_xlabel(objectives[1])
    ax.set_ylabel(objectives[0])
    ax.set_title("Pareto front")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def frontier(curves, path: Path, title: str = "Efficient frontiers", xlabel: str = "variance of return") -> Path:
    """Frontiers in (risk, return): ``curves`` is a list of ``(label, risks, returns, style)``, ``style`` "line"
    (a reference drawn as a line) or "points" (traced portfolios as markers)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for k, (label, risk, ret, style) in enumerate(curves):
        if style == "line":
            ax.plot(risk, ret, lw=1.2, color=f"C{k}", label=label)
        else:
            ax.plot(risk, ret, "o", ms=3.5, color=f"C{k}", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
