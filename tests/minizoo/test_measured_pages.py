"""Measured protocols (minizoo): the leaderboard check compares structure, not digits, and
fails a zoo that is not a ranking task."""

import pandas as pd

from benchmark.minizoo import properties
from benchmark.report import measured

PAGE = """# Leaderboard: `minizoo`

- Protocol hash: `dba02132dd52`.
- Host: Linux x86_64, Some CPU 3.1GHz, 2 cores

## Results (computed by this code)

| method | NDCG@5 | Sum@5 |
|---|---|---|
| **dcd** | **0.71 ± 0.02** ▲ | 0.90 |
| inb | 0.52 | 0.61 = |
"""


def test_a_page_differing_only_in_digits_order_marks_and_host_is_the_same():
    other = (PAGE.replace("0.71", "0.66").replace("dba02132dd52", "0f1e2d3c4b5a")
             .replace("Some CPU 3.1GHz", "Other CPU").replace("▲", "="))
    lines = other.splitlines()
    lines[-2], lines[-1] = lines[-1].replace("0.52", "0.80"), lines[-2].replace("**", "")
    other = "\n".join(lines) + "\n"
    assert measured.same("minizoo.md", PAGE, other, ["minizoo"])
    assert not measured.same("dcd48.md", PAGE, other, ["minizoo"])  # published: exact


def test_a_missing_row_or_section_is_a_difference():
    no_row = PAGE.replace("| inb | 0.52 | 0.61 = |\n", "")
    assert not measured.same("minizoo.md", PAGE, no_row, ["minizoo"])
    no_section = PAGE.replace("## Results (computed by this code)", "## Other")
    assert not measured.same("minizoo.md", PAGE, no_section, ["minizoo"])


def test_html_and_index_signatures_mask_only_the_measured_protocol():
    html = "\n".join([
        "<table>", '<tr class="kind-computed" data-method="minizoo">', "<td>0.71</td>", "</tr>",
        '<tr class="kind-computed" data-method="lovm">', "<td>0.63</td>", "</tr>", "</table>",
        '<section class="protocol" id="minizoo" data-protocol="minizoo">', "<h2>minizoo</h2>",
        '<tr class="status-best" data-method="dcd">', "<td>0.71</td>", "</tr>",
        '<tr class="status-" data-method="inb">', "<td>0.52</td>", "</tr>", "</section>",
        '<section class="protocol" id="lovm" data-protocol="lovm">', "<td>0.63</td>",
        "</section>"])
    moved = html.replace("0.71", "0.50").replace("status-best", "status-")
    assert measured.same("index.html", html, moved, ["minizoo"])
    assert not measured.same("index.html", html, html.replace("0.63", "0.64"), ["minizoo"])
    assert not measured.same("index.html", html, html.replace('"inb"', '"avgrank"'),
                             ["minizoo"])
    readme = "| [minizoo](minizoo.md) | dcd | 0.71 |\n| [lovm](lovm.md) | inb | 0.63 |"
    assert measured.same("README.md", readme, readme.replace("dcd | 0.71", "inb | 0.55"),
                         ["minizoo"])
    assert not measured.same("README.md", readme, readme.replace("0.63", "0.60"), ["minizoo"])


def _gt(rows):
    return pd.DataFrame(rows, index=[f"m{i}" for i in range(len(rows))],
                        columns=["mz_pattern", "mz_colour", "mz_size", "mz_count"])


def test_properties_pass_on_a_varied_zoo_and_name_what_fails():
    good = _gt([[0.9, 0.2, 0.3, 0.4], [0.2, 0.9, 0.3, 0.4], [0.2, 0.2, 0.8, 0.3],
                [0.3, 0.3, 0.1, 0.9]])
    out = properties.verify(good, {"inb": 0.6})
    assert out["failures"] == [] and out["winners"] == 4
    flat = good.copy()
    flat["mz_count"] = [0.40, 0.41, 0.39, 0.45]  # spread 0.06
    flat.loc["m3", "mz_pattern"] = 0.95  # m3 now also wins patterns: 3 winners
    fails = properties.verify(flat, {"inb": 0.95})["failures"]
    assert any(f.startswith("mz_count: best - worst top-1 = 0.060") for f in fails)
    assert any("only 3 distinct best models" in f for f in fails)
    assert any(f.startswith("inb NDCG@5 = 0.950") for f in fails)


def test_random_is_checked_against_the_chance_ndcg_of_the_same_truth():
    gt = _gt([[0.9, 0.2, 0.3, 0.4], [0.2, 0.9, 0.3, 0.4], [0.2, 0.2, 0.8, 0.3],
              [0.3, 0.3, 0.1, 0.9], [0.5, 0.5, 0.5, 0.5], [0.6, 0.1, 0.2, 0.8]])
    chance = properties.chance_ndcg(gt, list(gt.columns))
    assert 0.3 < chance < 0.95
    assert properties.verify(gt, {"random": chance + 0.05})["failures"] == []
    assert properties.verify(gt, {"random": 1.0})["failures"][0].startswith("random NDCG@5")
    # the failures a rerun recorded reach the check
    meta = {"inb": {"measured_here": {"properties": {"failures": ["x: y"]}}}, "random": {}}
    assert measured.property_failures(meta) == ["x: y"]


def test_host_blocks_of_any_page_compare_by_row_labels():
    from benchmark.report.measured import HOST_BEGIN, HOST_END

    page = "\n".join(["# x", HOST_BEGIN, "| method | s |", "|---|---|", "| inb | 0.0012 |",
                      "| dcd | 1.5 |", HOST_END, "after 0.5"])
    assert measured.same_but_host_blocks(page, page.replace("0.0012", "0.0020"))
    assert not measured.same_but_host_blocks(page, page.replace("| dcd | 1.5 |\n", ""))
    assert not measured.same_but_host_blocks(page, page.replace("after 0.5", "after 0.6"))
