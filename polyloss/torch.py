"""PyTorch's losses, reproduced exactly, on arrays of any backend.

Same names, arguments, defaults, argument order and output shapes as ``torch.nn`` and
``torch.nn.functional`` 2.13 (the deprecated ``size_average``/``reduce`` included). Each
accepts NumPy, torch, TensorFlow, MXNet, JAX, ... arrays and returns the same kind.

Deliberate differences from torch (documented in docs/conventions.md):

- ``input`` and ``target`` of different shapes raise ``ValueError``; torch only warns and
  broadcasts (``(N, 1)`` against ``(N,)`` silently gives an ``(N, N)`` loss).
- Invalid ``delta``/``beta`` raise ``ValueError`` when the loss is built or called
  (torch raises ``RuntimeError`` from the kernel).
- float16/bfloat16 inputs are computed in float32 and returned in their own dtype.
- Class indices outside ``[0, C)`` (other than ``ignore_index``) raise ``ValueError`` naming
  ``target`` in eager calls (torch raises ``IndexError``/a device assert); under
  ``torch.compile`` they make their position NaN. Any integer dtype is accepted for class
  indices (torch wants int64), and floating class indices of the right shape are accepted
  if they are whole numbers.
- ``input``/``target``/``var`` that would broadcast raise ``ValueError`` (torch broadcasts
  ``kl_div``, ``poisson_nll_loss`` and ``gaussian_nll_loss`` inputs silently).
- ``cross_entropy`` with probability targets: a zero target mass contributes exactly 0, also
  against a ``-inf`` logit (torch gives NaN there).
- ``binary_cross_entropy``: the gradient w.r.t. ``target`` where ``input`` is exactly 0 or 1
  is ±100 (the clamped logs) instead of torch's ±inf; the gradient w.r.t. ``input`` is
  torch's, ``(p - y) / max(p(1 - p), 1e-12)``.
- Under ``torch.compile`` the ``kl_div`` ``'mean'`` and legacy-flag warnings are not issued
  (Dynamo cannot trace ``warnings.warn``; torch's own are graph nodes that warn per call).
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from polyloss._inputs import check_same_shape, finish, prepare, prepare_extra, values_checked
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.canonical import classification as canonical
from polyloss.canonical import sequence
from polyloss.core import classification as cls_core
from polyloss.core import embedding as embedding_core
from polyloss.core import margin as margin_core
from polyloss.core import regression as core
from polyloss.core._helpers import arange_like, has_elements, kernel
from polyloss.core.fused import fused_reduction
from polyloss.reduction import REDUCTIONS, align_weight, mean_or_nan

__all__ = [
    "L1Loss", "MSELoss", "HuberLoss", "SmoothL1Loss",
    "l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss",
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "KLDivLoss", "PoissonNLLLoss",
    "GaussianNLLLoss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss",
    "kl_div", "poisson_nll_loss", "gaussian_nll_loss", "sigmoid_focal_loss",
    "HingeEmbeddingLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss",
    "SoftMarginLoss", "MarginRankingLoss",
    "hinge_embedding_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss",
    "multi_margin_loss", "soft_margin_loss", "margin_ranking_loss",
    "CosineEmbeddingLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
    "cosine_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
    "pairwise_distance", "PairwiseDistance",
    "CTCLoss", "ctc_loss",
]

_NAMES = ("input", "target", "weight")


def _legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    """torch's ``_Reduction.legacy_get_string``: the old flags mapped onto ``reduction``."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    _warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' "
        "instead.",
        stacklevel=3,
    )
    return ret


