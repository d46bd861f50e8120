"""Canonical linear cross-entropy: a linear layer and softmax cross-entropy in one, in chunks.

``linear_cross_entropy(hidden, weight, target)`` is ``cross_entropy(hidden @ weight.T + bias,
target)`` without ever holding the (rows x classes) logits: see ``polyloss.core.linear`` for
the algorithm and docs/linear_cross_entropy.md for memory and time.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import Prepared, finish, known_shape, prepare, prepare_extra
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.backends.autodiff import block_scan, blocking, call_with_vjp
from polyloss.canonical.classification import (
    ALL_IGNORED,
    CLASS_NORMALIZERS,
    _check_common,
    _check_unit,
    _reduce,
)
from polyloss.core import classification as cls_core
from polyloss.core import linear as core
from polyloss.core._helpers import device_like, take_along_last
from polyloss.reduction import align_weight, check_choice

__all__ = ["linear_cross_entropy"]

NAMES = ("hidden", "weight", "target", "bias", "class_weight", "sample_weight")


def linear_cross_entropy(
    hidden: Any, weight: Any, target: Any, *, bias: Any = None, class_weight: Any = None,
    ignore_index: int | None = None, label_smoothing: float = 0.0, reduction: str = "mean",
    sample_weight: Any = None, normalizer: Any = "valid_count", if_all_ignored: str = "zero",
    row_chunk: int | None = None, class_chunk: int | None = None,
) -> Any:
    """Softmax cross-entropy of the logits ``z = hidden @ weight.T + bias``, never materialised.

    ``hidden`` is ``(..., F)``, ``weight`` ``(C, F)``, ``bias`` ``(C,)``; ``target`` holds class
    indices of shape ``hidden.shape[:-1]`` or probabilities of shape ``hidden.shape[:-1] + (C,)``.
    The result equals :func:`polyloss.cross_entropy` ``(z, target, ...)`` with the same
    ``class_weight``, ``ignore_index``, ``label_smoothing``, ``reduction``, ``sample_weight``,
    ``normalizer`` and ``if_all_ignored`` (values and gradients w.r.t. ``hidden``, ``weight``,
    ``bias`` and probability targets), per row

        (1-ε)·w_y·(lse - z_y) + (ε/C)·Σ_c w_c·(lse - z_c)     (class index y)
        Σ_c w_c·(t_c(1-ε) + ε/C)·(lse - z_c)                   (probabilities t)

    with ``lse = log Σ_c exp z_c``. The logits are visited in blocks of ``row_chunk`` whole rows
    (default: blocks of 2**24 logits, 2**25 under JAX) or, for a symbolic batch size or when
    only ``class_chunk`` is given, of ``class_chunk`` classes (default 1024) by all rows; with a
    reduction the gradients are formed in the same pass, without one they are recomputed
    block by block. Extra memory, in elements: about ``2·C·F + 2·N·F + 2.5·row_chunk·C``
    against the unfused path's ``3·N·C`` (see docs/linear_cross_entropy.md). ``class_weight``
    gets no gradient.

    Every backend's autograd differentiates it through one hand-written backward
    (``torch.autograd.Function``, ``jax.custom_vjp``, ``tf.custom_gradient``,
    ``mxnet.autograd.Function``); it runs under ``jax.jit``, ``tf.function`` and
    ``torch.compile(fullgraph=True)``. NumPy, array-api-strict and Dask compute the forward.

    Equivalents: ``torch.nn.functional.linear_cross_entropy`` (``normalizer="sum_of_weights"``,
    ``if_all_ignored="nan"``; ``polyloss.torch.linear_cross_entropy`` mirrors it exactly);
    no other framework has one (Keras, optax, Gluon: a ``Dense`` layer then the cross-entropy).
    """
    return linear_loss(
        hidden, weight, target, bias=bias, class_weight=class_weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction, sample_weight=sample_weight,
        normalizer=normalizer, if_all_ignored=if_all_ignored, row_chunk=row_chunk,
        class_chunk=class_chunk, names=NAMES)


def linear_loss(hidden: Any, weight: Any, target: Any, *, bias: Any, class_weight: Any,
                ignore_index: int | None, label_smoothing: float, reduction: str,
                sample_weight: Any, normalizer: Any, if_all_ignored: str, row_chunk: int | None,
                class_chunk: int | None, names: tuple) -> Any:
    """:func:`linear_cross_entropy` with the arguments named as ``names`` says in messages
    (``hidden, weight, target, bias, class_weight, sample_weight``), for the mirrors."""
    _check_common(reduction, normalizer, CLASS_NORMALIZERS)
    check_choice("if_all_ignored", if_all_ignored, ALL_IGNORED)
    label_smoothing = _check_unit("label_smoothing", label_smoothing)
    if ignore_index is not None and (not isinstance(ignore_index, int) or isinstance(ignore_index, bool)):
        raise TypeError(f"polyloss: ignore_index must be an int or None, got {ignore_index!r}")
    for name, size in (("row_chunk", row_chunk), ("class_chunk", class_chunk)):
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ValueError(f"polyloss: {name} must be a positive int or None, got {size!r}")
    backend = backend_of(hidden, weight, target, bias, class_weight, sample_weight, names=names)
    with backend.scope():
        p, w, b = prepare_linear(hidden, weight, target, bias, sample_weight, names)
        per_row, counted, position_weight, lead = linear_rows(
            p, w, b, class_weight=class_weight, ignore_index=ignore_index,
            label_smoothing=label_smoothing, row_chunk=row_chunk, class_chunk=class_chunk,
            names=names, reduced=reduction != "none")
        batch = lead[0] if lead else 1
        out = _reduce(p.xp, per_row, reduction, p.weight, normalizer, batch=batch, counted=counted,
                      position_weight=position_weight, if_all_ignored=if_all_ignored)
        return finish(p, out)


def prepare_linear(hidden: Any, weight: Any, target: Any, bias: Any, sample_weight: Any,
                   names: tuple) -> tuple[Prepared, Any, Any]:
    """``prepare`` for a linear layer's inputs: ``hidden``, ``weight`` and ``bias`` promoted to
    one floating compute dtype (float16/bfloat16 compute in float32), shapes checked."""
    h_name, w_name, _, b_name = names[:4]
    p = prepare(hidden, target, sample_weight, names=(h_name, names[2], names[5]),
                integer_target=True)
    xp = p.xp
    w = prepare_extra(p, weight, w_name, dtype=_own_float_dtype(p, weight, w_name))
    bvec = None if bias is None else prepare_extra(p, bias, b_name, dtype=_own_float_dtype(p, bias, b_name))
    dtype = p.pred.dtype
    for x in (w, bvec):
        if x is not None and x.dtype != dtype:
            dtype = xp.result_type(dtype, x.dtype)
    if dtype != p.pred.dtype:  # a wider weight: compute, and answer, in its dtype
        p = p._replace(pred=xp.astype(p.pred, dtype), out_dtype=xp.result_type(p.out_dtype, dtype))
        if p.weight is not None:
            p = p._replace(weight=xp.astype(p.weight, dtype))
    w = w if w.dtype == dtype else xp.astype(w, dtype)
    if bvec is not None and bvec.dtype != dtype:
        bvec = xp.astype(bvec, dtype)

    hs, ws = known_shape(p.pred), known_shape(w)
    if hs is None or len(hs) == 0:
        raise ValueError(f"polyloss: {h_name} must have a feature axis (shape (..., F)), got "
                         f"shape {tuple(p.pred.shape)}")
    if ws is None or len(ws) != 2:
        raise ValueError(f"polyloss: {w_name} must have shape (C, F) (one row per class), got "
                         f"shape {tuple(w.shape)}")
    if ws[0] is None:
        raise ValueError(f"polyloss: the number of classes ({w_name}.shape[0]) must be static")
    if hs[-1] is not None and ws[1] is not None and hs[-1] != ws[1]:
        raise ValueError(f"polyloss: {h_name} has {hs[-1]} features (last axis of shape {hs}) but "
                         f"{w_name} has {ws[1]} (shape {ws}); they must be equal")
    if bvec is not None and tuple(bvec.shape) != (ws[0],):
        raise ValueError(f"polyloss: {b_name} must have shape ({ws[0]},) (one value per class), "
                         f"got shape {tuple(bvec.shape)}")
    return p, w, bvec


def _own_float_dtype(p: Prepared, x: Any, name: str) -> Any:
    """``x``'s dtype if it is floating (float16/bfloat16: float32), else ``TypeError``."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        raise TypeError(f"polyloss: {name} must be an array, got {type(x).__name__}")
    if not p.backend.is_floating(dtype):
        raise TypeError(f"polyloss: {name} must be a floating-point array, got dtype {dtype}")
    xp = p.xp
    low = [getattr(xp, n) for n in ("float16", "bfloat16") if hasattr(xp, n)]
    return xp.float32 if any(dtype == d for d in low) else dtype


