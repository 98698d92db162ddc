"""The synthetic world: deterministic, captions reflect the attributes."""

import numpy as np

from benchmark.minizoo import world as w


def test_world_is_deterministic_per_seed_split_index():
    a = w.split_items("mz_pattern", 0, 2)
    b = w.split_items("mz_pattern", 0, 2)
    c = w.split_items("mz_pattern", 1, 2)
    assert [np.asarray(i).tobytes() for _, i in a] == [np.asarray(i).tobytes() for _, i in b]
    assert [np.asarray(i).tobytes() for _, i in a] != [np.asarray(i).tobytes() for _, i in c]
    assert a[0][1].size == (w.RES, w.RES)


def test_captions_name_the_attributes_and_respect_omissions():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = w.random_scene(rng)
        full = w.caption(s, rng, p_mention=1.0)
        if s.kind == "digit":
            assert f"digit {s.digit}" in full
        else:
            assert s.shape in full or w._PLURAL[s.shape] in full
        assert s.colour in full and s.background in full
        no_colour = w.caption(s, rng, omit=frozenset({"colour"}), p_mention=1.0)
        assert not any(f" {c} " in f" {no_colour} ".replace(".", " ") for c in w.COLOURS
                       if c not in s.background)


def test_every_task_has_its_classes_and_captions():
    assert len(w.TARGETS) >= 12
    for tid, task in w.ALL_TASKS.items():
        assert len(task.classes) >= 3 and all("{c}" in t for t in task.templates)
        assert set(w.class_captions(tid)) == set(task.classes)
    labels = [y for y, _ in w.split_items("mz_count", 0, 1)]
    assert labels == list(range(4))


def test_registry_test_size_is_the_exact_test_split():
    from benchmark.core.harness import test_size
    from benchmark.minizoo import datasets as world_data

    for tid, task in w.ALL_TASKS.items():
        assert test_size(tid) == len(task.classes) * world_data.per_class(tid), tid
    labels = [label for label, _ in w.split_items("mz_size", 0, world_data.per_class("mz_size"))]
    assert len(labels) == test_size("mz_size")
