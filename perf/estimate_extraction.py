"""Estimate the GPU-hours of each extraction kind per model family -> docs/extraction_cost.md.

AN ESTIMATE, NOT A MEASUREMENT ON A GPU. How it is computed:

1. On this machine's CPU, random-init towers of three families (RN50, ViT-B-32,
   convnext_base; open_clip, native resolution, random inputs) are timed: image forward
   (s/image), text forward (s/text, 77 tokens) and single-pass block conductance
   (s per image per path step: forward + backward of the visual tower). Dividing the
   tower's GFLOPs (open_clip's ``docs/model_profile.csv``, through the data layer) by these
   times gives the CPU's effective GFLOP/s per family and operation.
2. Every architecture of the zoo is mapped to the family it resembles (RN* -> RN50,
   convnext* -> convnext_base, every ViT/CoCa/EVA/multilingual tower -> ViT-B-32); its CPU
   time per operation = its own GFLOPs / that effective throughput (cost scales with FLOPs).
3. CPU seconds / ``--gpu-factor`` (default 150: an assumed GPU sustaining 150x this 2-core
   CPU's effective throughput, ~16 TFLOP/s: an A100-class GPU at large batch with TF32 or
   mixed precision) = GPU seconds. Data loading (JPEG decoding, resizing), model loading and mixed precision are
   not counted.
4. Work per model for the default settings, summed over the ``dcd48`` datasets (21):
   conductance 100 images x 50 steps per dataset; text features: prompts (classes x
   templates) + SWAB captions + synonyms; class stats: min(10,000, test split) images +
   prompts + captions; model labels: 74,139 images + 5,664 node captions (MLL's plan);
   ground truth: the full test split of the 21 datasets and ImageNet-1k + their prompts.
   Test-split sizes are CLIP_benchmark's, written below from the datasets' releases
   (approximate where marked).

    python perf/estimate_extraction.py [--gpu-factor 150] [--out docs/extraction_cost.md]
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

PROFILE = "mlfoundations__open_clip/docs/model_profile.csv"
FAMILIES = ("RN50", "ViT-B-32", "convnext_base")
DEFAULT_GPU_FACTOR = 150.0
N_STEPS, COND_IMAGES, CLASS_STATS_IMAGES = 50, 100, 10_000
MLL_IMAGES, MLL_NODES = 74_139, 5_664
#: CLIP_benchmark test-split sizes (images); "~": approximate
TEST_SIZES = {
    "cars": 8041, "cifar100": 10000, "clevr_closest_object_distance": 15000,
    "country211": 21100, "diabetic_retinopathy": 42670, "dmlab": 22735, "dtd": 1880,
    "eurosat": 5400, "fer2013": 7178, "flowers": 6149, "gtsrb": 12630,
    "kitti_closest_vehicle_distance": 711, "mnist": 10000, "pcam": 32768, "pets": 3669,
    "renderedsst2": 1821, "resisc45": 6300, "stl10": 8000, "sun397": 19850, "svhn": 26032,
    "voc2007": 14976, "imagenet1k": 50000,
}  # fmt: skip
APPROXIMATE = {"sun397", "voc2007", "dmlab", "diabetic_retinopathy"}
KINDS = ("conductance", "text-features", "class-stats", "model-labels", "ground-truth")
#: BLIP / BEiT-3 (no open_clip profile row): (active params per image / text token, millions;
#: image tokens at SWAB's resolution; text tokens; width; layers). Active = what one token
#: passes through: BLIP ViT-B/16 86M, ViT-L/16 304M, BERT-base 86M without embeddings;
#: BEiT-3 (published totals 222M / 674M) = (total - 64,010 x width text embedding) / 2 ways.
TOWERS = {
    "BLIP-base": (86, 86, 197, 35, 768, 12),
    "BLIP-large": (304, 86, 197, 35, 1024, 24),
    "BEIT3-base": ((222 - 49.2) / 2, (222 - 49.2) / 2, 577, 64, 768, 12),
    "BEIT3-large": ((674 - 65.5) / 2, (674 - 65.5) / 2, 577, 64, 1024, 24),
}


def tower_gflops(params_m: float, tokens: int, width: int, layers: int) -> float:
    """Forward GFLOPs of a transformer pass: 2 x active params x tokens (the matmuls), plus
    attention scores and mixing, 4 x tokens^2 x width per layer."""
    return (2 * params_m * 1e6 * tokens + 4 * tokens**2 * width * layers) / 1e9


def tower_of(model: str) -> str | None:
    family, _, pretrained = model.partition(":")
    if family in ("BLIP", "BEIT3"):
        return f"{family}-{pretrained.split('_')[1]}"
    return None


def measure_tower_ratio() -> dict[str, float]:
    """CPU time of the BLIP / BEiT-3 implementations over an open_clip ViT of the same shape
    (tiny: width 64, 4 layers, 64 px, patch 8), image forward and conductance: how their
    throughput per FLOP compares with the ViT-B-32 family's."""
    import open_clip
    import torch
    from transformers import BlipConfig, BlipForImageTextRetrieval

    from benchmark.extract import towers
    from benchmark.extract.blocks import find_blocks
    from benchmark.extract.conductance import block_conductance

    torch.manual_seed(0)
    vit = open_clip.CLIP(embed_dim=64, vision_cfg=dict(image_size=64, patch_size=8, width=64,
                                                       layers=4, head_width=32),
                         text_cfg=dict(context_length=8, vocab_size=64, width=16, heads=2,
                                       layers=1)).eval()
    blip = towers.BlipTowers(BlipForImageTextRetrieval(BlipConfig(
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=4,
                           num_attention_heads=2, image_size=64, patch_size=8),
        text_config=dict(vocab_size=64, hidden_size=64, intermediate_size=256,
                         num_hidden_layers=1, num_attention_heads=2, encoder_hidden_size=64),
        image_text_hidden_size=64))).eval()
    beit3 = towers.Beit3Retrieval(towers.Beit3Config(image_size=64, patch_size=8, dim=64,
                                                     heads=2, layers=4, vocab_size=64,
                                                     max_positions=70)).eval()
    x = torch.randn(16, 3, 64, 64)

    def cost(model):
        with torch.no_grad():
            fwd = _best(lambda: model.encode_image(x), reps=3)
        blocks = find_blocks(model.visual)
        cond = _best(lambda: block_conductance(model, x[:4], blocks, n_steps=8), reps=2)
        return fwd, cond

    base = cost(vit)
    out = {}
    for name, model in (("BLIP", blip), ("BEIT3", beit3)):
        fwd, cond = cost(model)
        out[f"{name}:image"], out[f"{name}:conductance"] = fwd / base[0], cond / base[1]
    return out


