"""Porting table rows: embedding, metric-learning, segmentation and ranking losses (cosine
embedding and similarity, triplet margin, Dice/Tversky, and the losses only one convention
has: contrastive, NT-Xent, Circle, SDML, generalized Dice, Jaccard, Lovász, listwise ranking)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from polyloss.porting.frameworks import FRAMEWORKS, Framework, apply_steps
from polyloss.porting.model import Concept, Native, NoNative, Spec, simplify
from polyloss.porting.reading import (
    GLUON_NOTE,
    KERAS_REDUCTION_NOTE,
    canonical_steps,
    gluon_scale,
    keras_dtype,
    keras_steps,
    torch_steps,
)
from polyloss.porting.regression import N, _absent, weight_inputs
from polyloss.porting.spelling import Call
from polyloss.porting.writing import arg, canonical_call, finish, kw, optax_call, paren, steps_for, with_xp

__all__ = ["CONCEPTS"]

D = 5  # vector size in --check's inputs

_OPS = {"torch": "torch", "keras": "keras.ops", "gluon": "mx.nd", "optax": "jnp", "polyloss": "xp"}


def _column(fw: Framework) -> str:
    """Reshape ``loss`` to ``(N, 1)`` (Gluon's per-pair shape)."""
    return {"torch": "loss = loss.reshape(-1, 1)", "keras": "loss = keras.ops.reshape(loss, (-1, 1))",
            "gluon": "loss = loss.reshape((-1, 1))", "optax": "loss = loss.reshape(-1, 1)",
            "polyloss": "loss = xp.reshape(loss, (-1, 1))"}[fw.convention]


def _vectors(*roles: str):
    def make(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
        out = {spec.var[r]: rng.normal(size=(N, D)).astype(dtype) for r in roles}
        if "target" in spec.var:
            out[spec.var["target"]] = np.where(rng.random(N) < 0.5, -1.0, 1.0).astype(dtype)
        out.update(weight_inputs(spec, (N,), dtype, rng))
        return out

    return make


# ---- cosine embedding (pairs, ±1) ----------------------------------------------------------------

_COSINE_EPS = {
    "torch": "torch adds 1e-12 to each squared norm",
    "gluon": "Gluon divides by max(‖x1‖·‖x2‖, 1e-12)",
    "keras": "Keras normalises with min(1/‖x‖, 1e7)",
    "optax": "optax divides by the norms as they are (NaN for a zero vector; epsilon=0)",
    "polyloss": "the canonical loss divides by max(‖x‖, 1e-8) per vector",
}


def _eps_status(source: str, target: str) -> tuple[str, list[str]]:
    if source == target:
        return "exact", []
    return "edges", [f"the norms are protected differently ({_COSINE_EPS[source]}; "
                     f"{_COSINE_EPS[target]}): about 1e-13 relative on ordinary vectors, different "
                     "for vectors of norm below about 1e-6"]


def _cosine_embedding_read(call: Call) -> Spec:
    conv, cfg = call.convention, call.config
    arrays = call.arrays
    p: dict[str, Any] = {"margin": float(cfg["margin"]), "weights": {}, "column": False}
    notes = []
    if conv == "torch":
        var = {"x1": arrays["input1"], "x2": arrays["input2"], "target": arrays["target"]}
        p["steps"] = torch_steps(call)
    elif conv == "gluon":
        var = {"x1": arrays["input1"], "x2": arrays["input2"], "target": arrays["label"]}
        steps = [("mul", arrays["sample_weight"])] if arrays.get("sample_weight") else []
        scale = gluon_scale(call)
        p["steps"] = steps + ([("mul", scale)] if scale is not None else [])
        p["column"] = True
        if arrays.get("sample_weight"):
            p["weights"][arrays["sample_weight"]] = "per_sample_column"
        notes.append("Gluon's CosineEmbeddingLoss returns one value per pair as shape (N, 1)")
    else:
        var = {"x1": arrays["x1"], "x2": arrays["x2"], "target": arrays["target"]}
        if cfg["axis"] != -1 or cfg["eps"] != 1e-8:
            raise NoNative("only axis=-1 and the default eps are ported")
        p["steps"] = canonical_steps(call)
        if arrays.get("sample_weight"):
            p["weights"][arrays["sample_weight"]] = "per_sample"
    return Spec("cosine_embedding", call, var, p, notes + [
        "1 - cos where the label is 1, max(0, cos - margin) where it is -1, 0 for other labels"])


def _per_pair_steps(fw: Framework, spec: Spec) -> list[str]:
    steps = steps_for(fw, spec)
    if spec["column"]:
        steps = [s for s in steps if not (s[0] == "mul" and isinstance(s[1], str))]
    lines = apply_steps(fw, simplify(steps))
    if spec["column"]:
        weight = spec.call.arrays.get("sample_weight")
        if weight:
            lines = [_column(fw), f"loss = loss * {weight}"] + lines
        else:
            lines = [_column(fw)] + lines
    return lines


def _cosine_embedding_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    status, diffs = _eps_status(spec.call.convention, "torch")
    steps = simplify(steps_for(fw, spec))
    reduction = "none"
    if not spec["column"] and steps[:1] in ([("mean", None)], [("sum", None)]):
        reduction, steps = steps[0][0], steps[1:]
        spec = Spec(spec.concept, spec.call, spec.var, {**spec.p, "steps": steps})
    options = kw(margin=spec["margin"] or None) + ([f"reduction={reduction!r}"] if reduction != "mean"
                                                  else [])
    args = ", ".join([spec.var["x1"], spec.var["x2"], spec.var["target"]] + options)
    call = f"torch.nn.functional.cosine_embedding_loss({args})"
    rest = _per_pair_steps(fw, spec) if reduction == "none" else apply_steps(fw, steps)
    lines = [f"loss = {call}"] + rest
    return Native(status, lines, [], diffs)


def _cosine_embedding_gluon(spec: Spec) -> Native:
    fw = FRAMEWORKS["gluon"]
    status, diffs = _eps_status(spec.call.convention, "gluon")
    ctor = kw(margin=spec["margin"] or None)
    call = f"gluon.loss.CosineEmbeddingLoss({', '.join(ctor)})({spec.var['x1']}, {spec.var['x2']}, " \
           f"{spec.var['target']})"
    lines = [f"loss = {call}"]
    if not spec["column"]:
        lines.append("loss = loss.reshape((-1,))  # Gluon returns (N, 1)")
    return Native(status, lines + apply_steps(fw, simplify(steps_for(fw, spec))),
                  ["MXNet's CosineEmbeddingLoss fails on float64 inputs (its 1e-12 is float32)"], diffs,
                  dtypes=("float32",))


def _cosine_embedding_from_similarity(conv: str) -> Callable[[Spec], Native]:
    fw = FRAMEWORKS[conv]
    ops = _OPS[conv]

    def render(spec: Spec) -> Native:
        status, diffs = _eps_status(spec.call.convention, conv)
        x1, x2, y = spec.var["x1"], spec.var["x2"], spec.var["target"]
        if conv == "keras":
            cos = f"-keras.losses.cosine_similarity({x1}, {x2})"
        else:
            cos = f"optax.losses.cosine_similarity({x1}, {x2})"
        lines = [f"cos = {cos}",
                 f"loss = {ops}.where({y} == 1, 1 - cos, {ops}.where({y} == -1, "
                 f"{ops}.maximum(cos - {spec['margin']!r}, 0), 0))"]
        return Native(status, lines + _per_pair_steps(fw, spec),
                      [f"{FRAMEWORKS[conv].title} has no cosine embedding loss; it is written from its "
                       "cosine similarity"], diffs)

    return render


def _cosine_embedding_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    status, diffs = _eps_status(spec.call.convention, "polyloss")
    options = kw(margin=spec["margin"] or None)
    steps = steps_for(fw, spec)
    if spec["column"]:
        steps = [s for s in steps if not (s[0] == "mul" and isinstance(s[1], str))]
    code = canonical_call("cosine_embedding", [spec.var["x1"], spec.var["x2"], spec.var["target"]],
                          options, steps if not spec["column"] else [])
    if spec["column"]:
        code = code[:-1] + [code[-1].replace(")", ", reduction='none')", 1)
                            if "reduction=" not in code[-1] else code[-1]] + _per_pair_steps(fw, spec)
    return Native(status, with_xp(code, spec.var["x1"]), [], diffs)


# ---- cosine similarity (a·cos + b) ---------------------------------------------------------------

def _cosine_similarity_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    arrays = call.arrays
    p: dict[str, Any] = {"weights": {}, "dtype": None, "axis": cfg.get("axis", -1)}
    notes = []
    if conv == "keras":
        var = {"x": arrays["y_pred"], "y": arrays["y_true"]}
        p.update(a=-1.0, b=0.0, steps=keras_steps(call, []), dtype=keras_dtype(call))
        if arrays.get("sample_weight"):
            p["weights"][arrays["sample_weight"]] = "per_sample"
        notes.append("Keras's CosineSimilarity is -cos (a loss to minimise)")
    elif conv == "optax":
        var = {"x": arrays["predictions"], "y": arrays["targets"]}
        if cfg["epsilon"] != 0.0 or arrays.get("where") or not isinstance(p["axis"], int):
            raise NoNative("only optax's defaults (epsilon=0, no where, one axis) are ported")
        p.update(a=1.0, b=0.0) if name == "cosine_similarity" else p.update(a=-1.0, b=1.0)
        p["steps"] = []
    else:
        var = {"x": arrays["pred"], "y": arrays["target"]}
        if cfg["eps"] != 1e-8:
            raise NoNative("only the default eps is ported")
        p.update(a=1.0, b=0.0, steps=canonical_steps(call))
        if arrays.get("sample_weight"):
            p["weights"][arrays["sample_weight"]] = "per_sample"
    return Spec("cosine_similarity", call, var, p, notes)


def _affine(spec: Spec, cos_sign: float, cos: str) -> str:
    """``a·cos + b`` where the native gives ``cos_sign·cos`` as ``cos``."""
    a, b = spec["a"] * cos_sign, spec["b"]
    term = cos if a == 1 else f"-{paren(cos)}" if a == -1 else f"{a!r} * {paren(cos)}"
    return f"{b!r} + {term}" if b else term


def _cosine_similarity_writer(conv: str) -> Callable[[Spec], Native]:
    fw = FRAMEWORKS[conv]

    def render(spec: Spec) -> Native:
        status, diffs = _eps_status(spec.call.convention, conv)
        x, y, axis = arg(fw, spec, "x"), arg(fw, spec, "y"), spec["axis"]
        notes = []
        if conv == "keras":
            value = _affine(spec, -1.0, f"keras.losses.cosine_similarity({y}, {x}, axis={axis})")
        elif conv == "optax":
            value = _affine(spec, 1.0, f"optax.losses.cosine_similarity({x}, {y}, axis={axis})")
        elif conv == "torch":
            value = _affine(spec, 1.0, f"torch.nn.functional.cosine_similarity({x}, {y}, dim={axis})")
            notes.append("torch has no cosine loss; torch.nn.functional.cosine_similarity is the "
                         "similarity (norms floored at 1e-8)")
            status, diffs = "edges", ["torch floors the product of the norms at 1e-8: different for "
                                      "vectors of norm below about 1e-4"]
        else:
            value = _affine(spec, 1.0, f"polyloss.cosine_similarity({x}, {y}, axis={axis}, "
                                       "reduction='none')")
        lines = finish(fw, value, simplify(steps_for(fw, spec)))
        return Native(status, with_xp(lines, spec.var["x"]) if conv == "polyloss" else lines, notes, diffs)

    return render


def _similarity_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    out = {spec.var["x"]: rng.normal(size=(N, D)).astype(dtype),
           spec.var["y"]: rng.normal(size=(N, D)).astype(dtype)}
    out.update(weight_inputs(spec, (N,), dtype, rng))
    return out


# ---- triplet margin ----------------------------------------------------------------------------
# spec.p: distance "torch" (‖a - b + eps‖_p) | "optax" ((Σ(a - b)^deg + eps)^(1/deg)) |
# "squared" (Σ(a - b)², Gluon) | "canonical" ((Σ|a - b|^p + eps)^(1/p)) | "code"; p; eps;
# margin; swap; steps.

def _triplet_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    arrays = call.arrays
    p: dict[str, Any] = {"margin": float(cfg["margin"]), "swap": bool(cfg.get("swap", False)),
                         "p": 2.0, "eps": 1e-6, "weights": {}}
    if conv == "torch":
        var = {"a": arrays["anchor"], "p": arrays["positive"], "n": arrays["negative"]}
        p["steps"] = torch_steps(call)
        if name in ("TripletMarginLoss", "triplet_margin_loss"):
            p.update(distance="torch", p=float(cfg["p"]), eps=float(cfg["eps"]))
        elif cfg["distance_function"] is None:
            p.update(distance="torch")  # pairwise_distance(p=2, eps=1e-6)
        else:
            raise NoNative("a distance_function written as code is not ported; port the distance by "
                           "hand")
    elif conv == "gluon":
        var = {"a": arrays["pred"], "p": arrays["positive"], "n": arrays["negative"]}
        scale = gluon_scale(call)
        p.update(distance="squared", steps=[("mul", scale)] if scale is not None else [])
    elif conv == "optax":
        var = {"a": arrays["anchors"], "p": arrays["positives"], "n": arrays["negatives"]}
        if cfg["axis"] != -1:
            raise NoNative("axis other than -1 is not ported")
        p.update(distance="optax", p=float(cfg["norm_degree"]), eps=float(cfg["eps"]), steps=[])
    else:
        var = {"a": arrays["anchor"], "p": arrays["positive"], "n": arrays["negative"]}
        if cfg["distance"] is not None or cfg["axis"] != -1:
            raise NoNative("a custom distance or axis is not ported")
        p.update(distance="squared" if cfg["squared"] else "canonical", p=float(cfg["p"]),
                 eps=float(cfg["eps"]), steps=canonical_steps(call))
        if arrays.get("sample_weight"):
            p["weights"][arrays["sample_weight"]] = "per_sample"
    return Spec("triplet", call, var, p, ["max(0, d(a, p) - d(a, n) + margin) per triplet"])


_DISTANCE_TEXT = {
    "torch": "torch's ‖a - b + eps‖_p (eps added to every component of the difference)",
    "optax": "optax's (Σ(a - b)^deg + eps)^(1/deg) (eps inside the root, no absolute value)",
    "squared": "Gluon's squared distance Σ(a - b)² (no root)",
    "canonical": "the canonical (Σ|a - b|^p + eps)^(1/p)",
}


def _distance_code(fw: Framework, spec: Spec) -> str:
    """A lambda computing the source's distance with ``fw``'s operations."""
    ops = _OPS[fw.convention]
    kind, p, eps = spec["distance"], spec["p"], spec["eps"]
    s = "dim" if fw.convention == "torch" else "axis"
    if kind == "squared":
        return f"lambda x, y: {ops}.sum((x - y) ** 2, {s}=-1)"
    if kind == "optax":
        return f"lambda x, y: ({ops}.sum((x - y) ** {p!r}, {s}=-1) + {eps!r}) ** (1 / {p!r})"
    if kind == "canonical":
        return f"lambda x, y: ({ops}.sum({ops}.abs(x - y) ** {p!r}, {s}=-1) + {eps!r}) ** (1 / {p!r})"
    if fw.convention == "polyloss":
        return f"lambda x, y: xp.linalg.vector_norm(x - y + {eps!r}, ord={p!r}, axis=-1)"
    return f"lambda x, y: torch.linalg.vector_norm(x - y + {eps!r}, ord={p!r}, dim=-1)"


def _triplet_torch(spec: Spec) -> Native:
    fw = FRAMEWORKS["torch"]
    a, p_, n = spec.var["a"], spec.var["p"], spec.var["n"]
    steps = simplify(steps_for(fw, spec))
    reduction = "none"
    if steps[:1] in ([("mean", None)], [("sum", None)]):
        reduction, steps = steps[0][0], steps[1:]
    red = [] if reduction == "mean" else [f"reduction={reduction!r}"]
    if spec["distance"] == "torch":
        options = kw(margin=spec["margin"] if spec["margin"] != 1.0 else None,
                     p=spec["p"] if spec["p"] != 2.0 else None, eps=spec["eps"] if spec["eps"] != 1e-6
                     else None, swap=spec["swap"] or None) + red
        call = f"torch.nn.functional.triplet_margin_loss({', '.join([a, p_, n] + options)})"
        notes = []
    else:
        options = [f"distance_function={_distance_code(fw, spec)}"] + kw(
            margin=spec["margin"] if spec["margin"] != 1.0 else None, swap=spec["swap"] or None) + red
        call = f"torch.nn.functional.triplet_margin_with_distance_loss({', '.join([a, p_, n] + options)})"
        notes = [f"the source's distance, {_DISTANCE_TEXT[spec['distance']]}, as torch's "
                 "distance_function"]
    return Native("exact", finish(fw, call, steps), notes)


def _triplet_gluon(spec: Spec) -> Native:
    fw = FRAMEWORKS["gluon"]
    if spec["distance"] != "squared" or spec["swap"]:
        raise NoNative(f"Gluon's TripletLoss uses squared distances without swap; the source uses "
                       f"{_DISTANCE_TEXT[spec['distance']]}")
    ctor = kw(margin=spec["margin"] if spec["margin"] != 1.0 else None)
    call = f"gluon.loss.TripletLoss({', '.join(ctor)})({spec.var['a']}, {spec.var['p']}, {spec.var['n']})"
    return Native("exact", finish(fw, call, simplify(steps_for(fw, spec))))


def _triplet_optax(spec: Spec) -> Native:
    fw = FRAMEWORKS["optax"]
    if spec["swap"]:
        raise NoNative("optax's triplet_margin_loss has no swap")
    kind = spec["distance"]
    status, diffs = "exact", []
    if kind == "squared":
        raise NoNative("optax's triplet_margin_loss takes the root of its distance; Gluon's squared "
                       "distance has no optax form")
    if kind in ("torch", "canonical") and not (spec["eps"] == 0 and spec["p"] % 2 == 0):
        status, diffs = "approximate", [
            f"{_DISTANCE_TEXT[kind]} vs {_DISTANCE_TEXT['optax']}: distances about eps = "
            f"{spec['eps']!r} apart (exact with eps=0 and an even p)"]
    options = kw(norm_degree=spec["p"] if spec["p"] != 2.0 else None,
                 margin=spec["margin"] if spec["margin"] != 1.0 else None,
                 eps=spec["eps"] if spec["eps"] != 1e-6 else None)
    code = optax_call("triplet_margin_loss", [spec.var["a"], spec.var["p"], spec.var["n"]], options,
                      steps_for(fw, spec))
    return Native(status, code, [], diffs)


def _triplet_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    options = kw(margin=spec["margin"] if spec["margin"] != 1.0 else None, swap=spec["swap"] or None)
    kind = spec["distance"]
    if kind == "squared":
        options.append("squared=True")
    elif kind == "canonical":
        options += kw(p=spec["p"] if spec["p"] != 2.0 else None, eps=spec["eps"] if spec["eps"] != 1e-6
                      else None)
    else:
        options.append(f"distance={_distance_code(fw, spec)}")
    code = canonical_call("triplet_margin", [spec.var["a"], spec.var["p"], spec.var["n"]], options,
                          spec["steps"])
    return Native("exact", with_xp(code, spec.var["a"]))


# ---- Dice and Tversky -------------------------------------------------------------------------

def _dice_read(call: Call) -> Spec:
    conv, name, cfg = call.convention, call.name, call.config
    arrays = call.arrays
    p: dict[str, Any] = {"weights": {}, "dtype": None, "source": conv}
    if conv == "keras":
        var = {"pred": arrays["y_pred"], "target": arrays["y_true"]}
        if cfg["axis"] is not None:
            raise NoNative("Keras's axis= pooling is not ported (only the default axis=None, which "
                           "pools everything)")
        tversky = name.lower() == "tversky"
        p.update(kind="keras", alpha=float(cfg["alpha"]) if tversky else 0.5,
                 beta=float(cfg["beta"]) if tversky else 0.5, tversky=tversky,
                 steps=keras_steps(call, []), dtype=keras_dtype(call))
        if arrays.get("sample_weight"):
            raise NoNative("Keras's sample_weight with the whole-array Dice is not ported")
    elif conv == "optax":
        var = {"pred": arrays["predictions"], "target": arrays["targets"]}
        if arrays.get("class_weights") or cfg["axis"] is not None or cfg["reduction"] != "mean":
            raise NoNative("class_weights, axis and reduction other than 'mean' are not ported")
        p.update(kind="optax", alpha=float(cfg["alpha"]), beta=float(cfg["beta"]), tversky=True,
                 smooth=float(cfg["smooth"]), softmax=bool(cfg["apply_softmax"]),
                 background=not cfg["ignore_background"], steps=[])
    else:
        var = {"pred": arrays["pred"], "target": arrays["target"]}
        p.update(kind="canonical", steps=[])
    return Spec("dice", call, var, p, [
        "Keras pools everything (one value per batch, +1e-7 in the denominator only); optax scores "
        "each sample and class (softmax by default, smooth in numerator and denominator)"])


def _dice_canonical(spec: Spec) -> Native:
    fw = FRAMEWORKS["polyloss"]
    x, t = arg(fw, spec, "pred"), arg(fw, spec, "target")
    from polyloss import keras as mirror

    if spec["kind"] == "keras":
        eps = mirror.EPSILON
        if spec["tversky"]:
            # Keras's alpha weights Σ(1 - ŷ)y (false negatives), the canonical alpha false positives
            options = [f"alpha={spec['beta']!r}", f"beta={spec['alpha']!r}", "pooling='batch'",
                       "smooth=0.0", f"eps={eps!r}"]
            fn = "tversky"
        else:
            # the canonical denominator is ½(Σp + Σt) + eps: Keras's eps halves
            options, fn = ["pooling='batch'", "smooth=0.0", f"eps={eps / 2!r}"], "dice"
        code = canonical_call(fn, [x, t], options, steps_for(fw, spec))
        return Native("exact", code, ["Keras's Dice 1 - 2Σyŷ/(Σy + Σŷ + 1e-7) is the canonical dice with "
                                      "eps = 5e-8 (the canonical form halves the denominator)"])
    options = [f"activation={'softmax' if spec['softmax'] else 'none'!r}", "class_axis=-1",
               f"smooth={spec['smooth']!r}", "eps=0.0"]
    fn = "dice"
    if (spec["alpha"], spec["beta"]) != (0.5, 0.5):
        fn = "tversky"
        options = [f"alpha={spec['alpha']!r}", f"beta={spec['beta']!r}"] + options
    if not spec["background"]:
        options.append("include_background=False")
    if spec["softmax"]:
        notes = ["optax applies a sigmoid to a single channel; the canonical softmax does not "
                 "(use activation='sigmoid' there)"]
    else:
        notes = []
    return Native("exact", canonical_call(fn, [x, t], options, [], unreduced="none"), notes)


def _dice_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    if spec["kind"] in ("keras", "canonical"):
        pred = rng.uniform(0.02, 0.98, size=(N, D))
        target = (rng.random((N, D)) < 0.5).astype(np.float64)
    else:
        logits = rng.normal(size=(2, 4, 4, 3))
        pred = logits if spec["softmax"] else np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        target = np.eye(3)[rng.integers(0, 3, size=(2, 4, 4))]
    return {spec.var["pred"]: pred.astype(dtype), spec.var["target"]: target.astype(dtype)}


# ---- losses only one convention has -----------------------------------------------------------

def _single(key: str, title: str, names: list[tuple[str, str]], inputs, note: str,
            canonical: Callable[[Spec], Native] | None = None, reason: str = "") -> Concept:
    """A row whose loss exists in one convention (and possibly the canonical API)."""

    def read(call: Call) -> Spec:
        return Spec(key, call, dict(call.arrays), {"steps": [], "weights": {}, "config": call.config})

    conventions = {conv for conv, _ in names}
    render = {"polyloss": canonical} if canonical else {}
    missing = {c: reason for c in ("torch", "keras", "gluon", "optax", "polyloss")
               if c not in conventions and c not in render}
    return Concept(key, title, interpret={k: read for k in names}, render=render, inputs=inputs,
                   absent=_absent(title, **missing), notes=[note])


def _arrays(**makers: Callable[[Any, str], np.ndarray]):
    """Inputs by parameter name (the call's variable for each)."""

    def make(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
        out = {}
        for param, var in spec.call.arrays.items():
            if param in makers:
                out[var] = makers[param](rng, dtype)
        return out

    return make


def _unit_rows(rng: Any, dtype: str) -> np.ndarray:
    x = rng.normal(size=(N + 2, D))
    return (x / np.sqrt((x * x).sum(-1, keepdims=True))).astype(dtype)


def _groups(rng: Any, dtype: str) -> np.ndarray:
    return np.array([0, 1, 0, 1, 2, 2], dtype=np.int64)


def _ntxent_canonical(spec: Spec) -> Native:
    cfg = spec["config"]
    options = kw(temperature=cfg["temperature"] if cfg["temperature"] != 0.07 else None)
    return Native("edges", [f"loss = polyloss.ntxent({spec.var['embeddings']}, {spec.var['labels']}"
                            f"{''.join(', ' + o for o in options)})"],
                  [], ["optax floors each norm at √finfo.eps, the canonical loss at 1e-8: different "
                       "only for embeddings of norm below about 1e-8"])


def _single_concepts() -> list[Concept]:
    vec = lambda rng, dtype: rng.normal(size=(N, D)).astype(dtype)  # noqa: E731
    return [
        _single("contrastive", "contrastive (pairs)", [("polyloss", "contrastive")],
                _arrays(x1=vec, x2=vec, target=lambda rng, dtype: (rng.random(N) < 0.5).astype(dtype)),
                "y·d² + (1 - y)·max(0, margin - d)² (Hadsell et al. 2006)"),
        _single("ntxent", "NT-Xent", [("optax", "ntxent"), ("polyloss", "ntxent")],
                _arrays(embeddings=_unit_rows, labels=_groups),
                "the normalised temperature-scaled cross-entropy over positive pairs (a scalar)",
                canonical=_ntxent_canonical),
        _single("circle", "Circle", [("keras", "Circle"), ("keras", "circle")],
                _arrays(y_pred=_unit_rows, y_true=_groups),
                "Keras's Circle loss takes L2-normalised embeddings and integer labels"),
        _single("sdml", "smoothed deep metric learning (SDML)", [("gluon", "SDMLLoss")],
                _arrays(x1=vec, x2=vec), "Gluon's SDMLLoss: KL of log_softmax(-‖x1_i - x2_j‖²) against "
                "the smoothed identity"),
        _single("generalized_dice", "generalized Dice", [("optax", "multiclass_generalized_dice_loss")],
                _arrays(predictions=lambda rng, dtype: rng.normal(size=(2, 4, 4, 3)).astype(dtype),
                        targets=lambda rng, dtype: np.eye(3)[rng.integers(0, 3, (2, 4, 4))].astype(dtype)),
                "class weights 1/(f² + 1e-7) normalised to sum to C, a scalar"),
        _single("binary_dice", "binary Dice (optax)", [("optax", "binary_dice_loss")],
                _arrays(predictions=lambda rng, dtype: rng.normal(size=(2, 4, 4, 1)).astype(dtype),
                        targets=lambda rng, dtype: (rng.random((2, 4, 4, 1)) < 0.5).astype(dtype)),
                "optax's dice_loss of a single sigmoid channel"),
        _single("jaccard", "Jaccard (soft IoU)", [("polyloss", "jaccard")],
                _arrays(pred=lambda rng, dtype: rng.uniform(0.02, 0.98, (N, D)).astype(dtype),
                        target=lambda rng, dtype: (rng.random((N, D)) < 0.5).astype(dtype)),
                "1 - TP/(TP + FP + FN)"),
        _single("lovasz", "Lovász hinge and Lovász-softmax",
                [("polyloss", "lovasz_hinge"), ("polyloss", "lovasz_softmax")],
                _lovasz_inputs, "Berman et al. 2018: the Lovász extension of the Jaccard loss"),
        _single("ranking_softmax", "listwise softmax ranking", [("optax", "ranking_softmax_loss")],
                _arrays(logits=vec, labels=lambda rng, dtype: rng.integers(0, 4, (N, D)).astype(dtype)),
                "-Σ labels·log_softmax(logits) per list, reduced by reduce_fn (the mean)"),
    ]


def _lovasz_inputs(spec: Spec, dtype: str, rng: Any) -> dict[str, np.ndarray]:
    if spec.call.name == "lovasz_hinge":
        return {spec.var["pred"]: rng.normal(size=(2, 4, 4)).astype(dtype),
                spec.var["target"]: (rng.random((2, 4, 4)) < 0.5).astype(dtype)}
    logits = rng.normal(size=(2, 3, 4, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return {spec.var["pred"]: probs.astype(dtype),
            spec.var["target"]: rng.integers(0, 3, size=(2, 4, 4)).astype(np.int64)}


CONCEPTS: list[Concept] = [
    Concept("cosine_embedding", "cosine embedding (pairs, ±1 labels)",
            interpret={("torch", "CosineEmbeddingLoss"): _cosine_embedding_read,
                       ("torch", "cosine_embedding_loss"): _cosine_embedding_read,
                       ("gluon", "CosineEmbeddingLoss"): _cosine_embedding_read,
                       ("polyloss", "cosine_embedding"): _cosine_embedding_read},
            render={"torch": _cosine_embedding_torch, "gluon": _cosine_embedding_gluon,
                    "keras": _cosine_embedding_from_similarity("keras"),
                    "optax": _cosine_embedding_from_similarity("optax"),
                    "polyloss": _cosine_embedding_canonical},
            inputs=_vectors("x1", "x2"),
            notes=[GLUON_NOTE]),
    Concept("cosine_similarity", "cosine similarity / distance",
            interpret={("keras", "CosineSimilarity"): _cosine_similarity_read,
                       ("keras", "cosine_similarity"): _cosine_similarity_read,
                       ("optax", "cosine_similarity"): _cosine_similarity_read,
                       ("optax", "cosine_distance"): _cosine_similarity_read,
                       ("polyloss", "cosine_similarity"): _cosine_similarity_read},
            render={"torch": _cosine_similarity_writer("torch"), "keras": _cosine_similarity_writer("keras"),
                    "optax": _cosine_similarity_writer("optax"),
                    "polyloss": _cosine_similarity_writer("polyloss")},
            inputs=_similarity_inputs,
            absent={"gluon": "Gluon has no cosine similarity loss (its CosineEmbeddingLoss with all "
                             "labels 1 is 1 - cos)"},
            notes=["Keras's CosineSimilarity is -cos, optax's cosine_similarity +cos and "
                   "cosine_distance 1 - cos", KERAS_REDUCTION_NOTE]),
    Concept("triplet", "triplet margin",
            interpret={("torch", "TripletMarginLoss"): _triplet_read,
                       ("torch", "triplet_margin_loss"): _triplet_read,
                       ("torch", "TripletMarginWithDistanceLoss"): _triplet_read,
                       ("torch", "triplet_margin_with_distance_loss"): _triplet_read,
                       ("gluon", "TripletLoss"): _triplet_read,
                       ("optax", "triplet_margin_loss"): _triplet_read,
                       ("polyloss", "triplet_margin"): _triplet_read},
            render={"torch": _triplet_torch, "gluon": _triplet_gluon, "optax": _triplet_optax,
                    "polyloss": _triplet_canonical},
            inputs=_vectors("a", "p", "n"), absent=_absent("triplet", keras=""),
            notes=["the distances differ: " + "; ".join(_DISTANCE_TEXT.values())]),
    Concept("dice", "Dice and Tversky",
            interpret={("keras", "Dice"): _dice_read, ("keras", "dice"): _dice_read,
                       ("keras", "Tversky"): _dice_read, ("keras", "tversky"): _dice_read,
                       ("optax", "dice_loss"): _dice_read, ("polyloss", "dice"): _dice_read,
                       ("polyloss", "tversky"): _dice_read},
            render={"polyloss": _dice_canonical},
            inputs=_dice_inputs,
            absent={"torch": "torch has no Dice loss", "gluon": "Gluon has no Dice loss",
                    "keras": "Keras's Dice/Tversky pool the whole batch into one value (or the axes "
                             "of axis=) with 1e-7 in the denominator only and no activation; other "
                             "poolings, smoothing or activations have no Keras form",
                    "optax": "optax's dice_loss scores each sample and class (softmax by default, "
                             "smooth in numerator and denominator); a whole-batch score with 1e-7 in "
                             "the denominator only (Keras's) has no optax form"},
            notes=["Keras's Tversky alpha weights Σ(1 - ŷ)y, the opposite of optax's and the "
                   "canonical alpha"]),
    *_single_concepts(),
]
