"""Writing a loss in a target framework's native API: the call of its native loss on the
source's arrays, folded into the native's own reduction arguments where they express the
source's reduction, and the remaining reduction steps as post-processing.

Every helper returns code lines ending with ``loss = ...``.
"""

from __future__ import annotations

from typing import Any

from polyloss.porting.frameworks import FRAMEWORKS, Framework, Step, apply_steps
from polyloss.porting.model import Spec, simplify
from polyloss.porting.spelling import Code

__all__ = ["kw", "paren", "arg", "steps_for", "with_xp", "torch_call", "keras_call", "gluon_call",
           "optax_call", "canonical_call", "finish"]


def kw(**kwargs: Any) -> list[str]:
    """``name=value`` for each keyword whose value is not ``None``."""
    return [f"{k}={v if isinstance(v, Code) else repr(v)}" for k, v in kwargs.items() if v is not None]


def paren(expr: str) -> str:
    """``expr`` safe to follow with ``.method()`` or an index."""
    return expr if expr.replace("_", "").replace(".", "").isalnum() else f"({expr})"


def arg(fw: Framework, spec: Spec, role: str) -> str:
    """The variable of ``role``, cast to the dtype the source computes in (Keras loss objects
    compute in float32 whatever their inputs' dtype)."""
    name = spec.var[role]
    dtype = spec.get("dtype")
    return fw.cast(name, dtype) if dtype else name


def steps_for(fw: Framework, spec: Spec, steps: list[Step] | None = None) -> list[Step]:
    """The source's reduction steps, with the weight variables cast to the dtype the source
    computes in (Keras loss objects cast ``sample_weight`` too; MXNet does not promote)."""
    steps = spec["steps"] if steps is None else steps
    dtype = spec.get("dtype")
    if not dtype:
        return list(steps)
    return [(op, fw.cast(a, dtype)) if op in ("mul", "div_sum") and isinstance(a, str)
            and a.isidentifier() else (op, a) for op, a in steps]


def finish(fw: Framework, first: str, steps: list[Step]) -> list[str]:
    return [f"loss = {first}"] + apply_steps(fw, steps)


def torch_call(fn: str, args: list[str], kwargs: list[str], steps: list[Step],
               weight: str | None = None, weight_mean: str = "count") -> list[str]:
    """``torch.nn.functional.<fn>``, with ``reduction=`` taken from the steps, and ``weight=``
    where the first step multiplies by the variable ``weight`` (an array torch accepts as its
    ``weight``), whose weighted mean divides by the element count (``weight_mean="count"``)
    or by the sum of the weights (``"sum_of_weights"``)."""
    fw = FRAMEWORKS["torch"]
    steps = simplify(steps)
    extra: list[str] = []
    mean: list[Step] = [("mean", None)]
    if weight is not None and steps[:1] == [("mul", weight)]:
        steps = steps[1:]
        extra.append(f"weight={weight}")
        if weight_mean == "sum_of_weights":
            mean = [("sum", None), ("div_sum", weight)]
    if steps[:len(mean)] == mean:
        steps = steps[len(mean):]
    elif steps[:1] == [("sum", None)]:
        extra.append("reduction='sum'")
        steps = steps[1:]
    else:
        extra.append("reduction='none'")
    call = f"torch.nn.functional.{fn}({', '.join(args + kwargs + extra)})"
    return finish(fw, call, steps)


def keras_call(fn: str, y_true: str, y_pred: str, kwargs: list[str], steps: list[Step],
               per_sample: Step | None = ("mean", -1)) -> list[str]:
    """``keras.losses.<fn>(y_true, y_pred)``. Keras's functions reduce the last axis
    (``per_sample``); an elementwise loss is had by giving both a trailing axis of length 1."""
    fw = FRAMEWORKS["keras"]
    steps = simplify(steps)
    if per_sample is None or steps[:1] == [per_sample]:
        steps = steps[1:] if per_sample is not None else steps
    elif per_sample == ("mean", -1) and steps[:1] == [("mean", None)]:
        pass  # the mean of the per-sample means is the overall mean
    else:
        y_true, y_pred = fw.expand_last(y_true), fw.expand_last(y_pred)
    call = f"keras.losses.{fn}({', '.join([y_true, y_pred] + kwargs)})"
    return finish(fw, call, steps)


