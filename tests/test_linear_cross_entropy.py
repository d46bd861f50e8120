"""``polyloss.linear_cross_entropy`` and torch's linear cross-entropy mirror.

Where the expected numbers come from:

- the canonical function against ``polyloss.cross_entropy`` of the explicit logits
  ``hidden @ weight.T + bias`` (the unfused path, itself tested against every framework's native
  cross-entropy) on the same backend, values and gradients w.r.t. ``hidden``, ``weight``,
  ``bias`` and probability targets; and its value against NumPy float64;
- the mirror (``polyloss.torch.linear_cross_entropy``, ``LinearCrossEntropyLoss``) against the
  real ``torch.nn.functional.linear_cross_entropy`` / ``torch.nn.LinearCrossEntropyLoss``;
- memory: the arrays the backward pass keeps (torch's saved tensors) and XLA's compiled
  temporaries, never a timing. Timings and peak memory at full size are in the benchmark
  (``python -m polyloss.bench_linear``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _native import assert_close_scaled, to_numpy
from conftest import AUTOGRAD, INSTALLED, INSTALLED_NAMES, backend_params, require

import polyloss
from polyloss.core import linear as core

F, C = 5, 11  # C is not a multiple of the small class blocks used below
ROWS = {"row_chunk": 2}  # blocks of 2 rows (row blocks)
CLASSES = {"class_chunk": 3}  # blocks of 3 classes (class blocks)


# ---- inputs and the unfused reference -------------------------------------------------------

def _inputs(rng, *, lead=(7,), probs=False, dtype="float64", ignore=True, scale=1.0):
    hidden = rng.normal(size=(*lead, F)) * scale
    weight = rng.normal(size=(C, F))
    bias = rng.normal(size=(C,))
    if probs:
        target = rng.dirichlet(np.ones(C), size=lead).astype(dtype)
    else:
        target = rng.integers(0, C, size=lead)
        if ignore and target.size > 2:
            target.reshape(-1)[1] = -100
    return [hidden.astype(dtype), weight.astype(dtype), bias.astype(dtype), target]


def _logits(h, w, b):
    xp = polyloss.array_namespace(h)
    if len(h.shape) == 1:  # an unbatched row (TensorFlow's matmul wants matrices)
        z = xp.sum(w * h, axis=-1)
    else:
        z = xp.matmul(h, xp.permute_dims(w, (1, 0)))
    return z if b is None else z + b


def _fused(kw):
    def fn(h, w, b, t):
        return polyloss.linear_cross_entropy(h, w, t, bias=b, **kw)
    return fn


def _unfused(kw):
    kw = {k: v for k, v in kw.items() if k not in ("row_chunk", "class_chunk")}

    def fn(h, w, b, t):
        return polyloss.cross_entropy(_logits(h, w, b), t, **kw)
    return fn


def _value_and_grads(backend, fn, arrays, argnums):
    """``fn(*arrays)`` and the gradients of its sum w.r.t. ``arrays[i]`` for ``i`` in ``argnums``."""
    name = backend.name
    if name == "torch":
        import torch

        xs = [torch.from_numpy(np.array(a)) for a in arrays]
        for i in argnums:
            xs[i].requires_grad_(True)
        out = fn(*xs)
        grads = torch.autograd.grad(out.sum(), [xs[i] for i in argnums])
        return to_numpy(out), [to_numpy(g) for g in grads]
    if name == "jax":
        import jax
        import jax.numpy as jnp

        xs = [jnp.asarray(a) for a in arrays]

        def total(*diff):
            args = list(xs)
            for i, d in zip(argnums, diff, strict=True):
                args[i] = d
            out = fn(*args)
            return jnp.sum(out), out

        (_, out), grads = jax.value_and_grad(total, argnums=tuple(range(len(argnums))), has_aux=True)(
            *[xs[i] for i in argnums])
        return np.asarray(out), [np.asarray(g) for g in grads]
    if name == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            for i in argnums:
                tape.watch(xs[i])
            out = fn(*xs)
            total = tf.reduce_sum(out)
        grads = tape.gradient(total, [xs[i] for i in argnums])
        return out.numpy(), [g.numpy() for g in grads]
    if name == "mxnet":
        import mxnet as mx

        with mx.util.np_shape(True):
            xs = [mx.np.array(a, dtype=a.dtype) for a in arrays]
            for i in argnums:
                xs[i].attach_grad()
            with mx.autograd.record():
                out = fn(*xs)
                total = out.sum() if out.ndim else out
            total.backward()
            return out.asnumpy(), [xs[i].grad.asnumpy() for i in argnums]
    raise AssertionError(name)


def _close(actual, expected, dtype, *, n=F * C, scale=None, msg=""):
    """The suite's tolerance (1e-12 in float64, 8 ulps x log2(n) in float32), where an element
    may also be off by that relative amount of ``scale`` (the terms that cancel in it)."""
    e = np.asarray(expected)
    if scale is None:  # gradients and per-row losses: relative to the largest element
        finite = np.abs(e[np.isfinite(e)]) if e.size else e
        scale = float(finite.max()) if finite.size else 0.0
    assert_close_scaled(actual, expected, dtype=dtype, n=n, scale=scale, err_msg=msg,
                        check_dtype=False)


# ---- the canonical function = cross_entropy of the logits, values and gradients --------------

CONFIGS = {
    "index": ({"ignore_index": -100}, {}),
    "smooth_weighted": ({"ignore_index": -100, "label_smoothing": 0.2, "normalizer": "sum_of_weights",
                         "class_weight": "cw", "sample_weight": "sw"}, {}),
    "probs": ({"label_smoothing": 0.1, "class_weight": "cw"}, {"probs": True}),
    "none_3d": ({"ignore_index": -100, "reduction": "none", "label_smoothing": 0.1},
                {"lead": (2, 3)}),
    "row_blocks": ({"ignore_index": -100, "label_smoothing": 0.3, "reduction": "sum", **ROWS}, {}),
    "row_blocks_none": ({"ignore_index": -100, "reduction": "none", **ROWS}, {}),
    "class_blocks": ({"ignore_index": -100, "label_smoothing": 0.3, "class_weight": "cw",
                      "sample_weight": "sw", **CLASSES}, {}),
    "class_blocks_probs": ({"reduction": "none", "label_smoothing": 0.2, **CLASSES}, {"probs": True}),
}


def _config(name, rng, dtype, backend_name):
    kw, shape = CONFIGS[name]
    arrays = _inputs(rng, dtype=dtype, **shape)
    kw = dict(kw)
    extra = {"cw": rng.uniform(0.2, 2.0, size=C).astype(dtype),
             "sw": rng.uniform(0.1, 2.0, size=arrays[0].shape[:-1]).astype(dtype)}
    for key in ("class_weight", "sample_weight"):
        if key in kw:
            kw[key] = extra[kw[key]]
    return arrays, kw


def _on(backend_name, kw):
    """Array arguments of ``kw`` (class and sample weights) in ``backend_name``'s arrays."""
    from polyloss.parity.backends import BACKENDS

    return {k: BACKENDS[backend_name].asarray(v) if isinstance(v, np.ndarray) else v
            for k, v in kw.items()}


