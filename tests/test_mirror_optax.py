"""``polyloss.optax`` against the real ``optax.losses`` 0.2.8.

Expected values and gradients always come from optax itself, run in the test on JAX
arrays (64-bit enabled, as the parity backends set it up) built from the same NumPy bits.
Covered, for every mirror: ``targets`` given and ``targets=None`` (the predictions are the
errors), Huber's ``delta``, float32/float64, random and edge inputs, the same mirror on
every installed array type, gradients (``jax.grad``) on every autograd backend, signatures,
the deliberate differences, and ``jax.jit``/``jax.vmap``/``jax.grad``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from _native import (
    CASES,
    KINDS,
    KnownBugs,
    N,
    assert_close,
    cancel_atol,
    kind_params,
    make_inputs,
    require_module,
    run_on,
)

jax = require_module("jax")  # set up with jax_enable_x64 = True
jnp = jax.numpy
optax = require_module("optax")
po = pytest.importorskip("polyloss.optax")

pytestmark = [
    pytest.mark.native,
    # the "huge" inputs overflow float32 on purpose (optax gives inf too)
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

LOSSES = [("squared_error", None), ("l2_loss", None)] + [
    ("huber_loss", d) for d in (0.5, 1.0, 2.5)] + [("log_cosh", None)]


def _loss_id(v):
    return v[0] if v[1] is None else f"{v[0]}-delta={v[1]}"


def make_call(lib, loss, with_targets=True):
    name, delta = loss
    fn = getattr(lib, name)
    kw = {} if delta is None else {"delta": delta}
    if with_targets:
        return lambda p, t: fn(p, t, **kw)
    return lambda p: fn(p, **kw)


def native(loss, *arrays):
    return np.asarray(make_call(optax.losses, loss, len(arrays) == 2)(
        *[jnp.asarray(a) for a in arrays]))


def mirror(loss, with_targets=True):
    return make_call(po, loss, with_targets)


def atol_for(loss, dtype):
    """optax's ``log_cosh`` is ``logaddexp(e, -e) - log 2``, which cancels for small ``e``: the
    mirror reproduces that form, and the backends' ``logaddexp`` kernels differ by an ulp of
    log 2, a large relative error when the result is tiny (see ``cancel_atol``)."""
    return cancel_atol(dtype) if loss[0] == "log_cosh" else 0.0


def arrays_for(loss, case, dtype, rng, with_targets):
    p, t = make_inputs(case, dtype, rng, threshold=loss[1] or 1.0)
    if with_targets:
        return [p, t]
    return [(p.astype(np.float64) - t.astype(np.float64)).astype(dtype)]  # the errors


# ---- 1. values against optax, on JAX arrays ---------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_targets", [True, False], ids=["targets", "targets=None"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_value_matches_optax(loss, with_targets, dtype, case, rng):
    arrays = arrays_for(loss, case, dtype, rng, with_targets)
    expected = native(loss, *arrays)
    got = run_on(KINDS["jax"], mirror(loss, with_targets), *arrays)
    assert got.shape == arrays[0].shape  # elementwise, never reduced
    assert_close(got, expected, dtype=dtype, atol=atol_for(loss, dtype))


# ---- 2. the same mirror on every other array type --------------------------------------------

@pytest.mark.parametrize("case", ["random", "zero", "threshold", "huge", "tiny", "empty", "3d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_targets", [True, False], ids=["targets", "targets=None"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
@pytest.mark.parametrize("kind", kind_params(exclude=("jax",)))
def test_every_backend_matches_optax(kind, loss, with_targets, dtype, case, rng):
    arrays = arrays_for(loss, case, dtype, rng, with_targets)
    expected = native(loss, *arrays)
    bugs = KnownBugs()
    got = run_on(kind, mirror(loss, with_targets), *arrays, bugs=bugs)
    bugs.assert_close(kind, got, expected, dtype=dtype, atol=atol_for(loss, dtype))
    bugs.check()


# ---- 3. gradients w.r.t. the predictions --------------------------------------------------------

def native_grad(loss, arrays):
    f = make_call(optax.losses, loss, len(arrays) == 2)
    xs = [jnp.asarray(a) for a in arrays]

    def total(x):
        out = f(x, *xs[1:])
        return jnp.sum(out), out

    (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[0])
    return np.asarray(out), np.asarray(g)


@pytest.mark.parametrize("case", ["random", "zero", "threshold"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_targets", [True, False], ids=["targets", "targets=None"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_gradient_matches_jax_grad(autograd_backend, loss, with_targets, dtype, case, rng):
    """Kinks included where optax's own gradient does not depend on JAX's ``abs``
    subgradient: Huber at e = 0 (``½q²`` with ``q = |e|`` has gradient 0 whatever ``abs``
    gives) and at |e| = delta (optax's ``minimum`` splits the tie, the sum is still
    ±delta), and log-cosh at 0. There is no optax L1 loss, so JAX's +1 at |0| never enters."""
    arrays = arrays_for(loss, case, dtype, rng, with_targets)
    expected_v, expected_g = native_grad(loss, arrays)
    value, grad = autograd_backend.value_and_grad(mirror(loss, with_targets), arrays, 0)
    assert_close(value, expected_v, dtype=dtype, atol=atol_for(loss, dtype))
    assert_close(grad, expected_g, dtype=dtype, atol=grad_atol(loss, dtype))
    if loss[0] == "huber_loss":
        # The mirror's gradient is exactly clip(e, -delta, delta) (hand-computed from the
        # formula, with e rounded as the mirror and optax both round it).
        e = arrays[0] - arrays[1] if with_targets else arrays[0]
        np.testing.assert_array_equal(grad, np.clip(e, -loss[1], loss[1]))


