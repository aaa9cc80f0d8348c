"""Property: whatever a user writes — recipe values, overrides, import scripts, dataset rows — swift-ext
answers with success or a clear error and a documented exit code, never a traceback.

Drives the CLI in-process through `run_cli` (the one place errors become exit codes), so an escaped
exception shows up as its "internal error" line. Bounded: a fixed number of examples, no deadline."""

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
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (code, err)
    assert "internal error" not in err and "Traceback" not in err, err
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
