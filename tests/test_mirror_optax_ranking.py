"""Sparsemax, Fenchel–Young, ranking and contrastive losses: the optax mirrors against optax
0.2.8, and the canonical ``polyloss.ntxent`` / ``polyloss.contrastive`` against NumPy float64
oracles written here from their formulas.

- ``polyloss.optax``: ``sparsemax_loss``, ``multiclass_sparsemax_loss``,
  ``make_fenchel_young_loss``, ``ranking_softmax_loss`` and ``ntxent``, values and gradients
  against the real optax (64-bit JAX, as the parity backends set it up), on random inputs and
  the edges: ties, all-equal scores, a sparsemax support of size 1, labels all in one class
  and all singletons (ntxent), lists with no valid item and ``where`` masks (ranking); then on
  every installed array type, with gradients on every autograd backend, and under ``jax.jit``.
- canonical ``polyloss.ntxent`` and ``polyloss.contrastive`` against the oracles below, every
  reduction and normaliser, with gradients; ``polyloss.ntxent`` equals ``optax.ntxent`` where
  the definitions coincide (``reduction="mean"``, no weights, non-tiny vectors).

Every expected mirror value and gradient comes from optax run in the test on the same NumPy
bits. Tolerances: ``_native.rtol_for`` (float64 1e-12, float32 ``8·eps·log2(n)``), where an
element may also differ by that relative tolerance times the magnitude of the terms that
cancel in it (``scale``), never a blanket absolute tolerance.

Deliberate differences checked as such: optax's gradient w.r.t. ``weights`` is NaN at masked
items, the mirror's is 0; optax returns float64 for float32 scores in
``multiclass_sparsemax_loss`` under ``jax_enable_x64`` (and cannot differentiate it: its
custom JVP rejects the dtype), the mirror keeps float32.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from _native import (
    assert_close_scaled as check,
)
from _native import (
    kind_params,
    natives,
    needs,
    run_on,
)
from conftest import AUTOGRAD, INSTALLED_NAMES

import polyloss
import polyloss.optax as po

pytestmark = [
    pytest.mark.native,
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]


torch, jax, optax = natives("torch", "jax", "optax")
jnp = jax.numpy if jax is not None else None

needs_optax, needs_jax = needs("optax"), needs("jax")
DTYPES = ["float32", "float64"]
GRAD_BACKENDS = [pytest.param(b, id=b.name) for b in AUTOGRAD if b.name != "jax"]


def optax_vg(name, arrays, grad=True, argnum=0, **kw):
    """optax's ``(value, d Σvalue / d arrays[argnum])`` on JAX arrays of the same bits (eager)."""
    fn = getattr(optax.losses, name)
    xs = [jnp.asarray(a) for a in arrays]
    kw = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}

    def total(x, others):
        args = list(others)
        args.insert(argnum, x)
        out = fn(*args, **kw)
        return jnp.sum(out), out

    # losses with many operations: one jit compilation is cheaper than eager per-op compiles
    run = jax.jit if name in _JIT_NATIVE else (lambda f: f)
    others = xs[:argnum] + xs[argnum + 1:]
    if not grad:
        return np.asarray(run(total)(xs[argnum], others)[1]), None
    (_, out), g = run(jax.value_and_grad(total, has_aux=True))(xs[argnum], others)
    return np.asarray(out), np.asarray(g)


_JIT_NATIVE = ("ntxent", "multiclass_sparsemax_loss")


def mirror_vg(name, arrays, grad=True, argnum=0, **kw):
    """The mirror's value and gradient on JAX arrays (eagerly)."""
    fn = getattr(po, name)
    xs = [jnp.asarray(a) for a in arrays]
    kw = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}

    def total(x):
        args = list(xs)
        args[argnum] = x
        out = fn(*args, **kw)
        return jnp.sum(out), out

    (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[argnum])
    assert isinstance(out, jax.Array)
    return np.asarray(out), np.asarray(g)


# ---- inputs -------------------------------------------------------------------------------

N, C = 6, 5


def scores(case, dtype, rng):
    """``(N, C)`` scores: random, ties (multiples of ½), all-equal rows, and rows whose largest
    score leads by more than 1 (a sparsemax support of size 1)."""
    s = 2.0 * rng.normal(size=(N, C))
    if case == "ties":
        s = np.round(s * 2) / 2
        s[0] = (1.0, 1.0, 0.5, 0.5, -1.0)
    elif case == "all_equal":
        s[:] = 3.7
    elif case == "support1":
        s = rng.normal(size=(N, C))
        s[np.arange(N), np.arange(N) % C] += 10.0
    return s.astype(dtype)


def class_labels(rng, case=None):
    y = rng.integers(0, C, size=N)
    if case == "support1":  # right in even rows (loss exactly 0), wrong in odd rows
        y = np.arange(N) % C
        y[1::2] = (y[1::2] + 1) % C
    return y.astype(np.int64)


