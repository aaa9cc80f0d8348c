"""The validation split against one evaluation step (planner/eval_split_rules.py, eval-split) and deterministic_mode
through megatron_extra_kwargs (planner/determinism_rules.py, deterministic-mode). Recipes written inline: no public
report names these failures, so the tests pin the engine behaviour each rule mirrors and a near-by setup that runs."""

from __future__ import annotations

import textwrap

from swift_ext.msswift.validation_split import validation_rows
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe
from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args

MEGATRON = """\
description: Qwen3-8B Megatron SFT with a small validation split
command: sft
engine: megatron
launch: {nodes: 1, gpus_per_node: 8, gpu: H100}
args:
  model: Qwen/Qwen3-8B
  tuner_type: lora
  dataset: ['swift/self-cognition#500']
  val_dataset: ['swift/self-cognition#4']
  max_length: 2048
  tensor_model_parallel_size: 2
  micro_batch_size: 1
  global_batch_size: 16
"""

SWIFT = """\
description: Qwen3-8B SFT with a small validation split and dataloader_drop_last
command: sft
engine: swift
launch: {nodes: 1, gpus_per_node: 8, gpu: H100}
args:
  model: Qwen/Qwen3-8B
  tuner_type: lora
  dataset: ['swift/self-cognition#500']
  split_dataset_ratio: 0.01
  max_length: 2048
  per_device_train_batch_size: 2
  per_device_eval_batch_size: 2
  dataloader_drop_last: true
"""


def plan_of(tmp_path, text, *overrides, name="r.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def found(problems, code) -> list:
    return [p for p in problems if p.code == code]


# ---- eval-split, engine megatron (warning) --------------------------------------------------------------------

def test_megatron_split_below_one_step_is_warned_on_val_dataset(tmp_path):
    # TP 2 on 8 GPUs: DP 4, so one evaluation step takes micro_batch_size 1 x 4 = 4 rows; 3 rows are dropped
    plan = plan_of(tmp_path, MEGATRON, "args.val_dataset=['swift/self-cognition#3']")
    (warning,) = found(plan.warnings, "eval-split")
    assert warning.path == "args.val_dataset" and "at most 3 row" in warning.message and "= 4" in warning.message
    assert not found(plan.errors, "eval-split")


def test_megatron_split_of_one_step_or_unknown_size_is_not_warned(tmp_path):
    assert not found(plan_of(tmp_path, MEGATRON).warnings, "eval-split")  # 4 rows: one step
    # a hub dataset without #N: its size is not known before launch
    assert not found(plan_of(tmp_path, MEGATRON, "args.val_dataset=['swift/self-cognition']").warnings, "eval-split")
    # eval_iters 0 asks for no evaluation
    plan = plan_of(tmp_path, MEGATRON, "args.val_dataset=['swift/self-cognition#3']", "args.eval_iters=0")
    assert not found(plan.warnings, "eval-split")


def test_megatron_split_ratio_counts_each_entry(tmp_path):
    # max(int(500 * 0.005), 1) = 2 rows < 4
    split = MEGATRON.replace("  val_dataset: ['swift/self-cognition#4']\n", "")
    plan = plan_of(tmp_path, split, "args.split_dataset_ratio=0.005")
    (warning,) = found(plan.warnings, "eval-split")
    assert warning.path == "args.split_dataset_ratio"
    assert not found(plan_of(tmp_path, split, "args.split_dataset_ratio=0.01").warnings, "eval-split")


def test_local_jsonl_rows_are_counted(tmp_path):
    data = tmp_path / "val.jsonl"
    data.write_text('{"messages": []}\n\n{"messages": []}\n', encoding="utf-8")
    recipe = load_recipe(_write(tmp_path, MEGATRON), [f"args.val_dataset=['{data}']"])
    args = Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command))
    assert validation_rows(args) == (2, "val_dataset")


def _write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---- eval-split, engine swift (error) -------------------------------------------------------------------------

def test_swift_drop_last_split_below_one_round_is_refused(tmp_path):
    # max(int(500 * 0.01), 1) = 5 rows < per_device_eval_batch_size 2 x 8 processes
    plan = plan_of(tmp_path, SWIFT)
    (error,) = found(plan.errors, "eval-split-drop-last")
    assert error.path == "args.split_dataset_ratio" and "= 16" in error.message


