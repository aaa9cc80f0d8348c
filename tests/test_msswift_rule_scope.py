"""Scope of the ms-swift refusals (swift_ext/msswift/rules.py, input_rules.py, rlhf_rules.py, spec/secrets.py):
each recipe here plans without the refusal because ms-swift 4.6 never reaches the failing line for it, beside the
recipe that still fails and is still refused. The ms-swift function that decides is named in each test."""

from __future__ import annotations

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe
from swift_ext.spec.secrets import secret_env_problems
from test_msrules import MEG_GRPO, MEG_SFT, SWIFT_GRPO, SWIFT_SFT, problems

KTO = ["command=rlhf", "args.rlhf_type=kto", "args.per_device_train_batch_size=1", "args.gradient_accumulation_steps=1"]


def _codes(found):
    return {code for code, _ in found}


def test_kto_batch_of_one_from_a_cached_dataset_alone_is_not_refused():
    # SwiftSft._prepare_dataset calls _get_dataset (where rlhf.py runs prepare_kto_dataset) only for dataset /
    # val_dataset: a cached_dataset alone never meets the "Batch size is 1" check.
    errors, _ = problems(SWIFT_GRPO, *KTO, "args.dataset=null", "args.val_dataset=null",
                         "args.cached_dataset=[data/kto-cache]")
    assert "kto-batch" not in _codes(errors), errors
    errors, _ = problems(SWIFT_GRPO, *KTO)
    assert ("kto-batch", "args.per_device_train_batch_size") in errors


def test_kto_loss_type_given_as_a_one_item_list_is_read_as_its_item():
    # RLHFArguments._process_loss_type turns [apo_zero_unpaired] into apo_zero_unpaired before prepare_kto_dataset.
    errors, _ = problems(SWIFT_GRPO, *KTO, "args.loss_type=[apo_zero_unpaired]")
    assert "kto-batch" not in _codes(errors), errors


def test_loss_weights_without_loss_type_outside_dpo_is_said_not_refused():
    # _process_loss_type returns at once when loss_type is unset; KTOConfig has no loss_weights, so it is dropped.
    errors, warnings = problems(SWIFT_GRPO, "args.rlhf_type=kto", "args.loss_weights=[1.0]")
    assert "rlhf-loss-types" not in _codes(errors), errors
    assert ("rlhf-loss-types", "args.loss_weights") in warnings
    errors, _ = problems(SWIFT_GRPO, "args.rlhf_type=kto", "args.loss_type=[kto]", "args.loss_weights=[1.0]")
    assert ("rlhf-loss-types", "args.loss_weights") in errors  # the assert rlhf_type == 'dpo' runs
    # DPO: loss_type becomes ['sigmoid'], and trl's DPOConfig.__post_init__ refuses two weights for it
    errors, _ = problems(SWIFT_GRPO, "args.rlhf_type=dpo", "args.loss_weights=[0.5, 0.5]")
    assert ("rlhf-loss-types", "args.loss_weights") in errors


def test_grpo_eval_batch_is_not_checked_when_save_strategy_no_turns_evaluation_off():
    # SftArguments._init_eval_strategy: an unset eval_strategy is save_strategy's; GRPOConfig checks the eval batch
    # only when eval_strategy != 'no' (args_mixin.py _init_generation_batch_params).
    errors, _ = problems(SWIFT_GRPO, "args.per_device_eval_batch_size=2", 'args.save_strategy="no"')
    assert "grpo-batch" not in _codes(errors), errors
    errors, _ = problems(SWIFT_GRPO, "args.per_device_eval_batch_size=2")
    assert ("grpo-batch", "args.per_device_eval_batch_size") in errors


def test_vllm_memory_fraction_is_refused_only_where_the_trainer_builds_the_engine():
    server = ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[10.0.0.2]"]
    errors, warnings = problems(SWIFT_GRPO, *server, "args.vllm_gpu_memory_utilization=1.5")
    assert "vllm-settings" not in _codes(errors), errors
    assert ("vllm-settings", "args.vllm_gpu_memory_utilization") in warnings
    errors, _ = problems(SWIFT_GRPO, "args.use_vllm=true", "args.vllm_mode=colocate",
                         "args.vllm_gpu_memory_utilization=1.5")
    assert ("vllm-settings", "args.vllm_gpu_memory_utilization") in errors


