"""``polyloss.gluon`` against the real ``mxnet.gluon.loss`` 1.9.1.

Expected values and gradients always come from Gluon itself, run in the test on
``mx.nd.NDArray`` values (what Gluon code passes) built from the same NumPy bits, with
their dtype kept. Covered, for every mirror: the scalar ``weight`` (``L2Loss`` applies
``weight/2``), ``batch_axis`` 0 and 1, ``sample_weight`` per sample and of the full shape,
``rho``, float32/float64, random and edge inputs, the same mirror on every installed array
type, gradients (``autograd.record``) on every autograd backend, the constructor
signature, the deliberate differences (empty batch, invalid ``rho``), and the seed's example.

MXNet 1.9.1 needs NumPy < 2; in the modern environment this module skips.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from _native import (
    CASES,
    KINDS,
    D,
    KnownBugs,
    N,
    assert_close,
    kind_params,
    make_inputs,
    require_module,
    run_on,
    to_numpy,
)

mx = require_module("mxnet")  # applies polyloss's numpy.bool shim before importing mxnet
from mxnet import autograd  # noqa: E402
from mxnet.gluon import loss as gloss  # noqa: E402

import polyloss.gluon as pg  # noqa: E402

pytestmark = [
    pytest.mark.native,
    # the "huge" inputs overflow float32 on purpose (Gluon gives inf too)
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

LOSSES = [("L1Loss", None), ("L2Loss", None)] + [("HuberLoss", r) for r in (0.5, 1.0, 2.5)]
# Gluon's defaults: L1Loss/HuberLoss weight=None, L2Loss weight=1.
WEIGHTS = ["default", 0.5, 2.0]


def _loss_id(v):
    return v[0] if v[1] is None else f"{v[0]}-rho={v[1]}"


def make_loss(lib, loss, weight="default", batch_axis=0):
    name, rho = loss
    kw = {"batch_axis": batch_axis}
    if weight != "default":
        kw["weight"] = weight
    if rho is not None:
        kw["rho"] = rho
    return getattr(lib, name)(**kw)


def nd(a):
    return mx.nd.array(a, dtype=a.dtype)


def native(loss, p, t, w=None, weight="default", batch_axis=0):
    f = make_loss(gloss, loss, weight, batch_axis)
    out = f(nd(p), nd(t), None if w is None else nd(w))
    return out.asnumpy()


def mirror(loss, weight="default", batch_axis=0):
    return make_loss(pg, loss, weight, batch_axis)


def inputs(loss, case, dtype, rng, batch_axis=0):
    p, t = make_inputs(case, dtype, rng, threshold=loss[1] or 1.0)
    if batch_axis == 1:  # the batch on axis 1: (D, N) or (T, N, D)
        p, t = np.swapaxes(p, 0, 1).copy(), np.swapaxes(t, 0, 1).copy()
    return p, t


def sample_weight(kind, shape, batch_axis, dtype, rng):
    """``per_sample``: one weight per sample, broadcast over the other axes (shape ``(N, 1)``
    for 2-D, ``(N, 1, 1)`` for 3-D, batch on ``batch_axis``); ``full``: the input's shape."""
    if kind is None:
        return None
    if kind == "per_sample":
        shape = tuple(s if a == batch_axis else 1 for a, s in enumerate(shape))
    w = rng.uniform(0.0, 3.0, size=shape)
    w[rng.random(shape) < 0.2] = 0.0
    return w.astype(dtype)


# ---- 1. values against Gluon, on mx.nd arrays ----------------------------------------------------

