"""The overlap (segmentation) losses: canonical ``polyloss.dice``/``tversky``/``jaccard`` against
NumPy float64 oracles, ``polyloss.keras``'s ``Dice``/``Tversky`` against the real Keras 3.15
(TensorFlow backend) and ``polyloss.optax``'s ``dice_loss``/``binary_dice_loss``/
``multiclass_generalized_dice_loss`` against the real optax 0.2.8 (JAX, 64-bit enabled as the
parity backends set it up).

1. Canonical. Every expected value comes from ``overlap_oracle`` below, written in NumPy float64
   from the formula: per (sample, class) over the spatial axes (``pooling="batch"``: batch and
   spatial axes pooled) ``score = (TP + s_n)/(TP + α·FP + β·FN + s + eps)`` with ``TP = Σ p·t``,
   ``FP = Σ p(1-t)``, ``FN = Σ (1-p)t`` and ``s_n = s`` if ``smooth_numerator`` else 0; dice is
   α = β = ½ and jaccard α = β = 1; ``loss = 1 - score``, averaged over the classes kept
   (``include_background=False`` drops class 0), then reduced over the samples (batch pooling:
   one value). Its gradient is the analytic derivative of that formula (checked against
   central differences in ``test_oracle_gradient_by_central_differences``), and the oracle itself
   against numbers worked by hand. Covered: (N, C, H, W) with ``class_axis=1``, channels-last
   with ``-1``, a class axis in the middle, (N, C, L), a single foreground map
   (``class_axis=None``), no spatial axes at all; activations none/sigmoid/softmax; one-hot,
   soft and integer-label targets (and labels equal to their one-hot form, bit for bit);
   pooling, smoothing placement, ``eps``, background, every reduction and normalizer with
   ``sample_weight``; the empty batch; every installed array type; gradients on every autograd
   backend; bad input.
2. Keras. Class (every reduction, ``sample_weight`` shapes Keras accepts, ``dtype=None`` on float32
   and float64 inputs and ``dtype='float64'``) and function forms, ``axis`` None / (1, 2) / -1
   (and more for the functions), Tversky's α ≠ β both ways round (Keras's α weights
   ``Σ(1-ŷ)y``), all-zero and empty inputs, integer ``y_true``, values on every array type,
   gradients (``tf.GradientTape`` on the native, every autograd backend for polyloss), signatures
   and configs, and the documented deliberate differences (shape mismatch and enlarging weights
   raise ``ValueError``).
3. optax. ``dice_loss`` with softmax and single-channel sigmoid inputs (with and without the
   channel axis), ``apply_softmax=False`` on valid probabilities and the ``ValueError`` for invalid
   ones (also at the tolerance boundary), ``class_weights``, ``ignore_background``, every
   reduction, ``axis`` (int, tuples, batch pooled), α/β/``smooth``; ``binary_dice_loss`` and
   ``multiclass_generalized_dice_loss`` (including a class absent from the batch); values on every
   array type, ``jax.grad`` gradients against every autograd backend, signatures, bad shapes.

Tolerances (``_native.rtol_for``): float64 ``rtol = 1e-12``, float32 ``8·eps·log2(n)`` with ``n``
the number of prediction elements. ``1 - score`` cancels when a score is near 1, so values also
accept that relative tolerance times the reduction's weight on one (sample, class) cell (an
absolute error of a few ulps of 1 per cell); gradients accept it times the size of the terms
the derivative is a difference of (``mag``).
"""

from __future__ import annotations

import inspect
import math
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from _native import KINDS, assert_close, kind_params, require_module, rtol_for, run_on
from conftest import AUTOGRAD

import polyloss

DTYPES = ("float32", "float64")


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _key(*arrays) -> tuple:
    return tuple(None if a is None else (a.dtype.str, a.shape, a.tobytes()) for a in arrays)


# =================================================================================================
# 1. canonical dice / tversky / jaccard against NumPy float64 oracles
# =================================================================================================

N, C, H, W = 3, 4, 3, 5

# name -> (pred shape, class_axis)
LAYOUTS = {
    "nchw": ((N, C, H, W), 1),
    "nhwc": ((N, H, W, C), -1),
    "nhcw": ((N, H, C, W), 2),
    "ncl": ((N, C, 7), 1),
    "mask": ((N, H, W), None),
}
ALPHA_BETA = {"dice": (0.5, 0.5), "jaccard": (1.0, 1.0)}


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax(z, axis):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def overlap_oracle(loss, pred, target, sample_weight=None, *, alpha=0.5, beta=0.5, activation="none",
                   class_axis=None, pooling="sample", smooth=0.0, smooth_numerator=True, eps=1e-7,
                   include_background=True, reduction="mean", normalizer="count"):
    """``(value, d Σvalue / d pred, mag, scale)`` in float64, straight from the formula.

    Works in the layout (N, C, M): classes on axis 1 (a single class without a class axis), the
    spatial axes flattened. ``mag`` is the elementwise size of the terms the gradient is a
    difference of; ``scale`` how much the reduction amplifies an absolute error of ``1 - score``
    in the (sample, class) cells: the largest weight unreduced, the sum of the weights reduced.
    """
    if loss != "tversky":
        alpha, beta = ALPHA_BETA[loss]
    z = np.asarray(pred, dtype=np.float64)
    n = z.shape[0]
    zl = z[:, None] if class_axis is None else np.moveaxis(z, class_axis, 1)
    moved_shape = zl.shape
    c, m = zl.shape[1], math.prod(zl.shape[2:])
    zl = zl.reshape(n, c, m)
    if target.shape == pred.shape:
        t = np.asarray(target, dtype=np.float64)
        tl = (t[:, None] if class_axis is None else np.moveaxis(t, class_axis, 1)).reshape(zl.shape)
    else:  # integer class indices: one-hot along the class axis
        tl = (target.reshape(n, 1, m) == np.arange(c).reshape(1, c, 1)).astype(np.float64)
    p = {"none": zl, "sigmoid": _sigmoid(zl), "softmax": _softmax(zl, 1) if zl.size else zl}[activation]
    axes = (2,) if pooling == "sample" else (0, 2)
    tp = np.sum(p * tl, axis=axes, keepdims=True)
    fp = np.sum(p * (1.0 - tl), axis=axes, keepdims=True)
    fn = np.sum((1.0 - p) * tl, axis=axes, keepdims=True)
    sn = smooth if smooth_numerator else 0.0
    den = tp + alpha * fp + beta * fn + smooth + eps
    with np.errstate(invalid="ignore", divide="ignore"):
        per = 1.0 - ((tp + sn) / den)[..., 0]  # (N, C), (1, C) for batch pooling
    keep = np.ones(c, bool)
    if class_axis is not None and not include_background:
        keep[0] = False
    k = int(keep.sum())
    per_sample = np.mean(per[:, keep], axis=1) if per.size else np.zeros(per.shape[0])
    if pooling == "batch":
        value, coef = per_sample[0], np.ones(1)
    else:
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        w = np.broadcast_to(w.reshape(-1), (n,))
        weighted = per_sample * w
        if reduction == "none":
            value, coef = weighted, w
        elif reduction == "sum":
            value, coef = np.sum(weighted), w
        else:
            denom = float(n) if normalizer == "count" else float(np.sum(w))
            with np.errstate(invalid="ignore", divide="ignore"):
                value, coef = np.sum(weighted) / denom, w / denom
    cell = coef[:, None] * keep / k  # d value / d (1 - score) of each (sample, class) cell
    dden = tl + alpha * (1.0 - tl) - beta * tl
    a, b = tl / den, (tp + sn) / den**2 * dden  # d score / d p = a - b
    g = -cell[..., None] * (a - b)
    mag = np.abs(cell[..., None]) * (np.abs(a) + np.abs(b))
    if activation == "sigmoid":
        g, mag = g * p * (1.0 - p), mag * p * (1.0 - p)
    elif activation == "softmax":
        g = p * (g - np.sum(p * g, axis=1, keepdims=True))
        mag = p * (mag + np.sum(p * mag, axis=1, keepdims=True))

    def back(x):
        x = x.reshape(moved_shape)
        return x[:, 0] if class_axis is None else np.moveaxis(x, 1, class_axis)

    scale = float(np.max(np.abs(coef), initial=0.0)) if reduction == "none" and pooling == "sample" \
        else float(np.sum(np.abs(coef)))
    return np.asarray(value), back(g), back(mag), scale


