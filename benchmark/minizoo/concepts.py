"""MLL's concept graph for the synthetic world: the part WordNet and ImageNet play for real zoos.

Nodes (:func:`concept_list`) are the world's vocabulary: a root ``object``; one parent concept
per attribute of :data:`benchmark.minizoo.world.ATTRIBUTES` and for the rendering ``domain``;
under each parent, one node per value (``colour.red``, ``position.top_left``, ``digit.seven``,
``domain.sketch``, ...). Values that are words of two attributes (``one`` as a count and as a
digit) are two nodes with different definitions. Every class of every target task is the
name of a value node (tested). Combined concepts (``red circle``, the broad side dataset's
classes) are not nodes: MLL matches single-attribute targets, and such nodes would make a
colour's node precision depend on shapes too.

Captions follow MLL's ``"{name} which is {definition}"`` with short, caption-like
definitions ("red which is a colour: a photo of a red shape"): the zoo's text towers read 20
tokens and were trained on the world's captions. :func:`methods.mll.graph.graph_from_concepts`
turns the list into MLL's graph: value nodes are the leaves (the label space), a parent
holds the images of its values, the root those of every value.

Node images (:func:`node_image`): image ``k`` of value node ``v`` is rendered by the world's
renderer from ``(world_seed, v, k)`` alone (``world._rng(world_seed, "concepts", k,
crc32(v))``: a stream of its own, never a train or test image): a random scene with that value
fixed, every other attribute and the domain drawn as the world draws them (one object, except
for counts; shapes for patterns and counts, digits for digits; a domain node fixes the domain).
:func:`write_images` writes them as the image folder ``<root>/mz_concepts/test/<node>/<k>.png``
that the extract command reads (a stamp records world seed and count; rewritten when either
differs, atomically). ``python -m benchmark extract model-labels --protocol minizoo`` uses this
source (``Protocol.concepts = "minizoo"``); the selector sees only the packs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

from benchmark.minizoo import world as w

SAMPLE = "mz_concepts"  # the one sample dataset (ImageNet and its variants' part)
ROOT = "object"
VERSION = "1"
DOMAIN_PHRASES = {"clean": "a clean photo of", "sketch": "a sketch of",
                  "noise": "a noisy photo of", "blur": "a blurry photo of",
                  "lowlight": "a dark photo of", "invert": "an inverted photo of"}
_PARENT_DEFINITIONS = {
    "shape": "the form of an object, such as {}",
    "colour": "the colour of an object, such as {}",
    "pattern": "the fill of a shape: {}",
    "size": "how big an object is: {}",
    "count": "how many objects a picture shows: {}",
    "position": "where an object is in the picture: {}",
    "background": "the colour behind the objects: {}",
    "digit": "a handwritten number: {}",
    "domain": "how a picture is rendered: {}",
}
_VALUE_DEFINITIONS = {
    "shape": "a shape: a photo of a {}",
    "colour": "a colour: a photo of a {} shape",
    "pattern": "a pattern: a {} shape",
    "size": "a size: a {} shape",
    "count": "a count: {} shapes",
    "position": "a position: a shape in the {}",
    "background": "a background: a shape on a {} background",
    "digit": "a digit: the digit {}",
    "domain": "a domain: {} a shape",
}


def vocabulary() -> dict[str, tuple[str, ...]]:
    """Attribute -> its values (the world's, plus the rendering domains)."""
    values = {
        "shape": w.SHAPES, "colour": tuple(w.COLOURS), "pattern": w.PATTERNS, "size": w.SIZES,
        "count": w.COUNTS, "position": w.POSITIONS, "background": tuple(w.BACKGROUNDS),
        "digit": w.DIGITS,
    }  # fmt: skip
    out = {a: tuple(values[a]) for a in w.ATTRIBUTES}
    out["domain"] = tuple(w.DOMAINS)
    return out


def node_id(attribute: str, value: str) -> str:
    return f"{attribute}.{value.replace(' ', '_')}"


def concept_list() -> list[dict[str, Any]]:
    """The concepts (module docstring) for :func:`methods.mll.graph.graph_from_concepts`."""
    out: list[dict[str, Any]] = [{"id": ROOT, "name": ROOT, "parents": [],
                                  "definition": "a thing in a picture of the world"}]
    for attribute, values in vocabulary().items():
        listed = ", ".join(values[:4]) + (" ..." if len(values) > 4 else "")
        out.append({"id": attribute, "name": attribute, "parents": [ROOT],
                    "definition": _PARENT_DEFINITIONS[attribute].format(listed)})
        for v in values:
            shown = DOMAIN_PHRASES.get(v, v) if attribute == "domain" else v
            if attribute == "count" and v == "one":
                definition = "a count: one shape"
            else:
                definition = _VALUE_DEFINITIONS[attribute].format(shown)
            out.append({"id": node_id(attribute, v), "name": v, "parents": [attribute],
                        "definition": definition, "attribute": attribute, "value": v})
    return out


def value_nodes() -> dict[str, tuple[str, str]]:
    """Leaf node id -> (attribute, value)."""
    return {c["id"]: (c["attribute"], c["value"]) for c in concept_list() if "attribute" in c}


def node_scene(attribute: str, value: str, rng):
    """A random scene showing ``value`` of ``attribute`` (module docstring)."""
    if attribute == "domain":
        return w.random_scene(rng, domain=value, fixed={"count": "one"})
    fixed: dict[str, str] = {attribute: value}
    if attribute == "digit":
        fixed["kind"] = "digit"
    elif attribute in ("shape", "pattern", "count"):
        fixed["kind"] = "shape"
    if attribute != "count":
        fixed["count"] = "one"
    return w.random_scene(rng, fixed=fixed)


def node_image(world_seed: int, node: str, k: int):
    """Image ``k`` of value node ``node``: a function of ``(world_seed, node, k)`` only."""
    attribute, value = value_nodes()[node]
    rng = w._rng(world_seed, "concepts", k, zlib.crc32(node.encode()))
    return w.render(node_scene(attribute, value, rng), rng)


def write_images(world_seed: int, per_node: int, root: Path) -> Path:
    """``root/mz_concepts/test/<node>/<k>.png`` for every value node (module docstring)."""
    from benchmark.features.store import locked

    d = Path(root) / SAMPLE
    nodes = sorted(value_nodes())
    stamp = {"world_seed": int(world_seed), "per_node": int(per_node), "version": VERSION,
             "nodes": len(nodes), "world": w.fingerprint()[:16]}
    sp = d / "minizoo.json"

    def fresh() -> bool:
        try:
            return json.loads(sp.read_text()) == stamp
        except (OSError, json.JSONDecodeError):
            return False

    if fresh():
        return d
    Path(root).mkdir(parents=True, exist_ok=True)
    with locked(Path(root) / f".{SAMPLE}.lock"):
        if fresh():
            return d
        tmp = Path(tempfile.mkdtemp(prefix=f".{SAMPLE}.", dir=root))
        try:
            for node in nodes:
                folder = tmp / "test" / node
                folder.mkdir(parents=True)
                for k in range(per_node):
                    node_image(world_seed, node, k).save(folder / f"{k:04d}.png")
            (tmp / "minizoo.json").write_text(json.dumps(stamp))
            if d.exists():
                shutil.rmtree(d)
            os.replace(tmp, d)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return d


class WorldConcepts:
    """The concept source of the ``minizoo`` protocol (see :mod:`methods.mll.graph`)."""

    name = "minizoo"
    samples = {SAMPLE: "minizoo-world"}

    def __init__(self, world_seed: int = 0) -> None:
        self.world_seed = int(world_seed)

    @classmethod
    def for_models(cls, models) -> WorldConcepts:
        """The world of the models' ids (``..._s<seed>``; world 0 when they name none)."""
        from benchmark.errors import UsageError

        seeds = {int(m.group(1)) for x in models if (m := re.search(r"_s(\d+)$", x))}
        if len(seeds) > 1:
            raise UsageError(f"models of different world seeds {sorted(seeds)}: label each "
                             f"world's models in its own run")
        return cls(seeds.pop() if seeds else 0)

    def concept_list(self) -> list[dict[str, Any]]:
        return concept_list()

    def provenance(self) -> dict[str, Any]:
        return {"concepts": self.name, "world": "benchmark/minizoo/world.py"}

    def label_space(self, sample: str) -> tuple[str, ...]:
        return tuple(sorted(value_nodes()))

    def params(self) -> dict[str, Any]:
        return {"concepts": self.name, "world_seed": self.world_seed}

    def open_images(self, sample: str, images_per_node: int, images_dir: str | None = None):
        from benchmark.extract import loaders

        root = Path(images_dir) if images_dir else loaders.default_data_root()
        d = write_images(self.world_seed, images_per_node, root)
        return loaders.open_folder(sample, d / "test", "test")


__all__ = ["ROOT", "SAMPLE", "WorldConcepts", "concept_list", "node_id", "node_image",
           "node_scene", "value_nodes", "vocabulary", "write_images"]
