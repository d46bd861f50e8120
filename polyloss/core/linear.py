"""Cross-entropy of a linear layer's logits, in blocks, with its gradient (Array API only).

For hidden states ``H`` (N, F), a weight ``W`` (C, F) and a bias ``b`` (C,), the logits are
``z = H Wᵀ + b`` and each row's loss is

    loss_n = Σ_c a_nc (lse_n - z_nc),   lse_n = log Σ_c exp z_nc,

where ``a_nc`` is the target mass the row puts on class ``c``: for a class index ``y_n`` with
class weights ``w`` and label smoothing ``ε``, ``a_nc = (1-ε) w_y [c = y_n] + (ε/C) w_c``
(0 for an ignored row); for probabilities ``t``, ``a_nc = w_c (t_nc (1-ε) + ε/C)``. That is
exactly the cross-entropy of the logits (``core.classification``'s formulas). Its gradient
w.r.t. the logits is ``G = g (s·softmax(z) - a)``, with ``s_n = Σ_c a_nc`` and ``g`` the
cotangent of the row losses; ``dH = G W``, ``dW = Gᵀ H``, ``db = Σ_n G``, and for probability
targets ``dt = g (1-ε) w (lse - z)``.

The (N, C) logits are never held whole, and a framework's autograd sees one operation (see
``polyloss.backends.autodiff``), so no block of logits stays alive for the backward pass.

**Row blocks** (the batch size known): blocks of ``row_chunk`` whole rows, ``z_r = H_r Wᵀ``.

- A reduction follows (``reduced``) and some input wants a gradient: each block's logits give
  its losses and, at once, its share of the gradients: three matrix products per block, as the
  unfused path. This needs the cotangent of the row losses to be ``c·row_weight`` for a scalar
  ``c``, which holds when a (linear) reduction with sample weights ``row_weight`` follows any
  function of it: the backward pass only scales (``dH`` row by row by ``g``, ``dW`` and ``db``
  by ``c``).
- Otherwise (``reduction="none"``, or a plain evaluation): the forward keeps ``lse`` (N
  numbers); the backward recomputes each block's logits (one more product per block).

Memory (elements, beyond the inputs): ``C·F + N·F`` for the gradients, ``C·F`` more while
``dW``'s pieces are joined, and about four ``row_chunk x C`` arrays for the block at work.

**Class blocks** (a symbolic batch size, or ``class_chunk`` chosen): blocks of all rows by
``class_chunk`` classes. The forward keeps per row a running maximum ``m``, the running
``S = Σ exp(z - m)`` (rescaled when ``m`` grows) and ``Σ a (m - z)``; the backward recomputes
each block (``dW``'s block at once, ``dH`` accumulated). Memory: the gradients and about four
``N x class_chunk`` arrays.

Either way the loss is ``Σ a (m - z) + s log S`` with ``m - z`` kept apart from ``log S``, so
a tiny loss (a confident, correct row) is as accurate as the unfused ``-log_softmax``.

Blocks are visited by ``scan(body, carry, xs)`` (``lax.scan`` semantics; a Python loop
generically, a real loop where a compiler would otherwise run every unrolled block at once:
see ``polyloss.backends.autodiff.block_scan``). Nothing inside the operation is recorded by an
autograd, so accumulators are updated in place (``+=``; JAX and TensorFlow arrays rebind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polyloss.core._helpers import arange_like, device_like, take_along_last

#: Logit elements per block when the caller does not choose (see docs/linear_cross_entropy.md).
DEFAULT_BLOCK_ELEMENTS = 2**24
#: Classes per block of a class-block pass when the caller does not choose.
DEFAULT_CLASS_CHUNK = 1024
#: Row blocks add their share of ``dW`` in pieces of this many classes (``weight_piece``'s
#: default): a small temporary per piece instead of a (C, F) one per block.
WEIGHT_PIECE = 1024


def chunk_sizes(num_rows: int | None, num_classes: int, row_chunk: int | None,
                class_chunk: int | None,
                block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> tuple[int | None, int | None]:
    """``(rows per block, classes per block)``: exactly one is set. Row blocks (the default)
    need a static number of rows and hold ``block_elements`` logits unless ``row_chunk`` says
    otherwise; class blocks are used for a symbolic batch size or when ``class_chunk`` is
    given (and ``row_chunk`` is not)."""
    if num_rows is None or (class_chunk is not None and row_chunk is None):
        return None, min(class_chunk or DEFAULT_CLASS_CHUNK, max(num_classes, 1))
    rows = row_chunk or max(1, block_elements // max(num_classes, 1))
    return min(rows, max(num_rows, 1)), None


def python_scan(xp: Any) -> Callable:
    """``lax.scan`` as a Python loop: ``scan(body, carry, xs) -> (carry, ys)`` where ``xs`` and
    ``ys`` are tuples of arrays (or ``None``) stacked along a leading block axis."""

    def scan(body: Callable, carry: Any, xs: tuple) -> tuple[Any, tuple]:
        count = next(x.shape[0] for x in xs if x is not None)
        outs: list[tuple] = []
        for i in range(count):
            carry, y = body(carry, tuple(None if x is None else x[i, ...] for x in xs))
            outs.append(y)
        if not outs:
            return carry, ()
        ys = tuple(None if outs[0][j] is None else xp.stack([o[j] for o in outs], axis=0)
                   for j in range(len(outs[0])))
        return carry, ys

    return scan


def _spans(n: int, step: int) -> list[tuple[int, int]]:
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _blocks(x: Any, count: int, size: int, axis: int, xp: Any) -> Any:
    """The first ``count·size`` entries of ``x`` along ``axis`` as ``count`` blocks stacked on
    a new leading axis (``None`` stays ``None``)."""
    if x is None or count == 0:
        return None
    shape = tuple(x.shape)
    part = x[(slice(None),) * axis + (slice(0, count * size), ...)]
    split = xp.reshape(part, shape[:axis] + (count, size) + shape[axis + 1:])
    return split if axis == 0 else xp.permute_dims(split, _front(axis, len(split.shape)))


def _tail(x: Any, start: int, axis: int) -> Any:
    return None if x is None else x[(slice(None),) * axis + (slice(start, None), ...)]


def _unblock(stacked: Any, tail: Any, axis: int, xp: Any) -> Any:
    """Undo ``_blocks`` for a per-block output and append the tail block's output."""
    parts = []
    if stacked is not None:
        if axis != 0:  # the inverse of moving ``axis`` to the front
            order = _front(axis, len(stacked.shape))
            stacked = xp.permute_dims(stacked, tuple(order.index(i) for i in range(len(order))))
        shape = tuple(stacked.shape)
        parts.append(xp.reshape(stacked, shape[:axis] + (shape[axis] * shape[axis + 1],)
                                + shape[axis + 2:]))
    if tail is not None:
        parts.append(tail)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=axis)


