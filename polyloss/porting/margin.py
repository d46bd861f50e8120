"""Porting table rows: margin losses (binary hinge, squared hinge, perceptron and margin
ranking; Crammer–Singer and Weston–Watkins multiclass hinges; multi-label margin; hinge
embedding; optax's sparsemax and Fenchel–Young losses)."""

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
    gluon_steps,
    keras_dtype,
    keras_steps,
    torch_steps,
)
from polyloss.porting.regression import N, _absent, weight_inputs
from polyloss.porting.spelling import Call
from polyloss.porting.writing import (
    arg,
    canonical_call,
    gluon_call,
    keras_call,
    optax_call,
    paren,
    steps_for,
    torch_call,
    with_xp,
)

__all__ = ["CONCEPTS"]

C = 5

_SOURCE_NOTES = {"keras": [KERAS_REDUCTION_NOTE], "gluon": [GLUON_NOTE], "optax": [OPTAX_NOTE]}
_KERAS_LABELS = ("Keras converts 0/1 labels to ±1 when every label is 0 or 1 (the ports do the same "
                 "first)")
_SIGNED_LABELS = "labels must be ±1 (Keras would convert an all-0/1 label set to ±1)"


# ---- binary hinge family ----------------------------------------------------------------------
# spec.p: margin; squared; labels "signed" | "binary" (2y - 1) | "keras" (2y - 1 if every label
# is 0 or 1); ranking (the prediction is x1 - x2); steps; weights; dtype.

def _hinge_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    p: dict[str, Any] = {"margin": 1.0, "squared": "squared" in name.lower(), "labels": "signed",
                         "ranking": False, "dtype": None, "weights": {}}
    notes = list(_SOURCE_NOTES.get(conv, []))
    if conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p["labels"] = "keras"
        p["steps"] = keras_steps(call)
        p["dtype"] = keras_dtype(call)
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample"
        notes.append(_KERAS_LABELS)
    elif conv == "gluon":
        var = {"pred": call.arrays["pred"], "target": call.arrays["label"]}
        p["margin"] = float(cfg["margin"])
        p["steps"] = gluon_steps(call)
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample_column"
    elif conv == "optax":
        var = {"pred": call.arrays["predictor_outputs"], "target": call.arrays["targets"]}
        p["margin"] = 0.0 if name == "perceptron_loss" else 1.0
        p["steps"] = []
    elif conv == "torch":
        var = {"x1": call.arrays["input1"], "x2": call.arrays["input2"], "target": call.arrays["target"]}
        p["ranking"] = True
        p["margin"] = float(cfg["margin"])
        p["steps"] = torch_steps(call)
    else:
        if name == "margin_ranking":
            var = {"x1": call.arrays["x1"], "x2": call.arrays["x2"], "target": call.arrays["target"]}
            p["ranking"] = True
        else:
            var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
            p["labels"] = cfg["label_format"]
        p["margin"] = float(cfg["margin"])
        p["steps"] = canonical_steps(call)
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "elementwise" if not p["ranking"] else "per_sample"
    if p["ranking"]:
        notes.append("the margin ranking loss max(0, -y·(x1 - x2) + margin) is the hinge of x1 - x2")
    spec = Spec("hinge", call, var, p, notes)
    if p["dtype"]:
        spec.notes.append(f"a Keras loss object computes in {p['dtype']}; the ports cast the inputs")
    return spec


def _pred(fw: Framework, spec: Spec) -> str:
    if spec["ranking"]:
        return f"{arg(fw, spec, 'x1')} - {arg(fw, spec, 'x2')}"
    return arg(fw, spec, "pred")


