"""The canonical classification and probabilistic losses against NumPy float64 oracles.

``binary_cross_entropy``, ``cross_entropy``, ``nll``, ``focal`` (binary and categorical),
``poly1_cross_entropy``, ``kl_div``, ``poisson_nll`` and ``gaussian_nll`` on every installed
backend: values (float32, float64; float16 and bfloat16, which are computed in float32 and
returned in the input dtype), gradients on the autograd backends, the frameworks' compilers,
extreme logits, the seeds' worked numbers and bad input.

Every expected value comes from an oracle written here in NumPy float64 straight from the
loss's formula (each oracle states it), never from polyloss; every expected gradient from
the analytic derivative of that formula or, for focal, from central differences of the
oracle. Inputs are made in NumPy, cast to the test dtype in NumPy (bfloat16 through
ml_dtypes) and moved with ``backend.asarray``; the oracle sees the same cast values.

Matrix: each spec is one set of options and a few reductions. The full products of options
run on NumPy and torch; a covering subset (``CORE_SPECS``: every option, reduction,
normalizer and sample-weight form at least once per loss) runs on every backend, and its
``GRAD_SPECS`` on every autograd backend, to keep the file near 90 s (JAX eager compiles
every new loss structure, TensorFlow and MXNet pay per operation).

Tolerances: float64 1e-12 and float32 8 eps max(1, log2 n) (n = elements of pred), both
relative to the size of the terms each formula is computed from (``mag``: e.g. |z_c| and
|logsumexp z| for log-softmax, which cancel), so a tiny loss made of large terms is judged by
the precision those terms allow. float16/bfloat16: one unit of the output format on top.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import AUTOGRAD, INSTALLED, require
from test_canonical_common import EPS, assert_close, is_native

import polyloss

EPS32 = EPS["float32"]
LOWP_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
LOWP_BACKENDS = {"float16": ("numpy", "torch", "jax"), "bfloat16": ("torch", "jax")}
LOG_2PI = math.log(2.0 * math.pi)


def _np_dtype(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _f64(x) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


# ---- NumPy float64 building blocks -----------------------------------------------------------

def _softplus(x):
    return np.logaddexp(0.0, x)  # log(1 + e^x)


def _sigmoid(x):
    return np.exp(-_softplus(-x))


def _logsumexp(z):
    """log sum_c exp(z_c) over the last axis, keepdims."""
    m = np.max(z, axis=-1, keepdims=True)
    return m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def _softmax_np(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _clamped_log(p, c):
    """max(log p, c); c = None: no clamp."""
    with np.errstate(divide="ignore"):
        lp = np.log(p)
    return lp if c is None else np.maximum(lp, c)


def _clamped_log1m(p, c):
    """max(log(1 - p), c)."""
    with np.errstate(divide="ignore"):
        lp = np.log1p(-p)
    return lp if c is None else np.maximum(lp, c)


def _positions(shape, axis):
    s = list(shape)
    del s[axis]
    return tuple(s)


# ---- the oracles, before the reduction ---------------------------------------------------------

@dataclass
class Per:
    """One oracle evaluation before the reduction.

    ``loss`` per position; ``mag`` the size of the terms it is computed from (tolerances);
    ``valid`` not ignored (None: all); ``den_w`` what each position adds to the
    ``"sum_of_weights"`` denominator besides its sample weight (None: 1); ``dloss`` the
    derivative of each position's loss with respect to pred (class axis last for per-position
    losses), ``dmag`` the size of its terms.
    """

    loss: np.ndarray
    mag: np.ndarray
    valid: np.ndarray | None = None
    den_w: np.ndarray | None = None
    dloss: np.ndarray | None = None
    dmag: np.ndarray | None = None


def _class_coefficients(target, C, axis, class_weight, ignore_index, eps):
    """Cross-entropy as sum_c a_c (-log p_c): the coefficients a_c per position (class axis
    last), the valid mask and the sum_of_weights share.

    Integer targets (torch's formula): a_c = (1 - eps) w_y [c = y] + (eps / C) w_c, ignored
    positions a = 0; sum_of_weights adds w_y per valid position. Probability targets:
    a_c = w_c (q_c (1 - eps) + eps / C); sum_of_weights adds sum_c w_c q_c.
    """
    w = np.ones(C) if class_weight is None else _f64(class_weight)
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        t = target.astype(np.int64)
        valid = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
        tc = np.where(valid, t, 0)
        onehot = (tc[..., None] == np.arange(C)).astype(np.float64)
        a = (1.0 - eps) * w[tc][..., None] * onehot + (eps / C) * w
        a = a * valid[..., None]
        den_w = w[tc] * valid
        return a, valid, den_w, onehot
    q = np.moveaxis(_f64(target), axis, -1)
    a = w * (q * (1.0 - eps) + eps / C)
    return a, np.ones(q.shape[:-1], bool), np.sum(w * q, axis=-1), q


def ce_hand(pred, target, *, inp="logits", axis=-1, class_weight=None, ignore_index=None,
            label_smoothing=0.0, log_clamp=-100.0) -> Per:
    """Per position sum_c a_c (-log p_c) (see ``_class_coefficients``), with
    log p = log_softmax(z) (inp="logits"), max(log p, log_clamp) ("probs") or the given
    log-probabilities ("log_probs", not renormalised). d/dz_k = A p_k - a_k with A = sum_c a_c
    (logits), -a_k / p_k where unclamped (probs), -a_k (log_probs)."""
    x = np.moveaxis(_f64(pred), axis, -1)
    C = x.shape[-1]
    a, valid, den_w, _ = _class_coefficients(target, C, axis, class_weight, ignore_index,
                                             label_smoothing)
    if inp == "logits":
        lse = _logsumexp(x)
        logp = x - lse
        size = np.abs(x) + np.abs(lse)  # log p_c = z_c - lse cancels these
        p = np.exp(logp)
        A = np.sum(a, axis=-1, keepdims=True)
        dloss, dmag = A * p - a, A * p + a
    elif inp == "probs":
        logp = _clamped_log(x, log_clamp)
        size = np.abs(logp) + 1.0
        inside = logp > (-np.inf if log_clamp is None else log_clamp)
        with np.errstate(divide="ignore", invalid="ignore"):
            dloss = np.where(inside, -a / np.where(inside, x, 1.0), 0.0)
        dmag = np.abs(dloss)
    else:
        logp, size = x, np.abs(x)
        dloss, dmag = -a, np.abs(a)
    loss = np.sum(a * -logp, axis=-1)
    mag = np.sum(np.abs(a) * size, axis=-1)
    return Per(loss, mag, valid, den_w, dloss, dmag)


def bce_hand(pred, target, *, from_logits=False, pos_weight=None, label_smoothing=0.0,
             log_clamp=-100.0) -> Per:
    """y' = y (1 - eps) + eps / 2; logits: pw y' softplus(-z) + (1 - y') softplus(z), with
    d/dz = (pw y' + 1 - y') sigmoid(z) - pw y'; probabilities:
    -(pw y' max(log p, c) + (1 - y') max(log(1 - p), c)), d/dp = -pw y'/p + (1 - y')/(1 - p)
    where unclamped. pos_weight broadcasts along the last axis."""
    x, y = _f64(pred), _f64(target)
    y = y * (1.0 - label_smoothing) + label_smoothing / 2.0
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    if from_logits:
        loss = pw * y * _softplus(-x) + (1.0 - y) * _softplus(x)
        mag = (np.abs(pw * y) + np.abs(1.0 - y)) * (np.abs(x) + 1.0)
        s = _sigmoid(x)
        dloss = (pw * y + 1.0 - y) * s - pw * y
        dmag = np.abs(pw * y + 1.0 - y) * s + np.abs(pw * y)
    else:
        lp, l1p = _clamped_log(x, log_clamp), _clamped_log1m(x, log_clamp)
        loss = -(pw * y * lp + (1.0 - y) * l1p)
        mag = np.abs(pw * y) * (np.abs(lp) + 1.0) + np.abs(1.0 - y) * (np.abs(l1p) + 1.0)
        c = -np.inf if log_clamp is None else log_clamp
        with np.errstate(divide="ignore", invalid="ignore"):
            d1 = np.where(lp > c, -pw * y / np.where(lp > c, x, 1.0), 0.0)
            d0 = np.where(l1p > c, (1.0 - y) / np.where(l1p > c, 1.0 - x, 1.0), 0.0)
        dloss, dmag = d1 + d0, np.abs(d1) + np.abs(d0)
    return Per(np.broadcast_to(loss, x.shape), np.broadcast_to(mag, x.shape), dloss=dloss, dmag=dmag)


def focal_binary_hand(pred, target, *, gamma=2.0, alpha=None, from_logits=True,
                      label_smoothing=0.0, log_clamp=-100.0) -> Per:
    """alpha_t (1 - p_t)^gamma BCE, with y' the smoothed target, p = sigmoid(z) (logits) or
    the probability, p_t = p y' + (1 - p)(1 - y'), alpha_t = alpha y' + (1 - alpha)(1 - y')
    (alpha None: 1) and BCE the (unweighted) binary cross-entropy above. 1 - p_t is formed
    as y' (1 - p) + (1 - y') p with 1 - p = sigmoid(-z), exact for confident logits."""
    x, y = _f64(pred), _f64(target)
    y = y * (1.0 - label_smoothing) + label_smoothing / 2.0
    if from_logits:
        p, q = _sigmoid(x), _sigmoid(-x)
        bce = y * _softplus(-x) + (1.0 - y) * _softplus(x)
    else:
        p, q = x, 1.0 - x
        bce = -(y * _clamped_log(x, log_clamp) + (1.0 - y) * _clamped_log1m(x, log_clamp))
    one_minus_pt = y * q + (1.0 - y) * p
    at = 1.0 if alpha is None else alpha * y + (1.0 - alpha) * (1.0 - y)
    loss = at * one_minus_pt**gamma * bce
    mag = np.abs(at) * (1.0 + gamma) * (np.abs(x) + 1.0 + bce)
    return Per(loss, mag)


def focal_categorical_hand(pred, target, *, gamma=2.0, alpha=None, from_logits=True, axis=-1,
                           label_smoothing=0.0, log_clamp=-100.0) -> Per:
    """Per position -sum_c alpha_c (1 - p_c)^gamma q'_c log p_c; p = softmax(z) (logits, with
    1 - p_c = -expm1(log p_c)) or the probabilities (log clamped); q' = onehot(y) or q,
    smoothed as q (1 - eps) + eps / C; alpha a scalar, a per-class vector or None (1)."""
    x = np.moveaxis(_f64(pred), axis, -1)
    C = x.shape[-1]
    _, _, _, q = _class_coefficients(target, C, axis, None, None, 0.0)
    q = q * (1.0 - label_smoothing) + label_smoothing / C
    al = 1.0 if alpha is None else _f64(alpha)
    if from_logits:
        lse = _logsumexp(x)
        logp = x - lse
        one_minus_p = -np.expm1(logp)
        size = np.abs(x) + np.abs(lse) + 1.0
    else:
        logp = _clamped_log(x, log_clamp)
        one_minus_p = 1.0 - x
        size = np.abs(logp) + 1.0
    terms = al * one_minus_p**gamma * q * -logp
    loss = np.sum(terms, axis=-1)
    mag = np.sum(np.abs(al) * q * (1.0 + gamma) * size, axis=-1)
    return Per(loss, mag)


def poly1_hand(pred, target, *, epsilon=1.0, axis=-1, ignore_index=None, label_smoothing=0.0) -> Per:
    """CE(z, q') + epsilon (1 - p_t), p_t = sum_c q'_c softmax(z)_c, where q' are the smoothed
    targets (int: (1 - eps) onehot + eps / C); ignored positions 0. With a = q' (masked):
    d/dz_k = (A p_k - a_k) - epsilon p_k (a_k - p_t)."""
    x = np.moveaxis(_f64(pred), axis, -1)
    C = x.shape[-1]
    a, valid, den_w, _ = _class_coefficients(target, C, axis, None, ignore_index, label_smoothing)
    ce = ce_hand(pred, target, axis=axis, ignore_index=ignore_index, label_smoothing=label_smoothing)
    p = _softmax_np(x)
    pt = np.sum(a * p, axis=-1, keepdims=True)
    loss = ce.loss + epsilon * (1.0 - pt[..., 0]) * valid
    mag = ce.mag + abs(epsilon) * (1.0 + pt[..., 0])
    dloss = ce.dloss - epsilon * p * (a - pt)
    dmag = ce.dmag + abs(epsilon) * p * (a + pt)
    return Per(loss, mag, valid, den_w, dloss, dmag)


def kl_hand(pred, target, *, pred_kind="log_probs", log_target=False, axis=-1) -> Per:
    """Per distribution sum_c p_c (log p_c - log q_c), terms with p_c = 0 exactly 0 (even where
    q_c = 0); p = target (or exp(target) if log_target); log q = pred (log_probs), log(pred)
    (probs) or log_softmax(pred) (logits). d/d pred_c: -p_c, -p_c / q_c, (sum p) softmax_c - p_c."""
    x = np.moveaxis(_f64(pred), axis, -1)
    t = np.moveaxis(_f64(target), axis, -1)
    if log_target:
        p, lpt = np.exp(t), t
    else:
        p = t
        with np.errstate(divide="ignore"):
            lpt = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    pos = p > 0
    if pred_kind == "log_probs":
        lq, size = x, np.abs(x)
        dloss = -p
    elif pred_kind == "probs":
        with np.errstate(divide="ignore"):
            lq = np.log(np.where(pos, x, 1.0))
        size = np.abs(lq)
        dloss = -p / np.where(pos, x, 1.0)
    else:
        lse = _logsumexp(x)
        lq = x - lse
        size = np.abs(x) + np.abs(lse)
        dloss = np.sum(p, axis=-1, keepdims=True) * np.exp(lq) - p
    terms = np.where(pos, p * (lpt - np.where(pos, lq, 0.0)), 0.0)
    loss = np.sum(terms, axis=-1)
    mag = np.sum(p * (np.abs(lpt) + size + 1.0), axis=-1)
    dmag = np.abs(dloss) + p
    return Per(loss, mag, dloss=dloss, dmag=dmag)


def poisson_hand(pred, target, *, log_input=True, full=False, eps=1e-8) -> Per:
    """exp(z) - y z (log_input) or r - y log(r + eps); full adds the Stirling term
    y log y - y + log(2 pi y) / 2 where y > 1. d/dz = exp(z) - y; d/dr = 1 - y / (r + eps)."""
    x, y = _f64(pred), _f64(target)
    if log_input:
        loss, mag = np.exp(x) - y * x, np.exp(x) + np.abs(y * x)
        dloss, dmag = np.exp(x) - y, np.exp(x) + np.abs(y)
    else:
        lr = np.log(x + eps)
        loss, mag = x - y * lr, np.abs(x) + np.abs(y * lr)
        dloss, dmag = 1.0 - y / (x + eps), 1.0 + np.abs(y / (x + eps))
    if full:
        ys = np.where(y > 1, y, 2.0)
        stirling = np.where(y > 1, ys * np.log(ys) - ys + 0.5 * np.log(2 * np.pi * ys), 0.0)
        loss = loss + stirling
        mag = mag + np.where(y > 1, ys * np.abs(np.log(ys)) + ys + np.abs(0.5 * np.log(2 * np.pi * ys)),
                             0.0)
    return Per(loss, mag, dloss=dloss, dmag=dmag)


def gaussian_hand(pred, target, var, *, full=False, eps=1e-6) -> Per:
    """(log v + (x - y)^2 / v) / 2 with v = max(var, eps), + log(2 pi) / 2 if full; var of
    pred's shape, or without its last dim, or with one axis of size 1 (torch 2.13's rule),
    broadcast. d/dx = (x - y) / v."""
    x, y, v = _f64(pred), _f64(target), _f64(var)
    if v.ndim == x.ndim - 1:
        v = v[..., None]
    v = np.maximum(v, eps)
    r2 = (x - y) ** 2 / v
    loss = 0.5 * (np.log(v) + r2) + (0.5 * LOG_2PI if full else 0.0)
    mag = 0.5 * (np.abs(np.log(v)) + r2) + 0.5 * LOG_2PI + 1.0
    dloss = (x - y) / v
    return Per(loss, mag, dloss=dloss, dmag=np.abs(dloss))


# ---- reductions, by hand ---------------------------------------------------------------------

SW_SHAPES = {
    "full": lambda s: s,
    "per_sample": lambda s: s[:1],
    "broadcast": lambda s: (1,) * (len(s) - 1) + s[-1:],
}


def _expand_weight(sw, shape):
    if sw is None:
        return np.ones(shape)
    w = _f64(sw)
    if w.shape != shape and 0 < w.ndim < len(shape) and w.shape == shape[: w.ndim]:
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    return np.broadcast_to(w, shape)


def _factors(shape, reduction, sw, normalizer, *, batch, valid=None, den_w=None, policy=None):
    """``f`` with reduced = f * loss ("none") or sum(f * loss); plus the value an empty
    denominator gives instead (None: there is one).

    none/sum: f = sw. batchmean: sw / pred.shape[0]. mean: sw / n with n = the number of
    positions ("count"), of non-ignored positions ("valid_count") or sum(sw * den_w)
    ("sum_of_weights"); n = 0 gives 0 under if_all_ignored="zero", NaN otherwise.
    """
    w = _expand_weight(sw, shape)
    if reduction in ("none", "sum"):
        return w, None
    if reduction == "batchmean":
        return (w / batch, None) if batch else (np.zeros(shape), math.nan)
    if normalizer == "count":
        n = float(np.prod(shape))
    elif normalizer == "valid_count":
        n = float(np.prod(shape) if valid is None else np.sum(valid))
    elif normalizer == "sum_of_weights":
        n = float(np.sum(w * (1.0 if den_w is None else den_w)))
    else:
        raise AssertionError(normalizer)
    if n == 0:
        return np.zeros(shape), (0.0 if policy == "zero" else math.nan)
    return w / n, None


def _apply(f, special, x, reduction):
    if reduction == "none":
        return f * x
    if special is not None:
        return np.asarray(special, dtype=np.float64)
    return np.asarray(np.sum(f * x), dtype=np.float64)


# ---- cases: one call and what it should give ---------------------------------------------------

@dataclass
class Case:
    id: str
    loss: str
    arrays: dict  # positional arrays first (pred, target[, var]), then keyword arrays
    npos: int
    kw: dict
    dtype: str
    want: np.ndarray
    mag: np.ndarray
    grad: np.ndarray | None = None  # d sum(output) / d pred
    gmag: np.ndarray | None = None
    total: Callable | None = None  # pred -> the oracle's sum(output), for central differences

    def __call__(self, *xs):
        names = list(self.arrays)
        kws = dict(zip(names[self.npos:], xs[self.npos:], strict=True))
        return getattr(polyloss, self.loss)(*xs[: self.npos], **kws, **self.kw)

    @property
    def n(self) -> int:
        return int(self.arrays["pred"].size)

    def what(self, backend_name="", dtype="") -> str:
        extra = list(self.arrays)[self.npos:]
        return f"{self.loss}[{self.id}] {self.kw} arrays={extra} on {backend_name} {dtype}"


def make_case(cid, loss, arrays, npos, kw, dtype, per_fn, *, reduction, sw_mode, normalizer,
              policy=None, class_axis=None, fd=False) -> Case:
    """Build the case for one reduction from an oracle ``per_fn(arrays) -> Per``."""
    arrays = dict(arrays)
    per = per_fn(arrays)
    shape = per.loss.shape
    sw = None
    if sw_mode is not None:
        rng = np.random.default_rng(_seed(cid + sw_mode))
        sw = rng.uniform(0.5, 2.0, SW_SHAPES[sw_mode](shape)).astype(_np_dtype(dtype))
        arrays["sample_weight"] = sw
    kw = dict(kw, reduction=reduction, normalizer=normalizer)
    batch = arrays["pred"].shape[0]
    f, special = _factors(shape, reduction, sw, normalizer, batch=batch, valid=per.valid,
                          den_w=per.den_w, policy=policy)
    want = _apply(f, special, per.loss, reduction)
    mag = _apply(np.abs(f), None, per.mag, reduction) if special is None else np.zeros(())
    case = Case(cid, loss, arrays, npos, kw, dtype, want, mag)
    nan_special = special is not None and math.isnan(special)
    if nan_special:
        return case

    def total(pred):
        return float(np.sum(_apply(f, special, per_fn(dict(arrays, pred=pred)).loss, reduction)))

    case.total = total
    if per.dloss is not None and not fd:
        fe = f if class_axis is None else f[..., None]
        g, gm = fe * per.dloss, np.abs(fe) * per.dmag
        if class_axis is not None:
            g, gm = np.moveaxis(g, -1, class_axis), np.moveaxis(gm, -1, class_axis)
        case.grad, case.gmag = np.broadcast_to(g, arrays["pred"].shape), gm
    return case


def fd_grad(case: Case, skip=None) -> np.ndarray:
    """Central differences of the float64 oracle (the focal losses' expected gradient);
    positions where ``skip`` is set are left at 0."""
    p = _f64(case.arrays["pred"])
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        if skip is not None and skip[i]:
            continue
        h = 1e-6 * max(1e-2, abs(p[i]))  # relative: small probabilities need small steps
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        g[i] = (case.total(up) - case.total(down)) / (up[i] - down[i])
    return g


def expected_grad(case: Case) -> tuple[np.ndarray, np.ndarray, float]:
    """(gradient, size of its terms, absolute slack for the finite-difference error)."""
    if case.grad is not None:
        return case.grad, case.gmag, 0.0
    g = fd_grad(case)
    scale = np.abs(g) + np.max(np.abs(g), initial=0.0)
    return g, scale, 1e-6 * float(np.max(scale, initial=0.0))


# ---- tolerances ----------------------------------------------------------------------------------

def rtol(dtype: str, n: int) -> float:
    if dtype == "float64":
        return 1e-12
    return 8 * EPS32 * max(1.0, math.log2(max(n, 1)))


# XLA and TensorFlow flush float32 subnormals to zero: below the smallest normal number,
# float32 results compare absolutely
F32_TINY = float(np.finfo(np.float32).smallest_normal)


def value_tol(case: Case, dtype: str | None = None):
    dt = dtype or case.dtype
    if dt in LOWP_EPS:  # float32 compute, one rounding to the output format (up to 1 unit)
        return LOWP_EPS[dt] * np.abs(case.want) + rtol("float32", case.n) * case.mag + F32_TINY
    return rtol(dt, case.n) * case.mag + (F32_TINY if dt == "float32" else 1e-300)


def grad_tol(case: Case, dtype: str):
    g, gmag, slack = expected_grad(case)
    if dtype in LOWP_EPS:
        floor = 2.0**-24 if dtype == "float16" else F32_TINY  # float16 subnormal spacing
        return g, LOWP_EPS[dtype] * np.abs(g) + rtol("float32", case.n) * gmag + slack + floor
    return g, rtol(dtype, case.n) * gmag + slack + (F32_TINY if dtype == "float32" else 1e-300)


# ---- inputs --------------------------------------------------------------------------------------

LAYOUTS = {  # name -> (pred shape, class axis)
    "2d": ((6, 5), -1),
    "4d": ((2, 4, 3, 2), 1),
    "b1": ((1, 5), -1),
    "3d": ((2, 3, 4), -1),
}


def _class_pred(rng, shape, axis, inp):
    z = 2.0 * rng.standard_normal(shape)
    if inp == "logits":
        return z
    if inp == "log_probs":  # not normalised: nll must not renormalise
        return -rng.uniform(0.05, 4.0, shape)
    p = _softmax_np(z, axis)
    p[(0,) * len(shape)] = 0.0  # class 0 of position 0: its log is clamped at log_clamp
    return p


def _class_target(rng, shape, axis, kind, ignore, int_dtype="int64"):
    C = shape[axis]
    pos = _positions(shape, axis)
    if kind == "prob":
        q = _softmax_np(1.5 * rng.standard_normal(shape), axis)
        q.flat[1] = 0.0  # one exact zero
        return q / np.sum(q, axis=axis, keepdims=True)
    t = rng.integers(0, C, pos)
    t.flat[0] = 0  # position 0 targets class 0 (the zero probability of "probs" inputs)
    n = t.size
    if ignore is not None and n > 1:
        if 0 <= ignore < C:  # a real class index as the ignored one: keep one valid position
            t.flat[0] = 0 if ignore != 0 else 1
            t.flat[-1] = ignore
        else:
            idx = rng.choice(np.arange(1, n), size=max(1, n // 3), replace=False)
            t.flat[idx] = ignore
    return t.astype(int_dtype)


def _lowp_cast(a: np.ndarray, dtype: str) -> np.ndarray:
    return a.astype(_np_dtype(dtype)) if np.issubdtype(a.dtype, np.floating) else a


# ---- the specs: each builds a few cases per dtype ------------------------------------------------

SPECS: dict[str, Callable[[str], list[Case]]] = {}
CORE_SPECS: list[str] = []  # on every backend; the rest on the cheap ones (WIDE_BACKENDS)
GRAD_SPECS: list[str] = []  # gradients on every autograd backend; the rest on torch
LOWP_SPECS: list[str] = []  # float16 / bfloat16
WIDE_BACKENDS = ("numpy", "torch")


def _register(cid, builder, *, core=False, grad=False, lowp=False, **params):
    """A spec: ``core`` ones (a covering subset: every option at least once) run on every
    backend, the full products on NumPy and torch only, to keep the runtime in bounds (JAX
    eager compiles every new shape, TensorFlow and MXNet pay per operation)."""
    assert cid not in SPECS, cid
    if core:  # the core specs of one loss cycle through its reduction combos in turn
        family = "-".join(cid.split("-")[:2]) if cid.startswith("focal") else cid.split("-")[0]
        params["i"] = sum(1 for c in CORE_SPECS if c.startswith(family + "-"))
    SPECS[cid] = functools.partial(builder, cid, **params)
    if core:
        CORE_SPECS.append(cid)
    if grad and core:
        GRAD_SPECS.append(cid)
    if lowp and core:
        LOWP_SPECS.append(cid)


@functools.cache
def cases(spec_id: str, dtype: str) -> list[Case]:
    return SPECS[spec_id](dtype)


CE_COMBOS = [  # (reduction, sample weight, normalizer)
    ("mean", None, "valid_count"),
    ("mean", "full", "count"),
    ("mean", "per_sample", "sum_of_weights"),
    ("sum", "full", "valid_count"),
    ("batchmean", None, "valid_count"),
    ("mean", None, "sum_of_weights"),
    ("mean", "full", "valid_count"),
    ("batchmean", "per_sample", "valid_count"),
    ("sum", None, "valid_count"),
    ("mean", None, "count"),
]
# every reduction, normalizer and sample-weight form (full, per-sample prefix, broadcast,
# none), cycled over the specs of each loss together with a "none" call with full weights
ELEM_COMBOS = [
    ("mean", None, "count"),
    ("mean", "full", "sum_of_weights"),
    ("sum", "per_sample", "count"),
    ("batchmean", "broadcast", "count"),
    ("mean", "per_sample", "sum_of_weights"),
]
POS_COMBOS = [  # per-position losses (class axis removed)
    ("mean", None, "count"),
    ("mean", "full", "sum_of_weights"),
    ("sum", "per_sample", "count"),
    ("batchmean", "per_sample", "count"),
]
POLY_COMBOS = [
    ("mean", None, "valid_count"),
    ("mean", "per_sample", "sum_of_weights"),
    ("sum", "full", "valid_count"),
    ("batchmean", None, "valid_count"),
    ("mean", "full", "count"),
]


def _combos(i, combos, none_normalizer, k=1):
    """A "none" call with full sample weights and k of ``combos``, cycling with i."""
    return [("none", "full", none_normalizer)] + [combos[(i * k + j) % len(combos)] for j in range(k)]


def _ce_spec(cid, dtype, *, i, layout, target, inp, cw, ls, ignore, combos=None, log_clamp=None):
    shape, axis = LAYOUTS[layout]
    rng = np.random.default_rng(_seed(cid))
    C = shape[axis]
    ndt = _np_dtype(dtype)
    arrays = {"pred": _class_pred(rng, shape, axis, inp).astype(ndt),
              "target": _lowp_cast(_class_target(rng, shape, axis, target, ignore), dtype)}
    loss = "nll" if inp == "log_probs" else "cross_entropy"
    kw: dict[str, Any] = {"axis": axis}
    if loss == "cross_entropy":
        kw["from_logits"] = inp == "logits"
    if cw:
        arrays["class_weight"] = rng.uniform(0.5, 2.0, C).astype(ndt)
    if ignore is not None:
        kw["ignore_index"] = ignore
    if ls:
        kw["label_smoothing"] = ls
    clamp = -100.0
    if log_clamp is not None:
        kw["log_clamp"] = clamp = log_clamp

    def per_fn(a):
        return ce_hand(a["pred"], a["target"], inp=inp, axis=axis, class_weight=a.get("class_weight"),
                       ignore_index=ignore, label_smoothing=ls, log_clamp=clamp)

    return [make_case(cid, loss, arrays, 2, kw, dtype, per_fn, reduction=r, sw_mode=s, normalizer=n,
                      policy="zero", class_axis=axis)
            for r, s, n in (combos or _combos(i, CE_COMBOS, "valid_count"))]


_CW_LS = [(False, 0.0), (True, 0.1), (True, 0.0), (False, 0.1)]


def _register_ce():
    i = j = 0
    for layout in ("2d", "4d", "b1", "3d"):
        for target in ("int", "prob"):
            for inp in ("logits", "probs", "log_probs"):
                # core: one (class_weight, smoothing) pair per (layout, target, input) on 2d and
                # 4d, two on b1 (a batch of one); all four pairs on NumPy and torch
                pick = _CW_LS[j % 4]
                in_core = layout in ("2d", "4d") or (layout == "b1" and (target, inp) in (
                    ("int", "logits"), ("prob", "probs")))
                j += in_core
                for cw, ls in _CW_LS:
                    ignore = None
                    if target == "int":
                        ignore = (None, -100, 1)[i % 3]
                    loss = "nll" if inp == "log_probs" else "ce"
                    cid = f"{loss}-{layout}-{target}-{inp}-cw{int(cw)}-ls{ls}-ign{ignore}"
                    core = in_core and (cw, ls) == pick
                    _register(cid, _ce_spec, core=core, grad=core and j % 3 == 1, lowp=core and j % 5 == 1,
                              i=j if core else i, layout=layout, target=target, inp=inp, cw=cw, ls=ls,
                              ignore=ignore)
                    i += 1
    # every reduction x normalizer x sample-weight mode, with ignore_index + class_weight +
    # smoothing, on every backend
    combos = [("none", "full", "valid_count"), ("sum", None, "valid_count"),
              ("batchmean", "per_sample", "valid_count"), ("mean", "full", "valid_count"),
              ("mean", "per_sample", "count"), ("mean", None, "sum_of_weights"),
              ("mean", "full", "sum_of_weights"), ("mean", "per_sample", "sum_of_weights")]
    for layout in ("2d", "4d"):
        for target in ("int", "prob"):
            ignore = -100 if target == "int" else None
            cid = f"ce-reductions-{layout}-{target}"
            _register(cid, _ce_spec, core=True, grad=(layout, target) == ("4d", "int"), i=0,
                      layout=layout, target=target,
                      inp="logits", cw=True, ls=0.2, ignore=ignore, combos=combos)
    nll_combos = [("none", "full", "valid_count"), ("batchmean", "per_sample", "valid_count"),
                  ("mean", None, "sum_of_weights"), ("mean", "full", "count")]
    _register("nll-reductions-4d-int", _ce_spec, core=True, i=0, layout="4d", target="int",
              inp="log_probs", cw=True, ls=0.1, ignore=-100, combos=nll_combos)
    # a custom clamp: p = 0 and p = 1e-3 both give -log p = 5 at log_clamp = -5
    _register("ce-probs-clamp-5", _ce_spec, core=True, i=0, layout="2d", target="int", inp="probs",
              cw=False, ls=0.1, ignore=None, log_clamp=-5.0)


def _bce_spec(cid, dtype, *, i, from_logits, pw, ls, shape):
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    x = 2.5 * rng.standard_normal(shape) if from_logits else rng.uniform(0.02, 0.98, shape)
    y = rng.integers(0, 2, shape).astype(np.float64)
    y.flat[::4] = rng.uniform(0.0, 1.0, y.flat[::4].shape)  # some soft targets
    arrays = {"pred": x.astype(ndt), "target": y.astype(ndt)}
    kw: dict[str, Any] = {"from_logits": from_logits}
    if pw == "scalar":
        kw["pos_weight"] = 2.5
    elif pw == "vector":
        arrays["pos_weight"] = rng.uniform(0.5, 3.0, shape[-1]).astype(ndt)
    if ls:
        kw["label_smoothing"] = ls

    def per_fn(a):
        pwv = a.get("pos_weight", kw.get("pos_weight"))
        return bce_hand(a["pred"], a["target"], from_logits=from_logits, pos_weight=pwv,
                        label_smoothing=ls)

    return [make_case(cid, "binary_cross_entropy", arrays, 2, kw, dtype, per_fn, reduction=r,
                      sw_mode=s, normalizer=n) for r, s, n in _combos(i, ELEM_COMBOS, "count")]


def _focal_binary_spec(cid, dtype, *, i, from_logits, alpha, gamma, ls, explicit_kind):
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    shape = (6, 5)
    x = 2.5 * rng.standard_normal(shape) if from_logits else rng.uniform(0.02, 0.98, shape)
    y = rng.integers(0, 2, shape).astype(np.float64)
    arrays = {"pred": x.astype(ndt), "target": y.astype(ndt)}
    kw: dict[str, Any] = {"gamma": gamma, "alpha": alpha, "from_logits": from_logits}
    if explicit_kind:
        kw["kind"] = "binary"
    if ls:
        kw["label_smoothing"] = ls

    def per_fn(a):
        return focal_binary_hand(a["pred"], a["target"], gamma=gamma, alpha=alpha,
                                 from_logits=from_logits, label_smoothing=ls)

    return [make_case(cid, "focal", arrays, 2, kw, dtype, per_fn, reduction=r, sw_mode=s, normalizer=n,
                      fd=True) for r, s, n in _combos(i, ELEM_COMBOS, "count")]


def _focal_cat_spec(cid, dtype, *, i, from_logits, target, alpha, layout, gamma, ls):
    shape, axis = LAYOUTS[layout]
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    C = shape[axis]
    z = 2.0 * rng.standard_normal(shape)
    pred = z if from_logits else _softmax_np(z, axis)  # (p = 0 exactly: see the edge tests)
    arrays = {"pred": pred.astype(ndt),
              "target": _lowp_cast(_class_target(rng, shape, axis, target, None), dtype)}
    kw: dict[str, Any] = {"kind": "categorical", "gamma": gamma, "from_logits": from_logits, "axis": axis}
    if alpha == "vector":
        arrays["alpha"] = rng.uniform(0.1, 0.9, C).astype(ndt)
    else:
        kw["alpha"] = alpha
    if ls:
        kw["label_smoothing"] = ls

    def per_fn(a):
        al = a.get("alpha", kw.get("alpha"))
        return focal_categorical_hand(a["pred"], a["target"], gamma=gamma, alpha=al,
                                      from_logits=from_logits, axis=axis, label_smoothing=ls)

    return [make_case(cid, "focal", arrays, 2, kw, dtype, per_fn, reduction=r, sw_mode=s, normalizer=n,
                      class_axis=axis, fd=True) for r, s, n in _combos(i, POS_COMBOS, "count")]


def _poly1_spec(cid, dtype, *, i, target, layout, epsilon, ignore, ls):
    shape, axis = LAYOUTS[layout]
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    arrays = {"pred": _class_pred(rng, shape, axis, "logits").astype(ndt),
              "target": _lowp_cast(_class_target(rng, shape, axis, target, ignore), dtype)}
    kw: dict[str, Any] = {"epsilon": epsilon, "axis": axis}
    if ignore is not None:
        kw["ignore_index"] = ignore
    if ls:
        kw["label_smoothing"] = ls

    def per_fn(a):
        return poly1_hand(a["pred"], a["target"], epsilon=epsilon, axis=axis, ignore_index=ignore,
                          label_smoothing=ls)

    return [make_case(cid, "poly1_cross_entropy", arrays, 2, kw, dtype, per_fn, reduction=r, sw_mode=s,
                      normalizer=n, policy="zero", class_axis=axis)
            for r, s, n in _combos(i, POLY_COMBOS, "valid_count")]


def _kl_spec(cid, dtype, *, i, pred_kind, log_target, layout):
    shape, axis = LAYOUTS[layout]
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    p = _softmax_np(1.5 * rng.standard_normal(shape), axis)
    if not log_target:  # exact zero targets (with log_target they are -inf: see a test below)
        p.flat[::7] = 0.0
    z = 2.0 * rng.standard_normal(shape)
    if pred_kind == "logits":
        pred = z
    elif pred_kind == "log_probs":
        pred = -rng.uniform(0.05, 4.0, shape)
    else:
        pred = _softmax_np(z, axis)
        if not log_target:
            pred.flat[::14] = 0.0  # q = 0 where p = 0 too: the term is still exactly 0
    target = np.log(p) if log_target else p
    arrays = {"pred": pred.astype(ndt), "target": target.astype(ndt)}
    kw: dict[str, Any] = {"pred_kind": pred_kind, "log_target": log_target, "axis": axis}

    def per_fn(a):
        return kl_hand(a["pred"], a["target"], pred_kind=pred_kind, log_target=log_target, axis=axis)

    return [make_case(cid, "kl_div", arrays, 2, kw, dtype, per_fn, reduction=r, sw_mode=s, normalizer=n,
                      class_axis=axis) for r, s, n in _combos(i, POS_COMBOS, "count")]


def _poisson_spec(cid, dtype, *, i, log_input, full, shape, eps):
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    y = rng.poisson(2.5, shape).astype(np.float64)
    y.flat[:3] = [0.0, 1.0, 4.0]  # 0, 1 and > 1 (the Stirling term's mask)
    if log_input:
        x = rng.normal(0.5, 1.0, shape)
    else:
        x = rng.uniform(0.05, 4.0, shape)
        x.flat[0] = 0.0  # rate 0 with y = 0: 0 - 0 * log(eps) = 0
    arrays = {"pred": x.astype(ndt), "target": y.astype(ndt)}
    kw: dict[str, Any] = {"log_input": log_input, "full": full}
    if eps is not None:
        kw["eps"] = eps

    def per_fn(a):
        return poisson_hand(a["pred"], a["target"], log_input=log_input, full=full,
                            eps=1e-8 if eps is None else eps)

    return [make_case(cid, "poisson_nll", arrays, 2, kw, dtype, per_fn, reduction=r, sw_mode=s,
                      normalizer=n) for r, s, n in _combos(i, ELEM_COMBOS, "count")]


def _gaussian_spec(cid, dtype, *, i, var_shape, full, eps, shape):
    rng = np.random.default_rng(_seed(cid))
    ndt = _np_dtype(dtype)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    vshape = {"same": shape, "short": shape[:-1], "last1": shape[:-1] + (1,),
              "first1": (1,) + shape[1:]}[var_shape]
    v = rng.uniform(0.2, 2.0, vshape)
    arrays = {"pred": x.astype(ndt), "target": y.astype(ndt), "var": v.astype(ndt)}
    kw: dict[str, Any] = {"full": full}
    if eps is not None:
        kw["eps"] = eps  # 0.5: some variances are clamped

    def per_fn(a):
        return gaussian_hand(a["pred"], a["target"], a["var"], full=full, eps=1e-6 if eps is None else eps)

    return [make_case(cid, "gaussian_nll", arrays, 3, kw, dtype, per_fn, reduction=r, sw_mode=s,
                      normalizer=n) for r, s, n in _combos(i, ELEM_COMBOS, "count")]


def _register_all():
    _register_ce()
    i = 0
    for from_logits in (True, False):
        for pw in (None, "scalar", "vector"):
            for k, (ls, shape) in enumerate(((0.0, (6, 5)), (0.2, (2, 3, 5)), (0.2, (6, 5)),
                                             (0.0, (2, 3, 5)))):
                core = k == i // 4 % 4  # one (smoothing, shape) per (input, pos_weight), cycling
                cid = f"bce-{'logits' if from_logits else 'probs'}-pw{pw}-ls{ls}-{len(shape)}d"
                _register(cid, _bce_spec, core=core, grad=core and pw is not None,
                          lowp=core and pw == "vector", i=i,
                          from_logits=from_logits, pw=pw, ls=ls, shape=shape)
                i += 1
    i = 0
    for from_logits in (True, False):
        for gamma in (2.0, 0.5, 0.0):
            for k, (alpha, ls) in enumerate(((None, 0.0), (0.25, 0.1), (0.25, 0.0), (None, 0.1))):
                core = k == i // 4 % 4
                cid = f"focal-binary-{'logits' if from_logits else 'probs'}-a{alpha}-g{gamma}-ls{ls}"
                _register(cid, _focal_binary_spec, core=core, grad=core and gamma == 0.5,
                          lowp=core and gamma == 2.0, i=i, from_logits=from_logits, alpha=alpha,
                          gamma=gamma, ls=ls, explicit_kind=i % 2 == 0)
                i += 1
    i = 0
    for from_logits in (True, False):
        for alpha in (None, 0.25, "vector"):
            for k, (target, layout) in enumerate((("int", "2d"), ("prob", "4d"), ("prob", "2d"),
                                                  ("int", "4d"))):
                core = k == i // 4 % 4
                gamma, ls = (2.0, 0.0) if i % 2 == 0 else (1.5, 0.1)
                cid = (f"focal-cat-{'logits' if from_logits else 'probs'}-{target}-a{alpha}-{layout}"
                       f"-g{gamma}-ls{ls}")
                _register(cid, _focal_cat_spec, core=core, grad=core and alpha is None,
                          lowp=core and alpha is None and from_logits, i=i, from_logits=from_logits,
                          target=target,
                          alpha=alpha, layout=layout, gamma=gamma, ls=ls)
                i += 1
    i = 0
    for target in ("int", "prob"):
        for epsilon in (1.0, 2.5, -1.0):
            for k, layout in enumerate(("2d", "4d")):
                core = k == i // 2 % 2
                ignore = (None, -100, 2)[i // 2 % 3] if target == "int" else None
                ls = 0.1 if i // 2 % 2 else 0.0
                cid = f"poly1-{target}-{layout}-e{epsilon}-ign{ignore}-ls{ls}"
                _register(cid, _poly1_spec, core=core, grad=core and epsilon == 2.5,
                          lowp=core and epsilon == 1.0, i=i,
                          target=target, layout=layout, epsilon=epsilon, ignore=ignore, ls=ls)
                i += 1
    i = 0
    for pred_kind in ("log_probs", "probs", "logits"):
        for log_target in (False, True):
            for k, layout in enumerate(("2d", "4d")):
                core = k == i // 2 % 2
                cid = f"kl-{pred_kind}-lt{int(log_target)}-{layout}"
                _register(cid, _kl_spec, core=core, grad=core and (pred_kind == "probs") != log_target,
                          lowp=core and log_target and pred_kind == "logits", i=i,
                          pred_kind=pred_kind, log_target=log_target, layout=layout)
                i += 1
    i = 0
    for log_input in (True, False):
        for full in (False, True):
            for k, shape in enumerate(((6, 5), (2, 3, 5))):
                core = k == i // 2 % 2
                eps = 1e-3 if (not log_input and len(shape) == 3) else None
                cid = f"poisson-log{int(log_input)}-full{int(full)}-{len(shape)}d-eps{eps}"
                _register(cid, _poisson_spec, core=core, grad=core and full,
                          lowp=core and full and log_input, i=i,
                          log_input=log_input, full=full, shape=shape, eps=eps)
                i += 1
    i = 0
    for var_shape in ("same", "short", "last1", "first1"):
        for full in (False, True):
            for k, eps in enumerate((None, 0.5)):
                core = k == i // 2 % 2
                shape = (6, 5) if i % 2 == 0 else (2, 3, 5)
                cid = f"gaussian-var_{var_shape}-full{int(full)}-eps{eps}-{len(shape)}d"
                _register(cid, _gaussian_spec, core=core, grad=core and full,
                          lowp=core and var_shape == "short" and not full,
                          i=i, var_shape=var_shape, full=full, eps=eps, shape=shape)
                i += 1


_register_all()

FLOAT_PARAMS = [pytest.param(b, dt, id=f"{b.name}-{dt}") for b in INSTALLED for dt in b.dtypes]
F32_PARAMS = [pytest.param(b, "float32", id=f"{b.name}-float32") for b in INSTALLED]
AUTOGRAD_PARAMS = [pytest.param(b, dt, id=f"{b.name}-{dt}") for b in AUTOGRAD
                   for dt in ("float64", "float32")]
AUTOGRAD_F32 = [pytest.param(b, "float32", id=f"{b.name}-float32") for b in AUTOGRAD]


def _runs_values(b, dt, sid) -> bool:
    if b.name in WIDE_BACKENDS:
        return True
    if sid not in CORE_SPECS:
        return False
    # JAX compiles every new (operation, shape, dtype) in eager mode (~1 s per loss and shape):
    # float64 on a quarter of the core specs there
    return not (b.name == "jax" and dt == "float64" and CORE_SPECS.index(sid) % 4)


VALUE_PARAMS = [pytest.param(b, dt, sid, id=f"{b.name}-{dt}-{sid}") for sid in SPECS for b in INSTALLED
                for dt in b.dtypes if _runs_values(b, dt, sid)]
# (JAX eager differentiation compiles every new loss structure, ~1 s each: float32 only there)
GRAD_PARAMS = [pytest.param(b, dt, sid, id=f"{b.name}-{dt}-{sid}") for sid in SPECS for b in AUTOGRAD
               for dt in ("float64", "float32") if (sid in GRAD_SPECS or b.name == "torch")
               and not (b.name == "jax" and dt == "float64")]
LOWP_PARAMS = [pytest.param(b, dt, id=f"{b.name}-{dt}") for dt, names in LOWP_BACKENDS.items()
               for b in INSTALLED if b.name in names]
LOWP_AUTOGRAD_PARAMS = [p for p in LOWP_PARAMS if p.values[0].differentiable]
# bfloat16 gradients and extreme inputs on torch; JAX's (compiled per dtype) in float16
LOWP_AUTOGRAD_LEAN = [p for p in LOWP_AUTOGRAD_PARAMS
                      if p.values[0].name != "jax" or p.values[1] == "float16"]
LOWP_LEAN = [p for p in LOWP_PARAMS if p.values[0].name != "jax" or p.values[1] == "float16"]


def _run(backend, case: Case):
    xs = [backend.asarray(a) for a in case.arrays.values()]
    out = case(*xs)
    return out, xs[0], backend.to_numpy(out)


def _check(backend, case, out, like, got, dtype=None):
    dtype = dtype or case.dtype
    what = case.what(backend.name, dtype)
    assert is_native(backend, out, like), f"{what}: {type(out)} out"
    assert got.dtype == _np_dtype(dtype), f"{what}: dtype {got.dtype}"
    assert_close(got, case.want, value_tol(case, dtype), what)


# ---- the oracles on numbers worked out by hand ---------------------------------------------------

def test_oracles_on_numbers_by_hand():
    ln2, ln3 = math.log(2.0), math.log(3.0)
    # CE of equal logits: log C; of [0, ln 3] with target 1: log(1 + 3) - ln 3 = ln(4/3)
    z = np.array([[0.0, 0.0, 0.0], [0.0, ln3, -np.inf]])
    per = ce_hand(z[:1], np.array([2]))
    np.testing.assert_allclose(per.loss, [ln3], rtol=1e-15)
    np.testing.assert_allclose(ce_hand(np.array([[0.0, ln3]]), np.array([1])).loss, [math.log(4 / 3)],
                               rtol=1e-15)
    # torch's smoothing, w = [1, 2], eps = 0.5, z = [0, 0], y = 0: 0.5 * 1 * ln2 + 0.25 * (1 + 2) * ln2
    per = ce_hand(np.zeros((1, 2)), np.array([0]), class_weight=np.array([1.0, 2.0]), label_smoothing=0.5)
    np.testing.assert_allclose(per.loss, [1.25 * ln2], rtol=1e-15)
    # a = [0.5 + 0.25, 0.25 * 2], A = 1.25, softmax = [0.5, 0.5]: d/dz = A p - a
    np.testing.assert_allclose(per.dloss, [[1.25 * 0.5 - 0.75, 1.25 * 0.5 - 0.5]], rtol=1e-15)
    # probability target [0.25, 0.75] smoothed by 0.5 over 2 classes: [0.375, 0.625]; -log 0.5 each
    per = ce_hand(np.zeros((1, 2)), np.array([[0.25, 0.75]]), label_smoothing=0.5)
    np.testing.assert_allclose(per.loss, [ln2], rtol=1e-15)
    # probabilities with a zero at the target: the clamp, 100
    np.testing.assert_allclose(ce_hand(np.array([[0.0, 1.0]]), np.array([0]), inp="probs").loss, [100.0])
    # BCE on logit 0: ln 2 for any target; pos_weight 3 with y = 1: 3 ln 2
    np.testing.assert_allclose(bce_hand(np.zeros(2), np.array([0.0, 1.0]), from_logits=True).loss,
                               [ln2, ln2], rtol=1e-15)
    np.testing.assert_allclose(bce_hand(np.zeros(1), np.ones(1), from_logits=True, pos_weight=3.0).loss,
                               [3 * ln2], rtol=1e-15)
    # smoothing 0.5 moves y = 1 to 0.75: -(0.75 log 0.5 + 0.25 log 0.5) = ln 2 at p = 0.5
    np.testing.assert_allclose(bce_hand(np.full(1, 0.5), np.ones(1), label_smoothing=0.5).loss, [ln2],
                               rtol=1e-15)
    # focal at p = 0.5, y = 1, gamma = 2, alpha = 0.25: 0.25 * 0.25 * ln 2
    np.testing.assert_allclose(
        focal_binary_hand(np.full(1, 0.5), np.ones(1), alpha=0.25, from_logits=False).loss,
        [0.0625 * ln2], rtol=1e-15)
    # categorical focal on equal logits over 2 classes: 0.5^2 ln 2
    np.testing.assert_allclose(focal_categorical_hand(np.zeros((1, 2)), np.array([0])).loss,
                               [0.25 * ln2], rtol=1e-15)
    # poly1 on equal logits over 4 classes: ln 4 + epsilon * 3/4
    np.testing.assert_allclose(poly1_hand(np.zeros((1, 4)), np.array([1]), epsilon=2.0).loss,
                               [math.log(4.0) + 1.5], rtol=1e-15)
    # KL([0.5, 0.5, 0] || [0.25, 0.75, 0]) = 0.5 ln 2 + 0.5 ln(2/3); the zero term is 0
    per = kl_hand(np.array([[0.25, 0.75, 0.0]]), np.array([[0.5, 0.5, 0.0]]), pred_kind="probs")
    np.testing.assert_allclose(per.loss, [0.5 * ln2 + 0.5 * math.log(2 / 3)], rtol=1e-15)
    # Poisson: exp(0) - 2 * 0 = 1; full adds 2 ln 2 - 2 + ln(4 pi)/2 for y = 2
    np.testing.assert_allclose(poisson_hand(np.zeros(1), np.full(1, 2.0), full=True).loss,
                               [1 + 2 * ln2 - 2 + 0.5 * math.log(4 * math.pi)], rtol=1e-15)
    # Gaussian: var = e, r = 1: (1 + 1/e) / 2; a clamped variance uses eps
    np.testing.assert_allclose(gaussian_hand(np.ones(1), np.zeros(1), np.full(1, math.e)).loss,
                               [0.5 * (1 + 1 / math.e)], rtol=1e-15)
    np.testing.assert_allclose(gaussian_hand(np.zeros(1), np.zeros(1), np.zeros(1), eps=0.5).loss,
                               [0.5 * math.log(0.5)], rtol=1e-15)


def test_hand_reductions_by_hand():
    loss = np.array([1.0, 2.0, 0.0, 4.0])
    valid = np.array([True, True, False, True])
    den_w = np.array([1.0, 3.0, 0.0, 1.0])  # class weights of the targets
    sw = np.array([2.0, 1.0, 5.0, 1.0])
    kw = {"batch": 4, "valid": valid, "den_w": den_w, "policy": "zero"}
    f, s = _factors((4,), "mean", sw, "valid_count", **kw)
    assert _apply(f, s, loss, "mean") == (2 + 2 + 4) / 3
    f, s = _factors((4,), "mean", sw, "sum_of_weights", **kw)
    assert _apply(f, s, loss, "mean") == 8 / (2 + 3 + 1)
    f, s = _factors((4,), "mean", sw, "count", **kw)
    assert _apply(f, s, loss, "mean") == 8 / 4
    f, s = _factors((4,), "mean", None, "valid_count", **dict(kw, valid=np.zeros(4, bool)))
    assert _apply(f, s, loss * 0, "mean") == 0.0
    f, s = _factors((4,), "mean", None, "valid_count", **dict(kw, valid=np.zeros(4, bool), policy="nan"))
    assert np.isnan(_apply(f, s, loss * 0, "mean"))


def test_specs_exercise_what_they_claim():
    # the generated inputs reach the branches the specs are named after
    for cid in SPECS:
        for case in cases(cid, "float64"):
            t = case.arrays["target"]
            if "ign-100" in cid and t.size > 1:
                assert np.any(t == -100) and np.any(t != -100), cid
            if cid.startswith(("ce-", "nll-")) and "ign1" in cid and t.size > 1:
                assert np.any(t == 1) and np.any(t != 1), cid
            if "-probs-" in cid and cid.startswith("ce-"):
                assert np.min(case.arrays["pred"]) == 0.0, cid
    c = cases("poisson-log1-full1-2d-epsNone", "float64")[0]
    assert {0.0, 1.0, 4.0} <= set(c.arrays["target"].ravel().tolist())
    c = cases("gaussian-var_same-full0-eps0.5-3d", "float64")[0]
    assert np.any(c.arrays["var"] < 0.5) and np.any(c.arrays["var"] > 0.5)


# ---- values: every loss x every installed backend x float32/float64 ----------------------------

@pytest.mark.parametrize(("backend", "dtype", "spec_id"), VALUE_PARAMS)
def test_matches_oracle(backend, dtype, spec_id):
    backend.setup()
    for case in cases(spec_id, dtype):
        out, like, got = _run(backend, case)
        assert got.shape == case.want.shape, case.what(backend.name, dtype)
        _check(backend, case, out, like, got)


@pytest.mark.parametrize(("backend", "dtype"), F32_PARAMS)
def test_one_hot_targets_equal_class_indices(backend, dtype):
    # a one-hot probability target is the same distribution as its class index, so every
    # option (class_weight, label_smoothing, each normalizer) must give the same loss
    rng = np.random.default_rng(12)
    z = (2.0 * rng.standard_normal((6, 5))).astype(dtype)
    t = rng.integers(0, 5, 6)
    onehot = (t[:, None] == np.arange(5)).astype(dtype)
    cw = rng.uniform(0.5, 2.0, 5).astype(dtype)
    sw = rng.uniform(0.5, 2.0, 6).astype(dtype)
    Z, T, Q, SW = (backend.asarray(a) for a in (z, t, onehot, sw))
    calls = [("cross_entropy", {"class_weight": backend.asarray(cw)}), ("cross_entropy", {}),
             ("nll", {"class_weight": backend.asarray(cw)}), ("poly1_cross_entropy", {}),
             ("focal", {"kind": "categorical"})]
    for loss, kw in calls:
        fn = getattr(polyloss, loss)
        normalizers = ("count",) if loss == "focal" else ("valid_count", "count", "sum_of_weights")
        for ls in (0.0, 0.2):
            for normalizer in normalizers:
                for reduction in ("none", "mean"):
                    k = dict(kw, label_smoothing=ls, normalizer=normalizer, reduction=reduction,
                             sample_weight=SW)
                    a = backend.to_numpy(fn(Z, T, **k)).astype(np.float64)
                    b = backend.to_numpy(fn(Z, Q, **k)).astype(np.float64)
                    what = f"{loss} {sorted(kw)} ls={ls} {normalizer} {reduction}: one-hot vs index"
                    assert_close(b, a, rtol(dtype, z.size) * 4 * np.abs(a) + 1e-300, what)


@pytest.mark.parametrize("label_dtype", ["int32", "uint8"])
@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in INSTALLED])
def test_label_dtypes(backend, label_dtype):
    # class indices of any integer dtype mean the same as int64 ones
    rng = np.random.default_rng(13)
    z = backend.asarray(rng.standard_normal((6, 5)))
    z4 = backend.asarray(rng.standard_normal((2, 5, 2, 3)))
    t = np.array([0, 4, 2, 1, 3, 2])
    t4 = rng.integers(0, 5, (2, 2, 3))
    for name, fn in _label_calls():
        for pred, labels, kw in ((z, t, {}), (z4, t4, {"axis": 1})):
            want = backend.to_numpy(fn(pred, backend.asarray(labels.astype(np.int64)), **kw))
            got = backend.to_numpy(fn(pred, backend.asarray(labels.astype(label_dtype)), **kw))
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {label_dtype} {kw}")


# ---- float16 / bfloat16: computed in float32, returned in the input dtype ----------------------

def _lowp_asarray(backend, a: np.ndarray):
    if a.dtype.name != "bfloat16":
        return backend.asarray(a)
    if backend.name == "torch":
        import torch

        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    import jax.numpy as jnp

    return jnp.asarray(a)


def _out(backend, x) -> tuple[np.ndarray, str]:
    """A result as float64 NumPy, and the name of its dtype (torch's bfloat16 has no NumPy view)."""
    if backend.name == "torch" and str(x.dtype) == "torch.bfloat16":
        return x.detach().float().numpy().astype(np.float64), "bfloat16"
    a = backend.to_numpy(x)
    return a.astype(np.float64), a.dtype.name


def _lowp_value_and_grad(backend, fn, arrays: list[np.ndarray]):
    """(value, grad of its sum w.r.t. arrays[0], value dtype, grad dtype) in float16/bfloat16."""
    xs = [_lowp_asarray(backend, a) for a in arrays]
    if backend.name == "torch":
        import torch

        xs[0].requires_grad_(True)
        out = fn(*xs)
        (g,) = torch.autograd.grad(out.sum(), xs[0])
        return (*_out(backend, out), *_out(backend, g))
    import jax
    import jax.numpy as jnp

    def total(x):
        out = fn(x, *xs[1:])
        return jnp.sum(out.astype(jnp.float32)), out

    (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[0])
    return (*_out(backend, out), *_out(backend, g))


@pytest.mark.parametrize("spec_id", LOWP_SPECS)
@pytest.mark.parametrize(("backend", "dtype"), LOWP_PARAMS)
def test_low_precision_matches_oracle(backend, dtype, spec_id):
    backend.setup()
    for case in cases(spec_id, dtype):
        xs = [_lowp_asarray(backend, a) for a in case.arrays.values()]
        out = case(*xs)
        got, got_dtype = _out(backend, out)
        what = case.what(backend.name, dtype)
        assert got_dtype == dtype, f"{what}: returned {got_dtype}"
        assert_close(got, case.want, value_tol(case, dtype), what)


LOWP_GRAD_SPECS = [s for s in LOWP_SPECS if s in GRAD_SPECS and not s.startswith("bce-probs")]


@pytest.mark.parametrize("spec_id", LOWP_GRAD_SPECS)
@pytest.mark.parametrize(("backend", "dtype"), LOWP_AUTOGRAD_LEAN)
def test_low_precision_grads(backend, dtype, spec_id):
    backend.setup()
    for case in cases(spec_id, dtype):
        value, vdt, g, gdt = _lowp_value_and_grad(backend, case, list(case.arrays.values()))
        what = case.what(backend.name, dtype)
        assert vdt == dtype and gdt == dtype, f"{what}: value {vdt}, grad {gdt}"
        assert_close(value, case.want, value_tol(case, dtype), what)
        want, tol = grad_tol(case, dtype)
        assert_close(g, want, tol, "d/dpred " + what)


# ---- gradients -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("backend", "dtype", "spec_id"), GRAD_PARAMS)
def test_grad_matches_oracle(backend, dtype, spec_id):
    backend.setup()
    for case in cases(spec_id, dtype):
        value, g = backend.value_and_grad(case, list(case.arrays.values()), 0)
        what = case.what(backend.name, dtype)
        assert g.dtype == np.dtype(dtype) and g.shape == case.arrays["pred"].shape, what
        assert_close(value, case.want, value_tol(case), what)
        want, tol = grad_tol(case, dtype)
        assert_close(g, want, tol, "d/dpred " + what)


def test_central_differences_confirm_the_analytic_gradients():
    # the analytic derivatives written into the oracles, against central differences of the
    # oracles' values (at an exactly-zero probability the difference quotient is undefined)
    checked = 0
    for cid in GRAD_SPECS:
        if cid.startswith("focal"):  # their expected gradients are these differences already
            continue
        for case in cases(cid, "float64"):
            assert case.grad is not None, cid
            skip = (case.arrays["pred"] == 0) if "probs" in cid else None
            fd = fd_grad(case, skip)
            want = case.grad if skip is None else np.where(skip, 0.0, case.grad)
            scale = np.max(np.abs(want), initial=0.0)
            assert_close(fd, want, 1e-6 * scale + 1e-6 * np.abs(want), f"central differences of {cid}")
            checked += 1
    assert checked >= 40


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "poly1_cross_entropy"])
@pytest.mark.parametrize(("backend", "dtype"), AUTOGRAD_F32)
def test_all_ignored_gradient_is_zero(backend, dtype, loss):
    # the "zero" policy's 0/0 guard must not leak NaN into the backward pass
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 3)).astype(dtype)
    t = np.full(4, -100, dtype=np.int64)
    w = rng.uniform(0.5, 2.0, 4).astype(dtype)
    for normalizer in ("valid_count", "sum_of_weights"):
        def fn(p, tt, ww, _n=normalizer):
            return getattr(polyloss, loss)(p, tt, ignore_index=-100, sample_weight=ww, normalizer=_n)

        value, g = backend.value_and_grad(fn, [z, t, w], 0)
        assert float(value) == 0.0, (normalizer, value)
        np.testing.assert_array_equal(g, np.zeros_like(z), err_msg=normalizer)


