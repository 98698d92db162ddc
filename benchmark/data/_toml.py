"""TOML reading on every supported Python (tomllib from 3.11, tomli before)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib


def load_toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def loads_toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def registry_path() -> Path:
    """``datasets/registry.toml`` (a wheel ships it as ``benchmark/_datasets``). Here, in the
    leaf module, so that the data layer's helpers can read it without import circles."""
    package = Path(__file__).resolve().parents[1]
    for p in (package / "_datasets" / "registry.toml",
              package.parent / "datasets" / "registry.toml"):
        if p.is_file():
            return p
    raise FileNotFoundError("datasets/registry.toml not found next to the benchmark package")
