"""Image loaders: the folder backend on a synthetic image folder, the sampling rule, and the
registry backends (torchvision, clip_benchmark) exercised up to the point of download."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.catalog import UnknownDatasetError, registry
from benchmark.extract import loaders
from benchmark.extract.loaders import (
    DatasetUnavailableError,
    LoaderError,
    open_dataset,
    parse_loader,
    sample_indices,
)


def write_folder(
    root: Path,
    dataset: str,
    classes: dict[str, int],
    split: str = "test",
    size=(20, 16),
    mode: str = "RGB",
) -> list[Path]:
    """root/<dataset>/<split>/<class>/<k>.png with distinct pixel values per image."""
    paths = []
    value = 0
    for cls, n in classes.items():
        d = root / dataset / split / cls
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            value += 10
            arr = np.full((size[1], size[0], 3), value, dtype=np.uint8)
            img = Image.fromarray(arr).convert(mode)
            img.save(d / f"{k}.png")
            paths.append(d / f"{k}.png")
    return paths


@pytest.fixture
def no_clip_benchmark(monkeypatch):
    """As on a machine without clip_benchmark (whatever this one has)."""
    monkeypatch.setitem(sys.modules, "clip_benchmark", None)


# --- folder backend -----------------------------------------------------------------------------


def test_folder_backend_reads_classes_ids_and_rgb(tmp_path):
    write_folder(tmp_path, "cifar100", {"dog": 2, "cat": 3}, mode="L")
    (tmp_path / "cifar100" / "test" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cifar100" / "test" / ".hidden").mkdir()
    ds = open_dataset("cifar100", tmp_path, backend="folder")
    assert len(ds) == 5
    assert ds.classes == ("cat", "dog")
    assert ds.image_ids == [
        "test/cat/0.png",
        "test/cat/1.png",
        "test/cat/2.png",
        "test/dog/0.png",
        "test/dog/1.png",
    ]
    image, label = ds[3]
    assert image.mode == "RGB" and image.size == (20, 16)  # grayscale files come out RGB
    assert label == 1
    assert ds[-1][1] == 1 and ds.source == "folder:cifar100/test"
    with pytest.raises(IndexError):
        ds[5]


def test_transform_is_applied_and_with_transform_leaves_original(tmp_path):
    write_folder(tmp_path, "mnist", {"a": 2})
    ds = open_dataset("mnist", tmp_path, backend="folder")
    sized = ds.with_transform(lambda im: im.size)
    assert sized[0][0] == (20, 16)
    assert ds.transform is None and hasattr(ds[0][0], "mode")
    assert (
        open_dataset("mnist", tmp_path, transform=np.asarray, backend="folder")[1][0][0, 0, 0] == 20
    )


def test_fetch_returns_requested_indices_in_order(tmp_path):
    write_folder(tmp_path, "mnist", {"a": 3, "b": 3})
    ds = open_dataset("mnist", tmp_path, backend="folder", transform=np.asarray)
    got = list(ds.fetch([4, 1, 4]))
    assert [i for i, _ in got] == [1, 4]
    assert got[1][1][0][0, 0, 0] == 50 and got[1][1][1] == 1


def test_registry_folder_loader(tmp_path):
    assert registry()["ucf101"]["loader"] == "folder:ucf101"
    write_folder(tmp_path, "ucf101", {"ApplyEyeMakeup": 2})
    ds = open_dataset("ucf101", tmp_path)
    assert len(ds) == 2 and ds.image_id(0) == "test/ApplyEyeMakeup/0.png"


def test_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        open_dataset("dtd", tmp_path, backend="folder")
    msg = str(err.value)
    assert "'dtd'" in msg and str(tmp_path / "dtd" / "test") in msg and "--images-dir" in msg
    assert "\n" not in msg


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "dtd" / "test" / "banded").mkdir(parents=True)
    with pytest.raises(DatasetUnavailableError, match="no images"):
        open_dataset("dtd", tmp_path, backend="folder")


# --- sampling -----------------------------------------------------------------------------------


def test_sample_follows_the_documented_rule():
    got = sample_indices(1000, 25, seed=3)
    assert got == sorted(int(i) for i in np.random.default_rng(3).permutation(1000)[:25])
    assert got == sample_indices(1000, 25, seed=3)  # deterministic
    assert len(set(got)) == 25 and all(0 <= i < 1000 for i in got)
    assert got != sample_indices(1000, 25, seed=4)


def test_sample_is_nested_and_capped():
    small, large = sample_indices(500, 10, seed=0), sample_indices(500, 100, seed=0)
    assert set(small) <= set(large)  # more images per dataset extends the sample
    assert sample_indices(7, 100, seed=0) == list(range(7))


@pytest.mark.parametrize("n_total, n", [(0, 5), (10, 0)])
def test_sample_rejects_degenerate_requests(n_total, n):
    with pytest.raises(ValueError):
        sample_indices(n_total, n, seed=0)


# --- specs and unknown names --------------------------------------------------------------------


def test_every_registered_loader_parses():
    for d, e in registry().items():
        spec = parse_loader(e["loader"])
        assert spec.backend in loaders.BACKENDS, d


@pytest.mark.parametrize(
    "text, match",
    [
        ("foldr:x", "unknown loader backend 'foldr'.*did you mean 'folder'"),
        ("s3:x", "unknown loader backend 's3'.*valid: clip_benchmark, folder"),
        ("no-colon", "not of the form"),
    ],
)
def test_bad_loader_spec(text, match):
    with pytest.raises(LoaderError, match=match):
        parse_loader(text)


def test_unknown_backend_and_dataset(tmp_path):
    with pytest.raises(LoaderError, match="unknown loader backend 'hub'"):
        open_dataset("cifar100", tmp_path, backend="hub")
    with pytest.raises(UnknownDatasetError, match="did you mean 'cifar100'"):
        open_dataset("cifar10", tmp_path)


# --- torchvision equivalents, up to the point of download ---------------------------------------


@pytest.mark.torch
def test_torchvision_absent_files_without_download(tmp_path, no_clip_benchmark):
    pytest.importorskip("torchvision")
    with pytest.raises(DatasetUnavailableError) as err:
        open_dataset("cifar100", tmp_path, download=False)
    msg = str(err.value)
    assert "'cifar100'" in msg and "torchvision.datasets.CIFAR100" in msg
    assert str(tmp_path / "cifar100") in msg and "--download" in msg and "\n" not in msg


TORCHVISION_DATASETS = sorted(
    d
    for d, e in registry().items()
    if parse_loader(e["loader"]).backend == "clip_benchmark"
    and parse_loader(e["loader"]).name in loaders.TORCHVISION
)


@pytest.mark.torch
@pytest.mark.parametrize("dataset", TORCHVISION_DATASETS)
def test_every_torchvision_equivalent_fails_clearly_on_an_empty_dir(
    tmp_path, no_clip_benchmark, dataset
):
    """The real torchvision classes run until they look for their files (no traceback)."""
    pytest.importorskip("torchvision")
    (tmp_path / dataset).mkdir()
    with pytest.raises(LoaderError) as err:
        open_dataset(dataset, tmp_path, download=False)
    assert repr(dataset) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.torch
def test_download_flag_reaches_torchvisions_downloader(tmp_path, no_clip_benchmark, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    calls = []

    def offline_download(self):
        calls.append(self.root)
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR100, "download", offline_download)
    with pytest.raises(DatasetUnavailableError, match="download failed") as err:
        open_dataset("cifar100", tmp_path, download=True)
    assert calls == [str(tmp_path / "cifar100")]
    assert "network is unreachable" in str(err.value)


@pytest.mark.torch
def test_torchvision_dataset_with_files_has_sorted_path_ids(tmp_path, no_clip_benchmark):
    """A real torchvision class (DTD) on a tiny local copy: ids are paths, order is sorted."""
    pytest.importorskip("torchvision")
    base = tmp_path / "dtd" / "dtd" / "dtd"
    listed = ["zigzagged/z_2.jpg", "banded/b_1.jpg", "zigzagged/z_1.jpg"]
    for rel in listed:
        (base / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (1, 2, 3)).save(base / "images" / rel)
    (base / "labels").mkdir()
    (base / "labels" / "test1.txt").write_text("\n".join(listed) + "\n")
    ds = open_dataset("dtd", tmp_path)
    assert ds.source == "torchvision:DTD(split=test)"
    assert ds.image_ids == [f"dtd/dtd/images/{r}" for r in sorted(listed)]
    assert [ds[i][1] for i in range(3)] == [0, 1, 1]  # banded, zigzagged, zigzagged
    assert ds[0][0].size == (8, 8)


def test_fer2013_reads_clip_benchmarks_folder_layout(tmp_path, no_clip_benchmark):
    write_folder(tmp_path, "fer2013", {"angry": 2, "happy": 1})
    ds = open_dataset("fer2013", tmp_path)
    assert len(ds) == 3 and ds.image_id(2) == "test/happy/0.png"
    with pytest.raises(DatasetUnavailableError, match="msambare/fer2013"):
        open_dataset("fer2013", tmp_path / "elsewhere")


def test_dataset_without_any_backend_names_the_fix(tmp_path, no_clip_benchmark):
    with pytest.raises(LoaderError) as err:
        open_dataset("dmlab", tmp_path)
    msg = str(err.value)
    assert "'dmlab'" in msg and "clip-benchmark" in msg and "tensorflow-datasets" in msg
    assert "--images-dir" in msg and "\n" not in msg


# --- clip_benchmark (a stand-in package: the real one is optional) ------------------------------


@pytest.fixture
def fake_clip_benchmark(monkeypatch):
    """Installs a stand-in ``clip_benchmark.datasets.builder.build_dataset``; returns its calls."""
    calls = []
    behaviour = {"result": None, "raise": None}

    def build_dataset(name, root="root", transform=None, split="test", download=True, **kw):
        calls.append(dict(name=name, root=root, split=split, download=download))
        if behaviour["raise"] is not None:
            raise behaviour["raise"]
        return behaviour["result"]

    pkg = types.ModuleType("clip_benchmark")
    sub = types.ModuleType("clip_benchmark.datasets")
    builder = types.ModuleType("clip_benchmark.datasets.builder")
    builder.build_dataset = build_dataset
    pkg.datasets, sub.builder = sub, builder
    for name, mod in [
        ("clip_benchmark", pkg),
        ("clip_benchmark.datasets", sub),
        ("clip_benchmark.datasets.builder", builder),
        ("tensorflow_datasets", types.ModuleType("tensorflow_datasets")),
        ("task_adaptation", types.ModuleType("task_adaptation")),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)
    return calls, behaviour


class _Iterable:
    """Like clip_benchmark's VTAB datasets: iterable with a length, no __getitem__."""

    classes = ["a", "b"]

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        for i in range(self.n):
            yield Image.new("L", (4, 4), i), i % 2


