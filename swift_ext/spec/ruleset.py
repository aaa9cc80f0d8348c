"""Every pre-flight rule by name: what it checks, why it is believed (its evidence) and where it applies.

A rule is named by the first argument of `err(...)`/`warn(...)`/`add(...)` in the rule modules
(planner/*_rules.py, layout.py, pipeline_schedule.py; msswift/rules.py, input_rules.py, startup_rules*.py, ...), or
the `rule=` of a finding in planner/plan.py, refusals.py, effective.py and spec/secrets.py; tests/test_ruleset.py
(scanning those packages) keeps this table and those names equal. Most entries live in spec/ruleset_*.py, one module
per concern, each naming the rule modules whose findings it describes (their shape in spec/rule_info.py); this module
holds the rest and joins them. Evidence is one of:
- code: the engine's own check (package, file and function of the installed version) that this mirrors;
- report: a public report, with the conditions it was seen under -- such a rule applies only under
  those conditions (its `scope` says which, and the rule's code checks them);
- measurement: a bench/ file that measured it;
- policy: swift-ext's own choice, said plainly (no engine refuses it).
`plan` prints the short tag of each finding's evidence; `swift-ext rules` lists the whole table.
"""

from __future__ import annotations

from swift_ext.spec.rule_info import (
    GMC,
    MS,
    PS,
    RLHF,
    SFT,
    TC,
    Evidence,
    RuleInfo,
    code,
)
from swift_ext.spec.ruleset_adapter import ADAPTER_RULE_INFO
from swift_ext.spec.ruleset_eval import EVAL_RULE_INFO
from swift_ext.spec.ruleset_grpo import GRPO_RULE_INFO
from swift_ext.spec.ruleset_launch import LAUNCH_RULE_INFO
from swift_ext.spec.ruleset_length import LENGTH_RULE_INFO
from swift_ext.spec.ruleset_mcore import MCORE_AUDIT_RULE_INFO
from swift_ext.spec.ruleset_mcore_config import MCORE_CONFIG_RULE_INFO
from swift_ext.spec.ruleset_moe import MOE_RULE_INFO
from swift_ext.spec.ruleset_multimodal import MULTIMODAL_RULE_INFO
from swift_ext.spec.ruleset_preference import PREFERENCE_RULE_INFO
from swift_ext.spec.ruleset_rlhf import RLHF_ARGUMENT_RULE_INFO
from swift_ext.spec.ruleset_runtime import RUNTIME_RULE_INFO
from swift_ext.spec.ruleset_startup import STARTUP_RULE_INFO
from swift_ext.spec.ruleset_template import TEMPLATE_RULE_INFO
from swift_ext.spec.ruleset_trainer import TRAINER_RULE_INFO
from swift_ext.spec.ruleset_trainer_args import TRAINER_ARGS_RULE_INFO

