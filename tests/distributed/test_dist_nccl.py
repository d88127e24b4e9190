"""The NCCL communicator's CPU side: no GPU is lent to CI, so only its interface is tested here
(data-type mapping, the errors of construction). docs/distributed.md says so."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

from nn.distributed import (  # noqa: E402
    NCCL_DTYPES,
    NCCL_OPS,
    OPS,
    MPICommunicator,
    NCCLCommunicator,
    get_communicator,
    nccl_dtype_name,
    nccl_id_from_json,
    nccl_id_to_json,
)
from tinygrad_lite.extras import MissingExtraError  # noqa: E402

pytestmark = pytest.mark.mpi


def test_dtype_mapping():
    assert nccl_dtype_name(np.float32) == "NCCL_FLOAT32"
    assert nccl_dtype_name("float64") == "NCCL_FLOAT64"
    assert nccl_dtype_name(np.dtype("int64")) == "NCCL_INT64"
    assert nccl_dtype_name(np.float16) == "NCCL_FLOAT16"
    for bad in (np.bool_, np.complex64, object):
        with pytest.raises(TypeError, match="NCCL has no data type for"):
            nccl_dtype_name(bad)
    assert set(NCCL_OPS) == set(OPS) and all(v.startswith("NCCL_") for v in NCCL_DTYPES.values())


def test_the_nccl_id_survives_json_in_either_cupy_form():
    import json

    new, old = bytes(range(256))[:128], tuple(range(-64, 64))  # CuPy >= 13: bytes; older: a tuple of chars
    for uid in (new, old):
        back = nccl_id_from_json(json.loads(json.dumps(nccl_id_to_json(uid))))
        assert back == uid and type(back) is type(uid)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_without_cupy_the_error_names_the_extra(comm):
    with pytest.raises(MissingExtraError, match=r"pip install -e \"\.\[gpu\]\""):
        NCCLCommunicator(comm)


def test_cpu_tensors_get_the_mpi_backend():
    c = get_communicator("cpu", timeout=5)
    assert isinstance(c, MPICommunicator) and c.world_size >= 2 and c.timeout == 5
