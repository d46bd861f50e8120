"""Building blocks shared by the core losses (Array API only)."""

from __future__ import annotations

import math
from typing import Any


def kernel(xp: Any, name: str) -> Any:
    """The namespace's fused kernel ``name``, or ``None`` where it has none.

    A namespace may carry native kernels for a few building blocks as ``xp.polyloss_kernels``
    (their exact semantics: ``polyloss/backends/kernels.py``); each has the generic code's
    values and gradients, so a caller uses it where it exists and the generic code elsewhere.
    """
    kernels = getattr(xp, "polyloss_kernels", None)
    return None if kernels is None else getattr(kernels, name)


def abs_zero_grad(x: Any, xp: Any) -> Any:
    """``|x|`` whose gradient at 0 is 0 on every backend.

    ``xp.abs`` has backend-specific subgradients at 0 (0 in torch, TensorFlow and MXNet,
    +1 in JAX). ``x * sign(x)`` has the same value and differentiates to ``sign(x)`` in
    every framework, because ``sign`` has a zero derivative everywhere.
    """
    return x * xp.sign(x)


def has_elements(x: Any) -> bool:
    """False when a dimension is statically 0 (unknown dimensions count as non-empty)."""
    return 0 not in x.shape


def clip_below(x: Any, low: float, xp: Any) -> Any:
    """``max(x, low)`` for a Python-scalar ``low``; the gradient goes to ``x`` at a tie.

    A ``where`` rather than ``xp.maximum``: it gives the same tie-breaking on every backend
    (TensorFlow's ``maximum`` favours its first argument, torch and JAX split) and it traces
    under ``torch.compile(fullgraph=True)``, which array-api-compat's scalar promotion in
    ``maximum`` does not.
    """
    return xp.where(x < low, low, x)


def softplus(x: Any, xp: Any) -> Any:
    """``log(1 + exp(x))`` without overflow, with gradient ``sigmoid(x)`` everywhere.

    ``max(x, 0) + log1p(exp(-|x|))`` is the stable form, but its two kinks at 0 only cancel
    in the gradient if ``max`` and ``abs`` pick matching subgradients, which backends do
    not agree on; both are taken from the same ``where`` so they always match.
    """
    positive = x >= 0
    abs_x = xp.where(positive, x, -x)
    relu_x = xp.where(positive, x, 0.0)
    return relu_x + xp.log1p(xp.exp(-abs_x))


def take_along_last(x: Any, index: Any, xp: Any) -> Any:
    """``x``'s entries at ``index`` along the last axis (``index`` has ``x``'s shape except,
    possibly, the last dimension): a gather where the namespace has ``take_along_axis``, a
    ``take`` on the flattened array elsewhere (Dask)."""
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(x, index, axis=-1)
    shape, out_shape = tuple(x.shape), tuple(index.shape)
    n, k, rows = shape[-1], out_shape[-1], math.prod(shape[:-1])
    offsets = xp.reshape(arange_like(rows, index, index.dtype, xp) * n, (rows, 1))
    flat = xp.reshape(xp.reshape(index, (rows, k)) + offsets, (rows * k,))
    return xp.reshape(xp.take(xp.reshape(x, (rows * n,)), flat), out_shape)


def device_like(x: Any) -> Any:
    """``x``'s device for creating arrays next to it (``None``: the namespace's default, e.g.
    NumPy 1.x arrays, JAX tracers, Dask). MXNet arrays name theirs ``ctx``."""
    device = getattr(x, "device", None)
    return getattr(x, "ctx", None) if device is None else device


def arange_like(n: int, like: Any, dtype: Any, xp: Any, start: int = 0) -> Any:
    """``xp.arange(start, n)`` on ``like``'s device: positions and class ids compared with
    ``like`` must live where it does (a CUDA or meta tensor, an MXNet GPU array)."""
    return xp.arange(start, n, dtype=dtype, device=device_like(like))