# ---- reductions at the edges: all ignored, empty batch, batch of one ---------------------------

@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "poly1_cross_entropy"])
@pytest.mark.parametrize(("backend", "dtype"), F32_PARAMS)
def test_all_ignored(backend, dtype, loss):
    rng = np.random.default_rng(6)
    fn = getattr(polyloss, loss)
    for shape, axis, ignore in (((4, 3), -1, -100), ((2, 3, 2, 2), 1, 1)):
        z = backend.asarray(rng.standard_normal(shape).astype(dtype))
        pos = _positions(shape, axis)
        t = backend.asarray(np.full(pos, ignore, dtype=np.int64))
        sw = backend.asarray(rng.uniform(0.5, 2.0, pos).astype(dtype))
        kw = {"ignore_index": ignore, "axis": axis}
        if loss == "cross_entropy":
            kw["class_weight"] = backend.asarray(rng.uniform(0.5, 2.0, shape[axis]).astype(dtype))
        for policy, want in (("zero", 0.0), ("nan", math.nan)):
            for normalizer in ("valid_count", "sum_of_weights"):
                got = backend.to_numpy(fn(z, t, if_all_ignored=policy, normalizer=normalizer,
                                          sample_weight=sw, **kw))
                assert got.dtype == np.dtype(dtype) and got.shape == ()
                assert_close(got, np.float64(want), 0.0, f"{loss} all ignored {policy} {normalizer}")
            # "count" divides by every position: 0 whatever the policy; sum/batchmean: 0
            for reduction, normalizer in (("mean", "count"), ("sum", "valid_count"),
                                          ("batchmean", "valid_count")):
                got = backend.to_numpy(fn(z, t, if_all_ignored=policy, reduction=reduction,
                                          normalizer=normalizer, **kw))
                assert float(got) == 0.0, (loss, policy, reduction, normalizer, got)
            got = backend.to_numpy(fn(z, t, if_all_ignored=policy, reduction="none", **kw))
            np.testing.assert_array_equal(got, np.zeros(pos, dtype))
        # the default policy is "zero"
        assert float(backend.to_numpy(fn(z, t, **kw))) == 0.0


