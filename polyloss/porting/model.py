"""The pieces of the porting table: what a source call means (:class:`Spec`), a target's
native rendering of it (:class:`Native`) or the reason there is none (:class:`NoNative`),
and a loss concept tying spellings, renderers and check inputs together (:class:`Concept`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polyloss.porting.frameworks import Step
from polyloss.porting.spelling import Call

__all__ = ["Spec", "Native", "NoNative", "Concept", "STATUSES", "simplify"]

#: How a target's native snippet relates to the source:
#: ``exact``: the same values on every input, up to floating-point rounding;
#: ``edges``: the same on ordinary inputs, different at the edge inputs the notes name;
#: ``approximate``: different on ordinary inputs by the documented amount;
#: ``none``: no native equivalent (the reason says why; the polyloss mirror still applies).
STATUSES = ("exact", "edges", "approximate", "none")


@dataclass
class Spec:
    """What a source call computes, in terms its concept's renderers understand.

    ``var`` maps the concept's roles (``"pred"``, ``"target"``, ...) to the variable names
    the source call uses; ``p`` holds the semantic parameters (reduction steps, constants,
    label formats, ...); ``notes`` describe the source's own conventions.
    """

    concept: str
    call: Call
    var: dict[str, str]
    p: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.p[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.p.get(key, default)


@dataclass
class Native:
    """A target framework's native spelling of a source call: code lines that end by
    assigning ``loss``, how exact it is, and what the user must know."""

    status: str
    code: list[str]
    notes: list[str] = field(default_factory=list)  # how the snippet reproduces the source
    differences: list[str] = field(default_factory=list)  # what it cannot reproduce, and by how much
    dtypes: tuple[str, ...] | None = None  # the dtypes the native runs in (None: every one)


class NoNative(Exception):  # noqa: N818 - it is an outcome, not an error
    """The target has no native equivalent; the message says why."""


@dataclass
class Concept:
    """One loss concept (a row of docs/porting.md): its spellings in every convention, how
    each reads a call (``interpret``), how each target writes it (``render``), and the
    inputs ``--check`` runs it on."""

    key: str
    title: str
    interpret: dict[tuple[str, str], Callable[[Call], Spec]]  # (convention, name) -> reader
    render: dict[str, Callable[[Spec], Native]]  # target convention -> writer
    inputs: Callable[[Spec, str, Any], dict[str, Any]]  # (spec, dtype, rng) -> role -> array
    notes: list[str] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)  # convention -> why it has none
    # results whose terms cancel: --check measures errors relative to max(|value|, this)
    term_scale: float = 0.0

    def spellings(self, convention: str) -> list[str]:
        return [name for conv, name in self.interpret if conv == convention]


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def simplify(steps: list[Step]) -> list[Step]:
    """Reduction steps in a canonical order: constant factors moved to the end and merged
    (they commute with means and sums), a per-sample mean followed by the mean of those
    means is the overall mean, and a factor of 1 is dropped."""
    factor = 1.0
    last_add = max((i for i, (op, _) in enumerate(steps) if op == "add"), default=-1)
    kept: list[Step] = list(steps[:last_add + 1])  # a factor does not commute with a shift
    for op, arg in steps[last_add + 1:]:
        if op == "mul" and _is_number(arg):
            factor *= arg
        elif op == "div" and _is_number(arg):
            factor /= arg
        else:
            kept.append((op, arg))
    merged: list[Step] = []
    for step in kept:
        if step == ("mean", None) and merged and merged[-1][0] == "mean":
            merged[-1] = step  # mean of per-sample means = overall mean (equal-size groups)
        else:
            merged.append(step)
    if factor != 1.0:
        merged.append(("mul", factor))
    return merged
