"""``python -m benchmark data verify|pull``: the upstream files and their checksums."""

from __future__ import annotations

import argparse

from benchmark.cli.common import add_data_options, data_layer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["verify", "pull"],
                   help="verify: check every declared upstream file's sha256 (mirror, then "
                   "cache); pull: make them all available locally (downloads what is missing "
                   "unless --offline)")
    add_data_options(p)


def run(args) -> int:
    data = data_layer(args)
    if args.action == "verify":
        problems = data.verify()
        from benchmark.data.upstream import declared_files

        for key, problem in problems:
            print(f"{key}: {problem}")
        n = len(declared_files())
        print(f"{n - len(problems)}/{n} upstream files present and verified "
              f"(mirror: {data.mirror}, cache: {data.cache})")
        return 1 if problems else 0
    paths = data.pull()
    print(f"{len(paths)} upstream files available")
    return 0
