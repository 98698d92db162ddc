"""Upstream gap: the upstream code's number, reproduced, then taken apart artefact by artefact.

LOVM's ``generate_results.py --pred_type model_rank`` (``orrzohar/LOVM``; its ``eval.sh`` runs
it once per score set) evaluates ModelGPT under three documented artefacts that the clean
protocols remove:

1. **test-target subset choice**: it fits every non-empty subset of the requested features
   (127 for LOVM's 7) and prints the one with the best *test* mean R@5, ties broken by tau
   (SWAB's ``pred_ptm_rank.py``: the best R@5 + tau, ties by tau) -- a choice made by looking
   at every target's ground truth (:func:`subset_search`, reproduction protocols only);
2. **ImageNet-1k target**: ``DATASET_TO_REMOVE = []`` keeps ImageNet-1k as a target and a
   source (23 datasets) while it is also INB's and ModelGPT's side information;
3. **tau variant**: LOVM's ``get_k_tau`` (``tau_variant="lovm"``): tau on int-truncated ranks
   within the top-5 overlap, 0 unless at least 3 models overlap; the project's tau@5 counts
   an overlap of 2 (:mod:`benchmark.core.metrics`).

:func:`decompose` removes them in that order (1, 2, 3), one step at a time, from the
``*-upstream`` protocol (what the upstream code prints) to the clean protocol; each row's
difference is the part of the number owed to that artefact (the order is fixed, the parts
are not independent of it). ``python -m benchmark upstream-gap`` prints the table.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from benchmark.core.metrics import MetricConfig
from benchmark.core.protocol import LOVM_TARGETS, get_protocol, is_reproduction

#: LOVM's ``eval.sh`` score sets (``--scores``) and its feature groups / order.
LOVM_SCORE_SETS = ("INB", "C", "G", "G,C", "G,INB", "C,INB", "G,C,INB")
LOVM_GROUPS = {
    "C": ("text-f1", "text-acc1"),
    "G": ("intraclass_sim", "inter_close", "intra_close", "superclass_metric"),
    "INB": ("IN-score",),
}
#: ``modelGPT/constants.py::FEATURE_ORDER_DICT``: LOVM sorts the features by it before
#: enumerating the subsets, so among exact ties the first subset in this order is kept.
LOVM_FEATURE_ORDER = ("IN-score", "text-f1", "text-acc1", "superclass_metric", "inter_close",
                      "intra_close", "intraclass_sim")
SELECTED_ON_TEST = "selected on the test targets"
#: the clean counterpart of each reproduction protocol
CLEAN_OF = {"lovm-upstream": "lovm", "swab-upstream": "swab"}


def lovm_features(score_set: str) -> tuple[str, ...]:
    """The features of an ``eval.sh`` score set, in LOVM's ``FEATURE_ORDER``."""
    cols = [c for g in score_set.split(",") for c in LOVM_GROUPS[g.strip()]]
    return tuple(sorted(cols, key=LOVM_FEATURE_ORDER.index))


def all_subsets(features) -> list[tuple[str, ...]]:
    """Every non-empty subset, by size then lexicographic position (``itertools``), as LOVM."""
    return [c for r in range(1, len(features) + 1) for c in combinations(features, r)]


def _mean_r5_tau(harness, method: str, params: dict | None = None) -> tuple[float, float]:
    from benchmark.core.harness import resolve_methods

    runs = resolve_methods([method], {method: params} if params else None)
    res = harness.run(runs, progress=False)
    s = res.scores
    s = s[(s["metric"] == "tau") | ((s["metric"] == "recall") & (s["k"] == 5))]
    per_target = s.pivot_table(index="target", columns="metric", values="value")
    return float(per_target["recall"].mean()), float(per_target["tau"].mean())


def evaluate_features(harness, features: tuple[str, ...], inb_harness=None) -> tuple[float, float]:
    """Mean (R@5, tau) of ModelGPT on ``features``; IN-score alone is LOVM's ImageNet
    baseline (``get_imagenet_model_rank``), i.e. INB, run on ``inb_harness`` if given."""
    if tuple(features) == ("IN-score",):
        return _mean_r5_tau(inb_harness or harness, "inb")
    return _mean_r5_tau(harness, "modelgpt", {"features": tuple(features)})


def subset_search(harness, features, rule: str = "lovm", inb_harness=None) -> dict:
    """ModelGPT's feature subset chosen ON THE TEST TARGETS, as LOVM (``rule="lovm"``: best
    mean R@5, then tau) or SWAB (``"swab"``: best R@5 + tau, then tau) keep it.

    Reads every target's ground truth to choose: refused unless the harness runs a
    reproduction protocol (:func:`benchmark.core.protocol.is_reproduction`). Means are
    compared rounded to 3 decimals, as both repositories round before choosing.
    """
    name = harness.pdata.protocol.name
    if not is_reproduction(name):
        raise ValueError(f"subset search chooses on the test targets' ground truth: only for "
                         f"reproduction protocols, not {name!r}")
    if rule not in ("lovm", "swab"):
        raise ValueError(f"unknown subset-search rule {rule!r} (lovm, swab)")
    rows = []
    for ss in all_subsets(tuple(features)):
        r5, tau = evaluate_features(harness, ss, inb_harness)
        rows.append({"features": ss, "recall": r5, "tau": tau})
    table = pd.DataFrame(rows)
    r3, t3 = table["recall"].round(3), table["tau"].round(3)
    key = r3 if rule == "lovm" else (r3 + t3).round(3)
    best = table[key == key.max()]
    if len(best) > 1:
        best = best[t3[best.index] == t3[best.index].max()]
    chosen = best.iloc[0]
    return {"features": tuple(chosen["features"]), "recall": float(chosen["recall"]),
            "tau": float(chosen["tau"]), "n_subsets": len(table), "label": SELECTED_ON_TEST}


