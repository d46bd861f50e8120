"""Canonical sequence loss: connectionist temporal classification (CTC).

One value per sequence: ``-log p(labels | x)``, summed over every alignment of the label
sequence to the frames (blanks between and around labels, repeats merged). The dynamic
program lives in ``polyloss.core.sequence``; this module turns each spelling of lengths and
padding into the arrays it needs and checks them (eager calls), and is shared by the
framework mirrors (``polyloss.torch.CTCLoss``, ``polyloss.keras.CTC``,
``polyloss.gluon.CTCLoss``, ``polyloss.optax.ctc_loss``).
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import finish, prepare, values_checked
from polyloss._labels import as_index, index_dtype
from polyloss.backends import Backend, backend_of
from polyloss.backends.autodiff import block_scan, call_with_vjp
from polyloss.canonical.classification import _check_common, _reduce
from polyloss.core import classification as cls_core
from polyloss.core import sequence as core
from polyloss.core._helpers import arange_like
from polyloss.reduction import check_choice

__all__ = ["ctc"]

# "impossible" in log space: finite so that gradients stay finite (see core.sequence), far
# below any reachable path's log-probability, and far from overflowing float32 when added
# up over many frames
LOG_ZERO = -1e30
LAYOUTS = ("NTC", "TNC")


# ---- shared by the canonical loss and the mirrors -----------------------------------------

def lengths_array(backend: Backend, value: Any, size: int, name: str, like: Any) -> Any:
    """Lengths given as an int, a sequence of ints or an array (of ``like``'s framework) as
    an array of the indexing dtype, shape ``(size,)``, on ``like``'s device."""
    xp = backend.xp
    dtype = index_dtype(xp)
    if isinstance(value, bool):
        raise TypeError(f"polyloss: {name} must be integer lengths, got {value!r}")
    if isinstance(value, int):
        return xp.full((size,), value, dtype=dtype, device=backend.device(like))
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError(f"polyloss: {name} must hold integers, got {value!r}")
        value = xp.asarray(list(value), dtype=dtype, device=backend.device(like))
    else:
        value = labels_array(backend, value, name, like, what="lengths")
    if tuple(value.shape) != (size,):
        raise ValueError(f"polyloss: {name} must have one length per sequence, shape ({size},), "
                         f"got shape {tuple(value.shape)}")
    return value


def array_or_none(value: Any) -> Any:
    """``value`` if it may be an array (for framework detection), None for Python lengths."""
    return None if value is None or isinstance(value, (int, list, tuple)) else value


def check_range(backend: Backend, values: Any, low: int, high: int, name: str, what: str) -> None:
    """``ValueError`` naming ``name`` unless every value lies in ``[low, high]`` (eager)."""
    if not values_checked(backend, values):
        return
    xp = backend.xp
    if bool(xp.any((values < low) | (values > high))):
        raise ValueError(f"polyloss: {name} must lie in [{low}, {high}] ({what}), got values from "
                         f"{int(xp.min(values))} to {int(xp.max(values))}")


def sequence_nll(backend: Backend, log_probs: Any, labels: Any, label_lengths: Any,
                 input_lengths: Any, frame_active: Any, *, blank: int, log_zero: float,
                 names: dict[str, str], too_long: str = "error",
                 start_floor: float | None = None, keep_all: bool = False) -> tuple[Any, Any, Any]:
    """``(-log p(labels | x), feasible, alphas)`` per sequence, from normalised ``log_probs``
    ``(N, T, C)``, integer ``labels`` ``(N, S)`` (anything past a sequence's length is
    padding), int64 ``label_lengths`` and ``input_lengths`` ``(N,)``, and ``frame_active``
    ``(N, T)`` (False: the frame is skipped).

    Eager checks, each naming its argument (``names`` maps "labels", "label_lengths",
    "input_lengths" to the caller's names): lengths in range, labels in ``[0, C)`` and not
    the blank. A label sequence longer than its input is an error unless ``too_long`` is
    ``"allow"``. Under jit a sequence with a label out of range gets NaN. ``feasible`` is
    False where the frames cannot fit the labels (the caller decides what such a sequence
    is worth: inf, 0, or the value with ``log_zero`` as it comes). ``alphas`` are every
    frame's log forward variables ``(T, N, 2S + 1)`` with ``keep_all``, else None.
    """
    xp = backend.xp
    n, t_max, num_classes = log_probs.shape
    s = labels.shape[1]
    check_range(backend, label_lengths, 0, s, names["label_lengths"],
                f"the labels have {s} positions")
    check_range(backend, input_lengths, 0, t_max, names["input_lengths"],
                f"the input has {t_max} frames")
    if too_long == "error" and values_checked(backend, label_lengths):
        if bool(xp.any(label_lengths > input_lengths)):
            raise ValueError(
                f"polyloss: {names['label_lengths']} exceed {names['input_lengths']}: a label "
                "sequence longer than its input has no alignment")
    label_lengths = xp.clip(label_lengths, 0, s)
    positions = arange_like(s, label_lengths, label_lengths.dtype, xp)
    in_sequence = positions[None, :] < label_lengths[:, None]
    valid = (labels >= 0) & (labels < num_classes) & (labels != blank)
    bad = in_sequence & ~valid
    if values_checked(backend, labels) and bool(xp.any(bad)):
        first = int(xp.max(xp.where(bad, labels, xp.full_like(labels, -(2 ** 62)))))
        raise ValueError(
            f"polyloss: {names['labels']} must hold class indices in [0, {num_classes}) other than "
            f"the blank {blank} within each sequence's length; got {first}")
    # padding keeps its value where it is a class index (it only shapes the states past the
    # sequence's end, which optax returns as forward variables); anything else becomes blank
    in_range = (labels >= 0) & (labels < num_classes)
    safe = xp.where(in_range & ~bad, labels, xp.full_like(labels, blank))
    if s == 0:  # no label positions: one blank placeholder keeps the state arrays non-empty
        safe = xp.full((n, 1), blank, dtype=safe.dtype, device=backend.device(log_probs))
    if keep_all or not fast_paths(xp):
        alpha, history = core.ctc_alphas(log_probs, safe, frame_active, blank, log_zero, xp,
                                         keep_all=keep_all, start_floor=start_floor)
        nll = -core.ctc_log_likelihood(alpha, label_lengths, xp)
    else:
        history = None
        nll = -_log_likelihood(backend, log_probs, safe, frame_active, label_lengths, blank,
                               log_zero, start_floor)
    feasible = core.required_frames(safe, label_lengths, xp) <= input_lengths
    if s:
        nll = xp.where(xp.any(bad, axis=1), xp.full_like(nll, math.nan), nll)
    elif history is not None:
        history = history[:, :, :1]
    return nll, feasible, history


def fast_paths(xp: Any) -> bool:
    """Whether the CTC recursion runs as one operation with its hand-written gradient
    (``core.sequence.CTCForwardBackward``) rather than recorded frame by frame: where the
    namespace's fast paths are on (it carries ``polyloss_kernels``; ``kernels.generic(xp)``,
    the same namespace without them, runs the generic path, as the tests compare)."""
    return getattr(xp, "polyloss_kernels", None) is not None


def _log_likelihood(backend: Backend, log_probs: Any, labels: Any, frame_active: Any,
                    label_lengths: Any, blank: int, log_zero: float,
                    start_floor: float | None) -> Any:
    """``log p(labels | x)`` ``(N,)`` by ``CTCForwardBackward`` through the framework's
    custom-gradient hook: the autograd tape holds one operation, not T frames of them."""
    xp = backend.xp
    ext = core.extended_labels(labels, blank, xp)
    floor = xp.full_like(ext, log_zero, dtype=log_probs.dtype)
    rule = core.CTCForwardBackward(xp, log_zero, start_floor, block_scan(backend.framework, xp))
    return call_with_vjp(backend.framework, rule, log_probs, ext,
                         core.skip_penalties(labels, floor, xp),
                         xp.astype(frame_active, label_lengths.dtype), label_lengths)


def frames_from_lengths(input_lengths: Any, t_max: int, xp: Any) -> Any:
    """``(N, T)`` bool: frame ``t`` is used when ``t < input_length``."""
    return arange_like(t_max, input_lengths, input_lengths.dtype, xp)[None, :] < input_lengths[:, None]


def labels_array(backend: Backend, labels: Any, name: str, like: Any, what: str = "class indices") -> Any:
    """Integer ``labels`` (or lengths: ``what``) as an array of the indexing dtype; floating
    values are accepted when they are whole numbers (MXNet keeps labels in float32)."""
    xp = backend.xp
    if backend.to_xp is not None:
        labels = backend.to_xp(labels)
    if not hasattr(labels, "shape"):
        raise TypeError(f"polyloss: {name} must be an array of {what}, got {type(labels).__name__}")
    if backend.is_floating(labels.dtype):
        if values_checked(backend, labels) and bool(xp.any(labels != xp.floor(labels))):
            raise ValueError(f"polyloss: {name} holds {what}, so its values must be whole numbers; "
                             "some are not (or are NaN/inf)")
        if what == "class indices":  # unread (jit, lazy): a non-whole label is no class, not a truncated one
            return as_index(backend, labels)
    elif not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(f"polyloss: {name} must hold {what}, got dtype {labels.dtype}")
    dtype = index_dtype(xp)
    return labels if labels.dtype == dtype else xp.astype(labels, dtype)


# ---- the canonical loss -------------------------------------------------------------------

def ctc(pred: Any, labels: Any, input_lengths: Any = None, label_lengths: Any = None, *,
        blank: int = 0, layout: str = "NTC", from_logits: bool = True, zero_infinity: bool = False,
        normalize_by_length: bool = False, reduction: str = "mean", sample_weight: Any = None,
        normalizer: str | float | Any = "count") -> Any:
    """Connectionist temporal classification loss, ``-log Σ_alignments Π_t p_t(π_t)``.

    ``pred``: ``(N, T, C)`` (``layout="NTC"``) or ``(T, N, C)`` (``"TNC"``), logits
    (``from_logits=True``: log_softmax over the classes is applied) or log-probabilities.
    ``labels``: ``(N, S)`` class indices, never ``blank``. ``input_lengths``: frames used
    per sequence (default all ``T``). ``label_lengths``: labels per sequence; by default
    every row is full except trailing ``-1`` padding. Lengths are ints, sequences of ints or
    integer arrays.

    A label sequence longer than its input raises ``ValueError`` (eager), unless
    ``zero_infinity=True``. A sequence whose repeats do not fit (``aa`` needs a blank
    between: 3 frames) has loss ``inf``, or 0 with ``zero_infinity=True`` (gradient 0).
    ``normalize_by_length`` divides each sequence's loss by ``max(label_length, 1)``
    before the reduction; the reduction is over sequences.

    Equivalents: ``torch.nn.CTCLoss`` (``layout="TNC"``, ``from_logits=False``,
    ``normalize_by_length=True`` for its ``'mean'``), ``keras.losses.CTC`` (blank 0, also
    the padding), ``gluon.loss.CTCLoss`` (blank ``C - 1``, ``-1`` padding, per sequence),
    ``optax.ctc_loss`` and ``tf.nn.ctc_loss`` (per sequence, padding masks / lengths).
    """
    _check_common(reduction, normalizer)
    check_choice("layout", layout, LAYOUTS)
    names = ("pred", "labels", "sample_weight")
    backend = backend_of(pred, labels, sample_weight, array_or_none(input_lengths),
                         array_or_none(label_lengths), names=names + ("input_lengths", "label_lengths"))
    with backend.scope():
        p = prepare(pred, labels, sample_weight, names=names, integer_target=True)
        xp = p.xp
        if len(p.pred.shape) != 3:
            raise ValueError(f"polyloss: pred must have 3 dimensions ({layout}), got shape "
                             f"{tuple(p.pred.shape)}")
        x = p.pred if layout == "NTC" else xp.permute_dims(p.pred, (1, 0, 2))
        n, t_max, num_classes = x.shape
        if not -num_classes <= blank < num_classes:
            raise ValueError(f"polyloss: blank must be a class index in [0, {num_classes}), got "
                             f"{blank!r}")
        blank %= num_classes
        y = labels_array(backend, p.target, "labels", x)
        if len(y.shape) != 2 or y.shape[0] != n:
            raise ValueError(f"polyloss: labels must have shape (N, S) with N = {n}, got shape "
                             f"{tuple(y.shape)}")
        if label_lengths is None:
            label_lengths = _lengths_from_padding(backend, y)
        else:
            label_lengths = lengths_array(backend, label_lengths, n, "label_lengths", x)
        input_lengths = lengths_array(backend, t_max if input_lengths is None else input_lengths,
                                      n, "input_lengths", x)
        if from_logits:
            log_probs = cls_core.log_softmax(x, -1, xp)
        else:
            _check_log_probabilities(backend, x)
            log_probs = x
        nll, feasible, _ = sequence_nll(
            backend, log_probs, y, label_lengths, input_lengths,
            frames_from_lengths(input_lengths, t_max, xp), blank=blank, log_zero=LOG_ZERO,
            names={"labels": "labels", "label_lengths": "label_lengths",
                   "input_lengths": "input_lengths"},
            too_long="allow" if zero_infinity else "error")
        impossible = xp.zeros_like(nll) if zero_infinity else xp.full_like(nll, math.inf)
        loss = xp.where(feasible, nll, impossible)
        if normalize_by_length:
            loss = loss / xp.astype(xp.clip(label_lengths, 1, None), loss.dtype)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=n))


def _lengths_from_padding(backend: Backend, labels: Any) -> Any:
    # -1 pads the end of a row; padding in the middle would silently shorten the sequence
    xp = backend.xp
    padding = labels == -1
    if values_checked(backend, labels) and labels.shape[1] > 1:
        after = padding[:, :-1] & ~padding[:, 1:]
        if bool(xp.any(after)):
            raise ValueError("polyloss: labels may be padded with -1 only at the end of a row "
                             "(or pass label_lengths)")
    return xp.sum(xp.astype(~padding, index_dtype(xp)), axis=1)


def _check_log_probabilities(backend: Backend, x: Any) -> None:
    xp = backend.xp
    if values_checked(backend, x) and bool(xp.any(x > 0)):
        raise ValueError("polyloss: pred holds values > 0, so they are not log-probabilities; "
                         "pass logits with from_logits=True (or apply log_softmax first)")
