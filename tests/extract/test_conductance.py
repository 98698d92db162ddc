"""Single-pass block conductance: captum agreement, completeness, batching, a toy with a known answer.

Towers are tiny and random-init (no weights downloaded). float64 towers make "equal to captum"
checkable to ~1e-12; float32 ones check the tolerance a user will see.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
captum = pytest.importorskip("captum")

from torch import nn  # noqa: E402

from benchmark.extract.blocks import find_blocks  # noqa: E402
from benchmark.extract.conductance import (  # noqa: E402
    METHODS,
    block_conductance,
    conductance_summary,
    image_objective,
    path_alphas,
    reference_conductance_captum,
)
from tests.extract.tiny import CONVNEXT_CFG, RESNET_CFG, TEXT_CFG, VIT_CFG  # noqa: E402

pytestmark = pytest.mark.torch

TOWERS = {"vit": VIT_CFG, "resnet": RESNET_CFG, "convnext": CONVNEXT_CFG}


def _clip(tower: str, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=16, vision_cfg=TOWERS[tower], text_cfg=TEXT_CFG)
    if tower == "convnext":
        # timm initialises biases to zero, which makes the stem + LayerNorm scale-invariant: F
        # is then constant along the path except for a jump at the zero baseline, and every
        # conductance is ~0. Random biases give a tower with something to attribute.
        with torch.no_grad():
            for name, param in model.visual.named_parameters():
                if name.endswith("bias"):
                    param.normal_(0.0, 0.1)
    return model.to(dtype).eval()


def _images(n: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _errors(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    abs_err = float(np.abs(ours - ref).max())
    return abs_err, abs_err / float(np.abs(ref).max())


# --- path nodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_path_nodes_are_captums(method: str) -> None:
    from captum.attr._utils.approximation_methods import approximation_parameters

    _, alphas = approximation_parameters(method)
    # LayerConductance evaluates n_steps + 1 nodes (it needs differences between them).
    assert path_alphas(10, method) == alphas(11)


def test_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        path_alphas(10, "simpson")


# --- a toy with a known answer ------------------------------------------------------------------


class _Scale(nn.Module):
    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class _Toy(nn.Module):
    """y1 = W x (block 1), y2 = s * y1 (block 2); with F = ||y2||^2 / 2 both are solvable by hand.

    On the path a x (baseline 0), y2(a) = a c with c = s * (W x), and dF/dy2 = y2, dF/dy1 = s * y2.
    For both blocks each step contributes a_i c * (a_{i+1} - a_i) c, so element j gets
    Cond_j = c_j^2 * S with S = sum_i a_i (a_{i+1} - a_i).
    """

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.block1 = nn.Linear(5, 4, bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.block1.weight.copy_(torch.randn(4, 5, generator=gen, dtype=torch.float64))
        # s != 1 so that pairing block 1 with block 2's gradient would give a different answer.
        self.block2 = _Scale(torch.tensor([0.5, -2.0, 3.0, 1.5], dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.block1(x))


def _toy_setup() -> tuple[_Toy, torch.Tensor, list[tuple[str, nn.Module]], np.ndarray]:
    toy = _Toy()
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    blocks = [("block1", toy.block1), ("block2", toy.block2)]
    with torch.no_grad():
        c = toy(x).numpy()
    return toy, x, blocks, c


def _half_square_norm(toy: nn.Module) -> object:
    return lambda x: 0.5 * (toy(x) ** 2).sum(-1)


def test_toy_trapezoid_matches_closed_form() -> None:
    toy, x, blocks, c = _toy_setup()
    n = 10
    result = conductance_summary(
        toy, x, blocks, n_steps=n, method="riemann_trapezoid", objective=_half_square_norm(toy)
    )
    # Nodes i/n: S = sum_{i<n} (i/n)(1/n) = (n - 1) / (2n); a right-sum would give (n + 1) / (2n).
    s = (n - 1) / (2 * n)
    expected_mean_abs = (c**2).mean(1) * s
    expected_total = (c**2).sum(1) * s
    for block in range(2):
        np.testing.assert_allclose(result.mean_abs[:, block], expected_mean_abs, rtol=1e-6)
        np.testing.assert_allclose(result.total[:, block], expected_total, rtol=1e-6)
    # F(x) - F(0) = |c|^2 / 2, so the completeness gap is exactly |c|^2 / (2n) here.
    np.testing.assert_allclose(result.objective_delta, 0.5 * (c**2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(
        result.completeness_gap(),
        np.repeat(-(c**2).sum(1, keepdims=True) / (2 * n), 2, 1),
        rtol=1e-5,
    )


def test_toy_gausslegendre_uses_n_plus_one_legendre_nodes() -> None:
    toy, x, blocks, c = _toy_setup()
    n = 7
    scores = block_conductance(toy, x, blocks, n_steps=n, objective=_half_square_norm(toy))
    a = (np.polynomial.legendre.leggauss(n + 1)[0] + 1) / 2
    s = np.sum(a[:-1] * np.diff(a))
    np.testing.assert_allclose(scores, np.repeat(((c**2).mean(1) * s)[:, None], 2, 1), rtol=1e-12)


class _TupleBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 4, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.lin(x))
        return h, h.sum(-1, keepdim=True)


class _TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.block = _TupleBlock()
        self.head = nn.Linear(4, 3, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, aux = self.block(x)
        return torch.linalg.vector_norm(self.head(h) * aux, dim=-1)


def test_tuple_output_block_scores_its_first_tensor_like_captum() -> None:
    net = _TupleNet()
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    blocks = [("block", net.block)]
    ours = conductance_summary(net, x, blocks, n_steps=12, internal_batch_size=5, objective=net)
    ref = reference_conductance_captum(net, x, blocks, n_steps=12, objective=net)
    np.testing.assert_allclose(ours.mean_abs, ref.mean_abs, rtol=1e-10)
    np.testing.assert_allclose(ours.total, ref.total, rtol=1e-10)


# --- agreement with captum on real towers -------------------------------------------------------


@pytest.mark.parametrize("tower", ["vit", "resnet", "convnext"])
def test_float32_single_pass_equals_captum(tower: str) -> None:
    model = _clip(tower, torch.float32)
    blocks = find_blocks(model.visual)
    x = _images(2, torch.float32)
    ours = conductance_summary(model, x, blocks, n_steps=16)
    ref = reference_conductance_captum(model, x, blocks, n_steps=16)
    abs_err, rel_err = _errors(ours.mean_abs, ref.mean_abs)
    print(f"{tower} float32 vs captum (same batching): max abs {abs_err:.3g}, rel {rel_err:.3g}")
    assert ours.names == ref.names and ours.mean_abs.shape == (2, len(blocks))
    assert np.all(ours.mean_abs > 0)
    assert rel_err < 1e-5
    # Chunked differently from captum: only float32 rounding of the forward passes differs.
    chunked = block_conductance(model, x, blocks, n_steps=16, internal_batch_size=6)
    abs_err, rel_err = _errors(chunked, ref.mean_abs)
    print(
        f"{tower} float32 vs captum (internal_batch_size=6): max abs {abs_err:.3g}, rel {rel_err:.3g}"
    )
    assert rel_err < 1e-4


@pytest.mark.parametrize("tower", ["vit", "resnet"])
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_float64_single_pass_equals_captum_with_other_batching(tower: str, method: str) -> None:
    model = _clip(tower, torch.float64)
    blocks = find_blocks(model.visual)
    x = _images(2, torch.float64)
    ours = conductance_summary(model, x, blocks, n_steps=9, method=method, internal_batch_size=7)
    ref = reference_conductance_captum(
        model, x, blocks, n_steps=9, method=method, internal_batch_size=8
    )
    for ours_arr, ref_arr in ((ours.mean_abs, ref.mean_abs), (ours.total, ref.total)):
        abs_err, rel_err = _errors(ours_arr, ref_arr)
        print(f"{tower} float64 {method}: max abs {abs_err:.3g}, rel {rel_err:.3g}")
        assert rel_err < 1e-10


def test_sequence_first_vit_gives_the_same_conductance() -> None:
    model = _clip("vit", torch.float64)
    lnd_model = copy.deepcopy(model)
    lnd = open_clip.transformer.Transformer(width=32, layers=3, heads=2, batch_first=False)
    lnd.load_state_dict(model.visual.transformer.state_dict())
    lnd_model.visual.transformer = lnd.to(torch.float64)
    x = _images(2, torch.float64)
    nld = conductance_summary(model, x, find_blocks(model.visual), n_steps=8)
    lnd_blocks = find_blocks(lnd_model.visual)
    ours = conductance_summary(lnd_model, x, lnd_blocks, n_steps=8, internal_batch_size=5)
    ref = reference_conductance_captum(lnd_model, x, lnd_blocks, n_steps=8)
    np.testing.assert_allclose(ours.mean_abs, nld.mean_abs, rtol=1e-10)
    np.testing.assert_allclose(ref.mean_abs, nld.mean_abs, rtol=1e-10)
    # The reference swaps a wrapper in for each block; the tower must be left as it was.
    assert [m for _, m in find_blocks(lnd_model.visual)] == [m for _, m in lnd_blocks]


@pytest.mark.parametrize("timm_name", ["eva02_tiny_patch14_224", "vit_tiny_patch16_224"])
def test_timm_transformer_tower_equals_captum(timm_name: str) -> None:
    import timm

    torch.manual_seed(0)
    visual = open_clip.timm_model.TimmModel("convnext_atto", embed_dim=16, image_size=32)
    visual.trunk = timm.create_model(
        timm_name, pretrained=False, num_classes=0, img_size=32, patch_size=8, depth=2
    )
    visual.head = nn.Sequential(nn.Linear(visual.trunk.num_features, 16))
    visual = visual.to(torch.float64).eval()
    blocks = find_blocks(visual)

    def objective(x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(visual(x), dim=-1)

    x = _images(2, torch.float64)
    ours = conductance_summary(
        visual, x, blocks, n_steps=6, internal_batch_size=4, objective=objective
    )
    ref = reference_conductance_captum(visual, x, blocks, n_steps=6, objective=objective)
    abs_err, rel_err = _errors(ours.mean_abs, ref.mean_abs)
    print(f"timm {timm_name} float64: max abs {abs_err:.3g}, rel {rel_err:.3g}")
    assert rel_err < 1e-10 and np.all(ours.mean_abs > 0)


# --- completeness -------------------------------------------------------------------------------


@pytest.mark.parametrize("tower", ["vit", "resnet"])
def test_completeness_gap_shrinks_with_n_steps(tower: str) -> None:
    model = _clip(tower, torch.float64)
    blocks = find_blocks(model.visual)
    x = _images(2, torch.float64)
    gaps = []
    for n_steps in (4, 16, 64):
        result = conductance_summary(model, x, blocks, n_steps=n_steps)
        gap = np.abs(result.completeness_gap()) / np.abs(result.objective_delta)[:, None]
        gaps.append(float(gap.max()))
    print(f"{tower} relative completeness gap at n_steps 4/16/64: {gaps}")
    assert gaps[0] > gaps[1] > gaps[2]
    # O(1/n): a 16x finer path must cut the gap at least 2.5x (observed: 14x ViT, 97x ResNet).
    assert gaps[2] < gaps[0] / 2.5
    assert gaps[2] < 0.1


# --- batching, determinism, model state ---------------------------------------------------------


@pytest.mark.parametrize("tower", ["vit", "resnet"])
def test_batching_does_not_change_results(tower: str) -> None:
    model = _clip(tower, torch.float64)
    blocks = find_blocks(model.visual)
    x = _images(3, torch.float64)
    full = conductance_summary(model, x, blocks, n_steps=10)
    one_by_one = np.concatenate(
        [block_conductance(model, x[i : i + 1], blocks, n_steps=10) for i in range(3)]
    )
    np.testing.assert_allclose(one_by_one, full.mean_abs, rtol=1e-12)
    # 1 and 2 rows split the images; 3, 7, 12 split the nodes (1, 2, 4 nodes per chunk).
    for size in (1, 2, 3, 7, 12):
        chunked = conductance_summary(model, x, blocks, n_steps=10, internal_batch_size=size)
        np.testing.assert_allclose(chunked.mean_abs, full.mean_abs, rtol=1e-12)
        np.testing.assert_allclose(chunked.total, full.total, rtol=1e-10)


def test_repeatable_and_restores_model_state() -> None:
    model = _clip("resnet", torch.float32)
    blocks = find_blocks(model.visual)
    x = _images(2, torch.float32)
    expected = block_conductance(model, x, blocks, n_steps=6)
    model.train()
    model.visual.layer1.requires_grad_(False)  # a partly frozen model must stay partly frozen
    trainable = [p.requires_grad for p in model.parameters()]
    # BatchNorm in train mode would use batch statistics; the function must run in eval mode.
    assert np.array_equal(block_conductance(model, x, blocks, n_steps=6), expected)
    assert all(module.training for module in model.modules())
    assert [p.requires_grad for p in model.parameters()] == trainable


def test_image_objective_is_unnormalised_norm_for_coca() -> None:
    torch.manual_seed(0)
    coca = open_clip.CoCa(
        embed_dim=16,
        multimodal_cfg=dict(TEXT_CFG, n_queries=4, attn_pooler_heads=2),
        text_cfg=TEXT_CFG,
        vision_cfg=dict(
            TOWERS["vit"],
            layers=2,
            attentional_pool=True,
            attn_pooler_queries=4,
            attn_pooler_heads=2,
            output_tokens=True,  # as open_clip's coca_*.json configs
        ),
    ).eval()
    x = _images(2, torch.float32)
    with torch.no_grad():
        values = image_objective(coca)(x)
        latent = coca.visual(x)[0]
    # CoCa normalises by default; F must be the norm of the raw latent, not 1.
    torch.testing.assert_close(values, latent.norm(dim=-1))
    assert not torch.allclose(values, torch.ones(2))
    scores = block_conductance(coca, x, find_blocks(coca.visual), n_steps=4)
    assert scores.shape == (2, 2) and np.all(np.isfinite(scores))


# --- misuse is refused, not silently mis-computed -----------------------------------------------


class _InPlaceAfterBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y.mul_(2).sum(-1)


class _SharedBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.block(x)).sum(-1)


def test_in_place_change_of_a_block_output_is_refused() -> None:
    net = _InPlaceAfterBlock()
    with pytest.raises(RuntimeError, match="modified in place"):
        block_conductance(net, torch.randn(2, 3), [("block", net.block)], n_steps=3, objective=net)


def test_block_running_twice_is_refused() -> None:
    net = _SharedBlock()
    with pytest.raises(RuntimeError, match="ran twice"):
        block_conductance(net, torch.randn(2, 3), [("block", net.block)], n_steps=3, objective=net)


def test_objective_must_give_one_scalar_per_row() -> None:
    net = _SharedBlock()
    lin = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="one scalar per row"):
        block_conductance(lin, torch.randn(2, 3), [("lin", lin)], n_steps=3, objective=lin)
    with pytest.raises(TypeError, match="encode_image"):
        block_conductance(net, torch.randn(2, 3), [("block", net.block)], n_steps=3)