_EMPTY = [  # (name, loss, arrays (shape, kind), keywords, shape of the "none" output, has ignore policy)
    ("cross_entropy", "cross_entropy", [((0, 3), "f"), ((0,), "i")], {}, (0,), True),
    ("cross_entropy-4d", "cross_entropy", [((0, 3, 2, 2), "f"), ((0, 2, 2), "i")], {"axis": 1}, (0, 2, 2),
     True),
    ("cross_entropy-prob", "cross_entropy", [((0, 3), "f"), ((0, 3), "f")], {}, (0,), True),
    ("nll", "nll", [((0, 3), "f"), ((0,), "i")], {}, (0,), True),
    ("poly1", "poly1_cross_entropy", [((0, 3), "f"), ((0,), "i")], {}, (0,), True),
    ("bce", "binary_cross_entropy", [((0, 3), "f"), ((0, 3), "f")], {}, (0, 3), False),
    ("focal", "focal", [((0, 3), "f"), ((0, 3), "f")], {}, (0, 3), False),
    ("focal-cat", "focal", [((0, 3), "f"), ((0,), "i")], {"kind": "categorical"}, (0,), False),
    ("kl_div", "kl_div", [((0, 3), "f"), ((0, 3), "f")], {}, (0,), False),
    ("poisson_nll", "poisson_nll", [((0, 3), "f"), ((0, 3), "f")], {}, (0, 3), False),
    ("gaussian_nll", "gaussian_nll", [((0, 3), "f"), ((0, 3), "f"), ((0, 3), "f")], {}, (0, 3), False),
]


