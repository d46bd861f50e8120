"""``polyloss.keras`` against the real ``keras.losses`` 3.15 (TensorFlow backend).

Expected values and gradients always come from Keras itself, run in the test on
TensorFlow tensors built from the same NumPy bits. Covered, for every mirror in class and
function form: every reduction, ``sample_weight`` of shape ``(N,)``, ``(N, 1)`` and the full
per-sample shape, ``dtype=None`` (float32, even for float64 inputs) and ``dtype='float64'``,
Huber's ``delta``, float32/float64 inputs, random and edge inputs, the same mirror on every
installed array type, gradients (``tf.GradientTape``) on every autograd backend, signatures,
the deliberate differences, and ``tf.function``.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from _native import (
    CASES,
    KINDS,
    KnownBugs,
    N,
    T,
    assert_close,
    cancel_atol,
    kind_params,
    make_inputs,
    require_module,
    run_on,
)

tf = require_module("tensorflow")
keras = require_module("keras", reason="keras (TensorFlow backend) is not installed")
if keras.backend.backend() != "tensorflow":
    pytest.skip("these tests need Keras on its TensorFlow backend", allow_module_level=True)
pk = pytest.importorskip("polyloss.keras")

pytestmark = [
    pytest.mark.native,
    # the "huge" inputs overflow float32 on purpose (Keras gives inf too)
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


@dataclass(frozen=True)
class Spec:
    cls: str
    fn: str
    positive: bool = False  # draw inputs mostly > 0 (MSLE)
    cancels: bool = False  # formula subtracts ~log 2 terms: see _native.cancel_atol


SPECS = {
    "mse": Spec("MeanSquaredError", "mean_squared_error"),
    "mae": Spec("MeanAbsoluteError", "mean_absolute_error"),
    "mape": Spec("MeanAbsolutePercentageError", "mean_absolute_percentage_error"),
    "msle": Spec("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", positive=True,
                 cancels=True),
    "huber": Spec("Huber", "huber"),
    "log_cosh": Spec("LogCosh", "log_cosh", cancels=True),
}
LOSSES = [("mse", None), ("mae", None), ("mape", None), ("msle", None)] + [
    ("huber", d) for d in (0.5, 1.0, 2.5)] + [("log_cosh", None)]
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _loss_id(v):
    return f"{v[0]}" if v[1] is None else f"{v[0]}-{v[1]}"


def make_call(lib, loss, form, reduction="sum_over_batch_size", dtype=None):
    """The same spelling on keras.losses and polyloss.keras: ``f(y_true, y_pred[, w])``."""
    name, delta = loss
    spec = SPECS[name]
    extra = {} if delta is None else {"delta": delta}
    if form == "class":
        obj = getattr(lib, spec.cls)(reduction=reduction, dtype=dtype, **extra)
        return lambda y_true, y_pred, w=None: obj(y_true, y_pred, sample_weight=w)
    fn = getattr(lib, spec.fn)
    return lambda y_true, y_pred: fn(y_true, y_pred, **extra)


def native(loss, form, *arrays, reduction="sum_over_batch_size", dtype=None):
    f = make_call(keras.losses, loss, form, reduction, dtype)
    return f(*[None if a is None else tf.constant(a) for a in arrays]).numpy()


def mirror(loss, form, reduction="sum_over_batch_size", dtype=None):
    return make_call(pk, loss, form, reduction, dtype)


def inputs(loss, case, dtype, rng, **kw):
    spec = SPECS[loss[0]]
    p, t = make_inputs(case, dtype, rng, threshold=loss[1] or 1.0, positive=spec.positive, **kw)
    return t, p  # Keras order: (y_true, y_pred)


def compute_dtype(form, dtype_arg, input_dtype):
    if form == "function":
        return input_dtype
    return dtype_arg or "float32"  # Keras casts to floatx() = float32 when dtype is None


def atol_for(loss, cdtype, reduction, w, n_values):
    """Cancellation allowance for MSLE/log-cosh (see ``cancel_atol``), times what the
    reduction does to a per-value error: ``Σ|w|`` for a sum, ``Σ|w| / n`` for the mean,
    ``Σ|w| / Σw`` for ``mean_with_sample_weight``, ``max|w|`` unreduced."""
    if not SPECS[loss[0]].cancels:
        return 0.0
    aw = np.ones(n_values) if w is None else np.abs(np.broadcast_to(w, w.shape)).ravel()
    total = float(aw.sum()) * (n_values / max(aw.size, 1))
    if reduction in (None, "none"):
        scale = float(aw.max()) if aw.size else 1.0
    elif reduction == "sum":
        scale = total
    elif reduction == "mean_with_sample_weight" and w is not None:
        scale = total / max(abs(float(np.sum(w))), 1e-30)
    else:
        scale = total / max(n_values, 1)
    return cancel_atol(cdtype, max(scale, 1.0))


# ---- sample weights ----------------------------------------------------------------------

# (input case, sample-weight shape): for 2-D inputs (N, D) the per-sample loss is (N,); for
# 3-D inputs (N, T, D) it is (N, T), whose "full" weight is (N, T) (and Keras squeezes a
# trailing 1 of (N, T, 1)).
SW_CONFIGS = [
    ("random", None), ("random", (N,)), ("random", (N, 1)),
    ("3d", None), ("3d", (N, 1)), ("3d", (N, T)), ("3d", (N, T, 1)),
]


def _sw(shape, dtype, rng):
    if shape is None:
        return None
    w = rng.uniform(0.0, 3.0, size=shape)
    w[rng.random(shape) < 0.2] = 0.0
    return w.astype(dtype)


def _sw_id(c):
    return f"{c[0]}-sw{'None' if c[1] is None else 'x'.join(map(str, c[1]))}"


# ---- 1. values against Keras, on TensorFlow tensors ------------------------------------------

@pytest.mark.parametrize("config", SW_CONFIGS, ids=_sw_id)
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("dtype_arg", [None, "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_class_reductions_and_weights_match_keras(loss, dtype_arg, input_dtype, config, rng):
    case, sw_shape = config
    t, p = inputs(loss, case, input_dtype, rng)
    w = _sw(sw_shape, input_dtype, rng)
    cdtype = compute_dtype("class", dtype_arg, input_dtype)
    n_values = int(np.prod(p.shape[:-1]))
    for reduction in REDUCTIONS:
        expected = native(loss, "class", t, p, w, reduction=reduction, dtype=dtype_arg)
        got = run_on(KINDS["tensorflow"], mirror(loss, "class", reduction, dtype_arg), t, p, w)
        assert_close(got, expected, dtype=cdtype, n=p.size,
                     atol=atol_for(loss, cdtype, reduction, w, n_values),
                     err_msg=f"reduction={reduction!r}")


EDGE_CASES = [c for c in CASES if c not in ("random", "3d")]


@pytest.mark.parametrize("case", EDGE_CASES)
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("dtype_arg", [None, "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_class_edge_inputs_match_keras(loss, dtype_arg, input_dtype, case, rng):
    """Zero residuals, |r| = delta, 1e20 and 1e-20 residuals, a batch of one, and the empty
    batch, for which Keras returns the unreduced empty ``(0,)`` per-sample loss whatever the
    reduction (``reduce_values`` short-circuits on ``values.shape == (0,)``)."""
    t, p = inputs(loss, case, input_dtype, rng)
    cdtype = compute_dtype("class", dtype_arg, input_dtype)
    weights = [None, _sw((p.shape[0],), input_dtype, rng)]
    for w in weights:
        for reduction in REDUCTIONS:
            expected = native(loss, "class", t, p, w, reduction=reduction, dtype=dtype_arg)
            got = run_on(KINDS["tensorflow"], mirror(loss, "class", reduction, dtype_arg), t, p, w)
            assert_close(got, expected, dtype=cdtype, n=p.size,
                         atol=atol_for(loss, cdtype, reduction, w, p.shape[0]),
                         err_msg=f"reduction={reduction!r}, weighted={w is not None}")
    if case == "empty":
        assert expected.shape == (0,)


@pytest.mark.parametrize("case", list(CASES) + ["1d"])
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_function_matches_keras(loss, input_dtype, case, rng):
    """The functions keep ``y_pred``'s dtype (no float32 cast) and return one value per
    sample; 1-D inputs give one scalar."""
    shape = (N,) if case == "1d" else None
    t, p = inputs(loss, "random" if case == "1d" else case, input_dtype, rng, shape=shape)
    expected = native(loss, "function", t, p)
    got = run_on(KINDS["tensorflow"], mirror(loss, "function"), t, p)
    assert_close(got, expected, dtype=input_dtype, n=p.size,
                 atol=atol_for(loss, input_dtype, "none", None, 1))


@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_function_target_takes_pred_dtype_like_keras(loss, form, rng):
    """A float32 ``y_true`` with a float64 ``y_pred`` (and the reverse): Keras's functions cast
    ``y_true`` to ``y_pred``'s dtype; the classes cast both to their ``dtype``."""
    t, p = inputs(loss, "random", "float64", rng)
    for tt, pp in ((t.astype("float32"), p), (t, p.astype("float32"))):
        expected = native(loss, form, tt, pp)
        got = run_on(KINDS["tensorflow"], mirror(loss, form), tt, pp)
        cdtype = str(pp.dtype) if form == "function" else "float32"
        assert_close(got, expected, dtype=cdtype, n=p.size,
                     atol=atol_for(loss, cdtype, "sum_over_batch_size", None, N))


