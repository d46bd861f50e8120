"""Canonical multi-label margins and Lovász losses.

1. ``polyloss.multilabel_margin`` / ``multilabel_soft_margin`` against the real torch 2.13
   (``F.multilabel_margin_loss``, ``F.multilabel_soft_margin_loss``) run in the test: values on
   every installed backend, gradients on every autograd backend against torch's, on random
   inputs with -1 padding, entries after the padding, duplicates, rows listing every class or
   none, and the multi-hot format (built from the same lists).
2. ``polyloss.lovasz_hinge`` / ``lovasz_softmax`` against ``_lovasz_*_oracle`` below, an
   independent NumPy float64 transcription of Berman, Triki & Blaschko (2018), eq. 9-12 and
   Algorithm 1 (the same steps as the authors' reference code): drop ignored pixels, sort the
   errors in decreasing order, ``g = J_k - J_{k-1}`` from cumulative sums of the sorted ground
   truth, ``loss = relu(errors_sorted) · g``; its gradient is the analytic one
   (``d loss / d e_(k) = g_k``, chained through ``e = 1 - x·s`` or ``e = |[y=c] - p_c|``) and,
   for the softmax activation, central differences. Small cases are worked by hand (said where).
   Ties are ordered by a stable sort in polyloss, so the oracle uses ``np.argsort(kind="stable")``.

Tolerances: ``_native.rtol_for`` (float64 1e-12; float32 8·eps·log2(n)); gradients relative to
their largest element.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _native import require_module, rtol_for
from conftest import AUTOGRAD, COMPILED, INSTALLED

import polyloss
import polyloss.torch

DTYPES = ("float32", "float64")


def _cases(backends):
    return [pytest.param(b, dt, id=f"{b.name}-{dt}") for b in backends for dt in DTYPES if dt in b.dtypes]


def _close(actual, expected, dtype, n, what=""):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol_for(dtype, n), atol=0.0, equal_nan=True, err_msg=what)


def _grad_close(actual, expected, dtype, n, what=""):
    scale = float(np.max(np.abs(expected))) if np.size(expected) else 0.0
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=0.0, atol=rtol_for(dtype, n) * max(scale, 1.0 / max(n, 1)), err_msg=what)


# ---- 1. multi-label margins against torch --------------------------------------------------------

def _label_lists(rng, n, c):
    """torch's index lists: random prefixes, -1, then junk that torch does not read; row 0 lists
    nothing, row 1 every class, row 2 a duplicate."""
    t = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = (0, c, 3, 1, 2, c - 1)[i % 6]
        t[i, :k] = rng.permutation(c)[:k]
        if k < c - 1:
            t[i, k + 1:] = rng.integers(-1, c, size=c - k - 1)
    t[2, :4] = (t[2, 0], t[2, 1], t[2, 0], -1)
    return t


def _multi_hot(t):
    out = np.zeros(t.shape)
    for i, row in enumerate(t):
        for j in row:
            if j < 0:
                break
            out[i, j] = 1.0
    return out


def _torch_value_grad(fn, x, *args):
    torch = require_module("torch")
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, *[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    (g,) = torch.autograd.grad(out.sum(), xt)
    return out.detach().numpy(), g.numpy()


@pytest.mark.parametrize(("backend", "dtype", "reduction"),
                         [pytest.param(*c.values, r, id=f"{c.id}-{r}") for c in _cases(INSTALLED)
                          for r in (("mean", "none") if c.values[1] == "float64" else ("sum",))])
def test_multilabel_margin_matches_torch(backend, dtype, reduction, rng):
    torch = require_module("torch")
    x = rng.normal(size=(7, 6)).astype(dtype)
    t = _label_lists(rng, 7, 6)
    expected, _ = _torch_value_grad(
        lambda a, b: torch.nn.functional.multilabel_margin_loss(a, b, reduction=reduction), x, t)
    got = backend.to_numpy(polyloss.multilabel_margin(backend.asarray(x), backend.asarray(t),
                                                      target_format="indices", reduction=reduction))
    _close(got, expected, dtype, x.size, "indices")
    # the same targets as 0/1 multi-hot (duplicates counted once there: drop them for the comparison)
    t_unique = t.copy()
    t_unique[2, 2:] = -1
    expected, _ = _torch_value_grad(
        lambda a, b: torch.nn.functional.multilabel_margin_loss(a, b, reduction=reduction), x, t_unique)
    hot = _multi_hot(t_unique).astype(dtype)
    got = backend.to_numpy(polyloss.multilabel_margin(backend.asarray(x), backend.asarray(hot),
                                                      reduction=reduction))
    _close(got, expected, dtype, x.size, "multi_hot")


@pytest.mark.parametrize(("backend", "dtype"), _cases(AUTOGRAD))
def test_multilabel_margin_gradients_match_torch(backend, dtype, rng):
    torch = require_module("torch")
    x = rng.normal(size=(6, 5)).astype(dtype)
    t = _label_lists(rng, 6, 5)
    _, expected = _torch_value_grad(torch.nn.functional.multilabel_margin_loss, x, t)
    _, got = backend.value_and_grad(lambda a, b: polyloss.multilabel_margin(a, b, target_format="indices"),
                                    [x, t], 0)
    _grad_close(got, expected, dtype, x.size)
    t_unique = t.copy()  # multi-hot has no duplicates: drop row 2's
    t_unique[2, 2:] = -1
    _, expected = _torch_value_grad(torch.nn.functional.multilabel_margin_loss, x, t_unique)
    hot = _multi_hot(t_unique).astype(dtype)
    _, got = backend.value_and_grad(lambda a, b: polyloss.multilabel_margin(a, b), [x, hot], 0)
    _grad_close(got, expected, dtype, x.size)


def test_multilabel_margin_by_hand():
    # torch's documentation example, worked by hand: x = [0.1, 0.2, 0.4, 0.8], targets {3, 0}:
    # [(1-(.1-.2)) + (1-(.1-.4)) + (1-(.8-.2)) + (1-(.8-.4))] / 4 = (1.1 + 1.3 + 0.4 + 0.6)/4 = 0.85
    x = np.array([[0.1, 0.2, 0.4, 0.8]])
    listed = np.array([[3, 0, -1, 1]])
    assert math.isclose(float(polyloss.multilabel_margin(x, listed, target_format="indices")), 0.85,
                        rel_tol=1e-15)
    assert math.isclose(float(polyloss.multilabel_margin(x, np.array([[1.0, 0, 0, 1]]))), 0.85, rel_tol=1e-15)
    # margin 0.5 by hand: (0.6 + 0.8 + 0 + 0.1)/4 = 0.375
    assert math.isclose(float(polyloss.multilabel_margin(x, np.array([[1.0, 0, 0, 1]]), margin=0.5)), 0.375,
                        rel_tol=1e-14)
    # every class a target, or none: 0; an unbatched (C,) row gives a 0-d result
    assert float(polyloss.multilabel_margin(x, np.ones((1, 4)))) == 0.0
    assert float(polyloss.multilabel_margin(x, np.zeros((1, 4)))) == 0.0
    assert np.shape(polyloss.multilabel_margin(x[0], np.array([1.0, 0, 0, 1]), reduction="none")) == ()
    # a duplicate counts twice in the index format (torch's kernel): targets [3, 3]: 2·(0.4 + 0.6 + 0.8)/4
    # (entries after the first -1 are not read): 2·((1-.7) + (1-.6) + (1-.4))/4 = 0.65
    got = float(polyloss.multilabel_margin(x, np.array([[3, 3, -1, 0]]), target_format="indices"))
    assert math.isclose(got, 0.65, rel_tol=1e-14)


def test_multilabel_margin_sample_weight_and_kink():
    # sample_weight: Σ w·l / N (normalizer="count") or / Σ w, from the unreduced values
    x = np.array([[0.1, 0.2, 0.4, 0.8], [1.0, 0.0, 0.5, 0.5]])
    y = np.array([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    w = np.array([2.0, 0.5])
    per = np.asarray(polyloss.multilabel_margin(x, y, reduction="none"))
    assert math.isclose(float(polyloss.multilabel_margin(x, y, sample_weight=w)), (per * w).sum() / 2,
                        rel_tol=1e-15)
    assert math.isclose(float(polyloss.multilabel_margin(x, y, sample_weight=w, normalizer="sum_of_weights")),
                        (per * w).sum() / 2.5, rel_tol=1e-15)
    # at the kink (x_j - x_i = margin exactly) the canonical gradient is the active branch's,
    # torch's (and polyloss.torch's) is 0: x = [1, 0], class 0 the target
    torch = require_module("torch")
    xt = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    polyloss.multilabel_margin(xt, torch.tensor([[1.0, 0.0]])).backward()
    assert xt.grad.tolist() == [[-0.5, 0.5]]
    xt.grad = None
    polyloss.torch.multilabel_margin_loss(xt, torch.tensor([[0, -1]])).backward()
    assert xt.grad.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize(("backend", "dtype"), _cases(INSTALLED))
def test_multilabel_soft_margin_matches_torch(backend, dtype, rng):
    weighted = dtype == "float64"  # class weights in float64, none in float32
    torch = require_module("torch")
    x = (3.0 * rng.normal(size=(6, 5))).astype(dtype)
    x[0, :2] = (1e4, -1e4)  # finite where a naive log(1 + exp) is not
    y = (rng.random((6, 5)) < 0.5).astype(dtype)
    w = rng.uniform(0.2, 2.0, size=5).astype(dtype) if weighted else None
    for reduction in ("mean", "none"):
        expected, eg = _torch_value_grad(
            lambda a, b, r=reduction: torch.nn.functional.multilabel_soft_margin_loss(
                a, b, weight=None if w is None else torch.tensor(w), reduction=r), x, y)
        args = [backend.asarray(a) for a in (x, y)]
        cw = None if w is None else backend.asarray(w)
        got = backend.to_numpy(polyloss.multilabel_soft_margin(*args, class_weight=cw, reduction=reduction))
        _close(got, expected, dtype, x.size)
        if backend.differentiable:
            _, g = backend.value_and_grad(
                lambda a, b, c, r=reduction: polyloss.multilabel_soft_margin(a, b, class_weight=c,
                                                                             reduction=r),
                [x, y, np.ones(5, dtype) if w is None else w], 0)
            _grad_close(g, eg, dtype, x.size)


def test_multilabel_bad_input():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="target must be a 0/1 multi-hot"):
        polyloss.multilabel_margin(x, np.array([[2, 0, -1], [0, -1, -1]]))
    with pytest.raises(ValueError, match=r"target holds class indices outside \[0, 3\)"):
        polyloss.multilabel_margin(x, np.array([[3, 0, -1], [0, -1, -1]]), target_format="indices")
    with pytest.raises(ValueError, match="target holds class indices outside"):
        polyloss.multilabel_margin(x, np.array([[-2, 0, -1], [0, -1, -1]]), target_format="indices")
    with pytest.raises(ValueError, match="target_format"):
        polyloss.multilabel_margin(x, x, target_format="onehot")
    with pytest.raises(ValueError, match="margin"):
        polyloss.multilabel_margin(x, x, margin="1")
    with pytest.raises(ValueError, match="shape"):
        polyloss.multilabel_margin(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="pred must have a class axis"):
        polyloss.multilabel_soft_margin(np.zeros(()), np.zeros(()))
    with pytest.raises(ValueError, match=r"class_weight must have shape \(3,\)"):
        polyloss.multilabel_soft_margin(x, x, class_weight=np.ones(2))
    with pytest.raises(TypeError, match="pred must be a floating-point array"):
        polyloss.multilabel_soft_margin(np.zeros((2, 3), dtype=np.int64), x)


def test_multilabel_margin_unreadable_bad_labels_are_nan():
    jax = require_module("jax")
    x = np.zeros((2, 3))
    bad = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 0.0]])
    out = np.asarray(jax.jit(lambda a, b: polyloss.multilabel_margin(a, b, reduction="none"))(x, bad))
    assert np.isnan(out[0]) and out[1] == pytest.approx(2.0 / 3.0, rel=1e-15)  # (1 + 1)/3, by hand
    idx = np.array([[5, -1, -1], [1, -1, -1]])
    out = np.asarray(jax.jit(lambda a, b: polyloss.multilabel_margin(a, b, target_format="indices",
                                                                       reduction="none"))(x, idx))
    assert np.isnan(out[0]) and out[1] == pytest.approx(2.0 / 3.0, rel=1e-15)


# ---- 2. Lovász: the oracle ------------------------------------------------------------------------

def _lovasz_grad(gt_sorted):
    """The paper's Algorithm 1 (and the reference ``lovasz_grad``), float64."""
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    out = jaccard.copy()
    out[1:] = jaccard[1:] - jaccard[:-1]
    return out


