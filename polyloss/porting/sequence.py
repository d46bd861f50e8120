"""Porting table row: CTC. Every convention spells the same loss differently: torch takes
time-major log-probabilities with padded labels and both lengths, Keras batch-major logits
with 0 as blank and padding and no input lengths, Gluon logits with the last class as blank,
optax logits with 0/1 padding masks; the ports convert between them."""

from __future__ import annotations

from typing import Any

import numpy as np

from polyloss.porting.frameworks import FRAMEWORKS, Framework, apply_steps
from polyloss.porting.model import Concept, Native, NoNative, Spec, simplify
from polyloss.porting.reading import gluon_scale, keras_dtype, keras_steps
from polyloss.porting.spelling import Call

__all__ = ["CONCEPTS"]

# spec.p: layout "TNC" | "NTC"; kind "log_probs" | "logits"; labels_layout "NT" | "TN";
# label_lengths ("lengths", var) | ("pad", value) | ("paddings", var); frames ("lengths", var) |
# ("paddings", var) | None (all frames); blank int | "last"; per_length (divide by the label
# length); zero_infinity; steps (on the per-sequence losses); infeasible (what the source gives
# a sequence whose labels cannot fit its frames).

_INFEASIBLE = {"torch": "inf (0 with zero_infinity=True)", "keras": "a large finite value (≈700)",
               "gluon": "0", "optax": "≈ -log_epsilon per missing frame (≈1e5)",
               "polyloss": "inf (0 with zero_infinity=True)"}


def _read(call: Call) -> Spec:
    conv, cfg, a = call.convention, call.config, call.arrays
    p: dict[str, Any] = {"layout": "NTC", "kind": "logits", "labels_layout": "NT", "frames": None,
                         "blank": 0, "per_length": False, "zero_infinity": False, "dtype": None,
                         "weights": {}, "steps": []}
    notes = []
    if conv == "torch":
        var = {"x": a["log_probs"], "labels": a["targets"]}
        p.update(layout="TNC", kind="log_probs", label_lengths=("lengths", a["target_lengths"]),
                 frames=("lengths", a["input_lengths"]), blank=int(cfg["blank"]),
                 zero_infinity=bool(cfg["zero_infinity"]))
        reduction = cfg["reduction"]
        p["per_length"] = reduction == "mean"
        p["steps"] = {"mean": [("mean", None)], "sum": [("sum", None)]}.get(reduction, [])
        notes.append("torch's 'mean' divides each sequence's loss by its target length, then averages")
        notes.append("the port takes padded (N, S) targets; torch's concatenated 1-D form is not "
                     "ported")
    elif conv == "keras":
        var = {"x": a["y_pred"], "labels": a["y_true"]}
        p.update(label_lengths=("pad", 0), dtype=keras_dtype(call), compute_dtype="float32")
        p["steps"] = keras_steps(call, [])
        if a.get("sample_weight"):
            p["weights"][a["sample_weight"]] = "per_sample"
        notes.append("Keras: class 0 is the blank and the label padding; every sequence uses all T "
                     "frames; its TensorFlow backend computes in float32")
    elif conv == "gluon":
        var = {"x": a["pred"], "labels": a["label"]}
        p.update(layout=cfg["layout"], labels_layout=cfg["label_layout"], blank="last")
        p["label_lengths"] = ("lengths", a["label_lengths"]) if a.get("label_lengths") else ("pad", -1)
        p["frames"] = ("lengths", a["pred_lengths"]) if a.get("pred_lengths") else None
        steps = [("mul", a["sample_weight"])] if a.get("sample_weight") else []
        scale = gluon_scale(call)
        p["steps"] = steps + ([("mul", scale)] if scale is not None else [])
        if a.get("sample_weight"):
            p["weights"][a["sample_weight"]] = "per_sample"
        notes.append("Gluon: the last class is the blank; labels are padded with -1 (or given "
                     "label_lengths)")
    elif conv == "optax":
        var = {"x": a["logits"], "labels": a["labels"]}
        p.update(label_lengths=("paddings", a["label_paddings"]), frames=("paddings", a["logit_paddings"]),
                 blank=int(cfg["blank_id"]))
        if call.name == "ctc_loss_with_forward_probs":
            p["forward_probs"] = True
        if cfg["log_epsilon"] != -1e5:
            notes.append("log_epsilon only changes the value of infeasible sequences")
        notes.append("optax's paddings are 0/1 masks (1 = padding); the ports assume right padding")
    else:
        var = {"x": a["pred"], "labels": a["labels"]}
        p.update(layout=cfg["layout"], kind="logits" if cfg["from_logits"] else "log_probs",
                 blank=int(cfg["blank"]), zero_infinity=bool(cfg["zero_infinity"]),
                 per_length=bool(cfg["normalize_by_length"]))
        p["label_lengths"] = ("lengths", a["label_lengths"]) if a.get("label_lengths") else ("pad", -1)
        p["frames"] = ("lengths", a["input_lengths"]) if a.get("input_lengths") else None
        if a.get("sample_weight"):
            raise NoNative("sample_weight is not ported for ctc")
        p["steps"] = {"mean": [("mean", None)], "sum": [("sum", None)]}.get(cfg["reduction"], [])
    p["source"] = conv
    return Spec("ctc", call, var, p, notes)