def msp_scales(s, y):
    """``Σ|p·(s - s_y)| + ½`` per row (from the float64 sparsemax of the same bits)."""
    s = s.astype(np.float64)
    p = np_sparsemax(s)
    sy = np.take_along_axis(s, y[:, None], axis=1)
    return (p * np.abs(s - sy)).sum(-1) + 0.5


def np_sparsemax(s):
    """Sort-based simplex projection of each row (Martins & Astudillo 2016), in float64."""
    u = -np.sort(-s, axis=-1)
    cs = np.cumsum(u, axis=-1)
    j = np.arange(1, s.shape[-1] + 1)
    k = (1.0 + j * u > cs).sum(-1, keepdims=True)
    tau = (np.take_along_axis(cs, k - 1, axis=-1) - 1.0) / k
    return np.maximum(s - tau, 0.0)


# =========================================================================================
# 1. the optax mirrors against optax
# =========================================================================================

@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparsemax_loss_matches_optax(dtype, rng):
    """Random and large logits, exactly ±1 (the kinks of sparse_plus), with 0/1 labels as
    floats, integers and booleans."""
    z = 2.0 * rng.normal(size=(N, C))
    z[0] = (-1.0, 1.0, 1e4, -1e4, 0.0)
    z = z.astype(dtype)
    y = rng.random((N, C)) < 0.5
    for labels in (y.astype(dtype), y.astype(np.int64), y):
        ev, eg = optax_vg("sparsemax_loss", [z, labels])
        gv, gg = mirror_vg("sparsemax_loss", [z, labels])
        check(gv, ev, dtype=dtype, err_msg=str(labels.dtype))
        check(gg, eg, dtype=dtype, err_msg=f"grad {labels.dtype}")
    # the loss is 0 exactly where sparse_sigmoid(z) == y (optax's docstring)
    assert gv[0, 3] == 0.0 or y[0, 3]


@needs_optax
@pytest.mark.parametrize("case", ["random", "ties", "all_equal", "support1"])
def test_multiclass_sparsemax_matches_optax(case, rng):
    """float64: values and gradients equal optax's; the loss of a support of size 1 on the
    right class is exactly 0 (optax too)."""
    s, y = scores(case, "float64", rng), class_labels(rng, case)
    ev, eg = optax_vg("multiclass_sparsemax_loss", [s, y])
    gv, gg = mirror_vg("multiclass_sparsemax_loss", [s, y])
    check(gv, ev, dtype="float64", n=C, scale=msp_scales(s, y), err_msg=case)
    check(gg, eg, dtype="float64", n=C, scale=1.0, err_msg=f"grad {case}")
    # the gradient is p - onehot(y) (Blondel et al. 2020, Prop. 2), from the NumPy projection
    expected = np_sparsemax(s) - np.eye(C)[y]
    check(gg, expected, dtype="float64", n=C, scale=1.0, err_msg=f"p - e_y {case}")
    if case == "support1":
        assert (gv[0::2] == 0.0).all() and (ev[0::2] == 0.0).all()


@needs_optax
def test_multiclass_sparsemax_float32_matches_optax(rng):
    """float32: optax (x64) computes in float64 and returns float64; the mirror stays float32.
    Values are compared with optax's at the float32 tolerance; gradients with optax's on the
    same bits in float64 (optax's custom JVP cannot differentiate float32 scores under x64)."""
    for case in ("random", "ties", "support1"):
        s, y = scores(case, "float32", rng), class_labels(rng, case)
        ev, _ = optax_vg("multiclass_sparsemax_loss", [s, y], grad=False)
        assert ev.dtype == np.float64
        _, eg = optax_vg("multiclass_sparsemax_loss", [s.astype(np.float64), y])
        gv, gg = mirror_vg("multiclass_sparsemax_loss", [s, y])
        assert gv.dtype == np.float32
        check(gv, ev.astype(np.float32), dtype="float32", n=C, scale=msp_scales(s, y), err_msg=case)
        check(gg, eg.astype(np.float32), dtype="float32", n=C, scale=1.0, err_msg=f"grad {case}")


