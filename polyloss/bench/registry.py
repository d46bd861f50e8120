"""The benchmark registry: loss families, their sizes, and per backend the three sides timed.

A family is registered once (:func:`family`) with its sizes and a NumPy input maker; each
backend then registers a builder with :meth:`Family.on`, declaring the labels of its sides:

- ``native``: the framework's own loss (``torch.nn.functional``, ``keras.losses``,
  ``mxnet.gluon.loss``, ``optax``), or a hand-written reference where the framework has none
  (NumPy always; ``kind="reference"`` says so);
- ``polyloss``: the canonical API (``polyloss.mse``, ...);
- ``mirror``: the framework's own polyloss mirror (``polyloss.torch``, ``polyloss.keras``,
  ``polyloss.gluon``, ``polyloss.optax``).

A builder gets the backend's driver and the NumPy inputs and returns ``{side: Impl}``. Every
``Impl`` takes its arrays as arguments (never as closures: a jit would fold them into constants)
and the gradient is taken with respect to its first argument. A new family is a new module in
``polyloss/bench/families/`` (found by :func:`load_families`); nothing else is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "SIDES", "Size", "Impl", "Declared", "Family", "FAMILIES", "family", "load_families"]

# the backends the bench knows, in the order they run and print
BACKENDS = ("numpy", "torch", "tensorflow", "mxnet", "jax")
SIDES = ("native", "polyloss", "mirror")


@dataclass(frozen=True)
class Size:
    """One input shape of a family. ``batch`` is the number of samples (rows), which selects the
    target that applies (``target_class``: ``"small"`` for batch 8, ``"large"`` for batch >= 4096
    or a comparable number of elements, ``None`` for no target)."""

    name: str  # e.g. "4096x1000"
    batch: int
    dims: tuple[int, ...]
    target_class: str | None = None

    def matches(self, text: str) -> bool:
        return text == self.name or text == str(self.batch)


def rows(batch: int, width: int = 10) -> Size:
    """A ``(batch, width)`` size; batch 8 is "small", batch >= 4096 "large"."""
    klass = "small" if batch <= 8 else "large" if batch >= 4096 else None
    return Size(f"{batch}x{width}", batch, (batch, width), klass)


@dataclass(frozen=True)
class Impl:
    """One side of a benchmark: ``fn(*args)`` computes the loss (any shape; the backward pass
    differentiates its sum, or seeds it with ones on MXNet) with respect to ``args[0]``.

    ``block``: the Gluon loss block inside ``fn`` (MXNet's compiled mode hybridizes it; a side
    without one has no compiled mode there). ``compiled=False`` (with ``note``) keeps a side
    out of compiled mode on any backend.
    """

    fn: Callable[..., Any]
    args: tuple
    block: Any = None
    compiled: bool = True
    note: str = ""


@dataclass(frozen=True)
class Declared:
    """What a backend's builder provides, known without importing the framework."""

    labels: dict[str, str]  # side -> what it calls, e.g. {"native": "F.mse_loss", ...}
    kind: str  # "native" or "reference" (a hand-written baseline where the framework has none)
    builder: Callable[[Any, dict[str, np.ndarray]], dict[str, Impl]]
    same_value: tuple[str, ...]  # sides whose value must equal the native's (checked every run)
    no_mirror: str = ""  # why there is no mirror side
    compiled: bool = True  # False: no compiled mode for this family on this backend
    compiled_note: str = ""


@dataclass
class Family:
    """A loss family: its sizes, its NumPy inputs, and a builder per backend."""

    name: str
    title: str  # one line: what is computed and on what inputs
    sizes: tuple[Size, ...]
    inputs: Callable[[Size, np.random.Generator], dict[str, np.ndarray]]
    group: str = ""
    order: int = 100  # position in tables (lower first)
    backends: dict[str, Declared] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # backend -> why it is not benchmarked

    def on(
        self,
        backend: str,
        *,
        native: str,
        polyloss: str,
        mirror: str | None,
        no_mirror: str = "",
        kind: str = "native",
        same_value: tuple[str, ...] = ("mirror",),
        compiled: bool = True,
        compiled_note: str = "",
    ) -> Callable:
        """Register ``builder(driver, inputs) -> {side: Impl}`` for ``backend``.

        ``native``, ``polyloss`` and ``mirror`` label what each side calls; ``mirror=None``
        needs ``no_mirror``, the reason. ``same_value``: the sides whose forward value must equal
        the native's (every run checks it, so a benchmark cannot time the wrong computation).
        """
        if mirror is None and not no_mirror:
            raise ValueError(f"polyloss bench: {self.name} on {backend}: mirror=None needs no_mirror (why)")
        if backend not in BACKENDS:
            raise ValueError(f"polyloss bench: unknown backend {backend!r}; expected one of {BACKENDS}")
        if kind not in ("native", "reference"):
            raise ValueError(f"polyloss bench: kind must be 'native' or 'reference', got {kind!r}")
        labels = {"native": native, "polyloss": polyloss, "mirror": mirror}

        def register(builder: Callable) -> Callable:
            if backend in self.backends:
                raise ValueError(f"polyloss bench: {self.name} is registered twice on {backend}")
            self.backends[backend] = Declared(
                {k: v for k, v in labels.items() if v is not None},
                kind,
                builder,
                same_value,
                no_mirror,
                compiled,
                compiled_note,
            )
            return builder

        return register

    def without(self, backend: str, reason: str) -> None:
        """Record that ``backend`` has no benchmark for this family, and why."""
        self.missing[backend] = reason

    def make_inputs(self, size: Size, seed: int = 0) -> dict[str, np.ndarray]:
        return self.inputs(size, np.random.default_rng(seed))


FAMILIES: dict[str, Family] = {}


def family(
    name: str,
    title: str,
    sizes: tuple[Size, ...],
    inputs: Callable[[Size, np.random.Generator], dict[str, np.ndarray]],
    *,
    group: str = "",
    order: int = 100,
) -> Family:
    """Create and register a family (names are unique)."""
    if name in FAMILIES:
        raise ValueError(f"polyloss bench: family {name!r} is registered twice")
    fam = Family(name, title, tuple(sizes), inputs, group, order)
    FAMILIES[name] = fam
    return fam


_LOADED = False


def load_families() -> dict[str, Family]:
    """Import every module of :mod:`polyloss.bench.families` (each registers its families)."""
    global _LOADED
    if not _LOADED:
        from polyloss.bench import families

        for info in sorted(pkgutil.iter_modules(families.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{families.__name__}.{info.name}")
        _LOADED = True
    return dict(sorted(FAMILIES.items(), key=lambda kv: (kv[1].order, kv[0])))
