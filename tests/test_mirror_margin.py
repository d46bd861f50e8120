"""The margin (hinge-type) losses: every mirror against its real native, and the canonical
functions against NumPy float64 oracles.

- ``polyloss.torch``: ``HingeEmbeddingLoss``, ``MultiLabelMarginLoss``,
  ``MultiLabelSoftMarginLoss``, ``MultiMarginLoss``, ``SoftMarginLoss``, ``MarginRankingLoss``
  (class and function form) against torch 2.13;
- ``polyloss.keras``: ``Hinge``, ``SquaredHinge``, ``CategoricalHinge`` (and the functions)
  against Keras 3.15 on TensorFlow;
- ``polyloss.gluon``: ``HingeLoss``, ``SquaredHingeLoss``, ``LogisticLoss`` against MXNet 1.9.1;
- ``polyloss.optax``: ``hinge_loss``, ``perceptron_loss``, ``multiclass_hinge_loss``,
  ``multiclass_perceptron_loss`` against optax 0.2.8 (64-bit JAX, as the parity backends set
  it up);
- canonical ``polyloss.hinge``, ``squared_hinge``, ``categorical_hinge`` (Crammer–Singer),
  ``multi_margin`` (Weston–Watkins), ``hinge_embedding``, ``soft_margin``,
  ``margin_ranking`` against oracles written here from the formulas, on every installed
  backend, with gradients on the autograd backends.

Every expected mirror value and gradient comes from the native framework, run in the test on
its own arrays built from the same NumPy bits; canonical expectations from the NumPy float64
oracles below (the analytic derivative for gradients). Covered: float32 and float64, random
inputs and points exactly at the margin (where each framework's tie rule decides the
gradient: TensorFlow's ``maximum`` gives it to the first argument, torch's ``clamp_min``
passes it, torch's C++ kernels and MXNet's ``relu`` drop it, ``jnp.maximum``/``jnp.max``
split it), batch of one, the empty batch where the native supports it, every reduction
(torch's legacy ``size_average``/``reduce`` too), weights, the same mirror on the other
installed array types (returned as the caller's type), signatures and bad input.

Deliberate differences checked as such: torch's ``SoftMarginLoss`` overflows to inf (and a
NaN gradient) for ``y·x`` below about -88 (float32) / -709 (float64), the mirror is finite;
Gluon's ``LogisticLoss`` gradient at exactly ``pred = 0`` is the continuous one (as for
``SigmoidBCE``); Gluon raises on an empty batch, the mirror returns an empty result.

Tolerances (``_native.assert_close``): float64 ``rtol = 1e-12``, float32
``8·eps·log2(n)``; an absolute term only where stated (a formula that cancels, a gradient
that is a difference of O(1) terms, MXNet's approximate float32 ``softrelu``).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from _native import (
    EPS,
    KINDS,
    KnownBugs,
    assert_close,
    kind_params,
    natives,
    needs,
    rtol_for,
    run_on,
    to_numpy,
)
from conftest import AUTOGRAD, INSTALLED

import polyloss

pytestmark = [
    pytest.mark.native,
    # torch's SoftMarginLoss overflows on purpose in the overflow test
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


torch, tf, keras, jax, optax, mx = natives("torch", "tensorflow", "keras", "jax", "optax", "mxnet")
needs_torch, needs_keras, needs_optax, needs_mxnet = (needs(n) for n in ("torch", "keras", "optax", "mxnet"))

DTYPES = ["float32", "float64"]
N, C, D, T = 6, 5, 4, 3  # batch, classes, features, extra axis


def _params(fn, drop=()):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in drop]


def _normwise_atol(expected: np.ndarray, dtype: str, n: int) -> float:
    """``rtol·max|g|``: for gradients that are differences of O(1) terms (``σ(x) - y``), whose
    elements near the cancellation carry the rounding error of the terms."""
    finite = np.abs(expected[np.isfinite(expected)])
    return rtol_for(dtype, n) * float(finite.max()) if finite.size else 0.0


def _quarters(rng, shape, scale=1.0):
    """Normal values rounded to multiples of 1/4 (exact in float32), so that sums and
    differences with dyadic margins land exactly on the margin."""
    return np.round(rng.normal(0.0, scale, size=shape) * 4.0) / 4.0


def _signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


# JAX compiles every eager operation separately for each new shape and dtype, which made this
# module several times slower; JAX natives and gradients therefore run as one compiled call,
# compiled without LLVM's backend optimisations (they take most of the compile time and do
# not change what is computed). The mirror's eager JAX path is run on JAX arrays by the
# ``*_on_every_array_type`` tests.
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def jax_value_and_grad(fn, arrays, argnum=0):
    """``(fn(*arrays), d fn(*arrays).sum() / d arrays[argnum])`` (``argnum=None``: no
    gradient), compiled (see ``_FAST_COMPILE``); JAX arrays in, NumPy out."""
    jnp_ = jax.numpy
    xs = [jnp_.asarray(a) for a in arrays]
    if argnum is None:
        out = jax.jit(fn).lower(*xs).compile(compiler_options=_FAST_COMPILE)(*xs)
        return np.asarray(out), None

    def total(x, *rest):
        args = list(rest)
        args.insert(argnum, x)
        out = fn(*args)
        assert isinstance(out, jax.Array)
        return jnp_.sum(out), out

    vg = jax.value_and_grad(total, has_aux=True)
    rest = xs[:argnum] + xs[argnum + 1:]
    (_, out), g = jax.jit(vg).lower(xs[argnum], *rest).compile(compiler_options=_FAST_COMPILE)(
        xs[argnum], *rest)
    return np.asarray(out), np.asarray(g)


def on_jax_only(name, cases, keep):
    """``cases``, or on JAX (kind or backend) only those in ``keep`` (see ``_FAST_COMPILE``:
    every JAX program costs a compilation; the subsets keep the tie cases)."""
    return [c for c in cases if c in keep] if name == "jax" else list(cases)


def value_and_grad_on(backend, fn, arrays, argnum=0):
    """``backend.value_and_grad``, with JAX compiled (see ``_FAST_COMPILE``)."""
    backend.setup()
    if backend.name == "jax":
        return jax_value_and_grad(fn, list(arrays), argnum)
    return backend.value_and_grad(fn, list(arrays), argnum)


# =========================================================================================
# 1. polyloss.torch
# =========================================================================================

pt = None
if torch is not None:
    import polyloss.torch as pt

    F = torch.nn.functional

TORCH_SPECS = {  # key: (torch.nn class, torch.nn.functional function)
    "hinge_embedding": ("HingeEmbeddingLoss", "hinge_embedding_loss"),
    "multilabel_margin": ("MultiLabelMarginLoss", "multilabel_margin_loss"),
    "multilabel_soft_margin": ("MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss"),
    "multi_margin": ("MultiMarginLoss", "multi_margin_loss"),
    "soft_margin": ("SoftMarginLoss", "soft_margin_loss"),
    "margin_ranking": ("MarginRankingLoss", "margin_ranking_loss"),
}
TORCH_REDUCTIONS = ("none", "sum", "mean")
# gradients that are differences of O(1) terms (σ(x) - y): compared normwise as well
TORCH_NORMWISE = {"multilabel_soft_margin", "soft_margin"}


@dataclass
class TorchCase:
    loss: str
    pos: list  # positional arrays (input[, input2], target)
    arr_kw: dict = field(default_factory=dict)  # array options (weight)
    kw: dict = field(default_factory=dict)
    grad: tuple = (0,)  # which positional arrays gradients are taken of
    reductions: tuple = TORCH_REDUCTIONS

    def __repr__(self):
        return f"{self.loss}{[a.shape for a in self.pos]} {self.kw} {list(self.arr_kw)}"


def tt(a):
    """A torch tensor with ``a``'s bits."""
    return torch.from_numpy(np.array(a, copy=True, order="C"))


def torch_call(lib, loss, form, pos, arr_kw=None, **kw):
    cls_name, fn_name = TORCH_SPECS[loss]
    arr_kw = arr_kw or {}
    if form == "class":
        ns = torch.nn if lib == "torch" else pt
        return getattr(ns, cls_name)(**arr_kw, **kw)(*pos)
    fn = getattr(F if lib == "torch" else pt, fn_name)
    return fn(*pos, **arr_kw, **kw)


def on_torch(lib, case: TorchCase, form, grad=None, **kw):
    """``(value, [d value.sum() / d pos[i] for i in grad])`` on torch tensors."""
    grad = case.grad if grad is None else grad
    ts = [tt(a) for a in case.pos]
    for i in grad:
        ts[i].requires_grad_(True)
    out = torch_call(lib, case.loss, form, ts, {k: tt(v) for k, v in case.arr_kw.items()},
                     **case.kw, **kw)
    assert isinstance(out, torch.Tensor), f"{lib}: {type(out)} out for torch in"
    ins = [ts[i] for i in grad]
    if grad and out.requires_grad and out.numel():
        gs = torch.autograd.grad(out.sum(), ins, allow_unused=True)
        gs = [torch.zeros_like(i) if g is None else g for i, g in zip(ins, gs, strict=True)]
    else:
        gs = [torch.zeros_like(i) for i in ins]
    return out.detach().numpy(), [g.numpy() for g in gs]


def torch_check(case: TorchCase, form, dtype, reductions=None, grad=None):
    """The mirror on torch tensors equals torch (value, and gradients w.r.t. the inputs)
    for each reduction; returns torch's values."""
    n = max(1, max(a.size for a in case.pos))
    values = {}
    for reduction in reductions or case.reductions:
        ev, egs = on_torch("torch", case, form, grad, reduction=reduction)
        gv, ggs = on_torch("polyloss", case, form, grad, reduction=reduction)
        msg = f"{case!r} {form} reduction={reduction}"
        assert_close(gv, ev, dtype=dtype, n=n, err_msg=msg)
        for i, g, e in zip(case.grad if grad is None else grad, ggs, egs, strict=True):
            atol = _normwise_atol(e, dtype, n) if case.loss in TORCH_NORMWISE else 0.0
            assert_close(g, e, dtype=dtype, n=n, atol=atol, err_msg=f"d/d arg{i}: {msg}")
        values[reduction] = ev
    return values


def _mlm_targets(rng, n, c, labels_per_row=None):
    """MultiLabelMargin targets: each row lists distinct classes, then -1, then values in
    ``[-1, c)`` that torch never reads (reading stops at the first -1)."""
    t = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = int(rng.integers(0, c + 1)) if labels_per_row is None else labels_per_row[i]
        t[i, :k] = rng.permutation(c)[:k]
        if k + 1 < c:
            t[i, k + 1:] = rng.integers(-1, c, size=c - k - 1)
    return t