def linear_rows(p: Prepared, weight: Any, bias: Any, *, class_weight: Any, ignore_index: int | None,
                label_smoothing: float, row_chunk: int | None, class_chunk: int | None,
                names: tuple, reduced: bool) -> tuple[Any, Any, Any, tuple]:
    """The per-position losses (shape ``hidden.shape[:-1]``), the mask of positions that count
    (``None``: all), each position's class weight (``None``: 1) and the leading shape.

    ``reduced``: the losses go to a reduction with ``p.weight`` as sample weights (so their
    cotangent is proportional to those weights: see ``core.linear``)."""
    xp = p.xp
    hidden, target = p.pred, p.target
    h_name, w_name, t_name = names[:3]
    lead = tuple(hidden.shape[:-1])
    lead_known = known_shape(hidden)[:-1]
    num_classes, features = int(weight.shape[0]), weight.shape[1]
    rows = math.prod(lead_known) if None not in lead_known else None
    flat = xp.reshape(hidden, (-1 if rows is None else rows, features))
    cw = _class_weight(p, class_weight, num_classes, names[4])
    eps = label_smoothing
    tshape = known_shape(target)
    index_target = len(tshape) == len(lead_known)
    if index_target:
        if not _dims_match(tshape, lead_known):
            raise ValueError(f"polyloss: {t_name} holds class indices, so its shape must be "
                             f"{h_name}'s without the feature axis: expected {lead}, got "
                             f"{tuple(target.shape)}")
        check_class_labels(p.backend, target, num_classes, ignore_index, t_name)
        labels = xp.reshape(as_index(p.backend, target), (-1,))
        safe, valid, in_range = cls_core.safe_labels(labels, num_classes, ignore_index, xp)
        w_y = None if cw is None else _take_rows(cw, safe, xp)
        onehot = (1.0 - eps) if w_y is None else (1.0 - eps) * w_y
        zero = xp.zeros_like(flat[:, 0])
        onehot_coef = xp.where(valid, onehot + zero, zero)
        smooth_coef = xp.where(valid, eps / num_classes + zero, zero) if eps else None
        rule_target, counted, position_weight = safe, valid, w_y
    else:
        if ignore_index is not None:
            raise ValueError("polyloss: ignore_index applies to class-index targets, not to "
                             "probability targets")
        expected = lead + (num_classes,)
        if not _dims_match(tshape, known_shape(hidden)[:-1] + (num_classes,)):
            raise ValueError(f"polyloss: {t_name} must hold class indices of shape {lead} or "
                             f"probabilities of shape {expected}, got {tuple(target.shape)}")
        probs = target if target.dtype == flat.dtype else xp.astype(target, flat.dtype)
        rule_target = xp.reshape(probs, (-1, num_classes))
        onehot_coef = smooth_coef = counted = None
        # a position weighs Σ_c w_c t_c (unsmoothed), as cross_entropy's
        position_weight = (None if cw is None
                           else xp.matmul(rule_target, xp.reshape(cw, (num_classes, 1)))[:, 0])
    framework = p.backend.framework
    block_elements, piece = blocking(framework)
    rows_per, classes_per = core.chunk_sizes(rows, num_classes, row_chunk, class_chunk,
                                             block_elements)
    row_weight = None
    if reduced and p.weight is not None:
        row_weight = _row_weight(xp, p.weight, lead, rows)
        reduced = row_weight is not None
    rule = core.LinearCrossEntropy(xp, rows, num_classes, rows_per, classes_per, eps, index_target,
                                   reduced, block_scan(framework, xp), piece)
    loss = call_with_vjp(p.backend.framework, rule, flat, weight, bias, rule_target, onehot_coef,
                         smooth_coef, cw, row_weight)
    if index_target:
        loss = xp.where(in_range, loss, math.nan)  # unreadable out-of-range labels (under jit)
    shape = lead if rows is not None else tuple(-1 if d is None else d for d in lead_known)
    if len(shape) != 1:
        loss = xp.reshape(loss, shape)
        counted = None if counted is None else xp.reshape(counted, shape)
        position_weight = None if position_weight is None else xp.reshape(position_weight, shape)
    return loss, counted, position_weight, lead