def test_group_by_length_without_shuffle_is_refused_only_where_the_sampler_is_built():
    base = ["args.group_by_length=true", "args.padding_free=false", "args.train_dataloader_shuffle=false"]
    # a streaming dataset gets build_streaming_dataloader, not MegatronPretrainingRandomSampler
    errors, _ = problems(MEG_SFT, *base, "args.streaming=true", "args.num_train_epochs=null", "args.train_iters=100")
    assert ("megatron-args", "args.train_dataloader_shuffle") not in errors, errors
    # GRPO: _init_grpo copies dataset_shuffle (true by default) over train_dataloader_shuffle
    errors, _ = problems(MEG_GRPO, *base)
    assert ("megatron-args", "args.train_dataloader_shuffle") not in errors, errors
    errors, _ = problems(MEG_GRPO, *base, "args.dataset_shuffle=false")
    assert ("megatron-args", "args.dataset_shuffle") in errors
    errors, _ = problems(MEG_SFT, *base)
    assert ("megatron-args", "args.train_dataloader_shuffle") in errors


def test_precision_aware_optimizer_under_megatron_fsdp_gets_the_distributed_optimizer():
    # MegatronArguments._check_megatron_fsdp sets use_distributed_optimizer before OptimizerConfig is built.
    aware = ["args.use_precision_aware_optimizer=true", "args.use_distributed_optimizer=false"]
    errors, _ = problems(MEG_SFT, *aware, "args.use_megatron_fsdp=true")
    assert ("optimizer-precision", "args.use_distributed_optimizer") not in errors, errors
    errors, _ = problems(MEG_SFT, *aware)
    assert ("optimizer-precision", "args.use_distributed_optimizer") in errors


def test_a_scheduler_a_plugin_registers_by_update_is_not_refused(tmp_path):
    plugin = tmp_path / "sched_plugin.py"
    plugin.write_text("from swift.rollout.multi_turn import multi_turns\n"
                      "multi_turns.update({'my_scheduler': object})\n", encoding="utf-8")
    errors, _ = problems(MEG_GRPO, "args.multi_turn_scheduler=my_scheduler", f"args.external_plugins=[{plugin}]")
    assert "grpo-multi-turn" not in _codes(errors), errors
    plugin.write_text("from swift.rollout.multi_turn import multi_turns\n"
                      "multi_turns['my_scheduler'] = object\n", encoding="utf-8")
    errors, _ = problems(MEG_GRPO, "args.multi_turn_scheduler=my_schedulr", f"args.external_plugins=[{plugin}]")
    assert ("grpo-multi-turn", "args.multi_turn_scheduler") in errors


def test_bf16_on_a_v100_is_refused_for_vllm_only_where_a_rollout_engine_is_built():
    # rlhf_support_vllm_types: DPO never builds a vLLM engine, whatever use_vllm says.
    v100 = ["launch.gpu=V100", "args.torch_dtype=bfloat16", "args.use_vllm=true"]
    errors, _ = problems(SWIFT_GRPO, *v100, "args.rlhf_type=dpo")
    assert "bf16-gpu" not in _codes(errors), errors
    errors, _ = problems(SWIFT_GRPO, *v100, "args.vllm_mode=colocate")
    assert ("bf16-gpu", "args.torch_dtype") in errors


def test_num_labels_of_a_reward_model_without_task_type_is_set_by_ms_swift():
    # get_model_info_meta: task_type unset and model_meta.is_reward -> num_labels = 1, whatever was given.
    reward = ["args.model=Qwen/Qwen2.5-Math-RM-72B", "args.template=null"]
    errors, _ = problems(SWIFT_SFT, *reward, "args.num_labels=0")
    assert "num-labels" not in _codes(errors), errors
    errors, _ = problems(SWIFT_SFT, *reward, "args.num_labels=0", "args.task_type=seq_cls")
    assert ("num-labels", "args.num_labels") in errors
    errors, _ = problems(SWIFT_SFT, "args.num_labels=0")
    assert ("num-labels", "args.num_labels") in errors


def test_mla_config_fields_are_accepted_for_deepseek_v41():
    # mcore-bridge 1.6.5 registers deepseek_v41 with config_cls=MLAModelConfig (MLATransformerConfig's fields).
    extra = 'args.megatron_extra_kwargs={"mscale": 1.0, "cache_mla_latents": true}'
    errors, _ = problems(MEG_SFT, "args.model=deepseek-ai/DeepSeek-V4.1-Flash", extra)
    assert "megatron-extra-kwargs" not in _codes(errors), errors
    errors, warnings = problems(MEG_SFT, "args.model=/data/models/my-local-model", "args.model_type=null", extra)
    assert "megatron-extra-kwargs" not in _codes(errors) and "megatron-extra-kwargs" in _codes(warnings), errors
    errors, _ = problems(MEG_SFT, extra)  # Qwen3.6: ModelConfig has no mscale
    assert ("megatron-extra-kwargs", "args.megatron_extra_kwargs") in errors


