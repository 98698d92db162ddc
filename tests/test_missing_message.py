"""Issue 12, item 7: `run --methods dcd,swab` on dcd48 without packs says, in a few lines, what
is missing, what it costs, the one command that extracts it, how to scale it out and the
minizoo command that runs now; the per-model commands are behind `run --list-missing`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.features import cost

REPO = Path(__file__).resolve().parents[1]
N_RECORDS = 983  # dcd48's published cells on its 21 targets (43 models x 21 + 5 x 16)


@pytest.fixture(scope="module")
def dcd48_error(tmp_path_factory):
    from benchmark.api import evaluate
    from benchmark.core.harness import MissingFeaturesError

    empty = tmp_path_factory.mktemp("no-packs")
    with pytest.raises(MissingFeaturesError) as err:
        evaluate(["dcd", "swab"], "dcd48", features_dir=empty)
    return err.value, empty


def test_the_api_error_is_short_and_says_everything(dcd48_error):
    err, empty = dcd48_error
    lines = str(err).splitlines()
    assert len(lines) <= 12
    assert lines[0] == f"dcd needs features that are not in {empty}:"
    assert re.fullmatch(rf"  conductance: {N_RECORDS} records \(48 models x 21 datasets\) "
                        r"missing, ~4[01] GPU-hours", lines[1])
    text = str(err)
    assert "docs/extraction_cost.md" in text
    assert "python -m benchmark extract all --protocol dcd48 --kinds conductance\n" in text
    assert "--backend ray" in text and "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
        in text and "docs/slurm.md" in text
    assert "python -m benchmark run --protocol minizoo --methods dcd,swab\n" in text
    assert "--list-missing" in text and "--allow-partial" in text
    assert "extract conductance --models" not in text  # no wall
    # the structured parts: every missing record, and the per-model commands
    assert len(err.missing["conductance"]) == N_RECORDS
    assert len(err.listing) == 1 + 48
    assert all(" python -m benchmark extract conductance --models " in ln
               for ln in err.listing[1:])


def test_run_prints_the_same_short_error_and_lists_models_on_request(dcd48_error, tmp_path,
                                                                       capsys):
    err, empty = dcd48_error
    argv = ["run", "--methods", "dcd,swab", "--features-dir", str(empty), "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    out, stderr = capsys.readouterr()
    assert out == "" and stderr == f"error: {err}\n"
    assert len(stderr.splitlines()) <= 12
    assert main([*argv, "--out", str(tmp_path / "b"), "--list-missing"]) == 2
    out, stderr = capsys.readouterr()
    assert out.splitlines() == err.listing and stderr == f"error: {err}\n"
    assert sum("extract conductance --models" in ln for ln in out.splitlines()) == 48


def test_allow_partial_is_unchanged(dcd48_error, tmp_path, capsys):
    """--allow-partial without any record: the one line per kind it always printed."""
    _, empty = dcd48_error
    assert main(["run", "--methods", "dcd,swab", "--features-dir", str(empty), "--allow-partial",
                 "--no-progress", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: dcd needs features that are not in {empty}:"
    assert err[1].startswith("  conductance: no records for any model of dcd48: python -m "
                             "benchmark extract conductance --models MODEL,... --datasets cars,")
    assert err[2].startswith("(make them with the commands above; or pass --allow-partial")
    assert len(err) == 3


def test_several_kinds_sum_up_and_a_restricted_run_names_its_models(data, tmp_path):
    from benchmark.core.harness import Harness, MissingFeaturesError, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.features.store import FeatureStore

    zoo = ["RN50:openai", "ViT-B-32:openai", "ViT-L-14:openai", "BLIP:retrieval_base_coco",
           "convnext_base_w:laion2b_s13b_b82k"]
    h = Harness.from_data(get_protocol("dcd48").restrict_zoo(zoo), data, FeatureStore(tmp_path))
    runs = resolve_methods(["dcd", "swab-full", "inb"])
    with pytest.raises(MissingFeaturesError) as err:
        h.run(runs, seeds=(0,), progress=False)
    text = str(err.value)
    lines = text.splitlines()
    assert len(lines) <= 12 and lines[0].startswith("dcd, swab-full need features")
    assert "  class-stats: 105 records (5 models x 21 datasets) missing" in text
    assert "  all 2 kinds: ~2.3 GPU-hours" in text  # ViT-L-14 is most of it
    assert (f"extract all --protocol dcd48 --kinds conductance,class-stats --models "
            f"{','.join(h.protocol.zoo)}\n") in text
    assert "--methods dcd,swab-full,inb\n" in text
    # docs/extraction_cost.md: conductance .06 + .05 + .92 + .26 + .16, class-stats .04 + .03
    # + .51 + .16 + .13 (RN50, ViT-B-32, ViT-L-14, BLIP-base, convnext_base_w)
    got = sum(cost.gpu_hours(k, err.value.missing[k])[0] for k in ("conductance", "class-stats"))
    assert got == pytest.approx(2.32)


def test_a_pack_or_two_missing_are_still_named_one_by_one(data, tmp_path):
    """Small gaps keep their exact commands inline (tests/test_harness.py relies on it)."""
    from benchmark.core.harness import Harness, MissingFeaturesError, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.features.store import FeatureStore

    p = get_protocol("dcd48").restrict_zoo(["RN50:openai", "RN101:openai"])
    h = Harness.from_data(p, data, FeatureStore(tmp_path))
    with pytest.raises(MissingFeaturesError) as err:
        h.run(resolve_methods(["dcd"]), seeds=(0,), progress=False)
    assert str(err.value).splitlines()[1:3] == err.value.listing[1:3]


# -- the cost estimate -------------------------------------------------------------------------
def test_cost_is_a_lookup_per_model_and_record():
    assert cost.architecture("BLIP:retrieval_large_f30k") == "BLIP-large"
    assert cost.architecture("ViT-B-32:openai") == "ViT-B-32"
    one = [("ViT-L-14:openai", f"d{i}") for i in range(21)]
    assert cost.gpu_hours("conductance", one) == (pytest.approx(0.92), [])
    assert cost.gpu_hours("conductance", one[:7])[0] == pytest.approx(0.92 / 3)
    # model labels: one pack per model, whatever the number of targets
    assert cost.gpu_hours("model-labels", one)[0] == pytest.approx(0.23)
    assert cost.gpu_hours("conductance", [("mz-vit-a:minizoo", "x")]) == (0.0, ["mz-vit-a:minizoo"])


def test_cost_table_is_the_one_of_docs_extraction_cost_md():
    doc = {}
    for line in (REPO / "docs" / "extraction_cost.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and re.fullmatch(r"[\d.]+", cells[3]) and not cells[0].startswith("*"):
            doc[cells[0]] = [float(c) for c in cells[4:9]]
    table = cost.table()
    assert set(doc) == set(table) and len(doc) >= 27
    for arch, values in doc.items():
        assert list(table[arch].values()) == values, arch


# -- extract all -------------------------------------------------------------------------------
def test_extract_all_selects_kinds_from_methods_or_kinds():
    import argparse

    from benchmark.cli.extract import selected_kinds
    from benchmark.errors import UsageError

    def kinds(**kw):
        return selected_kinds(argparse.Namespace(**{"kinds": None, "methods": None, **kw}))

    assert kinds() == ["conductance", "text-features", "model-labels", "class-stats",
                       "few-images"]
    assert kinds(methods="leep,zs-maxprob") == ["few-images"]  # two kinds, one pack
    assert kinds(methods="dcd,swab-full,dcd") == ["conductance", "text-features", "class-stats"]
    assert kinds(kinds="class-stats,ground-truth") == ["class-stats", "ground-truth"]
    with pytest.raises(UsageError, match="unknown kind 'cond'"):
        kinds(kinds="cond")
    with pytest.raises(UsageError, match="need no extracted features"):
        kinds(methods="inb,random")


def test_extract_all_dry_run_plans_every_kind_with_shared_options(tmp_path, capsys):
    argv = ["extract", "all", "--kinds", "conductance,class-stats", "--models",
            "RN50:openai,ViT-B-32:openai", "--datasets", "dtd,pets", "--features-dir",
            str(tmp_path), "--shard", "0/2", "--dry-run", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "conductance: 2 of 2 records (shard 0/2) to extract" in out
    assert "class-stats: 2 of 2 records (shard 0/2) to extract" in out
