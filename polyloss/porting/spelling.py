"""Reading a loss call as a user writes it in one framework (``torch.nn.CrossEntropyLoss(
label_smoothing=0.1)``, ``F.cross_entropy(logits, labels)``, ``keras.losses.huber``,
``optax.losses.l2_loss(x)``, ``polyloss.huber(pred, target, delta=2.0)``, ...).

The text is parsed with :mod:`ast` and never evaluated: argument values must be literals
(numbers, strings, booleans, ``None``, tuples/lists of them); arrays are plain variable
names, kept as they are written. Argument names and defaults come from the polyloss
mirror of the named loss (``inspect.signature``), which has the native's signature, so the
parser knows exactly what the native accepts.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "Code", "SpellingError", "parse", "loss_names", "loss_kind", "mirror_object",
           "native_prefix", "NATIVE_PREFIX"]


class SpellingError(ValueError):
    """A loss spelling that cannot be read: unknown name or argument, or a non-literal value."""


class Code(str):
    """An argument written as code (a variable or a callable), kept as its source text."""


# the dotted prefixes a spelling may start with, longest first, and their convention
_PREFIXES = (
    ("torch.nn.functional", "torch"), ("nn.functional", "torch"), ("torch.nn", "torch"),
    ("torchvision.ops", "torch"), ("polyloss.torch", "torch"), ("nn", "torch"), ("F", "torch"),
    ("tensorflow.keras.losses", "keras"), ("tf.keras.losses", "keras"), ("keras.losses", "keras"),
    ("polyloss.keras", "keras"),
    ("mxnet.gluon.loss", "gluon"), ("mx.gluon.loss", "gluon"), ("gluon.loss", "gluon"),
    ("polyloss.gluon", "gluon"),
    ("optax.losses", "optax"), ("optax", "optax"), ("polyloss.optax", "optax"),
    ("polyloss", "polyloss"),
)

_MIRROR_MODULES = {"torch": "polyloss.torch", "keras": "polyloss.keras", "gluon": "polyloss.gluon",
                   "optax": "polyloss.optax", "polyloss": "polyloss"}

#: Public names of the mirror modules that are not losses (base classes and helpers).
NOT_LOSSES = {
    "torch": frozenset({"pairwise_distance", "PairwiseDistance"}),
    "keras": frozenset({"Loss"}),
    "gluon": frozenset({"Loss"}),
    "optax": frozenset({"smooth_labels"}),
    "polyloss": frozenset(),
}

# How the native spells each loss, by convention and kind.
NATIVE_PREFIX = {
    ("torch", "class"): "torch.nn.", ("torch", "function"): "torch.nn.functional.",
    ("keras", "class"): "keras.losses.", ("keras", "function"): "keras.losses.",
    ("gluon", "class"): "gluon.loss.",
    ("optax", "function"): "optax.losses.", ("optax", "factory"): "optax.losses.",
    ("polyloss", "function"): "polyloss.",
}
_NATIVE_OVERRIDES = {("torch", "sigmoid_focal_loss"): "torchvision.ops."}

# Parameters annotated like arrays that hold something else.
_NOT_ARRAYS = frozenset({"axis", "alpha", "classes", "distance_function", "reduce_fn", "max_fun",
                         "reduction", "normalizer", "dtype", "device", "options", "name"})
# Parameters whose value is code (a callable), kept as written and never run by the parser.
_CODE_PARAMS = frozenset({"distance_function", "reduce_fn", "max_fun"})
_FACTORIES = frozenset({("optax", "make_fenchel_young_loss")})


def mirror_module(convention: str) -> Any:
    return importlib.import_module(_MIRROR_MODULES[convention])


def loss_names(convention: str) -> list[str]:
    """Every public loss name of ``convention``'s mirror (the canonical API for "polyloss")."""
    if convention == "polyloss":
        from polyloss import canonical

        return list(canonical.__all__)
    module = mirror_module(convention)
    return [n for n in module.__all__ if n not in NOT_LOSSES[convention]]


