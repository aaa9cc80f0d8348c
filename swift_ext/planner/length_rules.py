"""Sequence length against the positions the model covers, both engines.

ms-swift 4.6 takes `max_length` as given: swift/arguments/base_args/base_args.py only fills it from the
model's length (swift/utils/hf_config.py HfConfigFactory.get_max_model_len) when it is unset, and
ModelArguments._init_rope_scaling (swift/arguments/base_args/model_args.py) extends RoPE only when the
recipe asks for it (`rope_scaling`, with `max_model_len`). A longer `max_length` trains -- and a GRPO
rollout generates -- on positions the checkpoint never saw, with no error and no warning (ms-swift#7018:
Qwen3-8B-Base, 32768 positions, `swift pt --max_length 64000` ran without a word). vLLM, by contrast,
refuses a `max_model_len` above the length it derives from config.json (vllm config/model.py
_get_and_verify_max_len: "User-specified max_model_len (...) is greater than the derived max_model_len",
unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1).

Also, against the model's shape: the colocated vLLM rollout (its tensor parallel size, for engine swift --
engine megatron checks it in grpo_rules.grpo --, its length and its memory share, both engines), and engine swift's
sequence parallelism, which splits the sequence over KV heads. Registered with warn_rules.ENGINE_RULES,
so they run on both engines.
"""

from __future__ import annotations

import json
import math
import os

from swift_ext.planner.grpo_rules import vllm_tp_fits
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.sizes import divisors
from swift_ext.planner.rollout_rules import colocated_engine, engine_overrides_length, vllm_version
from swift_ext.planner.vllm_lora import VLLM_LORA_RANKS, VLLM_RANK_ONE_SINCE, max_lora_rank_for

ALLOW_LONG_ENV = "VLLM_ALLOW_LONG_MAX_MODEL_LEN"


def _grpo(recipe, args) -> bool:
    return recipe.command == "rlhf" and args.str("rlhf_type") == "grpo"


def rope_scaling_needs_length(recipe, args, shape: ModelShape, lay, err, warn):
    # model_args.py _init_rope_scaling: a rope_scaling without a "factor" (the string form always lacks one)
    # asserts "max_model_len must be set if rope_scaling does not contain a \"factor\"" at argument parsing.
    value = args.raw("rope_scaling")
    if not value or args.int("max_model_len"):
        return
    if isinstance(value, str):
        value = _rope_scaling_value(value)
        if value is None:
            return
    if isinstance(value, dict) and "factor" in value:
        return
    if isinstance(value, dict) and (value.get("rope_type") or value.get("type") or "default") == "default":
        return  # _init_rope_scaling keeps a default-type dict as it is (its Qwen2.5-VL mrope fix)
    err("rope-scaling-length", f"rope_scaling {value!r} has no factor and max_model_len is not set: ms-swift "
        "derives the factor from max_model_len and asserts at start-up without it", "max_model_len",
        hint="set max_model_len to the length to train at (ms-swift sets factor = ceil(max_model_len / "
        "original length))")


def _rope_scaling_value(text: str):
    """rope_scaling as ms-swift reads it (swift/utils/utils.py json_parse_to_dict, strict=False): a path that exists
    is a JSON file, loaded; else JSON text; else the string itself, which _init_rope_scaling asserts is linear,
    dynamic or yarn. None when it cannot be judged here: a JSON file it cannot read, or a string that is none of those
    three -- most likely a file on the training machine (relative to the run's working directory) not here."""
    try:
        if os.path.exists(text):
            with open(text, encoding="utf-8") as f:
                value = json.load(f)
        elif text.strip().startswith("{"):
            value = json.loads(text)
        else:
            value = text
    except (OSError, ValueError, RecursionError):  # RecursionError: nested past the JSON decoder's depth
        return None
    if isinstance(value, str):
        return value if value in ("linear", "dynamic", "yarn") else None
    return value