def _lse(v):
    from polyloss.backends import backend_of

    xp = backend_of(v).xp
    m = xp.max(v)
    return xp.log(xp.sum(xp.exp(v - m))) + m


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
def test_fenchel_young_matches_optax(dtype, rng):
    """``max_fun`` = JAX's logsumexp (optax's docstring example) and a backend-generic
    logsumexp; 1-D, 2-D and 3-D scores, one-hot and soft targets, ties."""
    from jax.scipy.special import logsumexp

    plan = [(logsumexp, (N, C), "soft"), (logsumexp, (2, 3, C), "one_hot"), (_lse, (C,), "soft")]
    for max_fun, shape, kind in plan if dtype == "float64" else plan[:1]:
        native = optax.losses.make_fenchel_young_loss(max_fun)
        mine = po.make_fenchel_young_loss(max_fun)
        s = scores("ties", dtype, rng).reshape(-1)[: math.prod(shape)].reshape(shape)
        t = rng.random(shape)
        t = (t / t.sum(-1, keepdims=True)).astype(dtype)
        for targets in [t if kind == "soft" else np.eye(C, dtype=dtype)[rng.integers(0, C, size=shape[:-1])]]:
                tj = jnp.asarray(targets)
                ev, eg = jax.value_and_grad(lambda x, f=native, t=tj: f(x, t).sum())(jnp.asarray(s))
                val = mine(jnp.asarray(s), tj)
                gv, gg = jax.value_and_grad(lambda x, f=mine, t=tj: f(x, t).sum())(jnp.asarray(s))
                assert val.shape == native(jnp.asarray(s), tj).shape == shape[:-1]
                scale = np.abs(s.astype(np.float64)).max() * 2 * max(1, math.prod(shape[:-1]))
                check(np.asarray(gv), np.asarray(ev), dtype=dtype, n=C, scale=scale, err_msg=str(shape))
                check(np.asarray(gg), np.asarray(eg), dtype=dtype, n=C, scale=1.0, err_msg=f"grad {shape}")


def rank_inputs(case, dtype, rng):
    logits = scores("ties" if case == "ties" else "random", dtype, rng)
    if case == "all_equal":
        logits[:] = 0.25
    labels = rng.integers(0, 4, size=(N, C)).astype(dtype)
    where = rng.random((N, C)) < 0.7
    where[:, 0] = True
    where[2] = False  # a list with no valid item
    weights = rng.uniform(0.2, 2.0, size=(N, C)).astype(dtype)
    return logits, labels, where, weights


def rank_scales(logits, labels, where, weights):
    """Per list ``Σ|y·w|·(2·max|z| + log C + 1)``: the magnitude of the log-softmax terms."""
    z = np.abs(logits.astype(np.float64))
    y = np.abs(labels * (1.0 if weights is None else weights))
    if where is not None:
        y = np.where(where, y, 0.0)
    return y.sum(-1) * (2 * z.max() + math.log(C) + 1.0)


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["random", "ties", "all_equal"])
def test_ranking_softmax_matches_optax(case, dtype, rng):
    """Every combination of ``where`` (including a list with no valid item), ``weights`` and
    ``reduce_fn`` (the default, ``jnp.mean``, ``jnp.sum``, None); gradients w.r.t. the logits
    and the labels."""
    logits, labels, where, weights = rank_inputs(case, dtype, rng)
    kws = [{}, {"where": where}, {"weights": weights}, {"where": where, "weights": weights}]
    rfs = ["default", jnp.mean, jnp.sum, None]
    if case != "random" or dtype == "float32":  # the full grid once; the main combinations here
        kws, rfs = kws[::3], rfs[::3]
    for kw in kws:
        per = rank_scales(logits, labels, kw.get("where"), kw.get("weights"))
        for rf in rfs:
            extra = {} if isinstance(rf, str) else {"reduce_fn": rf}
            scale = per if rf is None else per.sum() / (1 if rf is jnp.sum else N)
            msg = f"{case} {sorted(kw)} {getattr(rf, '__name__', rf)}"
            for argnum in (0, 1) if rf in ("default", None) else (0,):
                ev, eg = optax_vg("ranking_softmax_loss", [logits, labels], argnum=argnum, **kw, **extra)
                gv, gg = mirror_vg("ranking_softmax_loss", [logits, labels], argnum=argnum, **kw, **extra)
                check(gv, ev, dtype=dtype, n=C * N, scale=scale, err_msg=msg)
                gscale = 2 * max(1.0, float(np.abs(labels * (weights if "weights" in kw else 1)).max()))
                if argnum == 1:
                    gscale *= 2 * float(np.abs(logits.astype(np.float64)).max()) + math.log(C) + 1
                check(gg, eg, dtype=dtype, n=C * N, scale=gscale, err_msg=f"d/d arg{argnum} {msg}")
    if "where" in kw:
        per_list, _ = mirror_vg("ranking_softmax_loss", [logits, labels], where=where, reduce_fn=None)
        assert per_list[2] == 0.0  # the list with no valid item


