"""mcore-bridge 1.6.3's own refusals when ms-swift 4.6 builds the model (issue #21's audit of the released wheel):
LoRA on experts with expert tensor parallelism, and the ModelConfig fields mcore-bridge parses itself. Skipped under
bridge_backend megatron-bridge. Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

import re

from swift_ext.planner.mcore_config import config_value, flag, is_on
from swift_ext.planner.model_shape import ModelShape


# Evidence: mcore-bridge 1.6.3 tuners/lora.py:133 LoraParallelLinear.__init__ (1.6.5 :150): a LoRA wrapper around an
# expert linear (is_expert_layer: the grouped experts, or the local experts' linears ModelLoader._set_linear_is_expert
# marks) raises "Currently, LoRA does not support ETP." when get_expert_tensor_parallel_world_size() > 1 -- the
# expert tensor-parallel group megatron-core initialises from ms-swift's expert_tensor_parallel_size argument
# (swift/megatron/utils/megatron_lm_utils.py initialize_megatron). ms-swift 4.6 wraps the Megatron model with its
# LoRA tuner, which dispatches Megatron linears to that class, when the model is set up on every rank. Only the
# experts count: LoRA on attention (or a dense model, where get_mcore_model_config forces ETP 1) never asks.
# Every published LoRA-on-MoE setup in tests/fixtures/working runs expert_tensor_parallel_size 1.
def lora_expert_tensor_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe or lay.etp <= 1 or args.str("tuner_type") not in ("lora", "lora_llm"):
        return
    if args.str("bridge_backend") == "megatron-bridge":
        return  # ms-swift's Megatron-Bridge backend loads no LoRA (MegatronBridgeBackend: "LoRA / PEFT ... not yet")
    from swift_ext.planner.warn_rules import lora_targets  # warn_rules reads this module's neighbours

    targets = lora_targets(recipe, args, shape)
    if "experts" not in targets:
        return
    err("lora-etp", f"LoRA on the routed experts ({', '.join(targets['experts'])} through target_modules) with "
        f"expert_tensor_parallel_size {lay.etp}: mcore-bridge's LoRA layer refuses expert tensor parallelism "
        "(\"Currently, LoRA does not support ETP.\") when the adapters are added on every rank",
        "expert_tensor_parallel_size",
        hint="expert_tensor_parallel_size: 1 (split the experts with expert_model_parallel_size), or leave the "
             "experts out of target_modules (e.g. [linear_qkv, linear_proj])")


# mcore-bridge's ModelConfig._format_config (1.6.3 config/model_config.py:381; 1.6.5 alike) parses these fields
# from what get_mcore_model_config hands it -- for these, only megatron_extra_kwargs (none is an ms-swift 4.6
# argument) or the parser's own values: window_size with tuple_type (None, a tuple, or a "a,b" string: :109-112),
# the others with moe_freq_type / no_rope_freq_type (an int, or a string: an integer, or a list expression of
# digits, brackets, parentheses, commas, + and * that it evals: :20-28, :45-53, :90-98). Anything else (a YAML list,
# a boolean, a fraction) is an AssertionError, a string with other characters "Invalid pattern", when the model
# config is built on every rank. no_rope_freq / linear_attention_freq also take None.
PATTERN_FIELDS = ("moe_layer_freq", "window_attn_skip_freq", "no_rope_freq", "linear_attention_freq")
_PATTERN_CHARS = frozenset("0123456789,[]()+*")


def _pattern_problem(name: str, value) -> str | None:
    """Why mcore-bridge's ModelConfig refuses `value` for the pattern field `name`, or None when it takes it."""
    if name == "window_size":
        if value is None or (isinstance(value, str) and _int_list(value.strip("()"))):
            return None
        return ("tuple_type takes a string of integers (\"4095,0\")" if isinstance(value, str) else
                f"tuple_type asserts a string, got {type(value).__name__}")
    if value is None and name in ("no_rope_freq", "linear_attention_freq"):
        return None
    if type(value) is int:
        return None
    if not isinstance(value, str):
        return f"it asserts an int or a string, got {type(value).__name__}"
    if "[" not in value:
        return None if _is_int(value) else "int() of a string that is no integer"
    if set(value) - _PATTERN_CHARS:
        return f"\"Invalid pattern\": only digits, [ ] ( ) , + * are allowed, not {sorted(set(value) - _PATTERN_CHARS)}"
    bound = 1
    for number in re.findall(r"\d+", value):
        bound *= max(int(number), 1)  # every repeat count multiplies at most: the largest list the eval could build
    if "**" in value or bound > MAX_PATTERN_ENTRIES:
        return None  # a power or a huge repeat: not evaluated here; mcore-bridge evaluates it
    try:
        result = eval(value, {"__builtins__": {}}, {})  # only digits, brackets, commas, + and * reach here
    except Exception as exc:  # noqa: BLE001 -- any failure is what mcore-bridge's own eval raises
        return f"eval of the pattern fails ({type(exc).__name__})"
    return None if isinstance(result, list) else f"the pattern evaluates to a {type(result).__name__}, not a list"