@dataclass(frozen=True)
class Canon:
    """One canonical call: loss, keyword arguments, layout, target form and weight."""

    loss: str
    layout: str
    target: str  # onehot | labels | soft | mask
    params: tuple = ()
    weighted: bool = False

    @property
    def kw(self) -> dict:
        return dict(self.params)

    @property
    def class_axis(self):
        return LAYOUTS[self.layout][1]

    def call(self, pred, target, w=None, **extra):
        kw = {**self.kw, **extra}
        return getattr(polyloss, self.loss)(pred, target, class_axis=self.class_axis,
                                             sample_weight=w, **kw)

    def oracle(self, pred, target, w=None, **extra):
        return overlap_oracle(self.loss, pred, target, w, class_axis=self.class_axis,
                              **{**self.kw, **extra})

    def __str__(self) -> str:
        short = {"smooth_numerator": "sn", "include_background": "bg", "normalizer": "norm",
                 "reduction": "red", "pooling": "pool"}
        parts = [self.loss, self.layout, self.target]
        parts += [str(v) if k == "activation" else f"{short.get(k, k)}={v}" for k, v in self.params]
        return "-".join(parts + (["w"] if self.weighted else []))


def canon(loss, layout, target, weighted=False, **kw) -> Canon:
    return Canon(loss, layout, target, tuple(kw.items()), weighted)


CANON = [
    canon("dice", "nchw", "onehot", activation="softmax"),
    canon("dice", "nhwc", "labels", activation="softmax", include_background=False),
    canon("dice", "nchw", "soft", activation="sigmoid", smooth=1.0, reduction="sum"),
    canon("dice", "mask", "mask", True, activation="sigmoid", smooth=1.0, smooth_numerator=False),
    canon("dice", "ncl", "labels", True, activation="none", reduction="mean", normalizer="sum_of_weights"),
    canon("tversky", "nchw", "soft", True, alpha=0.3, beta=0.7, reduction="none"),
    canon("tversky", "nhwc", "labels", alpha=0.8, beta=0.2, activation="softmax", pooling="batch"),
    canon("tversky", "mask", "mask", alpha=0.0, beta=2.0, smooth=0.5, eps=0.0, reduction="sum"),
    canon("tversky", "nhcw", "labels", True, alpha=0.6, beta=0.9, activation="softmax",
          include_background=False, reduction="none"),
    canon("jaccard", "nchw", "labels", activation="softmax", pooling="batch", include_background=False,
          smooth=0.5, smooth_numerator=False),
    canon("jaccard", "nhwc", "onehot", True, activation="sigmoid"),
    canon("jaccard", "mask", "mask", activation="none", smooth=1.0, eps=0.0),
    canon("jaccard", "nchw", "soft", True, activation="none", eps=1e-3, reduction="mean",
          normalizer="count"),
]
CANON_BY_NAME = {str(c): c for c in CANON}


def canon_inputs(c: Canon, dtype: str, rng: np.random.Generator, n: int = N) -> tuple:
    """``(pred, target, weight or None)``: logits (normal(0, 2)) for sigmoid/softmax; for
    ``activation="none"`` probabilities (with a class axis a softmax of random logits, for a
    single map uniform with exact 0s and 1s). Targets have an empty class on purpose: sample 0
    has no pixel of class 2 (labels, one-hot, soft) or an empty mask, so TP = FN = 0 there
    (soft: nearly). Weights uniform in [0, 2) with one exact 0."""
    shape, axis = LAYOUTS[c.layout]
    shape = (n,) + shape[1:]
    act = c.kw.get("activation", "none")
    z = rng.normal(0.0, 2.0, size=shape)
    if act != "none":
        pred = z
    elif axis is None:
        pred = rng.uniform(0.0, 1.0, size=shape)
        pred = np.where(rng.random(shape) < 0.15, rng.choice([0.0, 1.0], size=shape), pred)
    else:
        pred = _softmax(z, axis)
    if c.target == "mask":
        target = (rng.random(shape) < 0.4).astype(np.float64)
        if n:
            target[0] = 0.0
    else:
        lab_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        labels = rng.integers(0, shape[axis], size=lab_shape)
        if n:
            labels[0] = np.where(labels[0] == 2, 3, labels[0])
        if c.target == "labels":
            target = labels.astype(np.int64)
        else:
            target = np.moveaxis(np.eye(shape[axis])[labels], -1, axis % len(shape))
            if c.target == "soft":  # soft masks in [0, 1], not normalised over the classes
                target = 0.75 * target + 0.25 * rng.random(shape)
    w = None
    if c.weighted:
        w = rng.uniform(0.0, 2.0, size=(n,))
        if n > 1:
            w[1] = 0.0
        w = w.astype(dtype)
    t = target if target.dtype == np.int64 else target.astype(dtype)
    return pred.astype(dtype), t, w


def check_canon(kind, c: Canon, pred, target, w=None, **extra) -> np.ndarray:
    """``c`` on ``kind`` equals the oracle; returns the oracle's value."""
    dtype = str(pred.dtype)
    value, _, _, scale = c.oracle(pred, target, w, **extra)
    arrays = (pred, target) if w is None else (pred, target, w)
    got = run_on(kind, lambda *a: c.call(*a, **extra), *arrays)
    rtol = rtol_for(dtype, pred.size)
    assert_close(got, value.astype(dtype), dtype=dtype, n=pred.size, atol=rtol * scale,
                 err_msg=f"{c} {extra} w={None if w is None else w.shape}")
    return value


