"""lr-warmup-schedule (msswift/range_rules.py) and fp4-param-gather (planner/precision_rules.py):
each fires on its report's setting and stays quiet on the nearby setting that trains. The LR rule is checked against
megatron-core's own OptimizerParamScheduler, built with the step counts ms-swift's get_optimizer_param_scheduler
passes it."""

from __future__ import annotations

import json
import warnings

import pytest

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
WARMUP = ISSUES / "megatron-bridge-2857-warmup-past-train-iters.yaml"
FP4 = ISSUES / "megatron-lm-2284-fp4-param-gather.yaml"


def _plan(path, overrides=(), **kwargs):
    plan = make_plan(load_recipe(path, list(overrides)), oracle=False, **kwargs)
    return plan.errors, plan.warnings


def _codes(findings, code):
    return [f for f in findings if f.code == code]


# --- lr-warmup-schedule -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, path", [
    ([], "args.lr_warmup_iters"),                                           # 2000 warmup on 10 iterations
    (["args.lr_warmup_iters=10"], "args.lr_warmup_iters"),                  # equal is refused too (strict <)
    (["args.lr_warmup_iters=5", "args.lr_decay_iters=5"], "args.lr_warmup_iters"),
    (["args.lr_warmup_iters=0", "args.lr_warmup_fraction=1.0"], "args.lr_warmup_fraction"),
    (["args.lr_warmup_iters=0", "args.lr_decay_style=WSD"], "args.lr_decay_style"),
])
def test_warmup_not_shorter_than_the_decay_is_refused(overrides, path):
    errors, _ = _plan(WARMUP, overrides)
    assert any(e.path == path for e in _codes(errors, "lr-warmup-schedule")), errors


@pytest.mark.parametrize("overrides", [
    ["args.lr_warmup_iters=2"],                                             # the fix
    ["args.lr_warmup_iters=2000", "args.lr_decay_iters=5000"],              # decay length set past the warmup
    ["args.lr_warmup_fraction=0.1"],                                        # the fraction wins over lr_warmup_iters
    ["args.lr_warmup_iters=2", "args.lr_decay_style=WSD", "args.lr_wsd_decay_iters=3"],
    ["args.num_train_epochs=3"],                                            # train_iters recomputed from the data
])
def test_a_warmup_inside_the_schedule_is_accepted(overrides):
    errors, _ = _plan(WARMUP, overrides)
    assert not _codes(errors, "lr-warmup-schedule"), errors


EPOCHS = ["args.train_iters=null", "args.num_train_epochs=1", "args.dataset=[AI-MO/NuminaMath-TIR#500]",
          "args.global_batch_size=16"]  # init_iters: 500 // 8 * 8 x 1 // 16 = 31 iterations at most


@pytest.mark.parametrize("overrides, refused", [
    (["args.lr_warmup_iters=200"], True),     # pubsetups2's case: 200 warmup iterations, at most 31 to decay over
    (["args.lr_warmup_iters=31"], True),      # equal to the upper bound: the real count is no larger, so it fails
    (["args.lr_warmup_iters=20"], False),     # may fit: 31 is an upper bound (filtering, splits, packing lower it)
    (["args.lr_warmup_iters=0", "args.lr_warmup_fraction=1.0"], True),  # fraction >= 1 fails at any length
    (["args.lr_warmup_iters=200", "args.lr_decay_iters=400"], False),   # a stated decay length wins
    (["args.lr_warmup_iters=200", "args.dataset=[train.jsonl]"], False),  # rows unknown: not judged
])
def test_epochs_on_a_sized_dataset_bound_the_decay_length(overrides, refused):
    errors, _ = _plan(WARMUP, [*EPOCHS, *overrides])
    assert bool(_codes(errors, "lr-warmup-schedule")) == refused, errors
    assert refused == _engine_refuses(int(overrides[0].split("=")[1]), 31, 1.0 if "fraction" in str(overrides)
                                      else None, "cosine", None) or "lr_decay_iters" in str(overrides) or \
        "train.jsonl" in str(overrides) or overrides == ["args.lr_warmup_iters=20"]


