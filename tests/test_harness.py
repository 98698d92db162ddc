"""Harness, views and leakage: what a selector can and cannot see; determinism; baselines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import methods
from benchmark.core.check import check_selector, mock_universe
from benchmark.core.harness import Harness, MissingFeaturesError, resolve_methods
from benchmark.core.metrics import MetricConfig, ndcg_at_k
from benchmark.core.protocol import get_protocol
from benchmark.core.views import LeakageError, TargetView, TrainView
from benchmark.features.kinds import LoadContext
from benchmark.features.store import Extractor, FeaturePackError, FeatureStore
from methods.base import Selector


@pytest.fixture(scope="module")
def lovm_harness(data, protocol_data):
    from benchmark.data.catalog import Catalog

    pdata = protocol_data("lovm")
    cat = Catalog(data)
    infos = {d: cat.info(d) for d in pdata.protocol.datasets}
    return Harness(pdata, infos, LoadContext(data, FeatureStore("/nonexistent")))


def test_target_view_has_no_accuracy_field():
    fields = {f.name for f in dataclasses.fields(TargetView)}
    assert fields == {"protocol", "seed", "imagenet", "features", "dataset", "candidates"}
    assert not hasattr(TargetView, "accuracy") and not hasattr(TargetView, "ranks")


def test_train_view_holds_sources_only(lovm_harness):
    train = lovm_harness.train_view("cars", seed=0)
    assert "cars" not in train.source_ids
    assert "cars" not in set(train.ground_truth.table["dataset"])
    assert "cars" not in train.accuracy.columns and "cars" not in train.ranks.columns
    assert len(train.source_ids) == 21


def test_train_ranks_are_average_ranks_among_models_with_cells(lovm_harness):
    train = lovm_harness.train_view("cars", seed=0)
    col = train.accuracy["dtd"]
    ranks = train.ranks["dtd"]
    best = col.idxmax()
    assert ranks[best] == 1
    n = len(col)
    assert ranks.sum() == n * (n + 1) / 2  # average ranks preserve the total
    for a in col.index:  # better accuracy <=> better (smaller) rank; ties share one rank
        for b in col.index:
            assert (col[a] > col[b]) == (ranks[a] < ranks[b])
    assert (ranks == 17.5).sum() == 2  # LOVM's dtd column has one tie (two equal accuracies)


def test_per_run_caches_equal_what_each_view_computes(lovm_harness):
    """The harness's shortcuts (speed, issue 15) change nothing: a fold's source ground truth is
    ``restrict(datasets=sources)``, its ranks (values and memory layout) what the view would
    compute from its own ground truth, and a target view's dense table holds target parts."""
    h = lovm_harness
    for target in ("cars", "dtd"):
        train = h.train_view(target, seed=0)
        sources = list(train.source_ids)
        want = h.pdata.targets_gt.restrict(datasets=sources)
        pd.testing.assert_frame_equal(train.ground_truth.table, want.table, check_exact=True)
        pd.testing.assert_frame_equal(train.ground_truth.matrix, want.matrix, check_exact=True)
        own = TrainView.rank_columns(train.ground_truth.matrix.reindex(
            index=list(train.models), columns=sources))
        pd.testing.assert_frame_equal(train.ranks, own, check_exact=True)
        got, ref = train.ranks.to_numpy(), own.to_numpy()
        assert got.strides == ref.strides and got.tobytes() == ref.tobytes()
        assert train.ranks is not h.train_view(target, seed=0).ranks  # a fresh copy per view
    pdata, infos = mock_universe()
    records = {(m, d): _record(m, d) for m in pdata.protocol.zoo for d in pdata.protocol.datasets}
    hm = Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")),
                 features={"conductance": records})
    view = hm.target_view("mock0", 0, pdata.candidates("mock0"), ("conductance",))
    fv = view.feature("conductance")
    assert {d for _, d in fv.dense._records} == {"mock0"}
    assert all("image_ids" not in r.meta for r in fv.dense._records.values())


def _record(model: str, dataset: str):
    from benchmark.features.store import Record

    return Record.make("conductance", model, dataset, {"x": np.asarray(1.0)},
                       {"image_ids": [f"{dataset}/cls/0.png"]})