# ---- 2. the same mirror on every other array type -------------------------------------------

VARIANTS = [("class", None), ("class", "float64"), ("function", None)]
KIND_CASES = [("random", (N,)), ("random", (N, 1)), ("3d", (N, T)), ("zero", None),
              ("threshold", None), ("huge", None), ("tiny", None), ("empty", None)]


@pytest.mark.parametrize("config", KIND_CASES, ids=_sw_id)
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0]}-dtype={v[1]}")
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
@pytest.mark.parametrize("kind", kind_params(exclude=("tensorflow",)))
def test_every_backend_matches_keras(kind, loss, variant, input_dtype, config, rng):
    form, dtype_arg = variant
    case, sw_shape = config
    t, p = inputs(loss, case, input_dtype, rng)
    cdtype = compute_dtype(form, dtype_arg, input_dtype)
    bugs = KnownBugs()
    if form == "function":
        expected = native(loss, form, t, p)
        got = run_on(kind, mirror(loss, form), t, p, bugs=bugs)
        bugs.assert_close(kind, got, expected, dtype=cdtype, n=p.size,
                          atol=atol_for(loss, cdtype, "none", None, 1))
        return bugs.check()
    w = _sw(sw_shape, input_dtype, rng)
    n_values = int(np.prod(p.shape[:-1]))
    for reduction in REDUCTIONS if w is not None else ("sum_over_batch_size", "sum", "none"):
        expected = native(loss, form, t, p, w, reduction=reduction, dtype=dtype_arg)
        got = run_on(kind, mirror(loss, form, reduction, dtype_arg), t, p, w, bugs=bugs)
        bugs.assert_close(kind, got, expected, dtype=cdtype, n=p.size,
                          atol=atol_for(loss, cdtype, reduction, w, n_values),
                          err_msg=f"reduction={reduction!r}")
    bugs.check()