@pytest.mark.parametrize(("backend", "dtype"), F32_PARAMS)
def test_empty_batch(backend, dtype):
    # none: an empty array; sum: 0; mean: NaN (0/0) for losses without ignore_index, and the
    # if_all_ignored policy for those with it (an empty batch has no valid position)
    for name, loss, specs, kw, none_shape, has_policy in _EMPTY:
        xs = [backend.asarray(np.zeros(shape, dtype=np.int64) if kind == "i" else np.full(shape, 0.5, dtype))
              for shape, kind in specs]

        def call(reduction, _loss=loss, _xs=xs, _kw=kw, **extra):
            return getattr(polyloss, _loss)(*_xs, reduction=reduction, **_kw, **extra)

        got = backend.to_numpy(call("none"))
        assert got.shape == none_shape and got.dtype == np.dtype(dtype), (name, got.shape, got.dtype)
        got = backend.to_numpy(call("sum"))
        assert got.shape == () and float(got) == 0.0, (name, got)
        if has_policy:
            assert float(backend.to_numpy(call("mean", if_all_ignored="zero"))) == 0.0, name
            assert np.isnan(backend.to_numpy(call("mean", if_all_ignored="nan"))), name
        else:
            assert np.isnan(backend.to_numpy(call("mean"))), name


