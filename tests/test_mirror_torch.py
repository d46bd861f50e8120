"""``polyloss.torch`` against the real ``torch.nn`` / ``torch.nn.functional`` 2.13 losses.

Expected values and gradients always come from torch itself, run in the test on torch
tensors built from the same NumPy bits. Covered, for every mirror in class and function
form: the reductions (with the legacy ``size_average``/``reduce`` flags and their warning),
``weight`` (two different weighted-mean denominators), ``delta``/``beta``, float32/float64,
random and edge inputs, the same mirror on every installed array type, gradients on every
autograd backend, signatures, the deliberate differences, and ``torch.compile``.
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
    assert_close,
    kind_params,
    make_inputs,
    require_module,
    run_on,
)

torch = require_module("torch")
F = torch.nn.functional
pt = pytest.importorskip("polyloss.torch")

pytestmark = [
    pytest.mark.native,
    # the "huge" inputs overflow float32 on purpose (torch gives inf too)
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


@dataclass(frozen=True)
class Spec:
    cls: str
    fn: str
    param: str | None = None  # "delta" / "beta"
    legacy: bool = True  # has size_average/reduce
    weight: bool = True  # the functional form has `weight`


SPECS = {
    "l1": Spec("L1Loss", "l1_loss"),
    "mse": Spec("MSELoss", "mse_loss"),
    "huber": Spec("HuberLoss", "huber_loss", "delta", legacy=False),
    "smooth_l1": Spec("SmoothL1Loss", "smooth_l1_loss", "beta", weight=False),
}

# (spec, parameter value); Huber's delta must be > 0, smooth-L1's beta = 0 is plain L1.
LOSSES = [("l1", None), ("mse", None)] + [("huber", d) for d in (0.5, 1.0, 2.5)] + [
    ("smooth_l1", b) for b in (0.0, 0.5, 1.0, 2.5)]
# A smaller set for the cross-backend and gradient grids (every parameter value is covered
# against torch's own tensors above them).
LOSSES_SHORT = [("l1", None), ("mse", None), ("huber", 2.5), ("huber", 1.0),
                ("smooth_l1", 0.5), ("smooth_l1", 0.0)]
REDUCTIONS = ("none", "sum", "mean")


def _loss_id(v):
    return f"{v[0]}" if v[1] is None else f"{v[0]}-{v[1]}"


def make_call(lib_cls, lib_fn, loss, form, reduction="mean", **extra):
    """The same spelling on torch.nn/torch.nn.functional and on polyloss.torch."""
    name, value = loss
    spec = SPECS[name]
    kw = {"reduction": reduction, **extra}
    if spec.param:
        kw[spec.param] = value
    if form == "class":
        obj = getattr(lib_cls, spec.cls)(**kw)
        return lambda i, t: obj(i, t)
    fn = getattr(lib_fn, spec.fn)
    return lambda i, t, *w: fn(i, t, **kw, **({"weight": w[0]} if w else {}))


def native(loss, form, reduction, *arrays, **extra):
    f = make_call(torch.nn, F, loss, form, reduction, **extra)
    tensors = [torch.from_numpy(a.copy()) for a in arrays]
    with torch.no_grad():
        return f(*tensors).numpy()


def mirror(loss, form, reduction, **extra):
    return make_call(pt, pt, loss, form, reduction, **extra)


def threshold_of(loss):
    return loss[1] if loss[1] else 1.0


# ---- 1. values against torch, on torch tensors ---------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", LOSSES, ids=_loss_id)
def test_value_matches_torch(loss, form, reduction, dtype, case, rng):
    p, t = make_inputs(case, dtype, rng, threshold=threshold_of(loss))
    expected = native(loss, form, reduction, p, t)
    got = run_on(KINDS["torch"], mirror(loss, form, reduction), p, t)
    assert_close(got, expected, dtype=dtype, n=p.size)
    if case == "empty":  # torch: mean of nothing is 0/0 = nan, the sum is 0, none is empty
        assert {"mean": np.isnan(expected), "sum": expected == 0,
                "none": expected.shape == (0, p.shape[1])}[reduction]


# torch's `weight`: mse_loss/l1_loss divide a weighted mean by Σw; huber_loss divides by N
# (ATen's `weighted_loss.mean()`). Zero weights and a batch whose weights sum to 0 included.
WEIGHTED = [("l1", None), ("mse", None), ("huber", 0.5), ("huber", 1.0), ("huber", 2.5)]


def _weights(case, shape, dtype, rng):
    w = rng.uniform(0.0, 3.0, size=shape)
    w[rng.random(shape) < 0.2] = 0.0
    return w.astype(dtype)


@pytest.mark.parametrize("case", ["random", "zero", "threshold", "huge", "batch1", "empty", "3d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", WEIGHTED, ids=_loss_id)
def test_weight_matches_torch(loss, reduction, dtype, case, rng):
    p, t = make_inputs(case, dtype, rng, threshold=threshold_of(loss))
    w = _weights(case, p.shape, dtype, rng)
    expected = native(loss, "function", reduction, p, t, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 of an empty weighted mean
        got = run_on(KINDS["torch"], mirror(loss, "function", reduction), p, t, w)
    assert_close(got, expected, dtype=dtype, n=p.size)


def test_weighted_mean_denominators_differ_like_torch():
    """The two weighted-mean rules, on numbers where they visibly differ (hand-checkable:
    residuals 1 and 2 with weights 1 and 3: Σw·r² / Σw = 13/4, Σw·huber / N = (0.5 + 3·1.5)/2)."""
    p = np.array([1.0, 2.0])
    t = np.zeros(2)
    w = np.array([1.0, 3.0])
    tp, tt, tw = (torch.from_numpy(a) for a in (p, t, w))
    assert F.mse_loss(tp, tt, weight=tw).item() == 13 / 4
    assert F.huber_loss(tp, tt, weight=tw).item() == (0.5 + 3 * 1.5) / 2
    assert pt.mse_loss(tp, tt, weight=tw).item() == 13 / 4
    assert pt.huber_loss(tp, tt, weight=tw).item() == (0.5 + 3 * 1.5) / 2
    assert float(pt.l1_loss(p, t, weight=w)) == F.l1_loss(tp, tt, weight=tw).item() == 7 / 4
    # all weights zero: Σw = 0 gives 0/0 = nan for mse/l1, but 0 for huber (divides by N)
    zw = torch.zeros(2, dtype=torch.float64)
    assert np.isnan(F.mse_loss(tp, tt, weight=zw).item())
    assert np.isnan(pt.mse_loss(tp, tt, weight=zw).item())
    assert F.huber_loss(tp, tt, weight=zw).item() == pt.huber_loss(tp, tt, weight=zw).item() == 0


LEGACY = [(None, False), (False, None), (False, False), (True, True), (True, False),
          (False, True), (None, True), (True, None)]


@pytest.mark.parametrize("flags", LEGACY, ids=lambda f: f"size_average={f[0]}-reduce={f[1]}")
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", [("l1", None), ("mse", None), ("smooth_l1", 0.5)], ids=_loss_id)
def test_legacy_flags_warn_and_match_torch(loss, form, flags, rng):
    size_average, reduce = flags
    p, t = make_inputs("random", "float64", rng)
    legacy = {"size_average": size_average, "reduce": reduce}
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        expected = native(loss, form, "mean", p, t, **legacy)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        f = mirror(loss, form, "mean", **legacy)
        got = run_on(KINDS["torch"], f, p, t)
    assert_close(got, expected, dtype="float64", n=p.size)
    if form == "class":
        with pytest.warns(UserWarning):
            n_obj = getattr(torch.nn, SPECS[loss[0]].cls)(**legacy)
        with pytest.warns(UserWarning):
            m_obj = getattr(pt, SPECS[loss[0]].cls)(**legacy)
        assert m_obj.reduction == n_obj.reduction


# ---- 2. the same mirror on every other array type ----------------------------------------------

@pytest.mark.parametrize("case", ["random", "zero", "threshold", "huge", "tiny", "empty", "3d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", LOSSES_SHORT, ids=_loss_id)
@pytest.mark.parametrize("kind", kind_params(exclude=("torch",)))
def test_every_backend_matches_torch(kind, loss, form, dtype, case, rng):
    p, t = make_inputs(case, dtype, rng, threshold=threshold_of(loss))
    bugs = KnownBugs()
    for reduction in REDUCTIONS:
        expected = native(loss, form, reduction, p, t)
        got = run_on(kind, mirror(loss, form, reduction), p, t, bugs=bugs)
        bugs.assert_close(kind, got, expected, dtype=dtype, n=p.size,
                          err_msg=f"reduction={reduction}")
    bugs.check()


@pytest.mark.parametrize("case", ["random", "empty"])
@pytest.mark.parametrize("loss", [("l1", None), ("mse", None), ("huber", 2.5)], ids=_loss_id)
@pytest.mark.parametrize("kind", kind_params(exclude=("torch",)))
def test_every_backend_weight_matches_torch(kind, loss, case, rng):
    p, t = make_inputs(case, "float64", rng, threshold=2.5)
    w = _weights(case, p.shape, "float64", rng)
    bugs = KnownBugs()
    for reduction in REDUCTIONS:
        expected = native(loss, "function", reduction, p, t, w)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 of an empty weighted mean
            got = run_on(kind, mirror(loss, "function", reduction), p, t, w, bugs=bugs)
        bugs.assert_close(kind, got, expected, dtype="float64", n=p.size,
                          err_msg=f"reduction={reduction}")
    bugs.check()


# ---- 3. gradients w.r.t. the input ---------------------------------------------------------------

def native_grad(loss, form, reduction, p, t, w=None):
    f = make_call(torch.nn, F, loss, form, reduction)
    x = torch.from_numpy(p.copy()).requires_grad_(True)
    args = [torch.from_numpy(t.copy())] + ([torch.from_numpy(w.copy())] if w is not None else [])
    out = f(x, *args)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach().numpy(), g.numpy()


@pytest.mark.parametrize("case", ["random", "zero", "threshold"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", LOSSES_SHORT, ids=_loss_id)
def test_gradient_matches_torch_autograd(autograd_backend, loss, reduction, dtype, case, rng):
    """Includes the kinks: |r| at r = 0 (torch's subgradient 0; polyloss gives 0 on every
    backend, although JAX's own ``abs`` would give +1) and Huber/smooth-L1 at |r| = delta."""
    p, t = make_inputs(case, dtype, rng, threshold=threshold_of(loss))
    form = "class" if reduction == "mean" else "function"
    expected_v, expected_g = native_grad(loss, form, reduction, p, t)
    value, grad = autograd_backend.value_and_grad(mirror(loss, form, reduction), [p, t], 0)
    assert_close(value, expected_v, dtype=dtype, n=p.size)
    assert_close(grad, expected_g, dtype=dtype, n=p.size)


@pytest.mark.parametrize("loss", [("l1", None), ("mse", None), ("huber", 2.5)], ids=_loss_id)
def test_weighted_gradient_matches_torch_autograd(autograd_backend, loss, rng):
    p, t = make_inputs("zero", "float64", rng)
    w = _weights("zero", p.shape, "float64", rng)
    expected_v, expected_g = native_grad(loss, "function", "mean", p, t, w)
    value, grad = autograd_backend.value_and_grad(mirror(loss, "function", "mean"), [p, t, w], 0)
    assert_close(value, expected_v, dtype="float64", n=p.size)
    assert_close(grad, expected_g, dtype="float64", n=p.size)


def test_l1_kink_gradient_is_zero_everywhere(autograd_backend):
    """At a zero residual torch's L1 gradient is 0; the mirror gives exactly 0 on every
    autograd backend (JAX's ``jnp.abs`` alone would give +1/N)."""
    p = np.array([1.0, -2.0, 0.5])
    _, grad = autograd_backend.value_and_grad(pt.l1_loss, [p, p.copy()], 0)
    np.testing.assert_array_equal(grad, np.zeros(3))
    _, expected = native_grad(("l1", None), "function", "mean", p, p.copy())
    np.testing.assert_array_equal(expected, np.zeros(3))


# ---- 4. signatures ---------------------------------------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", list(SPECS))
def test_signatures_match_torch(name):
    """Constructor, forward and functional: same names, order, kinds and defaults as torch.
    No native parameter is omitted."""
    spec = SPECS[name]
    assert _params(getattr(pt, spec.cls).__init__) == _params(getattr(torch.nn, spec.cls).__init__)
    assert _params(getattr(pt, spec.cls).forward) == _params(getattr(torch.nn, spec.cls).forward)
    assert _params(getattr(pt, spec.fn)) == _params(getattr(F, spec.fn))


# ---- 5. deliberate differences ---------------------------------------------------------------------

@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", LOSSES_SHORT, ids=_loss_id)
def test_shape_mismatch_raises_where_torch_warns_and_broadcasts(loss, form, rng):
    p = rng.normal(size=(4, 1))
    t = rng.normal(size=(4,))
    with pytest.warns(UserWarning, match="different to the input size"):
        out = native(loss, form, "none", p, t)
    assert out.shape == (4, 4)  # torch's silent (N, N) broadcast
    for kind in ("numpy", "torch"):
        with pytest.raises(ValueError, match="shape"):
            run_on(KINDS[kind], mirror(loss, form, "none"), p, t)


@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_invalid_delta_raises_valueerror(bad, form):
    x = torch.ones(3)
    with pytest.raises(RuntimeError):  # torch: from the kernel, at call time
        make_call(torch.nn, F, ("huber", bad), form)(x, 2 * x)
    with pytest.raises(ValueError, match="delta"):
        make_call(pt, pt, ("huber", bad), form)(x, 2 * x)


@pytest.mark.parametrize("form", ["class", "function"])
def test_invalid_beta_raises_valueerror(form):
    x = torch.ones(3)
    with pytest.raises(RuntimeError):
        make_call(torch.nn, F, ("smooth_l1", -1.0), form)(x, 2 * x)
    with pytest.raises(ValueError, match="beta"):
        make_call(pt, pt, ("smooth_l1", -1.0), form)(x, 2 * x)


def test_invalid_reduction_and_weight_shape_raise_like_torch():
    x = torch.ones(3)
    with pytest.raises(ValueError):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError):
        pt.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="same size"):
        F.mse_loss(x, x, weight=torch.ones(2))
    with pytest.raises(ValueError, match="same size"):
        pt.mse_loss(x, x, weight=torch.ones(2))


# ---- 6. torch.compile ----------------------------------------------------------------------------

@pytest.mark.compiled
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", [("l1", None), ("mse", None), ("huber", 2.5), ("smooth_l1", 0.5)],
                         ids=_loss_id)
def test_torch_compile_fullgraph_matches_torch(loss, form, rng):
    p, t = make_inputs("zero", "float32", rng, threshold=threshold_of(loss))
    expected_v, expected_g = native_grad(loss, form, "mean", p, t)
    compiled = torch.compile(mirror(loss, form, "mean"), fullgraph=True, backend="aot_eager")
    x = torch.from_numpy(p.copy()).requires_grad_(True)
    out = compiled(x, torch.from_numpy(t.copy()))
    (g,) = torch.autograd.grad(out, x)
    assert_close(out.detach(), expected_v, dtype="float32", n=p.size)
    assert_close(g, expected_g, dtype="float32", n=p.size)
