"""TP communication overlap (tp_comm_overlap) under ms-swift 4.6's Megatron trainer: the Transformer Engine
userbuffers it sets up have one fixed size, and ms-swift's micro-batches do not. Registered with layout.py's
rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config import is_on
from swift_ext.planner.warn_rules import lora_targets
from swift_ext.spec.gpus import GPUS


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
# [T, hidden_size] tensor"). The same call passes no bootstrap_backend, and Transformer Engine's initialize_ub
# (pytorch/module/base.py, public source) then bootstraps the userbuffers with MPI whenever
# torch.distributed.is_mpi_available() (PyTorch builds with MPI, as in NGC containers; else Gloo, then NCCL): under
# torchrun without an MPI launcher that stops at "An error occurred in MPI_Init_thread on a NULL communicator"
# (NVIDIA-NeMo/Megatron-Bridge#665; Bridge then defaulted its bootstrap to NCCL, PR #1395, which ms-swift 4.6 has no
# argument for). Both depend on the data and the container: one warning. Scope: engine megatron, tp_comm_overlap with
# sequence parallel at TP > 1 (otherwise ms-swift refuses it first: layout.py sequence_parallel).
def tp_comm_overlap_userbuffers(recipe, args, shape, lay, err, warn):
    if not args.bool("tp_comm_overlap") or lay.tp <= 1 or not is_on(args, "sequence_parallel"):
        return
    tokens = "packing_length" if args.has("packing_length") else "max_length"
    packed = "packing / padding_free pack a variable number of tokens into each micro-batch" if \
        args.bool("padding_free") or args.bool("packing") else "each micro-batch is padded only to its longest sample"
    warn("tp-comm-overlap", f"tp_comm_overlap: ms-swift sizes Transformer Engine's userbuffers for {tokens} x "
         f"micro_batch_size / CP tokens, but {packed}; TE asserts every micro-batch fills the buffer exactly ('Tried "
         "to copy an invalid tensor into a local chunk of a Userbuffers buffer'), so the first shorter micro-batch "
         "stops the run (verl-project/verl#5663, NVIDIA/Megatron-LM#1238); and ms-swift passes Transformer Engine no "
         "bootstrap backend, so on a PyTorch built with MPI (NGC containers) the userbuffers bootstrap through MPI, "
         "which under torchrun fails in MPI_Init_thread (NVIDIA-NeMo/Megatron-Bridge#665)", "tp_comm_overlap",
         hint="drop tp_comm_overlap, unless every sample (or pack) is exactly max_length tokens (pretraining text "
              "cut to length)")


# The LoRA layer parts whose adapters are built as tensor-parallel TE linears (column- or row-parallel); the experts'
# adapters are TE grouped linears (no userbuffer name asked), the router's and the vision tower's are not TE-parallel.
_TP_LINEAR_PARTS = ("attention", "mla", "linear_attention", "dense_mlp", "shared_expert", "mtp")


# Evidence: mcore-bridge 1.6.3 tuners/lora.py LoraParallelLinear.update_layer builds the adapters of a tensor-parallel
# base layer as TERowParallelLinear (lora_a, row-parallel base) or TEColumnParallelLinear (lora_b, column-parallel
# base) from kwargs {skip_bias_add, init_method, config, is_expert[, tp_group]} -- no tp_comm_buffer_name -- with the
# base layer's config; megatron-core 0.16.1 extensions/transformer_engine.py TELinear.__init__, under
# `config.tp_comm_overlap and parallel_mode != "duplicated"`, asserts "Buffer name should be set to configure
# communication overlap settings" (TE >= 1.0). ms-swift 4.6 copies tp_comm_overlap into that config
# (model/utils.py get_mcore_model_config) and swift/megatron/utils/utils.py prepare_adapter wraps the model after it
# is built, so a LoRA run with tp_comm_overlap stops when the first adapter is made. Report: modelscope/ms-swift#5240
# (Qwen3-235B-A22B-2507 LoRA, multi-node, TP communication overlap: AssertionError "Buffer name should be set to
# configure communication overlap settings" at lora.py update_layer, TERowParallelLinear). Scope: engine megatron,
# tuner_type lora / lora_llm, tp_comm_overlap reaching the config (sequence_parallel at TP > 1), target_modules that
# reach a tensor-parallel linear (attention, dense MLP, shared expert, Gated DeltaNet, MTP; not experts or router only).
def tp_comm_overlap_lora(recipe, args, shape, lay, err, warn):
    if not args.bool("tp_comm_overlap") or lay.tp <= 1 or not is_on(args, "sequence_parallel"):
        return
    parts = [part for part in lora_targets(recipe, args, shape) if part in _TP_LINEAR_PARTS]
    if not parts:
        return
    err("tp-comm-overlap", f"tp_comm_overlap with {args.str('tuner_type') or 'lora'}: mcore-bridge builds the LoRA "
        f"adapters of the {', '.join(parts)} layers as tensor-parallel TE linears without a userbuffer name, and "
        "megatron-core asserts 'Buffer name should be set to configure communication overlap settings' when the first "
        "adapter is made (modelscope/ms-swift#5240)", "tp_comm_overlap",
        hint="drop tp_comm_overlap for LoRA (or train full parameters)")


# Evidence: Transformer Engine pytorch/module/base.py initialize_ub (public source, not installed here; ms-swift 4.6
# calls it from megatron_lm_utils.initialize_tp_communicators when tp_comm_overlap): `if not
# tex.device_supports_multicast(): assert bool(int(os.getenv("UB_SKIPMC", "0"))), "CUDA device, driver and/or toolkit
# version does not support comm+GEMM overlap with CUDA Multicast. Launch app with UB_SKIPMC=1 to try CUDA IPC
# instead."` CUDA multicast objects need NVSwitch-connected Hopper or later (NVLS): no Ampere, Ada or Volta card has
# them, whatever the driver. Reports: NVIDIA/TransformerEngine#985 (8 x A800, Megatron-LM --tp-comm-overlap: core
# dump at userbuffer setup; the maintainer: multicast needs driver 535+, "run this with UB_SKIPMC=1 in order to fall
# back onto the older CUDA IPC based implementation"), #991 (H800 on driver 525: "CUDA Error: operation not supported"
# creating the communicator). Scope: engine megatron, tp_comm_overlap reaching the config (SP at TP > 1), launch.gpu
# below compute capability 9.0, the recipe env without UB_SKIPMC=1 (on sm90+ the driver decides: not judged).
def tp_comm_overlap_multicast(recipe, args, shape, lay, err, warn):
    if not args.bool("tp_comm_overlap") or lay.tp <= 1 or not is_on(args, "sequence_parallel"):
        return
    gpu = recipe.launch.gpu
    if gpu not in GPUS or GPUS[gpu].compute_capability >= (9, 0):
        return
    skip = str(recipe.env.get("UB_SKIPMC", "0")).strip()
    if skip.isdigit() and int(skip):
        return
    cc = GPUS[gpu].compute_capability
    err("tp-comm-overlap", f"tp_comm_overlap on {gpu} ({cc[0]}.{cc[1]}): Transformer Engine's userbuffers use CUDA "
        "multicast, which only NVSwitch-connected Hopper and later have, and initialize_ub asserts 'does not support "
        "comm+GEMM overlap with CUDA Multicast. Launch app with UB_SKIPMC=1' (NVIDIA/TransformerEngine#985, A800)",
        "tp_comm_overlap", hint="env: {UB_SKIPMC: '1'} (CUDA IPC userbuffers), or drop tp_comm_overlap")


# Evidence: ms-swift 4.6 swift/megatron/utils/megatron_lm_utils.py initialize_tp_communicators (called from
# trainers/base.py setup whenever args.tp_comm_overlap): on Transformer Engine >= 2.7 it evaluates `args.fp8 is not
# None and args.first_last_layers_bf16 and ...`, and MegatronArguments (swift/megatron/arguments/megatron_args.py) has
# no first_last_layers_bf16 field -- a Megatron-LM argument ms-swift copied the line from without the field -- so with
# fp8_format set (args.fp8 = fp8_format, __post_init__) the run stops with AttributeError before the first step.
# Below TE 2.7 the other branch (use_fp8) runs. Found in the source (no public report). Scope: engine megatron,
# tp_comm_overlap reaching the trainer (SP at TP > 1: otherwise the rules above and layout.py's sequence_parallel
# speak first), fp8_format set; an error where the target Transformer Engine is known to be >= 2.7 (declared, or
# installed), a warning where it is not known.
def tp_comm_overlap_fp8(recipe, args, shape, lay, err, warn, versions):
    if not args.bool("tp_comm_overlap") or lay.tp <= 1 or not is_on(args, "sequence_parallel"):
        return
    if not args.str("fp8_format"):
        return
    te = versions.get("transformer-engine")
    if te is not None and te < (2, 7):
        return
    what = ("tp_comm_overlap with fp8_format: on Transformer Engine >= 2.7 ms-swift 4.6's initialize_tp_communicators "
            "reads args.first_last_layers_bf16, which MegatronArguments does not have, and stops with AttributeError "
            "before the first step")
    hint = "drop tp_comm_overlap for FP8 runs on ms-swift 4.6 (or train in bf16 with it)"
    if te is None:
        warn("tp-comm-overlap-fp8", what + " (the training machine's transformer-engine version is unknown here: "
             "declare it with --target-versions transformer-engine=X)", "tp_comm_overlap", hint=hint)
    else:
        err("tp-comm-overlap-fp8", f"{what} ({versions.describe('transformer-engine')})", "tp_comm_overlap", hint=hint)


COMM_OVERLAP_RULES = [tp_comm_overlap_userbuffers, tp_comm_overlap_lora, tp_comm_overlap_multicast]
COMM_OVERLAP_VERSIONED_RULES = [tp_comm_overlap_fp8]