def _pieces(fw: Framework, spec: Spec) -> tuple[list[str], dict[str, str | None]]:
    """Lines computing, in ``fw``'s operations, the source's inputs as (N, T, C) scores ``x``,
    (N, S) ``labels``, ``label_lengths``, ``input_lengths`` (None: all frames) and ``blank``."""
    c = fw.convention
    ops = {"torch": "torch", "keras": "keras.ops", "gluon": "mx.nd", "optax": "jnp", "polyloss": "xp"}[c]
    x, labels = spec.var["x"], spec.var["labels"]
    lines: list[str] = []

    def transpose(e: str) -> str:
        return {"torch": f"{e}.transpose(0, 1)", "keras": f"keras.ops.transpose({e}, (1, 0, 2))",
                "gluon": f"mx.nd.transpose({e}, axes=(1, 0, 2))",
                "optax": f"jnp.transpose({e}, (1, 0, 2))",
                "polyloss": f"xp.permute_dims({e}, (1, 0, 2))"}[c]

    if spec["layout"] == "TNC":
        lines.append(f"x = {transpose(x)}  # (N, T, C)")
        x = "x"
    if spec["labels_layout"] == "TN":
        lines.append(f"labels = {labels}.T" if c != "keras" else f"labels = keras.ops.transpose({labels})")
        labels = "labels"

    def count(mask: str, axis: int = -1) -> str:
        return {"torch": f"({mask}).sum({axis})", "keras": f"keras.ops.sum(keras.ops.cast({mask}, 'int32'), "
                f"axis={axis})", "gluon": f"({mask}).sum(axis={axis})",
                "optax": f"jnp.sum({mask}, axis={axis})", "polyloss": f"xp.sum({mask}, axis={axis})"}[c]

    kind, value = spec["label_lengths"]
    if kind == "lengths":
        label_lengths = value
    elif kind == "pad":
        lines.append(f"label_lengths = {count(f'{labels} != {value}')}  # labels before the padding "
                     f"({value})")
        label_lengths = "label_lengths"
    else:
        lines.append(f"label_lengths = {count(f'{value} == 0')}  # 1 marks padding")
        label_lengths = "label_lengths"
    input_lengths = None
    if spec["frames"] is not None:
        kind, value = spec["frames"]
        if kind == "lengths":
            input_lengths = value
        else:
            lines.append(f"input_lengths = {count(f'{value} == 0')}  # 1 marks padding")
            input_lengths = "input_lengths"
    blank = spec["blank"]
    blank_text = f"{x}.shape[-1] - 1" if blank == "last" else str(blank)
    del ops
    return lines, {"x": x, "labels": labels, "label_lengths": label_lengths,
                   "input_lengths": input_lengths, "blank": blank_text}


