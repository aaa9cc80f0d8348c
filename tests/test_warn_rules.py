"""Warnings for silent misbehaviour (planner/warn_rules.py): MTP left untrained, what LoRA target_modules
expand to, expert or vision-tower LoRA that vLLM cannot load, missing plugin files."""

from __future__ import annotations

import json
import os

from conftest import FIXTURES, RECIPES, swift_ext
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"
TINY_SFT = RECIPES / "smoke/tiny-sft.yaml"


def plan_of(path, *overrides, model_config=None):
    return make_plan(load_recipe(path, list(overrides)), model_config=model_config)


def rules(problems) -> set[str]:
    return {p.code for p in problems}


def lora_note(plan) -> str:
    (note,) = [n for n in plan.notes if n.startswith("LoRA target_modules")]
    return note


# ---- MTP -------------------------------------------------------------------------------------------------

def test_mtp_in_the_model_but_mtp_num_layers_unset_warns_with_the_fix():
    plan = plan_of(GRPO)
    layers = resolve_shape(plan.recipe.args["model"]).mtp_num_layers
    assert layers >= 1
    (warning,) = [w for w in plan.warnings if w.code == "mtp-untrained"]
    assert warning.path == "args.mtp_num_layers" and f"mtp_num_layers: {layers}" in warning.hint
    assert "neither trained nor saved" in warning.message
    assert "mtp-untrained" not in rules(plan_of(GRPO, f"args.mtp_num_layers={layers}").warnings)
    # switched off on purpose: the same consequence, said without claiming the value is missing
    (off,) = [w for w in plan_of(GRPO, "args.mtp_num_layers=0").warnings if w.code == "mtp-untrained"]
    assert "mtp_num_layers is 0" in off.message and "not set" not in off.message
    assert "mtp_num_layers is not set" in warning.message


def test_transformers_engine_says_mtp_is_not_trained():
    plan = plan_of(TINY_SFT)
    assert plan.shape is not None and plan.shape.mtp_num_layers
    (warning,) = [w for w in plan.warnings if w.code == "mtp-untrained"]
    assert "transformers engine" in warning.message and "engine: megatron" in warning.hint


def test_export_dropping_mtp_is_a_note_not_a_warning():
    plan = plan_of(SFT)  # trains MTP; the note still says what happens on export
    assert "mtp-untrained" not in rules(plan.warnings)
    assert any("--merge_lora" in n and "keep_base_mtp" in n for n in plan.notes)


# ---- LoRA targets ------------------------------------------------------------------------------------------

def test_all_linear_on_megatron_covers_experts_and_mtp_but_not_router():
    note = lora_note(plan_of(SFT))
    assert "MoE routed experts: linear_fc1, linear_fc2" in note and "Gated DeltaNet layers: in_proj, out_proj" in note
    assert "MTP block: eh_proj" in note
    assert "not adapted: router, vision tower/aligner" in note
    assert "router: router" in lora_note(plan_of(SFT, "args.target_modules=[all-linear,all-router]"))
    vision = lora_note(plan_of(SFT, "args.freeze_vit=false"))
    assert "vision tower/aligner: " in vision and "not adapted: router" in vision


def test_named_targets_leave_the_rest_out():
    note = lora_note(plan_of(SFT, "args.target_modules=[linear_qkv,linear_proj]"))
    assert "gated attention layers: linear_qkv, linear_proj" in note
    assert "MoE routed experts" in note.split("not adapted:")[1]


def test_transformers_engine_all_linear_misses_fused_experts():
    plan = plan_of(TINY_SFT)
    note = lora_note(plan)
    assert "shared expert: gate_proj, up_proj, down_proj, shared_expert_gate" in note
    assert "MoE routed experts" in note.split("not adapted:")[1]
    assert any("target_parameters" in n for n in plan.notes)


# ---- GRPO expert LoRA in vLLM ---------------------------------------------------------------------------------

def _moe_config(tmp_path, model_type: str):
    model = tmp_path / model_type
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": model_type, "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 4,
        "head_dim": 128, "num_hidden_layers": 48, "vocab_size": 151936, "num_experts": 128,
        "num_experts_per_tok": 8, "moe_intermediate_size": 768}))
    return model