# torch runs every configuration in both dtypes; the other autograd backends (each new shape
# costs JAX and TensorFlow a compilation) one of each pass and target kind
OTHER_CONFIGS = [("smooth_weighted", "float64"), ("class_blocks", "float64"),
                 ("row_blocks_none", "float64"), ("class_blocks_probs", "float32")]


def _matrix():
    out = []
    for b in AUTOGRAD:
        combos = ([(c, d) for c in CONFIGS for d in ("float64", "float32")] if b.name == "torch"
                  else OTHER_CONFIGS)
        out += [pytest.param(b, c, d, id=f"{b.name}-{c}-{d}") for c, d in combos]
    return out


@pytest.mark.parametrize(("backend", "config", "dtype"), _matrix())
def test_equals_cross_entropy_of_the_logits(backend, config, dtype, rng):
    backend.setup()
    arrays, kw_np = _config(config, rng, dtype, backend.name)
    kw = _on(backend.name, kw_np)
    argnums = (0, 1, 2, 3) if arrays[3].dtype.kind == "f" else (0, 1, 2)
    value, grads = _value_and_grads(backend, _fused(kw), arrays, argnums)
    ref_value, ref_grads = _value_and_grads(backend, _unfused(kw), arrays, argnums)
    z = arrays[0] @ arrays[1].T + arrays[2]
    _close(value, ref_value, dtype, scale=float(np.abs(z).max()), msg=f"{config} value")
    for i, (g, r) in enumerate(zip(grads, ref_grads, strict=True)):
        _close(g, r, dtype, msg=f"{config} gradient {i}")
    # and the value against NumPy float64 (the oracle)
    as64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in kw_np.items()}
    oracle = _fused(as64)(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
    _close(value, oracle, dtype, scale=float(np.abs(z).max()), msg=f"{config} oracle")


NO_AUTOGRAD = [b for b in INSTALLED if not b.differentiable]


@pytest.mark.parametrize("config", ["smooth_weighted", "probs", "none_3d", "class_blocks"])
@pytest.mark.parametrize("backend", backend_params(NO_AUTOGRAD))
def test_forward_without_autograd(backend, config, rng):
    """NumPy, array-api-strict and Dask compute the forward pass (class blocks)."""
    backend.setup()
    arrays, kw = _config(config, rng, "float64", backend.name)
    xs = [backend.asarray(a) for a in arrays]
    kw = _on(backend.name, kw)
    value = backend.to_numpy(_fused(kw)(*xs))
    expected = backend.to_numpy(_unfused(kw)(*xs))
    _close(value, expected, "float64", scale=float(np.abs(arrays[0] @ arrays[1].T).max()) + 3)


def test_row_and_class_passes_agree(rng):
    """A reduction forms the gradients in the forward pass; ``reduction='none'`` recomputes them
    backward: the same numbers."""
    require("torch")
    import torch
    arrays, kw = _config("smooth_weighted", rng, "float64", "torch")
    kw.pop("sample_weight")
    h, w, b = (torch.tensor(a, requires_grad=True) for a in arrays[:3])
    y = torch.tensor(arrays[3])
    cw = torch.tensor(kw.pop("class_weight"))
    summed = polyloss.linear_cross_entropy(h, w, y, bias=b, class_weight=cw, **{**kw, "reduction": "sum"})
    grads = torch.autograd.grad(summed, (h, w, b))
    rows = polyloss.linear_cross_entropy(h, w, y, bias=b, class_weight=cw, **{**kw, "reduction": "none"})
    ref = torch.autograd.grad(rows.sum(), (h, w, b))
    _close(summed.detach(), rows.sum().detach(), "float64", scale=1.0)
    for g, r in zip(grads, ref, strict=True):
        _close(g, r, "float64")
    with torch.no_grad():  # no gradient wanted: the class-block forward only
        plain = polyloss.linear_cross_entropy(h, w, y, bias=b, class_weight=cw, **{**kw, "reduction": "sum"})
    _close(plain, summed.detach(), "float64", scale=1.0)


# ---- edge inputs ---------------------------------------------------------------------------

EDGES = {
    "empty": {"lead": (0,)},
    "batch1": {"lead": (1,)},
    "unbatched": {"lead": ()},
    "all_ignored": {},
    "huge_logits": {"scale": 3e3},
}


@pytest.mark.parametrize(("backend", "edge"), [
    pytest.param(b, e, id=f"{b.name}-{e}") for b in AUTOGRAD
    for e in (EDGES if b.name == "torch" else ("empty", "all_ignored", "huge_logits"))])
def test_edge_inputs(backend, edge, rng):
    backend.setup()
    shape = {k: v for k, v in EDGES[edge].items() if k != "scale"}
    arrays = _inputs(rng, ignore=False, scale=EDGES[edge].get("scale", 1.0), **shape)
    if edge == "all_ignored":
        arrays[3][:] = -100
    for kw in ({"ignore_index": -100, "if_all_ignored": "nan"},
               {"ignore_index": -100, "reduction": "sum", **ROWS},
               {"ignore_index": -100, "reduction": "none", **CLASSES}):
        if backend.name == "mxnet" and edge == "empty":
            # MXNet 1.9.1 cannot backpropagate through an empty batch (nor can the unfused
            # polyloss.cross_entropy there): values only, the reference's matmul under NumPy
            # shape semantics (an empty axis is "unknown" without them)
            import mxnet as mx

            with mx.util.np_shape(True):
                xs = [backend.asarray(a) for a in arrays]
                expected = backend.to_numpy(_unfused(kw)(*xs))
                _close(backend.to_numpy(_fused(kw)(*xs)), expected, "float64")
            continue
        value, grads = _value_and_grads(backend, _fused(kw), arrays, (0, 1, 2))
        ref_value, ref_grads = _value_and_grads(backend, _unfused(kw), arrays, (0, 1, 2))
        z = arrays[0] @ arrays[1].T
        _close(value, ref_value, "float64", scale=float(np.abs(z).max(initial=1.0)), msg=f"{edge} {kw}")
        for g, r in zip(grads, ref_grads, strict=True):
            assert np.isfinite(g).all(), f"{edge} {kw}: non-finite gradient"
            _close(g, r, "float64", msg=f"{edge} {kw} gradient")


def test_confident_rows_keep_their_precision():
    """A correct, confident row has a loss far below the ulp of its logits (here 8.6e-4 against
    logits of 25, whose float32 ulp is 1.9e-6): ``lse - z_y`` computed as ``(m + log S) - z_y``
    would lose it to rounding; the blocked forms keep ``m - z_y`` apart from ``log S`` and get
    float32 as close to the float64 oracle as the unfused ``log_softmax`` does."""
    require("torch")
    import torch

    rng = np.random.default_rng(3)
    hidden = 3.0 * np.eye(4, F) + 1e-3 * rng.normal(size=(4, F))
    weight = np.zeros((C, F))
    labels = np.arange(4)
    weight[labels] = 25.0 / 3.0 * np.eye(4, F)  # z_y ≈ 25
    weight[4:, :4] = 16.0 / 3.0  # 7 classes at z ≈ 16, the other label rows at 0
    ref = polyloss.cross_entropy(hidden @ weight.T, labels, reduction="none")
    assert 5e-4 < ref.min() and ref.max() < 2e-3
    h32, w32 = (torch.tensor(a, dtype=torch.float32) for a in (hidden, weight))
    unfused = torch.nn.functional.cross_entropy(h32 @ w32.T, torch.tensor(labels), reduction="none")
    unfused_err = float(np.max(np.abs(to_numpy(unfused) - ref) / ref))
    for kw in ({}, ROWS, CLASSES):
        for reduction in ("none", "sum"):
            got = polyloss.linear_cross_entropy(h32.clone().requires_grad_(), w32, torch.tensor(labels),
                                                reduction=reduction, **kw)
            expected = ref if reduction == "none" else ref.sum()
            err = float(np.max(np.abs(to_numpy(got) - expected) / expected))
            assert err <= max(2 * unfused_err, 1e-5), (kw, reduction, err, unfused_err)


# ---- compiled --------------------------------------------------------------------------------

def _eager_and_compiled(name, rng):
    arrays, _ = _config("smooth_weighted", rng, "float64", name)
    kw = {"ignore_index": -100, "label_smoothing": 0.2}
    return arrays, kw


def test_jax_jit(rng):
    require("jax")
    import jax
    import jax.numpy as jnp

    arrays, kw = _eager_and_compiled("jax", rng)
    xs = [jnp.asarray(a) for a in arrays]
    for reduction, blocks in (("mean", ROWS), ("none", ROWS), ("mean", CLASSES)):
        def total(h, w, b, t, reduction=reduction, blocks=blocks):
            return jnp.sum(polyloss.linear_cross_entropy(h, w, t, bias=b, reduction=reduction,
                                                         **kw, **blocks))
        eager = jax.value_and_grad(total, argnums=(0, 1, 2))(*xs)
        jitted = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2)))(*xs)
        for a, b in zip(jax.tree_util.tree_leaves(jitted), jax.tree_util.tree_leaves(eager), strict=True):
            _close(np.asarray(a), np.asarray(b), "float64")


