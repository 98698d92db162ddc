"""The README's method example runs and passes the conformance check (README stays true)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from benchmark.cli import main
from benchmark.core.check import check_selector

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_method_passes_check_and_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n# mymethod.py\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 14  # "a complete 10-line example"
    (tmp_path / "mymethod.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mymethod", None)
    assert all(r.passed for r in check_selector("mymethod:SmallestGap"))
    assert main(["run", "--methods", "mymethod:SmallestGap,inb", "--protocol", "lovm",
                 "--seeds", "1", "--out", str(tmp_path / "r"), "--no-progress"]) == 0


def test_readme_quickstart_names_the_test_command():
    text = README.read_text()
    assert 'pip install -e ".[dev]"\npytest' in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci and "python -m pytest" in ci


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    nxt = text.find("\n## ", start + 3)
    return text[start: nxt if nxt > 0 else None]


def _bash_blocks(section: str) -> list[list[str]]:
    """The command lines of each ```bash block (comments and trailing comments dropped)."""
    blocks = []
    for body in re.findall(r"```bash\n(.*?)```", section, re.S):
        lines = [re.sub(r"\s+#.*$", "", ln).strip() for ln in body.splitlines()]
        blocks.append([ln for ln in lines if ln and not ln.startswith("#")])
    return blocks


INSTALL = re.compile(r"^(python3? -m venv|\. |source |pip install|python -m pip install)")


def _benchmark_argv(line: str) -> list[str]:
    import shlex

    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "benchmark"], line
    return argv[3:]


def test_quickstart_is_light_run_dev_tests_then_minizoo():
    run_block, test_block, zoo_block = _bash_blocks(_section("Quickstart"))  # three blocks
    assert zoo_block[0] == 'pip install -e ".[extract,text]"'
    assert zoo_block[1:] == ["python -m benchmark run --protocol minizoo --methods dcd,swab"]
    from benchmark.cli import build_parser

    args = build_parser().parse_args(_benchmark_argv(zoo_block[1]))  # the real run command
    from benchmark.core.protocol import get_protocol

    assert get_protocol(args.protocol).measured_here  # trained here, on demand
    installs = [ln for ln in run_block if ln.startswith("pip install")]
    assert installs == ["pip install -e ."]  # the run needs the light install only
    assert any(ln.startswith("python3 -m venv") for ln in run_block)
    assert any(ln.startswith("export VLMBENCH_MIRROR=") for ln in run_block)
    assert [ln for ln in test_block if ln.startswith("pip install")] == ['pip install -e ".[dev]"']
    assert test_block[-1] == "pytest"


def test_light_install_needs_no_heavy_dependency():
    """The default dependencies are the light evaluation stage; torch & co are extras."""
    from benchmark.data._toml import load_toml

    project = load_toml(README.parent / "pyproject.toml")["project"]
    deps = " ".join(project["dependencies"]).lower()
    for heavy in ("torch", "open_clip", "open-clip", "captum", "ray", "sentence-transformers",
                  "transformers", "openai", "nltk"):
        assert heavy not in deps, heavy
    extras = project["optional-dependencies"]
    assert any("torch" in d for d in extras["extract"])
    assert any("ray" in d for d in extras["scale"])


def test_quickstart_run_block_runs_as_written(tmp_path, monkeypatch, capsys):
    """Every command of block 1 but the installs, in a scratch directory (offline)."""
    run_block = _bash_blocks(_section("Quickstart"))[0]
    monkeypatch.chdir(tmp_path)
    ran = 0
    for line in run_block:
        if INSTALL.match(line):
            continue
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            # the README's relative path is the layout next to a clone; the test environment
            # has its own mirror
            if key != "VLMBENCH_MIRROR" or (README.parent / value).is_dir():
                monkeypatch.setenv(key, str(README.parent / value) if key == "VLMBENCH_MIRROR"
                                   else value)
            continue
        assert main(_benchmark_argv(line)) == 0, line
        ran += 1
    assert ran == 1
    out = capsys.readouterr().out
    assert "inb" in out and "modelgpt" in out and "wrote results/dcd48/" in out
    assert len(list((tmp_path / "results" / "dcd48").glob("*/run.json"))) == 1


def test_adding_a_method_section_runs_from_anywhere(tmp_path, monkeypatch, capsys):
    """The section's file saved outside the current directory (and outside sys.path), its
    commands run with the file's path, `--set` by class name, then the registry line and a
    runs.toml-style entry put it on a leaderboard run."""
    section = _section("Adding a method")
    code = re.search(r"```python\n# mymethod.py\n(.*?)```", section, re.S).group(1)
    elsewhere, work = tmp_path / "elsewhere", tmp_path / "work"
    elsewhere.mkdir()
    work.mkdir()
    (elsewhere / "mymethod.py").write_text(code)
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))
    sys.modules.pop("mymethod", None)
    commands = _bash_blocks(section)[0]
    assert any("--set SmallestGap.weight=2" in c for c in commands)
    for i, line in enumerate(commands):
        argv = [a.replace("mymethod.py", str(elsewhere / "mymethod.py"))
                for a in _benchmark_argv(line)]
        if argv[0] == "run":
            argv += ["--seeds", "1", "--no-progress", "--out", str(tmp_path / f"r{i}")]
        assert main(argv) == 0, line
    import json

    last = json.loads((tmp_path / f"r{len(commands) - 1}" / "run.json").read_text())
    assert json.dumps(last).count('"weight": 2') >= 1

    # steps 2-3: the registry line's form, and the name in a protocol's method list
    import methods
    from benchmark.data.upstream import DataLayer
    from benchmark.report import leaderboard

    line = re.search(r'"smallest-gap": (_spec\(.*?\)),', section).group(1)
    spec = eval(line, {"_spec": methods._spec})  # noqa: S307 - the README's own text
    assert spec.target == "methods.smallest_gap:SmallestGap"
    assert "leaderboard/runs.toml" in section and "leaderboard --rerun" in section
    monkeypatch.setitem(methods.REGISTRY, "smallest-gap",
                        methods._spec(f"{elsewhere / 'mymethod.py'}:SmallestGap", spec.summary))
    leaderboard._rerun_protocol("lovm", {"seeds": 1, "methods": ["smallest-gap", "inb"]},
                                tmp_path / "lb", DataLayer(online=False))
    from benchmark.core import results

    (run,) = results.find_runs(tmp_path / "lb" / "lovm")
    assert set(run.scores["method"]) == {"smallest-gap", "inb"}


def test_python_api_example_runs(tmp_path, monkeypatch):
    """The README's "Python API" block runs as written (in a scratch directory)."""
    block = re.search(r"## Python API.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md:python-api", "exec"), namespace)
    assert (tmp_path / "results" / "lovm" / "notebook" / "run.json").is_file()
    assert set(namespace["res"].methods) == {"inb", "avgrank", "mean-acc"}