TORCH_CASES = {
    "hinge_embedding": ("random", "margin", "margin_half", "3d", "unbatched", "batch1", "empty",
                        "other_labels"),
    "soft_margin": ("random", "large", "zero", "3d", "unbatched", "batch1", "empty"),
    "margin_ranking": ("random", "margin", "margin0_equal", "2d", "batch1", "empty"),
    "multilabel_soft_margin": ("random", "weight", "weight_full", "soft", "extreme", "3d",
                               "unbatched", "batch1", "empty"),
    "multi_margin": ("random", "margin", "p2", "p2_margin", "weight", "weight_margin_half",
                     "unbatched", "batch1", "empty"),
    "multilabel_margin": ("random", "margin", "no_labels", "all_labels", "unbatched", "batch1",
                          "empty"),
}


def torch_case(loss, case, dtype, rng) -> TorchCase:
    """One input case, made in NumPy and cast there (class indices int64)."""
    shape = {"3d": (N, T, D), "unbatched": (D,), "batch1": (1, D), "empty": (0, D),
             "2d": (N, D)}.get(case, (N, D))
    if loss == "hinge_embedding":
        margin = 0.5 if case == "margin_half" else 1.0
        x = _quarters(rng, shape, 1.5)
        y = _signs(rng, shape)
        if case.startswith("margin"):  # distances exactly at the margin for half the -1 labels
            x = np.where((y == -1) & (rng.random(shape) < 0.5), margin, x)
            x.reshape(-1)[0], y.reshape(-1)[0] = margin, -1.0
        if case == "other_labels":  # torch adds both terms for a label that is not ±1
            y = np.where(rng.random(shape) < 0.3, rng.choice([0.0, 0.5, 2.0], size=shape), y)
        return TorchCase(loss, [x.astype(dtype), y.astype(dtype)], kw={"margin": margin})
    if loss == "soft_margin":
        x = rng.normal(0.0, 3.0, size=shape)
        y = _signs(rng, shape)
        if case == "large":  # |y·x| up to 80: no overflow in either dtype, tiny exp(-y·x)
            x = np.where(rng.random(shape) < 0.6, rng.choice([-80.0, -30.0, 30.0, 80.0], size=shape), x)
        if case == "zero":
            x = np.where(rng.random(shape) < 0.5, 0.0, x)
        return TorchCase(loss, [x.astype(dtype), y.astype(dtype)])
    if loss == "margin_ranking":
        shape = {"2d": (N, D), "batch1": (1,), "empty": (0,)}.get(case, (N,))
        margin = {"margin": 0.5, "margin0_equal": 0.0}.get(case, 0.25)
        x2 = _quarters(rng, shape)
        x1 = _quarters(rng, shape)
        y = _signs(rng, shape)
        if case in ("margin", "margin0_equal"):  # -y·(x1 - x2) + margin = 0 exactly
            at = rng.random(shape) < 0.5
            at.reshape(-1)[0] = True
            x1 = np.where(at, x2 + y * margin, x1)
        return TorchCase(loss, [x1.astype(dtype), x2.astype(dtype), y.astype(dtype)],
                         kw={"margin": margin}, grad=(0, 1))
    if loss == "multilabel_soft_margin":
        shape = {"3d": (N, T, C), "unbatched": (C,), "batch1": (1, C), "empty": (0, C)}.get(case, (N, C))
        x = rng.normal(0.0, 2.0, size=shape)
        y = (rng.random(shape) < 0.4).astype(np.float64)
        arr_kw = {}
        if case == "soft":
            y = rng.random(shape)
        if case == "extreme":
            x = np.where(rng.random(shape) < 0.5, rng.choice([-100.0, 100.0], size=shape), x)
        if case == "weight":
            arr_kw["weight"] = rng.uniform(0.0, 3.0, size=C)
        if case == "weight_full":
            arr_kw["weight"] = rng.uniform(0.0, 3.0, size=shape)
        return TorchCase(loss, [x.astype(dtype), y.astype(dtype)],
                         {k: v.astype(dtype) for k, v in arr_kw.items()})
    if loss == "multi_margin":
        shape = {"unbatched": (C,), "batch1": (1, C), "empty": (0, C)}.get(case, (N, C))
        p = 2 if case.startswith("p2") else 1
        margin = 0.5 if case == "weight_margin_half" else 1.0
        x = _quarters(rng, shape)
        t = np.asarray(rng.integers(0, C, size=shape[:-1])).astype(np.int64)
        if "margin" in case and x.ndim == 2:  # one wrong class exactly at the margin per row
            rows = np.arange(shape[0])
            other = (t + 1 + rng.integers(0, C - 1, size=shape[0])) % C
            x[rows, other] = x[rows, t] - margin
        arr_kw = {"weight": rng.uniform(0.2, 3.0, size=C).astype(dtype)} if "weight" in case else {}
        # torch's sum and mean over an empty batch read uninitialised memory (a different
        # number each call), so only the unreduced empty result is defined
        reductions = ("none",) if case == "empty" else TORCH_REDUCTIONS
        return TorchCase(loss, [x.astype(dtype), t], arr_kw, {"p": p, "margin": margin},
                         reductions=reductions)
    assert loss == "multilabel_margin"
    shape = {"unbatched": (C,), "batch1": (1, C), "empty": (0, C)}.get(case, (N, C))
    x = _quarters(rng, shape)
    n = 1 if len(shape) == 1 else shape[0]
    per_row = {"no_labels": [0] * n, "all_labels": [C] * n}.get(case)
    t = _mlm_targets(rng, n, C, per_row)
    if case == "no_labels":
        t[:, 0] = -1
    if case == "margin":  # x_j - x_i = 1 exactly for one listed/unlisted pair per row
        for i in range(n):
            k = int(np.argmax(t[i] == -1)) if (t[i] == -1).any() else C
            listed = set(t[i, :k].tolist())
            unlisted = [c for c in range(C) if c not in listed]
            if listed and unlisted:
                x[i, unlisted[0]] = x[i, t[i, 0]] - 1.0
    if len(shape) == 1:
        t = t[0]
    return TorchCase(loss, [x.astype(dtype), t],
                     reductions=("none",) if case == "empty" else TORCH_REDUCTIONS)


_TORCH_GRID = [(loss, case) for loss, cases in TORCH_CASES.items() for case in cases]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,case", _TORCH_GRID, ids=[f"{a}-{b}" for a, b in _TORCH_GRID])
def test_torch_mirror_matches_torch(loss, case, dtype, rng):
    """Class and function form, every reduction: value and gradients w.r.t. the inputs."""
    c = torch_case(loss, case, dtype, rng)
    for form in ("class", "function"):
        values = torch_check(c, form, dtype)
        if case == "empty" and "mean" in values:
            assert np.isnan(values["mean"])  # torch's mean of nothing; the mirror's too


@needs_torch
def test_torch_ties_follow_torchs_kernels():
    """Spelled out: at the margin, ``hinge_embedding`` and ``margin_ranking`` (``clamp_min``)
    pass the gradient, ``multi_margin`` and ``multilabel_margin`` (C++ kernels counting only
    ``z > 0``) drop it. The expected numbers are torch's, checked here against the rule."""
    x = np.array([[0.0, 1.0, 0.25]])
    t = np.array([1], dtype=np.int64)
    mm = TorchCase("multi_margin", [x, t])
    _, (g,) = on_torch("torch", mm, "function", reduction="sum")
    np.testing.assert_array_equal(g, [[0.0, -1 / 3, 1 / 3]])  # class 0 is at the margin
    torch_check(mm, "function", "float64")
    xl = np.array([[0.0, 1.0, 0.25, 0.5]])
    tl = np.array([[1, -1, 2, 0]], dtype=np.int64)  # only class 1 is listed
    mlm = TorchCase("multilabel_margin", [xl, tl])
    _, (g,) = on_torch("torch", mlm, "function", reduction="sum")
    np.testing.assert_array_equal(g, [[0.0, -0.5, 0.25, 0.25]])  # class 0 is at the margin
    torch_check(mlm, "function", "float64")
    he = TorchCase("hinge_embedding", [np.array([1.0, 0.5]), np.array([-1.0, -1.0])])
    _, (g,) = on_torch("torch", he, "function", reduction="sum")
    np.testing.assert_array_equal(g, [-1.0, -1.0])  # 1.0 is at the margin
    torch_check(he, "function", "float64")
    mr = TorchCase("margin_ranking", [np.array([0.5]), np.array([0.5]), np.array([-1.0])],
                   grad=(0, 1))
    _, (g1, g2) = on_torch("torch", mr, "function", reduction="sum")
    assert (g1[0], g2[0]) == (1.0, -1.0)  # x1 == x2 with margin 0
    torch_check(mr, "function", "float64")


@needs_torch
def test_torch_multilabel_margin_reads_up_to_the_first_minus_one():
    """Classes after the first -1 are not read, and a row that starts with -1 has no target
    (loss 0); the mirror gives torch's per-sample losses for the same rows."""
    x = np.array([[0.1, 0.5, -0.3, 0.9], [0.2, -0.4, 0.6, 0.0], [1.0, 0.0, -1.0, 0.5]])
    t = np.array([[1, -1, 0, 3], [-1, 2, 1, 0], [3, 1, -1, -1]], dtype=np.int64)
    case = TorchCase("multilabel_margin", [x, t])
    values = torch_check(case, "function", "float64", reductions=("none",))
    assert values["none"][1] == 0.0
    # the first row equals the same row listing class 1 only
    only = TorchCase("multilabel_margin", [x[:1], np.array([[1, -1, -1, -1]], dtype=np.int64)])
    assert on_torch("torch", only, "function", reduction="none")[0][0] == values["none"][0]


@needs_torch
@pytest.mark.parametrize("form", ["class", "function"])
def test_torch_multilabel_margin_counts_a_repeated_class_twice(form):
    """torch's kernel loops over the listed entries, so a class listed twice contributes its
    hinge terms twice (the loss of ``[1, 1, -1]`` is twice that of ``[1, -1]``)."""
    x = np.array([[0.1, 0.5, -0.3, 0.9], [0.25, -0.5, 0.75, 0.0]])
    t = np.array([[1, 1, -1, 0], [2, 0, 2, -1]], dtype=np.int64)
    case = TorchCase("multilabel_margin", [x, t])
    values = torch_check(case, form, "float64")
    once = TorchCase("multilabel_margin", [x, np.array([[1, -1, -1, 0], [2, 0, -1, -1]])])
    assert values["none"][0] == 2 * on_torch("torch", once, form, reduction="none")[0][0]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
