"""Connectionist temporal classification (Graves et al. 2006), unreduced (Array API only).

The forward (alpha) recursion runs in log space over the extended label sequence
``blank, l1, blank, l2, ..., lS, blank`` (``2S + 1`` states), vectorised over the batch and
the states. "Impossible" is a finite ``log_zero`` rather than ``-inf``: ``logaddexp(-inf,
-inf)`` has a NaN gradient on most backends, and a finite floor leaves every feasible path's
value untouched (``exp(log_zero - x)`` is exactly 0 in floating point).

Two ways to differentiate it, with the same values:

- generic (``ctc_alphas``): a Python loop over time that each backend's autograd records
  (T copies of the frame's operations on the tape);
- ``CTCForwardBackward``: the same forward recursion, unrecorded, and the backward (beta)
  recursion written out, attached as one operation with a hand-written gradient (see
  ``polyloss.backends.autodiff``): ``d log p / d log_probs[t, c]`` is the posterior
  occupancy ``exp(alpha_t(s) + beta_t(s) - log p)`` summed over the states ``s`` of class
  ``c``. It also serves the generic path's lattice exactly (floors, the start floor, penalised
  skips), so its gradient is the generic path's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polyloss.core._helpers import arange_like, device_like, take_along_last


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


def emissions(log_probs: Any, ext: Any, xp: Any) -> Any:
    """Every frame's log-probability of every state's symbol, gathered once: ``(N, T, 2S+1)``."""
    n, t_max, states = log_probs.shape[0], log_probs.shape[1], ext.shape[1]
    return take_along_last(log_probs, xp.broadcast_to(ext[:, None, :], (n, t_max, states)), xp)


def skip_penalties(labels: Any, floor: Any, xp: Any) -> Any:
    """``(N, 2S + 1)``: what a skip onto each state costs (``floor`` holds ``log_zero``).

    0 where the skip is allowed; onto a repeated label ``log_zero`` (optax's leak, invisible
    next to any real path); onto a blank there is no such transition at all (``-inf``, which
    only ever meets a finite partner in logaddexp, so its gradient is an exact 0)."""
    n, states = floor.shape
    onto_label = xp.reshape(xp.stack([labels != labels, labels == labels], axis=2), (n, states - 1))
    onto_label = xp.concat([onto_label, onto_label[:, :1]], axis=1)
    return xp.where(skip_allowed(labels, xp), xp.zeros_like(floor),
                    xp.where(onto_label, floor, xp.full_like(floor, -math.inf)))


def start_alphas(floor: Any, start_floor: float | None, xp: Any) -> Any:
    """``alpha_{-1}``: 0 on the first blank, ``start_floor`` (default ``log_zero``) elsewhere."""
    rest = floor if start_floor is None else xp.full_like(floor, start_floor)
    return xp.concat([xp.zeros_like(floor[:, :1]), rest[:, 1:]], axis=1)


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
    ext = extended_labels(labels, blank, xp)
    emit = emissions(log_probs, ext, xp)
    floor = xp.full_like(emit[:, 0, :], log_zero)
    skip_penalty = skip_penalties(labels, floor, xp)
    floor2 = floor[:, :2]
    start = start_alphas(floor, start_floor, xp)
    # alpha with two floor states in front, so the shifted neighbours are plain slices
    padded = xp.concat([floor2, start], axis=1)
    alpha = start
    history = []
    # one unstack rather than T slices: a slice's gradient is a full-size array per frame
    frames = xp.unstack(xp.permute_dims(emit, (1, 0, 2)), axis=0)
    active = xp.unstack(xp.expand_dims(frame_active, axis=2), axis=1)
    for t in range(log_probs.shape[1]):
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


def final_states(label_lengths: Any, states: int, xp: Any) -> Any:
    """``(N, 2S + 1)`` bool: the states a path may end on (``ctc_log_likelihood``'s)."""
    position = arange_like(states, label_lengths, label_lengths.dtype, xp)[None, :]
    last = 2 * label_lengths[:, None]
    # logical_and/or: MXNet's & and | refuse broadcast bool operands
    return xp.logical_or(position == last, xp.logical_and(position == last - 1, last > 0))


@dataclass(frozen=True, eq=False)
class CTCForwardBackward:
    """``log p(labels | x)`` per sequence and its vector-Jacobian product, for one call's static
    choices: the forward (alpha) recursion of ``ctc_alphas`` unrecorded, and the backward (beta)
    recursion, so that a framework's autograd sees one operation (``call_with_vjp``).

    ``forward(log_probs, ext, skip_penalty, frame_active, label_lengths, needs=...)`` takes
    ``log_probs`` ``(N, T, C)``, the extended labels ``ext`` ``(N, 2S + 1)`` (``extended_labels``
    of safe labels), ``skip_penalty`` ``(N, 2S + 1)`` (``skip_penalties``), ``frame_active``
    ``(N, T)`` integers (0: the frame is skipped) and ``label_lengths`` ``(N,)`` (in
    ``[0, S]``); it returns ``log p`` ``(N,)``, equal to ``ctc_log_likelihood(ctc_alphas(...))``
    operation for operation, and the residuals. ``backward(residuals, cotangent, needs)`` gives
    ``cotangent · γ`` w.r.t. ``log_probs`` (``None`` for the other arrays), with the occupancy

        γ[n, t, c] = Σ_{s: ext[n, s] = c} exp(alpha_t(s) + beta_t(s) - log p)

    on active frames (0 on skipped ones). ``beta_t(s)`` is the log-sum of every continuation
    from state ``s`` after frame ``t`` to a final state, over the generic lattice's transitions
    (the same skip penalties; nothing past the last state; only the final states count at the
    end), so ``γ`` is the generic path's gradient: the floors' paths included (optax's leak,
    Keras's start floor), which is what the generic autograd differentiates too. Frames are
    visited by ``scan`` (``lax.scan``'s contract; a Python loop by default). Hashable by
    identity (``jax.custom_vjp`` keeps it static).
    """

    xp: Any
    log_zero: float
    start_floor: float | None = None
    scan: Callable | None = None

    def _scan(self) -> Callable:
        if self.scan is not None:
            return self.scan
        from polyloss.core.linear import python_scan

        return python_scan(self.xp)

    def _alphas(self, emit: Any, active: Any, skip_penalty: Any) -> tuple[Any, Any]:
        """The last frame's alphas ``(N, 2S + 1)`` and every frame's ``(T, N, 2S + 1)`` (``emit``
        and ``active`` time-major: ``(T, N, 2S + 1)`` and ``(T, N, 1)``)."""
        xp = self.xp
        floor = xp.full_like(skip_penalty, self.log_zero)
        floor2 = floor[:, :2]
        start = start_alphas(floor, self.start_floor, xp)

        def frame(alpha: Any, x: tuple) -> tuple:
            emit_t, active_t = x
            padded = xp.concat([floor2, alpha], axis=1)
            stay_or_step = xp.logaddexp(alpha, padded[:, 1:-1])
            new = xp.logaddexp(stay_or_step, padded[:, :-2] + skip_penalty) + emit_t
            alpha = xp.where(active_t, new, alpha)
            return alpha, (alpha,)

        if emit.shape[0] == 0:
            return start, emit
        alpha, (history,) = self._scan()(frame, start, (emit, active))
        return alpha, history

    def _betas(self, emit: Any, active: Any, skip_penalty: Any, label_lengths: Any) -> Any:
        """Every frame's ``beta_t`` ``(T, N, 2S + 1)``: the log-sum of the paths from each state
        after frame ``t`` to the end (``-inf`` where none; values only, never differentiated,
        so a ``-inf`` costs nothing here)."""
        xp = self.xp
        t_max = emit.shape[0]
        nothing = xp.full_like(skip_penalty, -math.inf)
        nothing2 = nothing[:, :2]
        # the skip onto state s + 2 costs the penalty of s + 2
        penalty_ahead = xp.concat([skip_penalty[:, 2:], nothing2], axis=1)
        end = xp.where(final_states(label_lengths, skip_penalty.shape[1], xp),
                       xp.zeros_like(nothing), nothing)

        def frame(beta: Any, x: tuple) -> tuple:
            emit_t, active_t = x
            here = beta + emit_t  # continuations that emit at frame t from each state
            padded = xp.concat([here, nothing2], axis=1)
            stay_or_step = xp.logaddexp(here, padded[:, 1:-1])
            before = xp.logaddexp(stay_or_step, padded[:, 2:] + penalty_ahead)
            return xp.where(active_t, before, beta), (beta,)

        backwards = xp.arange(t_max - 1, -1, -1, dtype=label_lengths.dtype,
                              device=device_like(label_lengths))
        _, (betas,) = self._scan()(frame, end, (xp.take(emit, backwards, axis=0),
                                                xp.take(active, backwards, axis=0)))
        return xp.take(betas, backwards, axis=0)

    def _time_major(self, log_probs: Any, ext: Any, frame_active: Any) -> tuple[Any, Any]:
        xp = self.xp
        emit = xp.permute_dims(emissions(log_probs, ext, xp), (1, 0, 2))
        # transposed before the comparison: MXNet transposes no bool arrays
        active = xp.expand_dims(xp.permute_dims(frame_active, (1, 0)) != 0, axis=2)
        return emit, active

    def forward(self, log_probs: Any, ext: Any, skip_penalty: Any, frame_active: Any,
                label_lengths: Any, *, needs: tuple) -> tuple[Any, tuple]:
        emit, active = self._time_major(log_probs, ext, frame_active)
        alpha, history = self._alphas(emit, active, skip_penalty)
        log_p = ctc_log_likelihood(alpha, label_lengths, self.xp)
        inputs = (log_probs, ext, skip_penalty, frame_active, label_lengths)
        if not needs[0]:
            return log_p, inputs  # the backward pass (if asked after all) starts over
        return log_p, inputs + (emit, active, history, log_p)

    def backward(self, residuals: tuple, cotangent: Any, needs: tuple) -> tuple:
        log_probs, ext, skip_penalty, frame_active, label_lengths = residuals[:5]
        rest = (None,) * 4
        if not needs[0]:
            return (None, *rest)
        xp = self.xp
        if len(residuals) == 5:
            emit, active = self._time_major(log_probs, ext, frame_active)
            alpha, history = self._alphas(emit, active, skip_penalty)
            log_p = ctc_log_likelihood(alpha, label_lengths, xp)
        else:
            emit, active, history, log_p = residuals[5:]
        n, t_max, num_classes = log_probs.shape
        if t_max == 0 or n == 0:
            return (xp.zeros_like(log_probs), *rest)
        betas = self._betas(emit, active, skip_penalty, label_lengths)
        # exp(alpha + beta - log p) <= 1 (to rounding); the where keeps skipped frames and the
        # unreachable states' -inf (whose exp is 0 anyway) out
        occupancy = xp.where(active, xp.exp(history + betas - log_p[None, :, None]),
                             xp.zeros_like(history))
        classes = arange_like(num_classes, ext, ext.dtype, xp)
        one_hot = xp.astype(ext[:, :, None] == classes[None, None, :], log_probs.dtype)
        per_class = xp.matmul(xp.permute_dims(occupancy, (1, 0, 2)), one_hot)  # (N, T, C)
        return (per_class * cotangent[:, None, None], *rest)