@needs_optax
def test_ranking_weights_gradient_at_masked_items_is_zero_where_optax_is_nan(rng):
    """Deliberate difference: optax's backward multiplies 0 by log_softmax = -inf at masked
    items, so d/d weights is NaN there; the mirror gives 0 and optax's value elsewhere."""
    logits, labels, where, weights = rank_inputs("random", "float64", rng)
    native = optax.losses.ranking_softmax_loss
    eg = np.asarray(jax.grad(lambda w: native(jnp.asarray(logits), jnp.asarray(labels),
                                              where=jnp.asarray(where), weights=w))(jnp.asarray(weights)))
    mine = np.asarray(jax.grad(lambda w: po.ranking_softmax_loss(
        jnp.asarray(logits), jnp.asarray(labels), where=jnp.asarray(where), weights=w))(jnp.asarray(weights)))
    assert np.isnan(eg[~where]).all() and (mine[~where] == 0.0).all()
    check(mine[where], eg[where], dtype="float64", n=N * C, scale=2 * np.abs(logits).max() + 3)


@needs_optax
def test_ranking_reduce_fn_is_called_with_where_as_in_optax(rng):
    logits, labels, where, _ = rank_inputs("random", "float64", rng)
    seen = {}

    def my_reduce(a, where=None):
        seen["where"] = None if where is None else np.asarray(where)
        return jnp.max(jnp.where(where, a, -jnp.inf)) if where is not None else jnp.max(a)

    got = po.ranking_softmax_loss(jnp.asarray(logits), jnp.asarray(labels), where=jnp.asarray(where),
                                  reduce_fn=my_reduce)
    exp = optax.losses.ranking_softmax_loss(jnp.asarray(logits), jnp.asarray(labels),
                                            where=jnp.asarray(where), reduce_fn=my_reduce)
    assert (seen["where"] == where.any(-1)).all()
    check(np.asarray(got), np.asarray(exp), dtype="float64", n=N * C)
    # a reduce_fn without a `where` keyword works when `where` is None (torch.amax-style)
    out = po.ranking_softmax_loss(logits, labels, reduce_fn=lambda a: a.max())
    check(np.asarray(out), np.asarray(optax.losses.ranking_softmax_loss(
        jnp.asarray(logits), jnp.asarray(labels), reduce_fn=jnp.max)), dtype="float64", n=N * C)


def emb_inputs(case, dtype, rng):
    e = rng.normal(size=(N, 4))
    y = np.array([0, 0, 1, 1, 1, 2])
    if case == "one_class":  # no negatives: every term is log(exp s / exp s) ~ 0
        y[:] = 3
    elif case == "singletons":  # no positive pair: 0/0 = NaN in optax
        y = np.arange(N)
    elif case == "identical":  # identical vectors: cosines exactly 1, ties in the row maxima
        e[1] = e[0]
        e[3] = e[0]
    return e.astype(dtype), y.astype(np.int64)


def ntx_scale(e, temperature):
    """``2/τ``: the size of the shifted logits whose log-softmax cancels (value); gradient
    entries are at most ``(2/τ)/min‖e_i‖`` times 2."""
    n = np.sqrt((e.astype(np.float64) ** 2).sum(-1))
    return 2.0 / temperature, 4.0 / temperature / n.min()


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["random", "one_class", "singletons", "identical"])
def test_ntxent_matches_optax(case, dtype, rng):
    e, y = emb_inputs(case, dtype, rng)
    for temperature in (0.07, 0.5) if case == "random" and dtype == "float64" else (0.07,):
        ev, eg = optax_vg("ntxent", [e, y], temperature=temperature)
        gv, gg = mirror_vg("ntxent", [e, y], temperature=temperature)
        vs, gs = ntx_scale(e, temperature)
        check(gv, ev, dtype=dtype, n=N * N, scale=vs, err_msg=f"{case} {temperature}")
        check(gg, eg, dtype=dtype, n=N * N, scale=gs, err_msg=f"grad {case} {temperature}")
    if case == "singletons":
        assert np.isnan(ev) and np.isnan(gv) and (gg == 0).all()


# ---- other array types, other autograd backends, jit ------------------------------------------

CROSS = [  # (name, arrays maker, kwargs)
    ("sparsemax_loss", lambda rng: [scores("random", "float64", rng),
                                    (rng.random((N, C)) < 0.5).astype(np.float64)], {}),
    ("multiclass_sparsemax_loss", lambda rng: [scores("ties", "float64", rng), class_labels(rng)], {}),
    ("ranking_softmax_loss", lambda rng: list(rank_inputs("random", "float64", rng)[:2]), {}),
    ("ranking_softmax_loss", lambda rng: list(rank_inputs("ties", "float64", rng)[:3]), {"mask": True}),
    ("ntxent", lambda rng: list(emb_inputs("random", "float64", rng)), {}),
]


def _cross_call(name, kw):
    if kw.get("mask"):
        return lambda a, b, w: getattr(po, name)(a, b, where=w, reduce_fn=None)
    return lambda *xs: getattr(po, name)(*xs)


def _cross_expected(name, arrays, kw):
    if kw.get("mask"):
        return optax_vg(name, arrays[:2], where=arrays[2], reduce_fn=None)
    return optax_vg(name, arrays)


