"""``polyloss.optax``'s classification losses against the real ``optax.losses`` 0.2.8.

``sigmoid_binary_cross_entropy``, ``sigmoid_focal_loss``, ``softmax_cross_entropy``,
``softmax_cross_entropy_with_integer_labels``, ``safe_softmax_cross_entropy``,
``poly_loss_cross_entropy``, ``kl_divergence``, ``kl_divergence_with_log_targets``,
``convex_kl_divergence``, ``generalized_kl_divergence`` and ``smooth_labels``, all unreduced.

Expected values and gradients always come from optax itself, run in the test on JAX arrays
(64-bit enabled, as the parity backends set it up) built from the same NumPy bits. Covered:
values and ``jax.grad`` gradients (on every autograd backend), ``where`` masks (of the
logits' shape, with a fully masked row, and of the batch shape), ``axis`` as an int, a tuple
and ``None``, hard and soft labels, ``alpha``/``gamma``/``epsilon``/smoothing ``alpha``,
``-inf`` logits with zero labels (``softmax_cross_entropy`` NaN like optax,
``safe_softmax_cross_entropy`` finite), logits of +-100, a batch of one and an empty batch,
float32/float64 and mixed dtypes, the same mirror on every installed array type,
``jax.jit``/``jax.vmap``, signatures, and the deliberate differences (out-of-range integer
labels raise ``ValueError`` in eager calls; ``kl_divergence``'s gradient w.r.t. a zero target).
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
import zlib

import numpy as np
import pytest
from _native import (
    KINDS,
    N,
    T,
    assert_close,
    kind_params,
    require_module,
    rtol_for,
    run_on,
)

jax = require_module("jax")  # set up with jax_enable_x64 = True
jnp = jax.numpy
optax = require_module("optax")
po = pytest.importorskip("polyloss.optax")

pytestmark = [pytest.mark.native]

C = 5  # classes

BCE, FOCAL = "sigmoid_binary_cross_entropy", "sigmoid_focal_loss"
SCE, INT, SAFE, POLY = ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                        "safe_softmax_cross_entropy", "poly_loss_cross_entropy")
KL, KL_LOG, GKL, CKL = ("kl_divergence", "kl_divergence_with_log_targets",
                        "generalized_kl_divergence", "convex_kl_divergence")
SMOOTH = "smooth_labels"
ALL = [BCE, FOCAL, SCE, INT, SAFE, POLY, KL, KL_LOG, GKL, CKL, SMOOTH]

# layouts: (shape, class axis)
LAYOUTS = {
    "2d": ((N, C), -1),
    "3d": ((N, T, C), -1),
    "axis1": ((N, C, T), 1),
    "axis0": ((C, N), 0),
    "tuple": ((N, 3, 4), (1, 2)),
    "none": ((N, C), None),
    "batch1": ((1, C), -1),
    "empty": ((0, C), -1),
}


# ---- inputs (made in NumPy, cast there) -------------------------------------------------------

class Case:
    """``fn(*arrays, where=where, **kw)``; ``arrays[0]`` is what gradients are taken of."""

    def __init__(self, name, arrays, kw=None, where=None):
        self.name, self.arrays, self.kw, self.where = name, list(arrays), dict(kw or {}), where

    @property
    def all_arrays(self):
        return self.arrays + ([] if self.where is None else [self.where])

    @property
    def axis(self):
        return self.kw.get("axis", -1)

    def reduce_len(self):
        """How many elements one output value reduces over."""
        shape = self.arrays[0].shape
        if self.name in (BCE, FOCAL):
            return 1
        axis = self.axis
        if axis is None:
            return max(1, math.prod(shape))
        axes = axis if isinstance(axis, tuple) else (axis,)
        return max(1, math.prod(shape[a] for a in axes))

    def __repr__(self):
        shapes = [a.shape for a in self.arrays]
        return f"{self.name}{shapes} {self.kw} where={None if self.where is None else self.where.shape}"


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


def _softmax(x, axis):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True)) if x.size else x
    return e / e.sum(axis=axis, keepdims=True) if x.size else x


def _log_softmax(x, axis):
    x = x.astype(np.float64)
    if not x.size:
        return x
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _distribution(shape, axis, rng, zeros=0.0, one_hot=0.3):
    """Probability vectors along ``axis`` (a tuple or None allowed), with some exact zeros and
    some one-hot rows (exact 0 and 1)."""
    axes = _axes(axis, len(shape))
    p = rng.gamma(1.0, 1.0, size=shape)
    if not p.size:
        return p
    top = p == p.max(axis=axes, keepdims=True)  # kept, so no row is all zero
    p = np.where((rng.random(shape) < zeros) & ~top, 0.0, p)
    rows = rng.random(tuple(1 if a in axes else s for a, s in enumerate(shape))) < one_hot
    p = np.where(rows, top.astype(float), p)
    return p / p.sum(axis=axes, keepdims=True)


def _mask(shape, axis, rng, kind, empty_row=True):
    """``full``: of the logits' shape, ~25% False, at least one True in each reduced row and
    (``empty_row``) one fully masked row; ``batch``: of the shape without ``axis``."""
    if kind is None:
        return None
    axes = _axes(axis, len(shape))
    if kind == "batch":
        batch_shape = tuple(s for a, s in enumerate(shape) if a not in axes)
        m = rng.random(batch_shape) < 0.7
        if m.size:
            m.flat[0] = True
        return m
    m = rng.random(shape) < 0.75
    if m.size:
        keep = np.zeros(shape, bool)
        # one True per row: the first element of the reduced axes
        idx = tuple(slice(0, 1) if a in axes else slice(None) for a in range(len(shape)))
        keep[idx] = True
        m = m | keep
        if empty_row and len(axes) < len(shape):
            row = tuple(0 if a not in axes else slice(None) for a in range(len(shape)))
            m[row] = False
    return m


def _logits(shape, rng, extreme=False):
    x = rng.normal(0.0, 2.0, size=shape)
    if extreme:
        x = np.where(rng.random(shape) < 0.4, rng.choice([-100.0, 100.0, -30.0, 30.0], size=shape), x)
    return x


def make_case(name, dtype, rng, *, layout="2d", where=None, extreme=False, hard=False, **kw):
    """One call of ``name`` with inputs of ``dtype``. ``kw`` are the loss's own keywords."""
    shape, axis = LAYOUTS[layout]
    if name in (SCE, INT, POLY, KL, KL_LOG, GKL, CKL, SMOOTH) and layout not in ("2d",):
        kw = {"axis": axis, **kw}
    mask = _mask(shape, axis, rng, where, empty_row=name != SMOOTH)
    if name in (BCE, FOCAL):
        x = _logits(shape, rng, extreme)
        y = rng.integers(0, 2, size=shape).astype(np.float64)
        if not hard:
            y = np.where(rng.random(shape) < 0.5, y, rng.random(shape))
        arrays = [x, y]
    elif name in (SCE, SAFE, POLY):
        arrays = [_logits(shape, rng, extreme), _distribution(shape, axis, rng, zeros=0.2)]
    elif name == INT:
        axes = _axes(axis, len(shape))
        batch_shape = tuple(s for a, s in enumerate(shape) if a not in axes)
        ncls = math.prod(shape[a] for a in axes)
        labels = rng.integers(0, ncls, size=batch_shape).astype(kw.pop("label_dtype", np.int32))
        arrays = [_logits(shape, rng, extreme), labels]
    elif name in (KL, CKL):
        arrays = [_log_softmax(_logits(shape, rng, extreme), axis),
                  _distribution(shape, axis, rng, zeros=0.2)]
    elif name == KL_LOG:
        arrays = [_log_softmax(_logits(shape, rng, extreme), axis),
                  _log_softmax(rng.normal(0.0, 1.5, size=shape), axis)]
    elif name == GKL:  # unnormalised measures
        t = np.where(rng.random(shape) < 0.2, 0.0, rng.gamma(2.0, 1.0, size=shape))
        arrays = [rng.normal(0.0, 1.0, size=shape), t]
    elif name == SMOOTH:
        kw.setdefault("alpha", 0.1)
        arrays = [_distribution(shape, axis, rng, one_hot=0.7)]
    else:  # pragma: no cover
        raise AssertionError(name)
    arrays = [a if a.dtype.kind in "iu" else a.astype(dtype) for a in arrays]
    return Case(name, arrays, kw, mask)


