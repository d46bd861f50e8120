"""``polyloss.custom_loss`` and ``polyloss.testing.assert_parity``: a user's own loss on every
backend, and parity checks that pass correct losses and catch real backend differences.

Expected values are computed here from the formulas in NumPy float64, or by the frameworks
themselves (the discrepancies below were measured on the real frameworks).
"""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest
from conftest import INSTALLED_NAMES, require

import polyloss
from polyloss.parity.backends import BACKENDS
from polyloss.testing import ParityError, assert_parity, check_parity


@polyloss.custom_loss
def pseudo_huber(pred, target, *, xp, delta=1.0):
    """``delta²·(sqrt(1 + (r/delta)²) - 1)``, written as ``delta²·s²/(sqrt(1 + s²) + 1)``
    (``s = r/delta``) so that float32 keeps its precision for small residuals."""
    s = (pred - target) / delta
    return delta**2 * (s * s) / (xp.sqrt(1 + s * s) + 1)


def pseudo_huber_formula(p, t, delta=1.0):
    return delta**2 * (np.sqrt(1 + ((p - t) / delta) ** 2) - 1)


@polyloss.custom_loss
def huber_plus_half_mse(pred, target, *, alpha=0.5):
    """A loss built from polyloss losses: no ``xp`` needed."""
    return (polyloss.huber(pred, target, delta=0.5, reduction="none")
            + alpha * polyloss.mse(pred, target, reduction="none"))


def regression_inputs(rng, dtype):
    pred = rng.normal(size=(6, 4))
    target = rng.normal(size=(6, 4))
    target[0, :3] = pred[0, :3]  # zero residuals: the kinks of |r| and max(pred, target)
    return pred, target


def _skipped_names(result):
    return {what for what, _ in result.skipped}


def _installed_autograd(exclude=()):
    return [n for n in ("torch", "jax", "tensorflow", "mxnet")
            if n in INSTALLED_NAMES and n not in exclude]


# ---- correct losses pass -------------------------------------------------------------------------

def test_array_api_loss_passes_everywhere_with_compiled_modes():
    result = assert_parity(pseudo_huber, regression_inputs)
    assert result.ok
    ran = set(result.backends)
    assert set(INSTALLED_NAMES) <= ran, (INSTALLED_NAMES, ran)
    modes = {(c.backend, c.mode) for c in result.checks}
    for name, mode_names in (("jax", ["jax.jit"]), ("torch", ["torch.compile"]),
                             ("tensorflow", ["tf.function", "tf.function(jit_compile=True)"])):
        if name in INSTALLED_NAMES:
            assert {(name, m) for m in mode_names} <= modes
    quantities = {(c.backend, c.quantity) for c in result.checks if c.mode != "finite differences"}
    for name in _installed_autograd():
        assert (name, "grad[0]") in quantities, name
    # the reference gradient was checked against finite differences (all 24 elements)
    fd = [c for c in result.checks if c.mode == "finite differences"]
    assert [c.quantity for c in fd] == ["grad[0]", "grad[0]"]  # once per dtype's inputs
    assert "all" in result.report() and "passed" in result.report()


def test_loss_built_from_polyloss_losses_passes():
    result = assert_parity(lambda p, t: huber_plus_half_mse(p, t, reduction="sum", alpha=0.25),
                           regression_inputs, compiled=False, name="huber_plus_half_mse")
    assert result.ok and result.name == "huber_plus_half_mse"


# ---- backend-dependent losses are caught -----------------------------------------------------------

@polyloss.custom_loss
def naive_abs(pred, target, *, xp):
    # xp.abs: d|r|/dr at r = 0 is 0 on torch, TensorFlow and MXNet but 1 on JAX (measured)
    return xp.abs(pred - target)


def test_abs_gradient_at_zero_differs_on_jax():
    require("jax")
    if not _installed_autograd(exclude=("jax",)):
        pytest.skip("needs a second autograd backend as the gradient reference")
    result = check_parity(naive_abs, regression_inputs, dtypes=("float64",), argnums=(0, 1))
    failed = result.failures
    assert failed and {c.backend for c in failed} == {"jax"}, result.report()
    assert {(c.mode, c.quantity) for c in failed} == {
        ("eager", "grad[0]"), ("eager", "grad[1]"), ("jax.jit", "grad[0]"), ("jax.jit", "grad[1]"),
    }
    worst = next(c for c in failed if c.mode == "eager" and c.quantity == "grad[0]")
    n = 24  # the mean's gradient is sign(r)/n; at r = 0 JAX gives 1/n, the reference 0
    assert worst.index in {(0, 0), (0, 1), (0, 2)}
    assert worst.actual == pytest.approx(1 / n, rel=1e-15) and worst.expected == 0
    assert worst.error == pytest.approx(1.0) and worst.tol == 1e-12
    with pytest.raises(AssertionError) as info:
        assert_parity(naive_abs, regression_inputs, dtypes=("float64",), argnums=(0, 1))
    report = str(info.value)
    assert isinstance(info.value, ParityError) and info.value.result.failures
    assert "parity of naive_abs: 4 of" in report
    row = next(line for line in report.splitlines() if line.startswith("jax") and "eager" in line)
    assert re.search(r"grad\[0\]\s+\(0, [012]\)\s+0\.0416667\s+0\s+1\s+1e-12", row), row