def gluon_call(cls: str, ctor: list[str], pred: str, label: str, steps: list[Step],
               tail: list[tuple[str, bool]] | None = None, per_sample: str = "mean") -> list[str]:
    """``gluon.loss.<cls>(...)(pred, label[, sample_weight, *tail])``: one value per sample,
    the ``per_sample`` mean (or sum) over every axis but ``batch_axis``, with ``sample_weight``
    (broadcast) taken from the steps where it comes first. ``tail`` holds further call
    arguments as ``(expression, has pred's shape)``. An elementwise loss is had by calling the
    loss on ``(-1, 1)`` reshapes (one element per sample) and reshaping the result back."""
    fw = FRAMEWORKS["gluon"]
    steps = simplify(steps)
    tail = tail or []
    weighted = (len(steps) > 1 and steps[0][0] == "mul" and isinstance(steps[0][1], str)
                and steps[1][0] == per_sample and isinstance(steps[1][1], tuple))
    if weighted or (steps[:1] and steps[0][0] == per_sample and isinstance(steps[0][1], tuple)):
        sample_weight = steps[0][1] if weighted else "None"
        steps = steps[1:] if weighted else steps
        batch_axis = steps[0][1][1]
        steps = steps[1:]
        ctor = ctor + ([f"batch_axis={batch_axis}"] if batch_axis != 0 else [])
        args = [pred, label] + ([sample_weight] if weighted or tail else []) + [e for e, _ in tail]
        return finish(fw, f"gluon.loss.{cls}({', '.join(ctor)})({', '.join(args)})", steps)
    if steps[:1] == [("mean", None)] and per_sample == "mean":
        # the mean of the per-sample means is the overall mean
        args = [pred, label] + (["None"] if tail else []) + [e for e, _ in tail]
        return finish(fw, f"gluon.loss.{cls}({', '.join(ctor)})({', '.join(args)})", steps)
    # elementwise: one element per sample (Gluon's call takes no keywords)
    def flat(e: str) -> str:
        return f"{paren(e)}.reshape((-1, 1))"

    args = [flat(pred), flat(label)] + (["None"] if tail else []) + [
        flat(e) if same_shape else e for e, same_shape in tail]
    first = f"gluon.loss.{cls}({', '.join(ctor)})({', '.join(args)})"
    return finish(fw, f"{first}.reshape({paren(pred)}.shape)", steps)


def optax_call(fn: str, args: list[str], kwargs: list[str], steps: list[Step]) -> list[str]:
    return finish(FRAMEWORKS["optax"], f"optax.losses.{fn}({', '.join(args + kwargs)})", simplify(steps))


def canonical_call(fn: str, args: list[str], kwargs: list[str], steps: list[Step],
                   unreduced: str = "none") -> list[str]:
    """``polyloss.<fn>``, with ``reduction``/``sample_weight``/``normalizer`` taken from the
    steps where they express them; the rest as post-processing with the array's namespace."""
    steps = simplify(steps)
    extra: list[str] = []
    if steps[:1] and steps[0][0] == "mul" and isinstance(steps[0][1], str):
        w = steps[0][1]
        extra.append(f"sample_weight={w}")
        steps = steps[1:]
        if steps[:2] == [("sum", None), ("div_sum", w)]:
            extra.append("normalizer='sum_of_weights'")
            steps = [("mean", None)] + steps[2:]
    if steps[:1] == [("mean", None)]:
        steps = steps[1:]
    elif steps[:1] == [("sum", None)]:
        extra.append("reduction='sum'")
        steps = steps[1:]
    else:
        extra.append(f"reduction={unreduced!r}")
    fw = FRAMEWORKS["polyloss"]
    call = f"polyloss.{fn}({', '.join(args + kwargs + extra)})"
    lines = []
    if steps or "xp." in call:
        lines.append(f"xp = polyloss.array_namespace({args[0].split('(')[-1].split(',')[0]})")
    lines.append(f"loss = {call}")
    return lines + apply_steps(fw, steps)


def with_xp(lines: list[str], var: str) -> list[str]:
    """Canonical code lines with ``xp = polyloss.array_namespace(var)`` first, where any line
    uses the array namespace."""
    body = [line for line in lines if not line.startswith("xp = ")]
    if any("xp." in line for line in body):
        return [f"xp = polyloss.array_namespace({var})"] + body
    return body