def _label_lines(fw: Framework, spec: Spec) -> tuple[list[str], str]:
    """Lines turning the source's labels into ±1 (Keras's rule, or 2y - 1), and the label."""
    y = arg(fw, spec, "target")
    kind = spec["labels"]
    if kind == "signed":
        return [], y
    if kind == "binary":
        return [f"y = 2 * {paren(y)} - 1"], "y"
    lines = [] if y == spec.var["target"] else [f"y = {y}"]
    y = y if not lines else "y"
    rule = {
        "torch": f"torch.where((({y} == 0) | ({y} == 1)).all(), 2 * {y} - 1, {y})",
        "keras": (f"keras.ops.where(keras.ops.all(keras.ops.logical_or({y} == 0, {y} == 1)), "
                  f"2 * {y} - 1, {y})"),
        "gluon": f"{y} + (({y} == 0) + ({y} == 1)).min() * ({y} - 1)",
        "optax": f"jnp.where(jnp.all(({y} == 0) | ({y} == 1)), 2 * {y} - 1, {y})",
        "polyloss": f"xp.where(xp.all(({y} == 0) | ({y} == 1)), 2 * {y} - 1, {y})",
    }[fw.convention]
    return lines + [f"y = {rule}  # Keras's rule: 0/1 labels become ±1 when all are 0 or 1"], "y"


def _hinge_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    lines, y = _label_lines(fw, spec)
    steps = steps_for(fw, spec)
    if spec["ranking"]:
        args = [arg(fw, spec, "x1"), arg(fw, spec, "x2"), y]
    else:
        x = _pred(fw, spec)
        args = [x, f"torch.zeros_like({x})", y]
    options = [f"margin={spec['margin']!r}"] if spec["margin"] else []
    notes = [] if spec["ranking"] else [
        "torch has no binary hinge; margin_ranking_loss(x, 0, y, margin) is max(0, margin - y·x)"]
    if spec["squared"]:
        code = torch_call("margin_ranking_loss", args, options, [])
        code += ["loss = loss ** 2"] + apply_steps(fw, simplify(steps))
    else:
        code = torch_call("margin_ranking_loss", args, options, steps)
    return Native("exact", lines + code, notes)


def _scaled(spec: Spec, x: str) -> tuple[str, float]:
    """``(prediction, factor)`` for a native with margin 1: ``m·hinge(x/m)`` (``m²`` squared)."""
    m = spec["margin"]
    if m == 1.0:
        return x, 1.0
    return f"{paren(x)} / {m!r}", m * m if spec["squared"] else m


def _hinge_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    if spec["margin"] <= 0:
        raise NoNative("Keras's hinge has margin 1 (a positive margin m is m·hinge(x/m)); the "
                       "perceptron loss (margin 0) has no Keras form")
    lines, y = _label_lines(fw, spec)
    x, factor = _scaled(spec, _pred(fw, spec))
    fn = "squared_hinge" if spec["squared"] else "hinge"
    steps = steps_for(fw, spec) + ([("mul", factor)] if factor != 1.0 else [])
    notes = [_SIGNED_LABELS] if spec["labels"] != "keras" else []
    if spec["margin"] != 1.0:
        notes.append("Keras's margin is 1: the margin m is had as m·hinge(y, x/m)")
    return Native("exact", lines + keras_call(fn, y, x, [], steps), notes)


def _hinge_gluon(spec: Spec) -> Native:
    fw = FRAMEWORKS["gluon"]
    lines, y = _label_lines(fw, spec)
    cls = "SquaredHingeLoss" if spec["squared"] else "HingeLoss"
    ctor = [f"margin={spec['margin']!r}"] if spec["margin"] != 1.0 else []
    return Native("exact", lines + gluon_call(cls, ctor, _pred(fw, spec), y, steps_for(fw, spec)),
                  ["Gluon uses the labels as given (±1)"])


def _hinge_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    lines, y = _label_lines(fw, spec)
    x = _pred(fw, spec)
    steps = steps_for(fw, spec)
    if spec["margin"] == 0:
        fn, factor = "perceptron_loss", 1.0
    else:
        fn = "hinge_loss"
        x, factor = _scaled(spec, x)
    code = optax_call(fn, [x, y], [], [])
    if spec["squared"]:
        code.append("loss = loss ** 2")
    notes = ["optax's hinge_loss has margin 1 (m·hinge(x/m) for margin m); perceptron_loss is "
             "margin 0"] if spec["margin"] not in (1.0,) else []
    return Native("exact", lines + code + apply_steps(fw, simplify(
        steps + ([("mul", factor)] if factor != 1.0 else []))), notes)