def test_tf_function(rng):
    require("tensorflow")
    import tensorflow as tf

    arrays, kw = _eager_and_compiled("tensorflow", rng)
    xs = [tf.constant(a) for a in arrays]

    def step(h, w, b, t):
        with tf.GradientTape() as tape:
            tape.watch([h, w, b])
            loss = polyloss.linear_cross_entropy(h, w, t, bias=b, **kw, **ROWS)
        return [loss, *tape.gradient(loss, [h, w, b])]

    eager = step(*xs)
    for a, b in zip(tf.function(step)(*xs), eager, strict=True):
        _close(a.numpy(), b.numpy(), "float64")
    # a symbolic batch dimension: class blocks (of the default size: one here)
    spec = [tf.TensorSpec([None, F], tf.float64), tf.TensorSpec([C, F], tf.float64),
            tf.TensorSpec([C], tf.float64), tf.TensorSpec([None], tf.int64)]
    for a, b in zip(tf.function(step, input_signature=spec)(*xs), eager, strict=True):
        _close(a.numpy(), b.numpy(), "float64")


@pytest.mark.compiled
def test_torch_compile_fullgraph(rng):
    require("torch")
    import torch
    arrays, kw = _eager_and_compiled("torch", rng)

    def step(h, w, b, t):
        return polyloss.linear_cross_entropy(h, w, t, bias=b, **kw, **ROWS)

    def run(fn):
        h, w, b = (torch.tensor(a, requires_grad=True) for a in arrays[:3])
        loss = fn(h, w, b, torch.tensor(arrays[3]))
        loss.backward()
        return [loss.detach(), h.grad, w.grad, b.grad]

    eager = run(step)
    for a, b in zip(run(torch.compile(step, fullgraph=True, backend="aot_eager")), eager, strict=True):
        _close(a, b, "float64")


