"""JAX over 2 host CPU devices: ``jax.jit`` on sharded inputs, and ``shard_map``, with polyloss.

A 5-class linear classifier with a 3-value regression head (float64) and a batch of 32 whose
ignored labels sit mostly in the first device's half. The loss, ``polyloss.cross_entropy``
with ``ignore_index`` and class weights (``normalizer="sum_of_weights"``) plus ``polyloss.mse``,
is computed three ways and its value, gradient and parameters after a few SGD steps compared:

- on one device, unsharded (the reference);
- ``jax.jit`` with the batch sharded over the two devices (``NamedSharding``): XLA partitions
  the global computation, so the loss is the same function and needs nothing more;
- ``shard_map``: each device computes its shard's ``reduction="parts"`` and
  ``polyloss.distributed.jax_global_mean`` adds totals and normalisers with ``psum``;
- for contrast, ``shard_map`` with each device's own mean averaged by ``pmean`` (reported,
  not checked: it is not the batch's mean).

Prints one JSON object with the largest differences (absolute, and relative to the largest
entry of each array); exits 1 if one is above 1e-12. The host must expose two devices before
JAX starts, so this sets ``XLA_FLAGS`` itself and must run as its own process:

    python examples/distributed_jax.py [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import polyloss  # noqa: E402
from polyloss.distributed import jax_global_mean  # noqa: E402

jax.config.update("jax_enable_x64", True)
IGNORE = -1
LR = 0.5


def make_data() -> dict:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=32)
    labels[[1, 2, 6, 7, 10, 12, 30]] = IGNORE  # 6 ignored in the first half, 1 in the second
    return {"x": rng.normal(size=(32, 8)), "labels": labels, "targets": rng.normal(size=(32, 3)),
            "class_weight": np.array([0.5, 1.0, 2.0, 1.5, 0.75]),
            "params": {"w": rng.normal(size=(8, 8)) * 0.3, "b": np.zeros(8)}}


def outputs(params, x):
    out = x @ params["w"] + params["b"]
    return out[:, :5], out[:, 5:]


def loss_terms(params, x, labels, targets, class_weight, reduction):
    logits, regression = outputs(params, x)
    ce = polyloss.cross_entropy(logits, labels, ignore_index=IGNORE, class_weight=class_weight,
                                normalizer="sum_of_weights", reduction=reduction)
    return ce, polyloss.mse(regression, targets, reduction=reduction)


def full_loss(params, x, labels, targets, class_weight):
    ce, mse = loss_terms(params, x, labels, targets, class_weight, "mean")
    return ce + mse


def shard_loss(params, x, labels, targets, class_weight):
    ce, mse = loss_terms(params, x, labels, targets, class_weight, "parts")
    return jax_global_mean(ce, "batch") + jax_global_mean(mse, "batch")


def naive_shard_loss(params, x, labels, targets, class_weight):
    # each device's own mean, averaged: not the batch's mean when the shards differ
    ce, mse = loss_terms(params, x, labels, targets, class_weight, "mean")
    return jax.lax.pmean(ce + mse, "batch")


def train(value_and_grad, params, args, steps):
    for _ in range(steps):
        _, grads = value_and_grad(params, *args)
        params = jax.tree.map(lambda p, g: p - LR * g, params, grads)
    return params


def differences(tree, reference) -> dict:
    pairs = list(zip(jax.tree.leaves(tree), jax.tree.leaves(reference), strict=True))
    return {"max_abs": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs),
            "max_rel": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))
                                 / np.max(np.abs(np.asarray(b)))) for a, b in pairs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    devices = jax.devices()
    assert len(devices) == 2, devices
    data = make_data()
    params = jax.tree.map(jnp.asarray, data["params"])
    arrays = [jnp.asarray(data[k]) for k in ("x", "labels", "targets", "class_weight")]

    # the reference: one device, no sharding, no jit
    reference_vg = jax.value_and_grad(full_loss)
    value, grads = reference_vg(params, *arrays)
    trained = train(reference_vg, params, arrays, args.steps)

    mesh = Mesh(np.array(devices), ("batch",))
    batch, replicated = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
    sharded = [jax.device_put(a, batch) for a in arrays[:3]] + [jax.device_put(arrays[3], replicated)]
    params_r = jax.device_put(params, replicated)
    assert len(sharded[0].addressable_shards) == 2

    jit_vg = jax.jit(jax.value_and_grad(full_loss))
    specs = {"mesh": mesh, "in_specs": (P(), P("batch"), P("batch"), P("batch"), P()),
             "out_specs": P()}
    map_vg = jax.jit(jax.value_and_grad(jax.shard_map(shard_loss, **specs)))
    naive_vg = jax.jit(jax.value_and_grad(jax.shard_map(naive_shard_loss, **specs)))

    report = {"engine": "JAX, 2 host CPU devices", "jax": jax.__version__, "steps": args.steps}
    for name, vg in (("jit_sharded", jit_vg), ("shard_map", map_vg), ("naive_shard_map", naive_vg)):
        v, g = vg(params_r, *sharded)
        report[name] = {"value": differences(v, value), "grad": differences(g, grads),
                        "params": differences(train(vg, params_r, sharded, args.steps), trained)}
    print(json.dumps(report))
    ok = all(d["max_rel"] <= 1e-12 for name in ("jit_sharded", "shard_map")
             for d in report[name].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
