"""``python -m benchmark features export|import|origin``: feature packs that travel.

    python -m benchmark features export conductance --models A,B packs.tar.gz   # or a directory
    python -m benchmark features export conductance --protocol dcd48 packs.tar.gz  # all it has
    python -m benchmark features import packs.tar.gz                            # or DIR or URL
    python -m benchmark features origin conductance --models A,B                # local / imported

Import verifies every manifest and record checksum before anything is moved and refuses the
whole export with one line naming the file otherwise (:mod:`benchmark.features.transfer`).
"""

from __future__ import annotations

import argparse

from benchmark.cli.common import csv_list
from benchmark.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    e = sub.add_parser("export", help="write packs to a directory or an archive (.tar.gz, .zip)")
    e.add_argument("kind", help="pack kind: conductance, text-features, class-stats, "
                   "few-images, model-labels, ground-truth")
    e.add_argument("dest", help="a directory (empty or new) or an archive file name")
    e.add_argument("--models", help="comma-separated model ids")
    e.add_argument("--protocol", help="instead of --models: every model of the protocol's zoo "
                   "that has a pack of KIND")
    i = sub.add_parser("import", help="verify and import an export (directory, archive, URL)")
    i.add_argument("source", help="an export: directory, archive file or URL")
    o = sub.add_parser("origin", help="where packs come from (local or imported) and checksums")
    o.add_argument("kind", help="pack kind: conductance, text-features, class-stats, "
                   "few-images, model-labels, ground-truth")
    o.add_argument("--models", required=True, help="comma-separated model ids")
    for q in (e, i, o):
        q.add_argument("--features-dir", help="feature pack directory (default "
                       "$VLMBENCH_FEATURES or ~/.cache/vlmbench/features)")


def run(args) -> int:
    from benchmark.features.store import FeatureStore
    from benchmark.features.transfer import export_packs, import_packs, packs_used

    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    if args.action == "export":
        models = csv_list(args.models)
        if args.protocol and not models:
            from benchmark.core.protocol import get_protocol

            models = [m for m in get_protocol(args.protocol).zoo
                      if store.datasets(args.kind, m)]
            if not models:
                raise UsageError(f"no {args.kind} pack for any model of {args.protocol} in "
                                 f"{store.root}")
        if not models:
            raise UsageError("give --models A,B or --protocol P")
        dest = export_packs(store, args.kind, models, args.dest)
        print(f"exported {len(models)} {args.kind} pack(s) to {dest}")
        return 0
    if args.action == "import":
        done = import_packs(args.source, store)
        for imp in done:
            print(f"{imp.status}: {imp.kind} pack of {imp.model} ({len(imp.datasets)} "
                  f"dataset(s)) -> {store.pack_dir(imp.kind, imp.model)}")
        return 0
    used = packs_used(store, [args.kind], csv_list(args.models))
    for model in csv_list(args.models):
        info = used.get(args.kind, {}).get(model)
        if info is None:
            print(f"{model}: no {args.kind} pack in {store.root}")
        else:
            src = f" from {info['source']}" if info.get("source") else ""
            print(f"{model}: {info['origin']}{src}, manifest sha256 {info['manifest_sha256']}")
    return 0