def test_env_names_that_only_mention_a_token_are_not_secrets():
    # swift/utils/torch_utils.py get_generative_reranker_logits reads the token strings from these variables.
    recipe = load_recipe(SWIFT_SFT, ["env.GENERATIVE_RERANKER_POSITIVE_TOKEN=yes",
                                     "env.GENERATIVE_RERANKER_NEGATIVE_TOKEN=no",
                                     "env.HF_HUB_DISABLE_IMPLICIT_TOKEN=1", "env.HF_TOKEN_PATH=/secrets/hf"])
    assert secret_env_problems(recipe) == []
    recipe = load_recipe(SWIFT_SFT, ["env.HF_TOKEN=hf_abc", "env.WANDB_API_KEY=abc"])
    assert {f.path for f in secret_env_problems(recipe)} == {"env.HF_TOKEN", "env.WANDB_API_KEY"}
    plan = make_plan(load_recipe(SWIFT_SFT, ["env.GENERATIVE_RERANKER_POSITIVE_TOKEN=yes"]))
    assert "secret" not in {e.code for e in plan.errors}


def test_an_unknown_scheduler_is_refused_in_server_mode_and_without_vllm():
    # rlhf_trainers/rollout_mixin.py prepare_rollout runs _prepare_scheduler (`assert multi_turn_scheduler in
    # multi_turns`) before _prepare_vllm; megatron/trainers/rollout_mixin.py _init_rollout_engine before its
    # `if not args.use_vllm: return` -- every vllm_mode, and no vLLM at all.
    server = ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]"]
    for base, mode in ((SWIFT_GRPO, server), (SWIFT_GRPO, ["args.use_vllm=false"]), (MEG_GRPO, server)):
        errors, _ = problems(base, *mode, "args.multi_turn_scheduler=math_tips")
        assert ("grpo-multi-turn", "args.multi_turn_scheduler") in errors, (base, mode, errors)
        errors, _ = problems(base, *mode, "args.multi_turn_scheduler=math_tip_trick")
        assert "grpo-multi-turn" not in _codes(errors), (base, mode, errors)


def test_a_comma_in_a_target_modules_entry_is_refused_and_separate_entries_or_target_regex_are_not():
    # get_target_modules passes explicit names to peft, which matches module-name suffixes: 'q_proj,v_proj' none.
    for base in (SWIFT_SFT, MEG_SFT):
        errors, _ = problems(base, "args.tuner_type=lora", "args.target_modules=[q_proj,v_proj]")
        assert "target-modules-comma" not in _codes(errors), errors
        errors, _ = problems(base, "args.tuner_type=lora", "args.target_modules=['q_proj,v_proj']")
        assert ("target-modules-comma", "args.target_modules") in errors, base
    # target_regex replaces target_modules (TunerArguments.__post_init__), and full training builds no adapter
    errors, _ = problems(SWIFT_SFT, "args.tuner_type=lora", "args.target_modules=['q_proj,v_proj']",
                         "args.target_regex=.*(q_proj|v_proj)")
    assert "target-modules-comma" not in _codes(errors), errors
    errors, _ = problems(SWIFT_SFT, "args.tuner_type=full", "args.target_modules=['q_proj,v_proj']")
    assert "target-modules-comma" not in _codes(errors), errors
    # beside another entry the comma entry matches nothing while peft finds the others' modules: said, not refused
    # (peft tuners_utils.py BaseTuner.inject_adapter raises only when no module was targeted at all)
    errors, warnings = problems(SWIFT_SFT, "args.tuner_type=lora", "args.target_modules=[all-linear, 'gate_proj,up_proj']")
    assert "target-modules-comma" not in _codes(errors) and ("target-modules-comma", "args.target_modules") in warnings


def test_truncation_split_is_refused_outside_pre_training_and_passes_for_pt():
    # SwiftSft._encode_dataset: split needs causal_lm, the train template and use_chat_template false
    errors, _ = problems(SWIFT_SFT, "args.truncation_strategy=split")
    assert ("truncation-split", "args.truncation_strategy") in errors
    errors, _ = problems(SWIFT_SFT, "command=pt", "args.truncation_strategy=split")
    assert "truncation-split" not in _codes(errors), errors
    errors, _ = problems(SWIFT_SFT, "args.truncation_strategy=split", "args.use_chat_template=false")
    assert "truncation-split" not in _codes(errors), errors
    errors, _ = problems(SWIFT_SFT, "command=pt", "args.truncation_strategy=split", "args.lazy_tokenize=true")
    assert ("truncation-split", "args.lazy_tokenize") in errors
