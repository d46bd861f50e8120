"""Porting table rows: probabilistic classification losses (binary cross-entropy on
probabilities and on logits, soft margin, multi-label soft margin, focal, softmax
cross-entropy and NLL, Poly-1, KL divergence, Poisson and Gaussian NLL, generalized CE)."""

from __future__ import annotations

from typing import Any

import numpy as np

from polyloss.porting.frameworks import FRAMEWORKS, Framework, apply_steps
from polyloss.porting.model import Concept, Native, NoNative, Spec, simplify
from polyloss.porting.reading import (
    GLUON_NOTE,
    KERAS_REDUCTION_NOTE,
    OPTAX_NOTE,
    canonical_steps,
    gluon_scale,
    gluon_steps,
    keras_dtype,
    keras_steps,
    torch_reduction,
    torch_steps,
)
from polyloss.porting.regression import N, _absent, weight_inputs
from polyloss.porting.spelling import Call
from polyloss.porting.writing import (
    arg,
    canonical_call,
    finish,
    gluon_call,
    keras_call,
    kw,
    optax_call,
    paren,
    steps_for,
    torch_call,
    with_xp,
)

__all__ = ["CONCEPTS"]

C = 5  # classes in --check's inputs


def _constants() -> dict[str, float]:
    """The natives' constants, read from the mirrors that reproduce them."""
    from polyloss import gluon, keras
    from polyloss import torch as torch_mirror

    return {"torch_log_floor": torch_mirror._LOG_FLOOR, "keras_epsilon": keras.EPSILON,
            "gluon_log_epsilon": gluon._LOG_EPS}


def _clip_bounds() -> str:
    """Keras's probability clip ``[eps, 1 - eps]`` as call arguments."""
    eps = _constants()["keras_epsilon"]
    return f"{eps!r}, 1 - {eps!r}"


def _source_notes(conv: str) -> list[str]:
    return list({"keras": [KERAS_REDUCTION_NOTE], "gluon": [GLUON_NOTE],
                 "optax": [OPTAX_NOTE]}.get(conv, []))


def _keras_dtype_note(spec: Spec) -> None:
    if spec.get("dtype"):
        spec.notes.append(f"a Keras loss object computes in its dtype ({spec['dtype']}: "
                          "keras.config.floatx() unless dtype= is given); the ports cast the inputs")


# =============================================================================================
# Binary cross-entropy (probabilities or logits), soft margin, multi-label soft margin
# =============================================================================================
# spec.p: input "probs" | "logits"; clamp (probs) "torch" | "keras" | "gluon" | "bare";
# pos_weight (variable, broadcast on the last axis); smoothing (Keras's y(1-ε) + ε/2);
# labels "binary" | "signed" (±1, converted with (y + 1)/2); steps; weights; dtype.

_CLAMP_TEXT = {
    "torch": "torch floors each log at -100 (at most 100 per element)",
    "keras": "Keras clips probabilities to [1e-7, 1 - 1e-7] (at most 16.12 per element, 15.94 in "
             "float32)",
    "gluon": "Gluon adds 1e-12 inside both logs (a relative difference of about 1e-12 / min(p, 1-p) "
             "on ordinary inputs: 10.8-11.5 digits in float64; at most 27.63 per element)",
    "bare": "the logit form takes the bare log (inf at p = 0 or 1 for the wrong label)",
}


def _bce_read(concept: str = "binary_cross_entropy"):
    def read(call: Call) -> Spec:
        conv, name, cfg = call.convention, call.name, call.config
        var: dict[str, str] = {}
        p: dict[str, Any] = {"weights": {}, "dtype": None, "smoothing": 0.0, "labels": "binary",
                             "pos_weight": None, "input": "logits"}
        notes = _source_notes(conv)
        if conv == "torch":
            var = {"pred": call.arrays["input"], "target": call.arrays["target"]}
            w = call.arrays.get("weight")
            if name in ("MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss"):
                reduction = torch_reduction(call)
                p["steps"] = ([("mul", w)] if w else []) + [("mean", -1)] + (
                    [("mean", None)] if reduction == "mean" else [("sum", None)]
                    if reduction == "sum" else [])
                if w:
                    p["weights"][w] = "last_axis"
            else:
                p["steps"] = torch_steps(call, w, "count")
                if w:
                    p["weights"][w] = "elementwise"
            if name in ("BCELoss", "binary_cross_entropy"):
                p["input"], p["clamp"] = "probs", "torch"
            if call.arrays.get("pos_weight"):
                p["pos_weight"] = call.arrays["pos_weight"]
                p["weights"][p["pos_weight"]] = "last_axis"
            if name in ("SoftMarginLoss", "soft_margin_loss"):
                p["labels"] = "signed"
        elif conv == "keras":
            var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
            p["steps"] = keras_steps(call, [("mean", cfg.get("axis", -1))])
            p["dtype"] = keras_dtype(call)
            p["smoothing"] = float(cfg.get("label_smoothing", 0.0))
            if not cfg.get("from_logits"):
                p["input"], p["clamp"] = "probs", "keras"
            if call.arrays.get("sample_weight"):
                p["weights"][call.arrays["sample_weight"]] = "per_sample"
        elif conv == "gluon":
            var = {"pred": call.arrays["pred"], "target": call.arrays["label"]}
            p["steps"] = gluon_steps(call)
            if call.arrays.get("sample_weight"):
                p["weights"][call.arrays["sample_weight"]] = "per_sample_column"
            if name == "LogisticLoss":
                p["labels"] = cfg["label_format"]
            elif cfg.get("from_sigmoid"):
                p["input"], p["clamp"] = "probs", "gluon"
            if call.arrays.get("pos_weight"):
                p["pos_weight"] = call.arrays["pos_weight"]
                p["weights"][p["pos_weight"]] = "last_axis"
        elif conv == "optax":
            var = {"pred": call.arrays["logits"], "target": call.arrays["labels"]}
            p["steps"] = []
        else:
            var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
            w = call.arrays.get("sample_weight")
            if name == "multilabel_soft_margin":
                cw = call.arrays.get("class_weight")
                p["steps"] = ([("mul", cw)] if cw else []) + [("mean", -1)] + canonical_steps(call)
                if cw:
                    p["weights"][cw] = "last_axis"
                if w:
                    p["weights"][w] = "per_sample"
            else:
                p["steps"] = canonical_steps(call)
                if w:
                    p["weights"][w] = "elementwise"
                    p["elementwise_weight"] = w
            if name == "soft_margin":
                p["labels"] = cfg["label_format"]
            elif name == "binary_cross_entropy":
                p["smoothing"] = float(cfg["label_smoothing"])
                if not cfg["from_logits"]:
                    p["input"] = "probs"
                    clamp = cfg["log_clamp"]
                    if clamp is None:
                        p["clamp"] = "bare"
                    elif clamp == _constants()["torch_log_floor"]:
                        p["clamp"] = "torch"
                    else:
                        raise NoNative(f"log_clamp={clamp} has no native equivalent (torch floors at "
                                       "-100); use log_clamp=-100.0 or None")
                if call.arrays.get("pos_weight"):
                    p["pos_weight"] = call.arrays["pos_weight"]
                    p["weights"][p["pos_weight"]] = "last_axis"
        spec = Spec(concept, call, var, p, notes)
        _keras_dtype_note(spec)
        return spec

    return read


def _bce_label(fw: Framework, spec: Spec, y: str | None = None) -> str:
    y = arg(fw, spec, "target") if y is None else y
    if spec["labels"] == "signed":
        y = f"({y} + 1) / 2"
    eps = spec["smoothing"]
    if eps:
        y = f"{paren(y)} * {1.0 - eps!r} + {0.5 * eps!r}"
    return y


def _probs_status(spec: Spec, target_clamp: str) -> tuple[str, list[str]]:
    source = spec["clamp"]
    if source == target_clamp:
        return "exact", []
    if "gluon" in (source, target_clamp):
        return "approximate", [f"{_CLAMP_TEXT[source]}, where {_CLAMP_TEXT[target_clamp]}"]
    return "edges", [f"at probabilities near 0 or 1: {_CLAMP_TEXT[source]}, where "
                     f"{_CLAMP_TEXT[target_clamp]}"]


def _pos_weight_terms(fw: Framework, spec: Spec, one_label_loss) -> list[str]:
    """``P·y·ℓ(x, 1) + (1 - y)·ℓ(x, 0)``: torch's pos_weight with a native that has none (exact
    for soft labels too); ``one_label_loss(labels_expr)`` writes the native elementwise loss."""
    y = _bce_label(fw, spec)
    ones = {"torch": "torch.ones_like", "keras": "keras.ops.ones_like", "gluon": "mx.nd.ones_like",
            "optax": "jnp.ones_like"}[fw.convention]
    zeros = ones.replace("ones", "zeros")
    x = arg(fw, spec, "pred")
    return [f"y = {y}",
            f"loss = {spec['pos_weight']} * y * {one_label_loss(f'{ones}({x})')} "
            f"+ (1 - y) * {one_label_loss(f'{zeros}({x})')}"]


def _bce_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    y = _bce_label(fw, spec)
    weight = steps[0][1] if steps and steps[0][0] == "mul" and isinstance(steps[0][1], str) else None
    if spec["input"] == "probs":
        notes, status, diffs = [], "exact", []
        if spec["clamp"] == "keras":
            x = f"{paren(x)}.clamp({_clip_bounds()})"
            notes.append("clamping the probabilities reproduces Keras's clip (the log floor at -100 "
                         "is then never reached)")
        else:
            status, diffs = _probs_status(spec, "torch")
        code = torch_call("binary_cross_entropy", [x, y], [], steps, weight, "count")
        return Native(status, code, notes, diffs)
    if spec["labels"] == "signed" and not spec["pos_weight"] and not spec["smoothing"] and not weight:
        return Native("exact", torch_call("soft_margin_loss", [x, arg(fw, spec, "target")], [], steps),
                      ["torch's soft_margin_loss is log(1 + exp(-y·x)), not rewritten stably: inf "
                       "where -y·x > 88 in float32"])
    code = torch_call("binary_cross_entropy_with_logits", [x, y],
                      [f"pos_weight={spec['pos_weight']}"] if spec["pos_weight"] else [], steps,
                      weight, "count")
    notes = ["labels ±1 become 0/1 with (y + 1) / 2"] if spec["labels"] == "signed" else []
    return Native("exact", code, notes)


