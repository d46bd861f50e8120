"""``polyloss.keras``'s classification losses against the real ``keras.losses`` 3.15
(TensorFlow backend): binary/categorical (focal) crossentropy, sparse categorical
crossentropy, KL divergence and Poisson.

Expected values and gradients always come from Keras itself, run in the test on TensorFlow
tensors built from the same NumPy bits (eager, so no ``_keras_logits`` provenance is involved:
a NumPy probability is a probability). Covered, for every loss in class and function form:
``from_logits``, ``label_smoothing``, ``axis`` (channels-first ``(B, C, T)``), focal ``alpha``,
``gamma`` and ``apply_class_balancing``, ``ignore_class`` (including every label ignored),
every reduction, ``sample_weight``, ``dtype=None`` (float32, even for float64 inputs) and
``dtype='float64'``, float32 and float64 inputs; the edge inputs (probabilities exactly 0, 1
and the clip bounds, logits of +-100 and +-1e4, all-equal logits, a batch of one, the empty
batch); gradients w.r.t. ``y_pred`` (``tf.GradientTape``) on every autograd backend; the same
mirror on every installed array type; bad labels and shapes; signatures and configs.

Tolerances (``_native.assert_close``): float64 ``rtol = 1e-12``, float32 a few ulps times
``log2(n)``. Where Keras's formula cancels (``1 - p_t`` in the focal factor, ``log`` of a
renormalised probability near 1, a log-sum-exp minus a logit, KL's and Poisson's mixed-sign
terms) two libraries' 1-ulp differences in ``exp``/``log``/``sigmoid``/``sum`` become large
*relative* errors of a small result; those comparisons also accept ``ATOL_ULPS`` ulps of the
magnitude of the cancelling terms (``magnitude`` below), scaled by what the reduction does.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from _native import (
    EPS,
    KINDS,
    KnownBugs,
    assert_close,
    kind_params,
    require_module,
    run_on,
)

tf = require_module("tensorflow")
keras = require_module("keras", reason="keras (TensorFlow backend) is not installed")
if keras.backend.backend() != "tensorflow":
    pytest.skip("these tests need Keras on its TensorFlow backend", allow_module_level=True)
pk = pytest.importorskip("polyloss.keras")

pytestmark = pytest.mark.native

B, C, T = 6, 5, 4  # batch, classes, and the extra axis of 3-D inputs
ATOL_ULPS = 8


# ---- the losses and their configurations ----------------------------------------------------

@dataclass(frozen=True)
class Spec:
    cls: str
    fn: str
    family: str  # binary | categorical | sparse | kld | poisson


SPECS = {
    "bce": Spec("BinaryCrossentropy", "binary_crossentropy", "binary"),
    "bfce": Spec("BinaryFocalCrossentropy", "binary_focal_crossentropy", "binary"),
    "cce": Spec("CategoricalCrossentropy", "categorical_crossentropy", "categorical"),
    "cfce": Spec("CategoricalFocalCrossentropy", "categorical_focal_crossentropy", "categorical"),
    "scce": Spec("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", "sparse"),
    "kld": Spec("KLDivergence", "kl_divergence", "kld"),
    "poisson": Spec("Poisson", "poisson", "poisson"),
}


@dataclass(frozen=True)
class Cfg:
    """One loss with its keyword arguments (the same for the class and the function)."""

    loss: str
    params: tuple = ()

    @property
    def kw(self) -> dict:
        return dict(self.params)

    @property
    def spec(self) -> Spec:
        return SPECS[self.loss]

    @property
    def from_logits(self) -> bool:
        return bool(self.kw.get("from_logits", False))

    @property
    def axis(self) -> int:
        return self.kw.get("axis", -1)

    @property
    def ignore_class(self):
        return self.kw.get("ignore_class")

    def __str__(self) -> str:
        short = {"from_logits": "logits", "label_smoothing": "ls", "apply_class_balancing": "acb",
                 "ignore_class": "ign"}
        return "-".join([self.loss] + [f"{short.get(k, k)}={v}" for k, v in self.params])


def cfg(loss: str, **kw) -> Cfg:
    return Cfg(loss, tuple(kw.items()))


CONFIGS = [
    *[cfg("bce", from_logits=fl, label_smoothing=ls) for fl in (False, True) for ls in (0.0, 0.1)],
    cfg("bce", axis=1), cfg("bce", from_logits=True, label_smoothing=0.2, axis=1),
    cfg("bfce"), cfg("bfce", from_logits=True),
    cfg("bfce", apply_class_balancing=True, alpha=0.6, gamma=1.5, label_smoothing=0.1),
    cfg("bfce", apply_class_balancing=True, alpha=0.25, gamma=3.0, from_logits=True),
    cfg("bfce", gamma=0.0, from_logits=True, label_smoothing=0.2),
    cfg("bfce", apply_class_balancing=True, from_logits=True, axis=1),
    *[cfg("cce", from_logits=fl, label_smoothing=ls) for fl in (False, True) for ls in (0.0, 0.1)],
    # Keras smooths with eps / shape[-1] whatever the axis, so with axis=1 the smoothed
    # targets do not sum to 1 (see test_cce_logits_gradient_with_unnormalised_targets)
    cfg("cce", axis=1), cfg("cce", from_logits=True, label_smoothing=0.3, axis=1),
    cfg("cfce"), cfg("cfce", from_logits=True),
    cfg("cfce", alpha=0.5, gamma=0.0, label_smoothing=0.1),
    cfg("cfce", alpha=1.0, gamma=3.5, from_logits=True, label_smoothing=0.2),
    cfg("cfce", from_logits=True, axis=1),
    *[cfg("scce", from_logits=fl, ignore_class=ig) for fl in (False, True) for ig in (None, 2, -1)],
    cfg("kld"), cfg("poisson"),
]
BY_NAME = {str(c): c for c in CONFIGS}

# configurations for the edge inputs (values and gradients): no gamma=0 (TensorFlow's d(x**0)/dx at
# x = 0 is 0 * inf = NaN, a property of tf.pow, not of the loss; torch's is 0)
EDGE_CONFIGS = [c for c in CONFIGS if c.kw.get("gamma", 2.0) != 0.0]


def per_sample_shape(c: Cfg, pred_shape: tuple[int, ...]) -> tuple[int, ...]:
    axis = c.axis % len(pred_shape)
    return tuple(d for i, d in enumerate(pred_shape) if i != axis)


# ---- inputs --------------------------------------------------------------------------------------

CASES = ("random", "3d", "extreme", "saturate", "equal", "batch1", "empty")


def _dirichlet(rng, lead: tuple[int, ...], zeros: bool = False) -> np.ndarray:
    x = rng.gamma(1.0, 1.0, size=lead + (C,))
    if zeros:
        x = np.where(rng.random(x.shape) < 0.3, 0.0, x)
        x[..., 0] += 1e-3  # keep every row's sum > 0
    return x / x.sum(-1, keepdims=True)


def make_inputs(c: Cfg, case: str, dtype: str, rng: np.random.Generator,
                label_shape: str = "flat") -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` for one input case; ``y_pred`` (and float ``y_true``) in ``dtype``,
    SCCE labels int64.

    - ``random``: ``(B, C)`` (``(B, C, T)`` for ``axis=1``); binary labels are 0/1 with a
      quarter soft, categorical targets one-hot with a third soft rows, probabilities are not
      normalised (Keras renormalises CCE and, through its log-softmax, SCCE).
    - ``3d``: ``(B, T, C)`` (``axis=-1``) or ``(B, C, T)`` (``axis=1``).
    - ``extreme``: logits of +-100, or probabilities exactly 0 and 1 (one-hot predictions,
      right and wrong), KL's y_true and y_pred also above 1 (clipped to 1), Poisson's y_pred
      and y_true 0.
    - ``saturate``: logits of +-1e4, or probabilities on and beyond the clip bounds
      (1e-9, 1e-7, 1 - 1e-7, 1 - 1e-9).
    - ``equal``: all-equal logits (or probabilities) along the class axis.
    - ``batch1`` / ``empty``: a batch of one / of zero.

    SCCE ``label_shape``: ``flat`` (``(B,)`` or ``(B, T)``) or ``col`` (a trailing 1, which Keras
    squeezes). With ``ignore_class`` about a third of the labels are the ignored class;
    ``case='ignored'`` ignores every label.
    """
    fam = c.spec.family
    n = {"batch1": 1, "empty": 0}.get(case, B)
    channels_first = fam in ("binary", "categorical") and c.axis == 1
    if channels_first:
        lead = (n, T)  # classes moved to axis 1 below
    else:
        lead = (n, T) if case == "3d" else (n,)
    shape = lead + (C,)

    # ---- y_true (channels last) ----
    if fam == "binary":
        t = (rng.random(shape) < 0.5).astype(np.float64)
        t = np.where(rng.random(shape) < 0.25, rng.random(shape), t)
    elif fam == "categorical":
        t = np.eye(C)[rng.integers(0, C, size=lead)]
        t = np.where(rng.random(lead + (1,)) < 0.33, _dirichlet(rng, lead), t)
    elif fam == "sparse":
        t = rng.integers(0, C, size=lead).astype(np.int64)
        ig = c.ignore_class
        if ig is not None:
            t = np.where((rng.random(lead) < 0.33) | (case == "ignored"), ig, t)
    elif fam == "kld":
        t = _dirichlet(rng, lead, zeros=True)
    else:  # poisson
        t = rng.poisson(2.0, size=shape).astype(np.float64)

    # ---- y_pred (channels last) ----
    if c.from_logits:
        p = rng.normal(0.0, 3.0, size=shape)
        if case in ("extreme", "saturate"):
            big = 100.0 if case == "extreme" else 1e4
            p = np.where(rng.random(shape) < 0.6, np.sign(p) * big, p)
        elif case == "equal":
            p = np.broadcast_to(rng.normal(0.0, 3.0, size=lead + (1,)), shape).copy()
            p[0] = 0.0
    elif fam == "poisson":
        p = rng.gamma(2.0, 1.0, size=shape)
        if case == "extreme":
            p = np.where(rng.random(shape) < 0.4, 0.0, p)
            t = np.where(rng.random(shape) < 0.3, 0.0, t)
        elif case == "saturate":
            p = np.where(rng.random(shape) < 0.6, rng.choice([1e-9, 1e-7, 1e-6], size=shape), p)
        elif case == "equal":
            p = np.ones(shape)
    else:
        lo, hi = (0.01, 0.99) if fam == "binary" else (0.05, 1.0)
        p = rng.uniform(lo, hi, size=shape)
        if fam == "kld":
            p = _dirichlet(rng, lead)
        if case == "extreme":
            if fam in ("binary", "kld"):
                choices = [0.0, 1.0, 1.5] if fam == "kld" else [0.0, 1.0]
                p = np.where(rng.random(shape) < 0.6, rng.choice(choices, size=shape), p)
                if fam == "kld":  # above 1 in every other sample, for certain
                    t = np.where(rng.random(shape) < 0.3, rng.choice([0.0, 1.0, 1.5], size=shape), t)
                    t.reshape(-1, C)[::2, -1] = 1.5
                    p.reshape(-1, C)[1::2, 0] = 1.5
            else:  # one-hot predictions for half of the samples, zeros sprinkled elsewhere
                onehot = np.eye(C)[rng.integers(0, C, size=lead)]
                p = np.where(rng.random(lead + (1,)) < 0.5, onehot, p)
                p = np.where(rng.random(shape) < 0.2, 0.0, p)
                p[..., 0] = np.where(p.sum(-1) == 0, 1.0, p[..., 0])
        elif case == "saturate":
            edge = rng.choice([1e-9, 1e-7, 1.0 - 1e-7, 1.0 - 1e-9], size=shape)
            p = np.where(rng.random(shape) < 0.6, edge, p)
        elif case == "equal":
            p = np.full(shape, 0.5 if fam == "binary" else 1.0 / C)

    if channels_first:
        t, p = np.moveaxis(t, -1, 1), np.moveaxis(p, -1, 1)
    if fam == "sparse" and label_shape == "col":
        t = t[..., None]
    t = t if fam == "sparse" else t.astype(dtype)
    return t, p.astype(dtype)


