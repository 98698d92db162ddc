"""Ground-truth assembly (spot-checked against the upstream files) and protocol sizes."""

from __future__ import annotations

import csv
import io
import re

import pytest

from benchmark.core.protocol import DCD_TARGETS, PROTOCOLS, SIDE_DATASET, get_protocol
from benchmark.data import zoo
from benchmark.data.groundtruth import GroundTruth, lovm_table, openclip_table, swab_table


def _yml_models(data, key):
    return [f"{a}:{p}" for a, p in re.findall(r"\['([^']+)', '([^']+)'\]", data.read_text(key))]


def test_zoo_lists_match_their_upstream_sources(data):
    assert list(zoo.LOVM_35) == _yml_models(data, "orrzohar__LOVM/LOVM/models.yml")
    assert list(zoo.SWAB_43) == _yml_models(data, "YCaigogogo__SWAB/model/models.yml")
    hub = csv.DictReader(io.StringIO(data.read_text("LAMDASZ-ML__MLL/MLL/model_hub_info.csv")))
    assert list(zoo.MLL_49) == [f"{r['name']}:{r['pretrained']}" for r in hub]
    assert len(set(zoo.DCD_48)) == 48


def test_source_tables_shapes(data):
    lovm, swab = lovm_table(data), swab_table(data)
    assert lovm.shape[0] == 35 * 23 and set(lovm["model"]) == set(zoo.LOVM_35)
    assert swab.shape[0] == 43 * 23 and set(swab["model"]) == set(zoo.SWAB_43)
    assert lovm["acc1"].between(0, 1).all() and swab["acc1"].between(0, 1).all()


def _cell(table, model, dataset):
    row = table[(table.model == model) & (table.dataset == dataset)]
    assert len(row) == 1, (model, dataset)
    return float(row["acc1"].iloc[0])


def test_spot_check_cells_against_upstream_rows(data):
    # LOVM/eval_table.csv row 0: cars, ViT-B-32 laion2b_e16, acc1 0.8433030717572442
    assert _cell(lovm_table(data), "ViT-B-32:laion2b_e16", "cars") == 0.8433030717572442
    # SWAB/LOVM/eval_table.csv: cars, RN50 openai, acc1 0.5424698420594454
    assert _cell(swab_table(data), "RN50:openai", "cars") == 0.5424698420594454
    assert _cell(swab_table(data), "BLIP:retrieval_base_coco", "cars") > 0
    oc = openclip_table(data)
    # openclip_results.csv: EVA01-g-14 laion400m_s11b_b41k, Stanford Cars 0.9171, SVHN 0.5889
    assert _cell(oc, "EVA01-g-14:laion400m_s11b_b41k", "cars") == 0.9171
    assert _cell(oc, "EVA01-g-14:laion400m_s11b_b41k", "svhn") == 0.5889
    assert _cell(oc, "RN50:cc12m", "clevr_closest_object_distance") == 0.1576
    assert _cell(oc, "RN50:cc12m", SIDE_DATASET) == 0.3591


def test_openclip_columns_that_are_not_top1_are_never_read(data):
    oc = openclip_table(data)
    assert not set(oc["dataset"]) & {"flowers", "pets", "fer2013", "dmlab",
                                     "diabetic_retinopathy"}


def test_lovm_and_swab_tables_disagree_on_some_cells_and_protocols_keep_their_own(data):
    lovm = lovm_table(data).set_index(["model", "dataset"])["acc1"]
    swab = swab_table(data).set_index(["model", "dataset"])["acc1"]
    diff = (lovm - swab.reindex(lovm.index)).abs()
    assert 0.1 < diff.max() <= 0.3  # SWAB re-evaluated a few cells
    (m, d) = diff.idxmax()
    lovm_gt = get_protocol("lovm").load(data).ground_truth
    swab_gt = get_protocol("swab").load(data).ground_truth
    if d != SIDE_DATASET:
        assert lovm_gt.matrix.loc[m, d] == lovm[(m, d)]
        assert swab_gt.matrix.loc[m, d] == swab[(m, d)]


@pytest.mark.parametrize(
    "name, models, targets, cells",
    [("dcd48", 48, 21, 983), ("lovm", 35, 22, 770), ("swab", 43, 22, 946), ("mll", 49, 17, None)],
)
def test_protocol_sizes_and_coverage(protocol_data, name, models, targets, cells):
    pd_ = protocol_data(name)
    p = pd_.protocol
    assert (len(p.zoo), len(p.datasets)) == (models, targets)
    assert SIDE_DATASET not in p.datasets
    cov = pd_.coverage()
    if cells is not None:
        assert cov["candidates"].sum() == cells
    assert len(pd_.imagenet) == models  # side information for every model


def test_dcd48_five_extra_models_are_not_candidates_on_five_targets(protocol_data):
    pd_ = protocol_data("dcd48")
    absent = {"fer2013", "dmlab", "diabetic_retinopathy", "flowers", "pets"}
    for t in DCD_TARGETS:
        cands = set(pd_.candidates(t))
        for m in zoo.DCD_EXTRA_5:
            assert (m in cands) == (t not in absent), (m, t)
        assert set(zoo.SWAB_43) <= cands
    gt = pd_.targets_gt.table
    extra = gt[gt.model.isin(zoo.DCD_EXTRA_5)]
    assert set(extra["source"]) == {"openclip"}
    assert set(gt[gt.model.isin(zoo.SWAB_43)]["source"]) == {"swab"}
    notes = " ".join(pd_.protocol.notes)
    assert "train split" in notes and "SVHN" in notes


def test_mll_protocol_reports_missing_ucf101_and_never_invents_cells(protocol_data):
    pd_ = protocol_data("mll")
    cov = pd_.coverage().set_index("target")
    assert cov.loc["ucf101", "candidates"] == 0
    assert "ucf101" not in pd_.evaluable_targets()
    assert cov.loc["fer2013", "candidates"] == len(set(zoo.MLL_49) & set(zoo.LOVM_35))
    assert pd_.targets_gt.table["acc1"].notna().all()


def test_ground_truth_rejects_duplicates():
    import pandas as pd

    t = pd.DataFrame([("a:b", "cars", 0.5, "x"), ("a:b", "cars", 0.6, "y")],
                     columns=["model", "dataset", "acc1", "source"])
    with pytest.raises(ValueError, match="duplicated"):
        GroundTruth(t)


def test_folds_hold_out_each_target_once():
    p = PROTOCOLS["lovm"]
    folds = p.folds()
    assert [f.target for f in folds] == list(p.datasets)
    for f in folds:
        assert f.target not in f.sources and len(f.sources) == len(p.datasets) - 1


def test_unknown_protocol_has_suggestion():
    with pytest.raises(KeyError, match="did you mean 'swab'"):
        get_protocol("swap")
