"""megatron-core as the oracle: swift-ext's layout rules against megatron-core 0.16's own verdict.

The differential test runs megatron-core's TransformerConfig, its `initialize_model_parallel` (under
torch's fake process group) and the per-rank MoE and pipeline checks (swift_ext.planner.oracle) for
800 seeded layouts over 8 model shapes and asserts that swift-ext's own rules (layout.py, the ones in
MCORE_RULES) refuse exactly the layouts megatron-core refuses.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from swift_ext.msswift import schema as msargs

from swift_ext.planner import oracle
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.layout import MCORE_RULES, check_layout, layout_of
from swift_ext.planner.model_shape import from_config
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import Recipe, Resources

from conftest import ROOT, swift_ext

pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")

SCHEMA = msargs.schema_for("megatron", "sft")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own cache folder (subprocesses inherit it): a verdict cached by an earlier run
    would skip megatron-core here and test nothing."""
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))

# Shapes from published config.json files (text part), plus the bundled presets.
QWEN3_8B = from_config({"model_type": "qwen3", "num_hidden_layers": 36, "hidden_size": 4096, "num_attention_heads": 32,
                        "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288, "vocab_size": 151936},
                       name="Qwen/Qwen3-8B")
QWEN3_VL_8B = from_config({"model_type": "qwen3_vl", "text_config": {
    "model_type": "qwen3_vl_text", "num_hidden_layers": 36, "hidden_size": 4096, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288, "vocab_size": 151936},
    "vision_config": {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "out_hidden_size": 4096}},
    name="Qwen/Qwen3-VL-8B-Instruct")
SHAPES = {
    "dense": QWEN3_8B,
    "moe": resolve_shape("Qwen/Qwen3-30B-A3B"),
    "gdn-moe": resolve_shape("Qwen/Qwen3.6-35B-A3B"),  # Gated DeltaNet hybrid, 2 KV groups (KV groups < TP)
    "gdn-dense-mtp": resolve_shape("Qwen/Qwen3.5-27B"),  # MTP, 4 KV groups
    "vl": QWEN3_VL_8B,
    "kv<tp": resolve_shape("Qwen/Qwen3-32B"),  # 64 heads / 8 KV groups: TP 16 replicates KV heads
    "mla-moe": resolve_shape("deepseek-ai/DeepSeek-V3"),  # MLATransformerConfig, 3 dense layers first, MTP
    "dense-first-moe": resolve_shape("zai-org/GLM-4.5-Air"),
}


def recipe_for(world: int, args: dict, env: dict | None = None) -> Recipe:
    # Nodes of at most 8 GPUs, as real ones are (a recipe's gpus_per_node is capped at 64).
    per_node = max(d for d in range(1, 9) if world % d == 0)
    return Recipe(command="sft", engine="megatron", launch=Resources(nodes=world // per_node, gpus_per_node=per_node),
                  args=args, env=env or {})


def layouts(n: int, seed: int = 20261129):
    rng = random.Random(seed)
    for _ in range(n):
        kind = rng.choice(list(SHAPES))
        shape = SHAPES[kind]
        args: dict = {
            "tensor_model_parallel_size": rng.choice([1, 1, 2, 2, 3, 4, 8, 16]),
            "pipeline_model_parallel_size": rng.choice([1, 1, 2, 3, 4, 5]),
            "context_parallel_size": rng.choice([1, 1, 1, 2]),
            "expert_model_parallel_size": rng.choice([1, 2, 3, 4, 8, 16]) if shape.is_moe else rng.choice([1, 1, 2]),
            "expert_tensor_parallel_size": rng.choice([1, 1, 2]),
            "sequence_parallel": rng.random() < 0.6,
        }
        pp = args["pipeline_model_parallel_size"]
        if pp > 1 and rng.random() < 0.3:
            args["decoder_first_pipeline_num_layers"] = rng.choice([1, 2, 4, 8, 12])
            if rng.random() < 0.5:
                args["decoder_last_pipeline_num_layers"] = rng.choice([2, 4, 8, 10])
        if pp > 1 and rng.random() < 0.15:
            args["virtual_pipeline_model_parallel_size"] = rng.choice([2, 3])
        if rng.random() < 0.2:
            args["account_for_loss_in_pipeline_split"] = True
        if pp > 1 and rng.random() < 0.15:
            args.update(pipeline_layout(rng, shape, pp, bool(shape.mtp_num_layers) and rng.random() < 0.5))
            for key in ("decoder_first_pipeline_num_layers", "decoder_last_pipeline_num_layers",
                        "virtual_pipeline_model_parallel_size"):
                args.pop(key, None)
            if rng.random() < 0.8:
                args.pop("account_for_loss_in_pipeline_split", None)
        style = rng.random()
        if style < 0.4:
            args.update(recompute_granularity="full", recompute_method=rng.choice(["uniform", "block"]))
            if rng.random() < 0.8:
                args["recompute_num_layers"] = 1
        elif style < 0.5:
            args.update(recompute_granularity="selective", recompute_num_layers=1)
        if shape.mtp_num_layers and rng.random() < 0.5:
            args["mtp_num_layers"] = 1
        if rng.random() < 0.1:
            args["fp8_param_gather"] = True
            if rng.random() < 0.5:
                args.update(fp8_format="e4m3", fp8_recipe="blockwise")
        if rng.random() < 0.5:  # a grid that fits: the rest of the rules then decide
            grid = math.lcm(args["tensor_model_parallel_size"] * pp * args["context_parallel_size"],
                            args["expert_model_parallel_size"] * args["expert_tensor_parallel_size"] * pp)
            world = grid * rng.choice([1, 1, 2])
        else:
            world = rng.choice([1, 2, 4, 6, 8, 8, 16, 16, 32, 64])
        yield kind, shape, world, args


def pipeline_layout(rng: random.Random, shape, pp: int, mtp: bool) -> dict:
    """A pipeline_model_parallel_layout string: usually a valid one, sometimes broken the ways users break it."""
    stages = pp * rng.choice([1, 1, 2])
    per = [shape.num_layers // stages + (1 if i < shape.num_layers % stages else 0) for i in range(stages)]
    parts = ["t" * n for n in per]
    parts[0] = "E" + parts[0]
    parts[-1] += "m" if mtp else ""
    parts[-1] += "L"
    fault = rng.random()
    if fault < 0.15:
        parts[1] = parts[1][1:]  # one transformer layer short
    elif fault < 0.25:
        parts[-1] = parts[-1].replace("L", "")  # no loss stage
    elif fault < 0.35 and stages > pp:
        parts[0] += "m"  # MTP outside the last virtual stage
        mtp = True
    elif fault < 0.45:
        parts = parts + [""]  # one stage too many for PP
    out = {"pipeline_model_parallel_layout": "|".join(parts)}
    if mtp:
        out["mtp_num_layers"] = 1
    return out


# Where swift-ext's verdict and megatron-core 0.16.1's differ on purpose. Keyed by rule; each entry says why.
EXPLAINED: dict[str, str] = {}


def swift_ext_verdict(shape, world: int, args: dict, env: dict | None = None):
    recipe = recipe_for(world, args, env)
    errors, _ = check_layout(recipe, Args(recipe.args, SCHEMA), shape)
    return [e for e in errors if e.code in MCORE_RULES]


def test_layout_rules_agree_with_megatron_core():
    cases = list(layouts(800))
    agree = 0
    disagreements = []
    flags_agree = 0
    by_shape = Counter()
    refused = 0
    for kind, shape, world, args in cases:
        ours = swift_ext_verdict(shape, world, args)
        recipe = recipe_for(world, args)
        a = Args(recipe.args, SCHEMA)
        theirs = oracle.judge(shape, a, layout_of(a, world), cache=False)
        by_shape[kind] += 1
        refused += not theirs.accepts
        if bool(ours) == (not theirs.accepts):
            agree += 1
            if ours and {e.path for e in ours} & {f.path for f in theirs.findings}:
                flags_agree += 1
            continue
        disagreements.append((kind, world, args, [e.render() for e in ours], [f.message for f in theirs.findings]))
    print(f"\nswift-ext vs megatron-core {oracle.installed_version()}: {agree}/{len(cases)} layouts agree "
          f"({refused} refused by megatron-core; culprit flag shared on {flags_agree}); shapes: {dict(by_shape)}")
    assert len(cases) >= 500 and len(by_shape) >= 6
    assert refused > 100 and len(cases) - refused > 100, "the generator must produce both legal and illegal layouts"
    assert not disagreements, "\n".join(map(str, disagreements[:10]))


def test_kv_groups_smaller_than_tp_is_legal_on_016():
    """The old `kv-groups-tp` refused TP=4 for Qwen3.6 (2 KV groups); megatron-core 0.16.1 accepts it."""
    shape = SHAPES["gdn-moe"]
    args = {"tensor_model_parallel_size": 4, "expert_model_parallel_size": 2, "sequence_parallel": True}
    assert swift_ext_verdict(shape, 8, args) == []
    a = Args(args, SCHEMA)
    assert oracle.judge(shape, a, layout_of(a, 8)).accepts


def test_version_aware_rules():
    """ms-swift issue #8219: 2 KV groups with TP=8 failed on megatron-core 0.15, runs on 0.16.
    GDN + CP: refused by 0.16 (TransformerConfig assert), allowed from 0.18 (Megatron-LM PR #2642)."""
    qwen = SHAPES["gdn-moe"]
    tp8 = {"tensor_model_parallel_size": 8, "sequence_parallel": True, "expert_model_parallel_size": 8}
    old = swift_ext_verdict(qwen, 8, tp8, env={oracle.ENV_VERSION: "0.15.0"})
    assert [e.code for e in old] == ["kv-groups-tp"] and "0.15.0" in old[0].message
    assert swift_ext_verdict(qwen, 8, tp8, env={oracle.ENV_VERSION: "0.16.1"}) == []
    cp2 = {"context_parallel_size": 2, "tensor_model_parallel_size": 2, "sequence_parallel": True,
           "expert_model_parallel_size": 4}
    assert [e.code for e in swift_ext_verdict(qwen, 8, cp2, env={oracle.ENV_VERSION: "0.16.1"})] == [
        "linear-attention-cp"]
    assert swift_ext_verdict(qwen, 8, cp2, env={oracle.ENV_VERSION: "0.18.0"}) == []
    a = Args(cp2, SCHEMA)
    verdict = oracle.judge(qwen, a, layout_of(a, 8))
    assert [oracle.flag_of(f) for f in verdict.findings] == ["context_parallel_size"]
    assert "Gated delta net does not support context parallel" in verdict.findings[0].message


def test_plan_reports_oracle_errors_and_the_assumed_version(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {ROOT}/recipes/qwen3_6/sft-lora-4x32g.yaml\nargs:\n  exp_avg_dtype: bf16\n"
                   "  recompute_num_layers: null\n")
    from swift_ext.spec.recipe import load_recipe

    result = make_plan(load_recipe(bad), oracle=True)
    assert any("megatron-core version assumed by the layout rules: 0.16.1 (installed)" in n for n in result.notes)
    assert any("oracle: refuses" in n for n in result.notes)
    paths = {p.path for p in result.errors}
    assert {"args.exp_avg_dtype", "args.recompute_num_layers"} <= paths
    assert result.megatron_core["oracle"]["accepts"] is False
    assert {f["field"] for f in result.megatron_core["oracle"]["findings"]} >= {"args.exp_avg_dtype"}
    assert all(f["source"].startswith("megatron.core.") and f["hand_copied"] is False
               for f in result.megatron_core["oracle"]["findings"])
    ok = make_plan(load_recipe(ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml"), oracle=True)
    assert ok.ok and any("oracle: accepts" in n for n in ok.notes)
    assert ok.megatron_core == {"assumed": "0.16.1", "source": "installed",
                                "oracle": {"version": "0.16.1", "accepts": True, "findings": []}}


def test_plan_cli_oracle_flag_and_env_target(tmp_path):
    target = tmp_path / "cp2.yaml"
    target.write_text(f"extends: {ROOT}/recipes/qwen3_6/sft-mtp-packing-8gpu.yaml\nenv:\n"
                      f"  {oracle.ENV_VERSION}: 0.18.0\nargs:\n  context_parallel_size: 2\n")
    proc = swift_ext("plan", target)  # conftest sets SWIFT_EXT_ORACLE=0: the rules only, assuming 0.18.0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "assumed by the layout rules: 0.18.0" in proc.stdout
    data = json.loads(swift_ext("plan", target, "--json").stdout)
    assert data["megatron_core"] == {"assumed": "0.18.0", "source": f"{oracle.ENV_VERSION} in the recipe env",
                                     "oracle": None}
    proc = swift_ext("plan", target, "--oracle")  # the installed 0.16.1 still refuses CP with GDN: a warning,
    out = proc.stdout + proc.stderr              # since the recipe targets 0.18
    assert proc.returncode == 0 and "warning:" in out and "megatron-core 0.16.1 refuses this: Gated delta net" in out
    assert "the recipe targets 0.18.0" in out
    from swift_ext.spec.recipe import load_recipe

    # Targeting the installed version, megatron-core's refusal is an error (in-process: the import is paid once).
    same = make_plan(load_recipe(target, [f"env.{oracle.ENV_VERSION}=0.16.1"]), oracle=True)
    assert "args.context_parallel_size" in {p.path for p in same.errors}
    assert not any(p.code == "megatron-core" for p in same.warnings)


def test_broken_megatron_core_is_a_note_not_a_crash(tmp_path):
    broken = tmp_path / "site" / "megatron"
    (broken / "core").mkdir(parents=True)
    (broken / "__init__.py").write_text("")
    (broken / "core" / "__init__.py").write_text("raise ImportError('this megatron-core install is broken')\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path / 'site'}"}
    proc = subprocess.run([sys.executable, "-m", "swift_ext", "plan", str(ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml"),
                           "--oracle"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "megatron-core oracle unavailable: ImportError: this megatron-core install is broken" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_pipeline_layout_rule_and_oracle():
    qwen = SHAPES["gdn-moe"]  # 40 layers
    base = {"pipeline_model_parallel_size": 2, "expert_model_parallel_size": 4, "mtp_num_layers": 1}
    good = {**base, "pipeline_model_parallel_layout": "E(t*10|)*3,t*10mL"}  # 4 stages = PP2 x VPP2
    assert swift_ext_verdict(qwen, 8, good) == []
    a = Args(good, SCHEMA)
    assert oracle.judge(qwen, a, layout_of(a, 8)).accepts
    short = {**base, "pipeline_model_parallel_layout": "Et*19|t*20mL"}
    (problem,) = swift_ext_verdict(qwen, 8, short)
    assert problem.code == "pipeline-layout" and "39 transformer layers" in problem.message
    a = Args(short, SCHEMA)
    assert [oracle.flag_of(f) for f in oracle.judge(qwen, a, layout_of(a, 8)).findings] == ["pipeline_model_parallel_layout"]
    early_mtp = {**base, "pipeline_model_parallel_layout": "Et*10m|t*10|t*10|t*10L"}
    assert "last virtual stage" in swift_ext_verdict(qwen, 8, early_mtp)[0].message


def test_grid_comes_from_megatron_cores_own_initialize_model_parallel():
    """Each refusal names the megatron-core function that raised it (its own code, not a copy), and
    the fake process group is gone afterwards, so the next verdict in this process starts clean."""
    import torch.distributed as dist

    moe = SHAPES["moe"]  # 128 experts
    cases = [  # (world, args) -> (flag, source)
        (12, {"tensor_model_parallel_size": 8}, ("tensor_model_parallel_size", "parallel_state.initialize_model_parallel")),
        (8, {"expert_model_parallel_size": 16, "sequence_parallel": True},
         ("expert_model_parallel_size", "parallel_state.initialize_model_parallel")),
        (8, {"pipeline_model_parallel_size": 1, "virtual_pipeline_model_parallel_size": 2},
         ("virtual_pipeline_model_parallel_size", "parallel_state.initialize_model_parallel")),
        (12, {"expert_model_parallel_size": 3}, ("expert_model_parallel_size", "transformer.moe.moe_layer.BaseMoELayer.__init__")),
        (8, {"tensor_model_parallel_size": 2, "expert_model_parallel_size": 4, "sequence_parallel": False},
         ("sequence_parallel", "transformer.moe.moe_layer.MoELayer.forward")),
    ]
    for world, args, (flag, source) in cases:
        a = Args(args, SCHEMA)
        verdict = oracle.judge(moe, a, layout_of(a, world), cache=False)
        assert [(oracle.flag_of(f), oracle.is_hand_copied(f)) for f in verdict.findings] == [(flag, False)], (args, verdict.findings)
        assert verdict.findings[0].source == f"megatron.core.{source}"
        assert not dist.is_initialized()
    # Accepted on every probed rank: rank 0, its pipeline group (each stage), the last rank.
    a = Args({"tensor_model_parallel_size": 2, "pipeline_model_parallel_size": 2, "expert_model_parallel_size": 8,
              "sequence_parallel": True}, SCHEMA)
    verdict = oracle.judge(moe, a, layout_of(a, 32), cache=False)
    assert verdict.accepts, verdict.findings
    assert any("initialize_model_parallel ran as ranks 0, 16, 31 of 32" in n for n in verdict.notes), verdict.notes
    assert any(n.startswith("hand-copied, not megatron-core's code: the recipe -> TransformerConfig") for n in
               verdict.notes)


JUDGE_TWICE = """
import json, sys
sys.path[:0] = [{root!r}]
from swift_ext.msswift import schema
from swift_ext.msswift.bound_args import Args
from swift_ext.planner import oracle
from swift_ext.planner.layout import layout_of
from swift_ext.planner.shape_lookup import resolve_shape
a = Args({{"expert_model_parallel_size": 3}}, schema.schema_for("megatron", "sft"))
v = oracle.judge(resolve_shape("Qwen/Qwen3-30B-A3B"), a, layout_of(a, 12))
print(json.dumps({{"torch": "torch" in sys.modules, "findings": [f.__dict__ for f in v.findings], "notes": v.notes}}))
"""


def test_cached_verdict_skips_torch(tmp_path):
    """The second process gets the same verdict from the cache and never imports torch."""
    code = JUDGE_TWICE.format(root=str(ROOT))

    def judge_in_subprocess() -> dict:
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "SWIFT_EXT_CACHE": str(tmp_path / "cache")})
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = judge_in_subprocess()
    assert first["torch"] and "cached verdict" not in first["notes"]
    assert [f["path"] for f in first["findings"]] == ["args.expert_model_parallel_size"]
    assert len(list((tmp_path / "cache" / "oracle").glob("*.json"))) == 1
    second = judge_in_subprocess()
    assert not second["torch"]
    assert second["findings"] == first["findings"] and second["notes"] == first["notes"] + ["cached verdict"]


def test_cache_key_follows_every_input():
    from swift_ext.planner import oracle_cache

    a = Args({"tensor_model_parallel_size": 2}, SCHEMA)
    lay = layout_of(a, 8)
    base = oracle_cache.key(SHAPES["moe"], a, lay, True, "0.16.1")
    assert base == oracle_cache.key(SHAPES["moe"], Args({"tensor_model_parallel_size": 2}, SCHEMA), lay, True, "0.16.1")
    others = {
        oracle_cache.key(SHAPES["gdn-moe"], a, lay, True, "0.16.1"),
        oracle_cache.key(SHAPES["moe"], Args({"tensor_model_parallel_size": 2, "sequence_parallel": True}, SCHEMA),
                         lay, True, "0.16.1"),
        oracle_cache.key(SHAPES["moe"], a, layout_of(a, 16), True, "0.16.1"),
        oracle_cache.key(SHAPES["moe"], a, lay, False, "0.16.1"),
        oracle_cache.key(SHAPES["moe"], a, lay, True, "0.17.0"),
    }
    assert base not in others and len(others) == 5


def test_a_live_process_group_is_left_alone_and_the_partial_verdict_not_cached(tmp_path, monkeypatch):
    """In a process that already has torch.distributed up (someone else's), the grid is not judged
    (a note says so), that process group survives, and the incomplete verdict is not stored."""
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # this test's own init_process_group wraps it
    dist.init_process_group(backend="fake", rank=0, world_size=2, store=FakeStore())
    try:
        a = Args({"expert_model_parallel_size": 3}, SCHEMA)  # BaseMoELayer would refuse: it needs the grid
        verdict = oracle.judge(SHAPES["moe"], a, layout_of(a, 12))
        assert dist.is_initialized() and dist.get_world_size() == 2
    finally:
        dist.destroy_process_group()
    assert verdict.accepts
    assert any(n.startswith("the rank grid was not judged here: RuntimeError: a torch.distributed process group "
                            "already exists") for n in verdict.notes), verdict.notes
    assert not list((tmp_path / "cache").rglob("*.json"))
    assert not oracle.judge(SHAPES["moe"], a, layout_of(a, 12)).accepts  # alone again: judged, and cached
    assert len(list((tmp_path / "cache" / "oracle").glob("*.json"))) == 1


def _traceback_text() -> str:
    """What sys.excepthook writes for an exception raised now (the text a later crash would show)."""
    import io

    try:
        raise ValueError("after the oracle")
    except ValueError as exc:
        err, sys.stderr = sys.stderr, io.StringIO()
        try:
            sys.excepthook(type(exc), exc, exc.__traceback__)
            return sys.stderr.getvalue()
        finally:
            sys.stderr = err


def test_no_rank_prefix_after_the_oracle(monkeypatch):
    """torch's init_process_group wraps sys.excepthook to prefix each line with "[rankN]: " and
    destroy_process_group does not undo it: after an in-process verdict (several fake ranks probed),
    a later traceback must read as this process's own, not rank 31's."""
    import torch.distributed as dist

    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)  # an earlier test's process group may have wrapped it
    a = Args({"tensor_model_parallel_size": 2, "pipeline_model_parallel_size": 2, "expert_model_parallel_size": 8,
              "sequence_parallel": True}, SCHEMA)
    verdict = oracle.judge(SHAPES["moe"], a, layout_of(a, 32), cache=False)
    assert any("initialize_model_parallel ran as ranks 0, 16, 31 of 32" in n for n in verdict.notes), verdict.notes
    assert not dist.is_initialized()
    text = _traceback_text()
    assert "ValueError: after the oracle" in text and "[rank" not in text, text
    assert sys.excepthook is sys.__excepthook__


def test_top1_router_follows_mcore_bridges_score_function():
    """ms-swift's Llama-4 example (examples/models/llama4/mcore.sh: TP=2, EP=4 on 4 GPUs) has top-1
    routing; mcore-bridge (config/parser.py hf_to_mcore_config) gives Llama-4 a sigmoid router, which
    megatron-core 0.16.1 accepts with topk 1. A softmax top-1 router without pre-softmax is still refused
    (TransformerConfig.__post_init__: "Please use --moe-router-pre-softmax when topk is 1")."""
    args = Args({"tensor_model_parallel_size": 2, "expert_model_parallel_size": 4, "sequence_parallel": True},
                SCHEMA)
    llama4 = resolve_shape("LLM-Research/Llama-4-Scout-17B-16E-Instruct")
    assert llama4.num_experts_per_tok == 1 and llama4.router_score_function == "sigmoid"
    assert oracle.judge(llama4, args, layout_of(args, 4)).accepts
    text = {"model_type": "mixtral", "num_hidden_layers": 4, "hidden_size": 1024, "num_attention_heads": 8,
            "num_key_value_heads": 8, "intermediate_size": 512, "num_local_experts": 8, "num_experts_per_tok": 1,
            "vocab_size": 32000}
    softmax_top1 = from_config(text, name="synthetic/top1-softmax")
    verdict = oracle.judge(softmax_top1, args, layout_of(args, 4))
    assert not verdict.accepts and "pre-softmax when topk is 1" in " ".join(f.message for f in verdict.findings)
    # norm_topk_prob false is pre-softmax routing in mcore-bridge: accepted again.
    pre = from_config({**text, "norm_topk_prob": False}, name="synthetic/top1-presoftmax")
    assert pre.router_pre_softmax and oracle.judge(pre, args, layout_of(args, 4)).accepts