# ---- tolerances ------------------------------------------------------------------------------

def magnitude(c: Cfg, t: np.ndarray, p: np.ndarray) -> float:
    """The largest per-sample magnitude of the terms Keras's formula cancels (0: none).

    A per-sample loss is compared with ``ATOL_ULPS`` ulps of this number besides the relative
    tolerance: two libraries' correctly rounded but different ``exp``/``log``/``sigmoid`` and
    summation orders differ by an ulp of these terms, not of the (possibly tiny) result.
    """
    if p.size == 0:
        return 0.0
    kw = c.kw
    t = t.astype(np.float64)
    p = p.astype(np.float64)
    ax = c.axis
    fam = c.spec.family
    if fam == "binary":
        if not c.from_logits:
            return 0.0  # elementwise logs of the input itself, p_t by exact arithmetic
        # max(z, 0) - z·y cancels (an ulp of |z|); 1 - p_t is an ulp of 1 off between two
        # sigmoids, and its gamma power (gamma >= 1 here) multiplies the exact BCE <= |z| + log 2
        term = np.abs(p) + math.log(2.0)
        gamma = kw.get("gamma", 2.0)
        if c.loss == "bfce" and gamma > 0:
            alpha = kw.get("alpha", 0.25) if kw.get("apply_class_balancing") else 1.0
            term = term * (1.0 + gamma * max(abs(alpha), abs(1 - alpha)))
        return float(np.max(np.mean(term, axis=ax)))
    if fam == "categorical":
        ts = np.abs(t)
        if c.loss == "cce":
            # log of a renormalised probability near 1 (an ulp of 1), or lse(z) - z_y
            zmax = np.max(np.abs(p), axis=ax, keepdims=True) if c.from_logits else 0.0
            return float(np.max(np.sum(ts * (1.0 + zmax), axis=ax)))
        # the output o (renormalised or softmax, clipped) is an ulp of 1 off: log(o) by an ulp
        # of 1, (1 - o)^gamma by gamma ulps of 1, times -log(o)
        if c.from_logits:
            o = np.exp(p - np.max(p, axis=ax, keepdims=True))
        else:
            o = p
        o = np.clip(o / np.sum(o, axis=ax, keepdims=True), 1e-7, 1 - 1e-7)
        gamma = kw.get("gamma", 2.0)
        alpha = np.max(np.abs(kw.get("alpha", 0.25)))
        return float(np.max(np.sum(alpha * ts * (1.0 + gamma * np.abs(np.log(o))), axis=ax)))
    if fam == "sparse":
        # log-sum-exp of the logits (or of log(clip(p))) minus one of them
        z = p if c.from_logits else np.log(np.clip(p, 1e-7, 1 - 1e-7))
        return float(np.max(np.abs(z)) + 1.0)
    if fam == "kld":
        tc, pc = np.clip(t, 1e-7, 1.0), np.clip(p, 1e-7, 1.0)
        return float(np.max(np.sum(tc * (np.abs(np.log(tc)) + np.abs(np.log(pc))), axis=-1)))
    return float(np.max(np.mean(np.abs(p) + np.abs(t) * np.abs(np.log(p + 1e-7)), axis=-1)))