def sequence_positions(recipe, args, shape: ModelShape, lay, err, warn):
    limit = shape.max_positions
    if not limit:
        return
    extended = bool(args.raw("rope_scaling"))  # ms-swift then sizes the factor from max_model_len
    length = args.int("max_length") or 0
    grpo = _grpo(recipe, args)
    completion = args.max_completion_length if grpo else 0  # ms-swift's default (512) when unset
    if not extended and length + completion > limit:
        culprit = "max_length" if length > limit or not grpo else "max_completion_length"
        what = (f"max_length {length}" if not grpo else
                f"max_length {length} (prompt) + max_completion_length {completion} = {length + completion}")
        warn("max-positions", f"{what} exceeds the {limit} positions {shape.name} covers "
             f"({_where(shape)}): ms-swift neither refuses nor scales RoPE for it, so tokens past position "
             f"{limit} train{' and are generated' if grpo else ''} out of the trained range", culprit,
             hint=f"keep {culprit} within {limit - (completion if culprit == 'max_length' and grpo else 0)}, "
             "or extend RoPE: rope_scaling: yarn with max_model_len set to the length you need")
    if not colocated_engine(recipe, args):
        return  # no engine here (server mode: the external `swift rollout` owns max_model_len, rlhf_args.py ignores it)
    # ms-swift 4.6 hands a recipe's rope_scaling to the colocated engine: the template's config carries it
    # (model/register.py _postprocess_config) and infer_engine/vllm_engine.py _get_hf_config_overrides passes what
    # differs from config.json as vLLM hf_overrides, so vLLM derives original length x factor from it (vllm
    # config _get_and_verify_max_len). max_model_len alone is not passed on: vLLM still reads config.json's length.
    # (ms-swift#5146 -- an older ms-swift building the engine from config.json alone -- no longer applies.)
    asked = args.int("vllm_max_model_len")
    if not asked or str(recipe.env.get(ALLOW_LONG_ENV, "")).strip() in ("1", "true", "True"):
        return
    if engine_overrides_length(args):
        return  # vLLM derives the length from the recipe's own config rewrite: its check decides
    if extended:
        limit = _recipe_rope_length(args, shape)
        if limit is None:
            return  # a rope type or original length the plan cannot size: vLLM's own check decides
    if asked <= limit:
        return
    because = (" (with the recipe's rope_scaling, which ms-swift passes to vLLM)" if extended else
               " (max_model_len alone does not reach vLLM)" if args.int("max_model_len") else "")
    if shape.guessed_by_name:
        # the length is the published config's; the copy on the training machine may carry the rope_scaling its
        # model card tells users to add to config.json (Qwen2.5 / Qwen3; qwen.readthedocs.io deployment/vllm.html,
        # "extended context support"), from which vLLM derives the longer length
        warn("max-positions", f"vllm_max_model_len {asked} is above the {limit} positions of the published "
             f"{shape.name} config standing in for the model's directory ({shape.origin}){because}: vLLM refuses it "
             "at start-up unless that directory's config.json extends the length (rope_scaling)", "vllm_max_model_len",
             hint=f"vllm_max_model_len: {limit} or less, or pass --model-config with the directory's config.json")
        return
    err("max-positions", f"vllm_max_model_len {asked} is above the {limit} positions vLLM derives from "
        f"{shape.name}'s config.json{because}: vLLM refuses it (\"User-specified max_model_len ({asked}) is "
        "greater than the derived max_model_len\") when the rollout engine starts", "vllm_max_model_len",
        hint=f"vllm_max_model_len: {limit} or less, or extend RoPE with rope_scaling (yarn) and max_model_len; env "
        f"{ALLOW_LONG_ENV}=1 only skips the check, it does not scale RoPE")


def _recipe_rope_length(args, shape: ModelShape) -> int | None:
    """The length vLLM derives from the recipe's rope_scaling as ms-swift completes it (model_args.py
    _init_rope_scaling: original length from the recipe or config.json, factor = ceil(max_model_len / original)
    when the recipe gives none); None when it cannot be told (a rope type vLLM does not multiply, a config.json
    that already scales RoPE, no max_model_len)."""
    value = args.raw("rope_scaling")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("{") else {"type": text}
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, dict) or str(value.get("rope_type") or value.get("type")) not in _FACTOR_ROPES:
        return None
    original = value.get("original_max_position_embeddings")
    if not isinstance(original, int) or original <= 0:
        if shape.rope_scaling:
            return None
        original = shape.max_positions
    factor = value.get("factor")
    if not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        wanted = args.int("max_model_len")
        if not wanted:
            return None
        factor = max(float(math.ceil(wanted / original)), 1.0)
    length = original * factor
    return int(length) if math.isfinite(length) else None  # a factor of .inf or 1e308: nothing to compare


