"""The schema of ``polyloss parity --json`` (a JSON-Schema document) and a small validator.

The output is one JSON object. ``schema_version`` changes only when a field changes meaning or
disappears; new fields may be added. Errors are relative errors (``|a - e| / max(|e|, floor)``,
see ``polyloss.parity.run``); an infinite or NaN error is written as the string ``"inf"`` or
``"nan"`` (JSON has no such numbers). ``value_ratio``/``grad_ratio`` are errors as a fraction of
``tol`` (<= 1 passes). ``python -m polyloss.parity.schema`` prints the schema.
"""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA_VERSION = 1

_STRINGS = {"type": "array", "items": {"type": "string"}}
_ERROR = {"oneOf": [{"type": "number", "minimum": 0}, {"enum": ["inf", "nan"]}]}
_OPT_ERROR = {"oneOf": [{"type": "null"}, {"type": "number", "minimum": 0}, {"enum": ["inf", "nan"]}]}

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["convention", "loss", "family", "backend", "device", "dtype", "input", "reference",
                 "value_err", "grad_err", "tol", "grad_tol", "value_ratio", "grad_ratio", "ok", "out_dtype",
                 "expected_dtype", "note"],
    "additionalProperties": False,
    "properties": {
        "convention": {"enum": ["polyloss", "torch", "keras", "gluon", "optax"]},
        "loss": {"type": "string", "description": "the call, as a user writes it"},
        "family": {"type": "string", "description": "the loss family, e.g. huber"},
        "backend": {"type": "string", "description": "the backend the cell ran on ('reference' "
                                                     "when the reference itself failed)"},
        "device": {"enum": ["cpu", "cuda"]},
        "dtype": {"enum": ["float32", "float64", "float16", "bfloat16"]},
        "input": {"type": "string", "description": "'random' or an edge input, e.g. 'batch1'"},
        "reference": {"type": "string", "description": "'oracle' (NumPy float64 on the same cast "
                      "inputs), 'native', or 'native@<dtype>' (the native run in another dtype)"},
        "value_err": _ERROR,
        "grad_err": _OPT_ERROR,
        "tol": {"type": "number", "minimum": 0, "description": "the value's tolerance"},
        "grad_tol": {"type": "number", "minimum": 0, "description": "the gradient's tolerance"},
        "value_ratio": _ERROR,
        "grad_ratio": _OPT_ERROR,
        "ok": {"type": "boolean"},
        "out_dtype": {"type": "string"},
        "expected_dtype": {"type": "string"},
        "note": {"type": "string"},
    },
}

SKIP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["reason", "backend", "device", "dtype", "convention", "loss", "cells"],
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string"}, "backend": {"type": "string"}, "device": {"type": "string"},
        "dtype": {"type": "string"}, "convention": {"type": "string"}, "loss": {"type": "string"},
        "cells": {"type": "integer", "minimum": 0},
    },
}

DIFFERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "convention", "loss", "native", "polyloss", "why", "measured", "in_matrix",
                 "native_tol", "native_runs_in", "native_promotes", "native_computes_in", "edges",
                 "every_case"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"}, "convention": {"type": "string"}, "loss": {"type": "string"},
        "native": {"type": "string"}, "polyloss": {"type": "string"}, "why": {"type": "string"},
        "measured": {"type": "string"}, "in_matrix": {"type": "boolean"},
        "native_tol": {"type": "object", "additionalProperties": {"type": "number"}},
        "native_runs_in": {"type": "object", "additionalProperties": {"type": "string"}},
        "native_promotes": {"type": "boolean"}, "native_computes_in": {"type": "string"},
        "edges": _STRINGS, "every_case": {"type": "boolean"},
    },
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "polyloss parity --json",
    "type": "object",
    "required": ["schema_version", "ok", "backends", "dtypes", "devices", "unavailable", "jobs",
                 "seconds", "timings", "cases", "cells", "failures", "environment",
                 "tolerance_policy", "skipped", "deliberate_differences", "results"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "ok": {"type": "boolean", "description": "every cell within tolerance (the exit status)"},
        "backends": {**_STRINGS, "description": "the backends that ran"},
        "dtypes": _STRINGS,
        "devices": _STRINGS,
        "unavailable": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "backend -> why it is not in this environment"},
        "jobs": {"type": "integer", "minimum": 1, "description": "worker processes"},
        "seconds": {"type": "number", "minimum": 0},
        "timings": {"type": "object"},
        "cases": {"type": "integer", "minimum": 0, "description": "cells (kept for compatibility)"},
        "cells": {"type": "integer", "minimum": 0},
        "failures": {"type": "integer", "minimum": 0},
        "environment": {
            "type": "object", "required": ["python", "platform", "cpu_count", "frameworks"],
            "properties": {
                "python": {"type": "string"}, "platform": {"type": "string"},
                "cpu_count": {"type": "integer"},
                "frameworks": {"type": "object",
                               "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "null"}]}},
            },
        },
        "tolerance_policy": {"type": "object", "additionalProperties": {"type": "string"}},
        "skipped": {"type": "array", "items": SKIP_SCHEMA},
        "deliberate_differences": {"type": "array", "items": DIFFERENCE_SCHEMA},
        "results": {"type": "array", "items": RESULT_SCHEMA},
    },
}


def json_number(x: float | None) -> float | str | None:
    """A float for JSON: ``"inf"``/``"nan"`` for the values JSON cannot hold."""
    if x is None:
        return None
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    return float(x)


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(data: Any, schema: dict[str, Any] = JSON_SCHEMA, path: str = "$") -> list[str]:
    """The ways ``data`` breaks ``schema`` (empty when it is valid).

    Supports the keywords the schemas here use: type, const, enum, oneOf, required,
    properties, additionalProperties, items, minimum."""
    errors: list[str] = []
    if "oneOf" in schema:
        matches = sum(not validate(data, s, path) for s in schema["oneOf"])
        if matches != 1:
            errors.append(f"{path}: {data!r} matches {matches} of the oneOf alternatives, not 1")
        return errors
    if "const" in schema and data != schema["const"]:
        errors.append(f"{path}: {data!r} is not {schema['const']!r}")
    if "enum" in schema and data not in schema["enum"]:
        errors.append(f"{path}: {data!r} is not one of {schema['enum']}")
    kind = schema.get("type")
    if kind is not None and not _TYPES[kind](data):
        return errors + [f"{path}: expected {kind}, got {type(data).__name__}"]
    if "minimum" in schema and isinstance(data, (int, float)) and data < schema["minimum"]:
        errors.append(f"{path}: {data} < {schema['minimum']}")
    if isinstance(data, dict):
        for key in schema.get("required", ()):
            if key not in data:
                errors.append(f"{path}: missing {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in data.items():
            if key in props:
                errors += validate(value, props[key], f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected {key!r}")
            elif isinstance(extra, dict):
                errors += validate(value, extra, f"{path}.{key}")
    if isinstance(data, list) and "items" in schema:
        for i, item in enumerate(data):
            errors += validate(item, schema["items"], f"{path}[{i}]")
            if len(errors) > 20:
                break
    return errors


if __name__ == "__main__":
    print(json.dumps(JSON_SCHEMA, indent=1))
