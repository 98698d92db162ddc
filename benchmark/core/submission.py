"""Submitted predictions: scores computed elsewhere, scored here exactly as a local run.

A submission is ``predictions.csv`` (columns ``seed, target, model, score``, optionally
``method``: the layout of a run's ``predictions.csv``) and, beside it, ``submission.toml``::

    method = "my-method"                 # shown as "my-method (submitted)"
    link = "https://arxiv.org/abs/..."   # paper or code
    protocol = "dcd48"
    protocol_hash = "3f2a..."            # python -m benchmark score --init prints it
    date = "2026-12-03"
    description = "..."                  # optional; also: authors, features (free text)

The **protocol hash** (:func:`protocol_hash`) is the sha256 of the canonical JSON of what a
score depends on: the protocol's name, zoo and datasets, every ground-truth value (targets and
the ImageNet-1k side information, ``repr`` of the float), and the metric settings (k values,
NDCG ideal, τ variant). Seeds are not in it (a submission states its own). A submission made on
another version of the protocol (a changed table, zoo or metric) has another hash and is refused.

Validation is strict and every problem is one line: unknown or non-evaluable targets, models
outside the zoo or without ground truth on the target, missing candidates or targets for a
seed, duplicated (seed, target, model) rows, non-finite scores, a method name taken by a
registered method. Scoring uses :meth:`MetricConfig.evaluate`, as the harness does, so a run's
own predictions round-trip to identical scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date as _date
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.harness import SCORE_COLUMNS, RunResult
from benchmark.core.protocol import ProtocolData
from benchmark.errors import UsageError

SUFFIX = " (submitted)"
META_FILE = "submission.toml"
PRED_COLUMNS = ("seed", "target", "model", "score")
REQUIRED_META = ("method", "link", "protocol", "protocol_hash", "date")
OPTIONAL_META = ("description", "authors", "features", "release")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class SubmissionError(UsageError):
    """A submission is malformed or does not match the protocol (one line)."""


def protocol_hash(pdata: ProtocolData) -> str:
    """sha256 of the protocol's zoo, datasets, ground-truth values and metric settings."""
    proto = pdata.protocol
    t = pdata.ground_truth.table
    cells = sorted((str(m), str(d), repr(float(v)))
                   for m, d, v in zip(t["model"], t["dataset"], t["acc1"], strict=True))
    blob = {
        "name": proto.name,
        "zoo": sorted(proto.zoo),
        "datasets": sorted(proto.datasets),
        "ground_truth": cells,
        "metrics": dataclasses.asdict(proto.metrics),
    }
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()


def display_name(method: str) -> str:
    return f"{method}{SUFFIX}"


def is_submitted(name: str) -> bool:
    return name.endswith(SUFFIX)


def read_meta(path: Path) -> dict[str, Any]:
    from benchmark.data._toml import load_toml

    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path} missing: a submission needs its provenance file beside the "
                              "predictions (python -m benchmark score PREDICTIONS.csv --protocol P "
                              "--init NAME --link URL writes one)")
    try:
        meta = load_toml(path)
    except Exception as err:  # noqa: BLE001 - any parse error is one line
        raise SubmissionError(f"{path}: not valid TOML ({err})") from None
    return validate_meta(meta, str(path))


def validate_meta(meta: Mapping[str, Any], where: str) -> dict[str, Any]:
    meta = dict(meta)
    missing = [k for k in REQUIRED_META if not meta.get(k)]
    if missing:
        raise SubmissionError(f"{where}: missing field(s) {', '.join(missing)} (required: "
                              f"{', '.join(REQUIRED_META)})")
    unknown = sorted(set(meta) - set(REQUIRED_META) - set(OPTIONAL_META))
    if unknown:
        raise SubmissionError(f"{where}: unknown field(s) {', '.join(unknown)} (fields: "
                              f"{', '.join(REQUIRED_META + OPTIONAL_META)})")
    if isinstance(meta["date"], (_date, datetime)):
        meta["date"] = meta["date"].isoformat()
    for k, v in meta.items():
        if not isinstance(v, str):
            raise SubmissionError(f"{where}: field {k!r} must be a string, got {v!r}")
    name = meta["method"]
    if not _NAME.match(name) or is_submitted(name):
        raise SubmissionError(f"{where}: method name {name!r}: letters, digits, '.', '_', '+', '-' "
                              "only (at most 64)")
    import methods as registry

    try:
        registry.resolve(name)
    except Exception:  # noqa: BLE001 - not a registered name: good
        pass
    else:
        raise SubmissionError(f"{where}: method name {name!r} is a computed method of this "
                              f"benchmark; a submission takes its own name (e.g. {name}-mine)")
    if not re.match(r"^https?://\S+$", meta["link"]):
        raise SubmissionError(f"{where}: link {meta['link']!r} must be an http(s) URL to the "
                              "paper or code")
    try:
        _date.fromisoformat(meta["date"][:10])
    except ValueError:
        raise SubmissionError(f"{where}: date {meta['date']!r} is not YYYY-MM-DD") from None
    return meta


