"""Image loaders of the extraction stage: a dataset id -> indexable ``(image, label)`` with stable ids.

Each dataset's ``loader = "<backend>:<name>"`` field in ``datasets/registry.toml`` says where its
images come from. The data of dataset ``D`` lives in ``<root>/<D>`` (``root`` defaults to
``$VLMBENCH_CACHE/datasets``; ``--data-dir`` on the command line).

Backends
--------
``clip_benchmark:<name>`` -- ``<name>`` is a dataset name of the ``clip_benchmark`` package (the
evaluation code behind LOVM's and SWAB's tables). Resolution, first that applies:

1. ``clip_benchmark``'s ``build_dataset`` when the package is installed (``vtab/*`` names also
   need ``tensorflow-datasets`` and ``task_adaptation``, as in ``clip_benchmark``); it covers
   all 21 targets. Its VTAB datasets are iterable: a sample is read in one sequential pass.
   Some of its builders download whatever the ``download`` flag says when their directory is
   absent (ImageNet, FER2013, Retinopathy, RESISC45); without ``download`` a missing directory is
   an error here before ``clip_benchmark`` is called.
2. the torchvision dataset ``clip_benchmark`` itself wraps, or, for ``vtab/flowers``,
   ``vtab/pets``, ``vtab/svhn``, ``vtab/pcam``, the torchvision dataset of the same official
   test split (:data:`TORCHVISION`). ``vtab/eurosat`` has no published split (VTAB cuts TFDS's
   order); torchvision's EuroSAT gives all 27,000 images, and the record says so.
   ``fer2013`` is read, like ``clip_benchmark`` does, as an image folder ``<root>/fer2013/test/``.
3. otherwise :class:`LoaderError`, naming what to install or where to put the files
   (``voc2007`` and the VTAB-only datasets: CLEVR, DMLab, KITTI, RESISC45, Retinopathy).

``folder:<name>`` -- an image folder ``<root>/<name>/<split>/<class>/<image>`` (any depth below
``<class>``; extensions :data:`IMAGE_EXTENSIONS`). Classes are the sorted sub-directory names.
Every dataset can be read this way (``backend="folder"``, name = dataset id): tests and local
copies use it (``--images-dir``).

Image ids and order
-------------------
An image's id is its file path relative to ``<root>/<D>`` (POSIX) when the source exposes file
paths, else its index in the source's split (``"0"``, ``"1"``, ...). Datasets with file ids are
put in sorted id order, so index ``i`` does not depend on directory-listing order (torchvision's
SUN397 lists files in ``rglob`` order, which varies between file systems).

Sampling rule (:func:`sample_indices`)
--------------------------------------
``sorted(np.random.default_rng(seed).permutation(n_total)[:n])``: a uniform sample without
replacement, the same for every model; nested (the sample of ``n`` images is contained in the
sample of ``n' > n`` with the same seed). The ids of the sample are recorded with every feature
record, so a record never depends on re-deriving it.

torch/torchvision are imported only by the backends that need them; the folder backend needs
only Pillow.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.catalog import entry
from benchmark.data.upstream import cache_root

log = logging.getLogger(__name__)

BACKENDS = ("clip_benchmark", "folder")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
DATA_ENV = "VLMBENCH_DATA"


class LoaderError(RuntimeError):
    """A dataset cannot be loaded here (one-line message with the fix)."""


class DatasetUnavailableError(LoaderError):
    """The loader exists but the dataset's files are absent (or their download failed)."""


def default_data_root() -> Path:
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_root() / "datasets"


# -- loader specs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LoaderSpec:
    backend: str
    name: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.name}"


