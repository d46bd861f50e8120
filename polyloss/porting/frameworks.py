"""How generated port snippets are written in each target framework: its imports, the
spelling of its native losses, and the array operations the post-processing uses.

A snippet is plain Python that reads the source call's arrays by their variable names and
assigns the result to ``loss``; it is printed by ``polyloss port`` and executed by
``polyloss port --check`` in a namespace holding these imports.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Framework", "FRAMEWORKS", "CONVENTIONS", "Step", "apply_steps"]

#: The conventions a loss can be ported from and to: the four mirrored frameworks and the
#: canonical API (``"polyloss"``).
CONVENTIONS = ("torch", "keras", "gluon", "optax", "polyloss")


@dataclass(frozen=True)
class Framework:
    """One target convention as generated code sees it."""

    convention: str
    title: str  # e.g. "PyTorch 2.13"
    imports: tuple[str, ...]
    array_type: str  # the arrays its snippets run on
    backend: str | None  # the polyloss.parity backend holding those arrays (None: NumPy)
    ops: str  # the module spelling of its array operations, e.g. "torch", "keras.ops"
    mirror_module: str  # where polyloss mirrors this convention

    # ---- array operations on a variable ``x`` --------------------------------------------

    def reduce(self, how: str, x: str, axis: str | None = None, keepdims: bool = False) -> str:
        """``how`` ("mean" or "sum") of ``x`` over ``axis`` (a Python expression; None: all)."""
        keep = ", keepdim=True" if keepdims and self.convention == "torch" else (
            ", keepdims=True" if keepdims else "")
        if self.convention in ("torch", "gluon") and not x.replace(".", "").isidentifier():
            x = f"({x})"
        if self.convention == "torch":
            if axis is None:
                return f"{x}.{how}()"
            return f"{x}.{how}(dim={axis}{keep})"
        if self.convention == "gluon":
            if axis is None:
                return f"{x}.{how}()"
            return f"{x}.{how}(axis={axis}{keep})"
        if axis is None:
            return f"{self.ops}.{how}({x})"
        return f"{self.ops}.{how}({x}, axis={axis}{keep})"

    def nonbatch_axes(self, x: str, batch_axis: int) -> str:
        """Every axis of ``x`` but ``batch_axis`` (0 or the last-but-none), as an expression."""
        ndim = f"{x}.ndim" if self.convention in ("torch", "gluon", "optax") else f"len({x}.shape)"
        if batch_axis == 0:
            return f"tuple(range(1, {ndim}))"
        return f"tuple(a for a in range({ndim}) if a != {batch_axis} % {ndim})"

    def cast(self, x: str, dtype: str) -> str:
        if self.convention == "torch":
            return f"{x}.to(torch.{dtype})"
        if self.convention == "keras":
            return f"keras.ops.cast({x}, {dtype!r})"
        if self.convention == "gluon":
            return f"{x}.astype({dtype!r})"
        if self.convention == "optax":
            return f"{x}.astype(jnp.{dtype})"
        return f"xp.astype({x}, xp.{dtype})"

    def call(self, fn: str, *args: str) -> str:
        return f"{self.ops}.{fn}({', '.join(args)})"

    def expand_last(self, x: str) -> str:
        """``x`` with a trailing axis of length 1."""
        if self.convention == "keras":
            return f"keras.ops.expand_dims({x}, -1)"
        if self.convention == "gluon":
            return f"{x}.expand_dims(-1)"
        return f"{x}[..., None]"

    def where(self, cond: str, a: str, b: str) -> str:
        if self.convention == "gluon":
            return f"mx.nd.where({cond}, {a}, {b})"
        return f"{self.ops}.where({cond}, {a}, {b})"


FRAMEWORKS: dict[str, Framework] = {
    f.convention: f
    for f in (
        Framework("torch", "PyTorch 2.13", ("import torch",), "torch.Tensor", "torch", "torch",
                  "polyloss.torch"),
        Framework("keras", "Keras 3.15", ("import keras",), "tf.Tensor (Keras's TensorFlow backend)",
                  "tensorflow", "keras.ops", "polyloss.keras"),
        Framework("gluon", "MXNet Gluon 1.9.1", ("import mxnet as mx", "from mxnet import gluon"),
                  "mx.nd.NDArray", "mxnet", "mx.nd", "polyloss.gluon"),
        Framework("optax", "optax 0.2.8", ("import jax", "import jax.numpy as jnp", "import optax"),
                  "jax.Array", "jax", "jnp", "polyloss.optax"),
        Framework("polyloss", "polyloss (canonical)", ("import polyloss",), "any framework's arrays",
                  None, "xp", "polyloss"),
    )
}


# ---- reductions as steps --------------------------------------------------------------------
# A step is ("mean" | "sum", axis) with axis None (everything), an int, or ("nonbatch", b)
# (every axis but b); ("mul", expr) / ("div", expr) / ("add", expr) with expr a variable or a
# number;
# ("div_sum", expr): divide by the sum of expr.

Step = tuple


def apply_steps(fw: Framework, steps: list[Step], var: str = "loss") -> list[str]:
    """Code lines applying ``steps`` to ``var`` in ``fw``'s operations."""
    lines = []
    for step in steps:
        op, arg = step
        if op in ("mean", "sum"):
            if isinstance(arg, tuple):  # ("nonbatch", b)
                axis = fw.nonbatch_axes(var, arg[1])
            else:
                axis = None if arg is None else str(arg)
            lines.append(f"{var} = {fw.reduce(op, var, axis)}")
        elif op == "mul":
            lines.append(f"{var} = {var} * {arg}")
        elif op == "add":
            lines.append(f"{var} = {var} + {arg}")
        elif op == "div":
            lines.append(f"{var} = {var} / {arg}")
        elif op == "div_sum":
            lines.append(f"{var} = {var} / {fw.reduce('sum', arg)}")
        else:  # pragma: no cover - a table error
            raise ValueError(f"unknown reduction step {step!r}")
    return lines