def _harness(protocol, data, published_in_score: bool = False):
    """A harness on ``protocol``. ``published_in_score``: ModelGPT's IN-score taken from LOVM's
    features CSV (its ``IN-score`` column, a separate ImageNet evaluation differing from the
    ground-truth table by up to 2.6e-4), as LOVM's ``ModelGPTPredictor`` reads it; its INB
    reads the ground-truth table. Reproduction protocols only."""
    import io

    from benchmark.core.harness import Harness
    from benchmark.features.text_features import LOVM_FEATURES

    h = Harness.from_data(protocol, data)
    if published_in_score:
        if not is_reproduction(protocol.name):
            raise ValueError(f"the published IN-score is a reproduction setting, not for "
                             f"{protocol.name!r}")
        df = pd.read_csv(io.StringIO(data.read_text(LOVM_FEATURES)))
        ids = df["model"].astype(str) + ":" + df["pretrained"].astype(str)
        series = pd.Series(df["IN-score"].to_numpy(dtype=float), index=ids)
        series = series[~series.index.duplicated()]
        h.pdata.__dict__["imagenet"] = series.reindex(h.pdata.imagenet.index).dropna()
    return h


def decompose(data, score_set: str = "G,C,INB", upstream: str = "lovm-upstream") -> list[dict]:
    """Rows from the upstream code's number to the clean protocol's, one artefact per step.

    Steps: ``reproduced`` (the upstream protocol, subset chosen on the test targets), then
    ``- subset choice`` (all features of the score set), ``- published IN-score`` (when the
    set has IN-score: ModelGPT reads the ground-truth table's ImageNet-1k top-1 instead of
    LOVM's CSV column; a ground-truth-source difference), ``- ImageNet-1k target`` (the clean
    protocol's 22 targets, ImageNet-1k side information only), ``- tau variant`` (the
    project's tau: clean). Each row: recall@5, tau, and the change from the row before.
    """
    if upstream not in CLEAN_OF:
        raise ValueError(f"unknown reproduction protocol {upstream!r} "
                         f"(valid: {', '.join(CLEAN_OF)})")
    feats = lovm_features(score_set)
    up = get_protocol(upstream)
    clean = get_protocol(CLEAN_OF[upstream])
    h_up_inb = _harness(up, data)
    h_up = _harness(up, data, published_in_score=upstream == "lovm-upstream")
    lovm_tau = MetricConfig(ks=(5,), tau_variant="lovm")
    h_22 = _harness(clean.with_options(seeds=(0,), metrics=lovm_tau), data)
    h_clean = _harness(clean.with_options(seeds=(0,), metrics=MetricConfig(ks=(5,))), data)
    steps = []
    if len(feats) > 1:
        s = subset_search(h_up, feats, inb_harness=h_up_inb)
        steps.append(("reproduced (upstream code's output)", s["recall"], s["tau"],
                      f"{'+'.join(s['features'])} ({SELECTED_ON_TEST}, {s['n_subsets']} "
                      f"subsets)", ""))
    steps.append((("reproduced (upstream code's output)" if len(feats) == 1
                   else "- subset choice on the test targets"),
                  *evaluate_features(h_up, feats, h_up_inb), "+".join(feats),
                  "" if len(feats) == 1 else "all features of the score set"))
    if "IN-score" in feats and upstream == "lovm-upstream":
        steps.append(("- LOVM's published IN-score", *evaluate_features(h_up_inb, feats),
                      "+".join(feats), "ModelGPT's IN-score from the ground-truth table, not "
                      "LOVM's features CSV (differs by <= 2.6e-4)"))
    steps.append(("- ImageNet-1k as target and source", *evaluate_features(h_22, feats),
                  "+".join(feats), f"{len(LOVM_TARGETS)} targets; ImageNet-1k side info only"))
    steps.append(("- LOVM's tau (clean protocol)", *evaluate_features(h_clean, feats),
                  "+".join(feats), "project's tau@5: tau-b on the top-5 overlap, ±1 when "
                  "2 models overlap (LOVM's: 0 unless 3 or more)"))
    rows, prev = [], None
    for step, r5, tau, features, why in steps:
        rows.append({"score_set": score_set, "step": step, "recall@5": r5, "tau": tau,
                     "d_recall@5": None if prev is None else r5 - prev[0],
                     "d_tau": None if prev is None else tau - prev[1],
                     "features": features, "note": why})
        prev = (r5, tau)
    return rows


def markdown(rows: list[dict], upstream: str) -> str:
    """The decomposition as a markdown table (upstream number first, clean number last)."""

    def f(x):
        return "" if x is None else f"{x:+.4f}"

    out = [f"Upstream gap, `{upstream}` -> `{CLEAN_OF[upstream]}` (ModelGPT; R@5 and tau are "
           "means over targets, seed 0). Published paper tables: not retrieved.", "",
           "| score set | step | R@5 | tau | dR@5 | dtau | features | note |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['score_set']} | {r['step']} | {r['recall@5']:.4f} | {r['tau']:.4f} | "
                   f"{f(r['d_recall@5'])} | {f(r['d_tau'])} | {r['features']} | {r['note']} |")
    return "\n".join(out) + "\n"