# ---- the oracle pinned to numbers worked by hand -----------------------------------------------

def test_oracle_and_polyloss_on_numbers_by_hand():
    """One map of 4 pixels: TP = 0.9 + 0.6 = 1.5, FP = 0.2, FN = 0.1 + 0.4 + 1 = 1.5. Two classes
    of 2 pixels (class-first, labels [0, 1]): class 0 TP 0.7 FP 0.4 FN 0.3 (dice 1 - 2/3), class 1
    TP 0.6 FP 0.3 FN 0.4 (dice 1 - 12/19); a second sample (labels [1, 1]) pooled with the first:
    class 0 TP 0.7 FP 1.1 FN 0.3 (dice 1/2), class 1 TP 1.9 FP 0.3 FN 1.1 (dice 7/26)."""
    p = np.array([[0.9, 0.2, 0.6, 0.0]])
    t = np.array([[1.0, 0.0, 1.0, 1.0]])
    cases = [
        ("dice", {}, 0.85 / 2.35),
        ("jaccard", {}, 0.53125),
        ("tversky", {"alpha": 0.3, "beta": 0.7}, 1.11 / 2.61),
        ("jaccard", {"smooth": 1.0, "smooth_numerator": False}, 9.0 / 14.0),
        ("jaccard", {"smooth": 1.0}, 17.0 / 42.0),
    ]
    for loss, kw, expected in cases:
        ab = {k: kw[k] for k in ("alpha", "beta") if k in kw}
        rest = {k: v for k, v in kw.items() if k not in ab}
        oracle = overlap_oracle(loss, p, t, eps=0.0, **{**ab, **rest})[0]
        got = getattr(polyloss, loss)(p, t, eps=0.0, **kw)
        np.testing.assert_allclose([oracle, got], expected, rtol=1e-12, err_msg=f"{loss} {kw}")
    p2 = np.array([[[0.7, 0.4], [0.3, 0.6]], [[0.2, 0.5], [0.8, 0.5]]])  # (N=2, C=2, 2 pixels)
    labels = np.array([[0, 1], [1, 1]])
    first = [(p2[:1], labels[:1], {}, (1 / 3 + 7 / 19) / 2),
             (p2[:1], labels[:1], {"include_background": False}, 7 / 19),
             (p2, labels, {"pooling": "batch"}, 5 / 13),
             (p2, labels, {"pooling": "batch", "include_background": False}, 7 / 26)]
    for pp, tt, kw, expected in first:
        oracle = overlap_oracle("dice", pp, tt, eps=0.0, class_axis=1, **kw)[0]
        got = polyloss.dice(pp, tt, eps=0.0, class_axis=1, **kw)
        np.testing.assert_allclose([oracle, got], expected, rtol=1e-12, err_msg=str(kw))


@pytest.mark.parametrize("name", ["dice-nhwc-labels-softmax-bg=False",
                                  "tversky-nhcw-labels-alpha=0.6-beta=0.9-softmax-bg=False-red=none-w",
                                  "dice-mask-mask-sigmoid-smooth=1.0-sn=False-w",
                                  "jaccard-nchw-soft-none-eps=0.001-red=mean-norm=count-w"])
def test_oracle_gradient_by_central_differences(name, rng):
    """The oracle's analytic gradient equals central differences of the oracle's value."""
    c = CANON_BY_NAME[name]
    pred, target, w = canon_inputs(c, "float64", rng)
    _, g, _, _ = c.oracle(pred, target, w)
    h = 1e-6
    num = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[i] += h
        down[i] -= h
        num[i] = (np.sum(c.oracle(up, target, w)[0]) - np.sum(c.oracle(down, target, w)[0])) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_specs_exercise_what_they_claim(rng):
    """Every option of the canonical losses appears in ``CANON`` with a non-default value, and
    the inputs really contain an empty class (TP = FN = 0 for sample 0)."""
    seen = {(k, v) for c in CANON for k, v in c.params}
    for k, v in [("activation", "none"), ("activation", "sigmoid"), ("activation", "softmax"),
                 ("pooling", "batch"), ("smooth_numerator", False), ("include_background", False),
                 ("reduction", "none"), ("reduction", "sum"), ("normalizer", "sum_of_weights"),
                 ("eps", 0.0)]:
        assert (k, v) in seen, (k, v)
    assert {c.target for c in CANON} == {"onehot", "labels", "soft", "mask"}
    assert {c.layout for c in CANON} == set(LAYOUTS)
    assert any(c.weighted for c in CANON)
    for c in CANON:
        _, t, _ = canon_inputs(c, "float64", rng)
        if c.target == "labels":
            assert not np.any(t[0] == 2)
        elif c.target == "mask":
            assert not np.any(t[0])


# ---- values on every array type ---------------------------------------------------------------------

# JAX compiles every new operation, shape and dtype on first use (0.3 to 1.5 s for each new
# configuration here), so it runs a covering subset: both layouts with a class axis and the
# single map, every activation and target form, both poolings, smoothing placement, background,
# weights and the "none" reduction; the other specs differ from these only in options that run
# the same operations, which every other array type checks.
JAX_CORE = ("dice-nhwc-labels-softmax-bg=False", "tversky-nchw-soft-alpha=0.3-beta=0.7-red=none-w",
            "jaccard-nchw-labels-softmax-pool=batch-bg=False-smooth=0.5-sn=False",
            "dice-mask-mask-sigmoid-smooth=1.0-sn=False-w")
JAX_GRAD = JAX_CORE[:2]
GRAD32 = CANON[:4]  # gradients in float32 too (elsewhere float64)


def kind_config_params(configs, core=JAX_CORE) -> list:
    """``(kind, config, dtype)``: everything on every kind but JAX, which gets ``core`` in
    float64 and its first entry in float32 too."""
    out = []
    for kp in kind_params():
        kind = kp.values[0]
        for c in configs:
            for dtype in DTYPES:
                if kind.name == "jax" and (str(c) not in core or dtype == "float32" and str(c) != core[0]):
                    continue
                out.append(pytest.param(kind, c, dtype, id=f"{kind.name}-{c}-{dtype}", marks=kp.marks))
    return out


def autograd_config_params(configs, core=JAX_GRAD) -> list:
    return [pytest.param(b, c, id=f"{b.name}-{c}") for b in AUTOGRAD for c in configs
            if b.name != "jax" or str(c) in core]


