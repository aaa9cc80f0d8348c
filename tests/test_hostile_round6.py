"""A sixth hostile round: the leftovers of the fifth (quoted numbers in config.json, out-of-range optimizer and
dropout values, an override that read as an empty YAML document, zero-step runs, 20,000 unknown flags, CR-only
logs, values repeated in full) and a fresh pass over recipe sections, overrides, `data` and the after-training
verbs. Each test is a case that was a traceback, a hang or a silently wrong answer on the code before it."""

from __future__ import annotations

import json

import pytest

from conftest import RECIPES, ROOT
from swift_ext.cli.main import run_cli
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
TINY_SFT = RECIPES / "smoke/tiny-sft.yaml"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run_cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err[-2000:]
    return code, out, err


def findings(recipe, overrides):
    plan = make_plan(load_recipe(recipe, overrides), oracle=False)
    return plan.errors, plan.warnings


def qwen3_config() -> dict:
    return json.loads((ROOT / "swift_ext/planner/presets/qwen.json").read_text())["models"]["Qwen/Qwen3-8B"]["config"]


# --- 1. config.json lengths as strings -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["max_position_embeddings", "num_hidden_layers", "seq_length"])
def test_a_quoted_number_in_config_json_is_refused_naming_the_file_and_key(capsys, write, key):
    # max_position_embeddings "32768" was read as absent (no length check at all); transformers 5 refuses the
    # config (StrictDataclassFieldValidationError: expected int, got str) and ms-swift's get_max_model_len takes
    # min(1e9, "32768"): a TypeError
    config = qwen3_config()
    config[key] = "32768" if key != "num_hidden_layers" else "36"
    path = write("config.json", json.dumps(config))
    code, _, err = cli(capsys, "plan", MEG_SFT, "args.model=/nonexistent/m", "args.mtp_num_layers=null",
                       "--model-config", path)
    assert code == 2
    line = next(line for line in err.splitlines() if key in line and line.startswith("error"))
    assert str(path) in line and "must be an integer" in line and "without quotes" in line


# --- 2. out-of-range optimizer and dropout values ------------------------------------------------------------------

@pytest.mark.parametrize("override, rule", [
    ("args.learning_rate=-1e-4", "optimizer-range"), ("args.weight_decay=-0.1", "optimizer-range"),
    ("args.adam_beta1=1.5", "optimizer-range"), ("args.adam_epsilon=-1", "optimizer-range"),
    ("args.lora_dropout=1.5", "lora-dropout")])
def test_swift_values_torch_refuses_are_refused(override, rule):
    errors, _ = findings(TINY_SFT, [override])
    assert [e.code for e in errors] == [rule], errors


def test_a_bitsandbytes_optimizer_is_not_judged_by_torch_s_adam():
    errors, _ = findings(TINY_SFT, ["args.learning_rate=-1e-4", "args.optim=adamw_bnb_8bit"])
    assert not [e for e in errors if e.code == "optimizer-range"]


@pytest.mark.parametrize("overrides, rule", [
    (["args.lr=-1e-4"], "lr-schedule-range"), (["args.min_lr=-1"], "lr-schedule-range"),
    (["args.weight_decay=-1"], "lr-schedule-range"), (["args.lr_warmup_init=1"], "lr-schedule-range"),
    (["args.lora_dropout=2"], "lora-dropout")])
def test_megatron_values_the_lr_scheduler_or_dropout_refuses_are_refused(overrides, rule):
    errors, _ = findings(MEG_SFT, overrides)
    assert rule in [e.code for e in errors], errors


@pytest.mark.parametrize("recipe, override, rule", [
    (TINY_SFT, "args.lora_dropout=-0.1", "lora-dropout"), (TINY_SFT, "args.lora_dropout=1", "lora-dropout"),
    (TINY_SFT, "args.max_grad_norm=-1", "max-grad-norm-off"), (MEG_SFT, "args.clip_grad=-1", "clip-grad-off")])
def test_values_the_engine_reads_as_off_are_warned(recipe, override, rule):
    errors, warnings = findings(recipe, [override])
    assert rule in [w.code for w in warnings] and rule not in [e.code for e in errors]


