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
"""

from __future__ import annotations

import warnings
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare
from polyloss.backends import backend_of
from polyloss.core import regression as core
from polyloss.reduction import REDUCTIONS, mean_or_nan

__all__ = [
    "L1Loss", "MSELoss", "HuberLoss", "SmoothL1Loss",
    "l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss",
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
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' "
        "instead.",
        UserWarning,
        stacklevel=3,
    )
    return ret


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


def l1_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Any = None,
) -> Any:
    """``torch.nn.functional.l1_loss``: ``|input - target|``; with ``weight``, mean = ``Σw·l/Σw``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _elementwise(core.absolute_error, input, target, reduction, weight, "sum_of_weights")


def mse_loss(
    input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Any = None,
) -> Any:
    """``torch.nn.functional.mse_loss``: ``(input - target)²``; with ``weight``, mean = ``Σw·l/Σw``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _elementwise(core.squared_error, input, target, reduction, weight, "sum_of_weights")


def huber_loss(
    input: Any, target: Any, reduction: str = "mean", delta: float = 1.0, weight: Any = None,
) -> Any:
    """``torch.nn.functional.huber_loss``: ``½r²`` if ``|r| < delta`` else ``delta(|r| - ½delta)``.

    With ``weight``, the mean is ``Σ w·l / N`` (unlike ``mse_loss``/``l1_loss``).
    """
    _check_delta(delta)
    return _elementwise(core.huber, input, target, reduction, weight, "count", delta=float(delta))


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


class _Loss:
    """``torch.nn.modules.loss._Loss``: the reduction argument and its legacy flags."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        if size_average is not None or reduce is not None:
            self.reduction = _legacy_reduction(size_average, reduce)
        else:
            self.reduction = reduction

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, input: Any, target: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


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