def grad_atol(loss, dtype):
    """Where optax's own gradient carries a rounding error the mirror does not have.

    - ``huber_loss``: optax writes ``½q² + delta·(|e| - q)`` with ``q = min(|e|, delta)``; its
      backward pass adds ``(q - delta) + delta`` for ``|e| < delta``, so optax's gradient is
      ``e`` rounded to a multiple of ulp(delta) (absolute error up to ½ ulp(delta)); the
      mirror's is exactly ``e`` (asserted separately). See ``test_huber_tiny_error_gradient``.
    - ``log_cosh``: d/de logaddexp(e, -e) = tanh(e) is formed as a difference of two ~½ terms
      by some backends: an absolute error of a few ulps of 1.
    """
    if loss[0] == "huber_loss":
        return float(np.spacing(np.asarray(loss[1], dtype=dtype)))
    if loss[0] == "log_cosh":
        return 8 * float(np.finfo(dtype).eps)
    return 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huber_tiny_error_gradient(autograd_backend, dtype):
    """Native behaviour the mirror does not reproduce (it is more accurate): for an error of
    1e-20, optax's huber_loss gradient is 0 (``(1e-20 - delta) + delta`` rounds to 0), the
    true gradient (hand-computed: d/de ½e² = e) is 1e-20, which the mirror returns."""
    p = np.array([1e-20, -3e-20, 0.25], dtype=dtype)
    _, native_g = native_grad(("huber_loss", 1.0), [p])
    np.testing.assert_array_equal(native_g, np.array([0.0, 0.0, 0.25], dtype=dtype))
    _, grad = autograd_backend.value_and_grad(mirror(("huber_loss", 1.0), False), [p], 0)
    np.testing.assert_array_equal(grad, p)


# ---- 4. signatures ---------------------------------------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", [name for name, _ in LOSSES[:3]] + ["log_cosh"])
def test_signatures_match_optax(name):
    """Same names, order, kinds (``delta`` keyword-only) and defaults as optax. No native
    parameter is omitted."""
    assert _params(getattr(po, name)) == _params(getattr(optax.losses, name))


# ---- 5. deliberate differences ---------------------------------------------------------------------

@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_shape_mismatch_raises_valueerror(loss, rng):
    """optax's squared_error/l2_loss reject different shapes too; its huber_loss and log_cosh
    broadcast ``(N, 1)`` against ``(N,)`` silently into ``(N, N)``. The mirror always raises."""
    p, t = rng.normal(size=(N, 1)), rng.normal(size=(N,))
    if loss[0] in ("squared_error", "l2_loss"):
        with pytest.raises(ValueError, match="[Ss]hape"):
            native(loss, p, t)
    else:
        assert native(loss, p, t).shape == (N, N)
    for kind in ("jax", "numpy"):
        with pytest.raises(ValueError, match="shape"):
            run_on(KINDS[kind], mirror(loss), p, t)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_nonpositive_delta_raises_where_optax_accepts(bad, rng):
    p, t = rng.normal(size=(N,)), rng.normal(size=(N,))
    native(("huber_loss", bad), p, t)  # optax: 0 (delta = 0) or a negative "loss"
    with pytest.raises(ValueError, match="delta"):
        po.huber_loss(jnp.asarray(p), jnp.asarray(t), delta=bad)


@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_integer_predictions_raise_typeerror_like_optax(loss):
    p, t = jnp.ones((3,), dtype=jnp.int32), jnp.ones((3,))
    with pytest.raises(TypeError):
        make_call(optax.losses, loss)(p, t)
    with pytest.raises(TypeError):
        mirror(loss)(p, t)


# ---- 6. jax.jit, jax.vmap, jax.grad ----------------------------------------------------------------

@pytest.mark.compiled
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_jit_vmap_grad_match_optax(loss, dtype, rng):
    p, t = make_inputs("threshold" if loss[1] else "zero", dtype, rng, threshold=loss[1] or 1.0)
    P, Tg = jnp.asarray(p), jnp.asarray(t)
    nat, mir = make_call(optax.losses, loss), mirror(loss)
    atol, gatol = atol_for(loss, dtype), grad_atol(loss, dtype)

    out = jax.jit(mir)(P, Tg)
    assert isinstance(out, jax.Array)
    assert_close(out, np.asarray(jax.jit(nat)(P, Tg)), dtype=dtype, atol=atol)

    out = jax.vmap(mir)(P, Tg)  # one row at a time
    assert_close(out, np.asarray(jax.vmap(nat)(P, Tg)), dtype=dtype, atol=atol)

    def grad_of(f):
        return jax.jit(jax.grad(lambda x: jnp.sum(f(x, Tg))))(P)

    assert_close(grad_of(mir), np.asarray(grad_of(nat)), dtype=dtype, atol=gatol)

    # per-example gradients: vmap of grad, the common optax pattern
    def per_example(f):
        return jax.vmap(jax.grad(lambda x, y: jnp.sum(f(x, y))))(P, Tg)

    assert_close(per_example(mir), np.asarray(per_example(nat)), dtype=dtype, atol=gatol)


@pytest.mark.compiled
def test_jit_with_targets_none():
    e = jnp.asarray(np.array([-3.0, -1.0, 0.0, 0.5, 2.0]))
    for loss in LOSSES:
        nat, mir = make_call(optax.losses, loss, False), mirror(loss, False)
        assert_close(jax.jit(mir)(e), np.asarray(jax.jit(nat)(e)), dtype="float64",
                     atol=atol_for(loss, "float64"))
