"""The version-gated support table's CUDA, excluded-capability and removed-in gates (spec/support.py): plan checks them
against the declared target (CUDA only from a declaration: the planning machine's torch is not the cluster's), says in a
note what it could not check, and doctor reads the same rows with the training machine's torch.version.cuda."""

from __future__ import annotations

import pytest

from conftest import RECIPES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe
from swift_ext.spec.support import (BY_FEATURE, CUDA, Support, Versions, installed_cuda, parse_targets,
                                    resolve_versions, unsupported, version_gaps)

MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"


def fp8_plan(fp8_recipe: str, gpu: str | None, *over, targets=None):
    launch = [f"launch.gpu={gpu}"] if gpu else []
    recipe = load_recipe(MEG_SFT, ["args.fp8_format=e4m3", f"args.fp8_recipe={fp8_recipe}", *launch, *over])
    return make_plan(recipe, oracle=False, target_versions=targets)


def fp8_errors(plan) -> list[str]:
    return [p.message for p in plan.errors if p.code == "fp8-gpu"]


# ---- blockwise needs a torch built for CUDA >= 12.9 ----------------------------------------------------------------

def test_blockwise_is_refused_for_a_declared_cuda_below_12_9():
    # TE quantization.py _compute_fp8_block_scaling_support: float(torch.version.cuda) >= 12.9
    (message,) = fp8_errors(fp8_plan("blockwise", "H100", targets={"cuda": "12.8"}))
    assert "CUDA (torch.version.cuda) 12.8 < 12.9" in message
    error = next(p for p in fp8_plan("blockwise", "H100", targets={"cuda": "12.8"}).errors if p.code == "fp8-gpu")
    assert error.path == "args.fp8_recipe" and "CUDA >= 12.9" in error.hint
    # the recipe's env declares the same
    assert fp8_errors(fp8_plan("blockwise", "H100", "env.SWIFT_EXT_TARGET_VERSIONS=cuda=12.6"))


def test_blockwise_passes_at_cuda_12_9_and_later_and_other_recipes_need_no_cuda_version():
    assert fp8_errors(fp8_plan("blockwise", "H100", targets={"cuda": "12.9"})) == []
    assert fp8_errors(fp8_plan("blockwise", "H100", targets={"cuda": "13.0"})) == []
    assert fp8_errors(fp8_plan("tensorwise", "H100", targets={"cuda": "12.4"})) == []


def test_an_unknown_cuda_is_a_note_not_a_refusal():
    # No declaration: plan never takes this machine's torch for the cluster's (resolve_versions(machine=False)).
    assert CUDA not in resolve_versions().versions
    plan = fp8_plan("blockwise", "H100")
    assert fp8_errors(plan) == []
    (note,) = [n for n in plan.notes if "Float8BlockScaling" in n]
    assert "cuda >= 12.9" in note and "not checked" in note and "--target-versions" in note
    # declared: no such note
    assert not [n for n in fp8_plan("blockwise", "H100", targets={"cuda": "12.9", "transformer-engine": "2.8"}).notes
                if "Float8BlockScaling" in n]


def test_cuda_is_a_target_name():
    assert parse_targets("cuda=12.9,te=2.8") == {"cuda": "12.9", "transformer-engine": "2.8"}


# ---- MXFP8 is refused on compute capability 12.x (consumer / workstation Blackwell) ---------------------------------

def test_mxfp8_is_refused_on_sm120_and_passes_on_b200():
    # TE quantization.py _compute_mxfp8_support: >= (12, 0) -> "MXFP8 (for all gemm layouts) is not supported on
    # 12.0+ architectures yet."
    (message,) = fp8_errors(fp8_plan("mxfp8", "RTX5090"))
    assert "12.0 is not supported" in message and "not 12.0+" in message
    assert fp8_errors(fp8_plan("mxfp8", "B200")) == []
    (below,) = fp8_errors(fp8_plan("mxfp8", "H100"))  # the lowest capability, as before
    assert "9.0 < 10.0" in below


def test_grace_blackwell_and_blackwell_ultra_are_gpu_models_plan_takes():
    # Megatron-Bridge's performance presets name GB200, GB300 and B300 boards: a recipe naming one plans (it was refused
    # as an unknown GPU model) with that board's memory, and MXFP8 runs there (sm_100 / sm_103).
    for gpu, memory in (("GB200", 186), ("GB300", 278), ("B300", 270)):
        plan = fp8_plan("mxfp8", gpu)
        assert fp8_errors(plan) == [] and plan.memory.capacity_gib == memory


def test_the_recipes_te_runs_on_sm120_pass_there():
    assert fp8_errors(fp8_plan("blockwise", "RTX5090", targets={"cuda": "12.9"})) == []
    assert fp8_errors(fp8_plan("tensorwise", "RTX5090")) == []


def test_mxfp8_without_a_gpu_is_a_warning_naming_the_excluded_range():
    plan = fp8_plan("mxfp8", None, "launch.gpu=null")
    assert fp8_errors(plan) == []
    assert any("10.0+, not 12.0+" in w.message for w in plan.warnings if w.code == "fp8-gpu")


