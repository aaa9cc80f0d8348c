"""Expansion to argv/env, quoting, and `swift-ext run`'s manifest and exit code."""

from __future__ import annotations

import json
import os
import shlex
import stat

from conftest import swift_ext

from swift_ext.planner.launch import build_launch
from swift_ext.spec.recipe import load_recipe

RECIPE = """command: sft
engine: megatron
launch: {nodes: 1, gpus_per_node: 2}
env:
  PYTORCH_CUDA_ALLOC_CONF: expandable_segments:True
args:
  model: Qwen/Qwen3.6-35B-A3B
  dataset: [a.jsonl, "b c.jsonl#100"]
  lr: 1e-4
  finetune: true
  system: "; rm -rf ~ #"
  megatron_extra_kwargs: {moe_router_dtype: fp32}
  output_dir: OUT
"""


def test_argv_and_env(write):
    launch = build_launch(load_recipe(write("r.yaml", RECIPE)))
    assert launch.argv[:2] == ["megatron", "sft"]
    i = launch.argv.index("--dataset")
    assert launch.argv[i + 1 : i + 3] == ["a.jsonl", "b c.jsonl#100"]
    assert launch.argv[launch.argv.index("--lr") + 1] == "1e-4"
    assert launch.argv[launch.argv.index("--finetune") + 1] == "true"
    assert launch.argv[launch.argv.index("--megatron_extra_kwargs") + 1] == '{"moe_router_dtype":"fp32"}'
    assert launch.env["NPROC_PER_NODE"] == "2" and launch.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "NNODES" not in launch.env


def test_printed_command_is_shell_safe(write):
    """The printed command, run through a real shell's word splitting, gives back the same argv."""
    launch = build_launch(load_recipe(write("r.yaml", RECIPE)))
    text = launch.shell()
    words = shlex.split(text.replace("\\\n", " "))
    env_words = [w for w in words[: len(launch.env)]]
    assert env_words == [f"{k}={v}" for k, v in launch.env.items()]
    assert words[len(launch.env):] == launch.argv
    assert "'; rm -rf ~ #'" in text


def test_multi_node_sets_nnodes(write):
    launch = build_launch(load_recipe(write("r.yaml", RECIPE), ["launch.nodes=4"]))
    assert launch.env["NNODES"] == "4"


def test_cpu_recipe_sets_no_gpu_env(write):
    launch = build_launch(load_recipe(write("r.yaml", RECIPE.replace("gpus_per_node: 2", "gpus_per_node: 0"))))
    assert "NPROC_PER_NODE" not in launch.env and "CUDA_VISIBLE_DEVICES" not in launch.env


