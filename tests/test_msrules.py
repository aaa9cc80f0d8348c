"""ms-swift's own post-init checks mirrored before launch (swift_ext/msswift/rules.py): one failing and one
passing recipe per rule, on the engine the rule belongs to; and every shipped recipe passes them."""

from __future__ import annotations

import json

import pytest

from conftest import RECIPES
from swift_ext.msswift.bound_args import Args
from swift_ext.msswift.schema import schema_for
from swift_ext.msswift.rules import check_msswift
from swift_ext.planner.arg_checks import check_args
from swift_ext.spec.recipe import load_recipe

SWIFT_SFT = RECIPES / "smoke/tiny-sft.yaml"
SWIFT_GRPO = RECIPES / "smoke/tiny-grpo.yaml"
MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
MEG_GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"
FLASH = "args.attn_impl=flash_attn"


def problems(path, *overrides):
    recipe = load_recipe(path, list(overrides))
    schema = schema_for(recipe.engine, recipe.command)
    assert check_args(recipe, schema) == [], "the test recipe itself must use real ms-swift arguments"
    errors, warnings = check_msswift(recipe, Args.bind(recipe, schema))
    return {(e.code, e.path) for e in errors}, {(w.code, w.path) for w in warnings}


CASES = [
    # (rule, flag it names, base recipe, overrides that break it, overrides that satisfy it)
    ("packing-attn-impl", "attn_impl", SWIFT_SFT, ["args.packing=true"], ["args.packing=true", FLASH]),
    ("packing-attn-impl", "attn_impl", SWIFT_SFT, ["args.padding_free=true", "args.attn_impl=sdpa"],
     ["args.padding_free=true", "args.attn_impl=flash_attention_2"]),
    # ms-swift's registry (msswift-models.json): gpt-oss's template cannot pack; ERNIE-4.5-VL is multimodal with a
    # template that does not say (None), which SwiftSft._prepare_template reads as "cannot".
    ("template-padding-free", "packing", MEG_SFT, ["args.model=openai/gpt-oss-20b"],
     ["args.model=openai/gpt-oss-20b", "args.packing=false", "args.padding_free=false"]),
    ("template-padding-free", "padding_free", MEG_SFT,
     ["args.model=baidu/ERNIE-4.5-VL-28B-A3B-PT", "args.packing=false", "args.padding_free=null"],
     ["args.model=baidu/ERNIE-4.5-VL-28B-A3B-PT", "args.packing=false", "args.padding_free=false"]),
    ("template-padding-free", "padding_free", SWIFT_SFT,
     ["args.model=openai/gpt-oss-20b", "args.template=null", "args.padding_free=true", FLASH],
     ["args.model=openai/gpt-oss-20b", "args.template=null", FLASH]),
    ("template-padding-free", "packing", SWIFT_SFT, ["args.template=gpt_oss", "args.packing=true", FLASH],
     ["args.template=qwen3", "args.packing=true", FLASH]),
    ("rlhf-padding-free", "packing", SWIFT_GRPO, ["args.rlhf_type=orpo", "args.packing=true", FLASH],
     ["args.rlhf_type=dpo", "args.packing=true", FLASH]),
    ("rlhf-sequence-parallel", "sequence_parallel_size", SWIFT_GRPO,
     ["args.rlhf_type=kto", "args.sequence_parallel_size=2"], ["args.rlhf_type=dpo", "args.sequence_parallel_size=2"]),
    ("grpo-generations", "num_generations", SWIFT_GRPO, ["args.num_generations=1"], ["args.num_generations=2"]),
    ("grpo-cached-dataset", "cached_dataset", SWIFT_GRPO, ["args.cached_dataset=[data/cache]"], []),
    ("grpo-batch", "num_generations", SWIFT_GRPO, ["args.per_device_train_batch_size=3"],
     ["args.per_device_train_batch_size=8"]),
    ("grpo-batch", "num_generations", SWIFT_GRPO, ["args.num_generations=8"],
     ["args.num_generations=8", "args.steps_per_generation=2", "args.per_device_eval_batch_size=8"]),
    ("grpo-batch", "generation_batch_size", SWIFT_GRPO, ["args.generation_batch_size=6"],
     ["args.generation_batch_size=8"]),
    ("grpo-batch", "per_device_eval_batch_size", SWIFT_GRPO, ["args.per_device_eval_batch_size=2"],
     ["args.per_device_eval_batch_size=2", "args.num_generations_eval=2"]),
    # one evaluation batch is 8 x 1 process // 4 generations = 2 prompts: a 1-row validation set trips
    # GRPOTrainer.__init__'s assert, 2 rows pass
    ("grpo-eval-size", "val_dataset", SWIFT_GRPO,
     ["args.per_device_eval_batch_size=8", "args.val_dataset=[data/grpo/val.jsonl#1]"],
     ["args.per_device_eval_batch_size=8", "args.val_dataset=[data/grpo/val.jsonl#2]"]),
    ("grpo-eval-size", "split_dataset_ratio", SWIFT_GRPO,
     ["args.per_device_eval_batch_size=8", "args.val_dataset=null", "args.dataset=[data/grpo/train.jsonl#100]",
      "args.split_dataset_ratio=0.01"],
     ["args.per_device_eval_batch_size=8", "args.val_dataset=null", "args.dataset=[data/grpo/train.jsonl#100]",
      "args.split_dataset_ratio=0.02"]),
    ("grpo-liger", "padding_free", SWIFT_GRPO, ["args.use_liger_kernel=true", "args.padding_free=true", FLASH],
     ["args.use_liger_kernel=true"]),
    ("grpo-vllm", "vllm_mode", SWIFT_GRPO, ["args.use_vllm=true"], ["args.use_vllm=true", "args.vllm_mode=colocate"]),
    ("grpo-vllm", "vllm_mode", SWIFT_GRPO, ["args.vllm_mode=colocate"], []),
    ("grpo-vllm", "vllm_server_host", SWIFT_GRPO, ["args.use_vllm=true", "args.vllm_mode=server"],
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]"]),
    ("grpo-vllm", "vllm_tensor_parallel_size", SWIFT_GRPO,
     ["args.use_vllm=true", "args.vllm_mode=colocate", "args.vllm_tensor_parallel_size=2"],
     ["args.use_vllm=true", "args.vllm_mode=colocate", "args.vllm_tensor_parallel_size=2", "launch.gpus_per_node=2"]),
    ("grpo-vllm", "async_generate", SWIFT_GRPO, ["args.async_generate=true"], []),
    ("grpo-vllm", "async_generate", SWIFT_GRPO,
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]", "args.async_generate=true",
      "args.multi_turn_scheduler=math_tip_trick"],
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]",
      "args.multi_turn_scheduler=math_tip_trick"]),
    ("grpo-vllm", "vllm_server_host", SWIFT_GRPO,
     ["args.use_vllm=true", "args.vllm_mode=colocate", "args.vllm_server_host=[127.0.0.1]"],
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]"]),
    ("grpo-truncation", "truncation_strategy", MEG_GRPO, ["args.truncation_strategy=right"],
     ["args.truncation_strategy=delete"]),
    ("grpo-truncation", "truncation_strategy", SWIFT_GRPO, ["args.truncation_strategy=split"],
     ["args.truncation_strategy=left"]),
    ("grpo-soft-overlong", "soft_cache_length", MEG_GRPO, ["args.reward_funcs=[accuracy,soft_overlong]"],
     ["args.reward_funcs=[accuracy,soft_overlong]", "args.soft_cache_length=512"]),
    # SoftOverlong.__init__ asserts soft_cache_length < soft_max_length (unset: max_completion_length, 8192 here)
    ("grpo-soft-overlong", "soft_cache_length", MEG_GRPO,
     ["args.reward_funcs=[accuracy,soft_overlong]", "args.soft_cache_length=8192"],
     ["args.reward_funcs=[accuracy,soft_overlong]", "args.soft_cache_length=8192", "args.soft_max_length=16384"]),
    ("grpo-soft-overlong", "soft_cache_length", SWIFT_GRPO,
     ["args.reward_funcs=[soft_overlong]", "args.soft_cache_length=24"],  # the recipe's max_completion_length 24
     ["args.reward_funcs=[soft_overlong]", "args.soft_cache_length=8"]),
    ("grpo-teacher", "teacher_model_server", MEG_GRPO,
     ["args.teacher_model=Qwen/Qwen3-8B", "args.teacher_model_server=http://127.0.0.1:8000"],
     ["args.teacher_model=Qwen/Qwen3-8B"]),
    ("grpo-teacher", "loss_type", MEG_GRPO, ["args.teacher_model=Qwen/Qwen3-8B", "args.loss_type=real"],
     ["args.teacher_model=Qwen/Qwen3-8B", "args.loss_type=dapo"]),
    ("grpo-teacher", "off_policy_sequence_mask_delta", SWIFT_GRPO,
     ["args.teacher_model=Qwen/Qwen3-8B", "args.off_policy_sequence_mask_delta=0.5"], ["args.teacher_model=Qwen/Qwen3-8B"]),
    ("grpo-teacher", "dynamic_sample", MEG_GRPO,
     ["args.teacher_model=Qwen/Qwen3-8B", "args.reward_funcs=null", "args.dynamic_sample=true"],
     ["args.teacher_model=Qwen/Qwen3-8B", "args.dynamic_sample=true"]),
    ("grpo-teacher", "scale_rewards", MEG_GRPO,
     ["args.teacher_model=Qwen/Qwen3-8B", "args.reward_funcs=null", "args.scale_rewards=gdpo"],
     ["args.teacher_model=Qwen/Qwen3-8B", "args.scale_rewards=gdpo"]),
    ("grpo-multi-turn", "multi_turn_scheduler", MEG_GRPO, ["args.multi_turn_scheduler=math_tips"],
     ["args.multi_turn_scheduler=math_tip_trick"]),
    ("megatron-args", "train_dataloader_shuffle", MEG_SFT,
     ["args.group_by_length=true", "args.padding_free=false", "args.train_dataloader_shuffle=false"],
     ["args.group_by_length=true", "args.padding_free=false"]),
    ("vllm-settings", "vllm_gpu_memory_utilization", MEG_GRPO, ["args.vllm_gpu_memory_utilization=1.5"],
     ["args.vllm_gpu_memory_utilization=0.6"]),
    ("megatron-grpo", "num_iterations", MEG_GRPO, ["args.num_iterations=2"], ["args.num_iterations=1"]),
    ("megatron-grpo", "async_generate", MEG_GRPO, ["args.async_generate=true"], ["args.async_generate=false"]),
    ("megatron-grpo", "sync_ref_model", MEG_GRPO, ["args.sync_ref_model=true"], ["args.sync_ref_model=false"]),
    ("megatron-grpo", "micro_batch_size", MEG_GRPO, ["args.loss_type=real"],
     ["args.loss_type=real", "args.micro_batch_size=8"]),
    ("megatron-gkd", "gkd_logits_topk", MEG_GRPO, ["args.rlhf_type=gkd", "args.gkd_logits_topk=0"],
     ["args.rlhf_type=gkd", "args.gkd_logits_topk=8"]),
    ("megatron-gkd", "seq_kd", MEG_GRPO, ["args.rlhf_type=gkd", "args.seq_kd=true"], ["args.rlhf_type=gkd"]),
    ("megatron-args", "freeze_parameters_ratio", MEG_SFT,
     ["args.freeze_parameters_ratio=0.5", "args.pipeline_model_parallel_size=2"], ["args.freeze_parameters_ratio=0.5"]),
    ("megatron-args", "async_save", MEG_SFT, ["args.async_save=true", "args.save_total_limit=3"],
     ["args.async_save=true"]),
    ("megatron-args", "merge_lora", MEG_SFT, ["args.tuner_type=lora_llm", "args.merge_lora=false"],
     ["args.tuner_type=lora_llm"]),
    ("padding-side", "padding_side", MEG_SFT, ["args.padding_side=left", "args.packing=false"],  # padding_free false
     ["args.padding_side=left"]),  # MEG_SFT packs: packing forces padding_free
    ("padding-side", "padding_side", MEG_SFT, ["args.padding_side=left", "args.packing=false",
                                                "args.padding_free=true", "args.attention_backend=unfused"],
     ["args.padding_side=left", "args.packing=false", "args.padding_free=true"]),
    ("megatron-args", "save_safetensors", MEG_SFT,  # merge_lora unset takes save_safetensors' value
     ["args.tuner_type=lora_llm", "args.save_safetensors=false", "args.merge_lora=null"],
     ["args.tuner_type=lora_llm", "args.save_safetensors=false", "args.merge_lora=true"]),
    ("megatron-args", "train_iters", MEG_SFT, ["args.streaming=true", "args.num_train_epochs=1", "args.train_iters=null"],
     ["args.streaming=true", "args.num_train_epochs=null", "args.train_iters=100"]),
    ("megatron-args", "save_strategy", MEG_SFT, ["args.streaming=true", "args.save_strategy=epoch", "args.train_iters=100",
                                                "args.num_train_epochs=null"],
     ["args.streaming=true", "args.save_strategy=steps", "args.train_iters=100", "args.num_train_epochs=null"]),
    ("megatron-args", "bridge_backend", MEG_SFT, ["args.bridge_backend=megatron-bridge"],
     ["args.bridge_backend=megatron-bridge", "args.tuner_type=full"]),
    ("qk-layernorm-wd", "apply_wd_to_qk_layernorm", MEG_SFT,
     ["args.model=Qwen/Qwen3-30B-A3B", "args.apply_wd_to_qk_layernorm=true"], ["args.apply_wd_to_qk_layernorm=true"]),
    ("megatron-bridge-model", "bridge_backend", MEG_SFT, ["args.bridge_backend=megatron-bridge", "args.tuner_type=full"],
     ["args.bridge_backend=megatron-bridge", "args.tuner_type=full", "args.model=Qwen/Qwen3-30B-A3B"]),
    ("megatron-bridge-model", "task_type", MEG_SFT,
     ["args.bridge_backend=megatron-bridge", "args.tuner_type=full", "args.model=Qwen/Qwen3-30B-A3B",
      "args.task_type=embedding"],
     ["args.bridge_backend=megatron-bridge", "args.tuner_type=full", "args.model=Qwen/Qwen3-30B-A3B"]),
    ("megatron-bridge-model", "bridge_backend", MEG_SFT,  # rlhf_type rm trains seq_cls (MegatronRLHFArguments)
     ["command=rlhf", "args.rlhf_type=rm", "args.bridge_backend=megatron-bridge", "args.tuner_type=full",
      "args.model=Qwen/Qwen3-30B-A3B"],
     ["command=rlhf", "args.rlhf_type=dpo", "args.bridge_backend=megatron-bridge", "args.tuner_type=full",
      "args.model=Qwen/Qwen3-30B-A3B"]),
    ("deepseek-v41-recompute", "recompute_granularity", MEG_SFT, [
        "args.model=deepseek-ai/DeepSeek-V4.1-Flash", "args.recompute_granularity=selective", "args.recompute_method=null",
        "args.recompute_num_layers=null"],
     ["args.model=deepseek-ai/DeepSeek-V4.1-Flash", "args.recompute_granularity=full"]),
    ("megatron-args", "attention_backend", MEG_SFT, ["args.attention_backend=flash_5"],
     ["args.attention_backend=flash_3"]),
    ("megatron-args", "use_megatron_fsdp", MEG_SFT, ["args.use_megatron_fsdp=true"],
     ["args.use_megatron_fsdp=true", "env.CUDA_DEVICE_MAX_CONNECTIONS=32"]),
    ("megatron-args", "optimizer", MEG_SFT, ["args.muon_lr=0.02"], ["args.muon_lr=0.02", "args.optimizer=muon"]),
    ("optimizer-precision", "exp_avg_dtype", MEG_SFT, ["args.exp_avg_dtype=bf16"],
     ["args.exp_avg_dtype=bf16", "args.use_precision_aware_optimizer=true"]),
    ("optimizer-precision", "use_distributed_optimizer", MEG_SFT,
     ["args.use_precision_aware_optimizer=true", "args.use_distributed_optimizer=false"],
     ["args.use_precision_aware_optimizer=true"]),
    ("fp8-optimizer", "use_precision_aware_optimizer", MEG_SFT,
     ["args.fp8_format=e4m3", "args.fp8_param_gather=true", "args.use_precision_aware_optimizer=true"],
     ["args.fp8_format=e4m3", "args.fp8_param_gather=true"]),
    ("fp8-optimizer", "optimizer_cpu_offload", MEG_SFT,
     ["args.fp8_format=e4m3", "args.fp8_recipe=blockwise", "args.fp8_param_gather=true",
      "args.optimizer_cpu_offload=true", "args.use_precision_aware_optimizer=true"],
     ["args.fp8_format=e4m3", "args.optimizer_cpu_offload=true", "args.use_precision_aware_optimizer=true"]),
    # data loading and precision (the failed launches are in tests/fixtures/issues; other branches in
    # tests/test_data_precision_rules.py)
    ("megatron-args", "eval_iters", MEG_SFT, ["args.streaming=true", "args.train_iters=100", "args.val_dataset=[v.jsonl]"],
     ["args.streaming=true", "args.train_iters=100", "args.val_dataset=[v.jsonl]", "args.eval_iters=10"]),
    ("megatron-args", "eval_iters", MEG_SFT, ["args.streaming=true", "args.train_iters=100", "args.val_dataset=[v.jsonl]"],
     ["args.streaming=true", "args.train_iters=100", "args.val_dataset=[v.jsonl]", "args.eval_iters=0"]),
    ("rlhf-loss-types", "loss_type", SWIFT_GRPO, ["args.rlhf_type=kto", "args.loss_type=[kto,sft]"],
     ["args.rlhf_type=dpo", "args.loss_type=[sigmoid,sft]", "args.loss_weights=[1.0,0.5]"]),
    ("rlhf-loss-types", "loss_weights", SWIFT_GRPO, ["args.rlhf_type=dpo", "args.loss_type=[sigmoid,sft]",
                                                     "args.loss_weights=[1.0]"],
     ["args.rlhf_type=dpo", "args.loss_type=[sigmoid,sft]", "args.loss_weights=[1.0,0.5]"]),
    ("best-model-schedule", "save_steps", SWIFT_SFT, ["args.load_best_model_at_end=true", "args.save_steps=10",
                                                       "args.eval_steps=4"],
     ["args.load_best_model_at_end=true", "args.save_steps=12", "args.eval_steps=4"]),
    ("best-model-schedule", "load_best_model_at_end", SWIFT_SFT,
     ["args.load_best_model_at_end=true", "args.val_dataset=null"],
     ["args.load_best_model_at_end=true", "args.val_dataset=null", "args.split_dataset_ratio=0.05"]),
    ("best-model-schedule", "load_best_model_at_end", SWIFT_SFT,
     ["args.load_best_model_at_end=true", "args.val_dataset=null"],
     ["args.load_best_model_at_end=true", "args.val_dataset=null", "args.eval_dataset=[gsm8k]"]),
    ("best-model-schedule", "load_best_model_at_end", SWIFT_SFT,
     ["args.load_best_model_at_end=true", "args.val_dataset=null"],
     ["args.load_best_model_at_end=true", "args.val_dataset=null", "args.cached_val_dataset=[cache/val]"]),
    ("mixed-precision", "fp16", SWIFT_SFT, ["args.torch_dtype=bfloat16", "args.fp16=true"],
     ["args.torch_dtype=bfloat16", "args.fp16=false"]),
    ("mixed-precision", "bf16", SWIFT_SFT, ["args.torch_dtype=float16", "args.bf16=true"],
     ["args.torch_dtype=bfloat16", "args.bf16=true"]),
    ("registry-name", "model_type", SWIFT_SFT, ["args.model_type=qwen3x"], ["args.model_type=qwen3"]),
    ("registry-name", "template", SWIFT_SFT, ["args.template=qwen3x"], ["args.template=qwen3_5"]),
    ("registry-name", "template", SWIFT_SFT, ["args.template=my_tmpl"],
     ["args.template=my_tmpl", "args.external_plugins=[my_plugin.py]"]),  # a plugin may register it
    ("registry-name", "template", SWIFT_SFT, ["args.template=my_tmpl"],
     ["args.template=my_tmpl", "args.custom_register_path=[my_register.py]"]),  # ms-swift 3's name for plugins
    ("lazy-tokenize", "lazy_tokenize", SWIFT_SFT, ["args.lazy_tokenize=true", "args.packing=true", FLASH],
     ["args.packing=true", FLASH]),
    ("streaming-max-steps", "max_steps", SWIFT_SFT, ["args.streaming=true", "args.max_steps=-1"],
     ["args.streaming=true"]),
    ("bf16-gpu", "torch_dtype", SWIFT_GRPO, ["launch.gpu=V100", "args.torch_dtype=bfloat16", "args.use_vllm=true",
                                             "args.vllm_mode=colocate"],
     ["launch.gpu=V100", "args.torch_dtype=float16", "args.use_vllm=true", "args.vllm_mode=colocate"]),
]


