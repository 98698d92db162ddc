"""Dataset catalog: what the benchmark knows about each dataset (never its ground truth).

Entries come from ``datasets/registry.toml``; class names, templates, domains, tasks and LLM
texts are read from upstream files through :class:`benchmark.data.upstream.DataLayer`.

Upstream defects handled here (each has a test in ``tests/test_catalog.py``):

- LOVM's ``dataset_domains.json`` is not valid JSON (a comma is missing after the
  ``kitti_closest_vehicle_distance`` entry): :func:`parse_lenient_json` inserts missing commas
  between ``"value"`` and the next ``"key"`` and nothing else.
- LOVM's class-name and template files for the ImageNet variants (``imagenet-r``,
  ``imagenet-a``, ``imagenetv2``, ``imagenet_sketch``) hold UCF101's class names and templates;
  the registry never reads them for ImageNet variants (their templates serve UCF101).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.data._toml import load_toml, registry_path
from benchmark.data.upstream import DataLayer

LOVM_DOMAINS = "orrzohar__LOVM/LOVM/dataset_domains.json"
LOVM_TASKS = "orrzohar__LOVM/LOVM/dataset_tasks.json"
MLL_DATASETS = "LAMDASZ-ML__MLL/MLL/datasets.json"


class UnknownDatasetError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it one readable line
        return str(self.args[0])


def _registry_path() -> Path:
    return registry_path()


@cache
def registry() -> dict[str, dict[str, Any]]:
    """Raw registry entries by dataset id (file order)."""
    return load_toml(_registry_path())


def dataset_ids() -> list[str]:
    return list(registry())


def entry(dataset: str) -> dict[str, Any]:
    try:
        return registry()[dataset]
    except KeyError:
        raise UnknownDatasetError(unknown_message("dataset", dataset, dataset_ids())) from None


def unknown_message(kind: str, value: str, valid: list[str]) -> str:
    """One line: the bad value, the closest valid ones, where to see them all."""
    import difflib

    close = difflib.get_close_matches(value, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(valid[:12]) + (", …" if len(valid) > 12 else "")
    return f"unknown {kind} {value!r}{hint} (valid: {shown}; see `python -m benchmark list {kind}s`)"


_MISSING_COMMA = re.compile(r'"(\s*\n\s*)"')


def parse_lenient_json(text: str) -> Any:
    """``json.loads``, repairing only a missing comma between a string value and the next key."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(_MISSING_COMMA.sub(r'",\1"', text))


LOCAL_PREFIX = "local:"


def read_text(data: DataLayer, key: str) -> str:
    """An upstream file through ``data``, or (``local:<path>``) a file of the project's own
    ``datasets/`` folder (the synthetic world's class names, templates and captions)."""
    if key.startswith(LOCAL_PREFIX):
        return (_registry_path().parent / key[len(LOCAL_PREFIX):]).read_text(encoding="utf-8")
    return data.read_text(key)


def read_lines(data: DataLayer, key: str) -> tuple[str, ...]:
    """Non-empty, stripped lines of an upstream text file (files may lack a final newline)."""
    return tuple(line.strip() for line in read_text(data, key).splitlines() if line.strip())


@dataclass(frozen=True)
class DatasetInfo:
    """Public metadata of a dataset: everything a selector may know about a target."""

    id: str
    name: str
    domain: str
    task: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]

    def prompts(self, classname: str) -> list[str]:
        return [t.replace("{c}", classname) for t in self.templates]


class Catalog:
    """Dataset metadata resolved through a data layer, memoised per instance."""

    def __init__(self, data: DataLayer) -> None:
        self.data = data
        self._infos: dict[str, DatasetInfo] = {}

    @property
    def _lovm_domains(self) -> dict[str, str]:
        return parse_lenient_json(self.data.read_text(LOVM_DOMAINS))

    @property
    def _lovm_tasks(self) -> dict[str, str]:
        return parse_lenient_json(self.data.read_text(LOVM_TASKS))

    def _mll_meta(self, mll_name: str) -> dict[str, str]:
        meta = json.loads(self.data.read_text(MLL_DATASETS))
        return meta["target_dataset"][mll_name]

    def info(self, dataset: str) -> DatasetInfo:
        if dataset not in self._infos:
            e = entry(dataset)
            self._infos[dataset] = DatasetInfo(
                id=dataset,
                name=e["name"],
                domain=self._meta(dataset, e, "domain"),
                task=self._meta(dataset, e, "task"),
                classnames=read_lines(self.data, e["classnames"]),
                templates=read_lines(self.data, e["templates"]),
            )
        return self._infos[dataset]

    def _meta(self, dataset: str, e: dict[str, Any], field: str) -> str:
        source = e[field]
        if source == "lovm":
            table = self._lovm_domains if field == "domain" else self._lovm_tasks
            return table[dataset]
        if source == "mll":
            return self._mll_meta(e["mll"])[field]
        return source

    def captions(self, dataset: str) -> dict[str, list[str]]:
        """SWAB's LLM captions per class name."""
        return self._json_field(dataset, "captions")

    def synonyms(self, dataset: str) -> dict[str, list[str]]:
        """SWAB's LLM synonyms per class name."""
        return self._json_field(dataset, "synonyms")

    def _json_field(self, dataset: str, field: str) -> dict[str, list[str]]:
        key = entry(dataset).get(field)
        if key is None:
            raise KeyError(f"dataset {dataset!r} has no published {field}")
        return json.loads(read_text(self.data, key))
