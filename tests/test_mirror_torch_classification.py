"""``polyloss.torch``'s classification and likelihood mirrors against the real torch 2.13 losses.

``BCELoss``, ``BCEWithLogitsLoss``, ``CrossEntropyLoss``, ``NLLLoss``, ``KLDivLoss``,
``PoissonNLLLoss``, ``GaussianNLLLoss`` (class and function form) and torchvision's
``sigmoid_focal_loss``. Expected values and gradients always come from torch itself, run in
the test on torch tensors built from the same NumPy bits (torchvision is not installed: its
focal loss is computed here from torch ops by torchvision's own formula). The seed values
are quoted from the seed documents, as stated where they are used.

Covered: every reduction (with the legacy ``size_average``/``reduce`` flags), class weights,
``ignore_index`` (default, custom, every target ignored), label smoothing, probability
targets, spatial and unbatched inputs, batch of one and of zero, elementwise and broadcast
BCE weights, ``pos_weight``, extreme logits and probabilities exactly 0 and 1 (torch's log
clamp at -100 and its clamped BCE backward), ``log_target``, ``batchmean``, Poisson
``log_input``/``full``/``eps``, Gaussian variance shapes and the clamp below ``eps``,
float32/float64, gradients (w.r.t. the input; for BCE also the target, for the Gaussian also
the variance), the same mirrors on every installed array type and autograd backend,
signatures and bad input.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import pytest
from _native import (
    KINDS,
    KnownBugs,
    assert_close,
    kind_params,
    require_module,
    rtol_for,
    run_on,
)

torch = require_module("torch")
F = torch.nn.functional
pt = pytest.importorskip("polyloss.torch")

pytestmark = [
    pytest.mark.native,
    # torch's (and the mirror's) warning for KLDivLoss(reduction='mean'); checked explicitly
    # where it matters, ignored in the value grids
    pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning"),
    # ±1e4 logits overflow exp in float32 on purpose (torch handles them, so must the mirror)
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

DTYPES = ["float32", "float64"]
REDUCTIONS = ("none", "sum", "mean")
N, C = 6, 5  # batch and classes of the 2-D cases


# ---- calling torch and the mirror the same way ---------------------------------------------------

SPECS = {  # key: (torch.nn class, torch.nn.functional function)
    "bce": ("BCELoss", "binary_cross_entropy"),
    "bce_logits": ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
    "ce": ("CrossEntropyLoss", "cross_entropy"),
    "nll": ("NLLLoss", "nll_loss"),
    "kl": ("KLDivLoss", "kl_div"),
    "poisson": ("PoissonNLLLoss", "poisson_nll_loss"),
    "gauss": ("GaussianNLLLoss", "gaussian_nll_loss"),
    "focal": (None, "sigmoid_focal_loss"),
}


def torchvision_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, transcribed (torchvision is not installed)."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "none":
        pass
    elif reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    else:
        raise ValueError(
            f"Invalid Value for arg 'reduction': '{reduction} \n Supported reduction modes: "
            "'none', 'mean', 'sum'")
    return loss


def call(lib, loss, form, pos, arr_kw=None, **kw):
    """``loss`` from ``lib`` ("torch" or "polyloss"), class or function form. Array-valued
    options (``weight``, ``pos_weight``) go to the constructor or to the function."""
    cls_name, fn_name = SPECS[loss]
    arr_kw = arr_kw or {}
    if lib == "torch":
        ns_cls, fn = torch.nn, (torchvision_sigmoid_focal_loss if loss == "focal"
                                else getattr(F, fn_name))
    else:
        ns_cls, fn = pt, getattr(pt, fn_name)
    if form == "class":
        return getattr(ns_cls, cls_name)(**arr_kw, **kw)(*pos)
    return fn(*pos, **arr_kw, **kw)


def tt(a):
    """A torch tensor with ``a``'s bits (the same conversion as the parity backends)."""
    return torch.from_numpy(np.array(a, copy=True, order="C"))


def on_torch(lib, loss, form, pos, arr_kw=None, grad=(0,), **kw):
    """``(value, [gradients of value.sum() w.r.t. pos[i] for i in grad], requires_grad)``."""
    ts = [tt(a) for a in pos]
    for i in grad:
        ts[i].requires_grad_(True)
    kw_t = {k: tt(v) for k, v in (arr_kw or {}).items()}
    out = call(lib, loss, form, ts, kw_t, **kw)
    assert isinstance(out, torch.Tensor), f"{lib}: {type(out)} out for torch in"
    ins = [ts[i] for i in grad]
    if grad and (out.requires_grad or any(i.numel() for i in ins)):
        gs = torch.autograd.grad(out.sum(), ins, allow_unused=True)
        gs = [torch.zeros_like(i) if g is None else g for i, g in zip(ins, gs, strict=True)]
    else:
        # an empty input's gradient is empty whether or not the NaN mean of nothing kept a
        # graph; that graph is checked on its own (test_nan_mean_of_nothing_is_differentiable)
        gs = [torch.zeros_like(i) for i in ins]
    return out.detach().numpy(), [g.numpy() for g in gs], out.requires_grad


# Gradients that are differences of O(1) terms: softmax(x) - y (CE), sigmoid(x) - y
# (BCE-with-logits, focal). An element where the two nearly cancel carries the rounding error
# of the O(1) terms, which is small against the gradient's largest entry but not against the
# element itself; those gradients are compared elementwise with the policy's rtol *and*
# normwise, atol = rtol * max|g| (a few ulps of the gradient's scale). Every other gradient
# (NLL's -w/Σw, BCE's clamped (p - y)/p(1 - p), KL, Poisson, Gaussian) is elementwise only.
NORMWISE_GRAD = {"ce", "bce_logits", "focal"}


def grad_atol(loss, expected, dtype, n):
    if loss not in NORMWISE_GRAD or expected.size == 0:
        return 0.0
    finite = np.abs(expected[np.isfinite(expected)])
    return rtol_for(dtype, n) * float(finite.max()) if finite.size else 0.0


