"""A policy that samples one reasoning step at a time: what beam search and DVTS drive.

It implements `rl.search.StepSampler` on `nn.Decoder`: every row's keys and values stay in the
decoder's KV cache, `keep` selects (and duplicates) rows of that cache, and the next step extends
the surviving prefixes without recomputing them. Rows end their step at different times ("7+5=12"
is shorter than "712+5=717"); a row that has ended its step waits, masked, while the others finish.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import tinygrad_lite as tg
from nn import GPT, Decoder
from nn.generate import filter_logits, sample_from

from .task import EOS_ID, NEWLINE_ID, PAD_ID, TOKENIZER


class PolicyStepSampler:
    """`StepSampler` over a policy GPT: sample_steps() adds one line to every unfinished row."""

    def __init__(self, policy: GPT, temperature: float = 1.0, max_new_tokens: int = 120,
                 generator: tg.Generator | None = None) -> None:
        if temperature <= 0:
            raise ValueError(f"PolicyStepSampler: temperature must be > 0, got {temperature}")
        self.policy, self.temperature, self.max_new_tokens = policy, temperature, max_new_tokens
        self.generator = generator if generator is not None else tg.Generator(0)
        self.tokens_generated = 0
        self._decoder: Decoder | None = None

    def begin(self, prompt: str, n_rows: int) -> None:
        ids = TOKENIZER.encode(prompt)
        budget = self.policy.config.block_size - len(ids)
        if budget < 1:
            raise ValueError(f"PolicyStepSampler: the prompt has {len(ids)} tokens, block_size is "
                             f"{self.policy.config.block_size}")
        self._budget = min(self.max_new_tokens, budget)
        self._prompt_len = len(ids)
        self._decoder = Decoder(self.policy, [ids] * n_rows, pad_id=PAD_ID)
        self._new = [[] for _ in range(n_rows)]  # generated tokens per row
        self._done = np.zeros(n_rows, dtype=bool)

    def _dec(self) -> Decoder:
        if self._decoder is None:
            raise RuntimeError("PolicyStepSampler: call begin(prompt, n_rows) first")
        return self._decoder

    def sample_steps(self) -> list[str]:
        dec = self._dec()
        B = dec.batch_size
        start = [len(t) for t in self._new]
        in_step = ~self._done  # a new array: the loop below narrows it
        while in_step.any():
            logp = filter_logits(dec.logits, self.temperature)
            nxt = sample_from(logp, self.generator)
            nxt = np.where(in_step, nxt, PAD_ID)
            for i in np.flatnonzero(in_step):
                self._new[i].append(int(nxt[i]))
            self.tokens_generated += int(in_step.sum())
            ended = in_step & ((nxt == NEWLINE_ID) | (nxt == EOS_ID))
            full = np.array([len(t) >= self._budget for t in self._new])
            self._done |= in_step & ((nxt == EOS_ID) | full)  # "$", or out of room (ends unfinished)
            feed = in_step & ~self._done  # a row that ended its line feeds its "\n" now, for the next step
            if feed.any():
                dec.append(nxt, active=feed)
            in_step &= ~(ended | full)
        return [TOKENIZER.decode(self._new[i][start[i]:]) for i in range(B)]

    def keep(self, rows: Sequence[int]) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self._dec().select(rows)
        self._new = [list(self._new[i]) for i in rows]
        self._done = self._done[rows]

    def completions(self) -> list[str]:
        return [TOKENIZER.decode(t) for t in self._new]

    def finished(self) -> list[bool]:
        return self._done.tolist()
