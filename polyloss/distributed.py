"""Global means across replicas: one call per engine that sums a loss's normaliser.

A mean over a batch split across replicas (or micro-batches) is ``Σ totals / Σ normalizers``,
not the mean of the replicas' means. Every canonical loss gives its two parts with
``reduction="parts"`` (:class:`polyloss.reduction.LossParts`); the helpers here sum the
normaliser across the replicas of each engine and return the loss each replica must
differentiate so that the engine's own gradient reduction (an average under torch DDP, a
sum under ``tf.distribute``, an explicit ``psum`` under ``shard_map``) gives the gradient of
the global mean. The normaliser carries no gradient (a count, or a sum of weights that are
data).

Each helper imports its framework when called; ``import polyloss.distributed`` imports none.
See ``docs/distributed.md`` for the recipes and what each engine does with the result.
"""

from __future__ import annotations

from typing import Any

from polyloss.reduction import LossParts

__all__ = ["torch_ddp_loss", "tf_replica_loss", "jax_global_mean"]


def _check_parts(parts: Any) -> LossParts:
    if not isinstance(parts, tuple) or len(parts) != 2:
        raise TypeError("polyloss: expected the LossParts (total, normalizer) of a loss called "
                        f"with reduction='parts', got {type(parts).__name__}")
    return LossParts(*parts)


def torch_ddp_loss(parts: Any, *, group: Any = None) -> Any:
    """The loss one rank backpropagates under ``torch.nn.parallel.DistributedDataParallel``.

    ``total_r · W / N`` with ``N = Σ_r normalizer_r`` (``torch.distributed.all_reduce``, no
    gradient) and ``W`` the world size of ``group``: DDP averages gradients over the ``W``
    ranks, so the parameters get the gradient of the global mean ``Σ_r total_r / N``. The
    mean of the returned values over the ranks is that global mean. Without an initialised
    process group it is ``total / normalizer``.
    """
    import torch
    import torch.distributed as dist

    total, normalizer = _check_parts(parts)
    if not (dist.is_available() and dist.is_initialized()):
        return total / normalizer
    n = normalizer.detach().clone()
    dist.all_reduce(n, op=dist.ReduceOp.SUM, group=group)
    world = dist.get_world_size(group)
    return total / (n / torch.tensor(world, dtype=n.dtype, device=n.device))


def tf_replica_loss(parts: Any) -> Any:
    """The loss one replica differentiates under a ``tf.distribute`` strategy.

    ``total_r / N`` with ``N`` the normaliser summed over the replicas in sync
    (``ReplicaContext.all_reduce``, no gradient). ``optimizer.apply_gradients`` sums the
    replicas' gradients, so they add up to the gradient of the global mean; the values add
    up to it too. Call it inside ``strategy.run`` or from a loss function given to
    ``model.compile`` (Keras does not rescale a loss function's 0-d result by the number of
    replicas); outside any strategy it is ``total / normalizer``.
    """
    import tensorflow as tf

    total, normalizer = _check_parts(parts)
    n = tf.stop_gradient(normalizer)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        n = context.all_reduce(tf.distribute.ReduceOp.SUM, n)
    return total / n


def jax_global_mean(parts: Any, axis_name: Any) -> Any:
    """The global mean inside ``shard_map``: ``psum(total) / psum(normalizer)`` over
    ``axis_name`` (the normaliser without gradient), the same value on every shard.

    Take ``jax.grad`` of the function that calls ``shard_map`` (its output replicated,
    ``out_specs=P()``), not inside the mapped function: JAX then transposes the ``psum`` and
    the parameters get the gradient of the global mean. Under plain ``jax.jit`` with sharded
    inputs no helper is needed: the loss of the global arrays is already global.
    """
    import jax

    total, normalizer = _check_parts(parts)
    n = jax.lax.psum(jax.lax.stop_gradient(normalizer), axis_name)
    return jax.lax.psum(total, axis_name) / n
