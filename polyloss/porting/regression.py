"""Porting table rows: regression losses (squared and absolute error, Huber / smooth L1,
log-cosh, MAPE, MSLE, and the canonical-only RMSE and quantile losses)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polyloss.porting.frameworks import FRAMEWORKS, Framework
from polyloss.porting.model import Concept, Native, NoNative, Spec
from polyloss.porting.reading import (
    GLUON_NOTE,
    KERAS_REDUCTION_NOTE,
    OPTAX_NOTE,
    canonical_steps,
    gluon_steps,
    keras_dtype,
    keras_steps,
    torch_steps,
)
from polyloss.porting.spelling import Call
from polyloss.porting.writing import (
    arg,
    canonical_call,
    gluon_call,
    keras_call,
    kw,
    optax_call,
    steps_for,
    torch_call,
)

__all__ = ["CONCEPTS", "elementwise_reader", "pred_target", "weight_inputs", "regression_inputs"]


# ---- reading a source call ----------------------------------------------------------------

def elementwise_reader(concept: str, roles: tuple[str, str] | None = None, **fixed: Any):
    """A reader for an elementwise loss: the convention's reduction steps, its weights (and
    their shapes, for --check), the dtype it computes in, and ``fixed`` semantic parameters
    (a callable value is called with the call to compute it)."""

    def read(call: Call) -> Spec:
        conv = call.convention
        pred, target = roles or _ROLES[conv]
        var = {"pred": call.arrays[pred]}
        if target in call.arrays:
            var["target"] = call.arrays[target]
        p: dict[str, Any] = {"weights": {}, "dtype": None}
        notes = list(_SOURCE_NOTES.get(conv, ()))
        if conv == "torch":
            w = call.arrays.get("weight")
            p["steps"] = torch_steps(call, w, fixed.get("torch_weight_mean", "count"))
            if w:
                p["weights"][w] = fixed.get("torch_weight_shape", "elementwise")
                p["elementwise_weight"] = w if p["weights"][w] == "elementwise" else None
        elif conv == "keras":
            p["steps"] = keras_steps(call, [("mean", call.config.get("axis", -1))])
            p["dtype"] = keras_dtype(call)
            if p["dtype"]:
                notes.append(f"a Keras loss object computes in its dtype ({p['dtype']}: "
                             "keras.config.floatx() unless dtype= is given), whatever the inputs' "
                             "dtype; the ports cast the inputs to it")
            if call.arrays.get("sample_weight"):
                p["weights"][call.arrays["sample_weight"]] = "per_sample"
        elif conv == "gluon":
            p["steps"] = gluon_steps(call)
            if call.arrays.get("sample_weight"):
                p["weights"][call.arrays["sample_weight"]] = "per_sample_column"
        elif conv == "optax":
            p["steps"] = []
        else:
            p["steps"] = canonical_steps(call)
            w = call.arrays.get("sample_weight")
            if w:
                p["weights"][w] = "elementwise"
                p["elementwise_weight"] = w
        for key, value in fixed.items():
            if not key.startswith("torch_weight"):
                p[key] = value(call) if callable(value) else value
        if "scale" in p and p["scale"] != 1:
            p["steps"] = [("mul", p["scale"])] + p["steps"]
        return Spec(concept, call, var, p, notes)

    return read


_ROLES = {"torch": ("input", "target"), "keras": ("y_pred", "y_true"), "gluon": ("pred", "label"),
          "optax": ("predictions", "targets"), "polyloss": ("pred", "target")}
_SOURCE_NOTES = {"keras": (KERAS_REDUCTION_NOTE,), "gluon": (GLUON_NOTE,), "optax": (OPTAX_NOTE,)}


# ---- writing it in a target ---------------------------------------------------------------

def pred_target(fw: Framework, spec: Spec) -> tuple[str, str]:
    """The prediction and target expressions in ``fw`` (cast where the source casts; zeros
    where an optax call had no targets: the predictions are the errors)."""
    pred = arg(fw, spec, "pred")
    if "target" in spec.var:
        return pred, arg(fw, spec, "target")
    zeros = {"torch": "torch.zeros_like", "keras": "keras.ops.zeros_like", "gluon": "mx.nd.zeros_like",
             "optax": "jnp.zeros_like"}.get(fw.convention)
    return pred, f"{zeros}({pred})" if zeros else f"{pred} * 0"


def _elementwise_native(status: str = "exact", notes: tuple[str, ...] = ()):
    """Decorator: a target writer returning code lines becomes one returning :class:`Native`."""

    def wrap(fn):
        def render(spec: Spec) -> Native:
            out = fn(spec)
            if isinstance(out, Native):
                return out
            return Native(status, out, list(notes))

        return render

    return wrap


def _torch(fn: str, weight_mean: str, **params: Any):
    @_elementwise_native()
    def render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["torch"], spec)
        return torch_call(fn, [pred, target], kw(**{k: spec.get(v) for k, v in params.items()}),
                          steps_for(FRAMEWORKS["torch"], spec), spec.get("elementwise_weight"),
                          weight_mean)

    return render


def _keras(fn: str, **params: Any):
    @_elementwise_native()
    def render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["keras"], spec)
        return keras_call(fn, target, pred, kw(**{k: spec.get(v) for k, v in params.items()}),
                          steps_for(FRAMEWORKS["keras"], spec))

    return render


def _gluon(cls: str, ctor: dict[str, Any] | None = None):
    @_elementwise_native()
    def render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["gluon"], spec)
        return gluon_call(cls, kw(**(ctor or {})), pred, target, steps_for(FRAMEWORKS["gluon"], spec))

    return render


def _optax(fn: str, **params: Any):
    @_elementwise_native()
    def render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["optax"], spec)
        return optax_call(fn, [pred, target], kw(**{k: spec.get(v) for k, v in params.items()}),
                          steps_for(FRAMEWORKS["optax"], spec))

    return render


def _canonical(fn: str, **params: Any):
    @_elementwise_native()
    def render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["polyloss"], spec)
        return canonical_call(fn, [pred, target], kw(**{k: spec.get(v) for k, v in params.items()}),
                              steps_for(FRAMEWORKS["polyloss"], spec))

    return render


# ---- check inputs ---------------------------------------------------------------------------

N, C = 4, 3  # batch and feature sizes of --check's inputs


def weight_inputs(spec: Spec, shape: tuple[int, ...], dtype: str, rng: Any,
                  classes: int | None = None) -> dict[str, np.ndarray]:
    """Positive weights of the kind each weight variable of ``spec`` has."""
    shapes = {"elementwise": shape, "per_sample": shape[:1], "per_sample_column": shape[:1] + (1,),
              "class": (classes or shape[-1],), "last_axis": shape[-1:]}
    return {name: rng.uniform(0.2, 2.0, size=shapes[kind]).astype(dtype)
            for name, kind in spec.get("weights", {}).items()}


def regression_inputs(positive: bool = False):
    def make(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
        if positive:
            target = rng.uniform(0.5, 3.0, size=(N, C))
            pred = target * rng.uniform(0.5, 1.5, size=(N, C))
        else:
            target = rng.normal(size=(N, C))
            pred = target + 2.0 * rng.normal(size=(N, C))
        out = {spec.var["pred"]: pred.astype(dtype)}
        if "target" in spec.var:
            out[spec.var["target"]] = target.astype(dtype)
        out.update(weight_inputs(spec, (N, C), dtype, rng))
        return out

    return make


# ---- the rows -------------------------------------------------------------------------------

def _absent(what: str, **conventions: str) -> dict[str, str]:
    names = {"torch": "torch", "keras": "Keras", "gluon": "Gluon", "optax": "optax",
             "polyloss": "the canonical API"}
    return {conv: reason or f"{names[conv]} has no {what} loss" for conv, reason in conventions.items()}


def _squared_error() -> Concept:
    read = elementwise_reader("squared_error", scale=1.0)
    return Concept(
        "squared_error", "squared error (MSE, ½·L2)",
        interpret={
            ("torch", "MSELoss"): read,
            ("torch", "mse_loss"): elementwise_reader("squared_error", scale=1.0,
                                                      torch_weight_mean="sum_of_weights"),
            ("keras", "MeanSquaredError"): read, ("keras", "mean_squared_error"): read,
            ("gluon", "L2Loss"): read,
            ("optax", "squared_error"): read,
            ("optax", "l2_loss"): elementwise_reader("squared_error", scale=0.5),
            ("polyloss", "mse"): elementwise_reader("squared_error", scale=1.0),
        },
        render={
            "torch": _torch("mse_loss", "sum_of_weights"),
            "keras": _keras("mean_squared_error"),
            "gluon": _gluon("L2Loss", {"weight": 2.0}),
            "optax": _optax("squared_error"),
            "polyloss": _canonical("mse"),
        },
        inputs=regression_inputs(),
        notes=["Gluon's L2Loss and optax's l2_loss include a factor ½ (the ports multiply by 2 or "
               "use weight=2.0)"],
    )


def _absolute_error() -> Concept:
    read = elementwise_reader("absolute_error")
    return Concept(
        "absolute_error", "absolute error (MAE, L1)",
        interpret={
            ("torch", "L1Loss"): read,
            ("torch", "l1_loss"): elementwise_reader("absolute_error",
                                                     torch_weight_mean="sum_of_weights"),
            ("keras", "MeanAbsoluteError"): read, ("keras", "mean_absolute_error"): read,
            ("gluon", "L1Loss"): read,
            ("polyloss", "mae"): read, ("polyloss", "l1"): read,
        },
        render={
            "torch": _torch("l1_loss", "sum_of_weights"),
            "keras": _keras("mean_absolute_error"),
            "gluon": _gluon("L1Loss"),
            "polyloss": _canonical("mae"),
        },
        inputs=regression_inputs(),
        absent=_absent("absolute-error", optax=""),
    )


def _huber_params(call: Call) -> tuple[float, float]:
    """``(delta, scale)``: the loss is ``scale · huber_delta``; smooth L1 with ``beta`` is
    ``huber_beta / beta`` (torch's SmoothL1Loss and Gluon's HuberLoss(rho))."""
    name = call.name
    if name in ("SmoothL1Loss", "smooth_l1_loss", "smooth_l1"):
        beta = float(call.config["beta"])
        return beta, 1.0 / beta
    if call.convention == "gluon":
        rho = float(call.config["rho"])
        return rho, 1.0 / rho
    return float(call.config["delta"]), 1.0


def _read_huber(torch_weight: bool = False):
    def read(call: Call) -> Spec:
        if call.name in ("SmoothL1Loss", "smooth_l1_loss", "smooth_l1") and call.config["beta"] == 0:
            spec = elementwise_reader("absolute_error")(call)  # beta = 0 is L1
            spec.notes.append("smooth L1 with beta = 0 is the absolute error")
            return spec
        delta, scale = _huber_params(call)
        if not delta > 0:
            raise NoNative(f"delta/beta/rho must be > 0, got {delta}")
        return elementwise_reader("huber", delta=delta, scale=scale)(call)

    return read


def _huber_torch(spec: Spec) -> Native:
    pred, target = pred_target(FRAMEWORKS["torch"], spec)
    delta, steps = spec["delta"], steps_for(FRAMEWORKS["torch"], spec)
    if _factor(steps) * delta == 1.0 and not spec.get("elementwise_weight"):
        steps = _without_factor(steps)
        code = torch_call("smooth_l1_loss", [pred, target], kw(beta=delta), steps)
    else:
        code = torch_call("huber_loss", [pred, target], kw(delta=delta), steps,
                          spec.get("elementwise_weight"), "count")
    return Native("exact", code, ["torch's SmoothL1Loss(beta) is HuberLoss(delta=beta) / beta"])


def _factor(steps: list) -> float:
    return steps[-1][1] if steps and steps[-1][0] == "mul" and not isinstance(steps[-1][1], str) else 1.0


def _without_factor(steps: list) -> list:
    return steps[:-1] if _factor(steps) != 1.0 else steps


def _huber_gluon(spec: Spec) -> Native:
    pred, target = pred_target(FRAMEWORKS["gluon"], spec)
    delta = spec["delta"]
    # Gluon's HuberLoss(rho) is smooth L1: huber_rho / rho, so weight = rho gives Huber
    steps = steps_for(FRAMEWORKS["gluon"], spec) + [("mul", delta)]
    return Native("exact", gluon_call("HuberLoss", kw(rho=delta), pred, target, steps),
                  ["Gluon's HuberLoss(rho) is smooth L1 (torch's SmoothL1Loss(beta=rho)), i.e. "
                   "Huber(delta=rho) / rho"])


def _huber_canonical(spec: Spec) -> Native:
    pred, target = pred_target(FRAMEWORKS["polyloss"], spec)
    delta, steps = spec["delta"], steps_for(FRAMEWORKS["polyloss"], spec)
    if _factor(steps) * delta == 1.0:
        return Native("exact", canonical_call("smooth_l1", [pred, target], kw(beta=delta),
                                              _without_factor(steps)))
    return Native("exact", canonical_call("huber", [pred, target], kw(delta=delta), steps))


def _huber() -> Concept:
    read = _read_huber()
    return Concept(
        "huber", "Huber and smooth L1",
        interpret={
            ("torch", "HuberLoss"): read, ("torch", "huber_loss"): read,
            ("torch", "SmoothL1Loss"): read, ("torch", "smooth_l1_loss"): read,
            ("keras", "Huber"): read, ("keras", "huber"): read,
            ("gluon", "HuberLoss"): read,
            ("optax", "huber_loss"): read,
            ("polyloss", "huber"): read, ("polyloss", "smooth_l1"): read,
        },
        render={
            "torch": _huber_torch,
            "keras": _keras("huber", delta="delta"),
            "gluon": _huber_gluon,
            "optax": _optax("huber_loss", delta="delta"),
            "polyloss": _huber_canonical,
        },
        inputs=regression_inputs(),
        notes=["Huber(delta) = ½r² for |r| <= delta, else delta·(|r| - ½delta); smooth L1(beta) = "
               "Huber(beta) / beta (beta = 0: L1); Gluon's HuberLoss(rho) is smooth L1(rho)"],
    )


def _log2_gap() -> float:
    """How far Keras's log-cosh constant (log 2 evaluated in float32) is from log 2."""
    from polyloss import keras as mirror

    return mirror._LOG2_FLOAT32 - math.log(2.0)