# ---- 3. gradients w.r.t. y_pred -------------------------------------------------------------------

def native_grad(loss, form, t, p, w=None, dtype=None):
    f = make_call(keras.losses, loss, form, dtype=dtype)
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = f(tf.constant(t), x, *([] if w is None else [tf.constant(w)]))
        total = tf.reduce_sum(out)
    return out.numpy(), tape.gradient(total, x).numpy()


GRAD_VARIANTS = [("class", None, "float32"), ("class", None, "float64"),
                 ("class", "float64", "float64"), ("function", None, "float32"),
                 ("function", None, "float64")]


@pytest.mark.parametrize("case", ["random", "zero", "threshold"])
@pytest.mark.parametrize("variant", GRAD_VARIANTS, ids=lambda v: f"{v[0]}-dtype={v[1]}-{v[2]}")
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_gradient_matches_keras_gradienttape(autograd_backend, loss, variant, case, rng):
    """Includes the kinks: MAE/MAPE at r = 0 (TensorFlow's |r| subgradient is 0, and so is
    the mirror's on every backend, JAX included) and Huber at |r| = delta (Keras takes the
    quadratic branch, gradient ±delta; so does the mirror's linear branch)."""
    form, dtype_arg, input_dtype = variant
    t, p = inputs(loss, case, input_dtype, rng)
    w = _sw((N,), input_dtype, rng) if form == "class" else None
    cdtype = compute_dtype(form, dtype_arg, input_dtype)
    expected_v, expected_g = native_grad(loss, form, t, p, w, dtype_arg)
    f = mirror(loss, form, dtype=dtype_arg)
    arrays = [t, p] if w is None else [t, p, w]
    value, grad = autograd_backend.value_and_grad(f, arrays, 1)
    atol = atol_for(loss, cdtype, "sum_over_batch_size", w, N)
    assert_close(value, expected_v, dtype=cdtype, n=p.size, atol=atol)
    # the gradient comes back in the input's dtype; its error is that of the compute dtype
    gatol = 0.0 if not SPECS[loss[0]].cancels else cancel_atol(cdtype) * float(
        np.abs(expected_g).max())
    assert_close(grad, expected_g, dtype=cdtype, n=p.size, atol=gatol)


