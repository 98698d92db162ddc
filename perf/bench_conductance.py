"""Time and memory of single-pass block conductance vs one captum ``LayerConductance`` per block.

Run: ``python perf/bench_conductance.py`` (options: ``--help``).

Random-init open_clip towers (``pretrained=None``: nothing is downloaded) and seeded random
images. Speed and memory do not depend on the weights; agreement is reported anyway.

How memory is measured. torch allocates CPU tensors with ``malloc``, which ``tracemalloc`` does
not see, so each method runs in its own fresh subprocess and we read the kernel's resident-set
high-water mark (``VmHWM`` in ``/proc/self/status``). Just before the measured call the mark is
reset (writing ``5`` to ``/proc/self/clear_refs``, Linux >= 4.0) and the current RSS is noted;
"peak" is the high-water mark minus that RSS, i.e. the extra resident memory the call needed on
top of the already-built model. For captum the mark is reset before each block's call and the
largest of the ``L`` peaks is reported ("one captum call"). Before each measurement freed heap
memory is returned to the kernel (glibc ``malloc_trim``); otherwise pages freed while building
the model would be reused without showing up as growth. If ``clear_refs`` is not writable we
fall back to ``ru_maxrss`` minus the RSS before the call (an upper bound: it also counts model
construction) and say so.

Time is reported twice: wall clock, and process CPU time (``time.process_time``, summed over
torch's threads). On a machine shared with other jobs the wall clock of the two subprocesses
measures the load as much as the code; CPU time is the steadier basis for the speedup, and the
load average before/after is printed. Workers run single-threaded by default (``--threads``):
with several threads on a loaded machine, OpenMP threads spin while waiting for a descheduled
peer, which inflates CPU time by an amount that depends on the load, not on the method.
``--repeats k`` times each method k times in the same worker and keeps the fastest.

Defaults: 2 images, ``n_steps=10`` (11 path nodes, 22 rows per forward), one thread, so both
models finish in a few minutes on 2 CPU cores; both methods process all rows in one batch,
captum's default (``internal_batch_size=None``). Both costs grow linearly in ``n_steps``; the ratios move only a
little with it (per-call overheads weigh less at more steps); ``--n-steps 50`` measures captum's
default directly (about 5x longer).

What to expect. With ``F`` the cost of a forward over the path and ``B_l`` that of a backward
from the objective down to block ``l``, captum costs ``sum_l (F + B_l)`` and the single pass
``F + B_1``, about one captum call. The speedup is therefore below ``L``: with ``B_1 = beta F``
and ``B_l`` shrinking linearly in depth it is ``L (1 + beta (L + 1) / (2 L)) / (1 + beta)``,
about ``0.75 L`` for ``beta = 1.25`` (what ViT-B-32 shows on CPU); ``0.8 L`` needs
``beta <~ 0.77``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KB = 1024


def _rss_kb() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _hwm_kb() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _release_free_heap() -> bool:
    """Give freed ``malloc`` memory back to the kernel (glibc ``malloc_trim``); False if impossible.

    Without this, heap pages freed earlier (e.g. while building the model) stay resident and are
    silently reused, so the call's own memory would not show up as RSS growth.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def _measure(fn):  # type: ignore[no-untyped-def]
    """Run ``fn()``; return (result, wall s, CPU s, peak extra RSS in bytes, how peak was read)."""
    gc.collect()
    trimmed = _release_free_heap()
    exact = _reset_peak()
    before = _rss_kb()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _hwm_kb() if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    how = ("VmHWM" if exact else "ru_maxrss") + ("" if trimmed else " (no malloc_trim)")
    return result, wall, cpu, (peak - before) * KB, how