def _reduce(fw: Framework, spec: Spec, label_lengths: str) -> list[str]:
    lines = []
    if spec["per_length"]:
        clip = {"torch": f"{label_lengths}.clamp(min=1)",
                "keras": f"keras.ops.maximum(keras.ops.cast({label_lengths}, loss.dtype), 1)",
                "gluon": f"mx.nd.maximum({label_lengths}.astype(loss.dtype), 1)",
                "optax": f"jnp.maximum({label_lengths}, 1)",
                "polyloss": f"xp.clip({label_lengths}, 1, None)"}[fw.convention]
        lines.append(f"loss = loss / {clip}  # per target length")
    return lines + apply_steps(fw, simplify(spec["steps"]))


def _status(spec: Spec, target: str, float32: bool = False) -> tuple[str, list[str]]:
    diffs = []
    source = spec["source"]
    infeasible_source = "torch" if source == "polyloss" else source
    infeasible_target = "torch" if target == "polyloss" else target
    if infeasible_source != infeasible_target and not (spec["zero_infinity"] and target == "gluon"):
        diffs.append(f"a sequence whose labels cannot fit its frames gives {_INFEASIBLE[source]} in the "
                     f"source, {_INFEASIBLE[target]} here")
    if float32 != (source == "keras"):
        return "approximate", diffs + ["Keras's TensorFlow backend computes CTC in float32 (about 7 "
                                       "digits)"]
    return ("edges" if diffs else "exact"), diffs


def _forward_probs(spec: Spec) -> None:
    if spec.get("forward_probs"):
        raise NoNative("only optax returns the CTC forward variables")


def _torch(spec: Spec) -> Native:
    _forward_probs(spec)
    fw = FRAMEWORKS["torch"]
    lines, q = _pieces(fw, spec)
    if spec["source"] == "torch":
        lp = spec.var["x"]
        lines = [ln for ln in lines if not ln.startswith("x = ")]
    else:
        x = q["x"] if spec["kind"] == "log_probs" else f"{q['x']}.log_softmax(-1)"
        lp = f"{x}.transpose(0, 1)"
        lines.append(f"log_probs = {lp}  # (T, N, C) log-probabilities")
        lp = "log_probs"
    if q["input_lengths"] is None:
        lines.append(f"input_lengths = torch.full(({lp}.shape[1],), {lp}.shape[0], dtype=torch.long)")
        q["input_lengths"] = "input_lengths"
    reduction = "none"
    steps = simplify(spec["steps"])
    if spec["per_length"] and steps[:1] == [("mean", None)]:
        reduction = "mean"
    elif not spec["per_length"] and steps[:1] == [("sum", None)]:
        reduction = "sum"
    options = [f"blank={q['blank']}"] if q["blank"] != "0" else []
    options += [f"reduction={reduction!r}"] if reduction != "mean" else []
    options += ["zero_infinity=True"] if spec["zero_infinity"] or spec["source"] == "gluon" else []
    lines.append(f"loss = torch.nn.functional.ctc_loss({lp}, {q['labels']}.long(), "
                 f"{q['input_lengths']}.long(), {q['label_lengths']}.long(), {', '.join(options)})"
                 .replace(", )", ")"))
    if reduction == "none":
        lines += _reduce(fw, spec, q["label_lengths"])
    else:
        lines += apply_steps(fw, steps[1:])
    status, diffs = _status(spec, "torch")
    notes = ["torch takes time-major (T, N, C) log-probabilities"]
    if spec["source"] == "gluon":
        notes.append("zero_infinity=True gives an infeasible sequence 0, as Gluon does")
        status, diffs = "exact", []
    return Native(status, lines, notes, diffs)


