"""The losses, written once against the Array API standard.

Every function here takes arrays of one namespace ``xp`` that have already been promoted
to one floating dtype, and returns *unreduced* values. No Python branching on array
values, no in-place writes, no NumPy round trips and no data-dependent shapes, so the same
code runs eagerly, under ``jax.jit``, ``tf.function`` and ``torch.compile``, and on
array-api-strict. Framework constants (clips, epsilons, ½ factors) are parameters set by
the convention modules, never hard-coded here.
"""

from polyloss.core import regression

__all__ = ["regression"]