def parse_loader(text: str) -> LoaderSpec:
    backend, sep, name = str(text).partition(":")
    if not sep or not backend or not name:
        raise LoaderError(f"loader {text!r} is not of the form '<backend>:<name>'")
    if backend not in BACKENDS:
        close = difflib.get_close_matches(backend, BACKENDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise LoaderError(
            f"unknown loader backend {backend!r} in {text!r}{hint} "
            f"(valid: {', '.join(BACKENDS)}; see benchmark/extract/loaders.py)"
        )
    return LoaderSpec(backend, name)


def loader_spec(dataset_id: str, backend: str | None = None) -> LoaderSpec:
    """The registry's loader of ``dataset_id``, or ``backend:<dataset_id>`` when forced."""
    e = entry(dataset_id)  # unknown id -> UnknownDatasetError with "did you mean"
    if backend is not None:
        return parse_loader(f"{backend}:{dataset_id}")
    if "loader" not in e:
        raise LoaderError(f"dataset {dataset_id!r} has no `loader` in datasets/registry.toml")
    return parse_loader(e["loader"])


# -- sampling -------------------------------------------------------------------------------
def sample_indices(n_total: int, n: int, seed: int) -> list[int]:
    """``min(n, n_total)`` distinct indices of ``range(n_total)``, ascending (rule: module docstring)."""
    if n_total < 1:
        raise ValueError("cannot sample images from an empty dataset")
    if n < 1:
        raise ValueError(f"need at least one image per dataset, got {n}")
    perm = np.random.default_rng(seed).permutation(n_total)
    return sorted(int(i) for i in perm[:n])


# -- the dataset object ---------------------------------------------------------------------
class ImageDataset:
    """``ds[i] -> (image, label)`` in a fixed order, with ``ds.image_id(i)`` stable across runs.

    ``image`` is an RGB PIL image passed through ``transform`` (when given). ``fetch`` reads a
    set of indices efficiently (one sequential pass for iterable sources).
    """

    def __init__(
        self,
        dataset_id: str,
        split: str,
        source: str,
        ids: Sequence[str],
        read: Callable[[int], tuple[Any, Any]] | None,
        order: Sequence[int] | None = None,
        scan: Callable[[], Iterable[tuple[Any, Any]]] | None = None,
        transform: Callable[[Any], Any] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        if read is None and scan is None:
            raise ValueError("an ImageDataset needs read or scan")
        self.dataset_id = dataset_id
        self.split = split
        self.source = source  # what the images were read with, recorded with features
        self.classes = tuple(classes) if classes is not None else None
        self.transform = transform
        self._ids = list(ids)
        self._order = list(order) if order is not None else list(range(len(self._ids)))
        self._read = read
        self._scan = scan

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.dataset_id!r}, split={self.split!r}, n={len(self)}, {self.source})"
        )

    def image_id(self, i: int) -> str:
        return self._ids[i]

    @property
    def image_ids(self) -> list[str]:
        return list(self._ids)

    def with_transform(self, transform: Callable[[Any], Any] | None) -> ImageDataset:
        """The same images under another transform (e.g. another model's preprocessing)."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def _prepare(self, image: Any, label: Any) -> tuple[Any, Any]:
        if hasattr(image, "convert") and getattr(image, "mode", "RGB") != "RGB":
            image = image.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        if hasattr(label, "item"):
            label = label.item()
        return image, label

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images of {self.dataset_id}")
        i = i % len(self)
        if self._read is None:
            return next(iter(self.fetch([i])))[1]
        return self._prepare(*self._read(self._order[i]))

    def fetch(self, indices: Iterable[int]) -> Iterator[tuple[int, tuple[Any, Any]]]:
        """``(i, ds[i])`` for the given indices, in ascending order."""
        wanted = sorted(set(int(i) for i in indices))
        if self._read is not None:
            for i in wanted:
                yield i, self[i]
            return
        # Iterable source: one pass; canonical index == source position (no file ids).
        remaining = set(wanted)
        for pos, (image, label) in enumerate(self._scan()):  # type: ignore[misc]
            if pos in remaining:
                remaining.discard(pos)
                yield pos, self._prepare(image, label)
                if not remaining:
                    return
        if remaining:
            raise LoaderError(f"{self.dataset_id}: the source ended before image {min(remaining)}")


# -- folder backend -------------------------------------------------------------------------
def _open_image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def open_folder(
    dataset_id: str, directory: Path, split: str, source: str | None = None
) -> ImageDataset:
    """Images under ``directory/<class>/`` (``directory`` = ``<root>/<name>/<split>``)."""
    if not directory.is_dir():
        raise DatasetUnavailableError(
            f"dataset {dataset_id!r}: no image folder {directory} (expected "
            f"{directory}/<class>/<image>.jpg; put a copy there or pass --images-dir DIR with "
            f"DIR/{dataset_id}/{split}/<class>/...)"
        )
    classes = sorted(
        p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    files: list[tuple[str, int]] = []
    for label, cls in enumerate(classes):
        for path in (directory / cls).rglob("*"):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                files.append((path.relative_to(directory.parent).as_posix(), label))
    if not files:
        raise DatasetUnavailableError(
            f"dataset {dataset_id!r}: no images ({', '.join(IMAGE_EXTENSIONS[:3])}, ...) in class "
            f"folders under {directory}"
        )
    files.sort()
    root = directory.parent

    def read(i: int) -> tuple[Any, int]:
        rel, label = files[i]
        return _open_image(root / rel), label

    return ImageDataset(
        dataset_id,
        split,
        source or f"folder:{directory.parent.name}/{split}",
        [f for f, _ in files],
        read,
        classes=classes,
    )


# -- torchvision equivalents ----------------------------------------------------------------
@dataclass(frozen=True)
class TorchvisionEquivalent:
    cls: str  # torchvision.datasets class
    split_arg: str | None  # "split", "train" (bool) or None (the dataset has no split)
    kwargs: tuple[tuple[str, Any], ...] = ()
    note: str = ""  # recorded in the source string when the split differs from clip_benchmark's
    can_download: bool = True


_NO_SPLIT = "no predefined split: all images"
TORCHVISION: dict[str, TorchvisionEquivalent] = {
    "cars": TorchvisionEquivalent("StanfordCars", "split", can_download=False),
    "cifar100": TorchvisionEquivalent("CIFAR100", "train"),
    "country211": TorchvisionEquivalent("Country211", "split"),
    "dtd": TorchvisionEquivalent("DTD", "split"),
    "eurosat": TorchvisionEquivalent("EuroSAT", None, note=_NO_SPLIT),
    "vtab/eurosat": TorchvisionEquivalent(
        "EuroSAT", None, note="all images: VTAB's test split needs tensorflow-datasets"
    ),
    "flowers": TorchvisionEquivalent("Flowers102", "split"),
    "vtab/flowers": TorchvisionEquivalent("Flowers102", "split"),
    "food101": TorchvisionEquivalent("Food101", "split"),
    "gtsrb": TorchvisionEquivalent("GTSRB", "split"),
    "imagenet1k": TorchvisionEquivalent("ImageNet", "imagenet", can_download=False),
    "mnist": TorchvisionEquivalent("MNIST", "train"),
    "pcam": TorchvisionEquivalent("PCAM", "split"),
    "vtab/pcam": TorchvisionEquivalent("PCAM", "split"),
    "pets": TorchvisionEquivalent("OxfordIIITPet", "split", (("target_types", "category"),)),
    "vtab/pets": TorchvisionEquivalent("OxfordIIITPet", "split", (("target_types", "category"),)),
    "renderedsst2": TorchvisionEquivalent("RenderedSST2", "split"),
    "stl10": TorchvisionEquivalent("STL10", "split"),
    "sun397": TorchvisionEquivalent("SUN397", None, note=_NO_SPLIT),
    "svhn": TorchvisionEquivalent("SVHN", "split"),
    "vtab/svhn": TorchvisionEquivalent("SVHN", "split"),
}
# Read as an image folder <root>/<name>/<split>/<class>/ exactly as clip_benchmark does.
FOLDER_EQUIVALENTS = {
    "fer2013": "the Kaggle dataset msambare/fer2013 unzipped so that {dir}/test/<class>/*.jpg",
}
# Builders of clip_benchmark that fetch data (wget / kaggle) when the directory is absent,
# whatever the download flag says.
_CB_FETCHES_ANYWAY = {"imagenet1k", "fer2013", "vtab/diabetic_retinopathy", "vtab/resisc45"}
_MANUAL = {
    "cars": "torchvision can no longer download Stanford Cars; place cars_test/ and the devkit "
    "as torchvision.datasets.StanfordCars documents",
    "imagenet1k": "place ILSVRC2012_devkit_t12.tar.gz and ILSVRC2012_img_val.tar (image-net.org)",
}


def _importable(module: str) -> bool:
    if module in sys.modules:  # includes modules blocked with sys.modules[name] = None
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def _missing(
    dataset_id: str, spec: LoaderSpec, data_dir: Path, via: str, why: str, fix: str
) -> DatasetUnavailableError:
    """``fix``: "download" (absent, --download would fetch it), "failed" (the download failed),
    "manual" (no automatic download exists)."""
    if fix == "download":
        how = "pass --download to fetch it"
    elif fix == "failed":
        how = f"the download failed: fetch the files into {data_dir} by other means"
    else:
        how = f"{_MANUAL.get(spec.name, 'place the files there by hand')} (in {data_dir})"
    return DatasetUnavailableError(
        f"dataset {dataset_id!r} ({spec}) not found in {data_dir} via {via} ({why}); {how}, "
        f"or pass --images-dir DIR with an image folder copy in DIR/{dataset_id}/<split>/<class>/"
    )


def _fix(download: bool, can_download: bool) -> str:
    return "manual" if not can_download else ("failed" if download else "download")


def _file_ids(ds: Any, data_dir: Path) -> list[str] | None:
    """Paths of the images of a torchvision-style dataset relative to ``data_dir``, if exposed."""
    for attr in ("samples", "_samples", "_image_files", "_images", "imgs"):
        items = getattr(ds, attr, None)
        if not isinstance(items, (list, tuple)) or len(items) != len(ds):
            continue
        ids = []
        base = data_dir.resolve()
        for item in items:
            path = item[0] if isinstance(item, (list, tuple)) else item
            try:
                ids.append(Path(path).resolve().relative_to(base).as_posix())
            except (TypeError, ValueError):
                return None
        return ids if len(set(ids)) == len(ids) else None
    return None


def _wrap(dataset_id: str, split: str, source: str, ds: Any, data_dir: Path) -> ImageDataset:
    classes = getattr(ds, "classes", None)
    if not hasattr(ds, "__getitem__"):  # clip_benchmark's VTAB datasets are iterable
        n = len(ds)
        return ImageDataset(
            dataset_id,
            split,
            source,
            [str(i) for i in range(n)],
            None,
            scan=lambda: iter(ds),
            classes=classes,
        )
    ids = _file_ids(ds, data_dir)
    if ids is None:
        return ImageDataset(
            dataset_id,
            split,
            source,
            [str(i) for i in range(len(ds))],
            ds.__getitem__,
            classes=classes,
        )
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return ImageDataset(
        dataset_id,
        split,
        source,
        [ids[i] for i in order],
        ds.__getitem__,
        order=order,
        classes=classes,
    )


def _open_clip_benchmark(
    dataset_id: str, spec: LoaderSpec, data_dir: Path, split: str, download: bool
) -> ImageDataset | None:
    if not _importable("clip_benchmark"):
        return None
    if spec.name.startswith("vtab/") and not (
        _importable("tensorflow_datasets") and _importable("task_adaptation")
    ):
        return None
    if not download and not data_dir.exists():
        # Checked here: some of its builders fetch data when the directory is absent whatever
        # the download flag says.
        raise _missing(dataset_id, spec, data_dir, "clip_benchmark", "directory absent", "download")
    try:
        from clip_benchmark.datasets.builder import build_dataset

        ds = build_dataset(
            spec.name, root=str(data_dir), transform=None, split=split, download=download
        )
    except SystemExit as err:  # its kaggle-based fetchers call sys.exit
        raise _missing(
            dataset_id,
            spec,
            data_dir,
            "clip_benchmark",
            f"its downloader exited with status {err.code}",
            "manual",
        ) from None
    except (RuntimeError, OSError, AssertionError, ImportError, ValueError) as err:
        raise _missing(
            dataset_id,
            spec,
            data_dir,
            "clip_benchmark",
            _first_line(err),
            _fix(download, spec.name not in _CB_FETCHES_ANYWAY),
        ) from err
    return _wrap(dataset_id, split, f"clip_benchmark:{spec.name}", ds, data_dir)


def _open_torchvision(
    dataset_id: str, spec: LoaderSpec, data_dir: Path, split: str, download: bool
) -> ImageDataset | None:
    eq = TORCHVISION.get(spec.name)
    if eq is None or not _importable("torchvision"):
        return None
    import torchvision.datasets as tvd

    kwargs: dict[str, Any] = dict(eq.kwargs)
    if eq.split_arg == "split":
        kwargs["split"] = split
    elif eq.split_arg == "train":
        kwargs["train"] = split == "train"
    elif eq.split_arg == "imagenet":
        kwargs["split"] = "train" if split == "train" else "val"
    if eq.can_download:
        kwargs["download"] = download
    via = f"torchvision.datasets.{eq.cls}"
    if not download and not data_dir.exists():
        raise _missing(
            dataset_id, spec, data_dir, via, "directory absent", _fix(False, eq.can_download)
        )
    if download and not eq.can_download:
        log.warning("%s: %s cannot download; looking for local files only", dataset_id, via)
    try:
        ds = getattr(tvd, eq.cls)(str(data_dir), **kwargs)
    except (RuntimeError, OSError, ValueError) as err:  # incl. URLError when a download fails
        if "pip install" in str(err):  # e.g. PCAM without h5py
            raise LoaderError(f"dataset {dataset_id!r}: {via} {_first_line(err)}") from err
        raise _missing(
            dataset_id, spec, data_dir, via, _first_line(err), _fix(download, eq.can_download)
        ) from err
    split_desc = eq.note or (
        f"split={kwargs['split']}" if "split" in kwargs else f"train={kwargs.get('train')}"
    )
    if eq.note:
        log.warning("%s: %s (%s)", dataset_id, via, eq.note)
    return _wrap(dataset_id, split, f"torchvision:{eq.cls}({split_desc})", ds, data_dir)


def _no_backend(dataset_id: str, spec: LoaderSpec, data_dir: Path, split: str) -> LoaderError:
    need = "clip-benchmark"
    if spec.name.startswith("vtab/"):
        need += ", tensorflow-datasets and task_adaptation"
    return LoaderError(
        f"dataset {dataset_id!r} ({spec}) has no loader here: install {need} (pip), or put an "
        f"image folder copy at DIR/{dataset_id}/{split}/<class>/<image> and pass --images-dir DIR"
    )


def open_dataset(
    dataset_id: str,
    root: str | Path | None = None,
    split: str = "test",
    transform: Callable[[Any], Any] | None = None,
    download: bool = False,
    backend: str | None = None,
) -> ImageDataset:
    """Open the images of ``dataset_id`` (its registry loader, or ``backend`` when given).

    ``root``: for the registry's backends, the data of dataset ``D`` is in ``root/D``; for
    ``backend="folder"``, the images are in ``root/<dataset_id>/<split>/<class>/``.
    """
    spec = loader_spec(dataset_id, backend)
    root = Path(root).expanduser() if root is not None else default_data_root()
    if spec.backend == "folder":
        if download:
            log.warning("%s: a folder dataset cannot be downloaded; reading %s", dataset_id, root)
        ds = open_folder(dataset_id, root / spec.name / split, split)
    else:
        data_dir = root / dataset_id
        ds = _open_clip_benchmark(dataset_id, spec, data_dir, split, download)
        if ds is None:
            ds = _open_torchvision(dataset_id, spec, data_dir, split, download)
        if ds is None and spec.name in FOLDER_EQUIVALENTS:
            if not (data_dir / split).is_dir():
                raise DatasetUnavailableError(
                    f"dataset {dataset_id!r} ({spec}) not found: expected "
                    f"{FOLDER_EQUIVALENTS[spec.name].format(dir=data_dir)} (no automatic download)"
                )
            ds = open_folder(
                dataset_id, data_dir / split, split, source=f"folder:{spec.name}/{split}"
            )
        if ds is None:
            raise _no_backend(dataset_id, spec, data_dir, split)
    log.info("%s: %d %s images via %s", dataset_id, len(ds), split, ds.source)
    return ds.with_transform(transform) if transform is not None else ds
