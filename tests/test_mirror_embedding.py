"""The embedding losses (cosine and triplet): every mirror against its real native, and the
canonical functions against NumPy float64 oracles.

- ``polyloss.torch``: ``CosineEmbeddingLoss``, ``TripletMarginLoss`` (p = 1, 2, 3),
  ``TripletMarginWithDistanceLoss`` (default distance, a custom distance written with array
  methods, a torch-only cosine distance) in class and function form, and
  ``pairwise_distance``, against torch 2.13;
- ``polyloss.keras``: ``CosineSimilarity`` and ``cosine_similarity`` against Keras 3.15 on
  TensorFlow;
- ``polyloss.gluon``: ``CosineEmbeddingLoss`` and ``TripletLoss`` against MXNet 1.9.1 (fed
  ``mx.nd`` arrays, as Gluon code does);
- ``polyloss.optax``: ``cosine_similarity``, ``cosine_distance`` and ``triplet_margin_loss``
  against optax 0.2.8 (64-bit JAX, as the parity backends set it up);
- canonical ``polyloss.cosine_similarity``, ``cosine_embedding`` and ``triplet_margin``
  against oracles written here from the formulas, on every installed backend, with
  gradients (the analytic derivative) on the autograd backends.

Every expected mirror value and gradient comes from the native framework, run in the test on
its own arrays built from the same NumPy bits; canonical expectations from the NumPy float64
oracles below. Covered: float32 and float64; random inputs and the edges (zero vectors,
identical vectors, i.e. anchor == positive, where torch's ``swap`` ties and splits its
gradient, antiparallel and parallel pairs, a batch of one, unbatched and 3-D inputs and the
empty batch where the native has them); every reduction (torch's legacy
``size_average``/``reduce`` too), weights; gradients w.r.t. the first input (Keras: both);
each mirror on a few other array types (returned as the caller's type; the four mirrors
together cover every type) and its gradient on other autograd backends; signatures and bad
input.

Deliberate differences checked as such: Gluon cannot run ``CosineEmbeddingLoss`` in float64
(the mirror follows Gluon's formula, checked against a NumPy transcription); at a zero
``input1`` Gluon's gradient is NaN, the mirror's is finite and backend-independent; torch and
optax broadcast some shapes the mirrors refuse (``ValueError``).

Tolerances: float64 ``rtol = 1e-12``, float32 ``8·eps·log2(n)`` (``_native.rtol_for``). These
losses cancel by construction (``1 - cos`` with ``cos`` near 1, ``d(a, p) - d(a, n) + margin``,
a gradient ``x2/(‖x1‖‖x2‖) - cos·x1/‖x1‖²``), so every comparison also accepts the same
relative tolerance applied to the magnitude of the terms that cancel in that element
(``scale`` in ``check``, computed per element by the ``*_scales`` helpers and carried through
the reduction), never a blanket absolute tolerance.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from _native import (
    KINDS,
    KnownBugs,
    kind_params,
    natives,
    needs,
    run_on,
    to_numpy,
)
from _native import (
    assert_close_scaled as check,
)
from conftest import AUTOGRAD

import polyloss

pytestmark = [
    pytest.mark.native,
    # NumPy/Dask announce the NaN that optax's formulas give on purpose (0/0 for a zero vector
    # with epsilon=0, a negative sum to the power 1/3), which the mirror must return too
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]


torch, tf, keras, jax, optax, mx = natives("torch", "tensorflow", "keras", "jax", "optax", "mxnet")
needs_torch, needs_keras, needs_optax, needs_mxnet = (needs(n) for n in ("torch", "keras", "optax", "mxnet"))

DTYPES = ["float32", "float64"]
N, D, T = 6, 5, 3  # batch, vector length, extra axis of 3-D inputs


def kinds(*names):
    """``kind_params`` for the named array types only. Each mirror runs on a few other array
    types (together the four mirrors cover every type); every new type costs compilation or
    graph building for each operation, which the file's time budget does not allow for all."""
    return kind_params(exclude=tuple(k for k in KINDS if k not in names))


def grad_backends(*names):
    return [pytest.param(b, id=b.name) for b in AUTOGRAD if b.name in names]


def _params(fn, drop=()):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in drop]


def _through(per, reduction, count=None):
    """A per-item scale carried through a reduction: itself, its sum, or its mean."""
    per = np.asarray(per, dtype=np.float64)
    if reduction in ("none", None):
        return per
    total = per.sum()
    if reduction == "sum":
        return total
    return total / max(per.size if count is None else count, 1)


def _signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


# ---- inputs --------------------------------------------------------------------------------

CASES = ("random", "zero", "identical", "batch1", "unbatched", "3d", "empty")


def vectors(case, dtype, rng, k=3):
    """``k`` arrays of vectors along the last axis, made in NumPy and cast there.

    - ``random``: normal(0, 1.5) entries;
    - ``zero``: zero vectors: the first array's in row 0, the second's in row 1, the third's in
      row 2, the first two both in row 3;
    - ``identical``: the second array equals the first in rows 0-3 (anchor == positive; row 1
      also has negative == anchor), is its negative in row 4 and twice it in row 5 (all exact);
    - ``batch1`` ``(1, D)``, ``unbatched`` ``(D,)``, ``3d`` ``(N, T, D)``, ``empty`` ``(0, D)``.
    """
    shape = {"batch1": (1, D), "unbatched": (D,), "3d": (N, T, D), "empty": (0, D)}.get(case, (N, D))
    xs = [rng.normal(0.0, 1.5, size=shape) for _ in range(k)]
    if case == "zero":
        for i in range(k):
            xs[i][i] = 0.0
        xs[0][3] = 0.0
        xs[1][3] = 0.0
    if case == "identical":
        xs[1][:4] = xs[0][:4]
        if k > 2:
            xs[2][1] = xs[0][1]
        xs[1][4] = -xs[0][4]
        xs[1][5] = 2.0 * xs[0][5]
    return [x.astype(dtype) for x in xs]


def labels(shape, dtype, rng):
    y = _signs(rng, shape)
    if y.ndim and y.size > 1:
        y.reshape(-1)[:2] = [1.0, -1.0]  # both kinds present
    return np.asarray(y).astype(dtype)


# ---- NumPy float64 oracles (the canonical definitions) ------------------------------------------

def _f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


def np_cos(x1, x2, axis=-1, eps=1e-8):
    """``x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps))``; its derivative w.r.t. ``x1`` and the
    magnitude of the terms that cancel in each (value, derivative)."""
    x1, x2 = _f64(x1, x2)
    n1 = np.sqrt((x1 * x1).sum(axis, keepdims=True))
    n2 = np.sqrt((x2 * x2).sum(axis, keepdims=True))
    c1, c2 = np.maximum(n1, eps), np.maximum(n2, eps)
    cos = (x1 * x2).sum(axis, keepdims=True) / (c1 * c2)
    grad = x2 / (c1 * c2) - np.where(n1 >= eps, cos * x1 / (c1 * c1), 0.0)
    grad_scale = np.abs(x2) / (c1 * c2) + np.where(n1 >= eps, np.abs(cos * x1) / (c1 * c1), 0.0)
    value_scale = (np.abs(x1 * x2)).sum(axis, keepdims=True) / (c1 * c2)
    sq = lambda a: np.squeeze(a, axis=axis)  # noqa: E731
    return sq(cos), grad, sq(value_scale), grad_scale


def np_cosine_embedding(x1, x2, y, margin=0.0, axis=-1, eps=1e-8):
    """``1 - cos`` where ``y = 1``, ``max(0, cos - margin)`` where ``y = -1``, else 0; the
    derivative w.r.t. ``x1`` (the hinge passes its gradient at 0) and the cancelling terms."""
    cos, gcos, cscale, gscale = np_cos(x1, x2, axis, eps)
    (y,) = _f64(y)
    neg = cos - margin
    value = np.where(y == 1, 1.0 - cos, 0.0) + np.where((y == -1) & (neg >= 0), neg, 0.0)
    coef = np.where(y == 1, -1.0, 0.0) + np.where((y == -1) & (neg >= 0), 1.0, 0.0)
    vscale = np.where(y == 1, 1.0 + cscale, 0.0) + np.where(y == -1, cscale + abs(margin), 0.0)
    ex = lambda a: np.expand_dims(a, axis)  # noqa: E731
    return value, ex(coef) * gcos, vscale, np.abs(ex(coef)) * gscale


def np_distance(a, b, *, p=2.0, eps=1e-6, squared=False, custom=False, axis=-1):
    """The canonical distance (and its derivative w.r.t. ``a``): ``(Σ|a - b|^p + eps)^(1/p)``,
    ``Σ(a - b)²`` (``squared``) or the custom ``log1p(Σ(a - b)²)`` used in these tests."""
    a, b = _f64(a, b)
    d = a - b
    if custom:
        s = (d * d).sum(axis, keepdims=True)
        return np.squeeze(np.log1p(s), axis), 2.0 * d / (1.0 + s)
    if squared:
        return (d * d).sum(axis), 2.0 * d
    s = (np.abs(d) ** p).sum(axis, keepdims=True) + eps
    value = s ** (1.0 / p)
    grad = np.sign(d) * np.abs(d) ** (p - 1) * s ** (1.0 / p - 1.0) if p != 1 else np.sign(d)
    return np.squeeze(value, axis), grad


def np_triplet(a, pos, neg, *, margin=1.0, swap=False, axis=-1, **dist):
    """``max(0, d(a, p) - d(a, n) + margin)`` (``swap``: ``min(d(a, n), d(p, n))``, the first at
    a tie), its derivative w.r.t. the anchor (the hinge passes its gradient at 0) and the
    magnitude of the cancelling terms (value, derivative)."""
    dp, gp = np_distance(a, pos, axis=axis, **dist)
    dn, gn = np_distance(a, neg, axis=axis, **dist)
    use_swap = np.zeros(dn.shape, dtype=bool)
    scale = dp + dn + abs(margin)
    if swap:
        ds, _ = np_distance(pos, neg, axis=axis, **dist)
        use_swap = ds < dn
        scale = scale + ds
        dn = np.where(use_swap, ds, dn)
    z = dp - dn + margin
    active = z >= 0
    ex = lambda v: np.expand_dims(v, axis)  # noqa: E731
    grad = ex(active) * (gp - ex(~use_swap) * gn)
    gscale = ex(active) * (np.abs(gp) + ex(~use_swap) * np.abs(gn))
    return np.where(active, z, 0.0), grad, scale, gscale


