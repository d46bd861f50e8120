"""Building blocks shared by the core losses (Array API only)."""

from __future__ import annotations

from typing import Any


def abs_zero_grad(x: Any, xp: Any) -> Any:
    """``|x|`` whose gradient at 0 is 0 on every backend.

    ``xp.abs`` has backend-specific subgradients at 0 (0 in torch, TensorFlow and MXNet,
    +1 in JAX). ``x * sign(x)`` has the same value and differentiates to ``sign(x)`` in
    every framework, because ``sign`` has a zero derivative everywhere.
    """
    return x * xp.sign(x)