@pytest.mark.parametrize("kind, c, dtype", kind_config_params(CANON))
def test_canonical_matches_oracle(kind, c, dtype, rng):
    pred, target, w = canon_inputs(c, dtype, rng)
    value = check_canon(kind, c, pred, target, w)
    if c.kw.get("pooling") == "batch":
        assert value.shape == ()
        for reduction in ("none", "sum"):  # one value whatever the reduction
            check_canon(kind, c, pred, target, w, reduction=reduction)


@pytest.mark.parametrize("kind", kind_params())
def test_canonical_every_reduction_and_weight(kind, rng):
    """Every reduction and normalizer, without a weight, with one weight per sample and with a
    scalar weight (``normalizer="sum_of_weights"`` divides by the weights broadcast to the
    samples)."""
    c = canon("tversky", "nchw", "onehot", alpha=0.7, beta=0.4, activation="softmax")
    pred, target, _ = canon_inputs(c, "float64", rng)
    weights = [None, rng.uniform(0.0, 2.0, size=(N,)), np.asarray(1.75)]
    for w in weights:
        for reduction in ("none", "sum", "mean"):
            for normalizer in ("count", "sum_of_weights"):
                check_canon(kind, c, pred, target, w, reduction=reduction, normalizer=normalizer)


@pytest.mark.parametrize("kind", kind_params())
def test_integer_labels_equal_their_one_hot(kind, rng):
    """Class indices give the same bits as their one-hot masks (class axis first and last)."""
    for layout in ("nchw", "nhwc"):
        c = canon("jaccard", layout, "labels", activation="softmax", reduction="none")
        pred, labels, _ = canon_inputs(c, "float64", rng)
        axis = LAYOUTS[layout][1]
        onehot = np.moveaxis(np.eye(C)[labels], -1, axis)
        a = run_on(kind, c.call, pred, labels)
        b = run_on(kind, c.call, pred, onehot)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=layout)


@pytest.mark.parametrize("kind", kind_params())
def test_canonical_empty_batch(kind, rng):
    """N = 0: ``"none"`` gives ``(0,)``, ``"sum"`` 0 and ``"mean"`` NaN (no samples)."""
    for target in ("labels", "onehot"):
        c = canon("dice", "nchw", target, activation="softmax")
        pred, t, _ = canon_inputs(c, "float32", rng, n=0)
        for reduction in ("none", "sum", "mean"):
            value = check_canon(kind, c, pred, t, reduction=reduction)
            assert value.shape == ((0,) if reduction == "none" else ())


@pytest.mark.parametrize("kind", kind_params())
def test_canonical_without_spatial_axes(kind, rng):
    """Nothing to sum over: ``(N, C)`` with ``class_axis=1`` (one pixel per sample) and ``(N,)``
    with ``class_axis=None`` (one value per sample): each (sample, class) is its own score."""
    z = rng.normal(0.0, 2.0, size=(N, C))
    labels = rng.integers(0, C, size=(N,))
    mask = (rng.random(N) < 0.5).astype(np.float64)
    for pred, target, kw in ((z, labels, {"class_axis": 1, "activation": "softmax"}),
                             (z[:, 0], mask, {"activation": "sigmoid"})):
        for loss in ("dice", "jaccard"):
            expected = overlap_oracle(loss, pred, target, reduction="none", **kw)[0]
            fn = getattr(polyloss, loss)
            got = run_on(kind, lambda p, t, f=fn, k=kw: f(p, t, reduction="none", **k), pred, target)
            assert_close(got, expected, dtype="float64", n=pred.size, atol=1e-12, err_msg=f"{loss} {kw}")


# ---- gradients ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend, c", autograd_config_params(CANON))
def test_canonical_gradient_matches_oracle(backend, c, rng):
    """d Σ(loss)/d pred on every autograd backend (float64; float32 too for ``GRAD32``)."""
    for dtype in DTYPES if c in GRAD32 and backend.name != "jax" else ("float64",):
        pred, target, w = canon_inputs(c, dtype, rng)
        value, g, mag, scale = c.oracle(pred, target, w)
        arrays = [pred, target] + ([] if w is None else [w])
        got_v, got_g = backend.value_and_grad(c.call, arrays, 0)
        rtol = rtol_for(dtype, pred.size)
        assert_close(got_v, value.astype(dtype), dtype=dtype, n=pred.size, atol=rtol * scale,
                     err_msg=f"{c} {dtype}")
        assert_close(got_g, g.astype(dtype), dtype=dtype, n=pred.size, atol=rtol * float(np.max(mag)),
                     err_msg=f"{c} {dtype} gradient")


# ---- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", kind_params())
def test_canonical_shape_mismatch_raises(kind, rng):
    """A target that is neither pred's shape nor (with a class axis) pred's shape without it."""
    pred = rng.normal(size=(N, C, H, W)).astype("float32")
    onehot = np.moveaxis(np.eye(C, dtype=np.float32)[rng.integers(0, C, size=(N, H, W))], -1, 1)
    labels = rng.integers(0, C, size=(N, H, W))
    bad = [(onehot[..., :-1], 1), (onehot[:1], 1), (labels[..., :-1], 1), (labels[:, None], 1),
           (labels, None), (onehot[:, :-1], 1)]
    for target, axis in bad:
        with pytest.raises(ValueError, match="target"):
            run_on(kind, lambda p, t, a=axis: polyloss.dice(p, t, class_axis=a), pred, target)


@pytest.mark.parametrize("bad", [C, -1, 255])
@pytest.mark.parametrize("kind", kind_params(exclude=("dask",)))  # lazy labels are not read
def test_canonical_labels_out_of_range_raise(kind, bad, rng):
    pred = rng.normal(size=(N, H, W, C)).astype("float32")
    labels = rng.integers(0, C, size=(N, H, W))
    labels[1, 2, 3] = bad
    for fn in (polyloss.dice, polyloss.tversky, polyloss.jaccard):
        with pytest.raises(ValueError, match="target"):
            run_on(kind, lambda p, t, f=fn: f(p, t, class_axis=-1, activation="softmax"), pred, labels)