def mirror_object(convention: str, name: str) -> Any:
    return getattr(mirror_module(convention), name)


def _kind(convention: str, name: str, obj: Any) -> str:
    if (convention, name) in _FACTORIES:
        return "factory"
    return "class" if isinstance(obj, type) else "function"


def _is_array(p: inspect.Parameter) -> bool:
    if p.name in _NOT_ARRAYS:
        return False
    return p.annotation in ("Any", "Any | None") or (p.annotation is inspect.Parameter.empty
                                                     and p.default is inspect.Parameter.empty)


def _params(sig: inspect.Signature) -> list[inspect.Parameter]:
    return [p for p in sig.parameters.values() if p.name != "self"
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]


def signatures(convention: str, name: str) -> tuple[list[inspect.Parameter], list[inspect.Parameter]]:
    """``(configuration parameters, call parameters)`` of a loss, from its mirror.

    A function has no separate call: its parameters are all "configuration" (its array
    parameters included). A class's call parameters are its ``forward``/``__call__``'s.
    """
    obj = mirror_object(convention, name)
    kind = _kind(convention, name, obj)
    if kind == "function":
        return _params(inspect.signature(obj)), []
    if kind == "factory":
        return _params(inspect.signature(obj)), [
            inspect.Parameter("scores", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Any"),
            inspect.Parameter("targets", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Any")]
    init = _params(inspect.signature(obj))
    if convention == "torch":
        call = obj.forward
    elif convention == "keras":
        call = mirror_module("keras").Loss.__call__
    else:
        call = obj.__call__
    return init, _params(inspect.signature(call))


@dataclass(frozen=True)
class Call:
    """One loss call, read from its spelling and completed with the mirror's defaults."""

    convention: str
    name: str
    kind: str  # "class", "function" or "factory" (a function returning the loss)
    config: dict[str, Any]  # every non-array argument, given or default (call-time ones too)
    given: tuple[str, ...]  # the non-array arguments written explicitly, in signature order
    arrays: dict[str, str]  # array parameter -> variable name: required ones and given ones
    text: str = ""
    call_params: tuple[str, ...] = field(default=())  # the names of the call's parameters

    @property
    def spelling(self) -> str:
        """The loss as the native names it, e.g. ``torch.nn.CrossEntropyLoss``."""
        return native_prefix(self.convention, self.name, self.kind) + self.name

    def native(self) -> str:
        """The call in the native API, arrays included."""
        return self._render(native_prefix(self.convention, self.name, self.kind))

    def mirror(self) -> str:
        """The same call on polyloss's mirror (``polyloss.torch.CrossEntropyLoss(...)(...)``)."""
        return self._render(_MIRROR_MODULES[self.convention] + ".")

    def _render(self, prefix: str) -> str:
        config, call = self._argument_lists()
        if self.kind == "function":
            return f"{prefix}{self.name}({', '.join(config)})"
        return f"{prefix}{self.name}({', '.join(config)})({', '.join(call)})"

    def _argument_lists(self) -> tuple[list[str], list[str]]:
        init, call = signatures(self.convention, self.name)
        return self._arguments(init), self._arguments(call)

    def _arguments(self, params: list[inspect.Parameter]) -> list[str]:
        if self.convention == "gluon" and params and params[0].name == self.call_params[0]:
            return self._positional(params)
        out, keyword = [], False
        for p in params:
            if p.name in self.arrays and _is_array(p):
                value = self.arrays[p.name]
                required = p.default is inspect.Parameter.empty or (
                    self.convention, self.name, p.name) in _ALWAYS_PASSED
            elif p.name in self.given:
                value, required = _literal(self.config[p.name]), False
            else:
                keyword = True  # a parameter left out: the following ones need keywords
                continue
            if required and not keyword and p.kind is not inspect.Parameter.KEYWORD_ONLY:
                out.append(value)
            else:
                keyword = True
                out.append(f"{p.name}={value}")
        return out


    def _positional(self, params: list[inspect.Parameter]) -> list[str]:
        """A Gluon block's call: positional, ``None`` for a skipped argument (Gluon's
        ``Block.__call__`` takes no keywords)."""
        values = [self.arrays.get(p.name) or (_literal(self.config[p.name])
                                               if p.name in self.given else None) for p in params]
        while values and values[-1] is None:
            values.pop()
        return ["None" if v is None else v for v in values]


def _literal(value: Any) -> str:
    return str(value) if isinstance(value, Code) else repr(value)


def native_prefix(convention: str, name: str, kind: str) -> str:
    """Where the native keeps a loss: ``torch.nn.``, ``torch.nn.functional.``, ``keras.losses.``, ..."""
    return _NATIVE_OVERRIDES.get((convention, name)) or NATIVE_PREFIX[(convention, kind)]


def loss_kind(convention: str, name: str) -> str:
    """``"class"``, ``"function"`` or ``"factory"`` (a function that returns the loss)."""
    return _kind(convention, name, mirror_object(convention, name))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _all_spellings() -> list[str]:
    out = []
    for convention in ("torch", "keras", "gluon", "optax", "polyloss"):
        for name in loss_names(convention):
            obj = mirror_object(convention, name)
            out.append(native_prefix(convention, name, _kind(convention, name, obj)) + name)
    return out


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=5, cutoff=0.5)
    if not close:  # e.g. a name without its prefix: match on the last component
        tail = word.rsplit(".", 1)[-1].lower()
        close = [c for c in candidates if c.rsplit(".", 1)[-1].lower() == tail][:5] or \
            difflib.get_close_matches(word, candidates, n=5, cutoff=0.3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _resolve(dotted: str) -> tuple[str, str]:
    for prefix, convention in _PREFIXES:
        if dotted.startswith(prefix + ".") and "." not in dotted[len(prefix) + 1:]:
            name = dotted[len(prefix) + 1:]
            names = loss_names(convention)
            if name in names:
                return convention, name
            candidates = [native_prefix(convention, n, _kind(convention, n, mirror_object(
                convention, n))) + n for n in names]
            raise SpellingError(f"polyloss port: {dotted!r} is not a loss of the {convention} "
                                f"convention{_suggest(dotted, candidates)}")
    raise SpellingError(f"polyloss port: {dotted!r} is not a loss spelling polyloss knows (expected "
                        f"e.g. torch.nn.X, F.x, keras.losses.X, gluon.loss.X, optax.losses.x or "
                        f"polyloss.x){_suggest(dotted, _all_spellings())}")


def _value(node: ast.AST, param: str, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise SpellingError(f"polyloss port: argument {param}={ast.get_source_segment(text, node)} "
                            "must be a literal (a number, string, boolean, None, or a tuple/list "
                            "of them); arrays are passed as plain variable names") from None


def _bind(convention: str, name: str, params: list[inspect.Parameter], args: list[ast.AST],
          keywords: list[ast.keyword], text: str, where: str) -> tuple[dict, list[str], dict]:
    """Bind a call's arguments to ``params``: ``(config values, given names, arrays)``."""
    by_name = {p.name: p for p in params}
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if len(args) > len(positional):
        raise SpellingError(f"polyloss port: {where} takes at most {len(positional)} positional "
                            f"arguments ({', '.join(p.name for p in positional)}), got {len(args)}")
    pairs = [(p.name, node) for p, node in zip(positional, args, strict=False)]
    for kw in keywords:
        if kw.arg is None:
            raise SpellingError(f"polyloss port: {where}: **kwargs cannot be ported")
        if kw.arg not in by_name:
            raise SpellingError(f"polyloss port: {where} has no argument {kw.arg!r}"
                                f"{_suggest(kw.arg, list(by_name))} (its arguments: "
                                f"{', '.join(by_name)})")
        if any(n == kw.arg for n, _ in pairs):
            raise SpellingError(f"polyloss port: {where} got argument {kw.arg!r} twice")
        pairs.append((kw.arg, kw.value))
    config, given, arrays = {}, [], {}
    for pname, node in pairs:
        p = by_name[pname]
        if _is_array(p):
            if not isinstance(node, ast.Name):
                if isinstance(node, ast.Constant) and node.value is None:
                    continue  # weight=None: the default
                raise SpellingError(f"polyloss port: {where}: pass the array argument {pname} as a "
                                    f"plain variable name, got {ast.get_source_segment(text, node)}")
            arrays[pname] = node.id
        elif pname in _CODE_PARAMS and not (isinstance(node, ast.Constant) and node.value is None):
            config[pname] = Code(ast.get_source_segment(text, node))
            given.append(pname)
        else:
            config[pname] = _value(node, pname, text)
            given.append(pname)
    return config, given, arrays


def parse(text: str) -> Call:
    """Read one loss spelling; raises :class:`SpellingError` with close matches when it is not
    one polyloss knows."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise SpellingError(f"polyloss port: {text!r} is not a Python expression ({e.msg})") from None
    init_node, call_node = tree, None
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Call):
        init_node, call_node = tree.func, tree  # Loss(...)(arrays)
    func = init_node.func if isinstance(init_node, ast.Call) else init_node
    dotted = _dotted(func)
    if dotted is None:
        raise SpellingError(f"polyloss port: {text!r} is not a loss spelling (expected a dotted "
                            "name such as torch.nn.MSELoss or a call of one)")
    convention, name = _resolve(dotted)
    kind = _kind(convention, name, mirror_object(convention, name))
    init_params, call_params = signatures(convention, name)
    if kind == "function" and call_node is not None:
        raise SpellingError(f"polyloss port: {dotted} is a function; call it once with its arrays "
                            f"(e.g. {dotted}(pred, target))")
    args = init_node.args if isinstance(init_node, ast.Call) else []
    keywords = init_node.keywords if isinstance(init_node, ast.Call) else []
    config, given, arrays = _bind(convention, name, init_params, args, keywords, text, dotted)
    if call_node is not None:
        c_config, c_given, c_arrays = _bind(convention, name, call_params, call_node.args,
                                            call_node.keywords, text, f"{dotted}(...)'s call")
        config.update(c_config)
        given += c_given
        arrays.update(c_arrays)
    arrays_written = bool(arrays)
    for p in init_params + call_params:
        if _is_array(p):
            if p.default is inspect.Parameter.empty or (
                    not arrays_written and (convention, name, p.name) in _ALWAYS_PASSED):
                arrays.setdefault(p.name, p.name)
        elif p.name not in config:
            if p.default is inspect.Parameter.empty:
                raise SpellingError(f"polyloss port: {dotted} needs the argument {p.name} (it has no "
                                    "default)")
            config[p.name] = p.default
    order = [p.name for p in init_params + call_params]
    given_in_order = tuple(n for n in order if n in given)
    arrays = {n: arrays[n] for n in order if n in arrays}
    _check_names(arrays, dotted)
    return Call(convention, name, kind, config, given_in_order, arrays, text.strip(),
                tuple(p.name for p in call_params))


# optional array parameters that the natural call always passes (optax: targets=None means
# "the predictions are the errors", but ports write the usual two-array call)
_ALWAYS_PASSED = frozenset({
    ("optax", "squared_error", "targets"), ("optax", "l2_loss", "targets"),
    ("optax", "huber_loss", "targets"), ("optax", "log_cosh", "targets"),
})


def _check_names(arrays: dict[str, str], where: str) -> None:
    seen: dict[str, str] = {}
    for param, var in arrays.items():
        if var in seen:
            raise SpellingError(f"polyloss port: {where}: the arrays {seen[var]} and {param} have the "
                                f"same name {var!r}; give each array its own variable")
        seen[var] = param