# Rope types vLLM multiplies the original length by (it leaves llama3/longrope at max_position_embeddings).
_FACTOR_ROPES = ("yarn", "linear", "dynamic")


def rollout_length(recipe, args, shape: ModelShape, lay, err, warn):
    # ms-swift 4.6 swift/infer_engine/infer_engine.py InferEngine.set_default_max_tokens: when prompt +
    # max_completion_length passes the engine's max_model_len, max_tokens is cut to what is left (a log line per
    # request), and a prompt that fills it raises "Input length (...) leaves no room for generation". Both engines
    # roll out through it (rlhf_trainers/ and megatron/trainers/rollout_mixin.py build a GRPOVllmEngine) and neither
    # refuses the shortfall at start-up; only a max_length the recipe sets is judged.
    if not _grpo(recipe, args) or not args.bool("use_vllm"):
        return
    if args.str("vllm_mode") != "colocate":
        return
    asked, completion = args.int("vllm_max_model_len"), args.max_completion_length
    if not args.has("max_length"):
        # Without max_length (ms-swift defaults it to the model's context) only the completion budget is known: an
        # engine no longer than max_completion_length cuts every completion, whatever the prompt.
        if asked and completion and asked <= completion:
            warn("rollout-length", f"vllm_max_model_len {asked} <= max_completion_length {completion}: the colocated "
                 "engine holds prompt and completion together, so every completion is cut short of "
                 "max_completion_length (ms-swift lowers max_tokens to what the engine has left) and the length "
                 "rewards/overlong_filter see truncated answers", "vllm_max_model_len",
                 hint=f"vllm_max_model_len: the longest prompt + {completion}")
        return
    need = (args.int("max_length") or 0) + completion
    if asked and asked < need:
        warn("rollout-length", f"vllm_max_model_len {asked} < max_length + max_completion_length = {need}: completions "
             f"of long prompts are cut short of max_completion_length (ms-swift lowers max_tokens to what the engine "
             f"has left), and a prompt of {asked} tokens or more stops the rollout", "vllm_max_model_len",
             hint=f"vllm_max_model_len: {need}")