def _hinge_flat(x, y):
    """Value and d/dx of the Lovász hinge of one flat set of (non-ignored) pixels."""
    if x.size == 0:
        return 0.0, np.zeros_like(x)
    s = 2.0 * y - 1.0
    e = 1.0 - x * s
    order = np.argsort(-e, kind="stable")
    g = _lovasz_grad(y[order])
    value = np.maximum(e[order], 0.0) @ g
    grad = np.zeros_like(x)
    grad[order] = -s[order] * g * (e[order] >= 0)  # the active branch at e = 0
    return value, grad


def _lovasz_hinge_oracle(x, y, *, pooling="sample", ignore=None):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rows = [(x.reshape(1, -1), y.reshape(1, -1))] if pooling == "batch" else [
        (x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1))]
    xs, ys = rows[0]
    values, grads = [], np.zeros_like(xs)
    for i in range(xs.shape[0]):
        keep = np.ones(xs.shape[1], bool) if ignore is None else ys[i] != ignore
        v, g = _hinge_flat(xs[i][keep], ys[i][keep])
        values.append(v)
        grads[i][keep] = g
    return np.array(values), grads.reshape(x.shape)


def _softmax_flat(p, labels, classes):
    """Value and d/dp (p: (P, C) probabilities) of the Lovász-softmax of one flat set of pixels."""
    num = p.shape[1]
    grad = np.zeros_like(p)
    losses, used = [], []
    for c in (range(num) if isinstance(classes, str) else classes):
        fg = (labels == c).astype(np.float64)
        if classes == "present" and fg.sum() == 0:
            continue
        e = np.abs(fg - p[:, c])
        order = np.argsort(-e, kind="stable")
        g = _lovasz_grad(fg[order])
        losses.append(e[order] @ g)
        d = np.zeros(p.shape[0])
        d[order] = g * np.where(fg[order] == 1, -1.0, 1.0)
        used.append((c, d))
    if not losses:
        return 0.0, grad
    for c, d in used:
        grad[:, c] = d / len(losses)
    return float(np.mean(losses)), grad