def check(loss, form, pos, arr_kw=None, *, dtype, grad=(0,), n=None, **kw):
    """The mirror on torch tensors against torch: value (dtype, shape, NaN pattern) and the
    gradients w.r.t. ``pos[i]`` for ``i`` in ``grad``. Returns torch's value."""
    ev, egs, _ = on_torch("torch", loss, form, pos, arr_kw, grad, **kw)
    gv, ggs, _ = on_torch("polyloss", loss, form, pos, arr_kw, grad, **kw)
    n = n or max(1, max(a.size for a in pos))
    msg = f"{loss} {form} {kw}"
    assert_close(gv, ev, dtype=dtype, n=n, err_msg=msg)
    for i, g, e in zip(grad, ggs, egs, strict=True):
        assert_close(g, e, dtype=dtype, n=n, atol=grad_atol(loss, e, dtype, n),
                     err_msg=f"d/d arg{i}: {msg}")
    return ev


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---- 1. CrossEntropyLoss / NLLLoss with class-index targets --------------------------------------

INDEX_CASES = ("plain", "ignore_default", "weight", "ignore_custom", "all_ignored",
               "all_ignored_weight", "spatial", "spatial_1d", "unbatched", "unbatched_ignored",
               "batch1", "empty", "huge", "equal")


def index_case(case, dtype, rng):
    """``(input, target, arr_kw, kw)`` for CE/NLL with class-index targets."""
    shape = {"spatial": (2, C, 3, 4), "spatial_1d": (2, C, 7), "unbatched": (C,),
             "unbatched_ignored": (C,), "batch1": (1, C), "empty": (0, C)}.get(case, (N, C))
    x = rng.normal(0.0, 2.0, size=shape)
    tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    t = np.asarray(rng.integers(0, C, size=tshape)).astype(np.int64)
    arr_kw, kw = {}, {}
    w = rng.uniform(0.2, 3.0, size=C)
    if case in ("ignore_default", "weight", "spatial", "spatial_1d"):
        t.reshape(-1)[::3] = -100  # the default ignore_index, present in the targets
    if case in ("weight", "ignore_custom", "all_ignored_weight", "spatial", "huge"):
        arr_kw["weight"] = w
    if case == "ignore_custom":
        t[[0, 3]] = 2
        kw["ignore_index"] = 2
    if case in ("all_ignored", "all_ignored_weight", "unbatched_ignored"):
        t[...] = -100
    if case == "huge":
        x[0] = [1e4, -1e4, 0.0, 100.0, -100.0]
        x[1] = [-100.0, 100.0, 1e4, 1e4, -1e4]
        t[:2] = [1, 0]
    if case == "equal":
        x[...] = 0.7
    return x.astype(dtype), t, {k: v.astype(dtype) for k, v in arr_kw.items()}, kw


@pytest.mark.parametrize("case", INDEX_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss,smoothing", [("ce", 0.0), ("ce", 0.2), ("nll", None)],
                         ids=["ce", "ce-smooth0.2", "nll"])
def test_index_targets_match_torch(loss, smoothing, form, dtype, case, rng):
    x, t, arr_kw, kw = index_case(case, dtype, rng)
    if smoothing:
        kw["label_smoothing"] = smoothing
    for reduction in REDUCTIONS:
        expected = check(loss, form, [x, t], arr_kw, dtype=dtype, reduction=reduction, **kw)
        ignored_all = case in ("all_ignored", "all_ignored_weight", "unbatched_ignored", "empty")
        if reduction == "mean" and ignored_all:
            assert np.isnan(expected)  # torch: 0/0; the mirror must give NaN too (checked above)
        if reduction == "sum" and ignored_all:
            assert expected == 0
        if reduction == "none":
            assert expected.shape == t.shape


def test_all_ignored_mean_is_nan_with_zero_gradient():
    """Spelled out: every target ignored, mean -> NaN, and torch's gradient is exactly 0
    (not NaN), so one all-padding batch does not poison training; the mirror must match."""
    x = np.arange(12.0).reshape(4, 3) / 7
    t = np.full(4, -100, dtype=np.int64)
    for loss in ("ce", "nll"):
        ev, (eg,), _ = on_torch("torch", loss, "function", [x, t])
        gv, (gg,), _ = on_torch("polyloss", loss, "function", [x, t])
        assert np.isnan(ev) and np.isnan(gv)
        np.testing.assert_array_equal(eg, np.zeros_like(x))
        np.testing.assert_array_equal(gg, np.zeros_like(x))


EMPTY_MEANS = {  # id: (loss, inputs, kw); every one is NaN in torch, with a graph
    "bce": ("bce", lambda: [np.zeros((0, 4)), np.zeros((0, 4))], {}),
    "bce_logits": ("bce_logits", lambda: [np.zeros((0, 4)), np.zeros((0, 4))], {}),
    "ce_index": ("ce", lambda: [np.zeros((0, C)), np.zeros(0, dtype=np.int64)], {}),
    "ce_index_all_ignored": ("ce", lambda: [np.ones((3, C)), np.full(3, -100, dtype=np.int64)],
                             {"label_smoothing": 0.1}),
    "ce_prob": ("ce", lambda: [np.zeros((0, C)), np.zeros((0, C))], {}),
    "nll": ("nll", lambda: [np.zeros((0, C)), np.zeros(0, dtype=np.int64)], {}),
    "nll_all_ignored": ("nll", lambda: [np.ones((3, C)), np.full(3, 1, dtype=np.int64)],
                        {"ignore_index": 1}),
    "kl": ("kl", lambda: [np.zeros((0, C)), np.zeros((0, C))], {}),
    "kl_batchmean": ("kl", lambda: [np.zeros((0, C)), np.zeros((0, C))], {"reduction": "batchmean"}),
    "poisson": ("poisson", lambda: [np.zeros((0, 4)), np.zeros((0, 4))], {}),
    "gauss": ("gauss", lambda: [np.zeros((0, 4)), np.zeros((0, 4)), np.ones((0, 4))], {}),
    "focal": ("focal", lambda: [np.zeros((0, 4)), np.zeros((0, 4))], {"reduction": "mean"}),
}