# --- 3. `args.lr=---` ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["---", "--- null", "# a comment"])
def test_an_override_that_reads_as_an_empty_document_is_text_not_a_removal(raw):
    # `---` is a YAML document marker: the value read as None and the key was removed, silently
    recipe = load_recipe(MEG_SFT, [f"args.lr={raw}"])
    assert recipe.args["lr"] == raw
    errors, _ = findings(MEG_SFT, [f"args.lr={raw}"])
    assert any(e.code == "argument-type" and e.path == "args.lr" for e in errors)


@pytest.mark.parametrize("raw", ["null", "~"])
def test_null_still_removes_a_key(raw):
    assert "lr" not in load_recipe(MEG_SFT, [f"args.lr={raw}"]).args


# --- 4. runs that train nothing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, field", [(["args.num_train_epochs=0", "args.max_steps=-1"], "args.num_train_epochs"),
                                              (["args.max_steps=0"], "args.max_steps")])
def test_swift_runs_of_zero_steps_are_warned(overrides, field):
    _, warnings = findings(TINY_SFT, overrides)
    assert any(w.code == "no-training-steps" and w.path == field for w in warnings)


def test_megatron_train_iters_zero_is_refused():
    # megatron-core's OptimizerParamScheduler asserts lr_decay_steps > 0 (lr_decay_iters defaults to train_iters)
    errors, _ = findings(MEG_SFT, ["args.train_iters=0", "args.num_train_epochs=null"])
    assert any(e.code == "train-iters-range" for e in errors)


# --- 5. 20,000 unknown flags -------------------------------------------------------------------------------------------

def test_twenty_thousand_unknown_flags_are_checked_in_well_under_a_second(write):
    # difflib's "did you mean" over every field for each unknown name: 18 s for 20,000 of them
    import time

    from swift_ext.msswift.schema import schema_for
    from swift_ext.planner.arg_checks import check_args

    names = ["lora_rnak"] + [f"unknown_flag_{i:05d}" for i in range(20_000)]
    path = write("many.yaml", "command: sft\nengine: swift\nargs:\n  model: Qwen/Qwen3-8B\n"
                 + "".join(f"  {n}: 1\n" for n in names))
    recipe = load_recipe(path)
    schema = schema_for(recipe.engine, recipe.command)
    check_args(recipe, schema)  # the option parser is built once per schema: not what is timed
    start = time.process_time()
    problems = check_args(recipe, schema)
    assert time.process_time() - start < 1.0
    assert len(problems) == len(names) and "lora_rank" in (problems[0].hint or "")


# --- 6. one reading of a log's lines for `watch` and `report` ------------------------------------------------------------

ROW = {"loss": 1.0, "grad_norm": 0.5, "learning_rate": 1e-4, "elapsed_time": "1s", "train_speed(s/it)": 0.5}