def _cross_scales(name, arrays):
    if name == "multiclass_sparsemax_loss":
        return msp_scales(*arrays), 1.0
    if name == "ranking_softmax_loss":
        where = arrays[2] if len(arrays) > 2 else None
        per = rank_scales(arrays[0], arrays[1], where, None)
        return (per if where is not None else per.sum() / N), 8.0
    if name == "ntxent":
        return ntx_scale(arrays[0], 0.07)
    return 0.0, 0.0


@needs_optax
@pytest.mark.parametrize("kind", kind_params(exclude=("jax",)))
def test_mirrors_on_other_array_types(kind, rng):
    for name, make, kw in CROSS:
        arrays = make(rng)
        ev, _ = _cross_expected(name, arrays, kw)
        got = run_on(kind, _cross_call(name, kw), *arrays)
        check(got, ev, dtype="float64", n=N * C, scale=_cross_scales(name, arrays)[0], err_msg=name)
    # make_fenchel_young_loss with a max_fun written for any backend
    s = scores("random", "float64", rng)
    t = np.eye(C)[class_labels(rng)]
    ev = optax.losses.make_fenchel_young_loss(_lse)(jnp.asarray(s), jnp.asarray(t))
    got = run_on(kind, po.make_fenchel_young_loss(_lse), s, t)
    check(got, np.asarray(ev), dtype="float64", n=C, scale=2 * np.abs(s).max())


@needs_optax
@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_mirror_gradients_on_other_autograd_backends(backend, rng):
    for name, make, kw in CROSS:
        arrays = make(rng)
        ev, eg = _cross_expected(name, arrays, kw)
        vs, gs = _cross_scales(name, arrays)
        value, grad = backend.value_and_grad(_cross_call(name, kw), arrays, 0)
        check(value, ev, dtype="float64", n=N * C, scale=vs, err_msg=name)
        check(grad, eg, dtype="float64", n=N * C, scale=gs, err_msg=f"grad {name}")


@needs_optax
def test_mirrors_under_jax_jit(rng):
    for name, make, kw in CROSS:
        arrays = make(rng)
        ev, _ = _cross_expected(name, arrays, kw)
        got = jax.jit(_cross_call(name, kw))(*[jnp.asarray(a) for a in arrays])
        check(np.asarray(got), ev, dtype="float64", n=N * C, scale=_cross_scales(name, arrays)[0],
              err_msg=name)
    s, t = scores("random", "float64", rng), np.eye(C)[class_labels(rng)]
    fy = po.make_fenchel_young_loss(_lse)
    check(np.asarray(jax.jit(fy)(jnp.asarray(s), jnp.asarray(t))), np.asarray(fy(s, t)), dtype="float64",
          n=C, scale=2 * np.abs(s).max())


@needs_optax
@pytest.mark.parametrize("name", ["sparsemax_loss", "multiclass_sparsemax_loss", "make_fenchel_young_loss",
                                  "ranking_softmax_loss", "ntxent"])
