"""Leaderboard figures as PNG bytes, byte-identical from run to run.

Determinism: the Agg backend; matplotlib's default style (a user's ``matplotlibrc`` is
ignored); sizes from the data's shape only; a fixed ``DPI``; no ``Software`` tag and no date in
the PNG. Regenerating on the same matplotlib version gives the same bytes, so
``leaderboard --check`` compares PNGs byte for byte.

A different matplotlib (or freetype) version may rasterise text differently. Each PNG
therefore carries two text chunks: ``vlmbench-data``, a sha256 of what is drawn (the plotted
numbers and labels, plus the source of this module), and ``vlmbench-matplotlib``, the version
that drew it. :func:`same_figure` accepts a committed PNG whose bytes differ only when it was
drawn by another matplotlib version and its data fingerprint matches; on the same version,
any byte difference is a stale figure.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DPI = 100
DATA_KEY, VERSION_KEY = "vlmbench-data", "vlmbench-matplotlib"
FULL, PARTIAL, BEST = "#4c72b0", "#bbbbbb", "#dd8452"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return matplotlib, plt


def fingerprint(kind: str, data: Any) -> str:
    """sha256 of what a figure shows and of the code that draws it."""
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    blob = json.dumps({"kind": kind, "data": data, "code": code}, sort_keys=True, default=str,
                      allow_nan=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# (data fingerprint, matplotlib version) -> PNG bytes of figures already drawn: rendering is
# deterministic (module docstring), so a figure whose data, code and matplotlib version match
# a known PNG *is* that PNG. Seeded by :func:`reuse` from the committed figures; this is what
# makes ``leaderboard --check`` fast (drawing is most of its time).
_KNOWN: dict[tuple[str, str], bytes] = {}


def reuse(pngs: Sequence[Path]) -> int:
    """Register existing PNGs as already drawn (by their embedded fingerprint); returns how many.

    Only PNGs carrying both text chunks count; anything else is ignored, so a stale or foreign
    file can at worst be re-rendered, never returned for other data.
    """
    n = 0
    for path in pngs:
        try:
            png = Path(path).read_bytes()
            text = png_text(png)
        except (OSError, ValueError):
            continue
        if text.get(DATA_KEY) and text.get(VERSION_KEY):
            _KNOWN[(text[DATA_KEY], text[VERSION_KEY])] = png
            n += 1
    return n


def _render(kind: str, data: Any, size: tuple[float, float], draw: Callable) -> bytes:
    matplotlib, plt = _pyplot()
    known = _KNOWN.get((fingerprint(kind, data), matplotlib.__version__))
    if known is not None:
        return known
    with plt.style.context("default"), matplotlib.rc_context({"font.size": 9,
                                                              "svg.hashsalt": "vlmbench"}):
        fig = plt.figure(figsize=(round(size[0], 2), round(size[1], 2)), layout="constrained")
        try:
            draw(fig)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI, metadata={
                "Software": None, DATA_KEY: fingerprint(kind, data),
                VERSION_KEY: matplotlib.__version__})
        finally:
            plt.close(fig)
    return buf.getvalue()


def _clean(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 9)


# -- figures ------------------------------------------------------------------------------
def methods_figure(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], title: str
                   ) -> bytes:
    """Horizontal bars, one panel per metric: mean over targets with its 95% bootstrap CI.

    ``rows``: dicts with ``label``, ``style`` (``"best"``, ``"full"``, ``"partial"``) and, per
    metric, ``(mean, ci_low, ci_high)`` (NaN when the mean is missing).
    """
    data = [{"label": r["label"], "style": r["style"],
             **{m: [_clean(x) for x in r[m]] for m in metrics}} for r in rows]
    n = len(rows)

    def draw(fig):
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        ys = np.arange(n)[::-1]
        colors = [{"best": BEST, "full": FULL, "partial": PARTIAL}[r["style"]] for r in rows]
        for ax, metric in zip(axes, metrics, strict=True):
            vals = np.array([r[metric] for r in rows], float).reshape(n, 3)
            mean, lo, hi = vals[:, 0], vals[:, 1], vals[:, 2]
            ok = np.isfinite(mean)
            bars = ax.barh(ys[ok], mean[ok], color=np.array(colors)[ok], edgecolor="black",
                           linewidth=0.5)
            for bar, style in zip(bars, np.array([r["style"] for r in rows])[ok], strict=True):
                if style == "partial":
                    bar.set_hatch("//")
            err = np.vstack([mean - lo, hi - mean])[:, ok]
            ax.errorbar(mean[ok], ys[ok], xerr=err, fmt="none", ecolor="black", capsize=3,
                        linewidth=0.8)
            for y in ys[~ok]:
                ax.text(0.0, y, " missing targets", va="center", fontsize=7, color="0.4")
            ax.set_title(metric)
            ax.set_ylim(-0.6, n - 0.4)  # rows without a bar keep their place
            ax.set_xlim(left=0)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(ys, [r["label"] for r in rows])
        fig.suptitle(title, fontsize=9)

    return _render("methods", {"rows": data, "title": title},
                   (3.2 * len(metrics) + 1.8, 0.42 * n + 1.3), draw)


def heatmap_figure(matrix: pd.DataFrame, title: str, label: str) -> bytes:
    """targets (rows) x methods (columns), values annotated; NaN cells blank."""
    values = matrix.to_numpy(float)
    data = {"rows": list(matrix.index), "cols": list(matrix.columns),
            "values": [[_clean(v) for v in row] for row in values], "title": title}

    def draw(fig):
        ax = fig.subplots()
        im = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0.0, vmax=1.0,
                       aspect="auto")
        for (r, c), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
        ax.set_xticks(range(values.shape[1]), list(matrix.columns), rotation=30, ha="right")
        ax.set_yticks(range(values.shape[0]), list(matrix.index))
        fig.colorbar(im, ax=ax, label=label, shrink=0.8)
        ax.set_title(title, fontsize=9)

    return _render("heatmap", data,
                   (1.0 * values.shape[1] + 4.2, 0.3 * values.shape[0] + 1.8), draw)


def sweep_figure(table: pd.DataFrame, params: Sequence[str], metric: str, title: str) -> bytes:
    """A sweep's ``metric`` (mean over seeds): heatmap over two parameters, line over one."""
    if len(params) not in (1, 2):
        raise ValueError("a sweep figure shows one or two parameters")
    std = f"{metric}_std"
    data = {"table": json.loads(table[[*params, metric, std]].to_json(orient="split")),
            "title": title}

    def draw(fig):
        ax = fig.subplots()
        if len(params) == 1:
            xs = [str(v) for v in table[params[0]]]
            ax.errorbar(range(len(xs)), table[metric], yerr=table[std], marker="o", capsize=3)
            ax.set_xticks(range(len(xs)), xs)
            ax.set_xlabel(params[0])
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
        else:
            pivot = table.pivot_table(index=params[0], columns=params[1], values=metric,
                                      sort=False)
            mat = pivot.to_numpy(float)
            im = ax.imshow(mat, cmap="viridis", aspect="auto", origin="lower")
            for (r, c), v in np.ndenumerate(mat):
                if np.isfinite(v):
                    ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=7,
                            color="white")
            ax.set_xticks(range(mat.shape[1]), [str(v) for v in pivot.columns])
            ax.set_yticks(range(mat.shape[0]), [str(v) for v in pivot.index])
            ax.set_xlabel(params[1])
            ax.set_ylabel(params[0])
            fig.colorbar(im, ax=ax, label=metric)
        ax.set_title(title, fontsize=9)

    return _render("sweep", data, (6.0, 4.0), draw)