def _lovasz_softmax_oracle(p, labels, *, pooling="sample", classes="present", ignore=None):
    """p: (N, C, ...) probabilities, labels (N, ...): per-sample values and d/dp."""
    p, labels = np.asarray(p, np.float64), np.asarray(labels)
    n, c = p.shape[:2]
    flat_p = np.moveaxis(p, 1, -1).reshape(n, -1, c)
    flat_y = labels.reshape(n, -1)
    if pooling == "batch":
        flat_p, flat_y = flat_p.reshape(1, -1, c), flat_y.reshape(1, -1)
    values, grads = [], np.zeros_like(flat_p)
    for i in range(flat_p.shape[0]):
        keep = np.ones(flat_y.shape[1], bool) if ignore is None else flat_y[i] != ignore
        v, g = _softmax_flat(flat_p[i][keep], flat_y[i][keep], classes)
        values.append(v)
        grads[i][keep] = g
    grads = np.moveaxis(grads.reshape((n,) + p.shape[2:] + (c,)), -1, 1)
    return np.array(values), grads


def test_oracle_by_hand():
    # Worked by hand (see the module docstring for J_k):
    # x = [0.5, -0.5], y = [1, 0]: errors tie at 0.5; weights [1, 0] in stable order, value 0.5
    v, g = _lovasz_hinge_oracle(np.array([[0.5, -0.5]]), np.array([[1.0, 0.0]]))
    assert v.tolist() == [0.5] and g.tolist() == [[-1.0, 0.0]]
    # x = [3, 0, -2], y = [1, 1, 0]: errors [-2, 1, -1]; first sorted is pixel 1 with J_1 = 1 - 1/2
    v, _ = _lovasz_hinge_oracle(np.array([[3.0, 0.0, -2.0]]), np.array([[1.0, 1.0, 0.0]]))
    assert v.tolist() == [0.5]
    # two classes, p(class 1) = [0.8, 0.3], labels [1, 0]: class 0 errors [0.2, 0.3] -> 0.3,
    # class 1 errors [0.2, 0.3] with weights [0.5, 0.5] -> 0.25; mean 0.275
    p1 = np.array([0.8, 0.3])
    v, _ = _lovasz_softmax_oracle(np.stack([1 - p1, p1])[None], np.array([[1, 0]]))
    assert math.isclose(v[0], 0.275, rel_tol=1e-15)