def np_reduce(loss, reduction, w=None, normalizer="count", batch=None):
    """The canonical reduction of a per-item ``loss`` (and the factor it applies to each item's
    gradient). ``w``: the loss's shape, or a leading prefix of it (one weight per sample)."""
    loss = np.asarray(loss, dtype=np.float64)
    wb = np.ones(loss.shape)
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        wb = np.broadcast_to(w.reshape(w.shape + (1,) * (loss.ndim - w.ndim)), loss.shape)
    weighted = loss * wb
    if reduction == "none":
        return weighted, wb
    total = weighted.sum()
    if reduction == "sum":
        return total, wb
    if reduction == "batchmean":
        return total / batch, wb / batch
    denom = loss.size if (w is None or normalizer == "count") else wb.sum()
    return total / denom, wb / denom


# =========================================================================================
# 1. polyloss.torch
# =========================================================================================

pt = None
if torch is not None:
    import polyloss.torch as pt

    F = torch.nn.functional

TORCH_SPECS = {  # key: (torch.nn class, torch.nn.functional function)
    "cosine_embedding": ("CosineEmbeddingLoss", "cosine_embedding_loss"),
    "triplet": ("TripletMarginLoss", "triplet_margin_loss"),
    "triplet_distance": ("TripletMarginWithDistanceLoss", "triplet_margin_with_distance_loss"),
}
TORCH_REDUCTIONS = ("none", "sum", "mean")


def sq_dist(a, b):
    """A custom distance written with array methods (torch tensors, NumPy, JAX, MXNet, Dask)."""
    return ((a - b) ** 2).sum(-1)


def torch_cos_dist(a, b):
    """The distance of torch's ``TripletMarginWithDistanceLoss`` documentation example."""
    return 1.0 - F.cosine_similarity(a, b)


DISTANCES = {"default": None, "sq": sq_dist, "cosine": torch_cos_dist}


def tt(a):
    """A torch tensor with ``a``'s bits."""
    return torch.from_numpy(np.array(a, copy=True, order="C"))


def torch_call(lib, loss, form, pos, **kw):
    cls_name, fn_name = TORCH_SPECS[loss]
    if form == "class":
        return getattr(torch.nn if lib == "torch" else pt, cls_name)(**kw)(*pos)
    return getattr(F if lib == "torch" else pt, fn_name)(*pos, **kw)


def on_torch(lib, loss, form, pos, grad=True, **kw):
    """``(value, d value.sum() / d pos[0])`` on torch tensors (``grad=False``: no gradient)."""
    ts = [tt(a) for a in pos]
    if grad:
        ts[0].requires_grad_(True)
    out = torch_call(lib, loss, form, ts, **kw)
    assert isinstance(out, torch.Tensor), f"{lib}: {type(out)} out for torch in"
    if not grad:
        return out.detach().numpy(), None
    g = None
    if out.requires_grad and out.numel():
        (g,) = torch.autograd.grad(out.sum(), ts[0], allow_unused=True)
    return out.detach().numpy(), (torch.zeros_like(ts[0]) if g is None else g).numpy()


def torch_scales(loss, pos, kw):
    """Per-item value scale and per-element gradient scale (before the reduction) of torch's
    formulas: ``cos = x1·x2 / sqrt((‖x1‖² + 1e-12)(‖x2‖² + 1e-12))`` and
    ``d = ‖a - b + eps‖_p`` (whose derivative has entries of at most 1)."""
    x = _f64(*pos)
    if loss == "cosine_embedding":
        m1 = (x[0] * x[0]).sum(-1, keepdims=True) + 1e-12
        m2 = (x[1] * x[1]).sum(-1, keepdims=True) + 1e-12
        vscale = 1.0 + np.abs(x[0] * x[1]).sum(-1) / np.sqrt(m1 * m2)[..., 0] + abs(kw.get("margin", 0.0))
        return vscale, 2.0 / np.sqrt(m1) * np.ones_like(x[0])
    a, p, n = x
    dist = kw.get("distance_function")
    if dist is sq_dist:
        ds = [((u - v) ** 2).sum(-1) for u, v in ((a, p), (a, n), (p, n))]
        return sum(ds) + abs(kw.get("margin", 1.0)), 2.0 * (np.abs(a - p) + np.abs(a - n))
    if dist is torch_cos_dist:
        return 4.0 + abs(kw.get("margin", 1.0)), 4.0 / np.maximum(
            np.sqrt((a * a).sum(-1, keepdims=True)), 1e-8) * np.ones_like(a)
    pp, eps = kw.get("p", 2.0), kw.get("eps", 1e-6)
    ds = [(np.abs(u - v + eps) ** pp).sum(-1) ** (1.0 / pp) for u, v in ((a, p), (a, n), (p, n))]
    return sum(ds) + abs(kw.get("margin", 1.0)), 2.0 * np.ones_like(a)


def torch_check(loss, pos, dtype, forms=("class", "function"), reductions=TORCH_REDUCTIONS, **kw):
    """The mirror on torch tensors equals torch: value and gradient w.r.t. ``pos[0]``, for each
    form and reduction; returns torch's values by reduction (of the last form)."""
    n = max(1, pos[0].size)
    vscale, gscale = torch_scales(loss, pos, kw)
    count = max(1, int(np.prod(pos[0].shape[:-1])))
    values = {}
    for form in forms:
        for reduction in reductions:
            ev, eg = on_torch("torch", loss, form, pos, reduction=reduction, **kw)
            gv, gg = on_torch("polyloss", loss, form, pos, reduction=reduction, **kw)
            msg = f"{loss} {form} reduction={reduction} {kw}"
            check(gv, ev, dtype=dtype, n=n, scale=_through(vscale, reduction), err_msg=msg)
            g_s = gscale / count if reduction == "mean" else gscale
            check(gg, eg, dtype=dtype, n=n, scale=g_s, err_msg="d/d input1: " + msg)
            values[reduction] = ev
    return values


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in CASES if c != "3d"])
def test_torch_cosine_embedding_matches_torch(case, dtype, rng):
    """Margins 0, 0.3 and -0.2 (so ``y = -1`` pairs land on both sides of the hinge), 1-D
    inputs with a 0-d target, zero vectors (torch adds 1e-12 to the squared norms), cos = ±1."""
    x1, x2 = vectors(case, dtype, rng, k=2)
    y = labels(x1.shape[:-1], dtype, rng)
    for margin in (0.0, 0.3, -0.2):
        values = torch_check("cosine_embedding", [x1, x2, y], dtype, margin=margin)
        if case == "empty":
            assert np.isnan(values["mean"]) and values["sum"] == 0


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_cosine_embedding_tiny_vectors(dtype, rng):
    """Squared norms near torch's 1e-12 (vectors of norm ~1e-6 and ~1e-7, and 0): the value
    depends on the exact constant torch adds, which is ``1e-12`` rounded to float32
    (9.99999996e-13) in every dtype, as in its BCE."""
    x1, x2 = vectors("random", dtype, rng, k=2)
    x1 = x1.astype(np.float64)
    x1[:3] *= np.array([1e-6, 1e-7, 3e-7])[:, None]
    x1[3] = 0.0
    x1 = x1.astype(dtype)
    y = labels((N,), dtype, rng)
    torch_check("cosine_embedding", [x1, x2, y], dtype, margin=-0.5)


@needs_torch
def test_torch_cosine_embedding_labels_other_than_pm1_count_zero(rng):
    """torch keeps only ``y == 1`` and ``y == -1`` terms: 0, 2 and 0.5 contribute nothing
    (int64 and float targets)."""
    x1, x2 = vectors("random", "float64", rng, k=2)
    y = np.array([1, -1, 0, 2, -1, 1], dtype=np.int64)
    values = torch_check("cosine_embedding", [x1, x2, y], "float64", margin=-0.5)
    assert values["none"][2] == values["none"][3] == 0.0 and values["none"][1] > 0
    yf = np.array([1.0, -1.0, 0.5, 0.0, -1.0, 1.0])
    torch_check("cosine_embedding", [x1, x2, yf], "float64", margin=-0.5)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("swap", [False, True], ids=["noswap", "swap"])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("case", CASES)
def test_torch_triplet_margin_matches_torch(case, p, swap, dtype, rng):
    """p = 1, 2, 3, margins 1 and 0.5, eps 1e-6 and 0 (identical vectors: distance 0, where
    torch's norm has gradient 0); with ``swap`` and anchor == positive the two negative
    distances tie and torch splits the gradient (the mirror must too)."""
    a, pos, neg = vectors(case, dtype, rng)
    for margin, eps in ((1.0, 1e-6), (0.5, 0.0)):
        values = torch_check("triplet", [a, pos, neg], dtype, margin=margin, p=float(p), eps=eps,
                             swap=swap)
        if case == "empty":
            assert np.isnan(values["mean"])


# torch's cosine_similarity (dim=1) needs a batch dimension: no unbatched case for it
_DIST_GRID = [(case, dist) for case in ("random", "zero", "identical", "batch1", "unbatched", "3d")
              for dist in DISTANCES if not (dist == "cosine" and case == "unbatched")]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("swap", [False, True], ids=["noswap", "swap"])
@pytest.mark.parametrize("case,distance", _DIST_GRID, ids=[f"{c}-{d}" for c, d in _DIST_GRID])
def test_torch_triplet_with_distance_matches_torch(case, distance, swap, dtype, rng):
    """The default distance (``pairwise_distance``), a custom one written with array methods
    and torch's documented ``1 - cosine_similarity`` (the mirror passes the caller's tensors
    to it); margins 1 and 2.5, ``swap`` (ties split at anchor == positive)."""
    a, pos, neg = vectors(case, dtype, rng)
    for margin in (1.0, 2.5):
        torch_check("triplet_distance", [a, pos, neg], dtype, margin=margin, swap=swap,
                    distance_function=DISTANCES[distance])


@needs_torch
def test_torch_swap_tie_splits_the_gradient():
    """Spelled out: anchor == positive, so ``d(a, n) == d(p, n)``; torch's ``min`` gives each
    side half the gradient, so d/d anchor is ``∂d(a,p)/∂a - ½ ∂d(a,n)/∂a`` (the numbers are
    torch's, checked here against that rule)."""
    a = np.array([[0.5, -1.0, 2.0]])
    n = np.array([[1.5, 0.0, 1.0]])
    an = tt(a).requires_grad_(True)
    (g_an,) = torch.autograd.grad(F.pairwise_distance(an, tt(n)).sum(), an)  # ∂d(a, n)/∂a
    for loss in ("triplet", "triplet_distance"):
        _, g_swap = on_torch("torch", loss, "function", [a, a, n], swap=True, margin=3.0)
        _, g_plain = on_torch("torch", loss, "function", [a, a, n], swap=False, margin=3.0)
        np.testing.assert_allclose(g_swap, g_plain + 0.5 * g_an.numpy(), rtol=1e-12)
        torch_check(loss, [a, a, n], "float64", swap=True, margin=3.0)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["random", "zero", "identical", "batch1", "unbatched", "3d", "empty"])