def sample_efficiency_figure(table: pd.DataFrame, x: str, hue: str | None, metric: str,
                             title: str) -> bytes:
    """``metric`` (mean ± std over seeds) against ``x``; one line per value of ``hue``."""
    std = f"{metric}_std"
    cols = [x, *([hue] if hue else []), metric, std]
    data = {"table": json.loads(table[cols].to_json(orient="split")), "title": title}

    def draw(fig):
        ax = fig.subplots()
        groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=True))
        for key, g in groups:
            g = g.sort_values(x)
            xs, ys, sd = (g[c].to_numpy(float) for c in (x, metric, std))
            ax.plot(xs, ys, marker="o", label=None if hue is None else f"{hue}={key}")
            ax.fill_between(xs, ys - sd, ys + sd, alpha=0.2)
        xs_all = table[x].to_numpy(float)
        if xs_all.min() > 0 and xs_all.max() / xs_all.min() >= 10:
            ax.set_xscale("log")
        ticks = sorted(set(xs_all))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if hue is not None:
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=9)

    return _render("sample_efficiency", data, (6.0, 4.0), draw)


# -- freshness ----------------------------------------------------------------------------
def png_text(png: bytes) -> dict[str, str]:
    """The ``tEXt``/``zTXt``/``iTXt`` chunks of a PNG (keyword -> text)."""
    out: dict[str, str] = {}
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        return out
    pos = 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        try:
            if kind == b"tEXt":
                key, _, text = body.partition(b"\0")
                out[key.decode("latin-1")] = text.decode("latin-1")
            elif kind == b"zTXt":
                key, _, rest = body.partition(b"\0")
                out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\0")
                flag, rest = rest[0], rest[2:]
                _, _, rest = rest.partition(b"\0")  # language tag
                _, _, text = rest.partition(b"\0")  # translated keyword
                out[key.decode("latin-1")] = (zlib.decompress(text) if flag else text).decode()
        except (ValueError, zlib.error, IndexError):
            continue
        if kind == b"IEND":
            break
    return out


def same_figure(committed: bytes, regenerated: bytes) -> tuple[bool, str]:
    """Is the committed PNG fresh? ``(fresh, how it was decided)``."""
    if committed == regenerated:
        return True, "identical bytes"
    old, new = png_text(committed), png_text(regenerated)
    other_version = old.get(VERSION_KEY) and old.get(VERSION_KEY) != new.get(VERSION_KEY)
    if other_version and old.get(DATA_KEY) and old.get(DATA_KEY) == new.get(DATA_KEY):
        return True, (f"same data (drawn by matplotlib {old[VERSION_KEY]}, here "
                      f"{new.get(VERSION_KEY)}: bytes not comparable)")
    return False, "different"
