"""The shared driver of the extract commands: units, shards and backends.

Every extraction is a list of independent **units** ``Unit(kind, model, dataset)`` -- one
record of one feature pack (``dataset`` is a dataset id, or a record name such as
model-labels' ``nodes``). A command (``*_cmd.py``) only says what a unit is: its options, its
:class:`~benchmark.features.store.Extractor` (the pack identity), how to load a model and how to
compute one record (a :class:`Job`). This module does the rest, the same way for every kind:

1. **plan** (:func:`plan_units`): models x datasets -> units; a pack of one of the models made
   with other extractor parameters is refused before any work (never a mix); with
   ``--shard i/N`` only the i-th slice is kept (:func:`shard`); units whose record is already
   in the store and reads back with a valid checksum are done (resume).
2. **run** (:func:`run_units`): the units to do, grouped by model (one model load per group),
   on a backend: ``local`` (this process, in order; the default) or ``ray`` (one Ray task per
   group, ``num_gpus=--gpus-per-task``). The worker that computes a record writes it straight
   into the :class:`~benchmark.features.store.FeatureStore` (atomic record, manifest updated under
   the pack's ``fcntl`` lock), so finished records survive any later failure; the driver only
   plans, waits and reports. A worker skips a unit whose record another worker (or an earlier
   attempt of its own task) already wrote, so retries and overlapping runs never compute a
   record twice into the pack, and the manifest, keyed by record, cannot hold a duplicate.
3. **report**: one timing line per model (stderr), one summary line (stdout), one
   ``error: MODEL on DATASET: why`` line per failed unit (stderr); exit status 1 when a unit
   failed. A failure of one unit (the job's ``unit_errors``, e.g. one dataset's data problem)
   never stops the others. Other errors stop a local run at once with one line (missing
   weights, a tower without blocks); on Ray they fail that task's remaining units only.

Shards (SLURM job arrays, ``docs/slurm.md``): the units are sorted by (kind, model, dataset)
and cut into N **contiguous** blocks whose sizes differ by at most one; shard i takes block i.
Contiguous rather than round-robin (``j % N``) so that a shard holds the units of one or two
models and loads each model once, where round-robin would load up to one model per unit. The
slice depends only on the command line (never on what is already in the store), so a shard
re-run after a crash redoes exactly its own missing units, and a shard re-run after
completion does nothing.

Ray tasks: one per model group (``--units-per-task K`` splits a model's units into tasks of
at most K, for more parallelism than models). A task killed mid-run (preemption, OOM) loses
only its unwritten records; Ray retries it (its own ``max_retries``; the retry skips what was
written) or reports the task failed, and a re-run of the command finishes the missing units.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

BACKENDS = ("local", "ray")
#: environment variables a Ray worker needs to see what the driver sees (mirror, caches, offline)
FORWARDED_ENV_PREFIXES = ("VLMBENCH_", "HF_", "TRANSFORMERS_", "TORCH_HOME", "OPEN_CLIP")


@dataclass(frozen=True, order=True)
class Unit:
    """One record to extract: ``kind`` pack of ``model``, record ``dataset``."""

    kind: str
    model: str
    dataset: str

    def __str__(self) -> str:
        return f"{self.model} on {self.dataset}"


@dataclass(frozen=True)
class Outcome:
    """What became of one unit: ``written`` by this run, ``present`` (skipped), ``failed``."""

    unit: Unit
    status: str
    seconds: float = 0.0
    n_images: int = 0
    error: str = ""


@dataclass(frozen=True)
class UnitPlan:
    units: tuple[Unit, ...]  # every unit of the command line (this shard's, with --shard)
    todo: tuple[Unit, ...]  # those whose record is missing or unreadable
    shard: tuple[int, int] | None = None

    @property
    def present(self) -> int:
        return len(self.units) - len(self.todo)


# -- units and shards ------------------------------------------------------------------------
def make_units(kind: str, models: Iterable[str], datasets: Iterable[str]) -> list[Unit]:
    """models x datasets, in that order (the order a local run computes them in)."""
    datasets = list(dict.fromkeys(datasets))
    return [Unit(kind, m, d) for m in dict.fromkeys(models) for d in datasets]


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` -> ``(3, 8)``: shard 3 of 8, counted from 0 (SLURM_ARRAY_TASK_ID/COUNT)."""
    i, sep, n = str(text).partition("/")
    try:
        i_, n_ = int(i), int(n)
    except ValueError:
        i_, n_ = -1, 0
    if not sep or n_ < 1 or not 0 <= i_ < n_:
        raise ValueError(f"--shard {text!r}: expected I/N with 0 <= I < N (e.g. "
                         f"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return i_, n_


def shard(units: Sequence[Unit], i: int, n: int) -> list[Unit]:
    """Shard ``i`` of ``n``: block i of the (kind, model, dataset)-sorted units, cut into n
    contiguous blocks of sizes differing by at most one; returned in the input order.

    Shards 0..n-1 partition ``units`` exactly (each unit in exactly one shard).
    """
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {i} of {n}: need 0 <= i < n")
    ranked = sorted(set(units))
    lo, hi = (i * len(ranked)) // n, ((i + 1) * len(ranked)) // n
    mine = set(ranked[lo:hi])
    return [u for u in units if u in mine]


def group_units(units: Sequence[Unit], per_group: int = 0) -> list[list[Unit]]:
    """Consecutive units of the same model (input order kept), split into groups of at most
    ``per_group`` units (0: no limit). One group = one model load = one Ray task."""
    groups: dict[str, list[Unit]] = {}
    for u in units:
        groups.setdefault(u.model, []).append(u)
    out = []
    for g in groups.values():
        step = per_group if per_group > 0 else len(g)
        out += [g[k:k + step] for k in range(0, len(g), step)]
    return out


# -- plan ------------------------------------------------------------------------------------
def _plain(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x))