# ---- running optax and the mirror -----------------------------------------------------------

def _call(fn, case, arrays):
    k = len(case.arrays)
    kw = dict(case.kw)
    if case.where is not None:
        kw["where"] = arrays[k]
    if case.name == SMOOTH:
        alpha = kw.pop("alpha")
        return fn(arrays[0], alpha, **kw)
    return fn(*arrays[:k], **kw)


def native_fn(case):
    fn = getattr(optax.losses, case.name)

    def f(*arrays):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # convex_kl_divergence
            return _call(fn, case, arrays)

    return f


# XLA compiles each eager JAX operation separately for every new shape and dtype, which made
# this module several times slower than a minute; the natives (and the mirror's JAX
# gradients) therefore run as one compiled call per case, compiled without LLVM's backend
# optimisations (which take most of the compile time and do not change what is computed:
# ``test_eager_native_equals_compiled``).
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def compiled(f, *xs):
    return jax.jit(f).lower(*xs).compile(compiler_options=_FAST_COMPILE)(*xs)


def native(case):
    """optax, compiled (see ``compiled``)."""
    return np.asarray(compiled(native_fn(case), *[jnp.asarray(a) for a in case.all_arrays]))


def mirror(case):
    fn = getattr(po, case.name)
    return lambda *arrays: _call(fn, case, arrays)