def _hinge_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    lines, y = _label_lines(fw, spec)
    options = [f"margin={spec['margin']!r}"] if spec["margin"] != 1.0 else []
    if spec["ranking"]:
        code = canonical_call("margin_ranking", [arg(fw, spec, "x1"), arg(fw, spec, "x2"), y], options,
                              steps_for(fw, spec))
        return Native("exact", code)
    fn = "squared_hinge" if spec["squared"] else "hinge"
    code = canonical_call(fn, [_pred(fw, spec), y], options, steps_for(fw, spec))
    return Native("exact", with_xp(lines + code, spec.var["target"]))


def _hinge_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    shape = (N,) if spec["ranking"] else (N, C)
    signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    if spec["labels"] in ("keras", "binary"):
        signs = (signs + 1) / 2  # 0/1 labels, which the source turns into ±1
    out = {spec.var["target"]: signs.astype(dtype)}
    if spec["ranking"]:
        out[spec.var["x1"]] = rng.normal(size=shape).astype(dtype)
        out[spec.var["x2"]] = rng.normal(size=shape).astype(dtype)
    else:
        out[spec.var["pred"]] = rng.normal(size=shape).astype(dtype)
    out.update(weight_inputs(spec, shape, dtype, rng))
    return out


def _hinge_concept() -> Concept:
    read = _hinge_read
    return Concept(
        "hinge", "binary hinge, squared hinge, perceptron, margin ranking",
        interpret={("keras", "Hinge"): read, ("keras", "hinge"): read,
                   ("keras", "SquaredHinge"): read, ("keras", "squared_hinge"): read,
                   ("gluon", "HingeLoss"): read, ("gluon", "SquaredHingeLoss"): read,
                   ("optax", "hinge_loss"): read, ("optax", "perceptron_loss"): read,
                   ("torch", "MarginRankingLoss"): read, ("torch", "margin_ranking_loss"): read,
                   ("polyloss", "hinge"): read, ("polyloss", "squared_hinge"): read,
                   ("polyloss", "margin_ranking"): read},
        render={"torch": _hinge_torch, "keras": _hinge_keras, "gluon": _hinge_gluon,
                "optax": _hinge_optax, "polyloss": _hinge_canonical},
        inputs=_hinge_inputs,
        notes=["max(0, margin - y·x) with ±1 labels (squared: its square); the perceptron loss is "
               "margin 0; torch's margin ranking loss is the hinge of x1 - x2 and its native form of "
               "the binary hinge"],
    )


# ---- Crammer–Singer multiclass hinge -----------------------------------------------------------
# spec.p: margin; labels "indices" | "one_hot"; keras (the source is Keras's formula, which
# treats the true class as a 0 score in the max); steps; dtype.

def _cs_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    p: dict[str, Any] = {"margin": 1.0, "labels": "indices", "keras": False, "dtype": None,
                         "weights": {}}
    notes = list(_SOURCE_NOTES.get(conv, []))
    if conv == "keras":
        var = {"pred": call.arrays["y_pred"], "target": call.arrays["y_true"]}
        p.update(labels="one_hot", keras=True, dtype=keras_dtype(call), steps=keras_steps(call, []))
        if call.arrays.get("sample_weight"):
            p["weights"][call.arrays["sample_weight"]] = "per_sample"
        notes.append("Keras's CategoricalHinge computes max(0, 1 + max((1 - y)·s) - Σ y·s): the true "
                     "class counts as a 0 score in the max, so with every wrong-class score negative "
                     "it is not the Crammer–Singer hinge (the ports reproduce that)")
    elif conv == "optax":
        var = {"pred": call.arrays["scores"], "target": call.arrays["labels"]}
        p["margin"] = 0.0 if name == "multiclass_perceptron_loss" else 1.0
        p["steps"] = []
    else:
        var = {"pred": call.arrays["pred"], "target": call.arrays["target"]}
        if cfg["axis"] != -1:
            raise NoNative("a class axis other than the last is not ported")
        p["margin"] = float(cfg["margin"])
        p["steps"] = canonical_steps(call)
    spec = Spec("crammer_singer", call, var, p, notes)
    if p["dtype"]:
        spec.notes.append(f"a Keras loss object computes in {p['dtype']}; the ports cast the inputs")
    return spec