# ---- memory: what the backward pass keeps ------------------------------------------------------

def _saved_elements(fn):
    """Elements of every tensor autograd saves for backward while ``fn()`` runs."""
    import torch

    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(sizes)


def test_backward_keeps_no_logits():
    """No block of logits is kept for backward: with a reduction the formed gradients
    (N·F + C·F), without one (or with class blocks) the inputs and 2 numbers per row."""
    require("torch")
    import torch
    n, f, c = 64, 8, 512
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, f, generator=g, requires_grad=True)
    w = torch.randn(c, f, generator=g, requires_grad=True)
    y = torch.randint(0, c, (n,), generator=g)
    mean = _saved_elements(lambda: polyloss.linear_cross_entropy(h, w, y, row_chunk=16))
    assert mean <= n * f + c * f + 4 * n
    rows = _saved_elements(lambda: polyloss.linear_cross_entropy(h, w, y, reduction="none",
                                                                 row_chunk=16))
    assert rows <= n * f + c * f + 6 * n
    classes = _saved_elements(lambda: polyloss.linear_cross_entropy(h, w, y, class_chunk=64))
    assert classes <= n * f + c * f + 6 * n
    # what the count is when the logits are kept: the unfused path saves them (and more)
    assert _saved_elements(lambda: torch.nn.functional.cross_entropy(h @ w.T, y)) >= n * c


