"""Issue #21 (refuse only what fails), the planner's own rules: recipes that ms-swift 4.6 / megatron-core 0.16.1 run
but plan refused, each beside the failure the narrowed rule still refuses."""

from __future__ import annotations

import json

from conftest import FIXTURES, RECIPES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"  # Megatron GRPO, colocated vLLM, reward_funcs [accuracy]
SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
WORKING = FIXTURES / "working"
MOONLIGHT = WORKING / "ms-swift-example-megatron-moonlight-deepseek-v3-pp2-shared-overlap.yaml"


def plan(path, *overrides, model_config=None):
    return make_plan(load_recipe(path, list(overrides)), model_config=model_config, oracle=False)


def found(result, code: str) -> tuple[set, set]:
    return ({p.path for p in result.errors if p.code == code}, {p.path for p in result.warnings if p.code == code})


def test_gym_env_adds_the_gym_reward_column_reward_weights_must_count():
    # megatron_args.py _init_grpo (and args_mixin.py GRPOArgumentsMixin.__post_init__ for engine swift): gym_env set and
    # use_gym_env unset turns use_gym_env on, so _prepare_rewards appends a 'gym_reward' column and make_reward_weights
    # wants len(reward_funcs) + 1 weights.
    assert found(plan(GRPO, "args.gym_env=math_env", "args.reward_weights=[1.0, 0.5]"), "reward-funcs")[0] == set()
    assert found(plan(GRPO, "args.gym_env=math_env", "args.reward_weights=[1.0]"), "reward-funcs")[0] == {
        "args.reward_weights"}
    assert found(plan(GRPO, "args.gym_env=math_env", "args.use_gym_env=false", "args.reward_weights=[1.0]"),
                 "reward-funcs")[0] == set()


def test_rewards_registered_through_custom_register_path_are_known(tmp_path, monkeypatch):
    # base_args.py _import_external_plugins appends custom_register_path to external_plugins and imports each file.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_rewards.py").write_text("from swift.rewards import orms\norms['my_reward'] = object\n")
    result = plan(GRPO, "args.reward_funcs=[my_reward]", "args.custom_register_path=[my_rewards.py]")
    assert not found(result, "reward-funcs")[0]
    assert found(plan(GRPO, "args.reward_funcs=[my_rewrd]", "args.custom_register_path=[my_rewards.py]"),
                 "reward-funcs")[0] == {"args.reward_funcs"}


def test_a_plugin_file_missing_here_is_a_warning_not_a_refusal(tmp_path, monkeypatch):
    # ms-swift resolves the file against the run's working directory (import_external_file), on the training node.
    monkeypatch.chdir(tmp_path)
    result = plan(GRPO, "args.reward_funcs=[external_r1v_acc]", "args.external_plugins=[plugin/plugin.py]")
    assert found(result, "plugin-file") == (set(), {"args.external_plugins"})
    assert not found(result, "reward-funcs")[0]  # the missing file may register it
    assert found(plan(GRPO, "args.custom_register_path=[gone.py]"), "plugin-file") == (
        set(), {"args.custom_register_path"})


def test_grpo_arguments_under_another_rlhf_type_are_said_not_refused():
    gkd = ("args.rlhf_type=gkd", "args.reward_funcs=null", "args.num_generations=null", "args.vllm_mode=colocate")
    # GKD resolves its generation batch from steps_per_generation (megatron_args.py; gkd_trainer.py:53): its own.
    assert found(plan(GRPO, *gkd), "grpo-type") == (set(), set())
    # num_generations is set to 1 for GKD and reward_funcs is never read: ignored, nothing fails.
    assert found(plan(GRPO, *gkd, "args.num_generations=8"), "grpo-type") == (set(), {"args.rlhf_type"})
    assert found(plan(GRPO, "args.rlhf_type=dpo"), "grpo-type") == (set(), {"args.rlhf_type"})


def test_visible_devices_beyond_the_ranks_are_idle_fewer_fail():
    more = plan(SFT, "env.CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7")  # 4 ranks per node
    assert found(more, "launch")[0] == set() and not [e for e in more.errors if e.code == "launch"]
    assert [w for w in more.warnings if w.code == "launch" and "CUDA_VISIBLE_DEVICES" in w.message]
    fewer = plan(SFT, "env.CUDA_VISIBLE_DEVICES=0,1")
    assert [e for e in fewer.errors if e.code == "launch" and "CUDA_VISIBLE_DEVICES" in e.message]