@pytest.mark.parametrize("rule, flag, base, bad, good", CASES,
                         ids=[f"{c[0]}:{c[1]}:{c[2].stem}" for c in CASES])
def test_rule_fails_then_passes(rule, flag, base, bad, good):
    errors, _ = problems(base, *bad)
    assert (rule, f"args.{flag}") in errors, errors
    errors, _ = problems(base, *good)
    assert rule not in {r for r, _ in errors}, errors


def test_every_rule_has_a_case():
    from swift_ext.msswift import rules as msrules

    covered = {c[0] for c in CASES}
    import inspect

    source = inspect.getsource(msrules)
    named = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith(("err(\"",))}
    assert named <= covered, named - covered


@pytest.mark.parametrize("recipe", sorted(p for p in RECIPES.rglob("*.yaml") if not p.name.startswith("_")),
                         ids=lambda p: p.stem)
def test_shipped_recipes_pass(recipe):
    errors, _ = problems(recipe)
    assert errors == set()


def test_warnings_for_risky_but_legal_settings():
    _, warnings = problems(MEG_GRPO, "args.vllm_gpu_memory_utilization=0.95", "args.sleep_level=0")
    assert ("vllm-settings", "args.vllm_gpu_memory_utilization") in warnings
    # No FP8 parameters (no fp8_param_gather): outside the reports' conditions, so neither error nor warning.
    errors, warnings = problems(MEG_SFT, "args.fp8_format=e4m3", "args.use_precision_aware_optimizer=true")
    assert "fp8-optimizer" not in {r for r, _ in errors | warnings}