def read_predictions(path: Path, select: str | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path} does not exist")
    try:
        preds = pd.read_csv(path, dtype={"target": str, "model": str},
                            keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SubmissionError(f"{path}: not a readable CSV ({err})".splitlines()[0]) from None
    cols = set(preds.columns)
    missing = [c for c in PRED_COLUMNS if c not in cols]
    extra = sorted(cols - set(PRED_COLUMNS) - {"method"})
    if missing or extra:
        raise SubmissionError(f"{path}: columns must be {', '.join(PRED_COLUMNS)} (and optionally "
                              f"method); missing {missing}, unexpected {extra}")
    if "method" in cols:
        names = sorted(preds["method"].astype(str).unique())
        if select is not None:
            if select not in names:
                raise SubmissionError(f"{path}: no method {select!r} (has {', '.join(names)})")
            preds = preds[preds["method"].astype(str) == select]
        elif len(names) > 1:
            raise SubmissionError(f"{path} holds {len(names)} methods ({', '.join(names)}); "
                                  "keep one, or choose it with --select NAME")
        preds = preds.drop(columns="method")
    elif select is not None:
        raise SubmissionError(f"{path} has no method column; --select needs one")
    if preds.empty:
        raise SubmissionError(f"{path}: no predictions")
    seeds = pd.to_numeric(preds["seed"], errors="coerce")
    bad = preds.loc[~(seeds.notna() & (seeds == seeds.round()) & (seeds >= 0)), "seed"]
    if len(bad):
        raise SubmissionError(f"{path}: seed {bad.iloc[0]} is not an integer >= 0")
    scores = pd.to_numeric(preds["score"], errors="coerce")
    bad_rows = preds.index[~np.isfinite(scores.to_numpy(float))]
    if len(bad_rows):
        r = preds.loc[bad_rows[0]]
        raise SubmissionError(f"{path}: non-finite score {r['score']!r} for {r['model']} on "
                              f"{r['target']} (seed {r['seed']}); every score must be a number")
    out = pd.DataFrame({"seed": seeds.astype(int), "target": preds["target"].astype(str),
                        "model": preds["model"].astype(str), "score": scores.astype(float)})
    dup = out.duplicated(["seed", "target", "model"], keep=False)
    if dup.any():
        r = out[dup].iloc[0]
        raise SubmissionError(f"{path}: duplicated row for {r['model']} on {r['target']} (seed "
                              f"{r['seed']}); one score per (seed, target, model)")
    return out.reset_index(drop=True)


def check_against(preds: pd.DataFrame, pdata: ProtocolData, where: str) -> None:
    """Every target known and evaluable, every model in the zoo with ground truth there, every
    candidate of every evaluable target scored for every seed."""
    proto = pdata.protocol
    targets = pdata.evaluable_targets()
    zoo = set(proto.zoo)
    for t in sorted(set(preds["target"]) - set(targets)):
        why = ("it has fewer than 2 candidates" if t in proto.datasets
               else "not a target of the protocol")
        raise SubmissionError(f"{where}: unknown target {t!r} for {proto.name} ({why}; "
                              f"targets: {', '.join(targets)})")
    for m in sorted(set(preds["model"]) - zoo):
        raise SubmissionError(f"{where}: unknown model {m!r}: not in the {proto.name} zoo "
                              f"({len(zoo)} models; python -m benchmark list models)")
    for seed, g in preds.groupby("seed", sort=True):
        have = set(g["target"])
        missing_t = [t for t in targets if t not in have]
        if missing_t:
            raise SubmissionError(f"{where}: seed {seed} has no predictions on target(s) "
                                  f"{', '.join(missing_t)}")
        for t, gt in g.groupby("target", sort=True):
            cands = set(pdata.candidates(t))
            got = set(gt["model"])
            if got - cands:
                m = sorted(got - cands)[0]
                raise SubmissionError(f"{where}: model {m!r} has no ground truth on {t}: not a "
                                      "candidate there (python -m benchmark list models)")
            if cands - got:
                miss = sorted(cands - got)
                raise SubmissionError(f"{where}: seed {seed}, target {t}: {len(miss)} candidate(s) "
                                      f"not scored ({', '.join(miss[:3])}{', ...' if len(miss) > 3 else ''})")


def score(preds: pd.DataFrame, pdata: ProtocolData, method: str) -> RunResult:
    """The tidy tables of a local run, for predictions made elsewhere (method ``method``)."""
    from benchmark.core.harness import test_size

    proto = pdata.protocol
    cfg = proto.metrics
    targets = pdata.evaluable_targets()
    truth = {t: pdata.targets_gt.column(t) for t in targets}
    rows, pred_rows = [], []
    for (seed, t), g in preds.groupby(["seed", "target"], sort=True):
        order = list(pdata.candidates(t))  # the harness's order: the zoo's
        s = g.set_index("model")["score"].reindex(order).astype(float)
        # every candidate is scored (validated above): the best of them is the target's best
        rows += [(method, proto.name, int(seed), t, *v)
                 for v in cfg.evaluate(s, truth[t].reindex(s.index), n_test=test_size(t))]
        pred_rows += [(method, int(seed), t, m, float(x)) for m, x in s.items()]
    scores = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    scores = scores.sort_values(["method", "seed", "target", "metric", "k"], kind="stable")
    p = pd.DataFrame(pred_rows, columns=["method", "seed", "target", "model", "score"])
    p = p.sort_values(["method", "seed", "target", "model"], kind="stable")
    cov = pd.DataFrame([(method, t, len(pdata.candidates(t)), len(pdata.candidates(t)), "")
                        for t in targets],
                       columns=["method", "target", "candidates", "protocol_candidates", "uncovered"])
    return RunResult(proto, scores.reset_index(drop=True), p.reset_index(drop=True), cov, [])


def provenance(result: RunResult, meta: Mapping[str, Any], phash: str,
               predictions_sha256: str) -> dict[str, Any]:
    """``run.json`` of a scored submission: the keys of a local run's, plus ``submitted``."""
    from benchmark.core.results import git_commit, versions

    proto = result.protocol
    name = display_name(meta["method"])
    return {
        "protocol": {"name": proto.name, "description": proto.description,
                     "zoo": list(proto.zoo), "datasets": list(proto.datasets),
                     "gt_sources": list(proto.gt_sources), "notes": list(proto.notes),
                     "metrics": dataclasses.asdict(proto.metrics), "hash": phash},
        "seeds": sorted(result.scores["seed"].unique().tolist()),
        "methods": {name: {"class": "submitted", "params": {}, "requires": [],
                           "stochastic": result.scores["seed"].nunique() > 1,
                           "citation": meta["link"]}},
        "skipped": {},
        "submitted": {**dict(meta), "predictions_sha256": predictions_sha256,
                      "scored_by": "vlmbench (this code); predictions computed elsewhere"},
        "git": git_commit(),
        "versions": versions(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def score_submission(predictions: Path, pdata: ProtocolData, meta_path: Path | None = None,
                     select: str | None = None) -> tuple[RunResult, dict[str, Any]]:
    """Validate and score a submission; returns the run and its ``run.json``."""
    predictions = Path(predictions)
    meta = read_meta(meta_path or predictions.parent / META_FILE)
    proto = pdata.protocol
    if meta["protocol"] != proto.name:
        raise SubmissionError(f"{predictions}: made for protocol {meta['protocol']!r}, not "
                              f"{proto.name!r}")
    phash = protocol_hash(pdata)
    if meta["protocol_hash"] != phash:
        raise SubmissionError(
            f"{predictions}: protocol hash {meta['protocol_hash'][:12]} does not match "
            f"{proto.name}'s {phash[:12]} (zoo, datasets, ground truth or metric settings "
            "differ: made on another version; score it against its release, --release)")
    preds = read_predictions(predictions, select)
    check_against(preds, pdata, str(predictions))
    result = score(preds, pdata, display_name(meta["method"]))
    sha = hashlib.sha256(predictions.read_bytes()).hexdigest()
    return result, provenance(result, meta, phash, sha)


def template(pdata: ProtocolData, method: str, link: str) -> str:
    """A ``submission.toml`` for ``pdata``'s protocol (the hash filled in)."""
    meta = validate_meta({"method": method, "link": link, "protocol": pdata.protocol.name,
                          "protocol_hash": protocol_hash(pdata),
                          "date": datetime.now(timezone.utc).date().isoformat()}, "--init")
    lines = [f"{k} = {json.dumps(meta[k])}" for k in REQUIRED_META]
    lines.append('description = ""  # optional: what the method does, what it was run on')
    return "\n".join(lines) + "\n"