def _warn(message: str, stacklevel: int) -> None:
    """``warnings.warn(message, UserWarning)`` from the caller ``stacklevel`` frames up, except
    while ``torch.compile`` traces: Dynamo cannot trace ``warnings.warn`` (a graph break, an
    error under ``fullgraph=True``), so a compiled call does not warn (torch's own warnings
    are graph nodes there and warn on every call)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.compiler.is_compiling():
        return
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _autocast_to_float32(fn: _Fn) -> _Fn:
    """torch autocast's float32 policy for ``fn``: inside ``torch.autocast`` (any device type
    where it is enabled), float16/bfloat16 torch-tensor arguments are cast to float32 first,
    so the loss comes out in float32 as torch's does. torch lists exactly these losses among
    its "ops that autocast to float32" (checked on CPU: each returns float32 for bfloat16
    inputs); its Python-level losses (``gaussian_nll_loss``, ``multilabel_soft_margin_loss``,
    ``triplet_margin_with_distance_loss``, ``pairwise_distance``) keep the input dtype and are
    not wrapped. Other arrays and other dtypes pass through untouched."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        torch = sys.modules.get("torch")
        # every call: only a float16/bfloat16 tensor argument can need the cast
        if torch is not None and (_any_half(torch, args) or _any_half(torch, kwargs.values())):
            args = tuple(_float32_under_autocast(torch, a) for a in args)
            kwargs = {k: _float32_under_autocast(torch, v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _any_half(torch: Any, values: Any) -> bool:
    tensor, half = torch.Tensor, (torch.float16, torch.bfloat16)
    for x in values:
        if isinstance(x, tensor) and x.dtype in half:
            return True
    return False


def _float32_under_autocast(torch: Any, x: Any) -> Any:
    if (isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.bfloat16)
            and torch.amp.is_autocast_available(x.device.type)
            and torch.is_autocast_enabled(x.device.type)):
        return x.float()
    return x


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _elementwise(
    core_fn: Any, input: Any, target: Any, reduction: str, weight: Any,
    weight_mean: str, **params: Any,
) -> Any:
    """torch's reduction of an elementwise loss, with its two weighted-mean rules.

    ``weight_mean="sum_of_weights"``: ``Σ w·l / Σ w`` (``mse_loss``, ``l1_loss``);
    ``"count"``: ``Σ w·l / N`` (``huber_loss``).
    """
    _check_reduction(reduction)
    with backend_of(input, target, weight, names=_NAMES).scope():
        p = prepare(input, target, weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        if p.weight is None:
            fused = fused_reduction(core_fn, p.pred, p.target, reduction, xp=p.xp, **params)
            if fused is not None:
                return finish(p, fused)
        loss = core_fn(p.pred, p.target, xp=p.xp, **params)
        if p.weight is not None:
            if tuple(p.weight.shape) != tuple(p.pred.shape):
                raise ValueError(
                    "Weights and input must have the same size: weight has shape "
                    f"{tuple(p.weight.shape)}, input has shape {tuple(p.pred.shape)}"
                )
            loss = loss * p.weight
        xp = p.xp
        if reduction == "none":
            out = loss
        elif reduction == "sum":
            out = xp.sum(loss)
        elif p.weight is not None and weight_mean == "sum_of_weights":
            out = xp.sum(loss) / xp.sum(p.weight)
        else:
            out = mean_or_nan(xp, loss)
        return finish(p, out)


@_autocast_to_float32
def l1_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Any = None,
) -> Any:
    """``torch.nn.functional.l1_loss``: ``|input - target|``; with ``weight``, mean = ``Σw·l/Σw``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _elementwise(core.absolute_error, input, target, reduction, weight, "sum_of_weights")


@_autocast_to_float32
def mse_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Any = None,
) -> Any:
    """``torch.nn.functional.mse_loss``: ``(input - target)²``; with ``weight``, mean = ``Σw·l/Σw``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _elementwise(core.squared_error, input, target, reduction, weight, "sum_of_weights")


@_autocast_to_float32
def huber_loss(
    input: Any, target: Any, reduction: str = "mean", delta: float = 1.0, weight: Any = None,
) -> Any:
    """``torch.nn.functional.huber_loss``: ``½r²`` if ``|r| < delta`` else ``delta(|r| - ½delta)``.

    With ``weight``, the mean is ``Σ w·l / N`` (unlike ``mse_loss``/``l1_loss``).
    """
    _check_delta(delta)
    return _elementwise(core.huber, input, target, reduction, weight, "count", delta=float(delta))


@_autocast_to_float32
def smooth_l1_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", beta: float = 1.0,
) -> Any:
    """``torch.nn.functional.smooth_l1_loss``: ``½r²/beta`` if ``|r| < beta`` else ``|r| - ½beta``.

    ``beta = 0`` is L1. Equal to ``huber_loss(delta=beta) / beta``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_beta(beta)
    return _elementwise(core.smooth_l1, input, target, reduction, None, "count", beta=float(beta))


def _check_delta(delta: Any) -> None:
    if not isinstance(delta, (int, float)) or not delta > 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got {delta!r}")


def _check_beta(beta: Any) -> None:
    if not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got {beta!r}")


def _module_base() -> type:
    """``torch.nn.Module`` when torch can be imported (the loss classes are then drop-ins for
    ``torch.nn``'s), ``object`` otherwise (the classes still work on every other backend)."""
    try:
        import torch
    except ImportError:
        return object
    return torch.nn.Module


_ModuleBase: Any = _module_base()
#: Constructor arguments that ``torch.nn`` stores with ``register_buffer`` (``_WeightedLoss``'s
#: ``weight``, ``BCEWithLogitsLoss``'s ``weight`` and ``pos_weight``).
_TENSOR_ARGUMENTS = frozenset({"weight", "pos_weight"})


class _Module(_ModuleBase):
    """The common base of the classes: ``torch.nn.Module`` when torch can be imported.

    Then calls go through ``nn.Module.__call__`` (hooks, ``torch.compile``), and a torch-tensor
    ``weight``/``pos_weight`` (or ``None``) is a buffer as in ``torch.nn`` (same ``state_dict``
    keys; ``.to(device)``/``.double()`` move and cast it). Any other array type stays a plain
    attribute (a buffer holds torch tensors only). Without torch, a plain object with the
    same ``__call__``/``forward``/``repr``.
    """

    if _ModuleBase is object:
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self.forward(*args, **kwargs)

        def __repr__(self) -> str:
            return f"{type(self).__name__}({self.extra_repr()})"

        def extra_repr(self) -> str:
            """Empty, as ``torch.nn``'s losses (their repr is ``Name()``)."""
            return ""
    else:
        def __setattr__(self, name: str, value: Any) -> None:
            # weight/pos_weight: a torch tensor or None is a buffer (torch.nn registers them so),
            # any other array a plain attribute; switching between the two moves the entry
            if name in _TENSOR_ARGUMENTS and "_buffers" in self.__dict__:
                import torch

                buffers = self.__dict__["_buffers"]
                if value is None or isinstance(value, torch.Tensor):
                    if name not in buffers:
                        self.__dict__.pop(name, None)
                        self.register_buffer(name, value)
                        return
                else:
                    buffers.pop(name, None)
            super().__setattr__(name, value)


class _Loss(_Module):
    """``torch.nn.modules.loss._Loss``: the reduction argument and its legacy flags."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            self.reduction = _legacy_reduction(size_average, reduce)
        else:
            self.reduction = reduction

    def forward(self, input: Any, target: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class L1Loss(_Loss):
    """``torch.nn.L1Loss(size_average=None, reduce=None, reduction='mean')``."""

    def forward(self, input: Any, target: Any) -> Any:
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """``torch.nn.MSELoss(size_average=None, reduce=None, reduction='mean')``."""

    def forward(self, input: Any, target: Any) -> Any:
        return mse_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """``torch.nn.HuberLoss(reduction='mean', delta=1.0)``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Any, target: Any) -> Any:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """``torch.nn.SmoothL1Loss(size_average=None, reduce=None, reduction='mean', beta=1.0)``."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Any, target: Any) -> Any:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)



# ---- classification ---------------------------------------------------------------------

_LOG_FLOOR = -100.0  # torch clamps each BCE log term at -100 (also in float64)
_BCE_GRAD_EPS = float(np.float32(1e-12))  # BCE backward divides by max(p(1-p), 1e-12f)


def _reduce(xp: Any, loss: Any, reduction: str) -> Any:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.sum(loss)
    return mean_or_nan(xp, loss)


def _elementwise_weight(xp: Any, weight: Any, shape: tuple) -> Any:
    # torch expands ``weight`` to the input's shape (never the other way round)
    return align_weight(xp, weight, shape, "weight", prefix=False)


@_autocast_to_float32
def binary_cross_entropy(
    input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.binary_cross_entropy``:
    ``-w·(y·max(log p, -100) + (1-y)·max(log(1-p), -100))``; the mean is ``Σ w·l / N``.

    The gradient w.r.t. ``input`` is torch's hand-written ``(p - y) / max(p(1-p), 1e-12)``
    (so a perfect prediction at p ∈ {0, 1} has gradient 0 and a maximally wrong one ±1e12).
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    with backend_of(input, target, weight, names=_NAMES).scope():
        p = prepare(input, target, weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        _check_unit_interval(p.backend, p.pred, "input")
        _check_unit_interval(p.backend, p.target, "target")
        xp, sg = p.xp, p.backend.stop_gradient
        prob, y = p.pred, p.target
        fixed = sg(prob)
        value = -(y * cls_core.clamped_log(fixed, _LOG_FLOOR, xp)
                  + (1.0 - y) * _clamped_log1m(fixed, xp))
        slope = (fixed - y) / _max_scalar(xp, fixed * (1.0 - fixed), _BCE_GRAD_EPS)
        loss = value + (prob - fixed) * sg(slope)  # value unchanged; d/dp = torch's slope
        if p.weight is not None:
            loss = loss * _elementwise_weight(xp, p.weight, tuple(p.pred.shape))
        return finish(p, _reduce(xp, loss, reduction))


def _check_unit_interval(backend: Any, x: Any, name: str) -> None:
    """torch's check that every element of ``x`` lies in [0, 1] (NaN fails it, as in torch)."""
    if not values_checked(backend, x):
        return
    xp = backend.xp
    if not bool(xp.all(xp.logical_and(x >= 0, x <= 1))):
        raise ValueError(f"polyloss: all elements of {name} should be between 0 and 1 (torch's "
                         f"rule); got values from {float(xp.min(x))!r} to {float(xp.max(x))!r}")