@pytest.mark.parametrize("backend", INSTALLED, ids=lambda b: b.name)
def test_lovasz_hand_cases_every_backend(backend):
    dtype = "float32"  # every value here is exact in float32 (and so in float64)
    backend.setup()
    def run(fn, *arrays):
        cast = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
        return backend.to_numpy(fn(*[backend.asarray(a) for a in cast]))

    # the hand cases of test_oracle_by_hand, plus: all background -> max error 1.5
    # (x = [-2, 0.5], y = 0: errors 1 + x); every pixel ignored -> 0
    assert run(polyloss.lovasz_hinge, np.array([[0.5, -0.5]]), np.array([[1.0, 0.0]])) == 0.5
    assert run(polyloss.lovasz_hinge, np.array([[3.0, 0.0, -2.0]]), np.array([[1.0, 1.0, 0.0]])) == 0.5
    assert run(polyloss.lovasz_hinge, np.array([[-2.0, 0.5]]), np.array([[0.0, 0.0]])) == 1.5
    assert run(lambda a, b: polyloss.lovasz_hinge(a, b, ignore_index=255), np.array([[-2.0, 0.5]]),
               np.array([[255.0, 255.0]])) == 0.0
    # dyadic, exact in float32; by hand: both classes have errors [0.25, 0.25] (a tie); class 0
    # (truth [0, 1]) weights [0.5, 0.5] -> 0.25, class 1 (truth [1, 0]) weights [1, 0] -> 0.25
    p1 = np.array([0.75, 0.25])
    got = run(polyloss.lovasz_softmax, np.stack([1 - p1, p1])[None], np.array([[1, 0]]))
    assert got == 0.25
    got = run(lambda a, b: polyloss.lovasz_softmax(a, b, ignore_index=-1), np.stack([1 - p1, p1])[None],
              np.array([[-1, -1]]))
    assert got == 0.0  # no class present in the sample


