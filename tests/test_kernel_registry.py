"""The kernel registry: each Backend owns its compiled kernels, ops ask it by name, and no code
outside backend.py chooses what to run by comparing device names. One loader imports Numba."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from devices import fake_device

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import backend, kernels

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["tinygrad_lite", "nn", "embeddings", "lora", "rl", "tglite"]
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
numba_missing = pytest.mark.skipif(not backend.numba_available(), reason="numba not installed (extra: fast)")


def package_sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


# A device name in quotes ("cpu", 'cuda', "cuda:0", ...) compared with == / != / in, or a device
# attribute tested with startswith: choosing code by device name.
DEVICE_NAME = r"""["'](?:cpu|cuda|gpu)[\w:-]*["']"""
NAME_COMPARISON = re.compile(
    rf"(?:==|!=)\s*{DEVICE_NAME}|{DEVICE_NAME}\s*(?:==|!=)|\bin\s*[(\[{{]\s*{DEVICE_NAME}|device\w*\.startswith\(")


def device_name_comparisons(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if NAME_COMPARISON.search(line.split("#")[0])]


def test_the_scan_finds_device_name_comparisons():
    planted = ('if x.device == "cpu":\n', "if 'cuda' != dev:\n", 'if device in ("cpu", "cuda"):\n',
               "if t.device.startswith('cuda'):\n")
    for line in planted:
        assert device_name_comparisons(line), line
    fine = ('out = x if device == x.device else y\n', 'get_backend("cpu").kernel("gelu_forward")\n',
            'device: str = "cpu"\n', '# the comment says device == "cpu"\n')
    for line in fine:
        assert not device_name_comparisons(line), line


def test_no_device_name_comparisons_outside_backend():
    found = {str(p.relative_to(ROOT)): hits for p in package_sources()
             if p != ROOT / "tinygrad_lite" / "backend.py" and (hits := device_name_comparisons(p.read_text()))}
    assert not found, ("code outside tinygrad_lite/backend.py compares device names; ask the backend instead "
                       f"(get_backend(device).kernel(name, dtype), .xp, .uniform ...): {found}")


def test_numba_is_loaded_one_way():
    """Only the kernel modules import numba, and only the backend probes for it; each kernel module is
    imported after backend.load_numba (which sets the compile cache and names the extra)."""
    kernel_modules = {"tinygrad_lite/kernels/cpu.py", "tinygrad_lite/kernels/cuda.py", "embeddings/_kernels.py",
                      "embeddings/_cuda_kernels.py",
                      "tglite/commands/info.py"}  # only inside the program its simulator check runs in a child process
    imports, probes = set(), set()
    for p in package_sources():
        text, name = p.read_text(), str(p.relative_to(ROOT))
        if re.search(r"^\s*(?:import numba|from numba\b)", text, re.MULTILINE):
            imports.add(name)
        if re.search(r"""find_spec\(["']numba|import_module\(["']numba""", text):
            probes.add(name)
    assert imports <= kernel_modules, f"numba imported outside the kernel modules: {imports - kernel_modules}"
    assert probes == {"tinygrad_lite/backend.py"}, probes


@numba_missing
def test_the_cpu_registry(monkeypatch):
    cpu, module = backend.get_backend("cpu"), kernels.load("cpu")
    assert cpu.kernel("gelu_forward", F32) is module.gelu_forward
    assert cpu.kernel("layer_norm_forward", F64) is module.layer_norm_forward
    assert cpu.kernel("gelu_forward", F64) is None  # float64 GELU keeps SciPy's exact erf
    assert cpu.kernel("softmax_forward", F32) is None  # a GPU-only kernel: the CPU runs NumPy
    assert cpu.kernel("no_such_kernel") is None
    monkeypatch.setattr(backend, "USE_NUMBA", False)  # TGLITE_NUMBA=0: every op on its reference path
    assert cpu.kernel("gelu_forward", F32) is None


def test_a_device_without_kernels_runs_the_reference_code():
    with fake_device() as name:
        assert backend.get_backend(name).kernel("layer_norm_forward", F32) is None
        x = tg.Tensor(np.linspace(-2, 2, 12).reshape(3, 4), dtype=tg.float64, requires_grad=True).to(name)
        tg.gradcheck(lambda a: F.layer_norm(F.fused_gelu(a), 4), [x])


def _kernel_names_in_the_docs() -> set[str]:
    return set(re.findall(r"^    (\w+)\(", kernels.__doc__, re.MULTILINE))


@numba_missing
def test_each_kernel_name_means_one_signature_on_every_device():
    """Every kernel a module serves is documented in kernels/__init__.py, and a name shared by the CPU
    and CUDA modules takes the same parameters in both (the ops call them the same way)."""
    cpu, cuda = kernels.load("cpu"), kernels.load("cuda")  # importing kernels.cuda needs no GPU
    documented = _kernel_names_in_the_docs()
    for module in (cpu, cuda):
        assert set(module.DTYPES) <= documented, set(module.DTYPES) - documented
        assert all(callable(getattr(module, name)) for name in module.DTYPES)
    shared = set(cpu.DTYPES) & set(cuda.DTYPES)
    assert {"gelu_forward", "layer_norm_forward", "layer_norm_backward", "adam_update"} <= shared
    for name in shared:
        params = [list(inspect.signature(getattr(m, name)).parameters) for m in (cpu, cuda)]
        assert params[0] == params[1], (name, params)