def _log_cosh_writer(conv: str):
    fw = FRAMEWORKS[conv]

    def render(spec: Spec) -> Native:
        pred, target = pred_target(fw, spec)
        steps = list(steps_for(fw, spec))
        notes = []
        source_keras = spec.get("form") == "keras"
        if source_keras != (conv == "keras"):
            # Keras subtracts float32(log 2); reproduce the source's constant
            gap = _log2_gap()
            steps = [("add", repr(-gap if source_keras else gap))] + steps
            notes.append(f"Keras's log-cosh subtracts log 2 rounded to float32, {gap:.3g} more than "
                         "log 2; the constant shift reproduces "
                         + ("it" if source_keras else "the exact value"))
        if conv == "keras":
            code = keras_call("log_cosh", target, pred, [], steps)
        elif conv == "optax":
            code = optax_call("log_cosh", [pred, target], [], steps)
        else:
            code = canonical_call("log_cosh", [pred, target], [], steps)
        return Native("exact", code, notes)

    return render


def _log_cosh() -> Concept:
    return Concept(
        "log_cosh", "log-cosh",
        interpret={
            ("keras", "LogCosh"): elementwise_reader("log_cosh", form="keras"),
            ("keras", "log_cosh"): elementwise_reader("log_cosh", form="keras"),
            ("optax", "log_cosh"): elementwise_reader("log_cosh", form="exact"),
            ("polyloss", "log_cosh"): elementwise_reader("log_cosh", form="exact"),
        },
        render={"keras": _log_cosh_writer("keras"), "optax": _log_cosh_writer("optax"),
                "polyloss": _log_cosh_writer("polyloss")},
        inputs=regression_inputs(),
        absent=_absent("log-cosh", torch="", gluon=""),
        term_scale=1.0,  # x + softplus(-2x) - log 2 cancels terms of order log 2
    )


