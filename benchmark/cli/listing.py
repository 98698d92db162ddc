"""``python -m benchmark list WHAT``: the registries (methods, protocols, models, ...)."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["methods", "protocols", "models", "datasets", "features",
                                    "embedders"],
                   help="the registry to list: methods (with their fixed parameters), "
                   "protocols, models (and their protocols), datasets, feature kinds, text "
                   "embedders")
    p.add_argument("--protocol", help="with `models`: one protocol's zoo only (default: every "
                   "protocol's)")


def run(args) -> int:
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
        from benchmark.core.protocol import DEFAULT_PROTOCOL, PROTOCOLS

        rows = [(n + (" (default)" if n == DEFAULT_PROTOCOL else ""), len(p.zoo),
                 len(p.datasets), ",".join(p.gt_sources), p.description)
                for n, p in PROTOCOLS.items()]
        print(tabulate(rows, headers=["protocol", "models", "targets", "ground truth", "about"],
                       tablefmt="github"))
    elif what == "datasets":
        from benchmark.data.catalog import registry

        rows = [(d, e["name"], "side information" if e.get("side_info_only") else "",
                 e.get("loader", "")) for d, e in registry().items()]
        print(tabulate(rows, headers=["dataset", "name", "role", "loader"], tablefmt="github"))
    elif what == "models":
        from benchmark.core.protocol import PROTOCOLS, get_protocol

        names = [args.protocol] if args.protocol else list(PROTOCOLS)
        member: dict[str, list[str]] = {}
        for n in names:
            for m in get_protocol(n).zoo:
                member.setdefault(m, []).append(n)
        rows = [(m, ", ".join(ps)) for m, ps in member.items()]
        print(tabulate(rows, headers=["model", "protocols"], tablefmt="github"))
    elif what == "embedders":
        from benchmark.features.embedders import EMBEDDERS

        rows = [(name, spec.summary) for name, spec in EMBEDDERS.items()]
        print(tabulate(rows, headers=["embedder", "what"], tablefmt="github"))
    elif what == "features":
        from benchmark.features.kinds import KINDS

        rows = [(k.name, k.description, k.extract) for k in KINDS.values()]
        print(tabulate(rows, headers=["kind", "what", "made by"], tablefmt="github"))
    return 0
