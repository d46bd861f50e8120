"""Connectionist temporal classification (CTC): the canonical ``polyloss.ctc`` against a brute-force
NumPy float64 oracle, and every mirror against its real native.

1. ``polyloss.torch``: ``ctc_loss`` / ``CTCLoss`` against torch 2.13's own
   (``torch.nn.functional.ctc_loss``): every reduction, ``zero_infinity``, blank 0 and non-zero,
   padded ``(N, S)`` and concatenated 1-D targets, unbatched ``(T, C)`` input, lengths as tensors,
   tuples and lists, int32 and int64 targets, float32 and float64, empty targets, infeasible
   alignments, and torch's gradient convention (``exp(log_probs) - posterior`` on the used
   frames, 0 past ``input_lengths``).
2. ``polyloss.keras``: ``ctc`` / ``CTC`` against Keras 3.15 on TensorFlow: every reduction,
   ``sample_weight``, float32 and float64 (Keras computes in float32 either way), trailing-zero
   padding, empty label rows, ``tf.GradientTape`` gradients, ``get_config``.
3. ``polyloss.gluon``: ``CTCLoss`` against MXNet 1.9.1 (``mx.nd`` arrays, float32 only: MXNet's
   CTC kernel fails on float64): layouts, label layouts, ``-1`` padding (also in the middle of a
   row), ``pred_lengths`` / ``label_lengths``, ``sample_weight`` and ``weight``, infeasible
   sequences (0).
4. ``polyloss.optax``: ``ctc_loss`` / ``ctc_loss_with_forward_probs`` against optax 0.2.8 (64-bit
   JAX, as the parity backends set it up): logit paddings in the middle and at the end, label
   paddings, ``blank_id``, ``log_epsilon``, the forward variables (unreachable states included),
   ``jax.grad``, ``jax.jit``, ``jax.vmap``.
5. Canonical ``polyloss.ctc`` on every installed backend against ``brute_force`` (below), which
   enumerates every alignment path of tiny cases and adds up their probabilities; gradients
   against the oracle's posteriors and against central finite differences; compiled runs.
6. Bad input, each error naming its argument.

Every expected mirror value and gradient comes from the native framework run here on the same
NumPy bits; canonical expectations from the brute-force oracle. Tolerances
(``_native.rtol_for``): float64 ``rtol = 1e-12``, float32 ``8·eps·log2(n)`` with ``n`` the number
of prediction elements. A CTC gradient is a difference of two probabilities
(``softmax - posterior``), each at most 1, so gradients also accept that relative tolerance
times the size of those terms (``scale`` in ``check``), never a blanket absolute tolerance.

Deliberate differences, checked as such: torch's gradient at an infinite (infeasible) loss is
NaN, polyloss's is 0; Keras reads a 0 inside a label row as padding, polyloss raises
``ValueError``; for infeasible label runs Keras/TensorFlow give a large finite value whose exact
size differs from polyloss's (see ``test_keras_infeasible_is_large_and_finite``); MXNet's gradient
of an infeasible sequence is garbage, polyloss's is 0.
"""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest
from _native import (
    assert_close_scaled as check,
)
from _native import (
    natives,
    needs,
    to_numpy,
)
from conftest import INSTALLED_NAMES

import polyloss
from polyloss.parity.backends import BACKENDS

pytestmark = [pytest.mark.native]


torch, tf, keras, jax, optax, mx = natives("torch", "tensorflow", "keras", "jax", "optax", "mxnet")
needs_torch, needs_keras, needs_optax, needs_mxnet = (needs(n) for n in ("torch", "keras", "optax", "mxnet"))

DTYPES = ("float32", "float64")


def _params(fn, drop=()):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in drop]


def log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def distinct_labels(rng, shape, blank, num_classes):
    """Random class indices other than ``blank``."""
    classes = np.array([k for k in range(num_classes) if k != blank])
    return classes[rng.integers(0, classes.size, size=shape)].astype(np.int64)


# =================================================================================================
# the brute-force oracle
# =================================================================================================

def collapse(path, blank):
    """CTC's many-to-one map: merge runs of equal symbols, then drop the blanks."""
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def brute_force(log_probs, labels, blank):
    """``(-log p(labels), posterior)`` of one sequence by brute force: enumerate all ``C**T``
    paths (``T <= 5``, ``C <= 3`` here), keep those that collapse to ``labels``, add up their
    probabilities ``Π_t exp(log_probs[t, π_t])`` (``math.fsum``: exactly rounded). ``posterior``
    ``(T, C)`` is the share of that total whose path emits class ``c`` at frame ``t``; the
    probabilities are used as given (not renormalised). ``(inf, 0)`` when no path fits."""
    lp = np.asarray(log_probs, dtype=np.float64)
    t, c = lp.shape
    target = tuple(int(v) for v in labels)
    weights, paths = [], []
    for path in itertools.product(range(c), repeat=t):
        if collapse(path, blank) == target:
            weights.append(math.exp(math.fsum(lp[i, k] for i, k in enumerate(path))))
            paths.append(path)
    total = math.fsum(weights)
    post = np.zeros((t, c))
    if total == 0.0:
        return math.inf, post
    for path, w in zip(paths, weights, strict=True):
        post[np.arange(t), list(path)] += w / total
    return -math.log(total), post


def ctc_oracle(pred, labels, input_lengths, label_lengths, *, blank=0, layout="NTC", from_logits=True,
               zero_infinity=False, normalize_by_length=False):
    """Per-sequence loss ``(N,)`` and its derivative w.r.t. ``pred`` (in ``pred``'s layout), in
    float64: ``-log p`` from ``brute_force`` on each sequence's first ``input_length`` frames and
    first ``label_length`` labels. The derivative is ``-posterior`` w.r.t. log-probabilities and
    ``softmax - posterior`` w.r.t. logits (the posterior sums to 1 over the classes of a used
    frame), 0 on frames past the input length and for infeasible sequences (``inf``, or 0 with
    ``zero_infinity``). ``normalize_by_length`` divides both by ``max(label_length, 1)``."""
    x = np.asarray(pred, dtype=np.float64)
    if layout == "TNC":
        x = x.transpose(1, 0, 2)
    n, _, num_classes = x.shape
    blank %= num_classes
    lp = log_softmax(x) if from_logits else x
    loss, grad = np.zeros(n), np.zeros(x.shape)
    for i in range(n):
        ti, li = int(input_lengths[i]), int(label_lengths[i])
        nll, post = brute_force(lp[i, :ti], labels[i, :li], blank)
        if math.isinf(nll):
            loss[i] = 0.0 if zero_infinity else math.inf
            continue
        loss[i] = nll
        grad[i, :ti] = (np.exp(lp[i, :ti]) - post) if from_logits else -post
    if normalize_by_length:
        div = np.maximum(np.asarray(label_lengths, dtype=np.float64), 1.0)
        loss, grad = loss / div, grad / div[:, None, None]
    return loss, (grad.transpose(1, 0, 2) if layout == "TNC" else grad)