def test_xla_temporaries_stay_below_the_logits():
    """Under ``jax.jit`` the compiled forward + backward needs far less scratch memory than the
    logits (XLA's own memory analysis of the compiled program; optax's unfused loss for scale)."""
    require("jax")
    import jax
    import jax.numpy as jnp

    n, f, c = 512, 16, 4096
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(n, f)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(c, f)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, c, size=n))
    logits_bytes = n * c * 4

    def temp(fn):
        compiled = jax.jit(jax.value_and_grad(fn, argnums=(0, 1))).lower(h, w).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    assert temp(lambda h, w: polyloss.cross_entropy(h @ w.T, y)) >= logits_bytes
    for kw in ({"row_chunk": 32}, {"class_chunk": 256}, {"row_chunk": 32, "reduction": "sum"}):
        assert temp(lambda h, w, kw=kw: polyloss.linear_cross_entropy(h, w, y, **kw)) <= logits_bytes / 4


# ---- dtypes and errors -------------------------------------------------------------------------

def test_dtypes(rng):
    """Mixed float32/float64 inputs compute and answer in float64; float16 computes in float32
    and answers in float16 (as every polyloss loss)."""
    h, w, b, y = _inputs(rng, ignore=False)
    out = polyloss.linear_cross_entropy(h.astype(np.float32), w, y)
    assert out.dtype == np.float64
    _close(out, polyloss.linear_cross_entropy(h.astype(np.float32).astype(np.float64), w, y), "float64",
           scale=1.0)
    half = polyloss.linear_cross_entropy(h.astype(np.float16), w.astype(np.float16), y)
    assert half.dtype == np.float16
    ref = polyloss.linear_cross_entropy(h.astype(np.float16).astype(np.float32),
                                        w.astype(np.float16).astype(np.float32), y)
    assert half == ref.astype(np.float16)


