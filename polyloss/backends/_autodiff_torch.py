"""torch's side of :mod:`polyloss.backends.autodiff`: one ``torch.autograd.Function``.

It lives in a module of its own (imported only once a torch array is seen) so that
``torch.compile`` finds the class already defined: Dynamo cannot trace a class statement.
"""

from __future__ import annotations

from typing import Any

import torch


class RuleFunction(torch.autograd.Function):
    """``rule.forward`` as one autograd node whose backward is ``rule.backward``."""

    @staticmethod
    def forward(ctx: Any, rule: Any, *xs: Any) -> Any:  # type: ignore[override]
        out, residuals = rule.forward(*xs, needs=ctx.needs_input_grad[1:])
        ctx.rule = rule
        ctx.save_for_backward(*residuals)
        return out

    @staticmethod
    def backward(ctx: Any, cotangent: Any) -> tuple:  # type: ignore[override]
        grads = ctx.rule.backward(ctx.saved_tensors, cotangent, ctx.needs_input_grad[1:])
        return (None, *grads)


apply = RuleFunction.apply