def native_grad(case, argnum=0):
    xs = [jnp.asarray(a) for a in case.all_arrays]
    f = native_fn(case)

    def total(x, *rest):
        args = list(rest)
        args.insert(argnum, x)
        out = f(*args)
        return jnp.sum(out), out

    (_, out), g = compiled(jax.value_and_grad(total, has_aux=True), xs[argnum],
                           *(xs[:argnum] + xs[argnum + 1:]))
    return np.asarray(out), np.asarray(g)


def mirror_grad(backend, case, argnum=0):
    """The mirror's value and gradient on ``backend``; on JAX compiled like the natives (the
    eager JAX mirror is compared in section 2, and ``jax.grad`` traces the same graph)."""
    if backend.name != "jax":
        return backend.value_and_grad(mirror(case), case.all_arrays, argnum)
    xs = [jnp.asarray(a) for a in case.all_arrays]
    f = mirror(case)

    def total(x, *rest):
        args = list(rest)
        args.insert(argnum, x)
        out = f(*args)
        return jnp.sum(out), out

    (_, out), g = compiled(jax.value_and_grad(total, has_aux=True), xs[argnum],
                           *(xs[:argnum] + xs[argnum + 1:]))
    return np.asarray(out), np.asarray(g)


# Each configuration is built once per dtype, from its own seed, and its native results are
# kept: the value, gradient and array-type tests share them.
CONFIGS: dict[str, tuple] = {}


def config(name, layout="2d", where=None, **kw):
    """Register a configuration; returns its id."""
    extra = "".join(f"-{k}_{v.__name__ if isinstance(v, type) else v}" for k, v in kw.items())
    cid = f"{name}-{layout}" + ("" if where is None else f"-where_{where}") + extra
    CONFIGS[cid] = (name, layout, where, kw)
    return cid


@functools.cache
def case_for(cid, dtype):
    name, layout, where, kw = CONFIGS[cid]
    rng = np.random.default_rng(zlib.crc32(f"{cid}/{dtype}".encode()))
    return make_case(name, dtype, rng, layout=layout, where=where, **kw)


@functools.cache
def native_for(cid, dtype):
    return native(case_for(cid, dtype))


@functools.cache
def native_grad_for(cid, dtype, argnum=0):
    return native_grad(case_for(cid, dtype), argnum)