def test_torch_pairwise_distance_matches_torch(case, dtype, rng):
    """p = 1, 2, 3, 1.5 and inf, eps 1e-6 and 0, keepdim; value and d/d x1."""
    x1, x2 = vectors(case, dtype, rng, k=2)
    n = max(1, x1.size)
    for p in (1.0, 2.0, 3.0, 1.5, math.inf):
        for eps in (1e-6, 0.0):
            for keepdim in (False, True):
                kw = {"p": p, "eps": eps, "keepdim": keepdim}
                ts = [tt(x1).requires_grad_(True), tt(x2)]
                ms = [tt(x1).requires_grad_(True), tt(x2)]
                e, m = F.pairwise_distance(*ts, **kw), pt.pairwise_distance(*ms, **kw)
                assert isinstance(m, torch.Tensor)
                check(m.detach().numpy(), e.detach().numpy(), dtype=dtype, n=n, err_msg=str(kw))
                if e.numel():
                    (eg,) = torch.autograd.grad(e.sum(), ts[0])
                    (mg,) = torch.autograd.grad(m.sum(), ms[0])
                    check(mg.numpy(), eg.numpy(), dtype=dtype, n=n, err_msg=f"d/d x1 {kw}")


LEGACY = [(None, False), (False, None), (True, None), (False, True)]


@needs_torch
@pytest.mark.parametrize("flags", LEGACY, ids=lambda f: f"size_average={f[0]}-reduce={f[1]}")
@pytest.mark.parametrize("loss", ["cosine_embedding", "triplet"])
def test_torch_legacy_flags_warn_and_match_torch(loss, flags, rng):
    xs = vectors("random", "float64", rng)
    pos = [xs[0], xs[1], labels((N,), "float64", rng)] if loss == "cosine_embedding" else xs
    legacy = {"size_average": flags[0], "reduce": flags[1]}
    match = "size_average and reduce args will be deprecated"
    vscale, gscale = torch_scales(loss, pos, {})
    for form in ("class", "function"):
        with pytest.warns(UserWarning, match=match):
            ev, eg = on_torch("torch", loss, form, pos, **legacy)
        with pytest.warns(UserWarning, match=match):
            gv, gg = on_torch("polyloss", loss, form, pos, **legacy)
        check(gv, ev, dtype="float64", n=xs[0].size, scale=vscale.sum())
        check(gg, eg, dtype="float64", n=xs[0].size, scale=gscale)
    with pytest.warns(UserWarning):
        n_obj = getattr(torch.nn, TORCH_SPECS[loss][0])(**legacy)
    with pytest.warns(UserWarning):
        m_obj = getattr(pt, TORCH_SPECS[loss][0])(**legacy)
    assert m_obj.reduction == n_obj.reduction


@needs_torch
@pytest.mark.parametrize("margin", [0.0, -1.0])
@pytest.mark.parametrize("loss", ["triplet", "triplet_distance"])
def test_torch_triplet_margin_must_be_positive(loss, margin):
    """torch 2.13 raises ``ValueError`` for ``margin <= 0`` in both triplet losses, class and
    function form; so must the mirror."""
    a = np.ones((2, 3))
    for form in ("class", "function"):
        with pytest.raises(ValueError, match="margin"):
            torch_call("torch", loss, form, [tt(a), tt(a), tt(a)], margin=margin)
        with pytest.raises(ValueError, match="margin"):
            torch_call("polyloss", loss, form, [tt(a), tt(a), tt(a)], margin=margin)


@needs_torch
def test_torch_custom_distance_receives_the_callers_tensors(rng):
    seen = []

    def dist(x, y):
        seen.append((type(x), type(y)))
        return sq_dist(x, y)

    a, p, n = vectors("random", "float64", rng)
    pt.triplet_margin_with_distance_loss(tt(a), tt(p), tt(n), distance_function=dist, swap=True)
    assert seen and all(s == (torch.Tensor, torch.Tensor) for s in seen), seen
    assert len(seen) == 3  # d(a, p), d(a, n) and the swap's d(p, n)


@needs_torch
@pytest.mark.parametrize("loss", list(TORCH_SPECS))
def test_torch_signatures_and_attributes_match_torch(loss):
    cls_name, fn_name = TORCH_SPECS[loss]
    n_cls, m_cls = getattr(torch.nn, cls_name), getattr(pt, cls_name)
    assert _params(m_cls.__init__) == _params(n_cls.__init__)
    assert _params(m_cls.forward) == _params(n_cls.forward)
    assert _params(getattr(pt, fn_name)) == _params(getattr(F, fn_name))
    n_obj, m_obj = n_cls(), m_cls()
    for attr in ("margin", "p", "eps", "swap", "reduction"):
        if hasattr(n_obj, attr):
            assert getattr(m_obj, attr) == getattr(n_obj, attr), attr
    if hasattr(n_obj, "distance_function"):
        # torch stores its default, a PairwiseDistance() module, not None: code that calls
        # loss.distance_function(x, y) must work on the mirror too
        x, y = tt(np.arange(6.0).reshape(2, 3)), tt(np.ones((2, 3)))
        assert callable(m_obj.distance_function), m_obj.distance_function
        check(m_obj.distance_function(x, y), n_obj.distance_function(x, y), dtype="float64")


@needs_torch
def test_torch_pairwise_distance_signature_is_torchs():
    # torch.nn.functional.pairwise_distance is a builtin without a signature object; its
    # documented signature is pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False)
    with pytest.raises(ValueError):
        inspect.signature(F.pairwise_distance)
    pk_ = inspect.Parameter.POSITIONAL_OR_KEYWORD
    empty = inspect.Parameter.empty
    assert _params(pt.pairwise_distance) == [
        ("x1", pk_, empty), ("x2", pk_, empty), ("p", pk_, 2.0), ("eps", pk_, 1e-6),
        ("keepdim", pk_, False)]


# ---- the torch mirror on the other array types and autograd backends ----------------------

TORCH_CROSS = [  # (loss, case, kw)
    ("cosine_embedding", "zero", {"margin": -0.2}),
    ("cosine_embedding", "identical", {"margin": 0.3}),
    ("triplet", "random", {"p": 1.0}),
    ("triplet", "identical", {"p": 2.0, "swap": True}),
    ("triplet", "zero", {"p": 3.0, "margin": 0.5}),
    ("triplet", "3d", {"p": 2.0, "eps": 0.0}),
    ("triplet_distance", "identical", {"swap": True}),
    ("triplet_distance", "random", {"distance_function": sq_dist, "swap": True}),
    ("pairwise", "zero", {"p": 3.0, "keepdim": True}),
    ("pairwise", "identical", {"p": 2.0}),
]
# array types whose arrays have the ``.sum`` method the custom distance uses
ARRAY_METHOD_KINDS = ("numpy", "torch", "jax", "mx.np", "mx.nd", "dask")


def torch_cross_case(loss, case, kw, rng):
    if loss == "pairwise":
        return vectors(case, "float64", rng, k=2)
    if loss == "cosine_embedding":
        x1, x2 = vectors(case, "float64", rng, k=2)
        return [x1, x2, labels(x1.shape[:-1], "float64", rng)]
    return vectors(case, "float64", rng)


def torch_native_plain(loss, pos, grad, **kw):
    if loss == "pairwise":
        ts = [tt(a) for a in pos]
        ts[0].requires_grad_(grad)
        out = F.pairwise_distance(*ts, **kw)
        g = torch.autograd.grad(out.sum(), ts[0])[0].numpy() if grad else None
        return out.detach().numpy(), g
    return on_torch("torch", loss, "function", pos, grad=grad, **kw)


def torch_mirror_fn(loss, **kw):
    if loss == "pairwise":
        return lambda *xs: pt.pairwise_distance(*xs, **kw)
    return lambda *xs: getattr(pt, TORCH_SPECS[loss][1])(*xs, **kw)


@needs_torch
@pytest.mark.parametrize("kind", kinds("numpy", "jax", "tensorflow", "mx.nd", "dask"))
def test_torch_mirror_on_other_array_types(kind, rng):
    """float64 values equal torch's, returned as the caller's array type (the custom distance
    written with ``.sum`` only on the types whose arrays have that method)."""
    bugs = KnownBugs()
    for loss, case, kw in TORCH_CROSS:
        if kw.get("distance_function") is sq_dist and kind.name not in ARRAY_METHOD_KINDS:
            continue  # TensorFlow tensors and array-api-strict arrays have no .sum method
        pos = torch_cross_case(loss, case, kw, rng)
        vscale = 0.0 if loss == "pairwise" else torch_scales(loss, pos, kw)[0]  # a norm: no cancellation
        for reduction in (("none",) if loss == "pairwise" else TORCH_REDUCTIONS):
            rkw = kw if loss == "pairwise" else {**kw, "reduction": reduction}
            ev, _ = torch_native_plain(loss, pos, False, **rkw)
            got = run_on(kind, torch_mirror_fn(loss, **rkw), *pos, bugs=bugs)
            check(got, ev, dtype="float64", n=pos[0].size, scale=_through(vscale, reduction),
                  err_msg=f"{loss} {case} {rkw}")
    bugs.check()


@needs_torch
@pytest.mark.parametrize("backend", grad_backends("jax", "tensorflow", "mxnet"))
def test_torch_mirror_gradient_on_other_autograd_backends(backend, rng):
    """torch's gradient (the swap tie split included) on JAX, TensorFlow and MXNet."""
    backend.setup()
    for loss, case, kw in TORCH_CROSS:
        if kw.get("distance_function") is sq_dist and backend.name == "tensorflow":
            continue
        pos = torch_cross_case(loss, case, kw, rng)
        rkw = kw if loss == "pairwise" else {**kw, "reduction": "mean"}
        ev, eg = torch_native_plain(loss, pos, True, **rkw)
        vscale, gscale = (0.0, 0.0) if loss == "pairwise" else torch_scales(loss, pos, kw)
        count = 1 if loss == "pairwise" else int(np.prod(pos[0].shape[:-1]))
        value, grad = backend.value_and_grad(torch_mirror_fn(loss, **rkw), pos, 0)
        n = pos[0].size
        check(value, ev, dtype="float64", n=n, scale=_through(vscale, rkw.get("reduction", "none")),
              err_msg=f"{loss} {case} {kw}")
        check(grad, eg, dtype="float64", n=n, scale=np.asarray(gscale) / count,
              err_msg=f"d/d arg0 {loss} {case} {kw}")


