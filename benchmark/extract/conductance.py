r"""Per-image layer conductance of every block of a visual tower (DCD's extraction stage).

Notation (docs/methods/dcd.md, section 1). ``f(x)`` is the unnormalised image embedding and the
label-free objective is ``F(x) = ||f(x)||_2``. The path runs from the baseline ``x'`` (zeros) to
the image: ``x(a) = x' + a (x - x')``. For every element ``y`` of the output of block ``l``, the
layer conductance of Dhamdhere et al. (2018) is

    Cond_y(x) = \int_0^1  dF/dy (x(a)) * d y(x(a)) / da  da.

Discretisation, exactly as captum's ``LayerConductance`` (captum 0.9,
``captum/attr/_core/layer/layer_conductance.py``): take the ``n + 1`` nodes
``a_0 < a_1 < ... < a_n`` that ``method`` produces for ``n + 1`` points (note: ``n_steps + 1``
nodes, and the quadrature *weights* are not used at all), evaluate the block at every node and
the gradient at the first ``n`` nodes, and sum the chain rule over the steps:

    Cond_y(x) ~= sum_{i=0}^{n-1}  dF/dy (x(a_i)) * ( y(x(a_{i+1})) - y(x(a_i)) ).

For ``gausslegendre`` (captum's default) the nodes are ``(1 + t_k) / 2`` for the roots ``t_k`` of
the Legendre polynomial of degree ``n + 1``; they exclude 0 and 1. For the Riemann methods they
are ``torch.linspace`` grids (``riemann_trapezoid``: ``linspace(0, 1, n + 1)``).

Block score: ``c_l(x) = mean_y |Cond_y(x)|``. Completeness: ``sum_y Cond_y(x) ~= F(x) - F(x')``.
The sum is a left Riemann–Stieltjes sum of ``dF`` along the path, so the gap is ``O(1/n)``; with
``gausslegendre`` the end segments ``[0, a_0]`` and ``[a_n, 1]`` (length ``O(1/n^2)``) are also
missing. Both shrink as ``n_steps`` grows, which the tests check.

Single pass. captum needs one forward and one backward over the ``(n + 1)`` interpolated inputs
*per block*. Here forward hooks record every block's output at once, one
``torch.autograd.grad`` call returns ``dF/dy_l`` for all blocks together (each is the total
derivative: later blocks are downstream of ``y_l`` and autograd sums over all paths), and the
formula above is applied per block. Cost: one forward plus one backward down to the first block
-- about what captum spends on the first block alone -- instead of ``L`` forwards and ``L``
(partial) backwards. The weights are frozen for the duration (only block outputs need
gradients), which also keeps autograd from storing layer inputs for weight gradients.

Internal batching. The nodes are processed in chunks of consecutive nodes; the difference term
that straddles two chunks uses the last node's output and gradient carried over from the
previous chunk, so every node is evaluated once and the result does not depend on the chunk size
(up to floating-point summation order). The per-element sums are accumulated in float64.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from benchmark.extract.blocks import block_batch_dim, output_tensor

__all__ = [
    "METHODS",
    "BlockConductance",
    "block_conductance",
    "conductance_summary",
    "image_objective",
    "path_alphas",
    "reference_conductance_captum",
]

log = logging.getLogger(__name__)

Objective = Callable[[torch.Tensor], torch.Tensor]
Blocks = Sequence[tuple[str, nn.Module]]

METHODS = ("gausslegendre", "riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid")


@dataclass(frozen=True)
class BlockConductance:
    """Per-image, per-block conductance. Arrays are ``[n_images, n_blocks]`` unless noted."""

    names: tuple[str, ...]
    mean_abs: np.ndarray  # c_l(x) = mean_y |Cond_y(x)|, the DCD block score
    total: np.ndarray  # sum_y Cond_y(x), before the absolute value
    objective_delta: np.ndarray | None = None  # [n_images] F(x) - F(x'), None if not computed

    def completeness_gap(self) -> np.ndarray:
        """``total - (F(x) - F(x'))`` per image and block."""
        if self.objective_delta is None:
            raise ValueError("objective_delta was not computed")
        return self.total - self.objective_delta[:, None]


def image_objective(model: nn.Module) -> Objective:
    """``F(x) = ||model.encode_image(x, normalize=False)||_2`` per image, shape ``[batch]``.

    ``normalize=False`` is passed explicitly: CoCa's ``encode_image`` normalises by default.
    """
    encode = getattr(model, "encode_image", None)
    if encode is None:
        raise TypeError(f"{type(model).__name__} has no encode_image; pass objective=...")

    def objective(images: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(encode(images, normalize=False), dim=-1)

    return objective


def path_alphas(n_steps: int, method: str = "gausslegendre") -> list[float]:
    """The ``n_steps + 1`` path nodes captum's ``LayerConductance`` evaluates, in increasing order."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    n = n_steps + 1
    if method == "gausslegendre":
        return (0.5 * (1.0 + np.polynomial.legendre.leggauss(n)[0])).tolist()
    # Same torch.linspace calls as captum (float32), so the interpolated inputs are bit-identical.
    if method == "riemann_trapezoid":
        return torch.linspace(0, 1, n).tolist()
    if method == "riemann_left":
        return torch.linspace(0, 1 - 1 / n, n).tolist()
    if method == "riemann_middle":
        return torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n).tolist()
    if method == "riemann_right":
        return torch.linspace(1 / n, 1, n).tolist()
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (dropout off, BatchNorm on running stats); restores each module."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    """``requires_grad=False`` on every parameter for the duration, then restored.

    Only block outputs are differentiated; with trainable weights autograd would also keep every
    layer input it needs for weight gradients, which costs memory and buys nothing here.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


def _baseline_like(images: torch.Tensor, baseline: torch.Tensor | float | None) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(images)
    if isinstance(baseline, (int, float)):
        return torch.full_like(images, float(baseline))
    return baseline.to(dtype=images.dtype, device=images.device).expand_as(images)


class _BlockRecorder:
    """Forward hooks that keep every block's output (the tensor autograd will differentiate)."""

    def __init__(self, blocks: Blocks) -> None:
        self.names = [name for name, _ in blocks]
        self.batch_dims = [block_batch_dim(module) for _, module in blocks]
        self.outputs: list[torch.Tensor | None] = [None] * len(blocks)
        self.versions: list[int] = [0] * len(blocks)
        self._handles = [
            module.register_forward_hook(self._hook(i)) for i, (_, module) in enumerate(blocks)
        ]

    def _hook(self, index: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            if self.outputs[index] is not None:
                # A shared module or gradient checkpointing would pair the wrong output and grad.
                raise RuntimeError(
                    f"block {self.names[index]!r} ran twice in one forward pass "
                    "(shared module or gradient checkpointing?); disable it"
                )
            tensor = output_tensor(output)
            self.outputs[index] = tensor
            self.versions[index] = tensor._version

        return hook

    def reset(self) -> None:
        self.outputs = [None] * len(self.outputs)

    def collect(self, rows: int) -> list[torch.Tensor]:
        """The recorded outputs, after checking each block ran once and was not modified in place."""
        collected = []
        for name, bdim, tensor, version in zip(
            self.names, self.batch_dims, self.outputs, self.versions, strict=True
        ):
            if tensor is None:
                raise RuntimeError(f"block {name!r} did not run in the forward pass")
            if tensor._version != version:
                # captum clones to survive this; we refuse instead of doubling activation memory.
                raise RuntimeError(f"output of block {name!r} was modified in place downstream")
            if tensor.dim() <= bdim or tensor.shape[bdim] != rows:
                raise RuntimeError(
                    f"block {name!r} output {tuple(tensor.shape)} has no batch of {rows} in dim {bdim}"
                )
            if not tensor.requires_grad:
                raise RuntimeError(f"output of block {name!r} does not require grad")
            collected.append(tensor)
        return collected

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _steps_first(tensor: torch.Tensor, batch_dim: int, n_points: int) -> torch.Tensor:
    """Reshape a block output/gradient of ``n_points * n_images`` rows to ``[points, images, ...]``."""
    if batch_dim != 0:
        tensor = tensor.movedim(batch_dim, 0)
    return tensor.reshape(n_points, -1, *tensor.shape[1:])


def _objective_delta(
    objective: Objective, images: torch.Tensor, baseline: torch.Tensor
) -> np.ndarray:
    with torch.no_grad():
        values = objective(torch.cat([images, baseline]))
    n = images.shape[0]
    return (values[:n].double() - values[n:].double()).cpu().numpy()


def _single_pass(
    model: nn.Module,
    images: torch.Tensor,
    blocks: Blocks,
    n_steps: int,
    method: str,
    baseline: torch.Tensor | float | None,
    internal_batch_size: int | None,
    objective: Objective | None,
    with_delta: bool,
) -> BlockConductance:
    if not blocks:
        raise ValueError("no blocks given")
    if internal_batch_size is not None and internal_batch_size < 1:
        raise ValueError(f"internal_batch_size must be >= 1, got {internal_batch_size}")
    objective = objective if objective is not None else image_objective(model)
    alphas = path_alphas(n_steps, method)
    n_points, n_images, n_blocks = len(alphas), images.shape[0], len(blocks)
    baselines = _baseline_like(images, baseline)
    # Rows per forward = points per chunk * images per group <= internal_batch_size.
    group = n_images if internal_batch_size is None else min(n_images, internal_batch_size)
    per_chunk = n_points if internal_batch_size is None else max(1, internal_batch_size // group)

    mean_abs = np.zeros((n_images, n_blocks))
    total = np.zeros((n_images, n_blocks))
    delta = np.zeros(n_images) if with_delta else None
    with _eval_mode(model), _frozen_parameters(model):
        if delta is not None:
            for start in range(0, n_images, group):
                stop = start + group
                delta[start:stop] = _objective_delta(
                    objective, images[start:stop], baselines[start:stop]
                )
        recorder = _BlockRecorder(blocks)
        try:
            for start in range(0, n_images, group):
                x, x0 = images[start : start + group], baselines[start : start + group]
                cond = _conductance_one_group(recorder, objective, x, x0, alphas, per_chunk)
                for index, c in enumerate(cond):
                    flat = c.flatten(1)
                    mean_abs[start : start + len(x), index] = flat.abs().mean(1).cpu().numpy()
                    total[start : start + len(x), index] = flat.sum(1).cpu().numpy()
        finally:
            recorder.remove()
    return BlockConductance(tuple(name for name, _ in blocks), mean_abs, total, delta)


def _conductance_one_group(
    recorder: _BlockRecorder,
    objective: Objective,
    x: torch.Tensor,
    x0: torch.Tensor,
    alphas: Sequence[float],
    per_chunk: int,
) -> list[torch.Tensor]:
    """Per-element conductance (float64, shaped like one image's block output) for images ``x``."""
    n = x.shape[0]
    acc: list[torch.Tensor | None] = [None] * len(recorder.names)
    # (output, gradient) at the last node of the previous chunk, per block.
    carry: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(recorder.names)
    for first in range(0, len(alphas), per_chunk):
        chunk = alphas[first : first + per_chunk]
        with torch.no_grad():
            # Same expression as captum, so the interpolated inputs match bit for bit.
            points = torch.cat([x0 + a * (x - x0) for a in chunk], dim=0)
        # With the weights frozen this is what puts the block outputs in the graph; autograd.grad
        # below only asks for block outputs, so nothing upstream of the first block is computed.
        points.requires_grad_(True)
        recorder.reset()
        with torch.enable_grad():
            values = objective(points)
            if values.shape != (points.shape[0],):
                raise ValueError(
                    f"objective must return one scalar per row, got {tuple(values.shape)}"
                )
            outputs = recorder.collect(points.shape[0])
            # Rows are independent (eval mode), so d(sum F)/dy_l holds dF/dy_l for each row.
            grads = torch.autograd.grad(values.sum(), outputs, allow_unused=True)
        recorder.reset()
        del values, points
        with torch.no_grad():
            for index, (out, grad) in enumerate(zip(outputs, grads, strict=True)):
                bdim = recorder.batch_dims[index]
                y = _steps_first(out.detach(), bdim, len(chunk))
                g = torch.zeros_like(y) if grad is None else _steps_first(grad, bdim, len(chunk))
                part = (
                    (g[:-1] * (y[1:] - y[:-1])).sum(0) if len(chunk) > 1 else torch.zeros_like(y[0])
                )
                if carry[index] is not None:
                    y_prev, g_prev = carry[index]
                    part = part + g_prev * (y[0] - y_prev)
                part = part.double()
                acc[index] = part if acc[index] is None else acc[index] + part
                # Clones so the carry does not keep the whole chunk's activations alive.
                carry[index] = (y[-1].clone(), g[-1].clone())
        del outputs, grads
        log.debug("conductance: nodes %d-%d of %d done", first, first + len(chunk) - 1, len(alphas))
    assert all(a is not None and a.shape[0] == n for a in acc)
    return acc  # type: ignore[return-value]


def conductance_summary(
    model: nn.Module,
    images: torch.Tensor,
    blocks: Blocks,
    n_steps: int = 50,
    method: str = "gausslegendre",
    baseline: torch.Tensor | float | None = None,
    internal_batch_size: int | None = None,
    objective: Objective | None = None,
) -> BlockConductance:
    """Single-pass block conductance with the signed totals and ``F(x) - F(x')`` (for completeness).

    ``internal_batch_size`` bounds the rows (nodes x images) of one forward/backward, as in captum.
    ``objective`` defaults to :func:`image_objective`. Runs in the model's dtype and device.
    """
    return _single_pass(
        model, images, blocks, n_steps, method, baseline, internal_batch_size, objective, True
    )


def block_conductance(
    model: nn.Module,
    images: torch.Tensor,
    blocks: Blocks,
    n_steps: int = 50,
    method: str = "gausslegendre",
    baseline: torch.Tensor | float | None = None,
    internal_batch_size: int | None = None,
    objective: Objective | None = None,
) -> np.ndarray:
    """DCD block scores ``mean_y |Cond_y(x)|``, shape ``[n_images, n_blocks]``, in one pass.

    Equals :func:`reference_conductance_captum` (one captum ``LayerConductance`` per block) to
    float tolerance; see the module docstring for the formula.
    """
    return _single_pass(
        model, images, blocks, n_steps, method, baseline, internal_batch_size, objective, False
    ).mean_abs


class _MoveBatch(nn.Module):
    """Runs ``block`` and moves its output's batch dimension from ``src`` to ``dst``."""

    def __init__(self, block: nn.Module, src: int, dst: int) -> None:
        super().__init__()
        self.block, self.src, self.dst = block, src, dst

    def forward(self, *args: object, **kwargs: object) -> object:
        out = self.block(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            return out.movedim(self.src, self.dst)
        return (out[0].movedim(self.src, self.dst), *out[1:])


@contextmanager
def _batch_first_view(model: nn.Module, block: nn.Module) -> Iterator[nn.Module]:
    """A module captum can hook whose output is ``block``'s output with the batch in dim 0.

    captum assumes the batch is dim 0 of the layer output; for sequence-first blocks the block is
    temporarily replaced by ``outer(inner(block))`` where ``inner`` moves the batch to the front
    (captum hooks it) and ``outer`` moves it back for the rest of the network.
    """
    bdim = block_batch_dim(block)
    if bdim == 0:
        yield block
        return
    for parent in model.modules():
        key = next((k for k, child in parent.named_children() if child is block), None)
        if key is not None:
            break
    else:
        raise ValueError("block is not a submodule of model")
    inner = _MoveBatch(block, bdim, 0)
    setattr(parent, key, _MoveBatch(inner, 0, bdim))
    try:
        yield inner
    finally:
        setattr(parent, key, block)


def reference_conductance_captum(
    model: nn.Module,
    images: torch.Tensor,
    blocks: Blocks,
    n_steps: int = 50,
    method: str = "gausslegendre",
    baseline: torch.Tensor | float | None = None,
    internal_batch_size: int | None = None,
    objective: Objective | None = None,
) -> BlockConductance:
    """The slow reference: one captum ``LayerConductance.attribute`` call per block.

    Same arguments and result as :func:`conductance_summary`. For tuple-valued block outputs the
    first of captum's attributions is used (the tensor :func:`block_conductance` scores).
    """
    from captum.attr import LayerConductance  # optional dependency (the `extract` extra)

    objective = objective if objective is not None else image_objective(model)
    n_images = images.shape[0]
    baselines = _baseline_like(images, baseline)
    mean_abs = np.zeros((n_images, len(blocks)))
    total = np.zeros((n_images, len(blocks)))
    with _eval_mode(model):
        delta = _objective_delta(objective, images, baselines)
        for index, (_, block) in enumerate(blocks):
            with _batch_first_view(model, block) as layer:
                attr = LayerConductance(objective, layer).attribute(
                    images,
                    baselines=baselines,
                    n_steps=n_steps,
                    method=method,
                    internal_batch_size=internal_batch_size,
                )
            cond = (attr[0] if isinstance(attr, tuple) else attr).detach().double().flatten(1)
            mean_abs[:, index] = cond.abs().mean(1).cpu().numpy()
            total[:, index] = cond.sum(1).cpu().numpy()
    return BlockConductance(tuple(name for name, _ in blocks), mean_abs, total, delta)