def swift_sequence_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    # Engine swift's sequence parallelism (swift/sequence_parallel/sequence_parallel.py): prepare() reads the model's
    # num_key_value_heads (num_attention_heads without it); _init_device_mesh makes the Ulysses size
    # gcd(heads, sequence_parallel_size) and gives the rest to ring attention, which prepare() refuses without
    # padding_free ("needs ulysses/ring-attention, which needs --padding_free true"; packing sets padding_free), and
    # which Qwen3.5/3.6's Gated DeltaNet patch refuses outright (swift/model/models/qwen.py
    # _patch_qwen3_5_linear_attention_sequence_parallel: "does not support derived ring attention ... reduce
    # --sequence_parallel_size"). The data-parallel size is world // sequence_parallel_size. Ring attention also takes
    # no sliding window: local_flash_attn hands zigzag_ring_flash_attn_varlen_func `kwargs.get('sliding_window') or
    # (-1, -1)`, and transformers' attention layers pass sliding_window as an int (models/mistral/modeling_mistral.py:
    # config.sliding_window; Gemma 2/3/4, gpt-oss: the layer's window), which zigzag_ring_attn.forward indexes
    # (window_size[0], flash-attn >= 2.7's window_size_left/right) or flash-attn < 2.7 does: "'int' object is not
    # subscriptable" at the first forward. Ulysses alone hands the whole sequence to transformers' own flash call, which
    # applies the window.
    sp = args.int("sequence_parallel_size", 1) or 1
    if recipe.engine != "swift" or sp <= 1:
        return
    if lay.world % sp:
        err("sequence-parallel-size", f"sequence_parallel_size {sp} does not divide the {lay.world} processes: "
            "ms-swift's device mesh needs world = data parallel x sequence parallel", "sequence_parallel_size")
        return
    ulysses = math.gcd(shape.num_key_value_heads, sp)
    if ulysses == sp:
        return
    where = (f"{shape.name} has {shape.num_key_value_heads} KV heads, so Ulysses takes {ulysses} and ring "
             f"attention {sp // ulysses}")
    if shape.sliding_window:
        err("sequence-parallel-size", f"sequence_parallel_size {sp}: {where}, and {shape.name}'s attention layers "
            f"slide a window of {shape.sliding_window} tokens, which ms-swift's ring attention cannot take (it hands "
            "flash-attn the layer's sliding_window int as a (left, right) window_size: TypeError at the first "
            "forward)", "sequence_parallel_size", hint=f"sequence_parallel_size: {ulysses} (Ulysses only)")
        return
    if shape.num_linear_attention_layers and shape.model_type.startswith("qwen3_5"):
        err("sequence-parallel-size", f"sequence_parallel_size {sp}: {where}, and ms-swift's Gated DeltaNet sequence "
            "parallelism refuses ring attention", "sequence_parallel_size", hint=f"sequence_parallel_size: {ulysses}")
    elif not (args.bool("padding_free") or args.bool("packing")):
        err("sequence-parallel-size", f"sequence_parallel_size {sp}: {where}, which ms-swift runs only with "
            "padding_free", "sequence_parallel_size",
            hint=f"sequence_parallel_size: {ulysses}, or padding_free: true (with a flash attn_impl)")


def swift_sequence_parallel_logits(recipe, args, shape: ModelShape, lay, err, warn):
    # ms-swift 4.6 trainers/mixin.py SwiftMixin.get_use_logits_to_keep returns a use_logits_to_keep the recipe states
    # as it is (only None defaults to `sequence_parallel_size == 1`), and SwiftMixin.prepare_logits_to_keep opens with
    # `if self.template.sequence_parallel_size > 1: raise NotImplementedError()`. Seq2SeqTrainer._prepare_inputs (sft,
    # pt: causal_lm) and DPOTrainer.concatenated_forward call it whenever the flag is on, so the first step raises.
    # GRPO selects its completion logits its own way (rlhf_trainers/grpo_trainer.py), and the other RLHF types refuse
    # sequence parallel at start-up (rlhf-sequence-parallel). Report: modelscope/ms-swift#9765 (Qwen3.6-35B-A3B,
    # 8x H20, ms-swift 4.4.1: --use_logits_to_keep true with sequence parallel raises NotImplementedError).
    sp = args.int("sequence_parallel_size", 1) or 1
    if recipe.engine != "swift" or sp <= 1 or not args.bool("use_logits_to_keep"):
        return
    if recipe.command == "rlhf" and args.str("rlhf_type") != "dpo":
        return
    if recipe.command != "rlhf" and (args.str("task_type") or "causal_lm") != "causal_lm":
        return
    err("sequence-parallel-logits", f"use_logits_to_keep true with sequence_parallel_size {sp}: ms-swift's "
        "prepare_logits_to_keep raises NotImplementedError at the first step under sequence parallel (left unset, "
        "ms-swift turns it off there itself)", "use_logits_to_keep",
        hint="leave use_logits_to_keep unset (or false) with sequence parallel")


