"""The few-image selectors (methods/transferability.py) on a hand-made pack, their feature
kinds (labels only in the labelled one), the conformance check, and the leaderboard's mark."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.core.check import check_selector, mock_universe
from benchmark.core.harness import Harness, resolve_methods
from benchmark.features.few_images import LABELLED, UNLABELLED, make_arrays
from benchmark.features.kinds import LoadContext, get_kind, labelled_target
from benchmark.features.store import Extractor, FeatureStore, Record

NAMES = ["zs-maxprob", "zs-entropy", "leep", "nce", "h-score", "h-score-shrunk", "logme"]
TARGET = "mock0"  # classes cat, dog, car

# two models, four images of the target: A is right and confident, B wrong and unsure
LOGITS = {
    "Mock-0:v0": [[math.log(3), 0, 0], [0, math.log(3), 0], [0, 0, math.log(3)], [math.log(3), 0, 0]],
    "Mock-1:v1": [[0, 0, 0], [0, 0, 0], [math.log(2), 0, 0], [0, math.log(2), 0]],
}
LABELS = [0, 1, 2, 0]
EMB = {"Mock-0:v0": [[1, 0], [0, 1], [-1, 0], [1, 0.1]],
       "Mock-1:v1": [[1, 0], [1, 0.1], [1, 0.2], [1, 0.3]]}


def _pack(tmp_path) -> FeatureStore:
    """A hand-made few-images pack: the two models above on every mock dataset."""
    store = FeatureStore(tmp_path)
    pdata, infos = mock_universe()
    for m in pdata.protocol.zoo:
        ex = Extractor("few-images", "1", {"images_per_dataset": 4, "seed": 0,
                                           "random_init": False})
        for d in pdata.protocol.datasets:
            c = len(infos[d].classnames)
            key = m if m in LOGITS else "Mock-1:v1"
            logits = np.zeros((4, c))
            logits[:, :3] = np.asarray(LOGITS[key])[:, :3] if c >= 3 else 0
            store.write("few-images", m, d,
                        make_arrays(EMB[key], logits, np.minimum(LABELS, c - 1)), ex,
                        meta={"image_ids": [f"x/{i}.png" for i in range(4)], "n_images": 4})
    return store


@pytest.fixture
def harness(tmp_path):
    pdata, infos = mock_universe()
    return Harness(pdata, infos, LoadContext(None, _pack(tmp_path)))


def _scores(h, name):
    run = resolve_methods([name])[0]
    return h.score_fold(run, TARGET, 0, candidates=list(LOGITS))


def test_each_selector_on_a_hand_made_pack(harness):
    from methods.transferability import h_score, h_score_shrunk, logme

    s = _scores(harness, "zs-maxprob")  # A: 3/5 per image; B: 1/3, 1/3, 1/2, 1/2
    assert s["Mock-0:v0"] == pytest.approx(0.6) and s["Mock-1:v1"] == pytest.approx(5 / 12)
    ent_a = (0.6 * math.log(0.6) + 2 * 0.2 * math.log(0.2))
    ent_b = (2 * math.log(1 / 3) + 2 * (0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))) / 4
    s = _scores(harness, "zs-entropy")
    assert s["Mock-0:v0"] == pytest.approx(ent_a) and s["Mock-1:v1"] == pytest.approx(ent_b)
    s = _scores(harness, "nce")  # A's argmax = the labels: H(Y|Z) = 0
    assert s["Mock-0:v0"] == pytest.approx(0.0)
    # B: z = 0, 0, 0, 1 (ties -> first); y = 0, 1, 2, 0: H(Y|Z=0) = log 3 on 3/4 of the mass
    assert s["Mock-1:v1"] == pytest.approx(-0.75 * math.log(3))
    s = _scores(harness, "leep")
    assert s["Mock-0:v0"] > s["Mock-1:v1"]
    y = np.asarray(LABELS)
    for name, fn in [("h-score", h_score), ("h-score-shrunk", h_score_shrunk), ("logme", logme)]:
        s = _scores(harness, name)
        for m in LOGITS:
            assert s[m] == pytest.approx(fn(np.asarray(EMB[m], np.float32), y), rel=1e-5)
    # H-score with n - 1 <= d is (#classes - 1) for any model (methods/transferability.py);
    # the shrunk H-score is not
    f = np.random.default_rng(0).normal(size=(5, 8))
    assert h_score(f, [0, 1, 2, 0, 1]) == pytest.approx(2.0, abs=1e-6)
    assert h_score(2 * f + 1, [0, 1, 2, 0, 1]) == pytest.approx(2.0, abs=1e-6)
    assert h_score_shrunk(f, [0, 1, 2, 0, 1]) < 2.0


def test_labels_reach_only_the_labelled_kind(harness):
    h = harness
    for name, kind, has_labels in [("zs-maxprob", UNLABELLED, False), ("leep", LABELLED, True)]:
        run = resolve_methods([name])[0]
        assert run.cls.requires == (kind,)
        t = h.target_view(TARGET, 0, list(LOGITS), run.cls.requires)
        rec = t.feature(kind).get("Mock-0:v0", TARGET)
        assert ("labels" in rec.arrays) is has_labels and "image_ids" not in rec.meta
        src = h.train_view(TARGET, 0, run.cls.requires).feature(kind).get("Mock-0:v0", "mock1")
        assert ("labels" in src.arrays) is has_labels  # the unlabelled kind: nowhere
    assert labelled_target(["few-labelled-images"]) and not labelled_target(["few-images"])
    assert get_kind(LABELLED).target_labels and not get_kind(UNLABELLED).target_labels
    assert "LABELLED" in resolve_methods(["logme"])[0].cls.target_needs
    assert "no labels" in resolve_methods(["zs-entropy"])[0].cls.target_needs


@pytest.mark.parametrize("name", NAMES)
def test_conformance_and_leakage(name):
    bad = [r for r in check_selector(name, real=False) if not r.passed]
    assert not bad, bad


def test_leaderboard_marks_labelled_target_methods():
    from benchmark.report.leaderboard import DDAGGER, Row, _bare, _method_label, labelled_methods

    meta = {"leep": {"methods": {"leep": {"requires": ["few-labelled-images"]}}},
            "zs-maxprob": {"methods": {"zs-maxprob": {"requires": ["few-images"]}}}}
    assert labelled_methods(["leep", "zs-maxprob"], meta) == {"leep"}
    assert labelled_methods(["logme", "nce", "dcd", "inb", "no-such-method"]) == {"logme", "nce"}
    row = Row("leep", "full", "", 1, labelled=True)
    assert _method_label(row) == f"leep {DDAGGER}" and _bare(_method_label(row)) == "leep"


def test_record_shapes_are_validated():
    from benchmark.features.few_images import check_record
    from benchmark.features.store import FeaturePackError

    rec = Record.make(LABELLED, "m", "d", make_arrays(np.ones((2, 3)), np.ones((2, 4)), [0, 5]))
    with pytest.raises(FeaturePackError, match="do not fit"):
        check_record(rec, 3)
    with pytest.raises(FeaturePackError, match="labels"):
        check_record(rec, 4, labelled=True)
