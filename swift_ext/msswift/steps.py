"""Optimizer steps per epoch, counted the way each engine's data loader and trainer count them.

engine swift (transformers Trainer over ms-swift's BatchSamplerShard, swift/dataloader/shard.py):
  each rank takes rows // world samples; its loader yields ceil(those / batch) micro-batches, or the floor
  when dataloader_drop_last (ms-swift's RLHF arguments force it on); Trainer.set_initial_training_values
  makes ceil(micro-batches / gradient_accumulation_steps) updates of them: the last partial batch and
  the last partial accumulation both make a step.
engine megatron (MegatronArguments.init_iters): rows // (micro_batch x dp) x (micro_batch x dp) samples,
  x num_generations for GRPO, then floor-divided by global_batch_size: the last partial batch is dropped.
With packing the rows are packs (ms-swift packs before the loader sees them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Batching:
    """What the loaders need: everything resolved (ms-swift's defaults and coercions already applied)."""

    engine: str  # megatron | swift
    micro_batch_size: int  # per_device_train_batch_size (swift) / micro_batch_size (megatron)
    data_parallel: int  # ranks that read different data
    gradient_accumulation_steps: int = 1  # engine swift
    global_batch_size: int | None = None  # engine megatron
    drop_last: bool = False  # engine swift: dataloader_drop_last
    num_generations: int = 1  # megatron GRPO: each prompt sample counts num_generations times

    @property
    def samples_per_step(self) -> int:
        if self.engine == "megatron":
            return self.global_batch_size or 1
        return self.micro_batch_size * self.gradient_accumulation_steps * self.data_parallel


def steps_per_epoch(rows: int, b: Batching) -> int:
    """Optimizer steps one pass over `rows` training samples (or packs) makes."""
    if rows <= 0:
        return 0
    if b.engine == "megatron":
        unit = b.micro_batch_size * b.data_parallel
        return rows // unit * unit * b.num_generations // b.samples_per_step
    per_rank = rows // max(b.data_parallel, 1)
    batches = per_rank // b.micro_batch_size if b.drop_last else math.ceil(per_rank / b.micro_batch_size)
    if batches == 0:
        return 0
    # transformers: max(len // accum + (len % accum > 0), 1)
    return max(math.ceil(batches / b.gradient_accumulation_steps), 1)


def total_steps(rows: int, b: Batching, epochs: float, max_steps: int | None = None) -> int:
    """The run's length: max_steps (train_iters) when set (engine swift: when > 0); otherwise
    transformers rounds epochs x steps/epoch up, Megatron rounds the samples down (init_iters)."""
    if max_steps is not None and max_steps > 0:
        return max_steps
    if b.engine == "megatron":
        unit = b.micro_batch_size * b.data_parallel
        return int(rows // unit * unit * b.num_generations * epochs // b.samples_per_step)
    return math.ceil(epochs * steps_per_epoch(rows, b))
