"""Dataset catalog, including the upstream defects it must handle."""

from __future__ import annotations

import json

import pytest

from benchmark.core.protocol import DCD_TARGETS, LOVM_DATASETS, MLL_TARGETS
from benchmark.data.catalog import (
    LOVM_DOMAINS,
    UnknownDatasetError,
    dataset_ids,
    entry,
    parse_lenient_json,
    read_lines,
)


def test_registry_covers_every_protocol_dataset():
    ids = set(dataset_ids())
    assert set(LOVM_DATASETS) <= ids
    assert set(MLL_TARGETS) <= ids
    assert len(DCD_TARGETS) == 21


def test_every_registry_file_reference_is_declared_upstream(data):
    from benchmark.data.upstream import declared_files

    declared = declared_files()
    for d in dataset_ids():
        e = entry(d)
        for field in ("classnames", "templates", "captions", "synonyms"):
            if field in e and e[field].startswith("local:"):  # the synthetic world's files
                from benchmark.data.catalog import _registry_path

                assert (_registry_path().parent / e[field][6:]).is_file(), (d, field)
            elif field in e:
                assert e[field] in declared, (d, field)


def test_lovm_domains_file_is_invalid_json_and_is_repaired(data):
    """Upstream defect: LOVM's dataset_domains.json lacks a comma after the kitti entry."""
    raw = data.read_text(LOVM_DOMAINS)
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    domains = parse_lenient_json(raw)
    assert len(domains) == 27
    assert domains["kitti_closest_vehicle_distance"] == "photograph/picture"
    assert domains["imagenet-a"] == "photograph/picture"
    assert domains["pcam"] == "medical/histopathology images"


def test_lenient_json_repairs_only_missing_commas():
    assert parse_lenient_json('{"a": "x"\n "b": "y"}') == {"a": "x", "b": "y"}
    assert parse_lenient_json('{"a": "x",\n "b": "y"}') == {"a": "x", "b": "y"}
    with pytest.raises(json.JSONDecodeError):
        parse_lenient_json('{"a": "x" "b"}')  # not the known defect: still an error


def test_imagenet_variant_files_hold_ucf101_and_are_never_read_as_imagenet(data):
    """Upstream defect: LOVM's ImageNet-variant classnames/templates are UCF101's."""
    ucf = read_lines(data, "LAMDASZ-ML__MLL/MLL/caption_gen/classnames/UCF101.txt")
    for variant in ("imagenet-r", "imagenet-a", "imagenetv2", "imagenet_sketch"):
        names = read_lines(data, f"orrzohar__LOVM/LOVM/classnames/{variant}.txt")
        norm = [n.replace(" ", "_").lower() for n in names]
        same = sum(a == b.lower() for a, b in zip(norm, ucf, strict=False))
        assert len(names) >= 100 and same >= 95  # UCF101's classes, up to spelling
        assert "tench" not in norm
        templates = read_lines(data, f"orrzohar__LOVM/LOVM/templates/{variant}.txt")
        assert templates[0] == "a photo of a person {c}."
    referenced = {entry(d).get(f) for d in dataset_ids() for f in ("classnames", "templates")}
    for variant in ("imagenet-a", "imagenetv2", "imagenet_sketch"):
        assert f"orrzohar__LOVM/LOVM/classnames/{variant}.txt" not in referenced
    # the one variant file the registry reads serves UCF101's templates, not an ImageNet's
    users = [d for d in dataset_ids() if entry(d)["templates"].endswith("imagenet-r.txt")]
    assert users == ["ucf101"]


def test_dataset_info_spot_checks(catalog):
    cars = catalog.info("cars")
    assert len(cars.classnames) == 196
    assert cars.classnames[0] == "AM General Hummer SUV 2000"
    assert cars.templates[0] == "a photo of a {c}."
    assert cars.domain == "photograph/picture" and cars.task == "image classification"
    pcam = catalog.info("pcam")
    assert pcam.classnames == ("lymph node", "lymph node containing metastatic tumor tissue")
    assert pcam.prompts("lymph node")[0] == "a histopathology slide showing lymph node"
    food = catalog.info("food101")
    assert len(food.classnames) == 101 and food.domain == "food photograph"
    assert catalog.info("ucf101").task == "action recognition"


def test_captions_and_synonyms_are_keyed_by_class(catalog):
    caps = catalog.captions("cars")
    assert list(caps)[:2] == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"]
    assert all(isinstance(v, list) and v for v in caps.values())
    assert "Hummer" in catalog.synonyms("cars")["AM General Hummer SUV 2000"]
    with pytest.raises(KeyError, match="no published synonyms"):
        catalog.synonyms("food101")


def test_unknown_dataset_is_one_line_with_suggestion():
    with pytest.raises(UnknownDatasetError) as err:
        entry("cifar10O")
    assert "did you mean 'cifar100'" in str(err.value)
    assert "\n" not in str(err.value)
