"""Which modules a LoraConfig selects, and with which rank and α. The rules are PEFT's (0.21,
`peft.tuners.tuners_utils.check_target_module_exists` and `peft.utils.other.get_pattern_key`):

  target_modules / exclude_modules
      a list   selects a module whose dotted name equals an entry or ends with "." + entry
               (["c_attn"] selects "transformer.h.0.attn.c_attn");
      a string is a regular expression that must match the *whole* name (re.fullmatch), so
               "c_attn" alone selects nothing in a GPT: write ["c_attn"] or r".*\\.c_attn";
      "all-linear" every Linear except the LM head (`lm_head`, tied to the embedding in our GPT).
  layers_to_transform (with a list target_modules only)
      keeps the suffix-matched modules whose layer index is in the list. The index is the first
      number that follows a name segment: "transformer.h.3.mlp.c_fc" is in layer 3. With
      layers_pattern ("h") the number must follow that segment. An entry equal to the *full*
      name is taken as it is (PEFT checks the layer only for suffix matches).
  rank_pattern / alpha_pattern
      {regex: value}; a key applies to a module whose name ends with a match of the key that
      starts at a "." (re.match(rf"(.*\\.)?({key})$", name)); the first matching key wins,
      otherwise r / lora_alpha.
  modules_to_save
      names, matched like a list target_modules (equal, or ending with "." + entry). PEFT uses a
      plain endswith here; we keep the dot so "head" does not also select "lm_head".
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from nn import Linear, Module

from .adapter import LoRALinear
from .config import LoraConfig
from .modules_to_save import ModulesToSave
from .quant import NF4Linear

LINEAR_TYPES = (Linear, NF4Linear, LoRALinear)


def name_matches(name: str, entry: str) -> bool:
    """A list entry selects `name` if it is the name or its last dotted parts."""
    return name == entry or name.endswith("." + entry)


def _listed(name: str, entries: str | list[str]) -> bool:
    if isinstance(entries, str):
        return bool(re.fullmatch(entries, name))
    return any(name_matches(name, e) for e in entries)


def layer_index(name: str, layers_pattern: str | list[str] | None = None) -> int | None:
    """The layer a module belongs to: the first number after a name segment (after `layers_pattern`
    when given), as PEFT reads it; None if the name has no such number."""
    if not layers_pattern:
        match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", name)
    else:
        match = None
        for pattern in [layers_pattern] if isinstance(layers_pattern, str) else layers_pattern:
            match = re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", name)
            if match:
                break
    return int(match.group("idx")) if match else None


def pattern_value(pattern: dict[str, float], name: str, default: float) -> float:
    """rank_pattern / alpha_pattern lookup: the first key that matches the end of `name` at a dot."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def plain_modules(model: Module) -> list[tuple[str, Module]]:
    """Every module of `model`, except the insides of adapter layers and of saved-module wrappers."""
    wrappers = [n for n, m in model.named_modules() if isinstance(m, (LoRALinear, ModulesToSave)) and n]
    return [(n, m) for n, m in model.named_modules()
            if n and not any(n.startswith(w + ".") for w in wrappers)]


def saved_module_names(model: Module, config: LoraConfig) -> list[str]:
    """The modules that config.modules_to_save selects (each entry must select one at least)."""
    if not config.modules_to_save:
        return []
    modules = plain_modules(model)
    chosen = [n for n, _ in modules if any(name_matches(n, e) for e in config.modules_to_save)]
    unused = [e for e in config.modules_to_save if not any(name_matches(n, e) for n in chosen)]
    if unused:
        raise ValueError(f"apply_lora: modules_to_save entries {unused} match no module; the modules are "
                         f"{[n for n, _ in modules]}")
    chosen = [n for n in chosen if not any(n.startswith(c + ".") for c in chosen)]  # the outermost ones
    kinds = dict(modules)
    adapted = [n for n in chosen if isinstance(kinds[n], LoRALinear) or any(
        isinstance(m, LoRALinear) for _, m in kinds[n].named_modules())]
    if adapted:
        raise ValueError(f"apply_lora: modules_to_save {adapted} hold adapted layers; a module is either adapted "
                         "(target_modules) or trained whole (modules_to_save)")
    return chosen