def fake_trainer(tmp_path, exit_code: int):
    """A stand-in `megatron` executable on PATH that records its argv/env and exits with a given code."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / "megatron"
    exe.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(tmp_path / 'called.json')!r}, 'w'))\n"
        f"print('training...'); sys.exit({exit_code})\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "WANDB_API_KEY": "sk-inherited-999"}


# This machine has no GPU and no Megatron stack, so `swift-ext doctor` blocks megatron recipes here;
# the tests below are about what happens around the (fake) trainer and pass --force past it.
FORCE = "--force"


def test_run_writes_manifest_and_returns_child_exit_code(tmp_path, write):
    recipe = write("r.yaml", RECIPE)
    env = fake_trainer(tmp_path, exit_code=3)
    result = swift_ext("run", recipe, FORCE, cwd=tmp_path, env=env)
    assert result.returncode == 3, result.stderr
    assert "training..." in result.stdout
    called = json.loads((tmp_path / "called.json").read_text())
    assert called["argv"][:2] == ["sft", "--model"]
    assert called["env"]["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    manifests = list((tmp_path / "OUT").glob("swift-ext-run-*.json"))
    assert len(manifests) == 1
    text = manifests[0].read_text()
    data = json.loads(text)
    assert data["argv"][:2] == ["megatron", "sft"]
    assert data["inherited_env"]["WANDB_API_KEY"] == "***"
    assert "sk-inherited-999" not in text and "sk-inherited-999" not in result.stdout + result.stderr
    assert data["end"] == {**data["end"], "how": "failed", "exit_code": 3, "signal": None}
    assert data["recipe"]["args"]["lr"] == 1e-4
    assert {"swift-ext", "ms-swift", "megatron-core", "transformers", "torch"} <= set(data["versions"])
    assert data["versions"]["ms-swift"] == "4.6.0"
    assert "git" in data


def test_second_run_never_overwrites_manifest(tmp_path, write):
    recipe = write("r.yaml", RECIPE)
    env = fake_trainer(tmp_path, exit_code=0)
    assert swift_ext("run", recipe, FORCE, cwd=tmp_path, env=env).returncode == 0
    assert swift_ext("run", recipe, FORCE, cwd=tmp_path, env=env).returncode == 0
    assert len(list((tmp_path / "OUT").glob("swift-ext-run-*.json"))) == 2


def test_unversioned_output_dir_is_not_reused_silently(tmp_path, write):
    recipe = write("r.yaml", RECIPE + "  add_version: false\n")
    (tmp_path / "OUT").mkdir()
    (tmp_path / "OUT" / "checkpoint-100").mkdir()
    env = fake_trainer(tmp_path, exit_code=0)
    result = swift_ext("run", recipe, FORCE, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "already holds a run" in result.stderr and "--resume" in result.stderr
    assert not (tmp_path / "called.json").exists()
    # checkpoint-100 never completed (no tracker file): nothing to resume from, and it says so.
    result = swift_ext("run", recipe, FORCE, "--resume", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "nothing to resume from" in result.stderr and "checkpoint-100" in result.stderr
    (tmp_path / "OUT" / "checkpoint-100" / "latest_checkpointed_iteration.txt").write_text("100")
    (tmp_path / "OUT" / "checkpoint-102").mkdir()  # cut short: the resumed run would save into it
    (tmp_path / "OUT" / "checkpoint-102" / "shard").write_text("partial")
    assert swift_ext("run", recipe, FORCE, "--resume", cwd=tmp_path, env=env).returncode == 0
    (aside,) = list((tmp_path / "OUT").glob("checkpoint-102.before-resume-*"))
    assert (aside / "shard").read_text() == "partial" and not (tmp_path / "OUT" / "checkpoint-102").exists()
    argv = json.loads((tmp_path / "called.json").read_text())["argv"]
    assert argv[-4:] == ["--mcore_model", str(tmp_path / "OUT" / "checkpoint-100"), "--finetune", "false"]


def test_run_refuses_failing_plan(tmp_path, write):
    recipe = write("r.yaml", RECIPE + "  lora_rnk: 8\n")
    env = fake_trainer(tmp_path, exit_code=0)
    result = swift_ext("run", recipe, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "did you mean `lora_rank`" in result.stderr
    assert not (tmp_path / "called.json").exists()


def test_multi_node_run_needs_rank_variables(tmp_path, write):
    recipe = write("r.yaml", RECIPE)
    env = fake_trainer(tmp_path, exit_code=0)
    result = swift_ext("run", recipe, "launch.nodes=2", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "swift-ext submit" in result.stderr
    ok = swift_ext("run", recipe, "launch.nodes=2", FORCE, cwd=tmp_path,
                   env={**env, "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"})
    assert ok.returncode == 0, ok.stderr
    called = json.loads((tmp_path / "called.json").read_text())
    assert called["env"]["NNODES"] == "2" and called["env"]["NODE_RANK"] == "1"


def test_a_single_node_torchrun_gets_a_master_port_of_its_own(capfd):
    # ms-swift#2192: two single-node runs on one machine both took torchrun's default 29500; execute() picks a free
    # MASTER_PORT for a one-node torchrun launch and keeps a given one (a real child process prints what it got)
    import sys

    from swift_ext.planner.launch import Launch
    from swift_ext.runs.process import execute

    show = [sys.executable, "-c", "import os; print('PORT', os.environ.get('MASTER_PORT'))"]
    assert execute(Launch(env={"NPROC_PER_NODE": "2"}, argv=show)).exit_code == 0
    port = capfd.readouterr().out.split("PORT ")[1].split()[0]
    assert port.isdigit() and 0 < int(port) < 65536
    execute(Launch(env={"NPROC_PER_NODE": "2", "MASTER_PORT": "29611"}, argv=show))
    assert "PORT 29611" in capfd.readouterr().out
    execute(Launch(env={"NPROC_PER_NODE": "2", "NNODES": "2", "MASTER_PORT": "29612"}, argv=show))
    assert "PORT 29612" in capfd.readouterr().out