# ---- bad input ---------------------------------------------------------------------------------

TORCH_BAD = {  # id: (loss, arrays, torch's exception)
    "cosine_x2_shape": ("cosine_embedding", [np.zeros((3, 2)), np.ones((3, 3)), np.ones(3)], RuntimeError),
    "cosine_target_length": ("cosine_embedding", [np.ones((3, 2)), np.ones((3, 2)), np.ones(4)],
                             RuntimeError),
    "cosine_3d": ("cosine_embedding", [np.ones((3, 2, 2)), np.ones((3, 2, 2)), np.ones(3)], RuntimeError),
    "triplet_negative_shape": ("triplet", [np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 3))],
                               RuntimeError),
    "triplet_batch": ("triplet", [np.ones((3, 2)), np.ones((4, 2)), np.ones((3, 2))], RuntimeError),
    "triplet_ndim": ("triplet", [np.ones((3, 2)), np.ones((3, 2)), np.ones(2)], RuntimeError),
    "distance_negative_shape": ("triplet_distance", [np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 3))],
                                RuntimeError),
}


@needs_torch
@pytest.mark.parametrize("bad", list(TORCH_BAD))
def test_torch_bad_shapes_raise_valueerror(bad):
    loss, arrays, torch_exc = TORCH_BAD[bad]
    with pytest.raises(torch_exc):
        torch_call("torch", loss, "function", [tt(a) for a in arrays])
    for kind in ("numpy", "torch"):
        conv = KINDS[kind].asarray
        for form in ("class", "function"):
            with pytest.raises(ValueError):
                torch_call("polyloss", loss, form, [conv(a) for a in arrays])


@needs_torch
def test_torch_pairwise_distance_shape_mismatch_raises_valueerror():
    x1, x2 = np.ones((3, 2)), np.ones((3, 3))
    with pytest.raises(RuntimeError):
        F.pairwise_distance(tt(x1), tt(x2))
    for kind in ("numpy", "torch"):
        with pytest.raises(ValueError):
            pt.pairwise_distance(KINDS[kind].asarray(x1), KINDS[kind].asarray(x2))


@needs_torch
@pytest.mark.parametrize("loss", list(TORCH_SPECS))
def test_torch_invalid_reduction_raises_valueerror(loss):
    a = np.ones((3, 2))
    pos = [a, a, np.ones(3)] if loss == "cosine_embedding" else [a, a, a]
    for lib in ("torch", "polyloss"):
        for form in ("class", "function"):
            with pytest.raises(ValueError):
                torch_call(lib, loss, form, [tt(x) for x in pos], reduction="avg")


# =========================================================================================
# 2. polyloss.keras
# =========================================================================================

pk = None
if keras is not None:
    import polyloss.keras as pk

KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None, "mean_with_sample_weight")


def keras_run(lib, form, y_true, y_pred, sw=None, **kw):
    """``(value, d/d y_true, d/d y_pred)`` of the sum, on TensorFlow tensors."""
    ns = keras.losses if lib == "keras" else pk
    yt, yp = tf.constant(y_true), tf.constant(y_pred)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(yt)
        tape.watch(yp)
        if form == "class":
            ctor = {k: v for k, v in kw.items() if k != "axis"}
            obj = ns.CosineSimilarity(axis=kw.get("axis", -1), **ctor)
            out = obj(yt, yp, sample_weight=None if sw is None else tf.constant(sw))
        else:
            out = ns.cosine_similarity(yt, yp, **kw)
        total = tf.reduce_sum(out)
    assert isinstance(out, tf.Tensor), f"{lib}: {type(out)} out for TensorFlow in"
    g_true, g_pred = tape.gradient(total, yt), tape.gradient(total, yp)
    return out.numpy(), g_true.numpy(), g_pred.numpy()


def keras_scales(y_true, y_pred, axis=-1):
    """Per-sample value scale ``Σ|ŷt·ŷp|`` (≤ 1) and the per-element derivative scales
    ``|ŷt|·s_p + |cos|·|yp|·s_p²`` with ``s = min(1/‖y‖, 1e7)`` (Keras's clipped inverse norm)."""
    yt, yp = _f64(y_true, y_pred)

    def inv(v):
        s = (v * v).sum(axis, keepdims=True)
        with np.errstate(divide="ignore"):
            return np.minimum(1.0 / np.sqrt(s), 1e7)

    st, sp = inv(yt), inv(yp)
    cos = (yt * st * yp * sp).sum(axis, keepdims=True)
    value = np.squeeze(np.abs(yt * st * yp * sp).sum(axis, keepdims=True), axis)
    return (value, np.abs(yp) * sp * st + np.abs(cos * yt) * st * st,
            np.abs(yt) * st * sp + np.abs(cos * yp) * sp * sp)


def keras_check(form, y_true, y_pred, sw=None, **kw):
    dtype = str(y_pred.dtype)
    cdtype = dtype if form == "function" else (kw.get("dtype") or "float32")
    axis = kw.get("axis", -1)
    n = max(1, y_pred.size)
    vscale, gts, gps = keras_scales(y_true, y_pred, axis)
    ev, et, ep = keras_run("keras", form, y_true, y_pred, sw, **kw)
    gv, gt, gp = keras_run("polyloss", form, y_true, y_pred, sw, **kw)
    reduction = kw.get("reduction", "sum_over_batch_size") if form == "class" else "none"
    w = np.ones(vscale.shape) if sw is None else np.abs(np.asarray(sw, dtype=np.float64))
    w = np.broadcast_to(w.reshape(w.shape + (1,) * (vscale.ndim - w.ndim)), vscale.shape)
    count = vscale.size if reduction != "mean_with_sample_weight" else max(w.sum(), 1e-300)
    factor = 1.0 / count if reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight") else 1.0
    msg = f"{form} {kw} sw={sw is not None}"
    check(gv, ev, dtype=cdtype, n=n, scale=_through(vscale * w, reduction, count=count), err_msg=msg)
    wg = np.expand_dims(w, axis) * factor
    check(gt, et, dtype=cdtype, n=n, scale=gts * wg, err_msg="d/d y_true " + msg, check_dtype=True)
    check(gp, ep, dtype=cdtype, n=n, scale=gps * wg, err_msg="d/d y_pred " + msg)
    return ev


KERAS_CASES = ("random", "zero", "identical", "batch1", "unbatched", "3d")


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_cosine_similarity_function_matches_keras(case, dtype, rng):
    """``-cos`` per vector (0 for a zero vector), axes -1 and 0 (and 1 on 3-D inputs)."""
    y_true, y_pred = vectors(case, dtype, rng, k=2)
    axes = (-1, 0) + ((1,) if y_pred.ndim == 3 else ())
    for axis in axes[: y_pred.ndim]:
        ev = keras_check("function", y_true, y_pred, axis=axis)
        if case == "zero" and axis == -1:
            np.testing.assert_array_equal(ev[[0, 1, 3]], 0.0)  # a zero vector on either side


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_cosine_similarity_class_matches_keras(dtype, rng):
    """Every reduction with and without per-sample weights (some 0), ``dtype=None`` (float32
    computation whatever the input) and ``dtype='float64'`` on random vectors; the default
    reduction, ``'none'`` and weights on the edge cases; ``axis=0``."""
    plan = [("random", red, weighted, kdtype) for red in KERAS_REDUCTIONS for weighted in (False, True)
            for kdtype in (None, "float64")]
    plan += [(case, red, weighted, None) for case in ("zero", "identical", "batch1", "3d")
             for red, weighted in (("sum_over_batch_size", False), ("none", False),
                                   ("mean_with_sample_weight", True))]
    for case, reduction, weighted, kdtype in plan:
        y_true, y_pred = vectors(case, dtype, rng, k=2)
        sw = None
        if weighted:
            sw = rng.uniform(0.0, 2.0, size=y_pred.shape[:-1])
            sw.reshape(-1)[0] = 0.0
            sw = sw.astype(dtype)
        keras_check("class", y_true, y_pred, sw, reduction=reduction, dtype=kdtype)
    y_true, y_pred = vectors("random", dtype, rng, k=2)
    keras_check("class", y_true, y_pred, None, axis=0)


@needs_keras
def test_keras_zero_vector_gradient_is_kerass_clipped_one():
    """At a zero ``y_pred`` Keras's ``min(rsqrt(0), 1e7)`` picks 1e7: the loss is 0 and its
    gradient w.r.t. ``y_pred`` is ``-1e7·ŷt`` (finite); the mirror must give the same."""
    y_true = np.array([[3.0, 4.0, 0.0]])
    y_pred = np.zeros((1, 3))
    ev, _, ep = keras_run("keras", "function", y_true, y_pred)
    np.testing.assert_allclose(ep, -1e7 * y_true / 5.0, rtol=1e-12)
    assert ev[0] == 0.0
    keras_check("function", y_true, y_pred)


@needs_keras
@pytest.mark.parametrize("kind", kinds("numpy", "torch", "mx.np", "array_api_strict"))
def test_keras_mirror_on_other_array_types(kind, rng):
    """float64 function form (zero vectors, 3-D) and the float32-computing
    ``CosineSimilarity(reduction='sum')`` with weights (zero vectors, float64 in) equal Keras's
    results, returned as the caller's array type."""
    bugs = KnownBugs()
    for case in ("zero", "3d"):
        y_true, y_pred = vectors(case, "float64", rng, k=2)
        vscale, _, _ = keras_scales(y_true, y_pred)
        ev, _, _ = keras_run("keras", "function", y_true, y_pred)
        got = run_on(kind, pk.cosine_similarity, y_true, y_pred, bugs=bugs)
        check(got, ev, dtype="float64", n=y_pred.size, scale=vscale, err_msg=case)
        if case != "zero":
            continue
        sw = rng.uniform(0.5, 2.0, size=y_pred.shape[:-1])
        ev, _, _ = keras_run("keras", "class", y_true, y_pred, sw, reduction="sum")
        got = run_on(kind, lambda t, p, w: pk.CosineSimilarity(reduction="sum")(t, p, sample_weight=w),
                     y_true, y_pred, sw, bugs=bugs)
        check(got, ev, dtype="float32", n=y_pred.size, scale=_through(vscale * 2.0, "sum"), err_msg=case)
    bugs.check()


