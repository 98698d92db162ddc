"""``python -m benchmark extract <kind>``: the heavy stage (torch), one subcommand per kind.

Kinds are declared here by name -> ``"module:function"`` pairs; the modules (and torch) are
imported only when that kind runs, so the light commands never pay for them.
"""

from __future__ import annotations

import argparse
import importlib

# kind -> (module with add_arguments(parser) and run(args), help)
EXTRACTORS: dict[str, tuple[str, str]] = {
    "conductance": ("benchmark.extract.conductance_cmd", "per-image block conductance (DCD)"),
    "text-features": ("benchmark.extract.text_features_cmd", "LOVM's ModelGPT text features"),
    "model-labels": ("benchmark.extract.model_labels_cmd", "MLL model labels on the WordNet graph"),
    "class-stats": ("benchmark.extract.class_stats_cmd", "per-class accuracy, image and text embeddings (SWAB)"),
    "few-images": ("benchmark.extract.few_images_cmd", "embeddings, zero-shot logits and labels of a few seeded test images"),
    "ground-truth": ("benchmark.extract.ground_truth_cmd", "zero-shot top-1 of new models (CLIP_benchmark protocol)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, (module, help_text) in EXTRACTORS.items():
        p = sub.add_parser(kind, help=help_text, description=help_text,
                           formatter_class=parser.formatter_class)
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    module, _ = EXTRACTORS[args.kind]
    return importlib.import_module(module).run(args)