def _row_weight(xp: Any, sample_weight: Any, lead: tuple, rows: int | None) -> Any:
    """The sample weight of each flattened row as the reduction will apply it (``align_weight``'s
    rules), or ``None`` where its shape is not known statically (the row-block pass is then not
    used)."""
    if rows is None:
        return None
    aligned = align_weight(xp, sample_weight, lead)
    full = aligned * xp.ones(lead, dtype=aligned.dtype, device=device_like(aligned))
    return xp.reshape(full, (rows,))


def _class_weight(p: Prepared, class_weight: Any, num_classes: int, name: str) -> Any:
    """A (C,) class-weight vector in the compute dtype (a scalar is broadcast), or ``None``."""
    if class_weight is None:
        return None
    cw = prepare_extra(p, class_weight, name)
    if len(cw.shape) == 0:
        return cw * p.xp.ones((num_classes,), dtype=cw.dtype, device=p.backend.device(p.pred))
    if tuple(cw.shape) != (num_classes,):
        raise ValueError(f"polyloss: {name} must have shape ({num_classes},) (one value per class), "
                         f"got shape {tuple(cw.shape)}")
    return cw


def _take_rows(v: Any, index: Any, xp: Any) -> Any:
    """``v[index]`` for a per-class vector ``v`` and per-row class ids: the standard's ``take``
    where the namespace has it, else one gather per block of classes (no rows x classes array)."""
    if hasattr(xp, "take"):
        return xp.take(v, index, axis=0)
    num_classes = v.shape[0]
    step = 4096  # classes per gather
    zeros = xp.zeros_like(xp.astype(index, v.dtype))[:, None]  # (N, 1), N may be symbolic
    out = None
    for k0 in range(0, num_classes, step):
        k1 = min(k0 + step, num_classes)
        local = index - k0
        inside = xp.logical_and(local >= 0, local < k1 - k0)
        rows = zeros + xp.reshape(v[k0:k1], (1, k1 - k0))
        part = xp.where(inside, take_along_last(rows, xp.where(inside, local, 0)[:, None], xp)[:, 0], 0.0)
        out = part if out is None else out + part
    return out


def _dims_match(a: tuple | None, b: tuple) -> bool:
    if a is None:
        return True
    return len(a) == len(b) and all(x == y or x is None or y is None for x, y in zip(a, b, strict=True))