@needs_keras
@pytest.mark.parametrize("backend", grad_backends("torch", "mxnet"))
def test_keras_mirror_gradient_on_other_autograd_backends(backend, rng):
    """Keras's d/d y_pred (its clipped 1e7 at a zero vector included) on torch and MXNet."""
    backend.setup()
    for case in ("zero", "identical", "random"):
        y_true, y_pred = vectors(case, "float64", rng, k=2)
        vscale, _, gps = keras_scales(y_true, y_pred)
        ev, _, ep = keras_run("keras", "function", y_true, y_pred)
        value, grad = backend.value_and_grad(pk.cosine_similarity, [y_true, y_pred], 1)
        check(value, ev, dtype="float64", n=y_pred.size, scale=vscale, err_msg=case)
        check(grad, ep, dtype="float64", n=y_pred.size, scale=gps, err_msg="d/d y_pred " + case)


@needs_keras
def test_keras_signatures_and_config_match_keras():
    n_cls, m_cls = keras.losses.CosineSimilarity, pk.CosineSimilarity
    assert _params(m_cls.__init__) == _params(n_cls.__init__)
    assert _params(m_cls.__call__) == _params(n_cls.__call__)
    assert _params(pk.cosine_similarity) == _params(keras.losses.cosine_similarity)
    assert m_cls().name == n_cls().name
    assert m_cls().reduction == n_cls().reduction


@needs_keras
def test_keras_shape_mismatch_raises_valueerror():
    y, p = np.ones((4, 3)), np.zeros((4, 2))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        keras.losses.cosine_similarity(tf.constant(y), tf.constant(p))
    for kind in ("numpy", "tensorflow"):
        conv = KINDS[kind].asarray
        with pytest.raises(ValueError):
            pk.cosine_similarity(conv(y), conv(p))
        with pytest.raises(ValueError):
            pk.CosineSimilarity()(conv(y), conv(p))


# =========================================================================================
# 3. polyloss.gluon
# =========================================================================================

pg = gloss = autograd = None
if mx is not None:
    from mxnet import autograd
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg


def nd(a):
    return mx.nd.array(a, dtype=a.dtype)


def gluon_run(lib, name, ctor, arrays, grad=True):
    """``(value, d out.sum() / d arrays[0])`` on classic ``mx.nd`` arrays (``None``: absent)."""
    ns = gloss if lib == "gluon" else pg
    loss = getattr(ns, name)(**ctor)
    xs = [None if a is None else nd(a) for a in arrays]
    if grad:
        xs[0].attach_grad()
        with autograd.record():
            out = loss(*xs)
        out.backward()
    else:
        out = loss(*xs)
    assert isinstance(out, mx.nd.NDArray) and not isinstance(out, mx.np.ndarray), type(out)
    return to_numpy(out), (to_numpy(xs[0].grad) if grad else None)


def gluon_cos_oracle(x1, x2, y, margin=0.0, weight=None, sw=None):
    """Gluon's ``CosineEmbeddingLoss`` transcribed in NumPy float64 (Gluon itself only runs it
    in float32: its 1e-12 clamp is a float32 array): ``cos = x·y / max(‖x‖‖y‖, 1e-12)``,
    ``(1 - cos)·[y = 1] + max(0, [y = -1]·(cos - margin))``, shape ``(N, 1)``."""
    x1, x2, y = _f64(x1, x2, y)
    y = y.reshape(-1, 1)
    dot = (x1 * x2).sum(-1).reshape(-1, 1)
    norms = (np.sqrt((x1 * x1).sum(-1)) * np.sqrt((x2 * x2).sum(-1))).reshape(-1, 1)
    cos = dot / np.maximum(norms, 1e-12)
    loss = (1.0 - cos) * (y == 1) + np.maximum(0.0, (y == -1) * (cos - margin))
    if sw is not None:
        loss = loss * np.asarray(sw, dtype=np.float64)
    return loss * (1.0 if weight is None else weight)


def gluon_expected_grad(native_grad, arrays, ctor):
    """Gluon's d/d input1 with its NaN rows (x1 = 0: the norm's derivative at 0, NaN in
    MXNet) replaced by the mirror's deliberate finite gradient there, hand-computed: ``‖x1‖‖x2‖
    = 0`` is clamped to 1e-12 with no gradient, so ``cos = x1·x2 / 1e-12`` and the loss's
    derivative is ``c·x2 / 1e-12·weight·sample_weight`` with ``c = -1`` for label 1, ``+1`` for
    label -1 where ``cos - margin = -margin > 0``, else 0."""
    x1, x2, y = _f64(*arrays[:3])
    sw = 1.0 if len(arrays) < 4 else np.asarray(arrays[3], dtype=np.float64)
    y = y.reshape(-1, 1)
    c = np.where(y == 1, -1.0, 0.0) + np.where((y == -1) & (-ctor.get("margin", 0.0) > 0), 1.0, 0.0)
    hand = c * x2 / 1e-12 * sw * (ctor.get("weight") or 1.0)
    zero = (x1 == 0).all(-1, keepdims=True)
    assert (np.isnan(native_grad) == np.broadcast_to(zero, x1.shape)).all()  # NaN exactly there
    return np.where(zero, hand, native_grad).astype(native_grad.dtype)


def gluon_scales(name, arrays, ctor):
    """Per-sample value scale and per-element gradient scale: for the cosine, ``1 + Σ|x·y|/
    (‖x‖‖y‖) + |margin|`` and ``2/‖x1‖``; for the triplet, ``Σ(p - a)² + Σ(n - a)² + |margin|``
    and ``2(|p - a| + |n - a|)``; times ``|weight|·|sample_weight|``."""
    w = abs(ctor.get("weight") or 1.0)
    if name == "CosineEmbeddingLoss":
        x1, x2, _, sw = (list(arrays) + [None])[:4]
        x1, x2 = _f64(x1, x2)
        n1 = np.sqrt((x1 * x1).sum(-1, keepdims=True))
        n2 = np.sqrt((x2 * x2).sum(-1, keepdims=True))
        swa = 1.0 if sw is None else np.abs(np.asarray(sw, dtype=np.float64))
        value = (1.0 + np.abs(x1 * x2).sum(-1, keepdims=True) / np.maximum(n1 * n2, 1e-12)
                 + abs(ctor.get("margin", 0.0))) * w * swa
        with np.errstate(divide="ignore"):
            g = np.where(n1 > 0, 2.0 / n1, 0.0) * np.ones_like(x1) * w * swa
        return value, g
    a, p, n = _f64(*arrays)
    ba = ctor.get("batch_axis", 0)
    axes = tuple(i for i in range(a.ndim) if i != ba % a.ndim)
    value = ((p - a) ** 2).sum(axes) + ((n - a) ** 2).sum(axes) + abs(ctor.get("margin", 1.0))
    return value * w, 2.0 * (np.abs(p - a) + np.abs(n - a)) * w


def gluon_cos_case(case, dtype, rng, sw=False):
    x1, x2 = vectors(case, dtype, rng, k=2)
    y = labels(x1.shape[:1], dtype, rng)
    if case == "random":
        y[2] = 0.0  # a label that is neither 1 nor -1: loss 0
    w = rng.uniform(0.0, 2.0, size=(x1.shape[0], 1)).astype(dtype) if sw else None
    return [x1, x2, y] + ([w] if sw else [])


@needs_mxnet
@pytest.mark.parametrize("case", ["random", "zero", "identical", "batch1"])
def test_gluon_cosine_embedding_matches_gluon(case, rng):
    """float32 (Gluon's only working dtype here): margins 0, 0.3, -0.2, ``weight``,
    ``sample_weight`` of shape ``(N, 1)``; value (shape ``(N, 1)``) and d/d input1. Deliberate
    difference: at a zero ``input1`` Gluon's gradient is NaN (the norm's derivative at 0), the
    mirror's is finite (``gluon_expected_grad``), the same on every backend."""
    for sw in (False, True):
        arrays = gluon_cos_case(case, "float32", rng, sw)
        for margin in (0.0, 0.3, -0.2):
            for weight in (None, 2.0):
                ctor = {"margin": margin, "weight": weight}
                ev, eg = gluon_run("gluon", "CosineEmbeddingLoss", ctor, arrays)
                gv, gg = gluon_run("polyloss", "CosineEmbeddingLoss", ctor, arrays)
                assert ev.shape == (arrays[0].shape[0], 1)
                vs, gs = gluon_scales("CosineEmbeddingLoss", arrays, ctor)
                n = arrays[0].size
                check(gv, ev, dtype="float32", n=n, scale=vs, err_msg=f"{ctor} sw={sw}")
                if case == "zero":  # x1 = 0 in rows 0 and 3: the norm's derivative at 0
                    assert np.isnan(eg[[0, 3]]).all() and not np.isnan(eg[[1, 2, 4, 5]]).any()
                expected = gluon_expected_grad(eg, arrays, ctor)
                check(gg, expected, dtype="float32", n=n, scale=gs, err_msg=f"d/d input1 {ctor} sw={sw}")


@needs_mxnet
@pytest.mark.parametrize("case", ["random", "zero", "identical", "batch1"])
def test_gluon_cosine_embedding_float64_follows_gluons_formula(case, rng):
    """Gluon 1.9.1 cannot run ``CosineEmbeddingLoss`` on float64 arrays (its 1e-12 clamp is a
    float32 constant: MXNetError); the mirror computes Gluon's formula in float64, checked
    against the NumPy transcription ``gluon_cos_oracle``."""
    arrays = gluon_cos_case(case, "float64", rng, sw=True)
    with pytest.raises(mx.base.MXNetError):
        gluon_run("gluon", "CosineEmbeddingLoss", {}, arrays, grad=False)
        mx.nd.waitall()
    for margin in (0.0, 0.3, -0.2):
        ctor = {"margin": margin, "weight": 0.5}
        expected = gluon_cos_oracle(*arrays[:3], margin=margin, weight=0.5, sw=arrays[3])
        vs, _ = gluon_scales("CosineEmbeddingLoss", arrays, ctor)
        for kind in ("mx.nd", "numpy"):
            got = run_on(KINDS[kind], lambda *xs, c=ctor: pg.CosineEmbeddingLoss(**c)(*xs), *arrays)
            check(got, expected, dtype="float64", n=arrays[0].size, scale=vs, err_msg=f"{kind} {ctor}")


