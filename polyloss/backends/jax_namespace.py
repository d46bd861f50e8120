"""JAX's Array API namespace (``jax.numpy``) for polyloss, plus fused kernels.

Everything in the namespace is taken over as it is (see ``kernels.namespace_items``);
``polyloss_kernels`` is added (``polyloss/backends/kernels.py``).
"""

import jax.numpy as _base

from polyloss.backends import kernels

globals().update(kernels.namespace_items(_base))
polyloss_kernels = kernels.jax_kernels()
