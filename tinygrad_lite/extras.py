"""Optional packages, and the one error that says which extra installs a missing one.

The engine runs on NumPy alone; everything else (matplotlib, tqdm, numba, safetensors, mpi4py,
the corpus and model packages, ...) is imported lazily by the function that needs it, through
`require` (or `package_dir` for a package that only ships data files). A missing package then
gives one message, in one wording, everywhere in the project:

    plotting needs the package 'matplotlib', which is not installed. Install it with:
    pip install -e ".[course]"  (from the repository root)

It lives in the engine, the lowest layer, so that nn, embeddings, lora, rl and tglite can all use it.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional package is missing; the message says which extra installs it."""


def install_command(extra: str) -> str:
    """The command that installs an extra from a clone of the repository: pip install -e ".[extra]"."""
    return f'pip install -e ".[{extra}]"'


def missing_extra(package: str, extra: str, purpose: str, hint: str = "") -> MissingExtraError:
    """The error for a missing optional `package` that the pip extra `extra` installs; `purpose`
    says what needed it, `hint` (a sentence) what to do without it."""
    message = (f"{purpose} needs the package {package!r}, which is not installed. "
               f"Install it with:  {install_command(extra)}  (from the repository root)")
    return MissingExtraError(f"{message}. {hint}" if hint else message)


def require(module: str, extra: str, purpose: str, hint: str = "") -> ModuleType:
    """Import `module` (e.g. "matplotlib.figure"), or raise MissingExtraError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        # The package that is missing, which is not always the top-level one (cupy.cuda.nccl).
        inside = e.name is not None and (module == e.name or module.startswith(e.name + "."))
        missing = e.name if inside else module.split(".")[0]
        raise missing_extra(missing, extra, purpose, hint) from e


def package_dir(package: str, extra: str, purpose: str) -> Path:
    """The folder of an installed package, found without importing it (for packages that only ship
    data files: corpora, vectors, model weights); MissingExtraError when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise missing_extra(package, extra, purpose)
    return Path(list(spec.submodule_search_locations)[0])
