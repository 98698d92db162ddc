"""``python -m benchmark fidelity [--out leaderboard/fidelity.md] [--check]``.

The upstream code's numbers reproduced under the ``*-upstream`` protocols next to the clean
protocol's, one row per (published method, protocol), with the reason for each difference.
Thin layer over :mod:`benchmark.report.fidelity`; a few minutes of CPU (127-subset searches),
hence its own command; CI runs ``fidelity --out leaderboard/fidelity.md --check``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.cli.common import add_data_options, data_layer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="write the page here (e.g. leaderboard/fidelity.md); default: "
                   "print it")
    p.add_argument("--check", action="store_true",
                   help="compare with the file at --out instead of writing it (exit 1 if it "
                   "differs)")
    add_data_options(p)


def run(args) -> int:
    from benchmark.errors import UsageError
    from benchmark.report import fidelity

    if args.check and not args.out:
        raise UsageError("--check compares with --out FILE; give --out")
    text = fidelity.markdown(fidelity.rows(data_layer(args)))
    if not args.out:
        print(text, end="")
        return 0
    out = Path(args.out)
    if args.check:
        same = out.is_file() and out.read_text() == text
        print(f"{out}: {'up to date' if same else 'differs from the regenerated page'}",
              file=sys.stderr if not same else sys.stdout)
        return 0 if same else 1
    from benchmark.features.store import atomic_write_bytes

    atomic_write_bytes(out, text.encode())
    print(f"wrote {out}")
    return 0
