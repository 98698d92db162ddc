"""Helpers shared by the command modules: data options, seed/list/parameter parsing, errors.

A leaf module: it imports nothing from the rest of the CLI, so command modules (and the
extraction commands) can use it without import circles.
"""

from __future__ import annotations

import argparse
import json

from benchmark.errors import UsageError

CLIError = UsageError  # the name used before 0.2


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", help="local mirror of upstream files (default: $VLMBENCH_MIRROR)")
    p.add_argument("--offline", action="store_true", help="never download upstream files")


def data_layer(args):
    from benchmark.data.upstream import DataLayer

    return DataLayer(mirror=args.mirror, online=False if args.offline else None)


def parse_seeds(text: str | None):
    """'10' -> seeds 0..9; '0,3,7' -> those seeds."""
    if text is None:
        return None
    try:
        if "," in text:
            return tuple(int(s) for s in text.split(",") if s.strip())
        n = int(text)
    except ValueError:
        raise UsageError(f"--seeds {text!r}: give a count (10) or a list (0,1,2)") from None
    if n < 1:
        raise UsageError(f"--seeds {text!r}: need at least one seed")
    return tuple(range(n))


def csv_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_param(text: str) -> tuple[str, str, object]:
    """'dcd.beta=2.5' -> ('dcd', 'beta', 2.5)."""
    key, sep, value = text.partition("=")
    method, dot, name = key.partition(".")
    if not sep or not dot:
        raise UsageError(f"--set {text!r}: expected METHOD.PARAM=VALUE (e.g. dcd.beta=2.5)")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return method, name, parsed


def one_line_errors() -> tuple[type, ...]:
    """Errors that carry a user-facing message: printed as one line, no traceback."""
    from benchmark.core.harness import MissingFeaturesError, SelectorError
    from benchmark.data.catalog import UnknownDatasetError
    from benchmark.data.upstream import UpstreamError
    from benchmark.extract.loaders import LoaderError
    from benchmark.extract.models import ModelLoadError
    from benchmark.features.embedders import TextEmbeddingError
    from benchmark.features.store import FeaturePackError
    from methods import UnknownMethodError

    return (UsageError, UpstreamError, FeaturePackError, UnknownMethodError, UnknownDatasetError,
            SelectorError, MissingFeaturesError, TextEmbeddingError, ModelLoadError, LoaderError,
            FileExistsError, KeyError, ValueError)