def tolerance(case, dtype, grad=False):
    """``(rtol, atol)``: ``rtol_for(dtype, n)`` with ``n`` the reduction length; an absolute
    term only where optax's formula cancels, so that its rounding error is relative to the
    terms, not to the result:

    - ``kl_divergence`` (and ``convex``/``generalized``/``with_log_targets``):
      ``Σ t·(log t - lp)`` (``+ Σ (exp(lp) - t)``) adds terms of both signs: a few ulps of
      ``max Σ|terms|``;
    - ``poly_loss_cross_entropy`` with ``epsilon < 0``: ``CE + ε·Σ y(1 - p)`` cancels likewise;
    - gradients that are differences of O(1) terms (``σ(x) - y``, ``softmax·Σy - y``,
      ``exp(lp) - t``): a few ulps of the larger term;
    - ``sigmoid_focal_loss``: ``exp(γ·log(1 - p_t))`` multiplies the relative error of
      ``1 - p_t`` by ``γ``; the rtol is scaled by ``max(1, γ)`` (the mirror evaluates optax's
      own log-space form, so the errors of ``log(1 - p_t)`` itself stay ulp-sized, even for
      logits of +-100), and the gradient, a difference of O(1) terms, gets a few ulps of 1.
    """
    n = case.reduce_len()
    rtol = rtol_for(dtype, n)
    eps = float(np.finfo(dtype).eps)
    # the scale of the terms, from the finite inputs (an infinite one gives inf/NaN anyway)
    a0 = np.nan_to_num(case.arrays[0].astype(np.float64), posinf=0.0, neginf=0.0)
    a1 = None if len(case.arrays) == 1 else np.nan_to_num(
        case.arrays[1].astype(np.float64), posinf=0.0, neginf=0.0)
    atol = 0.0
    log2n = max(1.0, math.log2(n))
    if case.name in (KL, CKL, GKL, KL_LOG):
        if case.name == KL_LOG:
            terms = np.exp(a1) * (np.abs(a1) + np.abs(a0))
        else:
            t = a1
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = np.abs(np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)) + np.abs(t * a0)
            if case.name != KL:
                terms = terms + np.exp(a0) + t
        if grad:
            atol = 8 * eps * float(np.max(terms, initial=0.0) + 1.0)
        else:
            atol = 8 * eps * log2n * float(np.sum(terms) / max(1, terms.size) * n)
    elif case.name in (SCE, SAFE, POLY, INT):
        if case.name == POLY and not grad and case.kw.get("epsilon", 2.0) < 0:
            atol = 8 * eps * log2n * abs(case.kw["epsilon"]) * 2.0
        if grad:
            eps_poly = abs(case.kw.get("epsilon", 2.0)) if case.name == POLY else 0.0
            atol = 8 * eps * (1.0 + eps_poly)
    elif case.name == BCE:
        if grad:
            atol = 8 * eps
    elif case.name == FOCAL:
        rtol = rtol * max(1.0, float(case.kw.get("gamma", 2.0)))
        if grad:
            atol = 8 * eps
    return rtol, atol


def check(got, expected, case, dtype, grad=False, err_msg=""):
    rtol, atol = tolerance(case, dtype, grad)
    assert_close(got, expected, dtype=dtype, rtol=rtol, atol=atol, err_msg=f"{case!r} {err_msg}")


# ---- 1. values against optax -------------------------------------------------------------------
# The full grid runs the mirror on NumPy arrays (no compilation); JAX and every other array
# type run the subset in section 2, gradients in section 3, jit/vmap in section 7.

DTYPES = ["float32", "float64"]

VALUE_GRID = [config(BCE, layout, hard=hard) for layout in ("2d", "3d") for hard in (False, True)]
VALUE_GRID += [config(BCE, layout) for layout in ("batch1", "empty")] + [config(BCE, extreme=True)]
VALUE_GRID += [config(FOCAL, gamma=g, alpha=a) for g, a in ((0.0, None), (0.5, 0.25), (2.0, None),
                                                             (3.0, 0.25), (2.0, 0.25))]
VALUE_GRID += [config(FOCAL, hard=True), config(FOCAL, "3d", gamma=1.5, alpha=0.75),
               config(FOCAL, "batch1"), config(FOCAL, "empty"),
               config(FOCAL, extreme=True, gamma=0.5), config(FOCAL, extreme=True, alpha=0.25)]
for _layout in ("2d", "axis1", "axis0", "tuple", "none"):
    for _where in (None, "full", "batch"):
        if _where == "batch" and _layout == "none":
            continue  # optax: expand_dims(where, None) is not defined
        VALUE_GRID.append(config(SCE, _layout, _where))
        if _layout != "none":  # optax's integer-label axis is an int or a tuple
            VALUE_GRID.append(config(INT, _layout, _where))
    for _where in (None, "full"):  # a batch-shaped mask would be broadcast by jax.nn.softmax
        VALUE_GRID.append(config(POLY, _layout, _where))
        VALUE_GRID.append(config(KL, _layout, _where))
        if _layout in ("2d", "tuple", "none"):
            VALUE_GRID += [config(KL_LOG, _layout, _where), config(GKL, _layout, _where)]
        VALUE_GRID.append(config(SMOOTH, _layout, _where, alpha=0.1))
