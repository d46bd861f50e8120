"""``polyloss.gluon``'s classification losses against the real ``mxnet.gluon.loss`` 1.9.1.

``SigmoidBinaryCrossEntropyLoss`` (alias ``SigmoidBCELoss``), ``SoftmaxCrossEntropyLoss``
(alias ``SoftmaxCELoss``), ``KLDivLoss`` and ``PoissonNLLLoss``. Expected values and
gradients always come from Gluon itself, run in the test on ``mx.nd.NDArray`` values (what
Gluon code passes) built from the same NumPy bits, with their dtype kept. Covered:
``from_sigmoid``, ``pos_weight`` (a one-element array and per class), ``sparse_label`` both
ways (float and int32 class indices), ``from_logits``, the class ``axis`` (e.g. ``axis=1`` on
``(N, C, T)``), the scalar ``weight``, ``sample_weight`` per sample and of the loss's full
shape, ``batch_axis``, ``compute_full``, ``epsilon``, float32/float64, probabilities 0 and 1
(Gluon adds 1e-12 inside its logs), logits of +-100, a batch of one, the same mirror on every
installed array type, gradients (``autograd.record``) on every autograd backend, the
signatures and aliases, the seed document's two examples, and the deliberate differences
(``SigmoidBCE``'s gradient at ``pred == 0``, out-of-range class indices, ``compute_full`` with
zero targets, the empty batch).

MXNet 1.9.1 needs NumPy < 2; in the modern environment this module skips.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from _native import (
    KINDS,
    D,
    KnownBugs,
    N,
    T,
    assert_close,
    kind_params,
    require_module,
    rtol_for,
    run_on,
    to_numpy,
)

mx = require_module("mxnet")  # applies polyloss's numpy.bool shim before importing mxnet
from mxnet import autograd  # noqa: E402
from mxnet.gluon import loss as gloss  # noqa: E402

import polyloss.gluon as pg  # noqa: E402

pytestmark = [pytest.mark.native]

EPS32 = float(np.finfo(np.float32).eps)

BCE, SCE, KL, POISSON = ("SigmoidBinaryCrossEntropyLoss", "SoftmaxCrossEntropyLoss", "KLDivLoss",
                         "PoissonNLLLoss")
LOSS_NAMES = [BCE, SCE, KL, POISSON]

# MXNet's float32 CPU kernels for ``log_softmax`` and ``Activation(softrelu)`` are approximate
# (measured in MXNet 1.9.1 against float64: log_softmax is off by up to 4.4e-6 *absolute* per
# log-probability, whatever the logits' scale, i.e. a relative error of up to 0.3% where
# log p is near 0; softrelu(x) is off by up to ulp(|x|) absolute, e.g. -1.9e-6 at x = -20
# where the true value is 2.1e-9). The float64 kernels are accurate to 1e-15. The mirror is
# accurate in both dtypes, so float32 comparisons of these losses carry an absolute
# tolerance of the native's own error (scaled by the weights that multiply it); it is
# computed and explained per loss in ``tolerance`` below. 1e-5 covers 4.4e-6 with margin.
MX_LOG_SOFTMAX_F32_ABS = 1e-5


# ---- building the inputs (in NumPy, cast there) -------------------------------------------------

class Case:
    """One call: constructor keywords, the arrays, and the call keywords."""

    def __init__(self, name, ctor, pred, label, sw=None, pw=None, call=None):
        defaults = {p.name: p.default for p in inspect.signature(getattr(gloss, name)).parameters.values()
                    if p.default is not inspect.Parameter.empty}
        self.name, self.ctor, self.call = name, {**defaults, **ctor}, dict(call or {})
        self.pred, self.label, self.sw, self.pw = pred, label, sw, pw

    @property
    def arrays(self):
        return [a for a in (self.pred, self.label, self.sw, self.pw) if a is not None]

    def __repr__(self):
        return f"{self.name}({self.ctor}) pred{self.pred.shape} call={self.call}"


def _softmax(x, axis):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    x = x.astype(np.float64)
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _logits(shape, rng, scale=2.0):
    x = rng.normal(0.0, scale, size=shape)
    x[np.abs(x) < 1e-3] = 0.5  # SigmoidBCE's gradient at exactly 0 is a documented difference
    return x


def _sample_weight(kind, loss_shape, batch_axis, rng):
    """``per_sample``: one weight per sample, 1 on every other axis; ``full``: the shape of
    the loss before Gluon's mean (for ``SoftmaxCrossEntropyLoss`` the class axis is 1)."""
    if kind is None:
        return None
    shape = loss_shape if kind == "full" else tuple(
        s if a == batch_axis else 1 for a, s in enumerate(loss_shape))
    w = rng.uniform(0.0, 3.0, size=shape)
    w[rng.random(shape) < 0.2] = 0.0
    return w


# layouts: (shape, batch_axis, class axis)
LAYOUTS = {
    "2d": ((N, D), 0, -1),
    "3d": ((N, T, D), 0, -1),
    "axis1": ((N, D, T), 0, 1),  # classes on axis 1 of (N, C, T)
    "ba1": ((D, N), 1, 0),  # the batch on axis 1, classes on axis 0
    "tnc": ((T, N, D), 1, -1),  # time-major: (T, N, C), batch on axis 1
    "batch1": ((1, D), 0, -1),
}


def _cast(case, dtype):
    case.pred = case.pred.astype(dtype)
    case.label = case.label.astype(dtype) if case.label.dtype.kind == "f" else case.label
    case.sw = None if case.sw is None else case.sw.astype(dtype)
    case.pw = None if case.pw is None else case.pw.astype(dtype)
    return case