def test_feature_view_refuses_other_datasets():
    pdata, infos = mock_universe()
    h = Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")), features={
        "conductance": __import__("benchmark.features.kinds", fromlist=["KINDS"]).KINDS[
            "conductance"].mock(list(pdata.protocol.zoo), list(pdata.protocol.datasets),
                                np.random.default_rng(0))})
    target = h.target_view("mock0", 0, pdata.candidates("mock0"), ("conductance",))
    m = pdata.protocol.zoo[0]
    assert target.feature("conductance").get(m, "mock0")["values"].ndim == 2
    with pytest.raises(LeakageError):
        target.feature("conductance").get(m, "mock1")
    train = h.train_view("mock0", 0, ("conductance",))
    with pytest.raises(LeakageError):
        train.feature("conductance").get(m, "mock0")
    with pytest.raises(LeakageError, match="not declared"):
        train.feature("text-features")
    arr = train.feature("conductance").get(m, "mock1")["values"]
    with pytest.raises(ValueError):
        arr[0, 0] = 1.0  # read-only


@pytest.mark.parametrize("name", sorted(methods.REGISTRY))
def test_every_registered_method_passes_the_conformance_check(name):
    failures = [r for r in check_selector(name) if not r.passed]
    assert not failures, failures


class _FitReturnsNone(Selector):
    name = "bad-fit"

    def fit(self, train):
        return None

    def score(self, target):
        return pd.Series(0.0, index=list(target.candidates))


class _ExtraModel(Selector):
    name = "bad-index"

    def score(self, target):
        return pd.Series(0.0, index=[*target.candidates, "Not:a-candidate"])


class _Undeclared(Selector):
    name = "undeclared-randomness"
    _calls = 0

    def score(self, target):
        rng = np.random.default_rng(target.seed)  # depends on the seed, yet not `stochastic`
        return pd.Series(rng.random(len(target.candidates)), index=list(target.candidates))


class _Oracle(Selector):
    """Cheats if it can: mean accuracy over every dataset its TrainView holds."""

    name = "oracle"

    def fit(self, train):
        self.mean_ = train.ground_truth.table.groupby("model")["acc1"].mean()
        return self

    def score(self, target):
        return self.mean_.reindex(list(target.candidates)).fillna(0.0)


class _StoresWrongParam(Selector):
    name = "bad-init"

    def __init__(self, alpha=1.0):
        self.alpha = alpha * 2


@pytest.mark.parametrize(
    "cls, check",
    [
        (_FitReturnsNone, "fit returns self"),
        (_ExtraModel, "fit returns self"),
        (_Undeclared, "deterministic"),
    ],
)
def test_conformance_check_catches_broken_selectors(cls, check):
    results = {r.check: r for r in check_selector(cls)}
    failed = [name for name, r in results.items() if not r.passed]
    assert any(check in name for name in failed), results


def test_conformance_check_catches_init_that_transforms_params():
    results = check_selector(_StoresWrongParam, {"alpha": 3.0})
    assert not results[0].passed and "alpha" in results[0].detail


def test_conformance_check_catches_a_harness_that_leaks_target_truth(monkeypatch):
    assert all(r.passed for r in check_selector(_Oracle))  # honest harness: nothing to see

    def leaky_train_view(self, target, seed, kinds=()):
        view = original(self, target, seed, kinds)
        return dataclasses.replace(view, ground_truth=self.pdata.targets_gt)

    original = Harness.train_view
    monkeypatch.setattr(Harness, "train_view", leaky_train_view)
    results = {r.check: r for r in check_selector(_Oracle)}
    assert not results["no leakage: garbage target truth everywhere, same scores (mock)"].passed


def test_inb_scores_are_imagenet_accuracies(lovm_harness):
    (run,) = resolve_methods(["inb"])
    s = lovm_harness.score_fold(run, "dtd", seed=0)
    imagenet = lovm_harness.pdata.imagenet
    pd.testing.assert_series_equal(s, imagenet.reindex(s.index), check_names=False)