def test_clip_benchmark_is_preferred_and_iterable_sources_work(tmp_path, fake_clip_benchmark):
    calls, behaviour = fake_clip_benchmark
    behaviour["result"] = _Iterable(5)
    (tmp_path / "dmlab").mkdir()
    ds = open_dataset("dmlab", tmp_path, transform=np.asarray)
    assert calls == [
        dict(name="vtab/dmlab", root=str(tmp_path / "dmlab"), split="test", download=False)
    ]
    assert ds.source == "clip_benchmark:vtab/dmlab" and len(ds) == 5
    assert ds.image_ids == ["0", "1", "2", "3", "4"]
    got = list(ds.fetch([3, 1]))
    assert [i for i, _ in got] == [1, 3] and got[1][1][0][0, 0, 0] == 3  # RGB array of image 3
    assert ds[4][1] == 0


def test_clip_benchmark_never_called_without_data_and_download(tmp_path, fake_clip_benchmark):
    calls, _ = fake_clip_benchmark
    with pytest.raises(DatasetUnavailableError, match="--download"):
        open_dataset("fer2013", tmp_path)  # its builder would call kaggle here
    assert calls == []


def test_clip_benchmark_failures_become_one_line_errors(tmp_path, fake_clip_benchmark):
    calls, behaviour = fake_clip_benchmark
    (tmp_path / "resisc45").mkdir()
    behaviour["raise"] = SystemExit(1)  # its kaggle/wget fetchers exit the interpreter
    with pytest.raises(DatasetUnavailableError, match="exited with status 1"):
        open_dataset("resisc45", tmp_path, download=True)
    behaviour["raise"] = RuntimeError("Dataset not found.\nmore lines")
    with pytest.raises(DatasetUnavailableError) as err:
        open_dataset("resisc45", tmp_path)
    assert "RuntimeError: Dataset not found." in str(err.value) and "\n" not in str(err.value)