def _is_int(text: str) -> bool:
    """int() takes it, as mcore-bridge's parsers call int() (so "1_0" is 10, and "²" is no integer)."""
    try:
        int(text)
    except ValueError:
        return False
    return True


def _int_list(text: str) -> bool:
    return all(_is_int(part) for part in text.split(","))


# Above this many entries a pattern is not evaluated here (it could exhaust memory in `plan`, which runs the rules
# for every candidate of --search); mcore-bridge evaluates it on the cluster. Far above any model's layer count.
MAX_PATTERN_ENTRIES = 1_000_000


# Evidence: mcore-bridge 1.6.3 config/model_config.py ModelConfig.__post_init__ :343 (quick_geglu: `assert not
# self.swiglu`; 1.6.5 :389), :353 (mtp_shared_weights: `assert self.mtp_num_layers is not None`; 1.6.5 :399) and
# _format_config with the parsers at :20-112 (above). ms-swift 4.6 get_mcore_model_config copies the argument
# mtp_shared_weights (default False) and mtp_num_layers by name and applies megatron_extra_kwargs last; swiglu is
# mcore-bridge's default (True) unless the parser turns it off (gpt_oss, gemma4, nemotron_h), and quick_geglu is no
# ms-swift argument. All fail when the model config is built on every rank, after the job started.
# The model types whose MLP mcore-bridge 1.6.3's config/parser.py hf_to_mcore_config builds without SwiGLU
# (swiglu False: gpt_oss :237, gemma4 / gemma4_unified :224, nemotron_h :330).
PARSER_SWIGLU_OFF = frozenset({"gpt_oss", "gemma4", "gemma4_unified", "nemotron_h"})


def mcore_bridge_model_config(recipe, args, shape: ModelShape, lay, err, warn):
    if args.str("bridge_backend") == "megatron-bridge":
        return
    extra = args.mapping("megatron_extra_kwargs")
    if is_on(args, "mtp_shared_weights") and config_value(args, "mtp_num_layers") is None:
        err("mcore-bridge-config", "mtp_shared_weights without mtp_num_layers: mcore-bridge's ModelConfig asserts "
            "mtp_num_layers is set (it unrolls the one shared MTP layer mtp_num_layers times)",
            flag(args, "mtp_shared_weights"), hint="mtp_num_layers: 1 (or more), or mtp_shared_weights: false")
    if is_on(args, "quick_geglu"):  # no ms-swift argument: megatron_extra_kwargs only
        # gpt-oss is told apart by its learnable softmax too: InternVL3.5-GPT-OSS's outer model_type is internvl
        swiglu = config_value(args, "swiglu",
                              shape.model_type not in PARSER_SWIGLU_OFF and shape.softmax_type != "learnable")
        if swiglu is True:  # a swiglu that is no boolean is the megatron-extra-kwargs type rule's to report
            err("mcore-bridge-config", f"megatron_extra_kwargs turns quick_geglu on for {shape.name or 'the model'}, "
                "whose MLP is SwiGLU: mcore-bridge's ModelConfig asserts not swiglu with quick_geglu (and the "
                "checkpoint's MLP weights are SwiGLU's)", "megatron_extra_kwargs",
                hint="drop quick_geglu from megatron_extra_kwargs")
    for name in ("window_size", *PATTERN_FIELDS):
        if name not in extra:
            continue
        problem = _pattern_problem(name, extra[name])
        if problem:
            err("mcore-bridge-config", f"megatron_extra_kwargs gives {name} {extra[name]!r}: mcore-bridge's "
                f"ModelConfig parses it when the model is built and refuses it ({problem})", "megatron_extra_kwargs",
                hint=f"megatron_extra_kwargs: {{{name}: " + ('"4095,0"}' if name == "window_size" else
                                                            '"[1]*N" or an integer}') + " (a quoted string)")