def test_batch_of_one_is_covered():
    # the b1 layout (shape (1, 5)) runs through every cross_entropy / nll variant above
    b1 = [s for s in SPECS if "-b1-" in s]
    assert len(b1) >= 20 and all(cases(s, "float64")[0].arrays["pred"].shape[0] == 1 for s in b1)


# ---- named options by hand -----------------------------------------------------------------------

@pytest.mark.parametrize(("backend", "dtype"), F32_PARAMS)
def test_bce_log_clamp_options(backend, dtype):
    # p = 0 and p = 1 against y = 1 and y = 0: the clamped log gives exactly -log_clamp
    p = np.array([0.0, 1.0, 1e-3, 0.5]).astype(dtype)
    y = np.array([1.0, 0.0, 1.0, 1.0]).astype(dtype)
    P, Y = backend.asarray(p), backend.asarray(y)
    per5 = -np.maximum(np.log(_f64(p[2:])), -5.0)
    for clamp, want in ((-100.0, [100.0, 100.0]), (-5.0, [5.0, 5.0]), (None, [np.inf, np.inf]),
                        (-np.inf, [np.inf, np.inf])):
        with np.errstate(divide="ignore"):
            rest = -np.log(_f64(p[2:])) if clamp != -5.0 else per5
        got = backend.to_numpy(polyloss.binary_cross_entropy(P, Y, log_clamp=clamp, reduction="none"))
        expected = np.concatenate([want, rest])
        assert_close(got, expected, rtol(dtype, 1) * np.abs(np.where(np.isfinite(expected), expected, 0)),
                     f"log_clamp={clamp}")
    # the default is -100
    got = backend.to_numpy(polyloss.binary_cross_entropy(P[:2], Y[:2], reduction="none"))
    np.testing.assert_array_equal(got, np.array([100.0, 100.0], dtype))