def rollout_lora_rank(recipe, args, shape: ModelShape, lay, err, warn):
    # ms-swift passes max_lora_rank=lora_rank to the colocated engine when it syncs LoRA adapters
    # (rlhf_trainers/rollout_mixin.py and megatron/trainers/rollout_mixin.py: tuner_type lora with vllm_enable_lora).
    if not colocated_engine(recipe, args) or not args.bool("vllm_enable_lora"):
        return
    if (args.str("tuner_type") or "lora") != "lora":
        return
    rank = args.int("lora_rank")
    if rank and rank not in VLLM_LORA_RANKS:
        fits = max_lora_rank_for(rank)  # PrimeIntellect-ai/prime-rl#1408 rounds up for this reason
        err("vllm-lora-rank", f"lora_rank {rank} becomes the rollout engine's max_lora_rank, which vLLM accepts only "
            f"from {', '.join(map(str, VLLM_LORA_RANKS))}: it refuses to start", "lora_rank",
            hint=f"lora_rank: {fits}" if fits else "a lora_rank vLLM accepts, or vllm_enable_lora: false (merged sync)")
    elif rank == 1 and _vllm_before(recipe, VLLM_RANK_ONE_SINCE):
        # Rank 1 joined LoRAConfig's list in vllm-project/vllm#26461; an older vLLM refuses max_lora_rank 1 when the
        # engine is built (verl-project/verl#3696). Judged only with a known target vLLM (vLLM is not installed here).
        version, where = vllm_version(recipe.env)
        err("vllm-lora-rank", f"lora_rank 1 becomes the rollout engine's max_lora_rank, which vLLM accepts only from "
            f"{VLLM_RANK_ONE_SINCE}; the run targets {version} ({where}), whose LoRAConfig takes 8, 16, ... 512: it "
            "refuses to start", "lora_rank",
            hint=f"lora_rank: 8, a vLLM >= {VLLM_RANK_ONE_SINCE}, or vllm_enable_lora: false (merged sync)")


def _vllm_before(recipe, floor: str) -> bool:
    """True when the recipe names the vLLM it targets and that release predates `floor` (a dev build counts as new,
    as ms-swift's check_vllm_version_ge does; a release candidate of `floor` carries what that release does)."""
    from packaging.version import InvalidVersion, Version

    version, _ = vllm_version(recipe.env)
    if version is None or "dev" in version:
        return False
    try:
        return Version(version).release < Version(floor).release
    except InvalidVersion:
        return False


GIB = 2**30
# Checkpoints stored below 16 bits whose size the shape cannot tell: the memory check skips them.
_LOW_BIT_NAMES = ("awq", "gptq", "int4", "int8", "4bit", "8bit", "mxfp4", "nvfp4", "bnb")


def _weight_bytes(shape: ModelShape) -> float | None:
    """Bytes per parameter vLLM holds for the checkpoint, a lower bound: 1 for FP8 checkpoints (config.json's
    quantization_config says fp8 -- Kimi-K2's releases are block-FP8 without FP8 in their names; the -FP8 releases;
    DeepSeek-V3's own weights are FP8), 2 otherwise; None when it cannot be told (another quantization_config, such
    as Kimi-K2-Thinking's INT4 compressed-tensors; gpt-oss ships MXFP4)."""
    if shape.checkpoint_quant == "fp8":
        return 1.0
    name = shape.name.lower()
    if shape.checkpoint_quant or shape.softmax_type == "learnable" or any(tag in name for tag in _LOW_BIT_NAMES):
        return None
    return 1.0 if "fp8" in name or shape.model_type == "deepseek_v3" else 2.0