def test_swift_without_drop_last_or_with_enough_rows_is_not_refused(tmp_path):
    # accelerate pads the last round (even_batches): every process gets a batch
    assert not found(plan_of(tmp_path, SWIFT, "args.dataloader_drop_last=false").errors, "eval-split-drop-last")
    assert not found(plan_of(tmp_path, SWIFT, "args.split_dataset_ratio=0.04").errors, "eval-split-drop-last")
    assert not found(plan_of(tmp_path, SWIFT, "args.eval_strategy=no").errors, "eval-split-drop-last")


def test_swift_split_of_entries_interleaved_until_all_exhausted_is_not_refused(tmp_path):
    # datasets.interleave_datasets(all_exhausted) oversamples each entry's validation part too: the sum bounds nothing
    mix = ["args.dataset=['swift/self-cognition#250', 'swift/self-cognition#250']", "args.interleave_prob=[0.9, 0.1]"]
    assert not found(plan_of(tmp_path, SWIFT, *mix, "args.stopping_strategy=all_exhausted").errors,
                     "eval-split-drop-last")
    assert found(plan_of(tmp_path, SWIFT, *mix).errors, "eval-split-drop-last")  # first_exhausted: under the sum


# ---- deterministic-mode ---------------------------------------------------------------------------------------

DETERMINISTIC = """\
description: Qwen3.5-4B Megatron SFT with deterministic_mode
command: sft
engine: megatron
launch: {nodes: 1, gpus_per_node: 8, gpu: H100}
env: {NVTE_ALLOW_NONDETERMINISTIC_ALGO: '0'}
args:
  model: Qwen/Qwen3.5-4B
  tuner_type: lora
  dataset: ['swift/self-cognition#500']
  max_length: 2048
  padding_free: false
  micro_batch_size: 1
  global_batch_size: 16
  megatron_extra_kwargs: {deterministic_mode: true}
"""


def test_deterministic_mode_without_the_te_variable_is_warned_or_refused(tmp_path):
    plan = plan_of(tmp_path, DETERMINISTIC, "env.NVTE_ALLOW_NONDETERMINISTIC_ALGO=1")
    (error,) = found(plan.errors, "deterministic-mode")
    assert error.path == "args.megatron_extra_kwargs" and "'1'" in error.message
    text = DETERMINISTIC.replace("env: {NVTE_ALLOW_NONDETERMINISTIC_ALGO: '0'}\n", "")
    plan = plan_of(tmp_path, text)
    (warning,) = found(plan.warnings, "deterministic-mode")
    assert not found(plan.errors, "deterministic-mode")


def test_deterministic_mode_with_packed_gdn_input_is_refused(tmp_path):
    # Megatron's padding_free default (true) packs the rows; mcore-bridge's GDN asserts on cu_seqlens
    plan = plan_of(tmp_path, DETERMINISTIC, "args.padding_free=true")
    (error,) = found(plan.errors, "deterministic-mode")
    assert error.path == "args.padding_free"


def test_deterministic_mode_with_packing_under_the_unfused_backend_plans(tmp_path):
    # ms-swift's _check_padding_free turns padding_free off for attention_backend unfused: GDN gets unpacked rows
    plan = plan_of(tmp_path, DETERMINISTIC, "args.padding_free=true", "args.attention_backend=unfused")
    assert not found(plan.errors, "deterministic-mode"), [e.render() for e in plan.errors]
    plan = plan_of(tmp_path, DETERMINISTIC, "args.packing=true", "args.attention_backend=unfused")
    assert not found(plan.errors, "deterministic-mode"), [e.render() for e in plan.errors]


def test_deterministic_mode_near_by_setups_plan(tmp_path):
    assert not found(plan_of(tmp_path, DETERMINISTIC).errors + plan_of(tmp_path, DETERMINISTIC).warnings,
                     "deterministic-mode")
    # a model without Gated DeltaNet packs under deterministic_mode
    plan = plan_of(tmp_path, DETERMINISTIC, "args.padding_free=true", "args.model=Qwen/Qwen3-8B")
    assert not found(plan.errors, "deterministic-mode")
    # without deterministic_mode nothing is said
    plan = plan_of(tmp_path, DETERMINISTIC, "args.padding_free=true", "args.megatron_extra_kwargs={}",
                   "env.NVTE_ALLOW_NONDETERMINISTIC_ALGO=1")
    assert not found(plan.errors + plan.warnings, "deterministic-mode")
