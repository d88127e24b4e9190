"""`LoraConfig`: everything `apply_lora` needs to know, in one validated dataclass.

The field names are PEFT's (`peft.LoraConfig`) wherever the concept is the same, so a PEFT user
can write what they know:

    config = LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn", "c_proj"],
                        layers_to_transform=[0, 1], rank_pattern={"c_proj": 4}, bias="lora_only")
    apply_lora(model, config)

The defaults are PEFT's too (r=8, lora_alpha=8, bias="none"), except `target_modules`, which
defaults to "all-linear" (PEFT looks up a default per model type; we have one model family).
Our own fields: `method` (which family member), `init`, `detach_norm` (DoRA), `vera_seed` and
`d_init` (VeRA). How the names in target_modules, rank_pattern, ... select modules: lora/targets.py.

Every value is checked when the config is built, so a typo fails here, with a message naming
the field, the value and what is allowed, not half-way through wrapping a model.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .adapter import INITS

METHODS = ("lora", "rslora", "dora", "pissa", "olora", "qlora", "vera")
BIASES = ("none", "all", "lora_only")


def _regex(what: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"LoraConfig: {what} {pattern!r} is not a valid regular expression ({e}); a string is "
                         "a regex that must match the whole module name (PEFT's rule), e.g. r'.*\\.c_attn'") from None


def _names(what: str, value: Any, allow_regex: bool) -> str | list[str]:
    """A regex string (when allowed) or a list of non-empty names; tuples and sets become lists."""
    if isinstance(value, str):
        if not allow_regex:
            raise TypeError(f"LoraConfig: {what} must be a list of module names, got the string {value!r}; "
                            f"write [{value!r}]")
        _regex(what, value)
        return value
    if not isinstance(value, (Sequence, set, frozenset)) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"LoraConfig: {what} must be a regex string or a list of non-empty names, got {value!r}")
    if not value:
        raise ValueError(f"LoraConfig: {what} is empty; name at least one module")
    return sorted(value) if isinstance(value, (set, frozenset)) else list(value)


@dataclass
class LoraConfig:
    """What to adapt and how (see the module docstring; field names as in PEFT's LoraConfig)."""

    r: int = 8
    lora_alpha: float = 8.0
    target_modules: str | list[str] = "all-linear"
    exclude_modules: str | list[str] | None = None
    lora_dropout: float = 0.0
    use_rslora: bool = False
    use_dora: bool = False
    layers_to_transform: int | list[int] | None = None
    layers_pattern: str | list[str] | None = None
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    modules_to_save: list[str] | None = None
    bias: str = "none"
    method: str = "lora"
    init: str = "uniform"
    detach_norm: bool = True
    vera_seed: int = 0
    d_init: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ValueError(f"LoraConfig: r must be a positive int, got {self.r!r}")
        if not isinstance(self.lora_alpha, (int, float)) or not math.isfinite(self.lora_alpha):
            raise ValueError(f"LoraConfig: lora_alpha must be a finite number, got {self.lora_alpha!r}")
        self.lora_alpha = float(self.lora_alpha)
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"LoraConfig: lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.method not in METHODS:
            raise ValueError(f"LoraConfig: unknown method {self.method!r}; choose one of {METHODS}")
        if self.init not in INITS:
            raise ValueError(f"LoraConfig: init must be one of {INITS}, got {self.init!r}")
        if self.bias not in BIASES:
            raise ValueError(f"LoraConfig: bias must be one of {BIASES}, got {self.bias!r}")
        # PEFT's use_dora / use_rslora flags and our method name say the same thing: keep them in step.
        if self.use_dora and self.method not in ("lora", "dora"):
            raise ValueError(f"LoraConfig: use_dora=True contradicts method={self.method!r}; use one of them")
        if self.use_dora or self.method == "dora":
            self.method, self.use_dora = "dora", True
        if self.method == "rslora":
            self.use_rslora = True
        elif self.use_rslora and self.method == "lora":
            self.method = "rslora"  # the same adapter, whichever of the two names asked for it
        self.target_modules = _names("target_modules", self.target_modules, allow_regex=True)
        if self.exclude_modules is not None:
            self.exclude_modules = _names("exclude_modules", self.exclude_modules, allow_regex=True)
        if self.modules_to_save is not None:
            self.modules_to_save = _names("modules_to_save", self.modules_to_save, allow_regex=False)
        self._check_layers()
        self._check_patterns()

    def _check_layers(self) -> None:
        # PEFT's rule: the layer filter only applies to a list of names, never to a regex string.
        if isinstance(self.target_modules, str) and (self.layers_to_transform is not None
                                                     or self.layers_pattern is not None):
            raise ValueError("LoraConfig: layers_to_transform / layers_pattern need target_modules as a list of "
                             f"names (e.g. ['c_attn', 'c_proj', 'c_fc']), not the string {self.target_modules!r}")
        if self.layers_pattern is not None and self.layers_to_transform is None:
            raise ValueError("LoraConfig: layers_pattern is given but layers_to_transform is not; give both")
        layers = self.layers_to_transform
        if layers is not None:
            items = [layers] if isinstance(layers, int) else layers
            if not isinstance(items, (list, tuple)) or not all(
                    isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items):
                raise ValueError(f"LoraConfig: layers_to_transform must be an int or a list of ints >= 0, "
                                 f"got {layers!r}")
            self.layers_to_transform = layers if isinstance(layers, int) else list(layers)
        if isinstance(self.layers_pattern, str):
            _regex("layers_pattern", self.layers_pattern)
        elif self.layers_pattern is not None:
            self.layers_pattern = list(_names("layers_pattern", self.layers_pattern, allow_regex=False))

    def _check_patterns(self) -> None:
        for what, pattern in (("rank_pattern", self.rank_pattern), ("alpha_pattern", self.alpha_pattern)):
            if not isinstance(pattern, dict):
                raise TypeError(f"LoraConfig: {what} must be a dict {{module regex: value}}, got {pattern!r}")
            for key, value in pattern.items():
                _regex(f"{what} key", key)
                bad_rank = what == "rank_pattern" and (isinstance(value, bool) or not isinstance(value, int)
                                                       or value <= 0)
                bad_alpha = what == "alpha_pattern" and (not isinstance(value, (int, float))
                                                         or not math.isfinite(value))
                if bad_rank or bad_alpha:
                    raise ValueError(f"LoraConfig: {what}[{key!r}] = {value!r} is not a "
                                     f"{'positive int' if what == 'rank_pattern' else 'finite number'}")
            if pattern and self.method == "vera":
                raise ValueError(f"LoraConfig: {what} does not apply to VeRA (one shared random pair of rank r "
                                 "serves every layer)")

    @classmethod
    def from_keywords(cls, target_modules: str | Sequence[str] = "all-linear", r: int = 8, alpha: float = 16.0,
                      dropout: float = 0.0, method: str = "lora", use_rslora: bool = False, init: str = "uniform",
                      detach_norm: bool = True, vera_seed: int = 0, d_init: float = 0.1,
                      exclude: str | Sequence[str] | None = None) -> LoraConfig:
        """The config of the short keyword form `apply_lora(model, targets, r=8, alpha=16, ...)`: our
        older names (alpha, dropout, exclude) and its defaults (alpha=16), kept so that existing calls
        compute what they always did."""
        return cls(r=r, lora_alpha=alpha, target_modules=target_modules, exclude_modules=exclude,
                   lora_dropout=dropout, use_rslora=use_rslora, method=method, init=init,
                   detach_norm=detach_norm, vera_seed=vera_seed, d_init=d_init)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (saved next to adapter weights)."""
        return dataclasses.asdict(self)
