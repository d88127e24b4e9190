"""Data parallelism: N processes, one model copy each, gradients averaged over an existing transport.

    # mpiexec -n 2 python train.py
    comm = nn.distributed.get_communicator()          # MPI under mpiexec; one process otherwise
    model = nn.distributed.DistributedDataParallel(nn.GPT(config), comm)
    loss = model(x_shard, y_shard)[1]                 # each rank: its own shard of the global batch
    loss.backward()                                   # gradients are averaged over the ranks here
    optimizer.step()                                  # every rank takes the same step

The transport is MPI's (mpi4py) or NVIDIA's NCCL (through CuPy): we write no networking of our
own. A `Communicator` is the small interface the rest of the stack sees: `rank`, `world_size`,
`all_reduce`, `broadcast`, `all_gather`, `barrier`. Every collective is started nonblocking and
polled against a deadline, because a blocking MPI call cannot be interrupted: a rank that died or
raised would otherwise leave the others waiting forever. docs/distributed.md explains the method.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.extras import require

from .module import Module, Parameter

TIMEOUT_ENV = "TGLITE_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds a collective may wait for the other ranks before it gives up
OPS = ("sum", "max", "min")
# Environment variables that the common MPI launchers set in every process they start.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


class DistributedError(RuntimeError):
    """A collective failed, or the ranks do not agree (different shapes, an unused parameter)."""


class CollectiveTimeout(DistributedError):
    """A collective did not finish in time: another rank died, raised, or called something else."""

    work: Any = None  # the unfinished collective (it cannot be cancelled; it can still be waited for)


def default_timeout() -> float:
    """$TGLITE_DIST_TIMEOUT seconds if set, else DEFAULT_TIMEOUT."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0") from None
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0")
    return value


def launched_by_mpi() -> bool:
    """True inside a process started by mpiexec/mpirun (MPICH's hydra, Open MPI, PMIx launchers)."""
    return any(os.environ.get(name) for name in _LAUNCHER_SIZE_VARS)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank `rank`'s own random stream (dropout masks), derived from one run seed.
    Rank 0 keeps `seed` itself, so a one-process run and rank 0 of an N-process run draw alike;
    the others get independent streams from NumPy's SeedSequence of (seed, rank)."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1, np.uint32)[0])


# ------------------------------------------------------------------------ the interface
class Work:
    """A started collective. `wait()` polls it until it completes or its deadline passes."""

    def __init__(self, test: Callable[[], bool], finish: Callable[[], Any], describe: str, rank: int,
                 timeout: float, on_timeout: Callable[[], None] | None = None) -> None:
        self._test, self._finish, self.describe, self.rank = test, finish, describe, rank
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self._on_timeout = on_timeout
        self._done = False
        self._result: Any = None

    def test(self) -> bool:
        """Advance the transport a little (MPI progresses inside its calls); True once complete."""
        if not self._done and self._test():
            self._done = True
            self._result = self._finish()
        return self._done

    def wait(self, timeout: float | None = None) -> Any:
        """The collective's result, once every rank has taken part. Raises CollectiveTimeout
        (naming this rank and the collective; its `.work` is this object) when the deadline passes
        first. `timeout` sets a new deadline, counted from now."""
        if timeout is not None:
            self.deadline, self.timeout = time.monotonic() + timeout, timeout
        start = time.monotonic()
        while not self.test():
            now = time.monotonic()
            # Poll without sleeping for the first 50 ms, as MPI's own blocking calls do (a sleep
            # costs a scheduler wake-up, far longer than a small all-reduce); then yield the core.
            if now - start > 0.05:
                time.sleep(1e-4)
            if now > self.deadline:
                if self._on_timeout is not None:
                    self._on_timeout()
                error = CollectiveTimeout(
                    f"rank {self.rank}: {self.describe} did not complete within {self.timeout:g} s: another "
                    f"rank has died, raised, or is calling a different collective (set {TIMEOUT_ENV} for "
                    "a longer limit)")
                error.work = self
                raise error
        return self._result


