"""A fifth hostile round, on the paths the first four covered least: `import` of shell scripts (and `plan` on what
it wrote), recipe values and YAML forms in every field family, `--model-config`, overrides, and the after-training
verbs on damaged run folders. Each test is a case that was a traceback, a hang or a silently wrong answer; each now
ends in the right answer or one clear error naming the file, the line or field, and what to write instead."""

from __future__ import annotations

import json

import pytest

from conftest import RECIPES
from swift_ext.cli.main import run_cli
from swift_ext.msswift.importer import import_text
from swift_ext.spec.findings import UserError

MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
TINY_SFT = RECIPES / "smoke/tiny-sft.yaml"
BASE = "megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl --tensor_model_parallel_size 2"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run_cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err[-2000:]
    return code, out, err


def imported(text: str) -> list[tuple[dict, list[str]]]:
    return import_text(text, "s.sh")


def all_notes(result) -> str:
    return "\n".join(n for _, notes in result for n in notes)


# --- (a) import: shell forms --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["$((" + "+".join(["1"] * 100_000) + "))",
                                   "$(expr " + " + ".join(["1"] * 50_000) + ")"])
def test_arithmetic_too_long_for_python_s_parser_stays_text(value):
    # ast.parse raised RecursionError on a long `1+1+...` chain: an internal error of `import`.
    (data, notes), = imported(f"{BASE} --global_batch_size {value}\n")
    assert data["args"]["global_batch_size"] == value and any("kept as text" in n for n in notes)


def test_a_node_count_too_long_for_int_is_a_clear_error():
    with pytest.raises(UserError) as caught:
        imported(f"NNODES={'9' * 5000} NPROC_PER_NODE=8 {BASE}\n")
    (problem,) = caught.value.problems
    assert problem.file == "s.sh" and problem.line == 1 and "NNODES" in problem.message and "5000 digits" in problem.message


def test_a_variable_that_doubles_itself_is_refused_before_it_fills_memory():
    # ten lines of A=$A$A$A... grow the value to 10^10 characters: the import never ended
    script = "A=xxxxxxxxxx\n" + "A=$A$A$A$A$A$A$A$A$A$A\n" * 9 + f'{BASE} --system "$A"\n'
    with pytest.raises(UserError) as caught:
        imported(script)
    assert "expands to more than" in caught.value.problems[0].message and caught.value.problems[0].line is not None


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_backslash_with_trailing_spaces_is_said_not_imported_as_an_empty_command(newline):
    # `\ ` + newline is an escaped space to bash: the command ends there and `--model ...` runs on its own line.
    # The import wrote `args: {}` with a note about a positional `\`.
    script = newline.join(["NPROC_PER_NODE=2 \\", "megatron sft \\ ", "  --model Qwen/Qwen3-8B \\", "  --dataset d.jsonl", ""])
    with pytest.raises(UserError) as caught:
        imported(script)
    (problem,) = caught.value.problems
    assert problem.line == 2 and "trailing" in problem.message and "remove" in (problem.hint or "")


def test_defaults_are_expanded_as_bash_expands_them():
    # ${A:-${B:-x}} read its default up to the first `}` and kept `${B:-x}`; a default naming a variable the script
    # set was kept as `$D`.
    (data, _), = imported("D=1e-5\nmegatron sft --model ${A:-${B:-Qwen/Qwen3-8B}} --dataset \"${DATA:-d.jsonl}\" "
                          "--lr ${LR:-$D} --output_dir ${OUT:-'out dir'}\n")
    args = data["args"]
    assert args["model"] == "Qwen/Qwen3-8B" and args["lr"] == 1e-5 and args["output_dir"] == "out dir"
    assert args["dataset"] == ["d.jsonl"]


def test_an_unclosed_brace_expansion_is_a_clear_error():
    with pytest.raises(UserError) as caught:
        imported(f"{BASE} --system ${{abc\n")
    assert caught.value.problems[0].line == 1 and "${" in caught.value.problems[0].message


