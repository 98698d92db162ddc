"""The synthetic image-text world of the miniature zoo (numpy + Pillow; no torch).

Every image is a function of ``(world_seed, split, index)`` (:func:`sample`): a scene with
attributes (shape or digit glyph, colour, pattern, size, count, position, background) rendered
in a domain (clean, sketch, noise, blur, lowlight, invert) at :data:`RES` pixels. Captions are
built from the attributes (:func:`caption`); a pretraining mixture may omit attributes from
them (a model whose captions never name colours cannot learn colours). Digit glyphs are
scikit-learn's bundled handwritten digits (``load_digits``), upscaled.

The target tasks (:data:`TASKS`) are classification tasks of this world: class names, prompt
templates, class captions and a test split drawn with the task's constraints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RES = 32
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
COLOURS = {
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230),
    "yellow": (235, 220, 40), "purple": (150, 60, 200), "orange": (245, 140, 30),
    "cyan": (40, 210, 220), "white": (245, 245, 245),
}
PATTERNS = ("plain", "striped", "dotted", "checkered")
SIZES = ("small", "medium", "large")
COUNTS = ("one", "two", "three", "four")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
BACKGROUNDS = {"black": (10, 10, 10), "gray": (120, 120, 120), "navy": (20, 25, 90),
               "beige": (200, 185, 150)}
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DOMAINS = ("clean", "sketch", "noise", "blur", "lowlight", "invert")
ATTRIBUTES = ("shape", "colour", "pattern", "size", "count", "position", "background", "digit")
_SIZE_PX = {"small": 10, "medium": 14, "large": 20}
_DOMAIN_WORDS = {"clean": "a photo of", "sketch": "a sketch of", "noise": "a noisy photo of",
                 "blur": "a blurry photo of", "lowlight": "a dark photo of",
                 "invert": "an inverted photo of"}
_PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles",
           "diamond": "diamonds", "cross": "crosses", "ring": "rings"}


@dataclass(frozen=True)
class Scene:
    kind: str  # "shape" or "digit"
    shape: str
    colour: str
    pattern: str
    size: str
    count: str
    position: str
    background: str
    digit: str
    domain: str
    glyph: int = 0  # index into load_digits of the digit's glyph

    def attrs(self) -> dict[str, str]:
        return {a: getattr(self, a) for a in ATTRIBUTES}


@cache
def _glyphs() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def _rng(world_seed: int, split: str, index: int, salt: int = 0) -> np.random.Generator:
    tag = {"train": 1, "test": 2}.get(split, 3)
    return np.random.default_rng([int(world_seed), tag, int(index), salt])


def random_scene(rng: np.random.Generator, domain: str | None = None,
                 fixed: dict[str, str] | None = None, domains=DOMAINS,
                 domain_p=None) -> Scene:
    """A scene with uniformly drawn attributes (``fixed`` overrides; digits are scenes of kind
    ``digit``: one glyph, no pattern)."""
    fixed = dict(fixed or {})
    kind = fixed.pop("kind", None) or ("digit" if rng.random() < 0.3 else "shape")
    def pick(xs):
        return xs[int(rng.integers(len(xs)))]

    s = {
        "kind": kind, "shape": pick(SHAPES), "colour": pick(tuple(COLOURS)),
        "pattern": pick(PATTERNS), "size": pick(SIZES), "count": pick(COUNTS),
        "position": pick(POSITIONS), "background": pick(tuple(BACKGROUNDS)),
        "digit": pick(DIGITS),
    }
    if domain is None:
        domain = str(rng.choice(list(domains), p=domain_p))
    s["domain"] = domain
    s.update(fixed)
    if s["kind"] == "digit":
        s["pattern"], s["count"] = "plain", "one"
    imgs, targets = _glyphs()
    choices = np.flatnonzero(targets == DIGITS.index(s["digit"]))
    s["glyph"] = int(choices[int(rng.integers(len(choices)))])
    return Scene(**s)


def _shape_mask(shape: str, cx: float, cy: float, r: float, res: int) -> np.ndarray:
    im = Image.new("L", (res, res), 0)
    d = ImageDraw.Draw(im)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, fill=255)
    elif shape == "square":
        d.rectangle((cx - r * .8, cy - r * .8, cx + r * .8, cy + r * .8), fill=255)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r * .8), (cx + r, cy + r * .8)], fill=255)
    elif shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=255)
    elif shape == "cross":
        w = r * .35
        d.rectangle((cx - r, cy - w, cx + r, cy + w), fill=255)
        d.rectangle((cx - w, cy - r, cx + w, cy + r), fill=255)
    elif shape == "ring":
        d.ellipse(box, fill=255)
        d.ellipse((cx - r * .55, cy - r * .55, cx + r * .55, cy + r * .55), fill=0)
    return np.asarray(im, np.float32) / 255.0


def _pattern(pattern: str, res: int) -> np.ndarray:
    y, x = np.mgrid[0:res, 0:res]
    if pattern == "striped":
        return ((x // 2) % 2).astype(np.float32)
    if pattern == "dotted":
        return (((x % 4) < 2) & ((y % 4) < 2)).astype(np.float32)
    if pattern == "checkered":
        return (((x // 3) + (y // 3)) % 2).astype(np.float32)
    return np.ones((res, res), np.float32)


def render(scene: Scene, rng: np.random.Generator, res: int = RES) -> Image.Image:
    """The RGB image of ``scene`` (jitter drawn from ``rng``)."""
    bg = np.array(BACKGROUNDS[scene.background], np.float32) / 255.0
    fg = np.array(COLOURS[scene.colour], np.float32) / 255.0
    img = np.broadcast_to(bg, (res, res, 3)).copy()
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    half = res / 2
    qx = 1 if "right" in scene.position else 0
    qy = 1 if "bottom" in scene.position else 0
    r = _SIZE_PX[scene.size] * res / 32 / 2
    if scene.kind == "digit":
        g = _glyphs()[0][scene.glyph]
        side = max(4, int(round(2 * r + 8 * res / 32)))
        gi = Image.fromarray((g * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
        mask = np.zeros((res, res), np.float32)
        ox = int(qx * half + (half - side) / 2 + rng.integers(-1, 2))
        oy = int(qy * half + (half - side) / 2 + rng.integers(-1, 2))
        ox, oy = min(max(ox, 0), res - side), min(max(oy, 0), res - side)
        mask[oy:oy + side, ox:ox + side] = np.asarray(gi, np.float32) / 255.0
    else:
        n = COUNTS.index(scene.count) + 1
        mask = np.zeros((res, res), np.float32)
        if n == 1:
            cx = qx * half + half / 2 + rng.uniform(-1, 1)
            cy = qy * half + half / 2 + rng.uniform(-1, 1)
            mask = _shape_mask(scene.shape, cx, cy, r, res)
        else:
            rr = min(r, res / 8)
            slots = [(0, 0), (1, 0), (0, 1), (1, 1)]
            for k in rng.permutation(4)[:n]:
                sx, sy = slots[int(k)]
                cx = sx * half + half / 2 + rng.uniform(-1.5, 1.5)
                cy = sy * half + half / 2 + rng.uniform(-1.5, 1.5)
                mask = np.maximum(mask, _shape_mask(scene.shape, cx, cy, rr, res))
        mask = mask * np.where(_pattern(scene.pattern, res) > 0, 1.0, 0.25)
    img = img * (1 - mask[..., None]) + fg * mask[..., None]
    img = np.clip(img, 0, 1)
    out = Image.fromarray((img * 255).astype(np.uint8))
    return apply_domain(out, scene.domain, rng)


def apply_domain(im: Image.Image, domain: str, rng: np.random.Generator) -> Image.Image:
    if domain == "clean":
        return im
    if domain == "sketch":
        e = np.asarray(im.convert("L").filter(ImageFilter.FIND_EDGES), np.float32)
        e = np.where(e > 40, 255.0, 0.0)
        return Image.fromarray((255 - e).astype(np.uint8)).convert("RGB")
    if domain == "blur":
        return im.filter(ImageFilter.GaussianBlur(1.5))
    a = np.asarray(im, np.float32) / 255.0
    if domain == "noise":
        a = a + rng.normal(0, 0.3, a.shape)
    elif domain == "lowlight":
        a = a * 0.25 + rng.normal(0, 0.03, a.shape)
    elif domain == "invert":
        a = 1.0 - a
    else:
        raise ValueError(f"unknown domain {domain!r}")
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))


_NOUNS = ("shape", "object", "thing")
_CLEAN_WORDS = ("a photo of", "a picture of", "")


def _short(scene: Scene, a: str, rng: np.random.Generator) -> str:
    """A short caption naming attribute ``a`` alone (alt-text style: "something red.")."""
    noun = "digit" if scene.kind == "digit" else _NOUNS[int(rng.integers(len(_NOUNS)))]
    art = "an" if noun[0] in "aeiou" else "a"
    if a == "shape":
        return f"a {scene.shape}" if scene.kind == "shape" else f"the digit {scene.digit}"
    if a == "digit":
        return f"the digit {scene.digit}"
    if a == "count":
        return f"{scene.count} {noun}s" if scene.count != "one" else f"one {noun}"
    if a == "position":
        return f"{art} {noun} in the {scene.position}"
    if a == "background":
        return f"{art} {noun} on a {scene.background} background"
    value = getattr(scene, a)  # colour, pattern, size
    if rng.random() < 0.3:
        return f"something {value}"
    return f"{'an' if value[0] in 'aeiou' else 'a'} {value} {noun}"


def caption(scene: Scene, rng: np.random.Generator, omit: frozenset[str] = frozenset(),
            p_mention: float = 0.7, p_short: float = 0.3) -> str:
    """A caption naming the scene's attributes, never one in ``omit``.

    With ``p_mention = 1`` every attribute is named. Otherwise, as in web alt-text, a caption is
    short with probability ``p_short`` (one attribute alone: "something red.", "three shapes.")
    or long: each attribute named with probability ``p_mention``, the object's identity (shape or
    digit) with probability ``max(p_mention, 0.8)``, a generic noun ("shape", "object") in its
    place otherwise.
    """
    def say(a: str) -> bool:
        return a not in omit and rng.random() < p_mention

    if scene.domain == "clean" and p_mention < 1:
        domain = _CLEAN_WORDS[int(rng.integers(len(_CLEAN_WORDS)))]
    else:
        domain = _DOMAIN_WORDS[scene.domain]
    lead = (domain + " ") if domain else ""
    if p_mention < 1 and rng.random() < p_short:
        own = {"shape", "colour", "size", "background"} | (
            {"digit"} if scene.kind == "digit" else {"pattern", "count"}
            | ({"position"} if scene.count == "one" else set()))
        if scene.kind == "digit":
            own = (own - {"shape"}) | {"position"}
        choices = sorted(own - set(omit))
        if choices:
            return lead + _short(scene, choices[int(rng.integers(len(choices)))], rng) + "."
    named = "digit" if scene.kind == "digit" else "shape"
    ident = named not in omit and (p_mention >= 1 or rng.random() < max(p_mention, 0.8))
    colour = scene.colour if say("colour") else ""
    if scene.kind == "digit":
        size = scene.size + " " if say("size") else ""
        core = (f"the {size}digit {scene.digit}" if ident else f"a {size}handwritten digit")
        parts = [domain, core]
        if colour:
            parts.append("in " + colour)
        if say("position"):
            parts.append("in the " + scene.position)
    else:
        n = COUNTS.index(scene.count)
        shape = scene.shape if ident else _NOUNS[int(rng.integers(len(_NOUNS)))]
        adj = [scene.size if say("size") else "", scene.pattern if say("pattern") else "",
               colour]
        adj = " ".join(x for x in adj if x)
        if n > 0 and say("count"):
            noun = f"{scene.count} {adj + ' ' if adj else ''}{_PLURAL.get(shape, shape + 's')}"
        else:
            noun = ("an " if (adj or shape)[0] in "aeiou" else "a ") + \
                   (adj + " " if adj else "") + shape
        parts = [domain, noun]
        if n == 0 and say("position"):
            parts.append("in the " + scene.position)
    if say("background"):
        parts.append(f"on a {scene.background} background")
    return " ".join(x for x in parts if x) + "."


# -- target tasks ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """A classification task of the world: the attribute it asks for, its scene constraints."""

    id: str
    name: str
    attribute: str
    classes: tuple[str, ...]
    templates: tuple[str, ...]
    kind: str = "shape"  # scene kind
    domain: str = "clean"
    fixed: dict[str, str] = field(default_factory=dict)
    task: str = "classification"

    def scene(self, rng: np.random.Generator, label: int) -> Scene:
        fixed = {"kind": self.kind, **self.fixed, self.attribute: self.classes[label]}
        if self.attribute != "count" and self.kind == "shape":
            fixed.setdefault("count", "one")
        return random_scene(rng, domain=self.domain, fixed=fixed)


def _t(*xs: str) -> tuple[str, ...]:
    return tuple(xs)


_T_SHAPE = _t("a photo of a {c}.", "a {c}.", "a picture of a {c} shape.")
_T_COLOUR = _t("a photo of a {c} shape.", "something {c}.", "a {c} object.")

TASKS: dict[str, Task] = {t.id: t for t in (
    Task("mz_colour", "Colours", "colour", tuple(COLOURS), _T_COLOUR),
    Task("mz_pattern", "Patterns", "pattern", PATTERNS,
         _t("a photo of a {c} shape.", "a {c} object.", "a {c} pattern.")),
    Task("mz_size", "Sizes", "size", SIZES,
         _t("a photo of a {c} shape.", "a {c} object.", "something {c}.")),
    Task("mz_count", "Counting", "count", COUNTS,
         _t("a photo of {c} shapes.", "{c} objects.", "there are {c} things.")),
    Task("mz_position", "Positions", "position", POSITIONS,
         _t("a shape in the {c}.", "an object in the {c}.", "a photo of a shape in the {c}.")),
    Task("mz_background", "Backgrounds", "background", tuple(BACKGROUNDS),
         _t("a shape on a {c} background.", "a photo on a {c} background.",
            "something on {c}.")),
    Task("mz_colour_lowlight", "Colours (low light)", "colour", tuple(COLOURS),
         _t("a dark photo of a {c} shape.", "something {c}.", "a {c} object."),
         domain="lowlight"),
    Task("mz_colour_noise", "Colours (noise)", "colour", tuple(COLOURS),
         _t("a noisy photo of a {c} shape.", "something {c}.", "a {c} object."),
         domain="noise"),
    Task("mz_pattern_invert", "Patterns (inverted)", "pattern", PATTERNS,
         _t("an inverted photo of a {c} shape.", "a {c} object.", "a {c} pattern."),
         domain="invert"),
    Task("mz_background_invert", "Backgrounds (inverted)", "background", tuple(BACKGROUNDS),
         _t("an inverted photo on a {c} background.", "a shape on a {c} background.",
            "something on {c}."), domain="invert"),
    Task("mz_size_blur", "Sizes (blur)", "size", SIZES,
         _t("a blurry photo of a {c} shape.", "a {c} object.", "something {c}."),
         domain="blur"),
    Task("mz_count_blur", "Counting (blur)", "count", COUNTS,
         _t("a blurry photo of {c} shapes.", "{c} objects.", "there are {c} things."),
         domain="blur"),
    Task("mz_background_noise", "Backgrounds (noise)", "background", tuple(BACKGROUNDS),
         _t("a noisy photo on a {c} background.", "a shape on a {c} background.",
            "something on {c}."), domain="noise"),
)}
TARGETS = tuple(TASKS)
#: the broad side dataset (ImageNet-1k's part): colour x shape, every domain
SIDE = "mz_broad"
_BROAD_CLASSES = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)


def broad_scene(rng: np.random.Generator, label: int) -> Scene:
    colour, shape = _BROAD_CLASSES[label].split(" ")
    return random_scene(rng, fixed={"kind": "shape", "colour": colour, "shape": shape,
                                    "count": "one"})


BROAD = Task(SIDE, "Broad (colour x shape, all domains)", "broad", _BROAD_CLASSES,
             _t("a photo of a {c}.", "a {c}.", "a picture of a {c} shape."))
ALL_TASKS = {**TASKS, SIDE: BROAD}


def split_items(task_id: str, world_seed: int, n_per_class: int):
    """``[(class index, image)]`` of a task's test split, ``n_per_class`` images per class."""
    task = ALL_TASKS[task_id]
    salt = sum(map(ord, task_id))
    out = []
    for label in range(len(task.classes)):
        for k in range(n_per_class):
            rng = _rng(world_seed, "test", label * 100_000 + k, salt)
            sc = broad_scene(rng, label) if task_id == SIDE else task.scene(rng, label)
            out.append((label, render(sc, rng)))
    return out


