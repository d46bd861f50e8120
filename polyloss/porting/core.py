"""``polyloss port``: a loss call in one convention, written in every other.

For each target convention: the native equivalent as a runnable snippet (with the extra
arguments and post-processing it needs) and how exact it is, or why there is none; the
polyloss mirror of the source convention, which reproduces the source exactly on the
target framework's arrays; and the canonical polyloss spelling.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from polyloss.porting.frameworks import CONVENTIONS, FRAMEWORKS
from polyloss.porting.model import Concept, Native, NoNative, Spec
from polyloss.porting.spelling import Call, SpellingError, parse
from polyloss.porting.table import concept_of

__all__ = ["Port", "Target", "port", "TARGETS"]

#: The conventions ``--to`` accepts (``polyloss`` is the canonical API).
TARGETS = CONVENTIONS


@dataclass
class Target:
    """One target convention's answer."""

    convention: str
    status: str  # see polyloss.porting.model.STATUSES
    code: list[str] = field(default_factory=list)  # native snippet lines (imports first)
    notes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # what cannot be expressed natively
    mirror: list[str] = field(default_factory=list)  # the polyloss mirror of the source, as code
    dtypes: tuple[str, ...] | None = None  # the dtypes the native snippet runs in (None: all)

    def as_dict(self) -> dict[str, Any]:
        return {"convention": self.convention, "framework": FRAMEWORKS[self.convention].title,
                "status": self.status, "native": "\n".join(self.code) if self.code else None,
                "notes": self.notes, "cannot_express": self.differences,
                "mirror": "\n".join(self.mirror),
                "mirror_runs_on": FRAMEWORKS[self.convention].array_type}


@dataclass
class Port:
    """A parsed source call, what it means, and its spelling in each requested target."""

    call: Call
    concept: Concept
    spec: Spec
    targets: dict[str, Target]
    canonical: Target

    @property
    def mirror(self) -> list[str]:
        return mirror_code(self.call)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": {"convention": self.call.convention, "loss": self.call.spelling,
                       "call": self.call.native(), "concept": self.concept.key,
                       "title": self.concept.title, "notes": self.spec.notes + self.concept.notes,
                       "arrays": self.spec.var},
            "canonical": self.canonical.as_dict(),
            "targets": {k: t.as_dict() for k, t in self.targets.items()},
        }


def mirror_code(call: Call) -> list[str]:
    module = FRAMEWORKS[call.convention].mirror_module
    return [f"import {module}", f"loss = {call.mirror()}"]


def _snippet(target: str, native: Native) -> list[str]:
    code = list(FRAMEWORKS[target].imports) + native.code
    ast.parse("\n".join(code))  # every snippet is valid Python (a table error otherwise)
    return code


def render_target(call: Call, concept: Concept, spec: Spec, target: str) -> Target:
    """``target``'s native spelling of the source call, or why there is none."""
    mirror = mirror_code(call)
    if target == call.convention:
        native = Native("exact", [f"loss = {call.native()}"], ["the source call itself"])
    elif target in concept.render:
        try:
            native = concept.render[target](spec)
        except NoNative as e:
            return Target(target, "none", [], [], [str(e)], mirror)
    else:
        reason = concept.absent.get(target) or (
            f"{FRAMEWORKS[target].title} has no {concept.title} loss")
        return Target(target, "none", [], [], [reason], mirror)
    return Target(target, native.status, _snippet(target, native), list(native.notes),
                  list(native.differences), mirror, native.dtypes)


def port(text: str, targets: list[str] | tuple[str, ...] | None = None) -> Port:
    """Port the loss spelled ``text`` to ``targets`` (default: every other convention).

    Raises :class:`~polyloss.porting.spelling.SpellingError` (a ``ValueError``) for a
    spelling polyloss cannot read, naming close matches.
    """
    call = parse(text)
    unknown = [t for t in (targets or ()) if t not in TARGETS]
    if unknown:
        raise SpellingError(f"polyloss port: unknown target {', '.join(unknown)}; choose from "
                            f"{', '.join(TARGETS)}")
    concept = concept_of(call.convention, call.name)
    if concept is None:  # pragma: no cover - the table test keeps every mirrored loss in it
        raise SpellingError(f"polyloss port: {call.spelling} is not in the porting table yet")
    try:
        spec = concept.interpret[(call.convention, call.name)](call)
    except NoNative as e:
        raise SpellingError(f"polyloss port: {call.native()}: {e}") from None
    # a reader may hand the call to another row (smooth L1 with beta = 0 is L1)
    from polyloss.porting.table import concepts

    concept = next(c for c in concepts() if c.key == spec.concept)
    if targets is None:
        targets = [t for t in TARGETS if t not in (call.convention, "polyloss")]
    rendered = {t: render_target(call, concept, spec, t) for t in targets}
    canonical = render_target(call, concept, spec, "polyloss")
    return Port(call, concept, spec, rendered, canonical)
