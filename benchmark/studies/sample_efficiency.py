"""Sample efficiency: a method's metric against the number of unlabeled images.

Varies the method's ``n_source_images``; ``n_target_images`` is a second axis (the product), or
``same`` ties it to ``n_source_images`` (the paper's 1..100 study). The command is
:mod:`benchmark.cli.sample_efficiency`; runs and outputs as in :mod:`benchmark.studies.sweep`.
"""

from __future__ import annotations

from typing import Any

from benchmark.errors import UsageError
from benchmark.studies.sweep import parse_values

SOURCE, TARGET = "n_source_images", "n_target_images"

def counts(flag: str, text: str) -> list[int]:
    try:
        values = parse_values(text)
    except ValueError as err:
        raise UsageError(f"{flag} {err}") from None
    if not all(isinstance(v, (int, float)) and float(v).is_integer() and v >= 1 for v in values):
        raise UsageError(f"{flag} {text!r}: expected positive integers (e.g. 1,5,10,25)")
    return [int(v) for v in values]


def points(n_source: list[int], n_target: list[int] | str | None) -> list[dict[str, Any]]:
    """Grid points: n_target outer (one line each), n_source inner."""
    if n_target is None:
        return [{SOURCE: n} for n in n_source]
    if n_target == "same":
        return [{SOURCE: n, TARGET: n} for n in n_source]
    return [{SOURCE: s, TARGET: t} for t in n_target for s in n_source]