def test_grpo_greedy_rollouts_are_a_warning_unless_the_baseline_is_the_batch():
    _, warnings = problems(SWIFT_GRPO, "args.temperature=0")
    assert ("grpo-greedy", "args.temperature") in warnings
    _, warnings = problems(SWIFT_GRPO, "args.temperature=0", "args.advantage_estimator=reinforce_plus_plus")
    assert "grpo-greedy" not in {code for code, _ in warnings}
    _, warnings = problems(SWIFT_GRPO, "args.temperature=0.9")
    assert "grpo-greedy" not in {code for code, _ in warnings}
    # top_k 1 keeps only the most likely token: the same greedy rollout, named on top_k
    _, warnings = problems(SWIFT_GRPO, "args.temperature=0.9", "args.top_k=1")
    assert ("grpo-greedy", "args.top_k") in warnings
    _, warnings = problems(SWIFT_GRPO, "args.temperature=0.9", "args.top_k=50")
    assert "grpo-greedy" not in {code for code, _ in warnings}


@pytest.mark.parametrize("base, extra", [(MEG_SFT, ["args.train_iters=100", "args.num_train_epochs=null"]),
                                         (SWIFT_SFT, ["args.max_steps=100", "args.val_dataset=null"])])
def test_a_streaming_split_is_dropped_by_ms_swift_and_plan_says_so(base, extra):
    from swift.arguments.base_args.data_args import DataArguments

    from swift_ext.planner.plan import make_plan

    # ms-swift 4.6 itself (DataArguments.__post_init__, run by both engines' argument classes): no split of a stream.
    real = DataArguments(dataset=["d.jsonl"], streaming=True, split_dataset_ratio=0.1)
    assert real.split_dataset_ratio == 0.0 and not real._val_dataset_exists
    result = make_plan(load_recipe(base, ["args.streaming=true", "args.split_dataset_ratio=0.1", *extra]), oracle=False)
    said = [w for w in result.warnings if w.path == "args.split_dataset_ratio"]
    assert [w.code for w in said] == ["msswift-override"] and "no evaluation" in said[0].message
    assert not [e for e in result.errors if e.path == "args.eval_iters"]  # nothing to evaluate: eval_iters not needed
    kept = make_plan(load_recipe(base, ["args.split_dataset_ratio=0.1", *extra]), oracle=False)
    assert not [w for w in kept.warnings if w.path == "args.split_dataset_ratio"]  # not streaming: the split stays