class Communicator:
    """The collectives data parallelism needs. Arrays are reduced in place and returned.

    all_reduce(a, op)    every rank gets the elementwise sum (max, min) of all ranks' `a`
    broadcast(a, root)   every rank gets root's `a`
    all_gather(a)        every rank gets an array of shape (world_size, *a.shape), rank order
    barrier()            returns once every rank has called it
    The *_object variants carry JSON-able Python values (lists, numbers, strings, None)."""

    rank: int = 0
    world_size: int = 1
    timeout: float = DEFAULT_TIMEOUT

    def all_reduce_async(self, array: Any, op: str = "sum") -> Work:  # pragma: no cover - abstract
        raise NotImplementedError

    def broadcast_async(self, array: Any, root: int = 0) -> Work:  # pragma: no cover - abstract
        raise NotImplementedError

    def all_gather_async(self, array: Any) -> Work:  # pragma: no cover - abstract
        raise NotImplementedError

    def barrier(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Stop every rank of the job now (after writing `message` to stderr)."""
        sys.stderr.write(message.rstrip() + "\n")
        sys.stderr.flush()
        os._exit(code)

    # Blocking forms: start, then wait with the deadline.
    def all_reduce(self, array: Any, op: str = "sum") -> Any:
        return self.all_reduce_async(array, op).wait()

    def broadcast(self, array: Any, root: int = 0) -> Any:
        return self.broadcast_async(array, root).wait()

    def all_gather(self, array: Any) -> Any:
        return self.all_gather_async(array).wait()

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's JSON-able `obj`, in rank order (lengths first, then the padded bytes)."""
        data = np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)
        sizes = self.all_gather(np.array([data.size], dtype=np.int64))[:, 0]
        padded = np.zeros(int(sizes.max()), dtype=np.uint8)
        padded[: data.size] = data
        rows = self.all_gather(padded)
        return [json.loads(rows[r, : int(n)].tobytes().decode("utf-8")) for r, n in enumerate(sizes)]

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        """Root's JSON-able `obj` on every rank."""
        return self.all_gather_object(obj if self.rank == root else None)[root]

    def _check(self, array: Any, what: str) -> None:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{type(self).__name__}.{what}: expected a NumPy array, got {type(array).__name__} "
                            "(GPU arrays go through the NCCL communicator)")
        if not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError(f"{type(self).__name__}.{what}: the array must be C-contiguous and writeable "
                             "(collectives write the result into it); pass np.ascontiguousarray(a)")

    def _check_op(self, op: str) -> None:
        if op not in OPS:
            raise ValueError(f"{type(self).__name__}.all_reduce: op={op!r}; use one of {OPS}")

    def _check_root(self, root: int) -> None:
        if not 0 <= root < self.world_size:
            raise ValueError(f"{type(self).__name__}.broadcast: root={root} is not a rank of 0..{self.world_size - 1}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


class LocalCommunicator(Communicator):
    """One process, world size 1: every collective is the identity. Lets the same training code
    run with and without mpiexec."""

    def __init__(self) -> None:
        self.rank, self.world_size, self.timeout = 0, 1, default_timeout()

    def _done(self, result: Any, what: str) -> Work:
        return Work(lambda: True, lambda: result, what, 0, self.timeout)

    def all_reduce_async(self, array: Any, op: str = "sum") -> Work:
        self._check_op(op)
        return self._done(array, "all_reduce")

    def broadcast_async(self, array: Any, root: int = 0) -> Work:
        self._check_root(root)
        return self._done(array, "broadcast")

    def all_gather_async(self, array: Any) -> Work:
        return self._done(array[None].copy(), "all_gather")

    def barrier(self) -> None:
        pass


def _import_mpi() -> Any:
    # The extra installs mpi4py and the mpich wheel (an MPI library: no compiler, no system MPI).
    return require("mpi4py.MPI", "distributed", "data parallelism over MPI")


class MPICommunicator(Communicator):
    """Collectives of an MPI communicator (mpi4py), each started nonblocking (Iallreduce, Ibcast,
    Iallgather, Ibarrier) and polled with a deadline. By default a duplicate of COMM_WORLD, so our
    collectives never match a user's own MPI calls."""

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        MPI = _import_mpi()
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD.Dup()
        self.rank, self.world_size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise ValueError(f"MPICommunicator: timeout must be > 0 seconds, got {timeout!r}")
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def _work(self, request: Any, result: Any, what: str) -> Work:
        return Work(request.Test, lambda: result, what, self.rank, self.timeout)

    def all_reduce_async(self, array: Any, op: str = "sum") -> Work:
        self._check(array, "all_reduce")
        self._check_op(op)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, array, self._ops[op])
        return self._work(request, array, f"all_reduce({op}) of {array.size} {array.dtype} values")

    def broadcast_async(self, array: Any, root: int = 0) -> Work:
        self._check(array, "broadcast")
        self._check_root(root)
        return self._work(self.comm.Ibcast(array, root=root), array, f"broadcast of {array.size} values from {root}")

    def all_gather_async(self, array: Any) -> Work:
        array = np.ascontiguousarray(array)
        out = np.empty((self.world_size, *array.shape), dtype=array.dtype)
        request = self.comm.Iallgather(array, out)
        return self._work(request, out, f"all_gather of {array.size} {array.dtype} values")

    def barrier(self) -> None:
        self._work(self.comm.Ibarrier(), None, "barrier").wait()

    def abort(self, message: str, code: int = 1) -> NoReturn:
        sys.stderr.write(message.rstrip() + "\n")
        sys.stderr.flush()
        self.MPI.COMM_WORLD.Abort(code)  # mpiexec then stops every rank
        raise SystemExit(code)  # not reached


