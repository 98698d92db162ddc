"""Leaderboard: aggregation rules, deterministic rendering, the freshness check."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import leaderboard as cli_leaderboard
from benchmark.core.harness import SCORE_COLUMNS
from benchmark.report import analysis, leaderboard


def _scores(rows):
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def test_mean_over_targets_then_mean_std_over_seeds():
    rows = []
    for seed, (a, b) in enumerate([(0.2, 0.4), (0.6, 0.8)]):
        rows += [("m", "p", seed, "t1", "ndcg", 5, a), ("m", "p", seed, "t2", "ndcg", 5, b)]
    means = leaderboard.seed_means(_scores(rows))
    assert means["value"].tolist() == pytest.approx([0.3, 0.7])
    table = leaderboard.summarize(_scores(rows), columns=[("ndcg", 5)])
    assert table.loc[0, "NDCG@5"] == f"{0.5:.3f} ± {np.std([0.3, 0.7]):.3f}"


def test_a_missing_target_makes_the_mean_missing_not_a_subset_average():
    rows = [("a", "p", 0, "t1", "ndcg", 5, 0.5), ("a", "p", 0, "t2", "ndcg", 5, 0.7),
            ("b", "p", 0, "t1", "ndcg", 5, 0.9)]  # b lacks t2
    table = leaderboard.summarize(_scores(rows), columns=[("ndcg", 5)]).set_index("method")
    assert table.loc["a", "NDCG@5"] == "0.600"  # one seed: no "± 0.000"
    assert table.loc["b", "NDCG@5"] == "—"


def test_negative_zero_is_rendered_as_zero():
    assert leaderboard._fmt(-0.0000001, 0.0) == "0.000 ± 0.000"


# -- main table: significance, partial coverage --------------------------------------------
def _table_scores():
    """Six targets; "a" beats "b" on all six, "p" (partial coverage) is highest of all."""
    rows = []
    for i in range(6):
        t = f"t{i}"
        for m, v in (("a", 0.8 + 0.01 * i), ("b", 0.3 + 0.02 * i), ("p", 0.95)):
            rows += [(m, "x", 0, t, "ndcg", 5, v), (m, "x", 0, t, "sum", 5, v + 0.1)]
    cov = pd.DataFrame([(m, f"t{i}", 7 if m == "p" else 10, 10, "")
                        for m in "abp" for i in range(6)],
                       columns=["method", "target", "candidates", "protocol_candidates",
                                "uncovered"])
    return _scores(rows), cov


def test_partial_coverage_method_is_marked_and_never_best():
    scores, cov = _table_scores()
    assert leaderboard.partial_methods(cov) == ["p"]
    table = leaderboard.main_table(scores, cov, {"z": "needs conductance features"},
                                   partial={"p"}, columns=[("ndcg", 5), ("sum", 5)])
    assert [r.method for r in table.rows] == ["a", "b", "p", "z"]
    assert [r.status for r in table.rows] == ["best", "full", "partial", "needs"]
    assert table.best == "a"
    frame = leaderboard.table_frame(table).set_index("method")
    assert frame.loc["p †", "Sum@5"] == "1.050 ± 0.000"  # no mark: not compared with "a"
    assert frame.loc["p †", "W/T/L (Sum@5)"] == "—"
    assert frame.loc["p †", "coverage"] == "42/60 candidate cells"
    # b below a on all six targets: exact Wilcoxon p = 2/64 < 0.05 -> ▼
    assert frame.loc["b", "NDCG@5"].endswith(" ▼") and frame.loc["b", "W/T/L (Sum@5)"] == "0/0/6"
    assert frame.loc["a", "W/T/L (Sum@5)"] == "best"
    assert frame.loc["z", "coverage"] == "needs conductance features"
    ps = leaderboard.pvalue_frame(table).set_index("method")
    assert ps.loc["b", "NDCG@5"] == "0.031 / 0.031"
    assert list(ps.index) == ["b"]


def test_ci_column_is_the_bootstrap_of_per_target_means_over_seeds():
    scores, cov = _table_scores()
    table = leaderboard.main_table(scores, cov, columns=[("sum", 5)])
    b = next(r for r in table.rows if r.method == "b")
    expected = analysis.bootstrap_ci([0.4 + 0.02 * i for i in range(6)])
    assert b.ci == pytest.approx(expected)
    assert leaderboard.table_frame(table).set_index("method").loc["b", "Sum@5 95% CI"] == \
        f"[{expected[0]:.3f}, {expected[1]:.3f}]"


def test_export_tables_csv_and_latex(tmp_path):
    scores, cov = _table_scores()
    table = leaderboard.main_table(scores, cov, partial={"p"}, columns=[("ndcg", 5), ("sum", 5)])
    num = leaderboard.numeric_frame(table)
    assert num.loc[1, "ndcg@5_mark"] == "▼" and num.loc[1, "wins"] == 0
    assert num.loc[1, "ndcg@5_p_wilcoxon"] == pytest.approx(2 / 64, abs=1e-6)
    tex = leaderboard.latex_table(leaderboard.table_frame(table), "t", bold_first=0)
    assert "\\textbf{a}" in tex and "$\\blacktriangledown$" in tex and "p $^\\dagger$" in tex
    assert "±" not in tex and "▼" not in tex


# -- figures --------------------------------------------------------------------------------
def test_figures_are_byte_identical_and_the_check_tolerates_only_other_matplotlib(monkeypatch):
    import matplotlib

    from benchmark.report import plots

    m = pd.DataFrame({"a": [0.1, 0.9], "b": [np.nan, 0.5]}, index=["t1", "t2"])
    first = plots.heatmap_figure(m, "title", "NDCG@5")
    assert first.startswith(b"\x89PNG") and first == plots.heatmap_figure(m, "title", "NDCG@5")
    text = plots.png_text(first)
    assert "Software" not in text and text[plots.VERSION_KEY] == matplotlib.__version__
    other = plots.heatmap_figure(m.fillna(0.2), "title", "NDCG@5")
    assert plots.same_figure(first, other)[0] is False

    def draw(fig):
        fig.subplots().plot([0, 1], [0, 1])

    here = plots._render("k", {"x": 1}, (3, 2), draw)
    monkeypatch.setattr(matplotlib, "__version__", "0.0-elsewhere")
    # another matplotlib draws the same data with other pixels (simulated by another size)
    elsewhere = plots._render("k", {"x": 1}, (3.5, 2), draw)
    assert plots.same_figure(elsewhere, here) == (
        True, f"same data (drawn by matplotlib 0.0-elsewhere, here {plots.png_text(here)[plots.VERSION_KEY]}: "
        "bytes not comparable)")
    assert plots.same_figure(plots._render("k", {"x": 2}, (3.5, 2), draw), here)[0] is False


def test_sensitivity_section_empty_declared_skipped_and_run(tmp_path):
    files: dict = {}
    empty = leaderboard._analysis_section("dcd48", {"sweeps": [], "sample_efficiency": []},
                                          tmp_path, files)
    assert "do not exist for this leaderboard yet" in "\n".join(empty) and not files
    entry = {"sweeps": [{"method": "dcd", "param": ["beta=1,2", "gamma=1,10"]}],
             "sample_efficiency": [{"method": "dcd", "n_source": "1,5", "n_target": "same"},
                                   {"method": "dcd", "n_source": "1,5"}]}
    sw = tmp_path / "sweeps-0"
    sw.mkdir()
    pd.DataFrame({"point": range(4), "beta": [1, 1, 2, 2], "gamma": [1, 10, 1, 10],
                  "ndcg@5": [0.5, 0.6, 0.7, 0.8], "ndcg@5_std": [0.01] * 4, "seeds": 2}
                 ).to_csv(sw / "table.csv", index=False)
    (sw / "item.json").write_text(json.dumps({"metric": "ndcg@5", "params": ["beta", "gamma"],
                                              "seeds": [0, 1], "method": "dcd"}))
    se = tmp_path / "sample_efficiency-0"
    se.mkdir()
    pd.DataFrame({"point": range(2), "n_source_images": [1, 5], "n_target_images": [1, 5],
                  "ndcg@5": [0.4, 0.6], "ndcg@5_std": [0.1, 0.05], "seeds": 2}
                 ).to_csv(se / "table.csv", index=False)
    (se / "item.json").write_text(json.dumps({"metric": "ndcg@5", "seeds": [0, 1],
                                              "params": ["n_source_images", "n_target_images"],
                                              "method": "dcd"}))
    (tmp_path / "sample_efficiency-1").mkdir()
    (tmp_path / "sample_efficiency-1" / "item.json").write_text(
        json.dumps({"skipped": "needs conductance features"}))
    text = "\n".join(leaderboard._analysis_section("dcd48", entry, tmp_path, files))
    assert sorted(files) == ["figures/dcd48-sample-efficiency-0.png", "figures/dcd48-sweep-0.png"]
    assert "![dcd on dcd48: ndcg@5 (mean over 2 seeds)](figures/dcd48-sweep-0.png)" in text
    assert "| 2      | 10      | 0.800 ± 0.010 |" in text
    assert "Declared but not run: needs conductance features." in text


def test_declared_analysis_without_features_is_recorded_as_skipped(tmp_path, data):
    entry = {"sweeps": [{"method": "dcd", "param": ["beta=1,2"], "seeds": 1}]}
    leaderboard.run_analyses("lovm", entry, tmp_path, data)
    info = json.loads((tmp_path / "sweeps-0" / "item.json").read_text())
    assert info["skipped"] == "needs conductance features"
    assert not (tmp_path / "sweeps-0" / "table.csv").exists()


# -- a real (small) rerun -----------------------------------------------------------------
@pytest.fixture(scope="module")
def rendered(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("lb") / "root"
    spec = {"protocol": {"lovm": {"seeds": 2, "methods": ["inb", "random"]},
                         "dcd48": {"seeds": 2, "methods": ["inb", "random", "modelgpt",
                                                           "tests.test_harness:_NeedsConductance"]}},
            "analysis": {"dcd48": {"sweeps": [], "sample_efficiency": []}}}
    leaderboard.rerun_root(spec, root, data)  # what `leaderboard --rerun` does
    return spec, root, leaderboard.render_all(spec, root)


def test_render_is_deterministic_and_complete(rendered):
    spec, root, files = rendered
    assert set(files) == {"README.md", "lovm.md", "dcd48.md", "figures/lovm-methods.png",
                          "figures/lovm-ndcg5-per-target.png", "figures/dcd48-methods.png",
                          "figures/dcd48-ndcg5-per-target.png",
                          "figures/dcd48-common-methods.png", "index.html"}
    assert files == leaderboard.render_all(spec, root)
    assert "- Protocol hash: `" in files["lovm.md"]  # what a submission must match
    dcd = files["dcd48.md"]
    assert "## Reported in the literature (not computed here)" in dcd
    assert "| DCD      |    0.402 |    0.707 |    0.752 | 0.365 |" in dcd
    assert "needs conductance features" in dcd  # a method without packs is listed, not scored
    assert "| **all**" in dcd and "983/1008" in dcd
    assert "train split" in dcd
    assert "Seeds: 2 (0, 1)" in files["lovm.md"]
    assert "τ variant = `clean`" in files["lovm.md"]
    assert "Produced by vlmbench " in dcd
    for name in (n for n in files if n.endswith(".png")):
        page = files[name.split("/")[1].split("-")[0] + ".md"]
        assert f"]({name})" in page  # every figure is referenced from its page
    for text in (t for t in files.values() if isinstance(t, str)):
        assert "/tmp" not in text and "20" + "26-" not in text  # no paths, no dates


def test_partial_coverage_gets_a_like_for_like_table(rendered):
    spec, root, files = rendered
    dcd = files["dcd48.md"]
    main = dcd.split("## Results (computed by this code)")[1].split("## On the models")[0]
    assert "| modelgpt † " in main and "735/983 candidate cells" in main
    assert "Wilcoxon signed-rank" in main and "permutation" in main
    common = dcd.split("## On the models every method covers")[1].split("## Reported")[0]
    assert "**735 of the 983 candidate cells**" in common
    rows = [ln for ln in common.splitlines() if ln.startswith("| ")]
    assert any(ln.startswith("| modelgpt ") and (" = |" in ln or "▲" in ln or "▼" in ln)
               for ln in rows)  # compared, with a mark, on the common candidates
    assert (root / "dcd48" / "common" / "run.json").is_file()
    assert not (root / "lovm" / "common").exists()  # nobody partial on lovm: no second run
    index = files["README.md"]
    dcd_row = next(ln for ln in index.splitlines() if ln.startswith("| [dcd48]"))
    assert "modelgpt †" in dcd_row and not dcd_row.split("|")[2].strip().startswith("modelgpt")
    assert "No sensitivity or sample-efficiency runs are declared" in dcd


def test_check_mode_detects_a_stale_leaderboard(rendered, tmp_path, monkeypatch, capsys):
    spec, root, files = rendered
    monkeypatch.setattr(leaderboard, "load_spec", lambda: spec)
    # rendering is deterministic (tested above): reuse it, this test is about writing/checking
    monkeypatch.setattr(leaderboard, "render_all", lambda s, r: dict(files))
    out = tmp_path / "md"
    out.mkdir()
    args = argparse.Namespace(results=str(root), rerun=False, check=False, pages=str(out),
                              mirror=None, offline=True, export=None)
    assert cli_leaderboard.run(args) == 0
    assert (out / "figures" / "dcd48-methods.png").is_file()
    args.check = True
    assert cli_leaderboard.run(args) == 0
    (out / "lovm.md").write_text((out / "lovm.md").read_text().replace("inb", "INB", 1))
    assert cli_leaderboard.run(args) == 1
    assert "leaderboard is stale: lovm.md" in capsys.readouterr().err
    args.check = False
    assert cli_leaderboard.run(args) == 0
    args.check = True
    png = out / "figures" / "lovm-methods.png"
    png.write_bytes(png.read_bytes()[:-20] + b"\0" * 20)
    assert cli_leaderboard.run(args) == 1
    assert "stale: figures/lovm-methods.png" in capsys.readouterr().err
    args.check = False
    (out / "figures" / "old.png").write_bytes(b"x")
    assert cli_leaderboard.run(args) == 0
    assert not (out / "figures" / "old.png").exists()  # figures no longer generated are removed
    (out / "figures" / "old.png").write_bytes(b"x")
    args.check, args.export = True, str(tmp_path / "export")
    assert cli_leaderboard.run(args) == 1
    assert "figures/old.png: no longer generated" in capsys.readouterr().out
    assert (tmp_path / "export" / "dcd48-main.tex").is_file()
    assert (tmp_path / "export" / "dcd48-common.csv").is_file()
    assert not (tmp_path / "export" / "lovm-common.csv").exists()


def test_a_rerun_root_is_ours_and_can_be_replaced(rendered):
    spec, root, files = rendered
    assert leaderboard.foreign_entries(root) == []  # everything it wrote is recognised as its own
    assert sorted(p.name for p in root.parent.iterdir()) == ["root"]  # no temporaries, no lock