@pytest.mark.parametrize("case", ["random", "3d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sw", [None, "per_sample", "full"])
@pytest.mark.parametrize("batch_axis", [0, 1])
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_value_matches_gluon(loss, weight, batch_axis, sw, dtype, case, rng):
    p, t = inputs(loss, case, dtype, rng, batch_axis)
    w = sample_weight(sw, p.shape, batch_axis, dtype, rng)
    expected = native(loss, p, t, w, weight, batch_axis)
    got = run_on(KINDS["mx.nd"], mirror(loss, weight, batch_axis), p, t, w)
    assert got.shape == (p.shape[batch_axis],)
    assert_close(got, expected, dtype=dtype, n=p.size)


@pytest.mark.parametrize("case", [c for c in CASES if c not in ("random", "3d", "empty")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_axis", [0, 1])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_edge_inputs_match_gluon(loss, batch_axis, dtype, case, rng):
    """Zero residuals, |r| = rho, residuals of 1e20 and 1e-20, a batch of one."""
    p, t = inputs(loss, case, dtype, rng, batch_axis)
    bugs = KnownBugs()
    for sw in (None, "per_sample"):
        w = sample_weight(sw, p.shape, batch_axis, dtype, rng)
        expected = native(loss, p, t, w, 2.0, batch_axis)
        got = run_on(KINDS["mx.nd"], mirror(loss, 2.0, batch_axis), p, t, w, bugs=bugs)
        bugs.assert_close(KINDS["mx.nd"], got, expected, dtype=dtype, n=p.size,
                          err_msg=f"sample_weight={sw}")
    bugs.check()


@pytest.mark.parametrize("kind", ["mx.nd", "numpy"])
def test_seed_003_example(kind):
    """Seed 003: ``L2Loss()(nd.ones((2,)), nd.ones((2,))*2, nd.array([1, 2]))`` is [0.5, 1.0]."""
    expected = gloss.L2Loss()(mx.nd.ones((2,)), mx.nd.ones((2,)) * 2, mx.nd.array([1, 2]))
    expected = expected.asnumpy()
    np.testing.assert_array_equal(expected, np.array([0.5, 1.0], dtype=np.float32))
    if kind == "mx.nd":
        out = pg.L2Loss()(mx.nd.ones((2,)), mx.nd.ones((2,)) * 2, mx.nd.array([1, 2]))
        assert KINDS["mx.nd"].is_kind(out)
        got = to_numpy(out)
    else:
        got = pg.L2Loss()(np.ones(2, np.float32), 2 * np.ones(2, np.float32),
                          np.array([1, 2], np.float32))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_label_is_reshaped_to_pred_like_gluon(loss, rng):
    """Gluon reshapes ``label`` to ``pred``'s shape (same element count): an ``(N,)`` label
    against an ``(N, 1)`` prediction is *not* broadcast to ``(N, N)``."""
    p = rng.normal(size=(N, 1))
    t = rng.normal(size=(N,))
    expected = native(loss, p, t)
    for kind in ("mx.nd", "numpy", "mx.np"):
        got = run_on(KINDS[kind], mirror(loss), p, t)
        assert_close(got, expected, dtype="float64", n=N)
    with pytest.raises(ValueError, match="same number of elements"):
        mirror(loss)(p, t[:-1])


# ---- 2. the same mirror on every other array type ----------------------------------------------

KIND_CONFIGS = [  # (case, sample weight, weight, batch_axis)
    ("random", None, "default", 0), ("random", "per_sample", 2.0, 0),
    ("3d", "full", 0.5, 1), ("zero", None, "default", 0), ("threshold", "per_sample", 2.0, 1),
    ("huge", None, "default", 0), ("tiny", None, "default", 0), ("batch1", "full", 2.0, 0),
]


@pytest.mark.parametrize("config", KIND_CONFIGS, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
@pytest.mark.parametrize("kind", kind_params(exclude=("mx.nd",)))
def test_every_backend_matches_gluon(kind, loss, dtype, config, rng):
    """On ``mx.np`` too: Gluon's own ``mx.np`` mode ignores ``batch_axis`` (and its
    ``HuberLoss`` rejects ``mx.np`` arrays), so the reference is always the classic
    ``mx.nd`` Gluon loss, which honours it."""
    case, sw, weight, batch_axis = config
    p, t = inputs(loss, case, dtype, rng, batch_axis)
    w = sample_weight(sw, p.shape, batch_axis, dtype, rng)
    expected = native(loss, p, t, w, weight, batch_axis)
    bugs = KnownBugs()
    got = run_on(kind, mirror(loss, weight, batch_axis), p, t, w, bugs=bugs)
    bugs.assert_close(kind, got, expected, dtype=dtype, n=p.size)
    bugs.check()


def test_np_mode_native_ignores_batch_axis_mirror_does_not(rng):
    """Documented difference: Gluon in ``mx.np`` mode always averages over axes 1..ndim-1."""
    p, t = inputs(("L1Loss", None), "random", "float64", rng, batch_axis=1)
    with mx.util.np_shape(True), mx.util.np_array(True):
        np_mode = gloss.L1Loss(batch_axis=1)(mx.np.array(p), mx.np.array(t)).asnumpy()
    assert np_mode.shape == (D,)  # batch_axis ignored
    expected = native(("L1Loss", None), p, t, batch_axis=1)
    got = run_on(KINDS["mx.np"], mirror(("L1Loss", None), batch_axis=1), p, t)
    assert got.shape == expected.shape == (N,)
    assert_close(got, expected, dtype="float64", n=p.size)


# ---- 3. gradients w.r.t. pred -----------------------------------------------------------------

def native_grad(loss, p, t, w=None, weight="default"):
    f = make_loss(gloss, loss, weight)
    x = nd(p)
    x.attach_grad()
    with autograd.record():
        out = f(x, nd(t), None if w is None else nd(w))
    out.backward()  # head gradient of ones: the gradient of out.sum()
    return out.asnumpy(), x.grad.asnumpy()


def _vg_legacy_nd(fn, arrays, argnum):
    """The mirror differentiated on classic ``mx.nd`` arrays, as Gluon code does."""
    xs = [nd(a) for a in arrays]
    xs[argnum].attach_grad()
    with autograd.record():
        out = fn(*xs)
    out.backward()
    return to_numpy(out), to_numpy(xs[argnum].grad)


GRAD_BACKENDS = ["torch", "jax", "tensorflow", "mxnet", "mx.nd"]


@pytest.mark.parametrize("case", ["random", "zero", "threshold"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_gradient_matches_gluon_autograd(backend, loss, weighted, dtype, case, rng):
    """Includes the kinks: L1 at r = 0 (MXNet's |r| subgradient is 0; so is the mirror's on
    every backend, JAX included) and HuberLoss at |r| = rho (Gluon takes the quadratic
    branch, gradient ±1; the mirror's linear branch gives the same)."""
    from conftest import INSTALLED_NAMES

    name = "mxnet" if backend == "mx.nd" else backend
    if name not in INSTALLED_NAMES:
        pytest.skip(f"{name} is not installed in this environment")
    p, t = inputs(loss, case, dtype, rng)
    w = sample_weight("per_sample" if weighted else None, p.shape, 0, dtype, rng)
    weight = 2.0 if weighted else "default"
    expected_v, expected_g = native_grad(loss, p, t, w, weight)
    f = mirror(loss, weight)
    arrays = [p, t] if w is None else [p, t, w]
    if backend == "mx.nd":
        value, grad = _vg_legacy_nd(f, arrays, 0)
    else:
        from polyloss.parity.backends import BACKENDS

        value, grad = BACKENDS[backend].value_and_grad(f, arrays, 0)
    assert_close(value, expected_v, dtype=dtype, n=p.size)
    assert_close(grad, expected_g, dtype=dtype, n=p.size)


# ---- 4. signatures ---------------------------------------------------------------------------------

def _params(fn, drop=()):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in drop]


@pytest.mark.parametrize("name", ["L1Loss", "L2Loss", "HuberLoss"])
def test_signatures_match_gluon(name):
    """Constructor: same names, order, kinds and defaults (``**kwargs`` included). The call
    is Gluon's ``hybrid_forward`` without its ``F``. No native parameter is omitted."""
    assert _params(getattr(pg, name).__init__) == _params(getattr(gloss, name).__init__)
    native_call = _params(getattr(gloss, name).hybrid_forward, drop=("F",))
    assert _params(getattr(pg, name).__call__) == native_call
    assert _params(getattr(pg, name).forward) == native_call


# ---- 5. deliberate differences -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
@pytest.mark.parametrize("kind", kind_params())
def test_empty_batch_is_empty_where_gluon_raises(kind, loss, dtype, rng):
    """Gluon fails in shape inference on a ``(0, D)`` batch (a 0-length dim means "unknown"
    to the classic NDArray); the mirror returns an empty ``(0,)`` result, as documented."""
    p, t = inputs(loss, "empty", dtype, rng)
    with pytest.raises(mx.base.MXNetError):
        native(loss, p, t)
        mx.nd.waitall()
    bugs = KnownBugs()
    got = run_on(kind, mirror(loss), p, t, bugs=bugs)
    assert got.shape == (0,)
    assert got.dtype == np.dtype(dtype)
    bugs.check()


@pytest.mark.parametrize("rho", [0, 0.0, -1.0])
def test_nonpositive_rho_raises_valueerror(rho, rng):
    p, t = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    if rho == 0:
        with pytest.raises(ZeroDivisionError):  # Gluon: 0.5 / rho at call time
            native(("HuberLoss", rho), p, t)
    else:
        native(("HuberLoss", rho), p, t)  # Gluon computes a (meaningless) value
    with pytest.raises(ValueError, match="rho"):
        pg.HuberLoss(rho=rho)


def test_enlarging_sample_weight_raises_where_gluon_broadcasts(rng):
    p, t = rng.normal(size=(N, 1)), rng.normal(size=(N, 1))
    w = rng.uniform(size=(N, 3))
    assert native(("L1Loss", None), p, t, w).shape == (N,)  # (N, 1) * (N, 3) -> (N, 3)
    with pytest.raises(ValueError, match="sample_weight"):
        pg.L1Loss()(p, t, w)