def reduce_oracle(loss, reduction, w=None, normalizer="count"):
    """The canonical reduction over sequences, and the factor it applies to each sequence."""
    loss = np.asarray(loss, dtype=np.float64)
    wb = np.ones(loss.shape) if w is None else np.asarray(w, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        weighted = loss * wb
    if reduction == "none":
        return weighted, wb
    if reduction == "sum":
        return weighted.sum(), wb
    denom = wb.sum() if (reduction == "mean" and normalizer == "sum_of_weights") else loss.size
    return weighted.sum() / denom, wb / denom


def test_oracle_on_numbers_worked_out_by_hand():
    """Two frames, classes {blank 0, a 1}, uniform ``p = ½``: "a" has the paths ``a-, -a, aa``
    (3 of the 4 paths), so ``-log p = -log ¾``; "aa" cannot fit in 2 frames (it needs ``a-a``);
    the empty sequence has the single path ``--`` (¼). The posterior of "a" at frame 0 is
    ``P(a at 0) = 2/3`` (paths ``a-`` and ``aa``), by hand."""
    lp = np.log(np.full((2, 2), 0.5))
    nll, post = brute_force(lp, [1], 0)
    assert nll == pytest.approx(-math.log(0.75), rel=1e-15)
    np.testing.assert_allclose(post, [[1 / 3, 2 / 3], [1 / 3, 2 / 3]], rtol=1e-15)
    assert brute_force(lp, [1, 1], 0)[0] == math.inf
    assert brute_force(lp, [], 0)[0] == pytest.approx(-math.log(0.25), rel=1e-15)
    # three frames: "aa" has exactly one path, a-a: p = 1/8 (by hand)
    assert brute_force(np.log(np.full((3, 2), 0.5)), [1, 1], 0)[0] == pytest.approx(math.log(8), rel=1e-15)


# =================================================================================================
# 5. canonical polyloss.ctc against the brute-force oracle
# =================================================================================================

CN, CT, CC = 5, 5, 3  # sequences, frames, classes: tiny, so that brute_force sees 3**5 paths


def canon_data(dtype, rng, blank=0, from_logits=True):
    """``(pred (N, T, C), labels (N, 2) padded with -1, input_lengths, label_lengths)``: labels
    "ab" in 5 frames, "bb" (a repeat: needs 3 frames) in 4, "a" in 3, "" in 5, and "aa" in 2 frames
    (infeasible: ``inf``), with ``a``, ``b`` the two classes other than ``blank``."""
    x = rng.normal(0.0, 1.5, size=(CN, CT, CC))
    a, b = (k for k in range(CC) if k != blank % CC)
    labels = np.array([[a, b], [b, b], [a, -1], [-1, -1], [a, a]], dtype=np.int64)
    input_lengths = np.array([5, 4, 3, 5, 2], dtype=np.int64)
    label_lengths = np.array([2, 2, 1, 0, 2], dtype=np.int64)
    pred = x if from_logits else log_softmax(x)
    return pred.astype(dtype), labels, input_lengths, label_lengths


# name -> (keyword arguments, how the lengths are passed: "padding" (none: -1 padding, all T
# frames), "arrays", "python" (a list and a tuple), "int" (one input length for all))
CANON_CONFIGS = {
    "padding": ({}, "padding"),
    "lengths": ({}, "arrays"),
    "python-lengths": ({}, "python"),
    "int-length": ({}, "int"),
    "tnc": ({"layout": "TNC"}, "arrays"),
    "log-probs": ({"from_logits": False}, "arrays"),
    "blank2": ({"blank": 2}, "arrays"),
    "blank-1": ({"blank": -1}, "arrays"),
    "zero-infinity": ({"zero_infinity": True}, "arrays"),
    "normalized": ({"normalize_by_length": True, "zero_infinity": True}, "arrays"),
    "tnc-log-probs-normalized": ({"layout": "TNC", "from_logits": False, "normalize_by_length": True},
                                 "arrays"),
}
CANON_REDUCTIONS = [("none", "count"), ("sum", "count"), ("mean", "count"), ("mean", "sum_of_weights"),
                    ("batchmean", "count")]


def canon_case(config, dtype, rng):
    """``(pred, labels, input_lengths, label_lengths, call kwargs, oracle lengths)``; the lengths
    the call gets are NumPy arrays (moved to the backend by the caller), Python ints or None."""
    kw, lengths = CANON_CONFIGS[config]
    pred, labels, il, ll = canon_data(dtype, rng, blank=kw.get("blank", 0),
                                      from_logits=kw.get("from_logits", True))
    if kw.get("layout") == "TNC":
        pred = np.ascontiguousarray(pred.transpose(1, 0, 2))
    call_il, call_ll = il, ll
    if lengths == "padding":
        call_il = call_ll = None
        il = np.full(CN, CT)
        ll = (labels != -1).sum(1)
    elif lengths == "python":
        call_il, call_ll = [int(v) for v in il], tuple(int(v) for v in ll)
    elif lengths == "int":
        call_il, call_ll, il = 4, None, np.full(CN, 4)
    return pred, labels, call_il, call_ll, kw, (il, ll)


def canon_expected(pred, labels, lengths, kw, reduction, w, normalizer):
    loss, grad = ctc_oracle(pred, labels, *lengths, **kw)
    value, coef = reduce_oracle(loss, reduction, w, normalizer)
    ntc = kw.get("layout", "NTC") == "NTC"
    return value, grad * (coef[:, None, None] if ntc else coef[None, :, None])


def canon_call(backend, pred, labels, il, ll, w, **kw):
    mv = backend.asarray
    return polyloss.ctc(mv(pred), mv(labels), mv(il) if isinstance(il, np.ndarray) else il,
                        mv(ll) if isinstance(ll, np.ndarray) else ll,
                        sample_weight=None if w is None else mv(w), **kw)


def _is_callers_type(backend, out, like):
    if backend.name == "numpy":
        return isinstance(out, (np.ndarray, np.generic))
    return isinstance(out, type(like))


# eager JAX, TensorFlow, MXNet and Dask pay per new shape, dtype and operation (compilation,
# graph building): there float32 runs the 'lengths' configuration only. Dask builds and computes
# a graph of the whole frame loop per call (~0.6 s): three configurations, and three of the
# reductions (the reduction code is shared with every other backend).
HEAVY = ("jax", "tensorflow", "mxnet", "dask")
DASK_CONFIGS = ("padding", "lengths", "tnc-log-probs-normalized")
DASK_REDUCTIONS = (("none", "count", False), ("sum", "count", False), ("mean", "sum_of_weights", True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_canonical_values_match_brute_force(backend, dtype, rng):
    """Every configuration on every installed backend (reduction 'none'); the 'lengths' one also
    with every reduction, unweighted and with one weight per sequence."""
    w = rng.uniform(0.5, 2.0, size=CN).astype(dtype)
    for config in CANON_CONFIGS:
        if backend.name in HEAVY and dtype == "float32" and config != "lengths":
            continue
        if backend.name == "dask" and config not in DASK_CONFIGS:
            continue
        pred, labels, il, ll, kw, lengths = canon_case(config, dtype, rng)
        runs = [("none", "count", None)]
        if config == "lengths":
            runs = [(r, nz, ww) for r, nz in CANON_REDUCTIONS for ww in (None, w)
                    if ww is not None or nz == "count"]
            if backend.name == "dask":
                runs = [(r, nz, w if weighted else None) for r, nz, weighted in DASK_REDUCTIONS]
        for reduction, normalizer, ww in runs:
            out = canon_call(backend, pred, labels, il, ll, ww, reduction=reduction,
                             normalizer=normalizer, **kw)
            assert _is_callers_type(backend, out, backend.asarray(pred)), type(out)
            want, _ = canon_expected(pred, labels, lengths, kw, reduction, ww, normalizer)
            check(backend.to_numpy(out), np.asarray(want).astype(dtype), dtype=dtype, n=pred.size,
                  err_msg=f"{backend.name} {config} {reduction} {normalizer} w={ww is not None}")
            if config == "lengths" and reduction == "none":
                assert np.isinf(backend.to_numpy(out)[4])  # "aa" in 2 frames


CANON_GRAD_CONFIGS = ("padding", "lengths", "tnc", "log-probs", "blank2", "zero-infinity", "normalized",
                      "tnc-log-probs-normalized")


def central_differences(fn, x, h=1e-5):
    """d sum(fn(x)) / dx by central differences, one element at a time."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (np.sum(fn(up)) - np.sum(fn(down))) / (2 * h)
    return g


@pytest.mark.parametrize("config", CANON_GRAD_CONFIGS)
def test_canonical_gradient_matches_brute_force_posterior(autograd_backend, config, rng):
    """float64 d/d pred on every autograd backend against the oracle's ``softmax - posterior``
    (logits) / ``-posterior`` (log-probabilities), weighted mean over the weights: 0 on frames past
    each input length and for the infeasible "aa" (whose value is ``inf``, or 0 with
    ``zero_infinity``)."""
    pred, labels, il, ll, kw, lengths = canon_case(config, "float64", rng)
    w = rng.uniform(0.5, 2.0, size=CN)
    red = {"reduction": "mean", "normalizer": "sum_of_weights"}
    mv = autograd_backend.asarray
    value, grad = autograd_backend.value_and_grad(
        lambda x, ww: polyloss.ctc(x, mv(labels), None if il is None else mv(il),
                                   None if ll is None else mv(ll), sample_weight=ww, **kw, **red),
        [pred, w], 0)
    want, gwant = canon_expected(pred, labels, lengths, kw, "mean", w, "sum_of_weights")
    msg = f"{autograd_backend.name} {config}"
    check(value, np.asarray(want), dtype="float64", n=pred.size, err_msg=msg)
    # each gradient entry is softmax - posterior (both in [0, 1]) times the weight factor
    check(grad, gwant, dtype="float64", n=pred.size, scale=2.0 * np.abs(gwant).max(), err_msg=msg)
    frames = np.arange(CT)[None, :] >= lengths[0][:, None]  # (N, T): frames past the input length
    past = frames if kw.get("layout", "NTC") == "NTC" else frames.T
    assert np.all(grad[past] == 0.0), msg


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "log-probs"])
def test_canonical_gradient_matches_central_differences(from_logits, rng):
    """NumPy float64 values differenced centrally (h = 1e-5) against the oracle's analytic
    derivative and the autograd gradients of the installed backends. Central differences are
    only accurate to about ``h²/6·|f'''| + eps·Σ|loss|/h`` ≈ 2e-11 + 1e-9 here (the losses are
    < 10 and their third derivatives O(1)), so this one comparison uses an absolute 1e-8: it
    checks the oracle's derivative formula, which every other gradient test relies on at 1e-12."""
    pred, labels, il, ll = canon_data("float64", rng, from_logits=from_logits)
    kw = {"from_logits": from_logits, "zero_infinity": True, "reduction": "none"}
    fd = central_differences(lambda x: polyloss.ctc(x, labels, il, ll, **kw), pred)
    _, gwant = ctc_oracle(pred, labels, il, ll, from_logits=from_logits, zero_infinity=True)
    np.testing.assert_allclose(fd, gwant, rtol=0, atol=1e-8)
    for name in ("torch", "jax", "tensorflow", "mxnet"):
        if name in INSTALLED_NAMES:
            b = BACKENDS[name]
            b.setup()
            _, g = b.value_and_grad(lambda x, b=b: polyloss.ctc(x, b.asarray(labels), b.asarray(il),
                                                                  b.asarray(ll), **kw), [pred], 0)
            np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8, err_msg=name)


@needs_torch
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_canonical_equals_torch_mean_convention(zero_infinity, rng):
    """``layout='TNC', from_logits=False, normalize_by_length=True, reduction='mean'`` is
    ``torch.nn.functional.ctc_loss(..., reduction='mean')`` (each loss over its target length,
    then the batch mean), values and gradients, computed by torch here."""
    pred, labels, il, ll = canon_data("float64", rng, from_logits=False)
    lp = np.ascontiguousarray(pred.transpose(1, 0, 2))
    targets = np.where(labels < 0, 1, labels)  # torch reads only target_lengths labels
    outs = []
    for fn in ("torch", "polyloss"):
        x = torch.from_numpy(lp.copy()).requires_grad_(True)
        if fn == "torch":
            v = torch.nn.functional.ctc_loss(x, torch.from_numpy(targets), torch.from_numpy(il),
                                             torch.from_numpy(ll), zero_infinity=zero_infinity)
        else:
            v = polyloss.ctc(x, torch.from_numpy(labels), torch.from_numpy(il), torch.from_numpy(ll),
                             layout="TNC", from_logits=False, normalize_by_length=True,
                             zero_infinity=zero_infinity)
        (g,) = torch.autograd.grad(v, x)
        outs.append((v.detach().numpy(), g.numpy()))
    check(outs[1][0], outs[0][0], dtype="float64", n=lp.size)
    if zero_infinity:
        # torch's gradient w.r.t. log_probs adds exp(log_probs) on the used frames (its
        # convention, see test_torch_gradient_convention) on the used frames of the feasible
        # sequences (both give 0 for the infeasible "aa"); canonical's is the true -posterior
        feasible = np.isfinite(ctc_oracle(pred, labels, il, ll, from_logits=False)[0])
        used = ((np.arange(CT)[:, None] < il[None, :]) & feasible)[..., None]
        used = used / np.maximum(ll, 1)[None, :, None] / CN
        check(outs[1][1], outs[0][1] - np.exp(lp) * used, dtype="float64", n=lp.size, scale=2.0 / CN)
    else:
        assert np.isinf(outs[0][0]) and np.isinf(outs[1][0])


@pytest.mark.compiled
def test_canonical_compiled_equals_eager(compiled_backend, rng):
    """``jax.jit``, ``tf.function`` and ``torch.compile`` (fullgraph, eager backend) give the
    eager values, with length arrays and with -1 padding (no checks run under compilation)."""
    pred, labels, il, ll = canon_data("float64", rng)
    b = compiled_backend
    runs = [((il, ll), {"zero_infinity": True}), ((), {"reduction": "sum"})]
    if b.name == "tensorflow":  # tf.function tracing of the frame loop costs ~4 s per function
        runs = runs[:1]
    for args, kw in runs:
        fn = lambda x, y, *lengths, kw=kw: polyloss.ctc(x, y, *lengths, **kw)  # noqa: E731
        eager = b.to_numpy(fn(*[b.asarray(a) for a in (pred, labels, *args)]))
        compiled = b.run_compiled(fn, [pred, labels, *args])
        check(compiled, eager, dtype="float64", n=pred.size, err_msg=f"{b.name} {kw}")


# =================================================================================================
# 1. polyloss.torch against torch.nn.functional.ctc_loss / torch.nn.CTCLoss
# =================================================================================================

pt = F = None
if torch is not None:
    import polyloss.torch as pt

    F = torch.nn.functional

TT, TN, TC, TS = 7, 4, 5, 3  # frames, batch, classes, label positions
TORCH_REDUCTIONS = ("none", "mean", "sum")


def torch_data(dtype, rng, blank=0, infeasible=False):
    """``(log_probs (T, N, C), targets (N, S), input_lengths, target_lengths)``: 3 labels in 7
    frames, 3 labels with a repeat (needs 4 frames) in 6, no labels in 5, 2 labels in 3 frames.
    ``infeasible``: the last sequence is "aa" in 2 frames instead (needs 3: ``inf``). Positions past
    a target length hold random classes (torch never reads them)."""
    lp = log_softmax(rng.normal(0.0, 1.5, size=(TT, TN, TC))).astype(dtype)
    targets = distinct_labels(rng, (TN, TS), blank, TC)
    targets[1, 1] = targets[1, 0]
    il = np.array([7, 6, 5, 3], dtype=np.int64)
    tl = np.array([3, 3, 0, 2], dtype=np.int64)
    if infeasible:
        targets[3, 1] = targets[3, 0]
        il[3] = 2
    return lp, targets, il, tl


def _lengths(v, how, dtype):
    if how == "tensor":
        return torch.from_numpy(v.astype(dtype))
    return (tuple if how == "tuple" else list)(int(i) for i in v)


def torch_run(lib, form, lp, targets, il, tl, *, lengths="tensor", index_dtype=np.int64, **kw):
    """``(value, d value.sum() / d log_probs)`` on torch tensors, from torch or the mirror."""
    x = torch.from_numpy(lp.copy()).requires_grad_(True)
    t = torch.from_numpy(targets.astype(index_dtype))
    args = (x, t, _lengths(il, lengths, index_dtype), _lengths(tl, lengths, index_dtype))
    if form == "class":
        out = (torch.nn if lib == "torch" else pt).CTCLoss(**kw)(*args)
    else:
        out = (F if lib == "torch" else pt).ctc_loss(*args, **kw)
    assert isinstance(out, torch.Tensor), f"{lib}: {type(out)}"
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach().numpy(), g.numpy()


def concatenated(targets, tl):
    return np.concatenate([targets[i, :tl[i]] for i in range(targets.shape[0])])


def torch_grad_scale(tl, reduction, shape):
    """Each gradient entry is ``(exp(log_probs) - posterior)`` (both in [0, 1]) times the
    reduction's factor: 1, or ``1/(N·max(target_length, 1))`` for 'mean'."""
    if reduction != "mean":
        return 2.0
    n = shape[1] if len(shape) == 3 else 1
    factor = 1.0 / (n * np.maximum(np.atleast_1d(tl), 1))
    return 2.0 * np.broadcast_to(factor[None, :, None] if len(shape) == 3 else factor, shape)


def torch_check(lp, targets, il, tl, dtype, forms=("class", "function"), reductions=TORCH_REDUCTIONS,
                nan_grad_rows=(), **kw):
    """Mirror == torch: values and gradients, for each form and reduction. ``nan_grad_rows``:
    sequences whose loss is ``inf``, where torch's gradient is NaN (on the sequence's frames) and
    polyloss's is 0 (the documented difference), asserted as such."""
    for form in forms:
        for reduction in reductions:
            ev, eg = torch_run("torch", form, lp, targets, il, tl, reduction=reduction, **kw)
            gv, gg = torch_run("polyloss", form, lp, targets, il, tl, reduction=reduction, **kw)
            msg = f"{form} reduction={reduction} {kw}"
            check(gv, ev, dtype=dtype, n=lp.size, err_msg=msg)
            for row in nan_grad_rows:  # torch: NaN on the used frames, 0 past them
                assert np.isnan(eg[:il[row], row]).all() and (eg[il[row]:, row] == 0).all(), msg
                assert (gg[:, row] == 0).all(), msg
                eg = eg.copy()
                eg[:, row] = 0.0
            check(gg, eg, dtype=dtype, n=lp.size, scale=torch_grad_scale(tl, reduction, lp.shape),
                  err_msg="d/d log_probs " + msg)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("zero_infinity", [False, True], ids=["inf", "zero_infinity"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("blank", [0, 3])
def test_torch_matches_torch(blank, layout, zero_infinity, dtype, rng):
    """Every reduction, class and function form, on padded (N, S) and concatenated 1-D targets,
    with a repeat, an empty target, and (with ``zero_infinity``) an infeasible sequence (0)."""
    lp, targets, il, tl = torch_data(dtype, rng, blank=blank, infeasible=zero_infinity)
    if layout == "concatenated":
        targets = concatenated(targets, tl)
    torch_check(lp, targets, il, tl, dtype, blank=blank, zero_infinity=zero_infinity)


@needs_torch
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=["int32", "int64"])
@pytest.mark.parametrize("lengths", ["tensor", "tuple", "list"])
def test_torch_length_types_and_index_dtypes(lengths, index_dtype, rng):
    """Lengths as tensors, tuples or lists; targets (and length tensors) int32 or int64."""
    lp, targets, il, tl = torch_data("float64", rng)
    torch_check(lp, targets, il, tl, "float64", lengths=lengths, index_dtype=index_dtype)
    torch_check(lp, concatenated(targets, tl), il, tl, "float64", forms=("function",), lengths=lengths,
                index_dtype=index_dtype)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths", ["0-d tensor", "tuple"])
def test_torch_unbatched_matches_torch(lengths, dtype, rng):
    """``(T, C)`` log-probs with 1-D targets; lengths a 0-d tensor or a 1-tuple; also an empty
    target and one that does not fit (``zero_infinity``)."""
    lp, targets, il, tl = torch_data(dtype, rng, blank=1)
    # unbatched, torch reads 1-D targets as exactly the target_length labels (an empty target:
    # test_empty_label_dimension)
    for tgt, i_len, t_len in ((targets[1], 6, 3), (targets[1, :2], 3, 2)):
        def conv(v):
            return torch.tensor(v) if lengths == "0-d tensor" else (v,)
        for zero_infinity in (False, True):
            for reduction in TORCH_REDUCTIONS:
                outs = []
                for lib in ("torch", "polyloss"):
                    x = torch.from_numpy(lp[:, 1].copy()).requires_grad_(True)
                    fn = F.ctc_loss if lib == "torch" else pt.ctc_loss
                    v = fn(x, torch.from_numpy(tgt), conv(i_len), conv(t_len), blank=1, reduction=reduction,
                           zero_infinity=zero_infinity)
                    (g,) = torch.autograd.grad(v, x)
                    outs.append((v.detach().numpy(), g.numpy()))
                msg = f"{t_len} labels in {i_len} frames {reduction} zero_infinity={zero_infinity}"
                check(outs[1][0], outs[0][0], dtype=dtype, n=lp[:, 1].size, err_msg=msg)
                (_, eg), (_, gg) = outs
                if np.isinf(outs[0][0]):  # repeats that do not fit: NaN from torch, 0 from polyloss
                    assert np.isnan(eg).all() and (gg == 0).all(), msg
                    continue
                scale = 2.0 / max(t_len, 1) if reduction == "mean" else 2.0
                check(gg, eg, dtype=dtype, n=lp[:, 1].size, scale=scale, err_msg=msg)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_infeasible_is_inf_with_zero_gradient(dtype, rng):
    """Repeats that do not fit ("aa" in 2 frames): ``inf`` as in torch (0 with
    ``zero_infinity``, tested above); torch's gradient for that sequence is NaN, polyloss's 0
    (documented difference), the other sequences' gradients are torch's."""
    lp, targets, il, tl = torch_data(dtype, rng, infeasible=True)
    torch_check(lp, targets, il, tl, dtype, nan_grad_rows=(3,))
    v, _ = torch_run("polyloss", "function", lp, targets, il, tl, reduction="none")
    assert np.isinf(v[3]) and np.isfinite(v[:3]).all()


@needs_torch
def test_torch_gradient_convention(rng):
    """The mirror's gradient w.r.t. ``log_probs`` (reduction 'sum') is torch's convention,
    ``exp(log_probs) - posterior`` on each sequence's used frames and 0 past its input length,
    with the posterior from ``brute_force``; torch's own gradient is the same."""
    pred, labels, il, ll = canon_data("float64", rng, from_logits=False)
    pred, labels, il, ll = pred[:4], labels[:4], il[:4], ll[:4]  # the feasible sequences
    lp = np.ascontiguousarray(pred.transpose(1, 0, 2))
    targets = np.where(labels < 0, 1, labels)
    _, minus_post = ctc_oracle(pred, labels, il, ll, from_logits=False)
    used = np.arange(CT)[None, :, None] < il[:, None, None]
    want = np.where(used, np.exp(pred) + minus_post, 0.0).transpose(1, 0, 2)
    for lib in ("torch", "polyloss"):
        _, g = torch_run(lib, "function", lp, targets, il, ll, reduction="sum")
        check(g, want, dtype="float64", n=lp.size, scale=2.0, err_msg=lib)
        assert np.all(g[~used.transpose(1, 0, 2).repeat(CC, axis=2)] == 0.0), lib


@needs_torch
def test_torch_signatures_and_attributes_match_torch():
    assert _params(pt.ctc_loss) == _params(F.ctc_loss)
    assert _params(pt.CTCLoss.__init__) == _params(torch.nn.CTCLoss.__init__)
    assert _params(pt.CTCLoss.forward) == _params(torch.nn.CTCLoss.forward)
    n_obj, m_obj = torch.nn.CTCLoss(blank=2, reduction="sum", zero_infinity=True), pt.CTCLoss(
        blank=2, reduction="sum", zero_infinity=True)
    for attr in ("blank", "reduction", "zero_infinity"):
        assert getattr(m_obj, attr) == getattr(n_obj, attr), attr


@pytest.mark.parametrize("case", [
    pytest.param("unbatched", marks=needs_torch), pytest.param("concatenated", marks=needs_torch),
    "canonical", pytest.param("optax", marks=needs_optax)])
def test_empty_label_dimension(case, rng):
    """No labels at all: ``-log p = -Σ_t log p_t(blank)`` (the single all-blank path, by hand),
    as torch computes for an unbatched empty target and for concatenated targets that are all
    empty; the canonical loss on labels of shape (N, 0) likewise; optax's three outputs (loss,
    forward variables of shapes (T, B, 1) and (T, B, 0), gradient) on labels of shape (B, 0)."""
    lp = log_softmax(rng.normal(0.0, 1.5, size=(TT, TN, TC)))
    il = np.array([7, 6, 5, 3], dtype=np.int64)
    zero = np.zeros(TN, dtype=np.int64)
    want = -np.array([lp[:il[i], i, 0].sum() for i in range(TN)])
    empty = None if torch is None else torch.zeros(0, dtype=torch.int64)
    if case == "unbatched":
        for fn in (F.ctc_loss, pt.ctc_loss):
            v = fn(torch.from_numpy(lp[:, 0].copy()), empty, (int(il[0]),), (0,), reduction="sum")
            check(v.numpy(), np.asarray(want[0]), dtype="float64", n=lp[:, 0].size)
    elif case == "concatenated":
        for fn in (F.ctc_loss, pt.ctc_loss):
            v = fn(torch.from_numpy(lp), empty, torch.from_numpy(il), torch.from_numpy(zero),
                   reduction="none")
            check(v.numpy(), want, dtype="float64", n=lp.size)
    elif case == "canonical":
        v = polyloss.ctc(lp, np.zeros((TN, 0), dtype=np.int64), il, layout="TNC", from_logits=False,
                         reduction="none")
        check(v, want, dtype="float64", n=lp.size)
    else:
        # by hand: the only path is all blanks, so logalpha_blank[t, b, 0] is the running sum of
        # log p(blank) over the used frames (carried over padded ones), and the gradient w.r.t.
        # the logits is softmax - onehot(blank) on the used frames (the posterior is certain)
        logits = lp.transpose(1, 0, 2)  # log-probabilities are their own log_softmax
        used = np.arange(TT)[None, :] < il[:, None]
        paddings = (~used).astype(np.float64)
        arrays = (logits, paddings, np.zeros((TN, 0), dtype=np.int64), np.zeros((TN, 0)))
        go, gg = optax_run(po, arrays, "ctc_loss_with_forward_probs")
        check(go[0], want, dtype="float64", n=lp.size)
        running = np.cumsum(np.where(used, logits[:, :, 0], 0.0), axis=1).T[:, :, None]
        check(go[1], running, dtype="float64", n=lp.size, scale=np.abs(running))
        assert go[2].shape == (TT, TN, 0)
        onehot = np.arange(TC) == 0
        check(gg, np.where(used[:, :, None], np.exp(logits) - onehot, 0.0), dtype="float64", n=lp.size,
              scale=2.0)


# =================================================================================================
# 2. polyloss.keras against keras.losses.ctc / keras.losses.CTC (TensorFlow backend)
# =================================================================================================

pk = None
if keras is not None:
    import polyloss.keras as pk

KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None, "mean_with_sample_weight")
KB, KT, KC = 4, 6, 5


def keras_data(dtype, rng):
    """``(y_true (B, 4) int, y_pred (B, T, C) logits)``: a full row with a repeat, a row padded
    with trailing zeros, a row of zeros (no labels), a row with a repeat at the start."""
    y_pred = rng.normal(0.0, 1.5, size=(KB, KT, KC)).astype(dtype)
    y_true = np.array([[1, 2, 2, 3], [4, 1, 0, 0], [0, 0, 0, 0], [3, 3, 1, 2]], dtype=np.int64)
    return y_true, y_pred


def keras_run(ns, form, y_true, y_pred, sw=None, **ctor):
    """``(value, d value.sum() / d y_pred)`` on TensorFlow tensors (``tf.GradientTape``)."""
    yt, yp = tf.constant(y_true), tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(yp)
        if form == "class":
            out = ns.CTC(**ctor)(yt, yp, sample_weight=None if sw is None else tf.constant(sw))
        else:
            out = ns.ctc(yt, yp)
        total = tf.reduce_sum(out)
    assert isinstance(out, tf.Tensor), type(out)
    return out.numpy(), tape.gradient(total, yp).numpy()


def keras_check(form, y_true, y_pred, sw=None, **ctor):
    """Mirror == Keras, value and gradient; Keras computes CTC in float32 whatever the input
    dtype, so float32 tolerances apply to both dtypes (the results keep Keras's dtypes)."""
    ev, eg = keras_run(keras.losses, form, y_true, y_pred, sw, **ctor)
    gv, gg = keras_run(pk, form, y_true, y_pred, sw, **ctor)
    msg = f"{form} {ctor} sw={sw is not None} {y_pred.dtype}"
    check(gv, ev, dtype="float32", n=y_pred.size, err_msg=msg)
    # softmax - posterior per entry, times |weight| / count
    red = ctor.get("reduction", "sum_over_batch_size")
    w = np.ones(y_true.shape[0]) if sw is None else np.abs(np.asarray(sw, dtype=np.float64))
    count = (w.sum() if red == "mean_with_sample_weight"
             else y_true.shape[0] if red in ("sum_over_batch_size", "mean") else 1.0)
    check(gg, eg, dtype="float32", n=y_pred.size, scale=2.0 * w[:, None, None] / count,
          err_msg="d/d y_pred " + msg)
    return ev


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_ctc_function_matches_keras(dtype, rng):
    y_true, y_pred = keras_data(dtype, rng)
    values = keras_check("function", y_true, y_pred)
    assert values.shape == (KB,) and values.dtype == np.dtype(dtype)


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_keras_ctc_class_matches_keras(weighted, dtype, rng):
    """Every reduction, with and without one weight per sequence (a zero weight among them);
    ``dtype=None`` (float32) and ``dtype='float64'`` losses."""
    y_true, y_pred = keras_data(dtype, rng)
    sw = np.array([0.5, 2.0, 0.0, 1.5], dtype=dtype) if weighted else None
    for reduction in KERAS_REDUCTIONS:
        keras_check("class", y_true, y_pred, sw, reduction=reduction)
    keras_check("class", y_true, y_pred, sw, dtype="float64")


@needs_keras
def test_keras_get_config_matches_keras():
    for kw in ({}, {"reduction": "sum", "name": "my_ctc"}, {"reduction": None}):
        assert pk.CTC(**kw).get_config() == keras.losses.CTC(**kw).get_config(), kw
    assert _params(pk.CTC.__init__) == _params(keras.losses.CTC.__init__)
    assert _params(pk.ctc) == _params(keras.losses.ctc)


@needs_keras
def test_keras_interior_zero_raises_valueerror(rng):
    """Keras reads a 0 inside a row as padding, silently shortening it (and what follows counts
    as labels); polyloss raises, naming y_true (documented difference)."""
    y_true, y_pred = keras_data("float32", rng)
    y_true[1] = [4, 0, 1, 0]
    for call in (lambda: pk.ctc(tf.constant(y_true), tf.constant(y_pred)),
                 lambda: pk.CTC()(tf.constant(y_true), tf.constant(y_pred))):
        with pytest.raises(ValueError, match="y_true"):
            call()


@needs_keras
def test_keras_infeasible_is_large_and_finite(rng):
    """Repeats that do not fit ("1111" needs 7 frames, there are 6): TensorFlow writes log 0 as
    log(1e-307) ≈ -707, so the loss is large and finite, in Keras and in the mirror. The exact
    number differs by design: TF's own state machine floors impossible states differently from
    polyloss's (which uses TF's floor only for the initial states and the standard read-out), so
    only "finite and > 700" is asserted, for both; the feasible rows still match Keras."""
    y_true, y_pred = keras_data("float32", rng)
    y_true[0] = [1, 1, 1, 1]
    native = keras.losses.ctc(tf.constant(y_true), tf.constant(y_pred)).numpy()
    mirror = pk.ctc(tf.constant(y_true), tf.constant(y_pred)).numpy()
    for v in (native, mirror):
        assert np.isfinite(v[0]) and v[0] > 700, v
    check(mirror[1:], native[1:], dtype="float32", n=y_pred.size)


# =================================================================================================
# 3. polyloss.gluon.CTCLoss against mxnet.gluon.loss.CTCLoss
# =================================================================================================

pg = gloss = autograd = None
if mx is not None:
    from mxnet import autograd
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

GN, GT, GC = 4, 6, 5  # batch, frames, classes (the blank is the last, 4)


def gluon_run(ns, ctor, pred, label, pred_lengths=None, label_lengths=None, sample_weight=None):
    """``(value, d value.sum() / d pred)`` on classic ``mx.nd`` float32 arrays (MXNet keeps labels
    and lengths in float32 too)."""
    def nd(a):
        return None if a is None else mx.nd.array(a, dtype=np.float32)

    x = nd(pred)
    x.attach_grad()
    with autograd.record():
        out = ns.CTCLoss(**ctor)(x, nd(label), nd(pred_lengths), nd(label_lengths), nd(sample_weight))
    out.backward()
    mx.nd.waitall()
    assert isinstance(out, mx.nd.NDArray) and not isinstance(out, mx.np.ndarray), type(out)
    return to_numpy(out), to_numpy(x.grad)


def gluon_inputs(rng, layout, label_layout, labels):
    pred = rng.normal(0.0, 1.5, size=(GN, GT, GC)).astype(np.float32)
    if layout == "TNC":
        pred = np.ascontiguousarray(pred.transpose(1, 0, 2))
    labels = labels.astype(np.float32)
    return pred, (np.ascontiguousarray(labels.T) if label_layout == "TN" else labels)


def gluon_check(ctor, pred, label, *rest, feasible=None):
    """Mirror == Gluon, values, and gradients on the sequences in ``feasible`` (all by default);
    on the others polyloss's gradient is 0 and MXNet's is not defined (uninitialised memory)."""
    ev, eg = gluon_run(gloss, ctor, pred, label, *rest)
    gv, gg = gluon_run(pg, ctor, pred, label, *rest)
    msg = f"{ctor}"
    check(gv, ev, dtype="float32", n=pred.size, err_msg=msg)
    batch_axis = 1 if ctor.get("layout") == "TNC" else 0
    keep = np.ones(GN, dtype=bool) if feasible is None else np.asarray(feasible)
    eg, gg = np.moveaxis(eg, batch_axis, 0), np.moveaxis(gg, batch_axis, 0)
    assert (gg[~keep] == 0).all(), msg
    sw = np.ones(GN) if len(rest) < 3 or rest[2] is None else np.abs(rest[2])
    scale = 2.0 * abs(ctor.get("weight") or 1.0) * sw[keep, None, None]
    check(gg[keep], eg[keep], dtype="float32", n=pred.size, scale=scale, err_msg="d/d pred " + msg)
    return ev


@needs_mxnet
@pytest.mark.parametrize("label_layout", ["NT", "TN"])
@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_gluon_padding_matches_gluon(layout, label_layout, rng):
    """-1 padding without lengths: a full row with a repeat, trailing padding, a -1 in the
    middle (MXNet reads up to the first -1: one label), an all-padding row (no labels); with
    ``weight`` and ``sample_weight`` as well."""
    labels = np.array([[0, 1, 1, 2], [2, 3, -1, -1], [1, -1, 3, 0], [-1, -1, -1, -1]])
    pred, label = gluon_inputs(rng, layout, label_layout, labels)
    ctor = {"layout": layout, "label_layout": label_layout}
    values = gluon_check(ctor, pred, label)
    assert values.shape == (GN,)
    sw = rng.uniform(0.5, 2.0, size=GN).astype(np.float32)
    gluon_check({**ctor, "weight": 0.7}, pred, label, None, None, sw)
    # the middle -1 ends the row: the same loss as the single label alone
    cut = labels.copy()
    cut[2] = [1, -1, -1, -1]
    cut = cut.astype(np.float32)
    alone = gluon_run(pg, ctor, pred, np.ascontiguousarray(cut.T) if label_layout == "TN" else cut)[0]
    check(values, alone, dtype="float32", n=pred.size)


@needs_mxnet
@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_gluon_lengths_match_gluon(layout, rng):
    """``pred_lengths`` and ``label_lengths``: feasible sequences (a repeat in 6 frames, 2 labels
    in 5), a repeat run that cannot fit ("333" in 4 frames) and more labels than frames (4 in 3):
    both 0 in MXNet and polyloss; gradients compared on the feasible ones (polyloss: 0 on the
    others). Also with ``sample_weight`` and ``weight``."""
    labels = np.array([[0, 1, 1, 2], [2, 3, 0, 0], [3, 3, 3, 1], [1, 2, 0, 3]])
    pred, label = gluon_inputs(rng, layout, "NT", labels)
    pl = np.array([6, 5, 4, 3], dtype=np.float32)
    ll = np.array([4, 2, 3, 4], dtype=np.float32)
    feasible = [True, True, False, False]
    ctor = {"layout": layout}
    values = gluon_check(ctor, pred, label, pl, ll, feasible=feasible)
    assert (values[2:] == 0).all() and (values[:2] > 0).all()
    sw = rng.uniform(0.5, 2.0, size=GN).astype(np.float32)
    gluon_check({**ctor, "weight": 2.5}, pred, label, pl, ll, sw, feasible=feasible)
    # without label_lengths the rows (no -1) are read in full: "3331" needs 6 frames (has 4)
    gluon_check(ctor, pred, label, pl, None, feasible=feasible)


@needs_mxnet
def test_gluon_label_dimension_longer_than_frames_raises(rng):
    """MXNet refuses a label dimension larger than T (its kernel's check); the mirror raises
    ``ValueError`` naming the label, in every layout."""
    pred, label = gluon_inputs(rng, "NTC", "NT", np.zeros((GN, GT + 1), dtype=np.int64))
    with pytest.raises(mx.base.MXNetError, match="labels"):
        gluon_run(gloss, {}, pred, label)
    with pytest.raises(ValueError, match="label"):
        gluon_run(pg, {}, pred, label)
    with pytest.raises(ValueError, match="label"):
        pg.CTCLoss(layout="TNC", label_layout="TN")(mx.nd.array(pred.transpose(1, 0, 2)),
                                                    mx.nd.array(np.ascontiguousarray(label.T)))


@needs_mxnet
def test_gluon_signature_matches_gluon():
    assert _params(pg.CTCLoss.__init__) == _params(gloss.CTCLoss.__init__)
    assert _params(pg.CTCLoss.__call__, drop=("args", "kwargs")) == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty)] + [
        (n, inspect.Parameter.POSITIONAL_OR_KEYWORD, d) for n, d in (
            ("pred", inspect.Parameter.empty), ("label", inspect.Parameter.empty), ("pred_lengths", None),
            ("label_lengths", None), ("sample_weight", None))]


# =================================================================================================
# 4. polyloss.optax against optax.losses.ctc_loss / ctc_loss_with_forward_probs
# =================================================================================================

po = jnp = None
if optax is not None:
    jnp = jax.numpy
    import polyloss.optax as po

OB, OT, OK, ON = 4, 7, 5, 3  # batch, frames, classes, label positions


def optax_data(dtype, rng, blank_id=0):
    """``(logits, logit_paddings, labels, label_paddings)``: sequence 0 has a padded frame in the
    middle (frame 2) and 3 labels; sequence 1 its last 2 frames padded and 2 labels; sequence 2
    no labels (all padded); sequence 3 only 3 frames for a run "aab" that needs 4 (infeasible:
    about ``-log_epsilon`` per missing frame). Label padding positions hold random classes."""
    logits = rng.normal(0.0, 1.5, size=(OB, OT, OK)).astype(dtype)
    logit_paddings = np.zeros((OB, OT), dtype=dtype)
    logit_paddings[0, 2] = 1.0
    logit_paddings[1, 5:] = 1.0
    logit_paddings[3, 3:] = 1.0
    labels = distinct_labels(rng, (OB, ON), blank_id, OK)
    labels[3, 1] = labels[3, 0]
    labels[3, 2] = (labels[3, 0] + 1) % OK if (labels[3, 0] + 1) % OK != blank_id else (labels[3, 0] + 2) % OK
    label_paddings = np.zeros((OB, ON), dtype=dtype)
    label_paddings[1, 2:] = 1.0
    label_paddings[2, :] = 1.0
    return logits, logit_paddings, labels, label_paddings


def optax_run(ns, arrays, fn="ctc_loss", **kw):
    """``(outputs..., d loss.sum() / d logits)`` on JAX arrays with ``jax.value_and_grad``."""
    xs = [jnp.asarray(a) for a in arrays]

    def total(x):
        out = getattr(ns, fn)(x, *xs[1:], **kw)
        loss = out[0] if isinstance(out, tuple) else out
        return jnp.sum(loss), out

    (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[0])
    outs = out if isinstance(out, tuple) else (out,)
    assert all(isinstance(o, jax.Array) for o in outs)
    return [np.asarray(o) for o in outs], np.asarray(g)


# (dtype, blank_id, log_epsilon): optax's eager scan is re-traced on every call (~1 s), so
# float32 runs the defaults only
OPTAX_SETTINGS = [("float64", 0, -1e5), ("float64", 0, -1e4), ("float64", 3, -1e5), ("float64", 3, -100.0),
                  ("float32", 0, -1e5)]


@needs_optax
@pytest.mark.parametrize("dtype,blank_id,log_epsilon", OPTAX_SETTINGS)
def test_optax_matches_optax(dtype, blank_id, log_epsilon, rng):
    """``ctc_loss`` and ``ctc_loss_with_forward_probs``: values, the forward variables (every
    state, reachable or not, including the states past each sequence's labels, which hold
    ``log_epsilon``-sized values) and ``jax.grad`` gradients of the loss. optax's ``ctc_loss`` is
    its ``ctc_loss_with_forward_probs(...)[0]``, so one native run serves both mirror functions."""
    arrays = optax_data(dtype, rng, blank_id)
    kw = {"blank_id": blank_id, "log_epsilon": log_epsilon}
    eo, eg = optax_run(optax.losses, arrays, "ctc_loss_with_forward_probs", **kw)
    assert eo[0].shape == (OB,) and eo[1].shape == (OT, OB, ON + 1) and eo[2].shape == (OT, OB, ON)
    # states no path reaches by frame 0 (every label but the first) hold log_epsilon-sized values
    assert (eo[2][0, :, 1:] < 0.5 * log_epsilon).all()
    assert eo[0][3] > 0.5 * -log_epsilon  # the infeasible sequence: about -log_epsilon
    # optax under 64-bit JAX computes float32 logits in float64 (its one-hot labels are float64)
    # and returns float64; the mirror keeps float32 (float32 tolerances against optax's numbers)
    n = arrays[0].size
    # the gradient is softmax - posterior (scale 2); for the infeasible sequence the posterior
    # is the exp of differences of log_epsilon-sized log-space values, each exact only to
    # rtol·|log_epsilon|: that is its scale. In float32 (rtol·1e5 ≈ 0.7) it is not compared.
    scale = np.array([2.0, 2.0, 2.0, 2.0 * abs(log_epsilon)])[:, None, None]
    rows = slice(None) if dtype == "float64" else slice(0, 3)
    for fn in ("ctc_loss", "ctc_loss_with_forward_probs"):
        go, gg = optax_run(po, arrays, fn, **kw)
        assert len(go) == (1 if fn == "ctc_loss" else 3)
        assert all(o.dtype == np.dtype(dtype) for o in go) and gg.dtype == np.dtype(dtype)
        for name, a, e in zip(("loss", "logalpha_blank", "logalpha_nonblank"), go, eo, strict=False):
            check(a, e, dtype=dtype, n=n, err_msg=f"{fn} {name} {kw}", check_dtype=False)
        check(gg[rows], eg[rows], dtype=dtype, n=n, scale=scale[rows], err_msg=f"{fn} d/d logits {kw}",
              check_dtype=False)


@needs_optax
def test_optax_jit_vmap_and_grad_match_optax(rng):
    """``jax.jit(jax.vmap(jax.value_and_grad(...)))`` over an extra leading axis (each mapped call
    sees a batch of one; blank_id 3 closed over, every array an argument; closed-over arrays:
    ``test_optax_jit_with_closed_over_arrays``): optax's values and gradients. One compiled
    function per library (compiling is what costs here)."""
    arrays = [jnp.asarray(a)[:, None] for a in optax_data("float64", rng, blank_id=3)]
    outs = []
    for ns in (optax.losses, po):
        def total(x, *rest, ns=ns):
            return jnp.sum(ns.ctc_loss(x, *rest, blank_id=3))

        value, grad = jax.jit(jax.vmap(jax.value_and_grad(total)))(*arrays)
        outs.append((np.asarray(value), np.asarray(grad)))
    n = arrays[0].size
    check(outs[1][0], outs[0][0], dtype="float64", n=n)
    # softmax - posterior; the infeasible sequence's posterior is exact to rtol·|log_epsilon| (above)
    scale = np.array([2.0, 2.0, 2.0, 2.0e5])[:, None, None, None]
    check(outs[1][1], outs[0][1], dtype="float64", n=n, scale=scale, err_msg="grad")


@needs_optax
def test_optax_jit_with_closed_over_arrays(rng):
    """The common training-step spelling: the data closed over, only the logits traced. Under
    jit JAX stages every operation, also on concrete captured arrays, so the eager checks must
    not run there (a regression check: they raised TracerBoolConversionError until
    ``values_known`` also asked JAX whether a trace is under way)."""
    logits, *rest = [jnp.asarray(a) for a in optax_data("float64", rng)]
    outs = [np.asarray(jax.jit(lambda x, ns=ns: jnp.sum(ns.ctc_loss(x, *rest)))(logits))
            for ns in (optax.losses, po)]
    check(outs[1], outs[0], dtype="float64", n=logits.size)


@needs_optax
def test_optax_signatures_match_optax():
    for name in ("ctc_loss", "ctc_loss_with_forward_probs"):
        assert _params(getattr(po, name)) == _params(getattr(optax.losses, name)), name


# =================================================================================================
# 6. bad input (eager): each error names its argument
# =================================================================================================

def _bad_base(rng):
    """Valid inputs of the canonical tests' shapes (so eager JAX reuses their compiled operations):
    pred (5, 5, 3), labels padded with -1, input and label lengths."""
    pred = rng.normal(0.0, 1.0, size=(CN, CT, CC))
    labels = np.array([[1, 2], [2, -1], [1, -1], [2, 1], [1, 2]])
    return pred, labels, np.array([5, 4, 3, 5, 5]), np.array([2, 1, 1, 2, 2])


def at0(a, value):
    """``a`` with its first row (or entry) replaced by ``value``."""
    out = np.array(a, copy=True)
    out[0] = value
    return out


# name -> (call on (pred, labels, input_lengths, label_lengths) in NumPy, error, match, needs values)
BAD = {
    "label out of range": (lambda p, y, i, n: (p, at0(y, [1, 3])), ValueError,
                           "labels must hold class indices in \\[0, 3\\)", True),
    "label is the blank": (lambda p, y, i, n: (p, at0(y, [1, 0])), ValueError,
                           "labels .* other than the blank 0", True),
    "label is blank 2": (lambda p, y, i, n: (p, y, {"blank": 2}), ValueError, "labels .* blank 2", True),
    "negative label": (lambda p, y, i, n: (p, at0(y, [1, -2]), i, n), ValueError, "labels", True),
    "label_lengths > S": (lambda p, y, i, n: (p, y, i, at0(n, 3)), ValueError,
                          "label_lengths must lie in \\[0, 2\\]", True),
    "negative label_lengths": (lambda p, y, i, n: (p, y, i, at0(n, -1)), ValueError,
                               "label_lengths must lie in", True),
    "input_lengths > T": (lambda p, y, i, n: (p, y, at0(i, 6), n), ValueError,
                          "input_lengths must lie in \\[0, 5\\]", True),
    "negative input_lengths": (lambda p, y, i, n: (p, y, at0(i, -1), n), ValueError,
                               "input_lengths must lie in", True),
    "label_lengths > input_lengths": (lambda p, y, i, n: (p, y, at0(i, 1), n), ValueError,
                                      "label_lengths exceed input_lengths", True),
    "-1 inside a row": (lambda p, y, i, n: (p, at0(y, [-1, 1])), ValueError,
                        "labels may be padded with -1 only at the end", True),
    "log-probs > 0": (lambda p, y, i, n: (p, y, {"from_logits": False}), ValueError,
                      "pred holds values > 0", True),
    "fractional labels": (lambda p, y, i, n: (p, y + 0.5), ValueError, "labels holds class indices", True),
    "fractional lengths": (lambda p, y, i, n: (p, y, at0(i.astype(np.float64), 4.5), n), ValueError,
                           "input_lengths holds lengths", True),
    "2-D pred": (lambda p, y, i, n: (p[0], y), ValueError, "pred must have 3 dimensions", False),
    "labels batch": (lambda p, y, i, n: (p, y[:1]), ValueError, "labels must have shape \\(N, S\\)", False),
    "1-D labels": (lambda p, y, i, n: (p, y[0]), ValueError, "labels must have shape", False),
    "input_lengths count": (lambda p, y, i, n: (p, y, i[:3], n), ValueError,
                            "input_lengths must have one length per sequence", False),
    "label_lengths count": (lambda p, y, i, n: (p, y, i, [1]), ValueError,
                            "label_lengths must have one length per sequence", False),
    "bool lengths": (lambda p, y, i, n: (p, y, True), TypeError, "input_lengths must be integer lengths",
                     False),
    "float list lengths": (lambda p, y, i, n: (p, y, [5.0] * CN), TypeError,
                           "input_lengths must hold integers", False),
    "integer pred": (lambda p, y, i, n: (p.astype(np.int64), y), TypeError, "pred must be a floating-point",
                     False),
    "sample_weight shape": (lambda p, y, i, n: (p, y, {"sample_weight": np.ones(3)}), ValueError,
                            "sample_weight", False),
    "layout": (lambda p, y, i, n: (p, y, {"layout": "NCT"}), ValueError, "layout", False),
    "blank range": (lambda p, y, i, n: (p, y, {"blank": 3}), ValueError, "blank must be a class index",
                    False),
}


def _bad_call(backend, args):
    """``polyloss.ctc`` on ``args`` (NumPy arrays moved to the backend; a trailing dict holds
    keyword arguments, whose arrays are moved too)."""
    kw = dict(args[-1]) if isinstance(args[-1], dict) else {}
    pos = args[:-1] if isinstance(args[-1], dict) else args
    mv = lambda a: backend.asarray(a) if isinstance(a, np.ndarray) else a  # noqa: E731
    return polyloss.ctc(*[mv(a) for a in pos], **{k: mv(v) for k, v in kw.items()})


@pytest.mark.parametrize("case", list(BAD))
def test_canonical_bad_input_raises(backend, case, rng):
    """Eager calls on every installed backend; checks that read values are skipped where the
    values cannot be read (lazy Dask, as under jit)."""
    make, error, match, needs_values = BAD[case]
    if needs_values and backend.name == "dask":
        pytest.skip("lazy Dask: polyloss cannot read the values to check them (as under jit)")
    with pytest.raises(error, match=match):
        _bad_call(backend, make(*_bad_base(rng)))


def test_canonical_too_long_labels_are_zero_with_zero_infinity(rng):
    """``label_lengths > input_lengths`` raises (above) unless ``zero_infinity=True``: then that
    sequence is 0 (gradient 0) and the others are the oracle's."""
    pred, labels, il, ll = _bad_base(rng)
    il = at0(il, 1)
    out = polyloss.ctc(pred, labels, il, ll, zero_infinity=True, reduction="none")
    want, _ = ctc_oracle(pred, labels, il, ll, zero_infinity=True)
    assert want[0] == 0.0
    check(out, want, dtype="float64", n=pred.size)
    for b in (BACKENDS[n] for n in ("torch",) if n in INSTALLED_NAMES):
        def fn(x, b=b):
            return polyloss.ctc(x, b.asarray(labels), b.asarray(il), b.asarray(ll), zero_infinity=True,
                                reduction="none")

        _, g = b.value_and_grad(fn, [pred], 0)
        assert (g[0] == 0).all() and (g[1] != 0).any(), b.name


@needs_torch
def test_torch_bad_input_raises():
    """The mirror's errors name torch's arguments: targets, target_lengths, input_lengths."""
    lp = torch.from_numpy(log_softmax(np.zeros((4, 2, 3))))
    t = torch.from_numpy(np.array([[1, 2], [2, 1]]))
    il, tl = torch.tensor([4, 3]), torch.tensor([2, 1])
    cases = [
        ((lp, torch.tensor([[1, 0], [2, 1]]), il, tl), {}, ValueError, "targets .* blank 0"),
        ((lp, torch.tensor([[1, 3], [2, 1]]), il, tl), {}, ValueError, "targets must hold class indices"),
        ((lp, t, il, tl), {"blank": 1}, ValueError, "targets .* blank 1"),
        ((lp, t, il, torch.tensor([3, 1])), {}, ValueError, "target_lengths must lie in"),
        ((lp, t, torch.tensor([5, 3]), tl), {}, ValueError, "input_lengths must lie in"),
        ((lp, t, torch.tensor([1, 3]), tl), {}, ValueError, "target_lengths exceed input_lengths"),
        # concatenated targets must be exactly sum(target_lengths) long (torch: RuntimeError)
        ((lp, torch.tensor([1, 2, 2, 1]), il, tl), {}, ValueError, "target_lengths .* must add up"),
        ((lp, torch.tensor([1, 2]), il, tl), {}, ValueError, "target_lengths .* must add up"),
        ((lp, t, il, tl), {"blank": 3}, ValueError, "blank"),
        ((lp, t, il, tl), {"reduction": "avg"}, ValueError, "reduction"),
        ((lp, t, (4,), tl), {}, ValueError, "input_lengths must have one length per sequence"),
        ((lp[:, 0], t, (4,), (2,)), {}, ValueError, "targets must be \\(N, S\\)"),  # unbatched, 2-D targets
    ]
    for args, kw, error, match in cases:
        with pytest.raises(error, match=match):
            pt.ctc_loss(*args, **kw)
    v = pt.ctc_loss(lp, t, torch.tensor([1, 3]), tl, zero_infinity=True, reduction="none")
    assert v[0] == 0.0 and v[1] > 0


def test_mirror_bad_input_raises_on_numpy(rng):
    """The other mirrors on NumPy arrays (they accept any array type): Keras's labels, Gluon's
    label and lengths, optax's paddings and blank_id."""
    import polyloss.gluon as pgl
    import polyloss.keras as pke
    import polyloss.optax as pop

    y_pred = rng.normal(size=(2, 4, 3))
    with pytest.raises(ValueError, match="y_true uses 0 as the blank and the padding"):
        pke.ctc(np.array([[1, 0, 2], [1, 2, 0]]), y_pred)
    with pytest.raises(ValueError, match="y_true must hold class indices"):
        pke.ctc(np.array([[1, 3], [1, 2]]), y_pred)
    with pytest.raises(ValueError, match="label must hold class indices .* blank 2"):
        pgl.CTCLoss()(y_pred, np.array([[1.0, 2.0], [0.0, -1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="label_lengths must lie in"):
        pgl.CTCLoss()(y_pred, np.array([[1.0, 0.0], [0.0, 1.0]]), None, np.array([3, 1]))
    with pytest.raises(ValueError, match="pred_lengths must lie in"):
        pgl.CTCLoss()(y_pred, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([5, 1]))
    pads, lab = np.zeros((2, 4)), np.array([[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="logit_paddings must hold 0 \\(kept\\) or 1"):
        pop.ctc_loss(y_pred, pads + 0.5, lab, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="label_paddings must be right-padded"):
        pop.ctc_loss(y_pred, pads, lab, np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="blank_id must be a class index"):
        pop.ctc_loss(y_pred, pads, lab, np.zeros((2, 2)), blank_id=3)
    with pytest.raises(ValueError, match="labels must hold class indices .* blank 0"):
        pop.ctc_loss(y_pred, pads, np.array([[1, 0], [2, 1]]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="label_paddings must have labels' shape"):
        pop.ctc_loss(y_pred, pads, lab, np.zeros((2, 3)))