def _seg_inputs(rng, dtype, *, ties=False, n=3, c=3, h=4, w=5):
    x = 2.0 * rng.normal(size=(n, 1, h, w))
    logits = 2.0 * rng.normal(size=(n, c, h, w))
    if ties:
        x = np.round(x * 2) / 2
        probs = np.moveaxis(rng.multinomial(8, [1 / c] * c, size=(n, h, w)), -1, 1) / 8.0
    else:
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random((n, 1, h, w)) < 0.4).astype(np.float64)
    labels = rng.integers(0, c, size=(n, h, w))
    labels[labels == 1] = 2  # class 1 absent
    return x.astype(dtype), y.astype(dtype), probs.astype(dtype), labels, logits.astype(dtype)


def _ignore(rng, arr, value):
    out = arr.copy()
    out[rng.random(arr.shape) < 0.3] = value
    out[-1] = value  # one sample entirely ignored
    return out


@pytest.mark.parametrize(("backend", "dtype"), _cases(INSTALLED))
def test_lovasz_values_every_backend(backend, dtype, rng):
    # many exactly tied errors in float64, distinct ones in float32 (both exercise the sort)
    x, y, probs, labels, _ = _seg_inputs(rng, dtype, ties=dtype == "float64")
    yi = _ignore(rng, y, 255.0)
    li = _ignore(rng, labels, 255)
    b = backend.asarray
    # per sample with ignored pixels (one sample entirely), the batch pooled without
    for pooling, yy, ll, ign in (("sample", yi, li, 255), ("batch", y, labels, None)):
        exp, _ = _lovasz_hinge_oracle(x, yy, pooling=pooling, ignore=ign)
        got = polyloss.lovasz_hinge(b(x), b(yy), pooling=pooling, ignore_index=ign, reduction="none")
        _close(backend.to_numpy(got), exp if pooling == "sample" else exp[0], dtype, x.size,
               f"hinge {pooling} {ign}")
        for classes in (("present", [0, 1]) if pooling == "sample" else ("all",)):
            exp, _ = _lovasz_softmax_oracle(probs, ll, pooling=pooling, classes=classes, ignore=ign)
            got = polyloss.lovasz_softmax(b(probs), b(ll), pooling=pooling, classes=classes,
                                          ignore_index=ign, reduction="none")
            _close(backend.to_numpy(got), exp if pooling == "sample" else exp[0], dtype, probs.size,
                   f"softmax {pooling} {classes} {ign}")
    # reductions and sample weights act on the per-sample values
    w = rng.uniform(0.5, 2.0, size=3).astype(dtype)
    per, _ = _lovasz_hinge_oracle(x, yi, ignore=255)
    got = polyloss.lovasz_hinge(b(x), b(yi), ignore_index=255, sample_weight=b(w),
                                normalizer="sum_of_weights")
    w64 = w.astype(np.float64)
    _close(backend.to_numpy(got), (per * w64).sum() / w64.sum(), dtype, x.size)


