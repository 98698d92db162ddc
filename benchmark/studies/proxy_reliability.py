r"""Proxy reliability: the DCD paper's Table 1, as we read it.

For each model ``m`` and each task proxy, the Spearman correlation over the unordered task pairs
``{i, j}`` (both with a published cell for ``m``) between the proxy's task-task distance and
the performance gap ``|acc_m(i) - acc_m(j)|``. A reliable proxy puts tasks on which the model
performs alike close together (higher correlation = more reliable). The paper's equation is not
legible in our copy: this pairing is our reading of it.

Proxies
-------
- ``semantic`` (:func:`semantic_distances`): cosine distance ``1 - cos(e(i), e(j))`` of the
  task embeddings of :mod:`methods.semantic` (mean ``"a photo of {c}."`` embedding of a shared
  sentence embedder); the same for every model. Runs on the published files alone.
- ``dcd`` (:func:`dcd_distances`): the symmetrised directional conductance divergence of model
  ``m``, ``(D_m(i->j) + D_m(j->i)) / 2`` with ``D`` of :func:`methods.dcd.dcd` on the task
  profiles of all the record's images (sum-normalised, ``beta`` as DCD's default). Needs
  conductance packs: on a protocol without them (the published zoos) the column is absent and
  the command says which packs are missing.

    python -m benchmark proxy-reliability --protocol dcd48 [--out DIR]

Outputs: ``proxy_reliability.csv`` (model, proxy, spearman, pairs), ``proxy_reliability.md``
(per-model table, mean over models), ``proxy_reliability.png`` (per-proxy strip of the
per-model correlations), ``proxy_reliability.json`` (protocol, embedder, versions).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

log = logging.getLogger(__name__)

#: a proxy: model -> (datasets, symmetric distance matrix) for that model
DistanceFn = Callable[[str], tuple[Sequence[str], np.ndarray] | None]


def pair_spearman(acc: Mapping[str, float], datasets: Sequence[str], dist: np.ndarray
                  ) -> tuple[float, int]:
    """``(rho, n_pairs)``: Spearman over the pairs ``i < j`` with finite accuracy and distance
    between ``dist[i, j]`` and ``|acc[i] - acc[j]|``; NaN below 3 pairs or constant input."""
    xs, ys = [], []
    for i, j in itertools.combinations(range(len(datasets)), 2):
        a, b = acc.get(datasets[i], np.nan), acc.get(datasets[j], np.nan)
        if np.isfinite(a) and np.isfinite(b) and np.isfinite(dist[i, j]):
            xs.append(dist[i, j])
            ys.append(abs(a - b))
    if len(xs) < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return float("nan"), len(xs)
    return float(spearmanr(xs, ys)[0]), len(xs)


def semantic_distances(infos: Sequence, embedder="minilm") -> tuple[list[str], np.ndarray]:
    """Task ids and ``1 - cos`` between their semantic-proxy embeddings (shared by all models)."""
    from methods.semantic import prompt_task_embedding

    e = np.stack([prompt_task_embedding(d, embedder) for d in infos])
    return [d.id for d in infos], 1.0 - e @ e.T


def dcd_distances(profiles: Mapping[str, np.ndarray], beta: float = 2.5
                  ) -> tuple[list[str], np.ndarray]:
    """Task ids and the symmetrised DCD ``(D(i->j) + D(j->i)) / 2`` of one model's profiles."""
    from methods.dcd import dcd, normalize_profile

    ids = list(profiles)
    p = {d: normalize_profile(np.asarray(profiles[d], dtype=float)) for d in ids}
    n = len(ids)
    out = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        d_ij = float(dcd(p[ids[i]], p[ids[j]], beta))  # source i, target j
        d_ji = float(dcd(p[ids[j]], p[ids[i]], beta))
        out[i, j] = out[j, i] = (d_ij + d_ji) / 2
    return ids, out


def reliability_table(accuracy: pd.DataFrame, proxies: Mapping[str, DistanceFn]) -> pd.DataFrame:
    """Long table (model, proxy, spearman, pairs) over the models of ``accuracy``
    (models x datasets); a proxy returning None for a model leaves no row."""
    rows = []
    for m in accuracy.index:
        acc = accuracy.loc[m].to_dict()
        for name, fn in proxies.items():
            got = fn(m)
            if got is None:
                continue
            ids, dist = got
            rho, n = pair_spearman(acc, ids, dist)
            rows.append({"model": m, "proxy": name, "spearman": rho, "pairs": n})
    return pd.DataFrame(rows, columns=["model", "proxy", "spearman", "pairs"])


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """model x proxy Spearman, with a final ``mean`` row over the models."""
    w = table.pivot(index="model", columns="proxy", values="spearman")
    w.loc["mean"] = w.mean(axis=0, skipna=True)
    return w


def plot(table: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proxies = list(dict.fromkeys(table["proxy"]))
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(proxies), 3.2))
    rng = np.random.default_rng(0)  # jitter only
    for k, p in enumerate(proxies):
        v = table.loc[table["proxy"] == p, "spearman"].dropna().to_numpy()
        ax.scatter(k + rng.uniform(-0.12, 0.12, len(v)), v, s=12, alpha=0.7)
        if len(v):
            ax.hlines(v.mean(), k - 0.25, k + 0.25, color="k")
    ax.set_xticks(range(len(proxies)), proxies)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Spearman(distance, |acc gap|) per model")
    ax.set_title("proxy reliability")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the DCD paper's Fig. 2: model-model agreement of conductance task distances -------------
def family(model: str) -> str:
    """Model family for grouping: the architecture before ``:``, up to its first ``-``/``_``."""
    arch = model.split(":", 1)[0]
    for sep in ("-", "_"):
        arch = arch.split(sep, 1)[0]
    return arch


def model_agreement(distances: Mapping[str, tuple[Sequence[str], np.ndarray]]) -> pd.DataFrame:
    """models x models Spearman between two models' task-task distances, over the task pairs
    both have (upper triangles); models ordered by :func:`family`, then name."""
    models = sorted(distances, key=lambda m: (family(m), m))
    pairs = {}
    for m in models:
        ids, d = distances[m]
        pairs[m] = {(ids[i], ids[j]): d[i, j] for i, j in itertools.combinations(range(len(ids)), 2)}
    out = pd.DataFrame(np.eye(len(models)), index=models, columns=models)
    for a, b in itertools.combinations(models, 2):
        common = [k for k in pairs[a] if k in pairs[b]]
        x = np.array([pairs[a][k] for k in common])
        y = np.array([pairs[b][k] for k in common])
        rho = (float(spearmanr(x, y)[0]) if len(common) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
               else float("nan"))
        out.loc[a, b] = out.loc[b, a] = rho
    return out


def plot_agreement(agreement: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(agreement)
    fig, ax = plt.subplots(figsize=(3 + 0.18 * n, 2.5 + 0.18 * n))
    im = ax.imshow(agreement.to_numpy(float), vmin=-1, vmax=1, cmap="RdBu_r")
    fams = [family(m) for m in agreement.index]
    ax.set_xticks(range(n), agreement.index, rotation=90, fontsize=5)
    ax.set_yticks(range(n), agreement.index, fontsize=5)
    for k in range(1, n):  # family boundaries
        if fams[k] != fams[k - 1]:
            ax.axhline(k - 0.5, color="k", lw=0.6)
            ax.axvline(k - 0.5, color="k", lw=0.6)
    fig.colorbar(im, ax=ax, label="Spearman of task distances")
    fig.suptitle("model-model agreement (symmetrised DCD)", fontsize=9)  # clear of the colorbar
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