@needs_mxnet
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["random", "zero", "identical", "batch1", "3d", "tie"])
def test_gluon_triplet_matches_gluon(case, dtype, rng):
    """Squared distances summed over every non-batch axis, ``relu(· + margin)``; margins 1,
    0.5 and 0 (``tie``: positive == negative, so the argument is exactly 0 and Gluon's
    ``relu`` gradient there is 0), ``weight``, ``batch_axis`` 0 and 1 (3-D)."""
    a, p, n = vectors("random" if case == "tie" else case, dtype, rng)
    if case == "tie":
        n[::2] = p[::2]
    batch_axes = (0, 1) if a.ndim == 3 else (0,)
    for margin in (1.0, 0.5, 0.0):
        for weight in (None, 0.5):
            for ba in batch_axes:
                ctor = {"margin": margin, "weight": weight, "batch_axis": ba}
                ev, eg = gluon_run("gluon", "TripletLoss", ctor, [a, p, n])
                gv, gg = gluon_run("polyloss", "TripletLoss", ctor, [a, p, n])
                vs, gs = gluon_scales("TripletLoss", [a, p, n], ctor)
                check(gv, ev, dtype=dtype, n=a.size, scale=vs, err_msg=str(ctor))
                check(gg, eg, dtype=dtype, n=a.size, scale=gs, err_msg=f"d/d pred {ctor}")
                assert ev.shape == (a.shape[ba],)
    if case == "tie":
        ev, eg = gluon_run("gluon", "TripletLoss", {"margin": 0.0}, [a, p, n])
        assert (ev[::2] == 0).all() and (eg[::2] == 0).all()


GLUON_CROSS = [  # (name, dtype, case, ctor, sample_weight)
    ("CosineEmbeddingLoss", "float32", "zero", {"margin": 0.3}, False),
    ("CosineEmbeddingLoss", "float32", "identical", {"margin": -0.2, "weight": 2.0}, True),
    ("TripletLoss", "float64", "random", {"margin": 0.5}, False),
    ("TripletLoss", "float64", "3d", {"batch_axis": 1, "weight": 0.5}, False),
]


def gluon_cross_arrays(name, dtype, case, sw, rng):
    if name == "CosineEmbeddingLoss":
        return gluon_cos_case(case, dtype, rng, sw)
    return vectors(case, dtype, rng)


@needs_mxnet
@pytest.mark.parametrize("kind", kinds("numpy", "torch", "mx.np", "tensorflow", "array_api_strict"))
def test_gluon_mirror_on_other_array_types(kind, rng):
    bugs = KnownBugs()
    for name, dtype, case, ctor, sw in GLUON_CROSS:
        arrays = gluon_cross_arrays(name, dtype, case, sw, rng)
        ev, _ = gluon_run("gluon", name, ctor, arrays, grad=False)
        vs, _ = gluon_scales(name, arrays, ctor)
        got = run_on(kind, lambda *xs, nm=name, c=ctor: getattr(pg, nm)(**c)(*xs), *arrays, bugs=bugs)
        check(got, ev, dtype=dtype, n=arrays[0].size, scale=vs, err_msg=f"{name} {case} {ctor}")
    bugs.check()


@needs_mxnet
@pytest.mark.parametrize("backend", grad_backends("torch", "tensorflow", "mxnet"))
def test_gluon_mirror_gradient_on_other_autograd_backends(backend, rng):
    """Gluon's gradient (at a zero vector for the cosine the mirror's finite one,
    ``gluon_expected_grad``, where Gluon's is NaN) on torch, TensorFlow and MXNet's NumPy
    arrays (JAX: the torch and optax mirrors)."""
    backend.setup()
    for name, dtype, case, ctor, sw in GLUON_CROSS:
        arrays = gluon_cross_arrays(name, dtype, case, sw, rng)
        ev, eg = gluon_run("gluon", name, ctor, arrays)
        if name == "CosineEmbeddingLoss":
            eg = gluon_expected_grad(eg, arrays, ctor)
        vs, gs = gluon_scales(name, arrays, ctor)
        value, grad = backend.value_and_grad(lambda *xs, nm=name, c=ctor: getattr(pg, nm)(**c)(*xs),
                                             arrays, 0)
        check(value, ev, dtype=dtype, n=arrays[0].size, scale=vs, err_msg=f"{name} {case}")
        check(grad, eg, dtype=dtype, n=arrays[0].size, scale=gs, err_msg=f"d/d arg0 {name} {case}")


@needs_mxnet
@pytest.mark.parametrize("name", ["CosineEmbeddingLoss", "TripletLoss"])
def test_gluon_signatures_match_gluon(name):
    assert _params(getattr(pg, name).__init__) == _params(getattr(gloss, name).__init__)
    native_call = _params(getattr(gloss, name).hybrid_forward, drop=("F",))
    assert _params(getattr(pg, name).__call__) == native_call


@needs_mxnet
@pytest.mark.parametrize("name", ["CosineEmbeddingLoss", "TripletLoss"])
def test_gluon_element_count_mismatch_raises_valueerror(name):
    """Gluon reshapes the second (and third) array to the first's shape, so only a different
    element count is an error there (a reshape failure); the mirror raises ``ValueError``."""
    a, b = np.ones((4, 3), dtype=np.float32), np.ones((4, 2), dtype=np.float32)
    arrays = [a, b, np.ones(4, dtype=np.float32)] if name == "CosineEmbeddingLoss" else [a, b, a]
    with pytest.raises((ValueError, mx.base.MXNetError)):
        gluon_run("gluon", name, {}, arrays, grad=False)
        mx.nd.waitall()
    for kind in ("mx.nd", "numpy"):
        conv = KINDS[kind].asarray
        with pytest.raises(ValueError):
            getattr(pg, name)()(*[conv(x) for x in arrays])


# =========================================================================================
# 4. polyloss.optax
# =========================================================================================

po = jnp = None
if optax is not None:
    jnp = jax.numpy
    import polyloss.optax as po


def optax_run(lib, name, arrays, grad=True, **kw):
    """``(value, d value.sum() / d arrays[0])`` on JAX arrays, eagerly; ``where`` as a JAX array."""
    ns = optax.losses if lib == "optax" else po
    xs = [jnp.asarray(a) for a in arrays]
    kw = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}

    def total(x):
        out = getattr(ns, name)(x, *xs[1:], **kw)
        return jnp.sum(out), out

    if not grad:
        out = total(xs[0])[1]
        return np.asarray(out), None
    (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[0])
    assert isinstance(out, jax.Array)
    return np.asarray(out), np.asarray(g)


def optax_cos_scales(a, b, epsilon, axis, where, distance):
    """``Σ|â·b̂|`` (+1 for the distance) per result, and ``2/√max(Σa², ε)`` per element."""
    a, b = _f64(a, b)
    m = np.ones(a.shape, dtype=bool) if where is None else np.broadcast_to(where, a.shape)
    na = np.sqrt(np.maximum(np.where(m, a * a, 0).sum(axis, keepdims=True), epsilon))
    nb = np.sqrt(np.maximum(np.where(m, b * b, 0).sum(axis, keepdims=True), epsilon))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(m, np.abs(a * b) / (na * nb), 0).sum(axis) + (1.0 if distance else 0.0)
        grad = np.where(na > 0, 2.0 / na, 0.0) * np.ones_like(a)
    return np.nan_to_num(value), np.nan_to_num(grad)


def optax_triplet_scales(a, p, n, axis=-1, norm_degree=2, margin=1.0, eps=1e-6):
    """``|d(a, p)| + |d(a, n)| + |margin|`` per triplet; 2 per element (the derivative of each
    distance has entries of at most 1 for sign-definite differences)."""
    a, p, n = _f64(a, p, n)
    k = norm_degree
    with np.errstate(invalid="ignore"):
        ds = [np.abs(((a - b) ** k).sum(axis) + eps) ** (1.0 / k) for b in (p, n)]
    return ds[0] + ds[1] + abs(margin), 2.0 * np.ones_like(a)


def optax_triplet_inputs(case, dtype, rng, norm_degree):
    """For an odd degree the differences are sign-definite per row (rows 0-2: ``a - p`` and
    ``a - n`` positive; rows 3-5: ``a - n`` negative, a negative sum whose fractional power is
    NaN in optax), so the sums themselves do not cancel."""
    a, p, n = vectors(case, "float64", rng)
    if norm_degree % 2 == 1 and case in ("random", "3d"):
        p = a - np.abs(a - p)
        n = a - np.abs(a - n)
        n[3:] = a[3:] + np.abs(a[3:] - n[3:])
        if case == "random":
            n[4] = a[4] + 0.5  # a small negative sum, still below -eps: NaN
    return [x.astype(dtype) for x in (a, p, n)]


def optax_cos_plan(dtype):
    """``(case, keywords)`` pairs. Eager JAX compiles each operation once per shape, dtype and
    axis (about a second for each new combination here), so the edge cases reuse the random
    case's shape, float32 runs the main combination only, and the batch of one and unbatched
    inputs are left to the other mirrors (they add no optax-specific behaviour)."""
    main = [(case, kw) for case in ("random", "zero", "identical")
            for kw in ({}, {"epsilon": 1e-8}, {"epsilon": 1e-12})]
    if dtype == "float32":
        return main
    return main + [
        ("random", {"axis": 0, "epsilon": 1e-12}), ("zero", {"axis": 0}),
        ("random", {"where": True}), ("zero", {"where": True, "epsilon": 1e-8}),
        ("3d", {"axis": (1, 2), "epsilon": 1e-8}),
    ]


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance"])
def test_optax_cosine_matches_optax(name, dtype, rng):
    """Random, zero and identical vectors and 3-D inputs; ``epsilon`` 0 (a zero vector gives
    NaN, value and gradient, as optax), 1e-8 and 1e-12, ``axis`` -1, 0 and (1, 2), and a
    ``where`` mask."""
    for case, kw in optax_cos_plan(dtype):
        a, b = vectors(case, dtype, rng, k=2)
        if kw.get("where"):
            kw = {**kw, "where": rng.random(a.shape) < 0.7}
        ev, eg = optax_run("optax", name, [a, b], **kw)
        gv, gg = optax_run("polyloss", name, [a, b], **kw)
        vs, gs = optax_cos_scales(a, b, kw.get("epsilon", 0.0), kw.get("axis", -1), kw.get("where"),
                                  name == "cosine_distance")
        msg = f"{case} {kw}"
        check(gv, ev, dtype=dtype, n=a.size, scale=vs, err_msg=msg)
        check(gg, eg, dtype=dtype, n=a.size, scale=gs, err_msg=f"d/d predictions {msg}")
        if case == "zero" and not kw:  # a zero vector on either side: NaN value and gradient row
            assert np.isnan(ev[[0, 1, 3]]).all() and np.isnan(eg[[0, 1, 3]]).all()


def optax_triplet_plan(dtype, norm_degree):
    main = [(case, {"margin": margin, "eps": eps}) for case in ("random", "zero", "identical")
            for margin, eps in ((1.0, 1e-6), (0.3, 0.1))]
    if dtype == "float32":
        return main[::2]
    return main + {1: [("3d", {"axis": 1})], 2: [("zero", {"axis": 0})], 3: []}[norm_degree]