@pytest.mark.parametrize(("backend", "dtype", "ties"),
                         [pytest.param(*c.values, t, id=f"{c.id}-{'ties' if t else 'random'}")
                          for c in _cases(AUTOGRAD) for t in ((False, True) if c.values[0].name == "torch"
                                                              else (c.values[1] == "float64",))])
def test_lovasz_gradients_analytic(backend, dtype, ties, rng):
    # ties (exact in both dtypes) in float64, and in both dtypes on torch
    x, y, probs, labels, _ = _seg_inputs(rng, dtype, ties=ties)
    yi, li = _ignore(rng, y, 255.0), _ignore(rng, labels, 255)
    for pooling in ("sample", "batch"):
        _, exp = _lovasz_hinge_oracle(x, yi, pooling=pooling, ignore=255)
        scale = 1.0 / x.shape[0] if pooling == "sample" else 1.0  # the mean over samples
        _, got = backend.value_and_grad(
            lambda a, t, pool=pooling: polyloss.lovasz_hinge(a, t, pooling=pool, ignore_index=255),
            [x, yi], 0)
        _grad_close(got, exp * scale, dtype, x.size, f"hinge {pooling}")
        for classes in ("present", "all"):
            _, exp = _lovasz_softmax_oracle(probs, li, pooling=pooling, classes=classes, ignore=255)
            _, got = backend.value_and_grad(
                lambda a, t, pool=pooling, cl=classes: polyloss.lovasz_softmax(
                    a, t, pooling=pool, classes=cl, ignore_index=255), [probs, li], 0)
            _grad_close(got, exp * scale, dtype, probs.size, f"softmax {pooling} {classes}")


@pytest.mark.parametrize("backend", AUTOGRAD, ids=lambda b: b.name)
def test_lovasz_softmax_activation_gradient_central_differences(backend, rng):
    backend.setup()
    _, _, _, labels, logits = _seg_inputs(rng, "float64", n=2, h=3, w=3)
    labels = _ignore(rng, labels, 255)

    def loss_np(z):
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return _lovasz_softmax_oracle(p, labels, ignore=255)[0].mean()

    value, got = backend.value_and_grad(
        lambda a, t: polyloss.lovasz_softmax(a, t, activation="softmax", ignore_index=255),
        [logits, labels], 0)
    assert math.isclose(float(value), loss_np(logits), rel_tol=1e-12)
    h = 1e-6
    numeric = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss_np(up) - loss_np(down)) / (2 * h)
    # central differences: error O(h²·f''') + O(eps/h) ≈ 1e-9 relative to the largest entry
    np.testing.assert_allclose(got, numeric, rtol=0, atol=1e-8 * max(1.0, np.abs(numeric).max()))


def test_lovasz_ties_gradient_is_the_stable_order():
    # Hand-worked: x = [0.5, -0.5], y = [1, 0] tie at error 0.5; stable order puts pixel 0 first
    # (weights [1, 0]): gradient [-1, 0]. The same on every autograd backend.
    for backend in AUTOGRAD:
        _, g = backend.value_and_grad(polyloss.lovasz_hinge,
                                      [np.array([[0.5, -0.5]]), np.array([[1.0, 0.0]])], 0)
        assert np.asarray(g).tolist() == [[-1.0, 0.0]], backend.name


