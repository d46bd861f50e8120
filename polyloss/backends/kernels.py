"""Optional fused kernels: a framework's native implementation of a few core building blocks.

The core is written once against the Array API standard. A handful of its building blocks
have a native fused kernel that is several times faster, or lighter on memory, than the same
formula as a chain of standard operations: one pass in each direction instead of several, no
autograd through the maximum that stabilises a log-sum-exp, no temporary per operation. A
namespace offers them as ``xp.polyloss_kernels``, a :class:`Kernels` whose fields are ``None``
where the framework has no such kernel; core helpers call a kernel where there is one and run
the generic code elsewhere (``polyloss.core._helpers.kernel``).

A kernel is used only where its semantics are the generic code's: the same value and the same
gradient (to rounding), at kinks and at extremes, on every input the generic code accepts (the
core helper keeps the generic code for inputs a kernel does not cover, such as zero-size
arrays). ``tests/test_fast_paths.py`` compares each kernel with the generic code on the same
backend, and the parity matrix covers every loss on every backend. A kernel that only
approximately matches (torch's ``binary_cross_entropy_with_logits``, which cancels for soft
labels at large logits; ``F.softplus``, linear above a threshold) is not one.

The kernels, with ``reduction`` one of ``"none"``, ``"sum"``, ``"mean"`` (the plain mean over
every element of a non-empty array); the regression kernels take ``reduction``, ``delta`` and
``beta`` as keywords:

- ``log_softmax(x, axis)``: over one axis (an ``int``; the generic code serves ``None`` and
  tuples), ``x - logsumexp(x, axis, keepdims=True)``, gradient
  ``g - softmax(x)·Σg`` (rows with a finite maximum; the generic code's NaN for a row without
  one is not specified).
- ``softmax_cross_entropy(x, labels, axis)``: ``-log_softmax(x, axis)`` at each position's class
  index (``labels``, in the namespace's indexing dtype, every value in ``[0, C)``: the class
  axis removed), gradient ``softmax - one_hot`` w.r.t. ``x``.
- ``log_sigmoid(x)``: ``-softplus(-x)``, gradient ``σ(-x)`` (0.5 at 0).
- ``squared_error(pred, target, reduction)``: reduced ``(pred - target)²``.
- ``absolute_error(pred, target, reduction)``: reduced ``|pred - target|``, gradient 0 at a zero
  residual.
- ``huber(pred, target, delta, reduction)``: reduced Huber loss (``½r²`` for ``|r| < delta``,
  else ``delta·(|r| - ½delta)``), gradient ``r`` inside, ``delta·sign(r)`` outside.
- ``smooth_l1(pred, target, beta, reduction)``: reduced smooth L1 (``beta > 0``).
- ``binary_cross_entropy_with_logits(z, y, weight, pos_weight, reduction)``: reduced
  ``w·((1-y)·z + (1 + (P-1)·y)·(-log σ(z)))``, torch's formula and rounding (``weight`` and
  ``pos_weight`` broadcast against ``z`` or are ``None``). It cancels for soft labels at large
  ``|z|``, so it serves only a loss defined by that formula (the torch mirror), never the
  canonical binary cross-entropy.

Where a framework has no autograd (NumPy) only the values must match, and a kernel may not
warn where the generic code does not. A kernel returns ``None`` for a parameter it is not exact
for (MXNet's smooth L1 and Huber take only ``beta``/``delta`` a power of 4); the caller then
runs the generic code.

TensorFlow's and MXNet's kernels live in their namespace modules (``tensorflow.py``,
``mxnet.py``); torch's, JAX's and NumPy's (made here) in ``torch_namespace.py``,
``jax_namespace.py`` and ``numpy_namespace.py``, each the namespace that array-api-compat or JAX
provides plus ``polyloss_kernels``. They are real modules, imported on first use, so that the
first loss call of a process may happen inside ``torch.compile`` (which cannot trace the
creation of a module).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Kernels", "namespace_items", "generic", "torch_kernels", "numpy_kernels", "jax_kernels"]

_Fn = Callable[..., Any] | None


@dataclass(frozen=True)
class Kernels:
    """A framework's fused kernels (see the module docstring for each one's exact semantics)."""

    log_softmax: _Fn = None
    softmax_cross_entropy: _Fn = None
    log_sigmoid: _Fn = None
    squared_error: _Fn = None
    absolute_error: _Fn = None
    huber: _Fn = None
    smooth_l1: _Fn = None
    binary_cross_entropy_with_logits: _Fn = None


_NOT_COPIED = ("__name__", "__doc__", "__loader__", "__spec__", "__path__", "__file__",
               "__cached__", "__builtins__", "__getattr__", "__dir__", "__all__")


def namespace_items(namespace: Any) -> dict[str, Any]:
    """Every attribute of ``namespace`` that an extension of it takes over: its functions,
    dtypes, constants and ``__array_namespace_info__``, not its module identity. An extension
    is a copy, not a wrapper, so attribute lookups cost what they cost on ``namespace``."""
    return {k: v for k, v in vars(namespace).items() if k not in _NOT_COPIED}


_GENERIC: dict[int, tuple[Any, types.ModuleType]] = {}


def generic(namespace: Any) -> types.ModuleType:
    """``namespace`` without its kernels: the generic code on the same framework (for tests
    that compare the two, and for measuring what a kernel buys)."""
    cached = _GENERIC.get(id(namespace))
    if cached is None or cached[0] is not namespace:
        name = f"{getattr(namespace, '__name__', 'namespace')}.generic"
        module = types.ModuleType(name, getattr(namespace, "__doc__", None))
        module.__dict__.update(namespace_items(namespace))
        module.polyloss_kernels = None
        cached = _GENERIC[id(namespace)] = (namespace, module)
    return cached[1]


def torch_kernels() -> Kernels:
    import torch
    import torch.nn.functional as F

    def log_softmax(x: Any, axis: int) -> Any:
        return F.log_softmax(x, dim=axis)

    def softmax_cross_entropy(x: Any, labels: Any, axis: int) -> Any:
        # F.cross_entropy wants the classes on dim 1 (dim 0 of an unbatched input); the
        # labels are all in [0, C), so its ignore_index never applies
        if x.ndim > 1 and axis % x.ndim != 1:
            x = torch.movedim(x, axis, 1)
        return F.cross_entropy(x, labels, reduction="none")

    def binary_cross_entropy_with_logits(z: Any, y: Any, weight: Any, pos_weight: Any,
                                         reduction: str) -> Any:
        return F.binary_cross_entropy_with_logits(z, y, weight, reduction=reduction,
                                                  pos_weight=pos_weight)

    return Kernels(
        log_softmax=log_softmax, softmax_cross_entropy=softmax_cross_entropy,
        # called with keywords, as torch.nn.functional names them: no wrapper frame per call
        log_sigmoid=F.logsigmoid, squared_error=F.mse_loss, absolute_error=F.l1_loss,
        huber=F.huber_loss, smooth_l1=F.smooth_l1_loss,
        binary_cross_entropy_with_logits=binary_cross_entropy_with_logits,
    )


def numpy_kernels() -> Kernels:
    """NumPy has no autograd: its kernels only need the generic code's values. They work in
    place on their own temporaries (each allocation of a large array costs page faults here)
    and take no branch with ``where`` that a ``minimum`` gives bit for bit."""
    import numpy as np

    add = np.add.reduce

    def residual(pred: Any, target: Any) -> Any:
        # an array even for 0-d inputs (NumPy gives a scalar there, which cannot be an out=)
        return np.asarray(np.subtract(pred, target))

    def reduced(loss: Any, reduction: str) -> Any:
        if reduction == "none":
            return loss if loss.ndim else loss[()]  # 0-d: a scalar, as NumPy's own arithmetic
        total = add(loss, axis=None)
        if reduction == "sum":
            return total
        # np.mean's own arithmetic (numpy/_core/_methods.py: an intp count, so float32 divides
        # in float64 and rounds back) without its Python layers
        return total.dtype.type(total / np.intp(loss.size))

    def squared_error(pred: Any, target: Any, reduction: str) -> Any:
        r = residual(pred, target)
        return reduced(np.multiply(r, r, out=r), reduction)

    def absolute_error(pred: Any, target: Any, reduction: str) -> Any:
        r = residual(pred, target)
        return reduced(np.abs(r, out=r), reduction)

    def huber(pred: Any, target: Any, delta: float, reduction: str) -> Any:
        # q·(a - q/2) with q = min(a, delta): ½a·a inside, delta·(a - ½delta) outside, the
        # generic code's products bit for bit (a - ½a is exact)
        a = residual(pred, target)
        np.abs(a, out=a)
        q = np.minimum(a, delta)
        a -= np.multiply(q, 0.5)
        return reduced(np.multiply(a, q, out=a), reduction)

    def smooth_l1(pred: Any, target: Any, beta: float, reduction: str) -> Any:
        a = residual(pred, target)
        np.abs(a, out=a)
        small = a < beta
        quadratic = np.minimum(a, beta)  # a where it is used (no overflow elsewhere)
        quadratic *= 0.5 / beta
        quadratic *= np.minimum(a, beta)
        linear = np.subtract(a, 0.5 * beta, out=a)
        return reduced(np.where(small, quadratic, linear), reduction)

    def log_sigmoid(x: Any) -> Any:
        # min(x, 0) - log1p(exp(-|x|)): the generic -softplus(-x), negated term by term
        tail = np.asarray(np.abs(x))
        np.negative(tail, out=tail)
        np.exp(tail, out=tail)
        np.log1p(tail, out=tail)
        return np.minimum(x, 0.0) - tail

    return Kernels(log_sigmoid=log_sigmoid, squared_error=squared_error,
                   absolute_error=absolute_error, huber=huber, smooth_l1=smooth_l1)


def jax_kernels() -> Kernels:
    import jax
    import jax.numpy as jnp

    # jax.nn's maximum is stop_gradient'ed: no autograd through it (its gradient is zero)
    def log_softmax(x: Any, axis: int) -> Any:
        return jax.nn.log_softmax(x, axis=axis)

    def softmax_cross_entropy(x: Any, labels: Any, axis: int) -> Any:
        # optax's form: XLA fuses it without writing the log-probabilities out
        picked = jnp.take_along_axis(x, jnp.expand_dims(labels, axis), axis=axis)
        return jax.nn.logsumexp(x, axis=axis) - jnp.squeeze(picked, axis)

    return Kernels(log_softmax=log_softmax, softmax_cross_entropy=softmax_cross_entropy)