def test_avgrank_hand_computed():
    """3 models x 3 datasets: AvgRank on target d2 = minus mean rank over d0, d1."""
    from benchmark.core.protocol import Protocol, ProtocolData
    from benchmark.data.groundtruth import COLUMNS, GroundTruth

    acc = {"d0": [0.9, 0.5, 0.1], "d1": [0.2, 0.8, 0.5], "d2": [0.3, 0.2, 0.1]}
    models = ("A:x", "B:x", "C:x")
    rows = [(m, d, v, "t") for d, vals in acc.items() for m, v in zip(models, vals, strict=True)]
    rows += [(m, "imagenet1k", 0.5, "t") for m in models]
    p = Protocol("toy", "toy", models, ("d0", "d1", "d2"), ("t",), seeds=(0,))
    pdata = ProtocolData(p, GroundTruth(pd.DataFrame(rows, columns=COLUMNS)))
    infos = {d: dataclasses.replace(mock_universe()[1]["mock0"], id=d) for d in p.datasets}
    h = Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")))
    (run,) = resolve_methods(["avgrank"])
    s = h.score_fold(run, "d2", 0)
    # ranks d0: A1 B2 C3; d1: B1 C2 A3 -> mean A 2, B 1.5, C 2.5
    assert s.to_dict() == {"A:x": -2.0, "B:x": -1.5, "C:x": -2.5}


def test_run_is_deterministic_and_repeats_deterministic_methods(lovm_harness):
    runs = resolve_methods(["inb", "random"])
    a = lovm_harness.run(runs, seeds=(0, 1, 2), progress=False)
    b = lovm_harness.run(runs, seeds=(0, 1, 2), progress=False)
    pd.testing.assert_frame_equal(a.scores, b.scores)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    s = a.scores
    assert list(s.columns) == ["method", "protocol", "seed", "target", "metric", "k", "value"]
    from benchmark.core.metrics import ALL_METRICS

    assert set(s["metric"]) == set(ALL_METRICS)  # ranking + outcome (+ noise: lovm sizes known)
    inb = s[s.method == "inb"].pivot_table(index=["target", "metric", "k"], columns="seed",
                                           values="value")
    assert (inb.nunique(axis=1) == 1).all()  # identical across seeds
    rnd = s[(s.method == "random") & (s.metric == "ndcg") & (s.k == 5)]
    assert rnd.groupby("seed")["value"].mean().nunique() > 1  # seeds matter for random
    # metrics are computed by the harness from predictions and ground truth
    row = s[(s.method == "inb") & (s.seed == 0) & (s.target == "dtd") & (s.metric == "ndcg")
            & (s.k == 5)]["value"].item()
    pred = a.predictions[(a.predictions.method == "inb") & (a.predictions.seed == 0)
                         & (a.predictions.target == "dtd")].set_index("model")["score"]
    truth = lovm_harness.pdata.targets_gt.column("dtd").reindex(pred.index)
    assert row == ndcg_at_k(pred, truth, 5)


def test_random_seed_result_does_not_depend_on_other_seeds(lovm_harness):
    (run,) = resolve_methods(["random"])
    a = lovm_harness.run([run], seeds=(3,), progress=False).scores
    b = lovm_harness.run([run], seeds=(1, 3), progress=False).scores
    pd.testing.assert_frame_equal(a.reset_index(drop=True),
                                  b[b.seed == 3].reset_index(drop=True))


class _NeedsConductance(Selector):
    name = "needs-cond"
    requires = ("conductance",)

    def score(self, target):
        cond = target.feature("conductance")
        return pd.Series({m: float(cond.get(m, target.dataset.id)["values"].mean())
                          for m in target.candidates})


def test_missing_features_fail_fast_with_extract_commands(data, tmp_path):
    h = Harness.from_data(get_protocol("lovm").restrict_zoo(["RN50:openai", "RN101:openai"]),
                          data, FeatureStore(tmp_path))
    runs = resolve_methods(["inb", "tests.test_harness:_NeedsConductance"])
    with pytest.raises(MissingFeaturesError) as err:
        h.run(runs, seeds=(0,), progress=False)
    msg = str(err.value)
    assert "conductance for RN50:openai on 22 dataset(s): python -m benchmark extract " \
           "conductance --models RN50:openai --datasets cars," in msg
    assert "RN101:openai" in msg
    res = h.run(runs, seeds=(0,), progress=False, skip_unavailable=True)
    assert set(res.scores["method"]) == {"inb"}
    assert res.skipped == {"needs-cond": "needs conductance features"}