def bce_case(dtype, rng, *, from_sigmoid=False, pos_weight=None, sw=None, weight=None,
             layout="2d", edge=None):
    """Labels are a mix of hard {0, 1} and soft values. ``edge``: ``"extreme"`` puts logits
    of +-100 and +-30 in, ``"01"`` probabilities of exactly 0 and 1 (``from_sigmoid``)."""
    shape, batch_axis, caxis = LAYOUTS[layout]
    label = np.where(rng.random(shape) < 0.5, rng.integers(0, 2, size=shape), rng.random(shape))
    if from_sigmoid:
        pred = rng.uniform(0.001, 0.999, size=shape)
        if edge == "01":
            pred = np.where(rng.random(shape) < 0.4, rng.integers(0, 2, size=shape), pred)
    else:
        pred = _logits(shape, rng)
        if edge == "extreme":
            big = rng.choice([-100.0, 100.0, -30.0, 30.0], size=shape)
            pred = np.where(rng.random(shape) < 0.5, big, pred)
    pw = None
    if pos_weight == "scalar":
        pw = np.array([rng.uniform(0.2, 3.0)])
    elif pos_weight == "per_class":
        c = caxis % len(shape)
        pw = rng.uniform(0.2, 3.0, size=tuple(s if a == c else 1 for a, s in enumerate(shape)))
        if layout == "3d":
            pw = pw.reshape(shape[c])  # (C,): broadcast from the trailing axis
    ctor = {"from_sigmoid": from_sigmoid, "weight": weight, "batch_axis": batch_axis}
    return _cast(Case(BCE, ctor, pred, label, _sample_weight(sw, shape, batch_axis, rng), pw), dtype)


def sce_case(dtype, rng, *, sparse_label=True, from_logits=False, sw=None, weight=None,
             layout="2d", edge=None, int_labels=False):
    """Sparse labels are whole numbers in ``pred``'s float dtype (what Gluon code passes) or
    int32 (``int_labels``). Dense labels are distributions with some one-hot rows (exact 0
    and 1). ``from_logits``: ``pred`` is a log-softmax. ``edge="extreme"``: logits of +-100;
    ``edge="raw"``: raw logits with ``from_logits=True`` (Gluon's loss is then negative for
    positive picked logits)."""
    shape, batch_axis, caxis = LAYOUTS[layout]
    c = caxis % len(shape)
    pred = _logits(shape, rng)
    if edge == "extreme":
        pred = np.where(rng.random(shape) < 0.5, rng.choice([-100.0, 100.0], size=shape), pred)
    if from_logits and edge != "raw":
        pred = _log_softmax(pred, c)
    label_shape = shape[:c] + shape[c + 1:]
    if sparse_label:
        label = rng.integers(0, shape[c], size=label_shape)
        label = label.astype(np.int32) if int_labels else label.astype(np.float64)
    else:
        label = _softmax(rng.normal(0.0, 1.5, size=shape), c)
        hot = np.moveaxis(np.eye(shape[c])[rng.integers(0, shape[c], size=label_shape)], -1, c)
        label = np.where(np.expand_dims(rng.random(label_shape) < 0.3, c), hot, label)
    loss_shape = shape[:c] + (1,) + shape[c + 1:]
    ctor = {"axis": caxis, "sparse_label": sparse_label, "from_logits": from_logits,
            "weight": weight, "batch_axis": batch_axis}
    return _cast(Case(SCE, ctor, pred, label, _sample_weight(sw, loss_shape, batch_axis, rng)),
                 dtype)


def kl_case(dtype, rng, *, from_logits=True, sw=None, weight=None, layout="2d", edge=None):
    """``label`` is a distribution along the class axis with some exact zeros and one-hot
    rows (Gluon's ``log(label + 1e-12)``); ``pred`` a log-softmax (``from_logits``) or raw
    logits (``edge="extreme"``: some of +-100)."""
    shape, batch_axis, caxis = LAYOUTS[layout]
    c = caxis % len(shape)
    label = _softmax(rng.normal(0.0, 1.5, size=shape), c)
    label = np.where(rng.random(shape) < 0.15, 0.0, label)
    label_shape = shape[:c] + shape[c + 1:]
    hot = np.moveaxis(np.eye(shape[c])[rng.integers(0, shape[c], size=label_shape)], -1, c)
    label = np.where(np.expand_dims(rng.random(label_shape) < 0.25, c), hot, label)
    pred = rng.normal(0.0, 2.0, size=shape)
    if edge == "extreme":
        pred = np.where(rng.random(shape) < 0.4, rng.choice([-100.0, 100.0], size=shape), pred)
    if from_logits:
        pred = _log_softmax(pred, c)
    ctor = {"from_logits": from_logits, "axis": caxis, "weight": weight, "batch_axis": batch_axis}
    return _cast(Case(KL, ctor, pred, label, _sample_weight(sw, shape, batch_axis, rng)), dtype)


def poisson_case(dtype, rng, *, from_logits=True, compute_full=False, sw=None, weight=None,
                 layout="2d", epsilon=None, zero_targets=False):
    """Counts as targets (with some fractional values); with ``compute_full`` they are > 0
    unless ``zero_targets`` (Gluon's Stirling term is NaN at 0). ``from_logits=False``:
    positive rates with some exact zeros (``log(0 + epsilon)``)."""
    shape, batch_axis, _ = LAYOUTS[layout]
    target = rng.poisson(3.0, size=shape).astype(np.float64)
    target = np.where(rng.random(shape) < 0.2, rng.uniform(0.1, 4.0, size=shape), target)
    if compute_full and not zero_targets:
        target = np.where(target == 0, 1.0 + rng.integers(0, 3, size=shape), target)
    if zero_targets:
        target[rng.random(shape) < 0.3] = 0.0
        target.flat[0] = 0.0
    if from_logits:
        pred = rng.normal(0.0, 1.0, size=shape)
    else:
        pred = np.where(rng.random(shape) < 0.15, 0.0, rng.gamma(2.0, 1.5, size=shape))
    ctor = {"weight": weight, "from_logits": from_logits, "batch_axis": batch_axis,
            "compute_full": compute_full}
    call = {} if epsilon is None else {"epsilon": epsilon}
    return _cast(Case(POISSON, ctor, pred, target, _sample_weight(sw, shape, batch_axis, rng),
                      call=call), dtype)