def _clamped_log1m(p: Any, xp: Any) -> Any:
    """``max(log1p(-p), -100)`` (torch uses ``log1p``), with a safe value where ``p >= 1``
    (a NaN stays NaN)."""
    at_one = p >= 1.0
    value = xp.log1p(-xp.where(at_one, 0.0, p))
    return xp.where(xp.logical_or(at_one, value < _LOG_FLOOR), _LOG_FLOOR, value)


def _max_scalar(xp: Any, x: Any, low: float) -> Any:
    return xp.where(x < low, low, x)


def _torch_bce_with_logits(z: Any, y: Any, xp: Any, pos_weight: Any = None) -> Any:
    """torch's form ``(1-y)·z - L·log σ(z)``, ``L = 1 + (P-1)·y`` (its rounding reproduced)."""
    minus_log_sigmoid = -cls_core.log_sigmoid(z, xp)  # softplus(-z), a kernel where there is one
    if pos_weight is not None:
        minus_log_sigmoid = (1.0 + (pos_weight - 1.0) * y) * minus_log_sigmoid
    return (1.0 - y) * z + minus_log_sigmoid


@_autocast_to_float32
def binary_cross_entropy_with_logits(
    input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean", pos_weight: Any = None,
) -> Any:
    """``torch.nn.functional.binary_cross_entropy_with_logits``:
    ``w·((1-y)·z + (1 + (P-1)·y)·softplus(-z))``; ``pos_weight`` broadcasts on the last axis."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    names = _NAMES + ("pos_weight",)
    with backend_of(input, target, weight, pos_weight, names=names).scope():
        p = prepare(input, target, weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        shape = tuple(p.pred.shape)
        pw = prepare_extra(p, pos_weight, "pos_weight")
        if pw is not None:
            pw = align_weight(xp, pw, shape, "pos_weight", prefix=False)
        w = None if p.weight is None else _elementwise_weight(xp, p.weight, shape)
        fused = kernel(xp, "binary_cross_entropy_with_logits")
        if fused is not None and has_elements(p.pred):  # the same formula, in one call
            return finish(p, fused(p.pred, p.target, w, pw, reduction))
        loss = _torch_bce_with_logits(p.pred, p.target, xp, pw)
        if w is not None:
            loss = loss * w
        return finish(p, _reduce(xp, loss, reduction))


def _class_axis(input: Any) -> int:
    return 0 if len(input.shape) == 1 else 1


def _softmax_family(input: Any, target: Any, weight: Any, ignore_index: int, reduction: str,
                    label_smoothing: float, input_kind: str) -> Any:
    _check_reduction(reduction)
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    ndim = len(input.shape)
    if ndim == 0:
        raise ValueError("polyloss: input must have a class dimension, got a 0-d input")
    index_target = len(target.shape) == ndim - 1
    if not index_target:
        if input_kind == "log_probs":
            raise ValueError(
                f"polyloss: nll_loss takes class indices: target must have shape "
                f"{tuple(d for i, d in enumerate(input.shape) if i != _class_axis(input))}, got "
                f"{tuple(target.shape)}")
        if ignore_index != -100:
            raise ValueError("polyloss: ignore_index is not supported for probability (floating "
                             "point) targets")
    return canonical._categorical(
        input, target, input_kind=input_kind, loss_kind="ce", axis=_class_axis(input),
        class_weight=weight, ignore_index=ignore_index if index_target else None,
        label_smoothing=float(label_smoothing), log_clamp=None,
        reduction=reduction, sample_weight=None,
        normalizer="sum_of_weights" if index_target else "count", if_all_ignored="nan",
        names=("input", "target", "sample_weight"), class_weight_name="weight",
        zero_mass_is_zero=False,
    )


@_autocast_to_float32
def cross_entropy(
    input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """``torch.nn.functional.cross_entropy``: log-softmax over dim 1 (dim 0 for a 1-D input).

    Class-index targets ``(N, d1, ...)``: ``(1-ε)·w_y·(-log q_y) + (ε/C)·Σ_c w_c·(-log q_c)``,
    ignored positions give 0; the mean divides by ``Σ w_y`` over counted positions (NaN if
    none). Probability targets (``input``'s shape): ``Σ_c w_c·t'_c·(-log q_c)`` with
    ``t' = t(1-ε) + ε/C``, mean over positions.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _softmax_family(input, target, weight, ignore_index, reduction, label_smoothing, "logits")


@_autocast_to_float32
def nll_loss(
    input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.nll_loss``: ``-w_y·input[y]`` along dim 1, mean over ``Σ w_y``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _softmax_family(input, target, weight, ignore_index, reduction, 0.0, "log_probs")


_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


@_autocast_to_float32
def kl_div(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", log_target: bool = False,
) -> Any:
    """``torch.nn.functional.kl_div``: ``xlogy(t, t) - t·input`` (``exp(t)·(t - input)`` with
    ``log_target``), elementwise. ``"mean"`` divides by the number of elements (and warns, as
    torch does); ``"batchmean"`` by ``input.size(0)``, the mathematical KL per sample."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        _warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    with backend_of(input, target, names=_NAMES).scope():
        p = prepare(input, target, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        if log_target:
            loss = xp.exp(p.target) * (p.target - p.pred)
        else:
            loss = cls_core.xlogy(p.target, p.target, xp) - p.target * p.pred
        if reduction == "batchmean":
            total = xp.sum(loss)
            out = total / p.pred.shape[0] if len(p.pred.shape) else total
        else:
            out = _reduce(xp, loss, reduction)
        return finish(p, out)


@_autocast_to_float32
def poisson_nll_loss(
    input: Any, target: Any, log_input: bool = True, full: bool = False,
    size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None,
    reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.poisson_nll_loss``: ``exp(z) - y·z`` or ``r - y·log(r + eps)``,
    plus the Stirling term ``y·log y - y + ½·log(2πy)`` where ``y > 1`` if ``full``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    with backend_of(input, target, names=_NAMES).scope():
        p = prepare(input, target, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        loss = cls_core.poisson_nll(p.pred, p.target, log_input=log_input, eps=float(eps), xp=xp)
        if full:
            loss = loss + cls_core.stirling_term(p.target, xp)
        return finish(p, _reduce(xp, loss, reduction))


def gaussian_nll_loss(
    input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6,
    reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.gaussian_nll_loss``: ``½·(log v + (input - target)²/v)`` (+ ``½·log 2π``
    if ``full``), ``v = max(var, eps)`` clamped without gradient tracking, as torch does (the
    gradient w.r.t. ``var`` passes straight through the clamp). ``var`` may be a number."""
    if reduction not in REDUCTIONS:  # torch says "<reduction> is not valid" here
        raise ValueError(f"{reduction} is not a valid value for reduction")
    names = _NAMES[:2] + ("var",)
    with backend_of(input, target, var, names=names).scope():
        p = prepare(input, target, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        if isinstance(var, (int, float)):
            if var < 0:
                raise ValueError("var has negative entry/entries")
            var = float(var) * xp.ones_like(p.pred)
        v = canonical.shape_variance(p, var)
        clamped = xp.where(v < eps, float(eps), v)
        v = v + p.backend.stop_gradient(clamped - v)
        loss = cls_core.gaussian_nll(p.pred, p.target, v, full=full, xp=xp)
        return finish(p, _reduce(xp, loss, reduction))


def sigmoid_focal_loss(
    inputs: Any, targets: Any, alpha: float = 0.25, gamma: float = 2, reduction: str = "none",
) -> Any:
    """``torchvision.ops.sigmoid_focal_loss``: ``α_t·(1-p_t)^γ·BCE(logits)``, α-balancing on by
    default (``alpha < 0`` turns it off), **unreduced** by default."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid Value for arg 'reduction': '{reduction} \n Supported reduction modes: "
            "'none', 'mean', 'sum'")
    names = ("inputs", "targets", "weight")
    with backend_of(inputs, targets, names=names).scope():
        p = prepare(inputs, targets, names=names)
        check_same_shape(p.pred, p.target, names[:2])
        xp = p.xp
        y = p.target
        prob = cls_core.sigmoid(p.pred, xp)
        ce = _torch_bce_with_logits(p.pred, y, xp)
        p_t = prob * y + (1.0 - prob) * (1.0 - y)
        loss = ce * ((1.0 - p_t) ** gamma)
        if alpha >= 0:
            loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
        return finish(p, _reduce(xp, loss, reduction))


class _WeightedLoss(_Loss):
    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = weight


class BCELoss(_WeightedLoss):
    """``torch.nn.BCELoss(weight=None, size_average=None, reduce=None, reduction='mean')``."""

    def forward(self, input: Any, target: Any) -> Any:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """``torch.nn.BCEWithLogitsLoss(weight=None, size_average=None, reduce=None,
    reduction='mean', pos_weight=None)``."""

    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Any, target: Any) -> Any:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """``torch.nn.CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100,
    reduce=None, reduction='mean', label_smoothing=0.0)``."""

    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Any, target: Any) -> Any:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """``torch.nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction='mean')``."""

    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Any, target: Any) -> Any:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class KLDivLoss(_Loss):
    """``torch.nn.KLDivLoss(size_average=None, reduce=None, reduction='mean', log_target=False)``."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Any, target: Any) -> Any:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    """``torch.nn.PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-08,
    reduce=None, reduction='mean')``."""

    def __init__(self, log_input: bool = True, full: bool = False,
                 size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Any, target: Any) -> Any:
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """``torch.nn.GaussianNLLLoss(*, full=False, eps=1e-06, reduction='mean')``, called
    ``(input, target, var)``."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Any, target: Any, var: Any) -> Any:
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                 reduction=self.reduction)



