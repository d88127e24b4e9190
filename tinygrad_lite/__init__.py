"""tinygrad_lite: a small, readable reverse-mode autodiff engine on NumPy.

    import tinygrad_lite as tg
    x = tg.randn(3, 4, requires_grad=True)
    loss = (x.tanh() ** 2).sum()
    loss.backward()          # x.grad now holds d loss / d x
"""
# tensor first: it imports the op modules, which need Tensor and Function to exist.
from .tensor import Tensor  # noqa: I001
from . import dtypes, functional, toplevel
from .autograd import backward, grad
from .backend import available_devices, cuda_available, cuda_unavailable_reason, get_backend, register_backend
from .creation import (
    arange, eye, from_numpy, full, full_like, ones, ones_like, rand, rand_like, randint, randn, randn_like,
    zeros, zeros_like,
)
from .dtypes import bool_, float16, float32, float64, int32, int64
from .function import Function
from .grad_mode import AnomalyError, detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck, numerical_grad, numerical_jacobian
from .graph import draw_graph, plot_dag, plot_graph
from .forward_mode import jacobian, jvp
from .ops.elementwise import where
from .ops.indexing import embedding, one_hot, take_along_axis
from .ops.linalg import matmul
from .ops.movement import concatenate, split, stack
from .random import Generator, default_generator, manual_seed
from .toplevel import *  # noqa: F403 - PyTorch's top-level forms of Tensor methods (tg.exp(x) is x.exp())

__version__ = "0.1.0"

cat = concatenate


def maximum(a: Tensor, b: Tensor) -> Tensor:
    return a.maximum(b) if isinstance(a, Tensor) else b.maximum(a)


def minimum(a: Tensor, b: Tensor) -> Tensor:
    return a.minimum(b) if isinstance(a, Tensor) else b.minimum(a)


__all__ = [
    "Tensor", "Function", "Generator", "GradcheckError", "AnomalyError",
    "tensor", "zeros", "ones", "full", "arange", "eye", "rand", "randn", "randint",
    "zeros_like", "ones_like", "full_like", "rand_like", "randn_like",
    "manual_seed", "default_generator", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "detect_anomaly", "backward", "grad", "gradcheck", "gradgradcheck", "numerical_jacobian",
    "numerical_grad", "draw_graph", "plot_graph", "plot_dag", "where", "maximum", "minimum", "matmul",
    "concatenate", "cat",
    "stack", "split", "take_along_axis", "embedding", "one_hot", "functional", "dtypes",
    "float16", "float32", "float64", "int32", "int64", "bool_",
    "get_backend", "register_backend", "available_devices", "cuda_available", "cuda_unavailable_reason",
    "jvp", "jacobian", "from_numpy",
]
__all__ += toplevel.__all__


def tensor(data, requires_grad: bool = False, dtype=None, device: str = "cpu") -> Tensor:  # type: ignore[no-untyped-def]
    """Same as `Tensor(...)`: a copy of `data` as a new leaf tensor."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