def check_params(store, kind: str, models: Iterable[str], extractor) -> None:
    """Refuse (one line, before any work) a pack of ``models`` made with other parameters."""
    from benchmark.errors import UsageError

    wanted = _plain(extractor.as_dict())
    for model in models:
        existing = store.extractor(kind, model)
        if existing is None:
            continue
        have = _plain(existing.as_dict())
        if have == wanted:
            continue
        old, new = have["params"], wanted["params"]
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if have["version"] != wanted["version"]:
            diff.append("version")
        raise UsageError(
            f"the {kind} pack of {model} in {store.pack_dir(kind, model)} was made with other "
            f"{', '.join(diff)}: {({k: old.get(k) for k in diff if k in old})} (version "
            f"{have['version']}), not {({k: new.get(k) for k in diff if k in new})} (version "
            f"{wanted['version']}); re-run with its options, delete it, or use another "
            f"--features-dir"
        )


def is_present(store, unit: Unit) -> bool:
    """The unit's record is listed in its manifest and reads back with a valid checksum."""
    from benchmark.features.store import FeaturePackError

    if unit.dataset not in store.datasets(unit.kind, unit.model):
        return False
    try:
        store.read(unit.kind, unit.model, unit.dataset)
    except FeaturePackError as err:
        log.warning("%s; recomputing it", err)
        return False
    return True


def plan_units(
    kind: str,
    models: Sequence[str],
    datasets: Sequence[str],
    store,
    extractor,
    shard_spec: tuple[int, int] | None = None,
) -> UnitPlan:
    """The units of ``models x datasets`` (this shard's), and those still to do.

    Other extractor parameters in an existing pack of any of ``models``: :class:`UsageError`
    before any work. The shard is cut from the full unit list, before looking at the store.
    """
    check_params(store, kind, models, extractor)
    units = make_units(kind, models, datasets)
    if shard_spec is not None:
        units = shard(units, *shard_spec)
    todo = tuple(u for u in units if not is_present(store, u))
    return UnitPlan(tuple(units), todo, shard_spec)


# -- jobs ------------------------------------------------------------------------------------
def open_test_split(args, dataset: str, n_images: int, seed: int):
    """The test split of ``dataset`` (registry loader, or ``--images-dir``) and the sorted
    indices of its ``n_images``-image sample (0: all)."""
    from benchmark.extract import loaders

    if args.images_dir:
        ds = loaders.open_dataset(dataset, args.images_dir, split="test", backend="folder")
    else:
        ds = loaders.open_dataset(dataset, data_dir_of(args), split="test",
                                  download=args.download)
    return ds, loaders.sample_indices(len(ds), n_images or len(ds), seed)