VALUE_GRID += [config(CKL), config(CKL, "axis1", "full")]  # optax 0.2.8: a deprecated wrapper of GKL
VALUE_GRID += [config(name, layout) for name in (SCE, INT, SAFE, POLY, KL) for layout in ("batch1", "empty")]
VALUE_GRID += [config(SAFE), config(SAFE, "3d"), config(SAFE, extreme=True),
               config(SCE, extreme=True), config(INT, extreme=True), config(KL, extreme=True),
               config(POLY, epsilon=-1.0), config(POLY, "axis1", "full", epsilon=0.5, extreme=True),
               config(INT, "axis1", "full", label_dtype=np.int64),
               config(INT, "tuple", "batch", label_dtype=np.int64),
               config(SMOOTH, alpha=0.0), config(SMOOTH, "3d", alpha=1.0)]


def _f32_too(cid):
    """float32 runs where its tolerances are special: the elementwise sigmoid losses (the
    focal factor's error amplification), +-100 logits, edge batches, KL's cancellation, and
    one int and one tuple ``axis`` layout with each ``where``; the rest runs in float64."""
    name, layout, _, kw = CONFIGS[cid]
    return (name in (BCE, FOCAL, KL) or layout in ("2d", "tuple", "batch1", "empty")
            or kw.get("extreme", False))


@pytest.mark.parametrize(("cid", "dtype"), [
    pytest.param(cid, dtype, id=f"{cid}-{dtype}") for cid in VALUE_GRID for dtype in DTYPES
    if dtype == "float64" or _f32_too(cid)])
