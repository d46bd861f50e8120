"""Keras 3's losses, reproduced exactly, on arrays of any backend.

Same names, arguments, defaults and argument order as ``keras.losses`` 3.15: target
first, ``(y_true, y_pred, sample_weight=None)``. The functions (``mean_squared_error``,
...) return one value per sample (the mean over the last axis) in ``y_pred``'s dtype. The
classes cast both inputs to their ``dtype`` (``keras.config.floatx()``, float32 by
default, even for float64 inputs), multiply by ``sample_weight`` after Keras's rank
squeeze/expand, and reduce with ``"sum_over_batch_size"`` (alias ``"mean"``: the sum over
the number of per-sample entries), ``"sum"``, ``"mean_with_sample_weight"`` (the sum over
the sum of the weights) or ``"none"``/``None``; a zero divisor gives 0, and a 1-D empty
per-sample loss is returned unreduced, as Keras does.

Deliberate differences from Keras (documented in docs/conventions.md):

- Shapes that still differ after Keras's squeeze/expand of a trailing 1, and sample
  weights that would enlarge the loss by broadcasting, raise ``ValueError``; Keras
  broadcasts them silently.
- Integer ``y_pred`` is a ``TypeError`` in the functions (the classes cast, as Keras does).
- float16/bfloat16 inputs to the functions are computed in float32 and returned in their
  own dtype.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from polyloss._inputs import check_same_shape, finish, prepare
from polyloss.backends import backend_of
from polyloss.core import regression as core
from polyloss.core._helpers import clip_below, softplus
from polyloss.reduction import align_weight, mean_last_axis, static_size

__all__ = [
    "Loss", "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh",
]

EPSILON = 1e-7  # keras.config.epsilon()
# MSLE converts epsilon with the default float dtype, so float64 inputs are clipped at
# float32(1e-7), unlike MAPE, which converts it to y_pred's dtype.
_MSLE_EPSILON = float(np.float32(EPSILON))
# log_cosh's constant is ops.log(2.0), evaluated in float32 and then cast, so even float64
# Keras subtracts float32(log 2) (1.9e-9 away from log 2).
_LOG2_FLOAT32 = float(np.log(np.float32(2.0)))
_NAMES = ("y_pred", "y_true", "sample_weight")
REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


# ---- Keras's shape and reduction rules --------------------------------------------------

def squeeze_or_expand_to_same_rank(xp: Any, x1: Any, x2: Any, expand_rank_1: bool = True):
    """Keras's rule: if ranks differ by one and the longer ends in 1, squeeze it (or expand a
    rank-1 partner)."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = xp.expand_dims(x2, axis=-1)
        else:
            x1 = xp.squeeze(x1, axis=-1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = xp.expand_dims(x1, axis=-1)
        else:
            x2 = xp.squeeze(x2, axis=-1)
    return x1, x2


def standardize_reduction(reduction: Any) -> Any:
    if reduction not in REDUCTIONS:
        raise ValueError(
            "Invalid value for argument `reduction`. Expected one of "
            f"{set(REDUCTIONS)}. Received: reduction={reduction!r}"
        )
    return reduction


def reduce_weighted_values(xp: Any, values: Any, sample_weight: Any, reduction: Any) -> Any:
    """``keras.losses.loss.reduce_weighted_values`` (no mask): weight, then reduce."""
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(xp, values, sample_weight)
        sample_weight = align_weight(xp, sample_weight, tuple(values.shape), prefix=False)
        values = values * sample_weight
    if reduction is None or reduction == "none" or tuple(values.shape) in ((), (0,)):
        return values
    total = xp.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = xp.sum(sample_weight)
        return xp.where(divisor == 0, 0.0, total / xp.where(divisor == 0, 1.0, divisor))
    count = static_size(values)
    if count is None:  # a symbolic batch dimension (inside tf.function / a Keras model)
        n = xp.sum(xp.ones_like(values))
        return xp.where(n == 0, 0.0, total / xp.where(n == 0, 1.0, n))
    return total / count if count else total * 0.0


# ---- per-sample functions (inputs already in one dtype) ------------------------------

def _per_sample(elementwise: Callable[..., Any], scale: float | None = None) -> Callable[..., Any]:
    def per_sample(xp: Any, y_true: Any, y_pred: Any, **params: Any) -> Any:
        y_true, y_pred = squeeze_or_expand_to_same_rank(xp, y_true, y_pred)
        check_same_shape(y_pred, y_true, _NAMES[:2])
        if len(y_pred.shape) == 0:
            raise ValueError("polyloss: y_pred must have at least one dimension (Keras means "
                             "over the last axis)")
        out = mean_last_axis(xp, elementwise(y_pred, y_true, xp=xp, **params))
        return out if scale is None else scale * out

    return per_sample


def _keras_msle(y_pred: Any, y_true: Any, *, xp: Any) -> Any:
    # Keras writes log(max(x, eps) + 1), not log1p: reproduced for its float32 rounding.
    d = xp.log(clip_below(y_pred, _MSLE_EPSILON, xp) + 1.0) - xp.log(
        clip_below(y_true, _MSLE_EPSILON, xp) + 1.0
    )
    return d * d


def _keras_log_cosh(y_pred: Any, y_true: Any, *, xp: Any) -> Any:
    # Keras's x + softplus(-2x) - log 2: it loses relative precision for |x| << 1, as Keras does.
    x = y_pred - y_true
    return x + softplus(-2.0 * x, xp) - _LOG2_FLOAT32


def _mape_ratio(y_pred: Any, y_true: Any, *, xp: Any) -> Any:
    return core.relative_absolute_error(y_pred, y_true, epsilon=EPSILON, xp=xp)


_PER_SAMPLE = {
    "mean_squared_error": _per_sample(core.squared_error),
    "mean_absolute_error": _per_sample(core.absolute_error),
    "mean_absolute_percentage_error": _per_sample(_mape_ratio, scale=100.0),
    "mean_squared_logarithmic_error": _per_sample(_keras_msle),
    "huber": _per_sample(core.huber),
    "log_cosh": _per_sample(_keras_log_cosh),
}


def _call_function(name: str, y_true: Any, y_pred: Any, **params: Any) -> Any:
    with backend_of(y_pred, y_true, names=_NAMES).scope():
        p = prepare(y_pred, y_true, names=_NAMES, target_takes_pred_dtype=True)
        return finish(p, _PER_SAMPLE[name](p.xp, p.target, p.pred, **params))


def mean_squared_error(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.mean_squared_error``: ``mean(square(y_true - y_pred), axis=-1)``."""
    return _call_function("mean_squared_error", y_true, y_pred)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.mean_absolute_error``: ``mean(abs(y_true - y_pred), axis=-1)``."""
    return _call_function("mean_absolute_error", y_true, y_pred)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.mean_absolute_percentage_error``:
    ``100 * mean(abs((y_true - y_pred) / maximum(abs(y_true), 1e-7)), axis=-1)``."""
    return _call_function("mean_absolute_percentage_error", y_true, y_pred)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.mean_squared_logarithmic_error``:
    ``mean(square(log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1)), axis=-1)``."""
    return _call_function("mean_squared_logarithmic_error", y_true, y_pred)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Any:
    """``keras.losses.huber``: ``½e²`` if ``|e| <= delta`` else ``delta·|e| - ½delta²``, mean over
    the last axis."""
    return _call_function("huber", y_true, y_pred, delta=_check_delta(delta))


def log_cosh(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.log_cosh``: ``mean(x + softplus(-2x) - log 2, axis=-1)``, ``x = y_pred - y_true``."""
    return _call_function("log_cosh", y_true, y_pred)


def _check_delta(delta: Any) -> float:
    # Keras accepts delta <= 0 and silently computes a linear-only loss; polyloss refuses it.
    if not isinstance(delta, (int, float)) or not delta > 0:
        raise ValueError(f"polyloss: delta must be a number > 0, got {delta!r}")
    return float(delta)


# ---- loss objects -----------------------------------------------------------------------

def _floatx() -> str:
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return keras.config.floatx()
        except AttributeError:
            pass
    return "float32"


def _compute_dtype_name(dtype: Any) -> str:
    """The dtype a Keras loss computes in: ``dtype`` or ``floatx()``; mixed policies compute
    in their low-precision type."""
    if dtype is None:
        return _floatx()
    if hasattr(dtype, "compute_dtype"):  # a keras.DTypePolicy
        return str(dtype.compute_dtype)
    name = getattr(dtype, "name", dtype)
    name = str(name)
    if name.startswith("mixed_"):
        return name[len("mixed_"):]
    if name not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(f"polyloss: invalid dtype={dtype!r} for a Keras loss; expected a float "
                         "dtype name or a mixed-precision policy name")
    return name


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Loss:
    """``keras.losses.Loss``: subclasses implement ``call(y_true, y_pred)`` on arrays of one
    namespace and get Keras's dtype cast, ``sample_weight`` handling and reductions."""

    def __init__(self, name: str | None = None, reduction: Any = "sum_over_batch_size",
                 dtype: Any = None) -> None:
        self.name = name or _snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._compute_dtype = _compute_dtype_name(dtype)

    @property
    def dtype(self) -> str:
        return self._compute_dtype

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        with backend_of(y_pred, y_true, sample_weight, names=_NAMES).scope():
            p = prepare(y_pred, y_true, sample_weight, names=_NAMES,
                        compute_dtype=self._compute_dtype)
            losses = self.call(p.target, p.pred)
            return finish(p, reduce_weighted_values(p.xp, losses, p.weight, self.reduction))

    def call(self, y_true: Any, y_pred: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


class _FunctionLoss(Loss):
    _function: str = ""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        xp = backend_of(y_pred).xp
        return _PER_SAMPLE[self._function](xp, y_true, y_pred, **self._params())

    def _params(self) -> dict:
        return {}


def _simple_loss(class_name: str, function: str, doc: str) -> type:
    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = function,
                 dtype: Any = None) -> None:
        Loss.__init__(self, name=name, reduction=reduction, dtype=dtype)

    return type(class_name, (_FunctionLoss,), {
        "__init__": __init__, "_function": function, "__doc__": doc, "__module__": __name__,
    })


MeanSquaredError = _simple_loss(
    "MeanSquaredError", "mean_squared_error",
    "``keras.losses.MeanSquaredError(reduction='sum_over_batch_size', "
    "name='mean_squared_error', dtype=None)``.")
MeanAbsoluteError = _simple_loss(
    "MeanAbsoluteError", "mean_absolute_error",
    "``keras.losses.MeanAbsoluteError(reduction='sum_over_batch_size', "
    "name='mean_absolute_error', dtype=None)``.")
MeanAbsolutePercentageError = _simple_loss(
    "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    "``keras.losses.MeanAbsolutePercentageError(reduction='sum_over_batch_size', "
    "name='mean_absolute_percentage_error', dtype=None)``.")
MeanSquaredLogarithmicError = _simple_loss(
    "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    "``keras.losses.MeanSquaredLogarithmicError(reduction='sum_over_batch_size', "
    "name='mean_squared_logarithmic_error', dtype=None)``.")
LogCosh = _simple_loss(
    "LogCosh", "log_cosh",
    "``keras.losses.LogCosh(reduction='sum_over_batch_size', name='log_cosh', dtype=None)``.")


class Huber(_FunctionLoss):
    """``keras.losses.Huber(delta=1.0, reduction='sum_over_batch_size', name='huber_loss',
    dtype=None)``. Like Keras, ``get_config`` does not include ``delta``."""

    _function = "huber"

    def __init__(self, delta: float = 1.0, reduction: Any = "sum_over_batch_size",
                 name: str = "huber_loss", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.delta = _check_delta(delta)

    def _params(self) -> dict:
        return {"delta": self.delta}
