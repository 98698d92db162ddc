"""leaderboard/fidelity.md (benchmark/report/fidelity.py) and the pages' parameter-choice line.

The table's arithmetic on hand-made rows; the fast rows (INB) against what LOVM's and SWAB's
own code print (tests/fixtures/upstream_outputs.toml); the slow ModelGPT rows likewise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data._toml import load_toml
from benchmark.report import fidelity
from benchmark.report.leaderboard import parameter_choice, parameter_lines

FIXTURE = load_toml(Path(__file__).parent / "fixtures" / "upstream_outputs.toml")


def test_markdown_by_hand() -> None:
    rows = [{"method": "M", "repo": "R", "protocol": "a -> b", "metric": "R@5 / tau",
             "upstream": (0.5, 0.2), "clean": (0.4, 0.25), "chosen": "x+y", "reason": "why",
             "command": "cmd"},
            {"method": "N", "repo": "R", "protocol": "a -> b", "metric": "R@5 / tau",
             "upstream": None, "clean": None, "chosen": "", "reason": fidelity.NOT_PUBLIC,
             "command": ""}]
    text = fidelity.markdown(rows)
    assert ("| M | R | `a -> b` | R@5 / tau | not retrieved | 0.5000 / 0.2000 (x+y) | "
            "0.4000 / 0.2500 | -0.1000 / +0.0500 | why |") in text
    assert "| N | R | `a -> b` | R@5 / tau | not retrieved | — | — | — | inputs not public" in text
    assert "- M, R: `cmd`" in text and "- N, R" not in text


def test_reason_lists_each_step() -> None:
    steps = [{"step": "reproduced"},
             {"step": "- subset choice", "d_recall@5": -0.05, "d_tau": 0.01},
             {"step": "- tau", "d_recall@5": 0.0, "d_tau": -0.02}]
    assert fidelity._reason(steps) == ("subset choice -0.0500 R@5 / +0.0100 tau; "
                                       "tau +0.0000 R@5 / -0.0200 tau")


def _fixture(section, **match):
    return next(r for r in FIXTURE[section] if all(r.get(k) == v for k, v in match.items()))


@pytest.mark.parametrize("spec", [
    pytest.param(s, id=f"{s[1]}-{s[3]}", marks=() if s[3] == "INB" else pytest.mark.slow)
    for s in fidelity.RANKING])
def test_ranking_rows_upstream_column_is_the_upstream_output(spec, data) -> None:
    row = fidelity.ranking_row(data, *spec)
    want = (_fixture("lovm", scores=spec[3], subsets=True) if spec[1] == "LOVM"
            else _fixture("swab", method="inb"))
    assert tuple(round(v, 4) for v in row["upstream"]) == (round(want["acc"], 4),
                                                           round(want["k_tau"], 4))
    assert row["clean"] != row["upstream"]


def test_parameter_choice_line() -> None:
    meta = {"inb": {"methods": {"inb": {"class": "methods.inb:ImageNetBaseline", "params": {}}}},
            "dcd+nested": {"methods": {"dcd+nested": {
                "class": "methods.nested:NestedDCDSelector",
                "params": {"grid": {"beta": [1, 5]}, "metric": "sum@5"}}}},
            "sub": {}}
    assert parameter_choice(meta) == {"inb": "declared defaults",
                                      "dcd+nested": "nested (beta in [1, 5]; sum@5)",
                                      "sub": "submitted"}
    [line] = parameter_lines(meta)
    assert line.startswith("- Parameters: declared defaults for `inb`")
    assert "`dcd+nested`: chosen by nested leave-one-source-out" in line
    assert "None is chosen on the test targets" in line
