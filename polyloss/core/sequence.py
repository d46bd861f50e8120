"""Connectionist temporal classification (Graves et al. 2006), unreduced (Array API only).

The forward (alpha) recursion runs in log space over the extended label sequence
``blank, l1, blank, l2, ..., lS, blank`` (``2S + 1`` states): a Python loop over time,
vectorised over the batch and the states, differentiated by each backend's autograd.
"Impossible" is a finite ``log_zero`` rather than ``-inf``: ``logaddexp(-inf, -inf)`` has a
NaN gradient on most backends, and a finite floor leaves every feasible path's value
untouched (``exp(log_zero - x)`` is exactly 0 in floating point).
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._helpers import arange_like, take_along_last


def extended_labels(labels: Any, blank: int, xp: Any) -> Any:
    """``(N, S)`` labels to the ``(N, 2S + 1)`` extended sequence with blanks around and
    between them."""
    n, s = labels.shape
    blanks = xp.full_like(labels, blank)
    interleaved = xp.reshape(xp.stack([blanks, labels], axis=2), (n, 2 * s))
    return xp.concat([interleaved, blanks[:, :1]], axis=1)


def skip_allowed(labels: Any, xp: Any) -> Any:
    """``(N, 2S + 1)`` bool: may a path jump two states (label ``n-1`` to label ``n``, over
    the blank)? Only onto a label state, and only when the label differs from the one
    before it (a repeated label needs a blank in between)."""
    n, s = labels.shape
    differs = labels[:, 1:] != labels[:, :-1]  # (N, S-1): for labels 2..S
    no = labels != labels
    first = no[:, :1]
    on_labels = xp.concat([first, differs], axis=1)  # (N, S)
    interleaved = xp.reshape(xp.stack([no, on_labels], axis=2), (n, 2 * s))
    return xp.concat([interleaved, first], axis=1)


def required_frames(labels: Any, label_lengths: Any, xp: Any) -> Any:
    """The fewest frames that can emit each label sequence: its length plus one blank
    between each pair of equal neighbours (only counting the first ``label_lengths``)."""
    s = labels.shape[1]
    if s < 2:
        return label_lengths
    repeats = labels[:, 1:] == labels[:, :-1]
    inside = arange_like(s, label_lengths, label_lengths.dtype, xp, start=1) < label_lengths[:, None]
    count = xp.sum(xp.astype(repeats & inside, label_lengths.dtype), axis=1)
    return label_lengths + count


def ctc_alphas(log_probs: Any, labels: Any, frame_active: Any, blank: int, log_zero: float,
               xp: Any, keep_all: bool = False, start_floor: float | None = None) -> tuple[Any, Any]:
    """Log forward variables of CTC.

    ``log_probs`` are normalised log-probabilities ``(N, T, C)``; ``labels`` ``(N, S)``
    valid class indices (padding replaced by any valid index: states past a sequence's
    end never feed back into it); ``frame_active`` ``(N, T)`` bool, False for frames that
    are skipped (input padding): the alphas carry over unchanged.

    Starting from ``alpha_{-1}`` = 0 on the first blank and ``start_floor`` (default
    ``log_zero``) elsewhere, each
    frame does ``alpha_t(s) = log p_t(z_s) + logsumexp(alpha(s), alpha(s-1),
    alpha(s-2) [+ log_zero where the skip is not allowed])``. Returns the alphas after the
    last frame ``(N, 2S + 1)`` and, with ``keep_all``, every frame's ``(T, N, 2S + 1)``.
    """
    n, t_max = log_probs.shape[0], log_probs.shape[1]
    ext = extended_labels(labels, blank, xp)
    states = ext.shape[1]
    # every frame's log-probability of every state's symbol, gathered once: (N, T, 2S+1)
    emit = take_along_last(log_probs, xp.broadcast_to(ext[:, None, :], (n, t_max, states)), xp)
    floor = xp.full_like(emit[:, 0, :], log_zero)
    zeros = xp.zeros_like(floor)
    # a skip onto a repeated label costs log_zero (optax's leak, invisible next to any real
    # path); onto a blank there is no such transition at all. The -inf only ever meets a
    # finite partner in logaddexp, so its gradient is an exact 0.
    onto_label = xp.reshape(xp.stack([labels != labels, labels == labels], axis=2), (n, 2 * (states // 2)))
    onto_label = xp.concat([onto_label, onto_label[:, :1]], axis=1)
    skip_penalty = xp.where(skip_allowed(labels, xp), zeros,
                            xp.where(onto_label, floor, xp.full_like(floor, -math.inf)))
    floor2 = floor[:, :2]
    rest = floor if start_floor is None else xp.full_like(floor, start_floor)
    start = xp.concat([zeros[:, :1], rest[:, 1:]], axis=1)
    # alpha with two floor states in front, so the shifted neighbours are plain slices
    padded = xp.concat([floor2, start], axis=1)
    alpha = start
    history = []
    # one unstack rather than T slices: a slice's gradient is a full-size array per frame
    frames = xp.unstack(xp.permute_dims(emit, (1, 0, 2)), axis=0)
    active = xp.unstack(xp.expand_dims(frame_active, axis=2), axis=1)
    for t in range(t_max):
        stay_or_step = xp.logaddexp(alpha, padded[:, 1:-1])
        new = xp.logaddexp(stay_or_step, padded[:, :-2] + skip_penalty) + frames[t]
        alpha = xp.where(active[t], new, alpha)
        padded = xp.concat([floor2, alpha], axis=1)
        if keep_all:
            history.append(alpha)
    return alpha, (xp.stack(history, axis=0) if keep_all else None)


def ctc_log_likelihood(alpha: Any, label_lengths: Any, xp: Any) -> Any:
    """``log p(labels | x)`` from the final alphas: the paths ending on the last label or
    on the blank after it (only the blank for an empty label sequence)."""
    last_blank = take_along_last(alpha, 2 * label_lengths[:, None], xp)[:, 0]
    last_label_index = xp.where(label_lengths > 0, 2 * label_lengths - 1, 0)
    last_label = take_along_last(alpha, last_label_index[:, None], xp)[:, 0]
    return xp.where(label_lengths > 0, xp.logaddexp(last_blank, last_label), last_blank)
