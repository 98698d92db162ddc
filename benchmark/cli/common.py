"""Helpers shared by the command modules: data options, seed/list/parameter parsing, errors.

A leaf module: it imports nothing from the rest of the CLI, so command modules (and the
extraction commands) can use it without import circles.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmark.errors import UsageError

CLIError = UsageError  # the name used before 0.2

# One vocabulary across commands (README "Commands"):
#   --results ROOT   results root: runs go to / are read from ROOT/<protocol>/<run>
#   --out DIR        the exact directory of this command's one output (a run, a sweep)
#   --pages DIR      where the leaderboard's Markdown pages (and figures) go
#   --set METHOD.PARAM=VALUE   a method's parameter (METHOD: a --methods name, its `name`
#                    attribute or its class name)
RESULTS_ROOT = "results"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (when it has one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (text and "default" not in text and "%(default)" not in text
                and default not in (None, False, argparse.SUPPRESS, [])
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


_WARNED: set[str] = set()


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr, once per process, for an old spelling that still works."""
    if old in _WARNED:
        return
    _WARNED.add(old)
    print(f"warning: {old} is deprecated and will be removed after 0.2; use {new}",
          file=sys.stderr)


class DeprecatedAlias(argparse.Action):
    """An old option spelling: stores into the new option's ``dest`` and warns once."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        warn_deprecated(option_string or self.option_strings[0], self.new)
        setattr(namespace, self.dest, values)


def add_deprecated(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    p.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, help=argparse.SUPPRESS,
                   default=argparse.SUPPRESS, **kwargs)


def add_results_option(p: argparse.ArgumentParser, default: str = RESULTS_ROOT,
                       what: str = "runs are written to ROOT/<protocol>/<timestamp>") -> None:
    p.add_argument("--results", metavar="ROOT", default=default,
                   help=f"results root: {what}")


def add_progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars and no stage lines (bars are drawn only on a "
                   "terminal anyway; VLMBENCH_PROGRESS=1 forces them)")


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", help="local mirror of upstream files (default: $VLMBENCH_MIRROR, "
                   "else download)")
    p.add_argument("--offline", action="store_true",
                   help="never download upstream files (also: VLMBENCH_OFFLINE=1)")


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
    """'dcd.beta=2.5' -> ('dcd', 'beta', 2.5); 'pkg.mod:Cls.alpha=1' -> ('pkg.mod:Cls', ...)."""
    key, sep, value = text.partition("=")
    method, dot, name = key.rpartition(".")  # a parameter name never has a dot; a module may
    if not sep or not dot or not method or not name:
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


def add_grid_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", action="append", metavar="METHOD.PARAM=VALUES",
                   help="a grid of a requested method's parameter, e.g. dcd.beta=1,5,10 or "
                   "dcd.beta=1.5:3.5:5 (repeatable); needs --select")
    p.add_argument("--select", choices=["nested"],
                   help="how a --grid point is chosen: nested = in every fold, by leave-one-"
                   "source-out on that fold's sources only (never on the target); the method "
                   "runs as METHOD+nested")
    p.add_argument("--select-metric", default="sum@5",
                   help="the inner metric of --select nested (ndcg|tau|recall|sum@k)")


def nested_methods(names: list[str], grid_items, select, metric: str,
                   overrides: dict[str, dict]) -> tuple[list, dict[str, dict]]:
    """``names`` with every method that has a ``--grid`` replaced by its nested-selection
    class (:func:`methods.nested.nested_class`), and the parameters keyed as the harness
    wants them. Without ``--grid``: ``names`` and ``overrides`` unchanged."""
    if not grid_items:
        if select:
            raise UsageError("--select needs a --grid (e.g. --grid dcd.beta=1,5,10)")
        return list(names), overrides
    if select != "nested":
        raise UsageError("--grid needs --select nested (parameters chosen on each fold's "
                         "sources; a choice on the test targets is not offered)")
    import methods as registry
    from benchmark.studies.sweep import parse_values
    from methods.nested import nested_class, parse_metric

    parse_metric(metric)
    grids: dict[str, dict[str, list]] = {}
    for item in grid_items:
        method, name, _ = parse_param(item)
        spec = item.partition("=")[2]
        if method not in names:
            raise UsageError(f"--grid {item!r}: {method!r} is not among --methods")
        if name in grids.get(method, {}):
            raise UsageError(f"--grid {method}.{name} given twice")
        grids.setdefault(method, {})[name] = parse_values(spec)
    out, params = [], dict(overrides)
    for n in names:
        if n not in grids:
            out.append(n)
            continue
        display, cls, fixed = registry.resolve(n)
        base = {**fixed, **params.pop(n, {}), **params.pop(display, {})}
        bad = sorted((set(base) | set(grids[n])) - set(cls._param_names()))
        if bad:
            raise UsageError(f"unknown parameter {bad[0]!r} for method {display!r} "
                             f"(valid: {', '.join(cls._param_names()) or 'none'})")
        nested = nested_class(cls) if display == (cls.name or cls.__name__) else \
            _renamed(nested_class(cls), display)
        out.append(nested)
        params[nested.name] = {"grid": grids[n], "params": base, "metric": metric}
    return out, params


def _renamed(cls: type, display: str) -> type:
    """A registry variant (e.g. dcd-cosine) keeps its own name: ``dcd-cosine+nested``."""
    from methods.nested import SUFFIX

    return type(cls.__name__, (cls,), {"name": f"{display}{SUFFIX}", "__module__": cls.__module__})
