"""The few figure helpers the chapters share (matplotlib; ipywidgets for the explorer).

Install with ``pip install 'featlib[book]'``.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .feedback import Agent

__all__ = ["triplet_figure", "explore_triplet", "plot_version_space", "plot_success", "heatmaps", "Table"]


def _plt():
    _checks.require("matplotlib", "book", "featlib.plotting")
    import matplotlib.pyplot as plt

    return plt


def triplet_figure(phi, x, y, z, ax=None):
    """Lemma 2 in the plane: the anchor x, the points y and z, the level set of d(x, .) through y,
    and the rescaled point ``x - sqrt(1+lam) (x - z)`` that lands on it.

    ``phi`` must be 2 x 2.  Returns ``(ax, info)`` with ``info`` holding the two distances, ``lam``
    and the equality pair.
    """
    plt = _plt()
    agent = Agent(phi)
    if agent.p != 2:
        raise _checks.ShapeError(f"triplet_figure draws in the plane: phi must be 2 x 2, got {agent.p} x {agent.p}.")
    x, y, z = (np.asarray(v, dtype=float) for v in (x, y, z))
    dy, dz = agent.distance(x, y), agent.distance(x, z)
    u, w = agent.equalize(x, y, z)
    lam = dy / dz - 1 if dz > 0 else np.inf
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    # level set {v : (v-x)^T Phi (v-x) = dy}: v = x + sqrt(dy) Phi^{-1/2} (cos t, sin t)
    evals, evecs = np.linalg.eigh(agent.phi_star)
    t = np.linspace(0, 2 * np.pi, 400)
    circle = np.stack([np.cos(t), np.sin(t)])
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(evals > 1e-12 * evals.max(), 1 / np.sqrt(np.maximum(evals, 1e-300)), 0.0)
    if np.all(evals > 1e-12 * evals.max()):
        ell = x[:, None] + np.sqrt(dy) * (evecs * inv_sqrt) @ circle
        ax.plot(*ell, color="0.6", lw=1, label=r"$\{v : d(x, v) = d(x, y)\}$")
    z_scaled = x - w if dy >= dz else z
    ax.scatter(*x, c="k", s=60, zorder=3, label="anchor $x$")
    ax.scatter(*y, c="C0", s=60, zorder=3, label="$y$")
    ax.scatter(*z, c="C1", s=60, zorder=3, label="$z$")
    if dy > dz:
        ax.scatter(*z_scaled, c="C1", marker="*", s=160, zorder=3, label=r"$x - \sqrt{1+\lambda}\,(x - z)$")
        ax.annotate("", xy=z_scaled, xytext=z, arrowprops=dict(arrowstyle="->", color="C1"))
    ax.set_aspect("equal")
    # the legend goes outside the axes, where it cannot cover the ellipse
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=10, borderaxespad=0.0)
    ax.set_title(f"d(x,y) = {dy:.3f}, d(x,z) = {dz:.3f}, λ = {lam:.3f}", fontsize=11)
    return ax, {"d_xy": float(dy), "d_xz": float(dz), "lam": float(lam), "pair": (u, w)}


def explore_triplet(phi, x=(0.0, 0.0), y=(1.5, 0.5), z=(0.3, 0.8), *, interactive: bool = False):
    """An explorer for Lemma 2.  The default draws one static figure (what the book's site shows);
    ``interactive=True`` returns an ipywidgets panel with sliders for y and z."""
    if not interactive:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
        _, info = triplet_figure(phi, x, y, z, ax=ax)
        return fig, info
    widgets = _checks.require("ipywidgets", "book", "the interactive triplet explorer")
    plt = _plt()

    def draw(y0, y1, z0, z1):
        fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
        triplet_figure(phi, x, (y0, y1), (z0, z1), ax=ax)
        plt.show()

    s = dict(min=-3.0, max=3.0, step=0.05)
    return widgets.interactive(
        draw,
        y0=widgets.FloatSlider(value=y[0], **s), y1=widgets.FloatSlider(value=y[1], **s),
        z0=widgets.FloatSlider(value=z[0], **s), z1=widgets.FloatSlider(value=z[1], **s),
    )


def plot_version_space(counts, psd_dims, linear_dims=None, bound=None, ax=None, title=None):
    """Version-space dimension against the number of pairs given (log scale), with the bound."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.plot(counts, psd_dims, "o-", ms=3, label="PSD-aware (exact solver)")
    if linear_dims is not None:
        ax.plot(counts, linear_dims, "s--", ms=3, alpha=0.7, label="linear only (least squares)")
    if bound is not None:
        ax.axvline(bound, color="k", ls=":", label=f"bound = {bound}")
    ax.axhline(1, color="C2", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("number of pairs given")
    ax.set_ylabel("dimension of the version space")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_success(curves: dict, bounds: dict | None = None, ax=None, key="success", ylabel=None):
    """Curves from :func:`featlib.experiments.success_curve` (label -> curve) against n, with
    vertical lines for the bounds (label -> n)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for i, (label, c) in enumerate(curves.items()):
        ax.plot(c["n"], c[key], "o-", ms=3, color=f"C{i}", label=label)
    for i, (label, n) in enumerate((bounds or {}).items()):
        ax.axvline(n, ls=":", color=f"C{i}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("number of pairs n")
    ax.set_ylabel(ylabel or key)
    ax.legend(fontsize=8)
    return ax


def heatmaps(mats: dict, axes=None, cmap="RdBu_r"):
    """Side-by-side heat maps of matrices (label -> matrix), each scaled so that its largest absolute entry is 1."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, len(mats), figsize=(3.2 * len(mats), 3))
    axes = np.atleast_1d(axes)
    for ax, (label, M) in zip(axes, mats.items()):
        M = np.asarray(M, dtype=float)
        M = M / np.max(np.abs(M))
        ax.imshow(M, cmap=cmap, vmin=-1, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


class Table:
    """A small HTML table for notebooks and the book (no pandas needed): it renders as a real table in
    Jupyter and on the site, and as aligned text in a terminal.  ``collapsed=True`` puts it in a
    ``<details>`` block whose summary is the caption (the full data one click away)."""

    def __init__(self, rows, columns, *, formats=None, caption=None, collapsed=False):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns)  # (key, header) pairs or keys
        self.columns = [c if isinstance(c, tuple) else (c, c) for c in self.columns]
        self.formats = dict(formats or {})
        self.caption = caption
        self.collapsed = collapsed

    def _cell(self, key, row):
        v = row.get(key, "")
        fmt = self.formats.get(key)
        if fmt is None:
            return str(v)
        return fmt(v) if callable(fmt) else format(v, fmt)

    def _repr_html_(self):
        import html

        head = "".join(f"<th>{html.escape(h)}</th>" for _, h in self.columns)
        # a number is one token: it never breaks across lines ("1.02e-15", not "1.02e-/15")
        body = "".join("<tr>" + "".join(f'<td style="white-space: nowrap">{html.escape(self._cell(k, r))}</td>'
                                        for k, _ in self.columns) + "</tr>" for r in self.rows)
        table = f'<table class="table featlib-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        # wider than the page (a phone): scroll sideways instead of hiding the last columns
        table = f'<div class="featlib-table-scroll" style="overflow-x: auto; max-width: 100%">{table}</div>'
        if self.caption and self.collapsed:
            return f"<details><summary>{html.escape(self.caption)}</summary>{table}</details>"
        if self.caption:
            return f"<p><strong>{html.escape(self.caption)}</strong></p>{table}"
        return table

    def __repr__(self):
        cells = [[h for _, h in self.columns]] + [[self._cell(k, r) for k, _ in self.columns] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
        return "\n".join(([self.caption] if self.caption else []) + lines)