# NumPy dtype name -> the name of NCCL's constant in cupy.cuda.nccl (ncclDataType_t).
NCCL_DTYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "uint32": "NCCL_UINT32",
               "int64": "NCCL_INT64", "uint64": "NCCL_UINT64", "float16": "NCCL_FLOAT16",
               "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}
NCCL_OPS = {"sum": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


def nccl_id_to_json(uid: Any) -> dict[str, Any]:
    """NCCL's unique id as JSON: CuPy >= 13 returns bytes, older releases a tuple of small ints."""
    return {"bytes": isinstance(uid, bytes), "id": [int(b) for b in uid]}


def nccl_id_from_json(payload: dict[str, Any]) -> Any:
    """The inverse of nccl_id_to_json: the id in the type this CuPy's NcclCommunicator takes."""
    return bytes(payload["id"]) if payload["bytes"] else tuple(payload["id"])


def nccl_dtype_name(dtype: Any) -> str:
    """The NCCL data type for a NumPy/CuPy dtype; TypeError for one NCCL cannot reduce (bool, complex)."""
    name = np.dtype(dtype).name
    if name not in NCCL_DTYPES:
        raise TypeError(f"NCCL has no data type for {name}; supported: {sorted(NCCL_DTYPES)}")
    return NCCL_DTYPES[name]


class NCCLCommunicator(Communicator):
    """Collectives of NCCL on CuPy arrays, one GPU per rank. MPI (the `bootstrap` communicator)
    only hands rank 0's NCCL id to the others; the data moves over NCCL. Each collective runs on
    the current CUDA stream and is polled (stream.done) against the deadline; on timeout the NCCL
    communicator is aborted so the GPU work does not hang. Not exercised on a GPU in our CI."""

    def __init__(self, bootstrap: Communicator, device_id: int | None = None, timeout: float | None = None) -> None:
        cupy = require("cupy", "gpu", "the NCCL communicator")
        nccl = require("cupy.cuda.nccl", "gpu", "the NCCL communicator (CuPy with NCCL)")
        if not getattr(nccl, "available", True):
            raise ImportError("CuPy was built without NCCL: install a CuPy wheel that ships it (cupy-cuda12x)")
        self.cupy, self.nccl, self.bootstrap = cupy, nccl, bootstrap
        self.rank, self.world_size = bootstrap.rank, bootstrap.world_size
        self.timeout = bootstrap.timeout if timeout is None else float(timeout)
        count = cupy.cuda.runtime.getDeviceCount()
        self.device_id = int(os.environ.get("MPI_LOCALRANKID", self.rank)) % count if device_id is None else device_id
        cupy.cuda.Device(self.device_id).use()
        uid = bootstrap.broadcast_object(nccl_id_to_json(nccl.get_unique_id()) if self.rank == 0 else None)
        self.comm = nccl.NcclCommunicator(self.world_size, nccl_id_from_json(uid), self.rank)

    def _check(self, array: Any, what: str) -> None:
        if not isinstance(array, self.cupy.ndarray) or not array.flags.c_contiguous:
            raise TypeError(f"NCCLCommunicator.{what}: expected a C-contiguous CuPy array, got {type(array).__name__}")

    def _launch(self, start: Callable[[int], None], result: Any, what: str) -> Work:
        stream = self.cupy.cuda.get_current_stream()
        start(stream.ptr)
        return Work(lambda: bool(stream.done), lambda: result, what, self.rank, self.timeout, self.comm.abort)

    def all_reduce_async(self, array: Any, op: str = "sum") -> Work:
        self._check(array, "all_reduce")
        self._check_op(op)
        dt, nop = getattr(self.nccl, nccl_dtype_name(array.dtype)), getattr(self.nccl, NCCL_OPS[op])
        return self._launch(lambda s: self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, dt, nop, s),
                            array, f"all_reduce({op}) of {array.size} {array.dtype} values")

    def broadcast_async(self, array: Any, root: int = 0) -> Work:
        self._check(array, "broadcast")
        self._check_root(root)
        dt = getattr(self.nccl, nccl_dtype_name(array.dtype))
        return self._launch(lambda s: self.comm.bcast(array.data.ptr, array.size, dt, root, s), array,
                            f"broadcast of {array.size} values from {root}")

    def all_gather_async(self, array: Any) -> Work:
        self._check(array, "all_gather")
        out = self.cupy.empty((self.world_size, *array.shape), dtype=array.dtype)
        dt = getattr(self.nccl, nccl_dtype_name(array.dtype))
        return self._launch(lambda s: self.comm.allGather(array.data.ptr, out.data.ptr, array.size, dt, s), out,
                            f"all_gather of {array.size} values")

    def barrier(self) -> None:
        self.all_reduce(self.cupy.zeros(1, dtype=self.cupy.float32))

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Python values travel over the MPI bootstrap communicator (NCCL carries device arrays)."""
        return self.bootstrap.all_gather_object(obj)


def get_communicator(device: str = "cpu", timeout: float | None = None) -> Communicator:
    """The communicator for this process: under mpiexec, MPI for CPU arrays and NCCL (bootstrapped over
    MPI) for a GPU device's arrays; without mpiexec, a LocalCommunicator (world size 1)."""
    if not launched_by_mpi():
        return LocalCommunicator()
    mpi = MPICommunicator(timeout=timeout)
    if tg.get_backend(device).xp is np:
        return mpi
    return NCCLCommunicator(mpi, timeout=timeout)  # GPU arrays: NCCL (an ImportError names the extra)


