"""Dask: the canonical API on chunked arrays is lazy, matches NumPy, and runs in bounded memory.

- Calling a loss on Dask arrays builds a graph and computes nothing (a chunk function that
  counts its calls is not called until ``compute``).
- The computed values, and the ``reduction="parts"`` of each chunk-aligned shard, equal the
  NumPy results (float64, 1e-12 relative: only the summation order differs).
- A loss over a lazy array of ~100 MB (``examples/distributed_dask.py``'s data at a small size)
  allocates a small fraction of it at its peak (``tracemalloc``, which sees NumPy's buffers):
  the chunks stream through the loss and a tree of partial sums, never the whole array. The
  example itself runs over 10 GB the same way.
"""

from __future__ import annotations

import os
import sys
import tracemalloc

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is installed in the modern environment")
import dask  # noqa: E402

import polyloss  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import distributed_dask as example  # noqa: E402

IGNORE = -1


def _numpy_data():
    rng = np.random.default_rng(9)
    labels = rng.integers(IGNORE, 5, size=(600,))
    return {"logits": rng.normal(size=(600, 5)), "labels": labels, "cw": rng.uniform(0.5, 2, 5),
            "p": rng.normal(size=(600, 4)), "t": rng.normal(size=(600, 4)),
            "sw": rng.uniform(0.5, 2, 600)}


def _losses(x, **kw):
    return {
        "cross_entropy": polyloss.cross_entropy(x["logits"], x["labels"], ignore_index=IGNORE,
                                                class_weight=x["cw"], normalizer="sum_of_weights", **kw),
        "mse": polyloss.mse(x["p"], x["t"], sample_weight=x["sw"], normalizer="sum_of_weights", **kw),
        "huber": polyloss.huber(x["p"], x["t"], delta=0.5, **kw),
    }


def _lazy(data, rows=100):
    return {k: da.from_array(v, chunks=v.shape if k == "cw" else (rows,) + v.shape[1:])
            for k, v in data.items()}


def test_loss_is_lazy_until_computed():
    data = _numpy_data()
    calls = []

    def counted(block):
        if block.size:  # dask may call it on an empty "meta" array to learn the output type
            calls.append(block.shape)
        return block

    x = _lazy(data)
    x["logits"] = x["logits"].map_blocks(counted, dtype=np.float64)
    losses = _losses(x)
    assert all(isinstance(v, da.Array) for v in losses.values())
    assert calls == []  # building the losses computed nothing
    dask.compute(*losses.values(), scheduler="synchronous")
    assert len(calls) == 6  # one call per chunk of logits, on compute


def test_values_and_parts_match_numpy():
    data = _numpy_data()
    expected = {k: float(v) for k, v in _losses(data).items()}
    computed = dask.compute(_losses(_lazy(data)), scheduler="synchronous")[0]
    for name, value in computed.items():
        assert np.isclose(float(value), expected[name], rtol=1e-12, atol=0), name

    # parts of chunk-aligned shards add up to the NumPy mean of the whole
    shards = [slice(0, 200), slice(200, 600)]
    parts = [_losses(_lazy({k: v if k == "cw" else v[s] for k, v in data.items()}),
                     reduction="parts") for s in shards]
    parts = dask.compute(parts, scheduler="synchronous")[0]
    for name, value in expected.items():
        total = sum(float(p[name].total) for p in parts)
        normalizer = sum(float(p[name].normalizer) for p in parts)
        assert np.isclose(total / normalizer, value, rtol=1e-12, atol=0), name


def test_memory_stays_bounded_by_the_chunks():
    logits, labels = example.lazy_data(gigabytes=0.1, chunk_mb=2.0)
    nbytes = logits.nbytes + labels.nbytes
    chunk = logits.blocks[0].nbytes + labels.blocks[0].nbytes
    assert logits.numblocks[0] == 50
    lazy = example.lazy_losses(logits, labels)
    tracemalloc.start()
    try:
        values = dask.compute(*lazy.values(), scheduler="synchronous")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a few chunks and their temporaries (softmax, one-hot comparison), not the array
    assert peak < 16 * chunk < nbytes / 3, (peak, chunk, nbytes)
    assert 0 < float(values[1]) < logits.shape[0]  # the valid count: some labels are ignored