# Evidence: mcore-bridge 1.6.3 tuners/lora.py LoraParallelLinear.forward runs the adapters (lora_A: in -> rank,
# lora_B: rank -> out, Transformer Engine linears) outside FP8 autocast only when config.fp8_param ("LoRA A/B weights
# are rank-sized ... which violates TE's FP8 GEMM divisibility rules; never run them under fp8 autocast") -- and
# ms-swift 4.6 sets fp8_param from fp8_param_gather (model/utils.py get_mcore_model_config). Otherwise they run inside
# megatron-core's FP8 context (fp8_format set), and Transformer Engine's _Linear.forward asserts
# assert_dim_for_fp8_exec(inputmat, weight): "FP8 execution requires the product of all dimensions except the last to
# be divisible by 8 and the last dimension to be divisible by 16" (pytorch/utils.py; public source, not installed
# here) -- lora_B's input [tokens, rank] and weight [out, rank] end in the rank. So a rank that is not a multiple of 16
# (ms-swift's default lora_rank is 8) stops the first forward; ms-swift's own FP8 LoRA example
# (examples/megatron/fp8/lora.sh) sets fp8_param_gather and rank 16. Report: NVIDIA/TransformerEngine#1422 (the same
# assertion for a layer whose width is not a multiple of 16; the maintainer: pad, or keep such small layers out of
# FP8). Scope: engine megatron, bridge_backend mcore-bridge, fp8_format set, tuner_type lora / lora_llm,
# fp8_param_gather off.
def lora_rank_under_fp8(recipe, args, shape: ModelShape, lay, err, warn):
    if args.str("tuner_type") not in ("lora", "lora_llm") or args.str("bridge_backend") == "megatron-bridge":
        return
    if not args.str("fp8_format") or args.bool("fp8_param_gather"):
        return
    rank = args.int("lora_rank")
    if rank is None or rank % 16 == 0:
        return
    stated = "" if args.has("lora_rank") else " (ms-swift's default)"
    err("lora-fp8", f"lora_rank {rank}{stated} under FP8 compute (fp8_format {args.str('fp8_format')}) without "
        "fp8_param_gather: mcore-bridge runs the LoRA adapters inside FP8 autocast, and Transformer Engine's FP8 GEMM "
        f"needs the last dimension divisible by 16 (lora_B takes [tokens, {rank}]): 'FP8 execution requires ... the "
        "last dimension to be divisible by 16' at the first forward", "lora_rank",
        hint="lora_rank a multiple of 16, or fp8_param_gather: true (mcore-bridge then runs the adapters outside FP8, "
             "as ms-swift's examples/megatron/fp8/lora.sh does)")


# mcore-bridge 1.6.3 model/mm_gpts/internvl.py:54 InternvlVit.prepare_model (1.6.5 alike): the remote-code InternVL
# (model_type internvl_chat) is built only around the language models its weight mapping knows -- any other
# llm_config.model_type (InternVL2/2.5's internlm2, InternVL3-9B's internlm3, InternVL2-4B's phi3, ...) raises
# "{llm_model_type} is not supported for internvl_chat model" when the vision module is built on the first pipeline
# stage. language_model_only builds only the language side (prepare_language_model) and is not judged.
INTERNVL_CHAT_LANGUAGE_MODELS = ("qwen2", "qwen3", "qwen3_moe", "gpt_oss")


