"""planner/comm_overlap_rules.py (tp-comm-overlap): ms-swift 4.6 sizes Transformer Engine's userbuffers once for
seq_length x micro_batch_size / CP tokens, while its micro-batches are packed (padding_free) or padded only to their
longest sample; TE's copy_into_buffer takes only a micro-batch that fills the buffer exactly (verl-project/verl#5663).
The data decides, so it is a warning; each test changes a published working setup (tests/fixtures/working)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
LLAMA_TP8 = "megatron-bridge-llama3-70b-16k-tp8-cp2-32gpu.yaml"  # TP=8 with SP and tp_comm_overlap, packing


def _found(*overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(WORKING / LLAMA_TP8, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "tp-comm-overlap"},
            {p.path for p in result.warnings if p.code == "tp-comm-overlap"})


def test_tp_comm_overlap_with_packed_or_padded_micro_batches_is_said():
    assert _found() == (set(), {"args.tp_comm_overlap"})
    # without packing: padding_free (ms-swift's Megatron default) still packs; without it each batch is padded to its
    # longest sample, not to max_length
    assert _found("args.packing=false") == (set(), {"args.tp_comm_overlap"})
    assert _found("args.packing=false", "args.padding_free=false") == (set(), {"args.tp_comm_overlap"})


def test_no_word_without_tp_comm_overlap():
    assert _found("args.tp_comm_overlap=false") == (set(), set())


def test_tp_comm_overlap_without_sequence_parallel_is_left_to_ms_swifts_own_refusal():
    # ms-swift raises on tp_comm_overlap without sequence_parallel before any userbuffer exists (sequence-parallel)
    result = make_plan(load_recipe(WORKING / LLAMA_TP8, ["args.sequence_parallel=false"]), oracle=False)
    assert ("sequence-parallel", "args.tp_comm_overlap") in {(p.code, p.path) for p in result.errors}
    assert "tp-comm-overlap" not in {p.code for p in result.warnings}


QWEN3_MOE_TP2 = "megatron-moe-modelzoo-qwen3-235b-h100-deepep-recompute-moe-act.yaml"  # TP=2 + SP + tp_comm_overlap


def _lora_errors(name: str, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "tp-comm-overlap"}


def test_lora_on_tensor_parallel_layers_with_tp_comm_overlap_is_refused():
    # mcore-bridge's LoRA adapters of column/row-parallel layers are TE linears without a userbuffer name, which
    # megatron-core asserts under tp_comm_overlap (modelscope/ms-swift#5240)
    for targets in ("[all-linear]", "[linear_qkv]", "[linear_proj]", "[linear_fc1]"):
        assert _lora_errors(LLAMA_TP8, "args.tuner_type=lora", f"args.target_modules={targets}") == {
            "args.tp_comm_overlap"}, targets
    assert _lora_errors(LLAMA_TP8, "args.tuner_type=lora", "args.tp_comm_overlap=false") == set()
    assert _lora_errors(LLAMA_TP8) == set()  # full tuning builds no adapter


def test_lora_on_routed_experts_only_builds_grouped_adapters():
    # Qwen3-235B-A22B has no dense or shared-expert MLP: linear_fc1/linear_fc2 reach the experts' TE grouped linears,
    # whose adapters ask for no userbuffer; attention targets are refused
    assert _lora_errors(QWEN3_MOE_TP2, "args.tuner_type=lora", "args.target_modules=[linear_fc1, linear_fc2]") == set()
    assert _lora_errors(QWEN3_MOE_TP2, "args.tuner_type=lora", "args.target_modules=[linear_qkv]") == {
        "args.tp_comm_overlap"}


def test_tp_comm_overlap_below_sm90_needs_ub_skipmc():
    # TE initialize_ub asserts UB_SKIPMC=1 where the device has no CUDA multicast (NVIDIA/TransformerEngine#985, A800)
    for gpu in ("A100-80G", "A800", "L40S"):
        assert _found(f"launch.gpu={gpu}")[0] == {"args.tp_comm_overlap"}, gpu
    assert _found("launch.gpu=A800", "env.UB_SKIPMC=1")[0] == set()
    assert _found("launch.gpu=A800", "env.UB_SKIPMC=0")[0] == {"args.tp_comm_overlap"}
    for gpu in ("H100", "H20", "B200"):  # multicast-capable generations: the driver decides, not judged
        assert _found(f"launch.gpu={gpu}")[0] == set(), gpu
    assert _found("launch.gpu=A800", "args.tp_comm_overlap=false") == (set(), set())


# --- tp-comm-overlap-fp8: ms-swift 4.6's initialize_tp_communicators reads args.first_last_layers_bf16 on TE >= 2.7
FP8_TP4 = "megatron-bridge-llama3-70b-sft-h100-fp8-cs-tp4-pp4-vpp10-32gpu.yaml"  # FP8 tensorwise, TP=4 + SP + overlap


def _fp8(name: str, *overrides: str, te: str | None = None) -> tuple[set[str], set[str]]:
    recipe = load_recipe(WORKING / name, list(overrides))
    result = make_plan(recipe, oracle=False, target_versions={"transformer-engine": te} if te else None)
    return ({p.path for p in result.errors if p.code == "tp-comm-overlap-fp8"},
            {p.path for p in result.warnings if p.code == "tp-comm-overlap-fp8"})


def test_the_msswift_argument_the_fp8_userbuffer_setup_reads_is_defined_nowhere():
    # the engine line this rule mirrors (swift.megatron does not import here without mcore-bridge: read as text): the
    # attribute is read in initialize_tp_communicators and neither a field nor set anywhere in ms-swift
    from swift_ext.msswift.source_reader import _package_dir

    root = _package_dir("swift")
    users = {str(path.relative_to(root)) for path in root.rglob("*.py")
             if "first_last_layers_bf16" in path.read_text(encoding="utf-8", errors="replace")}
    assert users == {"megatron/utils/megatron_lm_utils.py"}
    text = (root / "megatron/utils/megatron_lm_utils.py").read_text(encoding="utf-8")
    assert "is_te_min_version('2.7.0')" in text and "args.fp8 is not None and args.first_last_layers_bf16" in text


def test_fp8_with_tp_comm_overlap_is_refused_on_a_declared_te_at_or_past_2_7():
    assert _fp8(FP8_TP4, te="2.7.0") == ({"args.tp_comm_overlap"}, set())
    assert _fp8(FP8_TP4, te="2.14.1") == ({"args.tp_comm_overlap"}, set())


def test_unknown_te_is_a_warning_and_older_te_or_bf16_or_no_overlap_pass():
    assert _fp8(FP8_TP4) == (set(), {"args.tp_comm_overlap"})
    assert _fp8(FP8_TP4, te="2.6.0") == (set(), set())  # the use_fp8 branch: no such read
    assert _fp8(FP8_TP4, "args.fp8_format=null", "args.fp8_recipe=null", te="2.8.0") == (set(), set())
    assert _fp8(FP8_TP4, "args.tp_comm_overlap=false", te="2.8.0") == (set(), set())