def family_of(arch: str) -> str:
    if arch.startswith(("BLIP-", "BEIT3-")):
        return "ViT-B-32"
    if arch.startswith("RN"):
        return "RN50"
    if arch.startswith("convnext"):
        return "convnext_base"
    return "ViT-B-32"


def _best(fn, reps: int = 2) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(arch: str) -> dict[str, float]:
    """CPU seconds per image forward, per text forward, per conductance image-step."""
    import open_clip
    import torch

    from benchmark.extract.blocks import find_blocks
    from benchmark.extract.conductance import block_conductance

    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None).eval()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    x = torch.randn(4, 3, size, size)
    tokens = open_clip.get_tokenizer(arch)(["a photo of a dog."] * 32)
    with torch.no_grad():
        s_img = _best(lambda: model.encode_image(x)) / len(x)
        s_txt = _best(lambda: model.encode_text(tokens)) / len(tokens)
    blocks = find_blocks(model.visual)
    steps = 4
    s_cond = _best(lambda: block_conductance(model, x[:2], blocks, n_steps=steps,
                                             internal_batch_size=8), reps=1) / (2 * steps)
    return {"image": s_img, "text": s_txt, "conductance": s_cond}


def workload(data) -> dict[str, dict[str, float]]:
    """Per model, summed over datasets: images, texts, conductance image-steps per kind."""
    from benchmark.core.protocol import DCD_TARGETS, SIDE_DATASET
    from benchmark.data.catalog import Catalog

    cat = Catalog(data)
    prompts = {d: len(cat.info(d).classnames) * len(cat.info(d).templates)
               for d in [*DCD_TARGETS, SIDE_DATASET]}

    def n_texts(d: str, which: str) -> int:
        texts = cat.captions(d) if which == "captions" else cat.synonyms(d)
        return sum(len(texts.get(c, [])) for c in dict.fromkeys(cat.info(d).classnames))

    caps = {d: n_texts(d, "captions") for d in DCD_TARGETS}
    syns = {d: n_texts(d, "synonyms") for d in DCD_TARGETS}
    return {
        "conductance": {"steps": len(DCD_TARGETS) * COND_IMAGES * N_STEPS},
        "text-features": {"texts": sum(prompts[d] + caps[d] + syns[d] for d in DCD_TARGETS)},
        "class-stats": {"images": sum(min(CLASS_STATS_IMAGES, TEST_SIZES[d])
                                      for d in DCD_TARGETS),
                        "texts": sum(prompts[d] + caps[d] for d in DCD_TARGETS)},
        "model-labels": {"images": MLL_IMAGES, "texts": MLL_NODES},
        "ground-truth": {"images": sum(TEST_SIZES[d] for d in [*DCD_TARGETS, SIDE_DATASET]),
                         "texts": sum(prompts.values())},
    }