@pytest.mark.parametrize(("args", "kw", "error", "match"), [
    ((np.zeros((4, 3)), np.zeros((5, 2)), np.zeros(4, dtype=np.int64)), {}, ValueError, "3 features"),
    ((np.zeros((4, 3)), np.zeros(5), np.zeros(4, dtype=np.int64)), {}, ValueError, "weight must have shape"),
    ((np.zeros(()), np.zeros((5, 3)), np.zeros((), dtype=np.int64)), {}, ValueError, "feature axis"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros(3, dtype=np.int64)), {}, ValueError, "expected \\(4,\\)"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros((4, 4))), {}, ValueError, "probabilities of shape"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros(4, dtype=np.int64)), {"bias": np.zeros(4)},
     ValueError, "bias must have shape \\(5,\\)"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros((4, 5))), {"ignore_index": 0}, ValueError,
     "ignore_index applies"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros(4, dtype=np.int64)), {"class_chunk": 0},
     ValueError, "class_chunk must be a positive int"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros(4, dtype=np.int64)), {"row_chunk": 2.0},
     ValueError, "row_chunk must be a positive int"),
    ((np.zeros((4, 3)), np.zeros((5, 3), dtype=np.int64), np.zeros(4, dtype=np.int64)), {},
     TypeError, "weight must be a floating-point array"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.full(4, 5)), {}, ValueError, "outside \\[0, 5\\)"),
    ((np.zeros((4, 3)), np.zeros((5, 3)), np.zeros(4, dtype=np.int64)), {"reduction": "avg"},
     ValueError, "reduction"),
])
def test_errors(args, kw, error, match):
    with pytest.raises(error, match=match):
        polyloss.linear_cross_entropy(*args, **kw)


def test_default_chunk_sizes():
    """The defaults: blocks of whole rows holding 2**24 logits; class blocks of 1024 classes
    (all rows) for a symbolic batch or when ``class_chunk`` alone is given."""
    assert core.chunk_sizes(8192, 32768, None, None) == (512, None)
    assert core.chunk_sizes(10, 11, None, None) == (10, None)
    assert core.chunk_sizes(None, 32768, None, None) == (None, 1024)
    assert core.chunk_sizes(100, 50, None, 3) == (None, 3)
    assert core.chunk_sizes(100, 50, 7, 3) == (7, None)
    # per framework (measured, see polyloss.backends.autodiff.blocking): JAX's blocks are twice
    # as large and accumulate dW whole
    from polyloss.backends.autodiff import blocking

    assert blocking("torch") == (2**24, 1024)
    assert blocking("jax") == (2**25, None)
    assert core.chunk_sizes(8192, 32768, None, None, 2**25) == (1024, None)


# ---- the torch mirror against torch 2.13's own linear cross-entropy ---------------------------

