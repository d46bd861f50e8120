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

With Keras installed the classes are ``keras.losses.Loss`` subclasses, registered for
serialization as ``"polyloss>Name"``: a drop-in for ``model.compile(loss=...)``,
``model.save``/``load_model``. On tensors of the running Keras backend they run Keras's own
``Loss.__call__`` around polyloss's per-sample values (see :class:`Loss`).

Deliberate differences from Keras (documented in docs/conventions.md):

- Shapes that still differ after Keras's squeeze/expand of a trailing 1, and sample
  weights that would enlarge the loss by broadcasting, raise ``ValueError``; Keras
  broadcasts them silently.
- Integer ``y_pred`` is a ``TypeError`` in the functions (the classes cast, as Keras does).
- float16/bfloat16 inputs to the functions are computed in float32 and returned in their
  own dtype.
- Probabilities are always clipped to [1e-7, 1 - 1e-7]: Keras's TensorFlow backend silently
  uses the logits instead when ``y_pred`` is the direct output of a Keras sigmoid/softmax op
  in the same graph (``_keras_logits``); polyloss cannot see that provenance. Pass logits with
  ``from_logits=True`` for the exact values. ``BinaryFocalCrossentropy(from_logits=True)``
  reproduces the TensorFlow backend (exact logits BCE), not the clipped jax/torch backends.
- ``sparse_categorical_crossentropy`` labels outside ``[0, C)`` (other than ``ignore_class``)
  raise ``ValueError`` naming ``y_true`` in eager calls (TensorFlow raises
  ``InvalidArgumentError``); under ``tf.function``/jit such a position's loss is NaN.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from polyloss._inputs import (
    check_same_shape,
    finish,
    known_shape,
    prepare,
    prepare_extra,
    values_checked,
)
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.canonical import sequence
from polyloss.core import classification as cls_core
from polyloss.core import margin as margin_core
from polyloss.core import regression as core
from polyloss.core._helpers import clip_below, softplus
from polyloss.reduction import align_weight, mean_last_axis, static_size

try:  # the drop-in: with Keras installed, the classes are keras.losses.Loss subclasses
    import keras as _keras
    from keras.src.backend import set_keras_mask as _set_keras_mask  # how Keras's losses do it

    _KerasLoss: type = _keras.losses.Loss
except ImportError:  # no Keras: the classes still work on every framework's arrays
    _keras = None
    _KerasLoss = object

