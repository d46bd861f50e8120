"""A hand-written gradient for an Array API computation, attached the way each framework does it.

``call_with_vjp(framework, rule, *arrays)`` returns ``rule.forward(*arrays)[0]`` and makes the
framework's autograd differentiate it with ``rule.backward`` instead of recording every
operation inside ``forward``: ``torch.autograd.Function``, ``jax.custom_vjp``,
``tf.custom_gradient`` and ``mxnet.autograd.Function``. NumPy, array-api-strict, Dask and
CuPy have no autograd, so the forward is all there is.

The rule (any object with these two methods; it is hashed by identity under JAX):

- ``forward(*arrays, needs) -> (output, residuals)``: ``residuals`` is a tuple of arrays (or
  ``None``) kept for the backward pass; ``needs[i]`` says whether ``arrays[i]`` may want a
  gradient (all ``False`` for a plain evaluation: no autograd, JAX's primal call, MXNet outside
  ``autograd.record``, TensorFlow without a recording tape; torch knows per input; a recording
  TensorFlow tape and a differentiated JAX call ask for every input, and gradients nobody uses
  are dropped: under ``jax.jit`` XLA removes their work);
- ``backward(residuals, cotangent, needs) -> grads``: one gradient (or ``None``) per array
  (``needs`` now: every input where the framework does not say).

``None`` entries of ``arrays`` are passed to the rule as ``None`` and get no gradient. Every
framework supports its compiled mode here: ``torch.compile`` (``fullgraph=True``),
``jax.jit`` and ``tf.function`` (with ``jit_compile``) trace the forward and the backward.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["call_with_vjp", "block_scan", "blocking"]


def call_with_vjp(framework: str, rule: Any, *arrays: Any) -> Any:
    """``rule.forward(*arrays)[0]``, differentiated by ``rule.backward`` (see the module)."""
    attach = _HOOKS.get(framework)
    if attach is None:  # no autograd
        return rule.forward(*arrays, needs=(False,) * len(arrays))[0]
    present = [i for i, a in enumerate(arrays) if a is not None]

    def expand(xs: tuple) -> list:
        full: list = [None] * len(arrays)
        for i, x in zip(present, xs, strict=True):
            full[i] = x
        return full

    def pick(grads: tuple) -> tuple:
        return tuple(grads[i] for i in present)

    compact = _Compact(rule, expand, pick, len(present))
    return attach()(compact, *(arrays[i] for i in present))


def block_scan(framework: str, xp: Any) -> Callable | None:
    """The loop that visits a blocked computation's blocks, ``lax.scan``'s contract:
    ``scan(body, carry, xs) -> (carry, ys)``, ``xs`` and ``ys`` stacked along a leading axis.

    ``None`` (a Python loop, ``core.linear.python_scan``) where operations run one after the
    other: eager frameworks, torch (also compiled). Under ``jax.jit`` XLA would run every block
    of an unrolled loop at once (the temporaries of all blocks alive together), so traced JAX
    arrays get ``lax.scan``. A TensorFlow graph runs whatever is ready, so its loop makes each block wait
    for the previous one's results (a control dependency; nothing in eager mode).
    """
    if framework == "jax":
        import jax

        from polyloss.core.linear import python_scan

        plain = python_scan(xp)

        def jax_scan(body: Callable, carry: Any, xs: tuple) -> tuple:
            # concrete arrays (eager): one block after the other, and no loop to compile
            traced = any(isinstance(leaf, jax.core.Tracer)
                         for leaf in jax.tree_util.tree_leaves((carry, xs)))
            return (jax.lax.scan if traced else plain)(body, carry, xs)

        return jax_scan
    if framework == "tensorflow":
        import tensorflow as tf

        from polyloss.core.linear import python_scan

        plain = python_scan(xp)

        def scan(body: Callable, carry: Any, xs: tuple) -> tuple:
            if tf.executing_eagerly():
                return plain(body, carry, xs)

            def ordered(carry: Any, block: tuple) -> tuple:
                leaves = [t for t in tf.nest.flatten(carry) if t is not None]
                with tf.control_dependencies(leaves):
                    block = tuple(None if x is None else tf.identity(x) for x in block)
                return body(carry, block)

            return plain(ordered, carry, xs)

        return scan
    return None


def blocking(framework: str) -> tuple[int, int | None]:
    """``(logits per row block, classes per piece of dW's accumulation)`` for a blocked loop
    (``core.linear``), measured per framework (docs/linear_cross_entropy.md).

    Eagerly evaluated frameworks: blocks of 2**24 logits (64 MiB in float32), ``dW`` added in
    pieces of 1024 classes, so a block allocates no (C, F) temporary. Under ``jax.jit`` XLA fuses
    the product into the accumulation (one piece is faster) and runs matrix products inside a
    loop markedly slower on 512-row blocks than on 1024-row ones (1.40x against 1.14x the
    unrolled product's CPU time at 4096 x 1024 x 32768): blocks of 2**25 logits.
    """
    from polyloss.core.linear import DEFAULT_BLOCK_ELEMENTS, WEIGHT_PIECE

    if framework == "jax":
        return 2 * DEFAULT_BLOCK_ELEMENTS, None
    return DEFAULT_BLOCK_ELEMENTS, WEIGHT_PIECE


class _Compact:
    """The rule seen through the present (not ``None``) arrays only."""

    def __init__(self, rule: Any, expand: Callable, pick: Callable, count: int) -> None:
        self.rule, self.expand, self.pick = rule, expand, pick
        self.all = (True,) * count  # every present array asks for its gradient
        self.none = (False,) * count

    def _needs(self, needs: tuple) -> tuple:
        return tuple(n is True for n in self.expand(tuple(needs)))

    def forward(self, *xs: Any, needs: tuple) -> tuple[Any, tuple]:
        return self.rule.forward(*self.expand(xs), needs=self._needs(needs))

    def backward(self, residuals: tuple, cotangent: Any, needs: tuple) -> tuple:
        return self.pick(tuple(self.rule.backward(residuals, cotangent, self._needs(needs))))


# ---- torch ------------------------------------------------------------------------------

def _torch() -> Callable:
    from polyloss.backends import _autodiff_torch

    return _autodiff_torch.apply


# ---- JAX --------------------------------------------------------------------------------

@functools.cache
def _jax() -> Callable:
    import jax

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def apply(rule: _Compact, *xs: Any) -> Any:
        return rule.forward(*xs, needs=rule.none)[0]

    def forward(rule: _Compact, *xs: Any) -> tuple:
        return rule.forward(*xs, needs=rule.all)

    def backward(rule: _Compact, residuals: tuple, cotangent: Any) -> tuple:
        # None is JAX's zero cotangent (integer labels, coefficients)
        return tuple(rule.backward(residuals, cotangent, rule.all))

    apply.defvjp(forward, backward)
    return apply


# ---- TensorFlow -------------------------------------------------------------------------

@functools.cache
def _tensorflow() -> Callable:
    import tensorflow as tf

    try:  # whether a GradientTape is recording (tf.function traces with the tape inside)
        from tensorflow.python.eager.record import could_possibly_record
    except ImportError:  # pragma: no cover - another TensorFlow layout
        def could_possibly_record() -> bool:
            return True

    def apply(rule: _Compact, *xs: Any) -> Any:
        @tf.custom_gradient
        def op(*inner: Any) -> tuple:
            # an active GradientTape would record every operation of the forward pass (and
            # keep each block's logits alive): the forward sees gradient-free views
            needs = rule.all if could_possibly_record() else rule.none
            out, residuals = rule.forward(*(tf.stop_gradient(x) for x in inner), needs=needs)

            def grad(cotangent: Any) -> list:
                return list(rule.backward(residuals, cotangent, rule.all))

            return out, grad

        return op(*xs)

    return apply


# ---- MXNet ------------------------------------------------------------------------------

@functools.cache
def _mxnet() -> Callable:
    import mxnet as mx

    class LinearRuleFunction(mx.autograd.Function):
        def __init__(self, rule: _Compact, needs: tuple) -> None:
            super().__init__()
            self.rule, self.needs = rule, needs

        def forward(self, *xs: Any) -> Any:
            out, residuals = self.rule.forward(*xs, needs=self.needs)
            self.save_for_backward(*residuals)
            self.inputs = xs
            return out

        def backward(self, cotangent: Any) -> tuple:
            with mx.util.np_shape(True):  # backward() may run outside the loss's scope
                grads = self.rule.backward(self.saved_tensors, cotangent.as_np_ndarray(),
                                           self.needs)
                # MXNet wants an NDArray for every input (a zero where there is no gradient)
                return tuple((mx.np.zeros_like(x) if g is None else g).as_nd_ndarray()
                             for g, x in zip(grads, self.inputs, strict=True))

    def apply(rule: _Compact, *xs: Any) -> Any:
        recording = mx.autograd.is_recording()
        if recording:
            # MXNet 1.9.1's Function stops writing input gradients at the first input that
            # needs none (its backward_entry returns early), so an untracked ``hidden`` would
            # starve ``weight``: tie every floating input to a zero leaf so each one asks for
            # its gradient (the rule's integer arrays and coefficients come last).
            # (the anchor has x's rank, all ones: a 0-d one would have a shape that the legacy
            # shape semantics call unknown when backward() runs outside np_shape)
            def tied(x: Any) -> Any:
                if x.dtype != xs[0].dtype or x.ndim == 0:
                    return x
                anchor = mx.np.zeros((1,) * x.ndim, dtype=x.dtype, ctx=x.ctx)
                anchor.attach_grad()
                return x + anchor

            xs = tuple(tied(x) for x in xs)
        return LinearRuleFunction(rule, rule.all if recording else rule.none)(*xs)

    return apply


_HOOKS: dict[str, Callable[[], Callable]] = {
    "torch": _torch, "jax": _jax, "tensorflow": _tensorflow, "mxnet": _mxnet,
}
