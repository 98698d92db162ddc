"""MLL's concept graph of the synthetic world: deterministic, every task class a node, a sound
hierarchy, node images a function of (world seed, node, k); and the generic concept-list graph."""

import json

import numpy as np
import pytest

from benchmark.core.protocol import get_protocol
from benchmark.minizoo import concepts, world
from methods.mll import graph as mll_graph
from methods.mll.graph import GraphError, concept_graph, concept_source, graph_from_concepts


@pytest.fixture(scope="module")
def g():
    return concept_graph(concept_source("minizoo"))


def test_graph_is_deterministic_and_pinned(g):
    again = graph_from_concepts(concepts.concept_list())
    assert again.digest == g.digest and again == g
    # root + 8 attributes + domain = 10 inner nodes; 49 values (6 shapes, 8 colours, 4
    # patterns, 3 sizes, 4 counts, 4 positions, 4 backgrounds, 10 digits, 6 domains)
    assert len(g) == 59 and len(g.classes) == 49
    assert g.captions[g.ids.index("colour.red")] == "red which is a colour: a photo of a red shape"
    assert all(" which is " in c and "\n" not in c for c in g.captions)
    assert mll_graph.SemanticGraph.from_json(g.to_json()) == g


def test_every_task_class_is_a_node_under_its_attribute(g):
    for task in world.TASKS.values():
        for c in task.classes:
            v = g.ids.index(concepts.node_id(task.attribute, c))
            assert g.names[v] == c
            parents = {g.ids[p] for (n, p) in g.edges if n == v}
            assert parents == {task.attribute}
    for d in world.DOMAINS:
        assert concepts.node_id("domain", d) in g.ids


def test_hierarchy_is_sound(g):
    n = len(g)
    parents = {v: [p for (c, p) in g.edges if c == v] for v in range(n)}
    root = g.ids.index(concepts.ROOT)
    assert parents[root] == []
    for v in range(n):  # every node reaches the root, without cycles
        seen, x = set(), v
        while x != root:
            assert x not in seen and len(parents[x]) == 1
            seen.add(x)
            x = parents[x][0]
    leaves = [g.ids[v] for v in range(n) if not any(p == v for (_, p) in g.edges)]
    assert tuple(leaves) == g.classes  # the label space is the value nodes
    for v in range(n):  # an inner node holds the images of every value below it
        kids = [c for (c, p) in g.edges if p == v]
        if kids:
            assert set(g.node_classes[v]) == set().union(*(g.node_classes[c] for c in kids))
        else:
            assert g.node_classes[v] == (g.classes.index(g.ids[v]),)
    assert len(g.node_classes[root]) == len(g.classes)


def test_concept_lists_are_checked():
    ok = [{"id": "a", "name": "a", "definition": "x", "parents": []},
          {"id": "b", "name": "b", "definition": "y", "parents": ["a"]}]
    assert graph_from_concepts(ok).classes == ("b",)
    with pytest.raises(GraphError, match="unknown parent"):
        graph_from_concepts([*ok, {"id": "c", "name": "c", "definition": "z", "parents": ["q"]}])
    with pytest.raises(GraphError, match="twice"):
        graph_from_concepts([*ok, ok[0]])
    cyc = [{"id": "a", "name": "a", "definition": "x", "parents": ["b"]},
           {"id": "b", "name": "b", "definition": "y", "parents": ["a"]},
           {"id": "c", "name": "c", "definition": "z", "parents": ["a"]}]
    with pytest.raises(GraphError, match="cycle"):
        graph_from_concepts(cyc)
    with pytest.raises(GraphError, match="unknown concept source"):
        concept_source("nope")


def test_the_protocol_names_the_concept_source():
    assert get_protocol("minizoo").concepts == "minizoo"
    assert {get_protocol(p).concepts for p in ("mll", "dcd48", "lovm", "swab")} == {"wordnet"}
    assert concept_source("minizoo", ["MZ-RN-1-8:all_s3"]).world_seed == 3
    assert concept_source("wordnet").params() == {}  # WordNet packs keep their parameters


def test_node_images_are_a_function_of_world_seed_node_and_k():
    a = np.asarray(concepts.node_image(0, "colour.red", 3))
    assert np.array_equal(a, np.asarray(concepts.node_image(0, "colour.red", 3)))
    assert not np.array_equal(a, np.asarray(concepts.node_image(1, "colour.red", 3)))
    assert not np.array_equal(a, np.asarray(concepts.node_image(0, "colour.red", 4)))
    assert a.shape == (world.RES, world.RES, 3)
    rng = np.random.default_rng(0)
    for node, (attr, value) in concepts.value_nodes().items():
        scene = concepts.node_scene(attr, value, rng)
        assert (scene.domain if attr == "domain" else getattr(scene, attr)) == value, node
        if attr == "digit":
            assert scene.kind == "digit"
        if attr != "count":
            assert scene.count == "one"


def test_written_images_are_the_loaders_folder_and_are_reused(tmp_path):
    d = concepts.write_images(0, 2, tmp_path)
    folders = sorted(p.name for p in (d / "test").iterdir())
    assert folders == sorted(concepts.value_nodes()) and len(folders) == 49
    assert len(list((d / "test").rglob("*.png"))) == 98
    assert json.loads((d / "minizoo.json").read_text())["per_node"] == 2
    mtime = (d / "minizoo.json").stat().st_mtime_ns
    assert concepts.write_images(0, 2, tmp_path) == d
    assert (d / "minizoo.json").stat().st_mtime_ns == mtime  # not rewritten
    concepts.write_images(0, 3, tmp_path)
    assert len(list((d / "test").rglob("*.png"))) == 147
    ds = concept_source("minizoo").open_images(concepts.SAMPLE, 3, str(tmp_path))
    assert len(ds) == 147 and ds.image_ids[0].startswith("test/background.beige/")