@pytest.mark.parametrize(("backend", "dtype"), F32_PARAMS)
def test_kl_zero_targets_contribute_exactly_zero(backend, dtype):
    # p = 0 against q = 0, q = 0.5, q = 1 and a log-probability of -inf: each term is 0
    target = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).astype(dtype)
    probs = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5]]).astype(dtype)
    with np.errstate(divide="ignore"):
        logq = np.log(_f64(probs)).astype(dtype)
    T = backend.asarray(target)
    for kind, pred in (("probs", probs), ("log_probs", logq)):
        got = backend.to_numpy(polyloss.kl_div(backend.asarray(pred), T, pred_kind=kind, reduction="none"))
        # row 0: 1 * log(1 / 1) = 0; row 1: 2 * 0.5 * log(0.5 / 0.5) = 0
        np.testing.assert_array_equal(got, np.zeros(2, dtype), err_msg=kind)
    # and with log targets: log 0 = -inf is a zero target
    with np.errstate(divide="ignore"):
        log_t = np.log(_f64(target)).astype(dtype)
    got = backend.to_numpy(polyloss.kl_div(backend.asarray(logq), backend.asarray(log_t), log_target=True,
                                           reduction="none"))
    np.testing.assert_array_equal(got, np.zeros(2, dtype), err_msg="log_target with -inf")


@pytest.mark.parametrize(("backend", "dtype"), AUTOGRAD_F32)
def test_kl_zero_targets_have_zero_gradient(backend, dtype):
    # d/dq of a term with p = 0 is 0, also where q = 0 (probs) or log q = -inf is not used
    target = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).astype(dtype)
    pred = np.array([[0.0, 0.5, 0.5], [0.25, 0.0, 0.75]]).astype(dtype)
    _, g = backend.value_and_grad(lambda p, t: polyloss.kl_div(p, t, pred_kind="probs", reduction="sum"),
                                  [pred, target], 0)
    want = np.array([[0.0, -2.0, 0.0], [-2.0, 0.0, -0.5 / 0.75]])
    assert_close(g, want, rtol(dtype, 6) * np.abs(want) + 1e-300, "kl probs grad with zeros")


# ---- extreme logits: finite values and gradients, float32 and float16/bfloat16 ---------------------

