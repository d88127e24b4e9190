"""The trained models that ship inside the package, so notebooks and the tour need no training.

    policy-small       the "1B": 0.20M parameters, 4,000 steps of supervised fine-tuning (the large
                       one's budget), in the middle of its learning jump
    policy-small-mid   another name for policy-small: GRPO starts from this mid-transition checkpoint
    policy-large       the "405B": 1.81M parameters, 9x the small one, 4,000 steps
    orm                outcome reward model (the small policy's architecture, a scalar head)
    prm                process reward model, trained on the checker's step labels

`tglite rl train-policy` and `tglite rl train-rm` reproduce them from their seeds; docs/rl.md
gives the commands and the measured curves.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nn import GPT

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
POLICIES = ("policy-small", "policy-small-mid", "policy-large")
REWARD_MODELS = ("orm", "prm")


ALIASES = {"policy-small-mid": "policy-small"}  # one file, two roles (see the module docstring)


def shipped_path(name: str) -> Path:
    if name not in POLICIES + REWARD_MODELS:
        raise ValueError(f"unknown shipped model {name!r}; choose one of {', '.join(POLICIES + REWARD_MODELS)}")
    path = CHECKPOINT_DIR / f"{ALIASES.get(name, name)}.npz"
    if not path.exists():
        raise FileNotFoundError(f"shipped model {name!r} is missing at {path}; reinstall the package, or train it "
                                f"with `tglite rl train-policy` / `tglite rl train-rm`")
    return path


def load_shipped_policy(name: str = "policy-small") -> tuple[GPT, dict[str, Any]]:
    from .policy import load_policy

    if name not in POLICIES:
        raise ValueError(f"{name!r} is not a shipped policy; choose one of {', '.join(POLICIES)}")
    return load_policy(shipped_path(name))


def load_shipped_reward_model(name: str = "prm") -> Any:
    from .reward import load_reward_model

    if name not in REWARD_MODELS:
        raise ValueError(f"{name!r} is not a shipped reward model; choose one of {', '.join(REWARD_MODELS)}")
    return load_reward_model(shipped_path(name))