def _weight_on(w: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    while w.ndim > len(shape) and w.shape[-1] == 1:
        w = w[..., 0]
    return np.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


def reduction_scale(reduction, w, shape: tuple[int, ...], n_valid: int | None = None) -> float:
    """How much a reduction multiplies a per-sample absolute error: ``max|w|`` unreduced,
    ``Σ|w|`` summed, ``Σ|w| / n`` averaged (``n``: the valid entries), ``Σ|w| / |Σw|``."""
    aw = np.ones(shape) if w is None else np.abs(_weight_on(w, shape))
    if reduction in (None, "none"):
        return max(float(aw.max(initial=0.0)), 1.0)
    total = float(aw.sum())
    if reduction == "sum":
        return max(total, 1.0)
    if reduction == "mean_with_sample_weight" and w is not None:
        return max(total / max(abs(float(np.sum(w))), 1e-30), 1.0)
    n = int(np.prod(shape)) if n_valid is None else n_valid
    return max(total / max(n, 1), 1.0)


def atol_for(c: Cfg, cdtype: str, t, p, reduction="none", w=None) -> float:
    mag = magnitude(c, t, p)
    if mag == 0.0:
        return 0.0
    pshape = per_sample_shape(c, p.shape)
    n_valid = None
    if c.ignore_class is not None:
        n_valid = int(np.sum(np.asarray(t) != c.ignore_class))
    return ATOL_ULPS * EPS[cdtype] * mag * reduction_scale(reduction, w, pshape, n_valid)


def grad_atol(cdtype: str, expected_g: np.ndarray) -> float:
    """Gradients are sums of chain-rule products no larger than a few times the largest
    component; an ulp of those (TensorFlow's fused softmax-crossentropy gradient is
    ``softmax - labels``, which cancels) is allowed besides the relative tolerance."""
    if expected_g.size == 0:
        return 0.0
    return 4 * ATOL_ULPS * EPS[cdtype] * float(np.nanmax(np.abs(expected_g), initial=0.0))


# ---- calling Keras and the mirror -------------------------------------------------------------

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def make_call(lib, c: Cfg, form: str, reduction="sum_over_batch_size", dtype=None):
    """The same spelling on keras.losses and polyloss.keras: ``f(y_true, y_pred[, w])``."""
    if form == "class":
        obj = getattr(lib, c.spec.cls)(**c.kw, reduction=reduction, dtype=dtype)
        return lambda y_true, y_pred, w=None: obj(y_true, y_pred, sample_weight=w)
    fn = getattr(lib, c.spec.fn)
    return lambda y_true, y_pred: fn(y_true, y_pred, **c.kw)


_NATIVE_CACHE: dict = {}


def _key(*arrays) -> tuple:
    return tuple(None if a is None else (a.dtype.str, a.shape, a.tobytes()) for a in arrays)


def native(c: Cfg, form: str, t, p, w=None, reduction="sum_over_batch_size", dtype=None):
    """Keras's result on TensorFlow tensors of the same bits (cached across backends)."""
    key = ("value", c, form, reduction, dtype, _key(t, p, w))
    if key not in _NATIVE_CACHE:
        f = make_call(keras.losses, c, form, reduction, dtype)
        args = [tf.constant(a) for a in (t, p)] + ([] if w is None else [tf.constant(w)])
        _NATIVE_CACHE[key] = f(*args).numpy()
    return _NATIVE_CACHE[key]


def native_grad(c: Cfg, form: str, t, p, w=None, reduction="sum_over_batch_size", dtype=None):
    """Keras's value and ``d sum(loss) / d y_pred`` (``tf.GradientTape``)."""
    key = ("grad", c, form, reduction, dtype, _key(t, p, w))
    if key not in _NATIVE_CACHE:
        f = make_call(keras.losses, c, form, reduction, dtype)
        x = tf.constant(p)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = f(tf.constant(t), x, *([] if w is None else [tf.constant(w)]))
            total = tf.reduce_sum(out)
        _NATIVE_CACHE[key] = (out.numpy(), tape.gradient(total, x).numpy())
    return _NATIVE_CACHE[key]


def mirror(c: Cfg, form: str, reduction="sum_over_batch_size", dtype=None):
    return make_call(pk, c, form, reduction, dtype)


def compute_dtype(form: str, dtype_arg, input_dtype: str) -> str:
    if form == "function":
        return input_dtype
    return dtype_arg or "float32"  # Keras casts to floatx() = float32 when dtype is None


def _sw(shape, dtype, rng):
    if shape is None:
        return None
    w = rng.uniform(0.0, 3.0, size=shape)
    w[rng.random(shape) < 0.2] = 0.0
    return w.astype(dtype)


def weight_shapes(c: Cfg, pred_shape: tuple[int, ...]) -> list:
    """``None``, then ``sample_weight`` shapes Keras accepts for this per-sample loss shape:
    ``(B,)`` and ``(B, 1)`` for a ``(B,)`` loss; ``(B, 1)`` and the full ``(B, T)`` for ``(B, T)``
    (a ``(B,)`` weight would broadcast against ``T`` in Keras)."""
    ps = per_sample_shape(c, pred_shape)
    if len(ps) == 1:
        return [None, ps, (ps[0], 1)]
    return [None, (ps[0], 1), ps]


def check_against_keras(kind, c: Cfg, form: str, t, p, *, dtype_arg=None, w=None,
                        reductions=("sum_over_batch_size",), bugs=None) -> np.ndarray:
    """The mirror on ``kind`` equals Keras for each reduction; returns the last native value."""
    input_dtype = str(p.dtype)
    cdtype = compute_dtype(form, dtype_arg, input_dtype)
    expected = None
    for reduction in reductions if form == "class" else (None,):
        if form == "class":
            expected = native(c, form, t, p, w, reduction=reduction, dtype=dtype_arg)
            f = mirror(c, form, reduction, dtype_arg)
            arrays = (t, p) if w is None else (t, p, w)
        else:
            expected = native(c, form, t, p)
            f, arrays = mirror(c, form), (t, p)
        got = run_on(kind, f, *arrays, bugs=bugs)
        msg = f"{c} {form} reduction={reduction!r} dtype={dtype_arg} w={None if w is None else w.shape}"
        kw = dict(dtype=cdtype, n=p.size, atol=atol_for(c, cdtype, t, p, reduction, w), err_msg=msg)
        if bugs is None:
            assert_close(got, expected, **kw)
        else:
            bugs.assert_close(kind, got, expected, **kw)
    return expected


# ---- 1. values against Keras, on TensorFlow tensors ----------------------------------------------

# (dtype argument, input dtype, case): every configuration with dtype=None on float32 and on
# float64 inputs, and with dtype='float64'; on 2-D and 3-D inputs (for axis=1 configurations
# both are channels-first (B, C, T))
VALUE_VARIANTS = [(None, "float32", "random"), (None, "float64", "3d"), ("float64", "float64", "random")]
# which reductions each sample_weight shape is run with (all six without and with a per-sample
# weight; the broadcast weight with the two that read it)
WEIGHTED_REDUCTIONS = [REDUCTIONS, REDUCTIONS, ("sum", "mean_with_sample_weight")]


def _dv_id(v):
    return "-".join(f"dtype={x}" if i == 0 else str(x) for i, x in enumerate(v))


@pytest.mark.parametrize("variant", VALUE_VARIANTS, ids=_dv_id)
@pytest.mark.parametrize("c", CONFIGS, ids=str)
def test_class_reductions_and_weights_match_keras(c, variant, rng):
    """Every reduction, with no weight, a per-sample weight and a broadcast weight."""
    dtype_arg, input_dtype, case = variant
    t, p = make_inputs(c, case, input_dtype, rng)
    for shape, reductions in zip(weight_shapes(c, p.shape), WEIGHTED_REDUCTIONS, strict=True):
        w = _sw(shape, input_dtype, rng)
        check_against_keras(KINDS["tensorflow"], c, "class", t, p, dtype_arg=dtype_arg, w=w,
                            reductions=reductions)


@pytest.mark.parametrize("variant", [(None, "float32"), ("float64", "float64")], ids=_dv_id)
@pytest.mark.parametrize("c", EDGE_CONFIGS, ids=str)
def test_class_edge_inputs_match_keras(c, variant, rng):
    """Probabilities 0/1 and on the clip bounds, huge and all-equal logits, a batch of one
    (unreduced, and a weighted mean), and the empty batch (every reduction): Keras returns the
    unreduced empty ``(0,)`` per-sample loss whatever the reduction (``reduce_values``
    short-circuits on ``values.shape == (0,)``), but reduces a ``(0, T)`` one (to 0:
    ``divide_no_nan``)."""
    dtype_arg, input_dtype = variant
    for case in ("extreme", "saturate", "equal", "batch1"):
        t, p = make_inputs(c, case, input_dtype, rng)
        w = _sw(weight_shapes(c, p.shape)[1], input_dtype, rng)
        check_against_keras(KINDS["tensorflow"], c, "class", t, p, dtype_arg=dtype_arg,
                            reductions=("none",))
        expected = check_against_keras(KINDS["tensorflow"], c, "class", t, p, dtype_arg=dtype_arg,
                                       w=w, reductions=("mean_with_sample_weight",))
        assert np.all(np.isfinite(expected)), case
    t, p = make_inputs(c, "empty", input_dtype, rng)
    w = _sw(weight_shapes(c, p.shape)[1], input_dtype, rng)
    for weight in (None, w):
        expected = check_against_keras(KINDS["tensorflow"], c, "class", t, p, dtype_arg=dtype_arg,
                                       w=weight, reductions=REDUCTIONS)
    ps = per_sample_shape(c, p.shape)
    assert expected.shape == ps and ps[0] == 0


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("c", EDGE_CONFIGS, ids=str)
def test_function_matches_keras(c, input_dtype, case, rng):
    """The functions keep ``y_pred``'s dtype and return the per-sample loss (the class axis
    reduced), also for the edge inputs."""
    t, p = make_inputs(c, case, input_dtype, rng)
    expected = check_against_keras(KINDS["tensorflow"], c, "function", t, p)
    assert expected.shape == per_sample_shape(c, p.shape)


@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("c", [c for c in CONFIGS if c.loss != "scce"], ids=str)
def test_mixed_input_dtypes_like_keras(c, form, rng):
    """float32 ``y_true`` with float64 ``y_pred`` and the reverse: Keras's functions cast
    ``y_true`` to ``y_pred``'s dtype, the classes cast both to their ``dtype``."""
    t, p = make_inputs(c, "random", "float64", rng)
    for tt, pp in ((t.astype("float32"), p), (t, p.astype("float32"))):
        check_against_keras(KINDS["tensorflow"], c, form, tt, pp)


# ---- 2. sparse categorical crossentropy specifics ------------------------------------------------

SCCE = [c for c in CONFIGS if c.loss == "scce"]
IGNORING = [c for c in SCCE if c.ignore_class is not None]


@pytest.mark.parametrize("label_shape", ["flat", "col"])
@pytest.mark.parametrize("case", ["random", "3d", "batch1"])
@pytest.mark.parametrize("c", [BY_NAME[n] for n in ("scce-logits=False-ign=None", "scce-logits=True-ign=2",
                                                    "scce-logits=False-ign=-1")], ids=str)
def test_scce_label_shapes_match_keras(c, case, label_shape, rng):
    """Labels ``(B,)``/``(B, T)`` and with a trailing 1 (``(B, 1)``, ``(B, T, 1)``: Keras squeezes
    it), against ``(B, C)``/``(B, T, C)`` predictions, class (all reductions, weighted) and
    function."""
    t, p = make_inputs(c, case, "float32", rng, label_shape=label_shape)
    for shape in weight_shapes(c, p.shape)[:2]:
        w = _sw(shape, "float32", rng)
        check_against_keras(KINDS["tensorflow"], c, "class", t, p, w=w, reductions=REDUCTIONS)
    check_against_keras(KINDS["tensorflow"], c, "function", t, p)


@pytest.mark.parametrize("labels_dtype", ["int32", "float32", "float64"])
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("c", [BY_NAME["scce-logits=True-ign=None"], BY_NAME["scce-logits=False-ign=-1"]],
                         ids=str)
def test_scce_label_dtypes_match_keras(c, form, labels_dtype, rng):
    """Integer or whole-number floating labels (the class casts them to its dtype first)."""
    t, p = make_inputs(c, "random", "float64", rng)
    check_against_keras(KINDS["tensorflow"], c, form, t.astype(labels_dtype), p,
                        reductions=REDUCTIONS)


@pytest.mark.parametrize("case", ["random", "3d", "empty"])
@pytest.mark.parametrize("c", IGNORING, ids=str)
def test_scce_all_labels_ignored_like_keras(c, case, rng):
    """Every label is ``ignore_class``: Keras's mask divides by zero valid entries
    (``divide_no_nan``), giving 0 for the means and the sum, and zeros unreduced."""
    t, p = make_inputs(c, case, "float32", rng)
    t = np.full_like(t, c.ignore_class)
    for shape in weight_shapes(c, p.shape)[:2]:
        w = _sw(shape, "float32", rng)
        expected = check_against_keras(KINDS["tensorflow"], c, "class", t, p, w=w,
                                       reductions=REDUCTIONS)
        assert not np.any(expected)
    check_against_keras(KINDS["tensorflow"], c, "function", t, p)


# ---- 3. the same mirror on every other array type --------------------------------------------------

KIND_CONFIGS = [BY_NAME[n] for n in (
    "bce-logits=False-ls=0.1", "bce-logits=True-ls=0.2-axis=1",
    "bfce-acb=True-alpha=0.6-gamma=1.5-ls=0.1", "bfce-logits=True",
    "cce-logits=False-ls=0.0", "cce-logits=True-ls=0.1",
    "cfce", "cfce-alpha=1.0-gamma=3.5-logits=True-ls=0.2",
    "scce-logits=False-ign=None", "scce-logits=True-ign=2", "scce-logits=False-ign=-1",
    "kld", "poisson",
)]
# (case, class dtype variants, function input dtypes); 3-D per-sample losses come from the
# channels-first (axis=1) BCE configuration
KIND_PLAN = [("random", [(None, "float32"), ("float64", "float64")], ["float64"]),
             ("extreme", [(None, "float64")], ["float32"]),
             ("empty", [(None, "float32")], ["float64"])]


@pytest.mark.parametrize("c", KIND_CONFIGS, ids=str)
@pytest.mark.parametrize("kind", kind_params(exclude=("tensorflow",)))
def test_every_backend_matches_keras(kind, c, rng):
    """Class (dtype None on float32 and float64 inputs, dtype='float64'; a full weight and
    three reductions) and function (float32, float64), on random, edge and empty inputs,
    each returning the caller's array type."""
    bugs = KnownBugs()
    for case, class_variants, fn_dtypes in KIND_PLAN:
        for dtype_arg, input_dtype in class_variants:
            t, p = make_inputs(c, case, input_dtype, rng)
            w = _sw(weight_shapes(c, p.shape)[-1], input_dtype, rng)
            check_against_keras(kind, c, "class", t, p, dtype_arg=dtype_arg, w=w, bugs=bugs,
                                reductions=("sum_over_batch_size", "mean_with_sample_weight", "none"))
        for input_dtype in fn_dtypes:
            t, p = make_inputs(c, case, input_dtype, rng)
            check_against_keras(kind, c, "function", t, p, bugs=bugs)
    bugs.check()


# ---- 4. gradients w.r.t. y_pred ------------------------------------------------------------------------

def check_grad(backend, c: Cfg, form, dtype_arg, t, p, w=None, reduction="sum_over_batch_size"):
    """The mirror's value and gradient on ``backend`` equal Keras's (``tf.GradientTape``);
    returns Keras's gradient."""
    cdtype = compute_dtype(form, dtype_arg, str(p.dtype))
    expected_v, expected_g = native_grad(c, form, t, p, w, reduction, dtype_arg)
    f = make_call(pk, c, form, reduction, dtype_arg)
    arrays = [t, p] if w is None else [t, p, w]
    value, grad = backend.value_and_grad(f, arrays, 1)
    msg = f"{c} {form} dtype={dtype_arg} reduction={reduction!r}"
    assert_close(value, expected_v, dtype=cdtype, n=p.size,
                 atol=atol_for(c, cdtype, t, p, reduction if form == "class" else "none", w),
                 err_msg=msg)
    # the gradient comes back in the input's dtype; its error is that of the compute dtype
    assert_close(grad, expected_g, dtype=cdtype, n=p.size, atol=grad_atol(cdtype, expected_g),
                 err_msg=msg)
    return expected_g


# a configuration of every parameter value, for the gradients (JAX compiles every new
# combination of shapes and operations: the full CONFIGS grid is covered by values only)
GRAD_CONFIGS = [BY_NAME[n] for n in (
    "bce-logits=False-ls=0.1", "bce-logits=True-ls=0.0", "bce-logits=True-ls=0.2-axis=1",
    "bfce", "bfce-logits=True", "bfce-acb=True-alpha=0.6-gamma=1.5-ls=0.1",
    "bfce-acb=True-alpha=0.25-gamma=3.0-logits=True", "bfce-gamma=0.0-logits=True-ls=0.2",
    "cce-logits=False-ls=0.1", "cce-logits=True-ls=0.0", "cce-axis=1",
    "cce-logits=True-ls=0.3-axis=1",
    "cfce", "cfce-alpha=0.5-gamma=0.0-ls=0.1", "cfce-alpha=1.0-gamma=3.5-logits=True-ls=0.2",
    "cfce-logits=True-axis=1",
    "scce-logits=False-ign=None", "scce-logits=True-ign=2", "scce-logits=False-ign=-1",
    "kld", "poisson",
)]
GRAD_VARIANTS = [("class", None, "float32"), ("function", None, "float64")]


def _gv_id(v):
    return f"{v[0]}-dtype={v[1]}-{v[2]}"


@pytest.mark.parametrize("variant", GRAD_VARIANTS, ids=_gv_id)
@pytest.mark.parametrize("c", GRAD_CONFIGS, ids=str)
def test_gradient_matches_keras_gradienttape(autograd_backend, c, variant, rng):
    form, dtype_arg, input_dtype = variant
    t, p = make_inputs(c, "random", input_dtype, rng)
    w = _sw(weight_shapes(c, p.shape)[1], input_dtype, rng) if form == "class" else None
    check_grad(autograd_backend, c, form, dtype_arg, t, p, w)


@pytest.mark.parametrize("c", [cfg("bce", from_logits=True, label_smoothing=0.1),
                               cfg("cfce", from_logits=True), cfg("scce", ignore_class=2)], ids=str)
def test_gradient_3d_matches_keras_gradienttape(autograd_backend, c, rng):
    """``(B, T, C)`` inputs with a ``(B, T)`` per-sample loss and a full ``(B, T)`` weight,
    ``dtype='float64'``."""
    t, p = make_inputs(c, "3d", "float64", rng)
    w = _sw(weight_shapes(c, p.shape)[2], "float64", rng)
    for reduction in ("sum_over_batch_size", "mean_with_sample_weight"):
        check_grad(autograd_backend, c, "class", "float64", t, p, w, reduction)


# (case, dtype argument, input dtype, reduction)
EDGE_GRAD = [("extreme", None, "float32", "sum_over_batch_size"),
             ("saturate", "float64", "float64", "none"),
             ("equal", None, "float32", "mean_with_sample_weight")]


@pytest.mark.parametrize("c", [c for c in GRAD_CONFIGS if c in EDGE_CONFIGS], ids=str)
def test_edge_gradient_matches_keras_gradienttape(autograd_backend, c, rng):
    """Includes Keras's clip: probabilities outside ``[1e-7, 1 - 1e-7]`` (``[1e-7, 1]`` for KL)
    get a zero gradient (``tf.clip_by_value``), those on the bound a full one; saturated
    sigmoids and softmaxes; all-equal logits. Each case with a different reduction and
    compute dtype."""
    for case, dtype_arg, input_dtype, reduction in EDGE_GRAD:
        t, p = make_inputs(c, case, input_dtype, rng)
        w = _sw(weight_shapes(c, p.shape)[1], input_dtype, rng)
        check_grad(autograd_backend, c, "class", dtype_arg, t, p, w, reduction)


@pytest.mark.parametrize("c", [cfg("bce"), cfg("cce"), cfg("scce"), cfg("kld")], ids=str)
def test_clip_gradient_is_zero_outside_bounds(autograd_backend, c):
    """Keras's clip gives probabilities 0 and 1 a zero gradient (and the mirror the same
    value, not an infinity), on every autograd backend."""
    p = np.zeros((B, C))
    p[:, 1] = 1.0
    labels = np.arange(B) % C  # right for row 1, wrong elsewhere
    t = labels if c.loss == "scce" else np.eye(C)[labels]
    expected_g = check_grad(autograd_backend, c, "class", "float64", t, p)
    _, grad = autograd_backend.value_and_grad(mirror(c, "class", dtype="float64"), [t, p], 1)
    assert np.all(np.isfinite(grad))
    # BCE clips to [1e-7, 1 - 1e-7], KL to [1e-7, 1] (1 is on the bound: gradient passes);
    # CCE/SCCE renormalise (or log-softmax) first, so their 0 and 1 are not all outside
    outside = {"bce": np.ones(p.shape, bool), "kld": p == 0}.get(c.loss)
    if outside is not None:
        np.testing.assert_array_equal(expected_g[outside], 0.0)
        np.testing.assert_array_equal(grad[outside], 0.0)


@pytest.mark.parametrize("c", IGNORING, ids=str)
def test_scce_ignored_rows_get_zero_gradient(autograd_backend, c, rng):
    """Keras replaces ignored rows by zeros (``where``) before the loss: their gradient is
    exactly zero, also when every label is ignored."""
    t, p = make_inputs(c, "random", "float32", rng)
    for labels in (t, np.full_like(t, c.ignore_class)):
        expected_g = check_grad(autograd_backend, c, "class", None, labels, p)
        np.testing.assert_array_equal(expected_g[labels == c.ignore_class], 0.0)
        _, grad = autograd_backend.value_and_grad(mirror(c, "class"), [labels, p], 1)
        np.testing.assert_array_equal(grad[labels == c.ignore_class], 0.0)


@pytest.mark.parametrize("form", ["class", "function"])
def test_cce_logits_gradient_with_unnormalised_targets(autograd_backend, form, rng):
    """Targets that do not sum to 1 (multi-hot rows; also what Keras's own label smoothing
    makes with ``axis=1``, since it divides by ``shape[-1]``): TensorFlow's fused
    ``softmax_cross_entropy_with_logits`` gradient is ``softmax - y``, not the derivative of
    the value, ``softmax·Σy - y``. The mirror reproduces Keras's gradient."""
    c = cfg("cce", from_logits=True)
    t = (rng.random((B, C)) < 0.5).astype("float64")
    t[:, 0] = 1.0
    p = rng.normal(0.0, 3.0, size=(B, C))
    check_grad(autograd_backend, c, form, "float64", t, p)


# ---- 5. bad input -------------------------------------------------------------------------------

EAGER_KINDS = kind_params(exclude=("dask",))  # lazy Dask labels are not read (documented)


@pytest.mark.parametrize("bad", [C, -1, 255])
@pytest.mark.parametrize("ignore_class", [None, -1, 255])
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("kind", EAGER_KINDS)
def test_scce_out_of_range_labels_raise(kind, form, ignore_class, bad, rng):
    """Keras on TensorFlow raises ``InvalidArgumentError`` for a label outside ``[0, C)``
    (other than ``ignore_class``); the mirror raises ``ValueError`` naming ``y_true``."""
    c = cfg("scce", ignore_class=ignore_class)
    t, p = make_inputs(c, "random", "float32", rng)
    t = np.where(np.arange(B) == 2, bad, t)
    if bad == ignore_class:  # not bad at all: masked, as in Keras
        check_against_keras(kind, c, form, t, p)
        return
    with pytest.raises(tf.errors.InvalidArgumentError):
        make_call(keras.losses, c, form)(tf.constant(t), tf.constant(p))
    with pytest.raises(ValueError, match="y_true"):
        run_on(kind, mirror(c, form), t, p)


@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("c", [cfg("bce"), cfg("bfce"), cfg("cce"), cfg("cfce", from_logits=True),
                               cfg("bce", from_logits=True), cfg("kld"), cfg("poisson")], ids=str)
def test_shape_mismatch_raises(c, form, rng):
    """``y_true``/``y_pred`` of different shapes (``(B, C)`` vs ``(B, C+1)``, and ``(1, C)`` vs
    ``(B, C)``): ``ValueError``. Keras's TF backend refuses both for BCE and CCE; its
    categorical focal loss, KL and Poisson have no shape check (an error from the
    elementwise op, or silent broadcasting), which the mirror does not copy."""
    t, p = make_inputs(c, "random", "float32", rng)
    wider = np.concatenate([p, p[:, :1]], axis=1)
    for tt, pp in ((t, wider), (t[:1], p)):
        if c.loss in ("bce", "bfce", "cce"):
            with pytest.raises(ValueError):
                make_call(keras.losses, c, form)(tf.constant(tt), tf.constant(pp))
        for kind in ("numpy", "tensorflow"):
            with pytest.raises(ValueError, match="shape"):
                run_on(KINDS[kind], mirror(c, form), tt, pp)


def test_scce_mismatched_batch_raises(rng):
    c = cfg("scce")
    t, p = make_inputs(c, "random", "float32", rng)
    with pytest.raises(ValueError):
        keras.losses.sparse_categorical_crossentropy(tf.constant(t[:-1]), tf.constant(p))
    with pytest.raises(ValueError):
        pk.sparse_categorical_crossentropy(t[:-1], p)


# ---- 6. signatures and configs ---------------------------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", list(SPECS))
def test_signatures_match_keras(name):
    """The class, its constructor, ``__call__`` and the function: same names, order, kinds and
    defaults as Keras."""
    spec = SPECS[name]
    native_cls, mirror_cls = getattr(keras.losses, spec.cls), getattr(pk, spec.cls)
    assert _params(mirror_cls) == _params(native_cls)
    assert _params(mirror_cls.__call__) == _params(native_cls.__call__)
    assert _params(getattr(pk, spec.fn)) == _params(getattr(keras.losses, spec.fn))
    assert _params(mirror_cls.__init__) == _params(native_cls.__init__)


@pytest.mark.parametrize("name", ["bce", "bfce", "cce", "cfce", "scce"])
def test_positional_constructor_arguments_like_keras(name):
    """Arguments passed positionally land where Keras puts them (SCCE: ``reduction`` before
    ``axis``)."""
    spec = SPECS[name]
    values = {"from_logits": True, "label_smoothing": 0.2, "axis": 1, "apply_class_balancing": True,
              "alpha": 0.4, "gamma": 1.5, "ignore_class": 3, "reduction": "sum", "name": "x"}
    params = list(inspect.signature(getattr(keras.losses, spec.cls)).parameters)
    args = [values[k] for k in params if k in values]
    n_obj, m_obj = getattr(keras.losses, spec.cls)(*args), getattr(pk, spec.cls)(*args)
    assert (m_obj.name, m_obj.reduction) == (n_obj.name, n_obj.reduction) == ("x", "sum")
    for k in params:
        if k in values and hasattr(n_obj, k) and k not in ("name", "reduction"):
            assert getattr(m_obj, k) == getattr(n_obj, k) == values[k], k


@pytest.mark.parametrize("c", [cfg(n) for n in SPECS] + [c for c in CONFIGS if c.params], ids=str)
def test_name_attributes_and_config_match_keras(c):
    n_obj, m_obj = getattr(keras.losses, c.spec.cls)(**c.kw), getattr(pk, c.spec.cls)(**c.kw)
    assert m_obj.name == n_obj.name
    assert m_obj.reduction == n_obj.reduction
    assert m_obj.dtype == n_obj.dtype == "float32"
    for attr, value in c.kw.items():
        assert getattr(m_obj, attr) == getattr(n_obj, attr) == value
    assert m_obj.get_config() == n_obj.get_config()


# ---- 7. categorical focal alpha per class -----------------------------------------------------------

@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
def test_categorical_focal_alpha_per_class_like_keras(form, input_dtype, rng):
    """Keras documents ``alpha`` as "a list of floats or a scalar": one weight per class,
    broadcast along the (last) class axis. Keras converts the list with the default float
    type, so even float64 inputs are weighted by float32-rounded alphas."""
    alpha = [0.1, 0.2, 0.3, 0.15, 0.25]
    cdtype = compute_dtype(form, None, input_dtype)
    for fl in (False, True):
        c = Cfg("cfce", (("alpha", alpha), ("from_logits", fl)))
        t, p = make_inputs(c, "random", input_dtype, rng)
        expected = make_call(keras.losses, c, form)(tf.constant(t), tf.constant(p)).numpy()
        for kind in ("numpy", "tensorflow", "torch"):
            if KINDS[kind].available():
                got = run_on(KINDS[kind], make_call(pk, c, form), t, p)
                assert_close(got, expected, dtype=cdtype, n=p.size,
                             atol=atol_for(c, cdtype, t, p), err_msg=f"{kind} logits={fl}")


# ---- 8. tf.function --------------------------------------------------------------------------------

@pytest.mark.compiled
@pytest.mark.parametrize("c", [cfg("bce", from_logits=True), cfg("cce", label_smoothing=0.1),
                               cfg("scce", ignore_class=2), cfg("kld")], ids=str)
def test_tf_function_with_unknown_batch_dimension(c, rng):
    """A symbolic batch size (``input_signature`` with ``None``), as in a Keras model's
    ``train_step``: traced once, every batch size (including one where every SCCE label is
    ignored) equals Keras, values and gradients."""
    t0, p0 = make_inputs(c, "random", "float32", rng)
    specs = [tf.TensorSpec((None,) + t0.shape[1:], tf.as_dtype(t0.dtype)),
             tf.TensorSpec((None,) + p0.shape[1:], tf.float32)]
    f = mirror(c, "class")

    @tf.function(input_signature=specs)
    def value_and_grad(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            out = f(y_true, y_pred)
        return out, tape.gradient(out, y_pred)

    for case in ("random", "batch1", "ignored"):
        if case == "ignored" and c.ignore_class is None:
            continue
        t, p = make_inputs(c, case, "float32", rng)
        expected_v, expected_g = native_grad(c, "class", t, p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            value, grad = value_and_grad(tf.constant(t), tf.constant(p))
        assert_close(value, expected_v, dtype="float32", n=p.size,
                     atol=atol_for(c, "float32", t, p, "sum_over_batch_size"), err_msg=case)
        assert_close(grad, expected_g, dtype="float32", n=p.size,
                     atol=grad_atol("float32", expected_g), err_msg=case)
    assert value_and_grad.experimental_get_tracing_count() == 1