def test_signatures_match_optax(name):
    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    mine, native = params(getattr(po, name)), params(getattr(optax.losses, name))
    if name == "ranking_softmax_loss":  # reduce_fn: an Array API mean instead of jnp.mean
        assert mine[-1][:2] == native[-1][:2] and native[-1][2] is jnp.mean
        mine, native = mine[:-1], native[:-1]
    assert mine == native


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: po.sparsemax_loss(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "labels"),
    (lambda: po.sparsemax_loss(np.zeros((2, 3), np.int64), np.zeros((2, 3))), TypeError, "logits"),
    (lambda: po.multiclass_sparsemax_loss(np.zeros((2, 3)), np.zeros((3,), np.int64)), ValueError, "labels"),
    (lambda: po.multiclass_sparsemax_loss(np.zeros((2, 3)), np.array([0, 3])), ValueError, "labels"),
    (lambda: po.make_fenchel_young_loss(3), TypeError, "max_fun"),
    (lambda: po.make_fenchel_young_loss(np.max)(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "targets"),
    (lambda: po.ranking_softmax_loss(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "labels"),
    (lambda: po.ranking_softmax_loss(np.zeros((2, 3)), np.zeros((2, 3)), weights=np.ones((3,))),
     ValueError, "weights"),
    (lambda: po.ranking_softmax_loss(np.zeros((2, 3)), np.zeros((2, 3)), where=np.ones((3,), bool)),
     ValueError, "where"),
    (lambda: po.ntxent(np.zeros((4, 2)), np.zeros((3,), np.int64)), ValueError, "labels"),
    (lambda: po.ntxent(np.zeros((4,)), np.zeros((4,), np.int64)), ValueError, "embeddings"),
    (lambda: po.ntxent(np.zeros((4, 2), np.int64), np.zeros((4,), np.int64)), TypeError, "embeddings"),
    (lambda: polyloss.ntxent(np.zeros((4, 2)), np.zeros((4,))), TypeError, "labels"),
    (lambda: polyloss.ntxent(np.zeros((4, 2)), np.zeros((4, 1), np.int64)), ValueError, "labels"),
    (lambda: polyloss.ntxent(np.zeros((4, 2, 1)), np.zeros((4,), np.int64)), ValueError, "embeddings"),
    (lambda: polyloss.ntxent(np.zeros((4, 2)), np.zeros((4,), np.int64), temperature=0.0), ValueError,
     "temperature"),
    (lambda: polyloss.ntxent(np.zeros((4, 2)), np.zeros((4,), np.int64), temperature=-1), ValueError,
     "temperature"),
    (lambda: polyloss.ntxent(np.zeros((4, 2)), np.zeros((4,), np.int64), sample_weight=np.ones(3)),
     ValueError, "sample_weight"),
    (lambda: polyloss.ntxent(np.zeros((4, 2)), np.zeros((4,), np.int64), normalizer="count"), ValueError,
     "normalizer"),
    (lambda: polyloss.contrastive(np.zeros((4, 2)), np.zeros((4, 3)), np.zeros(4)), ValueError, "x2"),
    (lambda: polyloss.contrastive(np.zeros((4, 2)), np.zeros((4, 2)), np.zeros(3)), ValueError, "target"),
    (lambda: polyloss.contrastive(np.zeros((4, 2)), np.zeros((4, 2)), -np.ones(4)), ValueError, "target"),
    (lambda: polyloss.contrastive(np.zeros((4, 2)), np.zeros((4, 2)), np.ones(4), margin=-1.0), ValueError,
     "margin"),
    (lambda: polyloss.contrastive(np.zeros((4, 2)), np.zeros((4, 2)), np.ones(4), reduction="avg"),
     ValueError, "reduction"),
])
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# =========================================================================================
# 2. canonical ntxent and contrastive against NumPy float64 oracles
# =========================================================================================
# The oracles are written here from the documented formulas, independently of polyloss's core
# (explicit loops over anchors and pairs).

def np_ntxent(e, y, temperature=0.07, eps=1e-8, reduction="mean", w=None, normalizer="valid_count"):
    e = e.astype(np.float64)
    unit = e / np.maximum(np.sqrt((e * e).sum(-1, keepdims=True)), eps)
    s = unit @ unit.T / temperature
    b = len(y)
    w = np.ones(b) if w is None else w.astype(np.float64)
    per_anchor, pairs, weighted_pairs = np.zeros(b), 0.0, 0.0
    for i in range(b):
        neg = [k for k in range(b) if y[k] != y[i]]
        pos = [j for j in range(b) if j != i and y[j] == y[i]]
        terms = [-(s[i, j] - np.log(np.exp(s[i, j]) + np.exp(s[i, neg]).sum())) for j in pos]
        per_anchor[i] = w[i] * (np.mean(terms) if terms else 0.0)
        pairs += len(pos)
        weighted_pairs += w[i] * len(pos)
    total = sum(per_anchor[i] * max(sum(1 for j in range(b) if j != i and y[j] == y[i]), 1)
                for i in range(b))
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return np.float64(total)
    if reduction == "batchmean":
        return np.float64(total / b)
    denom = pairs if normalizer == "valid_count" else weighted_pairs
    return np.float64(total / denom) if denom else np.float64(np.nan)


def np_contrastive(x1, x2, y, margin=1.0, eps=0.0, reduction="mean", w=None, normalizer="count"):
    x1, x2, y = (a.astype(np.float64) for a in (x1, x2, y))
    d2 = ((x1 - x2) ** 2).sum(-1) + eps
    loss = y * d2 + (1 - y) * np.maximum(margin - np.sqrt(d2), 0.0) ** 2
    if w is not None:
        loss = loss * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchmean":
        return loss.sum() / len(loss)
    denom = len(loss) if normalizer != "sum_of_weights" or w is None else w.sum()
    return loss.sum() / denom