def _keras(spec: Spec) -> Native:
    _forward_probs(spec)
    fw = FRAMEWORKS["keras"]
    if spec["frames"] is not None:
        raise NoNative("Keras's CTC has no input lengths: every sequence uses all T frames")
    lines, q = _pieces(fw, spec)
    x, labels = q["x"], q["labels"]
    blank = spec["blank"]
    notes = ["Keras: class 0 is the blank and the padding, all T frames count"]
    if blank == "last":
        lines.append(f"x = keras.ops.roll({x}, 1, axis=-1)  # the last class (blank) becomes class 0")
        x = "x"
        shift = " + 1"
    elif blank == 0:
        shift = ""
    else:
        raise NoNative(f"Keras's blank is class 0; a blank of {blank} is not ported")
    lines.append(f"labels = keras.ops.where(keras.ops.arange({labels}.shape[1])[None, :] < "
                 f"{q['label_lengths']}[:, None], {labels}{shift}, 0)  # 0-padded")
    lines.append(f"loss = keras.losses.ctc(labels, {x})")
    lines += _reduce(fw, spec, q["label_lengths"])
    status, diffs = _status(spec, "keras", float32=True)
    return Native(status, lines, notes, diffs)


def _gluon(spec: Spec) -> Native:
    _forward_probs(spec)
    fw = FRAMEWORKS["gluon"]
    lines, q = _pieces(fw, spec)
    x, labels = q["x"], q["labels"]
    blank = spec["blank"]
    if blank == 0:
        lines.append(f"x = mx.nd.concat({x}[:, :, 1:], {x}[:, :, :1], dim=2)  # blank 0 becomes the "
                     "last class")
        x, shift = "x", " - 1"
    elif blank == "last":
        shift = ""
    else:
        raise NoNative(f"Gluon's blank is the last class; a blank of {blank} is not ported")
    frames = q["input_lengths"]
    args = [x, f"({labels}{shift}).astype({x}.dtype)",
            f"{frames}.astype({x}.dtype)" if frames else "None",
            f"{q['label_lengths']}.astype({x}.dtype)"]
    lines.append(f"loss = gluon.loss.CTCLoss()({', '.join(args)})")
    lines += _reduce(fw, spec, q["label_lengths"])
    status, diffs = _status(spec, "gluon")
    if spec["zero_infinity"]:
        status, diffs = "exact", []
    return Native(status, lines, ["Gluon: the last class is the blank; its CTC kernel runs in float32 "
                                  "only"], diffs, dtypes=("float32",))


def _optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    lines, q = _pieces(fw, spec)
    if spec["source"] == "optax":
        raise NoNative("internal: the source itself")
    x, labels = q["x"], q["labels"]
    frames = q["input_lengths"]
    if frames is None:
        lines.append(f"logit_paddings = jnp.zeros({x}.shape[:2], dtype={x}.dtype)")
    else:
        lines.append(f"logit_paddings = (jnp.arange({x}.shape[1])[None, :] >= {frames}[:, None])"
                     f".astype({x}.dtype)")
    lines.append(f"label_paddings = (jnp.arange({labels}.shape[1])[None, :] >= {q['label_lengths']}"
                 f"[:, None]).astype({x}.dtype)")
    options = f", blank_id={q['blank']}" if q["blank"] != "0" else ""
    lines.append(f"loss = optax.losses.ctc_loss({x}, logit_paddings, {labels}.astype(jnp.int32), "
                 f"label_paddings{options})")
    lines += _reduce(fw, spec, q["label_lengths"])
    status, diffs = _status(spec, "optax")
    notes = ["optax takes (B, T, K) logits (log-probabilities are logits too) and 0/1 padding masks"]
    return Native(status, lines, notes, diffs)


