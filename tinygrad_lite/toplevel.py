"""PyTorch's top-level forms of Tensor methods: `tg.exp(x)` is `x.exp()`, `tg.sum(x, dim=1)` is
`x.sum(dim=1)`, `tg.max(x, 1)` is `x.max(1)`. Each one is its method, called on the first
argument (a list or an array is wrapped in a Tensor first), so no rule is written twice and each
function's docstring is its method's. (`where`, `matmul`, `cat`, `stack`, `split`, `maximum` and
`minimum` have their own definitions elsewhere.)
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .tensor import Tensor


def _function_of(name: str) -> Callable[..., Any]:
    method = getattr(Tensor, name)

    @functools.wraps(method)
    def function(input: Any, *args: Any, **kwargs: Any) -> Any:
        return method(input if isinstance(input, Tensor) else Tensor(input), *args, **kwargs)

    return function


# elementwise
abs = _function_of("abs")
exp = _function_of("exp")
log = _function_of("log")
sqrt = _function_of("sqrt")
sin = _function_of("sin")
cos = _function_of("cos")
tanh = _function_of("tanh")
sigmoid = _function_of("sigmoid")
relu = _function_of("relu")
erf = _function_of("erf")
sign = _function_of("sign")
square = _function_of("square")
reciprocal = _function_of("reciprocal")
clamp = _function_of("clamp")
clip = _function_of("clip")
add = _function_of("add")
sub = _function_of("sub")
mul = _function_of("mul")
div = _function_of("div")
pow = _function_of("pow")
masked_fill = _function_of("masked_fill")
# reductions
sum = _function_of("sum")
mean = _function_of("mean")
std = _function_of("std")
var = _function_of("var")
max = _function_of("max")
min = _function_of("min")
argmax = _function_of("argmax")
argmin = _function_of("argmin")
all = _function_of("all")
any = _function_of("any")
logsumexp = _function_of("logsumexp")
softmax = _function_of("softmax")
log_softmax = _function_of("log_softmax")
norm = _function_of("norm")
numel = _function_of("numel")
# shape, movement and indexing
reshape = _function_of("reshape")
permute = _function_of("permute")
transpose = _function_of("transpose")
squeeze = _function_of("squeeze")
unsqueeze = _function_of("unsqueeze")
flatten = _function_of("flatten")
tril = _function_of("tril")
triu = _function_of("triu")
chunk = _function_of("chunk")
gather = _function_of("gather")
clone = _function_of("clone")
detach = _function_of("detach")

__all__ = [
    "abs", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf", "sign", "square", "reciprocal",
    "clamp", "clip", "add", "sub", "mul", "div", "pow", "masked_fill",
    "sum", "mean", "std", "var", "max", "min", "argmax", "argmin", "all", "any", "logsumexp", "softmax",
    "log_softmax", "norm", "numel",
    "reshape", "permute", "transpose", "squeeze", "unsqueeze", "flatten", "tril", "triu", "chunk", "gather",
    "clone", "detach",
]