# ---- running Gluon and the mirror ----------------------------------------------------------------

def nd(a):
    return mx.nd.array(a, dtype=a.dtype)


def _call(loss, case, p, t, sw, pw):
    """Positional, as Gluon's ``Block.__call__`` takes no keywords (``epsilon`` included)."""
    if case.name == BCE:
        return loss(p, t, sw, pw)
    if "epsilon" in case.call:
        return loss(p, t, sw, case.call["epsilon"])
    return loss(p, t, sw)


def native(case):
    """Gluon on ``mx.nd`` arrays; ``PoissonNLLLoss``'s mean is shape ``(1,)`` there."""
    loss = getattr(gloss, case.name)(**case.ctor)
    out = _call(loss, case, nd(case.pred), nd(case.label),
                None if case.sw is None else nd(case.sw), None if case.pw is None else nd(case.pw))
    return out.asnumpy()


def native_grad(case, at=None):
    """Gluon's value and gradient w.r.t. ``pred`` (``at`` replaces ``pred``).

    ``PoissonNLLLoss(compute_full=True)`` cannot be recorded by Gluon (its ``stirling_factor
    *= target_gt_1`` is an in-place update inside the record; see
    ``test_poisson_compute_full_gradient``); the Stirling term depends on ``target`` alone, so
    its gradient w.r.t. ``pred`` is Gluon's ``compute_full=False`` gradient, and the value is
    Gluon's ``compute_full=True`` value computed outside the record.
    """
    if case.name == POISSON and case.ctor["compute_full"]:
        plain = Case(POISSON, dict(case.ctor, compute_full=False), case.pred, case.label, case.sw,
                     call=case.call)
        value = native(case if at is None else Case(POISSON, case.ctor, at, case.label, case.sw,
                                                    call=case.call))
        return value, native_grad(plain, at)[1]
    loss = getattr(gloss, case.name)(**case.ctor)
    x = nd(case.pred if at is None else at)
    x.attach_grad()
    with autograd.record():
        out = _call(loss, case, x, nd(case.label), None if case.sw is None else nd(case.sw),
                    None if case.pw is None else nd(case.pw))
    out.backward()  # head gradient of ones: the gradient of out.sum()
    return out.asnumpy(), x.grad.asnumpy()


def mirror(case):
    """The mirror as a function of ``case.arrays`` (positional, ``None`` ones dropped)."""
    loss = getattr(pg, case.name)(**case.ctor)
    has_sw, has_pw = case.sw is not None, case.pw is not None

    def f(p, t, *rest):
        rest = list(rest)
        sw = rest.pop(0) if has_sw else None
        pw = rest.pop(0) if has_pw else None
        return _call(loss, case, p, t, sw, pw)

    return f


def as_scalar(expected):
    """Gluon's ``(1,)`` Poisson mean is a 0-d result for the mirror on every type but
    ``mx.nd`` (where ``assert_close`` accepts ``(1,)`` against 0-d)."""
    return expected.reshape(()) if expected.shape == (1,) else expected