def test_value_matches_optax(cid, dtype):
    case = case_for(cid, dtype)
    got = run_on(KINDS["numpy"], mirror(case), *case.all_arrays)
    check(got, native_for(cid, dtype), case, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_native_equals_compiled(dtype):
    """The natives run compiled here (see ``compiled``); eager optax gives the same values."""
    cid = config(SCE, "axis1", "full") if dtype == "float64" else config(FOCAL, alpha=0.25)
    case = case_for(cid, dtype)
    eager = np.asarray(native_fn(case)(*[jnp.asarray(a) for a in case.all_arrays]))
    check(eager, native_for(cid, dtype), case, dtype)


@pytest.mark.parametrize("name", [BCE, FOCAL, SCE, SAFE, POLY, KL, KL_LOG, GKL, CKL])
def test_mixed_dtypes_match_optax(name):
    """float32 first and float64 second argument (and int32 {0, 1} labels for the sigmoid
    losses): the result dtype is optax's (the sigmoid losses cast the labels to the logits'
    dtype, the others promote). optax computes the log-softmax/log-sigmoid of the float32
    argument in float32 and promotes afterwards, so values agree to float32 precision."""
    case = case_for(config(name), "float32")
    variants = [[case.arrays[0], case.arrays[1].astype(np.float64)]]
    if name in (BCE, FOCAL):
        variants.append([case.arrays[0], np.round(case.arrays[1]).astype(np.int32)])
    for arrays in variants:
        c = Case(name, arrays, case.kw)
        expected = native(c)
        for kind in ("jax", "numpy"):
            got = run_on(KINDS[kind], mirror(c), *c.arrays)
            assert got.dtype == expected.dtype, f"{kind}: {arrays[1].dtype} labels"
            rtol, atol = tolerance(c, "float32")
            assert_close(got, expected, dtype="float32", rtol=rtol, atol=atol,
                         err_msg=f"{kind}: {arrays[1].dtype} labels")


# ---- 2. the same mirror on every array type ------------------------------------------------------

KIND_GRID = [
    config(BCE), config(FOCAL, "3d", alpha=0.25), config(FOCAL, gamma=0.5, extreme=True),
    config(SCE), config(SCE, "axis1", "full"), config(SCE, "tuple", "batch"), config(SCE, "none"),
    config(INT), config(INT, "axis0", "batch"), config(INT, "tuple", "full"),
    config(SAFE), config(POLY, "axis1", "full", epsilon=-1.0),
    config(KL, "2d", "full"), config(KL_LOG, "tuple"), config(GKL, "axis1"), config(CKL),
    config(SMOOTH, alpha=0.1), config(SMOOTH, "tuple", "full", alpha=0.2),
    config(SCE, "empty"), config(INT, "empty"),
]
# JAX's eager dispatch compiles every operation for each new shape and dtype; eager JAX runs
# every other configuration, in alternating dtypes, and every integer-label one (whose
# labels are validated eagerly). JAX also runs compiled in sections 3 and 7.
_JAX_DTYPE = {cid: DTYPES[(i // 2) % 2] for i, cid in enumerate(KIND_GRID)
              if i % 2 == 0 or CONFIGS[cid][0] == INT}


def _kind_grid():
    out = []
    for param in kind_params():
        kind = param.values[0]
        for dtype in DTYPES:
            for cid in KIND_GRID:
                if kind.name == "jax" and _JAX_DTYPE.get(cid) != dtype:
                    continue
                out.append(pytest.param(kind, dtype, cid, id=f"{kind.name}-{dtype}-{cid}",
                                        marks=param.marks))
    return out


@pytest.mark.parametrize(("kind", "dtype", "cid"), _kind_grid())
def test_every_backend_matches_optax(kind, dtype, cid):
    case = case_for(cid, dtype)
    got = run_on(kind, mirror(case), *case.all_arrays)
    check(got, native_for(cid, dtype), case, dtype, err_msg=kind.name)


# ---- 3. gradients ---------------------------------------------------------------------------------

GRAD_GRID = [
    config(BCE), config(BCE, extreme=True), config(FOCAL), config(FOCAL, gamma=0.5, alpha=0.25),
    config(FOCAL, extreme=True, hard=True),  # saturated logits: optax's gradient is finite
    config(FOCAL, "3d", gamma=0.0, hard=True), config(SCE), config(SCE, "axis1", "full"),
    config(SCE, "tuple", "batch"), config(INT), config(INT, "axis1", "full"),
    config(INT, "tuple", "batch"), config(SAFE), config(POLY),
    config(POLY, "axis0", "full", epsilon=-1.0), config(KL), config(KL, "axis1", "full"),
    config(KL_LOG), config(GKL, "tuple"), config(CKL, "2d", "full"), config(SMOOTH, alpha=0.1),
    config(SMOOTH, "axis1", "full", alpha=0.3),
]


# float32 gradients where float32 matters most (the rest in float64): each native gradient is
# a compilation.
GRAD_F32 = {config(BCE, extreme=True), config(FOCAL), config(FOCAL, extreme=True, hard=True),
            config(SCE, "axis1", "full"), config(INT, "tuple", "batch"), config(POLY),
            config(KL, "axis1", "full"), config(GKL, "tuple"), config(SMOOTH, alpha=0.1)}


@pytest.mark.parametrize(("cid", "dtype"), [
    pytest.param(cid, dtype, id=f"{cid}-{dtype}") for cid in GRAD_GRID for dtype in DTYPES
    if dtype == "float64" or cid in GRAD_F32])
def test_gradient_matches_jax_grad(autograd_backend, dtype, cid):
    """Gradient of the sum w.r.t. the first argument (logits, log-predictions, or the labels
    for ``smooth_labels``), on every autograd backend."""
    case = case_for(cid, dtype)
    expected_v, expected_g = native_grad_for(cid, dtype)
    value, grad = mirror_grad(autograd_backend, case)
    check(value, expected_v, case, dtype)
    check(grad, expected_g, case, dtype, grad=True)


SOFT_LABEL_GRID = [config(SCE, "axis1", "full"), config(POLY, "axis1", "full"),
                   config(KL_LOG, "axis1", "full")]


@pytest.mark.parametrize("cid", SOFT_LABEL_GRID)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_wrt_soft_labels_matches(autograd_backend, dtype, cid):
    """Soft labels are differentiable (distillation): the gradient w.r.t. the second argument."""
    case = case_for(cid, dtype)
    expected_v, expected_g = native_grad_for(cid, dtype, 1)
    value, grad = mirror_grad(autograd_backend, case, 1)
    check(value, expected_v, case, dtype)
    check(grad, expected_g, case, dtype, grad=True)


# ---- 4. -inf logits with zero labels ----------------------------------------------------------

def _with_neg_inf(dtype):
    case = case_for(config(SCE), dtype)
    x, y = case.arrays[0].copy(), case.arrays[1].copy()
    x[0, 1] = x[2, 0] = x[2, 3] = -np.inf
    y[0, 1] = y[2, 0] = y[2, 3] = 0.0
    y[:3] /= y[:3].sum(axis=-1, keepdims=True)
    return x, y.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", kind_params())
def test_neg_inf_logits_with_zero_labels(kind, dtype):
    """``softmax_cross_entropy`` gives NaN where a ``-inf`` logit meets a zero label
    (``0·-inf``), exactly like optax; ``safe_softmax_cross_entropy`` gives optax's finite value
    (``0·log 0 = 0``)."""
    x, y = _with_neg_inf(dtype)
    for name in (SCE, SAFE):
        case = Case(name, [x, y])
        expected = native(case)
        assert np.isnan(expected[[0, 2]]).all() == (name == SCE)
        assert np.isfinite(expected[1:2]).all() and np.isfinite(expected[3:]).all()
        got = run_on(kind, mirror(case), x, y)
        check(got, expected, case, dtype, err_msg=kind.name)


@pytest.mark.parametrize("name", [SCE, SAFE])
@pytest.mark.parametrize("dtype", DTYPES)
def test_neg_inf_logits_gradient(autograd_backend, dtype, name):
    """optax's gradients are finite for both (0 at the ``-inf`` logits); so are the mirror's."""
    x, y = _with_neg_inf(dtype)
    case = Case(name, [x, y])
    _, expected_g = native_grad(case)
    assert np.isfinite(expected_g).all()
    _, grad = mirror_grad(autograd_backend, case)
    check(grad, expected_g, case, dtype, grad=True)


@pytest.mark.parametrize("kind", kind_params())
def test_zero_target_as_log_zero_is_nan_like_optax(kind):
    """``kl_divergence_with_log_targets`` with a target of 0 given as ``log 0 = -inf``:
    ``exp(-inf)·(-inf - lp) = 0·-inf`` is NaN in optax, and in the mirror."""
    lp = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    lt = np.log(np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]]))
    case = Case(KL_LOG, [lp, lt])
    expected = native(case)
    assert np.isnan(expected[0]) and np.isfinite(expected[1])
    check(run_on(kind, mirror(case), lp, lt), expected, case, "float64", err_msg=kind.name)


