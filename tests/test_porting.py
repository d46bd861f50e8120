"""Cross-framework porting (``examples/porting.py``): one framework's loss semantics trained in
another framework's real loop, against the source framework's native run.

(a) ``polyloss.gluon.SoftmaxCrossEntropyLoss`` on torch tensors, ``nn.Linear`` + ``torch.optim.SGD``
    on ``loss.sum() / batch_size``, vs MXNet Gluon's native loss + ``Trainer('sgd').step(batch_size)``;
(b) ``polyloss.torch.CrossEntropyLoss(ignore_index=, label_smoothing=)`` in a Keras model's
    ``compile(loss=...)``, vs ``torch.nn.CrossEntropyLoss`` in torch;
(c) ``polyloss.torch.CrossEntropyLoss(label_smoothing=)`` under ``jax.jit(jax.grad)`` + ``optax.sgd``,
    vs torch.

Same data and initial weights, ``porting.STEPS`` SGD steps; the final parameters must agree.
float64: 1e-12 relative, elementwise. float32 (MXNet, in addition to its float64 run): the
repository's float32 policy ``rtol_for('float32', N·D)`` (8 ulps × log2 of the reduction length,
~43 ulps) both relative and as a fraction of the largest parameter: an SGD update that cancels a
weight to near zero leaves it with an absolute error of a few ulps of the terms that cancelled,
which is a large *relative* error. The float32 gap is torch's versus MXNet's float32 arithmetic
(matmul order, exp/log kernels): torch's own ``nn.CrossEntropyLoss`` in the same torch loop is as
far from the MXNet run (measured over 30 seeds: at most 9 ulps of the largest parameter).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from _native import natives, needs, rtol_for

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import porting  # noqa: E402

# imported here in a safe order (torch before TensorFlow, JAX with 64-bit enabled); None if missing
natives("torch", "tensorflow", "keras", "jax", "optax", "mxnet")


def _check(ported: list[np.ndarray], native: list[np.ndarray], dtype: str) -> None:
    _, _, w0 = porting.data(dtype)
    assert porting.max_rel_diff(native, w0) > 0.1, "the native run did not train"
    if dtype == "float64":
        rtol, atol = 1e-12, 0.0
    else:
        rtol = rtol_for(dtype, porting.N * porting.D)
        atol = rtol * max(float(np.max(np.abs(p))) for p in native)
    for name, p, n in zip(("weight", "bias"), ported, native, strict=True):
        assert p.dtype == n.dtype == np.dtype(dtype), (name, p.dtype, n.dtype)
        np.testing.assert_allclose(p, n, rtol=rtol, atol=atol, err_msg=name)


@needs("torch")
@needs("mxnet")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gluon_semantics_in_torch_loop(dtype: str) -> None:
    _check(*porting.gluon_in_torch(dtype), dtype)


@needs("torch")
@needs("keras")
def test_torch_semantics_in_keras_model() -> None:
    _check(*porting.torch_in_keras("float64"), "float64")


@needs("torch")
@needs("optax")
def test_torch_semantics_under_jax_grad() -> None:
    _check(*porting.torch_in_jax("float64"), "float64")
