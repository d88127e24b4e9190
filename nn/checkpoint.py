"""Checkpoints: everything needed to resume training exactly where it stopped.

One `.npz` file (a zip of NumPy arrays, readable without pickle) holds
    model/<name>         each parameter
    optim/<i>/<buffer>   each optimizer buffer (Adam moments, momentum), by parameter position
    __meta__             JSON: format and version, step, config, tokenizer, generator states,
                         optimizer hyperparameters, and a SHA-256 of every array
It is written to a temporary file and renamed into place, so a crash leaves the old checkpoint.
Loading checks the format, the zip's CRCs and every checksum; restoring checks the model's and
the optimizer's keys and shapes before copying anything, so a bad file changes nothing.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_lite import Generator
from tinygrad_lite.backend import as_numpy as tg_as_numpy

from .files import atomic_write_bytes
from .module import Module
from .optim import Optimizer
from .tokenizers import Tokenizer

FORMAT = "tinygrad_lite-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupted, truncated or does not fit the model."""


@dataclass
class Checkpoint:
    model: dict[str, np.ndarray]
    step: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None  # {"type", "param_groups", "state"}
    tokenizer: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=dict)  # generator name -> Generator.get_state()
    extra: dict[str, Any] = field(default_factory=dict)

    def get_tokenizer(self) -> Tokenizer | None:
        return Tokenizer.from_dict(self.tokenizer) if self.tokenizer is not None else None


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes()).hexdigest()


def save_checkpoint(path: str | Path, model: Module, optimizer: Optimizer | None = None, step: int = 0,
                    config: dict[str, Any] | None = None, tokenizer: Tokenizer | None = None,
                    generators: dict[str, Generator] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically; returns its path."""
    path = Path(path)
    arrays = {f"model/{k}": v.numpy().copy() for k, v in model.state_dict().items()}
    opt_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for i, buffers in sd["state"].items():
            for k, v in buffers.items():
                if hasattr(v, "shape"):  # a NumPy or CuPy buffer: saved as NumPy, loadable on any device
                    arrays[f"optim/{i}/{k}"] = tg_as_numpy(v)
                else:
                    scalars.setdefault(str(i), {})[k] = v
        opt_meta = {"type": type(optimizer).__name__, "param_groups": sd["param_groups"], "scalars": scalars}
    meta = {
        "format": FORMAT, "version": VERSION, "step": int(step), "config": config or {},
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
        "rng": {name: g.get_state() for name, g in (generators or {}).items()},
        "optimizer": opt_meta, "extra": extra or {},
        "sha256": {k: _digest(v) for k, v in arrays.items()},
    }
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint (nothing is applied to any model yet)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a folder; give its ckpt.npz file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every .npz file is a zip archive (np.load would try pickle)
            raise CheckpointError(f"{str(path)!r} is not a tglite checkpoint (not an .npz file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}  # reading every member checks the zip CRCs
    except ValueError as e:
        if "pickle" not in str(e):
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or truncated (ValueError: {e})") from e
        # NumPy suggests allow_pickle=True, which would run code from the file: never the fix here.
        raise CheckpointError(f"{str(path)!r} is not a tglite checkpoint (it holds Python objects)") from e
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or truncated ({type(e).__name__}: {e})") from e
    if "__meta__" not in files:
        raise CheckpointError(f"{str(path)!r} is not a tglite checkpoint (no __meta__ entry)")
    try:
        meta = json.loads(files.pop("__meta__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r}: unreadable metadata ({e})") from e
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r}: format {meta.get('format')!r} version "
                              f"{meta.get('version')!r}, expected {FORMAT!r} version {VERSION}")
    sums = meta.get("sha256", {})
    if set(sums) != set(files):
        raise CheckpointError(f"checkpoint {str(path)!r}: arrays {sorted(set(files) ^ set(sums))} are missing or extra")
    bad = [k for k, v in files.items() if _digest(v) != sums[k]]
    if bad:
        raise CheckpointError(f"checkpoint {str(path)!r}: checksum mismatch for {bad} (the file was modified)")
    model = {k[len("model/"):]: v for k, v in files.items() if k.startswith("model/")}
    optimizer = None
    if meta["optimizer"] is not None:
        om = meta["optimizer"]
        state: dict[int, dict[str, Any]] = {int(i): dict(s) for i, s in om["scalars"].items()}
        for k, v in files.items():
            if k.startswith("optim/"):
                _, i, name = k.split("/", 2)
                state.setdefault(int(i), {})[name] = v
        optimizer = {"type": om["type"], "param_groups": om["param_groups"], "state": state}
    return Checkpoint(model, meta["step"], meta["config"], optimizer, meta["tokenizer"], meta["rng"], meta["extra"])


def restore(ckpt: Checkpoint, model: Module, optimizer: Optimizer | None = None,
            generators: dict[str, Generator] | None = None) -> None:
    """Apply a loaded checkpoint. Every part is checked before any is applied."""
    try:
        model.check_state_dict(ckpt.model, strict=True)
    except KeyError as e:
        raise CheckpointError(f"the checkpoint does not fit this model:\n{e}") from e
    if optimizer is not None:
        if ckpt.optimizer is None:
            raise CheckpointError("the checkpoint has no optimizer state to restore")
        if ckpt.optimizer["type"] != type(optimizer).__name__:
            raise CheckpointError(f"the checkpoint's optimizer is {ckpt.optimizer['type']}, "
                                  f"not {type(optimizer).__name__}")
        try:
            optimizer.check_state_dict(ckpt.optimizer)
        except ValueError as e:
            raise CheckpointError(f"the checkpoint's optimizer state does not fit: {e}") from e
    missing_rng = sorted(set(generators or {}) - set(ckpt.rng))
    if missing_rng:
        raise CheckpointError(f"the checkpoint has no state for generator(s) {missing_rng}; it has {sorted(ckpt.rng)}")
    model.load_state_dict(ckpt.model)
    if optimizer is not None:
        optimizer.load_state_dict(ckpt.optimizer)  # type: ignore[arg-type]
    for name, g in (generators or {}).items():
        g.set_state(ckpt.rng[name])