def _torch_cases(rng):
    """``(label, args, kwargs)`` in NumPy float64; args are input, linear_weight, target."""
    n = 6
    x, w, b = rng.normal(size=(n, F)), rng.normal(size=(C, F)), rng.normal(size=(C,))
    y = rng.integers(0, C, size=n)
    y_ign = y.copy()
    y_ign[::3] = -100
    cw = rng.uniform(0.2, 2.0, size=C)
    t = rng.dirichlet(np.ones(C), size=n)
    w3, b3, y3 = rng.normal(size=(C, 2, F)), rng.normal(size=(C, 2)), rng.integers(0, C, size=(n, 2))
    return [
        ("default", (x, w, y), {}),
        ("bias_weight_smoothing", (x, w, y_ign), {"linear_bias": b, "weight": cw, "label_smoothing": 0.3}),
        ("none", (x, w, y_ign), {"reduction": "none", "linear_bias": b}),
        ("sum_ignore_3", (x, w, y), {"reduction": "sum", "ignore_index": int(y[0])}),
        ("probs", (x, w, t), {"weight": cw, "label_smoothing": 0.1, "linear_bias": b}),
        ("probs_none", (x, w, t), {"reduction": "none"}),
        ("unbatched", (x[0], w, y[0]), {"linear_bias": b}),
        ("unbatched_probs", (x[0], w, t[0]), {"reduction": "none"}),
        ("all_ignored", (x, w, np.full(n, -100)), {}),
        ("empty", (x[:0], w, y[:0]), {"linear_bias": b}),
        ("empty_sum", (x[:0], w, y[:0]), {"reduction": "sum"}),
        ("k_dim", (x, w3, y3), {"linear_bias": b3, "weight": cw, "label_smoothing": 0.2}),
        ("options", (x, w, y_ign), {"options": "chunked", "linear_bias": b}),
    ]


def _torch_run(fn, args, kw, dtype):
    import torch

    xs = [torch.tensor(a, dtype=getattr(torch, dtype) if a.dtype.kind == "f" else torch.int64)
          for a in args]
    kw = dict(kw)
    if kw.get("options") == "chunked":
        kw["options"] = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4)
    for key in ("linear_bias", "weight"):
        if key in kw:
            kw[key] = torch.tensor(kw[key], dtype=getattr(torch, dtype))
    diff = [xs[0], xs[1]] + ([kw["linear_bias"]] if "linear_bias" in kw else [])
    for d in diff:
        d.requires_grad_(True)
    out = fn(*xs, **kw)
    grads = torch.autograd.grad(out.sum(), diff) if out.numel() else [torch.zeros_like(d) for d in diff]
    return to_numpy(out), [to_numpy(g) for g in grads]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_mirror_matches_torch(dtype):
    require("torch")
    import torch

    import polyloss.torch as pt

    for label, args, kw in _torch_cases(np.random.default_rng(7)):
        value, grads = _torch_run(pt.linear_cross_entropy, args, kw, dtype)
        ref, ref_grads = _torch_run(torch.nn.functional.linear_cross_entropy, args, kw, dtype)
        z = np.abs(np.tensordot(args[0], args[1], axes=([-1], [-1]))).max(initial=1.0)
        _close(value, ref, dtype, scale=float(z), msg=label)
        assert value.dtype == ref.dtype and value.shape == ref.shape, label
        for g, r in zip(grads, ref_grads, strict=True):
            _close(g, r, dtype, msg=f"{label} gradient")


def test_torch_module_matches_torch():
    require("torch")
    import torch

    import polyloss.torch as pt

    rng = np.random.default_rng(11)
    x = torch.tensor(rng.normal(size=(6, F)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, C, size=6))
    y[0] = -100
    cw = torch.tensor(rng.uniform(0.2, 2.0, size=C), dtype=torch.float32)
    for kw in ({}, {"bias": True, "weight": cw, "label_smoothing": 0.2, "reduction": "sum"},
               {"bias": True, "out_features": (2,), "reduction": "none"}):
        torch.manual_seed(0)
        native = torch.nn.LinearCrossEntropyLoss(F, C, **kw)
        torch.manual_seed(0)
        mirror = pt.LinearCrossEntropyLoss(F, C, **kw)
        assert isinstance(mirror, torch.nn.Module)
        assert repr(mirror) == repr(native)
        native_state, mirror_state = native.state_dict(), mirror.state_dict()
        assert list(mirror_state) == list(native_state)
        for key in native_state:  # the same initialisation from the same random stream
            assert torch.equal(mirror_state[key], native_state[key]), key
        target = y if "out_features" not in kw else torch.stack([y.clamp(min=0)] * 2, dim=1)
        outs = []
        for module in (native, mirror):
            module.zero_grad()
            out = module(x, target)
            out.sum().backward()
            outs.append([out.detach(), *(p.grad for p in module.parameters())])
        for a, b in zip(outs[1], outs[0], strict=True):
            _close(a, b, "float32", msg=str(kw))
    assert pt.LinearCrossEntropyLoss(F, C).double().linear.weight.dtype == torch.float64