@needs_optax
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_degree", [1, 2, 3])
def test_optax_triplet_matches_optax(norm_degree, dtype, rng):
    """``norm_degree`` 1, 2, 3 with no absolute value (odd degrees: signed distances, NaN
    for a negative sum under the fractional power, as optax), margins 1 and 0.3, ``eps``
    1e-6 and 0.1, ``axis`` -1, 0 and 1; random, zero and identical vectors, 3-D inputs."""
    for case, kw in optax_triplet_plan(dtype, norm_degree):
        a, p, n = optax_triplet_inputs(case, dtype, rng, norm_degree)
        kw = {**kw, "norm_degree": norm_degree}
        ev, eg = optax_run("optax", "triplet_margin_loss", [a, p, n], **kw)
        gv, gg = optax_run("polyloss", "triplet_margin_loss", [a, p, n], **kw)
        vs, gs = optax_triplet_scales(a, p, n, **kw)
        msg = f"{case} {kw}"
        check(gv, ev, dtype=dtype, n=a.size, scale=vs, err_msg=msg)
        check(gg, eg, dtype=dtype, n=a.size, scale=gs, err_msg=f"d/d anchors {msg}")
        if norm_degree == 3 and case == "random":
            assert np.isnan(ev[3:]).all() and not np.isnan(ev[:3]).any()


OPTAX_CROSS = [  # (name, case, kw)
    ("cosine_similarity", "zero", {}),
    ("cosine_distance", "zero", {"epsilon": 1e-8}),
    ("cosine_similarity", "3d", {"axis": 1, "epsilon": 1e-8}),
    ("triplet_margin_loss", "random", {"norm_degree": 3}),
    ("triplet_margin_loss", "identical", {"norm_degree": 2, "margin": 0.3}),
    ("triplet_margin_loss", "3d", {"norm_degree": 1, "axis": 1}),
]


def optax_cross_arrays(name, case, kw, rng):
    if name == "triplet_margin_loss":
        return optax_triplet_inputs(case, "float64", rng, kw.get("norm_degree", 2))
    return vectors(case, "float64", rng, k=2)


def optax_cross_scales(name, arrays, kw):
    if name == "triplet_margin_loss":
        return optax_triplet_scales(*arrays, **kw)
    return optax_cos_scales(*arrays, kw.get("epsilon", 0.0), kw.get("axis", -1), None,
                            name == "cosine_distance")


@needs_optax
@pytest.mark.parametrize("kind", kinds("numpy", "torch", "tensorflow", "mx.nd", "dask", "array_api_strict"))
def test_optax_mirror_on_other_array_types(kind, rng):
    bugs = KnownBugs()
    for name, case, kw in OPTAX_CROSS:
        arrays = optax_cross_arrays(name, case, kw, rng)
        ev, _ = optax_run("optax", name, arrays, grad=False, **kw)
        vs, _ = optax_cross_scales(name, arrays, kw)
        got = run_on(kind, lambda *xs, nm=name, k=kw: getattr(po, nm)(*xs, **k), *arrays, bugs=bugs)
        check(got, ev, dtype="float64", n=arrays[0].size, scale=vs, err_msg=f"{name} {case} {kw}")
    # a where mask of the caller's type
    a, b = vectors("random", "float64", rng, k=2)
    mask = rng.random(a.shape) < 0.6
    ev, _ = optax_run("optax", "cosine_similarity", [a, b], grad=False, where=mask)
    got = run_on(kind, lambda x, y, w: po.cosine_similarity(x, y, where=w), a, b, mask, bugs=bugs)
    check(got, ev, dtype="float64", n=a.size, scale=optax_cos_scales(a, b, 0.0, -1, mask, False)[0])
    bugs.check()


@needs_optax
@pytest.mark.parametrize("backend", grad_backends("torch", "tensorflow", "mxnet"))
def test_optax_mirror_gradient_on_other_autograd_backends(backend, rng):
    backend.setup()
    for name, case, kw in OPTAX_CROSS:
        arrays = optax_cross_arrays(name, case, kw, rng)
        ev, eg = optax_run("optax", name, arrays, **kw)
        vs, gs = optax_cross_scales(name, arrays, kw)
        value, grad = backend.value_and_grad(lambda *xs, nm=name, k=kw: getattr(po, nm)(*xs, **k),
                                             arrays, 0)
        check(value, ev, dtype="float64", n=arrays[0].size, scale=vs, err_msg=f"{name} {case}")
        check(grad, eg, dtype="float64", n=arrays[0].size, scale=gs, err_msg=f"d/d arg0 {name} {case}")


@needs_optax
@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance", "triplet_margin_loss"])
def test_optax_signatures_match_optax(name):
    assert _params(getattr(po, name)) == _params(getattr(optax.losses, name))


@needs_optax
@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance", "triplet_margin_loss"])
def test_optax_shape_mismatch_raises_valueerror(name):
    """Shapes optax cannot broadcast raise there; the mirror raises ``ValueError`` for those
    and, without silent broadcasting, for ``(N, 1)`` against ``(N, D)``."""
    k = 3 if name == "triplet_margin_loss" else 2
    bad = [np.zeros((4, 3)), np.ones((4, 2)), np.ones((4, 3))][:k]
    with pytest.raises((ValueError, TypeError)):
        getattr(optax.losses, name)(*(jnp.asarray(x) for x in bad))
    broadcastable = [np.zeros((4, 3)), np.ones((4, 1)), np.ones((4, 3))][:k]
    for kind in ("numpy", "jax"):
        conv = KINDS[kind].asarray
        for arrays in (bad, broadcastable, bad[::-1]):
            with pytest.raises(ValueError):
                getattr(po, name)(*(conv(x) for x in arrays))


# =========================================================================================
# 5. canonical polyloss.cosine_similarity, cosine_embedding, triplet_margin
# =========================================================================================

def _xp_of(a, b):
    return polyloss.array_namespace(a, b)


def log1p_sq(a, b):
    """A custom distance in the Array API: ``log1p(Σ(a - b)²)`` along the last axis."""
    xp = _xp_of(a, b)
    d = a - b
    return xp.log1p(xp.sum(d * d, axis=-1))


CANON_CONFIGS = {  # loss -> list of keyword sets
    "cosine_similarity": [{}, {"eps": 1e-3}, {"axis": 0}],
    "cosine_embedding": [{}, {"margin": 0.25}, {"margin": -0.5, "eps": 1e-3}, {"axis": 0, "margin": 0.1}],
    "triplet_margin": [
        {}, {"p": 1.0, "margin": 0.5}, {"p": 1.0, "margin": 10.0}, {"p": 3.0, "swap": True},
        {"p": 1.5, "eps": 1e-3},
        {"swap": True, "margin": 2.0}, {"squared": True, "margin": 3.0},
        {"squared": True, "swap": True}, {"distance": log1p_sq, "margin": 0.5},
        {"distance": log1p_sq, "swap": True}, {"axis": 0, "p": 2.0},
    ],
}
CANON_CASES = ("random", "zero", "identical", "small", "batch1", "3d")


def canon_inputs(loss, case, dtype, rng):
    """``small``: rows whose vectors have norms below the default ``eps`` (cosine: 1e-8) or of
    order 1e-4 (triplet) in the first array."""
    xs = vectors("random" if case == "small" else case, dtype, rng)
    if case == "small":
        xs[0] = xs[0].astype(np.float64)
        xs[0][:2] *= 1e-9 if loss != "triplet_margin" else 1e-4
        xs[0] = xs[0].astype(dtype)
    if loss == "cosine_similarity":
        return xs[:2]
    if loss == "cosine_embedding":
        return xs[:2] + [labels(xs[0].shape[:-1], dtype, rng)]
    return xs


def for_config(loss, arrays, kw, rng):
    """The inputs for one configuration: ``cosine_embedding`` along ``axis=0`` needs one label
    per vector along that axis."""
    if loss == "cosine_embedding" and kw.get("axis", -1) == 0:
        return arrays[:2] + [labels(arrays[0].shape[1:], str(arrays[0].dtype), rng)]
    return arrays


def canon_call(loss, arrays, kw):
    fn = getattr(polyloss, loss)
    if loss == "cosine_embedding":
        x1, x2, y, *w = arrays
        return fn(x1, x2, y, **kw, **({"sample_weight": w[0]} if w else {}))
    k = 2 if loss == "cosine_similarity" else 3
    return fn(*arrays[:k], **kw, **({"sample_weight": arrays[k]} if len(arrays) > k else {}))


def canon_oracle(loss, arrays, kw):
    """Unreduced value, d/d first input, and their cancelling-term scales (NumPy float64)."""
    axis = kw.get("axis", -1)
    if loss == "cosine_similarity":
        return np_cos(arrays[0], arrays[1], axis, kw.get("eps", 1e-8))
    if loss == "cosine_embedding":
        return np_cosine_embedding(arrays[0], arrays[1], arrays[2], kw.get("margin", 0.0), axis,
                                   kw.get("eps", 1e-8))
    dist = {"p": kw.get("p", 2.0), "eps": kw.get("eps", 1e-6), "squared": kw.get("squared", False),
            "custom": kw.get("distance") is log1p_sq}
    return np_triplet(*arrays[:3], margin=kw.get("margin", 1.0), swap=kw.get("swap", False),
                      axis=axis, **dist)


def canon_reduced(loss, arrays, kw, reduction, w, normalizer):
    """The oracle's reduced value, gradient and their scales."""
    value, grad, vscale, gscale = canon_oracle(loss, arrays, kw)
    axis = kw.get("axis", -1)
    batch = arrays[0].shape[0] if arrays[0].ndim else 1
    out, factor = np_reduce(value, reduction, w, normalizer, batch)
    vs, _ = np_reduce(vscale, reduction, w, normalizer, batch)  # the weights are >= 0
    f = np.expand_dims(factor, axis)
    return out, grad * f, vs, gscale * np.abs(f)


def canon_weights(loss, arrays, kw, dtype, rng):
    """Weights (>= 0, some near 0): one per item (the loss's shape), one per sample (a prefix)."""
    value = canon_oracle(loss, arrays, kw)[0]
    modes = {"item": rng.uniform(0.0, 2.0, size=value.shape).astype(dtype)}
    if value.ndim > 1:
        modes["sample"] = rng.uniform(0.0, 2.0, size=value.shape[:1]).astype(dtype)
    return modes


CANON_REDUCTIONS = [("none", "count"), ("sum", "count"), ("mean", "count"),
                    ("mean", "sum_of_weights"), ("batchmean", "count")]