def _keras_only(key: str, title: str, keras_names: tuple[str, str], canonical: str,
                canonical_args: Any, what: str, positive: bool = False, term_scale: float = 0.0,
                note: str = "") -> Concept:
    read = elementwise_reader(key)
    keras_fn = keras_names[1]

    @_elementwise_native()
    def keras_render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["keras"], spec)
        return keras_call(keras_fn, target, pred, [], steps_for(FRAMEWORKS["keras"], spec))

    @_elementwise_native()
    def canonical_render(spec: Spec) -> list[str]:
        pred, target = pred_target(FRAMEWORKS["polyloss"], spec)
        return canonical_call(canonical, [pred, target], kw(**canonical_args()),
                              steps_for(FRAMEWORKS["polyloss"], spec))

    return Concept(
        key, title,
        interpret={("keras", keras_names[0]): read, ("keras", keras_names[1]): read,
                   ("polyloss", canonical): read},
        render={"keras": keras_render, "polyloss": canonical_render},
        inputs=regression_inputs(positive),
        absent=_absent(what, torch="", gluon="", optax=""),
        term_scale=term_scale, notes=[note] if note else [],
    )


def _keras_epsilon() -> dict:
    from polyloss import keras as mirror

    return {"epsilon": mirror.EPSILON}


def _keras_msle_epsilon() -> dict:
    from polyloss import keras as mirror

    return {"epsilon": mirror._MSLE_EPSILON}