_Z_EXTREME = np.array([
    [100.0, -100.0, 0.0],
    [1e4, -1e4, 0.0],
    [-1e4, 1e4, 1e4],
    [7.0, 7.0, 7.0],
    [-1e4, -1e4, -1e4],
])
_T_EXTREME = np.array([1, 1, 0, 2, 0])
_Y_EXTREME = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


def _extreme_cases(dtype) -> list[tuple[str, Case]]:
    ndt = _np_dtype(dtype)
    z = _Z_EXTREME.astype(ndt)
    t = _T_EXTREME.astype(np.int64)
    y = _Y_EXTREME.astype(ndt)
    q = (_Y_EXTREME / _Y_EXTREME.sum(-1, keepdims=True)).astype(ndt)  # probability targets
    lp = (_Z_EXTREME - _logsumexp(_Z_EXTREME)).astype(ndt)
    out = []

    def add(name, loss, arrays, kw, per_fn, class_axis=None, fd=False):
        normalizer = "valid_count" if loss in ("cross_entropy", "nll", "poly1_cross_entropy") else "count"
        for r in ("none", "mean"):  # (a float16 sum of these could overflow 65504 legitimately)
            out.append((f"{name}-{r}", make_case(name, loss, arrays, 2, kw, dtype, per_fn, reduction=r,
                                                 sw_mode=None, normalizer=normalizer, policy="zero",
                                                 class_axis=class_axis, fd=fd)))

    add("ce-int", "cross_entropy", {"pred": z, "target": t}, {},
        lambda a: ce_hand(a["pred"], a["target"]), class_axis=-1)
    add("ce-int-smooth", "cross_entropy", {"pred": z, "target": t}, {"label_smoothing": 0.1},
        lambda a: ce_hand(a["pred"], a["target"], label_smoothing=0.1), class_axis=-1)
    add("ce-prob-smooth", "cross_entropy", {"pred": z, "target": q}, {"label_smoothing": 0.1},
        lambda a: ce_hand(a["pred"], a["target"], label_smoothing=0.1), class_axis=-1)
    add("nll", "nll", {"pred": lp, "target": t}, {},
        lambda a: ce_hand(a["pred"], a["target"], inp="log_probs"), class_axis=-1)
    add("poly1", "poly1_cross_entropy", {"pred": z, "target": t}, {},
        lambda a: poly1_hand(a["pred"], a["target"]), class_axis=-1)
    add("bce-logits", "binary_cross_entropy", {"pred": z, "target": y}, {"from_logits": True},
        lambda a: bce_hand(a["pred"], a["target"], from_logits=True))
    add("bce-logits-pw", "binary_cross_entropy", {"pred": z, "target": y},
        {"from_logits": True, "pos_weight": 2.0, "label_smoothing": 0.1},
        lambda a: bce_hand(a["pred"], a["target"], from_logits=True, pos_weight=2.0, label_smoothing=0.1))
    for gamma in (2.0, 0.5):
        add(f"focal-binary-g{gamma}", "focal", {"pred": z, "target": y}, {"gamma": gamma, "alpha": 0.25},
            lambda a, g=gamma: focal_binary_hand(a["pred"], a["target"], gamma=g, alpha=0.25), fd=True)
        add(f"focal-cat-g{gamma}", "focal", {"pred": z, "target": t}, {"gamma": gamma, "kind": "categorical"},
            lambda a, g=gamma: focal_categorical_hand(a["pred"], a["target"], gamma=g), class_axis=-1,
            fd=True)
    add("kl-logits", "kl_div", {"pred": z, "target": q}, {"pred_kind": "logits"},
        lambda a: kl_hand(a["pred"], a["target"], pred_kind="logits"), class_axis=-1)
    return out


_EXTREME_IDS = [name for name, _ in _extreme_cases("float64")]
_EXTREME_GRAD_IDS = [name for name in _EXTREME_IDS if name.endswith("-mean")]


@functools.cache
def _extreme(dtype) -> dict:
    return dict(_extreme_cases(dtype))


def test_extreme_oracle_by_hand():
    # CE rows: 200, 2e4, 2e4 + log 2, log 3, log 3 (to float64 rounding)
    want = [200.0, 2e4, 2e4 + math.log(2.0), math.log(3.0), math.log(3.0)]
    # (the all -1e4 row cancels log-sum-exp against -1e4: good to ~eps * 1e4 absolutely)
    np.testing.assert_allclose(_extreme("float64")["ce-int-none"].want, want, rtol=1e-15,
                               atol=4 * EPS["float64"] * 1e4)


_EXTREME_VALUE_PARAMS = [pytest.param(b, "float32", id=f"{b.name}-float32") for b in INSTALLED] + LOWP_LEAN
_EXTREME_GRAD_PARAMS = [pytest.param(b, "float32", id=f"{b.name}-float32") for b in AUTOGRAD] + \
    LOWP_AUTOGRAD_LEAN


@pytest.mark.parametrize("name", _EXTREME_IDS)
@pytest.mark.parametrize(("backend", "dtype"), _EXTREME_VALUE_PARAMS)
def test_extreme_logits_values(backend, dtype, name):
    backend.setup()
    case = _extreme(dtype)[name]
    xs = [_lowp_asarray(backend, a) for a in case.arrays.values()]
    got, got_dtype = _out(backend, case(*xs))
    what = case.what(backend.name, dtype) + " " + name
    assert got_dtype == dtype, f"{what}: {got_dtype}"
    assert np.all(np.isfinite(got)), f"{what}: {got}"
    assert_close(got, case.want, value_tol(case, dtype), what)


@pytest.mark.parametrize("name", _EXTREME_GRAD_IDS)
@pytest.mark.parametrize(("backend", "dtype"), _EXTREME_GRAD_PARAMS)
def test_extreme_logits_grads(backend, dtype, name):
    backend.setup()
    case = _extreme(dtype)[name]
    arrays = list(case.arrays.values())
    if dtype == "float32":
        value, g = backend.value_and_grad(case, arrays, 0)
        gdt = g.dtype.name
    else:
        value, _, g, gdt = _lowp_value_and_grad(backend, case, arrays)
    what = case.what(backend.name, dtype) + " " + name
    assert gdt == dtype, f"{what}: grad dtype {gdt}"
    assert np.all(np.isfinite(value)), f"{what}: value {value}"
    assert np.all(np.isfinite(g)), f"{what}: gradient {g}"
    if case.grad is not None:  # the analytic gradient: softmax - onehot and friends
        want, tol = grad_tol(case, dtype)
        assert_close(g, want, tol, "d/dpred " + what)


def _prob_edge_calls():
    p = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])
    y = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    t = np.array([0, 0])
    return [
        ("bce", lambda a, b: polyloss.binary_cross_entropy(a, b, reduction="sum"), p, y),
        ("focal", lambda a, b: polyloss.focal(a, b, from_logits=False, reduction="sum"), p, y),
        ("ce", lambda a, b: polyloss.cross_entropy(a, b, from_logits=False, reduction="sum"),
         p / p.sum(-1, keepdims=True), t),
        ("focal-cat", lambda a, b: polyloss.focal(a, b, from_logits=False, kind="categorical",
                                                  reduction="sum"), p / p.sum(-1, keepdims=True), t),
    ]


@pytest.mark.parametrize(("backend", "dtype"), _EXTREME_GRAD_PARAMS)
def test_probabilities_at_zero_and_one(backend, dtype):
    # p = 0 and p = 1 exactly: clamped values (100 per clamped log) and finite gradients
    backend.setup()
    ndt = _np_dtype(dtype)
    for name, fn, p, t in _prob_edge_calls():
        arrays = [p.astype(ndt), t.astype(ndt) if t.dtype.kind == "f" else t]
        if dtype == "float32":
            value, g = backend.value_and_grad(fn, arrays, 0)
        else:
            value, _, g, _ = _lowp_value_and_grad(backend, fn, arrays)
        assert np.isfinite(value) and np.all(np.isfinite(g)), (name, value, g)
    # the values, by hand: bce row 0 = 100 + 100 + log 2, row 1 = 0 + 100 + log(4/3)
    P = _lowp_asarray(backend, np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]]).astype(ndt))
    Y = _lowp_asarray(backend, np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]).astype(ndt))
    got, _ = _out(backend, polyloss.binary_cross_entropy(P, Y, reduction="none"))
    want = np.array([[100.0, 100.0, math.log(2.0)], [0.0, 100.0, math.log(4 / 3)]])
    assert_close(got, want, LOWP_EPS.get(dtype, 8 * EPS32) * want, "bce at p in {0, 1}")


# ---- compiled: jax.jit, tf.function, torch.compile equal eager and the oracle ---------------------

# one call of every loss and input kind, traced once per backend: (spec, which of its cases)
BUNDLE = [("ce-reductions-4d-int", 6), ("ce-2d-prob-logits-cw0-ls0.1-ignNone", 1),
          ("nll-4d-int-log_probs-cw0-ls0.0-ign1", 1), ("poly1-int-4d-e2.5-ign-100-ls0.1", 1),
          ("focal-cat-logits-prob-avector-2d-g2.0-ls0.0", 1), ("bce-probs-pwscalar-ls0.0-2d", 0),
          ("focal-binary-logits-a0.25-g0.5-ls0.1", 1), ("kl-log_probs-lt1-4d", 0),
          ("poisson-log0-full1-3d-eps0.001", 1), ("gaussian-var_short-full1-eps0.5-3d", 1)]


def _bundle(dtype):
    """The bundle's cases as one function of all their arrays, returning one flat vector."""
    cs = [cases(sid, dtype)[k] for sid, k in BUNDLE]
    counts = [len(c.arrays) for c in cs]

    def fn(*xs):
        xp = polyloss.array_namespace(xs[0])
        outs, k = [], 0
        for c, m in zip(cs, counts, strict=True):
            outs.append(xp.reshape(c(*xs[k:k + m]), (-1,)))
            k += m
        return xp.concat(outs)

    arrays = [a for c in cs for a in c.arrays.values()]
    return cs, fn, arrays


@pytest.mark.compiled
@pytest.mark.parametrize("dtype", ["float32"])
def test_compiled_equals_eager_and_oracle(compiled_backend, dtype):
    b = compiled_backend
    if b.name == "torch":
        import torch

        torch._dynamo.reset()
    cs, fn, arrays = _bundle(dtype)
    got = b.run_compiled(fn, arrays)
    eager = b.to_numpy(fn(*[b.asarray(a) for a in arrays]))
    assert got.dtype == np.dtype(dtype) and eager.dtype == np.dtype(dtype)
    k = 0
    for c in cs:
        m = c.want.size
        what = c.what(b.name, dtype) + f" compiled ({b.compiled})"
        tol = np.broadcast_to(value_tol(c), c.want.shape).reshape(-1)
        assert_close(got[k:k + m], c.want.reshape(-1), tol, what + " vs oracle")
        assert_close(got[k:k + m], eager[k:k + m], 2 * tol, what + " vs eager")
        k += m
    assert k == got.size


@pytest.mark.compiled
def test_jax_grad_under_jit_equals_oracle():
    require("jax")
    import jax
    import jax.numpy as jnp

    for sid, k in (("ce-reductions-4d-int", 7), ("kl-logits-lt1-4d", 1)):
        for case in cases(sid, "float64")[k:k + 1]:
            xs = [jnp.asarray(a) for a in case.arrays.values()]
            g = jax.jit(jax.grad(lambda p, *r, _c=case: jnp.sum(_c(p, *r))))(*xs)
            want, tol = grad_tol(case, "float64")
            assert_close(np.asarray(g), want, tol, f"jit(grad) {case.what('jax')}")


