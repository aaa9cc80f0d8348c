"""Sizes the cluster's scheduler decides (PAI-DLC: NNODES=$WORLD_SIZE, NPROC_PER_NODE from nvidia-smi):
imported as `launch.*: scheduler`, planned at the world sizes the layout works at (planner/scheduled.py)."""

from __future__ import annotations

import yaml

from conftest import RECIPES, swift_ext
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.planner.plan import make_plan
from swift_ext.planner.scheduled import legal_sizes
from swift_ext.spec.recipe import load_recipe

PAI_DLC = """NNODES=$WORLD_SIZE \\
NODE_RANK=$RANK \\
NPROC_PER_NODE=$(nvidia-smi --list-gpus | wc -l) \\
megatron sft \\
    --model Qwen/Qwen3.6-35B-A3B \\
    --dataset d.jsonl \\
    --tuner_type lora \\
    --expert_model_parallel_size 8 \\
    --micro_batch_size 1 \\
    --global_batch_size 64 \\
    --mtp_num_layers 1 \\
    --max_length 2048
"""
GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"


def test_pai_dlc_script_imports_symbolic_sizes_and_plans_them(tmp_path, write):
    result = swift_ext("import", write("dlc.sh", PAI_DLC), "-o", tmp_path / "r.yaml")
    assert result.returncode == 0, result.stderr
    recipe = yaml.safe_load((tmp_path / "r.yaml").read_text())
    assert recipe["launch"] == {"gpus_per_node": "scheduler", "nodes": "scheduler"}
    assert "NNODES=$WORLD_SIZE is decided by the scheduler" in result.stderr
    planned = swift_ext("plan", tmp_path / "r.yaml", "launch.gpu=H100")
    assert planned.returncode == 0, planned.stdout + planned.stderr  # not refused, not planned as one GPU
    imported = load_recipe(tmp_path / "r.yaml", ["launch.gpu=H100"])
    worlds = [n * g for n, g in legal_sizes(imported, resolve_shape(imported.args["model"]))[0]]
    assert worlds and worlds[0] > 1
    shown = " ".join(planned.stdout.split())  # rich wraps long lines
    assert f"decided by the scheduler; the layout works at {', '.join(map(str, worlds[:12]))}" in shown
    sized = swift_ext("plan", tmp_path / "r.yaml", "launch.gpu=H100", "--nodes", "2", "--gpus-per-node", "8")
    assert sized.returncode == 0 and "WORLD=16" in sized.stdout and "scheduler" not in sized.stdout


def test_listed_sizes_are_those_the_layout_rules_accept():
    recipe = load_recipe(GRPO, ["launch.nodes=scheduler"])
    plan = make_plan(recipe)
    legal, refused = legal_sizes(recipe, plan.shape)
    worlds = [n * g for n, g in legal]
    assert worlds and all(w % 8 == 0 for w in worlds)  # EP=8 with 8 GPUs per node
    (note,) = [n for n in plan.notes if "decided by the scheduler" in n]
    assert ", ".join(map(str, worlds)) in note
    for world, why in refused.items():  # each refused size names the rule that refuses it
        assert world not in worlds and ":" in why
    assert plan.ok and plan.layout.world == worlds[0]


def test_no_legal_size_is_one_clear_error():
    plan = make_plan(load_recipe(GRPO, ["launch.nodes=scheduler", "args.expert_model_parallel_size=3"]))
    (problem,) = [e for e in plan.errors if e.code == "launch"]
    assert "works at no world size" in problem.message and problem.path == "launch.nodes"


def test_submit_asks_for_numbers(tmp_path):
    result = swift_ext("submit", GRPO, "launch.nodes=scheduler", "--dry-run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "launch.nodes is decided by the scheduler" in result.stderr


def test_scheduler_sizes_without_model_shape_use_the_shape_free_layout_rules(tmp_path, write):
    """A DLC script training a local mcore checkpoint (no config.json to read): the layout rules that need
    no shape still pick the world size; PP=2 x EP=8 is not refused as 1 GPU."""
    script = ("NNODES=$WORLD_SIZE \\\nNODE_RANK=$RANK \\\nmegatron sft \\\n    --mcore_model ./no-such-ckpt-mcore \\\n"
              "    --dataset d.jsonl \\\n    --pipeline_model_parallel_size 2 \\\n"
              "    --expert_model_parallel_size 8 \\\n    --micro_batch_size 1 \\\n    --global_batch_size 16\n")
    result = swift_ext("import", write("dlc.sh", script), "-o", tmp_path / "r.yaml")
    assert result.returncode == 0, result.stderr
    plan = make_plan(load_recipe(tmp_path / "r.yaml"))
    assert not [p for p in plan.errors if p.code in ("world-divisible", "expert-layout", "launch")], plan.errors
    (note,) = [n for n in plan.notes if "decided by the scheduler" in n]
    # PP=2 leaves DP = world/2, which EP=8 must divide; global_batch_size 16 must divide by DP: 16 and 32.
    assert "the layout works at 16, 32 GPUs" in note
    assert plan.shape is None and any(p.code == "model-shape" for p in plan.warnings)
