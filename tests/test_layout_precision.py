"""Issue #21's precision audit of planner/layout.py: a layout rule refuses only what ms-swift 4.6 / mcore-bridge 1.6.3 /
megatron-core 0.16.1 refuse on the path from the recipe value to the failing line. Each test takes a published working
setup (tests/fixtures/working), changes it into a variant that runs -- the plan used to refuse it -- and keeps the real
failure next to it refused."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
DENSE = "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B (36 layers), TP2 PP2 CP2 on 8 GPUs, selective recompute
# DeepSeek-V3 (61 layers), PP8, layout 'Et*8|(t*8|)*6t*5mL' (one MTP layer), mtp_num_layers 1
LAYOUT_MTP = "megatron-bridge-deepseek-v3-32nodes-pp8-layout-mtp-full-recompute.yaml"


def _plan(name: str, *overrides: str):
    return make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)


def _refused(name: str, *overrides: str, code: str) -> set[str]:
    return {p.path for p in _plan(name, *overrides).errors if p.code == code}


def test_a_virtual_pipeline_size_of_one_without_pipeline_parallel_plans_clean():
    # ms-swift MegatronArguments._init_vpp_size turns 1 into None before initialize_model_parallel sees it.
    pp1 = ("args.pipeline_model_parallel_size=1", "args.context_parallel_size=1")
    assert _plan(DENSE, *pp1, "args.virtual_pipeline_model_parallel_size=1").errors == []
    # 2 reaches parallel_state.initialize_model_parallel: "pipeline-model-parallel size should be greater than 1
    # with interleaved schedule".
    assert _refused(DENSE, *pp1, "args.virtual_pipeline_model_parallel_size=2", code="layers-pp") == {
        "args.virtual_pipeline_model_parallel_size"}


def test_a_full_recompute_whose_method_and_count_come_from_extra_kwargs_plans_clean():
    # TransformerConfig.__post_init__ judges the config, where megatron_extra_kwargs wins (get_mcore_model_config).
    full = "args.recompute_granularity=full"
    extra = 'args.megatron_extra_kwargs={"recompute_method": "uniform", "recompute_num_layers": 1}'
    assert _plan(DENSE, full, extra).errors == []
    assert _refused(DENSE, full, code="recompute") == {"args.recompute_granularity", "args.recompute_num_layers"}
    assert _refused(DENSE, full, 'args.megatron_extra_kwargs={"recompute_num_layers": 1}', code="recompute") == {
        "args.recompute_granularity"}
    # ... and the config's selective granularity refuses a count that only megatron_extra_kwargs gives.
    assert _refused(DENSE, 'args.megatron_extra_kwargs={"recompute_num_layers": 2}', code="recompute") == {
        "args.megatron_extra_kwargs"}
    # ms-swift's own check reads its arguments: selective (its default) with a recompute_method raises.
    assert _refused(DENSE, "args.recompute_method=uniform", code="recompute") == {"args.recompute_method"}


def test_a_layout_with_one_shared_mtp_layer_plans_clean():
    # mcore-bridge ModelConfig.__post_init__: mtp_shared_weights keeps mtp_num_layers 1 for TransformerConfig's
    # validate_layer_layout (the one `m` of the layout), unrolled twice.
    shared = ("args.mtp_num_layers=2", "args.mtp_shared_weights=true")
    assert _refused(LAYOUT_MTP, *shared, code="pipeline-layout") == set()
    assert _refused(LAYOUT_MTP, code="pipeline-layout") == set()
    # Without shared weights two MTP layers need two `m`s: "Number of mtp layers in layout must match mtp_num_layers".
    assert _refused(LAYOUT_MTP, "args.mtp_num_layers=2", code="pipeline-layout") == {
        "args.pipeline_model_parallel_layout"}
    # megatron_extra_kwargs' mtp_num_layers is the config's.
    assert _refused(LAYOUT_MTP, 'args.megatron_extra_kwargs={"mtp_num_layers": 2}', code="pipeline-layout") == {
        "args.pipeline_model_parallel_layout"}


def test_tp_comm_overlap_at_tp_1_is_refused_although_sequence_parallel_is_set():
    # MegatronArguments.__post_init__ turns sequence_parallel off at TP 1 (megatron_args.py:943), then raises
    # 'Tensor parallel communication/GEMM overlap can happen only when sequence parallelism is enabled' (:949)
    recipe = load_recipe(WORKING / "ms-swift-example-lora-moe.yaml",
                         ["args.tp_comm_overlap=true", "args.sequence_parallel=true", "args.tensor_model_parallel_size=1"])
    errors = {(e.code, e.path) for e in make_plan(recipe, oracle=False).errors}
    assert ("sequence-parallel", "args.tp_comm_overlap") in errors


def test_extra_kwargs_recompute_granularity_none_string_is_refused_and_null_plans_clean():
    # MegatronArguments.__post_init__ turns only the argument 'none' into None (megatron_args.py:847);
    # megatron_extra_kwargs reaches TransformerConfig as written (get_mcore_model_config: kwargs.update), whose
    # __post_init__ raises 'When using recompute_granuarlity: none must be "full"or "selective"'.
    assert _refused(DENSE, 'args.megatron_extra_kwargs={"recompute_granularity": "none"}', code="recompute") == {
        "args.megatron_extra_kwargs"}
    assert _plan(DENSE, 'args.megatron_extra_kwargs={"recompute_granularity": null}').errors == []
    assert _plan(DENSE, "args.recompute_granularity=none").errors == []


def test_a_layout_of_several_stages_at_pp_1_is_refused_and_one_stage_plans_clean():
    # ms-swift MegatronArguments._init_vpp_size: VPP = stages / PP (two stages at PP 1: VPP 2), passed to
    # parallel_state.initialize_model_parallel: "pipeline-model-parallel size should be greater than 1 with
    # interleaved schedule".
    pp1 = ("args.pipeline_model_parallel_size=1", "args.context_parallel_size=1")
    assert _refused(DENSE, *pp1, "args.pipeline_model_parallel_layout=Et*18|t*18L", code="pipeline-layout") == {
        "args.pipeline_model_parallel_layout"}
    assert _refused(DENSE, *pp1, "args.pipeline_model_parallel_layout=Et*36L", code="pipeline-layout") == set()
    assert _refused(DENSE, "args.pipeline_model_parallel_size=2", "args.context_parallel_size=1",
                    "args.pipeline_model_parallel_layout=Et*18|t*18L", code="pipeline-layout") == set()


def test_first_stage_size_from_extra_kwargs_is_the_one_layers_pp_judges():
    # get_mcore_model_config copies decoder_first_pipeline_num_layers to num_layers_in_first_pipeline_stage, then
    # kwargs.update(megatron_extra_kwargs): the extra value is what TransformerConfig.__post_init__ (uneven PP) checks.
    first = "num_layers_in_first_pipeline_stage"
    assert _refused(DENSE, f'args.megatron_extra_kwargs={{"{first}": 36}}', code="layers-pp") == {
        "args.megatron_extra_kwargs"}  # 0 layers left for the one middle stage: "Mismatch"
    assert _refused(DENSE, f'args.megatron_extra_kwargs={{"{first}": 18}}', code="layers-pp") == set()
    # the extra value wins over a failing argument
    assert _refused(DENSE, "args.decoder_first_pipeline_num_layers=36", code="layers-pp") == {
        "args.decoder_first_pipeline_num_layers"}
    assert _refused(DENSE, "args.decoder_first_pipeline_num_layers=36", f'args.megatron_extra_kwargs={{"{first}": 18}}',
                    code="layers-pp") == set()


def test_a_layout_beside_a_first_or_last_stage_size_of_0_is_refused():
    # TransformerConfig.__post_init__ (PP layout block): `num_layers_in_first_pipeline_stage is not None or ...` ->
    # "pipeline_model_parallel_layout cannot be set with other pipeline layout arguments" -- 0 included.
    layout = ("args.context_parallel_size=1", "args.pipeline_model_parallel_layout=Et*18|t*18L")
    assert _refused(DENSE, *layout, code="pipeline-layout") == set()
    assert _refused(DENSE, *layout, "args.decoder_first_pipeline_num_layers=0", code="pipeline-layout") == {
        "args.decoder_first_pipeline_num_layers"}
    assert _refused(DENSE, *layout, 'args.megatron_extra_kwargs={"num_layers_in_last_pipeline_stage": 0}',
                    code="pipeline-layout") == {"args.megatron_extra_kwargs"}