def tolerance(case, dtype, grad=False):
    """``(rtol, atol)`` for one comparison of a value (or of the gradient, ``grad``).

    float64: ``rtol = 1e-12``; float32: ``8·eps·log2(n)``. An absolute term is added only
    where a formula cancels (its error is relative to the terms, not to the result) or where
    the native is known to be inaccurate, always times the weights that multiply it
    (``|weight|·max|sample_weight|``):

    - ``SigmoidBinaryCrossEntropyLoss`` from logits: the mirror evaluates Gluon's own
      ``relu(x) - x·z + softrelu(-|x|)`` (or its ``pos_weight`` form), so the cancellation
      for confident predictions rounds alike; but MXNet's float32 softrelu is off by up to
      ulp(|x|) (see above): 2 ulps of ``max|x|`` times ``max(1, P)``. The gradient is formed
      differently (``sigmoid(x) - z`` against Gluon's ``relu'(x) - z - sigmoid(-|x|)·sign(x)``),
      a difference of O(1) terms: a few ulps of ``max(1, P)``.
    - ``SoftmaxCrossEntropyLoss``/``KLDivLoss`` through MXNet's float32 ``log_softmax`` (not
      ``from_logits``): ``MX_LOG_SOFTMAX_F32_ABS`` per log-probability times the label mass
      on it (1 per class row); the gradient ``softmax·Σlabel - label`` is a difference of
      O(1) terms (a few ulps of 1) and carries the same float32 error through ``exp``.
    - ``KLDivLoss``: ``Σ label·(log(label + 1e-12) - pred)`` adds terms of both signs: a few
      ulps of ``Σ|terms|`` per sample.
    - ``PoissonNLLLoss``: ``exp(x) - t·x`` (or ``r - t·log(r + eps)``, + Stirling) cancels the
      same way: a few ulps of the mean of ``|terms|``; its gradient ``(exp(x) - t)/n`` (or
      ``(1 - t/(r + eps))/n``) cancels only where both terms are about ``max(1, t)``.
    """
    n = case.pred.size
    rtol = rtol_for(dtype, n)
    eps = float(np.finfo(dtype).eps)
    f32 = np.dtype(dtype) == np.float32
    label = case.label.reshape(case.pred.shape) if case.label.size == n else case.label
    scale = abs(case.ctor.get("weight") or 1.0) * (1.0 if case.sw is None else float(np.max(case.sw)))
    x = case.pred.astype(np.float64)
    atol = 0.0
    if case.name == BCE and not case.ctor["from_sigmoid"]:
        pw = 1.0 if case.pw is None else max(1.0, float(np.max(case.pw)))
        if grad:
            atol = 8 * eps * pw * scale
        elif f32:
            atol = 2 * float(np.spacing(np.float32(np.max(np.abs(x), initial=1.0)))) * pw * scale
    elif case.name in (SCE, KL):
        from_logits = case.ctor["from_logits"]
        mass = 1.0  # one log-probability per class row, or Σ label = 1 over it
        if case.name == KL and not grad:
            lab = label.astype(np.float64)
            logq = x if from_logits else _log_softmax(x, case.ctor["axis"])
            terms = np.abs(lab * np.log(lab + 1e-12)) + np.abs(lab * logq)
            ba = case.ctor["batch_axis"]
            per_sample = np.sum(np.moveaxis(terms, ba, 0).reshape(terms.shape[ba], -1), axis=1)
            atol = 8 * eps * max(1.0, math.log2(n)) * float(np.max(per_sample, initial=0)) * scale
            # summed over every class row of a sample
            mass = float(n // max(1, case.pred.shape[ba]) // case.pred.shape[case.ctor["axis"]])
        if grad and not from_logits:
            atol = 8 * eps * scale
        if f32 and not from_logits:
            atol += MX_LOG_SOFTMAX_F32_ABS * mass * scale
    elif case.name == POISSON:
        t = label.astype(np.float64)
        if grad:
            atol = 16 * eps * max(1.0, float(np.max(t, initial=0))) * scale / n
        else:
            terms = np.exp(x) + np.abs(t * x) if case.ctor["from_logits"] else (
                np.abs(x) + np.abs(t * np.log(x + case.call.get("epsilon", 1e-8))))
            if case.ctor["compute_full"]:
                tt = np.maximum(t, 1e-300)
                terms = terms + np.abs(tt * np.log(tt)) + tt + np.abs(0.5 * np.log(2 * np.pi * tt))
            atol = 8 * eps * max(1.0, math.log2(n)) * float(np.mean(terms)) * scale
    return rtol, atol


def check(got, expected, case, dtype, grad=False, err_msg=""):
    rtol, atol = tolerance(case, dtype, grad)
    assert_close(got, expected, dtype=dtype, rtol=rtol, atol=atol,
                 err_msg=f"{case!r} {err_msg}")


# ---- 1. values against Gluon, on mx.nd arrays ---------------------------------------------------

DTYPES = ["float32", "float64"]
SWS = [None, "per_sample", "full"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [None, 2.0])
@pytest.mark.parametrize("sw", SWS)
@pytest.mark.parametrize("layout", ["2d", "3d", "ba1"])
@pytest.mark.parametrize("pos_weight", [None, "scalar", "per_class"])
@pytest.mark.parametrize("from_sigmoid", [False, True])
def test_sigmoid_bce_matches_gluon(from_sigmoid, pos_weight, layout, sw, weight, dtype, rng):
    case = bce_case(dtype, rng, from_sigmoid=from_sigmoid, pos_weight=pos_weight, sw=sw,
                    weight=weight, layout=layout)
    expected = native(case)
    got = run_on(KINDS["mx.nd"], mirror(case), *case.arrays)
    assert got.shape == (case.pred.shape[case.ctor["batch_axis"]],)
    check(got, expected, case, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [None, 0.5])
@pytest.mark.parametrize("sw", SWS)
@pytest.mark.parametrize("layout", ["2d", "axis1", "ba1", "tnc"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("sparse_label", [True, False])
def test_softmax_ce_matches_gluon(sparse_label, from_logits, layout, sw, weight, dtype, rng):
    case = sce_case(dtype, rng, sparse_label=sparse_label, from_logits=from_logits, sw=sw,
                    weight=weight, layout=layout)
    expected = native(case)
    got = run_on(KINDS["mx.nd"], mirror(case), *case.arrays)
    assert got.shape == (case.pred.shape[case.ctor["batch_axis"]],)
    check(got, expected, case, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["2d", "axis1", "tnc"])
def test_softmax_ce_int32_labels_match_gluon(layout, dtype, rng):
    """Gluon's ``pick`` also takes int32 class indices; the mirror gives the same."""
    for from_logits in (False, True):
        case = sce_case(dtype, rng, from_logits=from_logits, sw="per_sample", layout=layout,
                        int_labels=True)
        assert case.label.dtype == np.int32
        expected = native(case)
        for kind in ("mx.nd", "numpy", "mx.np"):
            got = run_on(KINDS[kind], mirror(case), *case.arrays)
            check(got, expected, case, dtype, err_msg=kind)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [None, 0.5])
@pytest.mark.parametrize("sw", SWS)
@pytest.mark.parametrize("layout", ["2d", "axis1", "ba1", "3d"])
@pytest.mark.parametrize("from_logits", [True, False])
def test_kl_div_matches_gluon(from_logits, layout, sw, weight, dtype, rng):
    """Gluon 1.9.1 *sums* over the non-batch axes (earlier versions averaged)."""
    case = kl_case(dtype, rng, from_logits=from_logits, sw=sw, weight=weight, layout=layout)
    expected = native(case)
    got = run_on(KINDS["mx.nd"], mirror(case), *case.arrays)
    assert got.shape == (case.pred.shape[case.ctor["batch_axis"]],)
    check(got, expected, case, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [None, 2.0])
@pytest.mark.parametrize("sw", SWS)
@pytest.mark.parametrize("layout", ["2d", "3d", "ba1"])
@pytest.mark.parametrize("compute_full", [False, True])
@pytest.mark.parametrize(("from_logits", "epsilon"), [(True, None), (False, None), (False, 0.25)])
def test_poisson_nll_matches_gluon(from_logits, epsilon, compute_full, layout, sw, weight, dtype,
                                   rng):
    """A mean over every element, whatever ``batch_axis``: shape ``(1,)`` on ``mx.nd`` (like
    Gluon), as ``mx.nd.mean`` gives it. ``epsilon`` (a call argument) only enters with
    ``from_logits=False``."""
    case = poisson_case(dtype, rng, from_logits=from_logits, compute_full=compute_full, sw=sw,
                        weight=weight, layout=layout, epsilon=epsilon)
    expected = native(case)
    assert expected.shape == (1,)
    got = run_on(KINDS["mx.nd"], mirror(case), *case.arrays)
    assert got.shape == (1,)
    check(got, expected, case, dtype)


# ---- 2. edge inputs ----------------------------------------------------------------------------------

def edge_cases(dtype, rng):
    """Logits of +-100, probabilities and labels of exactly 0 and 1, a batch of one."""
    out = []
    for pw in (None, "per_class"):
        out.append(bce_case(dtype, rng, pos_weight=pw, edge="extreme", sw="per_sample"))
        out.append(bce_case(dtype, rng, pos_weight=pw, from_sigmoid=True, edge="01"))
        out.append(bce_case(dtype, rng, pos_weight=pw, layout="batch1", weight=0.5))
        out.append(bce_case(dtype, rng, pos_weight=pw, from_sigmoid=True, layout="batch1"))
    for sparse in (True, False):
        out.append(sce_case(dtype, rng, sparse_label=sparse, edge="extreme"))
        out.append(sce_case(dtype, rng, sparse_label=sparse, edge="extreme", layout="axis1"))
        out.append(sce_case(dtype, rng, sparse_label=sparse, layout="batch1", sw="full"))
        out.append(sce_case(dtype, rng, sparse_label=sparse, from_logits=True, layout="batch1"))
        out.append(sce_case(dtype, rng, sparse_label=sparse, from_logits=True, edge="raw"))
    for fl in (True, False):
        out.append(kl_case(dtype, rng, from_logits=fl, edge="extreme"))
        out.append(kl_case(dtype, rng, from_logits=fl, layout="batch1", sw="full"))
    out.append(poisson_case(dtype, rng, layout="batch1"))
    out.append(poisson_case(dtype, rng, from_logits=False, compute_full=True, layout="batch1"))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_inputs_match_gluon(dtype, rng):
    bugs = KnownBugs()
    cases = edge_cases(dtype, rng)
    assert any(np.any(native(c) < 0) for c in cases if c.name == SCE)  # raw logits
    for case in cases:
        expected = native(case)
        assert np.all(np.isfinite(expected)), case
        got = run_on(KINDS["mx.nd"], mirror(case), *case.arrays, bugs=bugs)
        check(got, expected, case, dtype)
    bugs.check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_zero_and_one_use_gluons_1e_12(dtype):
    """``from_sigmoid``: ``log(p + 1e-12)`` and ``log(1 - p + 1e-12)``; a prediction of exactly
    0 or 1 against the opposite label is ``-log(1e-12) ≈ 27.63``, not inf. ``KLDivLoss``:
    ``label·log(label + 1e-12)``, 0 at ``label = 0``."""
    p = np.array([[0.0, 1.0, 0.0, 1.0, 0.5]], dtype=dtype)
    z = np.array([[1.0, 0.0, 0.0, 1.0, 1.0]], dtype=dtype)
    case = Case(BCE, {"from_sigmoid": True}, p, z)
    expected = native(case)
    assert 11.1 < float(expected[0]) < 11.3  # (2 · 27.63 + log 2) / 5, all finite
    for kind in ("mx.nd", "numpy"):
        check(run_on(KINDS[kind], mirror(case), p, z), expected, case, dtype, err_msg=kind)
    logq = np.log(np.array([[0.25, 0.25, 0.5, 1e-30]])).astype(dtype)
    lab = np.array([[0.0, 1.0, 0.0, 0.0]], dtype=dtype)
    case = Case(KL, {}, logq, lab)
    expected = native(case)
    for kind in ("mx.nd", "numpy"):
        check(run_on(KINDS[kind], mirror(case), logq, lab), expected, case, dtype, err_msg=kind)


@pytest.mark.parametrize("kind", ["mx.nd", "numpy"])
def test_seed_003_examples(kind):
    """Seed 003: ``SoftmaxCrossEntropyLoss()(nd.array([[1, 10], [8, 2]]), nd.array([0, 1]))``
    and ``KLDivLoss(from_logits=False)`` on the tutorial's output/target distributions, with
    Gluon run here on exactly the seed's calls. The NumPy inputs are the same float32 values."""
    x = np.array([[1, 10], [8, 2]], dtype=np.float32)
    y = np.array([0, 1], dtype=np.float32)
    expected = gloss.SoftmaxCrossEntropyLoss()(mx.nd.array([[1, 10], [8, 2]]),
                                               mx.nd.array([0, 1])).asnumpy()
    assert expected.dtype == np.float32 and expected.shape == (2,)
    np.testing.assert_allclose(expected, [9.000123, 6.0024757], rtol=1e-6)  # -log softmax
    case = Case(SCE, {}, x, y)
    got = run_on(KINDS[kind], mirror(case), x, y)
    check(got, expected, case, "float32")

    out = np.array([[0.39056206, 1.3068528, 0.39056206, -0.30258512]], dtype=np.float32)
    target = np.array([[0.3, 0.4, 0.1, 0.2]], dtype=np.float32)
    expected = gloss.KLDivLoss(from_logits=False)(
        mx.nd.array([[0.39056206, 1.3068528, 0.39056206, -0.30258512]]),
        mx.nd.array([[0.3, 0.4, 0.1, 0.2]])).asnumpy()
    # 1.9.1 sums over the classes (the tutorial's "0.02" came from an MXNet that averaged)
    assert expected.shape == (1,) and abs(float(expected[0]) - 0.1017) < 1e-4
    case = Case(KL, {"from_logits": False}, out, target)
    got = run_on(KINDS[kind], mirror(case), out, target)
    check(got, expected, case, "float32")


@pytest.mark.parametrize("name", [BCE, POISSON])
def test_label_is_reshaped_to_pred_like_gluon(name, rng):
    """Gluon reshapes ``label`` to ``pred``'s shape (same element count) for these two."""
    case = (bce_case if name == BCE else poisson_case)("float64", rng)
    case.label = case.label.reshape(-1)
    expected = native(case)
    for kind in ("mx.nd", "numpy"):
        got = run_on(KINDS[kind], mirror(case), *case.arrays)
        check(got, expected if kind == "mx.nd" else as_scalar(expected), case, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_label_of_shape_n1_like_gluon(dtype, rng):
    """An ``(N, 1)`` sparse label for ``(N, C)`` logits (a common layout) is picked like
    Gluon's ``pick`` does, not broadcast."""
    case = sce_case(dtype, rng, sw="per_sample")
    case.label = case.label.reshape(-1, 1)
    expected = native(case)
    for kind in ("mx.nd", "numpy", "torch"):
        if not KINDS[kind].available():
            continue
        check(run_on(KINDS[kind], mirror(case), *case.arrays), expected, case, dtype, err_msg=kind)


def test_enlarging_weights_raise_where_gluon_broadcasts(rng):
    """Documented difference: Gluon broadcasts an ``(N,)`` ``sample_weight`` against
    ``SoftmaxCrossEntropyLoss``'s ``(N, 1)`` loss into ``(N, N)`` (a silently wrong per-sample
    value), and a ``(1, C)`` ``pos_weight`` against an ``(N, 1)`` prediction; the mirror raises
    ``ValueError`` naming the argument."""
    case = sce_case("float64", rng)
    w = rng.uniform(size=(N,))
    wrong = native(Case(SCE, case.ctor, case.pred, case.label, w))
    right = native(Case(SCE, case.ctor, case.pred, case.label, w.reshape(N, 1)))
    assert wrong.shape == (N,) and not np.allclose(wrong, right)
    with pytest.raises(ValueError, match="sample_weight"):
        mirror(Case(SCE, case.ctor, case.pred, case.label, w))(case.pred, case.label, w)
    case = bce_case("float64", rng, layout="batch1")
    p, z = case.pred.reshape(-1, 1), case.label.reshape(-1, 1)
    pw = rng.uniform(0.5, 2.0, size=(1, 3))
    assert native(Case(BCE, case.ctor, p, z, pw=pw)).shape == (p.shape[0],)
    with pytest.raises(ValueError, match="pos_weight"):
        mirror(Case(BCE, case.ctor, p, z, pw=pw))(p, z, pw)


# ---- 3. the same mirror on every other array type ------------------------------------------------

def kind_cases(dtype, rng):
    return [
        bce_case(dtype, rng),
        bce_case(dtype, rng, pos_weight="per_class", sw="per_sample", weight=2.0),
        bce_case(dtype, rng, from_sigmoid=True, pos_weight="scalar", layout="ba1", sw="full"),
        bce_case(dtype, rng, edge="extreme", layout="3d"),
        sce_case(dtype, rng),
        sce_case(dtype, rng, layout="axis1", sw="full", weight=0.5),
        sce_case(dtype, rng, sparse_label=False, layout="tnc", sw="per_sample"),
        sce_case(dtype, rng, from_logits=True, layout="ba1"),
        sce_case(dtype, rng, int_labels=True, layout="axis1"),
        kl_case(dtype, rng),
        kl_case(dtype, rng, from_logits=False, layout="axis1", sw="full", weight=0.5),
        kl_case(dtype, rng, layout="ba1", sw="per_sample"),
        poisson_case(dtype, rng),
        poisson_case(dtype, rng, from_logits=False, compute_full=True, sw="per_sample",
                     weight=2.0, epsilon=0.25),
        poisson_case(dtype, rng, layout="3d", sw="full"),
    ]


KIND_CASE_IDS = ["bce", "bce-pw", "bce-sig", "bce-extreme", "sce", "sce-axis1", "sce-dense",
                 "sce-logits", "sce-int", "kl", "kl-logits", "kl-ba1", "poisson",
                 "poisson-full", "poisson-3d"]


# JAX's eager dispatch compiles every operation for each new shape and dtype (about 0.1 s
# each), which would dominate this module's runtime. On JAX, the gradient test (which also
# compares the value) runs every case in float64 and those with special float32 tolerances
# in float32; this test runs the cases the gradient test does not have. (The optax mirror
# tests cover JAX in depth.)
JAX_F32_GRAD_CASES = ("bce-pw", "bce-extreme", "sce-axis1", "sce-dense", "kl-logits", "poisson-full")
JAX_VALUE_CASES = ("bce-sig", "bce-extreme", "sce-int", "kl-ba1", "poisson-3d")


def _subset(params, case_ids, jax_keep):
    """``(kind or backend, dtype, index)`` params; on JAX only ``jax_keep(dtype, case_id)``."""
    out = []
    for param in params:
        value, marks = (param.values[0], param.marks) if hasattr(param, "values") else (param, ())
        name = getattr(value, "name", value)
        for dtype in DTYPES:
            for i, cid in enumerate(case_ids):
                if name == "jax" and not jax_keep(dtype, cid):
                    continue
                out.append(pytest.param(value, dtype, i, id=f"{name}-{dtype}-{cid}", marks=marks))
    return out


@pytest.mark.parametrize(("kind", "dtype", "index"),
                         _subset(kind_params(exclude=("mx.nd",)), KIND_CASE_IDS,
                                 lambda dtype, cid: cid in JAX_VALUE_CASES))
def test_every_backend_matches_gluon(kind, dtype, index, rng):
    """The reference is always the classic ``mx.nd`` Gluon loss."""
    case = kind_cases(dtype, rng)[index]
    expected = native(case)
    bugs = KnownBugs()
    got = run_on(kind, mirror(case), *case.arrays, bugs=bugs)
    expected = as_scalar(expected)
    rtol, atol = tolerance(case, dtype)
    bugs.assert_close(kind, got, expected, dtype=dtype, rtol=rtol, atol=atol, err_msg=repr(case))
    bugs.check()


# ---- 4. gradients w.r.t. pred -------------------------------------------------------------------

def _vg_legacy_nd(fn, arrays, argnum):
    """The mirror differentiated on classic ``mx.nd`` arrays, as Gluon code does."""
    xs = [nd(a) for a in arrays]
    xs[argnum].attach_grad()
    with autograd.record():
        out = fn(*xs)
    out.backward()
    return to_numpy(out), to_numpy(xs[argnum].grad)


def mirror_grad(backend, case, at=None):
    arrays = case.arrays
    if at is not None:
        arrays = [at] + arrays[1:]
    if backend == "mx.nd":
        return _vg_legacy_nd(mirror(case), arrays, 0)
    from polyloss.parity.backends import BACKENDS

    return BACKENDS[backend].value_and_grad(mirror(case), arrays, 0)


def grad_cases(dtype, rng):
    return [
        bce_case(dtype, rng, sw="per_sample", weight=2.0),
        bce_case(dtype, rng, pos_weight="per_class", layout="3d"),
        bce_case(dtype, rng, from_sigmoid=True, pos_weight="scalar", sw="full"),
        bce_case(dtype, rng, edge="extreme", pos_weight="scalar"),
        sce_case(dtype, rng, sw="per_sample", weight=0.5),
        sce_case(dtype, rng, layout="axis1", sw="full"),
        sce_case(dtype, rng, sparse_label=False, layout="tnc"),
        sce_case(dtype, rng, from_logits=True, layout="ba1", sw="per_sample"),
        kl_case(dtype, rng, sw="per_sample", weight=0.5),
        kl_case(dtype, rng, from_logits=False, layout="axis1", sw="full"),
        poisson_case(dtype, rng, sw="per_sample"),
        poisson_case(dtype, rng, from_logits=False, compute_full=True, layout="3d", weight=2.0),
    ]


GRAD_CASE_IDS = ["bce", "bce-pw", "bce-sig", "bce-extreme", "sce", "sce-axis1", "sce-dense",
                 "sce-logits", "kl", "kl-logits", "poisson", "poisson-full"]
GRAD_BACKENDS = ["torch", "jax", "tensorflow", "mxnet", "mx.nd"]


@pytest.mark.parametrize(("backend", "dtype", "index"), _subset(
    GRAD_BACKENDS, GRAD_CASE_IDS, lambda dtype, cid: dtype == "float64" or cid in JAX_F32_GRAD_CASES))
def test_gradient_matches_gluon_autograd(backend, dtype, index, rng):
    from conftest import INSTALLED_NAMES

    name = "mxnet" if backend == "mx.nd" else backend
    if name not in INSTALLED_NAMES:
        pytest.skip(f"{name} is not installed in this environment")
    case = grad_cases(dtype, rng)[index]
    expected_v, expected_g = native_grad(case)
    value, grad = mirror_grad(backend, case)
    if backend != "mx.nd":
        expected_v = as_scalar(expected_v)
    check(value, expected_v, case, dtype)
    check(grad, expected_g, case, dtype, grad=True)


# ---- 5. signatures and aliases ----------------------------------------------------------------

def _params(fn, drop=()):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in drop]


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_signatures_match_gluon(name):
    """Constructor: same names, order, kinds and defaults (``**kwargs`` included). The call
    is Gluon's ``hybrid_forward`` without its ``F`` (``pos_weight``, ``epsilon`` included)."""
    assert _params(getattr(pg, name).__init__) == _params(getattr(gloss, name).__init__)
    native_call = _params(getattr(gloss, name).hybrid_forward, drop=("F",))
    assert _params(getattr(pg, name).__call__) == native_call
    assert _params(getattr(pg, name).forward) == native_call


def test_aliases_like_gluon():
    assert gloss.SigmoidBCELoss is gloss.SigmoidBinaryCrossEntropyLoss
    assert gloss.SoftmaxCELoss is gloss.SoftmaxCrossEntropyLoss
    assert pg.SigmoidBCELoss is pg.SigmoidBinaryCrossEntropyLoss
    assert pg.SoftmaxCELoss is pg.SoftmaxCrossEntropyLoss


@pytest.mark.parametrize("alias", ["SigmoidBCELoss", "SoftmaxCELoss"])
def test_alias_values(alias, rng):
    case = (bce_case if alias == "SigmoidBCELoss" else sce_case)("float64", rng, sw="per_sample")
    expected = native(case)
    loss = getattr(pg, alias)(**case.ctor)
    got = run_on(KINDS["mx.nd"], lambda p, t, w: loss(p, t, w), *case.arrays)
    check(got, expected, case, "float64")


# ---- 6. deliberate differences -------------------------------------------------------------------

@pytest.mark.parametrize("pos_weight", [None, "scalar"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_sigmoid_bce_gradient_at_zero_is_continuous(backend, dtype, pos_weight, rng):
    """At ``pred == 0`` exactly, Gluon's ``relu``/``abs`` subgradients (both 0) give
    ``-label`` (without ``pos_weight``), a value the gradient takes nowhere else; the mirror
    gives the gradient's limit from both sides, ``sigmoid(0) - label`` (documented). The
    expected value is Gluon's own gradient at ``pred = ±1e-30``, where it is continuous."""
    from conftest import INSTALLED_NAMES

    name = "mxnet" if backend == "mx.nd" else backend
    if name not in INSTALLED_NAMES:
        pytest.skip(f"{name} is not installed in this environment")
    case = bce_case(dtype, rng, pos_weight=pos_weight, sw="per_sample", weight=2.0)
    zero = np.zeros_like(case.pred)
    native_v0, native_g0 = native_grad(case, at=zero)
    _, g_plus = native_grad(case, at=np.full_like(case.pred, 1e-30))
    _, g_minus = native_grad(case, at=np.full_like(case.pred, -1e-30))
    assert_close(g_plus, g_minus, dtype=dtype)  # Gluon is continuous across 0 ...
    if pos_weight is None:  # ... except at 0 itself: -label (times the weights, / D)
        w = case.sw * 2.0 / D
        np.testing.assert_allclose(native_g0, -(case.label * w).astype(dtype), rtol=1e-6)
        assert not np.allclose(native_g0, g_plus)
    value, grad = mirror_grad(backend, case, at=zero)
    check(value, native_v0, case, dtype)  # the value at 0 is Gluon's
    check(grad, g_plus, case, dtype, grad=True)


@pytest.mark.parametrize("bad", ["C", "-1"])
@pytest.mark.parametrize("kind", kind_params(exclude=("dask",)))
def test_out_of_range_sparse_label_raises_where_gluon_clips(kind, bad, rng):
    """Gluon's ``pick`` clips an index outside ``[0, C)`` to the nearest class (silently
    wrong); the mirror raises ``ValueError`` naming ``label`` (on every type whose values can
    be read; Dask is lazy and not checked)."""
    for layout in ("2d", "axis1"):
        case = sce_case("float32", rng, layout=layout)
        C = case.pred.shape[case.ctor["axis"]]
        label = case.label.copy()
        label.flat[1] = C if bad == "C" else -1
        clipped = label.copy()
        clipped.flat[1] = C - 1 if bad == "C" else 0
        bad_case = Case(SCE, case.ctor, case.pred, label)
        clip_case = Case(SCE, case.ctor, case.pred, clipped)
        np.testing.assert_array_equal(native(bad_case), native(clip_case))  # Gluon clips
        with pytest.raises(ValueError, match="label"):
            run_on(kind, mirror(bad_case), case.pred, label)
        run_on(kind, mirror(clip_case), case.pred, clipped)  # the in-range labels are fine


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", kind_params())
def test_poisson_compute_full_zero_targets_finite_where_gluon_nan(kind, dtype, rng):
    """Gluon multiplies its Stirling term by ``target > 1`` *after* computing
    ``0·log 0 = NaN`` at zero targets, so a zero count makes the whole mean NaN; the mirror
    masks the term where ``target <= 1`` (documented). Expected: Gluon's ``compute_full``
    mean over the non-zero targets and its plain mean over the zero ones (where the masked
    Stirling term is 0), weighted by their counts."""
    for from_logits in (True, False):
        case = poisson_case(dtype, rng, from_logits=from_logits, compute_full=True,
                            zero_targets=True)
        assert np.isnan(native(case)).all()
        zero = case.label == 0
        full = Case(POISSON, case.ctor, case.pred[~zero], case.label[~zero])
        plain = Case(POISSON, dict(case.ctor, compute_full=False), case.pred[zero],
                     case.label[zero])
        k = int(zero.sum())
        expected = ((native(full).astype(np.float64) * (zero.size - k)
                     + native(plain).astype(np.float64) * k) / zero.size).astype(dtype)
        got = run_on(kind, mirror(case), *case.arrays)
        assert np.isfinite(got).all()
        rtol, atol = tolerance(case, dtype)
        assert_close(got, as_scalar(expected), dtype=dtype, rtol=2 * rtol + 4e-16,
                     atol=atol)  # + the rounding of the weighted combination above


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_poisson_compute_full_gradient(backend, rng):
    """Gluon raises when ``PoissonNLLLoss(compute_full=True)`` is recorded (an in-place update
    in a record section); the mirror differentiates, with Gluon's ``compute_full=False``
    gradient (the Stirling term does not depend on ``pred``)."""
    from conftest import INSTALLED_NAMES

    name = "mxnet" if backend == "mx.nd" else backend
    if name not in INSTALLED_NAMES:
        pytest.skip(f"{name} is not installed in this environment")
    case = poisson_case("float64", rng, compute_full=True, sw="full")
    x = nd(case.pred)
    x.attach_grad()
    with pytest.raises(mx.base.MXNetError, match="record"):
        with autograd.record():
            gloss.PoissonNLLLoss(compute_full=True)(x, nd(case.label), nd(case.sw))
    expected_v, expected_g = native_grad(case)
    value, grad = mirror_grad(backend, case)
    check(value, expected_v if backend == "mx.nd" else as_scalar(expected_v), case, "float64")
    check(grad, expected_g, case, "float64", grad=True)


def empty_cases(dtype, rng):
    out = []
    for c in (bce_case(dtype, rng), bce_case(dtype, rng, pos_weight="per_class"),
              sce_case(dtype, rng), sce_case(dtype, rng, sparse_label=False),
              sce_case(dtype, rng, layout="axis1"), kl_case(dtype, rng),
              kl_case(dtype, rng, from_logits=False)):
        sl = [slice(None)] * c.pred.ndim
        sl[c.ctor["batch_axis"]] = slice(0, 0)
        lab_sl = list(sl)
        if c.name == SCE and c.ctor["sparse_label"]:
            del lab_sl[c.ctor["axis"] % c.pred.ndim]
        out.append(Case(c.name, c.ctor, c.pred[tuple(sl)], c.label[tuple(lab_sl)], pw=c.pw))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", kind_params())
def test_empty_batch_is_empty_where_gluon_raises(kind, dtype, rng):
    """Gluon fails in shape inference on a zero-size batch (a 0-length dim means "unknown"
    to the classic NDArray); the mirror returns an empty ``(0,)`` result, as documented."""
    bugs = KnownBugs()
    for case in empty_cases(dtype, rng):
        with pytest.raises(mx.base.MXNetError):
            native(case)
            mx.nd.waitall()
        got = run_on(kind, mirror(case), *case.arrays, bugs=bugs)
        assert got.shape == (0,), case
        assert got.dtype == np.dtype(dtype)
    # PoissonNLLLoss is one mean over everything: over nothing it is NaN (0/0), a scalar
    case = poisson_case(dtype, rng)
    case = Case(POISSON, case.ctor, case.pred[:0], case.label[:0])
    with pytest.raises(mx.base.MXNetError):
        native(case)
        mx.nd.waitall()
    got = run_on(kind, mirror(case), *case.arrays, bugs=bugs)
    assert got.shape == ((1,) if kind.name == "mx.nd" else ()) and np.isnan(got).all()
    assert got.dtype == np.dtype(dtype)
    bugs.check()
