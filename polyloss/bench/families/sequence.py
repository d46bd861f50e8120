"""CTC: N sequences x T frames x C classes of float32 logits, every sequence using all T frames,
labels of length between S/2 and S (S = 10 at T = 50, 40 at T = 200), drawn from classes
``1..C-2`` so that both blank conventions (0: torch, Keras, optax; C - 1: Gluon) leave them
alone. The log-softmax is part of every side (torch's and Gluon's natives take
log-probabilities or apply it themselves).

Sizes: 8 x 50 x 20 (batch 8), 4096 x 50 x 20 (batch 4096) and 64 x 200 x 30 (the shape of the
earlier CTC target, "within 3x of torch's native"; no target of this issue applies to it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import polyloss
from polyloss.bench.families._common import sides
from polyloss.bench.registry import Impl, Size, family

SIZES = (
    Size("8x50x20", 8, (8, 50, 20), "small"),
    Size("4096x50x20", 4096, (4096, 50, 20), "large"),
    Size("64x200x30", 64, (64, 200, 30), None),
)
COMPILED_NOTE = (
    "polyloss's CTC is a Python loop over frames, which a compiler unrolls (T copies of the "
    "recursion): jax.jit of its fwd+bwd at 8x50x20 had not finished compiling after 3 CPU-minutes "
    "here; timed eager only"
)


def _inputs(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, t, c = size.dims
    longest = 10 if t <= 50 else 40
    lengths = rng.integers(longest // 2, longest + 1, n)
    labels = rng.integers(1, c - 1, (n, longest))
    pad = np.arange(longest)[None, :] >= lengths[:, None]
    return {
        "logits": rng.standard_normal((n, t, c), dtype=np.float32),
        "labels": labels.astype(np.int64),
        "lengths": lengths.astype(np.int64),
        "pad": pad,
    }


CTC = family(
    "ctc", "CTC on logits (log-softmax included), all frames used", SIZES, _inputs, group="sequence", order=60
)
CTC.without("numpy", "NumPy has no CTC and the bench has no hand-written one")


@CTC.on(
    "torch",
    native="F.ctc_loss(z.log_softmax(2), ...) (TNC)",
    polyloss="polyloss.ctc(z, ..., layout='TNC', normalize_by_length=True)",
    mirror="polyloss.torch.ctc_loss(z.log_softmax(2), ...)",
    same_value=("polyloss", "mirror"),
    compiled=False,
    compiled_note=COMPILED_NOTE,
)
def _ctc_torch(d, x):
    import torch
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    n, t, _ = x["logits"].shape
    z = d.array(np.ascontiguousarray(x["logits"].transpose(1, 0, 2)))
    y, ly = d.array(x["labels"]), d.array(x["lengths"])
    lx = torch.full((n,), t, dtype=torch.int64)
    return sides(
        (z, y, lx, ly),
        lambda z, y, lx, ly: F.ctc_loss(z.log_softmax(2), y, lx, ly),
        lambda z, y, lx, ly: polyloss.ctc(z, y, lx, ly, layout="TNC", normalize_by_length=True),
        lambda z, y, lx, ly: pt.ctc_loss(z.log_softmax(2), y, lx, ly),
    )


@CTC.on(
    "tensorflow",
    native="keras.losses.CTC() (blank and padding 0)",
    polyloss="polyloss.ctc(z, y, label_lengths=...)",
    mirror="polyloss.keras.CTC()",
    same_value=("polyloss", "mirror"),
    compiled_note=COMPILED_NOTE,
    compiled=False,
)
def _ctc_tensorflow(d, x):
    import keras

    import polyloss.keras as pk

    z = d.array(x["logits"])
    y = d.array(np.where(x["pad"], 0, x["labels"]).astype(np.int32))
    ly = d.array(x["lengths"].astype(np.int32))
    native, mirror = keras.losses.CTC(), pk.CTC()
    return {
        "native": Impl(lambda z, y: native(y, z), (z, y)),
        "polyloss": Impl(lambda z, y, ly: polyloss.ctc(z, y, label_lengths=ly), (z, y, ly)),
        "mirror": Impl(lambda z, y: mirror(y, z), (z, y)),
    }


@CTC.on(
    "mxnet",
    native="gluon.loss.CTCLoss() (blank C-1, -1 padding, per sequence)",
    polyloss="polyloss.ctc(z, y, blank=C-1)",
    mirror="polyloss.gluon.CTCLoss()",
    same_value=("polyloss", "mirror"),
    compiled=False,
    compiled_note=COMPILED_NOTE,
)
def _ctc_mxnet(d, x):
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

    z = d.array(x["logits"])
    padded = np.where(x["pad"], -1, x["labels"])
    yf, yi = d.array(padded.astype(np.float32)), d.array(padded.astype(np.int32))
    blank = x["logits"].shape[2] - 1
    native, mirror = gloss.CTCLoss(), pg.CTCLoss()
    return {
        "native": Impl(native, (z, yf), block=native),
        "polyloss": Impl(lambda z, y: polyloss.ctc(z, y, blank=blank), (z, yi)),
        "mirror": Impl(mirror, (z, yf), block=mirror),
    }


@CTC.on(
    "jax",
    native="optax.losses.ctc_loss(z, 0, y, label_paddings).mean()",
    polyloss="polyloss.ctc(z, y, label_lengths=...)",
    mirror="polyloss.optax.ctc_loss(z, 0, y, label_paddings).mean()",
    same_value=("polyloss", "mirror"),
    compiled=False,
    compiled_note=COMPILED_NOTE,
)
def _ctc_jax(d, x):
    import optax

    import polyloss.optax as po

    n, t, _ = x["logits"].shape
    z = d.array(x["logits"])
    y = d.array(x["labels"].astype(np.int32))
    ly = d.array(x["lengths"].astype(np.int32))
    pz = d.array(np.zeros((n, t), np.float32))
    py = d.array(x["pad"].astype(np.float32))

    def unreduced(ctc: Any) -> Any:
        return lambda z, y, pz, py: ctc(z, pz, y, py).mean()

    return {
        "native": Impl(unreduced(optax.losses.ctc_loss), (z, y, pz, py)),
        "polyloss": Impl(lambda z, y, ly: polyloss.ctc(z, y, label_lengths=ly), (z, y, ly)),
        "mirror": Impl(unreduced(po.ctc_loss), (z, y, pz, py)),
    }