@contextlib.contextmanager
def abort_on_exception(comm: Communicator) -> Iterator[None]:
    """An exception escaping this block stops the whole job at once, with a message naming the rank
    (MPI_Abort), instead of leaving the other ranks waiting in their next collective. This is what
    mpi4py's `python -m mpi4py script.py` runner does for a whole script."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        if comm.world_size == 1:
            raise
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        comm.abort(f"{text}rank {comm.rank} of {comm.world_size} failed with {type(e).__name__}: {e}; "
                   "aborting every rank")


# ------------------------------------------------------------------------------ samplers
def shard_rows(n_rows: int, comm: Communicator) -> slice:
    """This rank's contiguous share of n_rows rows (n_rows must divide evenly: equal shards keep the
    average of the ranks' mean losses equal to the mean loss of the whole batch)."""
    if n_rows % comm.world_size:
        raise ValueError(f"a global batch of {n_rows} rows does not split evenly over {comm.world_size} ranks; "
                         f"choose a multiple of {comm.world_size}")
    per = n_rows // comm.world_size
    return slice(comm.rank * per, (comm.rank + 1) * per)


class DistributedSampler:
    """Indices of a dataset of `n` items for one rank, epoch by epoch.

    Every rank shuffles with the same generator (seeded from `seed` and the epoch), so the ranks
    agree on the order and each takes a disjoint slice of every global batch of `batch_size` items.
    The last incomplete global batch is dropped (unequal shards would change the average)."""

    def __init__(self, n: int, batch_size: int, comm: Communicator, seed: int = 0, shuffle: bool = True) -> None:
        if n < 1 or batch_size < 1 or batch_size > n:
            raise ValueError(f"DistributedSampler: need 1 <= batch_size ({batch_size}) <= n ({n})")
        self.n, self.batch_size, self.comm, self.seed, self.shuffle = n, batch_size, comm, seed, shuffle
        self.rows = shard_rows(batch_size, comm)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """A new shuffle each epoch (the same on every rank)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[np.ndarray]:
        order = np.arange(self.n)
        if self.shuffle:
            order = tg.Generator(self.seed + self.epoch).permutation(self.n)
        for b in range(len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size][self.rows]


# ------------------------------------------------------------------------------------ DDP
@dataclass
class Bucket:
    """Gradients reduced together: one flat buffer, one collective."""

    params: list[Parameter]
    offsets: list[int]
    buffer: Any  # flat array of the bucket's dtype on the parameters' device
    waiting: int = 0  # parameters whose gradient has not arrived in this backward
    work: Work | None = field(default=None, repr=False)


class DistributedDataParallel(Module):
    """Wrap a module so that backward averages its gradients over every rank of `comm`.

      * At construction rank 0's parameters are broadcast, so every copy starts the same (frozen
        ones too; nn modules keep no other buffers: their state_dict() is their parameters).
      * Trainable parameters are grouped into buckets of about `bucket_cap_mb` megabytes, in
        reverse order of `parameters()` (roughly the order backward produces their gradients).
      * A gradient hook on each parameter copies its gradient into its bucket; when a bucket is
        full its all-reduce starts (nonblocking) while backward goes on with the layers below.
        Buckets start in index order on every rank, so the ranks' collectives always match.
      * When the last gradient arrives, every bucket is waited for, divided by world_size and
        written back to `.grad`: after `loss.backward()` each rank holds the averaged gradient.
      * Inside `no_sync()` nothing is reduced: gradients accumulate locally, and the next backward
        outside it reduces the sum (gradient accumulation with one all-reduce per step).
    Every trainable parameter must receive a gradient in every synced backward. Every backward that
    reaches the parameters is reduced (tinygrad_lite.grad's too): wrap one that must stay local in
    `no_sync()`."""

    def __init__(self, module: Module, comm: Communicator, bucket_cap_mb: float = 25.0) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        self.module = module
        self.comm = comm
        self.bucket_cap_mb = bucket_cap_mb
        self._sync = True
        self._arrived: set[int] = set()  # ids of the parameters whose gradient the running backward gave
        self._broadcast_parameters()
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ValueError("DistributedDataParallel: the module has no trainable parameters")
        object.__setattr__(self, "_params", params)  # a plain list on purpose: module.parameters() owns them
        self.buckets = self._make_buckets(params, int(bucket_cap_mb * 2**20))
        self._where: dict[int, tuple[Bucket, int]] = {}
        for b in self.buckets:
            for p, off in zip(b.params, b.offsets):
                self._where[id(p)] = (b, off)
        self._handles = [p.register_hook(self._make_hook(p)) for p in params]

    # -------------------------------------------------------------------- setup
    def _broadcast_parameters(self) -> None:
        """Every rank takes rank 0's values (including frozen parameters)."""
        if self.comm.world_size == 1:
            return
        layout = [[k, list(t.shape), str(t.dtype)] for k, t in self.module.state_dict().items()]
        layouts = self.comm.all_gather_object(layout)  # every rank checks every rank: all raise together
        differ = [r for r, theirs in enumerate(layouts) if theirs != layouts[0]]
        if differ:
            raise DistributedError(f"DistributedDataParallel: the model's parameters (names, shapes, dtypes) on "
                                   f"rank(s) {differ} differ from rank 0's; every rank must build the same model")
        with tg.no_grad():
            for p in self.module.parameters():
                p.copy_(self.comm.broadcast(p.xp.ascontiguousarray(p.data).copy(), root=0))

    @staticmethod
    def _make_buckets(params: list[Parameter], cap_bytes: int) -> list[Bucket]:
        buckets: list[Bucket] = []
        current: list[Parameter] = []
        size = 0
        for p in reversed(params):  # backward makes the last layers' gradients first
            nbytes = p.size * p.data.dtype.itemsize
            if current and (size + nbytes > cap_bytes or p.dtype != current[0].dtype):
                buckets.append(DistributedDataParallel._bucket(current))
                current, size = [], 0
            current.append(p)
            size += nbytes
        buckets.append(DistributedDataParallel._bucket(current))
        return buckets

    @staticmethod
    def _bucket(params: list[Parameter]) -> Bucket:
        offsets = list(np.cumsum([0] + [p.size for p in params[:-1]]).tolist())
        buffer = params[0].xp.zeros(sum(p.size for p in params), dtype=params[0].dtype)
        return Bucket(params, offsets, buffer)

    # ------------------------------------------------------------------ forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._arrived:
            missing = [n for n, p in self.module.named_parameters()
                       if p.requires_grad and id(p) not in self._arrived]
            raise DistributedError(
                f"rank {self.comm.rank}: the last backward gave no gradient to {len(missing)} trainable "
                f"parameter(s) ({missing[:5]}), so the gradients were never averaged; freeze unused parameters "
                "(requires_grad_(False)) before wrapping the module")
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward inside this block accumulates gradients locally, without communicating."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    # ---------------------------------------------------------------- reduction
    def _make_hook(self, p: Parameter) -> Callable[[Tensor], Tensor | None]:
        def hook(grad: Tensor) -> Tensor | None:
            if not self._sync:
                return None
            return self._gradient_ready(p, grad)

        return hook

    def _gradient_ready(self, p: Parameter, grad: Tensor) -> Tensor | None:
        if not self._arrived:  # the first gradient of this backward
            for b in self.buckets:
                b.waiting, b.work = len(b.params), None
        bucket, off = self._where[id(p)]
        # The engine adds `grad` to `.grad` after this hook: the bucket takes the sum it will hold.
        total = grad.data if p.grad is None else p.grad.data + grad.data
        bucket.buffer[off : off + p.size] = total.reshape(-1)
        bucket.waiting -= 1
        self._arrived.add(id(p))
        self._launch_ready_buckets()
        if len(self._arrived) < len(self._params):
            return None
        # The last gradient: wait for every bucket, then hand out the averages. Every other
        # parameter's .grad is already final and is replaced; this one's is set by the engine
        # from what the hook returns, so its old .grad is cleared first.
        self._arrived = set()
        mine = None
        for b in self.buckets:
            assert b.work is not None
            b.work.wait()
            b.buffer /= self.comm.world_size
            for q, o in zip(b.params, b.offsets):
                avg = b.buffer[o : o + q.size].reshape(q.shape).copy()
                if q is p:
                    mine = avg
                else:
                    q.grad = Tensor._make(avg, False, q.device)
        p.grad = None
        return Tensor._make(mine, False, p.device)

    def _launch_ready_buckets(self) -> None:
        """Start the all-reduce of each full bucket, in index order (the same order on every rank);
        testing the running ones lets MPI make progress while backward computes."""
        for b in self.buckets:
            if b.work is None:
                if b.waiting:
                    break
                b.work = self.comm.all_reduce_async(b.buffer, "sum")
            else:
                b.work.test()

    def remove_hooks(self) -> None:
        """Unwrap: the module's parameters no longer average their gradients."""
        for h in self._handles:
            h.remove()
        self._handles = []
