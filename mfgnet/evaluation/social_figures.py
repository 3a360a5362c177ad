"""Figures of the equilibrium against the social optimum (no torch: arrays from `social_cost`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfgnet.evaluation.style import panels, save

_PARTS = (("running", "control ∫∫ m L"), ("crowd", "crowd ∫∫ m F"), ("terminal", "terminal ∫ m(T) G"))


def _cost_bars(ax, costs: dict) -> None:
    """Stacked bars of the cost's three parts, one bar per labelled SocialCost."""
    labels = list(costs)
    bottom = np.zeros(len(labels))
    for key, name in _PARTS:
        values = np.array([getattr(costs[label], key) for label in labels])
        ax.bar(labels, values, bottom=bottom, label=name, width=0.6)
        bottom += values
    for i, label in enumerate(labels):
        ax.text(i, bottom[i], f"{costs[label].total:.4g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("social cost J")
    ax.set_ylim(0, 1.45 * bottom.max())  # room for the legend above the bars
    ax.legend(loc="upper center", frameon=False, ncol=2, fontsize=7)


def price_of_anarchy_figure(result, title: str = ""):
    """The crowd of the equilibrium (solid) and of the social optimum (dashed) at t = 0, T/2, T
    (1D), or both crowds at T (2D), next to the two social costs split into their parts."""
    nash, optimum = result.nash_cost, result.optimum_cost
    dim = len(nash.axes)
    if dim == 1:
        fig, axes = panels(1, 2)
        ax = axes[0][0]
        x = nash.axes[0]
        top = 0.0
        for j, k in enumerate(np.unique(np.linspace(0, len(nash.times) - 1, 3).round().astype(int))):
            colour = f"C{j}"
            ax.plot(x, nash.density[k], color=colour, label=f"t = {nash.times[k]:.2g}")
            ax.plot(x, optimum.density[k], color=colour, ls="--")
            top = max(top, nash.density[k].max(), optimum.density[k].max())
        ax.plot([], [], color="0.3", label="Nash")
        ax.plot([], [], color="0.3", ls="--", label="optimum")
        ax.set_ylim(0, 1.3 * top)
        ax.set_xlabel("x")
        ax.set_ylabel("density m")
        ax.legend(frameon=False, ncol=2, fontsize=7, loc="upper right")
        bars = axes[0][1]
    else:
        fig, axes = panels(1, 3)
        extent = [nash.axes[0][0], nash.axes[0][-1], nash.axes[1][0], nash.axes[1][-1]]
        top = max(nash.density[-1].max(), optimum.density[-1].max())
        for ax, cost, name in ((axes[0][0], nash, "Nash"), (axes[0][1], optimum, "optimum")):
            image = ax.imshow(cost.density[-1].T, origin="lower", extent=extent, vmin=0, vmax=top, cmap="viridis")
            ax.set_title(f"{name}: m(T, x)")
            ax.set_xlabel("x₁")
            ax.set_ylabel("x₂")
        fig.colorbar(image, ax=axes[0][1], shrink=0.8)
        bars = axes[0][2]
    _cost_bars(bars, {"Nash": nash, "optimum": optimum})
    trusted = result.metrics.get("trusted", True)
    bars.set_title(f"price of anarchy {result.ratio:.4f}" + ("" if trusted else " (not trusted: see metrics)"))
    if title:
        fig.suptitle(title)
    return fig


def plot_price_of_anarchy(result, path: str | Path, title: str = "") -> Path:
    """Save [`price_of_anarchy_figure`][mfgnet.evaluation.social_figures.price_of_anarchy_figure]."""
    return save(price_of_anarchy_figure(result, title), path)