_OPS = {"keras": "keras.ops", "optax": "jnp", "polyloss": "xp"}


def _cs_scores_labels(fw: Framework, spec: Spec, want: str) -> tuple[list[str], str, str]:
    """Scores and labels for a target wanting ``want`` labels ("indices" or "one_hot"); a
    Keras source's scores become ``where(y, s, max(s, 0))``, which reproduces its formula."""
    ops = _OPS[fw.convention]
    s, y = arg(fw, spec, "pred"), arg(fw, spec, "target")
    lines = []
    if spec["keras"] and fw.convention != "keras":
        lines.append(f"scores = {ops}.where({y} == 1, {s}, {ops}.maximum({s}, 0))  # Keras's formula")
        s = "scores"
    if spec["labels"] != want:
        if want == "indices":
            lines.append(f"labels = {ops}.argmax({y}, axis=-1)")
        else:
            one_hot = {"keras": f"keras.ops.one_hot({y}, {s}.shape[-1], dtype={s}.dtype)"}[fw.convention]
            lines.append(f"labels = {one_hot}")
        y = "labels"
    return lines, s, y


def _cs_keras(spec: Spec) -> Native:
    fw = FRAMEWORKS["keras"]
    if spec["margin"] != 1.0:
        raise NoNative("Keras's CategoricalHinge has margin 1")
    lines, s, y = _cs_scores_labels(fw, spec, "one_hot")
    notes = []
    if not spec["keras"]:
        lines.append(f"scores = {s} - keras.ops.min({s}, axis=-1, keepdims=True)")
        s = "scores"
        notes.append("shifting each row's scores to be >= 0 (the hinge does not change) makes Keras's "
                     "formula the Crammer–Singer hinge")
    return Native("exact", lines + keras_call("categorical_hinge", y, s, [], steps_for(fw, spec), None),
                  notes)


def _cs_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    lines, s, y = _cs_scores_labels(fw, spec, "indices")
    m = spec["margin"]
    steps = steps_for(fw, spec)
    if m == 0:
        code = optax_call("multiclass_perceptron_loss", [s, y], [], steps)
    elif m == 1:
        code = optax_call("multiclass_hinge_loss", [s, y], [], steps)
    else:
        code = optax_call("multiclass_hinge_loss", [f"{paren(s)} / {m!r}", y], [],
                          simplify(steps + [("mul", m)]))
    return Native("exact", lines + code)


def _cs_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    lines, s, y = _cs_scores_labels(fw, spec, "indices")
    options = [f"margin={spec['margin']!r}"] if spec["margin"] != 1.0 else []
    code = canonical_call("categorical_hinge", [s, y], options, steps_for(fw, spec))
    return Native("exact", with_xp(lines + code, spec.var["pred"]))


def _cs_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    labels = rng.integers(0, C, size=N)
    target = np.eye(C)[labels].astype(dtype) if spec["labels"] == "one_hot" else labels.astype(np.int64)
    out = {spec.var["pred"]: rng.normal(size=(N, C)).astype(dtype), spec.var["target"]: target}
    out.update(weight_inputs(spec, (N,), dtype, rng))
    return out