def gpu_hours(profile: pd.DataFrame, arch: str, thr: dict[str, dict[str, float]],
              work: dict[str, dict[str, float]], factor: float) -> dict[str, float]:
    row = profile.loc[arch]
    t = dict(thr[family_of(arch)])  # effective CPU GFLOP/s of the family
    for op in ("image", "conductance"):  # BLIP / BEiT-3: measured relative to the same ViT
        ratio = thr.get("towers", {}).get(f"{arch.split('-')[0]}:{op}")
        if ratio:
            t[op] = t[op] / ratio
    out = {}
    for kind, w in work.items():
        cpu = (w.get("images", 0) * row.image_gflops / t["image"]
               + w.get("texts", 0) * row.text_gflops / t["text"]
               + w.get("steps", 0) * row.image_gflops / t["conductance"])
        out[kind] = cpu / factor / 3600
    return out


def render(measured, thr, table: pd.DataFrame, totals: dict[str, float], work, factor: float,
           profile) -> str:
    lines = [
        "# Extraction cost: expected GPU-hours per kind and model family",
        "",
        "> **This is an estimate, not a measurement on a GPU.** It was computed by",
        "> `perf/estimate_extraction.py` from CPU timings of random-init towers on this",
        "> repository's 2-core CPU machine, scaled by FLOPs and divided by an *assumed*",
        f"> CPU->GPU throughput factor of **{factor:g}**. Expect it to be off by 2x either way;",
        "> data loading, model loading and mixed precision are not counted.",
        "",
        "## How it is computed",
        "",
        "1. **Measured** (CPU, "
        f"{platform.processor() or platform.machine()}, torch threads = 2, random weights, "
        "random inputs at the native resolution): seconds per image forward, per text "
        "forward (77 tokens), and per conductance image x path step (single-pass block "
        "conductance: forward + backward of the visual tower).",
        "2. **Effective CPU throughput** = the tower's GFLOPs (open_clip's "
        "`docs/model_profile.csv`) / measured seconds, per family and operation.",
        "3. **Scaled by FLOPs**: every architecture takes the throughput of its family "
        "(RN\\* -> RN50, convnext\\* -> convnext_base, every ViT / CoCa / EVA / multilingual "
        "tower -> ViT-B-32); CPU seconds = work x its GFLOPs / throughput.",
        f"4. **GPU** seconds = CPU seconds / {factor:g} (assumed: a GPU sustaining "
        f"{factor:g}x the effective CPU throughput measured here, i.e. about "
        f"{factor * float(np.mean([thr[f]['image'] for f in FAMILIES])) / 1000:.0f} TFLOP/s "
        "sustained: an A100-class GPU at large batch with TF32 or mixed precision; strict "
        "float32 would be slower, bfloat16 faster). Change it with `--gpu-factor`.",
        "",
        "Cost scales with FLOPs within a family; across families the measured throughputs "
        "differ by less than 1.5x. Multilingual text towers (nllb, xlm-roberta) are timed "
        "as if they ran at the CLIP text tower's throughput.",
        "",
        "| family | image fwd s/img | text fwd s/text | conductance s/(img x step) | "
        "image GFLOP/s | text GFLOP/s | conductance GFLOP/s (fwd FLOPs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FAMILIES:
        m, t = measured[f], thr[f]
        lines.append(f"| {f} | {m['image']:.3f} | {m['text']:.4f} | {m['conductance']:.3f} | "
                     f"{t['image']:.0f} | {t['text']:.0f} | {t['conductance']:.0f} |")
    tr = thr.get("towers", {})
    if tr:
        lines += [
            "",
            "**BLIP and BEiT-3** have no row in open_clip's profile. Their GFLOPs are computed "
            "from published parameter counts: forward GFLOPs = 2 x active parameters x tokens "
            "+ 4 x tokens^2 x width x layers (attention), with the active parameters a token "
            "passes through (BLIP: ViT-B/16 86M, ViT-L/16 304M, BERT-base 86M without "
            "embeddings, 197 image tokens at SWAB's 224 px, 35 text tokens; BEiT-3: (222M / "
            "674M published - the 64,010-token embedding) / 2 modality experts, 577 image "
            "tokens at 384 px, 64 text tokens). Their throughput is the ViT-B-32 family's, "
            "divided by the measured CPU time of this project's implementation over an "
            "open_clip ViT of the same tiny shape (width 64, 4 layers, 64 px, patch 8): "
            + ", ".join(f"{k} x{v:.2f}" for k, v in sorted(tr.items())) + ".",
        ]
    approx = ", ".join(sorted(APPROXIMATE))
    lines += [
        "",
        "## Work per model (default settings, the 21 `dcd48` datasets)",
        "",
        "| kind | work per model |",
        "|---|---|",
        f"| conductance | {work['conductance']['steps']:,} image x step (100 images x 50 steps "
        "x 21 datasets) |",
        f"| text-features | {work['text-features']['texts']:,} texts (prompts + SWAB captions "
        "+ synonyms) |",
        f"| class-stats | {work['class-stats']['images']:,} images (min(10,000, test split)) + "
        f"{work['class-stats']['texts']:,} texts |",
        f"| model-labels | {MLL_IMAGES:,} images + {MLL_NODES:,} node captions (MLL's plan) |",
        f"| ground-truth | {work['ground-truth']['images']:,} images (full test splits + "
        f"ImageNet-1k) + {work['ground-truth']['texts']:,} prompts |",
        "",
        f"Test-split sizes are CLIP_benchmark's ({approx}: approximate).",
        "",
        "## GPU-hours per model (one model, all its units of that kind)",
        "",
        "| architecture | family | image GFLOPs | models in dcd48 | "
        + " | ".join(KINDS) + " | all kinds |",
        "|---|---|---|---|" + "---|" * (len(KINDS) + 1),
    ]
    for arch, r in table.iterrows():
        cells = " | ".join(f"{r[k]:.2f}" for k in KINDS)
        lines.append(f"| {arch} | {family_of(arch)} | {profile.loc[arch].image_gflops:.1f} | "
                     f"{int(r['count'])} | {cells} | {sum(r[k] for k in KINDS):.2f} |")
    cells = " | ".join(f"**{totals[k]:.0f}**" for k in KINDS)
    lines += [
        f"| **dcd48 zoo ({int(table['count'].sum())} extractable models)** | | | | {cells} | "
        f"**{sum(totals.values()):.0f}** |",
        "",
        "BLIP and BEiT-3 (8 models of dcd48) load through `benchmark/extract/towers.py`; their",
        "rows use the parameter-count GFLOPs above (text GFLOPs likewise).",
        "A unit (one model on one dataset) costs on average the figure above divided by 21 (22 for",
        "ground truth, 6 records for model labels; ImageNet-1k alone is 15% of the ground truth):",
        "small enough for one task each on Ray or a SLURM array (`docs/slurm.md`).",
        "",
        f"Generated {date.today().isoformat()} by `python perf/estimate_extraction.py "
        f"--gpu-factor {factor:g}`.",
        "",
    ]
    return "\n".join(lines)


COST_TABLE = Path(__file__).resolve().parents[1] / "benchmark" / "features" / "extraction_cost.csv"


def write_cost_table(table: pd.DataFrame, path: Path) -> None:
    """The GPU-hours per model of each kind, one row per architecture: what
    :mod:`benchmark.features.cost` reads (the same figures as the markdown tables)."""
    lines = ["# GPU-hours per model at the default settings on the 21 dcd48 datasets "
             "(docs/extraction_cost.md;",
             "# an estimate, not a measurement: written by perf/estimate_extraction.py)",
             ",".join(["architecture", *KINDS])]
    lines += [",".join([arch, *(f"{r[k]:.2f}" for k in KINDS)]) for arch, r in table.iterrows()]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu-factor", type=float, default=DEFAULT_GPU_FACTOR)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"
                                         / "extraction_cost.md"))
    ap.add_argument("--cost-table", default=str(COST_TABLE),
                    help="the per-model GPU-hours table `run` reads to estimate what is missing")
    args = ap.parse_args()

    from benchmark.data import zoo
    from benchmark.data.upstream import DataLayer

    data = DataLayer()
    profile = pd.read_csv(io.StringIO(data.read_text(PROFILE))).set_index("model")
    measured = {f: measure(f) for f in FAMILIES}
    thr = {f: {op: profile.loc[f, "text_gflops" if op == "text" else "image_gflops"] / s
               for op, s in measured[f].items()} for f in FAMILIES}
    work = workload(data)
    counts = Counter(tower_of(m) or m.partition(":")[0] for m in zoo.DCD_48)
    thr["towers"] = measure_tower_ratio()
    for name, (p_img, p_txt, n_img, n_txt, width, layers) in TOWERS.items():
        profile.loc[name, "image_gflops"] = tower_gflops(p_img, n_img, width, layers)
        profile.loc[name, "text_gflops"] = tower_gflops(p_txt, n_txt, width, layers
                                                        if name.startswith("BEIT3") else 12)
    rows = {}
    for arch, n in counts.items():
        if arch in profile.index:
            rows[arch] = {**gpu_hours(profile, arch, thr, work, args.gpu_factor), "count": n}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table.loc[sorted(table.index, key=lambda a: (family_of(a),
                                                         profile.loc[a].image_gflops))]
    totals = {k: float((table[k] * table["count"]).sum()) for k in KINDS}
    text = render(measured, thr, table, totals, work, args.gpu_factor, profile)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    write_cost_table(table, Path(args.cost_table))
    print(text)


if __name__ == "__main__":
    main()