def worker(
    method: str,
    model_name: str,
    n_images: int,
    n_steps: int,
    batch: int | None,
    threads: int,
    repeats: int,
) -> dict:
    """One method on one model in this (fresh) process; returns timings, peaks and scores."""
    import numpy as np
    import open_clip
    import torch

    if threads > 0:
        torch.set_num_threads(threads)

    sys.path.insert(0, str(REPO))
    from benchmark.extract.blocks import find_blocks
    from benchmark.extract.conductance import block_conductance, reference_conductance_captum

    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None).eval()
    model.transformer = None  # the text tower is never used; frees its memory before measuring
    size = model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(n_images, 3, size, size, generator=torch.Generator().manual_seed(1))
    blocks = find_blocks(model.visual)
    # Warm-up (thread pools, kernel selection) so neither method pays first-call costs.
    block_conductance(model, images[:1], blocks[-1:], n_steps=1)

    def run_once() -> tuple[np.ndarray, float, float, int, str]:
        if method == "single":
            return _measure(
                lambda: block_conductance(
                    model, images, blocks, n_steps=n_steps, internal_batch_size=batch
                )
            )
        columns, wall, cpu, peak = [], 0.0, 0.0, 0
        for block in blocks:
            result, block_wall, block_cpu, block_peak, how = _measure(
                lambda block=block: reference_conductance_captum(
                    model, images, [block], n_steps=n_steps, internal_batch_size=batch
                )
            )
            columns.append(result.mean_abs[:, 0])
            wall, cpu, peak = wall + block_wall, cpu + block_cpu, max(peak, block_peak)
        return np.stack(columns, axis=1), wall, cpu, peak, how

    # Fastest of the repeats (noise only ever adds time); largest peak.
    runs = [run_once() for _ in range(repeats)]
    scores, _, _, _, how = runs[0]
    seconds = min(run[1] for run in runs)
    cpu_seconds = min(run[2] for run in runs)
    peaks = [run[3] for run in runs]
    return {
        "blocks": len(blocks),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_bytes": max(peaks),
        "peak_source": how,
        "scores": scores.tolist(),
        "threads": torch.get_num_threads(),
    }


def _run_worker(method: str, args: argparse.Namespace, model_name: str) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", method, "--models", model_name,
        "--n-images", str(args.n_images), "--n-steps", str(args.n_steps),
        "--threads", str(args.threads), "--repeats", str(args.repeats),
    ]  # fmt: skip
    if args.internal_batch_size is not None:
        cmd += ["--internal-batch-size", str(args.internal_batch_size)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{method} worker for {model_name} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["ViT-B-32", "RN50"])
    parser.add_argument("--n-images", type=int, default=2)
    parser.add_argument("--n-steps", type=int, default=10)
    parser.add_argument("--internal-batch-size", type=int, default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads per worker (0: torch default)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="time each method this often, keep the fastest"
    )
    parser.add_argument("--worker", choices=["single", "captum"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = worker(
            args.worker,
            args.models[0],
            args.n_images,
            args.n_steps,
            args.internal_batch_size,
            args.threads,
            args.repeats,
        )
        print(json.dumps(result))
        return 0

    import numpy as np

    load_before = os.getloadavg()[0]
    rows = []
    for name in args.models:
        print(f"{name}: captum (one LayerConductance per block) ...", flush=True)
        captum = _run_worker("captum", args, name)
        print(f"{name}: single pass ...", flush=True)
        single = _run_worker("single", args, name)
        ref, ours = np.array(captum["scores"]), np.array(single["scores"])
        abs_err = float(np.abs(ours - ref).max())
        n_blocks = single["blocks"]
        wall_speedup = captum["seconds"] / single["seconds"]
        cpu_speedup = captum["cpu_seconds"] / single["cpu_seconds"]
        mem_ratio = single["peak_bytes"] / captum["peak_bytes"]
        rows.append([
            name, n_blocks,
            f"{captum['seconds']:.1f}", f"{single['seconds']:.1f}", f"{wall_speedup:.2f}",
            f"{captum['cpu_seconds']:.1f}", f"{single['cpu_seconds']:.1f}", f"{cpu_speedup:.2f}",
            f"{cpu_speedup / n_blocks:.2f}",
            f"{single['peak_bytes'] / 2**20:.0f}", f"{captum['peak_bytes'] / 2**20:.0f}",
            f"{mem_ratio:.2f}", f"{abs_err:.2g}", f"{abs_err / float(np.abs(ref).max()):.2g}",
            "yes" if cpu_speedup >= 0.8 * n_blocks and mem_ratio <= 2.0 else "NO",
        ])  # fmt: skip
    header = [
        "model", "L", "captum wall s", "single wall s", "wall speedup", "captum CPU s",
        "single CPU s", "CPU speedup", "CPU speedup/L", "single MiB", "captum-call MiB",
        "mem ratio", "max abs err", "max rel err", "target met",
    ]  # fmt: skip
    print()
    print(
        f"n_images={args.n_images} n_steps={args.n_steps} method=gausslegendre "
        f"internal_batch_size={args.internal_batch_size} torch threads={single['threads']} "
        f"repeats={args.repeats} (fastest kept) "
        f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"peak memory: {single['peak_source']} high-water mark minus RSS before the call; "
        "CPU s = process CPU time (all threads), steadier than wall time on a shared machine"
    )
    print("target: CPU speedup >= 0.8 L and single-pass peak <= 2x one captum call")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