@pytest.mark.parametrize("between", ["; ", ";", " && ", "&&", " || "])
def test_two_commands_on_one_line_are_two_recipes(between):
    # `2;` stayed one word: tensor_model_parallel_size became ["2;", "swift", "sft"] and --model was "given twice"
    result = imported(f"{BASE}{between}swift sft --model Qwen/Qwen3-0.6B --dataset e.jsonl\n")
    assert [(d["engine"], d["args"]["model"]) for d, _ in result] == [("megatron", "Qwen/Qwen3-8B"),
                                                                      ("swift", "Qwen/Qwen3-0.6B")]
    assert result[0][0]["args"]["tensor_model_parallel_size"] == 2


def test_an_assignment_before_a_semicolon_reaches_the_command_after_it():
    (data, _), = imported("LR=2e-5; megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl --lr $LR\n")
    assert data["args"]["lr"] == 2e-5


def test_a_redirection_written_against_a_value_is_not_part_of_the_value():
    (data, notes), = imported(f"{BASE} --lr 1e-5>train.log 2>&1\n")
    assert data["args"]["lr"] == 1e-5 and any(">train.log" in n for n in notes)


def test_a_here_document_is_text_not_commands():
    # its lines were read as the script's own: a `megatron sft` inside a `cat <<EOF` became a recipe
    script = ("cat > /tmp/cfg.json <<EOF\n{\"a\": 1}\nmegatron sft --model M --dataset d\nEOF\n"
              "python - <<-'PY'\n\tprint('x')\n\tPY\n" + BASE + "\n")
    result = imported(script)
    assert [d["args"]["model"] for d, _ in result] == ["Qwen/Qwen3-8B"]
    said = all_notes(result)
    assert "s.sh:2-4: a here-document" in said and "`megatron sft`" in said and "s.sh:6-7: a here-document" in said


def test_a_shift_in_arithmetic_is_not_a_here_document():
    (data, _), = imported(f"{BASE} --global_batch_size $((1<<4))\n--lr 1\n")
    assert data["args"]["global_batch_size"] == "$((1<<4))"


def test_backticks_are_command_substitution_kept_whole():
    # `cat m.txt` was split at its space into a two-item `model` list, with no note
    (data, notes), = imported("megatron sft --model `cat m.txt` --dataset d.jsonl\n")
    assert data["args"]["model"] == "`cat m.txt`" and any("computed by the shell" in n for n in notes)


@pytest.mark.parametrize("text", ["${#X}", "${X/a/b}", "${!X}", "${X[0]}", "${DATA[@]}", "\"${ARGS[@]}\""])
def test_expansions_the_importer_does_not_evaluate_are_said(text):
    result = imported(f"X=abc\n{BASE} --system {text}\n")
    assert "not evaluate" in all_notes(result), all_notes(result)


def test_a_bash_array_assignment_is_said():
    result = imported(f"DATA=(a.jsonl b.jsonl)\n{BASE}\n")
    assert "bash array" in all_notes(result)


@pytest.mark.parametrize("word, says", [("–lr", "en dash (U+2013)"), ("—lr", "em dash (U+2014)"),
                                        ("“Qwen/Qwen3-8B”", "typographic quote (U+201C)"),
                                        ("‘d.jsonl’", "typographic quote (U+2018)"),
                                        ("a\u00a0b", "non-breaking space (U+00A0)")])
def test_characters_pasted_from_a_document_are_said(word, says):
    # bash passes them as text: `–lr 1e-5` silently became two more --dataset entries
    result = imported(f"megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl {word} 1e-5\n")
    assert says in all_notes(result), all_notes(result)


def test_a_non_breaking_space_between_the_command_words_is_named_in_the_error():
    with pytest.raises(UserError) as caught:
        imported("megatron sft\u00a0--model Qwen/Qwen3-8B --dataset d.jsonl\n")
    assert "U+00A0" in (caught.value.problems[0].hint or "")


def test_a_file_with_carriage_returns_only_is_named_in_the_error():
    with pytest.raises(UserError) as caught:
        imported("NPROC_PER_NODE=2 \\\rmegatron sft \\\r  --model Qwen/Qwen3-8B\r")
    assert "carriage return" in (caught.value.problems[0].hint or "")
    (data, _), = imported("megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl\r")  # one line, one stray CR: read
    assert data["args"]["dataset"] == ["d.jsonl"]