def np_contrastive_grad(x1, x2, y, margin=1.0, eps=0.0):
    """d Σloss / d x1: ``2y·(x1 - x2) - 2(1 - y)·max(m - d, 0)·(x1 - x2)/d`` (0 where d = 0)."""
    x1, x2, y = (a.astype(np.float64) for a in (x1, x2, y))
    diff = x1 - x2
    d = np.sqrt((diff ** 2).sum(-1) + eps)
    hinge = np.maximum(margin - d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        far = np.where(d[:, None] > 0, diff / d[:, None], 0.0)
    return 2 * y[:, None] * diff - 2 * ((1 - y) * hinge)[:, None] * far


NTX_PLANS = [
    {}, {"reduction": "none"}, {"reduction": "sum"}, {"reduction": "batchmean"},
    {"temperature": 0.5, "reduction": "none", "weights": True},
    {"weights": True}, {"weights": True, "normalizer": "sum_of_weights"},
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_canonical_ntxent_matches_oracle(backend, dtype, rng):
    if dtype not in backend.dtypes:
        pytest.skip(f"{backend.name} has no {dtype}")
    for case in ("random", "one_class", "singletons", "identical"):
        e, y = emb_inputs(case, dtype, rng)
        w = rng.uniform(0.2, 2.0, size=N).astype(dtype)
        for plan in NTX_PLANS if case == "random" else NTX_PLANS[:2] + NTX_PLANS[-1:]:
            kw = {k: v for k, v in plan.items() if k != "weights"}
            arrays = [e, y] + ([w] if plan.get("weights") else [])
            expected = np_ntxent(e, y, w=w if plan.get("weights") else None, **kw)
            got = run_on(KIND_OF[backend.name], lambda *xs, k=kw: polyloss.ntxent(
                xs[0], xs[1], sample_weight=xs[2] if len(xs) > 2 else None, **k), *arrays)
            vs = 2.0 / kw.get("temperature", 0.07) * (2.0 if plan.get("weights") else 1.0)
            check(got, np.asarray(expected, dtype=dtype), dtype=dtype, n=N * N, scale=vs,
                  err_msg=f"{case} {plan}")


KIND_OF = {"numpy": None, "torch": None, "jax": None, "tensorflow": None, "mxnet": None,
           "array_api_strict": None, "dask": None}


def _kinds():
    from _native import KINDS

    for name in KIND_OF:
        KIND_OF[name] = KINDS["mx.np" if name == "mxnet" else name]


_kinds()


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
def test_canonical_ntxent_equals_optax_where_definitions_coincide(dtype, rng):
    """``reduction="mean"``, no weights and vectors with norms far above both floors
    (``eps = 1e-8`` here, ``√finfo.eps`` in optax): the same value and gradient."""
    for case in ("random", "one_class", "identical"):
        e, y = emb_inputs(case, dtype, rng)
        for temperature in (0.07, 0.3) if case == "random" else (0.07,):
            ev, eg = optax_vg("ntxent", [e, y], temperature=temperature)
            lab = jnp.asarray(y)
            f = lambda x, t=temperature, lab=lab: polyloss.ntxent(x, lab, temperature=t)  # noqa: E731
            gv, gg = jax.value_and_grad(f)(jnp.asarray(e))
            vs, gs = ntx_scale(e, temperature)
            check(np.asarray(gv), ev, dtype=dtype, n=N * N, scale=vs, err_msg=case)
            check(np.asarray(gg), eg, dtype=dtype, n=N * N, scale=gs, err_msg=f"grad {case}")


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in AUTOGRAD])
def test_canonical_ntxent_gradient_equals_the_optax_mirrors(backend, rng):
    """Gradient check of the canonical loss on each autograd backend: it equals the optax
    mirror's (itself checked against optax above) where the definitions coincide, and the
    per-anchor ``"none"`` values' gradient equals central differences of the oracle."""
    backend.setup()
    e, y = emb_inputs("random", "float64", rng)
    value, grad = backend.value_and_grad(lambda x, t: polyloss.ntxent(x, t), [e, y], 0)
    mv, mg = backend.value_and_grad(lambda x, t: po.ntxent(x, t), [e, y], 0)
    vs, gs = ntx_scale(e, 0.07)
    check(value, mv, dtype="float64", n=N * N, scale=vs)
    check(grad, mg, dtype="float64", n=N * N, scale=gs)
    _, g_none = backend.value_and_grad(lambda x, t: polyloss.ntxent(x, t, temperature=0.5,
                                                                      reduction="none"), [e, y], 0)
    h = 1e-6  # central differences: truncation error O(h²·f''') ~ 1e-12, rounding ~ 1e-10/h
    fd = np.zeros_like(e)
    for idx in np.ndindex(e.shape):
        ep, em = e.copy(), e.copy()
        ep[idx] += h
        em[idx] -= h
        fd[idx] = (np_ntxent(ep, y, 0.5, reduction="none").sum()
                   - np_ntxent(em, y, 0.5, reduction="none").sum()) / (2 * h)
    # a finite-difference check, not a parity check: its own error bound, 1e-7 of the scale
    np.testing.assert_allclose(g_none, fd, rtol=0, atol=1e-7 * ntx_scale(e, 0.5)[1])


def contrastive_inputs(case, dtype, rng):
    x1, x2 = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    y = (np.arange(N) % 2).astype(np.float64)
    if case == "identical":  # d = 0: similar pairs cost 0, dissimilar ones margin²
        x2 = x1.copy()
    elif case == "at_margin":  # d = margin = 1 exactly (3-4-5 triangles scaled by 1/5)
        x2 = x1 + np.array([0.6, 0.8, 0.0])
    elif case == "soft":
        y = rng.uniform(0.0, 1.0, size=N)
    return x1.astype(dtype), x2.astype(dtype), y.astype(dtype)