@polyloss.custom_loss
def tie_max(pred, target, *, xp):
    # xp.maximum at a tie: torch and JAX split the gradient (½ each), TensorFlow and MXNet give
    # all of it to the first argument (measured); the symmetric difference is ½
    return xp.maximum(pred, target)


def test_maximum_tie_gradient_differs_on_tensorflow_and_mxnet():
    splitters = [n for n in ("torch", "jax") if n in INSTALLED_NAMES]
    firsts = [n for n in ("tensorflow", "mxnet") if n in INSTALLED_NAMES]
    if not splitters or not firsts:
        pytest.skip("needs torch or JAX and TensorFlow or MXNet")
    result = check_parity(tie_max, regression_inputs, dtypes=("float64",), compiled=False,
                          argnums=(0, 1))
    assert {c.backend for c in result.failures} == set(firsts), result.report()
    for c in result.failures:
        assert c.quantity in ("grad[0]", "grad[1]") and c.index in {(0, 0), (0, 1), (0, 2)}
        assert c.expected == pytest.approx(0.5 / 24, rel=1e-15)
        assert c.actual == pytest.approx(1 / 24 if c.quantity == "grad[0]" else 0.0, abs=1e-18)


@polyloss.custom_loss
def numpy_log1p(pred, target):
    # numpy.log1p: fine on NumPy, but it leaves torch's autograd, returns NumPy arrays for
    # JAX and TensorFlow, and cannot be traced
    return np.log1p((pred - target) ** 2)


@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")
def test_a_numpy_call_is_caught_on_every_other_backend():
    others = [n for n in ("torch", "jax", "tensorflow") if n in INSTALLED_NAMES]
    if not others:
        pytest.skip("needs torch, JAX or TensorFlow")
    result = check_parity(numpy_log1p, regression_inputs, dtypes=("float64",), backends=others)
    assert set(others) <= {c.backend for c in result.failures}, result.report()
    report = result.report()
    if "jax" in others:
        assert "TypeError: polyloss: numpy_log1p returned a numpy.ndarray for jax inputs" in report
        assert "TracerArrayConversionError" in report  # under jax.jit
    if "torch" in others:
        assert "Can't call numpy() on Tensor that requires grad" in report  # the gradient


@polyloss.custom_loss
def naive_pseudo_huber(pred, target, *, xp):
    # sqrt(1 + r²) - 1 cancels: for |r| ~ 1e-3 float32 keeps about one digit
    r = pred - target
    return xp.sqrt(1 + r * r) - 1


def test_float32_cancellation_fails_against_the_float64_reference():
    def small_residuals(rng, dtype):
        pred = rng.normal(size=(8,))
        return pred, pred + 1e-3 * rng.normal(size=(8,))

    fn = lambda p, t: naive_pseudo_huber(p, t, reduction="none")  # noqa: E731
    result = check_parity(fn, small_residuals, backends=["numpy"], grads=False, compiled=False)
    assert [(c.dtype, c.quantity) for c in result.failures] == [("float32", "value")]
    worst = result.failures[0]
    # below |r| ~ 2.4e-4, 1 + r² rounds to 1 in float32: the loss is 0 instead of ~r²/2
    assert worst.actual == 0 and 0 < worst.expected < 3e-8 and worst.error == 1
    good = lambda p, t: pseudo_huber(p, t, reduction="none")  # noqa: E731
    assert check_parity(good, small_residuals, backends=["numpy"], grads=False).ok


def naive_abs_sqrt(x, y):
    # sqrt(r²) as |r|: autograd gives 0·inf = NaN at r = 0 on every backend, so the backends
    # agree with each other; the finite-difference check of the reference catches it
    xp = polyloss.array_namespace(x, y)
    return xp.sum(xp.sqrt((x - y) ** 2))


def test_nan_reference_gradient_is_caught_by_finite_differences():
    ref = _installed_autograd()
    if not ref:
        pytest.skip("needs an autograd backend")
    result = check_parity(naive_abs_sqrt, regression_inputs, backends=[ref[0]],
                          dtypes=("float64",), compiled=False)
    fd = [c for c in result.failures if c.mode == "finite differences"]
    assert len(fd) == 1 and fd[0].backend == ref[0], result.report()
    assert fd[0].index in {(0, 0), (0, 1), (0, 2)} and math.isnan(fd[0].actual)
    assert fd[0].expected == 0.0