def _selected(name: str, config: LoraConfig) -> bool:
    """PEFT's check_target_module_exists for one (already non-excluded) module name."""
    targets = config.target_modules
    if isinstance(targets, str):
        return bool(re.fullmatch(targets, name))
    if name in targets:
        return True
    if not any(name.endswith("." + t) for t in targets):
        return False
    wanted = config.layers_to_transform
    if wanted is None or wanted == []:
        return True
    index = layer_index(name, config.layers_pattern)
    return index is not None and (index == wanted if isinstance(wanted, int) else index in wanted)


def _is_output_head(name: str) -> bool:
    return name_matches(name, "lm_head")


def find_targets(model: Module, config: LoraConfig | str | list[str] = "all-linear") -> list[str]:
    """Dotted names of the Linear layers (plain or already adapted) that `config` selects, in model
    order. A string or list is taken as target_modules. Raises ValueError when a regex or a list
    entry selects no Linear, or when a selected module is not a Linear. Excluded modules and
    modules_to_save (with everything inside them) are left out, which may leave nothing."""
    if not isinstance(config, LoraConfig):
        config = LoraConfig(target_modules=config)
    modules = plain_modules(model)
    linears = [n for n, m in modules if isinstance(m, LINEAR_TYPES)]
    saved = set(saved_module_names(model, config))
    if config.target_modules == "all-linear":
        chosen = [n for n in linears if not _is_output_head(n)]
    else:
        chosen = [n for n, _ in modules if _selected(n, config)]
        _check_choice(config, chosen, linears, dict(modules))
    excluded = config.exclude_modules
    # as in PEFT, a saved module and everything inside it is not adapted
    inside_saved = [n for n in chosen if any(n == s or n.startswith(s + ".") for s in saved)]
    return [n for n in chosen if n not in inside_saved and not (excluded is not None and _listed(n, excluded))]


def _check_choice(config: LoraConfig, chosen: list[str], linears: list[str], modules: dict[str, Module]) -> None:
    """Clear errors for the ways a target_modules value can miss."""
    targets = config.target_modules
    not_linear = [f"{n} ({type(modules[n]).__name__})" for n in chosen if n not in linears]
    if not_linear:
        raise ValueError(f"apply_lora: target_modules selects modules that are not Linear layers: {not_linear}; "
                         f"LoRA adapts Linear layers, which are {linears}")
    if isinstance(targets, str):
        if not chosen:
            as_name = [n for n in linears if name_matches(n, targets)]
            hint = (f" It would select {as_name} as a name: pass the list [{targets!r}]." if as_name else "")
            raise ValueError(f"apply_lora: the regex target_modules={targets!r} matches no whole module name "
                             f"(a string must match the full dotted name, as in PEFT).{hint} "
                             f"The Linear layers are {linears}")
        return
    unused = [t for t in targets if not any(name_matches(n, t) for n in linears)]
    if unused:
        hint = " ('all-linear' is special only as a plain string)" if "all-linear" in unused else ""
        if any(ch in t for t in unused for ch in "*?[]()|\\"):
            hint += " (list entries are names, not patterns: pass one regex string for a pattern)"
        raise ValueError(f"apply_lora: target_modules entries {unused} match no Linear layer{hint}; "
                         f"the Linear layers are {linears}")


def layer_ranks(names: Iterable[str], config: LoraConfig) -> dict[str, tuple[int, float]]:
    """(r, α) for each target name, from rank_pattern / alpha_pattern (each key must apply somewhere)."""
    names = list(names)
    for what, pattern in (("rank_pattern", config.rank_pattern), ("alpha_pattern", config.alpha_pattern)):
        unused = [k for k in pattern if not any(re.match(rf"(.*\.)?({k})$", n) for n in names)]
        if unused:
            raise ValueError(f"apply_lora: {what} keys {unused} match none of the adapted layers {names}")
    return {n: (int(pattern_value(config.rank_pattern, n, config.r)),
                float(pattern_value(config.alpha_pattern, n, config.lora_alpha))) for n in names}