__all__ = [
    "Loss", "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh",
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "SparseCategoricalCrossentropy", "KLDivergence", "Poisson",
    "binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy",
    "categorical_focal_crossentropy", "sparse_categorical_crossentropy", "kl_divergence", "poisson",
    "Hinge", "SquaredHinge", "CategoricalHinge", "hinge", "squared_hinge", "categorical_hinge",
    "CosineSimilarity", "cosine_similarity", "Dice", "Tversky", "dice", "tversky", "CTC", "ctc",
    "Circle", "circle", "CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy",
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


def apply_mask(xp: Any, sample_weight: Any, mask: Any, values: Any, reduction: Any) -> Any:
    """``keras.losses.loss.apply_mask``: a boolean mask (``ignore_class``) becomes a weight;
    for the mean reductions the valid entries get ``total / valid`` so that the mean is over
    valid entries, and 0 valid entries give weight 0 (divide_no_nan)."""
    if mask is None:
        return sample_weight
    ones = xp.ones_like(values)
    if reduction in ("mean", "sum_over_batch_size"):
        # the count as an array: torch divides a Python int by a tensor one ulp off
        # TensorFlow's divide_no_nan (see docs/development.md)
        total = xp.sum(ones)
        valid = xp.sum(xp.where(mask, ones, 0.0))
        mask_weight = xp.where(valid == 0, 0.0, total / xp.where(valid == 0, 1.0, valid))
        float_mask = xp.where(mask, mask_weight * ones, 0.0)
    else:
        float_mask = xp.where(mask, ones, 0.0)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(xp, float_mask, sample_weight)
    sample_weight = align_weight(xp, sample_weight, tuple(float_mask.shape), prefix=False)
    return sample_weight * float_mask


def reduce_weighted_values(xp: Any, values: Any, sample_weight: Any, reduction: Any,
                           mask: Any = None) -> Any:
    """``keras.losses.loss.reduce_weighted_values``: mask, weight, then reduce."""
    sample_weight = apply_mask(xp, sample_weight, mask, values, reduction)
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
        if name in _PER_SAMPLE:
            return finish(p, _PER_SAMPLE[name](p.xp, p.target, p.pred, **params))
        losses, _ = _CLASSIFICATION[name](p.xp, p.target, p.pred, **params)
        return finish(p, losses)


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


def _keras_backend_call(y_true: Any, y_pred: Any, sample_weight: Any) -> bool:
    """Whether a loss call belongs to Keras: ``y_pred`` is a tensor of the Keras backend this
    process runs (``tf.Tensor`` under ``KERAS_BACKEND=tensorflow``, ``jax.Array`` or a tracer
    under jax, ``torch.Tensor`` under torch; what a model's ``fit``/``evaluate`` passes) and
    ``y_true``/``sample_weight`` are such tensors, NumPy arrays or absent."""
    if _keras is None or not _keras.ops.is_tensor(y_pred):
        return False
    return all(x is None or isinstance(x, np.ndarray) or _keras.ops.is_tensor(x)
               for x in (y_true, sample_weight))


def _check_keras_call(y_true: Any, y_pred: Any, sample_weight: Any) -> None:
    """What polyloss's own path refuses and Keras's ``Loss.__call__`` would not: complex inputs
    (Keras casts them to float, dropping the imaginary part) and sample weights whose batch
    size differs from ``y_pred``'s (a framework error deep inside Keras otherwise)."""
    for name, x in (("y_true", y_true), ("y_pred", y_pred), ("sample_weight", sample_weight)):
        if x is not None and "complex" in str(getattr(x, "dtype", "")):
            raise TypeError(f"polyloss: {name} must be a real numeric array, got dtype {x.dtype}")
    if sample_weight is None:
        return
    ws, ps = known_shape(sample_weight), known_shape(y_pred)
    if ws and ps and ws[0] is not None and ps[0] is not None and ws[0] not in (1, ps[0]):
        raise ValueError(f"polyloss: sample_weight of shape {ws} does not fit y_pred of shape {ps}; "
                         f"expected one weight per sample (a leading dimension of {ps[0]})")


class Loss(_KerasLoss):
    """``keras.losses.Loss``: subclasses implement ``call(y_true, y_pred)`` on arrays of one
    namespace and get Keras's dtype cast, ``sample_weight`` handling and reductions.

    With Keras installed this is a ``keras.losses.Loss`` subclass (registered for
    serialization under ``"polyloss>ClassName"``), so it goes into ``model.compile(loss=...)``
    and ``keras.models.load_model``. Called on tensors of the running Keras backend, it runs
    Keras's own ``Loss.__call__`` (its dtype policy, Keras masks, ``sample_weight``/
    ``class_weight``, reductions, ``tf.distribute`` scaling) around polyloss's per-sample
    ``call``; on any other arrays (NumPy, or another framework's) polyloss's own path gives
    the same values in the caller's array type."""

    # TensorFlow's autograph leaves polyloss's Python unconverted, as it leaves Keras's: the
    # marker of tf.autograph.experimental.do_not_convert (a converted factory-made __init__
    # was called in place of __call__ under tf.function otherwise)
    autograph_info__ = frozenset()

    def __init__(self, name: str | None = None, reduction: Any = "sum_over_batch_size",
                 dtype: Any = None) -> None:
        self.name = name or _snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._compute_dtype = _compute_dtype_name(dtype)
        if _keras is not None:  # what keras.losses.Loss.__init__ sets
            self._dtype_policy = _keras.dtype_policies.get(dtype or _keras.config.floatx())
            self._dtype = self._compute_dtype

    @property
    def dtype(self) -> str:
        return self._compute_dtype

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if _keras_backend_call(y_true, y_pred, sample_weight):
            _check_keras_call(y_true, y_pred, sample_weight)
            return _KerasLoss.__call__(self, y_true, y_pred, sample_weight)
        with backend_of(y_pred, y_true, sample_weight, names=_NAMES).scope():
            p = prepare(y_pred, y_true, sample_weight, names=_NAMES,
                        compute_dtype=self._compute_dtype)
            losses, mask = self.call_with_mask(p.target, p.pred)
            return finish(p, reduce_weighted_values(p.xp, losses, p.weight, self.reduction, mask))

    def call(self, y_true: Any, y_pred: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def call_with_mask(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        """``call`` and the Keras mask it attaches to its result (``None``: no mask)."""
        return self.call(y_true, y_pred), None

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
        """The per-sample losses; their mask (``ignore_class``, Circle's zero losses) is
        attached as Keras does (``_keras_mask``), for ``keras.losses.Loss.__call__``."""
        losses, mask = self.call_with_mask(y_true, y_pred)
        if mask is not None and _keras is not None and _keras.ops.is_tensor(losses):
            _set_keras_mask(losses, mask)
        return losses

    def call_with_mask(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        xp = backend_of(y_pred).xp
        if self._function in _PER_SAMPLE:
            return _PER_SAMPLE[self._function](xp, y_true, y_pred, **self._params()), None
        # LossFunctionWrapper squeezes/expands a trailing 1 before calling the function
        y_true, y_pred = squeeze_or_expand_to_same_rank(xp, y_true, y_pred)
        return _CLASSIFICATION[self._function](xp, y_true, y_pred, **self._params())

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



# ---- classification -----------------------------------------------------------------------

_ONE_MINUS_EPSILON = 1.0 - EPSILON


def _clip_probability(xp: Any, p: Any) -> Any:
    """``clip_by_value(p, 1e-7, 1 - 1e-7)``: zero gradient outside, identity at the bounds."""
    return xp.where(p < EPSILON, EPSILON, xp.where(p > _ONE_MINUS_EPSILON, _ONE_MINUS_EPSILON, p))


def _tf_sigmoid_cross_entropy_with_logits(xp: Any, y: Any, z: Any) -> Any:
    """``tf.nn.sigmoid_cross_entropy_with_logits``: ``max(z, 0) - z·y + log1p(exp(-|z|))``,
    in that order (its rounding reproduced); ``max`` and ``|z|`` from one mask so the
    gradient at 0 is ``½ - y``."""
    positive = z >= 0
    relu_z = xp.where(positive, z, 0.0)
    abs_z = xp.where(positive, z, -z)
    return relu_z - z * y + xp.log1p(xp.exp(-abs_z))


def _bce_elementwise(xp: Any, y: Any, y_pred: Any, from_logits: bool) -> Any:
    if from_logits:
        return _tf_sigmoid_cross_entropy_with_logits(xp, y, y_pred)
    p = _clip_probability(xp, y_pred)
    return -(y * xp.log(p) + (1.0 - y) * xp.log(1.0 - p))


def _mean_axis(xp: Any, x: Any, axis: int) -> Any:
    """``ops.mean(x, axis)``; an empty axis gives NaN without NumPy's warning."""
    if x.shape[axis] == 0:
        shape = tuple(d for i, d in enumerate(x.shape) if i != axis % len(x.shape))
        return xp.full(shape, math.nan, dtype=x.dtype, device=backend_of(x).device(x))
    return xp.mean(x, axis=axis)


def _check_axis(axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    return axis


def _same_shape(y_true: Any, y_pred: Any) -> None:
    check_same_shape(y_pred, y_true, _NAMES[:2])


def _binary_crossentropy(xp, y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    _same_shape(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return _mean_axis(xp, _bce_elementwise(xp, y_true, y_pred, from_logits), axis), None


def _binary_focal_crossentropy(xp, y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                               gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    _same_shape(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # the TensorFlow backend recovers the logits behind its own sigmoid: exact BCE
        prob = cls_core.sigmoid(y_pred, xp)
        bce = _tf_sigmoid_cross_entropy_with_logits(xp, y_true, y_pred)
    else:
        prob = y_pred
        bce = _bce_elementwise(xp, y_true, y_pred, False)
    p_t = y_true * prob + (1.0 - y_true) * (1.0 - prob)
    focal_bce = (1.0 - p_t) ** gamma * bce
    if apply_class_balancing:
        focal_bce = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal_bce
    return _mean_axis(xp, focal_bce, axis), None


def _smooth_categorical(xp, y_true, label_smoothing):
    if label_smoothing:
        # Keras takes the class count from the last axis, whatever `axis` says
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    return y_true


def _categorical_crossentropy(xp, y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    _check_axis(axis)
    if len(y_true.shape) < 1:
        raise ValueError("polyloss: y_true and y_pred must be at least rank 1")
    _same_shape(y_true, y_pred)
    y_true = _smooth_categorical(xp, y_true, label_smoothing)
    if from_logits:
        logp = cls_core.log_softmax(y_pred, axis, xp)
        # tf.nn.softmax_cross_entropy_with_logits backpropagates softmax - y even when the
        # targets do not sum to 1 (multi-hot, smoothing on another axis); the exact
        # derivative is softmax·Σy - y. Add (1 - Σy)·softmax with a zero-valued term.
        sg = backend_of(y_pred).stop_gradient
        lse = xp.mean(y_pred - logp, axis=axis)  # every entry is logsumexp; d/dz = softmax
        out = -xp.sum(y_true * logp, axis=axis)
        return out + (1.0 - sg(xp.sum(y_true, axis=axis))) * (lse - sg(lse)), None
    else:
        p = y_pred / xp.sum(y_pred, axis=axis, keepdims=True)
        logp = xp.log(_clip_probability(xp, p))
    return -xp.sum(y_true * logp, axis=axis), None


def _categorical_focal_crossentropy(xp, y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                    label_smoothing=0.0, axis=-1):
    _check_axis(axis)
    _same_shape(y_true, y_pred)
    y_true = _smooth_categorical(xp, y_true, label_smoothing)
    if from_logits:
        y_pred = cls_core.softmax(y_pred, axis, xp)
    output = _clip_probability(xp, y_pred / xp.sum(y_pred, axis=axis, keepdims=True))
    cce = -y_true * xp.log(output)
    if not isinstance(alpha, (int, float)):
        # a per-class list: Keras makes it a float32 tensor that broadcasts on the last axis
        alpha = xp.astype(xp.asarray(np.asarray(alpha, dtype=np.float32),
                                     device=backend_of(y_pred).device(y_pred)), y_pred.dtype)
    focal = ((1.0 - output) ** gamma * alpha) * cce
    return xp.sum(focal, axis=axis), None


def _check_index_labels_shape(y_true: Any, y_pred: Any) -> None:
    """Class-index labels have ``y_pred``'s shape without the class axis (unknown dims match)."""
    expected = tuple(y_pred.shape[:-1])
    if len(y_true.shape) != len(expected) or not all(
            a == b or a is None or b is None for a, b in zip(y_true.shape, expected, strict=True)):
        raise ValueError(f"polyloss: y_true holds class indices and must have shape {expected} "
                         f"(y_pred's shape without the class axis), got {tuple(y_true.shape)}")


def _sparse_categorical_crossentropy(xp, y_true, y_pred, from_logits=False, ignore_class=None,
                                     axis=-1):
    ndim = len(y_pred.shape)
    if ndim < 1:
        raise ValueError(f"Argument `output` must be at least rank 1. Received: output.shape={y_pred.shape}")
    if len(y_true.shape) == ndim and y_true.shape[axis] == 1:
        y_true = xp.squeeze(y_true, axis=axis)
    if axis != -1 and axis != ndim - 1:
        raise ValueError(f"Only axis=-1 is currently supported. Received: axis={axis}")
    _check_index_labels_shape(y_true, y_pred)
    backend = backend_of(y_pred)
    num_classes = y_pred.shape[-1]
    inside = check_class_labels(backend, y_true, num_classes, ignore_class, "y_true")
    valid = None
    if ignore_class is not None:
        valid = y_true != float(ignore_class)
        y_true = xp.where(valid, y_true, 0.0)
        y_pred = xp.where(xp.expand_dims(valid, axis=-1), y_pred, 0.0)
    labels = as_index(backend, y_true, checked=inside)
    in_range = None
    if not inside:  # unchecked (under a trace): out-of-range labels give NaN
        labels, _, in_range = cls_core.safe_labels(labels, num_classes, None, xp)
    logits = y_pred if from_logits else xp.log(_clip_probability(xp, y_pred))
    res = cls_core.softmax_cross_entropy(logits, labels, -1, xp)
    if in_range is not None:
        res = xp.where(in_range, res, math.nan)
    if valid is not None:
        res = xp.where(valid, res, 0.0)
    return res, valid


def _kl_divergence(xp, y_true, y_pred):
    _same_shape(y_true, y_pred)
    y_true = xp.where(y_true < EPSILON, EPSILON, xp.where(y_true > 1.0, 1.0, y_true))
    y_pred = xp.where(y_pred < EPSILON, EPSILON, xp.where(y_pred > 1.0, 1.0, y_pred))
    return xp.sum(y_true * xp.log(y_true / y_pred), axis=-1), None


def _poisson(xp, y_true, y_pred):
    _same_shape(y_true, y_pred)
    return _mean_axis(xp, y_pred - y_true * xp.log(y_pred + EPSILON), -1), None


def _hinge_labels(xp: Any, y_true: Any) -> Any:
    """Keras's ``convert_binary_labels_to_hinge``: ``2y - 1`` only if *every* label is 0 or 1."""
    is_binary = xp.all(xp.logical_or(y_true == 0, y_true == 1))
    return xp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def _keras_hinge_term(xp: Any, y_true: Any, y_pred: Any) -> Any:
    # ops.maximum(1 - y·ŷ, 0): TensorFlow gives a tie's gradient to the first argument
    return margin_core.hinge(y_pred, _hinge_labels(xp, y_true), 1.0, xp, tie="active")


def _hinge(xp, y_true, y_pred):
    _same_shape(y_true, y_pred)
    return _mean_axis(xp, _keras_hinge_term(xp, y_true, y_pred), -1), None


def _squared_hinge(xp, y_true, y_pred):
    _same_shape(y_true, y_pred)
    h = _keras_hinge_term(xp, y_true, y_pred)
    return _mean_axis(xp, h * h, -1), None


def _categorical_hinge(xp, y_true, y_pred):
    _same_shape(y_true, y_pred)
    pos = xp.sum(y_true * y_pred, axis=-1)
    neg = margin_core.max_even_ties((1.0 - y_true) * y_pred, -1, xp, backend_of(y_pred).stop_gradient)
    return margin_core.hinge_part(neg - pos + 1.0, xp, tie="active"), None


def _l2_normalize(xp: Any, x: Any, axis: int) -> Any:
    """``keras.ops.normalize``: ``x · min(rsqrt(Σx²), 1/1e-7)`` (a zero vector stays 0)."""
    square_sum = xp.sum(x * x, axis=axis, keepdims=True)
    positive = square_sum > 0
    inv_norm = xp.where(positive, 1.0 / xp.sqrt(xp.where(positive, square_sum, 1.0)), math.inf)
    return x * xp.where(inv_norm > 1.0 / EPSILON, 1.0 / EPSILON, inv_norm)


def _cosine_similarity(xp, y_true, y_pred, axis=-1):
    y_true, y_pred = squeeze_or_expand_to_same_rank(xp, y_true, y_pred)
    _same_shape(y_true, y_pred)
    return -xp.sum(_l2_normalize(xp, y_true, axis) * _l2_normalize(xp, y_pred, axis), axis=axis), None


def _sum_axis(xp: Any, x: Any, axis: Any) -> Any:
    return xp.sum(x, axis=axis)


def _dice(xp, y_true, y_pred, axis=None):
    _same_shape(y_true, y_pred)
    intersection = _sum_axis(xp, y_true * y_pred, axis)
    total = _sum_axis(xp, y_true, axis) + _sum_axis(xp, y_pred, axis) + EPSILON
    return 1.0 - (2.0 * intersection) / total, None


def _tversky(xp, y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    # Keras's names: `inputs` is y_true and `targets` is y_pred, so its "fp" is Σ(1-ŷ)·y
    _same_shape(y_true, y_pred)
    intersection = _sum_axis(xp, y_true * y_pred, axis)
    fp = _sum_axis(xp, (1.0 - y_pred) * y_true, axis)
    fn = _sum_axis(xp, y_pred * (1.0 - y_true), axis)
    return 1.0 - intersection / (intersection + fp * alpha + fn * beta + EPSILON), None


_CLASSIFICATION = {
    "dice": _dice,
    "tversky": _tversky,
    "cosine_similarity": _cosine_similarity,
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
    "categorical_hinge": _categorical_hinge,
    "binary_crossentropy": _binary_crossentropy,
    "binary_focal_crossentropy": _binary_focal_crossentropy,
    "categorical_crossentropy": _categorical_crossentropy,
    "categorical_focal_crossentropy": _categorical_focal_crossentropy,
    "sparse_categorical_crossentropy": _sparse_categorical_crossentropy,
    "kl_divergence": _kl_divergence,
    "poisson": _poisson,
}


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """``keras.losses.binary_crossentropy``: mean over ``axis`` of the elementwise BCE; logits
    via ``max(z,0) - z·y + log1p(exp(-|z|))``, probabilities clipped to [1e-7, 1-1e-7];
    ``label_smoothing=ε`` uses ``y(1-ε) + ε/2``."""
    return _call_function("binary_crossentropy", y_true, y_pred, from_logits=from_logits,
                          label_smoothing=label_smoothing, axis=axis)


def binary_focal_crossentropy(y_true: Any, y_pred: Any, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                              label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """``keras.losses.binary_focal_crossentropy``: mean over ``axis`` of ``(1-p_t)^γ·BCE``, times
    ``α·y + (1-α)(1-y)`` only if ``apply_class_balancing``."""
    return _call_function("binary_focal_crossentropy", y_true, y_pred,
                          apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                          from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """``keras.losses.categorical_crossentropy``: ``-Σ y·log p`` over ``axis``; probabilities are
    renormalised ``p/Σp`` and clipped; ``label_smoothing=ε`` uses ``y(1-ε) + ε/C``."""
    return _call_function("categorical_crossentropy", y_true, y_pred, from_logits=from_logits,
                          label_smoothing=label_smoothing, axis=axis)


def categorical_focal_crossentropy(y_true: Any, y_pred: Any, alpha: float = 0.25,
                                   gamma: float = 2.0, from_logits: bool = False,
                                   label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """``keras.losses.categorical_focal_crossentropy``: ``Σ α·(1-p)^γ·(-y·log p)`` over ``axis``,
    on renormalised, clipped probabilities (softmax first with ``from_logits``); ``α`` scales
    every class."""
    return _call_function("categorical_focal_crossentropy", y_true, y_pred, alpha=alpha,
                          gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                          axis=axis)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> Any:
    """``keras.losses.sparse_categorical_crossentropy``: ``-log softmax(logits)[y]`` with
    ``logits = log(clip(p))`` for probabilities; positions labelled ``ignore_class`` give 0."""
    return _call_function("sparse_categorical_crossentropy", y_true, y_pred,
                          from_logits=from_logits, ignore_class=ignore_class, axis=axis)


def kl_divergence(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.kl_divergence``: ``Σ y·log(y/ŷ)`` over the last axis, both clipped to
    [1e-7, 1]."""
    return _call_function("kl_divergence", y_true, y_pred)


def poisson(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.poisson``: ``mean(ŷ - y·log(ŷ + 1e-7))`` over the last axis (ŷ is a rate)."""
    return _call_function("poisson", y_true, y_pred)


def _classification_loss(class_name: str, function: str, defaults: dict, doc: str) -> type:
    """A Keras loss class: its own parameters (``defaults``, in Keras's order, stored and
    passed to the function) then ``reduction``, ``name``, ``dtype``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        params = dict(defaults)
        names = list(_signature(defaults, function, class_name).parameters)
        if len(args) > len(names):
            raise TypeError(f"{class_name}() takes at most {len(names)} positional arguments")
        given = dict(zip(names, args, strict=False))
        for key in kwargs:
            if key in given:
                raise TypeError(f"{class_name}() got multiple values for argument {key!r}")
        given.update(kwargs)
        unknown = set(given) - set(names)
        if unknown:
            raise TypeError(f"{class_name}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        params.update({k: v for k, v in given.items() if k in defaults})
        if "axis" in params and class_name not in ("Dice", "Tversky"):  # those take None or tuples
            params["axis"] = _check_axis(params["axis"])
        Loss.__init__(self, name=given.get("name", function),
                      reduction=given.get("reduction", "sum_over_batch_size"),
                      dtype=given.get("dtype"))
        self._fn_params = params
        for k, v in params.items():
            setattr(self, k, v)

    def _params(self) -> dict:
        return dict(self._fn_params)

    def get_config(self) -> dict:
        params = dict(self._fn_params)
        if class_name in ("SparseCategoricalCrossentropy", "CosineSimilarity"):
            params.pop("axis")  # Keras leaves it out of these classes' configs
        return {**Loss.get_config(self), **params}

    signature = _signature(defaults, function, class_name)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = signature.replace(
        parameters=[self_param, *signature.parameters.values()])

    return type(class_name, (_FunctionLoss,), {
        "__init__": __init__, "_function": function, "_params": _params,
        "get_config": get_config, "__doc__": doc, "__module__": __name__,
        "__signature__": signature,
    })


def _signature(defaults: dict, function: str, class_name: str) -> Any:
    params = [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v)
              for k, v in defaults.items()]
    tail = {"reduction": "sum_over_batch_size", "name": function, "dtype": None}
    if class_name == "SparseCategoricalCrossentropy":  # Keras puts axis after reduction here
        params = params[:-1]
        tail = {"reduction": "sum_over_batch_size", "axis": -1, "name": function, "dtype": None}
    elif class_name in ("Dice", "Tversky"):  # ... and after name here
        params = params[:-1]
        tail = {"reduction": "sum_over_batch_size", "name": function, "axis": None, "dtype": None}
    params += [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v)
               for k, v in tail.items()]
    return inspect.Signature(params)


BinaryCrossentropy = _classification_loss(
    "BinaryCrossentropy", "binary_crossentropy",
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
    "``keras.losses.BinaryCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1, "
    "reduction='sum_over_batch_size', name='binary_crossentropy', dtype=None)``.")
BinaryFocalCrossentropy = _classification_loss(
    "BinaryFocalCrossentropy", "binary_focal_crossentropy",
    {"apply_class_balancing": False, "alpha": 0.25, "gamma": 2.0, "from_logits": False,
     "label_smoothing": 0.0, "axis": -1},
    "``keras.losses.BinaryFocalCrossentropy(apply_class_balancing=False, alpha=0.25, gamma=2.0, "
    "from_logits=False, label_smoothing=0.0, axis=-1, reduction='sum_over_batch_size', "
    "name='binary_focal_crossentropy', dtype=None)``.")
CategoricalCrossentropy = _classification_loss(
    "CategoricalCrossentropy", "categorical_crossentropy",
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
    "``keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1, "
    "reduction='sum_over_batch_size', name='categorical_crossentropy', dtype=None)``.")
CategoricalFocalCrossentropy = _classification_loss(
    "CategoricalFocalCrossentropy", "categorical_focal_crossentropy",
    {"alpha": 0.25, "gamma": 2.0, "from_logits": False, "label_smoothing": 0.0, "axis": -1},
    "``keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, from_logits=False, "
    "label_smoothing=0.0, axis=-1, reduction='sum_over_batch_size', "
    "name='categorical_focal_crossentropy', dtype=None)``.")
SparseCategoricalCrossentropy = _classification_loss(
    "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
    {"from_logits": False, "ignore_class": None, "axis": -1},
    "``keras.losses.SparseCategoricalCrossentropy(from_logits=False, ignore_class=None, "
    "reduction='sum_over_batch_size', axis=-1, name='sparse_categorical_crossentropy', "
    "dtype=None)``. Positions labelled ``ignore_class`` are masked: the mean is over valid "
    "positions and an all-ignored batch gives 0.")
KLDivergence = _classification_loss(
    "KLDivergence", "kl_divergence", {},
    "``keras.losses.KLDivergence(reduction='sum_over_batch_size', name='kl_divergence', "
    "dtype=None)``: both arguments are probabilities, clipped to [1e-7, 1].")
Poisson = _classification_loss(
    "Poisson", "poisson", {},
    "``keras.losses.Poisson(reduction='sum_over_batch_size', name='poisson', dtype=None)``.")


def hinge(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.hinge``: ``mean(max(1 - y·ŷ, 0))`` over the last axis; 0/1 labels become
    ±1 only if every label is 0 or 1."""
    return _call_function("hinge", y_true, y_pred)


def squared_hinge(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.squared_hinge``: ``mean(max(1 - y·ŷ, 0)²)`` over the last axis."""
    return _call_function("squared_hinge", y_true, y_pred)


def categorical_hinge(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.categorical_hinge``: ``max(max((1-y)·ŷ) - Σ y·ŷ + 1, 0)`` with one-hot
    ``y``; Keras's formula, which treats the true class as a 0 score in the max (so with every
    wrong-class score negative it is not the Crammer–Singer hinge; see
    ``polyloss.categorical_hinge``)."""
    return _call_function("categorical_hinge", y_true, y_pred)


Hinge = _classification_loss(
    "Hinge", "hinge", {},
    "``keras.losses.Hinge(reduction='sum_over_batch_size', name='hinge', dtype=None)``.")
SquaredHinge = _classification_loss(
    "SquaredHinge", "squared_hinge", {},
    "``keras.losses.SquaredHinge(reduction='sum_over_batch_size', name='squared_hinge', "
    "dtype=None)``.")
CategoricalHinge = _classification_loss(
    "CategoricalHinge", "categorical_hinge", {},
    "``keras.losses.CategoricalHinge(reduction='sum_over_batch_size', name='categorical_hinge', "
    "dtype=None)``.")


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    """``keras.losses.cosine_similarity``: ``-Σ normalize(y_true)·normalize(y_pred)`` along ``axis``
    (a loss in [-1, 1]; a zero vector gives 0)."""
    return _call_function("cosine_similarity", y_true, y_pred, axis=axis)


CosineSimilarity = _classification_loss(
    "CosineSimilarity", "cosine_similarity", {"axis": -1},
    "``keras.losses.CosineSimilarity(axis=-1, reduction='sum_over_batch_size', "
    "name='cosine_similarity', dtype=None)``: the negative cosine similarity.")


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Any:
    """``keras.losses.dice``: ``1 - 2·Σ y·ŷ / (Σy + Σŷ + 1e-7)`` over ``axis`` (all axes by
    default: one value for the whole batch)."""
    return _call_function("dice", y_true, y_pred, axis=axis)


def tversky(y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis: Any = None) -> Any:
    """``keras.losses.tversky``: ``1 - Σyŷ / (Σyŷ + α·Σ(1-ŷ)y + β·Σŷ(1-y) + 1e-7)`` over ``axis``."""
    return _call_function("tversky", y_true, y_pred, alpha=alpha, beta=beta, axis=axis)


Dice = _classification_loss(
    "Dice", "dice", {"axis": None},
    "``keras.losses.Dice(reduction='sum_over_batch_size', name='dice', axis=None, dtype=None)``.")
Tversky = _classification_loss(
    "Tversky", "tversky", {"alpha": 0.5, "beta": 0.5, "axis": None},
    "``keras.losses.Tversky(alpha=0.5, beta=0.5, reduction='sum_over_batch_size', name='tversky', "
    "axis=None, dtype=None)``.")


# ---- sequence: CTC ---------------------------------------------------------------------------

# TensorFlow's CTC writes log 0 as float32(log(1e-307)) for the initial states (ctc_ops.py)
_TF_CTC_LOG_ZERO = float(np.float32(np.log(1e-307)))
_CTC_NAMES = {"labels": "y_true", "label_lengths": "y_true's label counts",
              "input_lengths": "y_pred's frame count"}


def _keras_ctc(y_true: Any, y_pred: Any) -> Any:
    """Keras's ``ctc`` on arrays of one namespace: logits ``(B, T, C)``, labels ``(B, S)``
    with 0 as both blank and padding; every sequence uses all ``T`` frames."""
    backend = backend_of(y_pred, y_true, names=("y_pred", "y_true"))
    xp = backend.xp
    if len(y_true.shape) != 2:
        raise ValueError("Targets `y_true` are expected to be a tensor of shape `(batch_size, max_length)` "
                         f"in integer format. Received: y_true.shape={tuple(y_true.shape)}")
    if len(y_pred.shape) != 3:
        raise ValueError("Logits `y_pred` are expected to be a tensor of shape `(batch_size, max_length, "
                         f"num_classes)`. Received: y_pred.shape={tuple(y_pred.shape)}")
    batch, frames, _ = y_pred.shape
    labels = sequence.labels_array(backend, y_true, "y_true", y_pred)
    if labels.shape[0] != batch:
        raise ValueError(f"polyloss: y_true has {labels.shape[0]} rows but y_pred has batch size {batch}")
    padding = labels == 0
    if values_checked(backend, labels) and labels.shape[1] > 1:
        if bool(xp.any(padding[:, :-1] & ~padding[:, 1:])):
            raise ValueError("polyloss: y_true uses 0 as the blank and the padding, so 0 may only pad the "
                             "end of a row (Keras would read it as a label)")
    label_lengths = xp.sum(xp.astype(~padding, labels.dtype), axis=1)
    input_lengths = xp.full_like(label_lengths, frames)
    # the TensorFlow backend runs tf.nn.ctc_loss in float32 even for float64 inputs
    x = xp.astype(y_pred, xp.float32) if y_pred.dtype == xp.float64 else y_pred
    log_probs = cls_core.log_softmax(x, -1, xp)
    active = xp.ones_like(log_probs[:, :, 0]) > 0
    nll, _, _ = sequence.sequence_nll(
        backend, log_probs, labels, label_lengths, input_lengths, active, blank=0,
        log_zero=sequence.LOG_ZERO, start_floor=_TF_CTC_LOG_ZERO, names=_CTC_NAMES)
    return xp.astype(nll, y_pred.dtype) if nll.dtype != y_pred.dtype else nll


def ctc(y_true: Any, y_pred: Any) -> Any:
    """``keras.losses.ctc(y_true, y_pred)``: CTC per sequence ``(B,)`` on logits ``y_pred``
    ``(B, T, C)`` against integer labels ``y_true`` ``(B, S)``. Class 0 is the blank and
    also the padding (a row's length is its number of non-zero labels); every sequence uses
    all ``T`` frames. A label sequence whose repeats do not fit gives a large finite value
    (TensorFlow's log 0 is ``log(1e-307)``), not ``inf``. Computed in float32 for float64
    input, as Keras's TensorFlow backend does.
    """
    with backend_of(y_pred, y_true, names=("y_pred", "y_true")).scope():
        p = prepare(y_pred, y_true, names=_NAMES, integer_target=True)
        return finish(p, _keras_ctc(p.target, p.pred))


class CTC(Loss):
    """``keras.losses.CTC(reduction='sum_over_batch_size', name='ctc', dtype=None)``: the mean
    over the batch of ``ctc(y_true, y_pred)`` (no division by label length)."""

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "ctc", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        xp = backend_of(y_pred).xp
        y_true, y_pred = squeeze_or_expand_to_same_rank(xp, y_true, y_pred)
        return _keras_ctc(y_true, y_pred)


# ---- metric learning: Circle; generalized cross-entropy ----

def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"polyloss: {name} must be a finite real number, got {value!r}")
    return value


def _check_whole_labels(backend: Any, labels: Any, name: str) -> None:
    """``ValueError`` naming ``name`` for floating labels that are not whole numbers (Keras
    truncates them with its integer cast); only where the values can be read."""
    if not backend.is_floating(labels.dtype) or not values_checked(backend, labels):
        return
    xp = backend.xp
    if bool(xp.any(labels != xp.floor(labels))):
        raise ValueError(f"polyloss: {name} holds integer labels, but some values are not whole "
                         "numbers (or are NaN/inf)")


def _label_vector(xp: Any, labels: Any, n: Any, name: str, rows_of: str) -> Any:
    """Labels of shape ``(n,)`` or ``(n, 1)`` (as Keras's ``build_pos_neg_masks`` accepts) as
    ``(n,)``."""
    shape = tuple(labels.shape)
    if len(shape) == 2 and shape[1] == 1:
        labels = xp.reshape(labels, (shape[0],))
    elif len(shape) != 1:
        raise ValueError(f"polyloss: {name} must have shape (N,) or (N, 1), got {shape}")
    if labels.shape[0] is not None and n is not None and labels.shape[0] != n:
        raise ValueError(f"polyloss: {name} has {labels.shape[0]} labels but {rows_of} has {n} rows")
    return labels


def _reduce_logsumexp_rows(xp: Any, x: Any, stop_gradient: Callable[[Any], Any]) -> Any:
    """``tf.math.reduce_logsumexp(x, axis=1)``: ``log(Σ exp(x - m)) + m`` with ``m`` the row
    maximum (0 where it is not finite) held constant; a row of ``-inf`` gives ``-inf`` with a
    zero gradient (the log is taken of a safe value there)."""
    if x.shape[1] == 0:  # no columns (an empty batch): -inf, as TensorFlow gives
        return xp.sum(x, axis=1) - math.inf
    m = xp.max(x, axis=1, keepdims=True)
    m = stop_gradient(xp.where(xp.isfinite(m), m, 0.0))
    s = xp.sum(xp.exp(x - m), axis=1)
    zero = s <= 0  # (a NaN sum stays NaN)
    lse = xp.where(zero, -math.inf, xp.log(xp.where(zero, 1.0, s)))
    return lse + xp.reshape(m, (-1,))


def _circle(xp, y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True,
            gamma=80, margin=0.4):
    """``keras.losses.circle`` on one namespace: ``(per-sample loss, loss > 0)``."""
    backend = backend_of(y_pred)
    if len(y_pred.shape) != 2:
        raise ValueError(f"polyloss: y_pred must be a 2-D array of embeddings (N, D), got shape "
                         f"{tuple(y_pred.shape)}")
    ref = y_pred if ref_embeddings is None else ref_embeddings
    if len(ref.shape) != 2 or (ref.shape[1] is not None and y_pred.shape[1] is not None
                               and ref.shape[1] != y_pred.shape[1]):
        raise ValueError(f"polyloss: ref_embeddings must have shape (M, {y_pred.shape[1]}) like "
                         f"y_pred's rows, got {tuple(ref.shape)}")
    query = _label_vector(xp, y_true, y_pred.shape[0], "y_true", "y_pred")
    if ref_labels is None:
        keys = query
        if ref_embeddings is not None:
            _label_vector(xp, y_true, ref.shape[0], "y_true (the reference labels when "
                          "ref_labels is None)", "ref_embeddings")
    else:
        keys = _label_vector(xp, ref_labels, ref.shape[0], "ref_labels",
                             "y_pred" if ref_embeddings is None else "ref_embeddings")
    _check_whole_labels(backend, query, "y_true")
    if ref_labels is not None:
        _check_whole_labels(backend, keys, "ref_labels")
    query, keys = as_index(backend, query), as_index(backend, keys)

    positive_mask = xp.expand_dims(query, axis=1) == xp.expand_dims(keys, axis=0)
    negative_mask = xp.logical_not(positive_mask)
    if remove_diagonal:
        device = backend.device(y_pred)
        rows = xp.arange(query.shape[0], dtype=xp.int64, device=device)
        cols = xp.arange(keys.shape[0], dtype=xp.int64, device=device)
        off_diagonal = xp.expand_dims(rows, axis=1) != xp.expand_dims(cols, axis=0)
        positive_mask = xp.logical_and(positive_mask, off_diagonal)
    pos = xp.astype(positive_mask, y_pred.dtype)
    neg = xp.astype(negative_mask, y_pred.dtype)

    # Keras's constants, computed as it does (in Python, then taken in the array's dtype)
    optim_pos, optim_neg = margin, 1 + margin
    delta_pos, delta_neg = margin, 1 - margin
    distance = 1.0 - y_pred @ xp.permute_dims(ref, (1, 0))
    # ops.maximum(x, 0): TensorFlow's gradient goes to x at a tie, as `where(x < 0, 0, x)`'s
    distance = xp.where(distance < 0.0, 0.0, distance)
    pos_weights = (optim_pos + distance) * pos
    pos_weights = xp.where(pos_weights < 0.0, 0.0, pos_weights)
    neg_weights = (optim_neg - distance) * neg
    neg_weights = xp.where(neg_weights < 0.0, 0.0, neg_weights)
    pos_wdists = -1 * gamma * pos_weights * (delta_pos - distance)
    neg_wdists = gamma * neg_weights * (delta_neg - distance)
    sg = backend.stop_gradient
    p_loss = _reduce_logsumexp_rows(xp, xp.where(positive_mask, pos_wdists, -math.inf), sg)
    n_loss = _reduce_logsumexp_rows(xp, xp.where(negative_mask, neg_wdists, -math.inf), sg)
    loss = softplus(p_loss + n_loss, xp)
    return loss, loss > 0.0


def circle(y_true: Any, y_pred: Any, ref_labels: Any = None, ref_embeddings: Any = None,
           remove_diagonal: bool = True, gamma: float = 80, margin: float = 0.4) -> Any:
    """``keras.losses.circle``: the Circle loss (Sun et al., 2020) of integer labels ``y_true``
    ``(N,)`` and **L2-normalised** embeddings ``y_pred`` ``(N, D)`` (not normalised here, as in
    Keras), one value per sample.

    With ``d = max(1 - y_pred·refᵀ, 0)`` (``ref = ref_embeddings``, default ``y_pred``; its labels
    ``ref_labels``, default ``y_true``), positives ``P`` (same label, the diagonal removed with
    ``remove_diagonal``) and negatives ``N`` (other labels)::

        lp = logsumexp_{j∈P} -γ·max(m + d, 0)·(m - d)
        ln = logsumexp_{j∈N}  γ·max(1 + m - d, 0)·(1 - m - d)
        loss = softplus(lp + ln)

    A sample without positives or without negatives has loss 0; Keras attaches the mask
    ``loss > 0`` to the result, which :class:`Circle` uses to average over the non-zero samples.
    Equivalents: ``keras.losses.circle`` only (no torch/Gluon/optax loss).
    """
    _check_number("gamma", gamma)
    _check_number("margin", margin)
    names = ("y_pred", "y_true", "ref_embeddings", "ref_labels")
    with backend_of(y_pred, y_true, ref_embeddings, ref_labels, names=names).scope():
        p = prepare(y_pred, y_true, names=_NAMES, integer_target=True)
        xp, pred = p.xp, p.pred
        ref = labels = None
        if ref_embeddings is not None:
            ref = prepare_extra(p, ref_embeddings, "ref_embeddings",
                                dtype=getattr(ref_embeddings, "dtype", None))
            if not p.backend.is_floating(ref.dtype):
                raise TypeError(f"polyloss: ref_embeddings must be a floating-point array, got "
                                f"dtype {ref.dtype}")
            if ref.dtype != pred.dtype:  # Keras's matmul promotes (float32 with float64: float64)
                p = p._replace(out_dtype=xp.result_type(p.out_dtype, ref.dtype))
                compute = xp.result_type(pred.dtype, ref.dtype)
                if compute == xp.float16 or compute == getattr(xp, "bfloat16", None):
                    compute = xp.float32
                pred, ref = xp.astype(pred, compute), xp.astype(ref, compute)
        if ref_labels is not None:
            labels = prepare_extra(p, ref_labels, "ref_labels", dtype=getattr(ref_labels, "dtype", None))
        loss, _ = _circle(xp, p.target, pred, labels, ref, remove_diagonal=remove_diagonal,
                          gamma=gamma, margin=margin)
        return finish(p, loss)


class Circle(_FunctionLoss):
    """``keras.losses.Circle(gamma=80.0, margin=0.4, remove_diagonal=True,
    reduction='sum_over_batch_size', name='circle', dtype=None)``, called
    ``(y_true, y_pred, sample_weight=None)`` with integer labels and L2-normalised embeddings
    (see :func:`circle`). Samples whose loss is 0 (no positive or no negative) are masked out,
    as Keras does: ``'sum_over_batch_size'``/``'mean'`` average over the samples with a non-zero
    loss (0 if there is none), ``'mean_with_sample_weight'`` divides by their weights.
    ``get_config`` adds ``gamma``, ``margin`` and ``remove_diagonal``."""

    _function = "circle"

    def __init__(self, gamma: float = 80.0, margin: float = 0.4, remove_diagonal: bool = True,
                 reduction: Any = "sum_over_batch_size", name: str = "circle", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.gamma = _check_number("gamma", gamma)
        self.margin = _check_number("margin", margin)
        self.remove_diagonal = remove_diagonal

    def _params(self) -> dict:
        return {"gamma": self.gamma, "margin": self.margin, "remove_diagonal": self.remove_diagonal}

    def get_config(self) -> dict:
        return {**Loss.get_config(self), **self._params()}


def _categorical_generalized_cross_entropy(xp, y_true, y_pred, q):
    """``(1 - p_y^q) / q`` with ``p_y = Σ_c y_pred·one_hot(y_true)`` (Keras's one-hot product, so
    a zero ``p_y`` gives Keras's gradient: ``-inf`` for the true class and NaN for the others)."""
    ndim = len(y_pred.shape)
    if ndim < 1:
        raise ValueError("polyloss: y_pred must be at least rank 1 (classes on the last axis)")
    if len(y_true.shape) == ndim and ndim >= 2 and y_true.shape[-1] == 1:
        y_true = xp.squeeze(y_true, axis=-1)  # (N, 1) labels (Keras broadcasts them to (N, N))
    _check_index_labels_shape(y_true, y_pred)
    backend = backend_of(y_pred)
    num_classes = y_pred.shape[-1]
    check_class_labels(backend, y_true, num_classes, None, "y_true")
    labels = as_index(backend, y_true)
    classes = xp.arange(num_classes, dtype=labels.dtype, device=backend.device(y_pred))
    one_hot = xp.astype(xp.expand_dims(labels, axis=-1) == classes, y_pred.dtype)
    p = xp.sum(y_pred * one_hot, axis=-1)
    loss = (1.0 - p ** q) / q
    in_range = xp.logical_and(labels >= 0, labels < num_classes)
    return xp.where(in_range, loss, math.nan), None


def _check_q(q: Any, strict: bool) -> float:
    if strict:
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
            raise ValueError("q must be in the interval (0, 1)")
        return q
    _check_number("q", q)
    if q == 0:
        raise ValueError("polyloss: q must not be 0 (the loss divides by q)")
    return q


def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Any:
    """``keras.losses.categorical_generalized_cross_entropy``: the generalized cross-entropy
    (Zhang & Sabuncu, 2018) of **integer** labels ``y_true`` (``y_pred``'s shape without the last
    axis, or with a trailing 1) and probabilities ``y_pred``::

        loss = (1 - p_y^q) / q        (q → 0: cross-entropy; q = 1: MAE of the one-hot)

    one value per sample, no clipping or epsilon. ``q`` has no default, as in Keras.
    Equivalents: ``keras.losses.categorical_generalized_cross_entropy`` only.
    """
    q = _check_q(q, strict=False)
    with backend_of(y_pred, y_true, names=_NAMES).scope():
        p = prepare(y_pred, y_true, names=_NAMES, integer_target=True)
        loss, _ = _categorical_generalized_cross_entropy(p.xp, p.target, p.pred, q)
        return finish(p, loss)


class CategoricalGeneralizedCrossEntropy(_FunctionLoss):
    """``keras.losses.CategoricalGeneralizedCrossEntropy(q=0.5, reduction='sum_over_batch_size',
    name='categorical_generalized_cross_entropy', dtype=None)``: see
    :func:`categorical_generalized_cross_entropy`; ``q`` outside ``(0, 1)`` raises ``ValueError``,
    as in Keras. ``get_config`` adds ``q``."""

    _function = "categorical_generalized_cross_entropy"

    def __init__(self, q: float = 0.5, reduction: Any = "sum_over_batch_size",
                 name: str = "categorical_generalized_cross_entropy", dtype: Any = None) -> None:
        self.q = _check_q(q, strict=True)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _params(self) -> dict:
        return {"q": self.q}

    def get_config(self) -> dict:
        return {**Loss.get_config(self), "q": self.q}


_CLASSIFICATION["circle"] = _circle
_CLASSIFICATION["categorical_generalized_cross_entropy"] = _categorical_generalized_cross_entropy


def _register_for_keras() -> None:
    """Register every loss class with Keras's serialization as ``"polyloss>ClassName"``, so
    that ``keras.models.load_model`` finds the polyloss class in a saved model's config."""
    if _keras is None:
        return
    register = _keras.saving.register_keras_serializable(package="polyloss")
    for name in ("Loss", *__all__):
        obj = globals()[name]
        if isinstance(obj, type) and issubclass(obj, Loss):
            register(obj)


_register_for_keras()
