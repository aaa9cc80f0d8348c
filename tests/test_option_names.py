"""Argument names as ms-swift's parser reads them: exact, `--a-b`, `--no_x`, or an unambiguous prefix (argparse's
allow_abbrev, left on by HfArgumentParser) -- checked against ms-swift's own parser, then through plan and import."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
import yaml

from conftest import swift_ext
from swift_ext.msswift.option_names import read_name
from swift_ext.msswift.schema import schema_for
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import Recipe


@pytest.fixture(scope="module")
def msswift_parsers():
    """The parser swift/utils/utils.py: parse_args builds for each command (CPU: no model is loaded). The
    megatron pipelines are SwiftPipeline subclasses (swift/megatron/pipelines/train/sft.py) that parse through the
    same function, but their dataclass imports mcore_bridge, which this machine lacks: they are covered below
    through the same option strings from our schema."""
    from swift.arguments import RLHFArguments, SftArguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    parsers = {}
    for command, cls in (("sft", SftArguments), ("rlhf", RLHFArguments)):
        with _patch_get_type_hints():
            parsers[command] = parser = HfArgumentParser([cls])
        # Its error() prints the usage of ~600 options before exiting: a second each, for nothing we read here.
        parser.format_usage = lambda: ""
    return parsers


def _msswift_reads(parser, name: str) -> tuple[str, str | None]:
    """What ms-swift's parser does with `--NAME`, asked through argparse's own option lookup."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            found = parser._parse_optional(f"--{name}")
        except SystemExit:
            return "ambiguous", None
    if found is None or found[0] is None:
        return "unknown", None
    action = found[0]
    if action.dest == "help":
        return "help", None
    return ("negated" if isinstance(action, argparse._StoreFalseAction) else "sets"), action.dest


def _our_reading(command: str, name: str) -> tuple[str, str | None]:
    reading = read_name(schema_for("swift", command), name)
    if reading.candidates:
        return "ambiguous", None
    if reading.is_help:
        return "help", None
    if reading.field is None:
        return "unknown", None
    return ("negated" if reading.negated else "sets"), reading.field