def test_a_single_dash_option_is_not_a_value_of_the_flag_before_it():
    # `--tensor_model_parallel_size 2 -lr 1e-5` became tensor_model_parallel_size: [2, -lr, 1e-05]
    (data, notes), = imported(f"{BASE} -lr 1e-5 --lora_rank -1\n")
    assert data["args"]["tensor_model_parallel_size"] == 2 and data["args"]["-lr"] == 1e-5
    assert data["args"]["lora_rank"] == -1  # a negative number stays a value
    assert any("`-lr`" in n and "--" in n for n in notes)


def test_a_bare_double_dash_is_said_not_imported_as_an_empty_name():
    (data, notes), = imported(f"{BASE} -- --lr 1e-5\n")
    assert "" not in data["args"] and any("`--`" in n for n in notes)


def test_the_note_on_an_unset_variable_does_not_promise_that_env_expands_it():
    # swift-ext starts ms-swift without a shell: `env:` in the recipe does not expand `$MODEL` in args
    (_, notes), = imported("megatron sft --model $MODEL --dataset d.jsonl\n")
    said = next(n for n in notes if "$MODEL" in n)
    assert "env:" not in said and "no shell" in said


def test_many_unknown_flags_do_not_run_argparse_for_each(monkeypatch):
    # 20,000 unknown flags took minutes: each name went through a 1,400-option argparse parser twice. A name no
    # option starts with cannot be an option or an abbreviation of one.
    from swift_ext.msswift import option_names
    from swift_ext.msswift.schema import schema_for

    schema = schema_for("megatron", "sft")
    assert option_names.read_name(schema, "lora_r").field == "lora_rank"  # an abbreviation still reads

    def never(*a, **k):
        raise AssertionError("argparse ran on a name no option starts with")

    monkeypatch.setattr(option_names._Parser, "parse_known_args", never)
    assert option_names.read_name(schema, "f12345").field is None


# --- (a) then `plan` on what import wrote -------------------------------------------------------------------------

def test_plan_says_when_an_argument_holds_shell_text_nothing_will_expand(capsys, write):
    # The importer keeps `${MODEL:?}`, `$(date)`, `${DATA[@]}` as text (with a note); swift-ext starts ms-swift with
    # no shell, so ms-swift would get that text: `plan` said ok (a hub id `${DATA[@]}`, a model `${MODEL:?}`).
    script = write("s.sh", "megatron sft --model ${MODEL:?} --dataset ${DATA[@]} --output_dir out/$(date +%s) "
                           "--system 'Costs $5, answer in $USD'\n")
    code, _, _ = cli(capsys, "import", script, "-o", script.with_suffix(".yaml"))
    assert code == 0
    code, out, err = cli(capsys, "plan", script.with_suffix(".yaml"))
    said = {line.split(": ")[2] for line in err.splitlines() if "shell syntax" in line and line.startswith("warning")}
    assert said == {"args.model", "args.dataset", "args.output_dir"}, err  # `$5` / `$USD` in a prompt are text
    assert "`$(date +%s)`" in err and "`${DATA[@]}`" in err


# --- (b) recipes: YAML forms ----------------------------------------------------------------------------------

def test_a_json_argument_nested_past_the_yaml_parser_is_kept_as_written():
    # the importer types a value like YAML does; PyYAML's recursion on 50,000 `[` was an internal error
    deep = "[" * 50_000 + "]" * 50_000
    (data, _), = imported(f"{BASE} --megatron_extra_kwargs '{deep}'\n")
    assert data["args"]["megatron_extra_kwargs"] == deep


@pytest.mark.parametrize("where", ["args:\n  max_length: {n}\n", "args:\n  lr: {n}\n", "launch:\n  nodes: {n}\n"])
def test_an_integer_too_long_for_python_is_a_clear_error_at_its_line(capsys, write, where):
    # PyYAML's int() raised ValueError past 4300 digits: an internal error of plan
    path = write("r.yaml", f"extends: {TINY_SFT}\n" + where.format(n="9" * 5000))
    code, _, err = cli(capsys, "plan", path)
    assert code == 2 and f"{path}:3:" in err and "5000 digits" in err, err[-500:]


def test_an_override_too_long_for_python_is_a_clear_error(capsys):
    code, _, err = cli(capsys, "plan", TINY_SFT, "args.lr=" + "9" * 5000)
    assert code == 2 and "args.lr" in err, err[-500:]