def _engine_refuses(warmup_iters, decay_iters, fraction, style, wsd_iters, gbs=512) -> bool:
    """megatron-core 0.16.1's OptimizerParamScheduler, given what ms-swift's get_optimizer_param_scheduler gives it."""
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
    decay_steps = decay_iters * gbs
    warmup_steps = fraction * decay_steps if fraction is not None else warmup_iters * gbs
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-4)
    try:
        OptimizerParamScheduler(optimizer, init_lr=0.0, max_lr=3e-4, min_lr=3e-5, lr_warmup_steps=warmup_steps,
                                lr_decay_steps=decay_steps, lr_decay_style=style, start_wd=0.1, end_wd=0.1,
                                wd_incr_steps=decay_steps, wd_incr_style="constant",
                                wsd_decay_steps=None if wsd_iters is None else wsd_iters * gbs,
                                lr_wsd_decay_style="exponential")
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("warmup, fraction, style, wsd", [
    (2000, None, "cosine", None), (10, None, "cosine", None), (9, None, "cosine", None), (0, None, "linear", None),
    (0, 1.0, "cosine", None), (0, 0.99, "cosine", None), (2, None, "WSD", None), (2, None, "WSD", 3),
])
def test_the_rule_agrees_with_megatron_cores_scheduler(warmup, fraction, style, wsd):
    overrides = [f"args.lr_warmup_iters={warmup}", f"args.lr_decay_style={style}"]
    overrides += [f"args.lr_warmup_fraction={fraction}"] if fraction is not None else []
    overrides += [f"args.lr_wsd_decay_iters={wsd}"] if wsd is not None else []
    errors, _ = _plan(WARMUP, overrides)
    assert bool(_codes(errors, "lr-warmup-schedule")) == _engine_refuses(warmup, 10, fraction, style, wsd)


# --- fp4-param-gather -----------------------------------------------------------------------------------------------

def test_fp4_param_gather_is_warned_before_mcore_018():
    errors, warns = _plan(FP4)
    assert any(w.path == "args.fp4_param_gather" for w in _codes(warns, "fp4-param-gather"))
    assert not _codes(errors, "fp4-param-gather")


@pytest.mark.parametrize("overrides, targets", [(["args.fp4_param_gather=false"], None),
                                                ([], {"megatron-core": "0.18.0"})])
def test_fp4_without_param_gather_or_on_mcore_018_is_quiet(overrides, targets):
    _, warns = _plan(FP4, overrides, target_versions=targets)
    assert not _codes(warns, "fp4-param-gather")


# --- fsdp-precision-aware -------------------------------------------------------------------------------------------

FSDP = ISSUES / "megatron-bridge-3510-fsdp-precision-aware-no-update.yaml"


@pytest.mark.parametrize("overrides", [[], ["args.main_params_dtype=fp16"],
                                       ["args.fp8_format=e4m3", "args.fp8_recipe=delayed"],
                                       ["args.fp8_format=e4m3", "args.fp8_recipe=blockwise",
                                        "args.optimizer_cpu_offload=true"]])
def test_fsdp_with_the_precision_aware_optimizer_is_warned(overrides):
    errors, warns = _plan(FSDP, overrides)
    assert any(w.path == "args.use_precision_aware_optimizer" for w in _codes(warns, "fsdp-precision-aware"))
    assert not _codes(errors, "fsdp-precision-aware")


@pytest.mark.parametrize("overrides, targets", [
    (["args.use_precision_aware_optimizer=false"], None),
    (["args.use_megatron_fsdp=false"], None),
    (["args.fp8_format=e4m3", "args.fp8_recipe=blockwise"], None),   # megatron-core keeps fp32 main params: .grad
    ([], {"megatron-core": "0.18.0"}),                                # not the line read here
])
def test_fsdp_precision_aware_is_quiet_off_the_decoupled_grad_path(overrides, targets):
    _, warns = _plan(FSDP, overrides, target_versions=targets)
    assert not _codes(warns, "fsdp-precision-aware")


# --- mxfp8-hybrid ---------------------------------------------------------------------------------------------------

MXFP8 = ISSUES / "megatron-bridge-638-mxfp8-hybrid-format.yaml"


def test_mxfp8_with_the_hybrid_format_is_warned_on_the_format():
    errors, warns = _plan(MXFP8)
    assert any(w.path == "args.fp8_format" for w in _codes(warns, "mxfp8-hybrid"))
    assert not _codes(errors, "mxfp8-hybrid")


@pytest.mark.parametrize("overrides", [["args.fp8_format=e4m3"],                        # NVIDIA's fixed recipe
                                       ["args.fp8_recipe=tensorwise"],                  # hybrid is the norm there
                                       ["args.fp8_recipe=delayed"]])
def test_e4m3_mxfp8_or_hybrid_per_tensor_scaling_is_quiet(overrides):
    _, warns = _plan(MXFP8, overrides)
    assert not _codes(warns, "mxfp8-hybrid")