_RULES = [
    # --- arguments and recipe (planner/plan.py, refusals.py, effective.py, spec/secrets.py)
    RuleInfo("unknown-argument", "error, warning", "every args key names a field of ms-swift's argument dataclass "
             "for the command, exactly or as its parser reads it (`a-b`, an unambiguous prefix); an ambiguous prefix "
             "is refused; with ignore_args_error an unknown name is said instead (ms-swift logs it and trains on its "
             "default for the field meant)",
             (code("ms-swift swift/utils/utils.py: parse_args (HfArgumentParser over the arguments dataclass)"),
              code("ms-swift swift/pipelines/base.py: SwiftPipeline._parse_args (remaining_argv: ValueError, or a "
                   "logged warning with ignore_args_error)")),
             "every recipe"),
    RuleInfo("argument-type", "error", "values parse as the field's type / choices; lists are non-empty",
             (code("ms-swift swift/utils/utils.py: parse_args (HfArgumentParser: the dataclass field types)"),), "every recipe"),
    RuleInfo("argument-range", "error", "sizes and counts are positive (mtp_num_layers: 0 means none), numbers "
             "finite, parallel sizes at most the largest world a recipe can name; split_dataset_ratio a fraction; "
             "engine swift's seed in numpy's range",
             (code(TC), code(f"{MS} MegatronArguments.__post_init__"),
              code("ms-swift swift/dataset/dataset_meta.py: BaseDatasetLoader.post_process (assert 0 <= split_dataset_ratio "
                   "<= 1)"),
              code("ms-swift swift/pipelines/base.py: SwiftPipeline._set_seed (seed + rank -> numpy RandomState.seed, "
                   "0 .. 2**32 - 1)")),
             "every recipe; the layout, memory and batch rules wait until it passes"),
    RuleInfo("required", "error", "a model is named (or a checkpoint that names it); rlhf has an algorithm",
             (code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments.__post_init__"),), "every recipe"),
    RuleInfo("rlhf-type", "warning", "command rlhf without rlhf_type runs ms-swift's default algorithm",
             (code(f"{RLHF} RLHFArguments (rlhf_type default)"),), "command: rlhf"),
    RuleInfo("generation", "error", "sampling values the transformers logits processors accept (top_k 0 and -1 mean off)",
             (code("transformers generation/logits_process.py: TemperatureLogitsWarper / TopPLogitsWarper / ..."),),
             "recipes setting temperature, top_p, top_k, min_p or repetition_penalty"),
    RuleInfo("msswift-override", "warning", "a stated value ms-swift replaces at start-up",
             (code("ms-swift swift/megatron/arguments/megatron_args.py: MegatronArguments.init_iters and the "
                   "__post_init__ coercions (msswift/coercions.py)"),
              code("ms-swift swift/arguments/base_args/data_args.py: DataArguments.__post_init__ (split_dataset_ratio "
                    "0 with val_dataset or a streaming dataset)")),
             "the arguments ms-swift coerces"),
    RuleInfo("secret", "error", "no credential written into the recipe (args or env)",
             (Evidence("policy", "recipes are shared and copied into run manifests and batch scripts"),),
             "every recipe; not env names that only mention a token: counts, vocabulary tokens (ms-swift's "
             "GENERATIVE_RERANKER_POSITIVE_TOKEN), switches (HF_HUB_DISABLE_IMPLICIT_TOKEN), paths (HF_TOKEN_PATH)"),
    RuleInfo("shell-text", "warning", "no argument holds shell syntax (`${VAR}`, `$(cmd)`, a backquoted command, "
             "`$VAR` starting a value or path segment) outside the credential arguments",
             (Evidence("policy", "swift-ext starts ms-swift with an argv list and no shell (runs/process.py) and quotes "
                       "`$` in batch scripts (runs/submit.py): nothing expands the text; `import` keeps what a script "
                       "computes at run time as text"),), "every recipe"),
    RuleInfo("dataset", "error, warning", "local datasets exist here and their rows are valid for the task",
             (Evidence("policy", "ms-swift tries a local path it cannot find on the hub, minutes into the job"),
              Evidence("policy", "swift_ext.datasets validator codes (swift-ext data check)")), "local datasets"),
    RuleInfo("model-shape", "error, warning", "the model's config.json is found and its sizes are sane "
             "(num_key_value_heads: absent or null means num_attention_heads, 0 is refused; a quoted \"28\" is "
             "refused, not read as absent)",
             (code("transformers configuration_utils.py: PretrainedConfig (config.json fields; transformers 5 "
                   "validates them strictly: huggingface_hub StrictDataclassFieldValidationError 'expected int, got "
                   "str')"),
              code("ms-swift swift/utils/hf_config.py: HfConfigFactory.get_max_model_len (min() over the length "
                   "keys: a string is a TypeError)")),
             "engine: megatron; engine swift where the sequence-parallel or colocated vLLM TP head checks need the "
             "head counts"),
    RuleInfo("eval-metrics", "error", "eval.metrics names a metric swift-ext's evaluation computes or a reward "
             "function registered without a plugin file",
             (Evidence("policy", "swift_ext/after/evalmetrics.py check_metric_names refuses the name when the first "
                       "checkpoint is evaluated (it imports ms-swift's orms and swift-ext's rewards, no "
                       "external_plugins)"),), "recipes with an eval section"),
    RuleInfo("memory", "error, warning", "estimated peak GPU memory fits launch.gpu's memory",
             (Evidence("measurement", "bench/bench_memory_estimate.py against bench/memory_points.yaml (published "
                       "runs); bench/measure_cross_entropy_bytes.py"),),
             "engine: megatron with the model's shape; verdict needs launch.gpu or gpu_memory_gib"),
    RuleInfo("memory-floor", "error", "transformers engine: the weights, gradients and optimizer state alone (no "
             "activation, logits or CUDA context) fit launch.gpu's memory; for RLHF with the whole reference copy "
             "full DPO/KTO/GRPO keep below ZeRO-3 and a colocated vLLM's share held through training at sleep_level 0",
             (code("ms-swift swift/pipelines/train/tuner.py: prepare_model (full tuning trains the model at torch_dtype; "
                   "only fp16 adapters are upcast)"),
              code("torch optim/adamw.py: AdamW._init_group (exp_avg/exp_avg_sq zeros_like the parameter)"),
              code("ms-swift swift/config/zero3_offload.json (and the other zero*.json presets: ZeRO stage and offload)"),
              code("ms-swift swift/utils/env.py: is_mp (device_map spreads a process over its visible GPUs)"),
              code("transformers models/qwen3_5_moe/modeling_qwen3_5_moe.py (qwen3_5, qwen3_next, deepseek_v3, "
                   "glm4_moe alike): _keys_to_ignore_on_load_unexpected drops the MTP block, so its parameters are "
                   "not counted (memory-logits' weights term too)"),
              code("ms-swift swift/rlhf_trainers/rlhf_mixin.py: RLHFTrainerMixin.__init__ / utils.py prepare_deepspeed "
                   "(the reference model runs ZeRO stage 0 unless the run is ZeRO-3: a whole copy per GPU)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_vllm_engine (the "
                   "colocated engine's gpu_memory_utilization share; released only by sleep_level 1/2)")),
             "engine: swift, command sft/pt/rlhf, the model's shape known, launch.gpu or gpu_memory_gib given; not with "
             "fsdp, quantization or an unreadable DeepSpeed config. The reference copy: rlhf_type dpo/kto/grpo (beta "
             "not 0) with tuner_type full and no other ref_model; the vLLM share: grpo/gkd, use_vllm, vllm_mode "
             "colocate, sleep_level 0 (named on sleep_level when it alone passes the card)"),
    RuleInfo("memory-logits", "error", "transformers engine, sft: the weights and the logits of the longest answer "
             "the local data certainly trains (12 bytes per trained token per vocabulary entry at the loss's "
             "backward) fit launch.gpu's memory",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.prepare_logits_to_keep (one logits row per trained "
                   "token)"),
              code("transformers loss/loss_utils.py: ForCausalLMLoss (logits.float(), then cross_entropy)"),
              code("ms-swift swift/trainers/utils.py: per_token_loss_func (the same upcast when the trainer computes "
                   "the loss)"),
              Evidence("measurement", "tests/test_memory_logits.py: live [tokens, vocab] storages through the "
                       "installed model and loss on CPU: 10 bytes per logit at the forward, 12 at the backward; a real "
                       "swift sft step (sft_main, tiny model, CPU) peaks at 12 bytes per logit of each trained token"),
              Evidence("report", "ms-swift#6966", "swift pt (continued pretraining, outside this rule's sft scope), Qwen3-30B-A3B, "
                       "32k tokens, bs 1, zero3_offload, 8x8 A100: the OOM is at logits.float()")),
             "engine: swift, command sft, causal_lm, a local dataset counted here (the longest answer of a row kept "
             "whole and without media, every row trained); not with liger kernel, unsloth, sequence parallel, "
             "label smoothing, another loss_type or loss_scale masking the answer, torch_compile, device_map, or a "
             "model whose transformers code computes the loss another way"),
    RuleInfo("resume", "warning", "multi-node runs can resume after preemption",
             (code(f"{MS} no_save_optim / add_version (checkpoint contents, output dir naming)"),),
             "launch.nodes > 1"),
    RuleInfo("megatron-core", "error, warning", "megatron-core's own verdict on the layout (the oracle)",
             (code(f"{TC}; {PS}; optimizer/optimizer_config.py: OptimizerConfig.__post_init__ (run, not copied)"),),
             "plan --oracle / run / submit, engine: megatron; warnings when the target version differs"),
    # --- parallel layout (planner/layout.py)
    RuleInfo("world-divisible", "error", "world size divisible by TP*PP*CP", (code(PS),), "engine: megatron"),
    RuleInfo("expert-layout", "error", "world/PP divisible by EP*ETP", (code(PS),), "engine: megatron"),
    RuleInfo("experts-divisible", "error, warning", "num_experts divisible by EP; EP on a dense model is ignored",
             (code("megatron-core transformer/moe/moe_layer.py: BaseMoELayer.__init__"),
              code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config")), "engine: megatron"),
    RuleInfo("heads-tp", "error", "attention heads divisible by TP", (code(TC),), "engine: megatron"),
    RuleInfo("kv-groups-tp", "error, warning", "KV groups a divisor of TP, or (megatron-core >= 0.16) a multiple",
             (code(TC), Evidence("report", "ms-swift#8219", "core_r0.15.0; 2 KV groups, TP=8")),
             "engine: megatron; the multiple case by the support table's kv-groups-replicated row"),
    RuleInfo("gated-attention-tp", "error", "bridge_backend megatron-bridge on a gated-attention model "
             "(attention_output_gate: Qwen3-Next): TP no larger than the KV groups before megatron-core 0.17",
             (code("megatron-core transformer/attention.py: SelfAttention.get_query_key_value_tensors (0.16.1: for "
                   "num_query_groups < TP the query is narrowed to the rank's heads, the gate is not) and "
                   "SelfAttention._apply_output_gate (gate.view(*x.shape) fails)"),
              code("Megatron-Bridge models/qwen/qwen3_next_bridge.py: Qwen3NextBridge.provider_bridge "
                   "(attention_output_gate on the stock experimental-attention-variant layer spec)"),
              Evidence("report", "verl-project/verl#5818", "Qwen3.5-27B on megatron-core's own SelfAttention, 4 KV "
                       "groups, TP=8: \"shape '[656, 1, 768]' is invalid for input of size 1007616\" at "
                       "_apply_output_gate"),
              Evidence("report", "radixark/miles#972", "Qwen3.5-35B-A3B, 2 KV groups, TP=4: the same view failure; "
                       "fixed by slicing the gate like the query (NVIDIA/Megatron-LM PR #3575)")),
             "engine: megatron, bridge_backend megatron-bridge, attention_output_gate (the model's or "
             "megatron_extra_kwargs'), TP above num_key_value_heads and a multiple of it (otherwise kv-groups-tp "
             "refuses first), megatron-core < 0.17 (support table: gated-attention-kv-replicated; the cut-off is "
             "inferred: the fix, NVIDIA/Megatron-LM PR #3575, is in no megatron-core release read here -- 0.16.1, "
             "installed, still has the unsliced gate -- so a target of 0.17 or later is not judged); mcore-bridge (the default) is not affected: its GatedSelfAttention "
             "(model/modules/gated_self_attention.py) slices query and gate together"),
    RuleInfo("linear-attention-norm-tp", "warning", "full training of a dense Gated DeltaNet model (Qwen3.5/3.6 dense) "
             "at TP > 1 without sequence_parallel: the GDN output-norm weight's gradient is never summed over TP, so "
             "the TP ranks train diverging copies of it and the checkpoint keeps one",
             (code("megatron-core distributed/finalize_model_grads.py: _allreduce_non_tensor_model_parallel_grads "
                   "(a replicated weight is summed over TP only under config.sequence_parallel with the weight's "
                   "sequence_parallel flag, or for q/k layernorms)"),
              code("megatron-core ssm/gated_delta_net.py: GatedDeltaNet.__init__ / _apply_gated_norm (out_norm, a "
                   "TENorm over value_head_dim, applied to the rank's own value heads); TENorm hands TE's RMSNorm "
                   "config.sequence_parallel, which sets the weight's flag"),
              code("mcore-bridge 1.6.3 model/modules/gated_delta_net.py: GatedDeltaNet (subclasses megatron-core's, marks "
                   "no TP reduction for out_norm; its bailing_hybrid.py g_norm sets average_gradients_across_tp_domain)"),
              Evidence("report", "NVIDIA/Megatron-LM#7452", "GatedDeltaNet at TP=2 without sequence parallelism: the "
                       "out_norm weight's gradient stays a per-rank partial sum (a 2-rank CPU reproduction on the "
                       "production GDN constructor, _apply_gated_norm and gradient finalizer; from an AI-assisted "
                       "fuzzing report on Megatron-LM main, 2026-09, open, not maintainer-confirmed -- the code "
                       "references above are the installed 0.16.1's)")),
             "engine: megatron, a dense model with Gated DeltaNet layers, tuner_type full, TP > 1, sequence_parallel "
             "off; USE_MCORE_GDN=0 under mcore-bridge (transformers' layer, unsplit) and MoE models (sequence-parallel "
             "refuses TP > 1 without SP) are not judged"),
    RuleInfo("linear-attention-cp", "error", "no context parallel on Gated DeltaNet layers before megatron-core 0.18",
             (code(TC + " (\"Gated delta net does not support context parallel for now\"; mcore-bridge 1.6.3 "
                   "config/parser.py sets experimental_attention_variant gated_delta_net for qwen3_next / qwen3_5 under "
                   "USE_MCORE_GDN, the default)"),
              code("mcore-bridge 1.6.3 model/gpts/qwen3_next.py: Qwen3NextGatedDeltaNet.__init__ (USE_MCORE_GDN=0: "
                   "\"Qwen3Next currently does not support context parallel.\")"),
              Evidence("report", "modelscope/mcore-bridge#48", "Qwen3.5, context_parallel_size 2, a megatron-core "
                       "build past 0.16 whose TransformerConfig lets GDN CP through: 'GatedDeltaNet.__init__() got an "
                       "unexpected keyword argument cp_comm_type' (mcore-bridge PR #34 drops it; 1.6.3 has that)")),
             "models with Gated DeltaNet layers, CP > 1, megatron-core < 0.18 (support table: cp-linear-attention)"),
    RuleInfo("linear-heads-tp", "error", "linear-attention key/value heads divisible by TP",
             (code(TC + " (experimental_attention_variant gated_delta_net, which mcore-bridge config/parser.py sets "
                   "for qwen3_next / qwen3_5 under USE_MCORE_GDN: linear_num_key/value_heads % TP asserts)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/modules/gated_delta_net.py:95 GatedDeltaNet (what qwen3_next / "
                   "qwen3_5 build with USE_MCORE_GDN, the default: a megatron-core ssm/gated_delta_net.py GatedDeltaNet "
                   "whose __init__ splits the heads over TP; forward :253 num_key_heads // tp_size; the same in 1.6.5)"),),
             "models with Gated DeltaNet layers"),
    RuleInfo("layers-pp", "error", "layers split evenly over PP / virtual stages; first/last stage sizes",
             (code(TC), code(f"{MS} MegatronArguments.__post_init__"), code(PS),
              code("megatron-core transformer/transformer_block.py: get_num_layers_to_build (num_layers % PP, layers "
                   "per rank % VPP; what every mcore-bridge layer spec calls)"),
              code(f"{MS} MegatronArguments._init_vpp_size (virtual_pipeline_model_parallel_size 1 -> None)"),
              code(f"{GMC} (num_layers_in_first/last_pipeline_stage from decoder_first/last_pipeline_num_layers, "
                   "then kwargs.update: megatron_extra_kwargs' sizes win)")),
             "engine: megatron; a virtual pipeline size of 1 is no virtual pipeline; the first/last stage sizes are "
             "the config's (megatron_extra_kwargs' num_layers_in_first/last_pipeline_stage win; ms-swift's PP-1 check "
             "reads its arguments)"),
    RuleInfo("pipeline-layout", "error", "pipeline_model_parallel_layout places every layer once, in order; "
             "more than one stage needs PP > 1 (its stage count / PP becomes the virtual pipeline size); no first/"
             "last stage size set beside it (megatron-core tests `is not None`: 0 conflicts too) nor account_for_* "
             "split",
             (code("megatron-core transformer/pipeline_parallel_layer_layout.py: validate_layer_layout"),
              code(f"{MS} MegatronArguments._init_vpp_size"),
              code("megatron-core parallel_state.py: initialize_model_parallel (0.16.1 :745, VPP without PP > 1; "
                   "ms-swift swift/megatron/utils/megatron_lm_utils.py passes args.virtual_pipeline_model_parallel_"
                   "size)"),
              code("mcore-bridge 1.6.3 config/model_config.py: ModelConfig.__post_init__ (:352-355, mtp_shared_weights: "
                   "mtp_num_layers 1 before TransformerConfig validates the layout)")),
             "recipes with pipeline_model_parallel_layout; the MTP count is the config's (megatron_extra_kwargs wins; "
             "1 under mtp_shared_weights with mcore-bridge)"),
    RuleInfo("global-batch", "error", "global_batch_size divisible by micro_batch_size*DP",
             (code(f"{MS} MegatronArguments.__post_init__"),), "engine: megatron"),
    RuleInfo("sequence-parallel", "error, warning", "MoE with TP > 1 needs sequence_parallel (megatron_extra_kwargs' "
             "value wins over the argument); tp_comm_overlap too",
             (code("megatron-core transformer/moe/moe_layer.py: MoELayer.forward"),
              code(f"{MS} MegatronArguments.__post_init__")),
             "engine: megatron, TP > 1 (error for MoE models: support table sequence-parallel-moe)"),
    RuleInfo("context-parallel", "warning", "CP on short sequences (under 4k tokens, outside GRPO/GKD) costs "
             "communication for little memory; no length is refused: ms-swift pads each sample to a multiple of 2*CP",
             (code("ms-swift swift/template/base.py: Template._handle_megatron_cp (each sample padded to 2*CP)"),
              code("ms-swift swift/megatron/utils/utils.py: get_padding_to (the batch to TP*CP under SP)"),
              code("megatron-core utils.py: get_batch_on_this_cp_rank (2*CP chunks)")),
             "engine: megatron, CP > 1"),
    RuleInfo("packing-modes", "error, warning", "group_by_length excludes padding_free/packing",
             (code(f"{MS} MegatronArguments.__post_init__"),
              code("ms-swift swift/megatron/arguments/megatron_base_args.py: packing forces padding_free")),
             "engine: megatron"),
    RuleInfo("recompute", "error, warning", "recompute granularity/method/num_layers combinations; "
             "megatron_extra_kwargs' recompute_granularity is full, selective or null (its string 'none' reaches "
             "TransformerConfig as written: only the argument is turned into None); "
             "megatron_extra_kwargs' mtp_num_layers is an integer >= 0 and its recompute_num_layers one megatron-core "
             "takes where it reads it (the config takes them as written): a positive integer under full + uniform, a "
             "number under full + block (0 or less recomputes nothing: a warning), unset under selective, anything "
             "without recompute (nothing reads it)",
             (code(f"{MS} MegatronArguments.__post_init__"), code(TC), code(f"{GMC} (kwargs.update)"),
              code("megatron-core transformer/transformer_block.py: TransformerBlock._checkpointed_forward "
                   "(0.16.1, uniform: layer_idx += recompute_num_layers; block: layer_idx < recompute_num_layers + "
                   "skipped; run only under full granularity)")),
             "engine: megatron; ms-swift's selective-with-method check reads its arguments, megatron-core's "
             "method/num_layers checks the config's values (megatron_extra_kwargs wins)"),
    RuleInfo("save-total-limit", "error", "save_total_limit >= 2",
             (code(f"{MS} MegatronArguments.__post_init__"),), "engine: megatron"),
    RuleInfo("mtp-layers", "warning", "mtp_num_layers above the MTP layers of the model's config.json: the extra "
             "MTP layers are randomly initialised (trained from scratch) and the exported config.json counts them",
             (code("mcore-bridge 1.6.3 mcore_bridge/bridge/gpt_bridge.py:1868 GPTBridge._convert_mtp_layer (\"MTP Layer "
                   "... safetensors weights not found, this part will be randomly initialized.\"; 1.6.5: line 1980); "
                   "config/parser.py config_mapping reads no MTP count from config.json (1.6.3 and 1.6.5)"),
              code("ms-swift swift/megatron/init.py: _patch_mcore_bridge.save_weights (writes mtp_num_layers into "
                   "num_nextn_predict_layers / mtp_num_hidden_layers)")),
             "recipes with mtp_num_layers (support table: mtp)"),
    RuleInfo("fp8-param", "error", "fp8_param_gather needs fp8_format, fp4_param_gather fp4_format; fp8_format not "
             "with fp4_format", (code(TC),), "recipes with fp8_param_gather, fp4_param_gather or fp4_format"),
    RuleInfo("fp8-gpu", "error, warning", "the FP8 recipe's compute capability (lowest, and the architectures TE "
             "refuses it on: MXFP8 on 12.0+), Transformer Engine version and CUDA version (blockwise: torch built "
             "for CUDA >= 12.9)",
             (code("transformer-engine pytorch/quantization.py (older: pytorch/fp8.py): _compute_fp8_support / "
                   "_compute_fp8_block_scaling_support / _compute_mxfp8_support, asserted by check_recipe_support "
                   "on entering fp8_autocast"), code("megatron-core fp8_utils.py: get_fp8_recipe"),
              Evidence("report", "NVIDIA/TransformerEngine#2668, NVIDIA/Megatron-LM#4175", "MXFP8 on sm_120 (RTX PRO "
                       "6000): AssertionError \"MXFP8 (for all gemm layouts) is not supported on 12.0+ architectures "
                       "yet.\"; Float8BlockScaling runs there")),
             "recipes with fp8_format; support table rows fp8-delayed/tensorwise/blockwise/mxfp8. The GPU from "
             "launch.gpu (unset: a warning); CUDA only from a declared target (--target-versions cuda=..., or "
             "SWIFT_EXT_TARGET_VERSIONS in the recipe's env) -- unknown: a note, not a verdict; doctor reads the "
             "training machine's torch.version.cuda"),
]
_RULES += GRPO_RULE_INFO  # GRPO, rewards, the vLLM rollout engine (planner/grpo_rules.py, rollout_rules.py, msswift/rules.py): spec/ruleset_grpo.py
_RULES += [
    # --- ms-swift's own checks (msswift/rules.py)
    RuleInfo("packing-attn-impl", "error", "packing / padding_free need a flash-attention attn_impl",
             (code(f"{SFT} SftArguments._check_padding_free"),),
             "engine: swift with packing or padding_free (support table: padding-free-swift)"),
    RuleInfo("template-padding-free", "error", "padding_free/packing (on by default on Megatron) need a template "
             "that supports them: support_padding_free True, or None on a text-only model; the model's template and "
             "modality come from ms-swift's registry (msswift/msswift-models.json, read from the installed source)",
             (code("ms-swift swift/pipelines/train/sft.py: SwiftSft._prepare_template (also called by "
                    "swift/megatron/pipelines/train/sft.py MegatronSft.__init__ and rlhf.py)"),
              code("ms-swift swift/template/register.py: get_template_meta; swift/model/model_meta.py: "
                    "get_matched_model_meta")),
             "both engines, padding_free or packing, a model (or template) ms-swift's registry knows"),
    RuleInfo("qk-layernorm-wd", "error", "apply_wd_to_qk_layernorm only for model types qwen3_next, qwen3_5, "
             "qwen3_5_moe, qwen4_exp", (code(f"{MS} MegatronArguments.__post_init__"),),
             "engine: megatron, a model ms-swift's registry knows (or model_type set)"),
    RuleInfo("megatron-bridge-model", "error", "bridge_backend megatron-bridge: no multimodal model, task_type "
             "causal_lm only (rlhf_type rm trains seq_cls)",
             (code(f"{MS} MegatronArguments.__post_init__"),
              code("ms-swift swift/megatron/arguments/rlhf_args.py: MegatronRLHFArguments.__post_init__ (rm: task_type "
                   "seq_cls, num_labels 1)")),
             "engine: megatron, bridge_backend megatron-bridge, a model ms-swift's registry knows"),
    RuleInfo("deepseek-v41-recompute", "error", "LoRA on deepseek_v41 with recompute_granularity selective (the "
             "default)", (code(f"{MS} MegatronArguments._check_recompute"),),
             "engine: megatron, model type deepseek_v41, tuner_type lora or lora_llm"),
    RuleInfo("rlhf-padding-free", "error", "padding_free/packing only for grpo, dpo, kto, gkd",
             (code(f"{RLHF} RLHFArguments._check_padding_free"),), "engine: swift, command: rlhf"),
    RuleInfo("rlhf-sequence-parallel", "error", "sequence_parallel_size > 1 only for grpo, dpo",
             (code(f"{RLHF} RLHFArguments._check_sequence_parallel"),), "engine: swift, command: rlhf"),
    RuleInfo("megatron-args", "error", "MegatronArguments combinations (freeze ratio with PP, async_save, lora_llm, "
             "bridge, attention_backend, FSDP, muon, streaming without train_iters)",
             (code(f"{MS} MegatronArguments.__post_init__ / _check_megatron_fsdp / _check_muon / "
                    "_init_attention_backend / init_iters"),
              code("ms-swift swift/megatron/trainers/batch_sampler.py: MegatronPretrainingRandomSampler (group_by_length "
                   "needs shuffle; built by base.py _prepare_dataloader for a dataset with a length)")),
             "engine: megatron (group_by_length: not streaming; GRPO's shuffle is dataset_shuffle, which _init_grpo "
             "copies over train_dataloader_shuffle)"),
    RuleInfo("optimizer-precision", "error", "precision-aware optimizer needs adam and the distributed optimizer; "
             "low-precision dtypes need it",
             (code("megatron-core optimizer/optimizer_config.py: OptimizerConfig.__post_init__"),
              code(f"{MS} MegatronArguments._check_megatron_fsdp (turns use_distributed_optimizer on first)")),
             "engine: megatron (the distributed optimizer is not asked for under use_megatron_fsdp)"),
    RuleInfo("fp4-gpu", "error, warning", "fp4_format (NVFP4) needs a Blackwell data-centre GPU (compute capability "
             "10.x: not Hopper and older, not the 12.x RTX Blackwell parts) and Transformer Engine >= 2.7",
             (code("transformer-engine pytorch/quantization.py: FP8GlobalStateManager.autocast_enter (assert "
                   "is_nvfp4_available() for NVFP4BlockScaling) / _compute_nvfp4_support (public source, not "
                   "installed here)"), code("megatron-core fp4_utils.py: get_fp4_recipe (TE >= 2.7.0.dev0)"),
              Evidence("report", "NVIDIA/TransformerEngine#3195", "pull request (support matrix): the default NVFP4 "
                       "recipe's Hadamard transform and stochastic rounding run on 10.x only; TE's own tests skip "
                       "NVFP4BlockScaling on SM120 (\"CUDA Error: invalid argument\")"),
              Evidence("report", "NVIDIA/TransformerEngine#3062", "sm_120 (RTX PRO 6000): the default NVFP4 recipe "
                       "crashes in the fused RHT kernel; NVFP4BlockScaling(disable_rht=True, "
                       "disable_stochastic_rounding=True) trains")),
             "engine: megatron, fp4_format set; support table row fp4-nvfp4. The GPU from launch.gpu (unset: a "
             "warning); the TE version only from a declared target. On 12.x with the recipe's env setting both "
             "NVTE_NVFP4_DISABLE_RHT=1 and NVTE_NVFP4_DISABLE_STOCHASTIC_ROUNDING=1 (what megatron-core's "
             "argument-less NVFP4BlockScaling() reads): a warning, not a refusal"),
    RuleInfo("fp8-optimizer", "error", "FP8 parameters with the precision-aware optimizer on the path where TE's "
             "FusedAdam owns their master weights; optimizer_cpu_offload with FP8 parameters",
             (code("megatron-core optimizer/optimizer_config.py: OptimizerConfig.__post_init__ "
                    "(use_precision_aware_optimizer_no_fp8_or_ds_fp8) and optimizer/distrib_optimizer.py"),
              Evidence("report", "ms-swift#8001", "fp8_recipe=delayed; fp8_param_gather, exp_avg bf16, TP=8, "
                       "ms-swift 3.12.2, TE 2.10.0"),
              Evidence("report", "ms-swift#6994", "fp8_recipe=delayed; fp8_format hybrid, fp8_param_gather, "
                       "EP=8, 8x80 GB"),
              Evidence("report", "NVIDIA/Megatron-LM#5083", "optimizer_cpu_offload with fp8_param_gather; "
                       "HybridDeviceOptimizer")),
             "engine: megatron, fp8_format + fp8_param_gather + use_precision_aware_optimizer, and fp8_recipe "
             "delayed or main_params_dtype != fp32 or optimizer_cpu_offload (msswift/rules.py "
             "fused_adam_owns_fp8_master); blockwise/tensorwise/mxfp8 with fp32 main params is accepted "
             "(ms-swift examples/megatron/fp8/vlm.sh: blockwise, bf16 moments, 8 GPUs)"),
]

_RULES += [
    # --- silent misbehaviour, both engines (planner/warn_rules.py)
    RuleInfo("mtp-untrained", "warning", "the model has MTP layers but mtp_num_layers is unset: the MTP head is "
             "neither trained nor saved while the exported config still advertises it (transformers engine: "
             "not trained, dropped on export)",
             (code("ms-swift swift/megatron/init.py: _patch_mcore_bridge.save_weights"),
              code("ms-swift swift/megatron/model/utils.py: save_hf_weights"),
              code("transformers modeling_utils.py: _keys_to_ignore_on_load_unexpected (mtp.*)")),
             "models whose config.json has MTP layers (mtp_num_hidden_layers / num_nextn_predict_layers)"),
    RuleInfo("reranker-samples", "error", "the recipe env's MAX_POSITIVE_SAMPLES / MAX_NEGATIVE_SAMPLES are whole "
             "numbers >= 0 as int() reads them", (code("ms-swift swift/template/base.py: "
                                                        "Template._reranker_data_collator"),),
             "task_type reranker or generative_reranker, sft/pt, both engines; the env values set"),
    RuleInfo("infonce-env", "error, warning", "loss_type infonce: the recipe env's INFONCE_* settings parse as the "
             "loss reads them (temperature and fake-negative margin numbers, the switches strtobool values, "
             "INFONCE_HARD_NEGATIVES a whole number); a temperature <= 0 makes the loss inf/NaN (warning)",
             (code("ms-swift swift/loss/embedding.py: InfonceLoss.__call__ (float / strtobool / int of os.environ)"),
              code("transformers utils/generic.py: strtobool (\"invalid truth value\")")),
             "sft/pt, both engines, loss_type infonce; the env values set"),
    RuleInfo("plugin-file", "warning", "every external_plugins / custom_register_path file exists here (ms-swift "
             "resolves it relative to the run's working directory, which may be another machine's: a warning, as "
             "for a local dataset); one that exists is Python this interpreter compiles",
             (code("ms-swift swift/utils/utils.py: import_external_file"),
              code("ms-swift swift/arguments/base_args/base_args.py: _import_external_plugins")),
             "recipes with external_plugins or custom_register_path"),
]

_RULES += MOE_RULE_INFO  # MoE dispatcher and MTP pipeline stage (planner/moe_rules.py): spec/ruleset_moe.py
_RULES += MCORE_CONFIG_RULE_INFO  # megatron-core config via the model config: spec/ruleset_mcore_config.py
_RULES += EVAL_RULE_INFO  # the validation split's size, deterministic_mode: spec/ruleset_eval.py

_RULES += [
    # --- virtual pipeline stages: the interleaved schedule, RLHF's one model chunk (planner/pipeline_schedule.py)
    RuleInfo("vpp-microbatches", "error", "with virtual pipeline stages, the micro-batches per step (global_batch_size "
             "/ (micro_batch_size*DP)) number at least microbatch_group_size_per_vp_stage (default PP), and the last "
             "group is empty or at least PP",
             (code("megatron-core pipeline_parallel/schedules.py: forward_backward_pipelining_with_interleaving "
                    "(\"The number of contiguous micro-batches in a virtual pipeline stage should range in [PP, M]\")"),
              code("megatron-core model_parallel_config.py: ModelParallelConfig.__post_init__ "
                    "(microbatch_group_size_per_vp_stage defaults to PP)"),
              Evidence("report", "NVIDIA-NeMo/Speech#14288", "PP=6, 3 micro-batches, virtual pipeline")),
             "engine: megatron, PP > 1 with virtual_pipeline_model_parallel_size > 1 or a layout of more stages than PP"),
    RuleInfo("extra-kwargs-pipeline", "error, warning", "pipeline_model_parallel_layout or "
             "virtual_pipeline_model_parallel_size given in megatron_extra_kwargs reaches only the model config: "
             "virtual stages there that ms-swift's arguments do not have (or a virtual size that disagrees with the "
             "layout) are refused, and so is a layout there that does not parse or whose stages do not divide by PP; "
             "a layout of one stage per PP rank works but is said (ms-swift's and swift-ext's "
             "layout checks read the argument), as are num_layers_in_first/last_pipeline_stage (ms-swift's "
             "arguments are decoder_first/last_pipeline_num_layers)",
             (code(f"{MS} MegatronArguments._init_vpp_size (args only)"),
              code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config (kwargs.update("
                    "args.megatron_extra_kwargs) after the arguments)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: initialize_megatron "
                    "(mpu.initialize_model_parallel with args.virtual_pipeline_model_parallel_size); "
                    "swift/megatron/trainers/base.py: setup_training (one data iterator per virtual stage of args)"),
              code(TC + " (PP layout block: \"virtual_pipeline_model_parallel_size conflicts with "
                    "pipeline_model_parallel_layout\", else the layout's virtual size)"),
              code("mcore-bridge model/register.py: get_mcore_model (one chunk per config.virtual_pipeline_model_"
                    "parallel_size; public source, not installed here)"),
              code("megatron-core pipeline_parallel/schedules.py: forward_backward_pipelining_without_interleaving "
                    "(\"non-interleaved pipeline-parallel schedule does not support model chunking\")")),
             "engine: megatron, bridge_backend mcore-bridge, megatron_extra_kwargs with pipeline_model_parallel_layout, "
             "virtual_pipeline_model_parallel_size or num_layers_in_first/last_pipeline_stage"),
    RuleInfo("layout-vpp", "warning", "virtual_pipeline_model_parallel_size stated next to a "
             "pipeline_model_parallel_layout whose stages / PP differ: ms-swift takes the layout's virtual size and "
             "drops the stated one without a word",
             (code(f"{MS} MegatronArguments._init_vpp_size (the layout's stages // PP overwrite "
                   "virtual_pipeline_model_parallel_size)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#1502", "DeepSeek-V3 PP4 VP1 with a layout built for "
                       "VP4: 'virtual_pipeline_model_parallel_size conflicts with pipeline_model_parallel_layout' "
                       "(Megatron-Bridge refuses; PR 5443 the same at PP8 VP1)")),
             "engine: megatron, pipeline_model_parallel_layout and virtual_pipeline_model_parallel_size both in "
             "args, the layout's stages dividing by PP"),
    RuleInfo("megatron-rlhf-vpp", "error", "virtual pipeline stages exclude GRPO's reference model (beta != 0) and a "
             "separate teacher model",
             (code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer._maybe_compute_logps"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._load_teacher_model")),
             "engine: megatron, command rlhf, PP > 1 with virtual stages (virtual_pipeline_model_parallel_size or "
             "pipeline_model_parallel_layout)"),
]

_RULES += [
    # --- the recipe's inputs: registry names, data loading and precision, both engines (msswift/input_rules.py)
    RuleInfo("rlhf-loss-types", "error, warning", "several loss types and loss_weights are DPO's; one weight per "
             "loss type; no kto_pair in DPO; loss_weights without loss_type outside DPO is ignored (warning)",
             (code(f"{RLHF} RLHFArguments._process_loss_type (returns at once without loss_type)"),
              code("trl trainer/dpo_config.py: DPOConfig.__post_init__ (loss_weights length vs loss_type)"),
              code("ms-swift swift/rlhf_trainers/dpo_trainer.py: DPOTrainer.__init__")),
             "engine: swift, rlhf; loss_weights refused outside DPO only beside a stated loss_type"),
    RuleInfo("grpo-greedy", "warning", "GRPO with greedy rollouts (temperature 0, or top_k 1): identical completions "
             "per prompt, zero advantages",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_advantages (advantages "
                    "relative to the group mean; greedy decoding gives a group one completion, one reward)"),),
             "rlhf_type grpo with temperature: 0 or top_k: 1 set, num_generations > 1 and a group baseline (advantage_estimator "
             "grpo or rloo), both engines"),
    RuleInfo("best-model-schedule", "error", "load_best_model_at_end needs evaluation on the save schedule "
             "(a validation set, matching strategies, save_steps a multiple of eval_steps)",
             (code("transformers training_args.py: TrainingArguments.__post_init__ (\"--load_best_model_at_end "
                    "requires the save and eval strategy to match\")"),
              code(f"{SFT} SftArguments._init_eval_strategy (eval_strategy and eval_steps follow the save ones)")),
             "engine: swift, load_best_model_at_end: true and save_strategy other than best"),
    RuleInfo("mixed-precision", "error", "fp16 and bf16 both true once ms-swift fills the unset one from torch_dtype",
             (code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_mixed_precision"),
              code("transformers training_args.py: TrainingArguments.__post_init__ (\"At most one of fp16 and bf16 "
                    "can be True\")"),
              code(f"{MS} MegatronArguments._init_mixed_precision"),
              code(TC + " (\"Only one of self.fp16 ... and self.bf16 ... should be True\")")),
             "both engines, fp16 or bf16 set explicitly; the model's own dtype (config.json) is not read, so torch_dtype "
             "counts only when stated"),
    RuleInfo("registry-name", "error", "model_type and template must be names ms-swift's registry has",
             (code("ms-swift swift/model/model_meta.py: _get_model_info (\"model_type: ... not in\")"),
              code("ms-swift swift/template/register.py: get_template_meta (\"template_type: ... not in\")")),
             "both engines, model_type or template set and no external_plugins / custom_register_path (which may "
             "register either)"),
    RuleInfo("lazy-tokenize", "error", "an explicit lazy_tokenize excludes packing and streaming",
             (code("ms-swift swift/arguments/base_args/base_args.py: BaseArguments._init_lazy_tokenize"),),
             "both engines, lazy_tokenize: true with packing or streaming"),
    RuleInfo("shuffle-levels", "warning", "train_dataloader_shuffle false with dataset_shuffle left true: the rows "
             "were already permuted once when the dataset was loaded, so the run does not read them in file order "
             "(GRPO reads dataset_shuffle only)",
             (code("ms-swift swift/arguments/base_args/base_args.py: BaseArguments.load_dataset (shuffle="
                   "dataset_shuffle into swift/dataset/loader.py load_dataset -> DatasetLoader.shuffle_dataset)"),
              code("ms-swift swift/trainers/mixin.py: SwiftMixin.get_train_dataloader / swift/megatron/trainers/base.py "
                   "_prepare_dataloader (the sampler's shuffle is train_dataloader_shuffle)"),
              code(f"{MS} RLHFMegatronArgumentsMixin._init_grpo (dataset_shuffle over train_dataloader_shuffle); "
                   "ms-swift swift/rlhf_trainers/grpo_trainer.py: _prepare_algorithm_params (shuffle_dataset = "
                   "dataset_shuffle)"),
              Evidence("report", "modelscope/ms-swift#6932", "Megatron SFT with --train_dataloader_shuffle false: "
                       "the data is still shuffled; ms-swift#3977: the maintainer's answer for sequential order is "
                       "--dataset_shuffle false --train_dataloader_shuffle false")),
             "both engines, train_dataloader_shuffle set false, a dataset (not only cached_dataset), dataset_shuffle "
             "not false, no packing"),
    RuleInfo("num-labels", "error", "task_type seq_cls needs num_labels, and num_labels is at least 1 (the width of "
             "the classification head)",
             (code("ms-swift swift/model/model_meta.py: get_model_info_meta (\"Please pass the parameter "
                    "`num_labels`.\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/gpt_model.py:107 GPTModel.__init__: OutputLayerLinear("
                    "hidden_size, num_labels) for seq_cls (torch refuses a negative size; the same in 1.6.5)")),
             "both engines, num_labels or task_type seq_cls set; not rlhf_type rm nor a reward model with task_type "
             "unset (ms-swift sets num_labels 1), nor a model whose ModelMeta names another task"),
    RuleInfo("streaming-max-steps", "error", "a streaming dataset needs max_steps on the transformers engine",
             (code("transformers trainer.py: Trainer.__init__ (\"The train_dataset does not implement __len__\")"),
              code("ms-swift swift/arguments/base_args/data_args.py: DataArguments (streaming: max_steps must be set)")),
             "engine: swift, streaming: true"),
    RuleInfo("target-modules-comma", "error, warning", "a target_modules entry with a comma in it (`--target_modules "
             "q_proj,v_proj`) is one module name that matches nothing (ms-swift takes lists space-separated): refused "
             "when no other entry targets a module, said beside other entries",
             (code("peft tuners/tuners_utils.py: BaseTuner.inject_adapter (\"Target modules ... not found in the base "
                   "model\")"),
              code("ms-swift swift/pipelines/train/tuner.py: get_target_modules (explicit names passed on)"),
              Evidence("report", "modelscope/ms-swift#6516", "swift sft --target_modules q_proj,v_proj on Qwen3-VL: "
                       "\"Target modules {'q_proj,v_proj'} not found in the base model\"")),
             "both engines, a tuner other than full, no target_regex (which replaces target_modules)"),
    RuleInfo("bf16-gpu", "error, warning", "bfloat16 on a GPU below compute capability 8.0: the vLLM rollout "
             "refuses it (error); the transformers Trainer runs it emulated (warning)",
             (code("transformers training_args.py: TrainingArguments.__post_init__ (\"Your setup doesn't support "
                    "bf16/gpu\" only when torch.cuda.is_bf16_supported(including_emulation=True) is false)"),
              Evidence("report", "NVIDIA-NeMo/RL#259", "GRPO rollout in vLLM (dtype auto -> bfloat16) on Tesla "
                       "V100-SXM2 32 GB: \"Bfloat16 is only supported on GPUs with compute capability of at least 8.0\"")),
             "launch.gpu below 8.0 (V100) with an explicit bfloat16: error with a rollout engine (rlhf_type grpo / "
             "gkd, use_vllm, not vllm_mode server) on either engine, warning for engine swift's Trainer"),
]

_RULES += LAUNCH_RULE_INFO  # ranks vs devices, torchrun's variables: spec/ruleset_launch.py
_RULES += LENGTH_RULE_INFO  # sequence length against the model's positions: spec/ruleset_length.py

_RULES += MCORE_AUDIT_RULE_INFO
_RULES += STARTUP_RULE_INFO
_RULES += RLHF_ARGUMENT_RULE_INFO  # RLHF algorithm arguments the trainers read: spec/ruleset_rlhf.py
_RULES += MULTIMODAL_RULE_INFO  # refusals that hang on the model being multimodal: spec/ruleset_multimodal.py
_RULES += RUNTIME_RULE_INFO
_RULES += TEMPLATE_RULE_INFO  # how the data is encoded: spec/ruleset_template.py
_RULES += TRAINER_RULE_INFO
_RULES += TRAINER_ARGS_RULE_INFO  # transformers _validate_args values: spec/ruleset_trainer_args.py
_RULES += ADAPTER_RULE_INFO  # what an adapter leaves frozen, what resume_only_model restores: spec/ruleset_adapter.py
_RULES += PREFERENCE_RULE_INFO  # GKD / PPO / reference-model settings (msswift/preference_rules.py)

RULES: dict[str, RuleInfo] = {r.name: r for r in _RULES}


def evidence_tag(name: str | None) -> str | None:
    """The short tag `plan` prints after a finding of rule `name`: its first piece of evidence, and the
    first report when there is one (a report's conditions are what the rule is scoped to)."""
    info = RULES.get(name or "")
    if info is None:
        return None
    reports = [e for e in info.evidence if e.kind == "report"]
    tags = [info.evidence[0].tag] + ([reports[0].tag] if reports and reports[0] is not info.evidence[0] else [])
    return "; ".join(tags)


def rules_table_markdown() -> str:
    """| rule | severity | what | evidence | scope |, one row per rule (docs/preflight.md)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| rule | severity | what | evidence | scope |", "|---|---|---|---|---|"]
    for r in sorted(RULES.values(), key=lambda r: r.name):
        evidence = "; ".join(f"{e.kind}: {e.ref}" + (f" ({e.conditions})" if e.conditions else "") for e in r.evidence)
        rows.append(f"| `{r.name}` | {r.severity} | {cell(r.what)} | {cell(evidence)} | {cell(r.scope)} |")
    return "\n".join(rows)