def test_random_init_packs_are_refused_unless_allowed(data, tmp_path):
    store = FeatureStore(tmp_path)
    protocol = get_protocol("lovm").restrict_zoo(["RN50:openai", "RN101:openai", "RN50x4:openai"])
    rng = np.random.default_rng(0)
    for m in protocol.zoo:
        for d in protocol.datasets:
            store.write("conductance", m, d, {"values": rng.random((4, 3))},
                        Extractor("conductance", "test", {"random_init": True}))
    runs = resolve_methods(["tests.test_harness:_NeedsConductance"])
    with pytest.raises(FeaturePackError, match="--random-init"):
        Harness.from_data(protocol, data, store).run(runs, seeds=(0,), progress=False)
    res = Harness.from_data(protocol, data, store, allow_random_init=True).run(
        runs, seeds=(0,), progress=False)
    assert len(res.scores) > 0
    cov = res.coverage
    assert (cov["candidates"] == 3).all()


def test_metric_config_of_protocol_is_used(data):
    p = get_protocol("lovm").with_options(metrics=MetricConfig(ks=(5,), tau_variant="lovm"))
    res = Harness.from_data(p, data).run(resolve_methods(["inb"]), seeds=(0,), progress=False)
    ranking = res.scores[res.scores["metric"].isin(["ndcg", "tau", "recall", "sum"])]
    assert set(ranking["k"]) == {5}
    assert set(res.scores.loc[res.scores["metric"] == "acc", "k"]) == {1, 3, 5}


def test_train_view_rng_is_seeded_and_salted(lovm_harness):
    a = lovm_harness.train_view("cars", 0).rng("x").random()
    assert a == lovm_harness.train_view("dtd", 0).rng("x").random()  # same seed + salt
    assert a != lovm_harness.train_view("cars", 1).rng("x").random()
    assert a != lovm_harness.train_view("cars", 0).rng("y").random()
    t = lovm_harness.target_view("cars", 0, ("RN50:openai",))
    assert t.rng("x").random() != lovm_harness.target_view("dtd", 0, ()).rng("x").random()


def test_train_view_type_is_exported():
    assert TrainView.__name__ == "TrainView"


def test_partial_kind_ranks_covered_models_and_common_candidates_align_methods(data):
    """text-features exist for LOVM's 35 models only: ModelGPT ranks those on dcd48."""
    h = Harness.from_data(get_protocol("dcd48"), data, FeatureStore("/nonexistent"))
    runs = resolve_methods(["modelgpt", "inb"])
    res = h.run(runs, seeds=(0,), progress=False)
    cov = res.coverage.groupby("method")[["candidates", "protocol_candidates"]].sum()
    assert cov.loc["modelgpt"].tolist() == [735, 983]
    assert cov.loc["inb"].tolist() == [983, 983]
    both = h.run(runs, seeds=(0,), progress=False, common_candidates=True)
    cov = both.coverage.groupby("method")["candidates"].sum()
    assert cov.to_dict() == {"inb": 735, "modelgpt": 735}
    preds = both.predictions.groupby(["method", "target"])["model"].apply(frozenset).unstack(0)
    assert (preds["inb"] == preds["modelgpt"]).all()


def test_strict_kind_lists_blip_and_beit3_as_missing(data, tmp_path):
    """BLIP / BEiT-3 load through benchmark.extract.towers: missing records are named."""
    protocol = get_protocol("swab").restrict_zoo(["RN50:openai", "BLIP:retrieval_base_coco"])
    h = Harness.from_data(protocol, data, FeatureStore(tmp_path))
    (run,) = resolve_methods(["tests.test_harness:_NeedsConductance"])
    lines = h.missing_features(run)
    assert len(lines) == 2 and "RN50:openai" in lines[0]
    assert "--models BLIP:retrieval_base_coco" in lines[1]
    relaxed = Harness.from_data(protocol, data, FeatureStore(tmp_path), allow_partial=True)
    assert relaxed.missing_features(run) == [
        "  conductance: no records for any model of swab: python -m benchmark extract "
        "conductance --models MODEL,... --datasets " + ",".join(protocol.datasets)]