def test_torch_soft_margin_is_finite_where_torch_overflows(form, dtype):
    """Deliberate difference: torch computes ``log1p(exp(-y·x))``, inf for ``-y·x`` above ~88
    (float32) / ~709 (float64), with a NaN gradient there. The mirror equals torch where
    torch is finite and is finite everywhere: ``softplus(-y·x)``, i.e. ``-y·x`` up to
    rounding, with gradient ``-y·σ(-y·x) = -y`` (times 1/n for the mean)."""
    x = np.array([1e4, -1e4, 100.0, 800.0, -3.0, 0.0, 50.0, 2.0])
    y = np.array([-1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0])
    case = TorchCase("soft_margin", [x.astype(dtype), y.astype(dtype)])
    n = x.size
    for reduction in TORCH_REDUCTIONS:
        ev, (eg,) = on_torch("torch", case, form, reduction=reduction)
        gv, (gg,) = on_torch("polyloss", case, form, reduction=reduction)
        assert np.all(np.isfinite(gv)) and np.all(np.isfinite(gg)), reduction
        z = -(y * x)  # the oracle: softplus(z), derivative -y·σ(z), in float64
        scale = 1.0 / n if reduction == "mean" else 1.0
        expect_v = np.logaddexp(0.0, z)
        expect_g = -y / (1.0 + np.exp(-z)) * scale
        overflow = ~np.isfinite(on_torch("torch", case, form, reduction="none")[0])
        assert overflow.sum() == (3 if dtype == "float64" else 4)  # the test does reach it
        if reduction == "none":
            fin = np.isfinite(ev)
            assert_close(gv[fin], ev[fin], dtype=dtype, n=n)
            assert_close(gv.astype(np.float64)[~fin], expect_v[~fin], dtype=dtype, check_dtype=False)
        else:
            assert np.isinf(ev)
            assert_close(gv.astype(np.float64), np.asarray(expect_v.sum() * scale), dtype=dtype, n=n,
                         check_dtype=False)
        fin = np.isfinite(eg)
        assert not fin.all()
        assert_close(gg[fin], eg[fin], dtype=dtype, n=n, atol=_normwise_atol(eg[fin], dtype, n))
        assert_close(gg.astype(np.float64)[~fin], expect_g[~fin], dtype=dtype, check_dtype=False)


LEGACY = [(None, False), (False, None), (True, None), (False, True)]


@needs_torch
@pytest.mark.parametrize("flags", LEGACY, ids=lambda f: f"size_average={f[0]}-reduce={f[1]}")
@pytest.mark.parametrize("loss", list(TORCH_SPECS))
def test_torch_legacy_flags_warn_and_match_torch(loss, flags, rng):
    case_name = {"multi_margin": "weight_margin_half", "multilabel_soft_margin": "weight",
                 "soft_margin": "random"}.get(loss, "margin")
    case = torch_case(loss, case_name, "float64", rng)
    legacy = {"size_average": flags[0], "reduce": flags[1]}
    match = "size_average and reduce args will be deprecated"
    for form in ("class", "function"):
        with pytest.warns(UserWarning, match=match):
            ev, egs = on_torch("torch", case, form, **legacy)
        with pytest.warns(UserWarning, match=match):
            gv, ggs = on_torch("polyloss", case, form, **legacy)
        n = case.pos[0].size
        assert_close(gv, ev, dtype="float64", n=n)
        for g, e in zip(ggs, egs, strict=True):
            assert_close(g, e, dtype="float64", n=n, atol=_normwise_atol(e, "float64", n)
                         if loss in TORCH_NORMWISE else 0.0)
    with pytest.warns(UserWarning):
        n_obj = getattr(torch.nn, TORCH_SPECS[loss][0])(**legacy)
    with pytest.warns(UserWarning):
        m_obj = getattr(pt, TORCH_SPECS[loss][0])(**legacy)
    assert m_obj.reduction == n_obj.reduction


@needs_torch
@pytest.mark.parametrize("loss", list(TORCH_SPECS))
def test_torch_signatures_and_attributes_match_torch(loss):
    cls_name, fn_name = TORCH_SPECS[loss]
    n_cls, m_cls = getattr(torch.nn, cls_name), getattr(pt, cls_name)
    assert _params(m_cls.__init__) == _params(n_cls.__init__)
    assert _params(m_cls.forward) == _params(n_cls.forward)
    assert _params(getattr(pt, fn_name)) == _params(getattr(F, fn_name))
    n_obj, m_obj = n_cls(), m_cls()
    for attr in ("margin", "p", "reduction"):
        if hasattr(n_obj, attr):
            assert getattr(m_obj, attr) == getattr(n_obj, attr), attr


# ---- the torch mirror on the other array types and autograd backends ----------------------

TORCH_CROSS = [("hinge_embedding", "margin"), ("soft_margin", "large"), ("margin_ranking", "margin"),
               ("multilabel_soft_margin", "weight"), ("multi_margin", "weight_margin_half"),
               ("multi_margin", "p2_margin"), ("multilabel_margin", "margin")]
TORCH_JAX = [("hinge_embedding", "margin"), ("multi_margin", "weight_margin_half"),
             ("multilabel_margin", "margin")]


def torch_mirror_fn(case: TorchCase, form, reduction):
    k = len(case.pos)
    keys = list(case.arr_kw)

    def f(*arrays):
        return torch_call("polyloss", case.loss, form, list(arrays[:k]),
                          dict(zip(keys, arrays[k:], strict=True)), **case.kw, reduction=reduction)

    return f


@needs_torch
@pytest.mark.parametrize("kind", kind_params(exclude=("torch",)))
def test_torch_mirror_on_every_array_type(kind, rng):
    """float64 values equal torch's, returned as the caller's array type."""
    bugs = KnownBugs()
    for loss, case_name in on_jax_only(kind.name, TORCH_CROSS, TORCH_JAX):
        case = torch_case(loss, case_name, "float64", rng)
        arrays = [*case.pos, *case.arr_kw.values()]
        for reduction in on_jax_only(kind.name, TORCH_REDUCTIONS, ("mean",)):
            ev, _ = on_torch("torch", case, "function", grad=(), reduction=reduction)
            got = run_on(kind, torch_mirror_fn(case, "function", reduction), *arrays, bugs=bugs)
            bugs.assert_close(kind, got, ev, dtype="float64", n=case.pos[0].size,
                              err_msg=f"{case!r} reduction={reduction}")
    bugs.check()


@needs_torch
@pytest.mark.parametrize("backend", [b for b in AUTOGRAD if b.name != "torch"], ids=lambda b: b.name)
def test_torch_mirror_gradient_on_every_autograd_backend(backend, rng):
    """The tie rules (active for hinge_embedding/margin_ranking, inactive for the kernels)
    must not depend on the backend: torch's gradient on JAX, TensorFlow and MXNet."""
    backend.setup()
    for loss, case_name in on_jax_only(backend.name, TORCH_CROSS, TORCH_JAX):
        case = torch_case(loss, case_name, "float64", rng)
        arrays = [*case.pos, *case.arr_kw.values()]
        ev, egs = on_torch("torch", case, "function", reduction="mean")
        for i, eg in zip(case.grad, egs, strict=True):
            value, grad = value_and_grad_on(backend, torch_mirror_fn(case, "function", "mean"), arrays, i)
            n = case.pos[0].size
            assert_close(value, ev, dtype="float64", n=n, err_msg=repr(case))
            atol = _normwise_atol(eg, "float64", n) if loss in TORCH_NORMWISE else 0.0
            assert_close(grad, eg, dtype="float64", n=n, atol=atol, err_msg=f"d/d arg{i} {case!r}")


# ---- bad input ---------------------------------------------------------------------------------

def _torch_and_mirror_raise(loss, pos, arr_kw=None, torch_exc=RuntimeError, match=None, **kw):
    with pytest.raises(torch_exc):
        torch_call("torch", loss, "function", [tt(a) for a in pos],
                   {k: tt(v) for k, v in (arr_kw or {}).items()}, **kw)
    for kind in ("numpy", "torch"):
        conv = KINDS[kind].asarray
        for form in ("class", "function"):
            with pytest.raises(ValueError, match=match):
                torch_call("polyloss", loss, form, [conv(a) for a in pos],
                           {k: conv(v) for k, v in (arr_kw or {}).items()}, **kw)


@needs_torch
@pytest.mark.parametrize("bad", [5, -1, 7])
def test_torch_multi_margin_label_out_of_range_raises_valueerror(bad):
    x = np.zeros((4, C))
    t = np.array([0, 1, 2, 3], dtype=np.int64)
    t[2] = bad
    _torch_and_mirror_raise("multi_margin", [x, t], match="target")
    _torch_and_mirror_raise("multi_margin", [x[0], t[2:3].reshape(())], match="target")


@needs_torch
@pytest.mark.parametrize("bad", [[1, -1, 5], [1, -2, 0], [7, -1, -1]], ids=["after_pad", "minus2", "first"])
def test_torch_multilabel_margin_label_out_of_range_raises_valueerror(bad):
    """torch checks every entry (also after the -1) for ``[-1, C)``."""
    x = np.zeros((2, 3))
    t = np.array([[0, -1, -1], bad], dtype=np.int64)
    _torch_and_mirror_raise("multilabel_margin", [x, t], match="target")


SHAPE_MISMATCH = {
    "hinge_embedding": [np.zeros((3, 2)), np.ones((4, 2))],
    "soft_margin": [np.zeros((3, 2)), np.ones((3, 3))],
    "margin_ranking": [np.zeros(3), np.zeros(4), np.ones(3)],
    "multilabel_soft_margin": [np.zeros((3, 2)), np.ones((3, 3))],
    "multi_margin": [np.zeros((3, 2)), np.zeros(2, dtype=np.int64)],
    "multilabel_margin": [np.zeros((3, 2)), np.zeros((3, 3), dtype=np.int64)],
}


@needs_torch
@pytest.mark.parametrize("loss", list(SHAPE_MISMATCH))
def test_torch_shape_mismatch_raises_valueerror(loss):
    _torch_and_mirror_raise(loss, SHAPE_MISMATCH[loss])


@needs_torch
def test_torch_multi_margin_bad_p_and_weight():
    x, t = np.zeros((3, 2)), np.array([0, 1, 1], dtype=np.int64)
    _torch_and_mirror_raise("multi_margin", [x, t], torch_exc=ValueError, p=3)
    with pytest.raises(ValueError):
        torch.nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError):
        pt.MultiMarginLoss(p=3)
    _torch_and_mirror_raise("multi_margin", [x, t], {"weight": np.ones(3)}, match="weight")


# =========================================================================================
# 2. polyloss.keras
# =========================================================================================

pk = None
if keras is not None:
    import polyloss.keras as pk

KERAS_SPECS = {"hinge": ("Hinge", "hinge"), "squared_hinge": ("SquaredHinge", "squared_hinge"),
               "categorical_hinge": ("CategoricalHinge", "categorical_hinge")}
KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
# (case, labels) for Hinge/SquaredHinge; labels: signed ±1, binary 0/1 (Keras converts them:
# every label is 0 or 1), mixed -1/0/1 (not converted: a 0 label stays 0), all ones / zeros
BINARY_KERAS_CASES = [("random", "signed"), ("random", "binary"), ("random", "mixed"),
                      ("3d", "signed"), ("margin", "signed"), ("margin", "binary"),
                      ("batch1", "binary"), ("random", "all_ones"), ("random", "all_zeros"),
                      ("empty", "signed")]
