"""The porting table: every loss concept, its spelling in each convention, how each
convention's call is read and how each target writes it. ``polyloss port`` and
``docs/porting.md`` are both generated from this one list.
"""

from __future__ import annotations

import functools

from polyloss.porting.model import Concept

__all__ = ["concepts", "concept_of", "example_spelling", "REQUIRED_ARGUMENTS"]

#: Arguments without a default, given in the example spellings (docs/porting.md, tests).
REQUIRED_ARGUMENTS = {
    ("keras", "categorical_generalized_cross_entropy"): "q=0.5",
    ("optax", "make_fenchel_young_loss"): "max_fun=jax.nn.logsumexp",
    ("torch", "LinearCrossEntropyLoss"): "in_features=3, num_classes=5",
}


@functools.cache
def concepts() -> tuple[Concept, ...]:
    """Every row, in the order of docs/porting.md."""
    from polyloss.porting import classification, margin, metric, regression, sequence

    return tuple(regression.CONCEPTS + classification.CONCEPTS + margin.CONCEPTS
                 + metric.CONCEPTS + sequence.CONCEPTS)


@functools.cache
def _index() -> dict[tuple[str, str], Concept]:
    out: dict[tuple[str, str], Concept] = {}
    for concept in concepts():
        for key in concept.interpret:
            if key in out:  # pragma: no cover - a table error
                raise RuntimeError(f"{key} is in two rows: {out[key].key} and {concept.key}")
            out[key] = concept
    return out


def concept_of(convention: str, name: str) -> Concept | None:
    """The row holding ``convention``'s loss ``name`` (None: not in the table)."""
    return _index().get((convention, name))


def example_spelling(convention: str, name: str) -> str:
    """The plain spelling of a loss (its native's full name; the arguments it cannot do
    without), e.g. ``torch.nn.MSELoss``."""
    from polyloss.porting.spelling import loss_kind, native_prefix
    prefix = native_prefix(convention, name, loss_kind(convention, name))
    required = REQUIRED_ARGUMENTS.get((convention, name))
    return f"{prefix}{name}({required})" if required else prefix + name