def test_a_split_beside_val_dataset_is_dropped_as_ms_swift_does():
    from swift_ext.planner.plan import make_plan

    result = make_plan(load_recipe(SWIFT_SFT, ["args.split_dataset_ratio=0.1"]), oracle=False)  # it has val_dataset
    said = [w for w in result.warnings if w.path == "args.split_dataset_ratio"]
    assert [w.code for w in said] == ["msswift-override"] and "val_dataset is set" in said[0].message


@pytest.mark.parametrize("tuner, said", [("full", True), (None, False)])
def test_megatron_adapters_turn_full_into_lora_as_ms_swift_does(tuner, said):
    # MegatronArguments.__post_init__: adapters (or mcore_adapter, ref adapters) with tuner_type full -> lora. The rules
    # read the coerced value; a stated full is said to be replaced.
    from swift_ext.planner.plan import make_plan
    from swift_ext.msswift.bound_args import Args
    from swift_ext.msswift.schema import schema_for

    overrides = ["args.adapters=out/checkpoint-100", f"args.tuner_type={tuner}" if tuner else "args.tuner_type=null"]
    recipe = load_recipe(MEG_SFT, overrides)
    args = Args.bind(recipe, schema_for(recipe.engine, recipe.command))
    assert args.str("tuner_type") == "lora"
    result = make_plan(recipe, oracle=False)
    replaced = [w for w in result.warnings if w.path == "args.tuner_type" and w.code == "msswift-override"]
    assert bool(replaced) == said, [w.render() for w in result.warnings]