@pytest.mark.parametrize("value", ["[" * 100_000, "[a, b", "{a: 1", "[a, [b, c]"])
def test_an_override_that_opens_a_list_or_mapping_it_does_not_close_is_refused(capsys, value):
    # `args.dataset=[a, b` planned as the one dataset '[a, b' (ms-swift would look it up on the hub); 100,000 `[`
    # was a RecursionError
    code, _, err = cli(capsys, "plan", TINY_SFT, f"args.dataset={value}")
    assert code == 2 and "args.dataset" in err and "quote" in err, err[-500:]


def test_an_override_of_text_starting_with_a_bracket_can_be_quoted(capsys):
    code, out, err = cli(capsys, "plan", TINY_SFT, "args.system='[INST] be brief'", "--json")
    assert code == 0, err
    argv = json.loads(out)["argv"]
    assert argv[argv.index("--system") + 1] == "[INST] be brief"


def test_a_key_given_by_a_merge_and_again_by_hand_is_the_later_value_not_a_duplicate(capsys, write):
    # YAML merge keys: a key written in the mapping overrides the merged one. After PyYAML flattened the merge,
    # the duplicate-key check saw both and refused valid YAML.
    path = write("r.yaml", f"extends: {TINY_SFT}\nargs:\n  <<: [&lora {{lora_rank: 4, lora_alpha: 16}}, {{lora_dropout: 0.1}}]\n"
                           "  lora_rank: 16\n")
    code, out, err = cli(capsys, "plan", path, "--json")
    assert code == 0, err
    argv = json.loads(out)["argv"]
    assert argv[argv.index("--lora_rank") + 1] == "16" and argv[argv.index("--lora_alpha") + 1] == "16"
    assert argv[argv.index("--lora_dropout") + 1] == "0.1"
    dup = write("d.yaml", f"extends: {TINY_SFT}\nargs:\n  <<: {{lora_rank: 4}}\n  lora_rank: 8\n  lora_rank: 16\n")
    code, _, err = cli(capsys, "plan", dup)
    assert code == 2 and "d.yaml:5:3: args.lora_rank: duplicate key" in err, err


@pytest.mark.parametrize("key, value, says", [("system", "!!binary aGVsbG8=", "binary"), ("system", "!!set {a, b}", "set"),
                                              ("system", "2024-01-01", "date"), ("system", "2024-01-01 10:00:00", "date"),
                                              ("dataset", "[2024-01-01]", "date")])
def test_yaml_types_a_command_line_has_no_form_for_are_refused_at_their_line(capsys, write, key, value, says):
    # `system: !!binary ...` reached ms-swift as "b'hello'"; `plan --json` was an internal error (bytes, set and
    # datetime are not JSON)
    path = write("r.yaml", f"extends: {TINY_SFT}\nargs:\n  {key}: {value}\n")
    for extra in ([], ["--json"], ["--print"]):
        code, out, err = cli(capsys, "plan", path, *extra)
        assert code == 2, (extra, err)
    assert f"{path}:3:3: args.{key}" in err and says in err and "quote" in err, err


@pytest.mark.parametrize("written, meant", [("010", "010"), ("0.10", "0.10"), ("yes", "yes"), ("1:30", "1:30"),
                                            ("1e400", "1e400"), ("0x1F", "0x1F"), ("1_000", "1_000"), ("7", "7"),
                                            ("true", "true"), ("'010'", "010"), ("~", None), ("[1]", None)])
def test_an_env_value_is_the_text_written_not_what_yaml_made_of_it(capsys, write, written, meant):
    # env values are text: YAML 1.1 read `010` as 8, `0.10` as 0.1, `yes` as true, `1:30` as 90, `1e400` as inf --
    # and the process got "8", "0.1", "true", "90", "inf"
    path = write("r.yaml", f"extends: {TINY_SFT}\nenv:\n  X: {written}\n")
    code, out, err = cli(capsys, "plan", path, "--json")
    if meant is None:  # null or a list: refused, as before -- in a file and on the command line
        assert code == 2 and "env.X" in err
        code, _, err = cli(capsys, "plan", TINY_SFT, f"env.X={written}")
        assert code == 2 and "env.X" in err, err
        return
    assert code == 0, err
    assert json.loads(out)["env"]["X"] == meant
    code, out, err = cli(capsys, "plan", TINY_SFT, f"env.X={written}", "--json")
    assert code == 0 and json.loads(out)["env"]["X"] == meant.strip("'"), err