def _cs_concept() -> Concept:
    read = _cs_read
    return Concept(
        "crammer_singer", "multiclass hinge (Crammer–Singer) and multiclass perceptron",
        interpret={("keras", "CategoricalHinge"): read, ("keras", "categorical_hinge"): read,
                   ("optax", "multiclass_hinge_loss"): read,
                   ("optax", "multiclass_perceptron_loss"): read,
                   ("polyloss", "categorical_hinge"): read},
        render={"keras": _cs_keras, "optax": _cs_optax, "polyloss": _cs_canonical},
        inputs=_cs_inputs,
        absent={"torch": "torch's MultiMarginLoss is the Weston–Watkins hinge (a sum over the wrong "
                         "classes divided by C), not Crammer–Singer's max",
                "gluon": "Gluon has no multiclass hinge"},
        notes=["max(0, margin + max_{k≠y} s_k - s_y); Keras takes one-hot labels, optax class indices"],
    )


# ---- torch-only margins: Weston–Watkins, multi-label margin, hinge embedding --------------------

def _torch_only(key: str, title: str, names: tuple[str, str], canonical: str, options, inputs,
                what: str, notes: str) -> Concept:
    """A loss of torch's that only the canonical API shares; ``options(call)`` gives the
    canonical keyword arguments of a torch call (or of a canonical one)."""
    fn = names[1]

    def read(call: Call) -> Spec:
        arrays = call.arrays
        if call.convention == "torch":
            var = {"pred": arrays["input"], "target": arrays["target"]}
            steps = torch_steps(call)
            weight = arrays.get("weight")
        else:
            var = {"pred": arrays["pred"], "target": arrays["target"]}
            steps = canonical_steps(call)
            weight = arrays.get("class_weight")
        p = {"options": options(call), "class_weight": weight, "steps": steps,
             "weights": {weight: "class"} if weight else {}, "config": call.config}
        if arrays.get("sample_weight"):
            p["weights"][arrays["sample_weight"]] = "per_sample"
        return Spec(key, call, var, p, [notes])

    def canonical_render(spec: Spec) -> Native:
        extra = [f"class_weight={spec['class_weight']}"] if spec["class_weight"] else []
        return Native("exact", canonical_call(canonical, [spec.var["pred"], spec.var["target"]],
                                              spec["options"] + extra, spec["steps"]))

    def torch_render(spec: Spec) -> Native:
        cfg = spec["config"]
        if cfg.get("axis", -1) != -1 or cfg.get("target_format", "indices") != "indices":
            raise NoNative("torch takes classes on axis 1 of (N, C) inputs"
                           + (" and class-index lists padded with -1 (target_format='indices')"
                              if key == "multilabel_margin" else ""))
        if spec.call.arrays.get("sample_weight"):
            raise NoNative("torch's loss takes no sample weights")
        opts = [o for o in spec["options"] if not o.startswith("target_format")]
        weight = [f"weight={spec['class_weight']}"] if spec["class_weight"] else []
        return Native("exact", torch_call(fn, [spec.var["pred"], spec.var["target"]], opts + weight,
                                          spec["steps"]))

    return Concept(key, title,
                   interpret={("torch", names[0]): read, ("torch", names[1]): read,
                              ("polyloss", canonical): read},
                   render={"torch": torch_render, "polyloss": canonical_render}, inputs=inputs,
                   absent=_absent(what, keras="", gluon="", optax=""), notes=[notes])


def _ww_options(call: Call) -> list[str]:
    cfg = call.config
    out = []
    if cfg["p"] != 1:
        out.append(f"p={cfg['p']!r}")
    if cfg["margin"] != 1.0:
        out.append(f"margin={cfg['margin']!r}")
    return out


def _ww_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    out = {spec.var["pred"]: rng.normal(size=(N, C)).astype(dtype),
           spec.var["target"]: rng.integers(0, C, size=N).astype(np.int64)}
    out.update(weight_inputs(spec, (N, C), dtype, rng, classes=C))
    return out