CON_PLANS = [{}, {"reduction": "none"}, {"reduction": "sum", "margin": 2.5}, {"eps": 1e-6},
             {"weights": True}, {"weights": True, "normalizer": "sum_of_weights", "margin": 0.0}]


@pytest.mark.parametrize("dtype", DTYPES)
def test_canonical_contrastive_matches_oracle(backend, dtype, rng):
    if dtype not in backend.dtypes:
        pytest.skip(f"{backend.name} has no {dtype}")
    for case in ("random", "identical", "at_margin", "soft"):
        x1, x2, y = contrastive_inputs(case, dtype, rng)
        w = rng.uniform(0.2, 2.0, size=N).astype(dtype)
        for plan in CON_PLANS if case == "random" else CON_PLANS[:2]:
            kw = {k: v for k, v in plan.items() if k != "weights"}
            ww = w if plan.get("weights") else None
            expected = np_contrastive(x1, x2, y, w=ww, **kw)
            arrays = [x1, x2, y] + ([w] if ww is not None else [])
            got = run_on(KIND_OF[backend.name], lambda *xs, k=kw: polyloss.contrastive(
                xs[0], xs[1], xs[2], sample_weight=xs[3] if len(xs) > 3 else None, **k), *arrays)
            # y·d² and (m - d)²: no cancellation beyond (m - d), of size m + d
            d = np.sqrt(((x1.astype(np.float64) - x2) ** 2).sum(-1))
            per = (d + kw.get("margin", 1.0)) ** 2 * (1.0 if ww is None else ww)
            scale = per if kw.get("reduction") == "none" else per.sum() / (
                1 if kw.get("reduction") == "sum" else N)
            check(got, np.asarray(expected, dtype=dtype), dtype=dtype, n=3 * N, scale=scale,
                  err_msg=f"{case} {plan}")


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in AUTOGRAD])
def test_canonical_contrastive_gradient_is_the_analytic_one(backend, rng):
    for case in ("random", "identical", "soft"):
        x1, x2, y = contrastive_inputs(case, "float64", rng)
        for margin, eps in ((1.0, 0.0), (3.0, 1e-6)):
            _, grad = backend.value_and_grad(
                lambda a, b, t, m=margin, k=eps: polyloss.contrastive(a, b, t, margin=m, eps=k,
                                                                        reduction="sum"), [x1, x2, y], 0)
            expected = np_contrastive_grad(x1, x2, y, margin, eps)
            d = np.sqrt(((x1 - x2) ** 2).sum(-1, keepdims=True))
            check(grad, expected, dtype="float64", n=3, scale=2 * (d + margin), err_msg=f"{case} {margin}")
            assert np.isfinite(grad).all()


def test_contrastive_worked_example():
    """By hand: x1 = (0, 0), x2 = (3, 4), so d = 5. Similar (y = 1): d² = 25. Dissimilar with
    margin 6: (6 - 5)² = 1; with margin 1: max(0, 1 - 5)² = 0."""
    x1 = np.zeros((3, 2))
    x2 = np.array([[3.0, 4.0]] * 3)
    y = np.array([1.0, 0.0, 0.0])
    assert list(polyloss.contrastive(x1, x2, y, margin=6.0, reduction="none")) == [25.0, 1.0, 1.0]
    assert list(polyloss.contrastive(x1, x2, y, reduction="none")) == [25.0, 0.0, 0.0]


def test_ntxent_reduction_none_is_per_anchor_mean_over_positives():
    """Two pairs and a singleton: the singleton's value is 0, and with one positive per
    anchor "mean" equals the mean of "none" over the anchors that have a positive."""
    e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8], [-1.0, 0.0]])
    y = np.array([0, 0, 1, 1, 2])
    per = polyloss.ntxent(e, y, reduction="none")
    assert per.shape == (5,) and per[4] == 0.0
    check(np.asarray(polyloss.ntxent(e, y)), np.asarray(per[:4].mean()), dtype="float64", n=25,
          scale=2 / 0.07)
    check(per, np_ntxent(e, y, reduction="none"), dtype="float64", n=25, scale=2 / 0.07)


def test_mxnet_and_tensorflow_adapters_have_matmul():
    """The adapters gained ``matmul`` for ntxent (the other namespaces have it already)."""
    for name in ("tensorflow", "mxnet"):
        if name not in INSTALLED_NAMES:
            continue
        kind = KIND_OF[name]
        a = np.arange(6.0).reshape(2, 3)
        got = run_on(kind, lambda x: polyloss.backends.backend_of(x).xp.matmul(
            x, polyloss.backends.backend_of(x).xp.permute_dims(x, (1, 0))), a)
        np.testing.assert_array_equal(got, a @ a.T)  # small integers: exact
