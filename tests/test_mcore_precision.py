"""Issue #21 precision audit of the megatron-core / mcore-bridge config rules (planner/mcore_config_rules.py,
mcore_feature_rules.py, oracle.py): values ms-swift 4.6 or mcore-bridge 1.6.3 rewrite, or that megatron-core never
reads, between the recipe and TransformerConfig.__post_init__. Each case plans clean now and was refused before; the
real failure next to it stays refused. The oracle cases run megatron-core itself on the CPU."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.layout import layout_of
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
DEEPSEEK = "verl-example-deepseek671b-megatron-80gb.yaml"  # multi-latent attention, ms-swift's default mcore-bridge
MOONLIGHT = "ms-swift-example-megatron-moonlight-deepseek-v3-pp2-shared-overlap.yaml"  # MLA, full + uniform recompute
QWEN35_MOE = "ms-swift-docs-qwen35-35b-a3b-megatron-lora.yaml"
# DeepSeek-V3, PP 8 with a layout (one 'm'), EP A2A overlap in megatron_extra_kwargs, one MTP layer
A2A_MTP = "megatron-bridge-deepseek-v3-h100-1024gpu-deepep-a2a-overlap-mtp.yaml"


def _plan(name: str, *overrides: str):
    return make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)


def _paths(findings, code: str) -> set[str]:
    return {f.path for f in findings if f.code == code}


def test_attention_output_gate_on_mla_is_refused_only_by_megatron_bridge_and_said_under_mcore_bridge():
    # MLATransformerConfig.__post_init__ raises "Output gate is not supported for MLA yet."; mcore-bridge builds a
    # ModelConfig (a TransformerConfig) and its MLA attention never reads the gate.
    gate = 'args.megatron_extra_kwargs={"attention_output_gate": true}'
    plan = _plan(DEEPSEEK, gate)
    assert _paths(plan.errors, "mcore-config") == set()
    assert _paths(plan.warnings, "mcore-config") == {"args.megatron_extra_kwargs"}
    bridge = _plan(DEEPSEEK, "args.bridge_backend=megatron-bridge", gate)
    assert _paths(bridge.errors, "mcore-config") == {"args.megatron_extra_kwargs"}


def test_recompute_num_layers_in_extra_kwargs_is_judged_only_where_megatron_core_reads_it():
    def judged(*overrides: str):
        plan = _plan(MOONLIGHT, *overrides)
        return _paths(plan.errors, "recompute"), _paths(plan.warnings, "recompute")

    kw = 'args.megatron_extra_kwargs={{"recompute_num_layers": {}}}'.format
    off = ("args.recompute_granularity=none", "args.recompute_method=null", "args.recompute_num_layers=null")
    # no recompute: TransformerConfig and the transformer block never read it
    assert judged(*off, kw(0)) == (set(), set())
    assert judged(*off, kw('"2"')) == (set(), set())
    # block: `layer_idx < recompute_num_layers + skipped` -- 0 recomputes nothing (said), a string is a TypeError
    assert judged("args.recompute_method=block", kw(0)) == (set(), {"args.megatron_extra_kwargs"})
    assert judged("args.recompute_method=block", kw('"2"')) == ({"args.megatron_extra_kwargs"}, set())
    # uniform: `layer_idx += recompute_num_layers` never ends at 0 (unchanged)
    assert judged(kw(0)) == ({"args.megatron_extra_kwargs"}, set())
    # selective: TransformerConfig refuses any recompute_num_layers
    selective = ("args.recompute_granularity=selective", "args.recompute_method=null", "args.recompute_num_layers=null")
    assert judged(*selective, kw(4)) == ({"args.megatron_extra_kwargs"}, set())


def test_a_recompute_modules_string_holding_moe_passes_moe_layer_recompute_outside_selective():
    # TransformerConfig: `if "moe" not in recompute_modules: recompute_modules.append("moe")` -- a substring test on a
    # string, so only a string without "moe" reaches the append (AttributeError); under selective set() of the
    # string's letters is refused whatever it holds.
    def refused(granularity: str, modules: str) -> set[str]:
        plan = _plan(QWEN35_MOE, f"args.recompute_granularity={granularity}", "args.recompute_method=null",
                     "args.recompute_num_layers=null", "args.moe_layer_recompute=true",
                     f'args.megatron_extra_kwargs={{"recompute_modules": "{modules}"}}')
        return _paths(plan.errors, "recompute-modules")

    assert refused("none", "moe") == set()
    assert refused("none", "core_attn") == {"args.megatron_extra_kwargs"}
    assert refused("selective", "moe") == {"args.megatron_extra_kwargs"}


def _oracle(name: str, *overrides: str):
    from swift_ext.planner import oracle

    recipe = load_recipe(WORKING / name, list(overrides))
    a = Args.bind(recipe, msargs.schema_for("megatron", recipe.command))
    return oracle.judge(resolve_shape(recipe.args["model"]), a, layout_of(a, recipe.launch.world_size), cache=False)


@pytest.mark.parametrize("overrides", [
    ('args.megatron_extra_kwargs={"rotary_interleaved": true}',),  # ModelConfig sets it False for MLA first
    ('args.megatron_extra_kwargs={"attention_output_gate": true}',),  # an MLATransformerConfig check only
], ids=["rotary_interleaved", "attention_output_gate"])
def test_oracle_builds_mcore_bridges_config_for_mla_models(overrides, tmp_path, monkeypatch):
    pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))
    assert _oracle(MOONLIGHT, *overrides).accepts
    # Megatron-Bridge's MLAModelProvider is an MLATransformerConfig: megatron-core refuses both there
    assert not _oracle(MOONLIGHT, "args.bridge_backend=megatron-bridge", *overrides).accepts


def test_oracle_counts_one_shared_mtp_layer_under_mcore_bridge(tmp_path, monkeypatch):
    # mcore-bridge's ModelConfig.__post_init__ sets mtp_num_layers = 1 under mtp_shared_weights before
    # TransformerConfig checks the EP A2A overlap ("MTP layernum only supports 1") and the layout's 'm' count.
    pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))
    shared = ("args.bridge_backend=mcore-bridge", "args.mtp_num_layers=2")
    assert _oracle(A2A_MTP, *shared, "args.mtp_shared_weights=true").accepts
    assert not _oracle(A2A_MTP, *shared).accepts  # two MTP layers, one 'm' in the layout
    plan = _plan(A2A_MTP, *shared, "args.mtp_shared_weights=true")
    assert not _paths(plan.errors, "moe-a2a-overlap")