@pytest.mark.parametrize("layout", ["cr", "no-final-newline", "u2028-in-a-value"])
def test_watch_and_report_read_the_same_rows(capsys, tmp_path, layout):
    # watch split on \n only (a CR-only log -- a trainer's stdout with progress bars -- was one line: step 0);
    # report split with str.splitlines, which also breaks at U+2028 inside a JSON string; watch --once dropped a
    # last line without its newline, report kept it
    from swift_ext.after.report import read_log

    rows = [{**ROW, "loss": 1 / k, "global_step/max_steps": f"{k}/4", "note": "a\u2028b"} for k in (1, 2, 3, 4)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    text = {"cr": "\r".join(lines) + "\r", "no-final-newline": "\n".join(lines),
            "u2028-in-a-value": "\n".join(lines) + "\n"}[layout]
    log = tmp_path / "run/v0-1/logging.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(text.encode())
    code, out, err = cli(capsys, "watch", tmp_path / "run", "--json", "--once")
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and summary["step"] == 4, err
    assert [r["global_step/max_steps"] for r in read_log(log)] == ["1/4", "2/4", "3/4", "4/4"]


# --- 7. a long value is shortened wherever a message quotes it -----------------------------------------------------------

LONG = "x" * 5000


@pytest.mark.parametrize("recipe, override", [
    (TINY_SFT, f"args.learning_rate={LONG}"), (TINY_SFT, f"args.{LONG}=1"), (TINY_SFT, f"args.template={LONG}"),
    (TINY_SFT, f"args.torch_dtype={LONG}"), (TINY_SFT, f"args.target_modules={LONG}"), (TINY_SFT, f"command={LONG}"),
    (TINY_SFT, f"launch.nodes={LONG}"), (TINY_SFT, f"launch.gpu={LONG}"), (TINY_SFT, f"{LONG}=1"),
    (TINY_SFT, f"launch.env.{LONG}=1"), (TINY_SFT, f"args.model_type={LONG}"), (TINY_SFT, f"args.dataset=[{LONG}]"),
    (TINY_SFT, f"args.loss_type={LONG}"), (MEG_SFT, f"args.pipeline_model_parallel_layout={LONG}"),
    (MEG_SFT, f"args.moe_grouped_gemm={LONG}")])
def test_a_5000_character_value_is_not_repeated_in_full(capsys, recipe, override):
    # each of these printed the whole value (once or three times) in its error or note
    _, out, err = cli(capsys, "plan", recipe, override)
    assert max(len(line) for line in (out + err).splitlines()) < 1000, max((out + err).splitlines(), key=len)[:300]


# --- fresh pass: YAML tags and aliases in overrides and files --------------------------------------------------------------

@pytest.mark.parametrize("raw", ["!!float x", "!!timestamp x", "!!int 1.5", "&x [*x]"])
def test_an_override_yaml_cannot_construct_is_text_the_type_check_names(capsys, raw):
    # `!!float x` raised ValueError and `!!timestamp x` AttributeError from PyYAML's constructor (internal errors);
    # `&x {a: *x}` built an endless value (RecursionError)
    code, _, err = cli(capsys, "plan", MEG_SFT, f"args.lr={raw}")
    assert code == 2 and "args.lr: expected a number" in err


def test_an_endless_alias_in_a_mapping_override_is_refused(capsys):
    code, _, err = cli(capsys, "plan", MEG_SFT, "args.megatron_extra_kwargs={a: &x [*x]}")
    assert code == 2 and "endless cycle" in err


def test_a_recipe_file_with_a_tag_yaml_cannot_construct_is_a_clear_error(capsys, write):
    path = write("r.yaml", "command: sft\nengine: swift\nargs:\n  model: Qwen/Qwen3-8B\n  learning_rate: !!float x\n")
    code, _, err = cli(capsys, "plan", path)
    assert code == 2 and str(path) in err and "!!tag" in err


# --- fresh pass: JSON Lines ended by a lone CR --------------------------------------------------------------------------------

def test_a_jsonl_file_with_cr_line_ends_is_read_as_lines_as_ms_swift_reads_it(capsys, write):
    # datasets' json builder (pyarrow) reads such a file row by row (checked: 2 rows); data check called the whole
    # file one malformed line (E001 trailing characters), so plan refused a dataset ms-swift loads
    from swift_ext.datasets.check import check_file
    from swift_ext.datasets.options import Options

    ok = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
    bad = json.dumps({"messages": 5})
    path = write("cr.jsonl", (ok + "\r" + bad + "\r" + ok.replace("yo", "ok") + "\r").encode())
    report = check_file(str(path), Options())
    assert report.rows == 3 and report.valid_rows == 2
    assert [(i.line, i.code) for i in report.issues] == [(2, "E101")]


# --- fresh pass: the after-training verbs on damaged run folders ------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
LORA_ARGS = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "lora", "template": "qwen2_5"}


def lora_checkpoint(tmp_path, args):
    ckpt = tmp_path / "run/v0-1/checkpoint-10"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(args if isinstance(args, str) else json.dumps(args))
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 32, "target_modules": ["q_proj"]}))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\0")
    return ckpt


@pytest.mark.parametrize("verb", ["merge", "infer"])
def test_an_args_json_nested_too_deeply_is_a_clear_error(capsys, tmp_path, verb):
    # json.loads raised RecursionError, which read_json_object did not catch: an internal error
    ckpt = lora_checkpoint(tmp_path, DEEP)
    code, _, err = cli(capsys, verb, ckpt, "--print")
    assert code == 2 and "args.json is not valid JSON (nested too deeply" in err


@pytest.mark.parametrize("value", ["x", -2, 10**9, 2.5])
def test_a_damaged_parallel_size_in_args_json_is_named(capsys, tmp_path, value):
    # int('x') was a ValueError; 10**9 built CUDA_VISIBLE_DEVICES=0,1,...,999999999
    ckpt = lora_checkpoint(tmp_path, {**LORA_ARGS, "model_type": "qwen3_5_moe", "tensor_model_parallel_size": value})
    code, _, err = cli(capsys, "merge", ckpt, "--print")
    assert code == 2 and "tensor_model_parallel_size" in err and "args.json" in err and len(err) < 600


