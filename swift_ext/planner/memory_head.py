"""The last pipeline stage's output head per task type: its parameters and the peak bytes per token of its logits
and loss. Pure arithmetic, used by memory.py's `_stage`.

ms-swift 4.6 builds the model with mcore-bridge, whose GPTModel picks the head from `task_type` (read in the
released wheels 1.6.3 -- ms-swift's floor -- and 1.6.5, mcore_bridge/model/gpt_model.py, the same in both;
mm_gpt_model.py's MultimodalGPTModel delegates to it):
- causal_lm: megatron-core's vocab-parallel output layer, cross entropy inside `_postprocess`;
- seq_cls (and `megatron rlhf --rlhf_type rm`, which swift/megatron/arguments/rlhf_args.py turns into seq_cls
  with num_labels 1): `OutputLayerLinear(hidden, num_labels, parallel_mode='duplicated')` (gpt_model.py:107),
  whole on every TP rank; no labels reach the model (gpt_model.py:449 keeps them for causal_lm only;
  swift/megatron/trainers/trainer.py forward_step pops them; reward_trainer.py never passes them), which returns
  the [b, s, num_labels] logits; the loss reads only the last token of each sequence (trainers/base.py
  get_last_tokens);
- embedding: `output_layer = None` (gpt_model.py:118); `_postprocess` returns the L2-normalised hidden states and
  trainers/embedding_trainer.py pools the last token;
- generative_reranker: the vocab output layer is built, but `_forward_generative_reranker` (gpt_model.py:384)
  never makes vocabulary logits: it takes the two output-weight rows of the "yes"/"no" tokens (the TP shard's,
  masked, when TP > 1), gathers the hidden states from the sequence-parallel region (TP > 1 with SP), runs
  F.linear to [s, b, 2], all-reduces that over TP and returns the difference of the two columns;
  trainers/reranker_trainer.py pools the last token. (`reranker` is not a Megatron task type: MegatronArguments'
  task_type choices leave it out.)
seq_cls and embedding force untie_embeddings_and_output_weights (megatron_args.py), so their head is never the
embedding. DPO, KTO and GRPO stay causal_lm: their policy forward passes the labels and gets per-token losses back.
"""

from __future__ import annotations

from swift_ext.planner.layout import Args
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.task_kind import num_labels, task_type


def head_params(shape: ModelShape, args: Args, command: str, tp: int, pp: int) -> float:
    """Output-layer parameters on a last-stage GPU. The vocab head is TP-sharded and, with tied embeddings on a
    single stage, is the embedding itself (nothing more); seq_cls's OutputLayerLinear is replicated on every TP
    rank (parallel_mode='duplicated'); embedding has none."""
    task = task_type(args, command)
    if task == "embedding":
        return 0.0
    if task == "seq_cls":
        return num_labels(args, command) * shape.hidden_size
    return shape.vocab_size * shape.hidden_size / tp if (not shape.tie_word_embeddings or pp > 1) else 0.0


def head_bytes_per_token(shape: ModelShape, args: Args, command: str, tp: int, ce_bytes: float) -> float:
    """Peak bytes per token of the head's logits and loss on the last stage (tokens of the micro-batch after CP).

    causal_lm: [tokens, V/TP] logits times the cross entropy's ce_bytes per logit (see memory.py `_stage`).
    seq_cls: the head's input, gathered from the sequence-parallel region and saved by the linear for its weight
    gradient, and that input's gradient (2 x 2h bf16); the bf16 [s, b, labels] logits, their [b, s, labels]
    contiguous transpose and the zeros get_last_tokens' indexing backward scatters into (3 x 2 x labels).
    embedding: the gathered hidden states F.normalize divides (kept for backward), the normalised copy and its
    [b, s, h] contiguous transpose, 3 x 2h bf16; the backward's buffers are the same size and come after them.
    generative_reranker: like seq_cls, the gathered input F.linear keeps for the weight gradient and its gradient
    (2 x 2h bf16); the bf16 [tokens, 2] logits, their all-reduced copy and the [tokens, 1] difference (2 x 5).
    No [tokens, V] tensor exists: only the two token rows of the output weight are multiplied."""
    task = task_type(args, command)
    h, v = shape.hidden_size, shape.vocab_size
    if task == "seq_cls":
        return 2 * 2 * h + 3 * 2 * num_labels(args, command)
    if task == "embedding":
        return 3 * 2 * h
    if task == "generative_reranker":
        return 2 * 2 * h + 2 * (2 + 2 + 1)
    return v / tp * ce_bytes
