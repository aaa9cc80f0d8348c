"""The shipped Qwen3.6 recipes reproduce the release note's commands flag for flag."""

from __future__ import annotations

import shlex

import pytest

from conftest import RECIPES, ROOT, SEED, seed_grpo_script, seed_sft_script, swift_ext


def parse_script(text: str) -> tuple[dict[str, str], list[str], dict[str, list[str]]]:
    """Independent of swift_ext.msswift.importer: shlex over the joined lines, variables substituted by hand."""
    variables: dict[str, str] = {}
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    command_line = None
    for line in lines:
        words = shlex.split(line)
        if len(words) == 1 and "=" in words[0]:
            name, _, value = words[0].partition("=")
            variables[name] = value
        else:
            command_line = words
    env, i = {}, 0
    while "=" in command_line[i] and not command_line[i].startswith("--"):
        name, _, value = command_line[i].partition("=")
        env[name] = value
        i += 1
    cmd = command_line[i : i + 2]
    flags: dict[str, list[str]] = {}
    current = None
    for word in command_line[i + 2 :]:
        if word.startswith("--"):
            current = word[2:]
            flags[current] = []
        else:
            for name, value in variables.items():
                word = word.replace(f"${name}", value)
            flags[current].append(word)
    # A bare boolean flag means true to ms-swift's parser.
    flags = {k: (v or ["true"]) for k, v in flags.items()}
    return env, cmd, flags


def same_value(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def assert_same_command(expected: str, produced: str) -> None:
    env_a, cmd_a, flags_a = parse_script(expected)
    env_b, cmd_b, flags_b = parse_script(produced)
    assert cmd_a == cmd_b
    assert env_a == env_b
    assert set(flags_a) == set(flags_b), (set(flags_a) ^ set(flags_b))
    for name, values in flags_a.items():
        assert len(values) == len(flags_b[name]), name
        assert all(same_value(x, y) for x, y in zip(values, flags_b[name])), (name, values, flags_b[name])


@pytest.mark.parametrize(
    "recipe, script",
    [("qwen3_6/sft-lora-4x32g.yaml", seed_sft_script), ("qwen3_6/grpo-lora-8gpu.yaml", seed_grpo_script)],
)
def test_shipped_recipe_expands_to_seed_command(recipe, script):
    result = swift_ext("plan", RECIPES / recipe, "--print")
    assert result.returncode == 0, result.stderr
    assert_same_command(script(), result.stdout)


def test_seed_parse_is_not_vacuous():
    env, cmd, flags = parse_script(seed_grpo_script())
    assert cmd == ["megatron", "rlhf"]
    assert flags["system"] == [
        "You are a helpful math assistant. Solve the problem step by step and put your final answer within \\boxed{}."
    ]
    assert flags["report_to"] == ["tensorboard", "swanlab"]
    assert env["NPROC_PER_NODE"] == "8" and len(flags) > 50
    _, _, sft = parse_script(seed_sft_script())
    assert len(sft["dataset"]) == 4 and sft["finetune"] == ["true"]


def test_a_changed_value_is_detected():
    result = swift_ext("plan", RECIPES / "qwen3_6/sft-lora-4x32g.yaml", "args.lora_rank=16", "--print")
    with pytest.raises(AssertionError):
        assert_same_command(seed_sft_script(), result.stdout)


def test_fixture_is_the_shared_reference():
    shared = ROOT.parent / "shared" / "reference" / SEED.name.replace("qwen3_6-release-note", "000_819f21c81a41aa63")
    if not shared.exists():
        pytest.skip("no ../shared/reference beside this checkout")
    assert shared.read_bytes() == SEED.read_bytes()


def shipped_recipes():
    return sorted(p for p in RECIPES.rglob("*.yaml") if not p.name.startswith("_"))


@pytest.mark.parametrize("recipe", shipped_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_shipped_recipe_passes_validation_and_has_a_description(recipe):
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    rec = load_recipe(recipe)
    plan = make_plan(rec)
    assert plan.errors == []
    assert rec.description and "\n" not in rec.description
    assert "(installed)" in plan.notes[0]


def test_variants_extend_a_shared_base():
    texts = {p.name: p.read_text() for p in shipped_recipes()}
    assert all("extends:" in t for n, t in texts.items() if n.startswith(("sft-", "grpo-")))
    names = set(texts)
    assert {"sft-full-2x8.yaml", "sft-lora-fp8.yaml", "sft-mtp-packing-8gpu.yaml"} <= names
