"""The Numba CPU scatter-add (embedding backward) against its NumPy reference, np.add.at.

Both paths are gradient-checked through the engine: TGLITE_NUMBA's module switch
(`backend.USE_NUMBA`) picks the path, and a spy proves which one actually ran.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import backend, kernels

numba_missing = pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed (extra: fast)")


@numba_missing
@given(n_out=st.integers(1, 6), cols=st.integers(1, 5), n=st.integers(0, 12), seed=st.integers(0, 99),
       dtype=st.sampled_from([np.float32, np.float64]), idtype=st.sampled_from([np.int64, np.int32]))
def test_index_add_rows_matches_add_at(n_out, cols, n, seed, dtype, idtype):
    rng = np.random.default_rng(seed)
    idx = rng.integers(-n_out, n_out, n).astype(idtype)  # negative and repeated indices included
    values = rng.standard_normal((n, cols)).astype(dtype)
    ref = np.zeros((n_out, cols), dtype)
    np.add.at(ref, (idx,), values)
    out = np.zeros((n_out, cols), dtype)
    kernels.load("cpu").index_add_rows(out, idx, values)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@numba_missing
def test_index_add_rows_rejects_bad_shapes():
    with pytest.raises(ValueError, match="index_add_rows"):
        kernels.load("cpu").index_add_rows(np.zeros((3, 2)), np.zeros(4, np.int64), np.zeros((4, 3)))


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=numba_missing)])
def test_embedding_gradients_on_both_paths(use_numba, monkeypatch):
    monkeypatch.setattr(backend, "USE_NUMBA", use_numba)
    calls = []
    if use_numba:
        real = kernels.load("cpu").index_add_rows
        monkeypatch.setattr(backend, "_rows_kernel", lambda *a: (calls.append(1), real(*a)))
    rng = np.random.default_rng(0)
    weight = tg.Tensor(rng.standard_normal((5, 3)), dtype=tg.float64, requires_grad=True)
    idx = np.array([[0, 4, 4], [2, 0, -1]])  # (B, T) with repeats and a negative index
    tg.gradcheck(lambda w: F.embedding(w, idx[:, :2] % 5) * 2.0, [weight])
    tg.gradcheck(lambda w: w[idx] ** 2, [weight])
    assert bool(calls) == use_numba  # the path under test is the one that ran


@numba_missing
def test_cache_dir_defaults_to_a_writable_place(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernels.ensure_numba_cache_dir() == str(tmp_path / "tinygrad_lite" / "numba")
    assert (tmp_path / "tinygrad_lite" / "numba").is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernels.ensure_numba_cache_dir() == str(tmp_path / "mine")  # the user's choice wins


def test_missing_numba_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("no numba here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numba)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[gpu\]"'):
        kernels.load("cuda")
    with pytest.raises(ValueError, match="unknown target"):
        kernels.load("tpu")
