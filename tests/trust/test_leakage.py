"""Leakage paths (issue 18): each malicious selector of tests/trust/leaky.py fails
``benchmark check``; the structural guards hold (target views without label-derived fields,
feature kinds fixed at start-up); honest methods pass (tests/test_harness.py, every registry
entry)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmark.core import check as check_mod
from benchmark.core.check import check_selector, mock_universe
from benchmark.core.harness import Harness
from benchmark.core.protocol import REPRODUCTION_PROTOCOLS
from benchmark.data import perturb
from benchmark.features import kinds
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import Extractor, FeaturePackError, FeatureStore
from tests.trust import leaky

STATE_ORDERS = "no state across folds: folds in two orders, same scores"
STATE_SOURCE = "no state across folds: target's truth garbage as a source, same scores"
OWNED = "no module- or class-level state changed by fit/score"
LEAK_MOCK = "no leakage: garbage target truth everywhere, same scores (mock)"
LEAK_REAL = "no leakage: garbage target truth everywhere, same scores (lovm slice)"
CONTRACT = "fit returns self; score indexed by candidates, finite"


def failed(results) -> dict[str, str]:
    return {r.check: r.detail for r in results if not r.passed}


@pytest.fixture(autouse=True)
def _fresh_state():
    leaky._SEEN.clear()
    leaky._FIRST.clear()
    yield
    leaky._SEEN.clear()
    leaky._FIRST.clear()


# -- state kept across folds ------------------------------------------------------------------
def test_module_level_state_filled_in_fit_fails_the_check():
    bad = failed(check_selector(leaky.ModuleStateOracle, real=False))
    assert {STATE_ORDERS, STATE_SOURCE, OWNED} <= set(bad), bad
    assert "leaky._SEEN" in bad[OWNED]


def test_module_state_is_caught_even_when_filled_before_the_check():
    for _ in range(3):  # _SEEN holds every dataset after the first: still caught each time
        bad = failed(check_selector(leaky.ModuleStateOracle, real=False))
        assert STATE_SOURCE in bad and OWNED in bad, bad  # latest value wins: garbage shows


def test_first_seen_state_fails_the_check():
    bad = failed(check_selector(leaky.FirstSeenOracle, real=False))
    assert STATE_ORDERS in bad and OWNED in bad, bad


def test_fold_order_check_alone_catches_module_state(monkeypatch):
    """The two-orders comparison is a check of its own (not only the state fingerprint)."""
    monkeypatch.setattr(check_mod, "_owned_state", lambda cls: {})
    bad = failed(check_selector(leaky.ModuleStateOracle, real=False))
    assert STATE_ORDERS in bad and OWNED not in bad


# -- re-reading the truth through the library -------------------------------------------------
@pytest.mark.parametrize("cls", [leaky.DataLayerOracle, leaky.TableOracle])
def test_rereading_ground_truth_through_the_data_layer_fails_on_the_real_slice(cls, data):
    results = check_selector(cls, data=data)
    bad = failed(results)
    assert LEAK_MOCK not in bad  # the mock universe's datasets are not in the tables ...
    assert LEAK_REAL in bad, results  # ... the real slice's are, perturbed during the check


def test_the_real_slice_check_needs_the_perturbed_data_layer(monkeypatch, data):
    """Without the data layer's perturbation the re-reading oracle would pass: the check
    relies on it (a test that fails if the hook is removed)."""
    monkeypatch.setattr(perturb, "serve", lambda key, path: path)
    assert LEAK_REAL not in failed(check_selector(leaky.DataLayerOracle, data=data))


def test_reading_ground_truth_packs_fails_the_check(tmp_path, monkeypatch, data):
    store = FeatureStore(tmp_path)
    monkeypatch.setenv("VLMBENCH_FEATURES", str(tmp_path))
    rng = np.random.default_rng(0)
    spec = check_mod.REAL_SLICE
    for m in spec.models:
        for d in spec.datasets:
            store.write("ground-truth", m, d, {"acc1": np.asarray(rng.uniform())},
                        Extractor("ground-truth", "test", {}))
    bad = failed(check_selector(leaky.PackOracle, data=data))
    assert LEAK_REAL in bad, bad


def test_frame_walking_and_gc_scans_fail_the_check(data):
    for cls in (leaky.FrameOracle, leaky.GcOracle):
        bad = failed(check_selector(cls, data=data))
        assert LEAK_MOCK in bad and LEAK_REAL in bad, (cls, bad)


# -- feature kinds ----------------------------------------------------------------------------
def test_feature_kinds_are_fixed_at_start_up():
    with pytest.raises(TypeError):
        kinds.KINDS["accuracies"] = kinds.KINDS["conductance"]  # read-only mapping
    with pytest.raises(ValueError, match="fixed at start-up"):
        kinds.register(dataclasses.replace(kinds.KINDS["conductance"], name="accuracies"))
    assert "accuracies" not in kinds.KINDS


def test_a_module_registering_a_kind_fails_the_check():
    (result,) = check_selector("tests.trust.leaky_kind:KindOracle")
    assert not result.passed and "fixed at start-up" in result.detail
    assert "accuracies" not in kinds.KINDS


# -- label-derived fields of the target -------------------------------------------------------
def _mock_harness(kind: str) -> Harness:
    pdata, infos = mock_universe()
    records = get_kind(kind).mock(list(pdata.protocol.zoo), list(pdata.protocol.datasets),
                                  np.random.default_rng(0), infos=infos)
    return Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")),
                   features={kind: records})


def test_target_views_carry_no_label_derived_field():
    h = _mock_harness("class-stats")
    m = h.protocol.zoo[0]
    target = h.target_view("mock0", 0, h.pdata.candidates("mock0"), ("class-stats",))
    rec = target.feature("class-stats").get(m, "mock0")
    from benchmark.features.class_stats import SOURCE_ONLY_ARRAYS, TARGET_ARRAYS

    assert sorted(rec.arrays) == sorted(TARGET_ARRAYS)
    assert "class_acc" not in rec.arrays and "image_ids" not in rec.meta
    with pytest.raises(FeaturePackError, match="no array 'class_acc'"):
        rec["class_acc"]
    train = h.train_view("mock0", 0, ("class-stats",))  # sources keep everything
    assert set(SOURCE_ONLY_ARRAYS) <= set(train.feature("class-stats").get(m, "mock1").arrays)
    h = _mock_harness("conductance")
    target = h.target_view("mock0", 0, h.pdata.candidates("mock0"), ("conductance",))
    assert "image_ids" not in target.feature("conductance").get(m, "mock0").meta
    train = h.train_view("mock0", 0, ("conductance",))
    assert train.feature("conductance").get(m, "mock1").meta["image_ids"][0].count("/") == 1


def test_perturbation_covers_what_a_target_part_leaves_out():
    from benchmark.features.class_stats import SOURCE_ONLY_ARRAYS

    assert set(perturb.LABEL_ARRAYS["class-stats"]) == set(SOURCE_ONLY_ARRAYS)


@pytest.mark.parametrize("cls", [leaky.ClassAccOracle, leaky.FolderOracle])
def test_label_derived_fields_of_the_target_fail_the_check(cls, monkeypatch):
    bad = failed(check_selector(cls, real=False))
    assert CONTRACT in bad  # the field is not in the target view: the method cannot run
    # and should the split regress, the leakage check sees the field used
    monkeypatch.setattr(kinds.FeatureKind, "target_part", lambda self, record: record)
    bad = failed(check_selector(cls, real=False))
    assert CONTRACT not in bad and LEAK_MOCK in bad, bad


# -- the one exemption ------------------------------------------------------------------------
def test_reproduction_protocols_are_exempt_by_exact_name_only():
    assert frozenset({"lovm-upstream", "swab-upstream"}) == REPRODUCTION_PROTOCOLS
    exempt = check_selector(leaky.FrameOracle, real=False, protocol="lovm-upstream")
    assert not failed(exempt)
    assert {r.check for r in exempt if r.skipped} >= {STATE_ORDERS, LEAK_MOCK, OWNED}
    for name in ("lovm", "lovm-upstream2", "LOVM-UPSTREAM", "my-upstream", None):
        assert LEAK_MOCK in failed(check_selector(leaky.FrameOracle, real=False, protocol=name))


def test_side_information_is_never_a_target_outside_reproduction_protocols(data):
    from benchmark.core.protocol import SIDE_DATASET, get_protocol

    p = get_protocol("lovm")
    p = dataclasses.replace(p, datasets=(*p.datasets[:3], SIDE_DATASET))
    pdata = p.load(data)
    with pytest.raises(ValueError, match="side information"):
        Harness(pdata, {}, LoadContext(data, FeatureStore("/nonexistent")))
    repro = dataclasses.replace(p, name="lovm-upstream")
    Harness(dataclasses.replace(pdata, protocol=repro), {},
            LoadContext(data, FeatureStore("/nonexistent")))