def _is_callers_type(backend, out, like):
    if backend.name == "numpy":
        return isinstance(out, (np.ndarray, np.generic))
    return isinstance(out, type(like))


# eager JAX, TensorFlow, MXNet and Dask pay per new shape and operation (compilation, graph
# building): there the batch of one (a shape of its own, nothing loss-specific) is left to the
# other backends, float32 runs the random case, and gradients the (N, D) cases
HEAVY = ("jax", "tensorflow", "mxnet", "dask")
# Dask builds and computes a graph per call (~0.1 s): unweighted 'none' and 'sum', weighted
# 'mean' with either normalizer (the reduction code is shared with every other backend)
DASK_REDUCTIONS = {True: {("none", "count"), ("sum", "count")},
                   False: {("mean", "count"), ("mean", "sum_of_weights")}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", list(CANON_CONFIGS))
def test_canonical_values_match_oracle(backend, loss, dtype, rng):
    """Every configuration on every case and installed backend against the NumPy float64
    oracle; on the random and 3-D cases every reduction (``batchmean`` where ``axis=-1``),
    weights (one per item; one per sample on 3-D) and both normalizers."""
    for case in CANON_CASES:
        if backend.name in HEAVY and (case == "batch1" or (dtype == "float32" and case != "random")):
            continue
        base = canon_inputs(loss, case, dtype, rng)
        for kw in CANON_CONFIGS[loss]:
            axis = kw.get("axis", -1)
            if axis == 0 and case in ("batch1", "3d"):
                continue
            arrays = for_config(loss, base, kw, rng)
            weights = {"none": None}
            if case in ("random", "3d"):
                mode = "sample" if case == "3d" else "item"
                weights[mode] = canon_weights(loss, arrays, kw, dtype, rng)[mode]
            for mode, w in weights.items():
                for reduction, normalizer in CANON_REDUCTIONS:
                    if (w is None and normalizer != "count") or (case not in ("random", "3d")
                                                                 and reduction not in ("none", "mean")):
                        continue
                    if backend.name == "dask" and (reduction, normalizer) not in DASK_REDUCTIONS[w is None]:
                        continue
                    if reduction == "batchmean" and axis != -1:
                        # batchmean divides by pred.shape[0], along axis=0 the vector length
                        # rather than the number of pairs: an open question, not pinned here
                        continue
                    allw = [*arrays] + ([] if w is None else [w])
                    moved = [backend.asarray(a) for a in allw]
                    out = canon_call(loss, moved, {**kw, "reduction": reduction, "normalizer": normalizer})
                    assert _is_callers_type(backend, out, moved[0]), type(out)
                    want, _, vs, _ = canon_reduced(loss, arrays, kw, reduction, w, normalizer)
                    check(backend.to_numpy(out), np.asarray(want).astype(dtype), dtype=dtype,
                          n=arrays[0].size, scale=vs,
                          err_msg=f"{backend.name} {case} {kw} {reduction} {normalizer} w={mode}")


CANON_GRAD_CASES = ("random", "zero", "identical", "small", "3d")


@pytest.mark.parametrize("case", CANON_GRAD_CASES)
@pytest.mark.parametrize("loss", list(CANON_CONFIGS))
def test_canonical_gradient_matches_oracle(autograd_backend, loss, case, rng):
    """d/d first input (float64) against the analytic derivative: zero vectors (clamped norm,
    no NaN), identical vectors (``eps`` inside the root keeps it finite; at the swap tie the
    first distance, d(a, n), is kept), norms below ``eps``, hinges active at 0."""
    if case == "3d" and autograd_backend.name in HEAVY:
        pytest.skip("3-D gradients run on torch (a new shape for every operation elsewhere)")
    base = canon_inputs(loss, case, "float64", rng)
    for kw in CANON_CONFIGS[loss]:
        if kw.get("axis", -1) == 0 and case == "3d":
            continue
        arrays = for_config(loss, base, kw, rng)
        w = rng.uniform(0.0, 2.0, size=canon_oracle(loss, arrays, kw)[0].shape[:1])
        for reduction, normalizer in (("mean", "sum_of_weights"),):
            full = {**kw, "reduction": reduction, "normalizer": normalizer}
            value, grad = autograd_backend.value_and_grad(
                lambda *xs, f=full: canon_call(loss, xs, f), [*arrays, w], 0)
            want, gwant, vs, gs = canon_reduced(loss, arrays, kw, reduction, w, normalizer)
            msg = f"{autograd_backend.name} {kw} {reduction}"
            check(value, np.asarray(want), dtype="float64", n=arrays[0].size, scale=vs, err_msg=msg)
            check(grad, gwant, dtype="float64", n=arrays[0].size, scale=gs, err_msg="d/d x1 " + msg)


def test_canonical_oracles_on_numbers_worked_out_by_hand():
    """The oracles themselves, on numbers computed on paper."""
    x1 = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    x2 = np.array([[4.0, 3.0], [1.0, 1.0], [-2.0, 0.0]])
    cos, *_ = np_cos(x1, x2)
    np.testing.assert_allclose(cos, [24 / 25, 0.0, -1.0], rtol=1e-15)
    loss, *_ = np_cosine_embedding(x1, x2, np.array([1.0, -1.0, -1.0]), margin=-0.5)
    np.testing.assert_allclose(loss, [1 / 25, 0.5, 0.0], rtol=1e-14)
    a = np.array([[0.0, 0.0]])
    p = np.array([[3.0, 4.0]])
    n = np.array([[1.0, 0.0]])
    t, g, *_ = np_triplet(a, p, n, eps=0.0)  # 5 - 1 + 1
    np.testing.assert_allclose(t, [5.0], rtol=1e-15)
    np.testing.assert_allclose(g, [[-0.6 + 1.0, -0.8]], rtol=1e-15)
    t, *_ = np_triplet(a, p, n, squared=True, margin=0.0)  # 25 - 1
    assert t[0] == 24.0
    t, *_ = np_triplet(a, p, n, p=1.0, eps=0.0, margin=-5.0)  # 7 - 1 - 5
    assert t[0] == 1.0
    # anchor (3, 4), positive 0, negative (1, 0): d(a, p) = 5, d(a, n) = √20, d(p, n) = 1
    t, *_ = np_triplet(p, a, n, eps=0.0)
    np.testing.assert_allclose(t, [6.0 - math.sqrt(20.0)], rtol=1e-15)
    t, g, *_ = np_triplet(p, a, n, swap=True, eps=0.0)  # min(√20, 1) = 1: 5 - 1 + 1
    np.testing.assert_allclose(t, [5.0], rtol=1e-15)
    np.testing.assert_allclose(g, [[0.6, 0.8]], rtol=1e-15)  # d(p, n) does not depend on the anchor


@needs_torch
def test_canonical_cosine_similarity_equals_torchs_on_ordinary_vectors(rng):
    """The documented equivalent ``torch.nn.functional.cosine_similarity`` (eps 1e-8 on each
    norm) agrees with ``reduction='none'`` (zero vectors included: both give 0)."""
    for case in ("random", "zero", "3d"):
        x1, x2 = vectors(case, "float64", rng, k=2)
        expected = F.cosine_similarity(tt(x1), tt(x2), dim=-1, eps=1e-8).numpy()
        got = polyloss.cosine_similarity(tt(x1), tt(x2), reduction="none")
        check(got, expected, dtype="float64", n=x1.size, scale=np_cos(x1, x2)[2], err_msg=case)


def test_canonical_signatures():
    pk_, kw_ = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    empty = inspect.Parameter.empty
    common = [("reduction", kw_, "mean"), ("sample_weight", kw_, None), ("normalizer", kw_, "count")]
    assert _params(polyloss.cosine_similarity) == [
        ("pred", pk_, empty), ("target", pk_, empty), ("axis", kw_, -1), ("eps", kw_, 1e-8), *common]
    assert _params(polyloss.cosine_embedding) == [
        ("x1", pk_, empty), ("x2", pk_, empty), ("target", pk_, empty), ("margin", kw_, 0.0),
        ("axis", kw_, -1), ("eps", kw_, 1e-8), *common]
    assert _params(polyloss.triplet_margin) == [
        ("anchor", pk_, empty), ("positive", pk_, empty), ("negative", pk_, empty),
        ("margin", kw_, 1.0), ("p", kw_, 2.0), ("eps", kw_, 1e-6), ("swap", kw_, False),
        ("squared", kw_, False), ("distance", kw_, None), ("axis", kw_, -1), *common]


CANON_BAD = {
    "cos_shape": ("cosine_similarity", [np.ones((3, 2)), np.ones((3, 3))], {}),
    "cos_broadcast": ("cosine_similarity", [np.ones((3, 2)), np.ones((3, 1))], {}),
    "cos_axis": ("cosine_similarity", [np.ones((3, 2)), np.ones((3, 2))], {"axis": 2}),
    "cos_0d": ("cosine_similarity", [np.ones(()), np.ones(())], {}),
    "cos_eps": ("cosine_similarity", [np.ones((3, 2)), np.ones((3, 2))], {"eps": -1.0}),
    "emb_shape": ("cosine_embedding", [np.ones((3, 2)), np.ones((3, 3)), np.ones(3)], {}),
    "emb_target": ("cosine_embedding", [np.ones((3, 2)), np.ones((3, 2)), np.ones(4)], {}),
    "emb_target_2d": ("cosine_embedding", [np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2))], {}),
    "emb_reduction": ("cosine_embedding", [np.ones((3, 2)), np.ones((3, 2)), np.ones(3)],
                      {"reduction": "avg"}),
    "tri_positive": ("triplet_margin", [np.ones((3, 2)), np.ones((3, 3)), np.ones((3, 2))], {}),
    "tri_negative": ("triplet_margin", [np.ones((3, 2)), np.ones((3, 2)), np.ones((4, 2))], {}),
    "tri_p": ("triplet_margin", [np.ones((3, 2))] * 3, {"p": 0.5}),
    "tri_axis": ("triplet_margin", [np.ones((3, 2))] * 3, {"axis": -3}),
    "tri_normalizer": ("triplet_margin", [np.ones((3, 2))] * 3, {"normalizer": "batch"}),
    "tri_weight": ("triplet_margin", [np.ones((3, 2))] * 3 + [np.ones(4)], {}),
}


@pytest.mark.parametrize("bad", list(CANON_BAD))
def test_canonical_bad_input_raises_valueerror(backend, bad):
    loss, arrays, kw = CANON_BAD[bad]
    with pytest.raises(ValueError):
        canon_call(loss, [backend.asarray(a) for a in arrays], kw)