def rollout_engine_gib(shape: ModelShape, vtp: int, max_model_len: int) -> float | None:
    """A lower bound on what one colocated vLLM worker needs before it can serve one request: its weight shard
    and the KV cache of one max_model_len sequence (full-attention layers; MLA keeps one latent per token and
    layer, unsplit; KV heads split over TP, replicated past their count). Activations and CUDA graphs not counted.
    A sliding-window layer holds at most its window (vllm/v1/kv_cache_interface.py SlidingWindowSpec.
    max_memory_usage_bytes: min(window - 1 + max_num_batched_tokens, max_model_len) tokens; the window alone is
    counted here), and Gemma 4's global layers keep global_head_dim x num_global_key_value_heads, K only with
    attention_k_eq_v (counted low: vLLM may still keep a V page)."""
    per_param = _weight_bytes(shape)
    if per_param is None:
        return None
    weights = shape.total_params(mtp=False) * per_param / vtp
    if shape.is_mla:
        kv = shape.num_layers * (shape.kv_lora_rank + shape.qk_rope_head_dim) * 2 * max_model_len
        return (weights + kv) / GIB
    per_layer_token = 2 * -(-shape.num_key_value_heads // vtp) * shape.head_dim * 2
    attention = shape.num_full_attention_layers
    sliding = min(shape.num_sliding_layers, attention)
    kv = sliding * per_layer_token * min(shape.sliding_window, max_model_len)
    if shape.num_global_layers:
        tensors = 1 if shape.global_k_eq_v else 2
        kv += shape.num_global_layers * tensors * -(-shape.num_global_key_value_heads // vtp) \
            * shape.global_head_dim * 2 * max_model_len
        attention -= shape.num_global_layers
    kv += max(attention - sliding, 0) * per_layer_token * max_model_len
    return (weights + kv) / GIB


# vLLM EngineArgs that move weights off the GPU (cpu_offload_gb, offload_*), store them or the KV cache in fewer bytes
# (quantization, kv_cache_dtype) or spread them further (pipeline/data/expert parallel): rollout_engine_gib's lower
# bound would no longer hold. ms-swift passes vllm_engine_kwargs through to the colocated engine (rollout_mixin.py).
_SIZE_CHANGING_ENGINE_KWARGS = {"cpu_offload_gb", "offload_backend", "offload_group_size", "offload_num_in_group",
                                "quantization", "kv_cache_dtype", "calculate_kv_scales", "pipeline_parallel_size",
                                "data_parallel_size", "enable_expert_parallel", "kv_cache_memory_bytes",
                                "kv_offloading_size"}


# What vLLM takes from the share besides the weights before it sizes the KV cache (vllm/v1/worker/gpu_worker.py
# Worker.determine_available_memory: requested_memory - (weights + torch_peak_increase of profile_run +
# non_torch_increase)). PROFILE_TOKENS: the profile run's batch, vLLM's SchedulerConfig DEFAULT_MAX_NUM_BATCHED_TOKENS
# (ms-swift's LLMEngine.from_engine_args runs in vLLM's engine usage context, which takes no LLM-class default; a
# larger batch only adds to the need). VLLM_MARGIN_GIB: what the estimate leaves out -- non-torch allocations
# (cuBLAS/NCCL workspaces), allocator rounding, and a card's usable memory below its nominal size (an "80 GB" A100
# reports 79.2 GiB to torch.cuda.mem_get_info).
PROFILE_TOKENS = 2048
VLLM_MARGIN_GIB = 1.0


def rollout_profile_gib(shape: ModelShape, vtp: int, max_num_seqs: int) -> float:
    """vLLM's profile-run activation peak, estimated low: PROFILE_TOKENS tokens through one layer (the residual, the
    hidden states and the gate/up/activation outputs of the MLP, split over TP) plus the sampler's fp32 logits and
    probabilities for max_num_seqs requests (GPUModelRunner._dummy_sampler_run)."""
    ffn = (shape.moe_intermediate_size * shape.num_experts_per_tok + shape.shared_expert_intermediate_size
           if shape.num_experts else shape.intermediate_size)
    per_token = (4 * shape.hidden_size + 3 * ffn / vtp) * 2
    return (PROFILE_TOKENS * per_token + max_num_seqs * shape.vocab_size * 4 * 2) / GIB


def rollout_engine_memory(recipe, args, shape: ModelShape, lay, err, warn):
    # vLLM (v1 worker: requested memory = gpu_memory_utilization x total GPU memory; kv_cache_utils
    # check_enough_kv_cache_memory) refuses to start when what is left after its weights cannot hold one
    # max_model_len sequence ("No available memory for the cache blocks" / "To serve at least one request with
    # the model's max seq len ..."). ms-swift builds the colocated engine with vllm_gpu_memory_utilization and
    # vllm_tensor_parallel_size (rlhf_trainers/rollout_mixin.py, megatron/trainers/rollout_mixin.py).
    if not colocated_engine(recipe, args):
        return
    # A server (`swift rollout`, vllm_mode server) sizes itself on its own GPUs, for `megatron rlhf` as for
    # `swift rlhf` (megatron/trainers/rollout_mixin.py builds a colocated engine only for vllm_mode colocate).
    if args.str("vllm_mode") == "server" or (recipe.engine == "swift" and args.str("vllm_mode") != "colocate") \
            or args.raw("quant_method"):
        return
    if args.raw("vllm_quantization") or args.bool("vllm_enable_expert_parallel") or \
            (args.int("vllm_data_parallel_size", 1) or 1) > 1 or (args.int("vllm_pipeline_parallel_size", 1) or 1) > 1:
        return  # weights quantized on load, or spread past the TP group: the bound below would not hold
    if _SIZE_CHANGING_ENGINE_KWARGS & set(args.mapping("vllm_engine_kwargs")):
        return  # vllm_engine_kwargs (passed to vLLM's EngineArgs) offload, quantize or shrink what the bound counts
    util, capacity = args.float("vllm_gpu_memory_utilization"), recipe.launch.memory_gib
    length = args.int("vllm_max_model_len") or shape.max_positions
    if not util or not capacity or not length:
        return
    vtp = args.int("vllm_tensor_parallel_size", 1) or 1
    need = rollout_engine_gib(shape, vtp, length)
    if need is not None and need > util * capacity:
        err("vllm-memory", f"the colocated vLLM worker needs at least {need:.1f} GiB ({shape.name}'s weights over "
            f"vllm_tensor_parallel_size {vtp}, plus the KV cache of one {length}-token sequence) but "
            f"vllm_gpu_memory_utilization {util} gives it {util * capacity:.1f} GiB of {capacity:g}: vLLM refuses to "
            "start (no memory left for the KV cache)", "vllm_gpu_memory_utilization",
            hint="raise vllm_gpu_memory_utilization (with sleep_level/offload_model so training keeps room), raise "
            "vllm_tensor_parallel_size, or lower vllm_max_model_len")
        return
    if need is None:
        return
    # The share holds the bound above but not, with a margin, what vLLM's profile run adds before the KV cache
    # (ms-swift#4594: Qwen3-1.7B at 0.1 of an A100). A warning: the profile's peak is estimated, not measured.
    batch = args.int("per_device_train_batch_size") or args.int("micro_batch_size") or 1
    seqs = args.int("vllm_max_num_seqs") or batch * vtp  # ms-swift's own default is at least this (rollout_mixin.py)
    profile = rollout_profile_gib(shape, vtp, seqs)
    if need + profile + VLLM_MARGIN_GIB > util * capacity:
        warn("vllm-memory-margin", f"vllm_gpu_memory_utilization {util} gives the colocated vLLM worker "
             f"{util * capacity:.1f} GiB of {capacity:g}: {shape.name}'s weights over vllm_tensor_parallel_size {vtp} "
             f"and the KV cache of one {length}-token sequence take {need:.1f} GiB, its profile run about "
             f"{profile:.1f} GiB more ({PROFILE_TOKENS}-token batch, {seqs} sequences' logits), leaving less than "
             f"{VLLM_MARGIN_GIB:g} GiB for non-torch memory and the card's usable size. vLLM sizes the KV cache from "
             "what is left (gpu_worker.py determine_available_memory) and refuses to start when one max_model_len "
             "sequence does not fit (\"No available memory for the cache blocks\"); ms-swift#4594 failed this way",
             "vllm_gpu_memory_utilization",
             hint="raise vllm_gpu_memory_utilization (with sleep_level/offload_model so training keeps room), or set "
             "vllm_max_model_len to max_length + max_completion_length")


def _where(shape: ModelShape) -> str:
    scaled = f", {shape.rope_scaling} rope scaling included" if shape.rope_scaling else ", no rope scaling"
    return f"config.json max_position_embeddings{scaled}"


def swift_rollout_heads(recipe, args, shape: ModelShape, lay, err, warn):
    # Engine swift's colocated rollout engine (rlhf_trainers/rollout_mixin.py: tensor_parallel_size=
    # vllm_tensor_parallel_size) must shard the model's heads; engine megatron has the same check in grpo_rules.grpo.
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd"):
        return
    if not args.bool("use_vllm") or args.str("vllm_mode") != "colocate":
        return
    vtp = args.int("vllm_tensor_parallel_size", 1) or 1
    if vtp > 1 and not vllm_tp_fits(shape, vtp):
        # the sizes that divide the world (a handful), not every integer below vtp (10**30 of them)
        fits = [t for t in divisors(lay.world) if t < vtp and vllm_tp_fits(shape, t)]
        err("grpo-vllm", f"vllm_tensor_parallel_size {vtp} does not divide {shape.name}'s "
            f"{shape.num_attention_heads} attention heads ({shape.num_key_value_heads} KV heads): vLLM refuses it "
            f"(\"Total number of attention heads ({shape.num_attention_heads}) must be divisible by tensor parallel "
            f"size ({vtp})\") when the rollout engine starts", "vllm_tensor_parallel_size",
            hint=f"vllm_tensor_parallel_size: {fits[-1] if fits else 1}")


# qwen_vl_utils 0.0.14 vision_process.py: a video gets nframes = duration x FPS frames, clipped to
# [FPS_MIN_FRAMES, FPS_MAX_FRAMES] (smart_nframes), one token grid per FRAME_FACTOR frames, and each grid at least
# VIDEO_MIN_TOKEN_NUM tokens (fetch_video: min_pixels = VIDEO_MIN_TOKEN_NUM x factor**2, and max_pixels never below
# it however many frames share the total budget). Its defaults (datasets/mediatokens.py MEDIA_DEFAULTS) where the
# recipe's env does not set them.
def video_frames_past_max_length(recipe, args, shape: ModelShape, lay, err, warn):
    # A frame budget the recipe sets (FPS_MAX_FRAMES) whose own minimum token count is past max_length: every video
    # long enough to reach it is a row longer than max_length, which ms-swift drops (truncation_strategy delete, its
    # default; 'raise' inside the template) or, under left/right, keeps whole since the video tokens are protected
    # (swift/template/base.py Template._truncate). Only the lower bound is judged: text and larger frames add more.
    from swift_ext.datasets.mediatokens import MEDIA_DEFAULTS
    from swift_ext.msswift.multimodal_rules import QWEN_VL_UTILS_TYPES, _multimodal

    if _multimodal(args) not in QWEN_VL_UTILS_TYPES or args.int("max_length") is None:
        return
    env = recipe.env

    def number(name, kind):
        raw = str(env.get(name) or "").strip()
        if not raw:
            return MEDIA_DEFAULTS.get(name)
        try:
            return kind(raw)
        except ValueError:
            return None  # media-env refuses it

    if str(env.get("VIDEO_MIN_PIXELS") or "").strip() and not str(env.get("VIDEO_MIN_TOKEN_NUM") or "").strip():
        return  # the pixel budget's token count depends on the patch size: not judged here
    max_frames = number("FPS_MAX_FRAMES", int) if str(env.get("FPS_MAX_FRAMES") or "").strip() else None
    fps, factor, group_min = number("FPS", float), number("FRAME_FACTOR", int), number("VIDEO_MIN_TOKEN_NUM", int)
    if not max_frames or not fps or not factor or not group_min or fps <= 0 or factor <= 0 or group_min <= 0:
        return
    max_length = args.int("max_length")
    least = (max_frames // factor) * group_min
    if least <= max_length:
        return
    fit_frames = (max_length // group_min) * factor
    warn("video-frames-length", f"env FPS_MAX_FRAMES={max_frames}: a video sampled to that many frames takes at least "
         f"{least} tokens ({max_frames // factor} grids of {group_min}, VIDEO_MIN_TOKEN_NUM, even at the smallest frame "
         f"size), past max_length {max_length}; every video longer than about {fit_frames / fps:g} s ({fit_frames} "
         f"frames at FPS {fps:g}) makes a row over max_length, which ms-swift drops (or, with left/right truncation, "
         "keeps whole)", "env.FPS_MAX_FRAMES",
         hint=f"FPS_MAX_FRAMES at most {fit_frames} (less, to leave room for the text and larger frames), a lower FPS, "
              "or a larger max_length")


LENGTH_RULES = [video_frames_past_max_length, rope_scaling_needs_length, sequence_positions, swift_rollout_heads,
                rollout_length, rollout_engine_memory, swift_sequence_parallel, swift_sequence_parallel_logits,
                rollout_lora_rank]