# ---- margin losses ----------------------------------------------------------------------
# torch's C++ kernels count a hinge term only where it is > 0, so the gradient at a kink
# is 0 for MultiMargin and MultiLabelMargin ("inactive" ties); hinge_embedding and
# margin_ranking use clamp_min, whose gradient passes at the tie ("active").

def _legacy(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    return reduction


@_autocast_to_float32
def hinge_embedding_loss(
    input: Any, target: Any, margin: float = 1.0, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.hinge_embedding_loss``: ``x`` where ``y != -1`` plus
    ``max(0, margin - x)`` where ``y != 1`` (so ±1 labels pick one term)."""
    reduction = _legacy(size_average, reduce, reduction)
    with backend_of(input, target, names=_NAMES).scope():
        p = prepare(input, target, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        loss = margin_core.hinge_embedding(p.pred, p.target, float(margin), p.xp)
        return finish(p, _reduce(p.xp, loss, reduction))


@_autocast_to_float32
def soft_margin_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.soft_margin_loss``: ``log(1 + exp(-y·x))``, computed stably
    (torch's ``log1p(exp(-y·x))`` overflows to inf for y·x < -88 in float32)."""
    reduction = _legacy(size_average, reduce, reduction)
    with backend_of(input, target, names=_NAMES).scope():
        p = prepare(input, target, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        return finish(p, _reduce(p.xp, margin_core.soft_margin(p.pred, p.target, p.xp), reduction))


@_autocast_to_float32
def margin_ranking_loss(
    input1: Any, input2: Any, target: Any, margin: float = 0, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.margin_ranking_loss``: ``max(0, -y·(x1 - x2) + margin)``."""
    reduction = _legacy(size_average, reduce, reduction)
    names = ("input1", "input2", "weight", "target")
    with backend_of(input1, input2, None, target, names=names).scope():
        p = prepare(input1, input2, names=names[:3])
        check_same_shape(p.pred, p.target, names[:2])
        y = prepare_extra(p, target, "target")
        check_same_shape(p.pred, y, ("input1", "target"))
        loss = margin_core.margin_ranking(p.pred, p.target, y, float(margin), p.xp)
        return finish(p, _reduce(p.xp, loss, reduction))


def multilabel_soft_margin_loss(
    input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.multilabel_soft_margin_loss``: the BCE-with-logits of each class
    (times ``weight``), averaged over the classes (last axis), then reduced over samples."""
    reduction = _legacy(size_average, reduce, reduction)
    with backend_of(input, target, weight, names=_NAMES).scope():
        p = prepare(input, target, weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        x = p.pred
        weight = None if p.weight is None else _elementwise_weight(xp, p.weight, tuple(x.shape))
        loss = margin_core.multilabel_soft_margin(x, p.target, xp, weight)
        return finish(p, _reduce(xp, loss, reduction))


def _class_index_input(p: Any, name: str = "target") -> tuple:
    """(scores, labels, squeeze) for torch's ``(N, C)`` or unbatched ``(C,)`` input."""
    xp = p.xp
    x, t = p.pred, p.target
    unbatched = len(x.shape) == 1
    if unbatched:
        x, t = xp.expand_dims(x, axis=0), xp.reshape(t, (1,))
    if len(x.shape) != 2 or tuple(t.shape) != (x.shape[0],):
        raise ValueError(f"polyloss: expected input of shape (N, C) or (C,) and {name} of shape (N,) "
                         f"or (); got {tuple(p.pred.shape)} and {tuple(p.target.shape)}")
    return x, t, unbatched


@_autocast_to_float32
def multi_margin_loss(
    input: Any, target: Any, p: int = 1, margin: float = 1.0, weight: Any = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.multi_margin_loss``: ``Σ_{i≠y} w_y·max(0, margin - x_y + x_i)^p / C``
    per sample (``p`` 1 or 2), then an unweighted mean over samples."""
    reduction = _legacy(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    with backend_of(input, target, weight, names=_NAMES).scope():
        prep = prepare(input, target, names=_NAMES, integer_target=True)
        xp = prep.xp
        x, t, unbatched = _class_index_input(prep)
        num_classes = x.shape[1]
        check_class_labels(prep.backend, t, num_classes, None, "target")
        safe, _, in_range = cls_core.safe_labels(as_index(prep.backend, t), num_classes, None, xp)
        classes = xp.expand_dims(arange_like(num_classes, safe, safe.dtype, xp), axis=0)
        not_true = xp.expand_dims(safe, axis=1) != classes
        true_score = xp.expand_dims(cls_core.take_class(x, safe, 1, xp), axis=1)
        loss = margin_core.multi_margin(x, true_score, not_true, float(margin), p, num_classes, 1, xp,
                                        tie="inactive")
        if weight is not None:
            w = prepare_extra(prep, weight, "weight")
            if tuple(w.shape) != (num_classes,):
                raise ValueError(f"polyloss: weight must have shape ({num_classes},), got {tuple(w.shape)}")
            loss = loss * cls_core.take_class(xp.broadcast_to(xp.expand_dims(w, axis=0), tuple(x.shape)),
                                              safe, 1, xp)
        loss = xp.where(in_range, loss, float("nan"))
        if unbatched:
            loss = xp.reshape(loss, ())
        return finish(prep, _reduce(xp, loss, reduction))


@_autocast_to_float32
def multilabel_margin_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.multilabel_margin_loss``: ``target`` lists each sample's classes,
    padded with -1 (reading stops at the first -1);
    ``Σ_{j listed} Σ_{i not listed} max(0, 1 - (x_j - x_i)) / C``."""
    reduction = _legacy(size_average, reduce, reduction)
    with backend_of(input, target, names=_NAMES).scope():
        prep = prepare(input, target, names=_NAMES, integer_target=True)
        xp = prep.xp
        check_same_shape(prep.pred, prep.target, _NAMES[:2])
        unbatched = len(prep.pred.shape) == 1
        num_classes = prep.pred.shape[-1]
        check_class_labels(prep.backend, prep.target, num_classes, -1, "target")
        x, t = prep.pred, as_index(prep.backend, prep.target)
        if unbatched:
            x, t = xp.expand_dims(x, axis=0), xp.expand_dims(t, axis=0)
        count = margin_core.listed_class_count(t, x, xp)
        loss = margin_core.multilabel_margin(x, count, 1.0, xp, tie="inactive")
        if unbatched:
            loss = xp.reshape(loss, ())
        return finish(prep, _reduce(xp, loss, reduction))


class HingeEmbeddingLoss(_Loss):
    """``torch.nn.HingeEmbeddingLoss(margin=1.0, size_average=None, reduce=None, reduction='mean')``."""

    def __init__(self, margin: float = 1.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Any, target: Any) -> Any:
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """``torch.nn.MultiLabelMarginLoss(size_average=None, reduce=None, reduction='mean')``."""

    def forward(self, input: Any, target: Any) -> Any:
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """``torch.nn.MultiLabelSoftMarginLoss(weight=None, size_average=None, reduce=None,
    reduction='mean')``."""

    def forward(self, input: Any, target: Any) -> Any:
        return multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """``torch.nn.MultiMarginLoss(p=1, margin=1.0, weight=None, size_average=None, reduce=None,
    reduction='mean')``."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Any = None,
                 size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError("only p == 1 and p == 2 supported")
        self.p = p
        self.margin = margin

    def forward(self, input: Any, target: Any) -> Any:
        return multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                 reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """``torch.nn.SoftMarginLoss(size_average=None, reduce=None, reduction='mean')``."""

    def forward(self, input: Any, target: Any) -> Any:
        return soft_margin_loss(input, target, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """``torch.nn.MarginRankingLoss(margin=0.0, size_average=None, reduce=None, reduction='mean')``,
    called ``(input1, input2, target)``."""

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Any:
        return margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)



# ---- embedding losses -------------------------------------------------------------------

_COSINE_EPS = float(np.float32(1e-12))  # torch adds 1e-12 (a float constant) to each squared norm


@_autocast_to_float32
def cosine_embedding_loss(
    input1: Any, input2: Any, target: Any, margin: float = 0, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.cosine_embedding_loss``: ``1 - cos`` where ``y = 1``,
    ``max(0, cos - margin)`` where ``y = -1``, with
    ``cos = x1·x2 / sqrt((‖x1‖² + 1e-12)(‖x2‖² + 1e-12))`` along dim 1 (0 for 1-D inputs)."""
    reduction = _legacy(size_average, reduce, reduction)
    names = ("input1", "input2", "weight", "target")
    with backend_of(input1, input2, None, target, names=names).scope():
        p = prepare(input1, input2, names=names[:3])
        check_same_shape(p.pred, p.target, names[:2])
        xp = p.xp
        dim = 0 if len(p.pred.shape) == 1 else 1
        x1, x2 = p.pred, p.target
        prod = xp.sum(x1 * x2, axis=dim)
        mag1 = xp.sum(x1 * x1, axis=dim) + _COSINE_EPS
        mag2 = xp.sum(x2 * x2, axis=dim) + _COSINE_EPS
        cos = prod / xp.sqrt(mag1 * mag2)
        y = prepare_extra(p, target, "target")
        check_same_shape(cos, y, ("the pair similarities", "target"))
        loss = embedding_core.cosine_embedding(cos, y, float(margin), xp)
        return finish(p, _reduce(xp, loss, reduction))


def pairwise_distance(x1: Any, x2: Any, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Any:
    """``torch.nn.functional.pairwise_distance``: ``‖x1 - x2 + eps‖_p`` over the last dimension."""
    names = ("x1", "x2", "weight")
    with backend_of(x1, x2, names=names).scope():
        prep = prepare(x1, x2, names=names)
        check_same_shape(prep.pred, prep.target, names[:2])
        xp = prep.xp
        out = embedding_core.p_norm(prep.pred - prep.target + eps, float(p), -1, xp, keepdims=keepdim)
        return finish(prep, out)


def _triplet(anchor: Any, positive: Any, negative: Any, distance: Any, margin: float, swap: bool,
             reduction: str) -> Any:
    names = ("anchor", "positive", "weight", "negative")
    with backend_of(anchor, positive, None, negative, names=names).scope():
        prep = prepare(anchor, positive, names=names[:3])
        xp = prep.xp
        neg = prepare_extra(prep, negative, "negative")
        if not len(prep.pred.shape) == len(prep.target.shape) == len(neg.shape):
            raise ValueError("The anchor, positive, and negative tensors are expected to have the same "
                             f"number of dimensions, but got: anchor {len(prep.pred.shape)}D, positive "
                             f"{len(prep.target.shape)}D, and negative {len(neg.shape)}D inputs")
        check_same_shape(prep.pred, prep.target, ("anchor", "positive"))
        check_same_shape(prep.pred, neg, ("anchor", "negative"))
        d_pos = distance(prep.pred, prep.target)
        d_neg = distance(prep.pred, neg)
        if swap:
            d_swap = distance(prep.target, neg)
            d_neg = margin_core.hinge_part(d_neg - d_swap, xp, tie="split") * -1.0 + d_neg  # min
        loss = embedding_core.triplet(d_pos, d_neg, float(margin), xp)
        return finish(prep, _reduce(xp, loss, reduction))


@_autocast_to_float32
def triplet_margin_loss(
    anchor: Any, positive: Any, negative: Any, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
    swap: bool = False, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.triplet_margin_loss``: ``max(0, d(a, p) - d(a, n) + margin)`` with
    ``d = pairwise_distance(·, ·, p, eps)`` (eps added to the difference); ``swap`` uses
    ``min(d(a, n), d(p, n))``."""
    reduction = _legacy(size_average, reduce, reduction)
    if not margin > 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")

    def distance(a: Any, b: Any) -> Any:
        xp = backend_of(a).xp
        return embedding_core.p_norm(a - b + eps, float(p), -1, xp)

    return _triplet(anchor, positive, negative, distance, margin, swap, reduction)


def triplet_margin_with_distance_loss(
    anchor: Any, positive: Any, negative: Any, *, distance_function: Any = None, margin: float = 1.0,
    swap: bool = False, reduction: str = "mean",
) -> Any:
    """``torch.nn.functional.triplet_margin_with_distance_loss``: the triplet loss with any
    ``distance_function(x, y)`` (default: :func:`pairwise_distance`); ``margin`` must be > 0."""
    if not margin > 0:
        raise ValueError("triplet_margin_with_distance_loss: expected margin to be greater than 0, "
                         f"got {margin} instead")
    _check_reduction(reduction)
    distance = distance_function if distance_function is not None else pairwise_distance
    return _triplet(anchor, positive, negative, distance, margin, swap, reduction)


class PairwiseDistance(_Module):
    """``torch.nn.PairwiseDistance(p=2.0, eps=1e-06, keepdim=False)``: :func:`pairwise_distance`
    as a module (also :class:`TripletMarginWithDistanceLoss`'s default ``distance_function``,
    as in torch)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Any, x2: Any) -> Any:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineEmbeddingLoss(_Loss):
    """``torch.nn.CosineEmbeddingLoss(margin=0.0, size_average=None, reduce=None,
    reduction='mean')``, called ``(input1, input2, target)``."""

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Any:
        return cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``torch.nn.TripletMarginLoss(margin=1.0, p=2.0, eps=1e-06, swap=False, size_average=None,
    reduce=None, reduction='mean')``, called ``(anchor, positive, negative)``."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> Any:
        return triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                   eps=self.eps, swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """``torch.nn.TripletMarginWithDistanceLoss(*, distance_function=None, margin=1.0, swap=False,
    reduction='mean')``."""

    def __init__(self, *, distance_function: Any = None, margin: float = 1.0, swap: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        if margin <= 0:
            raise ValueError("TripletMarginWithDistanceLoss: expected margin to be greater than 0, got "
                             f"{margin} instead")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> Any:
        return triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function, margin=self.margin,
            swap=self.swap, reduction=self.reduction)


# ---- sequence: CTC --------------------------------------------------------------------------

_CTC_NAMES = {"labels": "targets", "label_lengths": "target_lengths", "input_lengths": "input_lengths"}


def _host_ints(x: Any) -> list[int]:
    return [int(x[i]) for i in range(x.shape[0])]


def _concatenated_targets(backend: Any, targets: Any, lengths: Any) -> Any:
    """torch's 1-D form (every target sequence one after the other) as padded ``(N, S)``."""
    xp = backend.xp
    if not (backend.values_known(targets) and backend.values_known(lengths)):
        raise ValueError("polyloss: concatenated 1-D targets need target_lengths whose values are "
                         "known (eager mode); pass padded (N, S) targets under jit/compile")
    sizes = _host_ints(lengths)
    if any(v < 0 for v in sizes) or sum(sizes) != targets.shape[0]:
        raise ValueError(f"polyloss: target_lengths {sizes} must add up to the "
                         f"{targets.shape[0]} concatenated targets")
    longest = max(sizes, default=0)
    if longest == 0:
        return xp.zeros((len(sizes), 0), dtype=targets.dtype, device=backend.device(targets))
    offsets, start = [], 0
    for v in sizes:
        offsets.append([min(start + j, targets.shape[0] - 1) for j in range(longest)])
        start += v
    index = xp.asarray(offsets, dtype=targets.dtype, device=backend.device(targets))
    return xp.reshape(xp.take(targets, xp.reshape(index, (-1,)), axis=0), (len(sizes), longest))


@_autocast_to_float32
def ctc_loss(log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Any:
    """``torch.nn.functional.ctc_loss``: CTC on ``log_probs`` ``(T, N, C)`` (or ``(T, C)``),
    already log-softmaxed, with ``targets`` padded ``(N, S)`` or concatenated 1-D.

    Per sequence ``-log p(target | x)``; ``'mean'`` divides each by its target length
    (at least 1), then averages; an impossible alignment is ``inf`` (0 with
    ``zero_infinity``). The gradient w.r.t. ``log_probs`` is torch's, ``exp(log_probs) -
    posterior`` on each sequence's frames: the gradient w.r.t. the logits once it passes
    back through ``log_softmax`` (the true partial derivative is ``-posterior``).
    """
    _check_reduction(reduction)
    names = ("log_probs", "targets")
    backend = backend_of(log_probs, targets, sequence.array_or_none(input_lengths),
                         sequence.array_or_none(target_lengths),
                         names=names + ("input_lengths", "target_lengths"))
    with backend.scope():
        prep = prepare(log_probs, targets, names=names + ("weight",), integer_target=True)
        xp = prep.xp
        x = prep.pred
        unbatched = len(x.shape) == 2
        if unbatched:
            x = xp.expand_dims(x, axis=1)
        if len(x.shape) != 3:
            raise ValueError(f"polyloss: log_probs must be (T, N, C) or (T, C), got shape "
                             f"{tuple(prep.pred.shape)}")
        t_max, n, num_classes = x.shape
        if not 0 <= blank < num_classes:
            raise ValueError(f"polyloss: blank must be in [0, {num_classes}), got {blank!r}")
        x = xp.permute_dims(x, (1, 0, 2))
        y = sequence.labels_array(backend, prep.target, "targets", x)
        in_len = sequence.lengths_array(backend, _one_per_batch(input_lengths, unbatched), n,
                                        "input_lengths", x)
        tgt_len = sequence.lengths_array(backend, _one_per_batch(target_lengths, unbatched), n,
                                         "target_lengths", x)
        if unbatched and not (backend.values_known(y) and backend.values_known(tgt_len)):
            y = xp.expand_dims(y, axis=0)
        elif len(y.shape) == 1:  # torch reads an unbatched target as the concatenated form
            y = _concatenated_targets(backend, y, tgt_len)
        if len(y.shape) != 2 or y.shape[0] != n:
            raise ValueError(f"polyloss: targets must be (N, S) with N = {n}, or 1-D, got shape "
                             f"{tuple(prep.target.shape)}")
        nll, feasible, _ = sequence.sequence_nll(
            backend, x, y, tgt_len, in_len, sequence.frames_from_lengths(in_len, t_max, xp),
            blank=blank, log_zero=sequence.LOG_ZERO, names=_CTC_NAMES,
            too_long="allow" if zero_infinity else "error")
        # torch's backward gives exp(log_probs) - posterior: add the exp(log_probs) part
        # through a term whose value is exactly 0
        probs = xp.exp(x)
        used = xp.expand_dims(sequence.frames_from_lengths(in_len, t_max, xp), axis=2)
        softmax_part = xp.sum(xp.where(used, probs - backend.stop_gradient(probs), 0.0), axis=(1, 2))
        loss = xp.where(feasible, nll + softmax_part,
                        xp.zeros_like(nll) if zero_infinity else xp.full_like(nll, float("inf")))
        if reduction == "mean":
            out = xp.mean(loss / xp.astype(xp.clip(tgt_len, 1, None), loss.dtype))
        elif reduction == "sum":
            out = xp.sum(loss)
        else:
            out = xp.reshape(loss, ()) if unbatched else loss
        return finish(prep, out)


def _one_per_batch(lengths: Any, unbatched: bool) -> Any:
    # unbatched torch takes a 0-d tensor or a 1-tuple; both become one length
    if unbatched and hasattr(lengths, "shape") and len(lengths.shape) == 0:
        return [int(lengths)]
    return lengths


class CTCLoss(_Loss):
    """``torch.nn.CTCLoss(blank=0, reduction='mean', zero_infinity=False)``, called as
    ``(log_probs, targets, input_lengths, target_lengths)``."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__(None, None, reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any) -> Any:
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                        self.zero_infinity)


# ---- linear cross-entropy (torch 2.13: F.linear_cross_entropy, nn.LinearCrossEntropyLoss) ----
# A linear layer and cross-entropy in one, computed by polyloss.core.linear in chunks: the
# (batch x classes) logits are never held, with or without ``options`` (torch materialises
# them when ``options`` is None, and for what its chunked path does not support).

_LINEAR_NAMES = ("input", "linear_weight", "target", "linear_bias", "weight", "sample_weight")


@_autocast_to_float32
def linear_cross_entropy(
    input: Any, linear_weight: Any, target: Any, *, linear_bias: Any = None, weight: Any = None,
    reduction: str = "mean", ignore_index: int | None = None, label_smoothing: float = 0.0,
    options: Any = None,
) -> Any:
    """``torch.nn.functional.linear_cross_entropy``: ``cross_entropy(linear(input, linear_weight,
    linear_bias), target, ...)`` without materialising the logits.

    ``input`` is ``(N, F)`` or ``(F,)``; ``linear_weight`` ``(C, F)`` or ``(C, d1, ..., dK, F)``
    (K-dimensional loss); ``target`` class indices ``(N, d1, ...)`` (``ignore_index`` ``None``
    means -100) or probabilities of the logits' shape ``(N, C, d1, ...)`` (then
    ``ignore_index`` must stay ``None``). Per position, as ``cross_entropy``:
    ``(1-ε)·w_y·(lse - z_y) + (ε/C)·Σ_c w_c·(lse - z_c)``; the mean divides by ``Σ w_y`` over
    the counted positions (NaN if none), or by the number of positions for probabilities.

    ``options`` (a ``torch.nn.LinearCrossEntropyOptions``) only lends its ``batch_chunk_size``
    (rows per block); its accumulation policies concern torch's kernel. A K-dimensional
    ``linear_weight`` computes the logits whole, as torch does.
    """
    _check_reduction(reduction)
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if ignore_index is not None and (not isinstance(ignore_index, int) or isinstance(ignore_index, bool)):
        raise TypeError(f"polyloss: ignore_index must be an int or None, got {ignore_index!r}")
    for name, x in zip(_LINEAR_NAMES[:3], (input, linear_weight, target), strict=True):
        if not hasattr(x, "shape"):
            raise TypeError(f"polyloss: {name} must be an array, got {type(x).__name__}")
    in_shape, w_shape = tuple(input.shape), tuple(linear_weight.shape)
    if len(in_shape) not in (1, 2):
        raise ValueError(f"polyloss: expected input with dimensionality 1 or 2, got {len(in_shape)}")
    if len(w_shape) < 2:
        raise ValueError(f"polyloss: expected linear_weight with dimensionality at least 2, got "
                         f"{len(w_shape)}")
    if in_shape[-1] != w_shape[-1]:
        raise ValueError(
            "polyloss: expected equal input and linear_weight last dimensions (in_features), "
            f"got {in_shape[-1]} and {w_shape[-1]}, respectively")
    num_classes, out_features = w_shape[0], w_shape[1:-1]
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise ValueError(f"polyloss: expected linear_bias shape {(num_classes, *out_features)}, "
                         f"got {tuple(linear_bias.shape)}")
    if out_features and len(in_shape) == 1:
        raise ValueError(
            f"polyloss: K-dimensional loss defined by linear_weight shape {w_shape} requires "
            f"batched input, (N, {in_shape[-1]}), got unbatched input with shape {in_shape}")
    probabilities = tuple(target.shape) == (*in_shape[:-1], num_classes, *out_features)
    if probabilities and ignore_index is not None:
        raise ValueError("polyloss: ignore_index cannot be specified when target contains "
                         "probabilities")
    torch = sys.modules.get("torch")
    if (torch is not None and isinstance(input, torch.Tensor)
            and torch.amp.is_autocast_available(input.device.type)
            and torch.is_autocast_enabled(input.device.type)):
        # torch.autocast: torch runs the projection in the autocast dtype (bfloat16 logits);
        # polyloss computes in float32 from the up-cast inputs, with autocast off inside (else
        # it would round its own chunks' matmuls): difference torch-linear-ce-autocast
        h, w, b, cw = (_float32_under_autocast(torch, a)
                       for a in (input, linear_weight, linear_bias, weight))
        with torch.autocast(input.device.type, enabled=False):
            return linear_cross_entropy(
                h, w, target, linear_bias=b, weight=cw, reduction=reduction,
                ignore_index=ignore_index, label_smoothing=label_smoothing, options=options)
    if out_features:
        return _linear_cross_entropy_k_dim(input, linear_weight, target, linear_bias, weight,
                                           reduction, ignore_index, float(label_smoothing))
    from polyloss.canonical.linear import linear_loss

    return linear_loss(
        input, linear_weight, target, bias=linear_bias, class_weight=weight,
        ignore_index=None if probabilities else (-100 if ignore_index is None else ignore_index),
        label_smoothing=float(label_smoothing), reduction=reduction, sample_weight=None,
        normalizer="count" if probabilities else "sum_of_weights", if_all_ignored="nan",
        row_chunk=getattr(options, "batch_chunk_size", None), class_chunk=None,
        names=_LINEAR_NAMES)


def _linear_cross_entropy_k_dim(input: Any, linear_weight: Any, target: Any, linear_bias: Any,
                                weight: Any, reduction: str, ignore_index: int | None,
                                label_smoothing: float) -> Any:
    """torch's reference path for a ``(C, d1, ..., dK, F)`` weight: the logits ``(N, C, d1, ...)``
    whole, then :func:`cross_entropy`."""
    backend = backend_of(input, linear_weight, target, linear_bias, weight, names=_LINEAR_NAMES[:5])
    with backend.scope():
        xp = backend.xp
        view = backend.to_xp or (lambda x: x)
        x, w = view(input), view(linear_weight)
        shape = tuple(w.shape)
        rows = shape[0] * int(np.prod(shape[1:-1]))
        logits = xp.matmul(x, xp.permute_dims(xp.reshape(w, (rows, shape[-1])), (1, 0)))
        if linear_bias is not None:
            logits = logits + xp.reshape(view(linear_bias), (rows,))
        logits = xp.reshape(logits, (x.shape[0], *shape[:-1]))
        out = cross_entropy(logits, view(target), weight=None if weight is None else view(weight),
                            ignore_index=-100 if ignore_index is None else ignore_index,
                            reduction=reduction, label_smoothing=label_smoothing)
        return out if backend.from_xp is None else backend.from_xp(out)


class LinearCrossEntropyLoss(_WeightedLoss):
    """``torch.nn.LinearCrossEntropyLoss(in_features, num_classes, *, out_features=(),
    bias=False, device=None, dtype=None, reduction='mean', weight=None, ignore_index=None,
    label_smoothing=0.0, options=None)``: owns a ``torch.nn.Linear`` (``self.linear``, of
    ``num_classes·prod(out_features)`` outputs, initialised as torch's from the same random
    stream) and computes :func:`linear_cross_entropy` of its weight.

    On another framework's ``input`` the layer's current values are used (converted to that
    framework); gradients then reach ``input`` but not the torch parameters: to train the
    projection in that framework, call :func:`linear_cross_entropy` with its own weight.
    """

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple[int, ...] = (),
                 bias: bool = False, device: Any = None, dtype: Any = None,
                 reduction: str = "mean", weight: Any = None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0, options: Any = None) -> None:
        if _ModuleBase is object:
            raise ImportError("polyloss.torch.LinearCrossEntropyLoss owns a torch.nn.Linear and "
                              "needs torch; without it use polyloss.linear_cross_entropy")
        import math

        import torch

        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise ValueError(f"expected weight shape to be {(num_classes,)}, got "
                             f"{tuple(weight.shape)}")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise ValueError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        super().__init__(weight, None, None, reduction)
        self.num_classes = num_classes
        self.out_features = out_features
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.linear = torch.nn.Linear(in_features, math.prod(out_features, start=num_classes),
                                      bias=bias, device=device, dtype=dtype)
        self.options = options

    def forward(self, input: Any, target: Any) -> Any:
        linear_weight = self.linear.weight.reshape(
            (self.num_classes, *self.out_features, self.linear.in_features))
        linear_bias = (None if self.linear.bias is None
                       else self.linear.bias.reshape((self.num_classes, *self.out_features)))
        class_weight = self.weight
        if backend_of(input, names=("input",)).framework != "torch":
            linear_weight, linear_bias, class_weight = (
                _torch_values_like(input, t) for t in (linear_weight, linear_bias, class_weight))
        return linear_cross_entropy(
            input, linear_weight, target, linear_bias=linear_bias, weight=class_weight,
            reduction=self.reduction, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, options=self.options)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.linear.in_features},"
            f" num_classes={self.num_classes},"
            f" out_features={self.out_features},"
            f" bias={self.linear.bias is not None},"
            f" reduction={self.reduction},"
            f" ignore_index={self.ignore_index},"
            f" label_smoothing={self.label_smoothing},"
            f" options={self.options}"
        )


def _torch_values_like(like: Any, tensor: Any) -> Any:
    """A torch tensor's values as an array of ``like``'s framework, on its device."""
    import torch

    if not isinstance(tensor, torch.Tensor):
        return tensor
    backend = backend_of(like, names=("input",))
    values = tensor.detach().cpu().numpy()
    view = like if backend.to_xp is None else backend.to_xp(like)
    out = backend.xp.asarray(values, device=backend.device(view))
    return out if backend.from_xp is None else backend.from_xp(out)


__all__ += ["linear_cross_entropy", "LinearCrossEntropyLoss"]