@pytest.mark.parametrize("given, refused", [
    (["args.padding_side=left", "args.sequence_parallel_size=2", "args.padding_free=false"], True),
    (["args.padding_side=left", "args.sequence_parallel_size=2", "args.padding_free=true",
      "args.attn_impl=flash_attn"], False),
    (["args.padding_side=left", "args.sequence_parallel_size=1", "args.padding_free=false"], False),
])
def test_swift_engine_padding_side_left_needs_padding_free_under_sequence_parallel(given, refused):
    errors, _ = problems(SWIFT_SFT, *given)
    assert (("padding-side", "args.padding_side") in errors) == refused, errors


def test_the_installed_collator_asserts_right_padding_outside_padding_free():
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    text = (root / "template/base.py").read_text(encoding="utf-8")
    body = text[text.index("    def _data_collator(self"):]
    body = body[:body.index("\n    def ", 10)]
    assert "if self.padding_free:" in body and "elif self.use_megatron or self.sequence_parallel_size > 1:" in body
    assert "assert padding_side == 'right'" in body


@pytest.mark.parametrize("extra", [
    ["args.val_dataset=[data/grpo/val.jsonl]"],  # no #N: the file's size, not read here
    ["args.val_dataset=[data/grpo/val.jsonl#1]", "args.eval_use_evalscope=true"],  # GRPOTrainer skips the assert
    ["args.val_dataset=[data/grpo/val.jsonl#1]", "args.eval_strategy='no'"],  # no evaluation at all
], ids=["no-sample-count", "evalscope", "eval-off"])
def test_grpo_eval_size_stays_quiet_where_the_assert_is_not_reached(extra):
    errors, _ = problems(SWIFT_GRPO, "args.per_device_eval_batch_size=8", *extra)
    assert "grpo-eval-size" not in {r for r, _ in errors}, errors


