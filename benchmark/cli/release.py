"""``python -m benchmark release VERSION``: freeze the leaderboard's protocols under a version.

Writes ``leaderboard/releases/VERSION/`` (:mod:`benchmark.core.release`): every protocol of
``leaderboard/runs.toml`` (or ``--protocols``) with its hash and frozen ground truth, and the
pack checksums ``runs.toml`` pins (``[packs] pinned``).
"""

from __future__ import annotations

import argparse

from benchmark.cli.common import add_data_options, csv_list, data_layer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("version", help="e.g. v1")
    p.add_argument("--protocols", help="default: the protocols of leaderboard/runs.toml")
    p.add_argument("--root", help="releases directory (default leaderboard/releases)")
    add_data_options(p)


def run(args) -> int:
    from pathlib import Path

    from benchmark.core.protocol import get_protocol
    from benchmark.core.release import make_release
    from benchmark.report.leaderboard import load_spec, pinned_packs

    spec = load_spec()
    names = csv_list(args.protocols) or list(spec["protocol"])
    data = data_layer(args)
    pdatas = [get_protocol(n).load(data) for n in names]
    out = make_release(args.version, pdatas, pinned_packs(spec),
                       Path(args.root) if args.root else None)
    from benchmark.core.submission import protocol_hash

    for pd_ in pdatas:
        print(f"{pd_.protocol.name}: hash {protocol_hash(pd_)[:12]}")
    print(f"wrote release {args.version} to {out}")
    return 0
