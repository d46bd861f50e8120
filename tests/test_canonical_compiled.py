"""The canonical losses under the frameworks' compilers: ``jax.jit``, ``tf.function`` (also
with ``jit_compile=True``) and ``torch.compile(fullgraph=True)``, equal to eager (and to the
NumPy float64 oracle); plus ``jax.grad`` under ``jit``, ``jax.vmap``, ``tf.Variable`` inputs
and symbolic tensors with an unknown batch dimension inside ``tf.function``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require
from test_canonical_common import (
    SPEC,
    SPECS,
    assert_close,
    hand_grad,
    make_inputs,
    make_weight,
    oracle,
    spec_params,
    tolerance,
)

import polyloss

pytestmark = pytest.mark.compiled

SHAPE = (6, 4)
# what each compiled function returns, in order: (reduction, weighted, normalizer)
OUTPUTS = [
    ("none", False, "count"), ("sum", False, "count"), ("mean", False, "count"),
    ("none", True, "count"), ("sum", True, "count"), ("mean", True, "count"),
    ("mean", True, "sum_of_weights"),
]


def all_reductions(spec):
    """One function computing every reduction of ``spec`` (one compile per loss)."""
    def fn(p, t, w):
        return tuple(
            spec.call(p, t, reduction=r, normalizer=n, **({"sample_weight": w} if wtd else {}))
            for r, wtd, n in OUTPUTS
        )

    return fn


def _inputs(spec, dtype):
    p, t = make_inputs(spec, SHAPE, dtype, seed=31)
    w = make_weight("per_sample", SHAPE, dtype)
    return p, t, w


def check_against_eager_and_oracle(spec, dtype, compiled_out, eager_out, inputs, where):
    p, t, w = inputs
    assert len(compiled_out) == len(OUTPUTS)
    for got, eager, (r, wtd, n) in zip(compiled_out, eager_out, OUTPUTS, strict=True):
        ww = w if wtd else None
        tol = tolerance(spec, dtype, p, t, r, ww, n)
        what = f"{spec.name} {where} {dtype} {r} weighted={wtd} {n}"
        assert got.dtype == np.dtype(dtype), what
        assert got.shape == (SHAPE if r == "none" else ()), what
        assert_close(got, eager, tol, what + " vs eager")
        assert_close(got, oracle(spec, p, t, r, ww, n), tol, what + " vs oracle")


# ---- jax.jit -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", spec_params())
def test_jax_jit_equals_eager(spec, dtype):
    require("jax")
    import jax
    import jax.numpy as jnp

    inputs = _inputs(spec, dtype)
    args = [jnp.asarray(a) for a in inputs]
    fn = all_reductions(spec)
    compiled = [np.asarray(x) for x in jax.jit(fn)(*args)]
    eager = [np.asarray(x) for x in fn(*args)]
    check_against_eager_and_oracle(spec, dtype, compiled, eager, inputs, "jax.jit")


@pytest.mark.parametrize("spec", spec_params())
def test_jax_grad_under_jit(spec):
    require("jax")
    import jax
    import jax.numpy as jnp

    p, t, w = _inputs(spec, "float64")
    fn = lambda a, b, c: spec.call(a, b, sample_weight=c, normalizer="sum_of_weights")  # noqa: E731
    g = jax.jit(jax.grad(fn))(jnp.asarray(p), jnp.asarray(t), jnp.asarray(w))
    eager = jax.grad(fn)(jnp.asarray(p), jnp.asarray(t), jnp.asarray(w))
    want = hand_grad(spec, p, t, "mean", w, "sum_of_weights")
    tol = 1e-12 * np.abs(want) + 1e-12 * np.max(np.abs(want))
    assert_close(np.asarray(g), want, tol, f"jit(grad({spec.name}))")
    assert_close(np.asarray(g), np.asarray(eager), tol, "jit(grad) vs grad")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("spec", spec_params([SPEC[n] for n in
                                              ("mse", "rmse", "huber", "log_cosh", "quantile_q0.3")]))
def test_jax_vmap_over_a_batch_of_losses(spec, reduction):
    # vmap over a leading axis of 5 independent (4, 3) problems == 5 separate calls
    require("jax")
    import jax
    import jax.numpy as jnp

    p, t = make_inputs(spec, (5, 4, 3), "float64", seed=41)
    w = make_weight("per_sample", (5, 4), "float64")
    fn = lambda a, b, c: spec.call(a, b, reduction=reduction, sample_weight=c)  # noqa: E731
    got = np.asarray(jax.vmap(fn)(jnp.asarray(p), jnp.asarray(t), jnp.asarray(w)))
    got_jit = np.asarray(jax.jit(jax.vmap(fn))(jnp.asarray(p), jnp.asarray(t), jnp.asarray(w)))
    want = np.stack([oracle(spec, p[i], t[i], reduction, w[i]) for i in range(5)])
    tol = 1e-12 * np.abs(want)
    assert_close(got, want, tol, "vmap")
    assert_close(got_jit, want, tol, "jit(vmap)")


# ---- tf.function ------------------------------------------------------------------------------------

@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", spec_params())
def test_tf_function_equals_eager(spec, dtype, jit_compile):
    require("tensorflow")
    import tensorflow as tf

    inputs = _inputs(spec, dtype)
    args = [tf.constant(a) for a in inputs]
    fn = all_reductions(spec)
    compiled = [x.numpy() for x in tf.function(fn, jit_compile=jit_compile)(*args)]
    eager = [x.numpy() for x in fn(*args)]
    check_against_eager_and_oracle(spec, dtype, compiled, eager, inputs,
                                   f"tf.function(jit_compile={jit_compile})")


@pytest.mark.parametrize("spec", spec_params())
def test_tf_variable_inputs(spec):
    require("tensorflow")
    import tensorflow as tf

    p, t, w = _inputs(spec, "float64")
    pv, tv, wv = tf.Variable(p), tf.Variable(t), tf.Variable(w)
    for r, wtd, n in OUTPUTS:
        ww = w if wtd else None
        kw = {"sample_weight": wv} if wtd else {}
        out = spec.call(pv, tv, reduction=r, normalizer=n, **kw)
        assert isinstance(out, tf.Tensor)
        assert_close(out.numpy(), oracle(spec, p, t, r, ww, n),
                     tolerance(spec, "float64", p, t, r, ww, n), f"{spec.name} tf.Variable {r}")
    # and the gradient flows to the variable
    with tf.GradientTape() as tape:
        loss = spec.call(pv, tv)
    g = tape.gradient(loss, pv)
    want = hand_grad(spec, p, t)
    assert_close(g.numpy(), want, 1e-12 * np.abs(want) + 1e-12 * np.max(np.abs(want)),
                 "tf.Variable gradient")


def _symbolic_case(spec_name, reduction, wshape, normalizer, batch):
    import tensorflow as tf

    spec = SPEC[spec_name]
    d = 3
    p, t = make_inputs(spec, (batch, d), "float64", seed=51)
    sig = [tf.TensorSpec([None, d], tf.float64)] * 2
    w = None
    if wshape is not None:
        w = np.random.default_rng(52).uniform(0.5, 2.0, wshape(batch, d))
        sig.append(tf.TensorSpec([None if s == batch else s for s in w.shape], tf.float64))

    def fn(a, b, *c):
        kw = {"sample_weight": c[0]} if c else {}
        return spec.call(a, b, reduction=reduction, normalizer=normalizer, **kw)

    f = tf.function(fn, input_signature=sig)
    args = [tf.constant(p), tf.constant(t)] + ([tf.constant(w)] if w is not None else [])
    got = f(*args).numpy()
    want = oracle(spec, p, t, reduction, w, normalizer)
    assert got.shape == want.shape
    assert_close(got, want, tolerance(spec, "float64", p, t, reduction, w, normalizer),
                 f"{spec_name} symbolic batch {batch} {reduction} {normalizer}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("spec_name", ["mse", "rmse", "huber", "log_cosh", "quantile_q0.3"])
def test_tf_function_unknown_batch_dimension(spec_name, reduction):
    # one trace with input_signature [None, 3], called with batches of 5, 1 and 0
    require("tensorflow")
    for batch in (5, 1, 0):
        _symbolic_case(spec_name, reduction, None, "count", batch)


@pytest.mark.parametrize(("wname", "normalizer", "reduction"), [
    pytest.param("full", "count", "mean"),
    pytest.param("full", "count", "sum"),
    pytest.param("full", "count", "none"),
    pytest.param("broadcast", "count", "mean"),
    pytest.param("full", "sum_of_weights", "mean"),
    pytest.param("broadcast", "sum_of_weights", "mean"),
    pytest.param("per_sample", "count", "mean"),
    pytest.param("per_sample", "count", "sum"),
    pytest.param("per_sample", "count", "none"),
])
def test_tf_function_unknown_batch_dimension_weighted(wname, normalizer, reduction):
    require("tensorflow")
    wshape = {"full": lambda n, d: (n, d), "per_sample": lambda n, d: (n,),
              "broadcast": lambda n, d: (1, d)}[wname]
    _symbolic_case("mse", reduction, wshape, normalizer, 5)


# ---- torch.compile -----------------------------------------------------------------------------------

def _torch_compiled(fn, backend):
    import torch

    torch._dynamo.reset()  # one fresh compile per test (no recompile-limit carry-over)
    return torch.compile(fn, fullgraph=True, backend=backend)


def _torch_compile_specs():
    return [pytest.param(s, id=s.name) for s in SPECS]


@pytest.mark.parametrize("spec", _torch_compile_specs())
def test_torch_compile_aot_eager_equals_eager(spec):
    require("torch")
    import torch

    # float32 for a few (each dtype is one more compile)
    dtypes = ("float64", "float32") if spec.name in ("mse", "huber", "log_cosh") else ("float64",)
    for dtype in dtypes:
        inputs = _inputs(spec, dtype)
        args = [torch.from_numpy(a.copy()) for a in inputs]
        fn = all_reductions(spec)
        compiled = [x.numpy() for x in _torch_compiled(fn, "aot_eager")(*args)]
        eager = [x.numpy() for x in fn(*args)]
        check_against_eager_and_oracle(spec, dtype, compiled, eager, inputs,
                                       "torch.compile(aot_eager)")


@pytest.mark.parametrize("spec", spec_params([SPEC[n] for n in ("mse", "huber", "log_cosh")]))
def test_torch_compile_backward(spec):
    require("torch")
    import torch

    p, t, w = _inputs(spec, "float64")
    pt = torch.from_numpy(p.copy()).requires_grad_(True)
    fn = _torch_compiled(lambda a, b: spec.call(a, b), "aot_eager")
    fn(pt, torch.from_numpy(t)).backward()
    want = hand_grad(spec, p, t)
    assert_close(pt.grad.numpy(), want, 1e-12 * np.abs(want) + 1e-15, "compiled backward")


def test_torch_compile_inductor_mse():
    # the default (inductor) backend, once: it is slow to compile
    require("torch")
    import torch

    p, t = make_inputs(SPEC["mse"], SHAPE, "float64", seed=61)
    fn = _torch_compiled(lambda a, b: polyloss.mse(a, b), "inductor")
    got = fn(torch.from_numpy(p), torch.from_numpy(t)).numpy()
    assert_close(got, oracle(SPEC["mse"], p, t), 1e-12 * np.mean((p - t) ** 2), "inductor mse")
    assert_close(got, np.mean((p - t) ** 2), 1e-12 * np.mean((p - t) ** 2), "by hand")
