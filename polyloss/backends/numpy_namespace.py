"""NumPy's Array API namespace for polyloss: array-api-compat's, without fused kernels.

Everything in the namespace is taken over as it is (see ``kernels.namespace_items``);
``polyloss_kernels`` is added (``polyloss/backends/kernels.py``).
"""

import array_api_compat.numpy as _base

from polyloss.backends import kernels

globals().update(kernels.namespace_items(_base))
# NumPy has no autograd and its operations are its fused kernels; the attribute makes the
# lookup a hit (array-api-compat's module answers a miss through a slow __getattr__)
polyloss_kernels = None