def _canonical_only(key: str, title: str, name: str, what: str) -> Concept:
    @_elementwise_native()
    def render(spec: Spec) -> list[str]:
        call = spec.call
        pred, target = pred_target(FRAMEWORKS["polyloss"], spec)
        return canonical_call(name, [pred, target], kw(**{k: call.config[k] for k in call.given}),
                              [])

    def read(call: Call) -> Spec:
        return Spec(key, call, {"pred": call.arrays["pred"], "target": call.arrays["target"]},
                    {"weights": {call.arrays["sample_weight"]: "elementwise"}
                     if call.arrays.get("sample_weight") else {}, "steps": []})

    return Concept(key, title, interpret={("polyloss", name): read}, render={"polyloss": render},
                   inputs=regression_inputs(), absent=_absent(what, torch="", keras="", gluon="",
                                                              optax=""))


def _mape_and_msle() -> list[Concept]:
    return [
        _keras_only("mape", "mean absolute percentage error",
                    ("MeanAbsolutePercentageError", "mean_absolute_percentage_error"), "mape",
                    _keras_epsilon, "percentage-error", positive=True,
                    note="Keras: 100·|y - ŷ| / max(|y|, 1e-7)"),
        _keras_only("msle", "mean squared logarithmic error",
                    ("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"), "msle",
                    _keras_msle_epsilon, "squared-logarithmic-error", positive=True, term_scale=1.0,
                    note="Keras clips both arguments below at 1e-7 (float32(1e-7), also for float64 "
                         "inputs) before log(x + 1)"),
        _canonical_only("rmse", "root mean squared error", "rmse", "root-mean-squared-error"),
        _canonical_only("quantile", "quantile (pinball)", "quantile", "quantile"),
    ]


CONCEPTS: list[Concept] = [_squared_error(), _absolute_error(), _huber(), _log_cosh(),
                           *_mape_and_msle()]
