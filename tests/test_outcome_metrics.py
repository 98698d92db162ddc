"""Outcome metrics (issue 19): acc@k, regret, normalised regret, hit, binomial noise.

Hand-computed cases (each fails if the definition changes) and properties on random inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.core.metrics import (
    MetricConfig,
    acc_at_k,
    binomial_se,
    regret_at_k,
    within_noise,
)

MODELS = ["a", "b", "c", "d"]
TRUTH = pd.Series([0.9, 0.8, 0.7, 0.6], index=MODELS)


def rows(scores, truth, **kw):
    return {(m, k): v for m, k, v in MetricConfig(ks=(3,)).evaluate(scores, truth, **kw)}


def test_hand_computed_acc_regret_hit():
    # predicted order: c (0.7), b (0.8), a (0.9), d (0.6)
    pred = pd.Series([2.0, 3.0, 4.0, 1.0], index=MODELS)
    r = rows(pred, TRUTH)
    assert r[("acc", 1)] == pytest.approx(0.7)
    assert r[("regret", 1)] == pytest.approx(0.2)
    assert r[("nregret", 1)] == pytest.approx(0.2 / 0.9)
    assert r[("hit", 1)] == 0.0
    assert r[("acc", 3)] == pytest.approx(0.9)  # best of the top 3 (c, b, a)
    assert r[("regret", 3)] == 0.0 and r[("hit", 3)] == 1.0
    assert acc_at_k(pred, TRUTH, 2) == pytest.approx(0.8)
    assert regret_at_k(pred, TRUTH, 2) == pytest.approx(0.1)


def test_regret_against_best_of_all_candidates_for_partial_coverage():
    # the method scored only b, c, d; the target's best (a, 0.9) is still what the user loses
    pred = pd.Series([3.0, 2.0, 1.0], index=["b", "c", "d"])
    r = rows(pred, TRUTH[["b", "c", "d"]], best=0.9)
    assert r[("acc", 1)] == pytest.approx(0.8)
    assert r[("regret", 1)] == pytest.approx(0.1)
    assert r[("hit", 1)] == 0.0 and r[("hit", 5)] == 0.0
    with pytest.raises(ValueError, match="below"):
        rows(pred, TRUTH[["b", "c", "d"]], best=0.5)


def test_ties_in_scores_broken_by_model_id():
    pred = pd.Series([1.0, 1.0, 1.0, 1.0], index=["d", "c", "b", "a"])
    assert rows(pred, TRUTH)[("acc", 1)] == pytest.approx(0.9)  # "a" first by id


def test_binomial_se_and_noise_ties_hand_computed():
    assert binomial_se(0.8, 100) == pytest.approx(0.04)
    assert binomial_se(0.5, 10000) == pytest.approx(0.005)
    # 0.9 vs 0.8 on n=100: 1.96 * sqrt(.0009 + .0016) = 0.098 < 0.1 -> not a tie
    assert not within_noise(0.9, 0.8, 100)
    # on n=50: 1.96 * sqrt(2 * .0025) ... = 1.96 * sqrt(.0018 + .0032) = 0.1386 -> a tie
    assert within_noise(0.9, 0.8, 50)
    pred = pd.Series([3.0, 4.0, 2.0, 1.0], index=MODELS)  # b first
    r = rows(pred, TRUTH, n_test=100)
    assert r[("se", 1)] == pytest.approx(0.04)
    assert r[("regret_tol", 1)] == pytest.approx(0.1) and r[("hit_tol", 1)] == 0.0
    r = rows(pred, TRUTH, n_test=50)
    assert r[("regret_tol", 1)] == 0.0 and r[("hit_tol", 1)] == 1.0
    assert r[("regret", 1)] == pytest.approx(0.1)  # plain regret unchanged
    r = rows(pred, TRUTH)  # no test size: no SE, and no tie can be established
    assert ("se", 1) not in r
    assert r[("regret_tol", 1)] == r[("regret", 1)] and r[("hit_tol", 1)] == r[("hit", 1)]
    with pytest.raises(ValueError):
        binomial_se(0.5, 0)


def test_properties_on_random_inputs():
    rng = np.random.default_rng(3)
    cfg = MetricConfig(ks=(3,), outcome_ks=(1, 2, 3, 5, 40))
    for trial in range(300):
        n = int(rng.integers(2, 20))
        ids = [f"m{j}" for j in range(n)]
        truth = pd.Series(rng.integers(0, 6 if trial % 2 else 1000, n) / 1000.0 + 0.001,
                          index=ids)
        scores = pd.Series(rng.integers(0, 4, n).astype(float), index=rng.permutation(ids))
        r = {(m, k): v for m, k, v in cfg.evaluate(scores, truth, n_test=500)}
        best = truth.max()
        prev = -1.0
        for k in cfg.outcome_ks:
            assert r[("regret", k)] >= 0
            assert r[("regret", k)] == pytest.approx(best - r[("acc", k)])
            assert (r[("regret", k)] == 0) == (r[("hit", k)] == 1)
            assert 0 <= r[("nregret", k)] <= 1
            assert 0 <= r[("regret_tol", k)] <= r[("regret", k)]
            assert r[("hit_tol", k)] >= r[("hit", k)]
            assert r[("acc", k)] >= prev  # acc@k never drops as k grows
            prev = r[("acc", k)]
            assert r[("acc", k)] == pytest.approx(acc_at_k(scores, truth, k))
        # regret@1 == 0 iff the model ranked first is a best model
        first = scores.index[np.lexsort((np.asarray(scores.index), -scores.to_numpy()))[0]]
        assert (r[("regret", 1)] == 0) == (truth[first] == best)
        assert r[("acc", 40)] == best  # k >= n: the best is always among all models


def test_oracle_scores_have_zero_regret():
    r = rows(TRUTH, TRUTH, n_test=1000)
    assert all(r[(m, 1)] == 0 for m in ("regret", "nregret", "regret_tol"))
    assert r[("hit", 1)] == 1.0


# -- reporting: outcome table, cost column, MLL comparison ------------------------------------
def _scores(rows):
    return pd.DataFrame(rows, columns=["method", "protocol", "seed", "target", "metric", "k",
                                       "value"])


def test_outcome_frame_means_and_order():
    from benchmark.report.leaderboard import outcome_frame

    rows = []
    for method, accs in {"a": (0.5, 0.7), "b": (0.6, 0.8)}.items():
        for t, acc in zip(("x", "y"), accs, strict=True):
            rows += [(method, "p", 0, t, "acc", 1, acc), (method, "p", 0, t, "regret", 1, 0.9 - acc)]
    rows.append(("a", "p", 0, "x", "se", 1, 0.01))  # SE only on x (test size known there)
    frame, note = outcome_frame(_scores(rows), columns=[("acc", 1), ("regret", 1)])
    assert list(frame["method"]) == ["b", "a"]  # by acc@1, best first
    assert frame.loc[frame.method == "a", "acc@1"].item() == "0.600 ± 0.000"
    assert frame.loc[frame.method == "a", "regret@1"].item() == "0.300 ± 0.000"
    assert frame.loc[frame.method == "a", "SE(acc)@1"].item() == "0.010 ± 0.000"
    assert "1 of 2 targets" in note and "missing: y" in note


def test_regret_marks_are_flipped_lower_is_better():
    from benchmark.report import leaderboard as lb

    class P:
        def mark(self):
            return "▲"

    r = lb.Row("m", "full", "", 1, {("regret", 1): 0.1, ("acc", 1): 0.5},
               {("regret", 1): 0.0, ("acc", 1): 0.0}, {("regret", 1): P(), ("acc", 1): P()})
    assert lb._cell(r, ("regret", 1)).endswith("▼")
    assert lb._cell(r, ("acc", 1)).endswith("▲")


def test_cost_frame_needs_and_timings():
    from benchmark.report.leaderboard import cost_frame

    timings = pd.DataFrame({"method": ["inb", "inb"], "seed": [0, 0], "target": ["x", "y"],
                            "seconds": [0.5, 1.5]})
    frame = cost_frame({"inb": {"target_needs": "nothing"}, "dcd": {}}, timings)
    inb = frame[frame.method == "inb"].iloc[0]
    assert inb["needs from the target"] == "nothing"
    assert inb["s / target (mean)"] == "1.000" and inb["s / target (max)"] == "1.500"
    assert frame[frame.method == "dcd"].iloc[0]["s / target (mean)"] == "—"


def test_every_registered_selector_declares_target_needs():
    import methods

    assert methods.REGISTRY
    for name in methods.REGISTRY:
        _, cls, _ = methods.resolve(name)
        assert cls.target_needs != "not declared", name


def test_mll_reported_tables_match_their_printed_averages():
    from benchmark.report import mll_compare

    # Table 1 INB / ModelGPT and Table 2 ModelGPT / MLL average exactly as printed; MLL's own
    # Table 1 row averages 0.6644 (printed 0.6620) and Table 2 INB 0.6486 (printed 0.6498):
    # discrepancies of the paper's averages, not of the transcription (checked cell by cell).
    for k, tol in ((1, 0.0025), (3, 0.0013)):
        rep = mll_compare.reported(k)
        for m, avg in mll_compare.REPORTED_AVG[k].items():
            assert rep[m].mean() == pytest.approx(avg, abs=tol), (k, m)


def test_mll_comparison_hand_computed():
    from benchmark.report import mll_compare

    scores = _scores([("inb", "mll", s, "cifar100", "acc", 1, v) for s, v in ((0, 0.9), (1, 0.8))]
                     + [("inb", "mll", 0, "dtd", "acc", 1, 0.7)])
    table = mll_compare.comparison(scores)
    assert table.loc["cifar100", "inb (ours)"] == pytest.approx(0.85)
    assert table.loc["cifar100", "inb Δ"] == pytest.approx(0.85 - 0.8599)
    assert np.isnan(table.loc["mnist", "inb (ours)"])
    mean_row = [i for i in table.index if i.startswith("mean")][0]
    assert mean_row == "mean (2 targets)"
    assert table.loc[mean_row, "inb (ours)"] == pytest.approx((0.85 + 0.7) / 2)


# -- reuse: MLL's top-3 ensemble (ens@3) -------------------------------------------------
def _log(*probs):
    """Logits whose softmax is exactly ``probs`` (one row per image)."""
    return np.log(np.asarray(probs, dtype=float))


def test_ensemble_hand_computed_entropy_weights_flip_the_vote():
    from benchmark.core.metrics import ensemble_accuracy, ensemble_predict

    # image 0 (label 1): a and b say (0.8, 0.2), c says (0.05, 0.95). Plain averaging picks
    # class 0 (1.65 vs 1.35); MLL's weights 1/H: H(0.8, 0.2) = 0.721928 bits -> w = 1.385180,
    # H(0.05, 0.95) = 0.286397 -> w = 3.491663: class 0 = 2 * 1.108144 + 0.174583 = 2.390871,
    # class 1 = 2 * 0.277036 + 3.317080 = 3.871152 -> class 1. Image 1 (label 0): all (0.9, 0.1).
    a = b = _log((0.8, 0.2), (0.9, 0.1))
    c = _log((0.05, 0.95), (0.9, 0.1))
    labels = np.array([1, 0])
    assert ensemble_predict([a, b, c]).tolist() == [1, 0]
    assert ensemble_accuracy([a, b, c], labels) == 1.0
    plain = np.argmax(sum(np.exp(x) for x in (a, b, c)), axis=1)
    assert plain.tolist() == [0, 0]  # what unweighted averaging would say
    # per-class member sets (MLL's general form): c not in S_1 -> image 0 goes to class 0
    members = np.array([[1, 1], [1, 1], [1, 0]], dtype=bool)
    assert ensemble_predict([a, b, c], members).tolist() == [0, 0]
    assert ensemble_accuracy([a, b, c], labels, members) == 0.5
    # a shift of a model's logits changes nothing (the packs store rows shifted to max 0)
    assert ensemble_predict([a + 7.0, b - 3.0, c]).tolist() == [1, 0]


def test_ensemble_one_hot_member_and_top_k_of_a_ranking():
    from benchmark.core.metrics import ensemble_predict, top_k_ensemble_accuracy

    sure = np.array([[0.0, -1000.0]])  # p = (1, 0): entropy 0, floored, no NaN
    unsure = _log((0.4, 0.6))
    assert ensemble_predict([sure, unsure]).tolist() == [0]
    logits = {"a": _log((0.8, 0.2)), "b": _log((0.8, 0.2)), "c": _log((0.05, 0.95)),
              "d": np.array([[0.0, -1000.0]])}
    labels = np.array([1])
    # top 3 of the ranking: c, b, a (d ranked last): the weighted vote is class 1 (above)
    scores = pd.Series([2.0, 3.0, 4.0, 1.0], index=["a", "b", "c", "d"])
    assert top_k_ensemble_accuracy(scores, logits.__getitem__, labels) == 1.0
    # d in the top 3 (a confident wrong member) outvotes c
    scores = pd.Series([1.0, 3.0, 4.0, 5.0], index=["a", "b", "c", "d"])
    assert top_k_ensemble_accuracy(scores, logits.__getitem__, labels) == 0.0
    with pytest.raises(ValueError, match="members must be"):
        ensemble_predict([sure], np.ones((2, 2), bool))


def test_outcome_frame_shows_ens_beside_acc1_only_when_present():
    from benchmark.report.leaderboard import outcome_frame

    rows = [("a", "p", 0, t, "acc", 1, 0.5) for t in ("x", "y")]
    frame, note = outcome_frame(_scores(rows), columns=[("acc", 1), ("regret", 1)])
    assert "ens@3" not in frame.columns and "ens@3" not in note
    rows += [("a", "p", 0, "x", "ens", 3, 0.7), ("a", "p", 0, "y", "ens", 3, 0.9)]
    frame, note = outcome_frame(_scores(rows), columns=[("acc", 1), ("regret", 1)])
    assert list(frame.columns[:3]) == ["method", "acc@1", "ens@3"]
    assert frame["ens@3"].item() == "0.800 ± 0.000"
    assert "entropy-weighted" in note and "2 of 2 targets" in note


GT_MODELS = ["RN50:openai", "ViT-B-32:openai", "ViT-B-16:openai", "ViT-L-14:openai"]
GT_DATASETS = ["pcam", "mnist", "renderedsst2"]


def _write_gt_packs(store, logits_too: bool = True, n: int = 24):
    """Ground-truth records (extractor version 2) with random logits, as the command writes."""
    from benchmark.features.store import Extractor

    ext = Extractor("ground-truth", "2", {"per_image": "test"})
    rng = np.random.default_rng(0)
    classes = {"pcam": 2, "mnist": 10, "renderedsst2": 2, "imagenet1k": 5}
    out = {}
    for m in GT_MODELS:
        for d, c in classes.items():
            labels = np.repeat(np.arange(c), -(-n // c))[:n]
            raw = rng.normal(0, 3, (n, c)) + 2.0 * np.eye(c)[labels] * rng.uniform(0, 2)
            logits = (raw - raw.max(axis=1, keepdims=True)).astype(np.float16)
            pred = raw.argmax(axis=1)
            arrays = {"acc1": np.asarray(float((pred == labels).mean())),
                      "n_images": np.asarray(n), "labels": labels.astype(np.int32),
                      "pred": pred.astype(np.int32)}
            if logits_too:
                arrays["logits"] = logits
            store.write("ground-truth", m, d, arrays, ext, {"n_images": n})
            out[(m, d)] = (labels, logits.astype(float))
    return out


def _packs_harness(tmp_path, data, store):
    import json

    from benchmark.core.harness import Harness
    from benchmark.core.protocol import load_protocol_file

    toml = tmp_path / "mine.toml"
    toml.write_text(f'name = "mine"\ndescription = "packs only"\nzoo = {json.dumps(GT_MODELS)}\n'
                    f'datasets = {json.dumps(GT_DATASETS)}\ngt_sources = ["packs"]\nseeds = 2\n')
    return Harness.from_data(load_protocol_file(toml), data, store)


def test_harness_reports_ens3_from_the_packs_predictions(tmp_path, data):
    from benchmark.core.harness import resolve_methods
    from benchmark.core.metrics import top_k_ensemble_accuracy
    from benchmark.features.store import FeatureStore

    store = FeatureStore(tmp_path / "f")
    packs = _write_gt_packs(store)
    res = _packs_harness(tmp_path, data, store).run(resolve_methods(["inb", "random"]),
                                                    progress=False)
    ens = res.scores[res.scores.metric == "ens"]
    assert set(ens["k"]) == {3} and len(ens) == 2 * 2 * len(GT_DATASETS)  # methods x seeds x t
    for (method, seed, t), v in ens.set_index(["method", "seed", "target"])["value"].items():
        p = res.predictions
        s = p[(p.method == method) & (p.seed == seed) & (p.target == t)].set_index("model")
        want = top_k_ensemble_accuracy(s["score"], lambda m, t=t: packs[(m, t)][1],
                                       packs[(GT_MODELS[0], t)][0])
        assert v == pytest.approx(want)


def test_old_packs_without_predictions_run_without_ens3_and_say_why(tmp_path, data, caplog):
    from benchmark.core.harness import resolve_methods
    from benchmark.data.groundtruth import pack_predictions
    from benchmark.features.store import FeaturePackError, FeatureStore

    store = FeatureStore(tmp_path / "f")
    _write_gt_packs(store, logits_too=False)
    with caplog.at_level("WARNING"):
        res = _packs_harness(tmp_path, data, store).run(resolve_methods(["inb"]), progress=False)
    assert not (res.scores.metric == "ens").any() and (res.scores.metric == "acc").any()
    assert "ens@3 (top-3 ensemble) not computed on 3 target(s)" in caplog.text
    with pytest.raises(FeaturePackError, match=r"no per-image predictions .* re-extract it: "
                       r"python -m benchmark extract ground-truth --models RN50:openai "
                       r"--datasets pcam"):
        pack_predictions(store, "RN50:openai", "pcam")
