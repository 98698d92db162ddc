"""Reproduction protocols against what the upstream code itself prints (to 4 decimals).

The expected numbers are in ``tests/fixtures/upstream_outputs.toml``, each with the command
that produced it from LOVM's / SWAB's own code (run outside this repository). The subset
search chooses on the test targets: reproduction protocols only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.core.protocol import (
    LOVM_DATASETS,
    PROTOCOLS,
    REPRODUCTION_PROTOCOLS,
    get_protocol,
    is_reproduction,
)
from benchmark.data._toml import load_toml
from benchmark.studies import upstream_gap as u

FIXTURE = load_toml(Path(__file__).parent / "fixtures" / "upstream_outputs.toml")
FAST = {"INB", "C", "C,INB"}  # subset searches of 1, 3 and 7 fits; the larger ones are slow


@pytest.fixture(scope="module")
def harnesses(data):
    p = get_protocol("lovm-upstream")
    return u._harness(p, data, published_in_score=True), u._harness(p, data)


def _rows(subsets: bool, fast: bool):
    return [pytest.param(r, id=f"{r['scores']}-{'search' if subsets else 'all'}",
                         marks=() if (not fast or r["scores"] in FAST) else pytest.mark.slow)
            for r in FIXTURE["lovm"] if r["subsets"] is subsets]


def test_reproduction_protocols_are_named_marked_and_registered() -> None:
    assert set(REPRODUCTION_PROTOCOLS) <= set(PROTOCOLS)
    for name in REPRODUCTION_PROTOCOLS:
        p = PROTOCOLS[name]
        assert is_reproduction(name) and p.datasets == LOVM_DATASETS
        assert p.metrics.tau_variant == "lovm" and p.metrics.ks == (5,) and p.seeds == (0,)
        assert any("Reproduction protocol" in n for n in p.notes)
        assert "REPRODUCTION" in p.description
    assert not any(is_reproduction(n) for n in ("lovm", "swab", "dcd48", "mll"))


@pytest.mark.parametrize("row", _rows(subsets=False, fast=False))
def test_all_features_match_lovm_code(row, harnesses) -> None:
    h, h_inb = harnesses
    r5, tau = u.evaluate_features(h, u.lovm_features(row["scores"]), h_inb)
    assert "+".join(u.lovm_features(row["scores"])) == row["features"]
    assert (round(r5, 4), round(tau, 4)) == (round(row["acc"], 4), round(row["k_tau"], 4))


@pytest.mark.parametrize("row", _rows(subsets=True, fast=True))
def test_subset_search_matches_lovm_code(row, harnesses) -> None:
    h, h_inb = harnesses
    feats = u.lovm_features(row["scores"])
    if len(feats) == 1:
        r5, tau = u.evaluate_features(h, feats, h_inb)
        chosen = feats
    else:
        s = u.subset_search(h, feats, inb_harness=h_inb)
        assert s["n_subsets"] == 2 ** len(feats) - 1 and s["label"] == u.SELECTED_ON_TEST
        r5, tau, chosen = s["recall"], s["tau"], s["features"]
    assert "+".join(chosen) == row["features"]
    assert (round(r5, 4), round(tau, 4)) == (round(row["acc"], 4), round(row["k_tau"], 4))


def test_swab_upstream_inb_matches_swab_code(data) -> None:
    (row,) = FIXTURE["swab"]
    r5, tau = u._mean_r5_tau(u._harness(get_protocol("swab-upstream"), data), "inb")
    assert (round(r5, 4), round(tau, 4)) == (round(row["acc"], 4), round(row["k_tau"], 4))


def test_test_target_choices_refused_outside_reproduction_protocols(data) -> None:
    clean = u._harness(get_protocol("lovm").with_options(seeds=(0,)), data)
    with pytest.raises(ValueError, match="reproduction protocols"):
        u.subset_search(clean, ("IN-score", "text-f1"))
    with pytest.raises(ValueError, match="reproduction setting"):
        u._harness(get_protocol("lovm"), data, published_in_score=True)


def test_subsets_in_lovm_order() -> None:
    assert u.lovm_features("G,C,INB") == u.LOVM_FEATURE_ORDER
    assert len(u.all_subsets(u.LOVM_FEATURE_ORDER)) == 127
    assert u.all_subsets(("a", "b"))[:3] == [("a",), ("b",), ("a", "b")]


def test_decompose_goes_from_upstream_output_to_clean_protocol(data) -> None:
    from benchmark.core.harness import Harness
    from benchmark.core.metrics import MetricConfig

    rows = u.decompose(data, "C")
    search, full = (next(r for r in FIXTURE["lovm"] if r["scores"] == "C" and r["subsets"] is b)
                    for b in (True, False))
    assert [r["step"].split(" (")[0] for r in rows] == [
        "reproduced", "- subset choice on the test targets",
        "- ImageNet-1k as target and source", "- LOVM's tau"]
    assert round(rows[0]["recall@5"], 4) == round(search["acc"], 4)
    assert round(rows[0]["tau"], 4) == round(search["k_tau"], 4)
    assert u.SELECTED_ON_TEST in rows[0]["features"]
    assert round(rows[1]["tau"], 4) == round(full["k_tau"], 4)
    clean = Harness.from_data(get_protocol("lovm").with_options(
        seeds=(0,), metrics=MetricConfig(ks=(5,))), data)
    assert (rows[-1]["recall@5"], rows[-1]["tau"]) == pytest.approx(
        u.evaluate_features(clean, u.lovm_features("C")), abs=1e-12)
    total = sum(r["d_tau"] for r in rows[1:])
    assert total == pytest.approx(rows[-1]["tau"] - rows[0]["tau"], abs=1e-12)
    assert "selected on the test targets" in u.markdown(rows, "lovm-upstream")