def _front(axis: int, ndim: int) -> tuple[int, ...]:
    return (axis,) + tuple(i for i in range(ndim) if i != axis)


def _add(total: Any, part: Any) -> Any:
    """``total + part``, in place where the array type allows (``total`` is always an array
    this module created, never an input)."""
    if total is None:
        return part
    total += part
    return total


#: The passes by the number of residuals they keep (see ``LinearCrossEntropy.forward``).
_PASS_OF_RESIDUALS = {4: "empty", 5: "rows_grad", 7: "rows", 9: "classes"}


@dataclass(frozen=True, eq=False)
class LinearCrossEntropy:
    """The blocked loss and its vector-Jacobian product, for one call's static choices.

    ``forward(*arrays, needs=...)`` returns the per-row losses (N,) and the residuals (arrays)
    that ``backward`` needs; ``needs[i]`` says whether ``arrays[i]`` may want a gradient (all
    ``False``: a plain evaluation; gradients are then recomputed if asked for after all), and
    ``backward(residuals, cotangent, needs)`` returns one gradient per array (``None`` where
    not wanted or not differentiable). The arrays, in order: ``hidden`` (N, F), ``weight``
    (C, F), ``bias`` (C,) or ``None``, ``target`` (class indices (N,), already safe, or probabilities (N, C)),
    ``onehot_coef`` (N,) ``= (1-ε) w_y`` (0 for rows that do not count; index targets),
    ``smooth_coef`` (N,) ``= ε/C`` (0 for rows that do not count; index targets with ``ε > 0``,
    else ``None``), ``class_weight`` (C,) or ``None``, and ``row_weight`` (N,) or ``None``
    (equal): with ``reduced=True`` the cotangent of the row losses is ``c·row_weight`` for a
    scalar ``c``. Instances are hashable by identity (``jax.custom_vjp`` keeps them static).
    """

    xp: Any
    num_rows: int | None
    num_classes: int
    row_chunk: int | None  # rows per block (row blocks), or None: class blocks
    class_chunk: int | None  # classes per block (class blocks)
    label_smoothing: float
    index_target: bool
    reduced: bool = False
    scan: Callable | None = None  # lax.scan-like block loop; None: python_scan(xp)
    # classes per piece of dW's accumulation; None: all at once (a compiler that fuses the
    # product with the addition, XLA, is faster without pieces)
    weight_piece: int | None = WEIGHT_PIECE

    # ---- shared pieces --------------------------------------------------------------------

    def _scan(self) -> Callable:
        return self.scan or python_scan(self.xp)

    def _logits(self, hidden_r: Any, weight_k: Any, bias_k: Any) -> Any:
        z = self.xp.matmul(hidden_r, self.xp.permute_dims(weight_k, (1, 0)))
        if bias_k is not None:
            z += bias_k
        return z

    def _mass_k(self, target_r: Any, class_weight_k: Any) -> Any:
        """Probability targets: the target mass ``w_c (t (1-ε) + ε/C)``."""
        eps = self.label_smoothing
        q = target_r if not eps else target_r * (1.0 - eps) + eps / self.num_classes
        return q if class_weight_k is None else q * class_weight_k

    def _index_mass(self, onehot_coef: Any, smooth_coef: Any, class_weight: Any) -> Any:
        """Index targets: ``s = Σ_c a_nc = (1-ε) w_y + (ε/C) Σ_c w_c``."""
        if smooth_coef is None:
            return onehot_coef
        total = self.num_classes if class_weight is None else self.xp.sum(class_weight)
        return onehot_coef + smooth_coef * total

    def _wants(self, arrays: tuple, needs: tuple) -> tuple[bool, bool, bool, bool]:
        bias = arrays[2]
        return (bool(needs[0]), bool(needs[1]), bias is not None and bool(needs[2]),
                not self.index_target and bool(needs[3]))

    def _row_spans(self) -> tuple[int, int]:
        """``(full blocks, start of the ragged tail)`` of the row blocks."""
        n, size = self.num_rows, self.row_chunk
        return n // size, (n // size) * size  # type: ignore[operator]

    # ---- dispatch -----------------------------------------------------------------------------

    def _pass(self, needs: tuple) -> str:
        """``"empty"``, ``"rows_grad"`` (gradients formed forward), ``"rows"`` or ``"classes"``."""
        if self.num_rows == 0:
            return "empty"
        if self.row_chunk is None:
            return "classes"
        return "rows_grad" if self.reduced and any(needs[:4]) else "rows"

    def forward(self, *arrays: Any, needs: tuple) -> tuple[Any, tuple]:
        kind = self._pass(needs)
        if kind == "empty":
            hidden = arrays[0]
            return self.xp.zeros((0,), dtype=hidden.dtype, device=device_like(hidden)), arrays[:4]
        if kind == "classes":
            return self._forward_classes(*arrays)
        wants = self._wants(arrays, needs) if kind == "rows_grad" else (False,) * 4
        loss, d_hidden, d_weight, d_bias, d_target = self._rows(arrays, wants, None)
        if kind == "rows_grad":
            return loss, (arrays[7], d_hidden, d_weight, d_bias, d_target)
        return loss, arrays[:7]  # the backward pass recomputes each block whole

    def backward(self, residuals: tuple, cotangent: Any, needs: tuple) -> tuple:
        # the residuals' length names the pass that made them (the forward may have been asked
        # with other ``needs``: TensorFlow does not know them until a gradient is taken)
        kind = _PASS_OF_RESIDUALS[len(residuals)]
        rest = (None,) * 4
        if kind == "empty":
            zeros = self.xp.zeros_like
            wants = self._wants(residuals, needs)
            return tuple(zeros(a) if want else None
                         for a, want in zip(residuals, wants, strict=True)) + rest
        if kind == "classes":
            return self._backward_classes(residuals, cotangent, needs) + rest
        if kind == "rows_grad":
            return self._scale(residuals, cotangent, needs) + rest
        arrays = residuals[:7] + (None,)
        _, d_hidden, d_weight, d_bias, d_target = self._rows(
            arrays, self._wants(arrays, needs), cotangent)
        return (d_hidden, d_weight, d_bias, d_target) + rest

    # ---- row blocks ---------------------------------------------------------------------------

    def _rows(self, arrays: tuple, wants: tuple, cotangent: Any) -> tuple:
        """One pass over row blocks: the losses and the wanted gradients, either
        formed for ``c·row_weight`` (``cotangent`` None) or for the given ``cotangent``."""
        xp = self.xp
        hidden, weight, bias, target, onehot_coef, smooth_coef, class_weight, row_weight = arrays
        want_h, want_w, want_b, want_t = wants
        count, start = self._row_spans()
        # per row: the weight of the row in dH (the cotangent, or 1) and in dW, db
        dh_scale = cotangent
        dw_scale = cotangent if cotangent is not None else row_weight
        per_row = (hidden, target, onehot_coef, smooth_coef, dh_scale, dw_scale)
        zeros = xp.zeros
        pieces = _spans(self.num_classes, self.weight_piece or self.num_classes)
        features = weight.shape[1]
        carry = (
            tuple(zeros((k1 - k0, features), dtype=weight.dtype, device=device_like(weight))
                  for k0, k1 in pieces) if want_w else None,
            zeros(tuple(bias.shape), dtype=bias.dtype, device=device_like(bias)) if want_b else None,
        )

        def body(carry: tuple, block: tuple) -> tuple:
            d_weight, d_bias = carry
            out = self._row_block(*block, weight, bias, class_weight, wants, d_weight, pieces)
            loss_r, d_hidden_r, d_target_r, d_weight, d_bias_r = out
            if d_bias_r is not None:
                d_bias = _add(d_bias, d_bias_r)
            return (d_weight, d_bias), (loss_r, d_hidden_r, d_target_r)

        ys: tuple = (None,) * 3
        if count:
            blocks = tuple(_blocks(x, count, self.row_chunk, 0, xp) for x in per_row)  # type: ignore[arg-type]
            carry, ys = self._scan()(body, carry, blocks)
        tails: tuple = (None,) * 3
        if start < self.num_rows:  # type: ignore[operator]
            carry, tails = body(carry, tuple(_tail(x, start, 0) for x in per_row))
        loss, d_hidden, d_target = (
            None if y is None and t is None else _unblock(y, t, 0, xp)
            for y, t in zip(ys, tails, strict=True))
        d_weight, d_bias = carry
        if d_weight is not None:
            d_weight = d_weight[0] if len(d_weight) == 1 else xp.concat(d_weight, axis=0)
        return loss, d_hidden if want_h else None, d_weight, d_bias, d_target if want_t else None

    def _row_block(self, hidden_r: Any, target_r: Any, oc: Any, sc: Any, dh_scale: Any,
                   dw_scale: Any, weight: Any, bias: Any, class_weight: Any, wants: tuple,
                   d_weight: tuple | None, pieces: list) -> tuple:
        """One block of whole rows: ``(loss, dH, dt, dW, db share)``, its share of ``dW`` added
        to the pieces ``d_weight`` (in place where the arrays allow)."""
        xp = self.xp
        eps = self.label_smoothing
        want_h, want_w, want_b, want_t = wants
        shifted = self._logits(hidden_r, weight, bias)
        m = xp.max(shifted, axis=1)
        shifted -= m[:, None]  # z - m <= 0, exact near the maximum
        e = xp.exp(shifted)
        sum_exp = xp.sum(e, axis=1)
        log_sum = xp.log(sum_exp)
        if self.index_target:
            picked = take_along_last(shifted, target_r[:, None], xp)[:, 0]
            mass = self._index_mass(oc, sc, class_weight)
            loss = mass * log_sum - oc * picked
            if sc is not None:
                u = shifted if class_weight is None else shifted * class_weight
                loss = loss - sc * xp.sum(u, axis=1)
        else:
            a = self._mass_k(target_r, class_weight)
            mass = xp.sum(a, axis=1)
            loss = mass * log_sum - xp.sum(a * shifted, axis=1)
        d_target = None
        if want_t:  # ∂loss/∂t_c = (1-ε) w_c (lse - z_c)
            d_target = (1.0 - eps) * (log_sum[:, None] - shifted)
            if class_weight is not None:
                d_target *= class_weight
            if dh_scale is not None:
                d_target *= dh_scale[:, None]
        del shifted  # one block array fewer while the gradient is formed
        d_hidden = d_bias = None
        grad, e = e, None  # no second name on the block: immutable arrays free it on rebinding
        if want_h or want_w or want_b:
            grad *= (mass / sum_exp)[:, None]  # s·softmax
            if self.index_target:
                if sc is not None:
                    grad -= sc[:, None] if class_weight is None else sc[:, None] * class_weight
                ids = arange_like(self.num_classes, target_r, target_r.dtype, xp)
                grad -= xp.where(target_r[:, None] == ids, oc[:, None], 0.0)
            else:
                grad -= a
            if want_h:
                d_hidden = xp.matmul(grad, weight)
                if dh_scale is not None:
                    d_hidden *= dh_scale[:, None]
            if dw_scale is not None:
                grad *= dw_scale[:, None]
            if want_w:
                d_weight = tuple(
                    _add(part, xp.matmul(xp.permute_dims(grad[:, k0:k1], (1, 0)), hidden_r))
                    for part, (k0, k1) in zip(d_weight, pieces, strict=True))  # type: ignore[arg-type]
            if want_b:
                d_bias = xp.sum(grad, axis=0)
        return loss, d_hidden, d_target, d_weight, d_bias

    def _scale(self, residuals: tuple, cotangent: Any, needs: tuple) -> tuple:
        """The backward pass of ``rows_grad``: the cotangent is ``c·row_weight``."""
        xp = self.xp
        row_weight, d_hidden, d_weight, d_bias, d_target = residuals
        g = cotangent
        # recover c (a least-squares fit, exact when the premise holds)
        if row_weight is None:
            c = xp.sum(g) / self.num_rows
        else:
            norm = xp.sum(row_weight * row_weight)
            some = norm > 0
            c = xp.where(some, xp.sum(g * row_weight) / xp.where(some, norm, 1.0), 0.0)
        return (
            g[:, None] * d_hidden if d_hidden is not None else None,
            c * d_weight if d_weight is not None else None,
            c * d_bias if d_bias is not None else None,
            g[:, None] * d_target if d_target is not None else None,
        )

    # ---- class blocks -------------------------------------------------------------------------

    def _class_split(self, arrays: tuple) -> tuple[tuple, tuple, int]:
        """The per-class arrays (weight, bias, class weight, probability targets, block starts)
        as stacked full class blocks, and the tail block, and its start."""
        xp = self.xp
        hidden, weight, bias, target, _, _, class_weight = arrays[:7]
        size = self.class_chunk
        count = self.num_classes // size  # type: ignore[operator]
        start = count * size  # type: ignore[operator]
        probs = None if self.index_target else target
        # where each block starts (index targets compare class ids with it)
        starts = (arange_like(count, target, target.dtype, xp) * size
                  if self.index_target and count else None)
        per_class = ((weight, 0), (bias, 0), (class_weight, 0), (probs, 1))
        blocks = tuple(_blocks(x, count, size, axis, xp) for x, axis in per_class) + (starts,)  # type: ignore[arg-type]
        tail = tuple(_tail(x, start, axis) if start < self.num_classes else None
                     for x, axis in per_class)
        return (blocks if count else None), tail, start

    def _forward_classes(self, hidden: Any, weight: Any, bias: Any, target: Any,
                         onehot_coef: Any, smooth_coef: Any, class_weight: Any,
                         row_weight: Any = None) -> tuple[Any, tuple]:
        xp = self.xp
        smooth = self.index_target and smooth_coef is not None
        dtype, device = hidden.dtype, device_like(hidden)
        rows_like = hidden[:, 0]  # (N,), also for a symbolic N

        def block(carry: tuple, blk: tuple) -> tuple:
            m_prev, sum_exp, gap, mass, zy, seen = carry
            weight_k, bias_k, cw_k, probs_k, k0 = blk
            z = self._logits(hidden, weight_k, bias_k)
            m = xp.maximum(m_prev, xp.max(z, axis=1))
            grow = m - m_prev  # >= 0: how far the shift moved
            sum_exp = sum_exp * xp.exp(-grow) + xp.sum(xp.exp(z - m[:, None]), axis=1)
            width = z.shape[1]
            if self.index_target:
                local = target - k0
                inside = xp.logical_and(local >= 0, local < width)
                picked = take_along_last(z, xp.where(inside, local, 0)[:, None], xp)[:, 0]
                zy = zy + xp.where(inside, picked, 0.0)
                if smooth:  # Σ_c w_c (m - z_c), and the earlier terms grow with the shift
                    g_k = m[:, None] - z
                    part = xp.sum(g_k if cw_k is None else g_k * cw_k, axis=1)
                    gap = gap + grow * seen + part
                    seen = seen + (width if cw_k is None else xp.sum(cw_k))
            else:
                a = self._mass_k(probs_k, cw_k)
                gap = gap + grow * mass + xp.sum(a * (m[:, None] - z), axis=1)
                mass = mass + xp.sum(a, axis=1)
            return (m, sum_exp, gap, mass, zy, seen), ()

        zero = xp.zeros_like(rows_like)
        # the running maximum starts at the first block's (a finite start: exp(-inf) grads)
        first = self._logits(hidden, weight[:1, ...], None if bias is None else bias[:1])[:, 0]
        seen0 = xp.zeros((), dtype=dtype, device=device)
        carry = (first, zero, zero, zero, zero, seen0)
        blocks, tail, start = self._class_split((hidden, weight, bias, target, None, None, class_weight))
        if blocks is not None:
            carry, _ = self._scan()(block, carry, blocks)
        if tail[0] is not None:
            carry, _ = block(carry, tail + (start,))
        m, sum_exp, gap, mass, zy, _ = carry
        log_sum = xp.log(sum_exp)
        if self.index_target:
            mass = self._index_mass(onehot_coef, smooth_coef, class_weight)
            loss = onehot_coef * (m - zy) + mass * log_sum
            if smooth:
                loss = loss + smooth_coef * gap
        else:
            loss = gap + mass * log_sum
        residuals = (hidden, weight, bias, target, onehot_coef, smooth_coef, class_weight,
                     m + log_sum, mass)
        return loss, residuals

    def _backward_classes(self, residuals: tuple, cotangent: Any, needs: tuple) -> tuple:
        xp = self.xp
        hidden, weight, bias, target, onehot_coef, smooth_coef, class_weight, lse, mass = residuals
        want_h, want_w, want_b, want_t = self._wants(residuals, needs)
        g = cotangent
        g_mass = (g * mass)[:, None]
        g_onehot = (g * onehot_coef)[:, None] if self.index_target else None
        g_smooth = (g * smooth_coef)[:, None] if smooth_coef is not None else None
        g_col = g[:, None]

        def block(d_hidden: Any, blk: tuple) -> tuple:
            weight_k, bias_k, cw_k, probs_k, k0 = blk
            centred = self._logits(hidden, weight_k, bias_k)
            centred -= lse[:, None]  # log softmax
            grad = g_mass * xp.exp(centred)  # g·s·softmax
            d_target_k = None
            if self.index_target:
                if g_smooth is not None:
                    grad -= g_smooth if cw_k is None else g_smooth * cw_k
                ids = arange_like(centred.shape[1], target, target.dtype, xp) + k0
                grad -= xp.where(target[:, None] == ids, g_onehot, 0.0)
            else:
                grad -= g_col * self._mass_k(probs_k, cw_k)
                if want_t:  # ∂loss/∂t_c = (1-ε) w_c (lse - z_c)
                    d_target_k = (g_col * (-(1.0 - self.label_smoothing))) * centred
                    if cw_k is not None:
                        d_target_k *= cw_k
            if want_h:
                d_hidden = _add(d_hidden, xp.matmul(grad, weight_k))
            d_weight_k = xp.matmul(xp.permute_dims(grad, (1, 0)), hidden) if want_w else None
            d_bias_k = xp.sum(grad, axis=0) if want_b else None
            return d_hidden, (d_weight_k, d_bias_k, d_target_k)

        d_hidden = xp.zeros_like(hidden) if want_h else None
        blocks, tail, start = self._class_split(residuals)
        ys: tuple = (None,) * 3
        if blocks is not None:
            d_hidden, ys = self._scan()(block, d_hidden, blocks)
        tails: tuple = (None,) * 3
        if tail[0] is not None:
            d_hidden, tails = block(d_hidden, tail + (start,))
        d_weight, d_bias, d_target = (
            None if y is None and t is None else _unblock(y, t, axis, xp)
            for y, t, axis in zip(ys, tails, (0, 0, 1), strict=True))
        return (d_hidden if want_h else None, d_weight, d_bias, d_target)