@pytest.mark.parametrize("backend", [b for b in COMPILED if b.name == "jax"], ids=lambda b: b.name)
def test_lovasz_compiled(backend, rng):
    # jax.jit only (tf.function and torch.compile of these graphs take ~10 s each to build;
    # the parity matrix and tests/test_canonical_compiled.py cover the compilers generally)
    x, y, probs, labels, _ = _seg_inputs(rng, "float64")
    bad = labels.copy()
    bad[0, 0, 0] = 7  # unreadable under the compiler: that sample is NaN, the others are exact
    got = backend.run_compiled(
        lambda a, t, b, s: polyloss.lovasz_softmax(a, t, reduction="none")
        + polyloss.lovasz_hinge(b, s, reduction="none"), [probs, bad, x, y])
    expected = _lovasz_softmax_oracle(probs, bad)[0] + _lovasz_hinge_oracle(x, y)[0]
    assert np.isnan(got[0])
    _close(got[1:], expected[1:], "float64", probs.size)


def test_lovasz_channels_last_and_layouts(rng):
    _, _, probs, labels, logits = _seg_inputs(rng, "float64")
    exp = polyloss.lovasz_softmax(probs, labels, reduction="none")
    got = polyloss.lovasz_softmax(np.moveaxis(probs, 1, -1), labels, class_axis=-1, reduction="none")
    np.testing.assert_array_equal(got, exp)
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    _close(polyloss.lovasz_softmax(logits, labels, activation="softmax", reduction="none"),
           _lovasz_softmax_oracle(soft, labels)[0], "float64", probs.size)
    sig = 1.0 / (1.0 + np.exp(-logits))
    _close(polyloss.lovasz_softmax(logits, labels, activation="sigmoid", classes="all", reduction="none"),
           _lovasz_softmax_oracle(sig, labels, classes="all")[0], "float64", probs.size)
    # (N, C) with no spatial axes: one pixel per sample; the empty batch: NaN mean, as the other losses
    x2 = rng.uniform(size=(4, 3))
    _close(polyloss.lovasz_softmax(x2, np.array([0, 1, 2, 0]), reduction="none"),
           _lovasz_softmax_oracle(x2, np.array([0, 1, 2, 0]))[0], "float64", 12)
    assert np.isnan(polyloss.lovasz_hinge(np.zeros((0, 4)), np.zeros((0, 4))))
    assert polyloss.lovasz_hinge(np.zeros((0, 4)), np.zeros((0, 4)), reduction="sum") == 0.0


def test_lovasz_bad_input():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="target must hold 0 or 1"):
        polyloss.lovasz_hinge(x, np.full((2, 3, 4), 2.0))
    with pytest.raises(ValueError, match="target must hold 0 or 1 or ignore_index=255"):
        polyloss.lovasz_hinge(x, np.full((2, 3, 4), 3.0), ignore_index=255)
    with pytest.raises(ValueError, match="ignore_index must be an integer"):
        polyloss.lovasz_hinge(x, np.zeros((2, 3, 4)), ignore_index=0.5)
    with pytest.raises(ValueError, match="pooling"):
        polyloss.lovasz_hinge(x, np.zeros((2, 3, 4)), pooling="image")
    with pytest.raises(ValueError, match="shape"):
        polyloss.lovasz_hinge(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="sample_weight has no samples"):
        polyloss.lovasz_hinge(x, np.zeros((2, 3, 4)), pooling="batch", sample_weight=np.ones(2))
    p = np.full((2, 3, 4), 1 / 3)
    lab = np.zeros((2, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"values outside \[0, 1\]; pass activation='softmax'"):
        polyloss.lovasz_softmax(p * 4, lab)
    with pytest.raises(ValueError, match=r"target holds class indices outside \[0, 3\)"):
        polyloss.lovasz_softmax(p, lab + 3)
    with pytest.raises(ValueError, match=r"target holds class indices and must have shape \(2, 4\)"):
        polyloss.lovasz_softmax(p, np.zeros((2, 3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="class_axis"):
        polyloss.lovasz_softmax(p, lab, class_axis=0)
    with pytest.raises(ValueError, match="classes must be"):
        polyloss.lovasz_softmax(p, lab, classes=[0, 0])
    with pytest.raises(ValueError, match="classes must be"):
        polyloss.lovasz_softmax(p, lab, classes=[3])
    with pytest.raises(ValueError, match="classes"):
        polyloss.lovasz_softmax(p, lab, classes="some")
    with pytest.raises(ValueError, match="activation"):
        polyloss.lovasz_softmax(p, lab, activation="relu")
    with pytest.raises(ValueError, match="batch and a class axis"):
        polyloss.lovasz_softmax(np.zeros(3), np.zeros((), dtype=np.int64))
