"""TP communication overlap (tp_comm_overlap) under ms-swift 4.6's Megatron trainer: the Transformer Engine
userbuffers it sets up have one fixed size, and ms-swift's micro-batches do not. Registered with layout.py's
rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config import is_on


# Evidence: ms-swift 4.6 swift/megatron/trainers/base.py (setup: `if args.tp_comm_overlap:
# initialize_tp_communicators(args, self.config)`) and swift/megatron/utils/megatron_lm_utils.py
# initialize_tp_communicators: te_module.base.initialize_ub(shape=[(args.seq_length * args.micro_batch_size) //
# args.context_parallel_size, hidden_size]), seq_length = packing_length or max_length (megatron_base_args.py). The
# batches come from Template._data_collator with padding_to = get_padding_to(args) (trainers/base.py
# _get_data_collator): padded to the longest sample rounded up to TP*CP (*16 / 32 / 128 for FP8), never to max_length,
# and under padding_free (ms-swift's default; packing forces it) the packed THD micro-batch holds as many tokens as its
# samples do. megatron-core 0.16.1 extensions/transformer_engine.py hands TE's qkv/proj/fc1/fc2 linears ub_overlap_ag /
# ub_overlap_rs when config.tp_comm_overlap, and Transformer Engine's CommOverlap*::copy_into_buffer
# (transformer_engine/pytorch/csrc/extensions/comm_gemm_overlap.cpp) checks the micro-batch fills the buffer exactly:
# "Tried to copy an invalid tensor into a local chunk of a Userbuffers buffer (input_size=..., local_ubuf_size=...)".
# So the first micro-batch with fewer tokens than seq_length * micro_batch_size stops the run -- in practice every
# fine-tuning set; pretraining data cut to exactly max_length per sample (or per pack) runs. The data decides: a
# warning. Reports: verl-project/verl#5663 (Qwen3-235B SFT with TE userbuffers sized seq_length * micro_batch: "tensor
# shape mismatch" on packed, variable-length micro-batches), NVIDIA/Megatron-LM#1238 (userbuffers sized
# seq_length * micro_batch_size, THD with variable lengths, open), NVIDIA/TransformerEngine#3564 (feature request:
# "The TP-overlap UserBuffer is initialized with a fixed shape ... they cannot directly operate on a smaller
# [T, hidden_size] tensor"). Scope: engine megatron, tp_comm_overlap with sequence parallel at TP > 1 (otherwise
# ms-swift refuses it first: layout.py sequence_parallel).
def tp_comm_overlap_userbuffers(recipe, args, shape, lay, err, warn):
    if not args.bool("tp_comm_overlap") or lay.tp <= 1 or not is_on(args, "sequence_parallel"):
        return
    tokens = "packing_length" if args.has("packing_length") else "max_length"
    packed = "packing / padding_free pack a variable number of tokens into each micro-batch" if \
        args.bool("padding_free") or args.bool("packing") else "each micro-batch is padded only to its longest sample"
    warn("tp-comm-overlap", f"tp_comm_overlap: ms-swift sizes Transformer Engine's userbuffers for {tokens} x "
         f"micro_batch_size / CP tokens, but {packed}; TE asserts every micro-batch fills the buffer exactly ('Tried "
         "to copy an invalid tensor into a local chunk of a Userbuffers buffer'), so the first shorter micro-batch "
         "stops the run (verl-project/verl#5663, NVIDIA/Megatron-LM#1238)", "tp_comm_overlap",
         hint="drop tp_comm_overlap, unless every sample (or pack) is exactly max_length tokens (pretraining text "
              "cut to length)")


COMM_OVERLAP_RULES = [tp_comm_overlap_userbuffers]