def _probes(parser) -> list[str]:
    """Every argument's name, its `-` spelling, and prefixes of each (some unique, many ambiguous), plus names
    that match nothing."""
    names = sorted({o[2:] for o in parser._option_string_actions if o.startswith("--")})
    probes = set(names) | {"zzz", "lora_rq", "he", "no"}
    for name in names:
        probes |= {name[:cut] for cut in (2, 4, len(name) // 2, len(name) - 1) if cut > 0}
    return sorted(probes)


@pytest.mark.parametrize("command", ["sft", "rlhf"])
def test_every_name_and_prefix_reads_as_ms_swift_reads_it(msswift_parsers, command):
    parser = msswift_parsers[command]
    probes = _probes(parser)
    assert len(probes) > 1000
    theirs = {n: _msswift_reads(parser, n) for n in probes}
    ours = {n: _our_reading(command, n) for n in probes}
    assert [(n, theirs[n], ours[n]) for n in probes if theirs[n] != ours[n]] == []
    outcomes = {outcome for outcome, _ in ours.values()}
    assert outcomes == {"sets", "negated", "ambiguous", "unknown", "help"}


def test_ms_swift_parses_a_prefix_into_the_full_argument_and_stops_on_an_ambiguous_one(msswift_parsers):
    """The whole parse, with values, as SwiftPipeline._parse_args runs it (parse_known_args; remaining -> error)."""
    parser = msswift_parsers["sft"]
    namespace, rest = parser.parse_known_args(["--lora_r", "9", "--max_len=100", "--learning_r", "2e-5",
                                               "--no_gradient_check"])
    assert (namespace.lora_rank, namespace.max_length, namespace.learning_rate) == (9, 100, 2e-5)
    assert namespace.gradient_checkpointing is False and rest == []
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exited:
        parser.parse_known_args(["--lora", "9"])
    assert exited.value.code == 2 and "ambiguous option: --lora could match --lora_rank" in err.getvalue()
    # Our reading of the same names.
    schema = schema_for("swift", "sft")
    assert [read_name(schema, n).field for n in ("lora_r", "max_len", "learning_r")] == [
        "lora_rank", "max_length", "learning_rate"]
    assert read_name(schema, "lora").candidates[:2] == ("--lora_rank", "--lora-rank")


def test_megatron_names():
    schema = schema_for("megatron", "sft")
    assert read_name(schema, "tensor_model_parallel_s").field == "tensor_model_parallel_size"
    assert read_name(schema, "lr").field == "lr" and not read_name(schema, "lr").abbreviated  # exact wins
    assert read_name(schema, "tp").candidates  # tp_comm_overlap, ...: ambiguous
    assert read_name(schema, "learning_rate").field is None  # megatron's is `lr`
    assert read_name(schema, "lora-r").option == "--lora-rank"
    assert read_name(schema, "lora_rank=8").field is None  # not one option word


def _recipe(args: dict, engine="swift", command="sft", **positions) -> Recipe:
    base = {"model": "swift-ext://tiny-qwen3_6-moe", "dataset": ["d.jsonl"]}
    return Recipe(command=command, engine=engine, launch={"gpus_per_node": 0}, args={**base, **args},
                  source="r.yaml", positions={f"args.{k}": ("r.yaml", line, 3) for k, line in positions.items()})


def test_plan_carries_the_full_name_to_the_rules_the_effective_arguments_and_the_command():
    plan = make_plan(_recipe({"lora_r": 16, "max_len": 512, "tuner_type": "lora"}, lora_r=7), data=False)
    assert [e for e in plan.errors if e.code == "unknown-argument"] == []
    assert "lora_r" not in plan.recipe.args and plan.recipe.args["lora_rank"] == 16
    assert plan.args.int("lora_rank") == 16 and plan.args.int("max_length") == 512
    assert plan.effective["max_length"]["value"] == 512
    argv = plan.launch.argv
    assert argv[argv.index("--lora_rank") + 1] == "16" and "--lora_r" not in argv
    assert any("r.yaml:7: args.lora_r is --lora_r, an abbreviation ms-swift's parser accepts of --lora_rank" in n
               for n in plan.notes)
    assert plan.recipe.where("args.lora_rank")["line"] == 7  # a finding about it points at what was written


def test_an_abbreviated_value_is_checked_against_the_full_argument():
    plan = make_plan(_recipe({"lora_r": "sixteen"}), data=False)
    (bad,) = [e for e in plan.errors if e.path == "args.lora_rank"]
    assert bad.code == "argument-type" and "an integer" in bad.message


def test_two_keys_for_one_argument_take_the_later_as_ms_swift_does():
    plan = make_plan(_recipe({"lora_r": 8, "lora_rank": 32}), data=False)
    assert plan.recipe.args["lora_rank"] == 32
    assert any("args.lora_rank sets --lora_rank again: ms-swift takes the later value (32)" in n for n in plan.notes)


@pytest.mark.parametrize("key, says, hint", [
    ("lora", "`lora` is an ambiguous abbreviation", "write the full name"),
    ("no_gradient_checkpointing", "value-less flag --no_gradient_checkpointing", "`gradient_checkpointing: false`"),
    ("he", "abbreviates --help", "remove it"),
    ("lora_rnk", "has no argument `lora_rnk`", "did you mean `lora_rank`?"),
])
def test_what_ms_swift_refuses_or_misreads_is_refused_in_one_line(key, says, hint):
    plan = make_plan(_recipe({key: True}, **{key: 4}), data=False)
    (problem,) = [e for e in plan.errors if e.code == "unknown-argument"]
    assert says in problem.message and hint in problem.hint and "\n" not in problem.render()
    assert (problem.line, problem.path) == (4, f"args.{key}")
    if key == "lora":
        assert "lora_rank, lora_alpha, lora_dropout" in problem.message  # one name per candidate, not two spellings


def test_with_ignore_args_error_an_unknown_name_is_said_and_an_ambiguous_one_still_refused():
    # SwiftPipeline._parse_args logs remaining_argv instead of raising when ignore_args_error is on (run below on
    # ms-swift's own parser): a 3.x `train_type: lora` is dropped and the run trains with tuner_type's default.
    # (a two-field stand-in for the arguments class: SftArguments.__post_init__ would fetch the model from the hub)
    from dataclasses import dataclass

    from swift.pipelines.base import SwiftPipeline

    @dataclass
    class Arguments:
        tuner_type: str = "full"
        ignore_args_error: bool = False

    class Pipeline(SwiftPipeline):
        args_class = Arguments

    parsed = Pipeline._parse_args(Pipeline, ["--train_type", "lora", "--ignore_args_error", "true"])
    assert parsed.tuner_type == "full"  # dropped: the default trains
    with pytest.raises(ValueError, match="remaining_argv"):
        Pipeline._parse_args(Pipeline, ["--train_type", "lora"])
    plan = make_plan(_recipe({"train_type": "lora", "ignore_args_error": "True"}, train_type=5), data=False)
    assert [e for e in plan.errors if e.code == "unknown-argument"] == []
    (said,) = [w for w in plan.warnings if w.code == "unknown-argument"]
    assert said.path == "args.train_type" and "goes on without this value" in said.message and "tuner_type" in said.hint
    plan = make_plan(_recipe({"lora": True, "ignore_args_error": True}), data=False)
    assert [e.path for e in plan.errors if e.code == "unknown-argument"] == ["args.lora"]  # argparse itself stops
    plan = make_plan(_recipe({"train_type": "lora", "ignore_args_error": False}), data=False)
    assert [e.path for e in plan.errors if e.code == "unknown-argument"] == ["args.train_type"]


IMPORTED = """NPROC_PER_NODE=1 megatron sft \\
    --model Qwen/Qwen3-8B --dataset d.jsonl --tuner_type lora \\
    --lora_r 16 --max_len=4096 --no_gradient_accumulation_fusion --tensor-model-parallel-s 1 --lora 3
"""


def test_import_writes_the_full_name_and_leaves_the_ambiguous_flag_to_the_check(write):
    result = swift_ext("import", write("s.sh", IMPORTED))
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["lora_rank"] == 16 and args["max_length"] == 4096 and args["tensor_model_parallel_size"] == 1
    assert args["gradient_accumulation_fusion"] is False and args["lora"] == 3
    assert not {"lora_r", "max_len", "no_gradient_accumulation_fusion"} & set(args)
    assert "--lora_r is ms-swift's abbreviation of --lora_rank" in result.stderr
    assert "--no_gradient_accumulation_fusion sets gradient_accumulation_fusion to false" in result.stderr
    assert "`lora` is an ambiguous abbreviation" in result.stderr


def test_a_prefix_of_one_argument_in_two_spellings_names_that_argument():
    # Python 3.11's argparse counts --learning_rate and --learning-rate as two matches for `--learn`; the message
    # said "ambiguous ... (it could be learning_rate)" -- one candidate -- with the hint "write the full name".
    reading = read_name(schema_for("swift", "sft"), "learn")
    if not reading.candidates:
        pytest.skip("this Python's argparse reads one argument's two spellings as one match")
    message, hint = reading.problem("swift sft")
    assert "`learn` abbreviates learning_rate" in message and "--learning_rate, --learning-rate" in message
    assert hint == "write `learning_rate`"