@pytest.mark.parametrize("kind", [n for n in ("numpy", "jax", "tensorflow", "mxnet",
                                              "array_api_strict", "dask") if n in INSTALLED_NAMES])
def test_torch_mirror_on_other_arrays(kind):
    """The mirror on any framework's arrays gives torch's numbers (the module uses its torch
    parameters' values)."""
    require("torch")
    import torch

    import polyloss.torch as pt
    from polyloss.parity.backends import BACKENDS

    backend = BACKENDS[kind]
    backend.setup()
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(6, F)), rng.normal(size=(C, F)), rng.normal(size=(C,))
    y = rng.integers(0, C, size=6)
    y[2] = -100
    kw = {"label_smoothing": 0.1}
    ref = torch.nn.functional.linear_cross_entropy(
        *(torch.tensor(a) for a in (x, w, y)), linear_bias=torch.tensor(b), **kw)
    got = pt.linear_cross_entropy(*(backend.asarray(a) for a in (x, w, y)),
                                  linear_bias=backend.asarray(b), **kw)
    assert _root(got) == _root(backend.asarray(x)), (type(got), kind)
    _close(backend.to_numpy(got), to_numpy(ref), "float64", scale=10.0)
    torch.manual_seed(0)
    module = pt.LinearCrossEntropyLoss(F, C, bias=True, dtype=torch.float64)
    expected = module(torch.tensor(x), torch.tensor(y))
    _close(backend.to_numpy(module(backend.asarray(x), backend.asarray(y))), to_numpy(expected),
           "float64", scale=10.0)


def _root(x):
    return type(x).__module__.partition(".")[0]


def test_torch_mirror_errors():
    require("torch")
    import torch

    import polyloss.torch as pt

    x, w = torch.zeros(4, 3), torch.zeros(5, 3)
    y, t = torch.zeros(4, dtype=torch.int64), torch.zeros(4, 5)
    cases = [
        ((x[None], w, y), {}, "dimensionality 1 or 2, got 3"),
        ((x, w[0], y), {}, "linear_weight with dimensionality at least 2"),
        ((x, w[:, :2], y), {}, "got 3 and 2"),
        ((x, w, y), {"linear_bias": torch.zeros(3)}, "linear_bias shape \\(5,\\)"),
        ((x, w, t), {"ignore_index": -100}, "ignore_index cannot be specified"),
        ((x, w, y), {"label_smoothing": 1.5}, "label_smoothing must be between"),
        ((x[0], torch.zeros(5, 2, 3), y), {}, "requires batched input"),
        ((x, w, y + 5), {}, "outside \\[0, 5\\)"),
    ]
    for args, kw, match in cases:
        with pytest.raises(ValueError, match=match):
            pt.linear_cross_entropy(*args, **kw)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        pt.linear_cross_entropy(x, w, y, reduction="avg")
    with pytest.raises(ValueError, match="expected weight shape to be \\(5,\\)"):
        pt.LinearCrossEntropyLoss(3, 5, weight=torch.ones(4))
    with pytest.raises(ValueError, match="label_smoothing to be in range"):
        pt.LinearCrossEntropyLoss(3, 5, label_smoothing=-0.1)


def test_all_ignored_mean_is_nan_and_zero_by_choice(rng):
    """torch's 0/0 (NaN) through the mirror; the canonical default is 0 (as cross_entropy)."""
    h, w, b, y = _inputs(rng, ignore=False)
    y[:] = -100
    assert polyloss.linear_cross_entropy(h, w, y, ignore_index=-100) == 0.0
    assert math.isnan(polyloss.linear_cross_entropy(h, w, y, ignore_index=-100, if_all_ignored="nan"))