# ---- removed in a version (the data model; no row of the installed stack needs it yet) --------------------------

def test_a_feature_removed_in_a_version_is_refused_from_that_version_and_silent_when_unknown(monkeypatch):
    row = Support("test-removed", "a feature vLLM dropped", None, {}, None, "test", removed={"vllm": "0.12.0"})
    monkeypatch.setitem(BY_FEATURE, row.feature, row)
    assert version_gaps(row.feature, Versions({"vllm": "0.12.0"})) == ["vllm 0.12.0 >= 0.12.0, which removed it"]
    assert version_gaps(row.feature, Versions({"vllm": "0.11.2"})) == []
    assert version_gaps(row.feature, Versions({})) == []


# ---- doctor reads the same rows with the machine's CUDA -----------------------------------------------------------

def test_doctor_judges_the_same_rows():
    assert unsupported(["fp8-blockwise"], Versions({"cuda": "12.8"}))
    assert not unsupported(["fp8-blockwise"], Versions({"cuda": "12.9"}))
    assert not unsupported(["fp8-blockwise"], Versions({}))  # unknown: no verdict
    (line,) = unsupported(["fp8-mxfp8"], Versions({}), (12, 0))
    assert "12.0 is not supported" in line
    assert not unsupported(["fp8-mxfp8"], Versions({}), (10, 0))


def test_doctor_reads_the_installed_torchs_cuda_without_importing_it():
    torch = pytest.importorskip("torch")
    assert installed_cuda() == torch.version.cuda
    machine = resolve_versions(installed=True, machine=True)
    assert machine.versions.get(CUDA) == torch.version.cuda


def test_doctor_lists_mxfp8_on_a_consumer_blackwell_recipe():
    from swift_ext.runs.doctor import diagnose

    recipe = load_recipe(MEG_SFT, ["args.fp8_format=e4m3", "args.fp8_recipe=mxfp8", "launch.gpu=RTX5090",
                                   "launch.gpus_per_node=0"])
    lines = [f.message for f in diagnose(recipe) if f.message.startswith("not supported here")]
    assert any("MXFP8" in line and "12.0" in line for line in lines), lines
    fine = load_recipe(MEG_SFT, ["args.fp8_format=e4m3", "args.fp8_recipe=mxfp8", "launch.gpu=B200",
                                 "launch.gpus_per_node=0"])
    assert not [f for f in diagnose(fine) if "MXFP8" in f.message]


# ---- FP4 (NVFP4): Blackwell data-centre GPUs and TE >= 2.7 ----------------------------------------------------------

def fp4_findings(gpu: str | None, *over, targets=None):
    launch = [f"launch.gpu={gpu or 'null'}"]  # the base recipe names an A100
    recipe = load_recipe(MEG_SFT, ["args.fp4_format=e2m1", *launch, *over])
    plan = make_plan(recipe, oracle=False, target_versions=targets)
    return ([(p.path, p.message) for p in plan.errors if p.code == "fp4-gpu"],
            [p.path for p in plan.warnings if p.code == "fp4-gpu"])


@pytest.mark.parametrize("gpu", ["H100", "H200", "A100-80G", "L40S", "RTX5090"])
def test_fp4_is_refused_below_compute_capability_10_and_on_sm120(gpu):
    # TE quantization.py _compute_nvfp4_support, asserted by autocast_enter for NVFP4BlockScaling
    errors, _ = fp4_findings(gpu)
    assert [path for path, _ in errors] == ["args.fp4_format"], errors
    assert "10.0" in errors[0][1] or "12.0+" in errors[0][1]


def test_fp4_on_sm120_with_rht_and_stochastic_rounding_off_is_said_not_refused():
    # TE#3062: the default NVFP4BlockScaling (RHT + stochastic rounding) fails on sm_120; with both off (the env vars the
    # recipe reads, megatron-core building it with no arguments) the NVFP4 GEMMs run there.
    off = ["env.NVTE_NVFP4_DISABLE_RHT='1'", "env.NVTE_NVFP4_DISABLE_STOCHASTIC_ROUNDING='1'"]
    assert fp4_findings("RTX5090", *off) == ([], ["args.fp4_format"])
    # one switch alone leaves the other kernel on: still refused, and below 10.0 the switches change nothing
    assert fp4_findings("RTX5090", off[0])[0]
    assert fp4_findings("H100", *off)[0]


def test_fp4_runs_on_b200_and_is_said_without_a_gpu():
    assert fp4_findings("B200") == ([], [])
    assert fp4_findings(None) == ([], ["args.fp4_format"])
    assert fp4_findings("H100", "args.fp4_format=null") == ([], [])


def test_fp4_needs_te_2_7_when_the_target_says_so():
    errors, _ = fp4_findings("B200", targets={"transformer-engine": "2.6"})
    assert errors and "2.7.0" in errors[0][1]
    assert fp4_findings("B200", targets={"transformer-engine": "2.8"}) == ([], [])
    assert BY_FEATURE["fp4-nvfp4"].compute_capability == (10, 0)
