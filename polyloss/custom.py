"""Turn a user's unreduced loss into a polyloss loss that runs on every backend.

``@polyloss.custom_loss`` wraps ``fn(pred, target, *, xp, **params)`` (``xp`` optional)
into ``fn(pred, target, *, reduction="mean", sample_weight=None, normalizer="count",
**params)``, called exactly as polyloss's own losses are (``canonical/_common.py``'s
``elementwise_loss``): one framework per call (mixing is a ``TypeError`` naming both
arguments), one device, no silent broadcasting of ``pred`` against ``target``, dtype
promotion (float16/bfloat16 computed in float32 and returned in their own dtype), MXNet's
classic ``mx.nd.NDArray`` in and out, autograd intact, traceable by ``jax.jit``,
``tf.function`` and ``torch.compile(fullgraph=True)``. See ``docs/testing.md``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from polyloss.backends import backend_of, check_same_device
from polyloss.canonical._common import elementwise_loss

__all__ = ["custom_loss"]

_ADDED = ("pred", "target", "reduction", "sample_weight", "normalizer")
_PY_SCALARS = (bool, int, float, complex, str)


def custom_loss(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``fn`` a polyloss loss: every backend, polyloss's reductions, weights and checks.

    ``fn(pred, target, *, xp, **params)`` returns the *unreduced* loss (the elementwise
    shape for an elementwise loss; any shape the reduction and ``sample_weight`` then apply
    to) as an array of the inputs' framework. Its first two parameters receive the
    prediction and the target; if it has a parameter named ``xp``, that receives the
    inputs' Array API namespace (``array_api_compat``'s for NumPy, torch, JAX, CuPy, Dask
    and array-api-strict; polyloss's adapters for TensorFlow and MXNet), so the loss is
    written with ``xp.*`` names only. A loss built from polyloss losses (called with
    ``reduction="none"``) needs no ``xp``.

    ``fn`` receives ``pred`` and ``target`` checked (same framework, device and shape) and
    promoted to one floating dtype: float16/bfloat16 as float32, an integer target as the
    prediction's dtype, MXNet's ``mx.nd.NDArray`` as ``mx.np.ndarray``. Keyword arguments
    that are arrays are checked for framework and device too, floating ones cast to that
    dtype; other keyword values (Python numbers) pass through unchanged.

    Returns ``loss(pred, target, *, reduction="mean", sample_weight=None,
    normalizer="count", **params)`` with polyloss's canonical reductions: ``"none"``,
    ``"sum"``, ``"mean"``; ``sample_weight`` of the loss's shape, a leading part of it (one
    weight per sample) or a shape that broadcasts to it without enlarging it; a weighted
    mean divides by the element count (``normalizer="count"``) or the summed weights
    (``"sum_of_weights"``). The result has the input's array type and dtype.
    """
    name = getattr(fn, "__qualname__", type(fn).__name__)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"polyloss.custom_loss: cannot read the signature of {name}: {exc}") from None
    params = [p for p in sig.parameters.values() if p.name != "xp"]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 or any(p.default is not p.empty for p in positional[:2]):
        raise TypeError(
            f"polyloss.custom_loss: {name} must take the prediction and the target as its first "
            f"two parameters, without defaults; got {name}{sig}"
        )
    rest = [p for p in params if p not in positional[:2] and p.kind != p.VAR_POSITIONAL]
    clash = [p.name for p in rest if p.name in _ADDED]
    if clash:
        raise TypeError(
            f"polyloss.custom_loss: {name} must return the unreduced loss; its parameter(s) "
            f"{', '.join(clash)} clash with the ones the wrapped loss adds ({', '.join(_ADDED[2:])})"
        )
    takes_xp = "xp" in sig.parameters
    keywords = tuple(p.name for p in rest if p.kind != p.VAR_KEYWORD)
    any_keyword = any(p.kind == p.VAR_KEYWORD for p in rest)

    @functools.wraps(fn)
    def loss(
        pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
        normalizer: Any = "count", **kwargs: Any,
    ) -> Any:
        unknown = [k for k in kwargs if k not in keywords]
        if unknown and not any_keyword:
            raise TypeError(
                f"polyloss: {name}() got an unexpected keyword argument {unknown[0]!r}; it takes "
                + ", ".join(_ADDED[2:] + keywords)
            )

        def unreduced(p: Any, t: Any, *, xp: Any) -> Any:
            backend = backend_of(p)
            given = {k: _keyword_array(backend, p, v, k) for k, v in kwargs.items()}
            out = fn(p, t, xp=xp, **given) if takes_xp else fn(p, t, **given)
            _check_result(backend, out, name)
            return out

        return elementwise_loss(
            unreduced, pred, target,
            reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
        )

    added = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
        for n, d in (("reduction", "mean"), ("sample_weight", None), ("normalizer", "count"))
    ]
    keyword_only = [
        p if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) else p.replace(kind=p.KEYWORD_ONLY)
        for p in rest
    ]
    keyword_only.sort(key=lambda p: p.kind == p.VAR_KEYWORD)  # **kwargs stays last
    loss.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in _ADDED[:2]]
        + added + keyword_only
    )
    return loss


def _keyword_array(backend: Any, pred: Any, x: Any, name: str) -> Any:
    """An array keyword argument in the call's framework, device and compute dtype."""
    if x is None or isinstance(x, _PY_SCALARS) or not hasattr(x, "dtype"):
        return x
    backend_of(pred, x, names=("pred", name))  # TypeError naming both if frameworks differ
    if backend.to_xp is not None:
        x = backend.to_xp(x)
    check_same_device(backend, (pred, x), ("pred", name))
    if backend.is_floating(x.dtype) and x.dtype != pred.dtype:
        x = backend.xp.astype(x, pred.dtype)
    return x


def _check_result(backend: Any, out: Any, name: str) -> None:
    """The user's function must return an array of the inputs' framework (not, e.g., NumPy)."""
    try:
        framework = backend_of(out).framework
    except TypeError:
        framework = None
    if framework != backend.framework or not hasattr(out, "dtype"):
        t = type(out)
        raise TypeError(
            f"polyloss: {name} returned a {t.__module__}.{t.__qualname__} for {backend.framework} "
            "inputs; it must return the unreduced loss as an array of the inputs' framework: "
            "write it with the namespace it receives as xp (xp.exp, not numpy.exp)"
        )