@pytest.mark.parametrize("name", list(EMPTY_MEANS))
def test_nan_mean_of_nothing_is_differentiable_like_torch(name):
    """torch's mean over an empty batch (or with every target ignored) is NaN *with* a graph:
    ``loss.backward()`` works and leaves zero (or empty) gradients. The mirror's NaN must be
    differentiable too, or a training loop's ``backward()`` raises on such a batch."""
    loss, make, kw = EMPTY_MEANS[name]
    form = "function" if loss == "focal" else "class"
    for lib in ("torch", "polyloss"):
        x, *rest = (tt(a) for a in make())
        x.requires_grad_(True)
        out = call(lib, loss, form, [x, *rest], **kw)
        assert np.isnan(out.item()), lib
        assert out.requires_grad, f"{lib}: the NaN mean has no autograd graph"
        out.backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros(x.shape))


# ---- 2. CrossEntropyLoss with probability targets ------------------------------------------------

PROB_CASES = ("plain", "weight", "smooth", "weight_smooth", "spatial", "unbatched", "batch1",
              "empty", "huge", "unnormalised")


def prob_case(case, dtype, rng):
    shape = {"spatial": (2, C, 3, 4), "unbatched": (C,), "batch1": (1, C),
             "empty": (0, C)}.get(case, (N, C))
    axis = 0 if len(shape) == 1 else 1
    x = rng.normal(0.0, 2.0, size=shape)
    t = softmax(rng.normal(0.0, 2.0, size=shape), axis)
    arr_kw, kw = {}, {}
    if case in ("weight", "weight_smooth", "spatial", "huge"):
        arr_kw["weight"] = rng.uniform(0.2, 3.0, size=C)
    if case in ("smooth", "weight_smooth", "spatial"):
        kw["label_smoothing"] = 0.15
    if case == "huge":
        x[0] = [1e4, -1e4, 0.0, 100.0, -100.0]
        t[0] = [0.0, 0.5, 0.0, 0.5, 0.0]
    if case == "unnormalised":  # torch does not require the rows to sum to 1
        t = rng.uniform(0.0, 2.0, size=shape)
        t[t < 0.5] = 0.0
    return x.astype(dtype), t.astype(dtype), {k: v.astype(dtype) for k, v in arr_kw.items()}, kw


@pytest.mark.parametrize("case", PROB_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
def test_probability_targets_match_torch(form, dtype, case, rng):
    x, t, arr_kw, kw = prob_case(case, dtype, rng)
    for reduction in REDUCTIONS:
        expected = check("ce", form, [x, t], arr_kw, dtype=dtype, reduction=reduction, **kw)
        if case == "empty" and reduction == "mean":
            assert np.isnan(expected)


# ---- 3. the seeds --------------------------------------------------------------------------------

# The numbers below are quoted from the seed document ../shared/seeds/002 (section 2.6-2.9),
# where they were computed by torch and printed to 4 decimals.

def test_seed_cross_entropy_2_6812():
    torch.manual_seed(42)
    outputs = torch.randn(3, 5).numpy()
    targets = np.array([1, 0, 3], dtype=np.int64)
    got = pt.CrossEntropyLoss()(outputs, targets)
    assert isinstance(got, np.generic | np.ndarray)
    assert round(float(got), 4) == 2.6812
    check("ce", "class", [outputs, targets], dtype="float32")


def test_seed_bce_on_sigmoid_0_6741():
    torch.manual_seed(42)
    probabilities = torch.sigmoid(torch.randn(4, 1)).numpy()
    targets = np.array([1, 0, 1, 0], dtype=np.float32).reshape(4, 1)
    assert round(float(pt.BCELoss()(probabilities, targets)), 4) == 0.6741
    check("bce", "class", [probabilities, targets], dtype="float32")


def test_seed_bce_right_and_swapped():
    labels = np.array([1.0, 0.0], dtype=np.float32)
    predictions = np.array([0.9, 0.2], dtype=np.float32)
    right = pt.BCELoss()(predictions, labels)
    wrong = pt.BCELoss()(labels, predictions)  # log(0) clamped at -100: (0.1·100 + 0.2·100)/2
    assert round(float(right), 4) == 0.1643
    # The seed prints tensor(15.0000); with the seed's float32 tensors torch's value is
    # 15.000000953674316 (float32 0.9 and 0.2 are not exact), so there "15" holds to the
    # printed 4 decimals and the mirror must equal torch's float32 value itself; in float64
    # both are exactly 15.0.
    assert round(float(wrong), 4) == 15.0
    check("bce", "class", [predictions, labels], dtype="float32")
    check("bce", "class", [labels, predictions], dtype="float32")
    labels64, predictions64 = labels.astype(np.float64), np.array([0.9, 0.2])
    assert F.binary_cross_entropy(tt(labels64), tt(predictions64)).item() == 15.0
    assert float(pt.BCELoss()(labels64, predictions64)) == 15.0


def test_seed_bce_with_logits_0_1643():
    p = np.array([0.9, 0.2])
    logits = np.log(p / (1 - p))
    labels = np.array([1.0, 0.0])
    assert round(float(pt.BCEWithLogitsLoss()(logits, labels)), 4) == 0.1643
    check("bce_logits", "class", [logits, labels], dtype="float64")


def test_seed_nll_loss_weight_and_ignore_index():
    torch.manual_seed(11)
    logits = torch.randn((5, 3))
    log_probs = F.log_softmax(logits, dim=-1).numpy()
    labels = np.array([0, 0, 1, 2, 1], dtype=np.int64)
    weight = np.array([1.0, 1.0, 2.0], dtype=np.float32)
    assert round(float(pt.NLLLoss()(log_probs, labels)), 4) == 1.6553
    assert round(float(pt.nll_loss(log_probs, labels)), 4) == 1.6553
    assert round(float(pt.NLLLoss(weight=weight)(log_probs, labels)), 4) == 1.7188
    assert round(float(pt.NLLLoss(ignore_index=2)(log_probs, labels)), 4) == 1.5599
    check("nll", "class", [log_probs, labels], dtype="float32")
    check("nll", "class", [log_probs, labels], {"weight": weight}, dtype="float32")
    check("nll", "class", [log_probs, labels], dtype="float32", ignore_index=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_004_spatial_nll_after_log_softmax(dtype, rng):
    """Seed ../shared/seeds/004: ``NLLLoss()(LogSoftmax(dim=1)(conv_output), target)`` with a
    (5, 4, 8, 8) output and (5, 8, 8) long targets in [0, 4). (The seed's own Conv2d on a
    (5, 16, 10, 5) input would give (5, 4, 8, 3); the documented shapes are used here, and
    the conv output is a random array.) Value and gradient, through the log-softmax too."""
    z = rng.normal(size=(5, 4, 8, 8)).astype(dtype)
    target = rng.integers(0, 4, size=(5, 8, 8)).astype(np.int64)
    log_probs = F.log_softmax(tt(z), dim=1).numpy()
    check("nll", "class", [log_probs, target], dtype=dtype)

    def through(lib):
        zt = tt(z).requires_grad_(True)
        out = call(lib, "nll", "class", [F.log_softmax(zt, dim=1), tt(target)])
        (g,) = torch.autograd.grad(out, zt)
        return out.detach().numpy(), g.numpy()

    (ev, eg), (gv, gg) = through("torch"), through("polyloss")
    assert_close(gv, ev, dtype=dtype, n=z.size)
    assert_close(gg, eg, dtype=dtype, n=z.size)


# ---- 4. BCELoss ----------------------------------------------------------------------------------

BCE_CASES = ("random", "weight", "weight_row", "weight_col", "soft", "edges", "edges_weight",
             "clamp", "tiny_denominator", "3d", "1d", "batch1", "empty")


def bce_case(case, dtype, rng):
    """``(p, y, arr_kw, interior)``; ``interior``: every p in (0, 1) away from the clamps."""
    shape = {"3d": (N, 3, 4), "1d": (N,), "batch1": (1, 4), "empty": (0, 4)}.get(case, (N, 4))
    p = rng.uniform(0.02, 0.98, size=shape)
    y = (rng.random(shape) < 0.5).astype(np.float64)
    arr_kw = {}
    interior = True
    if case in ("weight", "edges_weight"):
        arr_kw["weight"] = rng.uniform(0.0, 3.0, size=shape)  # elementwise
    if case == "weight_row":
        arr_kw["weight"] = rng.uniform(0.0, 3.0, size=shape[-1:])  # broadcast over the batch
    if case == "weight_col":
        arr_kw["weight"] = rng.uniform(0.0, 3.0, size=(shape[0], 1))
    if case == "soft":
        y = rng.uniform(0.0, 1.0, size=shape)
    if case in ("edges", "edges_weight"):
        # probabilities exactly 0 and 1 against targets 0, 1 and soft: log clamped at -100,
        # and torch's backward (p - y) / max(p(1 - p), 1e-12) = ±1e12
        p[:, 0] = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0]
        p[:, 1] = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5]
        y[:, 0] = [0.0, 1.0, 0.0, 1.0, 0.3, 0.7]
        y[:, 1] = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
        interior = False
    if case == "clamp":  # log(p) < -100 without p being 0 (float64), or 0 after the cast
        p[:, 0] = 1e-60
        p[:, 1] = 1 - 1e-17  # rounds to 1
        interior = False
    if case == "tiny_denominator":  # 0 < p(1 - p) < 1e-12: torch's backward clamp is active
        p[:, 0] = 1e-14
        p[:, 1] = 1 - 2.0 ** -45
        interior = False
    return p.astype(dtype), y.astype(dtype), {k: v.astype(dtype) for k, v in arr_kw.items()}, interior


