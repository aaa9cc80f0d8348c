"""Issue #21's audit of megatron-core 0.16.1's start-up checks beyond TransformerConfig (bench/mcore_audit, rows opt:,
mpc:, ps:, moe:, sched:): ModelParallelConfig's refusals reached through megatron_extra_kwargs, the non-interleaved
schedule's overlap_p2p_comm refusal, the flex dispatcher's TP*EP, sinkhorn with an aux loss, cp_comm_type lists, the
router's group fields from the model, and a negative shared expert size. Each test changes a published working setup
(tests/fixtures/working) until megatron-core refuses it and asserts the rule names the culprit; the nearest legal
variant -- and the value mcore-bridge rewrites before megatron-core checks it -- passes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
DENSE = "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B, TP2 PP2 CP2, no virtual pipeline size
QWEN3_MOE = "ms-swift-example-lora-moe.yaml"  # Qwen3-30B-A3B, TP1 EP2, sequence_parallel set
QWEN35_MOE = "ms-swift-docs-qwen35-35b-a3b-megatron-lora.yaml"  # shared experts
DEEPSEEK = "verl-example-deepseek671b-megatron-80gb.yaml"  # 256 experts, n_group 8 / topk_group 4


def ek(body: str) -> str:
    return "args.megatron_extra_kwargs={" + body + "}"


def _refused(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == code}


def test_sequence_parallel_through_extra_kwargs_at_tp1():
    assert _refused(QWEN3_MOE, ek('"sequence_parallel": true'), code="mcore-parallel") == {"args.megatron_extra_kwargs"}
    assert _refused(QWEN3_MOE, code="mcore-parallel") == set()  # the argument: ms-swift drops it at TP 1


def test_extra_kwargs_sequence_parallel_false_under_moe_tp():
    refused = _refused(QWEN3_MOE, "args.tensor_model_parallel_size=2", "args.expert_model_parallel_size=1",
                       ek('"sequence_parallel": false'), code="sequence-parallel")
    assert refused == {"args.sequence_parallel"}
    assert _refused(QWEN3_MOE, "args.tensor_model_parallel_size=2", "args.expert_model_parallel_size=1",
                    code="sequence-parallel") == set()


def test_defer_embedding_wgrad_compute():
    on = '"defer_embedding_wgrad_compute": true'
    assert _refused(QWEN3_MOE, ek(on), code="mcore-parallel")  # PP 1
    assert _refused(DENSE, "args.gradient_accumulation_fusion=false", ek(on), code="mcore-parallel")
    assert _refused(DENSE, ek(on + ', "wgrad_deferral_limit": -1'), code="mcore-parallel")
    assert _refused(DENSE, ek(on), code="mcore-parallel") == set()  # PP 2, fusion on, limit 0


def test_overlap_p2p_comm_without_virtual_pipeline():
    assert _refused(DENSE, ek('"overlap_p2p_comm_warmup_flush": true'), code="mcore-parallel")
    assert _refused(DENSE, ek('"overlap_p2p_comm": true'), code="mcore-parallel")
    vpp = "args.virtual_pipeline_model_parallel_size=2"  # 36 layers / (PP2 * 2); overlap on, as ms-swift sets it
    assert _refused(DENSE, vpp, ek('"overlap_p2p_comm_warmup_flush": true'), code="mcore-parallel") == set()
    assert _refused(DENSE, vpp, ek('"overlap_p2p_comm": true'), code="mcore-parallel") == set()
    assert _refused(QWEN3_MOE, ek('"overlap_p2p_comm": true'), code="mcore-parallel") == set()  # PP 1: no pipeline


def test_cp_comm_type_list_needs_one_per_layer():
    # A list reaches the config only through megatron_extra_kwargs: ms-swift's parser reads args.cp_comm_type as one
    # string (tests/test_hostile_new_paths.py), so a list there is an argument-type error before this rule.
    assert _refused(DENSE, ek('"cp_comm_type": ["p2p", "p2p"]'), code="mcore-parallel") == {
        "args.megatron_extra_kwargs"}
    per_layer = ek('"cp_comm_type": [' + ", ".join(['"p2p"'] * 36) + "]")
    plan = make_plan(load_recipe(WORKING / DENSE, [per_layer]), oracle=False)
    assert not [e for e in plan.errors if e.code in ("mcore-parallel", "argument-type", "megatron-extra-kwargs")]
    assert _refused(DENSE, "args.cp_comm_type=[p2p, p2p]", code="argument-type") == {"args.cp_comm_type"}


def test_flex_dispatcher_needs_tp_times_ep_above_one():
    flex = "args.moe_token_dispatcher_type=flex"
    assert _refused(QWEN3_MOE, "args.expert_model_parallel_size=1", flex, code="moe-dispatcher") == {
        "args.moe_token_dispatcher_type"}
    assert _refused(QWEN3_MOE, flex, code="moe-dispatcher") == set()  # EP 2


def test_sinkhorn_takes_no_aux_loss():
    sinkhorn = "args.moe_router_load_balancing_type=sinkhorn"
    assert _refused(QWEN3_MOE, sinkhorn, "args.moe_aux_loss_coeff=0.01", code="moe-load-balancing") == {
        "args.moe_aux_loss_coeff"}
    assert _refused(QWEN3_MOE, sinkhorn, code="moe-load-balancing") == {"args.moe_aux_loss_coeff"}  # fixture's 1e-3
    assert _refused(QWEN3_MOE, sinkhorn, "args.moe_aux_loss_coeff=0", code="moe-load-balancing") == set()


def test_router_groups_from_the_model():
    assert _refused(DEEPSEEK, ek('"moe_router_num_groups": 5'), code="moe-router")  # 256 % 5, group top-k 4
    assert _refused(DEEPSEEK, ek('"moe_router_num_groups": 2'), code="moe-router")  # model's group top-k 4 > 2
    assert _refused(DEEPSEEK, ek('"moe_router_num_groups": 16'), code="moe-router") == set()
    assert _refused(DEEPSEEK, code="moe-router") == set()  # the model's own 8 / 4
    assert _refused(QWEN3_MOE, ek('"moe_router_group_topk": 2'), code="moe-router")  # no n_group in Qwen3


def test_negative_shared_expert_size_but_not_zero():
    assert _refused(QWEN35_MOE, ek('"moe_shared_expert_intermediate_size": -1'), code="mcore-config")
    # mcore-bridge ModelConfig.__post_init__ turns 0 into None before megatron-core's "<= 0" check
    assert _refused(QWEN35_MOE, ek('"moe_shared_expert_intermediate_size": 0'), code="mcore-config") == set()


@pytest.mark.skipif(importlib.util.find_spec("megatron") is None, reason="megatron-core not installed")
def test_the_engine_refuses_the_config_variants():
    """megatron-core itself (the oracle, on the CPU) refuses the config-time variants the rules refuse, and accepts
    the shared size 0 that mcore-bridge rewrites."""
    cases = [(DENSE, (ek('"cp_comm_type": ["p2p", "p2p"]'),)), (QWEN3_MOE, (ek('"sequence_parallel": true'),)),
             (DENSE, (ek('"overlap_p2p_comm_warmup_flush": true'),)),
             (DEEPSEEK, (ek('"moe_router_num_groups": 5'),)),
             (QWEN35_MOE, (ek('"moe_shared_expert_intermediate_size": -1'),))]
    for name, overrides in cases:
        verdict = (make_plan(load_recipe(WORKING / name, list(overrides)), oracle=True).megatron_core or {})
        assert (verdict.get("oracle") or {}).get("findings"), (name, overrides)
    zero = make_plan(load_recipe(WORKING / QWEN35_MOE, [ek('"moe_shared_expert_intermediate_size": 0')]), oracle=True)
    assert not ((zero.megatron_core or {}).get("oracle") or {}).get("findings")


def test_an_explicit_virtual_size_of_one_is_none_as_ms_swift_makes_it():
    """MegatronArguments._init_vpp_size turns virtual_pipeline_model_parallel_size 1 into None (and overlap_p2p_comm
    off): with PP 2 the overlap refusals stand as without a virtual size."""
    vpp1 = "args.virtual_pipeline_model_parallel_size=1"
    assert _refused(DENSE, vpp1, ek('"overlap_p2p_comm": true'), code="mcore-parallel")
    assert _refused(DENSE, vpp1, ek('"overlap_p2p_comm_warmup_flush": true'), code="mcore-parallel")


def test_the_ep_overlap_on_a_text_model_is_said_to_meet_ms_swifts_forward_step():
    # megatron-core 0.16.1 combined_1f1b.py passes return_schedule_plan=True to the forward step, which ms-swift 4.6's
    # trainers do not take: read from both sources (and checked here on the installed ones), said, not refused
    import inspect
    import re

    from megatron.core.pipeline_parallel import combined_1f1b

    assert "return_schedule_plan=True" in inspect.getsource(combined_1f1b.combined_forward_backward_step)
    trainers = Path(importlib.util.find_spec("swift").origin).parent / "megatron" / "trainers"  # imports mcore-bridge
    signatures = re.findall(r"def forward_step\(([^)]*)\)", "".join(p.read_text() for p in trainers.glob("*.py")))
    assert signatures and all("return_schedule_plan" not in s and "**" not in s for s in signatures)
    result = make_plan(load_recipe(WORKING / "megatron-moe-modelzoo-deepseek-v3-h100-fp8-blockwise-a2a-group-routing.yaml"),
                       oracle=False)
    assert result.ok
    (warning,) = [w for w in result.warnings if w.code == "moe-a2a-overlap"]
    assert "return_schedule_plan" in warning.message and warning.path == "args.megatron_extra_kwargs"


def test_hybrid_context_parallel_through_extra_kwargs_at_pp1():
    # megatron-core's no-pipelining schedule reads the batch as Megatron-LM's HybridCPDataLoaderWrapper pair
    # (hybrid_cp_schedule.py `data[1]`); ms-swift's trainers hand it dicts (Megatron-Bridge#4586's missing glue).
    on = ek('"hybrid_context_parallel": true, "max_seqlen_per_dp_cp_rank": 4096')
    assert _refused(QWEN3_MOE, on, code="hybrid-cp-schedule") == {"args.megatron_extra_kwargs"}
    assert _refused(QWEN3_MOE, ek('"hybrid_context_parallel": false'), code="hybrid-cp-schedule") == set()
    assert _refused(QWEN3_MOE, code="hybrid-cp-schedule") == set()
    # PP 2: the pipelined schedules never read the switch: no refusal, a warning that no dynamic CP happens
    assert _refused(DENSE, ek('"hybrid_context_parallel": true'), code="hybrid-cp-schedule") == set()
    result = make_plan(load_recipe(WORKING / DENSE, [ek('"hybrid_context_parallel": true')]), oracle=False)
    assert {p.path for p in result.warnings if p.code == "hybrid-cp-schedule"} == {"args.megatron_extra_kwargs"}


def _offload(*overrides: str, te: str | None = None, env: bool = False):
    recipe = load_recipe(WORKING / DENSE, list(overrides) + (["env.NVTE_CPU_OFFLOAD_V1=1"] if env else []))
    result = make_plan(recipe, oracle=False, target_versions={"transformer-engine": te} if te else None)
    return ({p.path for p in result.errors if p.code == "te-offload-nothing"},
            {p.path for p in result.warnings if p.code == "te-offload-nothing"})


def test_cpu_offloading_activations_off_with_nothing_to_offload():
    # TransformerBlock builds TE's offload context always; TE < 2.10 raises when neither switch is on
    # (Megatron-Bridge#2954), 2.10+ only with offloading on (or the v1 path).
    off = ek('"cpu_offloading_activations": false')
    extra = {"args.megatron_extra_kwargs"}
    assert _offload(off, te="2.8") == (extra, set())
    assert _offload(off) == (set(), extra)  # TE version unknown here
    assert _offload(off, te="2.11") == (set(), set())
    assert _offload(off, te="2.11", env=True) == (extra, set())
    assert _offload(ek('"cpu_offloading_activations": false, "cpu_offloading": true'), te="2.11")[0] == extra
    # weights offload keeps something to offload; the default (activations on) is never judged
    assert _offload(ek('"cpu_offloading_activations": false, "cpu_offloading_weights": true'), te="2.8") == (set(), set())
    assert _offload(te="2.8") == (set(), set())