def test_adapter_sync_of_expert_lora_warns_on_qwen3_6():
    plan = plan_of(GRPO, "args.vllm_enable_lora=true")
    (warning,) = [w for w in plan.warnings if w.code == "vllm-expert-lora"]
    assert "#40005" in warning.message and "vllm_enable_lora: false" in warning.hint
    assert "vllm-expert-lora" not in rules(plan_of(GRPO).warnings)  # merged before each sync: loads fine
    attention_only = plan_of(GRPO, "args.vllm_enable_lora=true", "args.target_modules=[linear_qkv,linear_proj]")
    assert "vllm-expert-lora" not in rules(attention_only.warnings)


def test_server_mode_expert_lora_warns_only_when_the_recipe_says_the_server_adapts():
    # A rollout server merges unless started with --vllm_enable_lora (ms-swift's moe_server_lora.sh example).
    server = ("args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert "vllm-expert-lora" not in rules(plan_of(GRPO, *server).warnings)
    (warning,) = [w for w in plan_of(GRPO, *server, "args.vllm_enable_lora=true").warnings
                  if w.code == "vllm-expert-lora"]
    assert "the rollout server decides" in warning.message and warning.path == "args.vllm_mode"


def test_expert_lora_follows_the_vllm_version(tmp_path):
    model = _moe_config(tmp_path, "qwen3_moe")
    base = ("args.vllm_enable_lora=true", f"args.model={model}")
    old = plan_of(GRPO, *base, "env.SWIFT_EXT_VLLM_VERSION=0.10.2")
    (warning,) = [w for w in old.warnings if w.code == "vllm-expert-lora"]
    assert "0.10.2" in warning.message and "predates" in warning.message
    assert "vllm-expert-lora" not in rules(plan_of(GRPO, *base, "env.SWIFT_EXT_VLLM_VERSION=0.11.2").warnings)


def test_expert_lora_without_vllm_says_it_cannot_check(tmp_path, monkeypatch):
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm")
        installed = True
    except PackageNotFoundError:
        installed = False
    monkeypatch.delenv("SWIFT_EXT_VLLM_VERSION", raising=False)
    model = _moe_config(tmp_path, "qwen3_moe")
    plan = plan_of(GRPO, "args.vllm_enable_lora=true", f"args.model={model}")
    found = [w for w in plan.warnings if w.code == "vllm-expert-lora"]
    if installed:
        assert all("cannot be checked" not in w.message for w in found)
    else:
        assert len(found) == 1 and "cannot be checked" in found[0].message


# ---- vllm-moe-backend-sync ------------------------------------------------------------------------------------------

MOONLIGHT = FIXTURES / "issues/nemo-rl-2586-moonlight-vllm-020-moe-backend.yaml"


def test_moe_rollout_on_vllm_020_default_kernel_warns_and_triton_clears_it():
    # NVIDIA-NeMo/RL#2586 / #2618, verl#7978: vLLM >= 0.20's default FlashInfer MoE kernel breaks the in-place sync.
    (warning,) = [w for w in plan_of(MOONLIGHT).warnings if w.code == "vllm-moe-backend-sync"]
    assert warning.path == "args.vllm_engine_kwargs" and "moe_backend: triton" in warning.hint
    pinned = plan_of(MOONLIGHT, 'args.vllm_engine_kwargs={"moe_backend":"triton"}')
    assert "vllm-moe-backend-sync" not in rules(pinned.warnings)
    chosen = plan_of(MOONLIGHT, 'args.vllm_engine_kwargs={"moe_backend":"flashinfer_cutlass"}')
    assert [w.message for w in chosen.warnings if w.code == "vllm-moe-backend-sync"][0].startswith(
        "moe_backend flashinfer_cutlass")


def test_moe_backend_sync_is_judged_only_where_the_reports_were():
    for near in ("env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.17.1", "env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.16.1",
                 "args.model=Qwen/Qwen2.5-7B-Instruct", "launch.gpu=A100-80G", "args.use_vllm=false"):
        assert "vllm-moe-backend-sync" not in rules(plan_of(MOONLIGHT, near).warnings), near
    server = plan_of(MOONLIGHT, "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert "vllm-moe-backend-sync" not in rules(server.warnings)  # `swift rollout` builds its engine its own way
    assert "vllm-moe-backend-sync" in rules(plan_of(MOONLIGHT, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.20.0rc1").warnings)


def test_adapter_sync_leaves_the_rollout_on_the_checkpoints_expert_bias():
    # finalize_model_grads updates a sigmoid router's expert_bias each step; vllm_enable_lora sends only LoRA tensors.
    lora = ("args.tuner_type=lora", "args.target_modules=[linear_qkv,linear_proj]", "args.vllm_enable_lora=true",
            "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.17.1")
    (warning,) = [w for w in plan_of(MOONLIGHT, *lora).warnings if w.code == "vllm-lora-expert-bias"]
    assert warning.path == "args.vllm_enable_lora" and "vllm_enable_lora: false" in warning.hint
    for near in ("args.vllm_enable_lora=false", "args.sleep_level=2", "args.tuner_type=full",
                 'args.megatron_extra_kwargs={"moe_router_bias_update_rate":0}', "args.model=Qwen/Qwen3-30B-A3B"):
        assert "vllm-lora-expert-bias" not in rules(plan_of(MOONLIGHT, *lora, near).warnings), near


# ---- missing plugin files ----------------------------------------------------------------------------------------

def test_missing_plugin_file_is_named_not_the_reward(tmp_path):
    plan = plan_of(GRPO, "args.external_plugins=[plugins/my_rewards.py]", "args.reward_funcs=[my_reward]")
    assert "reward-funcs" not in rules(plan.errors)
    # A warning: the run's working directory (where ms-swift resolves the path) may be another machine's.
    assert "plugin-file" not in rules(plan.errors)
    (problem,) = [e for e in plan.warnings if e.code == "plugin-file"]
    assert "'plugins/my_rewards.py' not found" in problem.message
    assert os.path.join(os.getcwd(), "plugins", "my_rewards.py") in problem.message  # relative to the cwd
    assert "working directory" in problem.message and "'my_reward'" in problem.message


def test_existing_plugin_file_still_checks_reward_names(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from swift.rewards import ORM, orms\nclass R(ORM):\n    pass\norms['my_reward'] = R\n")
    ok = plan_of(GRPO, f"args.external_plugins=[{plugin}]", "args.reward_funcs=[my_reward]")
    assert not {"plugin-file", "reward-funcs"} & rules(ok.errors)
    typo = plan_of(GRPO, f"args.external_plugins=[{plugin}]", "args.reward_funcs=[my_rewrd]")
    assert "reward-funcs" in rules(typo.errors) and "plugin-file" not in rules(typo.errors)


def test_cli_names_the_missing_plugin_file_on_the_transformers_engine(tmp_path):
    result = swift_ext("plan", RECIPES / "smoke/tiny-grpo.yaml", "args.external_plugins=[gone.py]",
                       "args.reward_funcs=[mine]", cwd=tmp_path)
    assert result.returncode == 0  # said, not refused: the run may start where the file is
    assert "'gone.py' not found" in result.stderr and str(tmp_path / "gone.py") in result.stderr
    assert "unknown reward function" not in result.stderr


def test_the_tiny_model_is_planned_with_the_shape_its_build_writes(tmp_path, monkeypatch):
    # plan never builds a model: before the first run builds the tiny one, its shape comes from the config the
    # build will write (tinymodel.unbuilt_config) and must be the one read back from the built config.json
    from dataclasses import replace

    from swift_ext.planner.plan import recipe_shape
    from swift_ext.planner.tinymodel import ensure_model

    ensure_model("tiny-qwen3_6-moe")
    built = recipe_shape("swift-ext://tiny-qwen3_6-moe", None)
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path))  # an empty cache: nothing built there
    planned = recipe_shape("swift-ext://tiny-qwen3_6-moe", None)
    assert planned.source.startswith("swift-ext tiny model") and not list(tmp_path.iterdir())
    assert replace(planned, name="", source="", origin="") == replace(built, name="", source="", origin="")
    assert planned.mtp_num_layers == 1 and plan_of(TINY_SFT).shape is not None


def test_adapter_sync_of_vision_tower_lora_warns_only_when_lora_reaches_the_vision_tower():
    # Qwen3.6 is multimodal: with the vision tower and aligner frozen (ms-swift's defaults) the adapter is the
    # language model's only, which vLLM loads
    assert "vllm-vision-lora" not in rules(plan_of(GRPO, "args.vllm_enable_lora=true").warnings)
    tuned = plan_of(GRPO, "args.vllm_enable_lora=true", "args.freeze_vit=false")
    (warning,) = [w for w in tuned.warnings if w.code == "vllm-vision-lora"]
    assert warning.path == "args.vllm_enable_lora" and "vllm_enable_lora: false" in warning.hint
    assert "vllm-vision-lora" not in rules(plan_of(GRPO, "args.freeze_vit=false").warnings)  # merged syncs


# ---- vllm-mm-cache ---------------------------------------------------------------------------------------------------

VL_GRPO = FIXTURES / "issues/ms-swift-9863-megatron-grpo-vl-mm-processor-cache.yaml"


def test_vl_colocated_rollout_warns_on_the_mm_cache_and_text_or_server_runs_do_not():
    assert "vllm-mm-cache" in rules(plan_of(VL_GRPO).warnings)
    for quiet in (["args.vllm_mm_processor_cache_gb=0"],  # ms-swift's answer (ms-swift#9863)
                  ["args.model=Qwen/Qwen2.5-3B-Instruct"],  # no vision tower: no multimodal cache traffic
                  ["args.vllm_mode=server", "args.vllm_server_host=[10.0.0.2]", "args.vllm_server_port=[8000]"]):
        assert "vllm-mm-cache" not in rules(plan_of(VL_GRPO, *quiet).warnings), quiet
    assert "vllm-mm-cache" in rules(plan_of(VL_GRPO, "args.vllm_mm_processor_cache_gb=2").warnings)


# ---- vllm-cascade-attn ----------------------------------------------------------------------------------------------

CASCADE = FIXTURES / "issues/verl-3595-a100-grpo-cascade-attention.yaml"


def test_long_grpo_rollouts_on_a100_with_cascade_attention_warn():
    # verl PR #3595 / vllm-project/vllm#19384, #22103: cascade attention drifts on non-Hopper FlashAttention-2 GPUs.
    (warning,) = [w for w in plan_of(CASCADE).warnings if w.code == "vllm-cascade-attn"]
    assert warning.path == "args.vllm_disable_cascade_attn" and "vllm_disable_cascade_attn: true" in warning.hint
    for gpu in ("L20", "B200"):
        assert "vllm-cascade-attn" in rules(plan_of(CASCADE, f"launch.gpu={gpu}").warnings), gpu
    megatron = plan_of(CASCADE, "engine=megatron", "args.deepspeed=null", "args.tuner_type=full",
                       "args.per_device_train_batch_size=null", "args.gradient_accumulation_steps=null",
                       "args.micro_batch_size=1", "args.global_batch_size=64", "args.steps_per_generation=1")
    assert "vllm-cascade-attn" in rules(megatron.warnings)


def test_cascade_attention_is_judged_only_where_the_reports_were():
    for near in ("args.vllm_disable_cascade_attn=true", "launch.gpu=H100", "launch.gpu=H20", "launch.gpu=V100",
                 "args.max_completion_length=2048", "args.use_vllm=false", "args.rlhf_type=gkd",
                 # no prefix caching: no shared KV blocks, so vLLM finds no common prefix to cascade over
                 "args.vllm_enable_prefix_caching=false"):
        assert "vllm-cascade-attn" not in rules(plan_of(CASCADE, near).warnings), near
    assert "vllm-cascade-attn" in rules(plan_of(CASCADE, "args.vllm_enable_prefix_caching=true").warnings)
    server = plan_of(CASCADE, "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert "vllm-cascade-attn" not in rules(server.warnings)  # `swift rollout` has its own flag


# ---- vllm-chunked-prefill-budget ------------------------------------------------------------------------------------

CHUNKED = FIXTURES / "issues/verl-7624-vllm-chunked-prefill-off-budget.yaml"


def test_chunked_prefill_off_below_max_model_len_is_refused_for_a_known_vllm():
    # verl#7624: vLLM 0.24 refuses max_num_batched_tokens 8192 < max_model_len 131072 with chunked prefill off.
    (error,) = [e for e in plan_of(CHUNKED).errors if e.code == "vllm-chunked-prefill-budget"]
    assert error.path == "args.vllm_engine_kwargs" and "131072" in error.message and "8192" in error.message
    # an explicit vllm_max_model_len is what vLLM compares
    short = plan_of(CHUNKED, "args.vllm_max_model_len=8192")
    assert "vllm-chunked-prefill-budget" not in rules(short.errors + short.warnings)
    longer = plan_of(CHUNKED, "args.vllm_max_model_len=16384")
    assert "vllm-chunked-prefill-budget" in rules(longer.errors)


def test_chunked_prefill_budget_near_setups_pass_or_only_warn():
    for near in ('args.vllm_engine_kwargs={"max_num_batched_tokens": 8192}',
                 'args.vllm_engine_kwargs={"enable_chunked_prefill": false, "max_num_batched_tokens": 131072}',
                 'args.vllm_engine_kwargs={"enable_chunked_prefill": false}', "args.use_vllm=false"):
        plan = plan_of(CHUNKED, near)
        assert "vllm-chunked-prefill-budget" not in rules(plan.errors + plan.warnings), near
    server = plan_of(CHUNKED, "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert "vllm-chunked-prefill-budget" not in rules(server.errors + server.warnings)
    # an older or unknown vLLM: only a warning (early V1 releases kept chunked prefill on)
    old = plan_of(CHUNKED, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.2")
    assert "vllm-chunked-prefill-budget" in rules(old.warnings) and "vllm-chunked-prefill-budget" not in rules(old.errors)


def test_chunked_prefill_budget_leaves_a_rope_factor_ms_swift_rewrites_unjudged():
    # ms-swift's max_model_len on a yarn checkpoint rewrites the rope factor (ModelArguments._init_rope_scaling:
    # ceil(8192 / 4096) = 2) and hands it to vLLM as hf_overrides: vLLM derives 4096 x 2 = 8192, not 163840.
    yarn = ("args.model=deepseek-ai/DeepSeek-V2-Lite-Chat", "args.tuner_type=lora")
    assert "vllm-chunked-prefill-budget" in rules(plan_of(CHUNKED, *yarn).errors)
    rewritten = plan_of(CHUNKED, *yarn, "args.max_model_len=8192")
    assert "vllm-chunked-prefill-budget" not in rules(rewritten.errors + rewritten.warnings)
    # Llama-3's llama3 rope: vLLM applies no factor, the derived length stays 131072 -- still refused
    assert "vllm-chunked-prefill-budget" in rules(plan_of(CHUNKED, "args.max_model_len=8192").errors)


# ---- rollout-server-qlora -------------------------------------------------------------------------------------------

QLORA_SERVER = FIXTURES / "issues/ms-swift-6884-grpo-qlora-rollout-server.yaml"


def test_qlora_against_a_rollout_server_warns_on_vllm_mode():
    # ms-swift#6884: the packed bnb 4-bit base weights reach a bf16 `swift rollout` server at the first sync.
    (warning,) = [w for w in plan_of(QLORA_SERVER).warnings if w.code == "rollout-server-qlora"]
    assert warning.path == "args.vllm_mode" and "--vllm_quantization bitsandbytes" in warning.hint
    # vllm_enable_lora does not avoid it: the first sync is a full one (base_sync_done starts false)
    assert "rollout-server-qlora" in rules(plan_of(QLORA_SERVER, "args.vllm_enable_lora=true").warnings)


def test_qlora_colocated_or_lora_without_bnb_is_not_flagged():
    colocate = ("args.vllm_mode=colocate", "args.vllm_server_host=null", "args.vllm_server_port=null",
                "args.vllm_gpu_memory_utilization=0.5")
    gkd = ("args.rlhf_type=gkd", "args.teacher_model=Qwen/Qwen3-30B-A3B")
    for near in (colocate, ("args.quant_method=null", "args.quant_bits=null"), ("args.quant_bits=8",),
                 ("args.use_vllm=false",),
                 # GKD with lmbda 0 never generates on-policy, so no weight sync ever reaches the server
                 (*gkd, "args.lmbda=0")):
        assert "rollout-server-qlora" not in rules(plan_of(QLORA_SERVER, *near).warnings), near
    assert "rollout-server-qlora" in rules(plan_of(QLORA_SERVER, *gkd).warnings)  # lmbda 0.5: it generates
