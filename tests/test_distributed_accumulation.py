"""Gradient accumulation: micro-batches with the global normaliser give the full batch's gradient.

On every autograd backend (torch, JAX, TensorFlow, MXNet; float64), a batch split into uneven
micro-batches (one with every label ignored) is differentiated two ways, each compared with
the gradient of one call on the whole batch:

1. the normaliser known up front: each micro-batch's loss is ``loss(..., normalizer=N)``
   (``N`` as a number and as a 0-d array of the backend); the gradients, stacked, are the
   full batch's, and the values add up to its mean;
2. the normaliser found on the way: each micro-batch's ``reduction="parts"`` total is
   differentiated, and the accumulated gradient is divided by the summed normalisers at the end.

A torch training loop that accumulates ``.grad`` over micro-batches ends with the parameters of
the full-batch loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import AUTOGRAD, backend_params

import polyloss

N = 9
MICRO = (slice(0, 2), slice(2, 6), slice(6, 9))
IGNORE = -1


def _data():
    rng = np.random.default_rng(42)
    labels = rng.integers(0, 4, size=(N, 3))
    labels[0:2] = IGNORE
    labels[5, 1] = IGNORE
    return {"logits": rng.normal(size=(N, 4, 3)), "labels": labels,
            "cw": rng.uniform(0.5, 2.0, size=4), "sw": rng.uniform(0.5, 2.0, size=N),
            "p": rng.normal(size=(N, 5)), "t": rng.normal(size=(N, 5))}


def _cross_entropy(logits, labels, cw, sw, normalizer="sum_of_weights", **kw):
    return polyloss.cross_entropy(logits, labels, axis=1, ignore_index=IGNORE, class_weight=cw,
                                  sample_weight=sw, normalizer=normalizer, **kw)


def _mse(p, t, sw, normalizer="sum_of_weights", **kw):
    return polyloss.mse(p, t, sample_weight=sw, normalizer=normalizer, **kw)


# (id, loss, argument names, names split along the batch)
LOSSES = [("cross_entropy", _cross_entropy, ("logits", "labels", "cw", "sw"), {"logits", "labels", "sw"}),
          ("mse", _mse, ("p", "t", "sw"), {"p", "t", "sw"})]


def _args(data, names, batch_names, rows=slice(None)):
    return [data[k][rows] if k in batch_names else data[k] for k in names]


def _assert_close(actual, expected):
    scale = np.max(np.abs(expected))
    assert np.max(np.abs(actual - expected)) <= 1e-12 * scale, np.max(np.abs(actual - expected)) / scale


@pytest.mark.parametrize("loss", [pytest.param(x, id=x[0]) for x in LOSSES])
@pytest.mark.parametrize("backend", backend_params(AUTOGRAD))
def test_micro_batches_give_the_full_gradient(backend, loss):
    _, fn, names, batch_names = loss
    data = _data()
    value, grad = backend.value_and_grad(fn, _args(data, names, batch_names), argnum=0)
    micro = [_args(data, names, batch_names, rows) for rows in MICRO]
    parts = [fn(*args, reduction="parts") for args in micro]  # NumPy: the normaliser up front
    n = float(sum(float(p.normalizer) for p in parts))

    # 1. normalizer=N, as a number and as a 0-d array of the backend
    for as_array in (False, True):
        values, grads = [], []
        for args in micro:
            if as_array:
                v, g = backend.value_and_grad(lambda *a: fn(*a[:-1], normalizer=a[-1]),
                                              [*args, np.asarray(n)], argnum=0)
            else:
                v, g = backend.value_and_grad(lambda *a: fn(*a, normalizer=n), args, argnum=0)
            values.append(float(v))
            grads.append(g)
        _assert_close(np.concatenate(grads), grad)
        assert np.isclose(sum(values), float(value), rtol=1e-12, atol=0)

    # 2. accumulate the totals' gradients, divide by the summed normalisers at the end
    grads = [backend.value_and_grad(lambda *a: fn(*a, reduction="parts").total, args, argnum=0)[1]
             for args in micro]
    _assert_close(np.concatenate(grads) / n, grad)


def test_torch_training_loop_accumulates_to_the_full_batch():
    torch = pytest.importorskip("torch")
    if "torch" not in [b.name for b in AUTOGRAD]:
        pytest.skip("torch is not selected")
    data = _data()
    x = torch.from_numpy(data["logits"].reshape(N, -1))
    labels, cw = torch.from_numpy(data["labels"][:, 0]), torch.from_numpy(data["cw"])

    def model_and_optimizer():
        torch.manual_seed(0)
        model = torch.nn.Linear(12, 4).double()
        return model, torch.optim.SGD(model.parameters(), lr=0.5)

    def loss(model, rows, normalizer="sum_of_weights", **kw):
        return polyloss.cross_entropy(model(x[rows]), labels[rows], ignore_index=IGNORE,
                                      class_weight=cw, normalizer=normalizer, **kw)

    full, opt = model_and_optimizer()
    for _ in range(3):
        opt.zero_grad()
        loss(full, slice(None)).backward()
        opt.step()

    accumulated, opt = model_and_optimizer()
    for _ in range(3):
        opt.zero_grad()
        with torch.no_grad():  # the normaliser from the labels alone, before the micro-batches
            n = sum(loss(accumulated, rows, reduction="parts").normalizer for rows in MICRO)
        for rows in MICRO:
            loss(accumulated, rows, normalizer=n).backward()  # .grad accumulates
        opt.step()

    for a, b in zip(accumulated.parameters(), full.parameters(), strict=True):
        _assert_close(a.detach().numpy(), b.detach().numpy())
