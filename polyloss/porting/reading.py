"""How each convention reduces a loss, read from a call: the reduction steps applied to the
unreduced loss (see :func:`polyloss.porting.frameworks.apply_steps`), and the dtype a call
computes in. Argument defaults come from the call, which took them from the mirror.
"""

from __future__ import annotations

import warnings
from typing import Any

from polyloss.porting.frameworks import Step
from polyloss.porting.spelling import Call

__all__ = ["torch_reduction", "torch_steps", "keras_steps", "gluon_steps", "canonical_steps",
           "keras_dtype", "KERAS_REDUCTION_NOTE", "GLUON_NOTE", "OPTAX_NOTE"]

KERAS_REDUCTION_NOTE = ("Keras: the loss of each sample is the mean over the last axis; a loss "
                        "object then applies sample_weight and reduces with 'sum_over_batch_size' "
                        "(the sum over the number of per-sample values)")
GLUON_NOTE = ("Gluon returns one value per sample (the mean over every axis but batch_axis); the "
              "batch mean happens in Trainer.step(batch_size)")
OPTAX_NOTE = "optax returns the unreduced loss"


def torch_reduction(call: Call) -> str:
    """``reduction``, or what the deprecated ``size_average``/``reduce`` flags map it to
    (torch's ``_Reduction.legacy_get_string``, read from the mirror)."""
    size_average, reduce = call.config.get("size_average"), call.config.get("reduce")
    if size_average is None and reduce is None:
        return call.config.get("reduction", "mean")
    from polyloss import torch as mirror

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mirror._legacy_reduction(size_average, reduce)


def torch_steps(call: Call, weight: str | None = None, weight_mean: str = "count") -> list[Step]:
    """torch's reduction of an elementwise loss, with an elementwise ``weight`` whose mean
    divides by the element count (``"count"``) or by ``Σ weight`` (``"sum_of_weights"``)."""
    reduction = torch_reduction(call)
    steps: list[Step] = [("mul", weight)] if weight else []
    if reduction == "sum":
        steps.append(("sum", None))
    elif reduction == "mean":
        if weight and weight_mean == "sum_of_weights":
            steps += [("sum", None), ("div_sum", weight)]
        else:
            steps.append(("mean", None))
    return steps


def keras_dtype(call: Call) -> str | None:
    """The dtype a Keras loss object casts its inputs to (``floatx()``, float32, unless
    ``dtype=``); None for the functions, which keep the input dtype."""
    if call.kind != "class":
        return None
    from polyloss import keras as mirror

    return mirror._compute_dtype_name(call.config.get("dtype"))


def keras_steps(call: Call, per_sample: list[Step] | None = None, mask: str | None = None) -> list[Step]:
    """Keras: the function's per-sample reduction (``per_sample``, default the mean over the
    last axis), then for a loss object ``sample_weight`` and its ``reduction``."""
    steps: list[Step] = list(per_sample if per_sample is not None else [("mean", -1)])
    if call.kind != "class":
        return steps
    weight = call.arrays.get("sample_weight")
    if weight:
        steps.append(("mul", weight))
    reduction = call.config.get("reduction", "sum_over_batch_size")
    if reduction in ("sum_over_batch_size", "mean"):
        steps.append(("mean", None))
    elif reduction == "sum":
        steps.append(("sum", None))
    elif reduction == "mean_with_sample_weight":
        steps += [("sum", None), ("div_sum", weight)] if weight else [("mean", None)]
    return steps


def gluon_steps(call: Call, per_sample: str = "mean") -> list[Step]:
    """Gluon: ``sample_weight`` (broadcast), the scalar ``weight``, then the mean (or sum) over
    every axis but ``batch_axis``."""
    steps: list[Step] = []
    if call.arrays.get("sample_weight"):
        steps.append(("mul", call.arrays["sample_weight"]))
    scale = gluon_scale(call)
    if scale is not None:
        steps.append(("mul", scale))
    steps.append((per_sample, ("nonbatch", call.config.get("batch_axis", 0))))
    return steps


def gluon_scale(call: Call) -> Any:
    weight = call.config.get("weight")
    if call.name == "L2Loss":
        return weight / 2
    return weight


def canonical_steps(call: Call) -> list[Step]:
    """The canonical API: ``sample_weight`` (of the loss's shape), then ``reduction`` with
    ``normalizer`` ``"count"`` or ``"sum_of_weights"``."""
    weight = call.arrays.get("sample_weight")
    steps: list[Step] = [("mul", weight)] if weight else []
    reduction = call.config.get("reduction", "mean")
    if reduction == "sum":
        steps.append(("sum", None))
    elif reduction == "mean":
        if weight and call.config.get("normalizer") == "sum_of_weights":
            steps += [("sum", None), ("div_sum", weight)]
        else:
            steps.append(("mean", None))
    return steps
