"""``python -m benchmark score PREDICTIONS.csv --protocol P``: score predictions made elsewhere.

    python -m benchmark score preds.csv --protocol dcd48 --init my-method --link URL  # submission.toml
    python -m benchmark score preds.csv --protocol dcd48                   # validate + score
    python -m benchmark score preds.csv --protocol dcd48 --accept          # + leaderboard/submissions/

Writes a results directory like ``run``'s (``scores.csv``, ``predictions.csv``,
``coverage.csv``, ``run.json`` with a ``submitted`` block); the method is labelled
``NAME (submitted)``. See :mod:`benchmark.core.submission` for the checks and the protocol hash.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from benchmark.cli.common import add_data_options, data_layer
from benchmark.errors import UsageError

SUBMISSIONS = "submissions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", help="CSV with columns seed,target,model,score[,method]")
    p.add_argument("--protocol", required=True, help="protocol name or .toml file")
    p.add_argument("--release", help="score against a frozen release (leaderboard/releases/)")
    p.add_argument("--meta", help=f"provenance file (default: {'submission.toml'} beside the "
                   "predictions)")
    p.add_argument("--select", metavar="METHOD", help="the method to take from a predictions "
                   "file holding several (a run's predictions.csv)")
    p.add_argument("--out", help="results directory (default results/<protocol>/submitted-NAME-<time>)")
    p.add_argument("--init", metavar="NAME", help="write submission.toml for method NAME beside "
                   "the predictions (with the protocol hash) and stop; needs --link")
    p.add_argument("--link", help="with --init: URL of the paper or code")
    p.add_argument("--accept", action="store_true", help="also copy the submission into "
                   "leaderboard/submissions/<protocol>/<NAME>/ (the leaderboard scores it)")
    add_data_options(p)


def run(args) -> int:
    from benchmark.api import score
    from benchmark.core import results, submission
    from benchmark.core.protocol import get_protocol
    from benchmark.core.release import load_release_protocol
    from benchmark.report.leaderboard import SUBMISSIONS_DIR

    preds = Path(args.predictions)
    meta_path = Path(args.meta) if args.meta else preds.parent / submission.META_FILE
    if args.init:
        if not args.link:
            raise UsageError("--init needs --link URL (the paper or code of the method)")
        if meta_path.exists():
            raise UsageError(f"{meta_path} exists; edit it or remove it first")
        pdata = (load_release_protocol(args.release, args.protocol) if args.release
                 else get_protocol(args.protocol).load(data_layer(args)))
        text = submission.template(pdata, args.init, args.link)
        if args.release:
            text += f'release = "{args.release}"\n'
        meta_path.write_text(text)
        print(f"wrote {meta_path} (protocol {pdata.protocol.name}, hash "
              f"{submission.protocol_hash(pdata)[:12]}); check it, then run without --init")
        return 0
    res = score(preds, args.protocol, meta=meta_path, select=args.select, release=args.release,
                mirror=args.mirror, offline=args.offline or None)
    name = res.provenance["submitted"]["method"]
    stamp = results.default_out_dir(res.protocol).name
    out = Path(args.out) if args.out else Path("results") / res.protocol / f"submitted-{name}-{stamp}"
    res.save(out)
    from benchmark.cli.run import summary

    print(summary(res))
    print(f"wrote {out} (protocol hash {res.provenance['protocol']['hash'][:12]})")
    if args.accept:
        if args.release:
            raise UsageError("--accept: the leaderboard scores against the live protocols; a "
                             "submission against a release is kept with that release")
        dest = SUBMISSIONS_DIR / res.protocol / name
        if dest.exists():
            raise UsageError(f"{dest} exists: a submission named {name!r} was accepted already")
        dest.mkdir(parents=True)
        res.predictions.drop(columns="method").to_csv(dest / "predictions.csv", index=False)
        shutil.copyfile(meta_path, dest / submission.META_FILE)
        print(f"accepted into {dest}; regenerate the leaderboard (python -m benchmark "
              "leaderboard --rerun) and commit both")
    return 0
