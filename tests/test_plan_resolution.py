"""`plan` resolves a recipe once, as ms-swift will: its defaults, its __post_init__ coercions, where every
value came from, and the steps an epoch makes counted the way each engine's loader counts them."""

from __future__ import annotations

import json

import pytest

from conftest import RECIPES, ROOT, swift_ext, swift_ext_in_process

from swift_ext.msswift.steps import Batching, steps_per_epoch, total_steps


def plan_json(*args):
    # In this process: these tests are about what plan resolves, not the CLI process (test_plan_refusals.py,
    # test_recipe_errors.py and others run `plan --json` as a user does).
    result = swift_ext_in_process("plan", *args, "--json")
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_swift_engine_keeps_the_last_partial_batch_megatron_drops_it():
    swift = Batching("swift", micro_batch_size=2, data_parallel=1, gradient_accumulation_steps=1)
    assert steps_per_epoch(35, swift) == 18  # transformers: ceil(35 / 2)
    assert steps_per_epoch(35, Batching("swift", 2, 1, drop_last=True)) == 17  # GRPOConfig's drop_last
    accum = Batching("swift", micro_batch_size=4, data_parallel=1, gradient_accumulation_steps=2)
    assert steps_per_epoch(11, accum) == 2  # 3 micro-batches -> 2 updates (the last one partial)
    assert steps_per_epoch(11, Batching("swift", 4, 2, gradient_accumulation_steps=1)) == 2  # 5 rows per rank
    megatron = Batching("megatron", micro_batch_size=1, data_parallel=2, global_batch_size=4)
    assert steps_per_epoch(35, megatron) == 8  # 34 usable samples // 4
    assert total_steps(35, megatron, epochs=1.5) == 12 and total_steps(35, swift, epochs=1.5) == 27
    assert total_steps(35, swift, epochs=3, max_steps=8) == 8


def test_provenance_recipe_base_override_default_and_coercion():
    plan = plan_json(RECIPES / "qwen3_6/sft-lora-4x32g.yaml", "args.packing=true", "args.padding_free=false",
                     "args.lr=1e-5")
    eff = plan["effective_args"]
    assert eff["lr"] == {"value": 1e-5, "source": "override"}
    assert eff["model"]["source"] == "base recipe" and eff["model"]["file"].endswith("_base.yaml")
    assert eff["tensor_model_parallel_size"]["source"] in ("recipe", "ms-swift default")
    from swift_ext.msswift.schema import schema_for

    default = schema_for("megatron", "sft").fields["adam_beta1"].default
    assert eff["adam_beta1"] == {"value": default, "source": "ms-swift default"}
    assert eff["padding_free"]["source"] == "ms-swift coercion" and eff["padding_free"]["value"] is True
    assert eff["padding_free"]["stated"] is False
    # said once: layout's packing-modes rule already names it, so the generic override warning stays out
    assert [w["rule"] for w in plan["warnings"] if w["field"] == "args.padding_free"] == ["packing-modes"]
    assert eff["data_parallel_size"]["source"] == "ms-swift coercion"


def test_a_recipe_value_ms_swift_replaces_is_a_warning():
    plan = plan_json(RECIPES / "qwen3_6/sft-lora-4x32g.yaml", "args.train_iters=100", "args.num_train_epochs=1")
    assert [w["field"] for w in plan["warnings"] if w["rule"] == "msswift-override"] == ["args.train_iters"]
    assert plan["effective_args"]["train_iters"]["source"] == "ms-swift coercion"
    assert plan["effective_args"]["train_iters"]["stated"] == 100
    swift = plan_json(RECIPES / "smoke/tiny-sft.yaml", "args.packing=true", "args.padding_free=false")
    assert [w["field"] for w in swift["warnings"] if w["rule"] == "msswift-override"] == ["args.padding_free"]


def test_ms_swift_gradient_accumulation_default_is_the_plans():
    """TrainArgumentsMixin: ceil(16 / per_device_train_batch_size / world) when the recipe leaves it unset."""
    plan = plan_json(RECIPES / "smoke/tiny-sft.yaml", "args.gradient_accumulation_steps=null",
                     "args.per_device_train_batch_size=3")
    assert plan["effective_args"]["gradient_accumulation_steps"]["value"] == 6
    assert plan["effective_args"]["gradient_accumulation_steps"]["source"] == "ms-swift coercion"
    assert plan["epoch"]["samples_per_step"] == 18 and plan["epoch"]["steps_per_epoch"] == 2  # ceil(ceil(35/3)/6)


@pytest.mark.slow
def test_plan_steps_per_epoch_equal_the_trainers(tmp_path):
    """The tiny recipe for one epoch on CPU with real ms-swift: 11 rows, batches of 4, accumulation 2 make 3
    micro-batches and 2 optimizer steps (a floor count would say 1)."""
    rows = (ROOT / "data/sft/train.jsonl").read_text(encoding="utf-8").splitlines()[:11]
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    over = [f"args.dataset=[{data}]", "args.val_dataset=null", "args.max_steps=null", "args.num_train_epochs=1",
            "args.per_device_train_batch_size=4", "args.gradient_accumulation_steps=2", "args.eval_steps=null",
            "args.save_steps=null", f"args.output_dir={tmp_path / 'out'}"]
    planned = plan_json(RECIPES / "smoke/tiny-sft.yaml", *over)["epoch"]
    assert planned["samples"] == 11
    result = swift_ext("run", RECIPES / "smoke/tiny-sft.yaml", *over, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (state_file,) = (tmp_path / "out").glob("v*/checkpoint-*/trainer_state.json")
    state = json.loads(state_file.read_text())
    assert planned["steps_per_epoch"] == state["max_steps"] == state["global_step"]
    assert planned["steps"] == state["max_steps"]
    (log,) = (tmp_path / "out").glob("v*/logging.jsonl")
    last = [json.loads(line) for line in log.read_text().splitlines() if "global_step/max_steps" in line][-1]
    assert last["global_step/max_steps"] == f"{planned['steps_per_epoch']}/{planned['steps_per_epoch']}"