# ---- 5. signatures ---------------------------------------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", ALL)
def test_signatures_match_optax(name):
    """Same names, order, kinds (keyword-only ``alpha``/``gamma``/``epsilon``/``axis``) and
    defaults as optax. No native parameter is omitted."""
    assert _params(getattr(po, name)) == _params(getattr(optax.losses, name))


# ---- 6. deliberate differences ---------------------------------------------------------------------

def _bad_labels(rng, dtype="float64"):
    case = make_case(INT, dtype, rng)
    x, labels = case.arrays
    ok = labels.copy()
    ok[1], ok[3] = C - 1, 0
    return x, ok


@pytest.mark.parametrize("kind", kind_params(exclude=("dask",)))
def test_out_of_range_integer_labels_raise_valueerror(kind, rng):
    """optax gives NaN for a label >= C and silently wraps -1 around to the last class; the
    mirror raises ``ValueError`` naming ``labels`` in eager calls (Dask is lazy and not
    checked)."""
    x, ok = _bad_labels(rng)
    for bad_value in (C, -1, C + 7):
        bad = ok.copy()
        bad[1] = bad_value  # ok[1] is C - 1
        nat = native(Case(INT, [x, bad]))
        if bad_value == -1:  # wraps around to C - 1
            np.testing.assert_array_equal(nat, native(Case(INT, [x, ok])))
        else:
            assert np.isnan(nat[1]) and np.isfinite(np.delete(nat, 1)).all()
        with pytest.raises(ValueError, match="labels"):
            run_on(kind, mirror(Case(INT, [x, bad])), x, bad)
    # tuple axis: the flat index must be below 3 * 4
    case = make_case(INT, "float64", rng, layout="tuple")
    bad = case.arrays[1].copy()
    bad.flat[0] = 12
    assert np.isnan(native(Case(INT, [case.arrays[0], bad], case.kw)).flat[0])
    with pytest.raises(ValueError, match="labels"):
        run_on(kind, mirror(Case(INT, [case.arrays[0], bad], case.kw)), case.arrays[0], bad)


