"""Global normalisation: a mean over a batch split into shards equals the one-call mean.

Every canonical loss that is a mean over samples returns its two parts with
``reduction="parts"`` and takes a given normaliser as ``normalizer=<number or 0-d array>``. On
every installed backend, for a batch split into three uneven shards (one of them with every
label ignored where the loss has ``ignore_index``), ``Σ totals / Σ normalizers`` and the sum of
the shards' ``normalizer=Σ normalizers`` means equal the mean of one call on the whole batch
(the reference: that call on the same backend, and the NumPy float64 call). With values whose
sums are exact (integers, dyadic weights) the two are equal bit for bit.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import INSTALLED, backend_params

import polyloss
from polyloss.reduction import LossParts

N = 10
SHARDS = (slice(0, 2), slice(2, 7), slice(7, 10))
IGNORE = -1


def _labels(rng, shape, classes):
    y = rng.integers(0, classes, size=shape)
    y[0:2] = IGNORE  # the first shard has nothing to count
    y[(slice(4, 6),) + (0,) * (len(shape) - 1)] = IGNORE
    return y


def _inputs(rng) -> dict:
    """NumPy inputs, batch first; ``cw``/``alpha`` are shared by every shard."""
    logits = rng.normal(size=(N, 4, 3))
    probs = rng.uniform(0.05, 0.95, size=(N, 3))
    counts = rng.poisson(2.0, size=(N, 3)).astype(np.float64)
    dist = rng.dirichlet(np.ones(4), size=N)
    seq_labels = rng.integers(1, 4, size=(N, 3))
    seq_labels[1::3, 2] = -1
    return {
        "p": rng.normal(size=(N, 3)), "t": rng.normal(size=(N, 3)), "sw": rng.uniform(0.5, 2.0, size=N),
        "logits": logits, "labels": _labels(rng, (N, 3), 4), "cw": rng.uniform(0.5, 2.0, size=4),
        "flat_logits": logits[:, :, 0], "flat_labels": _labels(rng, (N,), 4),
        "classes": rng.integers(0, 4, size=N),
        "soft": dist, "probs": probs, "bits": (rng.uniform(size=(N, 3)) > 0.5).astype(np.float64),
        "signs": np.where(rng.uniform(size=(N, 3)) > 0.5, 1.0, -1.0), "counts": counts,
        "var": rng.uniform(0.5, 2.0, size=(N, 3)), "log_q": np.log(rng.dirichlet(np.ones(4), size=N)),
        "x1": rng.normal(size=(N, 5)), "x2": rng.normal(size=(N, 5)), "x3": rng.normal(size=(N, 5)),
        "pm": np.where(rng.uniform(size=N) > 0.5, 1.0, -1.0), "pair": (rng.uniform(size=N) > 0.5) * 1.0,
        "masks": (rng.uniform(size=(N, 4, 3)) > 0.5).astype(np.float64),
        "seg_labels": _labels(rng, (N, 3), 4),
        "seq": rng.normal(size=(N, 6, 4)), "seq_labels": seq_labels,
    }


SHARED = {"cw"}

# (id, call(x, **reduction_kwargs), rules): x maps names to backend arrays
CASES = [
    ("mse", lambda x, **k: polyloss.mse(x["p"], x["t"], **k), ("count",)),
    ("mse_weighted", lambda x, **k: polyloss.mse(x["p"], x["t"], sample_weight=x["sw"], **k),
     ("count", "sum_of_weights")),
    ("huber", lambda x, **k: polyloss.huber(x["p"], x["t"], delta=0.5, **k), ("count",)),
    ("mape", lambda x, **k: polyloss.mape(x["p"], x["t"], **k), ("count",)),
    ("bce_logits", lambda x, **k: polyloss.binary_cross_entropy(
        x["p"], x["bits"], from_logits=True, sample_weight=x["sw"], **k), ("count", "sum_of_weights")),
    ("cross_entropy_spatial", lambda x, **k: polyloss.cross_entropy(
        x["logits"], x["labels"], axis=1, ignore_index=IGNORE, class_weight=x["cw"],
        sample_weight=x["sw"], **k), ("valid_count", "sum_of_weights", "count")),
    ("cross_entropy_soft", lambda x, **k: polyloss.cross_entropy(
        x["flat_logits"], x["soft"], class_weight=x["cw"], label_smoothing=0.1, **k),
     ("valid_count", "sum_of_weights")),
    ("nll", lambda x, **k: polyloss.nll(x["log_q"], x["flat_labels"], ignore_index=IGNORE, **k),
     ("valid_count",)),
    ("poly1", lambda x, **k: polyloss.poly1_cross_entropy(
        x["flat_logits"], x["flat_labels"], ignore_index=IGNORE, **k), ("valid_count",)),
    ("focal_categorical", lambda x, **k: polyloss.focal(
        x["flat_logits"], x["soft"], kind="categorical", **k), ("valid_count",)),
    ("focal_binary", lambda x, **k: polyloss.focal(x["p"], x["bits"], **k), ("count",)),
    ("kl_div", lambda x, **k: polyloss.kl_div(x["log_q"], x["soft"], **k), ("count",)),
    ("poisson_nll", lambda x, **k: polyloss.poisson_nll(x["p"], x["counts"], full=True, **k), ("count",)),
    ("gaussian_nll", lambda x, **k: polyloss.gaussian_nll(x["p"], x["t"], x["var"], **k), ("count",)),
    ("hinge", lambda x, **k: polyloss.hinge(x["p"], x["signs"], **k), ("count",)),
    ("multi_margin", lambda x, **k: polyloss.multi_margin(
        x["flat_logits"], x["classes"], class_weight=x["cw"], **k), ("count",)),
    ("dice_sample", lambda x, **k: polyloss.dice(
        x["logits"], x["masks"], activation="softmax", class_axis=1, **k), ("count",)),
    ("lovasz_softmax_sample", lambda x, **k: polyloss.lovasz_softmax(
        x["logits"], x["seg_labels"], activation="softmax", ignore_index=IGNORE, **k), ("count",)),
    ("cosine_embedding", lambda x, **k: polyloss.cosine_embedding(
        x["x1"], x["x2"], x["pm"], margin=0.1, **k), ("count",)),
    ("triplet_margin", lambda x, **k: polyloss.triplet_margin(x["x1"], x["x2"], x["x3"], **k), ("count",)),
    ("contrastive", lambda x, **k: polyloss.contrastive(x["x1"], x["x2"], x["pair"], **k), ("count",)),
    ("ctc", lambda x, **k: polyloss.ctc(x["seq"], x["seq_labels"], **k), ("count",)),
]


def _shard(data: dict, rows: slice) -> dict:
    return {k: v if k in SHARED else v[rows] for k, v in data.items()}


def _on(backend, data: dict) -> dict:
    return {k: backend.asarray(v) for k, v in data.items()}


def _np(backend, x) -> float:
    return float(np.asarray(backend.to_numpy(x), dtype=np.float64).reshape(()))


# Every case runs on the backends whose eager calls are cheap; the others (JAX compiles each op
# for each new shape, TensorFlow and MXNet pay a dispatch cost per op) run the cases that
# exercise each reducer (the shared one, the per-position one with ignore_index and class
# weights, and a per-sample one): the reduction layer is the same code on every backend.
EVERY_CASE = ("numpy", "torch", "array_api_strict")
SOME_CASES = ("mse_weighted", "cross_entropy_spatial", "dice_sample")


def _case_params():
    return [pytest.param(b, case, rule, id=f"{b.name}-{case[0]}-{rule}")
            for b in INSTALLED for case in CASES for rule in case[2]
            if b.name in EVERY_CASE or case[0] in SOME_CASES]


@pytest.fixture(scope="module")
def data():
    return _inputs(np.random.default_rng(20261122))


@pytest.mark.parametrize(("backend", "case", "rule"), _case_params())
def test_shards_add_up_to_the_batch_mean(backend, case, rule, data):
    _, call, _ = case
    backend.setup()
    whole = call(_on(backend, data), normalizer=rule)
    oracle = float(call(data, normalizer=rule))  # NumPy float64

    parts = [call(_on(backend, _shard(data, rows)), normalizer=rule, reduction="parts")
             for rows in SHARDS]
    assert all(isinstance(p, LossParts) for p in parts)
    totals = [_np(backend, p.total) for p in parts]
    normalizers = [_np(backend, p.normalizer) for p in parts]
    n = math.fsum(normalizers)
    from_parts = math.fsum(totals) / n

    # each shard's share with the global normaliser, given as a number and as a 0-d array
    n_array = backend.asarray(np.asarray(n))
    shares = [call(_on(backend, _shard(data, rows)), normalizer=given)
              for rows in SHARDS for given in (n, n_array)]
    share_sum = math.fsum(_np(backend, s) for s in shares) / 2

    rtol = 1e-12
    assert np.isclose(from_parts, _np(backend, whole), rtol=rtol, atol=0), (from_parts, whole)
    assert np.isclose(from_parts, oracle, rtol=rtol, atol=0)
    assert np.isclose(share_sum, oracle, rtol=rtol, atol=0)


@pytest.mark.parametrize("backend", backend_params(INSTALLED))
def test_exact_sums_are_bit_for_bit(backend):
    """Integer losses and dyadic weights: every sum is exact, so the shards' mean is the batch's
    mean to the last bit (the only rounding is the one division, the same in both)."""
    rng = np.random.default_rng(5)
    p = rng.integers(-8, 9, size=(N, 3)).astype(np.float64)
    t = rng.integers(-8, 9, size=(N, 3)).astype(np.float64)
    sw = rng.integers(1, 5, size=N) / 4.0
    signs = np.where(rng.uniform(size=(N, 3)) > 0.5, 1.0, -1.0)
    calls = [
        (lambda a, b, w, **k: polyloss.mse(a, b, **k), "count"),
        (lambda a, b, w, **k: polyloss.mae(a, b, sample_weight=w, **k), "sum_of_weights"),
        (lambda a, b, w, **k: polyloss.hinge(a, signs_b, sample_weight=w, **k), "count"),
    ]
    for call, rule in calls:
        signs_b = backend.asarray(signs)
        whole = _np(backend, call(backend.asarray(p), backend.asarray(t), backend.asarray(sw),
                                  normalizer=rule))
        totals, norms = [], []
        for rows in SHARDS:
            signs_b = backend.asarray(signs[rows])
            part = call(backend.asarray(p[rows]), backend.asarray(t[rows]),
                        backend.asarray(sw[rows]), normalizer=rule, reduction="parts")
            totals.append(_np(backend, part.total))
            norms.append(_np(backend, part.normalizer))
        assert sum(totals) / sum(norms) == whole


def test_all_ignored_shard_has_zero_parts(data):
    x = _shard(data, SHARDS[0])
    parts = polyloss.cross_entropy(x["flat_logits"], x["flat_labels"], ignore_index=IGNORE,
                                   reduction="parts")
    assert float(parts.total) == 0.0 and float(parts.normalizer) == 0.0
    # a zero global normaliser gives if_all_ignored's value, as the local one does
    assert float(polyloss.cross_entropy(x["flat_logits"], x["flat_labels"], ignore_index=IGNORE,
                                        normalizer=0)) == 0.0
    assert math.isnan(float(polyloss.cross_entropy(x["flat_logits"], x["flat_labels"],
                                                   ignore_index=IGNORE, normalizer=0.0,
                                                   if_all_ignored="nan")))


def test_normaliser_keeps_the_compute_dtype():
    # a count in float16 would round above 2048; the normaliser stays float32
    p = np.zeros((3000,), np.float16)
    parts = polyloss.mse(p, p, reduction="parts")
    assert parts.total.dtype == np.float16
    assert parts.normalizer.dtype == np.float32 and float(parts.normalizer) == 3000


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"normalizer": -1.0}, ValueError, "normalizer must be"),
    ({"normalizer": math.inf}, ValueError, "normalizer must be"),
    ({"normalizer": True}, TypeError, "normalizer must be"),
    ({"normalizer": "batch"}, ValueError, "invalid normalizer='batch'"),
    ({"normalizer": np.ones(2)}, ValueError, "must be 0-d, got shape"),
    ({"normalizer": 4.0, "reduction": "sum"}, ValueError, "divides reduction='mean' only"),
    ({"normalizer": 4.0, "reduction": "parts"}, ValueError, "divides reduction='mean' only"),
    ({"reduction": "total"}, ValueError, "invalid reduction='total'"),
])
def test_bad_normaliser_arguments(kwargs, error, match):
    p = np.ones((2, 2))
    with pytest.raises(error, match=match):
        polyloss.mse(p, p, **kwargs)
    with pytest.raises(error, match=match):
        polyloss.cross_entropy(p, np.zeros(2, dtype=np.int64), **kwargs)


def test_losses_that_do_not_split_refuse_parts():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(4, 3, 5))
    t = (rng.uniform(size=(4, 3, 5)) > 0.5) * 1.0
    for kwargs in ({"reduction": "parts"}, {"normalizer": 3.0}):
        with pytest.raises(ValueError, match="pooling='batch'"):
            polyloss.dice(p, t, class_axis=1, pooling="batch", **kwargs)
        with pytest.raises(ValueError, match="pooling='batch'"):
            polyloss.lovasz_hinge(p[:, 0], t[:, 0], pooling="batch", **kwargs)
        with pytest.raises((ValueError, TypeError), match="normalizer|reduction"):
            polyloss.rmse(p, t, **kwargs)  # a root of a mean: take mse's parts
        with pytest.raises((ValueError, TypeError), match="normalizer|reduction"):
            polyloss.ntxent(p[:, :, 0], np.array([0, 0, 1, 1]), **kwargs)  # pairs span the batch


def test_normaliser_array_of_another_framework_is_refused():
    torch = pytest.importorskip("torch")
    p = torch.ones(2, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="normalizer"):
        polyloss.mse(p, p, normalizer=np.array(4.0))  # a NumPy scalar (np.float64) is a number


def test_distributed_module_imports_no_framework():
    code = ("import sys, polyloss.distributed; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'mxnet', 'keras', 'dask') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.strip() == "[]"
