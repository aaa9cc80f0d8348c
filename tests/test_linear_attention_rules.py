"""Packed input to the transformers Gated DeltaNet (planner/linear_attention_rules.py): Qwen3-Next packing on the
transformers engine, whose GDN gets no sample boundaries (linear-attention-packed-swift, a warning), and Qwen3.5 packing
on Megatron under USE_MCORE_GDN=0 below transformers 5.9, whose wrapped transformers GDN raises (linear-attention-packed);
and the GDN output norm whose gradient megatron-core does not sum over TP without sequence_parallel
(linear-attention-norm-tp, a warning)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
NEXT_SWIFT = ISSUES / "ms-swift-7981-qwen3-next-swift-packing.yaml"
HF_GDN = ISSUES / "ms-swift-9382-qwen35-hf-gdn-packing.yaml"
NORM_TP = ISSUES / "megatron-lm-7452-gdn-out-norm-tp2-no-sp.yaml"  # Qwen3.5-9B full SFT, TP=2, no SP


def plan_of(path, *overrides):
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def found(problems, code) -> list:
    return [p for p in problems if p.code == code]


# ---- linear-attention-packed-swift ---------------------------------------------------------------------------

def test_qwen3_next_packing_on_the_transformers_engine_is_warned_on_packing():
    (warning,) = found(plan_of(NEXT_SWIFT).warnings, "linear-attention-packed-swift")
    assert warning.path == "args.packing" and "engine: megatron" in warning.hint


def test_padding_free_alone_is_named_when_it_packs_the_rows():
    plan = plan_of(NEXT_SWIFT, "args.packing=false", "args.padding_free=true")
    (warning,) = found(plan.warnings, "linear-attention-packed-swift")
    assert warning.path == "args.padding_free"


def test_unpacked_rows_qwen35_or_the_megatron_engine_are_not_warned():
    assert not found(plan_of(NEXT_SWIFT, "args.packing=false").warnings, "linear-attention-packed-swift")
    # ms-swift patches Qwen3.5/3.6's GatedDeltaNet and its template sends cu_seq_lens_q
    assert not found(plan_of(NEXT_SWIFT, "args.model=Qwen/Qwen3.5-4B").warnings, "linear-attention-packed-swift")
    # a model without linear attention packs cleanly under flash attention
    assert not found(plan_of(NEXT_SWIFT, "args.model=Qwen/Qwen3-30B-A3B").warnings, "linear-attention-packed-swift")


def test_the_megatron_engine_is_not_judged():
    plan = plan_of(HF_GDN, "args.model=Qwen/Qwen3-Next-80B-A3B-Instruct", "env.USE_MCORE_GDN=1")
    assert not found(plan.warnings, "linear-attention-packed-swift")


# ---- linear-attention-packed under USE_MCORE_GDN=0 -------------------------------------------------------------

def test_transformers_gdn_below_5_9_refuses_packing():
    (error,) = found(plan_of(HF_GDN).errors, "linear-attention-packed")
    assert error.path == "args.packing" and "transformers 5.2.0 < 5.9.0" in error.message


def test_megatrons_default_padding_free_is_named_without_packing():
    (error,) = found(plan_of(HF_GDN, "args.packing=false").errors, "linear-attention-packed")
    assert error.path == "args.padding_free"


def test_default_gdn_a_newer_transformers_or_unpacked_rows_pass():
    assert not found(plan_of(HF_GDN, "env.USE_MCORE_GDN=1").errors, "linear-attention-packed")
    assert not found(plan_of(HF_GDN, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.9.0").errors,
                     "linear-attention-packed")
    assert not found(plan_of(HF_GDN, "args.packing=false", "args.padding_free=false").errors,
                     "linear-attention-packed")
    # Qwen3-Next's wrapped transformers GDN unpacks the THD rows itself (mcore-bridge qwen3_next.py)
    plan = plan_of(HF_GDN, "args.model=Qwen/Qwen3-Next-80B-A3B-Instruct")
    assert not found(plan.errors, "linear-attention-packed")


# ---- lora-targets: transformers' Gated DeltaNet names on Megatron ------------------------------------------------

MEGATRON_GDN = ("env.USE_MCORE_GDN=1", "args.packing=false")


def test_transformers_gdn_and_attention_names_on_megatron_qwen35_are_refused():
    # Qwen3.5 is multimodal, but its transformers vision tower (attn.qkv/proj, linear_fc1/fc2) has none of these names
    plan = plan_of(HF_GDN, *MEGATRON_GDN, "args.target_modules=[in_proj_qkv,in_proj_z,q_proj,k_proj,v_proj,o_proj]")
    (error,) = found(plan.errors, "lora-targets")
    assert error.path == "args.target_modules" and "in_proj out_proj" in error.hint


def test_qwen3_next_transformers_gdn_names_alone_are_refused():
    plan = plan_of(HF_GDN, *MEGATRON_GDN, "args.model=Qwen/Qwen3-Next-80B-A3B-Instruct",
                   "args.target_modules=[in_proj_qkv,in_proj_z,in_proj_b,in_proj_a]")
    assert found(plan.errors, "lora-targets")


def test_megatron_gdn_names_or_one_of_them_among_hf_names_pass():
    assert not found(plan_of(HF_GDN, *MEGATRON_GDN, "args.target_modules=[in_proj,out_proj,linear_qkv]").errors,
                     "lora-targets")
    # out_proj is Megatron's GatedDeltaNet output too: peft finds a target and does not refuse
    assert not found(plan_of(HF_GDN, *MEGATRON_GDN, "args.target_modules=[in_proj_qkv,out_proj]").errors,
                     "lora-targets")


# ---- lora-linear-attention: attention-only target lists on a hybrid model -------------------------------------

ATTN_ONLY = ISSUES / "tuft-149-qwen35-lora-attention-only-targets.yaml"


def test_llama_attention_names_on_qwen35_are_warned_on_target_modules():
    (warning,) = found(plan_of(ATTN_ONLY).warnings, "lora-linear-attention")
    assert warning.path == "args.target_modules" and "in_proj_qkv" in warning.hint
    # Megatron: linear_qkv/linear_proj reach the gated attention only, GatedDeltaNet's in_proj/out_proj are left out
    plan = plan_of(HF_GDN, *MEGATRON_GDN, "args.target_modules=[linear_qkv,linear_proj]")
    (warning,) = found(plan.warnings, "lora-linear-attention")
    assert "in_proj out_proj" in warning.hint


def test_all_linear_gdn_names_or_a_model_without_linear_attention_are_not_warned():
    assert not found(plan_of(ATTN_ONLY, "args.target_modules=[all-linear]").warnings, "lora-linear-attention")
    assert not found(plan_of(ATTN_ONLY, "args.target_modules=[q_proj,v_proj,in_proj_qkv]").warnings,
                     "lora-linear-attention")
    assert not found(plan_of(ATTN_ONLY, "args.model=Qwen/Qwen3-8B").warnings, "lora-linear-attention")
    # MLP-only: no attention adapted, so nothing says the choice was attention
    assert not found(plan_of(ATTN_ONLY, "args.target_modules=[gate_proj,up_proj,down_proj]").warnings,
                     "lora-linear-attention")
    plan = plan_of(HF_GDN, *MEGATRON_GDN, "args.target_modules=[linear_qkv,in_proj]")
    assert not found(plan.warnings, "lora-linear-attention")


# ---- lora-fused-experts: MLP names on Qwen3.5/3.6-MoE's transformers model ---------------------------------------

MOE_ATTN_ONLY = ISSUES / "axolotl-3515-qwen35-moe-attention-only-lora.yaml"


def test_attention_only_list_on_qwen35_moe_is_warned_as_linear_attention_skipped():
    (warning,) = found(plan_of(MOE_ATTN_ONLY).warnings, "lora-linear-attention")
    assert warning.path == "args.target_modules"
    assert not found(plan_of(MOE_ATTN_ONLY).warnings, "lora-fused-experts")  # no MLP name: nothing about experts


def test_mlp_names_on_qwen35_moe_reach_the_shared_expert_only():
    plan = plan_of(MOE_ATTN_ONLY, "args.target_modules=[q_proj,gate_proj,up_proj,down_proj,in_proj_qkv]")
    (warning,) = found(plan.warnings, "lora-fused-experts")
    assert warning.path == "args.target_modules" and "target_parameters" in warning.hint


def test_target_parameters_all_linear_megatron_or_a_dense_model_are_not_warned_on_experts():
    names = "args.target_modules=[gate_proj,up_proj,down_proj]"
    assert not found(plan_of(MOE_ATTN_ONLY, names,
                             "args.target_parameters=[mlp.experts.gate_up_proj,mlp.experts.down_proj]").warnings,
                     "lora-fused-experts")
    assert not found(plan_of(MOE_ATTN_ONLY, "args.target_modules=[all-linear]").warnings, "lora-fused-experts")
    assert not found(plan_of(MOE_ATTN_ONLY, names, "args.model=Qwen/Qwen3.5-4B").warnings, "lora-fused-experts")


GPT_OSS_MLP_NAMES = ISSUES / "unsloth-3405-gpt-oss-lora-mlp-names.yaml"


def test_mlp_names_on_gpt_oss_reach_no_expert():
    # installed transformers: GptOssExperts holds gate_up_proj / down_proj as nn.Parameter, and gpt-oss has no shared
    # expert -- the three MLP names match nothing
    (warning,) = found(plan_of(GPT_OSS_MLP_NAMES).warnings, "lora-fused-experts")
    assert warning.path == "args.target_modules" and "GptOssExperts" in warning.message
    assert "no shared expert" in warning.message


def test_fused_experts_warning_is_not_given_with_target_parameters_or_on_megatron():
    assert not found(plan_of(GPT_OSS_MLP_NAMES, "args.target_parameters=[mlp.experts.gate_up_proj]").warnings,
                     "lora-fused-experts")
    assert not found(plan_of(GPT_OSS_MLP_NAMES, "args.target_modules=[all-linear]").warnings, "lora-fused-experts")
    # a dense model: its gate/up/down_proj are the whole MLP
    assert not found(plan_of(GPT_OSS_MLP_NAMES, "args.model=Qwen/Qwen3-8B").warnings, "lora-fused-experts")


# ---- linear-attention-norm-tp ----------------------------------------------------------------------------------

def test_dense_gdn_full_training_at_tp2_without_sp_is_warned_on_sequence_parallel():
    (warning,) = found(plan_of(NORM_TP).warnings, "linear-attention-norm-tp")
    assert warning.path == "args.sequence_parallel" and "TP=2" in warning.message


def test_sp_tp1_lora_moe_a_model_without_gdn_or_the_transformers_gdn_are_not_warned():
    for overrides in (["args.sequence_parallel=true"], ["args.tensor_model_parallel_size=1"],
                      ["args.tuner_type=lora"], ["args.model=Qwen/Qwen3-8B"], ["env.USE_MCORE_GDN=0"]):
        assert not found(plan_of(NORM_TP, *overrides).warnings, "linear-attention-norm-tp"), overrides
    # MoE at TP > 1 without SP is refused by sequence-parallel already; no second finding
    plan = plan_of(NORM_TP, "args.model=Qwen/Qwen3.5-35B-A3B")
    assert found(plan.errors, "sequence-parallel") and not found(plan.warnings, "linear-attention-norm-tp")


# ---- linear-attention-sp-swift: Ulysses sequence parallelism on Qwen3-Next's Gated DeltaNet ---------------------

NEXT_SP = ("args.packing=false", "args.sequence_parallel_size=2")


def test_qwen3_next_sequence_parallel_on_the_transformers_engine_is_warned():
    (warning,) = found(plan_of(NEXT_SWIFT, *NEXT_SP).warnings, "linear-attention-sp-swift")
    assert warning.path == "args.sequence_parallel_size" and "sequence_parallel_size: 1" in warning.hint
    assert not found(plan_of(NEXT_SWIFT, *NEXT_SP).errors, "linear-attention-sp-swift")


def test_sequence_parallel_on_qwen35_a_plain_model_or_size_1_is_not_warned():
    # ms-swift patches Qwen3.5/3.6's GatedDeltaNet with a sequence-parallel forward
    assert not found(plan_of(NEXT_SWIFT, *NEXT_SP, "args.model=Qwen/Qwen3.5-4B").warnings, "linear-attention-sp-swift")
    assert not found(plan_of(NEXT_SWIFT, *NEXT_SP, "args.model=Qwen/Qwen3-30B-A3B").warnings,
                     "linear-attention-sp-swift")
    assert not found(plan_of(NEXT_SWIFT, "args.packing=false").warnings, "linear-attention-sp-swift")


# ---- linear-attention-packed-swift, Qwen3.5: ms-swift's template refuses packed rows below transformers 5.9 -------

QWEN35_SWIFT = ISSUES / "ms-swift-9618-qwen35-swift-packing-transformers-58.yaml"  # Qwen3.5-4B LoRA, packing, 5.8.1


def test_qwen35_packing_without_sequence_parallel_below_transformers_5_9_is_refused():
    (error,) = found(plan_of(QWEN35_SWIFT).errors, "linear-attention-packed-swift")
    assert error.path == "args.packing" and "transformers 5.8.1 < 5.9.0" in error.message
    (error,) = found(plan_of(QWEN35_SWIFT, "args.packing=false", "args.padding_free=true").errors,
                     "linear-attention-packed-swift")
    assert error.path == "args.padding_free"


def test_qwen35_packing_passes_on_5_9_under_sequence_parallel_or_unpacked():
    assert not found(plan_of(QWEN35_SWIFT, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.9.0").errors,
                     "linear-attention-packed-swift")
    # ms-swift's sequence-parallel GDN forward derives the boundaries itself; the template lets it through
    assert not found(plan_of(QWEN35_SWIFT, "args.sequence_parallel_size=2").errors, "linear-attention-packed-swift")
    assert not found(plan_of(QWEN35_SWIFT, "args.packing=false").errors, "linear-attention-packed-swift")
    # the template is Qwen3.5's; a model without linear attention packs under flash attention on any 5.x
    assert not found(plan_of(QWEN35_SWIFT, "args.model=Qwen/Qwen3-4B").errors, "linear-attention-packed-swift")


def test_qwen35_embedding_template_packs_without_the_check_and_is_warned_not_refused():
    # Qwen3_5EmbTemplate._post_encode (iic/UEmbed-2B's qwen3_5_emb; config.json says qwen3_5) runs no version check
    for override in ("args.template=qwen3_5_emb", "args.model_type=qwen3_5_emb"):
        plan = plan_of(QWEN35_SWIFT, override)
        assert not found(plan.errors, "linear-attention-packed-swift")
        (warning,) = found(plan.warnings, "linear-attention-packed-swift")
        assert warning.path == "args.packing" and "qwen3_5_emb" in warning.message
    assert not found(plan_of(QWEN35_SWIFT, "args.template=qwen3_5_emb",
                             "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.9.0").warnings, "linear-attention-packed-swift")


# ---- transformers-model: the transformers release that knows qwen3_5 / qwen3_next --------------------------------

OLD_TRANSFORMERS = ISSUES / "llamafactory-10219-qwen35-transformers-500.yaml"  # Qwen3.5-27B LoRA on transformers 5.0.0


def test_a_transformers_release_without_the_model_type_is_refused_on_both_engines():
    (error,) = found(plan_of(OLD_TRANSFORMERS).errors, "transformers-model")
    assert error.path == "args.model" and "transformers 5.0.0 < 5.2.0" in error.message
    # Megatron reads the same config.json through AutoConfig
    assert found(plan_of(HF_GDN, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.1.0").errors, "transformers-model")
    # Qwen3-Next arrived in 4.57
    assert found(plan_of(NEXT_SWIFT, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.56.2").errors, "transformers-model")


def test_the_release_that_ships_the_model_type_or_other_models_pass():
    assert not found(plan_of(OLD_TRANSFORMERS, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.2.0").errors,
                     "transformers-model")
    assert not found(plan_of(NEXT_SWIFT, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.57.0").errors,
                     "transformers-model")
    # no row for Qwen3: 4.x knows it
    assert not found(plan_of(OLD_TRANSFORMERS, "args.model=Qwen/Qwen3-8B",
                             "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.56.2").errors, "transformers-model")


def test_qwen3_vl_below_transformers_4_57_is_refused_too():
    plan = plan_of(OLD_TRANSFORMERS, "args.model=Qwen/Qwen3-VL-8B-Instruct",
                   "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.56.2")
    assert found(plan.errors, "transformers-model")
    plan = plan_of(OLD_TRANSFORMERS, "args.model=Qwen/Qwen3-VL-8B-Instruct",
                   "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.57.1")
    assert not found(plan.errors, "transformers-model")