def test_megatron_save_and_eval_steps_zero_mean_never():
    # swift/megatron/callbacks/default_flow.py: `if args.save_steps and ...`, `if args.eval_steps and ...`.
    for name in ("save_steps", "eval_steps"):
        assert not found(plan(SFT, f"args.{name}=0"), "argument-range")[0], name
        assert found(plan(SFT, f"args.{name}=-1"), "argument-range")[0] == {f"args.{name}"}
    # logging_steps 0 divides by zero at the second iteration (`state.iteration % args.logging_steps`).
    assert found(plan(SFT, "args.logging_steps=0"), "argument-range")[0] == {"args.logging_steps"}


def test_an_empty_output_dir_is_the_working_directory_an_empty_model_fails():
    # to_abspath('') is os.path.abspath('') (swift/utils/utils.py): ms-swift writes under the working directory.
    assert not found(plan(SFT, "args.output_dir="), "argument-type")[0]
    assert found(plan(SFT, "args.model="), "argument-type")[0] == {"args.model"}


def test_sparse_attention_models_have_no_transformer_engine_attention_to_run_out_of(tmp_path):
    # DeepSeek-V3.2 (DSA): mcore-bridge builds megatron-core's DSAttention (unfused_dsa_fn), not TE's
    # DotProductAttention, so attention_backend flash with its MLA heads on an A100 is not refused.
    from test_mcore_config_rules import DSA_CONFIG

    config = tmp_path / "config.json"
    config.write_text(json.dumps({**DSA_CONFIG, "max_position_embeddings": 163840}))
    dsa = plan(MOONLIGHT, "launch.gpu=A100-80G", "args.model=deepseek-ai/DeepSeek-V3.2", model_config=str(config))
    assert found(dsa, "attention-kernel") == (set(), set())
    assert found(plan(MOONLIGHT, "launch.gpu=A100-80G"), "attention-kernel")[0] == {"args.attention_backend"}


def test_no_colocated_engine_no_vllm_refusals():
    # Megatron GKD with lmbda 0 never generates: _init_rollout_engine returns before building vLLM.
    gkd = ("args.rlhf_type=gkd", "args.reward_funcs=null", "args.num_generations=null",
           "args.teacher_model=Qwen/Qwen3.6-35B-A3B", "args.vllm_gpu_memory_utilization=0.05")
    assert not found(plan(GRPO, *gkd, "args.lmbda=0"), "vllm-memory")[0]
    assert found(plan(GRPO, *gkd, "args.lmbda=0.5"), "vllm-memory")[0] == {"args.vllm_gpu_memory_utilization"}
    assert not found(plan(GRPO, *gkd, "args.lmbda=0", "args.vllm_enable_lora=true", "args.lora_rank=24"),
                     "vllm-lora-rank")[0]
    assert found(plan(GRPO, *gkd, "args.vllm_enable_lora=true", "args.lora_rank=24"), "vllm-lora-rank")[0] == {
        "args.lora_rank"}
    # Megatron SFT: use_vllm defaults to true there, but no engine is built and vllm_max_model_len is never read.
    assert not found(plan(SFT, "args.vllm_max_model_len=10000000"), "max-positions")[0]
    assert found(plan(GRPO, "args.vllm_max_model_len=10000000"), "max-positions")[0] == {"args.vllm_max_model_len"}


def test_target_regex_replaces_transformers_target_modules():
    # MegatronTunerMixin.__post_init__: target_modules = target_regex when it is set.
    hf = ("args.tuner_type=lora", "args.target_modules=[q_proj, v_proj]")
    model = ("args.model=Qwen/Qwen3-8B",)
    assert found(plan(SFT, *model, *hf), "lora-targets")[0] == {"args.target_modules"}
    assert not found(plan(SFT, *model, *hf, r"args.target_regex=.*linear_qkv"), "lora-targets")[0]


def test_megatron_gkd_generation_batch_is_checked_as_grpo_s_with_one_generation():
    # megatron_args.py: rlhf_type gkd sets num_generations = 1 and calls _init_generation_batch_params, whose
    # resolve_generation_batch_size ("must be divisible by global_batch_size") and validate_batch_dp_alignment
    # ("per_device_generation_batch_size ... must be >= 1") raise at argument parsing.
    gkd = WORKING / "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B TP2 PP2 CP2 on 8 GPUs, global_batch_size 16
    assert found(plan(gkd, "args.generation_batch_size=20"), "grpo-batch")[0] == {"args.generation_batch_size"}
    assert found(plan(gkd, "args.generation_batch_size=32"), "grpo-batch")[0] == set()
    assert found(plan(gkd, "args.global_batch_size=4"), "grpo-batch")[0] == {"args.global_batch_size"}
    assert found(plan(gkd, "args.global_batch_size=8"), "grpo-batch")[0] == set()
