"""NumPy's Array API namespace for polyloss: array-api-compat's, plus kernels.

Everything in the namespace is taken over as it is (see ``kernels.namespace_items``);
``polyloss_kernels`` is added (``polyloss/backends/kernels.py``).
"""

import array_api_compat.numpy as _base

from polyloss.backends import kernels

globals().update(kernels.namespace_items(_base))
polyloss_kernels = kernels.numpy_kernels()
