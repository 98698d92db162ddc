r"""Performance prediction: LOVM's second task, each model's top-1 on the target, as a value.

A method that predicts a value implements :meth:`methods.base.Selector.predict` (raw top-1,
a fraction; ModelGPT: the regression fitted on the sources' raw accuracies, as LOVM's
``ModelGPTPredictor.loo_model_pred``; INB: the ImageNet-1k top-1, LOVM's
``get_imagenet_model_pred``; AvgRank: the model's mean source top-1). Per target ``t`` with
candidates ``C_t``, predictions ``p`` and truth ``a``, two errors are reported:

- ``l1``: the mean absolute error ``mean_{m in C_t} |p_m - a_m|`` (the clean definition);
- ``l1_lovm``: what LOVM's ``get_l1`` computes, ``|mean_{m in P_5} (p_m - a_m)|`` with ``P_5``
  the five models with the highest *prediction*: the absolute value of the mean *signed*
  error over the predicted top 5 (errors of opposite sign cancel; models outside the
  predicted top 5 are not counted).

Both are averaged over targets (``mean``). The fold structure is the harness's (sources only,
the target's truth never reaches ``predict``); a stochastic method runs seed
``protocol.seeds[0]`` only. :func:`upstream` reproduces LOVM's
``generate_results.py --pred_type model_pred`` on ``lovm-upstream``: ImageNet-1k a target,
ModelGPT's IN-score from LOVM's features CSV, and (``subsets=True``) the feature subset with
the lowest mean LOVM L1 *on the test targets* (labelled "selected on the test targets"),
and LOVM's ``drop_duplicates`` of equal predictions (:func:`lovm_dedupe`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.core.protocol import is_reproduction

METRICS = ("l1", "l1_lovm")
LABELS = {"l1": "L1 (MAE over candidates)",
          "l1_lovm": "LOVM's L1 (abs. of the mean error over the predicted top 5)"}


def l1_errors(pred: pd.Series, truth: pd.Series, k: int = 5) -> dict[str, float]:
    """``{"l1": ..., "l1_lovm": ...}`` of one target (definitions in the module docstring)."""
    pred = pred.astype(float)
    err = pred - truth.reindex(pred.index).astype(float)
    top = pred.sort_values(ascending=False, kind="stable").index[:k]
    return {"l1": float(np.nanmean(np.abs(err.to_numpy()))),
            "l1_lovm": float(abs(np.nanmean(err.reindex(top).to_numpy())))}


def predict_fold(harness, method, target: str) -> pd.Series:
    """``method``'s predicted top-1 of each candidate on ``target`` (sources-only fit)."""
    from benchmark.core.harness import validate_scores

    seed = harness.protocol.seeds[0]
    kinds = method.cls.requires
    cands = harness.candidates(method, target)
    selector = method.make()
    selector.fit(harness.train_view(target, seed, kinds))
    pred = selector.predict(harness.target_view(target, seed, cands, kinds))
    return validate_scores(method.name, target, pred, cands)


def lovm_dedupe(pred: pd.Series, order: list[str]) -> pd.Series:
    """LOVM's ``_loo_prediction`` calls ``drop_duplicates()`` on each target's predictions:
    of the models with exactly equal predictions only the first in its CSV's row order
    (``order``) is kept, the others are not evaluated (reproduction only)."""
    ranked = [m for m in order if m in pred.index] + [m for m in pred.index if m not in order]
    p = pred.reindex(ranked)
    return p[~p.duplicated(keep="first")]


