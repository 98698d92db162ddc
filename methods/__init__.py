"""Method registry: name -> ``"module:Class"`` plus fixed parameters, imported lazily.

A variant is an entry with fixed parameters (``"dcd-cosine"``), never a flag deep inside a
class. Outside code needs no entry: ``--methods mypkg.mod:MySelector`` works too, and so does
a file anywhere on disk, ``--methods path/to/mymethod.py:MySelector``.
To add a method: write one module with a :class:`methods.base.Selector` subclass and add one
line here.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class MethodSpec:
    target: str  # "module:Class"
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    summary: str = ""


def _spec(target: str, summary: str, **params: Any) -> MethodSpec:
    return MethodSpec(target, MappingProxyType(params), summary)


REGISTRY: dict[str, MethodSpec] = {
    "inb": _spec("methods.inb:ImageNetBaseline", "ImageNet-1k accuracy"),
    "avgrank": _spec("methods.avgrank:AverageRank", "mean rank over the source datasets"),
    "random": _spec("methods.chance:RandomSelector", "seeded random scores (lower bound)"),
    "modelgpt": _spec("methods.modelgpt:ModelGPT", "LOVM ModelGPT: linear regression on "
                      "INB,C,G text features", features=("INB", "C", "G")),
    "modelgpt-noinb": _spec("methods.modelgpt:ModelGPT", "ModelGPT without the ImageNet "
                            "score: C,G text features", features=("C", "G")),
    # ModelGPT's other regressors (issue 13): LOVM's models with LOVM's PARAMETERS grids (tuned
    # on the sources by GroupKFold over source datasets; LOVM: cv=10 over rows), SWAB's Huber;
    # fixed random states (methods.modelgpt.REGRESSORS)
    "modelgpt-lasso": _spec("methods.modelgpt:ModelGPT", "ModelGPT (INB,C,G), Lasso, LOVM's alpha "
                            "grid", regressor="lasso", grid_search=True),
    "modelgpt-gbr": _spec("methods.modelgpt:ModelGPT", "ModelGPT (INB,C,G), gradient boosting "
                          "(random_state 0), LOVM's loss x alpha grid", regressor="gbr",
                          grid_search=True),
    "modelgpt-svr": _spec("methods.modelgpt:ModelGPT", "ModelGPT (INB,C,G), SVR, LOVM's kernel x "
                          "degree grid", regressor="svr", grid_search=True),
    "modelgpt-mlp": _spec("methods.modelgpt:ModelGPT", "ModelGPT (INB,C,G), MLP (random_state 0), "
                          "LOVM's hidden sizes x learning rate grid", regressor="mlp",
                          grid_search=True),
    "modelgpt-huber": _spec("methods.modelgpt:ModelGPT", "ModelGPT (INB,C,G), Huber regression "
                            "with SWAB's settings (no grid)", regressor="huber"),
    "dcd": _spec("methods.dcd:DCDSelector", "directional conductance divergence (asymmetric)"),
    "dcd-cosine": _spec("methods.dcd:DCDSelector", "DCD ablation: cosine of profiles", similarity="cosine"),
    "dcd-jsd": _spec("methods.dcd:DCDSelector", "DCD ablation: JSD of softmax profiles", similarity="jsd"),
    "mll": _spec("methods.mll.selector:MLL", "MLL: model labels on a WordNet graph, top-5 node matching of LLM class captions, mean reuse metric (alpha 0.7)"),
    # SWAB (methods/swab/selectors.py says what each variant computes and how it differs from the paper)
    "swab-text": _spec("methods.swab.selectors:SWABText", "SWAB on public data: ModelGPT (INB,C,G) + OT "
                       "transfer of dataset-level source ranks, Borda 0.5/0.5"),
    "swab": _spec("methods.swab.selectors:SWABText", "alias of swab-text: the public-data reduction of "
                  "SWAB (the paper's full method is swab-full)"),
    "swab-ot-text": _spec("methods.swab.selectors:RankTransfer", "SWAB's ranking 2 alone: OT transfer of "
                          "dataset-level source ranks (class names + ground truth only)"),
    "swab-full": _spec("methods.swab.selectors:SWAB", "SWAB (paper): gap-corrected ModelGPT (INB,GAP_C,"
                       "GAP_G) + OT transfer of class-level ranks; needs class-stats packs"),
    "swab-c": _spec("methods.swab.selectors:SWAB", "SWAB-C: ModelGPT without gap correction (INB,C,G) + "
                    "class-level rank transfer", features=("INB", "C", "G")),
    "swab-m": _spec("methods.swab.selectors:SWAB", "SWAB-M: gap-corrected ModelGPT alone (no rank "
                    "transfer)", weights=(1.0, 0.0)),
    "swab-m-noinb": _spec("methods.swab.selectors:SWAB", "SWAB-M without INB: gap-corrected ModelGPT "
                          "(GAP_C,GAP_G) alone", features=("GAP_C", "GAP_G"), weights=(1.0, 0.0)),
    "swab-ot": _spec("methods.swab.selectors:ClassRankTransfer", "SWAB's 'OT weighted rank': OT "
                     "transfer of class-level source ranks alone; needs class-stats packs"),
    # issue 14: simple field baselines (methods/semantic.py, methods/completion.py)
    "semantic-transfer": _spec("methods.semantic:SemanticTransfer", "semantic proxy (DCD paper): mean "
                               "'a photo of {c}.' embedding per task (shared MiniLM), DCD softmin over "
                               "source ranks"),
    "semantic-transfer-own": _spec("methods.semantic:OwnTextSemanticTransfer", "semantic proxy with each "
                                   "model's own text tower (class-stats packs), DCD softmin over source ranks"),
    "matrix-completion": _spec("methods.completion:MatrixCompletion", "inductive low-rank completion of the "
                               "accuracy table, target column from task text embeddings (kernel ridge); "
                               "rank, lambda chosen by leave-one-source-out"),
    # issue 14, few-image methods (methods/transferability.py; kinds few-images / few-labelled-images)
    "zs-maxprob": _spec("methods.transferability:ZeroShotMaxProb", "mean max-softmax of the zero-shot "
                        "predictions on a few unlabelled target images"),
    "zs-entropy": _spec("methods.transferability:ZeroShotEntropy", "minus the mean zero-shot prediction "
                        "entropy on a few unlabelled target images"),
    "leep": _spec("methods.transferability:LEEP", "LABELLED target images: LEEP of the zero-shot class "
                  "distribution (Nguyen et al. 2020)"),
    "nce": _spec("methods.transferability:NCE", "LABELLED target images: NCE of the zero-shot hard "
                 "predictions (Tran et al. 2019)"),
    "h-score": _spec("methods.transferability:HScore", "LABELLED target images: H-score of the image "
                     "embeddings (Bao et al. 2019); degenerate when images <= width"),
    "h-score-shrunk": _spec("methods.transferability:HScoreShrunk", "LABELLED target images: Ledoit-Wolf "
                            "regularised H-score (Ibrahim et al. 2023)"),
    "logme": _spec("methods.transferability:LogME", "LABELLED target images: LogME of the image "
                   "embeddings (You et al. 2021)"),
}


class UnknownMethodError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _import(target: str) -> type:
    module, _, attr = target.rpartition(":")
    if not (attr.isidentifier() and (module.endswith(".py") or _DOTTED.fullmatch(module))):
        raise UnknownMethodError(f"bad method path {target!r}: expected 'package.module:Class' "
                                 "(dotted Python names) or 'path/to/file.py:Class'")
    try:
        if module.endswith(".py"):
            return getattr(_import_file(module), attr)
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, OSError) as err:
        hint = ""
        if isinstance(err, ModuleNotFoundError) and err.name == module.split(".")[0]:
            hint = (f" (not importable from here; give the file's path instead, e.g. "
                    f"path/to/{module.replace('.', '/')}.py:{attr})")
        raise UnknownMethodError(f"cannot import {target!r}: {err}{hint}") from None
    return obj


def _import_file(path: str):
    """The module in the file ``path``, importable under its stem afterwards (so that
    parallel workers and pickles find it)."""
    import sys
    from pathlib import Path

    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ImportError(f"no file {path}")
    name = file.stem
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == file:
        return loaded
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def resolve(name: str) -> tuple[str, type, dict[str, Any]]:
    """``(display name, class, fixed params)`` of a registry name, a ``module:Class`` path or
    a ``path/to/file.py:Class`` path."""
    from methods.base import Selector

    if name in REGISTRY:
        spec = REGISTRY[name]
        cls = _import(spec.target)
        return name, cls, dict(spec.params)
    if ":" in name:
        cls = _import(name)
        if not (isinstance(cls, type) and issubclass(cls, Selector)):
            raise UnknownMethodError(f"{name!r} is not a subclass of methods.base.Selector")
        return (cls.name or name), cls, {}
    from benchmark.data.catalog import unknown_message

    raise UnknownMethodError(unknown_message("method", name, sorted(REGISTRY)))


def make(name: str, **overrides: Any):
    """A fresh selector instance for a registry name or ``module:Class`` path."""
    _, cls, params = resolve(name)
    return cls(**{**params, **overrides})
