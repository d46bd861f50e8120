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
from _native import SUBNORMAL_FLOOR, require_module, rtol_for, to_numpy
from conftest import INSTALLED_NAMES

import polyloss
from polyloss.parity.backends import BACKENDS

pytestmark = [pytest.mark.native]


def _optional(name: str):
    """The module, or ``None`` where it is not installed (its tests skip, the rest run)."""
    try:
        return require_module(name)
    except pytest.skip.Exception:
        return None


torch = _optional("torch")  # before TensorFlow (shared libraries)
tf = _optional("tensorflow")
keras = _optional("keras") if tf is not None else None
if keras is not None and keras.backend.backend() != "tensorflow":
    keras = None
jax = _optional("jax")  # 64-bit enabled by the parity set-up
optax = _optional("optax") if jax is not None else None
mx = _optional("mxnet")

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed in this environment")
needs_keras = pytest.mark.skipif(keras is None, reason="keras (TensorFlow backend) is not installed")
needs_optax = pytest.mark.skipif(optax is None, reason="jax/optax are not installed in this environment")
needs_mxnet = pytest.mark.skipif(mx is None, reason="mxnet is not installed (or not usable with this "
                                                    "NumPy) in this environment")

DTYPES = ("float32", "float64")


def check(actual, expected, *, dtype, n=1, scale=0.0, err_msg="", check_dtype=True):
    """``_native.assert_close``'s policy (same shape, dtype, infinities and NaN pattern; float64
    ``rtol = 1e-12``, float32 ``8·eps·log2(n)``), where each element may also differ by that
    relative tolerance times ``scale`` (broadcast): the size of the terms that cancel in it."""
    a = np.asarray(actual if isinstance(actual, np.ndarray) else to_numpy(actual))
    e = np.asarray(expected if isinstance(expected, np.ndarray) else to_numpy(expected))
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape} {err_msg}"
    if check_dtype:
        assert a.dtype == e.dtype, f"dtype {a.dtype} != expected {e.dtype} {err_msg}"
    rtol = rtol_for(dtype, n)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    atol = (rtol * np.abs(np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape))
            + SUBNORMAL_FLOOR[str(np.dtype(dtype))])
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(a64) & np.isfinite(e64)
        ok = ((a64 == e64) | (np.isnan(a64) & np.isnan(e64))
              | (finite & (np.abs(a64 - e64) <= rtol * np.abs(e64) + atol)))
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0]) if ok.ndim else ()
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.size} elements differ {err_msg}; first at {idx}: "
            f"{float(a64[idx])!r} vs expected {float(e64[idx])!r} (rtol {rtol:.3g}, "
            f"atol {float(atol[idx]):.3g})")


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