def _bce_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    notes: list[str] = []
    if spec["input"] == "probs":
        status, diffs = _probs_status(spec, "keras")
        code = keras_call("binary_crossentropy", _bce_label(fw, spec), x, [], steps)
        return Native(status, code, notes, diffs)
    smoothing = spec["smoothing"]
    if spec["pos_weight"]:
        def one(labels: str) -> str:
            return (f"keras.losses.binary_crossentropy({fw.expand_last(labels)}, {fw.expand_last(x)}, "
                    "from_logits=True)")

        code = _pos_weight_terms(fw, spec, one) + apply_steps(fw, simplify(steps))
        notes.append("Keras has no pos_weight: P·y·BCE(x, 1) + (1 - y)·BCE(x, 0) is torch's formula")
        return Native("exact", code, notes)
    y = arg(fw, spec, "target")
    if spec["labels"] == "signed":
        y = f"({y} + 1) / 2"
    code = keras_call("binary_crossentropy", y, x, ["from_logits=True"] + kw(
        label_smoothing=smoothing or None), steps)
    return Native("exact", code, notes)


def _bce_gluon(spec: Spec) -> Native:
    fw = FRAMEWORKS["gluon"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    if spec["input"] == "probs":
        status, diffs = _probs_status(spec, "gluon")
        return Native(status, gluon_call("SigmoidBCELoss", ["from_sigmoid=True"], x,
                                         _bce_label(fw, spec), steps), [], diffs)
    if spec["labels"] == "signed" and not spec["pos_weight"] and not spec["smoothing"]:
        return Native("exact", gluon_call("LogisticLoss", [], x, arg(fw, spec, "target"), steps),
                      ["Gluon's LogisticLoss(label_format='signed') takes ±1 labels"])
    y = _bce_label(fw, spec)
    tail = []
    if spec["pos_weight"]:
        # broadcast to the logits' shape, so that it follows them into an elementwise reshape
        tail = [(f"{spec['pos_weight']} * mx.nd.ones_like({x})", True)]
    code = gluon_call("SigmoidBCELoss", [], x, y, steps, tail)
    return Native("exact", code, ["Gluon's SigmoidBCELoss takes logits by default "
                                  "(from_sigmoid=False); its float32 softrelu is less accurate "
                                  "than float32 (up to ulp(|x|))"])


def _bce_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    notes: list[str] = []
    status, diffs = "exact", []
    if spec["input"] == "probs":
        if spec["clamp"] == "keras":
            x = f"jnp.clip({x}, {_clip_bounds()})"
            notes.append("clipping the probabilities reproduces Keras's clip")
        else:
            status, diffs = _probs_status(spec, "bare")
        x = f"jnp.log({x}) - jnp.log1p(-{x})"
        notes.append("optax takes logits: log(p) - log(1 - p) turns probabilities into logits")
    if spec["pos_weight"]:
        def one(labels: str) -> str:
            return f"optax.losses.sigmoid_binary_cross_entropy({x}, {labels})"

        code = _pos_weight_terms(fw, spec, one) + apply_steps(fw, simplify(steps))
        notes.append("optax has no pos_weight: P·y·BCE(x, 1) + (1 - y)·BCE(x, 0) is torch's formula")
        return Native(status, code, notes, diffs)
    code = optax_call("sigmoid_binary_cross_entropy", [x, _bce_label(fw, spec)], [], steps)
    return Native(status, code, notes, diffs)


def _bce_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    y = arg(fw, spec, "target")
    status, diffs, notes = "exact", [], []
    options = kw(pos_weight=None) + ([f"pos_weight={spec['pos_weight']}"] if spec["pos_weight"] else [])
    if spec["labels"] == "signed" and not spec["pos_weight"] and not spec["smoothing"]:
        return Native("exact", canonical_call("soft_margin", [x, y], [], steps))
    if spec["labels"] == "signed":
        y = f"({y} + 1) / 2"
    if spec["smoothing"]:
        options.append(f"label_smoothing={spec['smoothing']!r}")
    if spec["input"] == "probs":
        if spec["clamp"] == "keras":
            x = f"xp.clip({x}, {_clip_bounds()})"
        elif spec["clamp"] == "bare":
            options.append("log_clamp=None")
        elif spec["clamp"] == "gluon":
            status, diffs = _probs_status(spec, "torch")
    else:
        options.insert(0, "from_logits=True")
    return Native(status, canonical_call("binary_cross_entropy", [x, y], options, steps), notes, diffs)


def _bce_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    shape = (N, C)
    if spec["input"] == "probs":
        pred = rng.uniform(0.02, 0.98, size=shape)
    else:
        pred = 2.0 * rng.normal(size=shape)
    target = (rng.random(shape) < 0.5).astype(np.float64)
    if spec["labels"] == "signed":
        target = 2.0 * target - 1.0
    out = {spec.var["pred"]: pred.astype(dtype), spec.var["target"]: target.astype(dtype)}
    out.update(weight_inputs(spec, shape, dtype, rng))
    return out


def _bce_concepts() -> list[Concept]:
    render = {"torch": _bce_torch, "keras": _bce_keras, "gluon": _bce_gluon, "optax": _bce_optax,
              "polyloss": _bce_canonical}
    read = _bce_read()
    bce = Concept(
        "binary_cross_entropy", "binary cross-entropy (probabilities or logits)",
        interpret={
            ("torch", "BCELoss"): read, ("torch", "binary_cross_entropy"): read,
            ("torch", "BCEWithLogitsLoss"): read, ("torch", "binary_cross_entropy_with_logits"): read,
            ("keras", "BinaryCrossentropy"): read, ("keras", "binary_crossentropy"): read,
            ("gluon", "SigmoidBinaryCrossEntropyLoss"): read, ("gluon", "SigmoidBCELoss"): read,
            ("optax", "sigmoid_binary_cross_entropy"): read,
            ("polyloss", "binary_cross_entropy"): read,
        },
        render=render, inputs=_bce_inputs,
        notes=["on probabilities the natives protect the logs differently: torch floors each log "
               "at -100, Keras clips p to [1e-7, 1 - 1e-7], Gluon adds 1e-12 inside the logs; "
               "optax has no probability form",
               "Keras's label_smoothing=ε is y(1-ε) + ε/2; pos_weight (torch, Gluon's call) "
               "multiplies the positive term"],
    )
    soft = Concept(
        "soft_margin", "soft margin / logistic (±1 labels)",
        interpret={("torch", "SoftMarginLoss"): read, ("torch", "soft_margin_loss"): read,
                   ("gluon", "LogisticLoss"): read, ("polyloss", "soft_margin"): read},
        render=render, inputs=_bce_inputs,
        notes=["log(1 + exp(-y·x)) with ±1 labels is BCE on logits with labels (y + 1) / 2"],
    )
    multi = Concept(
        "multilabel_soft_margin", "multi-label soft margin",
        interpret={("torch", "MultiLabelSoftMarginLoss"): read,
                   ("torch", "multilabel_soft_margin_loss"): read,
                   ("polyloss", "multilabel_soft_margin"): read},
        render=render, inputs=_bce_inputs,
        notes=["the BCE on logits of each class, times its class weight, averaged over the classes"],
    )
    return [bce, soft, multi]


# =============================================================================================
# Focal losses
# =============================================================================================

def _focal_read(call: Call) -> Spec:
    conv, cfg = call.convention, call.config
    p: dict[str, Any] = {"weights": {}, "dtype": None, "smoothing": 0.0, "input": "logits"}
    notes = _source_notes(conv)
    if conv == "torch":
        var = {"pred": call.arrays["inputs"], "target": call.arrays["targets"]}
        p["alpha"] = cfg["alpha"] if cfg["alpha"] >= 0 else None
        p["gamma"] = float(cfg["gamma"])
        reduction = cfg["reduction"]
        p["steps"] = {"mean": [("mean", None)], "sum": [("sum", None)]}.get(reduction, [])
        notes.append("torchvision.ops.sigmoid_focal_loss applies alpha=0.25 by default (alpha < 0 "
                     "turns it off) and does not reduce by default")
    elif conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p["alpha"] = float(cfg["alpha"]) if cfg["apply_class_balancing"] else None
        p["gamma"] = float(cfg["gamma"])
        p["smoothing"] = float(cfg["label_smoothing"])
        p["steps"] = keras_steps(call, [("mean", cfg.get("axis", -1))])
        p["dtype"] = keras_dtype(call)
        if not cfg["from_logits"]:
            p["input"] = "probs"
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample"
        notes.append("Keras's BinaryFocalCrossentropy uses alpha only with "
                     "apply_class_balancing=True")
    elif conv == "optax":
        var = {"pred": call.arrays["logits"], "target": call.arrays["labels"]}
        p["alpha"] = cfg["alpha"]
        p["gamma"] = float(cfg["gamma"])
        p["steps"] = []
    else:
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        if cfg["kind"] != "binary":
            return _categorical_focal_read(call)
        p["alpha"] = cfg["alpha"]
        p["gamma"] = float(cfg["gamma"])
        p["smoothing"] = float(cfg["label_smoothing"])
        p["steps"] = canonical_steps(call)
        if not cfg["from_logits"]:
            p["input"] = "probs"
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "elementwise"
    spec = Spec("binary_focal", call, var, p, notes)
    _keras_dtype_note(spec)
    return spec


def _focal_input(fw: Framework, spec: Spec) -> tuple[str, str, list[str]]:
    """The logits (probabilities become logits where the target takes only logits)."""
    x = arg(fw, spec, "pred")
    if spec["input"] != "probs":
        return x, "exact", []
    ops = {"torch": "torch", "optax": "jnp", "polyloss": "xp"}[fw.convention]
    return (f"{ops}.log({x}) - {ops}.log1p(-{x})", "edges",
            ["Keras clips the probabilities of its BCE term to [1e-7, 1 - 1e-7]; from logits the "
             "target does not (a difference where p < 1e-7 or p > 1 - 1e-7)"])


def _focal_label(fw: Framework, spec: Spec) -> str:
    y = arg(fw, spec, "target")
    eps = spec["smoothing"]
    return f"{paren(y)} * {1.0 - eps!r} + {0.5 * eps!r}" if eps else y


def _focal_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    x, status, diffs = _focal_input(fw, spec)
    steps = simplify(steps_for(fw, spec))
    reduction = "none"
    if steps[:1] in ([("mean", None)], [("sum", None)]):
        reduction, steps = steps[0][0], steps[1:]
    alpha = spec["alpha"] if spec["alpha"] is not None else -1
    call = (f"torchvision.ops.sigmoid_focal_loss({x}, {_focal_label(fw, spec)}, alpha={alpha!r}, "
            f"gamma={spec['gamma']!r}" + (f", reduction={reduction!r})" if reduction != "none" else ")"))
    code = ["import torchvision"] + finish(fw, call, steps)
    return Native(status, code, ["torch itself has no focal loss; torchvision.ops has the sigmoid "
                                 "focal loss (alpha < 0 turns the class balancing off)"], diffs)


def _focal_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    alpha = spec["alpha"]
    options = [f"apply_class_balancing={alpha is not None}"] + (
        [f"alpha={alpha!r}"] if alpha is not None else []) + [f"gamma={spec['gamma']!r}"]
    if spec["input"] != "probs":
        options.append("from_logits=True")
    if spec["smoothing"]:
        options.append(f"label_smoothing={spec['smoothing']!r}")
    code = keras_call("binary_focal_crossentropy", arg(fw, spec, "target"), x, options, steps)
    notes = [] if spec["input"] == "probs" else [
        "exact on Keras's TensorFlow backend, whose sigmoid lets the BCE term recover the logits; "
        "on the JAX and torch backends Keras clips the probabilities (at logits beyond ±16)"]
    return Native("exact", code, notes)


def _focal_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    x, status, diffs = _focal_input(fw, spec)
    code = optax_call("sigmoid_focal_loss", [x, _focal_label(fw, spec)],
                      kw(alpha=spec["alpha"], gamma=spec["gamma"]), steps_for(fw, spec))
    return Native(status, code, [], diffs)


def _focal_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    x, steps = arg(fw, spec, "pred"), steps_for(fw, spec)
    options = kw(gamma=spec["gamma"], alpha=spec["alpha"])
    status, diffs = "exact", []
    if spec["input"] == "probs":
        x = f"xp.clip({x}, {_clip_bounds()})"
        options.append("from_logits=False")
        status, diffs = "edges", ["Keras computes (1 - p_t)^γ from the unclipped probability; here it "
                                  "is clipped too (a difference where p < 1e-7 or p > 1 - 1e-7)"]
    if spec["smoothing"]:
        options.append(f"label_smoothing={spec['smoothing']!r}")
    return Native(status, canonical_call("focal", [x, arg(fw, spec, "target")], options, steps),
                  [], diffs)


def _categorical_focal_read(call: Call) -> Spec:
    conv, cfg = call.convention, call.config
    if conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p = {"alpha": cfg["alpha"], "gamma": float(cfg["gamma"]), "smoothing": float(cfg["label_smoothing"]),
             "from_logits": bool(cfg["from_logits"]), "axis": cfg["axis"], "dtype": keras_dtype(call),
             "steps": keras_steps(call, []), "weights": {}}
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample"
    else:
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        p = {"alpha": cfg["alpha"], "gamma": float(cfg["gamma"]), "smoothing": float(cfg["label_smoothing"]),
             "from_logits": bool(cfg["from_logits"]), "axis": cfg["axis"], "dtype": None,
             "steps": canonical_steps(call), "weights": {}}
    spec = Spec("categorical_focal", call, var, p, _source_notes(conv))
    _keras_dtype_note(spec)
    return spec


def _categorical_focal_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    options = kw(alpha=spec["alpha"], gamma=spec["gamma"], from_logits=spec["from_logits"] or None,
                 label_smoothing=spec["smoothing"] or None)
    return Native("exact", keras_call("categorical_focal_crossentropy", arg(fw, spec, "target"),
                                      arg(fw, spec, "pred"), options, steps_for(fw, spec), None))


def _categorical_focal_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    x = arg(fw, spec, "pred")
    options = ["kind='categorical'"] + kw(alpha=spec["alpha"], gamma=spec["gamma"],
                                          label_smoothing=spec["smoothing"] or None)
    status, diffs = "exact", []
    if spec.call.convention == "keras":
        if spec["from_logits"]:
            status, diffs = "edges", ["Keras clips the softmax probabilities to [1e-7, 1 - 1e-7]; the "
                                      "canonical loss uses the exact log-softmax"]
        else:
            x = f"xp.clip({x} / xp.sum({x}, axis=-1, keepdims=True), {_clip_bounds()})"
            options.append("from_logits=False")
    elif not spec["from_logits"]:
        options.append("from_logits=False")
    code = canonical_call("focal", [x, arg(fw, spec, "target")], options, steps_for(fw, spec))
    return Native(status, code, ["Keras applies its scalar alpha to every class"], diffs)


def _binary_focal_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    shape = (N, C)
    pred = rng.uniform(0.02, 0.98, size=shape) if spec["input"] == "probs" else 2.0 * rng.normal(size=shape)
    target = (rng.random(shape) < 0.5).astype(np.float64)
    out = {spec.var["pred"]: pred.astype(dtype), spec.var["target"]: target.astype(dtype)}
    out.update(weight_inputs(spec, shape, dtype, rng))
    return out


def _categorical_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    logits = 2.0 * rng.normal(size=(N, C))
    pred = logits if spec.get("from_logits", True) else _softmax(logits)
    labels = rng.integers(0, C, size=N)
    out = {spec.var["pred"]: pred.astype(dtype), spec.var["target"]: np.eye(C)[labels].astype(dtype)}
    out.update(weight_inputs(spec, (N, C), dtype, rng))
    return out


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def _focal_concepts() -> list[Concept]:
    binary = Concept(
        "binary_focal", "sigmoid (binary) focal",
        interpret={("torch", "sigmoid_focal_loss"): _focal_read,
                   ("keras", "BinaryFocalCrossentropy"): _focal_read,
                   ("keras", "binary_focal_crossentropy"): _focal_read,
                   ("optax", "sigmoid_focal_loss"): _focal_read,
                   ("polyloss", "focal"): _focal_read},
        render={"torch": _focal_torch, "keras": _focal_keras, "optax": _focal_optax,
                "polyloss": _focal_canonical},
        inputs=_binary_focal_inputs, absent=_absent("focal", gluon=""),
        notes=["α_t·(1 - p_t)^γ·BCE(logits); the defaults differ: torchvision alpha=0.25 applied, "
               "Keras alpha unused unless apply_class_balancing=True, optax alpha=None"],
    )
    categorical = Concept(
        "categorical_focal", "softmax (categorical) focal",
        interpret={("keras", "CategoricalFocalCrossentropy"): _categorical_focal_read,
                   ("keras", "categorical_focal_crossentropy"): _categorical_focal_read},
        render={"keras": _categorical_focal_keras, "polyloss": _categorical_focal_canonical},
        inputs=_categorical_inputs, absent=_absent("softmax focal", torch="", gluon="", optax=""),
    )
    return [binary, categorical]


CONCEPTS: list[Concept] = [*_bce_concepts(), *_focal_concepts()]


# =============================================================================================
# Softmax cross-entropy and NLL
# =============================================================================================
# spec.p: input "logits" | "log_probs" | "probs_scce" (Keras SCCE on probabilities: clip, log,
# softmax) | "probs_cce" (Keras CCE: p/Σp, clip, log) | "probs_log" (the canonical log with
# torch's floor); labels "indices" | "probs"; axis; ignore (a label value or None);
# smoothing (ε/C on the label distribution); class_weight (variable); reduce "none" | "sum" |
# "mean" | "batchmean"; norm (of "mean") "weights" (Σ w_y over counted positions) | "valid"
# (counted positions) | "count" (all positions) | "sample_weights" (Σ sample_weight over
# counted positions); sample_weight (variable, per position); all_ignored "nan" | "zero";
# post (steps after the reduction); safe (optax's safe_softmax_cross_entropy); class_mask.

_TORCH_DEFAULT_IGNORE_NOTE = (
    "torch ignores labels equal to -100 (ignore_index's default); the ports assume no label is "
    "-100 (write ignore_index=-100 explicitly to port the masking)")
_LAYOUT_NOTE = ("the snippets are written for (N, C) inputs with (N,) labels; torch puts the class "
                "axis at 1 for inputs with more axes (N, C, d1, ...), Keras, Gluon and optax last: "
                "move it (x.movedim(1, -1) / keras.ops.moveaxis) when porting those")


def _ce_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    notes = _source_notes(conv)
    p: dict[str, Any] = {"input": "logits", "labels": "indices", "axis": -1, "ignore": None,
                         "smoothing": 0.0, "class_weight": None, "reduce": "none", "norm": "count",
                         "sample_weight": None, "all_ignored": "nan", "post": [], "safe": False,
                         "class_mask": None, "dtype": None, "weights": {}}
    if conv == "torch":
        var = {"pred": call.arrays["input"], "target": call.arrays["target"]}
        p["axis"] = 1
        if name in ("NLLLoss", "nll_loss"):
            p["input"] = "log_probs"
        else:
            p["smoothing"] = float(cfg["label_smoothing"])
            notes.append("torch's cross_entropy also takes probability targets (input's shape); the "
                         "port assumes class indices")
        if "ignore_index" in call.given:
            p["ignore"] = int(cfg["ignore_index"])
        else:
            notes.append(_TORCH_DEFAULT_IGNORE_NOTE)
        if call.arrays.get("weight"):
            p["class_weight"] = call.arrays["weight"]
            p["weights"][p["class_weight"]] = "class"
        p["reduce"] = torch_reduction(call)
        p["norm"] = "weights" if p["class_weight"] else "valid"
        notes.append("torch's mean divides by the summed class weights of the counted positions (their "
                     "number without weight); an all-ignored batch gives NaN")
    elif conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p["axis"] = cfg.get("axis", -1)
        p["dtype"] = keras_dtype(call)
        p["all_ignored"] = "zero"
        if name in ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"):
            p["ignore"] = cfg["ignore_class"]
            if not cfg["from_logits"]:
                p["input"] = "probs_scce"
        else:
            p["labels"] = "probs"
            p["smoothing"] = float(cfg["label_smoothing"])
            if not cfg["from_logits"]:
                p["input"] = "probs_cce"
        sw = call.arrays.get("sample_weight")
        if sw:
            p["sample_weight"] = sw
            p["weights"][sw] = "per_sample"
        if call.kind == "class":
            reduction = cfg["reduction"]
            p["reduce"] = {"sum": "sum", "none": "none", None: "none"}.get(reduction, "mean")
            p["norm"] = "valid" if p["ignore"] is not None else "count"
            if reduction == "mean_with_sample_weight" and sw:
                p["norm"] = "sample_weights"
        if p["input"] != "logits":
            notes.append("Keras's default from_logits=False takes probabilities: clipped to [1e-7, "
                         "1 - 1e-7] (CCE renormalises them first)")
    elif conv == "gluon":
        var = {"pred": call.arrays["pred"], "target": call.arrays["label"]}
        p["axis"] = cfg["axis"]
        if not cfg["sparse_label"]:
            p["labels"] = "probs"
        if cfg["from_logits"]:
            p["input"] = "log_probs"
            notes.append("Gluon's from_logits=True means log-probabilities (log_softmax output)")
        sw = call.arrays.get("sample_weight")
        if sw:
            p["sample_weight"] = sw
            p["sample_weight_column"] = True
            p["weights"][sw] = "per_sample_column"
            notes.append("Gluon's sample_weight multiplies the (N, 1) loss before the per-sample "
                         "mean: give it shape (N, 1)")
        scale = gluon_scale(call)
        p["post"] = [("mul", scale)] if scale is not None else []
        if cfg["batch_axis"] != 0:
            raise NoNative("batch_axis other than 0 is not ported")
    elif conv == "optax":
        var = {"pred": call.arrays["logits"], "target": call.arrays["labels"]}
        p["axis"] = cfg.get("axis", -1)
        if name != "softmax_cross_entropy_with_integer_labels":
            p["labels"] = "probs"
        p["safe"] = name == "safe_softmax_cross_entropy"
        if call.arrays.get("where"):
            p["class_mask"] = call.arrays["where"]
        if not isinstance(p["axis"], int):
            raise NoNative(f"axis={p['axis']!r} (several class axes) is not ported")
    else:
        var = {"pred": call.arrays.get("pred") or call.arrays["log_probs"], "target": call.arrays["target"]}
        p["axis"] = cfg["axis"]
        if name == "nll":
            p["input"] = "log_probs"
        elif not cfg["from_logits"]:
            if cfg["log_clamp"] != _constants()["torch_log_floor"]:
                raise NoNative(f"only log_clamp={_constants()['torch_log_floor']!r} (torch's floor) is "
                               "ported")
            p["input"] = "probs_log"
        notes.append("the canonical cross_entropy also takes probability targets (pred's shape); the "
                     "port assumes class indices")
        p["ignore"] = cfg["ignore_index"]
        p["smoothing"] = float(cfg["label_smoothing"])
        if call.arrays.get("class_weight"):
            p["class_weight"] = call.arrays["class_weight"]
            p["weights"][p["class_weight"]] = "class"
        sw = call.arrays.get("sample_weight")
        if sw:
            p["sample_weight"] = sw
            p["weights"][sw] = "per_sample"
        p["reduce"] = cfg["reduction"]
        p["norm"] = {"valid_count": "valid", "count": "count", "sum_of_weights": "weights"}[cfg["normalizer"]]
        if p["norm"] == "weights" and not p["class_weight"]:
            p["norm"] = "sample_weights" if sw else "valid"
        p["all_ignored"] = cfg["if_all_ignored"]
    if p["input"] == "log_probs" and p["smoothing"]:
        notes.append("smoothing on log-probabilities assumes they are normalised")
    notes.append(_LAYOUT_NOTE)
    spec = Spec("softmax_cross_entropy", call, var, p, notes)
    _keras_dtype_note(spec)
    return spec


_OPS = {
    "torch": {"floor": "{x}.clamp(min={lo})", "where": "torch.where({c}, {a}, {b})",
              "take": "{w}[{i}]", "log": "torch.log({x})", "clip": "{x}.clamp({lo}, {hi})",
              "sum_keep": "{x}.sum(dim={axis}, keepdim=True)", "count": "{v}.sum()",
              "ne": "{y} != {value}"},
    "keras": {"floor": "keras.ops.maximum({x}, {lo})", "where": "keras.ops.where({c}, {a}, {b})",
              "take": "keras.ops.take({w}, {i})", "log": "keras.ops.log({x})",
              "clip": "keras.ops.clip({x}, {lo}, {hi})",
              "sum_keep": "keras.ops.sum({x}, axis={axis}, keepdims=True)",
              "count": "keras.ops.sum(keras.ops.cast({v}, loss.dtype))",
              "ne": "keras.ops.not_equal({y}, {value})"},
    "gluon": {"floor": "mx.nd.maximum({x}, {lo})", "where": "{a} * {c}.astype({a}.dtype)",
              "take": "mx.nd.take({w}, {i})", "log": "mx.nd.log({x})",
              "clip": "mx.nd.clip({x}, {lo}, {hi})", "sum_keep": "{x}.sum(axis={axis}, keepdims=True)",
              "count": "{v}.astype(loss.dtype).sum()", "ne": "{y} != {value}"},
    "optax": {"floor": "jnp.maximum({x}, {lo})", "where": "jnp.where({c}, {a}, {b})",
              "take": "{w}[{i}]", "log": "jnp.log({x})", "clip": "jnp.clip({x}, {lo}, {hi})",
              "sum_keep": "jnp.sum({x}, axis={axis}, keepdims=True)", "count": "jnp.sum({v})",
              "ne": "{y} != {value}"},
}


def _op(fw: Framework, name: str, **kwargs: str) -> str:
    return _OPS[fw.convention][name].format(**kwargs)


def _ce_logits(fw: Framework, spec: Spec) -> tuple[str, str, list[str]]:
    """The prediction as logits for a native that applies log_softmax: ``(expression, status,
    differences)``."""
    x = arg(fw, spec, "pred")
    kind = spec["input"]
    eps = _constants()["keras_epsilon"]
    lo, hi = repr(eps), f"1 - {eps!r}"
    if kind == "logits":
        return x, "exact", []
    if kind == "log_probs":
        return x, "exact", []
    if kind == "probs_scce":
        return _op(fw, "log", x=_op(fw, "clip", x=x, lo=lo, hi=hi)), "exact", []
    if kind == "probs_cce":
        normalised = f"{x} / {_op(fw, 'sum_keep', x=x, axis=str(spec['axis']))}"
        return (_op(fw, "log", x=_op(fw, "clip", x=normalised, lo=lo, hi=hi)), "edges",
                ["Keras does not renormalise the clipped probabilities; the target's log_softmax does "
                 "(a difference only where a probability is below 1e-7 or above 1 - 1e-7)"])
    floor = _constants()["torch_log_floor"]
    return (_op(fw, "floor", x=_op(fw, "log", x=x), lo=repr(floor)), "edges",
            ["the target's log_softmax renormalises the probabilities (equal for probabilities that "
             "sum to 1)"])


def _ce_log_probs(fw: Framework, spec: Spec) -> str | None:
    """The prediction as log-probabilities for a native that takes them as they are (torch's
    nll_loss, Gluon's from_logits=True), or None where it only has logits."""
    kind = spec["input"]
    if kind == "logits":
        return None
    x, _, _ = _ce_logits(fw, spec)
    return x


def _ce_prelude(fw: Framework, spec: Spec) -> tuple[list[str], str]:
    """Lines defining ``valid`` (labels that count) and the labels to gather with, where the
    source ignores a label value."""
    y = spec.var["target"]
    if spec["ignore"] is None or spec["labels"] != "indices":
        return [], y
    ignore = spec["ignore"]
    valid = _op(fw, "ne", y=y, value=repr(ignore))
    if fw.convention == "gluon":
        return [f"valid = {valid}", f"y = {y} * valid  # ignored labels -> class 0, masked below"], "y"
    return [f"valid = {valid}",
            f"y = {_op(fw, 'where', c='valid', a=y, b='0')}  # ignored labels -> class 0, masked below"], "y"


def _ce_axis(fw: Framework, spec: Spec) -> int:
    """The class axis in the target: torch's axis 1 of (N, C) inputs is their last axis, which
    Keras, Gluon and optax use (inputs with more axes: see the layout note)."""
    axis = spec["axis"]
    if spec.call.convention in ("torch", "polyloss") and axis == 1 and fw.convention != "torch":
        return -1
    return axis


def _ce_dense(fw: Framework, spec: Spec, y: str) -> tuple[list[str], str]:
    """Dense label distributions: one-hot (indices), smoothed, times the class weights."""
    axis = _ce_axis(fw, spec)
    x = spec.var["pred"]
    lines = []
    if spec["labels"] == "indices":
        depth = f"{x}.shape[{axis}]"
        onehot = {"torch": f"torch.nn.functional.one_hot({y}, {depth}).to({x}.dtype)",
                  "keras": f"keras.ops.one_hot({y}, {depth}, dtype={x}.dtype)",
                  "gluon": f"mx.nd.one_hot({y}, {depth}, dtype={x}.dtype)",
                  "optax": f"jax.nn.one_hot({y}, {depth}, dtype={x}.dtype)"}[fw.convention]
        lines.append(f"labels = {onehot}")
    else:
        lines.append(f"labels = {arg(fw, spec, 'target')}")
    eps = spec["smoothing"]
    if eps:
        if fw.convention == "optax":
            lines.append(f"labels = optax.smooth_labels(labels, {eps!r})")
        else:
            lines.append(f"labels = labels * {1.0 - eps!r} + {eps!r} / labels.shape[{axis}]")
    if spec["class_weight"]:
        lines.append(f"labels = labels * {spec['class_weight']}")
    return lines, "labels"


def _ce_native(fw: Framework, spec: Spec) -> tuple[list[str], str, list[str], list[str]]:
    """Lines computing ``loss`` per position, ignored positions not yet masked, class weights
    and smoothing included: ``(lines, status, notes, differences)``."""
    conv = fw.convention
    lines, y = _ce_prelude(fw, spec)
    axis = _ce_axis(fw, spec)
    x, status, diffs = _ce_logits(fw, spec)
    notes: list[str] = []
    log_probs = _ce_log_probs(fw, spec)
    dense = spec["labels"] == "probs" or bool(spec["smoothing"])
    weight_after = bool(spec["class_weight"]) and not dense
    if spec["input"] in ("log_probs",) and conv in ("keras", "optax") or (
            spec["input"] == "log_probs" and conv == "torch" and dense):
        notes.append("log-probabilities go in as logits: the target's log_softmax leaves normalised "
                     "log-probabilities unchanged")
    if conv == "keras":
        if dense:
            more, labels = _ce_dense(fw, spec, y)
            lines += more
            if spec["input"] == "probs_cce":
                probs = arg(fw, spec, "pred")
                call = (f"keras.losses.categorical_crossentropy({labels}, {probs}"
                        + (f", axis={axis})" if axis != -1 else ")"))
                status, diffs = "exact", []
            else:
                call = (f"keras.losses.categorical_crossentropy({labels}, {x}, from_logits=True"
                        + (f", axis={axis})" if axis != -1 else ")"))
        else:
            ignore = spec["ignore"]
            labels = y if ignore is None else spec.var["target"]
            options = [] if ignore is None else [f"ignore_class={ignore}"]
            if spec["input"] == "probs_scce":
                call = f"keras.losses.sparse_categorical_crossentropy({labels}, {arg(fw, spec, 'pred')}"
            else:
                call = f"keras.losses.sparse_categorical_crossentropy({labels}, {x}, from_logits=True"
            call += "".join(f", {o}" for o in options) + ")"
            if ignore is not None:
                notes.append(f"Keras's loss object keras.losses.SparseCategoricalCrossentropy("
                             f"from_logits=True, ignore_class={ignore}) gives the same mean over the "
                             "counted labels (computed in float32 unless dtype= says otherwise; an "
                             "all-ignored batch gives 0 there)")
            if axis not in (-1,):
                notes.append("Keras's TensorFlow backend takes the class axis last only: move it there")
        lines.append(f"loss = {call}")
    elif conv == "gluon":
        options = kw(axis=axis if axis != -1 else None)
        if log_probs is not None:
            x, status, diffs = log_probs, "exact", []
            options.append("from_logits=True")
        if dense:
            more, labels = _ce_dense(fw, spec, y)
            lines += more
            options.append("sparse_label=False")
            lines.append(f"loss = gluon.loss.SoftmaxCELoss({', '.join(options)})({x}, {labels})")
        else:
            lines.append(f"loss = gluon.loss.SoftmaxCELoss({', '.join(options)})({x}, {y})")
        if spec["input"] != "logits" and spec["input"] != "log_probs":
            notes.append("Gluon's from_logits=True takes log-probabilities as they are")
    elif conv == "optax":
        if dense:
            more, labels = _ce_dense(fw, spec, y)
            lines += more
            lines.append(f"loss = optax.losses.softmax_cross_entropy({x}, {labels}"
                         + (f", axis={axis})" if axis != -1 else ")"))
        else:
            lines.append(f"loss = optax.losses.softmax_cross_entropy_with_integer_labels({x}, {y}"
                         + (f", axis={axis})" if axis != -1 else ")"))
    if weight_after:
        lines.append(f"loss = loss * {_op(fw, 'take', w=spec['class_weight'], i=y)}")
    elif conv == "keras" and not dense:  # ignore_class needs no remapped labels
        lines = [line for line in lines if not line.startswith("y = ")]
    if spec["safe"] and conv != "optax":
        status = "edges"
        diffs.append("optax's safe_softmax_cross_entropy makes a zero label against a -inf logit "
                     "contribute 0 (NaN here)")
    return lines, status, notes, diffs


def _ce_reduce(fw: Framework, spec: Spec, y: str) -> list[str]:
    """Mask the ignored positions, apply sample weights, and reduce as the source does."""
    lines = []
    ignore = spec["ignore"] is not None and spec["labels"] == "indices"
    if ignore:
        lines.append(f"loss = {_op(fw, 'where', c='valid', a='loss', b='0')}")
    sw = spec["sample_weight"]
    if sw:
        if spec.get("sample_weight_column"):  # Gluon's (N, 1) weight of its (N, 1) loss
            sw = {"torch": f"{sw}.reshape(-1)", "keras": f"keras.ops.reshape({sw}, (-1,))",
                  "gluon": f"{sw}.reshape((-1,))", "optax": f"{sw}.reshape(-1)"}[fw.convention]
        if spec["dtype"]:
            sw = fw.cast(sw, spec["dtype"])
        lines.append(f"loss = loss * {sw}")
    reduce, norm = spec["reduce"], spec["norm"]
    if reduce == "sum":
        lines.append(f"loss = {fw.reduce('sum', 'loss')}")
    elif reduce == "batchmean":
        lines.append(f"loss = {fw.reduce('sum', 'loss')} / {spec.var['pred']}.shape[0]")
    elif reduce == "mean":
        denominator = None
        if norm == "weights" and spec["class_weight"]:
            wy = _op(fw, "take", w=spec["class_weight"], i=y)
            if ignore:
                wy = _op(fw, "where", c="valid", a=wy, b="0")
            if sw:
                wy = f"{wy} * {sw}"
            denominator = fw.reduce("sum", wy)
        elif norm == "sample_weights" and sw:
            denominator = fw.reduce("sum", _op(fw, "where", c="valid", a=sw, b="0") if ignore else sw)
        elif norm in ("valid", "weights", "sample_weights") and ignore:
            denominator = _op(fw, "count", v="valid")
        if denominator is None:
            lines.append(f"loss = {fw.reduce('mean', 'loss')}")
        else:
            lines.append(f"denominator = {denominator}")
            if spec["all_ignored"] == "zero" and ignore:
                lines.append("# nothing counted: 0, as the source's divide_no_nan")
                safe = {"torch": "torch.where(denominator == 0, 1, denominator)",
                        "keras": "keras.ops.where(denominator == 0, 1, denominator)",
                        "gluon": "mx.nd.where(denominator == 0, mx.nd.ones_like(denominator), denominator)",
                        "optax": "jnp.where(denominator == 0, 1, denominator)"}[fw.convention]
                lines.append(f"loss = {fw.reduce('sum', 'loss')} / {safe}")
            else:
                lines.append(f"loss = {fw.reduce('sum', 'loss')} / denominator")
    return lines + apply_steps(fw, spec["post"])


def _ce_writer(conv: str):
    fw = FRAMEWORKS[conv]

    def render(spec: Spec) -> Native:
        if spec["class_mask"] is not None:
            raise NoNative("optax's where masks classes out of the softmax; no other framework has "
                           "that argument")
        lines, status, notes, diffs = _ce_native(fw, spec)
        y = "y" if spec["ignore"] is not None and spec["labels"] == "indices" else spec.var["target"]
        return Native(status, lines + _ce_reduce(fw, spec, y), notes, diffs)

    return render


def _ce_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    if spec["class_mask"] is not None:
        raise NoNative("optax's where masks classes out of the softmax; torch has no such argument")
    x, status, diffs = _ce_logits(fw, spec)
    notes = []
    if spec["axis"] not in (1, -1):
        notes.append("torch's class axis is 1: move the source's class axis there")
    target = arg(fw, spec, "target") if spec["labels"] == "probs" else spec.var["target"]
    options = []
    if spec["class_weight"]:
        options.append(f"weight={spec['class_weight']}")
    ignore = spec["ignore"] is not None and spec["labels"] == "indices"
    if ignore:
        options.append(f"ignore_index={spec['ignore']}")
    use_nll = spec["labels"] == "indices" and not spec["smoothing"] and spec["input"] != "logits"
    if use_nll:
        fn, status, diffs = "nll_loss", "exact", []
    else:
        fn = "cross_entropy"
        if spec["smoothing"]:
            options.append(f"label_smoothing={spec['smoothing']!r}")
        if spec["input"] == "log_probs":
            notes.append("log-probabilities go in as logits: torch's log_softmax leaves normalised "
                         "log-probabilities unchanged")
    if spec["safe"]:
        status, diffs = "edges", ["optax's safe_softmax_cross_entropy makes a zero label against a -inf "
                                  "logit contribute 0 (NaN here)"]
    torch_norm = "count" if spec["labels"] == "probs" else ("weights" if spec["class_weight"] else "valid")
    norm = spec["norm"]
    if norm == "weights" and not spec["class_weight"]:
        norm = "valid"
    if norm == "valid" and not ignore and spec["labels"] == "indices":
        norm = "count" if torch_norm == "count" else "valid"
    native_mean = (spec["reduce"] == "mean" and not spec["sample_weight"]
                   and (norm == torch_norm or (not ignore and norm in ("valid", "count")
                                               and torch_norm in ("valid", "count")))
                   and (spec["all_ignored"] == "nan" or not ignore))
    if spec["reduce"] in ("sum", "none") and not spec["sample_weight"]:
        reduction = spec["reduce"]
    elif native_mean:
        reduction = "mean"
    else:
        reduction = "none"
    call = f"torch.nn.functional.{fn}({', '.join([x, target] + options)}" + (
        f", reduction={reduction!r})" if reduction != "mean" else ")")
    lines = [f"loss = {call}"]
    if reduction == "none" and (spec["reduce"] != "none" or spec["sample_weight"]):
        if ignore:
            lines = [f"valid = {target} != {spec['ignore']}",
                     f"y = torch.where(valid, {target}, 0)"] + lines
        rest = _ce_reduce(fw, spec, "y" if ignore else target)
        lines += rest
    else:
        lines += apply_steps(fw, spec["post"])
    return Native(status, lines, notes, diffs)


def _ce_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    if spec["class_mask"] is not None:
        raise NoNative("optax's where masks classes out of the softmax; the canonical API has no such "
                       "argument")
    x = arg(fw, spec, "pred")
    kind = spec["input"]
    eps = _constants()["keras_epsilon"]
    options = []
    fn = "cross_entropy"
    status, diffs = "exact", []
    if kind == "log_probs" and spec["labels"] == "indices":
        fn = "nll"
    elif kind == "log_probs":
        status = "exact"
    elif kind == "probs_scce":
        x = f"xp.log(xp.clip({x}, {eps!r}, 1 - {eps!r}))"
    elif kind == "probs_cce":
        x = f"xp.clip({x} / xp.sum({x}, axis={spec['axis']}, keepdims=True), {eps!r}, 1 - {eps!r})"
        options += ["from_logits=False", "log_clamp=None"]
    elif kind == "probs_log":
        options.append("from_logits=False")
    if spec["axis"] != -1:
        options.append(f"axis={spec['axis']}")
    if spec["class_weight"]:
        options.append(f"class_weight={spec['class_weight']}")
    if spec["ignore"] is not None and spec["labels"] == "indices":
        options.append(f"ignore_index={spec['ignore']}")
    if spec["smoothing"]:
        options.append(f"label_smoothing={spec['smoothing']!r}")
    if spec["sample_weight"]:
        sw = spec["sample_weight"]
        if spec.get("sample_weight_column"):
            sw = f"xp.reshape({sw}, (-1,))"
        options.append(f"sample_weight={fw.cast(sw, spec['dtype']) if spec['dtype'] else sw}")
    if spec["reduce"] != "mean":
        options.append(f"reduction={spec['reduce']!r}")
    else:
        normalizer = {"weights": "sum_of_weights", "valid": "valid_count", "count": "count",
                      "sample_weights": "sum_of_weights"}[spec["norm"]]
        if normalizer != "valid_count":
            options.append(f"normalizer={normalizer!r}")
        if spec["all_ignored"] == "nan" and spec["ignore"] is not None:
            options.append("if_all_ignored='nan'")

    lines = []
    if "xp." in x or spec["post"] or "xp." in "".join(options):
        lines.append(f"xp = polyloss.array_namespace({spec.var['pred']})")
    target = arg(fw, spec, "target") if spec["labels"] == "probs" else spec.var["target"]
    lines.append(f"loss = polyloss.{fn}({', '.join([x, target] + options)})")
    lines += apply_steps(fw, spec["post"])
    notes = ["the canonical cross_entropy gives a zero target mass exactly 0"] if spec["safe"] else []
    return Native(status, lines, notes, diffs)


def _ce_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    logits = 2.0 * rng.normal(size=(N, C))
    kind = spec["input"]
    if kind == "logits":
        pred = logits
    elif kind == "log_probs":
        pred = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    else:
        pred = _softmax(logits)
    out = {spec.var["pred"]: pred.astype(dtype)}
    if spec["labels"] == "indices":
        labels = rng.integers(0, C, size=N).astype(np.int64)
        if spec["ignore"] is not None:
            labels[::3] = spec["ignore"]
        out[spec.var["target"]] = labels
    else:
        out[spec.var["target"]] = _softmax(rng.normal(size=(N, C))).astype(dtype)
    if spec["class_mask"] is not None:
        mask = rng.random((N, C)) < 0.8
        mask[:, 0] = True
        out[spec["class_mask"]] = mask
    out.update(weight_inputs(spec, (N, C), dtype, rng, classes=C))
    return out


def _ce_concept() -> Concept:
    read = _ce_read
    return Concept(
        "softmax_cross_entropy", "softmax cross-entropy and NLL",
        interpret={
            ("torch", "CrossEntropyLoss"): read, ("torch", "cross_entropy"): read,
            ("torch", "NLLLoss"): read, ("torch", "nll_loss"): read,
            ("keras", "SparseCategoricalCrossentropy"): read,
            ("keras", "sparse_categorical_crossentropy"): read,
            ("keras", "CategoricalCrossentropy"): read, ("keras", "categorical_crossentropy"): read,
            ("gluon", "SoftmaxCrossEntropyLoss"): read, ("gluon", "SoftmaxCELoss"): read,
            ("optax", "softmax_cross_entropy"): read,
            ("optax", "softmax_cross_entropy_with_integer_labels"): read,
            ("optax", "safe_softmax_cross_entropy"): read,
            ("polyloss", "cross_entropy"): read, ("polyloss", "nll"): read,
        },
        render={"torch": _ce_torch, "keras": _ce_writer("keras"), "gluon": _ce_writer("gluon"),
                "optax": _ce_writer("optax"), "polyloss": _ce_canonical},
        inputs=_ce_inputs,
        notes=["-Σ_c t_c·log softmax(z)_c per position; torch: class axis 1, ignore_index, class "
               "weights (mean over Σ w_y), label smoothing ε/C; Keras: SCCE (indices, ignore_class) and "
               "CCE (probabilities, label_smoothing), probabilities by default; Gluon: per sample, "
               "from_logits=True means log-probabilities; optax: unreduced, smooth_labels"],
    )


CONCEPTS.append(_ce_concept())


# =============================================================================================
# KL divergence
# =============================================================================================
# spec.p: pred "log_q" | "q" | "logits"; target "p" | "log_p"; form "exact" | "keras" (both
# clipped to [1e-7, 1]) | "gluon" (log(p + 1e-12)); generalized (optax: + Σ(q - p)); axis;
# steps (on the elementwise terms p·(log p - log q)).

_KL_FORMS = {
    "keras": "Keras clips both distributions to [1e-7, 1] (a zero target contributes "
             "1e-7·log(1e-7/q) instead of 0; q below 1e-7 counts as 1e-7)",
    "gluon": "Gluon computes p·(log(p + 1e-12) - log q) (about 1e-12·|Σ p/p| apart; a zero target "
             "contributes 0)",
}


def _kl_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    notes = _source_notes(conv)
    p: dict[str, Any] = {"pred": "log_q", "target": "p", "form": "exact", "generalized": False,
                         "axis": -1, "dtype": None, "weights": {}}
    if conv == "torch":
        var = {"pred": call.arrays["input"], "target": call.arrays["target"]}
        if cfg["log_target"]:
            p["target"] = "log_p"
        reduction = torch_reduction(call)
        p["steps"] = {"none": [], "sum": [("sum", None)], "mean": [("mean", None)],
                      "batchmean": [("sum", None), ("div", f"{var['pred']}.shape[0]")]}[reduction]
        if reduction == "mean":
            notes.append("torch's KLDivLoss 'mean' divides by the number of elements; 'batchmean' is "
                         "the KL divergence per sample")
    elif conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p["pred"], p["form"] = "q", "keras"
        p["steps"] = keras_steps(call, [("sum", -1)])
        p["dtype"] = keras_dtype(call)
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample"
    elif conv == "gluon":
        var = {"pred": call.arrays["pred"], "target": call.arrays["label"]}
        p["form"], p["axis"] = "gluon", cfg["axis"]
        if not cfg["from_logits"]:
            p["pred"] = "logits"
        p["steps"] = gluon_steps(call, per_sample="sum")
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample_column"
    elif conv == "optax":
        var = {"pred": call.arrays["log_predictions"],
               "target": call.arrays.get("targets") or call.arrays["log_targets"]}
        if name == "kl_divergence_with_log_targets":
            p["target"] = "log_p"
        p["generalized"] = name in ("generalized_kl_divergence", "convex_kl_divergence")
        p["axis"] = cfg["axis"]
        if call.arrays.get("where") or not isinstance(p["axis"], int):
            raise NoNative("optax's where / several axes are not ported")
        p["steps"] = [("sum", p["axis"])]
    else:
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        p["pred"] = {"log_probs": "log_q", "probs": "q", "logits": "logits"}[cfg["pred_kind"]]
        p["target"] = "log_p" if cfg["log_target"] else "p"
        p["axis"] = cfg["axis"]
        reduction = cfg["reduction"]
        if call.arrays.get("sample_weight"):
            raise NoNative("sample_weight is not ported for kl_div")
        p["steps"] = [("sum", p["axis"])] + {
            "none": [], "sum": [("sum", None)], "mean": [("mean", None)],
            "batchmean": [("sum", None), ("div", f"{var['pred']}.shape[0]")]}[reduction]
    spec = Spec("kl_divergence", call, var, p, notes)
    _keras_dtype_note(spec)
    return spec


def _kl_parts(fw: Framework, spec: Spec, want_log_q: bool, want_log_p: bool) -> tuple[str, str]:
    """The prediction as log q (or q) and the target as p (or log p), reproducing a Keras
    source's clip."""
    ops = {"torch": "torch", "keras": "keras.ops", "gluon": "mx.nd", "optax": "jnp",
           "polyloss": "xp"}[fw.convention]
    x, t = arg(fw, spec, "pred"), arg(fw, spec, "target")
    keras_source = spec["form"] == "keras"

    def clip(e: str) -> str:
        if fw.convention == "torch":
            return f"{paren(e)}.clamp({_constants()['keras_epsilon']!r}, 1)"
        return f"{ops}.clip({e}, {_constants()['keras_epsilon']!r}, 1)"

    axis = spec["axis"]
    kind = spec["pred"]
    if kind == "logits":
        log_q = {"torch": f"{paren(x)}.log_softmax(dim={axis})",
                 "keras": f"keras.ops.log_softmax({x}, axis={axis})",
                 "gluon": f"mx.nd.log_softmax({x}, axis={axis})",
                 "optax": f"jax.nn.log_softmax({x}, axis={axis})",
                 "polyloss": x}[fw.convention]
        q = f"{ops}.exp({log_q})"
    elif kind == "q":
        q = clip(x) if keras_source else x
        log_q = f"{ops}.log({q})"
    else:
        log_q = x
        q = f"{ops}.exp({x})"
    if spec["target"] == "log_p":
        log_p, p = t, f"{ops}.exp({t})"
    else:
        p = clip(t) if keras_source else t
        log_p = f"{ops}.log({p})"
    return (log_q if want_log_q else q), (log_p if want_log_p else p)


def _kl_status(spec: Spec, target_form: str) -> tuple[str, list[str]]:
    form = spec["form"]
    if form == target_form or (form == "keras" and target_form == "exact"):
        return "exact", []
    if "gluon" in (form, target_form):
        other = form if form != "gluon" else target_form
        return "approximate", [_KL_FORMS["gluon"]] + ([_KL_FORMS["keras"]] if other == "keras" else [])
    return "edges", [_KL_FORMS["keras"]]


def _kl_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    log_q, target = _kl_parts(fw, spec, True, spec["target"] == "log_p")
    status, diffs = _kl_status(spec, "exact")
    steps = simplify(steps_for(fw, spec))
    options = ["log_target=True"] if spec["target"] == "log_p" else []
    fold = {(): "none", (("sum", None),): "sum", (("mean", None),): "mean"}
    reduction = "none"
    if spec["generalized"]:
        pass
    elif tuple(steps) in fold:
        reduction, steps = fold[tuple(steps)], []
    elif steps[:2] == [("sum", None), ("div", f"{spec.var['pred']}.shape[0]")]:
        reduction, steps = "batchmean", steps[2:]
    lines = [f"loss = torch.nn.functional.kl_div({', '.join([log_q, target] + options)}, "
             f"reduction={reduction!r})"]
    if spec["generalized"]:
        q, p = _kl_parts(fw, spec, False, False)
        lines.append(f"loss = loss + {q} - {p}  # the generalized KL's extra terms")
    notes = ["torch's kl_div takes log q first, then p"]
    if reduction == "mean":
        notes.append("torch warns that 'mean' divides by the number of elements")
    return Native(status, lines + apply_steps(fw, steps), notes, diffs)


def _kl_rowsum_steps(steps: list, axis: int) -> tuple[bool, list]:
    """Whether the steps start with the sum over ``axis`` a per-row native does itself."""
    steps = simplify(steps)
    if steps[:1] == [("sum", axis)]:
        return True, steps[1:]
    return False, steps


def _kl_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    if spec["generalized"]:
        raise NoNative("Keras has no generalized (unnormalised) KL divergence; for normalised "
                       "distributions it equals the KL divergence")
    q, p = _kl_parts(fw, spec, False, False)
    status, diffs = _kl_status(spec, "keras")
    per_row, steps = _kl_rowsum_steps(steps_for(fw, spec), -1)
    if not per_row:
        p, q = fw.expand_last(p), fw.expand_last(q)
    code = finish(fw, f"keras.losses.kl_divergence({p}, {q})", steps)
    return Native(status, code, ["Keras takes probabilities for both, target first"], diffs)


def _kl_gluon(spec: Spec) -> Native:
    fw = FRAMEWORKS["gluon"]
    if spec["generalized"]:
        raise NoNative("Gluon has no generalized (unnormalised) KL divergence")
    log_q, p = _kl_parts(fw, spec, True, False)
    status, diffs = _kl_status(spec, "gluon")
    code = gluon_call("KLDivLoss", [], log_q, p, steps_for(fw, spec), per_sample="sum")
    return Native(status, code, ["Gluon's KLDivLoss takes log q (from_logits=True) and sums per "
                                 "sample"], diffs)


def _kl_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    log_target = spec["target"] == "log_p"
    log_q, target = _kl_parts(fw, spec, True, log_target)
    status, diffs = _kl_status(spec, "exact")
    axis = spec["axis"]
    per_row, steps = _kl_rowsum_steps(steps_for(fw, spec), axis)
    if not per_row:
        log_q, target, axis = f"{paren(log_q)}[..., None]", f"{paren(target)}[..., None]", -1
    fn = ("generalized_kl_divergence" if spec["generalized"] else
          "kl_divergence_with_log_targets" if log_target else "kl_divergence")
    code = optax_call(fn, [log_q, target], [] if axis == -1 else [f"axis={axis}"], steps)
    return Native(status, code, [], diffs)


def _kl_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    if spec["generalized"]:
        raise NoNative("the canonical kl_div is the KL divergence of normalised distributions")
    status, diffs = _kl_status(spec, "exact")
    kind = spec["pred"]
    options = []
    if spec["form"] == "keras":
        x, t = _kl_parts(fw, spec, False, False)
        options.append("pred_kind='probs'")
    else:
        x, t = arg(fw, spec, "pred"), arg(fw, spec, "target")
        if kind != "log_q":
            options.append(f"pred_kind={ {'q': 'probs', 'logits': 'logits'}[kind]!r}")
        if spec["target"] == "log_p":
            options.append("log_target=True")
    axis = spec["axis"]
    per_row, steps = _kl_rowsum_steps(steps_for(fw, spec), axis)
    if axis != -1:
        options.append(f"axis={axis}")
    lines = []
    if not per_row:
        lines.append(f"xp = polyloss.array_namespace({spec.var['pred']})")
        x, t = f"xp.expand_dims({x}, axis=-1)", f"xp.expand_dims({t}, axis=-1)"
        options = [o for o in options if not o.startswith("axis=")]
    fold = {(): "none", (("sum", None),): "sum", (("mean", None),): "mean"}
    if tuple(steps) in fold:
        reduction, steps = fold[tuple(steps)], []
    elif steps[:2] == [("sum", None), ("div", f"{spec.var['pred']}.shape[0]")]:
        reduction, steps = "batchmean", steps[2:]
    else:
        reduction = "none"
    if reduction != "mean":
        options.append(f"reduction={reduction!r}")
    if steps and not lines:
        lines.append(f"xp = polyloss.array_namespace({spec.var['pred']})")
    if "xp." in x and not lines:
        lines.append(f"xp = polyloss.array_namespace({spec.var['pred']})")
    lines.append(f"loss = polyloss.kl_div({', '.join([x, t] + options)})")
    return Native(status, lines + apply_steps(fw, steps), [], diffs)


def _kl_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    logits = rng.normal(size=(N, C))
    q = _softmax(logits)
    pred = {"log_q": np.log(q), "q": q, "logits": logits}[spec["pred"]]
    p = _softmax(rng.normal(size=(N, C)))
    target = np.log(p) if spec["target"] == "log_p" else p
    out = {spec.var["pred"]: pred.astype(dtype), spec.var["target"]: target.astype(dtype)}
    out.update(weight_inputs(spec, (N, C), dtype, rng))
    return out


def _kl_concept() -> Concept:
    read = _kl_read
    return Concept(
        "kl_divergence", "KL divergence",
        interpret={("torch", "KLDivLoss"): read, ("torch", "kl_div"): read,
                   ("keras", "KLDivergence"): read, ("keras", "kl_divergence"): read,
                   ("gluon", "KLDivLoss"): read,
                   ("optax", "kl_divergence"): read, ("optax", "kl_divergence_with_log_targets"): read,
                   ("optax", "generalized_kl_divergence"): read, ("optax", "convex_kl_divergence"): read,
                   ("polyloss", "kl_div"): read},
        render={"torch": _kl_torch, "keras": _kl_keras, "gluon": _kl_gluon, "optax": _kl_optax,
                "polyloss": _kl_canonical},
        inputs=_kl_inputs,
        notes=["p·(log p - log q) summed over the classes; torch and optax take log q first, Keras "
               "(target first) takes probabilities for both, Gluon log q and sums per sample"],
    )


# =============================================================================================
# Poisson and Gaussian NLL, Poly-1, generalized cross-entropy
# =============================================================================================

def _poisson_read(call: Call) -> Spec:
    conv, cfg = call.convention, call.config
    p: dict[str, Any] = {"log_input": True, "full": False, "eps": 1e-8, "dtype": None, "weights": {}}
    notes = _source_notes(conv)
    if conv == "torch":
        var = {"pred": call.arrays.get("log_input") or call.arrays["input"],
               "target": call.arrays["target"]}
        p.update(log_input=bool(cfg["log_input"]), full=bool(cfg["full"]), eps=float(cfg["eps"]))
        p["steps"] = torch_steps(call)
    elif conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p.update(log_input=False, eps=_constants()["keras_epsilon"])
        p["steps"] = keras_steps(call)
        p["dtype"] = keras_dtype(call)
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample"
    elif conv == "gluon":
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        p.update(log_input=bool(cfg["from_logits"]), full=bool(cfg["compute_full"]),
                 eps=float(cfg["epsilon"]))
        steps = [("mul", call.arrays["sample_weight"])] if call.arrays.get("sample_weight") else []
        if cfg["weight"] is not None:
            steps.append(("mul", cfg["weight"]))
        p["steps"] = steps + [("mean", None)]
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample_column"
        notes.append("Gluon's PoissonNLLLoss returns the mean over every element (a scalar), unlike "
                     "its other losses")
        if p["full"]:
            notes.append("Gluon's compute_full=True gives NaN for a zero count (0·log 0)")
    else:
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        p.update(log_input=bool(cfg["log_input"]), full=bool(cfg["full"]), eps=float(cfg["eps"]))
        p["steps"] = canonical_steps(call)
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "elementwise"
            p["elementwise_weight"] = call.arrays["sample_weight"]
    spec = Spec("poisson_nll", call, var, p, notes)
    _keras_dtype_note(spec)
    return spec


def _poisson_full_difference(spec: Spec, target: str) -> list[str]:
    if spec["full"] and (spec.call.convention == "gluon") != (target == "gluon"):
        return ["Gluon's compute_full=True gives NaN for a zero count; torch and polyloss give the "
                "finite value (the Stirling term is 0 for counts <= 1)"]
    return []


def _poisson_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    x, y = arg(fw, spec, "pred"), arg(fw, spec, "target")
    options = kw(log_input=spec["log_input"], full=spec["full"] or None,
                 eps=spec["eps"] if not spec["log_input"] else None)
    code = torch_call("poisson_nll_loss", [x, y], options, steps_for(fw, spec),
                      None)
    diffs = _poisson_full_difference(spec, "torch")
    return Native("edges" if diffs else "exact", code, [], diffs)


def _poisson_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    if spec["full"]:
        raise NoNative("Keras's Poisson has no Stirling term (torch full=True, Gluon compute_full=True)")
    x, y = arg(fw, spec, "pred"), arg(fw, spec, "target")
    keras_eps = _constants()["keras_epsilon"]
    status, diffs, notes = "exact", [], ["Keras's Poisson takes the rate, target first"]
    if spec["log_input"]:
        x = f"keras.ops.exp({x})"
        status = "approximate"
        diffs.append("Keras computes exp(z) - y·log(exp(z) + 1e-7), not exp(z) - y·z: about "
                     "y·1e-7·exp(-z) more")
    elif spec["eps"] != keras_eps:
        status = "approximate"
        diffs.append(f"Keras adds 1e-7 inside the log, the source {spec['eps']!r}: y·log((r + "
                     f"{spec['eps']!r}) / (r + 1e-7)) apart")
    return Native(status, keras_call("poisson", y, x, [], steps_for(fw, spec)), notes, diffs)


def _poisson_gluon(spec: Spec) -> Native:
    fw = FRAMEWORKS["gluon"]
    x, y = arg(fw, spec, "pred"), arg(fw, spec, "target")
    steps = simplify(steps_for(fw, spec))
    weight = None
    if steps[:1] and steps[0][0] == "mul" and isinstance(steps[0][1], str):
        weight, steps = steps[0][1], steps[1:]
    if steps[:1] == [("mean", None)]:
        steps = steps[1:]
        scale = ""
    elif steps[:1] == [("sum", None)]:
        steps = steps[1:]
        scale = f" * {x}.size"
    else:
        raise NoNative("Gluon's PoissonNLLLoss returns only the mean over every element")
    options = kw(from_logits=False if not spec["log_input"] else None,
                 compute_full=True if spec["full"] else None)
    call = f"gluon.loss.PoissonNLLLoss({', '.join(options)})({x}, {y}, {weight or 'None'}, {spec['eps']!r})"
    diffs = _poisson_full_difference(spec, "gluon")
    return Native("edges" if diffs else "exact", finish(fw, call + scale, steps),
                  ["Gluon's PoissonNLLLoss takes its epsilon at call time"], diffs)


def _poisson_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    options = kw(log_input=False if not spec["log_input"] else None, full=spec["full"] or None,
                 eps=spec["eps"] if not spec["log_input"] else None)
    code = canonical_call("poisson_nll", [arg(fw, spec, "pred"), arg(fw, spec, "target")], options,
                          steps_for(fw, spec))
    diffs = _poisson_full_difference(spec, "polyloss")
    return Native("edges" if diffs else "exact", code, [], diffs)


def _poisson_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    target = rng.integers(1, 6, size=(N, C)).astype(np.float64)  # counts (zero counts: an edge)
    pred = rng.normal(size=(N, C)) if spec["log_input"] else rng.uniform(0.1, 3.0, size=(N, C))
    out = {spec.var["pred"]: pred.astype(dtype), spec.var["target"]: target.astype(dtype)}
    out.update(weight_inputs(spec, (N, C), dtype, rng))
    return out


def _gaussian_read(call: Call) -> Spec:
    cfg = call.config
    var = {"pred": call.arrays["input"] if call.convention == "torch" else call.arrays["pred"],
           "target": call.arrays["target"], "var": call.arrays["var"]}
    steps = torch_steps(call) if call.convention == "torch" else canonical_steps(call)
    return Spec("gaussian_nll", call, var, {"full": bool(cfg["full"]), "eps": float(cfg["eps"]),
                                             "steps": steps, "weights": {}})


def _gaussian_canonical(spec: Spec) -> Native:
    options = kw(full=spec["full"] or None, eps=spec["eps"] if spec["eps"] != 1e-6 else None)
    code = canonical_call("gaussian_nll", [spec.var["pred"], spec.var["target"], spec.var["var"]],
                          options, spec["steps"])
    return Native("exact", code)


def _gaussian_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    target = rng.normal(size=(N, C))
    return {spec.var["pred"]: (target + rng.normal(size=(N, C))).astype(dtype),
            spec.var["target"]: target.astype(dtype),
            spec.var["var"]: rng.uniform(0.1, 2.0, size=(N, C)).astype(dtype)}


def _poly1_read(call: Call) -> Spec:
    cfg = call.config
    if call.convention == "optax":
        var = {"pred": call.arrays["logits"], "target": call.arrays["labels"]}
        if call.arrays.get("where") or not isinstance(cfg["axis"], int):
            raise NoNative("optax's where / several axes are not ported")
        steps = []
    else:
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        if cfg["ignore_index"] is not None or cfg["label_smoothing"] or call.arrays.get("sample_weight"):
            raise NoNative("ignore_index, label_smoothing and sample_weight are not ported for "
                           "poly1_cross_entropy")
        steps = canonical_steps(call)
    return Spec("poly1", call, var, {"epsilon": float(cfg["epsilon"]), "axis": cfg["axis"],
                                     "steps": steps, "weights": {}},
                ["Poly-1: CE + ε·(1 - p_t); the port takes probability (one-hot) labels"])


def _poly1_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    options = kw(epsilon=spec["epsilon"], axis=spec["axis"] if spec["axis"] != -1 else None)
    return Native("exact", optax_call("poly_loss_cross_entropy", [spec.var["pred"], spec.var["target"]],
                                      options, steps_for(fw, spec)),
                  ["labels that sum to 1: optax's ε·Σ labels·(1 - p) is then ε·(1 - p_t)"])


def _poly1_canonical(spec: Spec) -> Native:
    options = kw(epsilon=spec["epsilon"], axis=spec["axis"] if spec["axis"] != -1 else None)
    return Native("exact", canonical_call("poly1_cross_entropy", [spec.var["pred"], spec.var["target"]],
                                          options, spec["steps"]),
                  ["labels that sum to 1: optax's ε·Σ labels·(1 - p) is then ε·(1 - p_t)"])


def _gce_read(call: Call) -> Spec:
    var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
    spec = Spec("generalized_cross_entropy", call, var,
                {"q": call.config["q"], "steps": keras_steps(call, []), "dtype": keras_dtype(call),
                 "weights": {}}, _source_notes("keras"))
    if call.arrays.get("sample_weight"):
        spec.p["weights"][call.arrays["sample_weight"]] = "per_sample"
    _keras_dtype_note(spec)
    return spec


def _gce_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    return Native("exact", keras_call("categorical_generalized_cross_entropy", spec.var["target"],
                                      arg(fw, spec, "pred"), [f"q={spec['q']!r}"], steps_for(fw, spec),
                                      None))


def _probs_and_indices(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    out = {spec.var["pred"]: _softmax(2.0 * rng.normal(size=(N, C))).astype(dtype),
           spec.var["target"]: rng.integers(0, C, size=N).astype(np.int64)}
    out.update(weight_inputs(spec, (N,), dtype, rng))
    return out


def _poly1_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    labels = np.eye(C)[rng.integers(0, C, size=N)]
    return {spec.var["pred"]: (2.0 * rng.normal(size=(N, C))).astype(dtype),
            spec.var["target"]: labels.astype(dtype)}


def _more_concepts() -> list[Concept]:
    return [
        _kl_concept(),
        Concept("poisson_nll", "Poisson negative log-likelihood",
                interpret={("torch", "PoissonNLLLoss"): _poisson_read,
                           ("torch", "poisson_nll_loss"): _poisson_read,
                           ("keras", "Poisson"): _poisson_read, ("keras", "poisson"): _poisson_read,
                           ("gluon", "PoissonNLLLoss"): _poisson_read,
                           ("polyloss", "poisson_nll"): _poisson_read},
                render={"torch": _poisson_torch, "keras": _poisson_keras, "gluon": _poisson_gluon,
                        "polyloss": _poisson_canonical},
                inputs=_poisson_inputs, absent=_absent("Poisson", optax=""),
                notes=["exp(z) - y·z on log rates (torch log_input=True, Gluon from_logits=True) or "
                       "r - y·log(r + eps) on rates (Keras: eps = 1e-7); the Stirling term with "
                       "torch full=True / Gluon compute_full=True"]),
        Concept("gaussian_nll", "Gaussian negative log-likelihood",
                interpret={("torch", "GaussianNLLLoss"): _gaussian_read,
                           ("torch", "gaussian_nll_loss"): _gaussian_read,
                           ("polyloss", "gaussian_nll"): _gaussian_read},
                render={"polyloss": _gaussian_canonical}, inputs=_gaussian_inputs,
                absent=_absent("Gaussian NLL", keras="", gluon="", optax="")),
        Concept("poly1", "Poly-1 cross-entropy",
                interpret={("optax", "poly_loss_cross_entropy"): _poly1_read,
                           ("polyloss", "poly1_cross_entropy"): _poly1_read},
                render={"optax": _poly1_optax, "polyloss": _poly1_canonical}, inputs=_poly1_inputs,
                absent=_absent("Poly-1", torch="", keras="", gluon="")),
        Concept("generalized_cross_entropy", "generalized cross-entropy (GCE)",
                interpret={("keras", "CategoricalGeneralizedCrossEntropy"): _gce_read,
                           ("keras", "categorical_generalized_cross_entropy"): _gce_read},
                render={"keras": _gce_keras}, inputs=_probs_and_indices,
                absent=_absent("generalized cross-entropy", torch="", gluon="", optax="",
                               polyloss="")),
    ]


CONCEPTS += _more_concepts()


# =============================================================================================
# Linear cross-entropy: a projection and softmax cross-entropy in one
# =============================================================================================

def _linear_read(call: Call) -> Spec:
    """``F.linear_cross_entropy`` / ``polyloss.linear_cross_entropy``: the cross-entropy of the
    logits ``input @ weight.T + bias``, read as the cross-entropy row's call on those logits."""
    from polyloss.porting.spelling import parse

    cfg, a = call.config, call.arrays
    if call.kind == "class":
        return Spec("linear_cross_entropy", call, dict(call.arrays), {"owned": (
            "torch.nn.LinearCrossEntropyLoss owns its projection (self.linear), which no other "
            "framework's loss holds; port torch.nn.functional.linear_cross_entropy(input, "
            "layer.linear.weight, target, ...) instead")})
    if call.convention == "torch":
        hidden, weight, bias = a["input"], a["linear_weight"], a.get("linear_bias")
        args = [f"weight={a['weight']}"] if a.get("weight") else []
        if cfg["ignore_index"] is not None:
            args.append(f"ignore_index={cfg['ignore_index']!r}")
        args += [f"{k}={cfg[k]!r}" for k in ("reduction", "label_smoothing") if k in call.given]
        ce = parse(f"torch.nn.functional.cross_entropy(logits, {a['target']}, {', '.join(args)})")
    else:
        hidden, weight, bias = a["hidden"], a["weight"], a.get("bias")
        args = [f"class_weight={a['class_weight']}"] if a.get("class_weight") else []
        if a.get("sample_weight"):
            args.append(f"sample_weight={a['sample_weight']}")
        args += [f"{k}={cfg[k]!r}" for k in ("ignore_index", "label_smoothing", "reduction", "normalizer",
                                             "if_all_ignored") if k in call.given]
        ce = parse(f"polyloss.cross_entropy(logits, {a['target']}, {', '.join(args)})")
    spec = _ce_read(ce)
    spec.concept, spec.call = "linear_cross_entropy", call
    spec.var.update(hidden=hidden, weight=weight)
    if bias:
        spec.var["bias"] = bias
    spec.notes.insert(0, "the logits are input @ weight.T + bias (a (C, F) weight; the K-dimensional "
                         "weights of torch are not ported); the ports compute them, then port the "
                         "cross-entropy")
    return spec


def _logits_line(fw: Framework, spec: Spec) -> str:
    h, w = spec.var["hidden"], spec.var["weight"]
    product = {"torch": f"{h} @ {w}.T", "keras": f"keras.ops.matmul({h}, keras.ops.transpose({w}))",
               "gluon": f"mx.nd.dot({h}, {w}, transpose_b=True)", "optax": f"{h} @ {w}.T",
               "polyloss": f"{h} @ xp.matrix_transpose({w})"}[fw.convention]
    bias = f" + {spec.var['bias']}" if "bias" in spec.var else ""
    return f"logits = {product}{bias}"


def _linear_writer(conv: str):
    fw = FRAMEWORKS[conv]
    ce = {"torch": _ce_torch, "polyloss": _ce_canonical}.get(conv) or _ce_writer(conv)

    def render(spec: Spec) -> Native:
        if spec.get("owned"):
            raise NoNative(spec["owned"])
        native = ce(spec)
        lines = [_logits_line(fw, spec)] + native.code
        if conv == "polyloss":
            lines = with_xp(lines, spec.var["hidden"])
        notes = [f"{fw.title} has no fused projection and cross-entropy: the logits are computed "
                 "first"] + native.notes
        return Native(native.status, lines, notes, native.differences)

    return render


def _linear_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    if spec.get("owned"):
        raise NoNative("the layer draws its own weights")
    features = 3
    out = {spec.var["hidden"]: rng.normal(size=(N, features)).astype(dtype),
           spec.var["weight"]: rng.normal(size=(C, features)).astype(dtype)}
    if "bias" in spec.var:
        out[spec.var["bias"]] = rng.normal(size=C).astype(dtype)
    labels = rng.integers(0, C, size=N).astype(np.int64)
    if spec["ignore"] is not None:
        labels[::3] = spec["ignore"]
    out[spec.var["target"]] = labels
    out.update(weight_inputs(spec, (N, C), dtype, rng, classes=C))
    return out


CONCEPTS.append(Concept(
    "linear_cross_entropy", "linear cross-entropy (projection + softmax cross-entropy)",
    interpret={("torch", "linear_cross_entropy"): _linear_read,
               ("torch", "LinearCrossEntropyLoss"): _linear_read,
               ("polyloss", "linear_cross_entropy"): _linear_read},
    render={conv: _linear_writer(conv) for conv in ("torch", "keras", "gluon", "optax", "polyloss")},
    inputs=_linear_inputs,
    notes=["cross_entropy(input @ weight.T + bias, target) computed without holding the logits "
           "(torch 2.13's F.linear_cross_entropy)"],
))