def class_captions(task_id: str) -> dict[str, list[str]]:
    """A few descriptive sentences per class (the part of the LLM captions)."""
    task = ALL_TASKS[task_id]
    out = {}
    for c in task.classes:
        a = task.attribute
        if a == "shape":
            s = [f"a {c} is a simple geometric shape.", f"a flat {c} drawn in one colour.",
                 f"the outline of a {c}."]
        elif a == "colour":
            s = [f"an object coloured {c}.", f"a {c} shape on a background.",
                 f"{c} is a colour."]
        elif a == "digit":
            s = [f"the handwritten digit {c}.", f"the number {c} written by hand.",
                 f"a digit that reads {c}."]
        elif a == "broad":
            s = [f"a {c} shape.", f"a {c.split()[1]} coloured {c.split()[0]}.",
                 f"a flat {c} on a background."]
        else:
            s = [f"a shape that is {c}.", f"an object: {c}.", f"{c} things in a picture."]
        out[c] = s
    return out


def with_domain(scene: Scene, domain: str) -> Scene:
    return replace(scene, domain=domain)


@cache
def fingerprint() -> str:
    """sha256 of what the world renders and says for a fixed set of scenes (every domain, both
    kinds, captions with and without omissions): it changes whenever the renderer, the
    vocabulary or the captions change, so caches of images (training pools, test folders)
    keyed by it can never serve another world's pixels. Task definitions are not part of it
    (training never sees them); a test folder's stamp adds its task's own definition."""
    import hashlib

    h = hashlib.sha256()
    for i in range(24):
        rng = _rng(0, "fingerprint", i)
        s = random_scene(rng, domain=DOMAINS[i % len(DOMAINS)],
                         fixed={"kind": "digit" if i % 4 == 0 else "shape"})
        h.update(np.asarray(render(s, rng)).tobytes())
        h.update(caption(s, rng).encode())
        h.update(caption(s, rng, omit=frozenset({ATTRIBUTES[i % len(ATTRIBUTES)]})).encode())
    return h.hexdigest()

