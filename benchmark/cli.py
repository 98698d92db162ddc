"""Command line: thin handlers over library functions; heavy modules imported inside handlers.

    python -m benchmark run --methods inb,avgrank,random [--protocol dcd48] [--seeds 10]
    python -m benchmark list methods|protocols|models|datasets|features
    python -m benchmark leaderboard [--check]
    python -m benchmark check methods.inb:ImageNetBaseline
    python -m benchmark data verify|pull
    python -m benchmark extract <kind> ...
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("benchmark")


class CLIError(Exception):
    """Printed as one line, exit status 2."""


# -- shared options ----------------------------------------------------------------------
def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", help="local mirror of upstream files (default: $VLMBENCH_MIRROR)")
    p.add_argument("--offline", action="store_true", help="never download upstream files")


def _data_layer(args):
    from benchmark.data import DataLayer

    return DataLayer(mirror=args.mirror, online=False if args.offline else None)


def _parse_seeds(text: str | None):
    """'10' -> seeds 0..9; '0,3,7' -> those seeds."""
    if text is None:
        return None
    try:
        if "," in text:
            return tuple(int(s) for s in text.split(",") if s.strip())
        n = int(text)
    except ValueError:
        raise CLIError(f"--seeds {text!r}: give a count (10) or a list (0,1,2)") from None
    if n < 1:
        raise CLIError(f"--seeds {text!r}: need at least one seed")
    return tuple(range(n))


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _parse_param(text: str) -> tuple[str, str, object]:
    """'dcd.beta=2.5' -> ('dcd', 'beta', 2.5)."""
    key, sep, value = text.partition("=")
    method, dot, name = key.partition(".")
    if not sep or not dot:
        raise CLIError(f"--set {text!r}: expected METHOD.PARAM=VALUE (e.g. dcd.beta=2.5)")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return method, name, parsed


# -- run ---------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from benchmark import results
    from benchmark.features import FeatureStore
    from benchmark.harness import Harness, resolve_methods
    from benchmark.metrics import MetricConfig
    from benchmark.protocol import get_protocol

    protocol = get_protocol(args.protocol)
    if args.models:
        protocol = protocol.restrict_zoo(_csv(args.models))
    if args.datasets:
        protocol = protocol.restrict_datasets(_csv(args.datasets))
    seeds = _parse_seeds(args.seeds)
    if seeds is not None:
        protocol = protocol.with_options(seeds=seeds)
    if args.tau_variant or args.ndcg_ideal:
        protocol = protocol.with_options(metrics=MetricConfig(
            ndcg_ideal=args.ndcg_ideal or protocol.metrics.ndcg_ideal,
            tau_variant=args.tau_variant or protocol.metrics.tau_variant,
        ))
    names = _csv(args.methods)
    if not names:
        raise CLIError("--methods is empty (e.g. --methods inb,avgrank,random)")
    overrides: dict[str, dict] = {}
    for item in args.set or []:
        method, name, value = _parse_param(item)
        overrides.setdefault(method, {})[name] = value
    methods = resolve_methods(names, overrides)
    unknown = set(overrides) - set(names) - {m.name for m in methods}
    if unknown:
        raise CLIError(f"--set names method(s) not in --methods: {sorted(unknown)}")
    started = time.perf_counter()
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    harness = Harness.from_data(protocol, _data_layer(args), store, args.allow_random_init,
                                allow_partial=args.allow_partial)
    result = harness.run(methods, skip_unavailable=args.skip_unavailable,
                         progress=not args.no_progress,
                         common_candidates=args.common_candidates)
    out = Path(args.out) if args.out else results.default_out_dir(protocol.name)
    elapsed = time.perf_counter() - started
    results.write(result, out, extra={
        "data": harness.ctx.data.describe(),
        "features_dir": str(store.root),
        "wall_time_s": round(elapsed, 3),
        "command": " ".join(sys.argv),
    })
    print(_summary(result))
    print(f"wrote {out} ({elapsed:.1f} s)")
    return 0


def _summary(result) -> str:
    from tabulate import tabulate

    from benchmark.leaderboard import method_coverage, summarize

    table = summarize(result.scores)
    if table.empty:
        return "(no scores)"
    table.insert(len(table.columns) - 1, "coverage",
                 table["method"].map(method_coverage(result.coverage)).fillna(""))
    return tabulate(table, headers="keys", tablefmt="github", showindex=False)


# -- list --------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from tabulate import tabulate

    what = args.what
    if what == "methods":
        import methods

        rows = []
        for name, spec in methods.REGISTRY.items():
            _, cls, params = methods.resolve(name)
            rows.append((name, spec.target, ",".join(cls.requires) or "-",
                         json.dumps(params) if params else "", spec.summary))
        print(tabulate(rows, headers=["method", "class", "requires", "params", "summary"],
                       tablefmt="github"))
    elif what == "protocols":
        from benchmark.protocol import DEFAULT_PROTOCOL, PROTOCOLS

        rows = [(n + (" (default)" if n == DEFAULT_PROTOCOL else ""), len(p.zoo),
                 len(p.datasets), ",".join(p.gt_sources), p.description)
                for n, p in PROTOCOLS.items()]
        print(tabulate(rows, headers=["protocol", "models", "targets", "ground truth", "about"],
                       tablefmt="github"))
    elif what == "datasets":
        from benchmark.catalog import registry

        rows = [(d, e["name"], "side information" if e.get("side_info_only") else "",
                 e.get("loader", "")) for d, e in registry().items()]
        print(tabulate(rows, headers=["dataset", "name", "role", "loader"], tablefmt="github"))
    elif what == "models":
        from benchmark.protocol import PROTOCOLS, get_protocol

        names = [args.protocol] if args.protocol else list(PROTOCOLS)
        member: dict[str, list[str]] = {}
        for n in names:
            for m in get_protocol(n).zoo:
                member.setdefault(m, []).append(n)
        rows = [(m, ", ".join(ps)) for m, ps in member.items()]
        print(tabulate(rows, headers=["model", "protocols"], tablefmt="github"))
    elif what == "embedders":
        from benchmark.text import EMBEDDERS

        rows = [(name, spec.summary) for name, spec in EMBEDDERS.items()]
        print(tabulate(rows, headers=["embedder", "what"], tablefmt="github"))
    elif what == "features":
        from benchmark.providers import KINDS

        rows = [(k.name, k.description, k.extract) for k in KINDS.values()]
        print(tabulate(rows, headers=["kind", "what", "made by"], tablefmt="github"))
    return 0


# -- check -------------------------------------------------------------------------------
def cmd_check(args) -> int:
    from benchmark.check import check_selector

    failed = 0
    for target in args.selectors:
        for r in check_selector(target):
            mark = "PASS" if r.passed else "FAIL"
            print(f"{mark}  {target}: {r.check}" + (f" -- {r.detail}" if r.detail else ""))
            failed += not r.passed
    return 1 if failed else 0


# -- data --------------------------------------------------------------------------------
def cmd_data(args) -> int:
    data = _data_layer(args)
    if args.action == "verify":
        problems = data.verify()
        from benchmark.data import declared_files

        for key, problem in problems:
            print(f"{key}: {problem}")
        n = len(declared_files())
        print(f"{n - len(problems)}/{n} upstream files present and verified "
              f"(mirror: {data.mirror}, cache: {data.cache})")
        return 1 if problems else 0
    paths = data.pull()
    print(f"{len(paths)} upstream files available")
    return 0


# -- leaderboard -------------------------------------------------------------------------
def cmd_leaderboard(args) -> int:
    from benchmark import leaderboard

    return leaderboard.main(args)


# -- extract -----------------------------------------------------------------------------
def cmd_extract(args) -> int:
    from benchmark.extract import cli as extract_cli

    return extract_cli.main(args)


# Further subcommands living in their own modules: name -> (module, help). Each module defines
# ``add_arguments(parser)`` and ``run(args) -> int``; it is imported when the parser is built,
# so it must keep heavy imports (torch) inside ``run``.
PLUGIN_COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": ("benchmark.sweep", "a method's metrics over a grid of its parameters (+ heatmap)"),
    "sample-efficiency": ("benchmark.sample_efficiency", "metrics vs number of images (+ plot)"),
    "compare": ("benchmark.compare", "two results directories: means, differences, paired tests"),
}


def build_parser() -> argparse.ArgumentParser:
    from benchmark.protocol import DEFAULT_PROTOCOL

    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run methods on a protocol (leave-one-dataset-out)")
    p.add_argument("--methods", required=True, help="comma-separated names or module:Class")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    p.add_argument("--seeds", help="number of seeds (default: the protocol's 10) or a list")
    p.add_argument("--models", help="restrict the protocol's zoo to these model ids")
    p.add_argument("--datasets", help="restrict the protocol's datasets (targets and sources)")
    p.add_argument("--out", help="results directory (default results/<protocol>/<timestamp>)")
    p.add_argument("--set", action="append", metavar="METHOD.PARAM=VALUE",
                   help="override a parameter of a requested method (repeatable)")
    p.add_argument("--tau-variant", choices=["clean", "lovm"])
    p.add_argument("--ndcg-ideal", choices=["intersection", "truth_topk"])
    p.add_argument("--features-dir", help="feature pack directory (default $VLMBENCH_FEATURES "
                   "or ~/.cache/vlmbench/features)")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="skip methods whose features are missing instead of failing")
    p.add_argument("--common-candidates", action="store_true",
                   help="rank, on every target, only the models all requested methods cover")
    p.add_argument("--allow-partial", action="store_true",
                   help="rank only the models that have a method's features (coverage reported)")
    p.add_argument("--allow-random-init", action="store_true",
                   help="accept feature packs extracted with --random-init (smoke tests)")
    p.add_argument("--no-progress", action="store_true")
    _add_data_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="list methods, protocols, models, datasets, features")
    p.add_argument("what", choices=["methods", "protocols", "models", "datasets", "features",
                                    "embedders"])
    p.add_argument("--protocol", help="models of one protocol only")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("check", help="conformance checks of selectors (names or module:Class)")
    p.add_argument("selectors", nargs="+")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("data", help="upstream files: verify checksums or pull them")
    p.add_argument("action", choices=["verify", "pull"])
    _add_data_options(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("leaderboard", help="regenerate leaderboard/*.md from results")
    from benchmark.leaderboard import add_arguments

    add_arguments(p)
    _add_data_options(p)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("extract", help="extraction stage (needs the [extract] extra: torch)")
    from benchmark.extract.cli import add_arguments as add_extract

    add_extract(p)
    p.set_defaults(func=cmd_extract)

    import importlib

    for name, (module, help_text) in PLUGIN_COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def _one_line_errors() -> tuple[type, ...]:
    """Errors that carry a user-facing message: printed as one line, no traceback."""
    from benchmark.catalog import UnknownDatasetError
    from benchmark.data import UpstreamError
    from benchmark.extract.models import ModelLoadError
    from benchmark.features import FeaturePackError
    from benchmark.harness import MissingFeaturesError, SelectorError
    from benchmark.loaders import LoaderError
    from benchmark.text import TextEmbeddingError
    from methods import UnknownMethodError

    return (CLIError, UpstreamError, FeaturePackError, UnknownMethodError, UnknownDatasetError,
            SelectorError, MissingFeaturesError, TextEmbeddingError, ModelLoadError, LoaderError,
            FileExistsError, KeyError, ValueError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except _one_line_errors() as err:
        if args.verbose:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