@pytest.mark.parametrize("override", ["eval.limit=true", "eval.num_samples=true", "eval.every=false",
                                      "eval.max_new_tokens=true", "eval.launch.gpus=true", "watch.stall_minutes=true",
                                      "watch.max_stall_requeues=false", "launch.gpu_memory_gib=true"])
def test_a_boolean_where_a_number_goes_is_refused(capsys, override):
    # pydantic's lax mode read true as 1: `eval.limit: true` evaluated one row
    code, _, err = cli(capsys, "plan", TINY_SFT, override)
    assert code == 2 and override.split("=")[0] in err and "true or false" in err, err


@pytest.mark.parametrize("target", ["dir", "/dev/null"])
def test_extends_naming_a_directory_or_a_device_says_what_it_is(capsys, write, tmp_path, target):
    if target == "dir":
        (tmp_path / "base.yaml").mkdir()
        target = "base.yaml"
    path = write("r.yaml", f"extends: {target}\n")
    code, _, err = cli(capsys, "plan", path)
    assert code == 2 and "r.yaml:1:1: extends:" in err and "not found" not in err and "not a file" in err, err


@pytest.mark.parametrize("key", ["model", "external_plugins"])
def test_a_name_longer_than_the_file_system_takes_is_no_hundred_kilobyte_error(capsys, key, write):
    # ENAMETOOLONG from `(Path(model) / "config.json").is_file()` reached the central funnel, which printed the
    # whole 100,000-character name and no recipe line
    for base in (TINY_SFT, MEG_SFT):
        path = write("r.yaml", f"extends: {base}\nargs:\n  {key}: {'m' * 100_000}\n")
        code, _, err = cli(capsys, "plan", path)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        # no longer the funnel's OSError: a name the OS refuses is no local directory (a hub id to ms-swift) and no
        # plugin file (refused at its recipe line)
        assert all(line.startswith(f"error: {path}:3:3: args.{key}") for line in errors), err[:300]
        # a plugin file missing here is said at its recipe line (the training machine's working directory decides)
        said = [line for line in err.splitlines() if f"{path}:3:3: args.{key}" in line]
        assert code in (0, 2) and (key == "model" or said), err[:300]
        assert len(err) < 20_000, f"{len(err)} characters: the name is repeated whole"


def test_an_oserror_name_is_shortened_in_the_funnel(capsys, monkeypatch):
    from swift_ext.cli import main

    def too_long(*a, **k):
        raise OSError(36, "File name too long", "x" * 100_000)

    monkeypatch.setattr(main, "app", too_long)
    assert main.run_cli(["plan"]) == 2
    err = capsys.readouterr().err
    assert len(err) < 400 and "File name too long" in err and "100000 characters" in err


@pytest.mark.parametrize("value", ["1" + "0" * 30, "9" * 400])
def test_a_rollout_tensor_parallel_size_of_10_to_the_30_is_refused_quickly(value):
    # swift_rollout_heads listed fitting sizes with range(1, vtp): 10**30 iterations
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe
    from conftest import ROOT

    base = ROOT / "tests/fixtures/working/ms-swift-example-swift-grpo-moe-colocate-lora.yaml"
    errors = make_plan(load_recipe(base, [f"args.vllm_tensor_parallel_size={value}"]), oracle=False).errors
    assert any(e.path == "args.vllm_tensor_parallel_size" for e in errors)


def test_a_size_too_large_for_a_float_is_planned_not_an_internal_error(capsys):
    # check_args compared float(value) < 1: OverflowError on a 400-digit integer
    code, _, err = cli(capsys, "plan", TINY_SFT, "args.max_length=" + "9" * 400)
    assert code in (0, 2), err


def test_a_model_config_rope_factor_that_overflows_is_a_clear_answer(capsys, write):
    # max_positions took int(original * factor): 1e15 * 1e308 is inf, an OverflowError
    from conftest import ROOT

    config = json.loads((ROOT / "swift_ext/planner/presets/qwen.json").read_text())["models"]["Qwen/Qwen3-8B"]["config"]
    config["rope_scaling"] = {"rope_type": "yarn", "factor": 1e308, "original_max_position_embeddings": 10**15}
    path = write("config.json", json.dumps(config))
    code, _, err = cli(capsys, "plan", MEG_SFT, "args.model=/nonexistent/m", "args.mtp_num_layers=null",
                       "--model-config", path)
    assert code in (0, 2), err


