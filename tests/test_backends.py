"""Backend resolution and the TensorFlow / MXNet adapters.

Resolution: every supported array type maps to its namespace, cached per type; Python
scalars and None are skipped; two frameworks in one call are a TypeError naming both; MXNet's
classic NDArray comes back as NDArray. Adapters: every Array API function the core and the
reductions use, compared with NumPy (expected values computed by NumPy itself).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import INSTALLED_NAMES, require

import polyloss
from polyloss import backends
from polyloss.backends import backend_of, check_same_device

FRAMEWORK_OF = {
    "numpy": "numpy", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow",
    "mxnet": "mxnet", "array_api_strict": "array_api_strict", "dask": "dask",
}


def test_every_installed_backend_resolves_and_is_cached(backend):
    x = backend.asarray(np.ones(3))
    b = backend_of(x)
    assert b.framework == FRAMEWORK_OF[backend.name]
    assert backend_of(x) is b  # the per-type cache returns the very same object
    assert backends._CACHE[type(x)] is b
    assert polyloss.array_namespace(x) is b.xp


def test_scalars_and_none_are_skipped(backend):
    x = backend.asarray(np.ones(3))
    assert backend_of(None, 1.0, 2, True, x).framework == FRAMEWORK_OF[backend.name]


def test_no_array_is_a_type_error():
    with pytest.raises(TypeError, match="at least one array"):
        backend_of(1.0, None)


def test_unsupported_type_names_the_argument():
    with pytest.raises(TypeError, match=r"builtins\.list.*target"):
        polyloss.mse(np.ones(2), [1.0, 2.0])


@pytest.mark.parametrize("other", [n for n in INSTALLED_NAMES if n != "numpy"])
def test_two_frameworks_is_a_type_error_naming_both(other):
    b = require(other)
    with pytest.raises(TypeError) as info:
        polyloss.mse(np.ones(3), b.asarray(np.ones(3)))
    message = str(info.value)
    assert "numpy" in message and FRAMEWORK_OF[other] in message
    assert "pred" in message and "target" in message


def test_tensorflow_variable_and_symbolic_tensors():
    require("tensorflow")
    import tensorflow as tf

    v = tf.Variable(np.array([1.0, 2.0]))
    assert backend_of(v).framework == "tensorflow"
    out = polyloss.mse(v, tf.constant([0.0, 0.0], dtype=tf.float64))
    assert isinstance(out, tf.Tensor) and float(out) == 2.5  # (1 + 4) / 2 by hand

    seen = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64)] * 2)
    def f(p, t):
        seen.append(backend_of(p).framework)
        return polyloss.mse(p, t)

    f64 = tf.float64
    assert float(f(tf.constant([3.0], f64), tf.constant([1.0], f64))) == 4.0
    assert float(f(tf.constant([3.0, 1.0], f64), tf.constant([1.0, 1.0], f64))) == 2.0
    assert seen == ["tensorflow"]  # traced once, symbolic batch dimension


def test_mxnet_classic_ndarray_round_trips_with_autograd():
    require("mxnet")
    import mxnet as mx
    from mxnet import autograd

    p = mx.nd.array(np.array([1.0, 3.0]), dtype="float64")
    t = mx.nd.array(np.array([0.0, 0.0]), dtype="float64")
    p.attach_grad()
    with autograd.record():
        out = polyloss.mse(p, t)
    out.backward()
    assert type(out) is mx.nd.NDArray
    assert out.asnumpy().item() == 5.0  # (1 + 9) / 2 by hand
    np.testing.assert_array_equal(p.grad.asnumpy(), [1.0, 3.0])  # 2 r / N by hand
    mixed = polyloss.mse(p, mx.np.array(np.zeros(2), dtype="float64"))
    assert type(mixed) is mx.nd.NDArray  # the first array decides the type returned


def test_mxnet_symbol_is_refused_with_a_pointer_to_gluon():
    require("mxnet")
    import mxnet as mx

    with pytest.raises(TypeError, match="polyloss.gluon"):
        backend_of(mx.sym.var("x"))


def test_two_devices_is_a_value_error():
    require("torch")
    import torch

    with pytest.raises(ValueError, match="two devices") as info:
        polyloss.mse(torch.zeros(3), torch.zeros(3, device="meta"))
    assert "cpu" in str(info.value) and "meta" in str(info.value)
    b = backend_of(torch.zeros(1))
    check_same_device(b, (torch.zeros(1), None, 1.0), ("a", "b", "c"))  # scalars/None skipped


def test_results_stay_on_the_input_device(backend):
    x = backend.asarray(np.array([1.0, 2.0, 4.0]))
    out = polyloss.huber(x, x * 0.0, delta=1.0, reduction="none")
    b = backend_of(x)
    assert b.device(out) == b.device(x)


# What importing each module may load: nothing for polyloss itself, optax and gluon (Gluon's
# block classes are built once mxnet is loaded); a front-end's own framework for polyloss.torch
# (its classes are nn.Modules) and polyloss.keras (keras.losses.Loss subclasses; Keras loads
# its backends)
ALLOWED_IMPORTS = {
    "polyloss": set(), "polyloss.optax": set(), "polyloss.gluon": set(),
    "polyloss.torch": {"torch"}, "polyloss.keras": {"keras", "tensorflow", "jax"},
    "polyloss.testing": set(), "polyloss.custom": set(), "polyloss.distributed": set(),
    "polyloss.porting": set(), "polyloss.parity": set(), "polyloss.bench": set(),
    "polyloss.pytest_plugin": set(),
}


@pytest.mark.parametrize("module", sorted(ALLOWED_IMPORTS))
def test_importing_polyloss_imports_no_other_framework(module):
    import subprocess
    import sys

    code = (
        f"import sys, {module};"
        "print(','.join(m for m in ('torch', 'tensorflow', 'mxnet', 'jax', 'keras', 'optax') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m for m in out.stdout.strip().split(",") if m}
    assert loaded <= ALLOWED_IMPORTS[module], f"{module} imported {sorted(loaded)}"


# ---- adapter conformance (TensorFlow and MXNet) against NumPy ---------------------------------

ADAPTERS = [n for n in ("tensorflow", "mxnet") if n in INSTALLED_NAMES]
UNARY = ["abs", "sign", "sqrt", "square", "exp", "expm1", "log", "log1p", "tanh", "negative"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "logaddexp", "pow"]


def _adapter(name):
    b = require(name)
    x = b.asarray(np.ones(1))
    return b, backend_of(x).xp


def _scope(name):
    import contextlib

    if name == "mxnet":
        import mxnet as mx

        return mx.util.np_shape(True)
    return contextlib.nullcontext()


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("fn", UNARY)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adapter_unary(name, fn, dtype):
    b, xp = _adapter(name)
    a = np.array([0.25, 1.0, 3.5, 0.0, 2.0], dtype=dtype)
    with np.errstate(divide="ignore"):
        expected = getattr(np, fn)(a)  # log(0) = -inf, as every adapter must give too
    with _scope(name):
        got = b.to_numpy(getattr(xp, fn)(b.asarray(a)))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("fn", BINARY)
def test_adapter_binary_broadcasting_and_scalars(name, fn):
    b, xp = _adapter(name)
    a = np.array([[0.5, 1.0, 2.0], [3.0, 0.25, 1.5]])
    c = np.array([1.0, 2.0, 0.5])
    with _scope(name):
        got = b.to_numpy(getattr(xp, fn)(b.asarray(a), b.asarray(c)))
        expected = getattr(np, "power" if fn == "pow" else fn)(a, c)
        np.testing.assert_allclose(got, expected, rtol=1e-15)
        if fn in ("maximum", "minimum"):
            got = b.to_numpy(getattr(xp, fn)(b.asarray(a), 1.0))
            np.testing.assert_array_equal(got, getattr(np, fn)(a, 1.0))


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("fn", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_adapter_reductions(name, fn, axis, keepdims):
    b, xp = _adapter(name)
    a = np.arange(1.0, 7.0).reshape(2, 3)
    with _scope(name):
        got = b.to_numpy(getattr(xp, fn)(b.asarray(a), axis=axis, keepdims=keepdims))
    expected = getattr(np, fn)(a, axis=axis, keepdims=keepdims)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-15)


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_reductions_of_infinities_and_empty_arrays(name):
    b, xp = _adapter(name)
    with _scope(name):
        inf = b.to_numpy(xp.sum(b.asarray(np.array([np.inf, np.inf, 1.0]))))
        assert inf == np.inf  # mx.np.sum alone gives NaN here
        empty = b.asarray(np.zeros((0, 3)))
        assert b.to_numpy(xp.sum(empty)) == 0.0
        assert b.to_numpy(xp.mean(empty, axis=-1)).shape == (0,)
        assert math.isnan(b.to_numpy(xp.mean(empty)))


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_where_gradient_with_scalar_branches(name):
    b, xp = _adapter(name)
    a = np.array([0.3, -0.5, 2.0])

    def f(x):
        return xp.where(x < 1.0, x, 0.0) + xp.where(x < 0.0, 0.0, 2.0 * x)

    _, grad = b.value_and_grad(f, [a])
    np.testing.assert_array_equal(grad, [3.0, 1.0, 2.0])  # by hand, branch by branch


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_dtypes_and_promotion(name):
    b, xp = _adapter(name)
    f32, f64 = b.asarray(np.ones(2, np.float32)), b.asarray(np.ones(2, np.float64))
    assert xp.result_type(f32, f64) == xp.float64
    assert xp.isdtype(xp.float32, "real floating")
    assert not xp.isdtype(xp.int32, "real floating")
    assert xp.isdtype(xp.int64, "integral")
    with _scope(name):
        assert b.to_numpy(xp.astype(f32, xp.float64)).dtype == np.float64
        full = b.to_numpy(xp.full((), math.nan, dtype=xp.float32))
        assert full.shape == () and math.isnan(full)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_adapter_take_along_axis_and_its_gradient(name, axis):
    b, xp = _adapter(name)
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 4, 5))
    index_shape = list(a.shape)
    index_shape[axis] = 1
    index = rng.integers(0, a.shape[axis], size=index_shape)
    expected = np.take_along_axis(a, index, axis=axis)  # computed by NumPy
    with _scope(name):
        out = xp.take_along_axis(b.asarray(a), b.asarray(index), axis=axis)
        np.testing.assert_array_equal(b.to_numpy(out), expected)
        arange = b.to_numpy(xp.arange(4))
    np.testing.assert_array_equal(arange, np.arange(4))

    def picked_sum(x):
        return xp.sum(xp.take_along_axis(x, b.asarray(index), axis=axis))

    _, grad = b.value_and_grad(picked_sum, [a])
    counts = np.zeros_like(a)  # by hand: 1 at each picked position
    np.put_along_axis(counts, index, 1.0, axis=axis)
    np.testing.assert_array_equal(grad, counts)


@pytest.mark.parametrize("name", [n for n in INSTALLED_NAMES if n in ("torch", "jax", "tensorflow", "mxnet")])
def test_stop_gradient_blocks_the_gradient_and_keeps_the_value(name):
    b = require(name)
    a = np.array([0.5, -2.0, 3.0])

    def f(x):
        backend = backend_of(x)
        return backend.xp.sum(x * x + backend.stop_gradient(x * x))

    value, grad = b.value_and_grad(f, [a])
    assert float(value) == pytest.approx(2 * float(np.sum(a * a)), rel=1e-15)
    np.testing.assert_array_equal(grad, 2 * a)  # d/dx of x² only (by hand)


def test_values_known_is_false_under_tracing():
    jax = pytest.importorskip("jax") if "jax" in INSTALLED_NAMES else pytest.skip("no jax")
    seen = []

    def f(x):
        seen.append(backend_of(x).values_known(x))
        return x

    jax.jit(f)(jax.numpy.ones(2))
    f(jax.numpy.ones(2))
    assert seen == [False, True]
