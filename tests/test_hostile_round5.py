"""A fifth hostile round, on the paths the first four covered least: `import` of shell scripts (and `plan` on what
it wrote), recipe values and YAML forms in every field family, `--model-config`, overrides, and the after-training
verbs on damaged run folders. Each test is a case that was a traceback, a hang or a silently wrong answer; each now
ends in the right answer or one clear error naming the file, the line or field, and what to write instead."""

from __future__ import annotations

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
