"""Property: whatever a user writes — recipe values, overrides, import scripts, dataset rows, bad paths,
garbage files, empty or binary run dirs — every verb answers with success or a clear error and a documented
exit code (0, 1, 2), never a traceback, on stdout or stderr.

Drives the CLI in-process through `run_cli` (the one place errors become exit codes), so an escaped
exception shows up as its "internal error" line. Nothing here starts ms-swift: `run` is refused (bad
recipe, or `--expect` another command), `submit` is `--dry-run`, `merge`/`infer` `--print`, `verify`
loads nothing from garbage. Bounded: a fixed number of examples, no deadline."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RECIPES
from swift_ext.cli.main import run_cli

SETTINGS = settings(max_examples=int(os.environ.get("SWIFT_EXT_PROPERTY_EXAMPLES", 40)), deadline=None,
                    derandomize=not os.environ.get("SWIFT_EXT_PROPERTY_EXAMPLES"),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# The verbs below each cost more per example (files, plots, imports): fewer examples, same property.
FEW = settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 4))
INTERNAL_ERROR = ("internal error", "a bug in swift-ext", "Traceback (most recent call last)")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2, max_value=3), st.integers(), st.floats(allow_nan=True),
    st.sampled_from(["", "0", "-1", "1e400", "nan", "inf", "true", "auto", "~", "[1, 2", "{a: 1}", "&a", "*a",
                     "a.jsonl#0", "$WORLD_SIZE", "swift-ext://nope", "../../etc/passwd"]),
    st.text(max_size=12),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                           max_size=3), max_leaves=6)
ARG_NAMES = ["tensor_model_parallel_size", "pipeline_model_parallel_size", "context_parallel_size",
             "expert_model_parallel_size", "expert_tensor_parallel_size", "micro_batch_size", "global_batch_size",
             "num_generations", "vllm_tensor_parallel_size", "lr", "max_length", "recompute_granularity",
             "recompute_num_layers", "mtp_num_layers", "packing", "sequence_parallel", "tuner_type", "lora_rank",
             "model", "dataset", "reward_funcs", "reward_weights", "steps_per_generation", "fp8_recipe",
             "decoder_first_pipeline_num_layers", "save_total_limit", "add_version", "output_dir", "nonsense_arg"]
LAUNCH_KEYS = ["nodes", "gpus_per_node", "gpu", "gpu_memory_gib", "bogus"]
BASES = [RECIPES / "qwen3_6/sft-lora-4x32g.yaml", RECIPES / "qwen3_6/grpo-lora-8gpu.yaml",
         RECIPES / "smoke/tiny-sft.yaml"]


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = run_cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, err[-2000:])
    for text in INTERNAL_ERROR:
        assert text not in err and text not in out, (argv, out[-2000:], err[-2000:])
    return code, err


def scratch(name: str, content: str | bytes) -> Path:
    path = Path(tempfile.mkdtemp(prefix="swift-ext-prop-")) / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


@SETTINGS
@given(base=st.sampled_from(BASES), args=st.dictionaries(st.sampled_from(ARG_NAMES), values, max_size=4),
       launch=st.dictionaries(st.sampled_from(LAUNCH_KEYS), values, max_size=2),
       env=st.dictionaries(st.sampled_from(["HF_TOKEN", "NCCL_DEBUG", "IMAGE_MAX_TOKEN_NUM", "X"]), values, max_size=2))
def test_recipe_values(capsys, base, args, launch, env):
    body = {"extends": str(base), "args": args}
    if launch:
        body["launch"] = launch
    if env:
        body["env"] = env
    path = scratch("r.yaml", yaml.safe_dump(body, allow_unicode=True))
    cli(capsys, "plan", path)
    cli(capsys, "plan", path, "--print")


@SETTINGS
@given(base=st.sampled_from(BASES), overrides=st.lists(
    st.one_of(st.builds(lambda k, v: f"args.{k}={v}", st.sampled_from(ARG_NAMES), st.text(max_size=10)),
              st.builds(lambda k, v: f"launch.{k}={v}", st.sampled_from(LAUNCH_KEYS), st.text(max_size=6)),
              st.text(max_size=15)), max_size=3))
def test_overrides(capsys, base, overrides):
    cli(capsys, "plan", base, *overrides)
    if "smoke" not in str(base):
        cli(capsys, "plan", base, *overrides, "--search")


SCRIPT_PIECES = ["megatron sft", "megatron rlhf", "swift sft", "swift export", "--model", "Qwen/Qwen3-8B",
                 "--tensor_model_parallel_size", "2", "0", "--lr", "1e-5", "--dataset", "'a b.jsonl'", '"$X"',
                 "$WORLD_SIZE", "${RANK:-0}", "${X:?}", "$(nproc)", "$((1+2))", "`hostname`", "\\\n", "\n",
                 "export NPROC_PER_NODE=8", "NNODES=$WORLD_SIZE", "NPROC_PER_NODE=x", "CUDA_VISIBLE_DEVICES=0,1",
                 "X=1", "# comment", "'", '"', "\\", "$", "${", "--", "=", "&&", ";", "|", "if [ 1 ]; then", "fi"]


@SETTINGS
@given(pieces=st.lists(st.one_of(st.sampled_from(SCRIPT_PIECES), st.text(max_size=8)), min_size=1, max_size=25))
def test_import_scripts(capsys, pieces):
    path = scratch("s.sh", " ".join(pieces))
    cli(capsys, "import", path)


messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool", "bot", 1]),
                                           "content": st.one_of(st.text(max_size=20), st.none(), st.integers(),
                                                                st.just("<image>x"))}), max_size=4)
rows = st.one_of(
    st.fixed_dictionaries({"messages": messages}, optional={"images": st.lists(st.text(max_size=10), max_size=2),
                                                            "solution": st.text(max_size=5)}),
    values,
)


@SETTINGS
@given(lines=st.lists(st.one_of(rows.map(lambda r: json.dumps(r, ensure_ascii=False)), st.text(max_size=30)),
                      max_size=6),
       task=st.sampled_from(["sft", "grpo", "dpo", "kto"]))
def test_dataset_rows(capsys, lines, task):
    path = scratch("d.jsonl", "\n".join(lines))
    cli(capsys, "data", "check", path, "--task", task)


def test_the_property_can_fail(capsys, monkeypatch):
    """The harness sees an escaped exception (so the properties above are not vacuous)."""
    import swift_ext.msswift.importer

    def boom(*_a, **_k):
        raise ZeroDivisionError("x")

    monkeypatch.setattr(swift_ext.msswift.importer, "import_file", boom)
    code = run_cli(["import", os.devnull])
    assert code == 1 and "internal error: ZeroDivisionError" in capsys.readouterr().err


# --- every other verb, on bad paths, garbage files, empty and binary run dirs -------------------------------

garbage = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"\x00" * 8, b"\xff\xfe\x00", b"{", b"[]", b"null", b'{"loss": "nan"}\n{',
                     b'{"loss": 1e400, "global_step/max_steps": "x/y"}', b'{"model": 3, "model_type": null}',
                     b'{"adapter_path": [], "rlhf_type": {}}', b"step: [1, 2\n", b"\xef\xbb\xbf{}\n"]),
)
RUN_FILES = ["logging.jsonl", "v0-20260101-000000/logging.jsonl", "v0-20260101-000000/args.json", "args.json",
             "adapter_config.json", "config.json", "trainer_state.json", "swift-ext-run-20260101-000000.json",
             "swift-ext-submit.json", "completions.jsonl", "checkpoint-2/args.json", "metrics.json",
             "latest_checkpointed_iteration.txt", "adapter_model.safetensors", "model.safetensors"]
run_dirs = st.dictionaries(st.sampled_from(RUN_FILES), garbage, max_size=4)
bad_paths = st.sampled_from(["", ".", "/", "/nonexistent/x", "/dev/null", "-", "--", "a\x01b", "~nobody/x",
                             "swift-ext://nope", str(RECIPES), "é/ü.yaml", "x" * 300])


def scratch_dir(files: dict) -> Path:
    root = Path(tempfile.mkdtemp(prefix="swift-ext-prop-"))
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


@FEW
@given(files=run_dirs, path=bad_paths, pick=st.sampled_from(["run", "checkpoint", "path"]))
def test_after_training_verbs_on_garbage_runs(capsys, files, path, pick):
    run = scratch_dir(files)
    (run / "checkpoint-2").mkdir(exist_ok=True)
    target = {"run": run, "checkpoint": run / "checkpoint-2", "path": path}[pick]
    cli(capsys, "report", target)
    cli(capsys, "watch", target, "--once")
    cli(capsys, "watch", target, "--once", "--json", "--peak-tflops", "1")
    cli(capsys, "status", target)
    cli(capsys, "merge", target, "--print")
    cli(capsys, "infer", target, "--print")
    cli(capsys, "verify", target, "--no-parity", "--no-generate")
    cli(capsys, "infer", "--compare", run / "metrics.json", path)


@FEW
@given(content=garbage, overrides=st.lists(st.text(max_size=12), max_size=2),
       pick=st.sampled_from(["file", "dir", "missing"]))
def test_recipe_verbs_on_garbage_recipes(capsys, content, overrides, pick):
    path = scratch("r.yaml", content)
    target = {"file": path, "dir": path.parent, "missing": "/nonexistent/r.yaml"}[pick]
    cli(capsys, "plan", target, *overrides)
    cli(capsys, "doctor", target, *overrides)
    cli(capsys, "run", target, *overrides)  # refused: never a valid recipe
    cli(capsys, "submit", target, *overrides, "--dry-run")
    cli(capsys, "data", "check", "--recipe", target)
    cli(capsys, "data", "stats", "--recipe", target)


@FEW
@given(base=st.sampled_from(BASES), overrides=st.lists(
    st.one_of(st.builds(lambda k, v: f"args.{k}={v}", st.sampled_from(ARG_NAMES), st.text(max_size=10)),
              st.builds(lambda k, v: f"launch.{k}={v}", st.sampled_from(LAUNCH_KEYS), st.text(max_size=6)),
              st.text(max_size=15)), max_size=3),
       slurm=st.lists(st.sampled_from(["--nodes", "0", "--then", "nope", "--sweep", "args.lr=", "--sweep",
                                       "args.lr=1e-5,2e-5", "--time", "forever", "--grace", "5", "--resume",
                                       "--partition", ""]), max_size=4))
def test_run_and_submit_with_bad_overrides(capsys, base, overrides, slurm):
    cli(capsys, "submit", base, *overrides, *slurm, "--dry-run")
    cli(capsys, "doctor", base, *overrides)
    # --expect another command: refused after every check, so whatever the overrides, nothing starts.
    cli(capsys, "run", base, *overrides, "--expect", "pt")


@FEW
@given(content=garbage, option=st.sampled_from([[], ["--format", "json"], ["--tokenizer", "/nonexistent"],
                                                ["--template", "nope"], ["--max-length", "0"], ["--no-cache"],
                                                ["--png", "/nonexistent/dir/x.png"]]))
def test_data_stats_on_garbage_files(capsys, content, option):
    path = scratch("d.jsonl", content)
    cli(capsys, "data", "stats", path, *option)
    cli(capsys, "data", "check", path, *(["--format", "json"] if "json" in option else []))
    cli(capsys, "data", "stats", path.parent, *option)  # a directory


@FEW
@given(name=st.one_of(st.text(max_size=20), st.sampled_from(["", "tiny", "../x", "/", "tiny-qwen3_6-moe/..",
                                                               "swift-ext://tiny-qwen3_6-moe", "\x00"])),
       engine=st.sampled_from(["megatron", "swift", "nope", ""]), command=st.sampled_from(["sft", "rlhf", "x", ""]))
def test_lookup_verbs_with_bad_names(capsys, name, engine, command):
    if name != "tiny-qwen3_6-moe":  # the one good name builds a model
        cli(capsys, "build-model", name)
    cli(capsys, "args", name, "--engine", engine, "--command", command)
    cli(capsys, "import", name)
    cli(capsys, "import", scratch("s.sh", name), "-o", "/nonexistent/dir/r.yaml")


def test_verbs_without_input(capsys):
    """No arguments, the bare verbs: help or a usage error (exit 2), never an exception."""
    for argv in (["schema"], ["args"], ["args", "--engine", "swift", "--command", "rlhf"], ["doctor"], [],
                 ["data"], ["plan"], ["run"], ["submit"], ["merge"], ["verify"], ["infer"], ["report"],
                 ["watch"], ["status"], ["import"], ["nope"], ["--version"], ["plan", "--nope"]):
        cli(capsys, *argv)


def test_a_path_the_os_refuses_is_bad_input(capsys):
    """A name longer than the file system allows (ENAMETOOLONG from the first stat) was an internal error
    in every verb that takes a path; it is bad input: one line naming the path, exit 2."""
    long_name = "x" * 300
    for argv in (["report", long_name], ["watch", long_name, "--once"], ["plan", long_name], ["run", long_name],
                 ["data", "check", "--recipe", long_name], ["plan", RECIPES / "smoke/tiny-sft.yaml", "--model-config",
                                                           long_name]):
        code, err = cli(capsys, *argv)
        # the path is named (a shortened form of 300 x's is fine), with the OS's reason
        assert code == 2 and err.count("\n") == 1 and "xxxxxxxxxx" in err and "File name too long" in err, (argv, err)
