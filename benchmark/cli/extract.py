"""``python -m benchmark extract <kind>``: the heavy stage (torch), one subcommand per kind.

Kinds are declared here by name -> ``"module:function"`` pairs; the modules (and torch) are
imported only when that kind runs, so the light commands never pay for them.

``extract all`` runs several kinds one after the other with the same shared options
(protocol, models, store, device, ``--backend ray`` / ``--shard i/N``) and each kind's own
defaults: every feature kind, the ``--kinds`` given, or those the ``--methods`` require. Each
kind skips the records already present, so it extracts exactly what is missing; with
``--shard i/N`` a SLURM array task takes shard i of every kind.
"""

from __future__ import annotations

import argparse
import importlib

# kind -> (module with add_arguments(parser) and run(args), help)
EXTRACTORS: dict[str, tuple[str, str]] = {
    "conductance": ("benchmark.extract.conductance_cmd", "per-image block conductance (DCD)"),
    "text-features": ("benchmark.extract.text_features_cmd", "LOVM's ModelGPT text features"),
    "model-labels": ("benchmark.extract.model_labels_cmd", "MLL model labels on a concept graph (WordNet; minizoo: its world's)"),
    "class-stats": ("benchmark.extract.class_stats_cmd", "per-class accuracy, image and text embeddings (SWAB)"),
    "few-images": ("benchmark.extract.few_images_cmd", "embeddings, zero-shot logits and labels of a few seeded test images"),
    "ground-truth": ("benchmark.extract.ground_truth_cmd", "zero-shot top-1 of new models (CLIP_benchmark protocol)"),
}


ALL = "all"
ALL_PROTOCOL = "dcd48"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, (module, help_text) in EXTRACTORS.items():
        p = sub.add_parser(kind, help=help_text, description=help_text,
                           formatter_class=parser.formatter_class)
        importlib.import_module(module).add_arguments(p)
    help_text = ("several kinds one after the other: every feature kind, --kinds, or the kinds "
                 "--methods require (each with its default settings)")
    p = sub.add_parser(ALL, help=help_text, description=help_text,
                       formatter_class=parser.formatter_class)
    from benchmark.extract import units

    units.add_common_arguments(p, default_protocol=ALL_PROTOCOL)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--kinds", help="comma-separated kinds, in this order (default: every "
                   "feature kind; ground-truth only when named)")
    g.add_argument("--methods", help="the kinds these methods require, e.g. dcd,swab-full "
                   "(registry names, module:Class or path/to/file.py:Class)")


def selected_kinds(args: argparse.Namespace) -> list[str]:
    """The kinds ``extract all`` runs, in order (unknown kinds: one line)."""
    from benchmark.errors import UsageError
    from benchmark.extract.units import csv
    from benchmark.features.kinds import KINDS

    if args.methods:
        import methods as registry

        wanted = [KINDS[k].pack_kind if k in KINDS else k
                  for n in csv(args.methods) for k in registry.resolve(n)[1].requires]
        kinds = [k for k in dict.fromkeys(wanted) if k in EXTRACTORS]
        if not kinds:
            raise UsageError(f"--methods {args.methods}: these methods need no extracted "
                             "features (nothing to do)")
        return kinds
    kinds = list(dict.fromkeys(csv(args.kinds))) or [k for k in EXTRACTORS if k in KINDS]
    for k in kinds:
        if k not in EXTRACTORS:
            raise UsageError(f"--kinds: unknown kind {k!r} (valid: {', '.join(EXTRACTORS)})")
    return kinds


def run_all(args: argparse.Namespace) -> int:
    """Each kind's own command with the shared options of ``args`` and its own defaults."""
    from benchmark.progress import stage

    kinds = selected_kinds(args)
    args.protocol = args.protocol or ALL_PROTOCOL
    code = 0
    for i, kind in enumerate(kinds, 1):
        module = importlib.import_module(EXTRACTORS[kind][0])
        p = argparse.ArgumentParser(prog=f"extract {kind}")
        module.add_arguments(p)
        ns = p.parse_args([])  # the kind's defaults ...
        for name, value in vars(args).items():  # ... and the shared options given
            if name not in ("kind", "func") and hasattr(ns, name):
                setattr(ns, name, value)
        ns.kind = kind
        stage(f"extract all: {kind} ({i}/{len(kinds)})", not args.no_progress)
        code = max(code, module.run(ns) or 0)
    return code


def run(args: argparse.Namespace) -> int:
    if args.kind == ALL:
        return run_all(args)
    module, _ = EXTRACTORS[args.kind]
    return importlib.import_module(module).run(args)