def test_mae_kink_gradient_is_zero_everywhere(autograd_backend):
    """At y_true == y_pred Keras (TensorFlow) gives MAE gradient 0; so does the mirror on every
    autograd backend (JAX's ``jnp.abs(y_true - y_pred)`` alone would give -1/N)."""
    p = np.array([[1.0, -2.0, 0.5]])
    _, expected = native_grad(("mae", None), "class", p.copy(), p, dtype="float64")
    np.testing.assert_array_equal(expected, np.zeros_like(p))
    _, grad = autograd_backend.value_and_grad(pk.MeanAbsoluteError(dtype="float64"),
                                              [p.copy(), p], 1)
    np.testing.assert_array_equal(grad, np.zeros_like(p))


# ---- 4. signatures ------------------------------------------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", list(SPECS))
def test_signatures_match_keras(name):
    """Constructor, ``__call__`` and function: same names, order, kinds and defaults as Keras.
    No native parameter is omitted."""
    spec = SPECS[name]
    assert _params(getattr(pk, spec.cls).__init__) == _params(getattr(keras.losses, spec.cls).__init__)
    assert _params(getattr(pk, spec.cls).__call__) == _params(
        getattr(keras.losses, spec.cls).__call__)
    assert _params(getattr(pk, spec.fn)) == _params(getattr(keras.losses, spec.fn))


@pytest.mark.parametrize("name", list(SPECS))
def test_name_and_config_match_keras(name):
    spec = SPECS[name]
    n_obj, m_obj = getattr(keras.losses, spec.cls)(), getattr(pk, spec.cls)()
    assert m_obj.name == n_obj.name
    assert m_obj.reduction == n_obj.reduction
    assert m_obj.dtype == n_obj.dtype == "float32"
    n_cfg = n_obj.get_config()
    assert {k: n_cfg[k] for k in ("name", "reduction")} == m_obj.get_config()


# ---- 5. deliberate differences and Keras's own shape rule ------------------------------------------

@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_trailing_one_is_squeezed_like_keras(loss, form, rng):
    """``(N, 1)`` against ``(N,)`` is *not* an error in Keras: ``squeeze_or_expand_to_same_rank``
    makes both ``(N, 1)``. The mirror does the same and equals Keras, in both orders."""
    t, p = inputs(loss, "random", "float64", rng, shape=(N, 1))
    for tt, pp in ((t[:, 0], p), (t, p[:, 0])):
        expected = native(loss, form, tt, pp)
        for kind in ("tensorflow", "numpy"):
            got = run_on(KINDS[kind], mirror(loss, form), tt, pp)
            cdtype = "float64" if form == "function" else "float32"
            assert_close(got, expected, dtype=cdtype, n=N,
                         atol=atol_for(loss, cdtype, "sum_over_batch_size", None, N))


@pytest.mark.parametrize("form", ["class", "function"])
def test_broadcasting_shapes_raise_where_keras_broadcasts(form, rng):
    t = rng.normal(size=(N, 3))
    p = rng.normal(size=(1, 3))
    native(("mse", None), form, t, p)  # Keras broadcasts silently
    with pytest.raises(ValueError, match="shape"):
        mirror(("mse", None), form)(t, p)


def test_enlarging_sample_weight_raises_where_keras_broadcasts(rng):
    t, p = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    w = rng.uniform(size=(N, N))
    out = native(("mse", None), "class", t, p, w, reduction="none")
    assert out.shape == (N, N)  # Keras: per-sample (N,) times (N, N) -> (N, N)
    with pytest.raises(ValueError, match="sample_weight"):
        pk.MeanSquaredError(reduction="none")(t, p, sample_weight=w)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_nonpositive_delta_raises_where_keras_accepts(bad, rng):
    t, p = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    keras.losses.Huber(delta=bad)(t, p)  # accepted: a linear-only (or negative) loss
    keras.losses.huber(t, p, delta=bad)
    with pytest.raises(ValueError, match="delta"):
        pk.Huber(delta=bad)
    with pytest.raises(ValueError, match="delta"):
        pk.huber(t, p, delta=bad)