def run(harness, methods, dedupe: dict[str, list[str]] | None = None
        ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Per (method, target): ``l1``, ``l1_lovm`` and the number of candidates; plus the
    methods skipped and why (no value prediction / missing features). ``dedupe``: target ->
    LOVM's CSV model order, to apply :func:`lovm_dedupe` (reproduction only)."""
    skipped = {m.name: "predicts no accuracy value (ranking only)"
               for m in methods if not m.cls.predicts_values()}
    active = [m for m in methods if m.name not in skipped]
    skipped.update(harness.check_available(active, skip_unavailable=True))
    rows = []
    for m in active:
        if m.name in skipped:
            continue
        for t in harness.pdata.evaluable_targets():
            pred = predict_fold(harness, m, t)
            if dedupe is not None:
                pred = lovm_dedupe(pred, dedupe.get(t, []))
            if len(pred) < 2:
                continue
            truth = harness.pdata.targets_gt.column(t)
            rows.append({"method": m.name, "target": t, **l1_errors(pred, truth),
                         "candidates": len(pred)})
    return pd.DataFrame(rows, columns=["method", "target", *METRICS, "candidates"]), skipped


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over targets of each metric per method (index: method), lowest ``l1`` first."""
    if table.empty:
        return pd.DataFrame(columns=[*METRICS, "targets"])
    g = table.groupby("method")
    out = g[list(METRICS)].mean()
    out["targets"] = g.size()
    return out.sort_values("l1", kind="stable")


def markdown(table: pd.DataFrame, skipped: dict[str, str], protocol: str,
             per_target: bool = True) -> list[str]:
    """Lines of a markdown section: the means, then L1 per target and method."""
    from tabulate import tabulate

    lines = [f"Each model's top-1 on the target predicted as a value (LOVM's `model_pred` task; "
             f"`python -m benchmark performance-prediction --protocol {protocol}`). Lower is "
             f"better. {LABELS['l1']}: mean over the target's candidates of |predicted - "
             f"true|; {LABELS['l1_lovm']}: LOVM's `get_l1`. Means over targets; accuracies "
             "in [0, 1].", ""]
    s = summary(table)
    if not s.empty:
        rows = [(m, f"{r['l1']:.4f}", f"{r['l1_lovm']:.4f}", int(r["targets"]))
                for m, r in s.iterrows()]
        lines += [tabulate(rows, headers=["method", LABELS["l1"], LABELS["l1_lovm"], "targets"],
                           tablefmt="github", disable_numparse=True), ""]
    if skipped:
        lines += ["Not reported: " + "; ".join(f"`{m}`: {r}" for m, r in sorted(skipped.items()))
                  + ".", ""]
    if per_target and not table.empty:
        m = table.pivot(index="target", columns="method", values="l1")[list(s.index)]
        lines += ["L1 (MAE) per target:", "",
                  tabulate(m.map(lambda v: f"{v:.4f}"), headers="keys", tablefmt="github",
                           disable_numparse=True), ""]
    return lines


def upstream(data, score_set: str = "G,C,INB", subsets: bool = True,
             method: str = "modelgpt") -> dict:
    """LOVM's ``generate_results.py --pred_type model_pred --scores SCORE_SET`` (linear
    regression), computed by this code on ``lovm-upstream``: the subset with the lowest
    mean LOVM L1 on the test targets (rounded to 3 decimals, the first in LOVM's order
    among ties; IN-score alone is INB), or all the set's features (``subsets=False``).
    ``method``: a ModelGPT variant (``modelgpt-lasso``, ...: LOVM's ``--model_type`` with
    ``--grid_search``; the grid is searched over source datasets here, over 10 row folds
    there)."""
    from benchmark.core.harness import resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.studies import upstream_gap as ug

    if not subsets and score_set == "INB":
        subsets = True  # a single feature: the same
    proto = get_protocol("lovm-upstream")
    assert is_reproduction(proto.name)
    h_inb = ug._harness(proto, data)
    h_gpt = ug._harness(proto, data, published_in_score=True)
    feats = ug.lovm_features(score_set)
    dedupe = _lovm_csv_order(data)
    cands = ug.all_subsets(feats) if subsets else [feats]
    rows = []
    for ss in cands:
        if tuple(ss) == ("IN-score",):
            h, m, dd = h_inb, resolve_methods(["inb"])[0], None
        else:
            h, dd = h_gpt, dedupe
            m = resolve_methods([method], {method: {"features": tuple(ss)}})[0]
        table, _ = run(h, [m], dd)
        rows.append({"features": tuple(ss), "l1_lovm": float(table["l1_lovm"].mean()),
                     "l1": float(table["l1"].mean()),
                     "per_target": dict(zip(table["target"], table["l1_lovm"], strict=True))})
    key = [round(r["l1_lovm"], 3) for r in rows]
    best = rows[key.index(min(key))]
    return {**best, "n_subsets": len(rows),
            "label": ug.SELECTED_ON_TEST if subsets and len(rows) > 1 else "declared features"}


def _lovm_csv_order(data) -> dict[str, list[str]]:
    """Target -> model ids in the row order of LOVM's features CSV (for :func:`lovm_dedupe`)."""
    import io

    from benchmark.features.text_features import LOVM_FEATURES

    df = pd.read_csv(io.StringIO(data.read_text(LOVM_FEATURES)))
    df["id"] = df["model"].astype(str) + ":" + df["pretrained"].astype(str)
    return {d: list(g["id"]) for d, g in df.groupby("dataset", sort=False)}