@pytest.mark.parametrize("base", [SWIFT_GRPO, MEG_GRPO], ids=["swift", "megatron"])
def test_gym_reward_needs_a_gym_scheduler_in_the_trainer(base):
    # rl_core/grpo_algorithm.py score_completions reads rollout_infos['total_reward'], which only GYMScheduler (and
    # OpenEnvScheduler) write: use_gym_env / gym_env with a single-turn or non-gym rollout fails at the first reward.
    # The swift engine reads use_gym_env only with vLLM (colocate here).
    if base == SWIFT_GRPO:
        base = [base, "args.use_vllm=true", "args.vllm_mode=colocate"]
    else:
        base = [base]
    errors, _ = problems(*base, "args.use_gym_env=true")
    assert ("gym-scheduler", "args.use_gym_env") in errors, errors
    errors, _ = problems(*base, "args.gym_env=frozen_lake")
    assert ("gym-scheduler", "args.gym_env") in errors, errors
    errors, _ = problems(*base, "args.gym_env=frozen_lake", "args.multi_turn_scheduler=thinking_tips_scheduler")
    assert ("gym-scheduler", "args.multi_turn_scheduler") in errors, errors
    for good in (["args.gym_env=frozen_lake", "args.multi_turn_scheduler=gym_scheduler", "args.max_turns=10"],
                 ["args.gym_env=frozen_lake", "args.use_gym_env=false"],
                 ["args.use_gym_env=true", "args.multi_turn_scheduler=openenv_scheduler"]):
        errors, _ = problems(*base, *good)
        assert "gym-scheduler" not in {r for r, _ in errors}, (good, errors)


def test_gym_reward_without_vllm_is_a_warning_on_the_swift_engine():
    # rlhf_trainers/rollout_mixin.py _prepare_vllm: `self.use_gym_env = False`, then `if not args.use_vllm: ...
    # return` before args.use_gym_env is read: score_completions never asks for total_reward, nothing fails.
    errors, warnings = problems(SWIFT_GRPO, "args.use_gym_env=true")
    assert "gym-scheduler" not in {r for r, _ in errors}, errors
    assert "gym-scheduler" in {r for r, _ in warnings}, warnings