def test_wrong_output_dtype_is_reported():
    def upcast(x, y):
        xp = polyloss.array_namespace(x, y)
        return xp.sum(xp.astype(x - y, xp.float64) ** 2)

    result = check_parity(upcast, regression_inputs, backends=["numpy"], grads=False)
    assert [(c.dtype, c.quantity, c.actual, c.expected) for c in result.failures] == [
        ("float32", "dtype", "float64", "float32")]


# ---- selection, skipping, arguments -------------------------------------------------------------

def _missing_backend():
    missing = [n for n, b in BACKENDS.items() if not b.available()]
    if not missing:
        pytest.skip("every backend is installed here")
    return missing[0]


def test_missing_backends_are_skipped_and_reported_unless_requested(monkeypatch):
    monkeypatch.delenv("POLYLOSS_BACKENDS", raising=False)
    missing = _missing_backend()
    result = check_parity(pseudo_huber, regression_inputs, grads=False, compiled=False)
    assert result.ok and missing in _skipped_names(result)
    assert "skipped: " in result.report() and missing in result.report()
    requested = check_parity(pseudo_huber, regression_inputs, backends=["numpy", missing],
                             grads=False, compiled=False)
    (failed,) = requested.failures
    assert failed.backend == missing and failed.quantity == "installed"
    assert "not installed" in failed.note or "NumPy < 2" in failed.note
    # nothing at all checked is a failure, not a silent pass
    nothing = check_parity(pseudo_huber, regression_inputs, backends=["numpy"], dtypes=("float16",))
    assert [c.quantity for c in nothing.failures] == ["nothing checked"]
    assert ("numpy float16", "not a dtype its parity backend runs") in nothing.skipped


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown backend 'pytorch'"):
        check_parity(pseudo_huber, regression_inputs, backends=["pytorch"])
    with pytest.raises(ValueError, match="dtypes must be among"):
        check_parity(pseudo_huber, regression_inputs, dtypes=("int32",))
    with pytest.raises(ValueError, match="reference must be"):
        check_parity(pseudo_huber, regression_inputs, reference="numpy")
    with pytest.raises(ValueError, match="argnums entry 2 must index a floating input"):
        check_parity(pseudo_huber, regression_inputs, argnums=(2,))
    with pytest.raises(TypeError, match="make_inputs must return NumPy arrays; input 1"):
        check_parity(pseudo_huber, lambda rng, dtype: (np.ones(3), [1.0, 2.0, 3.0]))


def test_rtol_by_dtype_and_identical_bits():
    seen = []

    def record(rng, dtype):
        pred, target = regression_inputs(rng, dtype)
        seen.append((dtype, pred.copy()))
        return pred, target

    result = check_parity(pseudo_huber, record, backends=["numpy"], grads=False,
                          rtol={"float32": 1e-3})
    assert result.ok
    assert [c.tol for c in result.checks if c.dtype == "float32"] == [1e-3]
    # the same generator state for each dtype: float32 inputs are the float64 ones, rounded
    (d32, p32), (d64, p64) = seen
    assert d32 == "float32" and np.array_equal(p32, p64)


# ---- custom_loss: the decorator ---------------------------------------------------------------

def test_signature_and_reductions_match_the_formula(backend):
    rng = np.random.default_rng(3)
    p, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    w = rng.uniform(0.5, 2.0, size=(5,))
    loss = pseudo_huber_formula(p, t, delta=0.7)
    P, T, W = backend.asarray(p), backend.asarray(t), backend.asarray(w)
    cases = {
        "none": (dict(reduction="none"), loss),
        "sum": (dict(reduction="sum"), loss.sum()),
        "mean": ({}, loss.mean()),
        "weighted mean": (dict(sample_weight=W), (loss * w[:, None]).mean()),
        "weighted sum": (dict(sample_weight=W, reduction="sum"), (loss * w[:, None]).sum()),
        "sum_of_weights": (dict(sample_weight=W, normalizer="sum_of_weights"),
                           (loss * w[:, None]).sum() / (3 * w.sum())),
    }
    for what, (kw, want) in cases.items():
        got = backend.to_numpy(pseudo_huber(P, T, delta=0.7, **kw))
        assert got.shape == np.shape(want), what
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=what)
    sig = str(inspect.signature(pseudo_huber))
    assert sig == ("(pred, target, *, reduction='mean', sample_weight=None, normalizer='count', "
                   "delta=1.0)")
    assert pseudo_huber.__name__ == "pseudo_huber" and "float32 keeps" in pseudo_huber.__doc__