def test_warmup_iters_beside_a_fraction_are_warned_as_dropped():
    errors, warns = _plan(WARMUP, ["args.lr_warmup_iters=2", "args.lr_warmup_fraction=0.1"])
    assert any(w.path == "args.lr_warmup_iters" for w in _codes(warns, "lr-warmup-schedule"))
    assert not _codes(errors, "lr-warmup-schedule")
    _, warns = _plan(WARMUP, ["args.lr_warmup_iters=0", "args.lr_warmup_fraction=0.1"])
    assert not _codes(warns, "lr-warmup-schedule")


# --- resume-schedule ------------------------------------------------------------------------------------------------

RESUME = ISSUES / "megatron-lm-963-resume-new-lr-checkpoint-wins.yaml"
STAGE1 = ISSUES / "files/megatron-lm-963/stage1/checkpoint-2000"


def _resume(tmp_path, saved: dict, *overrides):
    checkpoint = tmp_path / "checkpoint-2000"
    checkpoint.mkdir(exist_ok=True)
    base = json.loads((STAGE1 / "args.json").read_text())
    (checkpoint / "args.json").write_text(json.dumps({**base, **saved}))
    return _plan(RESUME, [f"args.mcore_model={checkpoint}", *overrides])


def test_a_resume_with_a_new_learning_rate_is_warned(tmp_path):
    _, warns = _resume(tmp_path, {})
    assert any(w.path == "args.lr" for w in _codes(warns, "resume-schedule"))


def test_extending_train_iters_on_resume_is_warned_as_kept(tmp_path):
    _, warns = _resume(tmp_path, {"lr": 3e-5, "min_lr": 2e-5, "lr_warmup_iters": 0})
    assert any(w.path == "args.train_iters" for w in _codes(warns, "resume-schedule"))


@pytest.mark.parametrize("saved, overrides", [
    ({"lr": 3e-5, "min_lr": 2e-5, "lr_warmup_iters": 0, "train_iters": 4000}, []),   # the same schedule
    ({}, ["args.finetune=true"]),                                                       # weights only
    ({}, ["args.no_load_optim=true"]),                                                  # no optimizer, no scheduler
    ({"no_save_optim": True}, []),                                                      # nothing saved to load
])
def test_a_resume_that_keeps_or_drops_the_schedule_is_quiet(tmp_path, saved, overrides):
    _, warns = _resume(tmp_path, saved, *overrides)
    assert not _codes(warns, "resume-schedule")


# --- resume-layout --------------------------------------------------------------------------------------------------

LAYOUT = ISSUES / "megatron-lm-1517-resume-pp4-to-ep4.yaml"
PP4 = ISSUES / "files/megatron-lm-1517/pp4/checkpoint-500"


def _relayout(tmp_path, saved: dict, *overrides):
    checkpoint = tmp_path / "checkpoint-500"
    checkpoint.mkdir(exist_ok=True)
    base = json.loads((PP4 / "args.json").read_text())
    (checkpoint / "args.json").write_text(json.dumps({**base, **saved}))
    return _plan(LAYOUT, [f"args.mcore_model={checkpoint}", *overrides])


@pytest.mark.parametrize("saved, path", [({}, "args.pipeline_model_parallel_size"),
                                         ({"pipeline_model_parallel_size": 1, "tensor_model_parallel_size": 2},
                                          "args.tensor_model_parallel_size")])
def test_resuming_the_distributed_optimizer_across_tp_or_pp_is_refused(tmp_path, saved, path):
    errors, _ = _relayout(tmp_path, saved)
    assert any(e.path == path for e in _codes(errors, "resume-layout"))


@pytest.mark.parametrize("saved, overrides", [
    ({"pipeline_model_parallel_size": 1}, []),                       # (TP, PP) unchanged: not what ms-swift checks
    ({"dist_ckpt_optim_fully_reshardable": True}, []),               # the format that reshards any layout
    ({"dist_ckpt_save_pre_mcore_014": True}, []),
    ({}, ["args.finetune=true"]),                                    # weights only: dist checkpointing reshards them
    ({}, ["args.no_load_optim=true"]),
    ({"no_save_optim": True}, []),
])
def test_a_resume_the_engine_reshards_is_not_refused(tmp_path, saved, overrides):
    errors, _ = _relayout(tmp_path, saved, *overrides)
    assert not _codes(errors, "resume-layout")