# CategoricalHinge (one-hot labels): "margin": neg - pos + 1 = 0 exactly; "negative": every
# wrong-class score < 0, so Keras's max((1 - y)·ŷ) is the true class's 0; "tie_max": two
# wrong classes share the max (TensorFlow splits that gradient). Keras cannot reduce an
# empty batch here (``max`` of an empty tensor raises), so there is no empty case.
CATEGORICAL_KERAS_CASES = [("random", "onehot"), ("3d", "onehot"), ("margin", "onehot"),
                           ("negative", "onehot"), ("tie_max", "onehot"), ("batch1", "onehot")]
KERAS_GRID = ([("hinge", *c) for c in BINARY_KERAS_CASES]
              + [("squared_hinge", *c) for c in BINARY_KERAS_CASES
                 if c in (("random", "signed"), ("random", "mixed"), ("3d", "signed"), ("margin", "binary"),
                          ("random", "all_zeros"), ("empty", "signed"))]
              + [("categorical_hinge", *c) for c in CATEGORICAL_KERAS_CASES])


def keras_inputs(loss, case, labels, dtype, rng):
    """``(y_true, y_pred)`` in ``dtype``."""
    shape = {"3d": (N, T, C), "batch1": (1, C), "empty": (0, C)}.get(case, (N, C))
    lead = shape[:-1]
    x = _quarters(rng, shape, 1.5)
    if loss == "categorical_hinge":
        cls = rng.integers(0, C, size=lead)
        y = np.eye(C)[cls]
        hot = y == 1
        if case == "margin":  # true class 1.5, best wrong class 0.5, the others below
            x = np.where(hot, 1.5, np.minimum(x, 0.25))
            second = np.eye(C)[(cls + 1) % C] == 1
            x = np.where(second, 0.5, x)
        if case == "negative":
            x = np.where(hot, x, -np.abs(x) - 0.25)
        if case == "tie_max":
            a, b = np.eye(C)[(cls + 1) % C] == 1, np.eye(C)[(cls + 3) % C] == 1
            x = np.where(a | b, 2.0, np.minimum(x, 1.0))
        return y.astype(dtype), x.astype(dtype)
    s = _signs(rng, shape)
    y = {"signed": s, "binary": (s + 1) / 2, "all_ones": np.ones(shape),
         "all_zeros": np.zeros(shape)}.get(labels)
    if labels == "mixed":
        y = np.where(rng.random(shape) < 0.3, 0.0, s)
    signed = 2 * y - 1 if labels in ("binary", "all_ones", "all_zeros") else y
    if case == "margin":  # y·ŷ = 1 exactly for half the entries
        x = np.where(rng.random(shape) < 0.5, signed, x)
        x.reshape(-1)[0] = signed.reshape(-1)[0]
    return y.astype(dtype), x.astype(dtype)


def keras_call(lib, loss, form, reduction="sum_over_batch_size", dtype=None):
    cls_name, fn_name = KERAS_SPECS[loss]
    if form == "class":
        obj = getattr(lib, cls_name)(reduction=reduction, dtype=dtype)
        return lambda y_true, y_pred, w=None: obj(y_true, y_pred, sample_weight=w)
    return getattr(lib, fn_name)


def keras_value_grad(fn, y, p, w=None):
    """``fn`` on TensorFlow tensors: value and ``d sum / d y_pred`` (``tf.GradientTape``)."""
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = fn(tf.constant(y), x, *([] if w is None else [tf.constant(w)]))
        total = tf.reduce_sum(out)
    return out.numpy(), tape.gradient(total, x).numpy()


def keras_sample_weight(p, rng):
    lead = p.shape[:-1]
    w = rng.uniform(0.0, 3.0, size=lead[:1] + (1,) * (len(lead) - 1))
    w[rng.random(w.shape) < 0.2] = 0.0
    return w.astype(p.dtype) if len(lead) > 1 else w.reshape(lead).astype(p.dtype)


def keras_atol(loss, p, cdtype, scale=1.0):
    """CategoricalHinge computes ``neg - pos + 1``, which cancels: a few ulps of the terms."""
    if loss != "categorical_hinge" or p.size == 0:
        return 0.0
    return 8 * EPS[cdtype] * (1.0 + float(np.max(np.abs(p)))) * scale


KERAS_VARIANTS = [(None, "float32"), ("float64", "float64"), (None, "float64")]