def test_integer_y_pred_is_typeerror_in_functions(rng):
    t = rng.normal(size=(N, 3))
    keras.losses.mean_squared_error(t, np.ones((N, 3), dtype=np.int64))  # Keras computes
    with pytest.raises(TypeError):
        pk.mean_squared_error(t, np.ones((N, 3), dtype=np.int64))
    # the classes cast to their dtype first, as Keras does
    expected = keras.losses.MeanSquaredError()(t, np.ones((N, 3), dtype=np.int64)).numpy()
    got = pk.MeanSquaredError()(t, np.ones((N, 3), dtype=np.int64))
    assert_close(got, expected, dtype="float32", n=3 * N)


@pytest.mark.parametrize("reduction", ["mean_with_sample_weight", "sum_over_batch_size"])
def test_all_zero_weights_give_zero_like_keras(reduction, rng):
    """``divide_no_nan``: a zero divisor (Σw = 0, or no entries) gives 0, not NaN."""
    t, p = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    w = np.zeros(N)
    expected = native(("mse", None), "class", t, p, w, reduction=reduction)
    assert expected == 0
    got = run_on(KINDS["numpy"], mirror(("mse", None), "class", reduction), t, p, w)
    assert_close(got, expected, dtype="float32")


def test_invalid_reduction_raises_like_keras():
    with pytest.raises(ValueError, match="reduction"):
        keras.losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        pk.MeanSquaredError(reduction="avg")


# Regression check: the ratio is formed first and x100 comes after the mean, as in Keras
# (multiplying first overflowed float32 where Keras stays finite).
@pytest.mark.parametrize("form", ["class", "function"])
def test_mape_large_values_match_keras(form):
    t = np.array([[3e37, 1.0]], dtype=np.float32)
    p = np.array([[-3e37, 2.0]], dtype=np.float32)
    expected = native(("mape", None), form, t, p)
    assert np.all(np.isfinite(expected))  # (200 + 100) / 2 = 150
    got = run_on(KINDS["tensorflow"], mirror(("mape", None), form), t, p)
    assert_close(got, expected, dtype="float32", n=2)


# ---- 6. tf.function --------------------------------------------------------------------------------

@pytest.mark.compiled
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", [("mse", None), ("mae", None), ("mape", None), ("msle", None),
                                  ("huber", 2.5), ("log_cosh", None)], ids=_loss_id)
def test_tf_function_matches_keras(loss, form, rng):
    t, p = inputs(loss, "zero", "float32", rng)
    w = _sw((N,), "float32", rng) if form == "class" else None
    expected_v, expected_g = native_grad(loss, form, t, p, w)
    f = mirror(loss, form)
    arrays = [tf.constant(a) for a in ([t, p] if w is None else [t, p, w])]

    @tf.function
    def value_and_grad(*args):
        with tf.GradientTape() as tape:
            tape.watch(args[1])
            out = f(*args)
            total = tf.reduce_sum(out)
        return out, tape.gradient(total, args[1])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value, grad = value_and_grad(*arrays)
    atol = atol_for(loss, "float32", "sum_over_batch_size", w, N)
    assert_close(value, expected_v, dtype="float32", n=p.size, atol=atol)
    gatol = 0.0 if not SPECS[loss[0]].cancels else cancel_atol("float32") * float(
        np.abs(expected_g).max())
    assert_close(grad, expected_g, dtype="float32", n=p.size, atol=gatol)


@pytest.mark.compiled
@pytest.mark.parametrize("form", [
    "class",
    "function",
])
def test_tf_function_with_unknown_batch_dimension(form):
    """A symbolic batch size (``input_signature`` with ``None``), as in a Keras model's
    ``train_step``, traces once and serves every batch size, like the native."""
    spec = [tf.TensorSpec([None, 3], tf.float32)] * 2
    f = tf.function(mirror(("mse", None), form), input_signature=spec)
    for n in (1, 4):
        t = np.arange(3 * n, dtype=np.float32).reshape(n, 3)
        p = t + 1.5
        expected = native(("mse", None), form, t, p)
        assert_close(f(t, p), expected, dtype="float32", n=3 * n)
        assert np.all(expected == np.float32(2.25))  # (1.5)² everywhere