def internvl_language_model(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.model_type != "internvl_chat" or not shape.text_model_type:
        return
    if args.str("bridge_backend") == "megatron-bridge" or args.bool("language_model_only"):
        return  # megatron-bridge refuses multimodal models itself (megatron-bridge-model)
    if shape.text_model_type in INTERNVL_CHAT_LANGUAGE_MODELS:
        return
    err("internvl-language-model", f"InternVL (internvl_chat) with language model {shape.text_model_type}: mcore-bridge "
        f"builds internvl_chat only around {', '.join(INTERNVL_CHAT_LANGUAGE_MODELS)} (\"{shape.text_model_type} is "
        "not supported for internvl_chat model\" when the model is built)", "model",
        hint="train it with the transformers engine (swift sft), or pick an InternVL whose language model is Qwen "
             "(InternVL2.5-1B/4B/38B/78B, InternVL3 except 9B, InternVL3.5)")


# mcore-bridge 1.6.3 reads no attention_chunk_size (config/parser.py's llama4 branch, model/mm_gpts/llama4.py; 1.6.5
# alike) and megatron-core 0.16.1 has no chunked training attention: Llama-4's chunked local-attention layers (the
# RoPE layers, three in four) are built as full causal attention. That is the same attention while no sample is longer
# than attention_chunk_size (a packed micro-batch attends within each sample); past it the model trains an attention
# pattern inference (transformers, vLLM) does not run. ms-swift leaves max_length unset to the model's max_model_len.
def llama4_chunked_attention(recipe, args, shape: ModelShape, lay, err, warn):
    chunk = shape.attention_chunk_size
    if not chunk or args.str("bridge_backend") == "megatron-bridge":
        return
    length = args.int("max_length") or shape.max_positions
    if length and length > chunk:
        said = f"max_length {length}" if args.has("max_length") else f"max_length unset (the model's {length})"
        warn("llama4-chunked-attention", f"{said} is past {shape.name}'s attention_chunk_size {chunk}: mcore-bridge "
             "builds its chunked local-attention layers as full causal attention, so samples longer than a chunk "
             "train an attention pattern the model does not run at inference", "max_length",
             hint=f"max_length: {chunk} (samples within one chunk train exactly as the model runs)")


# Evidence: mcore-bridge 1.6.3 model/mm_gpts/qwen3_vl.py:31 Qwen3VLTransformerBlock.forward asserts
# "len(deepstack_visual_embeds) <= len(self.layers)". MultimodalGPTModel.forward (model/mm_gpt_model.py) builds the
# vision tower only where pre_process is true -- pipeline rank 0's first virtual stage -- and hands its
# deepstack_visual_embeds (one per vision_config.deepstack_visual_indexes entry, 3 in every Qwen3-VL release) to that
# model chunk's decoder block on every step: text-only batches run a dummy 16x16 image through the tower
# (Qwen3VL_Vit._get_inputs_embeds), so no batch skips it. The deepstack features are added after decoder layers 0..2,
# which must therefore all sit in that first chunk. Qwen3-Omni's thinker (qwen3_omni.py) uses the same loader/block.
DEEPSTACK_MODEL_TYPES = ("qwen3_vl", "qwen3_vl_moe", "qwen3_omni_moe")


def _first_chunk_decoder_layers(args, shape: ModelShape, lay) -> int | None:
    """Decoder layers in the model chunk that holds the embedding (pipeline rank 0, virtual stage 0), as megatron-core
    0.16's get_num_layers_to_build counts them; None where layers-pp / pipeline-layout refuse the split instead."""
    from swift_ext.planner.pipeline_rules import FIRST, LAST, _stage_size
    from swift_ext.planner.pipeline_stages import parse_pipeline_layout

    layers = shape.num_layers
    text = args.str("pipeline_model_parallel_layout")
    if text:
        stages = parse_pipeline_layout(text)
        return stages[0].count("t") if stages and len(stages) % lay.pp == 0 else None  # else pipeline-layout's
    if lay.pp <= 1:
        return layers
    vpp = args.int("virtual_pipeline_model_parallel_size") or 1
    first, last = _stage_size(args, FIRST), _stage_size(args, LAST)
    if first is not None:
        per_rank = first
    elif last is not None:
        if (layers - last) % (lay.pp - 1):
            return None  # layers-pp refuses the split
        per_rank = (layers - last) // (lay.pp - 1)
    else:
        embedding = is_on(args, "account_for_embedding_in_pipeline_split")
        total = layers + embedding + is_on(args, "account_for_loss_in_pipeline_split")
        if total % lay.pp or (total // lay.pp) % vpp:
            return None
        return total // lay.pp // vpp - embedding
    return per_rank // vpp if per_rank % vpp == 0 else None


def deepstack_first_stage(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.model_type not in DEEPSTACK_MODEL_TYPES or shape.vision is None or shape.vision.mergers <= 1:
        return
    if args.str("bridge_backend") == "megatron-bridge" or args.bool("language_model_only"):
        return  # megatron-bridge refuses multimodal models (megatron-bridge-model); language_model_only: no tower
    deepstack = shape.vision.mergers - 1
    built = _first_chunk_decoder_layers(args, shape, lay)
    if built is None or built >= deepstack:
        return
    key = next((k for k in ("pipeline_model_parallel_layout", "decoder_first_pipeline_num_layers",
                            "virtual_pipeline_model_parallel_size") if args.has(k)), "pipeline_model_parallel_size")
    err("deepstack-first-stage", f"{shape.name} adds its {deepstack} deepstack vision features after decoder layers "
        f"0..{deepstack - 1}, but the first pipeline chunk (rank 0, virtual stage 0: the one with the vision tower) "
        f"builds {built} decoder layer(s): mcore-bridge asserts \"len(deepstack_visual_embeds) <= len(self.layers)\" "
        "at the first forward", key,
        hint=f"give the first pipeline chunk at least {deepstack} decoder layers (decoder_first_pipeline_num_layers, "
             "a smaller virtual_pipeline_model_parallel_size, or a layout whose first stage has that many 't')")


# Evidence: mcore-bridge 1.6.3 model/register.py ModelLoader.get_transformer_layer_spec builds the layers with
# megatron-core 0.16.1's get_gpt_decoder_block_spec(config), which picks the experts from config.moe_grouped_gemm
# (models/gpt/gpt_layer_specs.py get_gpt_decoder_layer_specs -> backends.py grouped_mlp_modules: TEGroupedMLP when
# true, SequentialMLP -- experts in local_experts, no linear_fc1 of their own -- when false); ms-swift 4.6 passes its
# moe_grouped_gemm argument (default true) to that config by name. The weight bridge reads every MoE layer's experts as
# the grouped module: bridge/gpt_bridge.py:873 GPTBridge._set_mlp_state `getattr(mg_mlp.linear_fc1, f'weight{i}')`
# (:1159 linear_fc2 alike, and the LoRA branches); nothing in 1.6.3 handles SequentialMLP. So loading the HF weights
# at start-up (and every safetensors save) raises AttributeError. Report: modelscope/mcore-bridge#38 (Qwen3.5 MoE).
def _bridge_reads_weights(recipe, args) -> bool:
    """Whether a run that loads mcore_model still passes the student's modules through mcore-bridge's weight bridge:
    safetensors saves (trainers/base.py save: bridge.save_weights), HF adapters (base.py _prepare_peft_model:
    load_weights(peft_format) when mcore_adapter is unset), the reference model of full RLHF other than rm/gkd
    (rlhf_mixin.py prepare_model: load_weights unless mcore_ref_model), and GRPO/GKD's vLLM weight sync
    (rollout_mixin.py _export_and_load_weights / adapter export: bridge.export_weights)."""
    if args.bool("save_safetensors"):
        return True
    if args.str("tuner_type") in ("lora", "lora_llm") and args.list("adapters") and not args.str("mcore_adapter"):
        return True
    if recipe.command != "rlhf":
        return False
    rlhf_type = args.str("rlhf_type")
    if args.str("tuner_type") == "full" and rlhf_type not in ("rm", "gkd") and not args.str("mcore_ref_model"):
        return True
    return rlhf_type in ("grpo", "gkd") and args.bool("use_vllm")


def moe_sequential_experts(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe or args.str("bridge_backend") == "megatron-bridge" or is_on(args, "moe_grouped_gemm"):
        return
    if args.str("mcore_model") and not _bridge_reads_weights(recipe, args):
        return  # loads the mcore checkpoint and writes no safetensors: the weight bridge never reads the experts
    err("moe-sequential-experts", f"moe_grouped_gemm false builds {shape.name or 'the model'}'s experts as "
        "megatron-core's SequentialMLP, which mcore-bridge's weight bridge does not read: it loads and saves experts "
        "only as the grouped module (linear_fc1.weight0..N), so loading the HF weights raises AttributeError "
        "('SequentialMLP' object has no attribute 'linear_fc1')", flag(args, "moe_grouped_gemm"),
        hint="moe_grouped_gemm: true (ms-swift's default)")


# Evidence: megatron-core 0.16.1 transformer/multi_latent_attention.py builds MLA's linear_q_down_proj /
# linear_kv_down_proj as TELinear with parallel_mode 'duplicated' (the full weight on every TP rank) and runs them on
# the sequence-parallel shard of the input ([s/TP, b, h]: get_query_key_value_tensors). mcore-bridge 1.6.3
# tuners/lora.py LoraParallelLinear.update_layer treats any base that is not row-parallel as column-parallel: lora_A
# local, lora_B a TEColumnParallelLinear of out*TP rows (tensor_model_parallel weights, no TP gradient reduction), and
# only lora_A gets the `sequence_parallel` flag that makes finalize_model_grads sum its gradient over TP. So each TP
# rank's lora_B of those projections learns from its own sequence shard alone and the copies drift apart (the
# replicated down-projection output then differs per rank), while the adapter export reads lora_B with no TP gather
# (bridge/gpt_bridge.py _get_tp_split_dim: the down projections are in no dim0 key set) -- rank 0's copy. mcore-bridge
# 1.6.5 builds both factors local for a duplicated base and flags both (_is_replicated_base: "Both factors are
# replicated when the base layer is duplicated"). Warning: no public report; the run trains without an error.
MLA_REPLICATED_LINEARS = ("linear_q_down_proj", "linear_kv_down_proj")


def lora_replicated_mla(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_mla or lay.tp <= 1 or not is_on(args, "sequence_parallel"):
        return
    if args.str("bridge_backend") == "megatron-bridge" or args.str("target_regex"):
        return
    from swift_ext.planner.warn_rules import lora_targets  # warn_rules reads this module's neighbours

    hit = [m for m in lora_targets(recipe, args, shape).get("mla", []) if m in MLA_REPLICATED_LINEARS]
    if not shape.q_lora_rank:
        hit = [m for m in hit if m != "linear_q_down_proj"]  # no query LoRA: no q down projection built
    if not hit:
        return
    warn("lora-replicated-tp", f"LoRA on {', '.join(hit)} with tensor_model_parallel_size {lay.tp} and "
         "sequence_parallel: these MLA down projections keep their full weight on every TP rank, but mcore-bridge "
         "1.6.3 gives their lora_B a tensor-parallel layout with no gradient sum over TP, so each rank trains its "
         "lora_B on its own sequence shard, the copies drift apart, and the saved adapter holds rank 0's",
         "target_modules",
         hint="leave the down projections out (target_modules: [linear_q_up_proj, linear_kv_up_proj, linear_proj, "
              "linear_fc1, linear_fc2]), tensor_model_parallel_size: 1, or mcore-bridge >= 1.6.5")


MCORE_BRIDGE_RULES = [moe_sequential_experts, lora_expert_tensor_parallel, mcore_bridge_model_config,
                      lora_rank_under_fp8, internvl_language_model, llama4_chunked_attention, deepstack_first_stage,
                      lora_replicated_mla]