def _label_list_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    if spec["config"].get("target_format") == "multi_hot":
        return {spec.var["pred"]: rng.normal(size=(N, C)).astype(dtype),
                spec.var["target"]: (rng.random((N, C)) < 0.4).astype(dtype)}
    target = np.full((N, C), -1, dtype=np.int64)
    for i in range(N):
        k = (1, 2, 3, 0)[i % 4]
        target[i, :k] = rng.permutation(C)[:k]
    return {spec.var["pred"]: rng.normal(size=(N, C)).astype(dtype), spec.var["target"]: target}


def _embedding_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    return {spec.var["pred"]: rng.uniform(0.0, 2.0, size=(N, C)).astype(dtype),
            spec.var["target"]: np.where(rng.random((N, C)) < 0.5, -1.0, 1.0).astype(dtype)}


def _margin_option(call: Call) -> list[str]:
    return [f"margin={call.config['margin']!r}"] if call.config["margin"] != 1.0 else []


def _torch_only_concepts() -> list[Concept]:
    return [
        _torch_only("weston_watkins", "multiclass margin (Weston–Watkins)",
                    ("MultiMarginLoss", "multi_margin_loss"), "multi_margin", _ww_options,
                    _ww_inputs, "Weston–Watkins",
                    "Σ_{i≠y} w_y·max(0, margin - s_y + s_i)^p / C (torch's MultiMarginLoss)"),
        _torch_only("multilabel_margin", "multi-label margin",
                    ("MultiLabelMarginLoss", "multilabel_margin_loss"), "multilabel_margin",
                    lambda call: ["target_format='indices'"] if call.convention == "torch" else (
                        [f"target_format={call.config['target_format']!r}"]
                        if "target_format" in call.given else []),
                    _label_list_inputs, "multi-label margin",
                    "torch's targets are class-index lists padded with -1 "
                    "(canonical: target_format='indices')"),
        _torch_only("hinge_embedding", "hinge embedding",
                    ("HingeEmbeddingLoss", "hinge_embedding_loss"), "hinge_embedding",
                    _margin_option, _embedding_inputs, "hinge-embedding",
                    "x where y = 1, max(0, margin - x) where y = -1 (x is a distance)"),
    ]


# ---- optax-only: sparsemax, Fenchel–Young ----------------------------------------------------

def _optax_only(key: str, title: str, name: str, inputs, note: str) -> Concept:
    def read(call: Call) -> Spec:
        return Spec(key, call, dict(call.arrays), {"steps": [], "weights": {}})

    return Concept(key, title, interpret={("optax", name): read}, render={}, inputs=inputs,
                   absent=_absent(title, torch="", keras="", gluon="", polyloss=""), notes=[note])


def _sparsemax_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    logits, labels = spec.call.arrays["logits"], spec.call.arrays["labels"]
    return {logits: (1.5 * rng.normal(size=(N, C))).astype(dtype),
            labels: (rng.random((N, C)) < 0.5).astype(dtype)}


def _multiclass_sparsemax_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    scores, labels = spec.call.arrays["scores"], spec.call.arrays["labels"]
    return {scores: rng.normal(size=(N, C)).astype(dtype),
            labels: rng.integers(0, C, size=N).astype(np.int64)}


def _fenchel_young_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    scores, targets = spec.call.arrays["scores"], spec.call.arrays["targets"]
    return {scores: rng.normal(size=(N, C)).astype(dtype),
            targets: np.eye(C)[rng.integers(0, C, size=N)].astype(dtype)}


CONCEPTS: list[Concept] = [
    _hinge_concept(), _cs_concept(), *_torch_only_concepts(),
    _optax_only("sparsemax", "binary sparsemax", "sparsemax_loss", _sparsemax_inputs,
                "sparse_plus(-z if the label is 1 else z)"),
    _optax_only("multiclass_sparsemax", "multiclass sparsemax", "multiclass_sparsemax_loss",
                _multiclass_sparsemax_inputs, "the sparsemax Fenchel–Young loss of class indices"),
    _optax_only("fenchel_young", "Fenchel–Young (from a regularised max)", "make_fenchel_young_loss",
                _fenchel_young_inputs, "max_fun(scores) - <targets, scores> over the last axis"),
]