# --- (c) the after-training verbs on damaged run folders ----------------------------------------------------------

ROW = {"loss": 1.0, "grad_norm": 0.5, "learning_rate": 1e-4, "global_step/max_steps": "1/4", "elapsed_time": "1s",
       "train_speed(s/it)": 0.5}


def test_report_reads_past_a_log_line_nested_too_deeply(capsys, tmp_path):
    # json.loads raised RecursionError (not ValueError) on 100,000 `[`: an internal error of report (watch skipped it)
    log = tmp_path / "run/v0-1/logging.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("[" * 100_000 + "]" * 100_000 + "\n" + json.dumps(ROW) + "\n" + json.dumps({**ROW, "loss": 0.5,
                   "global_step/max_steps": "2/4"}) + "\n")
    code, _, err = cli(capsys, "report", tmp_path / "run")
    assert code == 0, err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e308])
def test_watch_json_is_json_when_the_log_holds_nan_or_infinity(capsys, tmp_path, bad):
    # a NaN loss (a diverged run) or a negative speed was printed as the token NaN / Infinity: not JSON, so jq and
    # every strict reader failed on the stream the docs promise is "one JSON object per logged step"
    log = tmp_path / "run/v0-1/logging.jsonl"
    log.parent.mkdir(parents=True)
    rows = [{**ROW, "loss": bad, "train_speed(s/it)": bad, "global_step/max_steps": f"{k}/2"} for k in (1, 2)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = cli(capsys, "watch", tmp_path / "run", "--once", "--json")
    assert code == 0, err

    def strict(token):
        raise ValueError(f"not JSON: {token}")

    lines = [json.loads(line, parse_constant=strict) for line in out.splitlines() if line.strip()]
    assert lines and lines[-1]["event"] == "summary"


# --- numbers ms-swift refuses at start-up that `plan` passed (found by the sweep over the numeric families) -------

@pytest.mark.parametrize("overrides, refused", [
    (["args.split_dataset_ratio=-1"], True),    # BaseDatasetLoader.post_process: assert 0 <= split_dataset_ratio <= 1
    (["args.split_dataset_ratio=1.5"], True),
    (["args.split_dataset_ratio=1"], False),
    (["args.split_dataset_ratio=0"], False),
    (["args.split_dataset_ratio=1.5", "args.val_dataset=[v.jsonl]"], False),  # __post_init__ sets it to 0 first
])
def test_a_split_ratio_outside_0_and_1_is_refused(overrides, refused):
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    base = [o for o in overrides if "val_dataset" in o] or ["args.val_dataset=null"]
    errors = make_plan(load_recipe(TINY_SFT, [*overrides, *base]), oracle=False).errors
    assert bool([e for e in errors if e.path == "args.split_dataset_ratio"]) is refused, [e.message for e in errors]


@pytest.mark.parametrize("seed, engine_swift_refuses", [(-1, True), (2**32, True), (2**32 - 1, False), (0, False),
                                                        (42, False)])
def test_a_seed_numpy_cannot_take_is_refused_on_engine_swift(seed, engine_swift_refuses):
    # SwiftPipeline._set_seed: seed + rank -> transformers set_seed -> numpy RandomState.seed, 0 .. 2**32 - 1
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    errors = make_plan(load_recipe(TINY_SFT, [f"args.seed={seed}"]), oracle=False).errors
    assert bool([e for e in errors if e.path == "args.seed"]) is engine_swift_refuses, [e.message for e in errors]
    megatron = make_plan(load_recipe(MEG_SFT, [f"args.seed={seed}"]), oracle=False).errors
    assert not [e for e in megatron if e.path == "args.seed"]  # MegatronSft._set_seed does not seed numpy there


@pytest.mark.slow
def test_numpy_and_ms_swift_refuse_what_the_two_rules_above_refuse():
    import numpy as np

    from swift.dataset.dataset_meta import BaseDatasetLoader

    with pytest.raises(ValueError):
        np.random.seed(-1)
    with pytest.raises(ValueError):
        np.random.seed(2**32)
    np.random.seed(2**32 - 1)
    import inspect

    assert "assert 0 <= split_dataset_ratio <= 1" in inspect.getsource(BaseDatasetLoader.post_process)