@needs_keras
@pytest.mark.parametrize("variant", KERAS_VARIANTS, ids=lambda v: f"dtype={v[0]}-{v[1]}")
@pytest.mark.parametrize("loss,case,labels", KERAS_GRID, ids=["-".join(c) for c in KERAS_GRID])
def test_keras_class_matches_keras(loss, case, labels, variant, rng):
    """Every reduction (and a sample weight with three of them): value and the gradient
    w.r.t. ``y_pred``, on TensorFlow tensors. ``dtype=None`` computes in float32 (Keras's
    floatx) whatever the input dtype."""
    dtype_arg, input_dtype = variant
    y, p = keras_inputs(loss, case, labels, input_dtype, rng)
    w = keras_sample_weight(p, rng)
    cdtype = dtype_arg or "float32"
    if variant == (None, "float32"):  # every reduction, without and with a sample weight
        runs = [(r, None) for r in KERAS_REDUCTIONS]
        runs += [(r, w) for r in ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none")]
    elif variant == ("float64", "float64"):
        runs = [("sum_over_batch_size", None), ("none", None), ("sum", w), ("mean_with_sample_weight", w)]
    else:
        runs = [("sum_over_batch_size", w)]
    for reduction, weight in runs:
        ev, eg = keras_value_grad(keras_call(keras.losses, loss, "class", reduction, dtype_arg), y, p, weight)
        gv, gg = keras_value_grad(keras_call(pk, loss, "class", reduction, dtype_arg), y, p, weight)
        msg = f"{loss} {case} {labels} reduction={reduction!r} w={weight is not None}"
        scale = 1.0 if weight is None else 3.0 * (p.shape[0] if reduction == "sum" else 1.0)
        assert_close(gv, ev, dtype=cdtype, n=p.size, atol=keras_atol(loss, p, cdtype, scale), err_msg=msg)
        assert_close(gg, eg, dtype=cdtype, n=p.size, err_msg="grad " + msg)
        if case == "empty":
            assert ev.shape == (0,)  # Keras returns the unreduced empty per-sample loss


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,case,labels", KERAS_GRID, ids=["-".join(c) for c in KERAS_GRID])
def test_keras_function_matches_keras(loss, case, labels, dtype, rng):
    """The functions keep ``y_pred``'s dtype and return the per-sample loss."""
    y, p = keras_inputs(loss, case, labels, dtype, rng)
    ev, eg = keras_value_grad(keras_call(keras.losses, loss, "function"), y, p)
    gv, gg = keras_value_grad(keras_call(pk, loss, "function"), y, p)
    assert_close(gv, ev, dtype=dtype, n=p.shape[-1], atol=keras_atol(loss, p, dtype))
    assert_close(gg, eg, dtype=dtype, n=p.shape[-1])
    assert ev.shape == p.shape[:-1]


@needs_keras
def test_keras_tie_gradient_goes_to_the_hinge():
    """Spelled out: at ``y·ŷ = 1`` TensorFlow's ``maximum(1 - y·ŷ, 0)`` gives the gradient to
    ``1 - y·ŷ``: ``-y/N`` per element of the per-sample mean; the mirror reproduces it."""
    y = np.array([[1.0, -1.0, 1.0, -1.0]])
    p = np.array([[1.0, -1.0, 0.5, 2.0]])
    _, eg = keras_value_grad(keras.losses.hinge, y, p)
    np.testing.assert_array_equal(eg, [[-0.25, 0.25, -0.25, 0.25]])
    _, gg = keras_value_grad(pk.hinge, y, p)
    np.testing.assert_array_equal(gg, eg)


KERAS_CROSS = [("hinge", "margin", "binary"), ("squared_hinge", "random", "mixed"),
               ("categorical_hinge", "margin", "onehot"), ("categorical_hinge", "tie_max", "onehot"),
               ("categorical_hinge", "negative", "onehot"), ("hinge", "random", "all_zeros")]
KERAS_JAX = [("hinge", "margin", "binary"), ("categorical_hinge", "tie_max", "onehot")]


@needs_keras
@pytest.mark.parametrize("kind", kind_params(exclude=("tensorflow",)))
def test_keras_mirror_on_every_array_type(kind, rng):
    """float64 (``dtype='float64'`` for the classes), returned as the caller's array type."""
    bugs = KnownBugs()
    for loss, case, labels in on_jax_only(kind.name, KERAS_CROSS, KERAS_JAX):
        y, p = keras_inputs(loss, case, labels, "float64", rng)
        w = keras_sample_weight(p, rng)
        for reduction in ("sum_over_batch_size", "none"):
            native_fn = keras_call(keras.losses, loss, "class", reduction, "float64")
            expected = native_fn(tf.constant(y), tf.constant(p), tf.constant(w)).numpy()
            got = run_on(kind, keras_call(pk, loss, "class", reduction, "float64"), y, p, w, bugs=bugs)
            bugs.assert_close(kind, got, expected, dtype="float64", n=p.size,
                              atol=keras_atol(loss, p, "float64", 3.0), err_msg=f"{loss} {case} {reduction}")
        expected = keras.losses.get(loss)(tf.constant(y), tf.constant(p)).numpy()
        got = run_on(kind, keras_call(pk, loss, "function"), y, p, bugs=bugs)
        bugs.assert_close(kind, got, expected, dtype="float64", n=C, atol=keras_atol(loss, p, "float64"),
                          err_msg=f"function {loss} {case}")
    bugs.check()


@needs_keras
@pytest.mark.parametrize("backend", [b for b in AUTOGRAD if b.name != "tensorflow"], ids=lambda b: b.name)
def test_keras_mirror_gradient_on_every_autograd_backend(backend, rng):
    """TensorFlow's tie rules (the hinge gets the tie; ``reduce_max`` splits a shared max
    evenly) on torch, JAX and MXNet: Keras's gradient, float64."""
    backend.setup()
    for loss, case, labels in on_jax_only(backend.name, KERAS_CROSS, KERAS_JAX):
        y, p = keras_inputs(loss, case, labels, "float64", rng)
        ev, eg = keras_value_grad(keras.losses.get(loss), y, p)
        value, grad = value_and_grad_on(backend, keras_call(pk, loss, "function"), [y, p], 1)
        assert_close(value, ev, dtype="float64", n=C, atol=keras_atol(loss, p, "float64"),
                     err_msg=f"{loss} {case}")
        assert_close(grad, eg, dtype="float64", n=C, err_msg=f"grad {loss} {case}")


@needs_keras
@pytest.mark.parametrize("loss", list(KERAS_SPECS))
def test_keras_signatures_and_config_match_keras(loss):
    cls_name, fn_name = KERAS_SPECS[loss]
    n_cls, m_cls = getattr(keras.losses, cls_name), getattr(pk, cls_name)
    assert _params(m_cls.__init__) == _params(n_cls.__init__)
    assert _params(m_cls.__call__) == _params(n_cls.__call__)
    assert _params(getattr(pk, fn_name)) == _params(getattr(keras.losses, fn_name))
    assert m_cls().name == n_cls().name
    assert m_cls().reduction == n_cls().reduction
    assert m_cls(name="custom", reduction="sum").name == n_cls(name="custom", reduction="sum").name


@needs_keras
@pytest.mark.parametrize("loss", list(KERAS_SPECS))
def test_keras_shape_mismatch_raises_valueerror(loss):
    y, p = np.ones((4, 3)), np.zeros((4, 2))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        keras.losses.get(loss)(tf.constant(y), tf.constant(p))
    for kind in ("numpy", "tensorflow"):
        conv = KINDS[kind].asarray
        with pytest.raises(ValueError):
            getattr(pk, KERAS_SPECS[loss][1])(conv(y), conv(p))
        with pytest.raises(ValueError):
            getattr(pk, KERAS_SPECS[loss][0])()(conv(y), conv(p))


# =========================================================================================
# 3. polyloss.gluon
# =========================================================================================

if mx is not None:
    from mxnet import autograd
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

GLUON_NAMES = ["HingeLoss", "SquaredHingeLoss", "LogisticLoss"]
# MXNet's float32 ``Activation(softrelu)`` is off by up to an ulp of |x| (absolute); the
# float64 kernel is accurate (see test_mirror_gluon_classification.py). LogisticLoss's
# ``relu(x) - x·y + softrelu(-|x|)`` also cancels terms of size |x|: its comparisons accept
# 8 ulps of ``1 + max|x|`` (times the weights), in both dtypes.
GLUON_ATOL_ULPS = 8


@dataclass
class GCase:
    name: str
    ctor: dict
    pred: np.ndarray
    label: np.ndarray
    sw: np.ndarray | None = None

    @property
    def arrays(self):
        return [a for a in (self.pred, self.label, self.sw) if a is not None]

    def __repr__(self):
        return f"{self.name}({self.ctor}) pred{self.pred.shape} label{self.label.shape} " \
               f"sw={None if self.sw is None else self.sw.shape}"


GLUON_VARIANTS = ["random", "margin", "margin_half_weight", "sw_sample", "sw_full", "3d",
                  "batch_axis1", "batch1", "label_flat", "binary"]


def gluon_case(name, variant, dtype, rng) -> GCase:
    shape = {"3d": (N, T, D), "batch_axis1": (D, N), "batch1": (1, D), "label_flat": (N, 1)}.get(
        variant, (N, D))
    batch_axis = 1 if variant == "batch_axis1" else 0
    ctor = {"batch_axis": batch_axis}
    if variant == "margin_half_weight":
        ctor["weight"] = 2.0
        if name != "LogisticLoss":
            ctor["margin"] = 0.5
    binary = name == "LogisticLoss" and variant == "binary"
    if binary:
        ctor["label_format"] = "binary"
    margin = ctor.get("margin", 1.0)
    x = _quarters(rng, shape, 1.5)
    if name == "LogisticLoss":  # the gradient at exactly 0 is a documented difference
        x = rng.normal(0.0, 2.0, size=shape)
        x[np.abs(x) < 1e-3] = 0.5
    y = _signs(rng, shape)
    if variant.startswith("margin") and name != "LogisticLoss":  # pred·label = margin exactly
        x = np.where(rng.random(shape) < 0.5, margin * y, x)
        x.reshape(-1)[0] = margin * y.reshape(-1)[0]
    if binary:
        y = (y + 1) / 2
    sw = None
    if variant in ("sw_sample", "margin_half_weight"):
        sw = rng.uniform(0.0, 3.0, size=(shape[0], 1))
    if variant == "sw_full":
        sw = rng.uniform(0.0, 3.0, size=shape)
    if variant == "label_flat":  # Gluon reshapes the label like pred
        y = y.reshape(-1)
    return GCase(name, ctor, x.astype(dtype), y.astype(dtype), None if sw is None else sw.astype(dtype))


def nd(a):
    return mx.nd.array(a, dtype=a.dtype)


def gluon_native(case: GCase, at=None):
    """Gluon's value and ``d out.sum() / d pred`` on ``mx.nd`` arrays (``at`` replaces pred)."""
    loss = getattr(gloss, case.name)(**case.ctor)
    x = nd(case.pred if at is None else at)
    x.attach_grad()
    with autograd.record():
        out = loss(x, nd(case.label), None if case.sw is None else nd(case.sw))
    out.backward()
    return out.asnumpy(), x.grad.asnumpy()


def gluon_mirror(case: GCase):
    loss = getattr(pg, case.name)(**case.ctor)
    has_sw = case.sw is not None
    return lambda p, t, *rest: loss(p, t, rest[0] if has_sw else None)


def gluon_mirror_nd(case: GCase, at=None):
    """The mirror differentiated on classic ``mx.nd`` arrays, as Gluon code does."""
    arrays = [case.pred if at is None else at] + case.arrays[1:]
    xs = [nd(a) for a in arrays]
    xs[0].attach_grad()
    with autograd.record():
        out = gluon_mirror(case)(*xs)
    assert isinstance(out, mx.nd.NDArray) and not isinstance(out, mx.np.ndarray)
    out.backward()
    return to_numpy(out), to_numpy(xs[0].grad)


def gluon_atol(case: GCase, dtype, grad=False):
    if case.name != "LogisticLoss":
        return 0.0
    w = abs(case.ctor.get("weight") or 1.0) * (1.0 if case.sw is None else float(np.max(case.sw)))
    mag = 1.0 if grad else 1.0 + float(np.max(np.abs(case.pred)))
    return GLUON_ATOL_ULPS * EPS[dtype] * mag * w


def gluon_n(case: GCase):
    return max(1, case.pred.size // case.pred.shape[case.ctor["batch_axis"]])


_GLUON_GRID = [(n, v) for n in GLUON_NAMES for v in GLUON_VARIANTS
               if not (v == "binary" and n != "LogisticLoss")]


@needs_mxnet
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,variant", _GLUON_GRID, ids=[f"{a}-{b}" for a, b in _GLUON_GRID])
def test_gluon_mirror_matches_gluon(name, variant, dtype, rng):
    """On ``mx.nd`` arrays (what Gluon code passes): one value per sample and the gradient
    w.r.t. ``pred`` (at the margin ``relu``'s: 0)."""
    case = gluon_case(name, variant, dtype, rng)
    ev, eg = gluon_native(case)
    gv, gg = gluon_mirror_nd(case)
    n = gluon_n(case)
    assert_close(gv, ev, dtype=dtype, n=n, atol=gluon_atol(case, dtype), err_msg=repr(case))
    assert_close(gg, eg, dtype=dtype, n=n, atol=gluon_atol(case, dtype, grad=True), err_msg=repr(case))
    assert ev.shape == (case.pred.shape[case.ctor["batch_axis"]],)


@needs_mxnet
def test_gluon_hinge_tie_gradient_is_zero():
    """Spelled out: ``relu``'s gradient at 0 is 0, so at ``pred·label = margin`` Gluon's
    hinge has no gradient; the mirror neither."""
    case = GCase("HingeLoss", {}, np.array([[1.0, -1.0, 0.5, 0.0]]), np.array([[1.0, -1.0, 1.0, 1.0]]))
    _, eg = gluon_native(case)
    np.testing.assert_array_equal(eg, [[0.0, 0.0, -0.25, -0.25]])
    _, gg = gluon_mirror_nd(case)
    np.testing.assert_array_equal(gg, eg)


@needs_mxnet
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_format", ["signed", "binary"])
def test_gluon_logistic_gradient_at_zero_is_continuous(label_format, dtype, rng):
    """Deliberate difference (as for ``SigmoidBCE``): at ``pred = 0`` exactly Gluon's
    ``relu``/``abs`` subgradients give ``-label01``, a value its gradient takes nowhere else;
    the mirror gives the limit from both sides, which is Gluon's gradient at ``±1e-30``. The
    value at 0 is Gluon's."""
    case = gluon_case("LogisticLoss", "binary" if label_format == "binary" else "sw_sample", dtype, rng)
    zero = np.zeros_like(case.pred)
    v0, g0 = gluon_native(case, at=zero)
    _, g_plus = gluon_native(case, at=np.full_like(case.pred, 1e-30))
    _, g_minus = gluon_native(case, at=np.full_like(case.pred, -1e-30))
    assert_close(g_plus, g_minus, dtype=dtype)
    assert not np.allclose(g0, g_plus)
    gv, gg = gluon_mirror_nd(case, at=zero)
    assert_close(gv, v0, dtype=dtype, n=D)
    assert_close(gg, g_plus, dtype=dtype, n=D)


GLUON_CROSS = [("HingeLoss", "margin"), ("SquaredHingeLoss", "margin_half_weight"),
               ("HingeLoss", "batch_axis1"), ("LogisticLoss", "sw_full"), ("LogisticLoss", "binary")]
GLUON_JAX = [("HingeLoss", "margin"), ("LogisticLoss", "binary")]


@needs_mxnet
@pytest.mark.parametrize("kind", kind_params(exclude=("mx.nd",)))
def test_gluon_mirror_on_every_array_type(kind, rng):
    """float64: Gluon's value, returned as the caller's array type."""
    bugs = KnownBugs()
    for name, variant in on_jax_only(kind.name, GLUON_CROSS, GLUON_JAX):
        case = gluon_case(name, variant, "float64", rng)
        ev, _ = gluon_native(case)
        got = run_on(kind, gluon_mirror(case), *case.arrays, bugs=bugs)
        bugs.assert_close(kind, got, ev, dtype="float64", n=gluon_n(case),
                          atol=gluon_atol(case, "float64"), err_msg=repr(case))
    bugs.check()


@needs_mxnet
@pytest.mark.parametrize("backend", AUTOGRAD, ids=lambda b: b.name)
def test_gluon_mirror_gradient_on_every_autograd_backend(backend, rng):
    """``relu``'s tie rule (no gradient at the margin) on every autograd backend, float64."""
    backend.setup()
    for name, variant in on_jax_only(backend.name, GLUON_CROSS, GLUON_JAX):
        case = gluon_case(name, variant, "float64", rng)
        ev, eg = gluon_native(case)
        value, grad = value_and_grad_on(backend, gluon_mirror(case), case.arrays, 0)
        n = gluon_n(case)
        assert_close(value, ev, dtype="float64", n=n, atol=gluon_atol(case, "float64"), err_msg=repr(case))
        assert_close(grad, eg, dtype="float64", n=n, atol=gluon_atol(case, "float64", True),
                     err_msg=repr(case))


@needs_mxnet
@pytest.mark.parametrize("name", GLUON_NAMES)
def test_gluon_signatures_match_gluon(name):
    assert _params(getattr(pg, name).__init__) == _params(getattr(gloss, name).__init__)
    native_call = _params(getattr(gloss, name).hybrid_forward, drop=("F",))
    assert _params(getattr(pg, name).__call__) == native_call


@needs_mxnet
@pytest.mark.parametrize("kind", ["numpy", "mx.nd"])
def test_gluon_empty_batch_is_empty_where_gluon_raises(kind):
    """Gluon fails in shape inference on a zero-size batch; the mirror returns ``(0,)``."""
    for name in GLUON_NAMES:
        case = GCase(name, {}, np.zeros((0, D)), np.ones((0, D)))
        with pytest.raises(mx.base.MXNetError):
            gluon_native(case)
            mx.nd.waitall()
        got = run_on(KINDS[kind], gluon_mirror(case), *case.arrays)
        assert got.shape == (0,) and got.dtype == np.float64


@needs_mxnet
@pytest.mark.parametrize("name", GLUON_NAMES)
def test_gluon_label_of_another_size_raises_valueerror(name):
    """Gluon reshapes the label like ``pred``, which fails for another number of elements;
    the mirror raises ``ValueError``."""
    pred, label = np.zeros((4, 3)), np.ones((4, 2))
    with pytest.raises(mx.base.MXNetError):
        getattr(gloss, name)()(nd(pred), nd(label))
        mx.nd.waitall()
    for kind in ("numpy", "mx.nd"):
        with pytest.raises(ValueError):
            getattr(pg, name)()(KINDS[kind].asarray(pred), KINDS[kind].asarray(label))


@needs_mxnet
def test_gluon_logistic_bad_label_format_raises_valueerror():
    with pytest.raises(ValueError):
        gloss.LogisticLoss(label_format="pm1")
    with pytest.raises(ValueError):
        pg.LogisticLoss(label_format="pm1")


# =========================================================================================
# 4. polyloss.optax
# =========================================================================================

if optax is not None:
    import polyloss.optax as po

    jnp = jax.numpy

OPTAX_BINARY = ["hinge_loss", "perceptron_loss"]
OPTAX_MULTI = ["multiclass_hinge_loss", "multiclass_perceptron_loss"]


def optax_binary_inputs(name, case, dtype, rng):
    """``(predictor_outputs, targets)``; ``margin``: ``ŷ·y`` exactly at the kink (1 for the
    hinge, 0 for the perceptron) for half the entries."""
    shape = {"1d": (N,), "3d": (N, T, D), "batch1": (1, D), "empty": (0, D)}.get(case, (N, D))
    x = _quarters(rng, shape, 1.5)
    y = _signs(rng, shape)
    if case == "margin":
        kink = y if name == "hinge_loss" else np.zeros(shape)
        x = np.where(rng.random(shape) < 0.5, kink, x)
    return x.astype(dtype), y.astype(dtype)


def optax_multi_inputs(name, case, dtype, rng, label_dtype=np.int32):
    """``(scores, labels)``; ``margin``: the best wrong score is exactly ``s_y - 1`` (the
    hinge's kink; for the perceptron ``s_y`` itself); ``tie_max``: two wrong classes share
    the max (``jnp.max`` splits the gradient between them)."""
    shape = {"3d": (N, T, C), "batch1": (1, C), "empty": (0, C)}.get(case, (N, C))
    lead = shape[:-1]
    x = _quarters(rng, shape, 1.5)
    labels = rng.integers(0, C, size=lead)
    hot = np.eye(C)[labels] == 1
    if case == "margin":
        gap = 1.0 if name == "multiclass_hinge_loss" else 0.0
        x = np.where(hot, 2.0, np.minimum(x, 0.75 - gap))
        x = np.where(np.eye(C)[(labels + 2) % C] == 1, 2.0 - gap, x)
    if case == "tie_max":
        a, b = np.eye(C)[(labels + 1) % C] == 1, np.eye(C)[(labels + 2) % C] == 1
        x = np.where(a | b, 3.0, np.minimum(x, 2.0))
    return x.astype(dtype), labels.astype(label_dtype)


# the cases of one shape are stacked along the batch axis into one call (the losses are
# unreduced, each row independent), so that JAX compiles one program per loss and dtype
OPTAX_STACKED = {"binary": ["random", "margin", "batch1"], "multi": ["random", "margin", "tie_max", "batch1"]}
OPTAX_SHAPES = {"binary": ["1d", "3d", "empty"], "multi": ["3d", "empty"]}


def optax_inputs(name, case, dtype, rng):
    if name in OPTAX_BINARY:
        return optax_binary_inputs(name, case, dtype, rng)
    return optax_multi_inputs(name, case, dtype, rng)


def optax_native(name, arrays, grad=True):
    """optax on JAX arrays: value and the gradient of the sum w.r.t. the first argument.

    ``multiclass_*`` builds ``jax.nn.one_hot(labels)`` in JAX's default float type, float64
    with 64-bit JAX, which would promote float32 scores to a float64 result; float32 cases
    therefore run optax as float32 programs see it (``disable_x64``), where the result keeps
    the scores' dtype, as the mirror's does."""
    key = (name, grad, tuple((a.dtype.str, a.shape, a.tobytes()) for a in arrays))
    if key not in _OPTAX_NATIVE:
        _OPTAX_NATIVE[key] = _optax_native(name, arrays, grad)
    return _OPTAX_NATIVE[key]


_OPTAX_NATIVE: dict = {}  # the same inputs recur across the backend-parametrised tests


def _x64_off():
    """32-bit JAX for a block: ``jax.enable_x64(False)`` (newer JAX) or
    ``jax.experimental.disable_x64()`` (0.7)."""
    ctx = getattr(jax, "enable_x64", None)
    if ctx is not None:
        return ctx(False)
    from jax.experimental import disable_x64

    return disable_x64()


def _optax_native(name, arrays, grad):
    fn = getattr(optax.losses, name)
    if name in OPTAX_MULTI and arrays[0].dtype == np.float32:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with _x64_off():
                return jax_value_and_grad(fn, arrays, 0 if grad else None)
    return jax_value_and_grad(fn, arrays, 0 if grad else None)


def optax_atol(name, x, dtype):
    """``max_k(s_k + 1 - [k = y]) - s_y`` cancels: a few ulps of the scores."""
    if name not in OPTAX_MULTI or x.size == 0:
        return 0.0
    return 8 * EPS[dtype] * (1.0 + float(np.max(np.abs(x))))


def optax_stacked(name, dtype, rng):
    family = "binary" if name in OPTAX_BINARY else "multi"
    parts = [optax_inputs(name, case, dtype, rng) for case in OPTAX_STACKED[family]]
    return [np.concatenate([p[i] for p in parts]) for i in range(2)]


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTAX_BINARY + OPTAX_MULTI)
def test_optax_mirror_matches_optax(name, dtype, rng):
    """Random inputs, the kinks and a batch of one (stacked): unreduced values on NumPy arrays
    (NumPy in, NumPy out), and value and gradient on JAX (compiled, like the native): at the
    kink ``jnp.maximum`` splits the gradient ½/½, ``jnp.max`` splits a shared max evenly;
    the mirror reproduces both."""
    arrays = optax_stacked(name, dtype, rng)
    ev, eg = optax_native(name, arrays)
    n = arrays[0].shape[-1] if name in OPTAX_MULTI else 1
    atol = optax_atol(name, arrays[0], dtype)
    got = run_on(KINDS["numpy"], getattr(po, name), *arrays)
    assert_close(got, ev, dtype=dtype, n=n, atol=atol, err_msg=name)
    value, grad = jax_value_and_grad(getattr(po, name), arrays, 0)
    assert_close(value, ev, dtype=dtype, n=n, atol=atol, err_msg=f"jax {name}")
    assert_close(grad, eg, dtype=dtype, n=n, err_msg=f"grad {name}")


@needs_optax
@pytest.mark.parametrize("name", OPTAX_BINARY + OPTAX_MULTI)
def test_optax_shapes_match_optax(name, rng):
    """1-D and 3-D inputs and the empty batch (float64 values, NumPy in, NumPy out)."""
    family = "binary" if name in OPTAX_BINARY else "multi"
    for case in OPTAX_SHAPES[family]:
        arrays = optax_inputs(name, case, "float64", rng)
        ev, _ = optax_native(name, arrays, grad=False)
        got = run_on(KINDS["numpy"], getattr(po, name), *arrays)
        assert_close(got, ev, dtype="float64", n=C, atol=optax_atol(name, arrays[0], "float64"),
                     err_msg=f"{name} {case}")
        assert got.shape == (arrays[0].shape if family == "binary" else arrays[0].shape[:-1])


@needs_optax
def test_optax_tie_gradients_are_split():
    """Spelled out (optax's numbers, checked against the rule): the hinge at ``ŷ·y = 1`` has
    gradient ``-y/2``; the multiclass perceptron's max shared by two classes gives each ½.
    The mirror's are compared in the tests above and below."""
    x, y = np.array([1.0, -1.0, 0.5]), np.array([1.0, -1.0, 1.0])
    _, eg = optax_native("hinge_loss", [x, y])
    np.testing.assert_array_equal(eg, [-0.5, 0.5, -1.0])
    s, lab = np.array([[1.0, 2.0, 1.0, 2.0]]), np.array([0], dtype=np.int32)
    _, eg = optax_native("multiclass_perceptron_loss", [s, lab])
    np.testing.assert_array_equal(eg, [[-1.0, 0.5, 0.0, 0.5]])
    torch_backend = [b for b in AUTOGRAD if b.name == "torch"]
    if torch_backend:
        _, g = torch_backend[0].value_and_grad(po.hinge_loss, [x, y], 0)
        np.testing.assert_array_equal(g, [-0.5, 0.5, -1.0])


OPTAX_CROSS = [("hinge_loss", "margin"), ("perceptron_loss", "margin"),
               ("multiclass_hinge_loss", "margin"), ("multiclass_hinge_loss", "tie_max"),
               ("multiclass_perceptron_loss", "tie_max")]
OPTAX_JAX = [("hinge_loss", "margin"), ("multiclass_hinge_loss", "tie_max")]


@needs_optax
@pytest.mark.parametrize("kind", kind_params(exclude=("numpy",)))
def test_optax_mirror_on_every_array_type(kind, rng):
    """float64 values (eager on JAX too), returned as the caller's array type."""
    bugs = KnownBugs()
    for name, case in on_jax_only(kind.name, OPTAX_CROSS, OPTAX_JAX):
        arrays = optax_inputs(name, case, "float64", rng)
        ev, _ = optax_native(name, arrays, grad=False)
        got = run_on(kind, getattr(po, name), *arrays, bugs=bugs)
        bugs.assert_close(kind, got, ev, dtype="float64", n=C, atol=optax_atol(name, arrays[0], "float64"),
                          err_msg=f"{name} {case}")
    bugs.check()


@needs_optax
@pytest.mark.parametrize("backend", [b for b in AUTOGRAD if b.name != "jax"], ids=lambda b: b.name)
def test_optax_mirror_gradient_on_every_autograd_backend(backend, rng):
    """JAX's split ties (``maximum`` and ``max``) on torch, TensorFlow and MXNet, float64."""
    backend.setup()
    for name, case in OPTAX_CROSS:
        arrays = optax_inputs(name, case, "float64", rng)
        ev, eg = optax_native(name, arrays)
        value, grad = value_and_grad_on(backend, getattr(po, name), list(arrays), 0)
        atol = optax_atol(name, arrays[0], "float64")
        assert_close(value, ev, dtype="float64", n=C, atol=atol, err_msg=f"{name} {case}")
        assert_close(grad, eg, dtype="float64", n=C, err_msg=f"grad {name} {case}")


@needs_optax
@pytest.mark.parametrize("name", OPTAX_BINARY + OPTAX_MULTI)
def test_optax_signatures_match_optax(name):
    assert _params(getattr(po, name)) == _params(getattr(optax.losses, name))


@needs_optax
@pytest.mark.parametrize("name", OPTAX_BINARY + OPTAX_MULTI)
def test_optax_shape_mismatch_raises_valueerror(name):
    """Shapes optax cannot combine raise there; the mirror raises ``ValueError`` for those
    and (no silent broadcasting) for a ``(N, 1)`` against ``(N,)`` pair optax would broadcast."""
    if name in OPTAX_BINARY:
        bad = [(np.zeros((4, 3)), np.ones((4, 2))), (np.zeros((4, 1)), np.ones(4))]
    else:
        bad = [(np.zeros((4, 3)), np.zeros(5, dtype=np.int32)),
               (np.zeros((4, 3)), np.zeros((4, 3), dtype=np.int32))]
    with pytest.raises((ValueError, TypeError)):
        getattr(optax.losses, name)(*(jnp.asarray(a) for a in bad[0]))
    for kind in ("numpy", "jax"):
        for x, y in bad:
            with pytest.raises(ValueError):
                getattr(po, name)(KINDS[kind].asarray(x), KINDS[kind].asarray(y))


# =========================================================================================
# 5. canonical polyloss.<loss> against NumPy float64 oracles
# =========================================================================================
# Each oracle returns the unreduced loss and its derivative with respect to each
# differentiated input (per position for elementwise losses; per sample, along the class
# axis, for the multiclass ones), straight from the formula; ``canon_expected`` applies the
# reduction. At a hinge's kink the canonical gradient is the active branch's (``a >= 0``).

def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return np.exp(-_softplus(-z))


@dataclass
class CCase:
    loss: str
    arrays: list  # the positional arrays; the float ones first
    kw: dict
    sw: np.ndarray | None = None
    grad: tuple = (0,)
    batch: int = N

    def __repr__(self):
        sw = None if self.sw is None else self.sw.shape
        return f"{self.loss}{[a.shape for a in self.arrays]} {self.kw} sw={sw}"


def canon_oracle(case: CCase):
    """``(loss, [d loss / d arrays[i] for i in case.grad], mag)`` in float64 (``mag``: the
    size of the terms the loss is computed from, for cancellation)."""
    kw = case.kw
    a = [np.asarray(x).astype(np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
         for x in case.arrays]
    m = kw.get("margin", 1.0)
    if case.loss in ("hinge", "squared_hinge", "soft_margin"):
        x, t = a
        y = 2 * t - 1 if kw.get("label_format") == "binary" else t
        if case.loss == "soft_margin":
            return _softplus(-y * x), [-y * _sigmoid(-y * x)], np.abs(x)
        h = m - y * x
        active = h >= 0
        if case.loss == "hinge":
            return np.where(active, h, 0.0), [np.where(active, -y, 0.0)], abs(m) + np.abs(x)
        hp = np.where(active, h, 0.0)
        return hp * hp, [-2 * y * hp], (abs(m) + np.abs(x)) * (1 + np.abs(hp))
    if case.loss == "hinge_embedding":
        x, y = a
        h = m - x
        loss = np.where(y == 1, x, np.where(h >= 0, h, 0.0))
        d = np.where(y == 1, 1.0, np.where(h >= 0, -1.0, 0.0))
        return loss, [d], abs(m) + np.abs(x)
    if case.loss == "margin_ranking":
        x1, x2, y = a
        h = -y * (x1 - x2) + m
        act = h >= 0
        d1 = np.where(act, -y, 0.0)
        return np.where(act, h, 0.0), [d1, -d1][: len(case.grad)], abs(m) + np.abs(x1) + np.abs(x2)
    s, lab = a
    axis = kw.get("axis", -1) % s.ndim
    s = np.moveaxis(s, axis, -1)  # classes last
    k = s.shape[-1]
    hot = np.eye(k)[lab] == 1
    s_y = np.sum(np.where(hot, s, 0.0), axis=-1, keepdims=True)
    if case.loss == "categorical_hinge":
        others = np.where(hot, -np.inf, s)
        best = np.max(others, axis=-1, keepdims=True)
        h = m + best - s_y
        act = h >= 0
        argbest = others == best
        assert np.all(argbest.sum(-1) == 1), "the oracle's gradient assumes a unique best wrong class"
        d = np.where(act, argbest.astype(float) - hot, 0.0)
        mag = abs(m) + 2 * np.max(np.abs(s), axis=-1)
        return np.where(act, h, 0.0)[..., 0], [np.moveaxis(d, -1, axis)], mag
    assert case.loss == "multi_margin"
    p = kw.get("p", 1)
    cw = kw.get("class_weight")
    w_y = 1.0 if cw is None else np.asarray(cw, dtype=np.float64)[lab][..., None]
    h = m - s_y + s
    act = (h >= 0) & ~hot
    hp = np.where(act, h, 0.0)
    terms = hp ** p
    loss = np.sum(w_y * terms, axis=-1) / k
    dh = np.where(act, p * hp ** (p - 1), 0.0) * w_y / k  # d loss / d s_i for i != y
    d = dh - hot * np.sum(dh, axis=-1, keepdims=True)
    mag = np.max(np.abs(w_y) * (abs(m) + 2 * np.max(np.abs(s), axis=-1, keepdims=True)) ** p, axis=-1)
    return loss, [np.moveaxis(d, -1, axis)], mag


def _align(w, shape):
    """The canonical sample-weight rule: the loss's shape, a leading prefix of it, or a
    shape that broadcasts to it."""
    w = np.asarray(w, dtype=np.float64)
    if 0 < w.ndim < len(shape) and w.shape == shape[: w.ndim]:
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    return np.broadcast_to(w, shape)


def canon_expected(case: CCase, reduction, normalizer):
    """``(value, [gradient of value.sum()], atol)`` by the oracle."""
    loss, dloss, mag = canon_oracle(case)
    w = np.ones(loss.shape) if case.sw is None else _align(case.sw, loss.shape)
    if reduction == "none":
        factor = w
    elif reduction == "sum":
        factor = w
    elif reduction == "batchmean":
        factor = w / case.batch if case.batch else w * np.nan
    elif normalizer == "count":
        factor = w / loss.size if loss.size else w * np.nan
    else:
        factor = w / np.sum(w)
    value = factor * loss if reduction == "none" else np.sum(factor * loss)
    if reduction != "none" and loss.size == 0:
        value = np.float64(0.0) if reduction == "sum" else np.float64(np.nan)
    grads = []
    for d in dloss:
        f = factor
        if case.loss in ("categorical_hinge", "multi_margin"):  # per sample -> along the class axis
            axis = case.kw.get("axis", -1) % case.arrays[0].ndim
            f = np.expand_dims(factor, axis)
        grads.append(d * f if d.size else d)
    scale = float(np.max(np.abs(factor), initial=0.0)) if reduction == "none" else float(
        np.sum(np.abs(factor)))
    return value, grads, float(np.max(mag, initial=0.0)) * max(scale, 0.0)


def canon_case(loss, config, dtype, rng) -> CCase:
    """One configuration; inputs on a 1/4 grid, about half of them exactly at the kink."""
    shape = (N, D)
    kw = {}
    if loss in ("hinge", "squared_hinge", "soft_margin"):
        fmt = "binary" if config in ("binary", "binary_sw") else "signed"
        m = {"binary": 0.5, "signed_sw_full": 2.0, "binary_sw": 1.0}.get(config, 1.0)
        if loss != "soft_margin":
            kw["margin"] = m
        if fmt == "binary":
            kw["label_format"] = "binary"
        y = _signs(rng, shape)
        x = _quarters(rng, shape, 1.5)
        if loss == "soft_margin":
            x = np.where(rng.random(shape) < 0.3, rng.choice([-1e4, -30.0, 30.0, 1e4], size=shape), x)
        else:
            x = np.where(rng.random(shape) < 0.5, m * y, x)
        t = (y + 1) / 2 if fmt == "binary" else y
        sw = {"signed_sw_full": rng.uniform(0.0, 3.0, size=shape),
              "binary_sw": rng.uniform(0.0, 3.0, size=(N,))}.get(config)
        return CCase(loss, [x.astype(dtype), t.astype(dtype)], kw,
                     None if sw is None else sw.astype(dtype))
    if loss == "hinge_embedding":
        m = 0.5 if config == "margin_half_sw" else 1.0
        kw["margin"] = m
        y = _signs(rng, shape)
        x = np.abs(_quarters(rng, shape, 1.5))
        x = np.where((y == -1) & (rng.random(shape) < 0.5), m, x)
        sw = rng.uniform(0.0, 3.0, size=(N,)) if config == "margin_half_sw" else None
        return CCase(loss, [x.astype(dtype), y.astype(dtype)], kw, None if sw is None else sw.astype(dtype))
    if loss == "margin_ranking":
        m = {"margin0": 0.0, "margin_half_sw": 0.5}[config]
        kw["margin"] = m
        x1, x2, y = _quarters(rng, (N,)), _quarters(rng, (N,)), _signs(rng, (N,))
        x1 = np.where(rng.random(N) < 0.5, x2 + y * m, x1)
        sw = rng.uniform(0.0, 3.0, size=(N,)) if config == "margin_half_sw" else None
        return CCase(loss, [x1.astype(dtype), x2.astype(dtype), y.astype(dtype)], kw,
                     None if sw is None else sw.astype(dtype), grad=(0, 1))
    # multiclass: (N, C) with classes last, or (N, C, T) with axis=1
    axis1 = config.startswith("axis1")
    shape = (N, C, T) if axis1 else (N, C)
    if axis1:
        kw["axis"] = 1
    m = 0.5 if "half" in config else 1.0
    kw["margin"] = m
    lab_shape = (N, T) if axis1 else (N,)
    lab = rng.integers(0, C, size=lab_shape)
    s = np.moveaxis(rng.normal(0.0, 1.5, size=shape), 1, -1) if axis1 else rng.normal(0.0, 1.5, size=shape)
    s = np.round(s * 64) / 64 + rng.random(s.shape) * 1e-3  # distinct scores (a unique best wrong class)
    s = np.round(s * 2 ** 20) / 2 ** 20
    hot = np.eye(C)[lab] == 1
    if loss == "categorical_hinge":  # the best wrong class exactly margin below the true one
        at = rng.random(lab_shape + (1,)) < 0.5
        best = np.max(np.where(hot, -np.inf, s), axis=-1, keepdims=True)
        s = np.where(hot & at, best + m, s)
    else:
        kw["p"] = 2 if "p2" in config else 1
        if "cw" in config:
            kw["class_weight"] = rng.uniform(0.2, 3.0, size=C).astype(dtype)
        # one wrong class exactly at the margin per sample
        s_y = np.sum(np.where(hot, s, 0.0), axis=-1, keepdims=True)
        other = np.eye(C)[(lab + 1) % C] == 1
        s = np.where(other, s_y - m, s)
    if axis1:
        s = np.moveaxis(s, -1, 1)
    sw = rng.uniform(0.0, 3.0, size=lab_shape) if "sw" in config else None
    return CCase(loss, [s.astype(dtype), lab.astype(np.int64)], kw, None if sw is None else sw.astype(dtype))


CANON_CONFIGS = {
    "hinge": ["signed", "binary", "signed_sw_full", "binary_sw"],
    "squared_hinge": ["signed", "binary_sw", "signed_sw_full"],
    "soft_margin": ["signed", "binary_sw"],
    "hinge_embedding": ["margin1", "margin_half_sw"],
    "margin_ranking": ["margin0", "margin_half_sw"],
    "categorical_hinge": ["plain", "half_sw", "axis1_sw"],
    "multi_margin": ["plain", "p2_half", "cw_sw", "axis1_p2_cw"],
}
CANON_RUNS = [("none", "count"), ("sum", "count"), ("mean", "count"), ("mean", "sum_of_weights"),
              ("batchmean", "count")]
_CANON_GRID = [(loss, cfg) for loss, cfgs in CANON_CONFIGS.items() for cfg in cfgs]
_BACKEND_KIND = {"mxnet": "mx.np"}


def canon_fn(case: CCase, reduction, normalizer):
    """``f(*_canon_arrays(case))``: the loss with the sample weight and ``class_weight`` as
    arrays of the caller's type."""
    fn = getattr(polyloss, case.loss)
    n_arr = len(case.arrays)
    kw = {k: v for k, v in case.kw.items() if k != "class_weight"}
    has_sw, has_cw = case.sw is not None, "class_weight" in case.kw

    def f(*arrays):
        rest = list(arrays[n_arr:])
        sw = rest.pop(0) if has_sw else None
        if has_cw:
            kw["class_weight"] = rest.pop(0)
        return fn(*arrays[:n_arr], **kw, reduction=reduction, sample_weight=sw, normalizer=normalizer)

    return f


def _canon_arrays(case):
    return (case.arrays + ([] if case.sw is None else [case.sw])
            + ([case.kw["class_weight"]] if "class_weight" in case.kw else []))


@pytest.mark.parametrize("backend", INSTALLED, ids=lambda b: b.name)
@pytest.mark.parametrize("loss", list(CANON_CONFIGS))
def test_canonical_values_match_oracle(loss, backend, rng):
    """Every configuration, float32 and float64, every reduction and normaliser, on every
    installed backend; the result is the input's array type and dtype."""
    backend.setup()
    kind = KINDS[_BACKEND_KIND.get(backend.name, backend.name)]
    for cfg in on_jax_only(backend.name, CANON_CONFIGS[loss], CANON_CONFIGS[loss][-1:]):
        for dtype in DTYPES:
            case = canon_case(loss, cfg, dtype, rng)
            for reduction, normalizer in on_jax_only(backend.name, CANON_RUNS, CANON_RUNS[3:]):
                expected, _, mag = canon_expected(case, reduction, normalizer)
                got = run_on(kind, canon_fn(case, reduction, normalizer), *_canon_arrays(case))
                rtol = rtol_for(dtype, case.arrays[0].size)
                assert_close(got, np.asarray(expected).astype(dtype), dtype=dtype, rtol=rtol,
                             atol=rtol * mag, err_msg=f"{case!r} {reduction} {normalizer}")


@pytest.mark.parametrize("backend", AUTOGRAD, ids=lambda b: b.name)
@pytest.mark.parametrize("loss", list(CANON_CONFIGS))
def test_canonical_gradients_match_oracle(loss, backend, rng):
    """float64 gradients (w.r.t. the scores; for margin ranking both inputs) by the analytic
    derivative, the active branch at every kink, on every autograd backend."""
    for cfg in on_jax_only(backend.name, CANON_CONFIGS[loss], CANON_CONFIGS[loss][-1:]):
        case = canon_case(loss, cfg, "float64", rng)
        runs = (("mean", "count"), ("sum", "count"), ("mean", "sum_of_weights"), ("none", "count"))
        runs = runs[: 4 if case.sw is not None else 2] if backend.name != "jax" else runs[2:3]
        for reduction, normalizer in runs:
            expected, grads, mag = canon_expected(case, reduction, normalizer)
            for i, eg in zip(case.grad, grads, strict=True):
                value, g = value_and_grad_on(backend, canon_fn(case, reduction, normalizer),
                                             _canon_arrays(case), i)
                rtol = rtol_for("float64", case.arrays[0].size)
                assert_close(value, np.asarray(expected), dtype="float64", atol=rtol * mag,
                             err_msg=f"{case!r} {reduction} {normalizer}")
                assert_close(g, eg, dtype="float64", atol=rtol * mag,
                             err_msg=f"d/d arg{i} {case!r} {reduction} {normalizer}")


@pytest.mark.parametrize("loss", list(CANON_CONFIGS))
def test_canonical_empty_batch(loss, rng):
    """An empty batch: ``none`` is empty, ``sum`` 0, ``mean``/``batchmean`` NaN."""
    case = canon_case(loss, CANON_CONFIGS[loss][0], "float64", rng)
    arrays = [a[:0] if a.ndim and a.shape[0] == N else a for a in case.arrays]
    case = CCase(case.loss, arrays, case.kw, grad=case.grad, batch=0)
    for reduction, normalizer in CANON_RUNS:
        expected, _, _ = canon_expected(case, reduction, normalizer)
        got = run_on(KINDS["numpy"], canon_fn(case, reduction, normalizer), *case.arrays)
        assert_close(got, np.asarray(expected), dtype="float64", err_msg=f"{reduction} {normalizer}")


CANON_SIGNATURES = {
    "hinge": "pred, target, *, margin=1.0, label_format='signed', reduction='mean', sample_weight=None, "
             "normalizer='count'",
    "squared_hinge": "pred, target, *, margin=1.0, label_format='signed', reduction='mean', "
                     "sample_weight=None, normalizer='count'",
    "categorical_hinge": "pred, target, *, margin=1.0, axis=-1, reduction='mean', sample_weight=None, "
                         "normalizer='count'",
    "multi_margin": "pred, target, *, p=1, margin=1.0, class_weight=None, axis=-1, reduction='mean', "
                    "sample_weight=None, normalizer='count'",
    "hinge_embedding": "pred, target, *, margin=1.0, reduction='mean', sample_weight=None, "
                       "normalizer='count'",
    "soft_margin": "pred, target, *, label_format='signed', reduction='mean', sample_weight=None, "
                   "normalizer='count'",
    "margin_ranking": "x1, x2, target, *, margin=0.0, reduction='mean', sample_weight=None, "
                      "normalizer='count'",
}


@pytest.mark.parametrize("loss", list(CANON_SIGNATURES))
def test_canonical_signature(loss):
    """The documented signatures (names, order, keyword-only options, defaults)."""
    def spelled(sig):
        out = []
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        for part in sig.split(", "):
            if part == "*":
                kind = inspect.Parameter.KEYWORD_ONLY
                continue
            name, _, default = part.partition("=")
            out.append((name, kind, eval(default) if default else inspect.Parameter.empty))
        return out

    assert _params(getattr(polyloss, loss)) == spelled(CANON_SIGNATURES[loss])


@pytest.mark.parametrize("loss", list(CANON_CONFIGS))
def test_canonical_bad_input_raises_valueerror(loss, rng):
    case = canon_case(loss, CANON_CONFIGS[loss][0], "float64", rng)
    f = getattr(polyloss, loss)
    a = case.arrays
    with pytest.raises(ValueError):
        f(*a, **case.kw, reduction="avg")
    if loss in ("categorical_hinge", "multi_margin"):
        bad = a[1].copy()
        bad[2] = C
        with pytest.raises(ValueError, match="target"):
            f(a[0], bad, **case.kw)
        with pytest.raises(ValueError):
            f(a[0], a[1][:-1], **case.kw)
    elif loss == "margin_ranking":
        with pytest.raises(ValueError):
            f(a[0], a[1][:-1], a[2], **case.kw)
        with pytest.raises(ValueError):
            f(a[0], a[1], a[2][:-1], **case.kw)
    else:
        with pytest.raises(ValueError):
            f(a[0], a[1][:, :-1], **case.kw)
        with pytest.raises(ValueError):
            f(a[0][:, :1], a[1], **case.kw)


@needs_torch
def test_canonical_mixed_frameworks_raise_typeerror():
    """A NumPy ``class_weight`` with torch scores is refused like any other mixed call
    (``cross_entropy`` does so with ``TypeError``)."""
    x, t = tt(np.zeros((4, 3))), tt(np.array([0, 1, 2, 1], dtype=np.int64))
    with pytest.raises(TypeError, match="two frameworks"):
        polyloss.cross_entropy(x, t, class_weight=np.ones(3))
    with pytest.raises(TypeError, match="two frameworks"):
        polyloss.multi_margin(x, t, class_weight=np.ones(3))


@pytest.mark.parametrize("backend", AUTOGRAD, ids=lambda b: b.name)
def test_canonical_categorical_hinge_shared_max_splits_the_gradient(backend):
    """Two wrong classes share the best score: the gradient of that max is split evenly
    between them (as torch's ``amax``, TensorFlow's ``reduce_max`` and ``jnp.max`` do), so
    the row's gradient still sums to 0; it must not depend on the backend."""
    s = np.array([[0.0, 3.0, 3.0, 1.0], [2.0, -1.0, 0.5, 0.5]])
    lab = np.array([0, 0], dtype=np.int64)
    value, g = value_and_grad_on(backend, lambda x, t: polyloss.categorical_hinge(x, t, reduction="sum"),
                                 [s, lab], 0)
    assert_close(value, np.asarray(4.0 + 0.0), dtype="float64")
    assert_close(g, np.array([[-1.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]]), dtype="float64")
