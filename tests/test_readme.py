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


def test_python_api_example_runs(tmp_path, monkeypatch):
    """The README's "Python API" block runs as written (in a scratch directory)."""
    block = re.search(r"## Python API.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md:python-api", "exec"), namespace)
    assert (tmp_path / "results" / "lovm" / "notebook" / "run.json").is_file()
    assert set(namespace["res"].methods) == {"inb", "avgrank", "mean-acc"}