def _canonical(spec: Spec) -> Native:
    _forward_probs(spec)
    fw = FRAMEWORKS["polyloss"]
    lines, q = _pieces(fw, spec)
    x = q["x"]
    options = []
    if spec["kind"] == "log_probs":
        options.append("from_logits=False")
    if q["blank"] != "0":
        options.append(f"blank={q['blank']}")
    if spec["zero_infinity"] or spec["source"] == "gluon":
        options.append("zero_infinity=True")
    reduction = "none"
    steps = simplify(spec["steps"])
    if steps[:1] in ([("mean", None)], [("sum", None)]):
        reduction, steps = steps[0][0], steps[1:]
    if spec["per_length"]:
        options.append("normalize_by_length=True")
    if reduction != "mean":
        options.append(f"reduction={reduction!r}")
    args = [x, q["labels"], q["input_lengths"] or "None", q["label_lengths"]]
    lines.append(f"loss = polyloss.ctc({', '.join(args + options)})")
    lines += apply_steps(fw, steps)
    if any("xp." in ln for ln in lines):
        lines.insert(0, f"xp = polyloss.array_namespace({spec.var['x']})")
    status, diffs = _status(spec, "polyloss")
    if spec["source"] == "gluon":
        status, diffs = "exact", []
    return Native(status, lines, [], diffs)


def _inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    n, t, c, s = 3, 8, 5, 3
    blank = c - 1 if spec["blank"] == "last" else spec["blank"]
    classes = np.array([k for k in range(c) if k != blank])
    labels = classes[rng.integers(0, c - 1, size=(n, s))]
    labels[0, 1] = labels[0, 0]  # a repeat: needs a blank in between
    label_lengths = np.array([s, s, 2])
    frames = np.array([t, t, t - 2]) if spec["frames"] is not None else np.full(n, t)
    logits = 2.0 * rng.normal(size=(n, t, c))
    if spec["kind"] == "log_probs":
        logits = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    x = np.transpose(logits, (1, 0, 2)) if spec["layout"] == "TNC" else logits
    out = {spec.var["x"]: x.astype(dtype)}
    kind, value = spec["label_lengths"]
    padded = np.where(np.arange(s) < label_lengths[:, None], labels, 0 if kind == "pad" and value == 0
                      else -1 if kind == "pad" else labels)
    label_dtype = dtype if spec["source"] == "gluon" else np.int64
    out[spec.var["labels"]] = (padded.T if spec["labels_layout"] == "TN" else padded).astype(label_dtype)
    if kind == "lengths":
        out[value] = label_lengths.astype(label_dtype)
    elif kind == "paddings":
        out[value] = (np.arange(s) >= label_lengths[:, None]).astype(dtype)
    if spec["frames"] is not None:
        kind, value = spec["frames"]
        out[value] = (frames.astype(label_dtype) if kind == "lengths"
                      else (np.arange(t) >= frames[:, None]).astype(dtype))
    for name in spec.get("weights", {}):
        out[name] = rng.uniform(0.2, 2.0, size=n).astype(dtype)
    return out


CONCEPTS: list[Concept] = [Concept(
    "ctc", "CTC (connectionist temporal classification)",
    interpret={("torch", "CTCLoss"): _read, ("torch", "ctc_loss"): _read, ("keras", "CTC"): _read,
               ("keras", "ctc"): _read, ("gluon", "CTCLoss"): _read, ("optax", "ctc_loss"): _read,
               ("optax", "ctc_loss_with_forward_probs"): _read, ("polyloss", "ctc"): _read},
    render={"torch": _torch, "keras": _keras, "gluon": _gluon, "optax": _optax, "polyloss": _canonical},
    inputs=_inputs,
    notes=["the blank is class 0 everywhere but Gluon (the last class); torch takes (T, N, C) "
           "log-probabilities, the others (N, T, C) logits; Keras has no input lengths and pads labels "
           "with 0; optax takes 0/1 padding masks"],
)]