def test_errors_name_the_argument(backend):
    x = backend.asarray(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"pred has shape \(4, 3\) but target has shape \(4, 1\)"):
        pseudo_huber(x, backend.asarray(np.zeros((4, 1))))
    with pytest.raises(TypeError, match="unexpected keyword argument 'delt'; it takes reduction, "
                                        "sample_weight, normalizer, delta"):
        pseudo_huber(x, x, delt=2.0)
    with pytest.raises(ValueError, match="invalid reduction='avg'"):
        pseudo_huber(x, x, reduction="avg")
    with pytest.raises(ValueError, match=r"sample_weight of shape \(3, 4\)"):
        pseudo_huber(x, x, sample_weight=backend.asarray(np.ones((3, 4))))
    if backend.name != "numpy":
        with pytest.raises(TypeError, match=r"pred is a \w+ array .* but target is a numpy array"):
            pseudo_huber(x, np.zeros((4, 3)))


def test_decoration_errors():
    with pytest.raises(TypeError, match="first two parameters"):
        polyloss.custom_loss(lambda pred, *, xp: pred)
    with pytest.raises(TypeError, match="first two parameters"):
        polyloss.custom_loss(lambda pred, target=None, *, xp: pred)
    with pytest.raises(TypeError, match=r"parameter\(s\) reduction clash"):
        polyloss.custom_loss(lambda pred, target, *, xp, reduction="mean": pred)


def test_keyword_arrays_are_checked_and_cast():
    require("torch")
    import torch

    @polyloss.custom_loss
    def scaled(pred, target, *, xp, scale=1.0):
        return scale * (pred - target) ** 2

    p, t = torch.zeros(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    scale = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32)
    out = scaled(p, t, scale=scale, reduction="none")
    assert out.dtype == torch.float64 and out[1].tolist() == [1.0, 2.0, 3.0]
    assert scaled(p, t, scale=2.0).item() == 2.0  # a Python number passes through
    with pytest.raises(TypeError, match="pred is a torch array .* but scale is a numpy array"):
        scaled(p, t, scale=np.ones(3))
    # devices: torch's meta device stands in for a second device
    meta = torch.zeros(2, 3, dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match="pred is on cpu but scale is on meta"):
        scaled(p, t, scale=scale.to("meta"))
    with pytest.raises(ValueError, match="pred is on meta but target is on cpu"):
        scaled(meta, t)
    assert scaled(meta, meta, scale=scale.to("meta"), reduction="none").device.type == "meta"


def test_returning_another_frameworks_array_is_an_error():
    require("jax")
    import jax.numpy as jnp

    with pytest.raises(TypeError, match="numpy_log1p returned a numpy.ndarray for jax inputs"):
        numpy_log1p(jnp.ones(3), jnp.zeros(3))


def test_torch_autograd_and_float16():
    require("torch")
    import torch

    rng = np.random.default_rng(5)
    p, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    pred = torch.from_numpy(p).requires_grad_(True)
    pseudo_huber(pred, torch.from_numpy(t), delta=0.5).backward()
    s = (p - t) / 0.5
    want = 0.5 * s / np.sqrt(1 + s * s) / p.size  # d/dp of the mean, by hand
    np.testing.assert_allclose(pred.grad.numpy(), want, rtol=1e-13)

    p16, t16 = p.astype(np.float16), t.astype(np.float16)
    for make in (np.asarray, torch.from_numpy):
        out = pseudo_huber(make(p16), make(t16), reduction="none")
        assert str(out.dtype).endswith("float16")
        want16 = pseudo_huber_formula(p16.astype(np.float64), t16.astype(np.float64))
        # computed in float32, rounded once to float16
        np.testing.assert_allclose(np.asarray(out, dtype=np.float64), want16, rtol=2**-11, atol=1e-7)


def test_mxnet_legacy_ndarray_in_and_out():
    require("mxnet")
    import mxnet as mx

    rng = np.random.default_rng(7)
    p, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    pred = mx.nd.array(p, dtype="float64")
    pred.attach_grad()
    with mx.autograd.record():
        out = pseudo_huber(pred, mx.nd.array(t, dtype="float64"), reduction="sum")
    out.backward()
    assert isinstance(out, mx.nd.NDArray) and out.shape == (1,)
    np.testing.assert_allclose(out.asnumpy()[0], pseudo_huber_formula(p, t).sum(), rtol=1e-12)
    s = p - t
    np.testing.assert_allclose(pred.grad.asnumpy(), s / np.sqrt(1 + s * s), rtol=1e-12)
    per_elem = pseudo_huber(pred, mx.nd.array(t, dtype="float64"), reduction="none")
    assert isinstance(per_elem, mx.nd.NDArray) and per_elem.shape == (4, 3)