def test_metrics_nested_too_deeply_are_skipped_by_report_and_named_by_compare(capsys, tmp_path):
    run = tmp_path / "run"
    (run / "v0-1").mkdir(parents=True)
    (run / "v0-1/logging.jsonl").write_text(json.dumps({"loss": 1.0, "global_step/max_steps": "1/2"}) + "\n")
    (run / "eval-1").mkdir()
    (run / "eval-1/metrics.json").write_text(DEEP)
    (tmp_path / "b.json").write_text(json.dumps({"exact_match": 1.0}))
    code, _, err = cli(capsys, "report", run)
    assert code == 0, err
    code, _, err = cli(capsys, "infer", "--compare", run / "eval-1/metrics.json", "--compare", tmp_path / "b.json")
    assert code == 2 and "nested too deeply" in err


# --- fresh pass: the eval section is checked by plan, not when the first checkpoint is evaluated ----------------------------

def test_an_unknown_eval_metric_is_refused_by_plan(capsys):
    # plan said nothing; `swift-ext eval` (the follower `run` starts) refused it after training had begun
    code, _, err = cli(capsys, "plan", TINY_SFT, "eval.metrics=[exact_match, exact_matc]")
    assert code == 2 and "unknown evaluation metric 'exact_matc'" in err and "did you mean 'exact_match'" in err


def test_plan_accepts_exactly_the_metric_names_the_evaluation_accepts():
    from swift_ext.after import evalmetrics as em
    from swift_ext.planner.eval_rules import eval_metric_problems
    from swift_ext.msswift.bound_args import Args
    from swift_ext.msswift.schema import schema_for

    names = sorted(set(em.BUILTIN) | set(em._reward_registry()))
    em.check_metric_names(names, {})  # the evaluation takes them all
    recipe = load_recipe(TINY_SFT, [f"eval.metrics=[{', '.join(names)}]"])
    assert eval_metric_problems(recipe, Args.bind(recipe, schema_for(recipe.engine, recipe.command))) == []


# --- fresh pass: text where ms-swift reads a JSON object ---------------------------------------------------------------------

@pytest.mark.parametrize("raw, code", [("&x {a: *x}", "json-string"), ("'5'", "json-string"),
                                       ("hello", "json-argument")])
def test_text_that_is_not_a_json_object_is_said_where_ms_swift_would_repair_it(raw, code):
    # json_parse_to_dict hands non-JSON text to json_repair: '&x {a: *x}' reached the model config as {"a": "x"};
    # plan said nothing (the str|dict type takes any text). 'hello' json_repair mends to '', and json.loads raises.
    import json_repair

    assert json_repair.repair_json("&x {a: *x}") == '{"a": "x"}'  # what ms-swift would have trained with
    assert json_repair.repair_json("hello") == ""
    errors, warnings = findings(MEG_SFT, [f"args.megatron_extra_kwargs={raw}"])
    assert any(f.code == code and f.path == "args.megatron_extra_kwargs"
               for f in (errors if code == "json-argument" else warnings))


def test_a_json_object_string_is_not_warned():
    _, warnings = findings(MEG_SFT, ['args.megatron_extra_kwargs=\'{"moe_router_dtype": "fp32"}\''])
    assert not [w for w in warnings if w.code == "json-string"]


@pytest.mark.parametrize("override", ["launch.nodes=0\x1f", "args.lr=\x1b"])
def test_a_control_character_in_an_override_is_not_an_internal_error(capsys, override):
    # found by test_never_a_traceback once read_scalar built its YAML loader before its try (ReaderError)
    code, _, err = cli(capsys, "plan", MEG_SFT, override)
    assert code == 2


def test_an_eval_metric_only_a_plugin_registers_is_refused_with_the_reason(capsys, tmp_path):
    # `swift-ext eval` imports no external_plugins file: a reward only such a file registers cannot be scored there
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text("from swift.rewards import ORM, orms\n\n\nclass Mine(ORM):\n"
                      "    def __call__(self, completions, **kwargs):\n        return [0.0 for _ in completions]\n\n\n"
                      "orms['my_reward'] = Mine\n", encoding="utf-8")
    code, _, err = cli(capsys, "plan", TINY_SFT, f"args.external_plugins=[{plugin}]", "eval.metrics=[my_reward]")
    assert code == 2 and "only an external_plugins file registers" in err, err