def add_sample_arguments(p: argparse.ArgumentParser, default_images: int, *,
                         images_help: str, text_help: str = "texts per forward pass",
                         batch: int = 64, text_batch: int = 256) -> None:
    """The options of a kind that reads a seeded sample of each dataset's test images:
    ``--images-per-dataset``, ``--seed``, ``--batch-size``, ``--text-batch-size``."""
    p.add_argument("--images-per-dataset", type=int, default=default_images,
                   help=f"{images_help} (default {default_images})")
    p.add_argument("--seed", type=int, default=0, help="seed of the image sample (default 0)")
    p.add_argument("--batch-size", type=int, default=batch,
                   help=f"images per forward pass (default {batch})")
    p.add_argument("--text-batch-size", type=int, default=text_batch,
                   help=f"{text_help} (default {text_batch})")


def sample_params(args: argparse.Namespace) -> dict[str, Any]:
    """The pack-identity parameters of :func:`add_sample_arguments` kinds (batch sizes do not
    change the numbers, so they are not part of it)."""
    return {"images_per_dataset": int(args.images_per_dataset), "seed": int(args.seed),
            "random_init": bool(args.random_init)}


class Job:
    """What one kind computes. Built by the driver, shipped (pickled) to Ray workers.

    Subclasses set :attr:`kind`, :attr:`unit_errors` and implement :meth:`compute`; they may
    override :meth:`load` (default: the open_clip model of the unit), :meth:`prepare` (driver
    side, before any model loads: open every dataset with work, so a missing one fails first)
    and :meth:`n_images`. Anything cached in ``self._cache`` (opened datasets) stays in the
    process that opened it: a worker reopens what it needs.
    """

    kind: str = ""
    #: exceptions that fail one unit only (reported; the other units go on)
    unit_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, args: argparse.Namespace, extractor, store_root: str) -> None:
        self.args = argparse.Namespace(
            **{k: v for k, v in vars(args).items() if not callable(v)})
        self.extractor = extractor
        self.store_root = str(store_root)
        self.code_version = code_version()
        from benchmark.progress import bars_enabled

        self.progress = bars_enabled(not getattr(args, "no_progress", False))
        self._cache: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    @property
    def device(self) -> str:
        return resolve_device(getattr(self.args, "device", None))

    def catalog(self):
        """The dataset catalog (through the data layer of ``args``), built once per process."""
        if "catalog" not in self._cache:
            from benchmark.cli.common import data_layer
            from benchmark.data.catalog import Catalog

            self._cache["catalog"] = Catalog(data_layer(self.args))
        return self._cache["catalog"]

    def test_sample(self, name: str):
        """(dataset, sample indices): ``--images-per-dataset`` test images of ``name`` drawn
        with ``--seed`` (the same for every model), opened once per process."""
        key = f"dataset:{name}"
        if key not in self._cache:
            a = self.args
            self._cache[key] = open_test_split(a, name, a.images_per_dataset, a.seed)
        return self._cache[key]

    def prepare(self, units: Sequence[Unit]) -> None:
        """Driver side, before any work (default: nothing)."""

    def load(self, model: str) -> Any:
        return load_model(self.args, model, self.device)

    def compute(self, state: Any, unit: Unit) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(arrays, meta)`` of the unit's record."""
        raise NotImplementedError

    def release(self, state: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()  # the next model may be larger

    def n_images(self, unit: Unit, arrays: dict[str, Any], meta: dict[str, Any]) -> int:
        return int(meta.get("n_images", 0) or 0)


def execute_group(job: Job, group: Sequence[Unit],
                  on_unit: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Compute and write the records of one model group (the model loaded once, if needed)."""
    from benchmark.features.store import FeatureStore, record_lock

    store = FeatureStore(job.store_root)
    out: list[Outcome] = []

    def done(o: Outcome) -> None:
        out.append(o)
        if on_unit is not None:
            on_unit(o)

    pending = []
    for u in group:
        if is_present(store, u):  # written meanwhile by another worker or an earlier attempt
            done(Outcome(u, "present"))
        else:
            pending.append(u)
    if not pending:
        return out  # nothing to do: the model is not even loaded
    state = None
    try:
        for u in pending:
            # one record, one computer: a concurrent extraction of the same pack waits here
            # and then finds the record present instead of computing it a second time
            with record_lock(store.pack_dir(u.kind, u.model), u.dataset):
                if is_present(store, u):
                    done(Outcome(u, "present"))
                    continue
                if state is None:
                    state = job.load(u.model)
                t0 = time.perf_counter()
                try:
                    arrays, meta = job.compute(state, u)
                except job.unit_errors as err:
                    msg = err.args[0] if isinstance(err, KeyError) and err.args else err
                    done(Outcome(u, "failed", time.perf_counter() - t0, error=str(msg)))
                    continue
                store.write(u.kind, u.model, u.dataset, arrays, job.extractor, meta,
                            job.code_version)
                done(Outcome(u, "written", time.perf_counter() - t0,
                             job.n_images(u, arrays, meta)))
    finally:
        if state is not None:
            job.release(state)
        del state
    order = {u: i for i, u in enumerate(group)}
    return sorted(out, key=lambda o: order[o.unit])


def _execute_remote(job: Job, group: list[Unit]) -> list[Outcome]:
    """Body of a Ray task (module level, so workers import it by name)."""
    return execute_group(job, group)


# -- backends --------------------------------------------------------------------------------
def run_units(
    units: Sequence[Unit],
    job: Job,
    backend: str = "local",
    *,
    progress: bool = True,
    units_per_task: int = 0,
    ray_address: str | None = None,
    gpus_per_task: float = 0,
    max_retries: int | None = None,
) -> list[Outcome]:
    """Run ``units`` with ``job`` on ``backend``; one :class:`Outcome` per unit."""
    from tqdm.auto import tqdm

    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    from benchmark.progress import bars_enabled, stage

    stage(f"extract {job.kind}: {len(units)} record(s) on backend {backend}", progress)
    bar = tqdm(total=len(units), desc=job.kind, unit="record",
               disable=not bars_enabled(progress), file=sys.stderr, position=0)
    try:
        if backend == "local":
            outcomes: list[Outcome] = []
            for group in group_units(units, units_per_task):
                outcomes += execute_group(job, group, on_unit=lambda o: bar.update())
            return outcomes
        return _run_ray(units, job, bar, units_per_task, ray_address, gpus_per_task,
                        max_retries)
    finally:
        bar.close()


def ray_init(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to a Ray cluster (``address``, e.g. ``auto``) or start a local instance on
    loopback; True when this call started it (the caller shuts it down)."""
    try:
        import ray
    except ImportError:
        from benchmark.errors import UsageError

        raise UsageError("--backend ray needs Ray: pip install 'vlmbench[scale]'") from None
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "runtime_env": {"env_vars": env}}
    if address:
        kwargs["address"] = address
    elif not os.environ.get("RAY_ADDRESS"):
        kwargs["_node_ip_address"] = "127.0.0.1"  # a local instance talks on loopback only
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
    ray.init(**kwargs)
    return True


def _error_line(err: BaseException) -> str:
    import ray

    cause = getattr(err, "cause", None)
    if isinstance(err, ray.exceptions.RayTaskError) and cause is not None:
        err = cause
    if isinstance(err, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return f"its Ray worker died ({type(err).__name__}: killed, out of memory or preempted)"
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


def _run_ray(units, job: Job, bar, units_per_task: int, address: str | None,
             gpus_per_task: float, max_retries: int | None) -> list[Outcome]:
    import copy

    import ray

    from benchmark.features.store import FeatureStore

    started = ray_init(address)
    try:
        remote_job = copy.copy(job)
        remote_job.progress = False  # many workers, one bar: the driver's
        job_ref = ray.put(remote_job)
        options: dict[str, Any] = {"num_gpus": gpus_per_task, "num_cpus": 1}
        if max_retries is not None:
            options["max_retries"] = max_retries
        task = ray.remote(_execute_remote).options(**options)
        groups = {task.remote(job_ref, g): g for g in group_units(units, units_per_task)}
        outcomes: list[Outcome] = []
        pending = list(groups)
        store = FeatureStore(job.store_root)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ref = ready[0]
            try:
                got = ray.get(ref)
            except Exception as err:  # the task died or raised: keep what it wrote
                why = _error_line(err)
                got = [Outcome(u, "written") if is_present(store, u)
                       else Outcome(u, "failed", error=why) for u in groups[ref]]
            outcomes += got
            bar.update(len(got))
        return outcomes
    finally:
        if started:
            ray.shutdown()


# -- command-line helpers --------------------------------------------------------------------
def add_common_arguments(
    p: argparse.ArgumentParser,
    *,
    default_protocol: str | None = None,
    models_help: str = "comma-separated model ids (default: the protocol's zoo)",
    datasets_help: str | None = "comma-separated dataset ids (default: the protocol's)",
    images: bool = True,
) -> None:
    """Options every extract command shares (selection, store, model loading, execution)."""
    from benchmark.cli.common import add_data_options

    g = p.add_argument_group("what to extract")
    g.add_argument("--protocol", help="zoo and datasets to extract: a protocol name or a "
                   f"path/to/protocol.toml (default: {default_protocol or 'none'})")
    g.add_argument("--models", help=models_help)
    if datasets_help is not None:
        g.add_argument("--datasets", help=datasets_help)
    g.add_argument("--skip-unextractable", action="store_true",
                   help="skip models no loader exists for instead of failing")
    g = p.add_argument_group("models and data")
    g.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    g.add_argument("--random-init", action="store_true",
                   help="random weights (smoke tests); recorded, and refused by `run` unless "
                   "--allow-random-init")
    g.add_argument("--weights-dir",
                   help="open_clip weights cache (default: open_clip's / HF_HOME); for BLIP the "
                   "Hugging Face cache_dir, for BEiT-3 the folder of its release files "
                   "(default $VLMBENCH_WEIGHTS/beit3)")
    g.add_argument("--model-config", action="append", metavar="JSON",
                   help="an open_clip model config file (or a folder of them) to register "
                   "before loading, for architectures open_clip does not ship (repeatable)")
    if images:
        g.add_argument("--data-dir", help="dataset files, <DIR>/<dataset> (default "
                       "$VLMBENCH_DATA or ~/.cache/vlmbench/datasets)")
        g.add_argument("--images-dir", help="read every dataset from an image folder "
                       "DIR/<dataset>/test/<class>/<image> instead of its registry loader")
        g.add_argument("--download", action="store_true",
                       help="let the dataset loaders download missing datasets into --data-dir")
    g.add_argument("--features-dir", help="feature pack directory (default "
                   "$VLMBENCH_FEATURES or ~/.cache/vlmbench/features)")
    add_data_options(g)
    g = p.add_argument_group("execution (docs/slurm.md, README 'Scaling out')")
    g.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: this process (default); ray: one Ray task per model group")
    g.add_argument("--shard", metavar="I/N",
                   help="only shard I of N (0 <= I < N) of the units, e.g. "
                   "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT")
    g.add_argument("--ray-address", help="Ray cluster to join (e.g. auto); default: start "
                   "a local instance")
    g.add_argument("--gpus-per-task", type=float, default=None,
                   help="GPUs per Ray task (default: 1 when --device is cuda or the driver "
                   "sees a GPU, else 0)")
    g.add_argument("--units-per-task", type=int, default=0,
                   help="at most this many records per Ray task (default 0: all of a model's)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the units still to do (this shard's) and exit: nothing loads")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bars and no stage lines (bars are drawn only on a "
                   "terminal anyway; VLMBENCH_PROGRESS=1 forces them)")


def csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def register_model_configs(paths: Iterable[str] | None) -> None:
    from benchmark.extract.models import register_local_configs

    register_local_configs()
    if not paths:
        return
    import open_clip

    for path in paths:
        open_clip.add_model_config(path)


def load_model(args: argparse.Namespace, model: str, device: str):
    """The open_clip model of ``model`` for ``args`` (configs registered first).

    Random weights are seeded by the model id: every worker, shard or task that builds the
    same ``--random-init`` model builds the same tower, so its records belong together.
    """
    from benchmark.extract import models as model_loading

    register_model_configs(getattr(args, "model_config", None))
    if args.random_init:
        import zlib

        import torch

        torch.manual_seed(zlib.crc32(model.encode()))
    return model_loading.load_model(model, random_init=args.random_init, device=device,
                                    cache_dir=args.weights_dir)


def resolve_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def code_version() -> str:
    from benchmark import __version__
    from benchmark.core.results import git_commit

    git = git_commit()
    if not git.get("commit"):
        return __version__
    return f"{__version__}+g{git['commit'][:12]}" + (".dirty" if git.get("dirty") else "")


def not_extractable(model: str) -> str | None:
    """Why ``model`` cannot be extracted here, or None."""
    from benchmark.data.zoo import NON_OPENCLIP, TOWER_MODELS

    arch = model.partition(":")[0]
    if model in TOWER_MODELS:
        return None
    if model in NON_OPENCLIP or arch in {m.partition(":")[0] for m in NON_OPENCLIP}:
        return (f"{model}: not extractable -- no {arch} loader for it (known: "
                f"{', '.join(sorted(TOWER_MODELS))})")
    return None


def protocol_of(args: argparse.Namespace, default: str | None):
    from benchmark.core.protocol import get_protocol

    name = getattr(args, "protocol", None) or default
    return get_protocol(name) if name else None


def data_dir_of(args: argparse.Namespace) -> str | None:
    """``--data-dir``, else, for a minizoo world other than seed 0 (``--protocol minizoo-sN``),
    that world's image root ``<data>/minizoo-sN`` (:func:`benchmark.minizoo.datasets.data_root`:
    its test images never overwrite seed 0's), else ``None`` (the default data root)."""
    from benchmark.core.protocol import minizoo_seed

    if getattr(args, "data_dir", None):
        return args.data_dir
    protocol = protocol_of(args, None)
    if protocol is not None and minizoo_seed(protocol):
        from benchmark.extract.loaders import default_data_root

        return str(default_data_root() / protocol.name)
    return None


def select_models(args: argparse.Namespace, default_protocol: str | None,
                  strict: bool = True) -> list[str]:
    """``--models`` or the protocol's zoo; unextractable ones refused or skipped (one line).

    ``strict``: every model must belong to a named protocol or to ``--protocol`` (a typo gets
    "did you mean"); otherwise any ``ARCH:pretrained`` whose architecture open_clip knows
    (after ``--model-config``) -- for new models.
    """
    from benchmark.core.protocol import PROTOCOLS
    from benchmark.data.catalog import unknown_message
    from benchmark.errors import UsageError

    protocol = protocol_of(args, default_protocol)
    models = csv(args.models) or (list(protocol.zoo) if protocol else [])
    if not models:
        raise UsageError("--models is empty (e.g. --models ViT-B-32:laion2b_s34b_b79k)")
    if strict:
        known = list(dict.fromkeys(m for p in PROTOCOLS.values() for m in p.zoo))
        known += [m for m in (protocol.zoo if protocol else ()) if m not in set(known)]
        for m in models:
            if m not in known:
                raise UsageError(unknown_message("model", m, known))
    skipped = [(m, why) for m in models if (why := not_extractable(m))]
    if skipped and not args.skip_unextractable:
        raise UsageError(
            f"{len(skipped)} model(s) not extractable (no loader exists): "
            f"{', '.join(m for m, _ in skipped)}; pass --skip-unextractable to extract the others"
        )
    for _, why in skipped:
        print(f"skip {why}", file=sys.stderr)
    models = list(dict.fromkeys(m for m in models if not not_extractable(m)))
    if not strict:
        _check_architectures(args, models)
    return models


def _check_architectures(args: argparse.Namespace, models: list[str]) -> None:
    import open_clip

    from benchmark.data.catalog import unknown_message
    from benchmark.errors import UsageError
    from benchmark.extract.models import split_id

    register_model_configs(getattr(args, "model_config", None))
    from benchmark.data.zoo import TOWER_MODELS

    archs = open_clip.list_models()
    for m in models:
        arch, _ = split_id(m)
        if m in TOWER_MODELS:
            continue
        if arch not in archs:
            raise UsageError(unknown_message("open_clip architecture", arch, archs)
                           + "; register a config with --model-config")


def select_datasets(args: argparse.Namespace, default: Sequence[str]) -> list[str]:
    """``--datasets`` or ``default``; unknown ids: one line with "did you mean"."""
    from benchmark.data.catalog import entry

    datasets = csv(getattr(args, "datasets", None)) or list(default)
    for d in datasets:
        entry(d)
    return list(dict.fromkeys(datasets))


def gpus_per_task(args: argparse.Namespace) -> float:
    if args.gpus_per_task is not None:
        return args.gpus_per_task
    if (args.device or "").startswith("cuda"):
        return 1
    if args.device:
        return 0
    import torch

    return 1 if torch.cuda.is_available() else 0


def check_execution_options(args: argparse.Namespace) -> tuple[int, int] | None:
    """Validate --shard / --units-per-task / --device (local); the parsed shard."""
    from benchmark.errors import UsageError

    try:
        spec = parse_shard(args.shard) if args.shard else None
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.units_per_task < 0:
        raise UsageError("--units-per-task must be >= 0")
    if args.backend == "local" and (args.device or "").startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {args.device}: torch {torch.__version__} sees no CUDA "
                           f"device")
    return spec


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def drive(args: argparse.Namespace, job: Job, models: Sequence[str], records: Sequence[str],
          store, header: str = "") -> int:
    """Plan, run and report ``models x records`` of ``job`` (the whole command after its own
    selection and checks); ``header``: a line for stderr when there is work. Exit status 0,
    or 1 when a unit failed."""
    started = time.perf_counter()
    spec = check_execution_options(args)
    plan = plan_units(job.kind, models, records, store, job.extractor, spec)
    where = f" (shard {spec[0]}/{spec[1]})" if spec else ""
    if not plan.todo:
        print(f"{job.kind}: all {len(plan.units)} records{where} present in {store.root}; "
              f"nothing to do (skipped {len(plan.units)} already present)")
        return 0
    if header:
        print(header, file=sys.stderr)
    print(f"{job.kind}: {len(plan.todo)} of {len(plan.units)} records{where} to extract "
          f"({plan.present} present) into {store.root}"
          + (f" [backend {args.backend}]" if args.backend != "local" else ""))
    if getattr(args, "dry_run", False):
        for group in group_units(plan.todo):
            print(f"  {group[0].model}: {', '.join(u.dataset for u in group)}")
        return 0
    job.prepare(plan.todo)
    outcomes = run_units(
        plan.todo, job, args.backend, progress=not args.no_progress,
        units_per_task=args.units_per_task if args.backend == "ray" else 0,
        ray_address=args.ray_address,
        gpus_per_task=gpus_per_task(args) if args.backend == "ray" else 0,
    )
    return report(job.kind, plan, outcomes, store, time.perf_counter() - started)


def report(kind: str, plan: UnitPlan, outcomes: Sequence[Outcome], store,
           elapsed: float) -> int:
    per_model: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.status == "written" and o.seconds:
            per_model.setdefault(o.unit.model, []).append(o)
    for model, done in per_model.items():
        images = [o for o in done if o.n_images]
        if images:
            n, s = sum(o.n_images for o in images), sum(o.seconds for o in images)
            print(f"{model}: {n} images in {s:.1f} s, {1000 * s / n:.1f} s per 1000 images",
                  file=sys.stderr)
        else:
            print(f"{model}: {len(done)} record(s) in {sum(o.seconds for o in done):.1f} s",
                  file=sys.stderr)
    failed = [o for o in outcomes if o.status == "failed"]
    written = sum(o.status == "written" for o in outcomes)
    skipped = plan.present + sum(o.status == "present" for o in outcomes)
    print(f"{kind}: wrote {written} record(s), skipped {skipped} already present, "
          f"{len(failed)} failed ({store.root}, {elapsed:.1f} s)")
    for o in failed:
        print(f"error: {o.unit}: {o.error}", file=sys.stderr)
    return 1 if failed else 0