@pytest.mark.compiled
def test_out_of_range_integer_labels_under_jit_are_nan(rng):
    """Under ``jax.jit`` the values cannot be read: an out-of-range label's loss is NaN (as in
    optax for labels >= C; optax wraps -1, the mirror gives NaN, documented); the other rows
    are optax's."""
    x, ok = _bad_labels(rng)
    bad = ok.copy()
    bad[1], bad[3] = C, -1
    f = jax.jit(po.softmax_cross_entropy_with_integer_labels)
    got = np.asarray(f(jnp.asarray(x), jnp.asarray(bad)))
    expected = native(Case(INT, [x, ok]))
    assert np.isnan(got[[1, 3]]).all()
    keep = np.ones(len(got), bool)
    keep[[1, 3]] = False
    assert_close(got[keep], expected[keep], dtype="float64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_divergence_target_gradient_finite_at_zero(autograd_backend, dtype, rng):
    """optax's ``where(targets == 0, 0, log(targets))`` sends NaN back to zero targets; the
    mirror's gradient is finite there (documented) and optax's everywhere else."""
    case = make_case(KL, dtype, rng)
    zero = case.arrays[1] == 0
    assert zero.any()
    _, expected_g = native_grad(case, argnum=1)
    assert np.isnan(expected_g[zero]).all()
    _, grad = mirror_grad(autograd_backend, case, 1)
    assert np.isfinite(grad).all()
    check(grad[~zero], expected_g[~zero], case, dtype, grad=True)


def test_integer_labels_must_be_integers_like_optax(rng):
    case = make_case(INT, "float64", rng)
    x, labels = case.arrays
    with pytest.raises(TypeError):
        native(Case(INT, [x, labels.astype(np.float64)]))
    with pytest.raises(TypeError):
        po.softmax_cross_entropy_with_integer_labels(jnp.asarray(x), jnp.asarray(labels, jnp.float64))


@pytest.mark.parametrize("name", [BCE, SCE, KL])
def test_integer_logits_raise_typeerror_like_optax(name):
    x, y = jnp.ones((3, 4), dtype=jnp.int32), jnp.full((3, 4), 0.25)
    with pytest.raises(TypeError):
        getattr(optax.losses, name)(x, y)
    with pytest.raises(TypeError):
        getattr(po, name)(x, y)


# ---- 7. jax.jit, jax.vmap -------------------------------------------------------------------------

JIT_GRID = [config(FOCAL, alpha=0.25), config(SCE, "axis1", "full"), config(INT, "tuple", "batch"),
            config(POLY, "2d", "full"), config(KL, "2d", "full"), config(SMOOTH, alpha=0.1)]


@pytest.mark.compiled
@pytest.mark.parametrize("cid", JIT_GRID)
def test_jit_vmap_grad_match_optax(cid):
    dtype = "float64"
    case = case_for(cid, dtype)
    xs = [jnp.asarray(a) for a in case.all_arrays]
    mir = mirror(case)

    out = jax.jit(mir)(*xs)
    assert isinstance(out, jax.Array)
    check(out, native_for(cid, dtype), case, dtype)

    grad = jax.jit(jax.grad(lambda a, *rest: jnp.sum(mir(a, *rest))))(*xs)
    check(grad, native_grad_for(cid, dtype)[1], case, dtype, grad=True)

    # per-example: vmap over the batch (axis 0) of every argument
    name, layout, where, kw = CONFIGS[cid]
    if layout in ("2d", "axis1", "tuple") and where != "batch":
        per = Case(name, [a[0] for a in case.arrays], case.kw,
                   None if case.where is None else case.where[0])
        ax = per.kw.get("axis")
        if ax is not None and ax != -1:
            per.kw["axis"] = tuple(a - 1 for a in ax) if isinstance(ax, tuple) else ax - 1
        got = jax.vmap(mirror(per))(*xs)
        check(got, native_for(cid, dtype), case, dtype)