@pytest.mark.compiled
def test_jax_jit_out_of_range_labels_give_nan():
    # documented: under jax.jit labels cannot be checked, so a label outside [0, C) (other
    # than ignore_index) gives NaN at its position, and the other positions are unaffected
    require("jax")
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(8)
    z = rng.standard_normal((5, 4))
    t = np.array([0, 4, -1, 3, -100])
    f = jax.jit(lambda a, b: polyloss.cross_entropy(a, b, ignore_index=-100, reduction="none"))
    got = np.asarray(f(jnp.asarray(z), jnp.asarray(t)))
    assert np.isnan(got[1]) and np.isnan(got[2]), got
    assert got[4] == 0.0, got
    want = ce_hand(z[[0, 3]], t[[0, 3]]).loss
    assert_close(got[[0, 3]], want, 1e-12 * want, "in-range positions under jit")
    mean = np.asarray(jax.jit(lambda a, b: polyloss.cross_entropy(a, b, ignore_index=-100))(
        jnp.asarray(z), jnp.asarray(t)))
    assert np.isnan(mean)
    # without ignore_index, -100 is out of range too
    got = np.asarray(jax.jit(lambda a, b: polyloss.cross_entropy(a, b, reduction="none"))(
        jnp.asarray(z), jnp.asarray(t)))
    assert np.isnan(got[4]) and np.all(np.isfinite(got[[0, 3]])), got


# ---- the seeds' worked numbers ----------------------------------------------------------------------

# float16 too (bfloat16 holds 0.85 as 0.8516: too coarse for three decimals)
_SEED_PARAMS = [pytest.param(b, dt, id=f"{b.name}-{dt}") for b in INSTALLED for dt in b.dtypes] + [
    p for p in LOWP_PARAMS if p.values[1] == "float16"]


@pytest.mark.parametrize(("backend", "dtype"), _SEED_PARAMS)
def test_seed000_bce_and_focal(backend, dtype):
    # ../shared/seeds/000, "Loss Functions for Classification", example: label 1, predicted
    # probability 0.85: BCE = -log(0.85) ~ 0.162, FL(gamma=2) = -(1 - 0.85)^2 log(0.85) ~ 0.004;
    # at 0.55: 0.598 and 0.121. The document gives three decimals: 0.598, 0.004 and 0.121 are
    # rounded, but -log(0.85) = 0.16252 is written 0.162 (cut, not rounded), so each number is
    # matched to within one unit of its last decimal rather than by round().
    backend.setup()
    ndt = _np_dtype(dtype)
    y = backend.asarray(np.ones(1).astype(ndt))
    for p, bce, fl in ((0.85, 0.162, 0.004), (0.55, 0.598, 0.121)):
        pred = backend.asarray(np.full(1, p).astype(ndt))
        logit = backend.asarray(np.full(1, math.log(p / (1 - p))).astype(ndt))
        for reduction in ("mean", "sum", "none"):
            got = {
                "bce": _out(backend, polyloss.binary_cross_entropy(pred, y, reduction=reduction)),
                "focal": _out(backend, polyloss.focal(pred, y, gamma=2.0, from_logits=False,
                                                      reduction=reduction)),
                # the same numbers from the logit log(p / (1 - p))
                "bce-logit": _out(backend, polyloss.binary_cross_entropy(logit, y, from_logits=True,
                                                                         reduction=reduction)),
                "focal-logit": _out(backend, polyloss.focal(logit, y, gamma=2.0, reduction=reduction)),
            }
            for name, (value, dt) in got.items():
                want = fl if name.startswith("focal") else bce
                assert dt == dtype and value.shape == ((1,) if reduction == "none" else ()), (name, dt)
                assert abs(float(value.reshape(-1)[0]) - want) <= 1e-3, (p, name, reduction, value)
    # and in float64 the formulas' own values, to the document's digits when rounded
    if dtype == "float64":
        got = _out(backend, polyloss.binary_cross_entropy(backend.asarray(np.full(1, 0.55)), y))[0]
        assert round(float(got), 3) == 0.598
        got = _out(backend, polyloss.focal(backend.asarray(np.full(1, 0.55)), y, from_logits=False))[0]
        assert round(float(got), 3) == 0.121
        got = _out(backend, polyloss.focal(backend.asarray(np.full(1, 0.85)), y, from_logits=False))[0]
        assert round(float(got), 3) == 0.004
        got = _out(backend, polyloss.binary_cross_entropy(backend.asarray(np.full(1, 0.85)), y))[0]
        assert math.floor(float(got) * 1000) / 1000 == 0.162


# ---- bad input ---------------------------------------------------------------------------------------

_LABEL_CHECKED = [b for b in INSTALLED if b.name != "dask"]  # a lazy Dask graph's values are not read


def _label_calls():
    return [
        ("cross_entropy", lambda z, t, **k: polyloss.cross_entropy(z, t, **k)),
        ("nll", lambda z, t, **k: polyloss.nll(z, t, **k)),
        ("poly1_cross_entropy", lambda z, t, **k: polyloss.poly1_cross_entropy(z, t, **k)),
        ("focal-categorical", lambda z, t, **k: polyloss.focal(z, t, kind="categorical", **k)),
    ]


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in _LABEL_CHECKED])
def test_labels_out_of_range(backend):
    backend.setup()
    z = backend.asarray(np.zeros((4, 3)))
    z4 = backend.asarray(np.zeros((2, 3, 2, 2)))
    for name, fn in _label_calls():
        has_ignore = name != "focal-categorical"
        for bad in (3, -1, 7, -100):
            t = np.array([0, 1, bad, 2])
            with pytest.raises(ValueError, match="target"):
                fn(z, backend.asarray(t))
            if has_ignore and bad != -100:  # another value is ignored, bad is still bad
                with pytest.raises(ValueError, match="target"):
                    fn(z, backend.asarray(t), ignore_index=-100)
        t4 = np.zeros((2, 2, 2), dtype=np.int64)
        t4[1, 1, 0] = 3
        with pytest.raises(ValueError, match="target"):
            fn(z4, backend.asarray(t4), axis=1)
        if has_ignore:  # the ignored value itself is fine, in range or not
            for ignore in (-100, 1, 5):
                t = np.array([0, ignore, 2, 0])
                out = fn(z, backend.asarray(t), ignore_index=ignore)
                assert np.isfinite(backend.to_numpy(out))


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in INSTALLED])
def test_target_of_the_wrong_shape(backend):
    backend.setup()
    z = backend.asarray(np.zeros((6, 5)))
    probs = [(6, 4), (5, 5), (6, 5, 1), (6, 1), (1, 5)]
    for name, fn in _label_calls() + [("kl_div", lambda a, b, **k: polyloss.kl_div(a, b, **k))]:
        for shape in probs:
            with pytest.raises(ValueError):
                fn(z, backend.asarray(np.full(shape, 0.2)))
        if name != "kl_div":
            for shape in ((5,), (6, 1), (1,)):  # integer labels must have pred's shape minus axis
                with pytest.raises(ValueError):
                    fn(z, backend.asarray(np.zeros(shape, dtype=np.int64)))
    z4 = backend.asarray(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError):  # probabilities of the 4-d shape, class axis moved
        polyloss.cross_entropy(z4, backend.asarray(np.full((2, 2, 2, 3), 0.2)), axis=1)
    with pytest.raises(ValueError):
        polyloss.cross_entropy(z4, backend.asarray(np.zeros((2, 3, 2), dtype=np.int64)), axis=1)
    # the elementwise losses: no broadcasting of pred against target
    for fn in (polyloss.binary_cross_entropy, polyloss.poisson_nll,
               lambda a, b: polyloss.focal(a, b)):
        with pytest.raises(ValueError):
            fn(z, backend.asarray(np.full((6, 1), 0.5)))


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in INSTALLED])
def test_wrong_length_weights(backend):
    backend.setup()
    z = backend.asarray(np.zeros((4, 3)))
    t = backend.asarray(np.array([0, 1, 2, 0]))
    for n in (2, 4):
        cw = backend.asarray(np.ones(n))
        for fn in (polyloss.cross_entropy, polyloss.nll):
            with pytest.raises(ValueError, match="class_weight"):
                fn(z, t, class_weight=cw)
        with pytest.raises(ValueError, match="alpha"):
            polyloss.focal(z, t, kind="categorical", alpha=backend.asarray(np.full(n, 0.25)))
        with pytest.raises(ValueError, match="pos_weight"):
            polyloss.binary_cross_entropy(z, backend.asarray(np.zeros((4, 3))), from_logits=True,
                                          pos_weight=backend.asarray(np.ones(n)))
    with pytest.raises(ValueError, match="class_weight"):
        polyloss.cross_entropy(z, t, class_weight=backend.asarray(np.ones((3, 1))))


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in INSTALLED])
def test_gaussian_var_of_the_wrong_shape(backend):
    backend.setup()
    x = backend.asarray(np.zeros((4, 3)))
    # accepted: (4, 3), (4,), and one axis of size 1: (4, 1) or (1, 3) (see the specs)
    for vshape in ((3,), (4, 2), (1, 1), (4, 3, 1), (2,), (1, 4, 3)):
        with pytest.raises(ValueError, match="var"):
            polyloss.gaussian_nll(x, x, backend.asarray(np.ones(vshape)))


def _all_losses(backend, pred_dtype="float64"):
    """Each loss called on valid arrays (pred of ``pred_dtype``), keyword arguments added."""
    def P(shape=(4, 3)):
        return backend.asarray(np.full(shape, 0.25).astype(pred_dtype))

    t_int = backend.asarray(np.array([0, 1, 2, 0]))
    t_f = backend.asarray(np.full((4, 3), 0.25))
    return {
        "binary_cross_entropy": lambda **k: polyloss.binary_cross_entropy(P(), t_f, **k),
        "cross_entropy": lambda **k: polyloss.cross_entropy(P(), t_int, **k),
        "nll": lambda **k: polyloss.nll(P(), t_int, **k),
        "focal": lambda **k: polyloss.focal(P(), t_f, **k),
        "focal-categorical": lambda **k: polyloss.focal(P(), t_int, kind="categorical", **k),
        "poly1_cross_entropy": lambda **k: polyloss.poly1_cross_entropy(P(), t_int, **k),
        "kl_div": lambda **k: polyloss.kl_div(P(), t_f, **k),
        "poisson_nll": lambda **k: polyloss.poisson_nll(P(), t_f, **k),
        "gaussian_nll": lambda **k: polyloss.gaussian_nll(P(), t_f, backend.asarray(np.ones((4, 3))), **k),
    }


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in INSTALLED])
def test_integer_pred(backend, dtype):
    backend.setup()
    for name, call in _all_losses(backend, dtype).items():
        with pytest.raises(TypeError, match="pred|log_probs"):  # nll's first argument is log_probs
            call()
            pytest.fail(f"{name}: no TypeError")


@pytest.mark.parametrize(("arg", "bad"), [
    ("reduction", "avg"), ("reduction", "Mean"), ("reduction", None), ("reduction", "batch_mean"),
    ("normalizer", "bogus"), ("normalizer", "COUNT"), ("normalizer", None),
])
def test_invalid_reduction_or_normalizer(arg, bad):
    from polyloss.parity.backends import BACKENDS

    for name, call in _all_losses(BACKENDS["numpy"]).items():
        with pytest.raises(ValueError) as info:
            call(**{arg: bad})
        assert arg in str(info.value) and repr(bad) in str(info.value), (name, str(info.value))


@pytest.mark.parametrize(("loss", "arg", "bad"), [
    ("focal", "kind", "multiclass"), ("focal", "kind", "Binary"), ("focal", "kind", None),
    ("kl_div", "pred_kind", "log_prob"), ("kl_div", "pred_kind", "probabilities"),
    ("kl_div", "pred_kind", None),
    ("cross_entropy", "if_all_ignored", "ignore"), ("nll", "if_all_ignored", None),
    ("poly1_cross_entropy", "if_all_ignored", "NaN"),
])
def test_invalid_option_strings(loss, arg, bad):
    from polyloss.parity.backends import BACKENDS

    call = _all_losses(BACKENDS["numpy"])[loss]
    with pytest.raises(ValueError) as info:
        call(**{arg: bad})
    assert arg in str(info.value), str(info.value)


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in INSTALLED])
def test_valid_calls_of_the_error_helpers_work(backend):
    # the calls the error tests break are valid as given (so each error is the one provoked)
    backend.setup()
    for name, call in _all_losses(backend).items():
        out = backend.to_numpy(call())
        assert out.shape == () and np.isfinite(out), name