@pytest.mark.parametrize("kw, match", [
    ({"activation": "relu"}, "activation"), ({"activation": None}, "activation"),
    ({"activation": "Softmax", "class_axis": 1}, "activation"),
    ({"pooling": "pixel"}, "pooling"), ({"pooling": "global"}, "pooling"),
    ({"reduction": "average"}, "reduction"), ({"normalizer": "valid_count"}, "normalizer"),
    ({"class_axis": 0}, "class_axis"), ({"class_axis": 4}, "class_axis"), ({"class_axis": -4}, "class_axis"),
    ({"class_axis": -5}, "class_axis"),
    ({"activation": "softmax"}, "class_axis"), ({"smooth": -1.0}, "smooth"), ({"eps": -1e-7}, "eps"),
    ({"alpha": -0.1}, "alpha"), ({"beta": "0.5"}, "beta"),
], ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_canonical_invalid_options_raise(kw, match, rng):
    pred = rng.random((N, C, H, W))
    target = np.moveaxis(np.eye(C)[rng.integers(0, C, size=(N, H, W))], -1, 1)
    losses = ("tversky",) if {"alpha", "beta"} & set(kw) else ("dice", "tversky", "jaccard")
    for loss in losses:
        with pytest.raises(ValueError, match=match):
            getattr(polyloss, loss)(pred, target, **kw)


def test_canonical_signatures():
    """The documented keyword-only signatures, in this order, with these defaults."""
    common = [("activation", "none"), ("class_axis", None), ("pooling", "sample"), ("smooth", 0.0),
              ("smooth_numerator", True), ("eps", 1e-7), ("include_background", True),
              ("reduction", "mean"), ("sample_weight", None), ("normalizer", "count")]
    pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
    kwo = inspect.Parameter.KEYWORD_ONLY
    head = [("pred", pos, inspect.Parameter.empty), ("target", pos, inspect.Parameter.empty)]
    for loss, extra in (("dice", []), ("jaccard", []), ("tversky", [("alpha", 0.5), ("beta", 0.5)])):
        expected = head + [(k, kwo, v) for k, v in extra + common]
        assert _params(getattr(polyloss, loss)) == expected, loss


# =================================================================================================
# 2. polyloss.keras Dice / Tversky against keras.losses (TensorFlow backend)
# =================================================================================================

KB, KH, KW, KC = 3, 4, 5, 2
K_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
# (class, keyword arguments); Tversky with α ≠ β both ways round (Keras's α weights Σ(1-ŷ)y)
DICE_K = ("Dice", ())
TV_K = ("Tversky", (("alpha", 0.3), ("beta", 0.8)))
TV_K2 = ("Tversky", (("alpha", 0.9), ("beta", 0.15)))
K_CFGS = [DICE_K, TV_K, TV_K2]
K_AXES = [None, (1, 2), -1]
# sample_weight shapes Keras accepts for each axis (per-sample loss (), (B, C), (B, H, W))
K_WEIGHTS = {None: [None, ()], (1, 2): [None, (KB, 1), (KB, KC)], -1: [None, (KB, 1, 1), (KB, KH, KW)]}
_K_NATIVE: dict = {}


def _kid(v):
    return "-".join([v[0]] + [f"{k}={x}" for k, x in v[1]])


def _seeded(*parts) -> np.random.Generator:
    """A generator fixed by ``parts``: the same inputs in every test, so the native results
    (cached) are computed once per input."""
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def _keras():
    tf = require_module("tensorflow")
    keras = require_module("keras", reason="keras (TensorFlow backend) is not installed")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("these tests need Keras on its TensorFlow backend")
    import polyloss.keras as pk

    return tf, keras, pk


def keras_inputs(dtype, case="random"):
    """``(y_true, y_pred)``: masks in {0, 1} with a fifth soft, probabilities in [0, 1);
    ``zeros``: everything 0 (intersection and sums 0: ``1 - 0/eps``); ``batch1``/``empty``."""
    rng = _seeded("keras", dtype, case)
    shape = {"batch1": (1, KH, KW, KC), "empty": (0, KH, KW, KC)}.get(case, (KB, KH, KW, KC))
    y = (rng.random(shape) < 0.4).astype(np.float64)
    y = np.where(rng.random(shape) < 0.2, rng.random(shape), y)
    p = rng.random(shape)
    if case == "zeros":
        y, p = np.zeros(shape), np.zeros(shape)
    return y.astype(dtype), p.astype(dtype)


def keras_weight(shape, dtype):
    if shape is None:
        return None
    w = _seeded("keras-weight", shape).uniform(0.0, 2.0, size=shape)
    if w.ndim:
        w.reshape(-1)[0] = 0.0
    return w.astype(dtype)


def keras_call(lib, cfg, form, axis, reduction="sum_over_batch_size", dtype=None):
    """The same spelling on keras.losses and polyloss.keras: ``f(y_true, y_pred[, w])``."""
    name, kw = cfg[0], dict(cfg[1])
    if form == "class":
        obj = getattr(lib, name)(**kw, reduction=reduction, axis=axis, dtype=dtype)
        return lambda y_true, y_pred, w=None: obj(y_true, y_pred, sample_weight=w)
    fn = getattr(lib, name.lower())
    return lambda y_true, y_pred: fn(y_true, y_pred, axis=axis, **kw)


def keras_native(cfg, form, axis, t, p, w=None, reduction="sum_over_batch_size", dtype=None, grad=False):
    """Keras's value (and with ``grad`` its ``d Σ(loss)/d y_pred`` by ``tf.GradientTape``), cached
    across backends."""
    key = (cfg, form, axis, reduction, dtype, grad, _key(t, p, w))
    if key not in _K_NATIVE:
        tf, keras, _ = _keras()
        f = keras_call(keras.losses, cfg, form, axis, reduction, dtype)
        x = tf.constant(p)
        args = [tf.constant(t), x] + ([] if w is None else [tf.constant(w)])
        if not grad:
            _K_NATIVE[key] = f(*args).numpy()
        else:
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = f(*args)
                total = tf.reduce_sum(out)
            _K_NATIVE[key] = (out.numpy(), tape.gradient(total, x).numpy())
    return _K_NATIVE[key]


def check_keras(kind, cfg, form, axis, t, p, w=None, reduction="sum_over_batch_size", dtype=None):
    _, _, pk = _keras()
    expected = keras_native(cfg, form, axis, t, p, w, reduction, dtype)
    cdtype = str(p.dtype) if form == "function" else (dtype or "float32")
    arrays = (t, p) if w is None else (t, p, w)
    got = run_on(kind, keras_call(pk, cfg, form, axis, reduction, dtype), *arrays)
    assert_close(got, expected, dtype=cdtype, n=p.size,
                 err_msg=f"{_kid(cfg)} {form} axis={axis} reduction={reduction!r} dtype={dtype} "
                         f"w={None if w is None else w.shape}")
    return expected


# (dtype argument, input dtype)
K_VARIANTS = [(None, "float32"), (None, "float64"), ("float64", "float64")]


@pytest.mark.native
@pytest.mark.parametrize("variant", K_VARIANTS, ids=lambda v: f"dtype={v[0]}-{v[1]}")
@pytest.mark.parametrize("cfg, axis", [pytest.param(c, a, id=f"{_kid(c)}-axis={a}") for c in K_CFGS
                                       for a in (K_AXES if c != TV_K2 else [(1, 2)])])
def test_keras_class_matches_keras(cfg, axis, variant):
    """Every reduction without a weight; with each weight shape Keras accepts for the axis the
    reductions that differ (``"mean"`` and ``None`` are aliases). ``dtype=None`` casts to float32
    (also float64 inputs), ``dtype='float64'`` computes in it."""
    _keras()
    dtype_arg, input_dtype = variant
    t, p = keras_inputs(input_dtype)
    for shape in K_WEIGHTS[axis]:
        w = keras_weight(shape, input_dtype)
        reductions = K_REDUCTIONS if w is None else ("sum_over_batch_size", "mean_with_sample_weight", "none")
        for reduction in reductions:
            expected = check_keras(KINDS["tensorflow"], cfg, "class", axis, t, p, w, reduction, dtype_arg)
            if axis is None and reduction in ("none", None):
                assert expected.shape == ()


@pytest.mark.native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", K_CFGS, ids=_kid)
def test_keras_function_matches_keras(cfg, dtype):
    """The functions keep ``y_pred``'s dtype, for any ``axis`` (None: one value for the batch),
    and cast an integer ``y_true``."""
    _keras()
    t, p = keras_inputs(dtype)
    for axis in K_AXES + [(1, 2, 3), 0, (0, 1, 2, 3), (-3, -2)]:
        check_keras(KINDS["tensorflow"], cfg, "function", axis, t, p)
    check_keras(KINDS["tensorflow"], cfg, "function", (1, 2), (t > 0.5).astype("int32"), p)


@pytest.mark.native
@pytest.mark.parametrize("cfg", [DICE_K, TV_K], ids=_kid)
def test_keras_edge_inputs_match_keras(cfg):
    """All zeros (``1 - 0/eps = 1``), a batch of one, and the empty batch: Keras returns a
    ``(0,)`` per-sample loss unreduced, reduces a ``(0, C)`` one to 0, and ``axis=None`` sums
    nothing to 0 (loss 1)."""
    _keras()
    tf_kind = KINDS["tensorflow"]
    for case in ("zeros", "batch1", "empty"):
        t, p = keras_inputs("float32", case)
        for axis in (None, (1, 2), (1, 2, 3)):
            for reduction in ("sum_over_batch_size", "sum", "none"):
                expected = check_keras(tf_kind, cfg, "class", axis, t, p, reduction=reduction)
                if case == "zeros" and reduction != "sum":
                    assert np.all(expected == 1.0)
            check_keras(tf_kind, cfg, "function", axis, t, p)


@pytest.mark.native
@pytest.mark.parametrize("kind, cfg, axes", [
    pytest.param(k.values[0], c, K_AXES if k.values[0].name != "jax" else [(1, 2)],
                 id=f"{k.values[0].name}-{_kid(c)}", marks=k.marks)
    for k in kind_params(exclude=("tensorflow",)) for c in K_CFGS
    if k.values[0].name != "jax" or c == DICE_K])  # JAX compiles each new structure
def test_keras_every_backend_matches_keras(kind, cfg, axes):
    """Class (float32 with a full weight, and dtype='float64') and function, each axis,
    returning the caller's array type."""
    _keras()
    t32, p32 = keras_inputs("float32")
    t64, p64 = keras_inputs("float64")
    for axis in axes:
        w = keras_weight(K_WEIGHTS[axis][-1], "float32")
        check_keras(kind, cfg, "class", axis, t32, p32, w, "mean_with_sample_weight")
        check_keras(kind, cfg, "class", axis, t64, p64, reduction="none", dtype="float64")
        check_keras(kind, cfg, "function", axis, t64, p64)


@pytest.mark.native
@pytest.mark.parametrize("backend, cfg, axes", [
    pytest.param(b, c, K_AXES if b.name != "jax" else [(1, 2)], id=f"{b.name}-{_kid(c)}")
    for b in AUTOGRAD for c in K_CFGS if b.name != "jax" or c == DICE_K])  # JAX compiles each structure
def test_keras_gradient_matches_gradienttape(backend, cfg, axes):
    """Value and ``d Σ(loss)/d y_pred`` for each axis: the class on float32 with a weight, the
    function on float64."""
    _, _, pk = _keras()
    for axis in axes:
        for form, dtype in (("class", "float32"), ("function", "float64")):
            t, p = keras_inputs(dtype)
            w = keras_weight(K_WEIGHTS[axis][-1], dtype) if form == "class" else None
            expected_v, expected_g = keras_native(cfg, form, axis, t, p, w, grad=True)
            arrays = [t, p] + ([] if w is None else [w])
            value, grad = backend.value_and_grad(keras_call(pk, cfg, form, axis), arrays, 1)
            rtol = rtol_for(dtype, p.size)
            msg = f"{_kid(cfg)} {form} axis={axis}"
            assert_close(value, expected_v, dtype=dtype, n=p.size, err_msg=msg)
            assert_close(grad, expected_g, dtype=dtype, n=p.size, err_msg=msg,
                         atol=rtol * float(np.max(np.abs(expected_g))))


@pytest.mark.native
@pytest.mark.parametrize("form", ["class", "function"])
def test_keras_deliberate_differences_raise(form):
    """Documented: shapes that differ (Keras broadcasts ``(B, H, W, 1)`` against ``(B, H, W, 2)``,
    and a batch of one against B, silently) and a per-sample weight that would enlarge the
    scalar ``axis=None`` loss raise ``ValueError``; Keras computes a value for each."""
    tf, keras, pk = _keras()
    t, p = keras_inputs("float32")
    for cfg in K_CFGS:
        for tt in (t[..., :1], t[:1]):
            keras_call(keras.losses, cfg, form, None)(tf.constant(tt), tf.constant(p))  # no error
            with pytest.raises(ValueError, match="shape"):
                keras_call(pk, cfg, form, None)(tt, p)
        if form == "class":
            w = keras_weight((KB,), "float32")
            out = keras_call(keras.losses, cfg, "class", None, "none")(tf.constant(t), tf.constant(p),
                                                                      tf.constant(w))
            assert out.shape == (KB,)
            with pytest.raises(ValueError, match="sample_weight"):
                keras_call(pk, cfg, "class", None, "none")(t, p, w)


@pytest.mark.native
@pytest.mark.parametrize("name", ["Dice", "Tversky"])
def test_keras_signatures_and_configs(name):
    """Class, constructor, ``__call__`` and function: same names, order, kinds and defaults;
    positional constructor arguments land where Keras puts them; same ``get_config``."""
    _, keras, pk = _keras()
    native_cls, mirror_cls = getattr(keras.losses, name), getattr(pk, name)
    assert _params(mirror_cls) == _params(native_cls)
    assert _params(mirror_cls.__init__) == _params(native_cls.__init__)
    assert _params(mirror_cls.__call__) == _params(native_cls.__call__)
    assert _params(getattr(pk, name.lower())) == _params(getattr(keras.losses, name.lower()))
    args = ("sum", "x", (1, 2)) if name == "Dice" else (0.3, 0.6, "sum", "x", (1, 2))
    for a in ((), args):
        n_obj, m_obj = native_cls(*a), mirror_cls(*a)
        assert m_obj.get_config() == n_obj.get_config()
        assert (m_obj.name, m_obj.reduction, m_obj.axis) == (n_obj.name, n_obj.reduction, n_obj.axis)
        if name == "Tversky":
            assert (m_obj.alpha, m_obj.beta) == (n_obj.alpha, n_obj.beta)


# =================================================================================================
# 3. polyloss.optax dice losses against optax.losses
# =================================================================================================

OB, OH, OW, OC = 3, 4, 5, 3
DICE, BINARY, GDL = "dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss"
_O_NATIVE: dict = {}


@dataclass(frozen=True)
class OCase:
    """``fn(predictions, targets[, class_weights=w], **params)`` on inputs of ``layout``."""

    fn: str
    layout: str
    params: tuple = ()
    weights: bool = False

    @property
    def kw(self) -> dict:
        return dict(self.params)

    def __str__(self) -> str:
        short = {DICE: "dice", BINARY: "binary", GDL: "gdl"}
        return "-".join([short[self.fn], self.layout] + [f"{k}={v}" for k, v in self.params]
                        + (["cw"] if self.weights else []))


def ocase(fn, layout, weights=False, **kw) -> OCase:
    return OCase(fn, layout, tuple(kw.items()), weights)


OCASES = [
    ocase(DICE, "multi"),
    ocase(DICE, "multi", alpha=0.3, beta=0.8, smooth=0.5),
    ocase(DICE, "soft", alpha=0.8, beta=0.2, smooth=0.0),
    ocase(DICE, "multi", True, reduction="none"),
    ocase(DICE, "multi", True, reduction="sum", ignore_background=True),
    ocase(DICE, "multi", axis=2),
    ocase(DICE, "multi", axis=(0, 1, 2)),
    ocase(DICE, "probs", apply_softmax=False, ignore_background=True, reduction="none", smooth=0.1),
    ocase(DICE, "single"),
    ocase(DICE, "single", ignore_background=True, reduction="none"),
    ocase(DICE, "nochannel", smooth=0.2),
    ocase(DICE, "pred_nochannel"),
    ocase(DICE, "target_nochannel", alpha=0.7, beta=0.3),
    ocase(BINARY, "nochannel"),
    ocase(BINARY, "single", smooth=0.1),
    ocase(GDL, "multi"),
    ocase(GDL, "soft", ignore_background=True, smooth=0.3),
    ocase(GDL, "probs", apply_softmax=False),
    ocase(GDL, "absent"),
]
O_BY_NAME = {str(c): c for c in OCASES}
# float32 for these (float64 for all): every new dtype and shape costs JAX a compilation
O_PROBS = "dice-probs-apply_softmax=False-ignore_background=True-reduction=none-smooth=0.1"
O_FLOAT32 = ("dice-multi", O_PROBS, "gdl-multi")
# gradients (float64) for these; on JAX itself only for the first two
O_GRAD = ("dice-multi-alpha=0.3-beta=0.8-smooth=0.5", "dice-single",
          "dice-soft-alpha=0.8-beta=0.2-smooth=0.0", "dice-multi-reduction=none-cw", O_PROBS, "gdl-multi")


def _o_dtypes(case: OCase) -> tuple:
    return DTYPES if str(case) in O_FLOAT32 else ("float64",)


def _optax():
    jax = require_module("jax")  # set up with jax_enable_x64 = True
    optax = require_module("optax")
    import polyloss.optax as po

    return jax, jax.numpy, optax, po


def optax_inputs(case: OCase, dtype: str) -> list:
    """``[predictions, targets(, class_weights)]``. Logits normal(0, 2); one-hot targets in
    which sample 0 has no pixel of class 2 (``absent``: no sample has one, so the generalized
    Dice weight of class 2 is 1/1e-7); ``soft`` targets in [0, 1]; ``probs`` softmax
    probabilities; single-channel layouts a binary mask with an empty sample 0, with a channel
    axis of 1 (``single``), without (``nochannel``) or on one side only; ``flat`` (B, C)."""
    rng = _seeded("optax", case.layout, dtype)
    shape = (OB, OH, OW, OC)
    z = rng.normal(0.0, 2.0, size=shape)
    labels = rng.integers(0, OC, size=shape[:-1])
    labels[0] = np.where(labels[0] == 2, 1, labels[0])
    if case.layout == "absent":
        labels = np.where(labels == 2, 0, labels)
    t = np.eye(OC)[labels]
    mask = (rng.random(shape[:-1]) < 0.4).astype(np.float64)
    mask[0] = 0.0
    p = z
    if case.layout == "soft":
        t = 0.7 * t + 0.3 * rng.random(shape)
    elif case.layout == "probs":
        p = _softmax(z, -1)
    elif case.layout == "flat":
        p, t = z[:, 0, 0], t[:, 0, 0]
    elif case.layout in ("single", "nochannel", "pred_nochannel", "target_nochannel"):
        p = z[..., :1] if case.layout in ("single", "target_nochannel") else z[..., 0]
        t = mask[..., None] if case.layout in ("single", "pred_nochannel") else mask
    arrays = [p.astype(dtype), t.astype(dtype)]
    if case.weights:
        arrays.append(np.array([0.5, 1.5, 2.25]).astype(dtype))
    return arrays


def optax_call(lib, case: OCase):
    fn = getattr(lib, case.fn)
    if case.weights:
        return lambda p, t, w: fn(p, t, class_weights=w, **case.kw)
    return lambda p, t: fn(p, t, **case.kw)


def optax_native(case: OCase, arrays, grad=False):
    """optax's value (and with ``grad`` ``jax.grad`` of its sum w.r.t. the predictions), cached."""
    key = (case, grad, _key(*arrays))
    if key not in _O_NATIVE:
        jax, jnp, optax, _ = _optax()
        f = optax_call(optax.losses, case)
        xs = [jnp.asarray(a) for a in arrays]
        if not grad:
            _O_NATIVE[key] = np.asarray(f(*xs))
        else:
            def total(x):
                out = f(x, *xs[1:])
                return jnp.sum(out), out

            (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[0])
            _O_NATIVE[key] = (np.asarray(out), np.asarray(g))
    return _O_NATIVE[key]


def check_optax(kind, case: OCase, arrays) -> np.ndarray:
    _, _, _, po = _optax()
    expected = optax_native(case, arrays)
    got = run_on(kind, optax_call(po, case), *arrays)
    assert_close(got, expected, dtype=str(arrays[0].dtype), n=arrays[0].size, err_msg=str(case))
    return expected


@pytest.mark.native
@pytest.mark.parametrize("case, dtype", [pytest.param(c, d, id=f"{c}-{d}") for c in OCASES
                                         for d in _o_dtypes(c)])
def test_optax_matches_optax(case, dtype):
    _optax()
    expected = check_optax(KINDS["jax"], case, optax_inputs(case, dtype))
    if case.fn == GDL or case.kw.get("axis") == (0, 1, 2):
        assert expected.shape == ()
    elif case.kw.get("axis") is None:
        classes = 1 if case.fn == BINARY or "channel" in case.layout or case.layout == "single" else \
            OC - case.kw.get("ignore_background", False)
        assert expected.shape == ((OB, classes) if case.kw.get("reduction") == "none" else (OB,))


@pytest.mark.native
@pytest.mark.parametrize("case", OCASES, ids=str)
@pytest.mark.parametrize("kind", kind_params(exclude=("jax",)))
def test_optax_every_backend_matches_optax(kind, case):
    _optax()
    for dtype in _o_dtypes(case):
        check_optax(kind, case, optax_inputs(case, dtype))


@pytest.mark.native
@pytest.mark.parametrize("backend, case", [
    pytest.param(b, O_BY_NAME[c], id=f"{b.name}-{c}") for b in AUTOGRAD for c in O_GRAD
    if b.name != "jax" or c in O_GRAD[:2]])
def test_optax_gradient_matches_jax_grad(backend, case):
    """Value and ``d Σ(loss)/d predictions`` (``jax.grad`` of optax) in float64."""
    _, _, _, po = _optax()
    arrays = optax_inputs(case, "float64")
    expected_v, expected_g = optax_native(case, arrays, grad=True)
    value, grad = backend.value_and_grad(optax_call(po, case), arrays, 0)
    n = arrays[0].size
    assert_close(value, expected_v, dtype="float64", n=n, err_msg=str(case))
    assert_close(grad, expected_g, dtype="float64", n=n, err_msg=str(case),
                 atol=rtol_for("float64", n) * float(np.max(np.abs(expected_g))))


@pytest.mark.native
@pytest.mark.parametrize("kind", kind_params(exclude=("dask",)))  # lazy values are not read
def test_optax_invalid_probabilities_raise(kind):
    """``apply_softmax=False`` (``apply_sigmoid=False``) with predictions whose class sums are
    not 1 within ``allclose(rtol=1e-5)``: ``ValueError``, like optax; inside the tolerance both
    compute. A single channel must itself be 1 (optax checks it the same way)."""
    _, jnp, optax, po = _optax()
    for dtype in DTYPES:
        p, t = optax_inputs(ocase(DICE, "probs"), dtype)
        for scale, raises in ((1.0 + 5e-6, False), (1.0 + 2e-5, True), (1.0 - 2e-5, True), (0.5, True)):
            q = p.astype(np.float64)
            q[1, 2, 3] *= scale
            q = q.astype(dtype)
            for fn in (DICE, GDL):
                calls = [lambda a, b, f=fn: getattr(optax.losses, f)(jnp.asarray(a), jnp.asarray(b),
                                                                      apply_softmax=False),
                         lambda a, b, f=fn: run_on(kind, lambda x, y: getattr(po, f)(
                             x, y, apply_softmax=False), a, b)]
                for call in calls:
                    if raises:
                        with pytest.raises(ValueError, match="sum to 1"):
                            call(q, t)
                    else:
                        call(q, t)
        mask = optax_inputs(ocase(BINARY, "nochannel"), dtype)[1]
        probs = np.full(mask.shape, 0.75, dtype=dtype)
        with pytest.raises(ValueError, match="sum to 1"):
            optax.losses.binary_dice_loss(jnp.asarray(probs), jnp.asarray(mask), apply_sigmoid=False)
        with pytest.raises(ValueError, match="sum to 1"):
            run_on(kind, lambda x, y: po.binary_dice_loss(x, y, apply_sigmoid=False), probs, mask)


@pytest.mark.native
@pytest.mark.parametrize("kind", kind_params(exclude=("dask",)))
def test_optax_nan_probabilities_raise(kind):
    """A NaN prediction with ``apply_softmax=False``: optax's ``allclose`` is False for NaN, so it
    raises ``ValueError``; so must the mirror."""
    _, jnp, optax, po = _optax()
    p, t = optax_inputs(ocase(DICE, "probs"), "float32")
    p[0, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="sum to 1"):
        optax.losses.dice_loss(jnp.asarray(p), jnp.asarray(t), apply_softmax=False)
    with pytest.raises(ValueError, match="sum to 1"):
        run_on(kind, lambda x, y: po.dice_loss(x, y, apply_softmax=False), p, t)


@pytest.mark.native
def test_optax_class_weights_promote_like_optax():
    """float32 predictions with float64 ``class_weights``: optax (JAX x64) multiplies the float32
    loss by float64 weights and returns float64; the mirror must return the same dtype."""
    _, _, _, po = _optax()
    case = O_BY_NAME["dice-multi-reduction=none-cw"]
    p, t, w = optax_inputs(case, "float32")
    w = w.astype("float64")
    expected = optax_native(case, [p, t, w])
    assert expected.dtype == np.float64
    got = run_on(KINDS["jax"], optax_call(po, case), p, t, w)
    assert_close(got, expected, dtype="float32", n=p.size, check_dtype=False)
    assert got.dtype == expected.dtype


@pytest.mark.native
@pytest.mark.parametrize("kind", kind_params())
def test_optax_without_spatial_axes(kind):
    """``(B, C)`` predictions: the default axes ``range(1, ndim - 1)`` are empty, so each
    (sample, class) is its own score (optax sums over ``axis=()``, i.e. not at all)."""
    _optax()
    for case in (ocase(DICE, "flat", reduction="none"), ocase(DICE, "flat", alpha=0.2, beta=0.9)):
        check_optax(kind, case, optax_inputs(case, "float64"))


@pytest.mark.native
def test_optax_bad_shapes_raise():
    """Shapes that differ by more than a trailing channel axis, a class-weight matrix and an
    unknown reduction: ``ValueError`` from both."""
    _, jnp, optax, po = _optax()
    p, t = [jnp.asarray(a) for a in optax_inputs(ocase(DICE, "multi"), "float32")]
    bad = [(DICE, p, t[..., :2], {}), (DICE, p, t[:1], {}), (GDL, p[..., 0], t, {}),
           (GDL, p, t[..., :2], {}), (DICE, p, t, {"class_weights": jnp.ones((1, OC), "float32")}),
           (DICE, p, t, {"reduction": "average"})]
    for fn, a, b, kw in bad:
        for lib in (optax.losses, po):
            with pytest.raises(ValueError):
                getattr(lib, fn)(a, b, **kw)


@pytest.mark.native
@pytest.mark.parametrize("name", [DICE, BINARY, GDL])
def test_optax_signatures(name):
    _, _, optax, po = _optax()
    assert _params(getattr(po, name)) == _params(getattr(optax.losses, name))