def test_gym_reward_is_not_judged_when_a_rollout_server_runs_the_turns():
    errors, _ = problems(MEG_GRPO, "args.use_gym_env=true", "args.vllm_mode=server",
                         "args.vllm_server_host=[127.0.0.1]", "args.sleep_level=0", "args.offload_model=false",
                         "args.offload_optimizer=false")
    assert "gym-scheduler" not in {r for r, _ in errors}, errors


@pytest.mark.parametrize("base", [SWIFT_GRPO, MEG_GRPO], ids=["swift", "megatron"])
def test_per_sequence_advantage_losses_meet_the_dynamic_teacher(base):
    # rollout_mixin.py _setup_teacher: with no teacher _has_teacher is true (dynamic self-distillation), and the loss
    # refuses real/fipo and off_policy_sequence_mask_delta under a teacher.
    from swift.rlhf_trainers.rollout_mixin import RolloutTrainerMixin

    class Bare(RolloutTrainerMixin):
        def __init__(self):
            pass

    trainer = Bare()
    trainer._teacher_model, trainer.teacher_model_server, trainer.args = None, None, None
    trainer._setup_teacher()
    assert trainer._has_teacher  # the installed engine's premise for this warning
    _, warnings = problems(base, "args.loss_type=fipo")
    assert ("grpo-dynamic-opd", "args.loss_type") in warnings, warnings
    _, warnings = problems(base, "args.off_policy_sequence_mask_delta=0.5")
    assert ("grpo-dynamic-opd", "args.off_policy_sequence_mask_delta") in warnings, warnings
    _, warnings = problems(base, "args.loss_type=dapo")
    assert "grpo-dynamic-opd" not in {r for r, _ in warnings}
    errors, warnings = problems(base, "args.loss_type=fipo", "args.teacher_model=Qwen/Qwen3-8B")
    assert "grpo-dynamic-opd" not in {r for r, _ in warnings}  # an explicit teacher: grpo-teacher refuses it


def test_gym_env_must_be_registered(tmp_path):
    # GYMScheduler._create_env: envs holds math_env and what plugins register; anything else fails at the first rollout
    gym = ["args.multi_turn_scheduler=gym_scheduler", "args.max_turns=4"]
    errors, _ = problems(MEG_GRPO, *gym, "args.gym_env=frozen_lake")
    assert ("gym-env", "args.gym_env") in errors, errors
    errors, _ = problems(MEG_GRPO, *gym, "args.gym_env=math_env")
    assert "gym-env" not in {r for r, _ in errors}, errors
    plugin = tmp_path / "lake.py"
    plugin.write_text("from swift.rollout.gym_env import Env, envs\\n\\nclass Lake(Env):\\n    pass\\n\\n"
                      "envs['frozen_lake'] = Lake\\n")
    errors, _ = problems(MEG_GRPO, *gym, "args.gym_env=frozen_lake", f"args.external_plugins=[{plugin}]")
    assert "gym-env" not in {r for r, _ in errors}, errors


def test_gym_env_is_not_read_when_every_row_names_its_env(tmp_path):
    # GYMScheduler._create_env: env_config.get('name', self.gym_env_name) -- a row's own name wins, so an unknown
    # gym_env is never read when every row names a registered environment
    gym = ["args.multi_turn_scheduler=gym_scheduler", "args.max_turns=4", "args.gym_env=frozen_lake"]
    rows = tmp_path / "math.jsonl"
    row = {"messages": [{"role": "user", "content": "1+1?"}], "env_config": {"name": "math_env"}}
    rows.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    errors, _ = problems(MEG_GRPO, *gym, f"args.dataset=[{rows}]")
    assert "gym-env" not in {r for r, _ in errors}, errors
    rows.write_text(json.dumps(row) + "\n" + json.dumps({"messages": row["messages"]}) + "\n")  # one row reads it
    errors, _ = problems(MEG_GRPO, *gym, f"args.dataset=[{rows}]")
    assert ("gym-env", "args.gym_env") in errors, errors


def test_chord_needs_its_mu_schedule():
    # rlhf_trainers/utils.py mu_schedule_function compares/adds the chord_mu_* values (None by default) at every step
    chord = ["args.chord_sft_dataset=[AI-MO/NuminaMath-TIR]", "args.chord_sft_per_device_train_batch_size=1"]
    errors, _ = problems(SWIFT_GRPO, *chord)
    assert ("grpo-chord", "args.chord_mu_warmup_steps") in errors, errors
    schedule = ["args.chord_mu_warmup_steps=0", "args.chord_mu_decay_steps=200", "args.chord_mu_valley=0.05"]
    errors, _ = problems(SWIFT_GRPO, *chord, *schedule)
    assert ("grpo-chord", "args.chord_mu_peak") in errors, errors  # the decay reads the peak
    errors, _ = problems(SWIFT_GRPO, *chord, *schedule, "args.chord_mu_peak=0.9")
    assert "grpo-chord" not in {r for r, _ in errors}, errors
    errors, _ = problems(SWIFT_GRPO, *schedule)  # no CHORD dataset: the schedule is never read
    assert "grpo-chord" not in {r for r, _ in errors}, errors


