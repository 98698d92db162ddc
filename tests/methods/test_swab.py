"""SWAB variants (methods/swab/selectors.py): formulas on hand-made cases, the composition with ModelGPT,
the fallback, conformance of every registered variant, and swab-text end to end on LOVM.

Unit tests use a word-lookup embedder (no model); only the end-to-end test loads MiniLM.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

import methods
from benchmark.core.check import check_selector, mock_universe
from benchmark.core.harness import Harness, MethodRun, resolve_methods
from benchmark.features.class_stats import gap_vectors, make_arrays, mock_record
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import FeatureStore, Record
from methods.modelgpt import ModelGPT
from methods.swab.selectors import (
    SWAB,
    ClassRankTransfer,
    RankTransfer,
    SWABText,
    borda,
    gap_text_features,
    normalized_ranks,
    projected_noise,
    split_features,
)
from tests.methods._words import EMB, WORDS, WordEmbedder  # noqa: F401

SWAB_VARIANTS = sorted(n for n, s in methods.REGISTRY.items() if s.target.startswith("methods.swab.selectors:"))


@pytest.fixture(scope="module")
def mock_h() -> Harness:
    pdata, infos = mock_universe()
    zoo, ds = list(pdata.protocol.zoo), list(pdata.protocol.datasets)
    feats = {k: get_kind(k).mock(zoo, ds, np.random.default_rng(3))
             for k in ("text-features", "class-stats")}
    return Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")), features=feats)


def views(h: Harness, cls, target: str, **params):
    run = MethodRun(cls.name, cls, params)
    train = h.train_view(target, 0, cls.requires)
    tv = h.target_view(target, 0, h.candidates(run, target), cls.requires)
    return cls(**params).fit(train), train, tv


# ------------------------------------------------------------------------- pure functions


def test_normalized_ranks_hand_cases():
    np.testing.assert_allclose(normalized_ranks([0.2, 0.9, 0.5]), [0, 1, 0.5])
    np.testing.assert_allclose(normalized_ranks([0.3, 0.3, 0.1]), [0.75, 0.75, 0])  # ties
    got = normalized_ranks([0.4, np.nan, 0.6])
    np.testing.assert_allclose(got[[0, 2]], [0, 1])
    assert np.isnan(got[1])
    assert np.isnan(normalized_ranks([0.4, np.nan])).all()  # one known value: no ranking


def test_borda_hand_computed():
    idx = ["a", "b", "c"]
    r1 = pd.Series([3.0, 2.0, 1.0], index=idx)  # ranks a1 b2 c3
    r2 = pd.Series([1.0, 3.0, 2.0], index=idx)  # ranks a3 b1 c2
    got = borda([r1, r2], [0.5, 0.5])
    # n + 1 - rank = SWAB's n - rank0
    pd.testing.assert_series_equal(got, pd.Series([0.5 * 3 + 0.5 * 1, 0.5 * 2 + 0.5 * 3,
                                                   0.5 * 1 + 0.5 * 2], index=idx))
    tied = borda([pd.Series([1.0, 1.0, 0.0], index=idx)], [1.0])
    np.testing.assert_allclose(tied, [4 - 1.5, 4 - 1.5, 4 - 3])
    np.testing.assert_allclose(borda([r1, r2], [0.7, 0.3]), [0.7 * 3 + 0.3, 0.7 * 2 + 0.9,
                                                             0.7 + 0.6])


def test_split_features():
    assert split_features(("INB", "GAP_C", "GAP_G")) == (("INB", "C", "G"), ("C", "G"))
    assert split_features("INB,C,G") == (("INB", "C", "G"), ())
    with pytest.raises(ValueError, match="twice"):
        split_features(("C", "GAP_C"))
    with pytest.raises(ValueError, match="unknown"):
        split_features(("GAP_X",))


def toy_record(captions, offsets, weights, center=(0.0, 0.0), std=(1.0, 1.0)) -> Record:
    c = len(weights)
    arrays = make_arrays(["a", "b"][:c], np.zeros(c), np.ones(c), np.zeros((c, 2)), [0, 0],
                         [1, 1], weights, captions, offsets, center, std)
    return Record.make("class-stats", "M:x", "toy", arrays)


def test_gap_text_features_hand_values():
    approx = lambda x: pytest.approx(x, abs=1e-3)  # noqa: E731 - captions are stored float16
    w = np.array([[1.0, 0.0], [0.0, 1.0]])
    caps = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # 2 captions of a, 1 of b
    rec = toy_record(caps, [0, 2, 3], w)
    got = gap_text_features(rec, np.zeros((2, 2)), sigma=0.0)
    # z = identity (mean 0, std 1); predictions a, b, b
    f1_a, f1_b = 2 * 1 / (2 + 0 + 1), 2 * 1 / (2 + 1 + 0)
    assert got["text-f1"] == approx((f1_a + f1_b) / 2)
    assert got["text-acc1"] == approx(2 / 3)
    assert got["intraclass_sim"] == approx(0.0)  # w_a . w_b = 0, diagonal zeroed
    assert got["inter_close"] == approx(((1 + 0.6) / 2 + 1) / 2)
    assert got["intra_close"] == approx(((0 + 0.8) / 2 + 0) / 2)
    # a gap of +e1 on class a moves its second caption to (1.6, 0.8): predicted a
    gaps = np.array([[1.0, 0.0], [0.0, 0.0]])
    got = gap_text_features(rec, gaps, sigma=0.0)
    assert got["text-acc1"] == approx(1.0)
    n2 = np.hypot(1.6, 0.8)  # captions are renormalised for closeness, weights are not
    assert got["inter_close"] == approx(((1 + 1.6 / n2) / 2 + 1) / 2)
    # z-scoring uses the caption statistics, and the weights are not renormalised after it
    w2 = np.array([[0.8, 0.6], [0.6, 0.8]])
    rec = toy_record(caps, [0, 2, 3], w2, center=(0.1, 0.2), std=(0.5, 2.0))
    zw = (w2 - [0.1, 0.2]) / [0.5, 2.0]
    got = gap_text_features(rec, np.zeros((2, 2)), sigma=0.0)
    assert got["intraclass_sim"] == approx(zw[0] @ zw[1])  # (1.4, .2).(1, .3), not a cosine


@pytest.mark.parametrize("shape", [(3, 5), (6, 4)])  # C <= D: drawn in C dims; C > D: in D
def test_projected_noise_has_the_covariance_of_per_coordinate_noise(shape):
    zw = np.random.default_rng(1).normal(size=shape)
    x = projected_noise(zw, [100_000], ["a"], 0.5, seed=0)
    target = 0.25 * zw @ zw.T  # rows of sigma eps zw^T with eps ~ N(0, I_D)
    np.testing.assert_allclose(np.cov(x.T), target, atol=0.03 * np.abs(target).max())
    np.testing.assert_array_equal(x, projected_noise(zw, [100_000], ["a"], 0.5, seed=0))
    assert projected_noise(zw, [10], ["a"], 0.0, seed=0) == 0.0


def test_gap_vectors_formula():
    rec = mock_record("M:x", "toy", ("a", "b", "c"), np.random.default_rng(0), dim=4)
    z_img = (rec["image_mean"] - rec["image_center"]) / rec["image_std"]
    z_txt = (rec["text_weights"] - rec["text_center"]) / rec["text_std"]
    np.testing.assert_allclose(gap_vectors(rec), z_img - z_txt, rtol=1e-5)


# ------------------------------------------------------------------- selectors, mock universe


def test_dataset_level_ranking2_is_weighted_average_of_source_ranks(mock_h):
    for target in ("mock0", "mock1", "mock3"):
        sel, train, tv = views(mock_h, RankTransfer, target, embedder=EMB)
        masses = sel.transport(tv).mass_per_source()
        # identical names only: mock0 (cat, dog, car) gets dog, car from mock1 and car from mock2
        if target == "mock0":
            assert set(masses) == {"mock1", "mock2"}
        cands = list(tv.candidates)
        got = sel.score(tv)
        for m in cands:
            num = den = 0.0
            for s, w in masses.items():
                col = train.accuracy[s].reindex(cands).dropna()
                if m in col.index:
                    r = (rankdata(col.to_numpy())[list(col.index).index(m)] - 1) / (len(col) - 1)
                    num, den = num + w * r, den + w
            assert got[m] == pytest.approx(num / den)


def test_swab_text_is_borda_of_modelgpt_and_rank_transfer(mock_h):
    for target in ("mock0", "mock2", "mock4"):
        sel, train, tv = views(mock_h, SWABText, target, embedder=EMB)
        r1 = ModelGPT().fit(train).score(tv)
        r2 = RankTransfer(embedder=EMB).fit(train).score(tv)  # ranking 2 needs no features
        pd.testing.assert_series_equal(sel.score(tv), borda([r1, r2], [0.5, 0.5]))


def test_nothing_transported_falls_back_to_ranking1_alone(mock_h):
    sel, train, tv = views(mock_h, SWABText, "mock3", embedder=EMB, thres=1.0)
    assert sel.transport(tv) is None
    r1 = ModelGPT().fit(train).score(tv)
    pd.testing.assert_series_equal(sel.score(tv), borda([r1], [1.0]))
    ot_only, _, tv2 = views(mock_h, RankTransfer, "mock3", embedder=EMB, thres=1.0)
    assert (ot_only.score(tv2) == 0).all()  # SWAB's code: no information, all tied
    full, train, tv3 = views(mock_h, SWAB, "mock3", embedder=EMB, thres=1.0)
    plain = ModelGPT(features=("INB", "C", "G")).fit(train).score(tv3)  # uncorrected features
    pd.testing.assert_series_equal(full.score(tv3), borda([plain], [1.0]))


def test_class_level_ranking2_transports_class_accuracy_ranks(mock_h):
    sel, train, tv = views(mock_h, SWAB, "mock1", embedder=EMB, weights=(0.0, 1.0))
    t = sel.transport(tv)
    stats = train.feature("class-stats")
    cands = list(tv.candidates)
    acc = np.array([[stats.get(m, d)["class_acc"][c] for d, c in zip(t.datasets, t.classes, strict=True)]
                    for m in cands])
    ranks = np.stack([(rankdata(col) - 1) / (len(col) - 1) for col in acc.T], axis=1)
    expected = (ranks @ t.row_mass) / t.row_mass.sum()
    pd.testing.assert_series_equal(sel.score(tv), borda([pd.Series(expected, index=cands)], [1.0]))


def test_class_level_ot_weighted_rank_alone(mock_h):
    # swab-ot: ranking 2 at class level, no ModelGPT; hand formula as above, unmerged
    sel, train, tv = views(mock_h, ClassRankTransfer, "mock1", embedder=EMB)
    assert ClassRankTransfer.requires == ("class-stats",)
    t = sel.transport(tv)
    stats = train.feature("class-stats")
    cands = list(tv.candidates)
    acc = np.array([[stats.get(m, d)["class_acc"][c] for d, c in zip(t.datasets, t.classes, strict=True)]
                    for m in cands])
    ranks = np.stack([(rankdata(col) - 1) / (len(col) - 1) for col in acc.T], axis=1)
    np.testing.assert_allclose(sel.score(tv).to_numpy(), (ranks @ t.row_mass) / t.row_mass.sum())
    none, _, tv0 = views(mock_h, ClassRankTransfer, "mock3", embedder=EMB, thres=1.0)
    assert none.transport(tv0) is None and (none.score(tv0) == 0).all()  # nothing transported: no information


def test_swab_m_without_inb_never_reads_imagenet(mock_h):
    sel, train, tv = views(mock_h, SWAB, "mock2", embedder=EMB, weights=(1.0, 0.0),
                           features=("GAP_C", "GAP_G"))
    assert "IN-score" not in sel.ranking1_.columns_
    a = sel.score(tv)
    tv2 = dataclasses.replace(tv, imagenet=tv.imagenet * 0 + 0.5)
    pd.testing.assert_series_equal(a, sel.score(tv2))
    assert methods.make("swab-m-noinb").get_params()["features"] == ("GAP_C", "GAP_G")


def test_target_gaps_are_transported_from_the_sources(mock_h, monkeypatch):
    import methods.swab.selectors as swab

    calls = []

    def spy(record, gaps, sigma=0.15, seed=0):
        calls.append((record.model, record.dataset, np.array(gaps)))
        return real(record, gaps, sigma=sigma, seed=seed)

    real = swab.gap_text_features
    monkeypatch.setattr(swab, "gap_text_features", spy)
    sel, train, tv = views(mock_h, SWAB, "mock2", embedder=EMB)
    assert {d for _, d, _ in calls} == set(train.source_ids)  # training rows: corrected too
    calls.clear()
    sel.score(tv)
    assert {d for _, d, _ in calls} == {"mock2"} and len(calls) == len(tv.candidates)
    plan = sel.transport(tv, m=1.0)  # SWAB transports gaps with m = 1
    stats = train.feature("class-stats")
    for model, _, gaps in calls:
        rows = zip(plan.datasets, plan.classes, strict=True)
        g = np.stack([gap_vectors(stats.get(model, d))[c] for d, c in rows])
        np.testing.assert_allclose(gaps, plan.n_target * plan.plan.T @ g)


def test_gap_correction_changes_ranking1_and_parameters_are_checked(mock_h):
    full, _, tv = views(mock_h, SWAB, "mock2", embedder=EMB, weights=(1.0, 0.0))
    plain, _, _ = views(mock_h, SWAB, "mock2", embedder=EMB, weights=(1.0, 0.0),
                        features=("INB", "C", "G"))
    assert not np.allclose(full.score(tv), plain.score(tv))
    train = mock_h.train_view("mock2", 0, SWAB.requires)
    for bad, match in [({"m": 0.0}, "m must"), ({"gap_m": 2.0}, "gap_m must"),
                       ({"weights": (0, 0)}, "weights"), ({"thres": 1.5}, "thres"),
                       ({"k": 0}, "k must")]:
        with pytest.raises(ValueError, match=match):
            SWAB(embedder=EMB, **bad).fit(train)


# ------------------------------------------------------------------------------- registry


def test_registered_variants():
    assert set(SWAB_VARIANTS) >= {"swab", "swab-text", "swab-ot-text", "swab-full", "swab-c",
                                  "swab-m", "swab-m-noinb", "swab-ot"}
    reg = methods.REGISTRY
    assert reg["swab"].target == reg["swab-text"].target
    assert dict(reg["swab"].params) == dict(reg["swab-text"].params)
    assert reg["swab"].summary.startswith("alias of swab-text")
    assert "swab-full" in reg["swab"].summary
    assert methods.make("swab-c").get_params()["features"] == ("INB", "C", "G")
    assert methods.make("swab-m").get_params()["weights"] == (1.0, 0.0)
    assert methods.make("swab-full").get_params()["features"] == ("INB", "GAP_C", "GAP_G")
    for name in ("swab-full", "swab-c", "swab-m"):
        assert "class-stats" in methods.resolve(name)[1].requires
    assert methods.resolve("swab-ot-text")[1].requires == ()
    assert methods.resolve("swab-ot")[1].requires == ("class-stats",)


@pytest.mark.parametrize("name", SWAB_VARIANTS)
def test_conformance(name):
    failed = [r for r in check_selector(name) if not r.passed]
    assert not failed, failed


# ------------------------------------------------------------------ end to end, real files


def test_swab_text_end_to_end_on_lovm(data):
    """Real MiniLM on LOVM's class names, LOVM's published features, 6 models x 6 datasets."""
    from benchmark.core.protocol import get_protocol
    from benchmark.data.zoo import LOVM_35

    datasets = ("stl10", "voc2007", "pets", "mnist", "svhn", "eurosat")
    p = get_protocol("lovm").with_options(zoo=LOVM_35[:6], datasets=datasets, seeds=(0,))
    h = Harness.from_data(p, data)
    runs = resolve_methods(["swab-text", "swab-ot-text", "modelgpt"])
    result = h.run(runs, progress=False)
    assert set(result.scores["target"]) == set(datasets)
    assert (result.coverage["candidates"] == 6).all()
    preds = result.predictions.pivot_table(index=["target", "model"], columns="method",
                                           values="score")
    for t in datasets:
        p_t = preds.loc[t]
        swab_order = rankdata(-p_t["swab-text"])
        expected = borda([p_t["modelgpt"], p_t["swab-ot-text"]], [0.5, 0.5])
        np.testing.assert_allclose(swab_order, rankdata(-expected))
    from benchmark.features.embedders import TextEmbeddingCache, get_embedder

    # every dataset's class texts are cached (whichever label first stored them: the cache is
    # keyed by content, so another test may have embedded the same texts before)
    cache, emb = TextEmbeddingCache(), get_embedder("minilm")
    before = len(cache.manifest(emb)["entries"])
    h.run(runs, progress=False)
    assert len(cache.manifest(emb)["entries"]) == before  # second run: all hits, nothing new
    assert before >= len(datasets)
