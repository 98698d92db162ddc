"""Nested leave-one-out parameter selection (methods/nested.py): chosen on the sources only.

A toy selector with one parameter, ``which``: ``"inb"`` ranks by ImageNet-1k, ``"reverse"`` by
its opposite. On every source the accuracy increases with ImageNet-1k; on the target it
decreases. A choice on the test target would pick ``reverse``; the nested choice, which never
sees the target, picks ``inb`` with a perfect inner Sum@5 = NDCG@5 + tau@5 = 2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.core.check import check_selector
from benchmark.core.harness import Harness, MethodRun
from benchmark.core.metrics import MetricConfig
from benchmark.core.protocol import SIDE_DATASET, Protocol, ProtocolData
from benchmark.data.catalog import DatasetInfo
from benchmark.data.groundtruth import COLUMNS, GroundTruth
from benchmark.features.kinds import LoadContext
from benchmark.features.store import FeatureStore
from methods.base import Selector
from methods.nested import NestedSelection, grid_points, nested_class, parse_metric


class Toy(Selector):
    name = "toy"

    def __init__(self, which: str = "reverse") -> None:
        self.which = which

    def score(self, target):
        s = target.imagenet.reindex(list(target.candidates)).astype(float)
        return s if self.which == "inb" else -s


def toy_harness() -> Harness:
    models = tuple(f"M{i}:p" for i in range(7))
    inet = np.linspace(0.3, 0.9, len(models))
    sources, target = ("s1", "s2", "s3"), "t"
    rows = [(m, d, float(a if d != target else 1 - a), "test")
            for d in (*sources, target) for m, a in zip(models, inet, strict=True)]
    rows += [(m, SIDE_DATASET, float(a), "test") for m, a in zip(models, inet, strict=True)]
    protocol = Protocol(name="toy", description="", zoo=models, datasets=(*sources, target),
                        gt_sources=("test",), seeds=(0,), metrics=MetricConfig())
    pdata = ProtocolData(protocol, GroundTruth(pd.DataFrame(rows, columns=COLUMNS)))
    infos = {d: DatasetInfo(d, d, "photo", "classification", ("a", "b"), ("{c}",))
             for d in protocol.datasets}
    return Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")))


def test_chosen_on_the_sources_never_on_the_target() -> None:
    h = toy_harness()
    cls = nested_class(Toy)
    assert cls.name == "toy+nested" and issubclass(cls, NestedSelection)
    assert nested_class(Toy) is cls and cls.requires == () and not cls.stochastic
    sel = cls(grid={"which": ["reverse", "inb"]}).fit(h.train_view("t", 0))
    assert sel.chosen_ == {"which": "inb"}
    assert sel.inner_scores_[1] == pytest.approx(2.0)  # perfect on each inner source
    assert sel.inner_scores_[0] < 1.0
    # the outer target's truth is the reverse: the nested choice is the wrong one there
    run = MethodRun(cls.name, cls, {"grid": {"which": ["reverse", "inb"]}})
    res = h.run([run], progress=False)
    s = res.scores
    tau = s[(s.target == "t") & (s.metric == "tau") & (s.k == 5)]["value"].iloc[0]
    assert tau == pytest.approx(-1.0)  # 5 of 7 overlap, all pairs reversed
    # and on a source target the choice is right again
    tau_s1 = s[(s.target == "s1") & (s.metric == "tau") & (s.k == 5)]["value"].iloc[0]
    assert tau_s1 == pytest.approx(1.0)


def test_ties_take_the_first_grid_point_and_bad_inputs() -> None:
    h = toy_harness()
    cls = nested_class(Toy)
    sel = cls(grid={"which": ["inb", "inb"]}).fit(h.train_view("t", 0))
    assert sel.chosen_ == {"which": "inb"}
    assert grid_points({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert parse_metric("ndcg@3") == ("ndcg", 3)
    with pytest.raises(ValueError, match="metric"):
        parse_metric("acc@1")
    with pytest.raises(ValueError, match="unknown parameter"):
        cls(grid={"nope": [1]}).fit(h.train_view("t", 0))
    with pytest.raises(ValueError, match="grid"):
        cls(grid={}).fit(h.train_view("t", 0))


def test_nested_passes_the_leakage_conformance() -> None:
    failed = [r for r in check_selector(nested_class(Toy), {"grid": {"which": ["inb", "reverse"]}})
              if not r.passed]
    assert not failed, failed


def test_cli_grid_options_build_the_nested_method() -> None:
    from benchmark.cli.common import nested_methods
    from benchmark.errors import UsageError

    names, params = nested_methods(["inb", "dcd-cosine"], ["dcd-cosine.beta=1,5"], "nested",
                                   "ndcg@5", {"dcd-cosine": {"gamma": 3.0}})
    assert names[0] == "inb" and names[1].name == "dcd-cosine+nested"
    assert params == {"dcd-cosine+nested": {"grid": {"beta": [1, 5]}, "metric": "ndcg@5",
                                            "params": {"similarity": "cosine", "gamma": 3.0}}}
    assert nested_methods(["inb"], None, None, "sum@5", {}) == (["inb"], {})
    for args, match in [((["inb"], ["dcd.beta=1"], "nested"), "not among"),
                        ((["dcd"], ["dcd.beta=1"], None), "--select nested"),
                        ((["dcd"], None, "nested"), "needs a --grid"),
                        ((["dcd"], ["dcd.nope=1"], "nested"), "unknown parameter")]:
        with pytest.raises(UsageError, match=match):
            nested_methods(*args, "sum@5", {})