def test_cosine_reward_period_below_the_completion_budget_is_a_warning():
    from swift.rewards.orm import CosineReward

    # the installed cosfn is unclamped: twice the period scores like length 0
    assert CosineReward.cosfn(0, 512, 0.5, 1.0) == CosineReward.cosfn(1024, 512, 0.5, 1.0)
    cos = ["args.reward_funcs=[accuracy,cosine]", "args.max_completion_length=2048"]
    _, warnings = problems(SWIFT_GRPO, *cos, "args.cosine_max_len=1024")
    assert ("cosine-max-len", "args.cosine_max_len") in warnings, warnings
    for fine in (["args.cosine_max_len=2048"], []):
        _, warnings = problems(SWIFT_GRPO, *cos, *fine)
        assert "cosine-max-len" not in {r for r, _ in warnings}, warnings
    _, warnings = problems(SWIFT_GRPO, "args.reward_funcs=[accuracy]", "args.max_completion_length=2048",
                           "args.cosine_max_len=1024")
    assert "cosine-max-len" not in {r for r, _ in warnings}  # no cosine reward reads it


def test_soft_overlong_window_past_the_completion_budget_is_a_warning():
    soft = ["args.reward_funcs=[accuracy,soft_overlong]", "args.max_completion_length=4096",
            "args.soft_cache_length=1024"]
    _, warnings = problems(SWIFT_GRPO, *soft, "args.soft_max_length=8192")  # penalised only past 7168 tokens
    assert ("soft-overlong-window", "args.soft_max_length") in warnings, warnings
    for fine in (["args.soft_max_length=4096"], []):  # unset: ms-swift uses max_completion_length
        _, warnings = problems(SWIFT_GRPO, *soft, *fine)
        assert "soft-overlong-window" not in {r for r, _ in warnings}, warnings


def test_positive_repetition_penalty_rewards_repetition():
    from types import SimpleNamespace

    from swift.rewards.orm import RepetitionPenalty

    reward = RepetitionPenalty(SimpleNamespace(repetition_n_grams=2, repetition_max_penalty=1.0))
    assert reward(["a b a b a b a b"])[0] > 0 == reward(["a b c d e f g h"])[0]  # the installed sign
    rep = ["args.reward_funcs=[accuracy,repetition]"]
    _, warnings = problems(SWIFT_GRPO, *rep, "args.repetition_max_penalty=1.0")
    assert ("repetition-penalty-sign", "args.repetition_max_penalty") in warnings, warnings
    _, warnings = problems(SWIFT_GRPO, *rep, "args.repetition_max_penalty=-1.0")
    assert "repetition-penalty-sign" not in {r for r, _ in warnings}, warnings


def test_a_solution_reward_on_hub_data_without_a_solution_column_is_refused():
    # ms-swift#7316: the accuracy reward on gsm8k (question, answer)
    gsm = ["args.dataset=[modelscope/gsm8k#5000]"]
    errors, _ = problems(SWIFT_GRPO, *gsm, "args.reward_funcs=[accuracy,format]")
    assert ("solution-column", "args.dataset") in errors, errors
    for fine in (["args.reward_funcs=[format]"],  # reads no solution
                 ["args.reward_funcs=[accuracy]", 'args.columns={"answer": "solution"}'],  # renamed onto it
                 ["args.reward_funcs=[accuracy]", "args.dataset=[AI-MO/NuminaMath-TIR#5000]"],  # has it
                 ["args.reward_funcs=[accuracy]", "args.dataset=[modelscope/gsm8k, AI-MO/NuminaMath-TIR]"]):
        errors, _ = problems(SWIFT_GRPO, *gsm, *fine)
        assert "solution-column" not in {r for r, _ in errors}, (fine, errors)
    errors, _ = problems(MEG_GRPO, *gsm, "args.reward_funcs=[cosine]")
    assert ("solution-column", "args.dataset") in errors, errors


def test_solution_column_leaves_mappings_and_registrations_it_cannot_read(tmp_path):
    # ms-swift reads `columns` with json_parse_to_dict: a JSON file's path and text json_repair mends carry the
    # mapping too; an external_plugins / custom_register_path / custom_dataset_info file may re-register the dataset
    # (register_dataset exist_ok) or the reward. None of these is judged; a mapping elsewhere is still refused.
    mapping = tmp_path / "columns.json"
    mapping.write_text('{"answer": "solution"}')
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from swift.rewards import orms\n")
    info = tmp_path / "dataset_info.json"
    info.write_text('[{"ms_dataset_id": "modelscope/gsm8k", "columns": {"answer": "solution"}}]')
    gsm = ["args.dataset=[modelscope/gsm8k#5000]", "args.reward_funcs=[accuracy]"]
    for fine in ([f"args.columns={mapping}"], ['args.columns="{\'answer\': \'solution\'}"'],
                 [f"args.external_plugins=[{plugin}]"], [f"args.custom_dataset_info=[{info}]"]):
        errors, _ = problems(SWIFT_GRPO, *gsm, *fine)
        assert "solution-column" not in {r for r, _ in errors}, (fine, errors)
    errors, _ = problems(SWIFT_GRPO, *gsm, 'args.columns={"question": "query"}')
    assert ("solution-column", "args.dataset") in errors, errors