@pytest.mark.parametrize("case", BCE_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
def test_bce_matches_torch(form, dtype, case, rng):
    p, y, arr_kw, interior = bce_case(case, dtype, rng)
    # d/d target is torch's -logit(p) (infinite at p = 0 and 1): compared where p is interior
    grad = (0, 1) if interior else (0,)
    for reduction in REDUCTIONS:
        check("bce", form, [p, y], arr_kw, dtype=dtype, grad=grad, reduction=reduction)


def test_bce_edge_gradient_is_torchs_clamped_one():
    """At p = 0 with y = 1 torch's gradient is (0 - 1) / 1e-12 ~ -1e12 (not -inf), at
    p = 1, y = 0 it is +1e12, and 0 where p == y; the loss there is 100 (log clamp)."""
    p = np.array([0.0, 1.0, 0.0, 1.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    ev, (eg,), _ = on_torch("torch", "bce", "function", [p, y], reduction="none")
    gv, (gg,), _ = on_torch("polyloss", "bce", "function", [p, y], reduction="none")
    np.testing.assert_array_equal(ev, [100.0, 100.0, 0.0, 0.0])
    # torch's EPSILON is 1e-12 rounded to float32 (9.9999999600e-13) even in float64
    np.testing.assert_allclose(eg, [-1e12, 1e12, 0.0, 0.0], rtol=1e-8, atol=0)
    assert eg[0] == -1.0 / float(np.float32(1e-12))
    np.testing.assert_array_equal(gv, ev)
    np.testing.assert_array_equal(gg, eg)


# ---- 5. BCEWithLogitsLoss ------------------------------------------------------------------------

LOGIT_CASES = ("random", "weight", "weight_row", "pos_weight", "pos_weight_weight", "soft",
               "pm100", "pm1e4", "equal", "3d_pos_weight", "batch1", "empty")


def logit_case(case, dtype, rng):
    """``(x, y, arr_kw, moderate)``; ``moderate``: no extreme logits (for d/d target)."""
    shape = {"3d_pos_weight": (N, 3, 4), "batch1": (1, 4), "empty": (0, 4)}.get(case, (N, 4))
    x = rng.normal(0.0, 3.0, size=shape)
    y = (rng.random(shape) < 0.5).astype(np.float64)
    arr_kw = {}
    if case in ("weight", "pos_weight_weight", "pm1e4"):
        arr_kw["weight"] = rng.uniform(0.0, 3.0, size=shape)
    if case == "weight_row":
        arr_kw["weight"] = rng.uniform(0.0, 3.0, size=shape[-1:])
    if case in ("pos_weight", "pos_weight_weight", "3d_pos_weight", "pm100", "empty"):
        arr_kw["pos_weight"] = rng.uniform(0.1, 4.0, size=shape[-1:])  # broadcast on the last dim
    if case == "soft":
        y = rng.uniform(0.0, 1.0, size=shape)
    if case in ("pm100", "pm1e4"):
        big = 100.0 if case == "pm100" else 1e4
        x = np.where(rng.random(shape) < 0.5, -big, big)
        y[0] = 0.3  # soft targets at the extremes too
    if case == "equal":
        x[...] = 0.7
    arr_kw = {k: v.astype(dtype) for k, v in arr_kw.items()}
    return x.astype(dtype), y.astype(dtype), arr_kw, case not in ("pm100", "pm1e4")


@pytest.mark.parametrize("case", LOGIT_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
def test_bce_with_logits_matches_torch(form, dtype, case, rng):
    x, y, arr_kw, moderate = logit_case(case, dtype, rng)
    grad = (0, 1) if moderate else (0,)
    for reduction in REDUCTIONS:
        check("bce_logits", form, [x, y], arr_kw, dtype=dtype, grad=grad, reduction=reduction)


# ---- 6. KLDivLoss --------------------------------------------------------------------------------

KL_CASES = ("random", "zero_targets", "some_zero", "3d", "batch1", "empty", "scalar")
KL_REDUCTIONS = ("none", "sum", "mean", "batchmean")


def kl_case(case, dtype, log_target, rng):
    shape = {"3d": (N, 3, C), "batch1": (1, C), "empty": (0, C), "scalar": ()}.get(case, (N, C))
    axis = -1
    x = np.log(softmax(rng.normal(size=shape + (1,) * (not shape)), axis)).reshape(shape)
    q = softmax(rng.normal(0.0, 2.0, size=shape + (1,) * (not shape)), axis).reshape(shape)
    if case == "scalar":
        x = np.asarray(np.log(rng.uniform(0.1, 0.9)))
        q = np.asarray(rng.uniform(0.1, 0.9))
    if case == "zero_targets":
        q = np.zeros(shape)
    if case == "some_zero":
        q[q < 0.15] = 0.0
    t = np.log(q) if log_target and case not in ("zero_targets", "some_zero") else q
    if log_target and case in ("zero_targets", "some_zero"):
        t = np.where(q > 0, np.log(np.where(q > 0, q, 1.0)), -50.0)  # exp(-50) is tiny, not 0
    return x.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("case", KL_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, form, dtype, case, rng):
    x, t = kl_case(case, dtype, log_target, rng)
    for reduction in KL_REDUCTIONS:
        expected = check("kl", form, [x, t], dtype=dtype, reduction=reduction,
                         log_target=log_target)
        if case == "zero_targets" and not log_target:
            assert np.all(expected == 0)  # xlogy(0, 0) = 0, no NaN


def test_kl_div_mean_warns_like_torch():
    x = np.log(np.full((2, 4), 0.25))
    t = np.full((2, 4), 0.25)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(tt(x), tt(t))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        pt.kl_div(x, t)


# ---- 7. PoissonNLLLoss ---------------------------------------------------------------------------

def poisson_case(case, dtype, log_input, rng):
    shape = {"3d": (N, 3, 4), "batch1": (1, 4), "empty": (0, 4)}.get(case, (N, 4))
    t = rng.poisson(2.0, size=shape).astype(np.float64)
    if case != "empty":
        t.reshape(-1)[:4] = [0.0, 1.0, 1.5, 30.0]  # Stirling only where target > 1
    if case == "fractional":
        t = rng.uniform(0.0, 4.0, size=shape)
    x = rng.normal(0.0, 1.0, size=shape) if log_input else rng.gamma(2.0, 1.0, size=shape)
    if case == "zero_rate" and not log_input:
        x.reshape(-1)[:3] = 0.0  # log(0 + eps)
    return x.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("case", ["random", "fractional", "zero_rate", "3d", "batch1", "empty"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("log_input,full,eps", [(True, False, 1e-8), (True, True, 1e-8),
                                                (False, False, 1e-8), (False, True, 1e-8),
                                                (False, False, 0.5), (True, True, 0.5)])
def test_poisson_nll_matches_torch(log_input, full, eps, form, dtype, case, rng):
    x, t = poisson_case(case, dtype, log_input, rng)
    for reduction in REDUCTIONS:
        check("poisson", form, [x, t], dtype=dtype, reduction=reduction, log_input=log_input,
              full=full, eps=eps)


# ---- 8. GaussianNLLLoss --------------------------------------------------------------------------

GAUSS_CASES = ("same_shape", "one_dim_short", "last_dim_1", "3d_one_dim_short", "3d_middle_1",
               "below_eps", "below_custom_eps", "zero_var", "batch1", "empty")


def gauss_case(case, dtype, rng):
    """``(input, target, var, kw)``."""
    shape = {"3d_one_dim_short": (N, 3, 4), "3d_middle_1": (N, 3, 4), "batch1": (1, 4),
             "empty": (0, 4)}.get(case, (N, 4))
    x = rng.normal(size=shape)
    t = rng.normal(size=shape)
    vshape = {"one_dim_short": shape[:-1], "3d_one_dim_short": shape[:-1],
              "last_dim_1": shape[:-1] + (1,), "3d_middle_1": (N, 1, 4)}.get(case, shape)
    var = rng.uniform(0.1, 3.0, size=vshape)
    kw = {}
    if case == "below_eps":  # clamped to eps under no_grad: the gradient passes straight through
        var.reshape(-1)[::2] = rng.uniform(0.0, 1e-6, size=var.size)[::2] * 0.5
    if case == "below_custom_eps":
        kw["eps"] = 0.25
    if case == "zero_var":
        var.reshape(-1)[::3] = 0.0
    return x.astype(dtype), t.astype(dtype), var.astype(dtype), kw


@pytest.mark.parametrize("case", GAUSS_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_matches_torch(full, form, dtype, case, rng):
    x, t, var, kw = gauss_case(case, dtype, rng)
    for reduction in REDUCTIONS:
        check("gauss", form, [x, t, var], dtype=dtype, grad=(0, 2), reduction=reduction,
              full=full, **kw)


def test_gaussian_nll_gradient_through_the_clamp():
    """torch clamps var in place under no_grad, so d/d var is the unclamped formula's,
    evaluated at eps: 0.5 (1/eps - r²/eps²) for var below eps (not 0 as a real clamp)."""
    x = np.array([1.0, 0.0])
    t = np.array([0.0, 0.0])
    var = np.array([1e-9, 1e-9])
    _, (eg,), _ = on_torch("torch", "gauss", "function", [x, t, var], grad=(2,), reduction="sum")
    _, (gg,), _ = on_torch("polyloss", "gauss", "function", [x, t, var], grad=(2,),
                           reduction="sum")
    eps = 1e-6
    np.testing.assert_allclose(eg, 0.5 * (1 / eps - np.array([1.0, 0.0]) / eps**2), rtol=1e-12)
    assert_close(gg, eg, dtype="float64")


@pytest.mark.parametrize("form", ["class", "function"])
def test_gaussian_nll_python_float_var(form, rng):
    x = rng.normal(size=(N, 4))
    t = rng.normal(size=(N, 4))
    for reduction in REDUCTIONS:
        kw = {"reduction": reduction, "full": True}
        with torch.no_grad():
            expected = call("torch", "gauss", form, [tt(x), tt(t), 0.5], **kw).numpy()
        got = call("polyloss", "gauss", form, [tt(x), tt(t), 0.5], **kw)
        assert_close(got, expected, dtype="float64", n=x.size)


@pytest.mark.parametrize("form", ["class", "function"])
def test_gaussian_nll_bad_var_raises_valueerror_like_torch(form):
    x = np.zeros((N, 4))
    for var in (-np.ones((N, 4)), np.ones(4), np.ones((N, 3))):  # negative, two wrong shapes
        with pytest.raises(ValueError, match="var"):
            call("torch", "gauss", form, [tt(x), tt(x), tt(var)])
        for kind in ("numpy", "torch"):
            with pytest.raises(ValueError, match="var"):
                run_on(KINDS[kind], lambda a, b, v: call("polyloss", "gauss", form, [a, b, v]),
                       x, x, var)


# ---- 9. sigmoid_focal_loss (torchvision) ---------------------------------------------------------

@pytest.mark.parametrize("case", ["random", "soft", "pm100", "empty"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2), (-1, 2), (0.5, 0), (0.25, 1.5), (-1, 0)])
def test_sigmoid_focal_loss_matches_torchvision_formula(alpha, gamma, dtype, case, rng):
    shape = (0, 4) if case == "empty" else (N, 4)
    x = rng.normal(0.0, 3.0, size=shape)
    y = (rng.random(shape) < 0.5).astype(np.float64)
    if case == "soft":
        y = rng.uniform(size=shape)
    if case == "pm100":
        x = np.where(rng.random(shape) < 0.5, -100.0, 100.0)
    for reduction in REDUCTIONS:
        check("focal", "function", [x.astype(dtype), y.astype(dtype)], dtype=dtype,
              alpha=alpha, gamma=gamma, reduction=reduction)


def test_sigmoid_focal_loss_default_reduction_and_bad_reduction():
    x = np.linspace(-3, 3, 8).reshape(2, 4)
    y = np.array([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float64)
    expected = torchvision_sigmoid_focal_loss(tt(x), tt(y)).numpy()
    assert expected.shape == (2, 4)  # torchvision's default is reduction='none'
    assert_close(pt.sigmoid_focal_loss(tt(x), tt(y)), expected, dtype="float64")
    with pytest.raises(ValueError):
        torchvision_sigmoid_focal_loss(tt(x), tt(y), reduction="batchmean")
    with pytest.raises(ValueError):
        pt.sigmoid_focal_loss(x, y, reduction="batchmean")


# ---- 10. legacy size_average / reduce ------------------------------------------------------------

LEGACY = [(None, False), (False, None), (True, None), (False, True), (True, False)]


def legacy_inputs(loss, rng):
    if loss in ("ce", "nll"):
        x, t, arr_kw, _ = index_case("weight", "float64", rng)
        return [x, t], arr_kw
    if loss == "bce":
        p, y, arr_kw, _ = bce_case("weight", "float64", rng)
        return [p, y], arr_kw
    if loss == "bce_logits":
        x, y, arr_kw, _ = logit_case("pos_weight_weight", "float64", rng)
        return [x, y], arr_kw
    if loss == "kl":
        return list(kl_case("some_zero", "float64", False, rng)), {}
    return list(poisson_case("random", "float64", True, rng)), {}


@pytest.mark.parametrize("flags", LEGACY, ids=lambda f: f"size_average={f[0]}-reduce={f[1]}")
@pytest.mark.parametrize("form", ["class", "function"])
@pytest.mark.parametrize("loss", ["bce", "bce_logits", "ce", "nll", "kl", "poisson"])
def test_legacy_flags_warn_and_match_torch(loss, form, flags, rng):
    pos, arr_kw = legacy_inputs(loss, rng)
    legacy = {"size_average": flags[0], "reduce": flags[1]}
    match = "size_average and reduce args will be deprecated"
    with pytest.warns(UserWarning, match=match):
        ev, (eg,), _ = on_torch("torch", loss, form, pos, arr_kw, **legacy)
    with pytest.warns(UserWarning, match=match):
        gv, (gg,), _ = on_torch("polyloss", loss, form, pos, arr_kw, **legacy)
    assert_close(gv, ev, dtype="float64", n=pos[0].size)
    assert_close(gg, eg, dtype="float64", n=pos[0].size)
    if form == "class":
        with pytest.warns(UserWarning):
            n_obj = getattr(torch.nn, SPECS[loss][0])(**legacy)
        with pytest.warns(UserWarning):
            m_obj = getattr(pt, SPECS[loss][0])(**legacy)
        assert m_obj.reduction == n_obj.reduction


# ---- 11. the same mirrors on every other array type, and on every autograd backend ---------------

@dataclass(frozen=True)
class Case:
    loss: str
    pos: list
    arr_kw: dict = field(default_factory=dict)
    kw: dict = field(default_factory=dict)
    reductions: tuple = REDUCTIONS
    forms: tuple = ("class", "function")


def cross_case(name, dtype, rng):
    if name.startswith("ce_index_") or name.startswith("nll_"):
        loss, _, sub = name.partition("_")
        sub = sub.removeprefix("index_")
        x, t, arr_kw, kw = index_case(sub, dtype, rng)
        if loss == "ce":
            kw = {**kw, "label_smoothing": 0.1}
        return Case(loss, [x, t], arr_kw, kw)
    if name.startswith("ce_prob_"):
        x, t, arr_kw, kw = prob_case(name.removeprefix("ce_prob_"), dtype, rng)
        return Case("ce", [x, t], arr_kw, kw)
    if name.startswith("bce_logits_"):
        x, y, arr_kw, _ = logit_case(name.removeprefix("bce_logits_"), dtype, rng)
        return Case("bce_logits", [x, y], arr_kw)
    if name.startswith("bce_"):
        p, y, arr_kw, _ = bce_case(name.removeprefix("bce_"), dtype, rng)
        return Case("bce", [p, y], arr_kw)
    if name.startswith("kl_"):
        log_target = name.endswith("log")
        x, t = kl_case("some_zero", dtype, log_target, rng)
        return Case("kl", [x, t], kw={"log_target": log_target}, reductions=KL_REDUCTIONS)
    if name.startswith("poisson_"):
        log_input = name == "poisson_log"
        x, t = poisson_case("zero_rate", dtype, log_input, rng)
        return Case("poisson", [x, t], kw={"log_input": log_input, "full": True})
    if name.startswith("gauss_"):
        x, t, var, kw = gauss_case(name.removeprefix("gauss_"), dtype, rng)
        return Case("gauss", [x, t, var], kw={**kw, "full": True})
    assert name == "focal"
    x = rng.normal(0.0, 3.0, size=(N, 4)).astype(dtype)
    y = (rng.random((N, 4)) < 0.5).astype(dtype)
    return Case("focal", [x, y], kw={"gamma": 1.5}, forms=("function",))


CROSS_CASES = ["ce_index_weight", "ce_index_spatial", "ce_index_all_ignored", "ce_index_empty",
               "ce_index_unbatched", "nll_ignore_custom", "ce_prob_weight_smooth",
               "ce_prob_spatial", "bce_edges_weight", "bce_weight_row", "bce_logits_3d_pos_weight",
               "bce_logits_pm1e4", "kl_prob", "kl_log", "poisson_log", "poisson_rate",
               "gauss_one_dim_short", "gauss_below_eps", "focal"]


def mirror_fn(case, form, reduction):
    n_pos = len(case.pos)
    keys = list(case.arr_kw)

    def f(*arrays):
        return call("polyloss", case.loss, form, arrays[:n_pos], dict(zip(keys, arrays[n_pos:], strict=True)),
                    **case.kw, reduction=reduction)

    return f


@pytest.mark.parametrize("name", CROSS_CASES)
@pytest.mark.parametrize("kind", kind_params(exclude=("torch",)))
def test_every_backend_matches_torch(kind, name, rng):
    """float64 on NumPy, JAX, TensorFlow, MXNet (mx.np and mx.nd), array-api-strict and
    Dask: torch's value, returned as the caller's array type (``run_on`` asserts it)."""
    case = cross_case(name, "float64", rng)
    arrays = [*case.pos, *case.arr_kw.values()]
    bugs = KnownBugs()
    for form in case.forms:
        for reduction in case.reductions:
            ev, _, _ = on_torch("torch", case.loss, form, case.pos, case.arr_kw, grad=(),
                                **case.kw, reduction=reduction)
            got = run_on(kind, mirror_fn(case, form, reduction), *arrays, bugs=bugs)
            bugs.assert_close(kind, got, ev, dtype="float64", n=case.pos[0].size,
                              err_msg=f"{form} reduction={reduction}")
    bugs.check()


GRAD_CASES = ["ce_index_weight", "ce_index_spatial", "ce_index_all_ignored", "nll_ignore_custom",
              "ce_prob_weight_smooth", "bce_edges_weight", "bce_tiny_denominator",
              "bce_logits_pos_weight_weight", "bce_logits_pm100", "kl_prob", "kl_log",
              "poisson_rate", "gauss_last_dim_1", "gauss_below_eps", "focal"]


@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradient_matches_torch_on_every_autograd_backend(autograd_backend, name, rng):
    """Gradient w.r.t. the input on torch, JAX, TensorFlow and MXNet (float64), including
    torch's clamped BCE backward at p = 0, 1 and where p(1 - p) < 1e-12, and its zero
    gradient when every target is ignored."""
    case = cross_case(name, "float64", rng)
    arrays = [*case.pos, *case.arr_kw.values()]
    reduction = "sum" if case.loss == "kl" else "mean"
    ev, (eg,), _ = on_torch("torch", case.loss, case.forms[-1], case.pos, case.arr_kw,
                            **case.kw, reduction=reduction)
    value, grad = autograd_backend.value_and_grad(mirror_fn(case, case.forms[-1], reduction),
                                                  arrays, 0)
    n = case.pos[0].size
    assert_close(value, ev, dtype="float64", n=n)
    assert_close(grad, eg, dtype="float64", n=n, atol=grad_atol(case.loss, eg, "float64", n))


# ---- 12. signatures ------------------------------------------------------------------------------

def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("loss", [k for k in SPECS if k != "focal"])
def test_signatures_match_torch(loss):
    """Constructor, forward and functional: same names, order, kinds and defaults as torch
    (PoissonNLLLoss.forward's first parameter is torch's ``log_input``)."""
    cls_name, fn_name = SPECS[loss]
    assert _params(getattr(pt, cls_name).__init__) == _params(getattr(torch.nn, cls_name).__init__)
    assert _params(getattr(pt, cls_name).forward) == _params(getattr(torch.nn, cls_name).forward)
    assert _params(getattr(pt, fn_name)) == _params(getattr(F, fn_name))


def test_sigmoid_focal_loss_signature_is_torchvisions():
    # torchvision.ops.sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction='none')
    # (torchvision is not installed, so its documented signature is spelled out here)
    pk = inspect.Parameter.POSITIONAL_OR_KEYWORD
    empty = inspect.Parameter.empty
    assert _params(pt.sigmoid_focal_loss) == [
        ("inputs", pk, empty), ("targets", pk, empty), ("alpha", pk, 0.25), ("gamma", pk, 2),
        ("reduction", pk, "none")]


def test_class_defaults_equal_torchs():
    """The attributes torch stores on the module (ignore_index, label_smoothing, log_input,
    full, eps, log_target, reduction) have torch's defaults."""
    attrs = {"CrossEntropyLoss": ("ignore_index", "label_smoothing", "reduction"),
             "NLLLoss": ("ignore_index", "reduction"), "KLDivLoss": ("log_target", "reduction"),
             "PoissonNLLLoss": ("log_input", "full", "eps", "reduction"),
             "GaussianNLLLoss": ("full", "eps", "reduction"), "BCELoss": ("reduction",),
             "BCEWithLogitsLoss": ("reduction",)}
    for cls_name, names in attrs.items():
        n_obj, m_obj = getattr(torch.nn, cls_name)(), getattr(pt, cls_name)()
        for a in names:
            assert getattr(m_obj, a) == getattr(n_obj, a), f"{cls_name}.{a}"


# ---- 13. bad input -------------------------------------------------------------------------------

def _raises_in_torch_and_mirror(torch_exc, mirror_exc, match, loss, pos, arr_kw=None, **kw):
    with pytest.raises(torch_exc):
        call("torch", loss, "function", [tt(a) for a in pos],
             {k: tt(v) for k, v in (arr_kw or {}).items()}, **kw)
    for kind in ("numpy", "torch"):
        for form in ("class", "function"):
            conv = KINDS[kind].asarray
            with pytest.raises(mirror_exc, match=match):
                call("polyloss", loss, form, [conv(a) for a in pos],
                     {k: conv(v) for k, v in (arr_kw or {}).items()}, **kw)


@pytest.mark.parametrize("loss", ["ce", "nll"])
@pytest.mark.parametrize("bad", ["too_big", "negative", "default_when_custom", "spatial_too_big"])
def test_out_of_range_labels_raise_valueerror_naming_target(loss, bad):
    """torch: IndexError from the kernel; the mirror: ValueError naming 'target'."""
    x = np.zeros((4, 3))
    t = np.array([0, 1, 2, 1], dtype=np.int64)
    kw = {}
    if bad == "too_big":
        t[2] = 3
    elif bad == "negative":
        t[2] = -1
    elif bad == "default_when_custom":  # -100 is only ignored while it is the ignore_index
        t[2] = -100
        kw["ignore_index"] = 2
    else:
        x = np.zeros((2, 3, 4, 4))
        t = np.zeros((2, 4, 4), dtype=np.int64)
        t[1, 2, 3] = 3
    _raises_in_torch_and_mirror((IndexError, RuntimeError), ValueError, "target", loss, [x, t],
                                **kw)


@pytest.mark.parametrize("loss", ["ce", "nll"])
@pytest.mark.parametrize("length", [2, 4])
def test_weight_of_wrong_length_raises_valueerror_naming_weight(loss, length):
    x = np.zeros((4, 3))
    t = np.array([0, 1, 2, 1], dtype=np.int64)
    _raises_in_torch_and_mirror(RuntimeError, ValueError, "weight", loss, [x, t],
                                {"weight": np.ones(length)})


@pytest.mark.parametrize("tshape", [(4, 4), (3, 3), (4, 3, 1)])
def test_probability_target_of_wrong_shape_raises_valueerror(tshape):
    x = np.zeros((4, 3))
    t = np.full(tshape, 1 / 3)
    _raises_in_torch_and_mirror((RuntimeError, ValueError), ValueError, None, "ce", [x, t])


INT_INPUT = {  # loss -> (target, whether torch itself refuses an integer input)
    "ce": (np.array([0, 1, 2, 1], dtype=np.int64), True),
    "nll": (np.array([0, 1, 2, 1], dtype=np.int64), True),
    "bce": (np.ones((4, 3), dtype=np.float32), True),
    "bce_logits": (np.ones((4, 3), dtype=np.float32), True),
    "kl": (np.ones((4, 3), dtype=np.float32), True),
    "poisson": (np.ones((4, 3), dtype=np.float32), False),  # torch computes in float
    "gauss": (np.ones((4, 3), dtype=np.float32), False),
    "focal": (np.ones((4, 3), dtype=np.float32), False),
}


@pytest.mark.parametrize("loss", list(INT_INPUT))
def test_integer_input_raises_typeerror(loss):
    x = np.ones((4, 3), dtype=np.int64)
    t, torch_refuses = INT_INPUT[loss]
    pos = [x, t] + ([np.ones((4, 3), dtype=np.float32)] if loss == "gauss" else [])
    kw = {"reduction": "sum"}
    if torch_refuses:
        with pytest.raises((RuntimeError, NotImplementedError)):
            call("torch", loss, "function", [tt(a) for a in pos], **kw)
    for kind in ("numpy", "torch"):
        for form in SPECS[loss][0] and ("class", "function") or ("function",):
            conv = KINDS[kind].asarray
            with pytest.raises(TypeError):
                call("polyloss", loss, form, [conv(a) for a in pos], **kw)


@pytest.mark.parametrize("loss", ["bce", "bce_logits", "ce", "nll", "kl", "poisson", "gauss"])
def test_invalid_reduction_raises_valueerror(loss):
    x = np.full((4, 3), 0.5)
    pos = {"ce": [x, np.array([0, 1, 2, 1])], "nll": [x, np.array([0, 1, 2, 1])],
           "gauss": [x, x, x]}.get(loss, [x, x])
    _raises_in_torch_and_mirror((ValueError, RuntimeError), ValueError, None, loss, pos,
                                reduction="avg")
