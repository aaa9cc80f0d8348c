"""`swift-ext import`: scripts -> recipes, and back to the same command."""

from __future__ import annotations

import pytest
import yaml

from conftest import FIXTURES, seed_grpo_script, seed_sft_script, swift_ext
from test_seed_recipes import assert_same_command, parse_script


def import_and_expand(script_path, out_path):
    imported = swift_ext("import", script_path, "-o", out_path)
    assert imported.returncode == 0, imported.stderr
    planned = swift_ext("plan", out_path, "--print")
    return imported, planned


@pytest.mark.parametrize("script", [seed_sft_script, seed_grpo_script], ids=["sft", "grpo"])
def test_seed_round_trip(tmp_path, script):
    src = tmp_path / "seed.sh"
    src.write_text(script())
    imported, planned = import_and_expand(src, tmp_path / "r.yaml")
    assert planned.returncode == 0, planned.stderr
    assert_same_command(script(), planned.stdout)
    assert "warning" not in imported.stderr  # every seed flag is accepted by ms-swift 4.6


def test_seed_description_kept(tmp_path):
    src = tmp_path / "seed.sh"
    src.write_text(seed_sft_script())
    data = yaml.safe_load(swift_ext("import", src).stdout)
    assert data["description"] == "4 * 32GiB, 7min"
    assert data["launch"] == {"gpus_per_node": 4, "nodes": 1}
    assert data["env"]["IMAGE_MAX_TOKEN_NUM"] == "1024"


def test_real_world_multinode_script(tmp_path):
    result = swift_ext("import", FIXTURES / "multinode-moe.sh")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    args = data["args"]
    assert data["description"] == "2 * 8 GPUs"
    assert data["launch"] == {"gpus_per_node": 8, "nodes": 2}
    # the exported variable reaches the command, so it is part of the recipe
    assert data["env"] == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "WANDB_PROJECT": "qwen-moe"}
    assert args["model"] == "Qwen/Qwen3-30B-A3B"
    assert args["dataset"] == ["swift/Qwen3-SFT-Mixin#2000", "swift/self-cognition:empty_think#600"]
    assert args["system"] == 'You are "careful" & precise; answer in $USD when asked.'
    assert args["tensor_model_parallel_size"] == 2 and args["expert_model_parallel_size"] == 8
    assert args["save"] == "megatron_output/qwen3-30b a3b"
    assert args["finetune"] is True and args["report_to"] == ["wandb", "tensorboard"]
    assert args["lr"] == 1e-5
    # 3.x names are imported as written and reported with their 4.x replacement.
    for old, new in [("train_type", "tuner_type"), ("max_epochs", "num_train_epochs"), ("save", "output_dir")]:
        assert f"args.{old}" in result.stderr and f"use `{new}`" in result.stderr
    assert "NODE_RANK is per node" in result.stderr


def test_real_world_script_round_trips_after_renames(tmp_path):
    text = (FIXTURES / "multinode-moe.sh").read_text()
    text = text.replace("--train_type", "--tuner_type").replace("--max_epochs", "--num_train_epochs")
    text = text.replace("--save ", "--output_dir ").replace("NODE_RANK=$NODE_RANK \\\n", "")
    text = text.replace("MASTER_ADDR=$MASTER_ADDR \\\n", "")
    src = tmp_path / "fixed.sh"
    src.write_text(text)
    imported, planned = import_and_expand(src, tmp_path / "r.yaml")
    assert "warning" not in imported.stderr, imported.stderr
    assert planned.returncode == 0, planned.stderr
    expected = "\n".join(line for line in text.splitlines() if not line.startswith(("MODEL=", "TP=", "EP=", "OUT_DIR=", "export", "SYSTEM=")))
    # The expected command, with the script's variables substituted by hand.
    expected = (expected.replace('"$MODEL"', "Qwen/Qwen3-30B-A3B").replace("$TP", "2").replace("${EP}", "8")
                .replace('"$OUT_DIR"', "'megatron_output/qwen3-30b a3b'")
                .replace('"$SYSTEM"', "'You are \"careful\" & precise; answer in $USD when asked.'")
                .replace("  # trailing comment", "")
                # the script exports it, so the command runs with it
                .replace("NNODES=2 \\\n", "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \\\nNNODES=2 \\\n"))
    assert_same_command(expected, planned.stdout)
    assert parse_script(planned.stdout)[0]["NNODES"] == "2"


def test_single_gpu_swift_script_keeps_device_choice(tmp_path):
    src = FIXTURES / "swift-lora-1gpu.sh"
    imported, planned = import_and_expand(src, tmp_path / "r.yaml")
    data = yaml.safe_load((tmp_path / "r.yaml").read_text())
    assert data["engine"] == "swift" and data["launch"]["gpus_per_node"] == 1
    assert data["env"] == {"CUDA_VISIBLE_DEVICES": "3"}
    assert planned.returncode == 0, planned.stderr
    assert_same_command(src.read_text(), planned.stdout)


def test_import_never_overwrites(tmp_path):
    out = tmp_path / "r.yaml"
    out.write_text("mine\n")
    result = swift_ext("import", FIXTURES / "swift-lora-1gpu.sh", "-o", out)
    assert result.returncode == 2 and "not overwriting" in result.stderr
    assert out.read_text() == "mine\n"


def test_script_without_command(write):
    result = swift_ext("import", write("x.sh", "echo hello\npython train.py\n"))
    assert result.returncode == 2 and "no `megatron sft|rlhf|pt`" in result.stderr and "Traceback" not in result.stderr


def test_unterminated_quote(write):
    result = swift_ext("import", write("x.sh", "megatron sft --model 'abc\n"))
    assert result.returncode == 2 and "x.sh:1: unterminated single quote" in result.stderr


def test_unknown_variable_kept_and_noted(write):
    result = swift_ext("import", write("x.sh", "megatron sft --model $MODEL_DIR --dataset d.jsonl\n"))
    assert "$MODEL_DIR is not set by the script" in result.stderr
    assert yaml.safe_load(result.stdout)["args"]["model"] == "$MODEL_DIR"


MULTI_NODE = """export NPROC_PER_NODE=8
export WANDB_API_KEY=sk-123
NNODES=$WORLD_SIZE \\
NODE_RANK=$RANK \\
MASTER_PORT=${MASTER_PORT:-29500} \\
megatron sft \\
    --model Qwen/Qwen3-30B-A3B \\
    --dataset d.jsonl \\
    --output_dir "${OUT:-megatron_output}/run" \\
    --dataloader_num_workers $(nproc)
swift export --adapters x --merge_lora true
megatron rlhf --rlhf_type dpo --model Qwen/Qwen3-30B-A3B --dataset p.jsonl
"""


def test_multi_node_pattern_exports_and_several_commands(tmp_path, write):
    src = write("mn.sh", MULTI_NODE)
    result = swift_ext("import", src, "-o", tmp_path / "r.yaml")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    first = yaml.safe_load((tmp_path / "r-1.yaml").read_text())
    second = yaml.safe_load((tmp_path / "r-2.yaml").read_text())
    assert first["launch"] == {"gpus_per_node": 8, "nodes": "scheduler"} and first["command"] == "sft"
    assert second["command"] == "rlhf" and second["args"]["rlhf_type"] == "dpo"
    assert second["launch"]["gpus_per_node"] == 8  # the export holds for every later command
    assert first["args"]["output_dir"] == "megatron_output/run"
    assert first["args"]["dataloader_num_workers"] == "$(nproc)"
    assert "WANDB_API_KEY" not in (tmp_path / "r-1.yaml").read_text() and "sk-123" not in result.stderr
    for words in ("NNODES=$WORLD_SIZE is decided by the scheduler", "`$(nproc)` is computed by the shell",
                  "`swift export` is not a training command", "2 training commands", "WANDB_API_KEY looks like a secret"):
        assert words in result.stderr
    printed = swift_ext("import", src)
    assert printed.stdout.count("command:") == 2 and "\n---\n" in printed.stdout


TORCHRUN = """# 16 * 80GiB
NNODES=2
NPROC_PER_NODE=8
NUM_GPUS=$((NNODES*NPROC_PER_NODE))
TP=2
LOG_DIR=logs/tp${TP}_gpus${NUM_GPUS}
    # --decoder_first_pipeline_num_layers 12 \\
set -x
torchrun --nproc_per_node $NPROC_PER_NODE --nnodes $NNODES --node_rank $NODE_RANK swift/cli/_megatron/sft.py \\
    --model Qwen/Qwen3-30B-A3B \\
    --tensor_model_parallel_size $TP \\
    --global_batch_size $((NUM_GPUS / TP * 4)) \\
    --overlap-grad-reduce \\
    --output_dir $LOG_DIR \\
    2>&1 | tee $LOG_DIR/node.log
"""


def test_torchrun_entry_point_arithmetic_and_dashed_flags(write):
    result = swift_ext("import", write("t.sh", TORCHRUN))
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert (data["engine"], data["command"]) == ("megatron", "sft")
    assert data["launch"] == {"gpus_per_node": 8, "nodes": 2}
    assert data["description"] == "16 * 80GiB"  # not the commented-out flag
    args = data["args"]
    assert args["global_batch_size"] == 32 and args["output_dir"] == "logs/tp2_gpus16"
    assert args["overlap_grad_reduce"] is True  # HfArgumentParser's --a-b alias for a_b
    assert "2>&1 | tee" in result.stderr and "imported as `megatron sft`" in result.stderr
    assert "warning" not in result.stderr


EXPR = """nnodes=2
nproc_per_node=4
export NNODES=$nnodes
export NPROC_PER_NODE=$nproc_per_node
swift sft --model Qwen/Qwen2.5-7B-Instruct --dataset d.jsonl \\
    --gradient_accumulation_steps $(expr 32 / $nproc_per_node / $nnodes) \\
    --save_steps $(expr 2 \\* $nnodes) \\
    --eval_steps $(expr 16 / $GPUS) \\
    --logging_steps $(expr length abc)
"""


def test_expr_substitution_over_script_values_is_evaluated(write):
    # ms-swift's swift-engine examples (examples/train/multi-node/swift/train_node1.sh,
    # deepspeed/train_zero3.sh) size gradient_accumulation_steps with `$(expr 32 / $nproc_per_node / $nnodes)`;
    # kept as text it reached plan as a string and was refused (argument-type).
    result = swift_ext("import", write("e.sh", EXPR))
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["gradient_accumulation_steps"] == 4 and args["save_steps"] == 4
    # a value the script does not set, or an expr that is not arithmetic, stays text with its note
    assert args["eval_steps"] == "$(expr 16 / $GPUS)" and args["logging_steps"] == "$(expr length abc)"
    assert "`$(expr 16 / $GPUS)` is computed by the shell" in result.stderr


OLD_NAMES = """# 2 * 80GiB (an ms-swift 3.x script)
NPROC_PER_NODE=2 CUDA_VISIBLE_DEVICES=0,1 megatron sft \\
    --load Qwen3-8B-mcore --load_safetensors true --train_type lora --dataset d.jsonl \\
    --max_epochs 1 --save out --eval_interval 100 --save_interval 100 --num_workers 4 --output_dir kept
"""


def test_upgrade_renames_3x_arguments(write):
    src = write("old.sh", OLD_NAMES)
    imported = swift_ext("import", src)
    plain = yaml.safe_load(imported.stdout)["args"]
    assert "train_type" in plain and "load_safetensors" in plain  # as written, with warnings
    # ... and the way out is named, counted by importing again with --upgrade: `save` beside `output_dir` stays
    assert f"hint: 7 of these 8 flag(s) are ms-swift 3.x arguments: `swift-ext import --upgrade {src}`" \
        in " ".join(imported.stderr.split())
    result = swift_ext("import", src, "--upgrade")
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["mcore_model"] == "Qwen3-8B-mcore" and args["tuner_type"] == "lora"
    assert args["num_train_epochs"] == 1 and args["eval_steps"] == 100 and args["save_steps"] == 100
    assert args["dataloader_num_workers"] == 4 and "load_safetensors" not in args
    assert args["output_dir"] == "kept" and args["save"] == "out"  # never two values for one argument
    assert "--train_type is `tuner_type` in ms-swift 4.x; renamed" in result.stderr
    assert "--load_safetensors dropped" in result.stderr


def test_wrapped_and_prefixed_commands_are_imported(write):
    """`nohup megatron sft ... > log 2>&1 &`, `cd DIR && NPROC_PER_NODE=8 megatron rlhf ...` and `exec env
    X=1 swift sft`: the command is found behind wrapper words and a preparatory step, and env assignments
    after the prefix are the command's; `echo megatron sft` is an argument, not a command."""
    from swift_ext.msswift.importer import import_file

    script = write("wrapped.sh", "NPROC_PER_NODE=4 \\\nnohup megatron sft \\\n    --model Qwen/Qwen3-0.6B \\\n"
                   "    --dataset d.jsonl > train.log 2>&1 &\n"
                   "cd /work/run && NPROC_PER_NODE=8 megatron rlhf --rlhf_type dpo --model out/v0-x/checkpoint-9 "
                   "--dataset p.jsonl\n"
                   "exec env WANDB_MODE=offline swift sft --model Qwen/Qwen3-0.6B --dataset d.jsonl\n"
                   "echo megatron sft is done\n")
    imported = import_file(script)
    assert [(d["engine"], d["command"], d["launch"]["gpus_per_node"]) for d, _ in imported] == [
        ("megatron", "sft", 4), ("megatron", "rlhf", 8), ("swift", "sft", 1)]
    assert imported[1][0]["args"]["model"] == "out/v0-x/checkpoint-9"
    assert imported[2][0]["env"] == {"WANDB_MODE": "offline"}
    notes = [n for _, ns in imported for n in ns]
    assert any("`nohup` in front of the command" in n for n in notes)
    assert any("`cd /work/run &&` before the command" in n for n in notes)


HOSTILE_ARITHMETIC = """HUGE=%s
swift sft --model Qwen/Qwen2.5-7B-Instruct --dataset d.jsonl \\
    --gradient_accumulation_steps $((HUGE + 1)) \\
    --save_steps $(expr -7 %% 2) \\
    --eval_steps $(expr 16/4) \\
    --logging_steps $(expr 1 - - 1) \\
    --max_steps $(expr 99999999999999999 / 1)
""" % ("9" * 5000)


def test_arithmetic_the_shell_would_not_do_stays_text(write):
    # A 5000-digit value was an internal error (int()'s 4300-digit limit); the shell's `%` and `/` truncate
    # toward zero, exactly; `expr` needs its operands and operators as separate words.
    result = swift_ext("import", write("h.sh", HOSTILE_ARITHMETIC))
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["gradient_accumulation_steps"] == "$((HUGE + 1))"
    assert args["save_steps"] == -1 and args["max_steps"] == 99999999999999999
    assert args["eval_steps"] == "$(expr 16/4)" and args["logging_steps"] == "$(expr 1 - - 1)"


GRPO_NO_MODE = """NPROC_PER_NODE=8 swift rlhf --rlhf_type grpo --model Qwen/Qwen3-8B --train_type lora --dataset d.jsonl \\
    --use_vllm true --vllm_gpu_memory_utilization 0.5 --reward_funcs accuracy --num_generations 8{extra}
"""


def test_upgrade_adds_the_vllm_mode_ms_swift_4_requires_and_says_so(write, tmp_path):
    src = write("grpo.sh", GRPO_NO_MODE.format(extra=""))
    plain = swift_ext("import", src, "-o", tmp_path / "plain.yaml")
    assert plain.returncode == 0, plain.stderr
    assert "vllm_mode" not in yaml.safe_load((tmp_path / "plain.yaml").read_text())["args"]
    assert "use_vllm true without vllm_mode" in plain.stderr and "--upgrade" in plain.stderr
    refused = swift_ext("plan", tmp_path / "plain.yaml")  # RLHFArguments._init_rollout: "vllm_mode is required"
    assert refused.returncode != 0 and "args.vllm_mode" in refused.stdout + refused.stderr
    assert "swift-ext import --upgrade" in refused.stdout + refused.stderr
    upgraded = swift_ext("import", src, "--upgrade")
    assert yaml.safe_load(upgraded.stdout)["args"]["vllm_mode"] == "colocate"
    assert "--vllm_mode colocate added" in upgraded.stderr
    server = write("server.sh", GRPO_NO_MODE.format(extra=" --vllm_server_host 127.0.0.1 --vllm_server_port 8000"))
    upgraded = swift_ext("import", server, "--upgrade")
    assert yaml.safe_load(upgraded.stdout)["args"]["vllm_mode"] == "server"
    assert "--vllm_mode server added" in upgraded.stderr and "vllm_server_host" in upgraded.stderr


OLD_GRPO = """# 70G*8 (ms-swift's Qwen3 best practice, 3.4-era GRPO names)
NPROC_PER_NODE=8 swift rlhf --rlhf_type grpo --model Qwen/Qwen3-8B --train_type full --dataset d.jsonl \\
    --reward_funcs accuracy --use_vllm true --vllm_gpu_memory_utilization 0.4 --offload_model true \\
    --gc_collect_after_offload true --deepspeed zero3 --num_infer_workers 8 --tensor_parallel_size 1
"""

OLD_MEGATRON = """NPROC_PER_NODE=2 megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl --tensor_model_parallel_size 2 \\
    --use_flash_attn true --num_virtual_stages_per_pipeline_rank 2 --manual_gc_interval 100
"""

OLD_RERANKER = """NPROC_PER_NODE=4 swift sft --model Qwen/Qwen3-Reranker-4B --task_type generative_reranker \\
    --loss_type listwise_generative_reranker --train_type lora --dataset MTEB/scidocs-reranking
"""


def test_upgrade_translates_3x_grpo_vllm_and_megatron_names_and_loss_values(write):
    # ms-swift 3.x VllmArguments (gpu_memory_utilization, tensor_parallel_size, ...) are 4.6's vllm_* fields; GRPO's
    # num_infer_workers / gc_collect_after_offload are gone; Megatron-LM's use_flash_attn and VPP/GC names are 4.6's
    # attention_backend default / virtual_pipeline_model_parallel_size / manual_gc_steps; 3.x's reranker losses are
    # 4.6's pointwise/listwise_reranker. Before, the Qwen3 best practice's GRPO command imported with three unknown
    # arguments and ms-swift#5990's Megatron command with use_flash_attn: plan refused them as 4.6 would.
    result = swift_ext("import", write("grpo.sh", OLD_GRPO), "--upgrade")
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["vllm_tensor_parallel_size"] == 1 and args["vllm_mode"] == "colocate"
    assert not {"tensor_parallel_size", "num_infer_workers", "gc_collect_after_offload"} & set(args)
    assert "--num_infer_workers dropped" in result.stderr and "--gc_collect_after_offload dropped" in result.stderr
    result = swift_ext("import", write("mg.sh", OLD_MEGATRON), "--upgrade")
    args = yaml.safe_load(result.stdout)["args"]
    assert "use_flash_attn" not in args and "--use_flash_attn dropped" in result.stderr
    assert args["virtual_pipeline_model_parallel_size"] == 2 and args["manual_gc_steps"] == 100
    result = swift_ext("import", write("rr.sh", OLD_RERANKER), "--upgrade")
    args = yaml.safe_load(result.stdout)["args"]
    assert args["loss_type"] == "listwise_reranker" and args["task_type"] == "generative_reranker"
    assert "--loss_type listwise_generative_reranker is `listwise_reranker`" in result.stderr
    # without --upgrade the names stay as written, and plan's message names the 4.x spelling
    plain = yaml.safe_load(swift_ext("import", write("grpo2.sh", OLD_GRPO)).stdout)["args"]
    assert plain["tensor_parallel_size"] == 1 and plain["num_infer_workers"] == 8


def test_vllm_names_are_renamed_only_for_the_swift_engine():
    # a megatron script's tensor_parallel_size was never an argument there: --upgrade does not read it as the rollout
    # engine's TP (plan then refuses it as written, as 4.6 would); the swift engine's was 3.x's vLLM TP
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.importer import import_text

    script = "NPROC_PER_NODE=8 {} rlhf --rlhf_type grpo --model Qwen/Qwen3-8B --dataset d.jsonl --tensor_parallel_size 2\n"
    (megatron, _), = import_text(script.format("megatron"), upgrade=True)
    assert megatron["args"]["tensor_parallel_size"] == 2 and "vllm_tensor_parallel_size" not in megatron["args"]
    (swift, _), = import_text(script.format("swift"), upgrade=True)
    assert swift["args"]["vllm_tensor_parallel_size"] == 2 and "tensor_parallel_size" not in swift["args"]
    assert "renamed in ms-swift 4.x" in msargs.schema_for("swift", "rlhf").suggest("tensor_parallel_size")
    assert "attention_backend" in msargs.schema_for("megatron", "sft").suggest("use_flash_attn")
    assert "attn_impl" in msargs.schema_for("swift", "sft").suggest("use_flash_attn")


OLD_MEGATRON_3X = """NPROC_PER_NODE=8 megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl --tensor_model_parallel_size 2 \\
    --distributed_timeout_minutes 120 --no_rope_fusion {rope} --log_throughput true
"""


@pytest.mark.parametrize("rope, fused", [("true", False), ("false", True)])
def test_upgrade_translates_3x_megatron_timeout_rope_fusion_and_throughput(write, rope, fused):
    # ms-swift 3.x MegatronArguments: distributed_timeout_minutes (minutes), no_rope_fusion (False: fused RoPE),
    # log_throughput (Megatron-LM's TFLOP/s log). The installed 4.6 has none of them: ddp_timeout in seconds,
    # apply_rope_fusion the other way round (default False), and no throughput log.
    import inspect

    from swift.utils import torch_utils
    from swift_ext.msswift import schema as msargs

    fields = msargs.schema_for("megatron", "sft").fields
    assert not {"distributed_timeout_minutes", "no_rope_fusion", "log_throughput"} & set(fields)
    assert fields["ddp_timeout"].type["kind"] == "int" and fields["apply_rope_fusion"].default is False
    assert "timedelta(seconds=timeout)" in inspect.getsource(torch_utils.init_process_group)
    result = swift_ext("import", write("mg3.sh", OLD_MEGATRON_3X.format(rope=rope)), "--upgrade")
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["ddp_timeout"] == 7200 and args["apply_rope_fusion"] is fused
    assert not {"distributed_timeout_minutes", "no_rope_fusion", "log_throughput"} & set(args)
    assert "--distributed_timeout_minutes 120 is `ddp_timeout: 7200`" in result.stderr
    assert f"`apply_rope_fusion: {str(fused).lower()}`" in result.stderr and "--log_throughput dropped" in result.stderr
    # without --upgrade they stay as written: plan refuses them as 4.6's parser would
    plain = yaml.safe_load(swift_ext("import", write("mg3b.sh", OLD_MEGATRON_3X.format(rope=rope))).stdout)["args"]
    assert plain["distributed_timeout_minutes"] == 120 and "ddp_timeout" not in plain
    # a value the shell decides is not guessed in seconds
    shell = OLD_MEGATRON_3X.format(rope=rope).replace("120", "$TIMEOUT")
    result = swift_ext("import", write("mg3c.sh", shell), "--upgrade")
    assert "ddp_timeout" not in yaml.safe_load(result.stdout)["args"] and "set `ddp_timeout` yourself" in result.stderr


@pytest.mark.parametrize("value, fused", [("true", False), ("false", True)])
def test_upgrade_turns_3x_no_bias_swiglu_fusion_into_bias_activation_fusion(write, value, fused):
    # ms-swift 3.x MegatronArguments `no_bias_swiglu_fusion: bool = False` (Megatron-LM's --no-bias-swiglu-fusion ->
    # core_transformer_config_from_args: bias_activation_fusion = bias_swiglu_fusion); 4.6 has the config field
    # itself, `bias_activation_fusion: bool = True`, and no `no_bias_swiglu_fusion` (its parser refuses it).
    from swift_ext.msswift import schema as msargs

    fields = msargs.schema_for("megatron", "sft").fields
    assert "no_bias_swiglu_fusion" not in fields and fields["bias_activation_fusion"].default is True
    script = write("swiglu3.sh", "NPROC_PER_NODE=8 megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl "
                                 f"--no_bias_swiglu_fusion {value}\n")
    result = swift_ext("import", script, "--upgrade")
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["args"]
    assert args["bias_activation_fusion"] is fused and "no_bias_swiglu_fusion" not in args
    assert f"`bias_activation_fusion: {str(fused).lower()}`" in result.stderr
    # without --upgrade the 3.x name stays (plan refuses it as 4.6's parser would), and a 4.x recipe that already
    # sets bias_activation_fusion keeps its own value
    assert yaml.safe_load(swift_ext("import", script).stdout)["args"]["no_bias_swiglu_fusion"] is (value == "true")
    both = write("swiglu4.sh", "megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl --bias_activation_fusion true "
                               f"--no_bias_swiglu_fusion {value}\n")
    kept = yaml.safe_load(swift_ext("import", both, "--upgrade").stdout)["args"]
    assert kept["bias_activation_fusion"] is True


DEVICE_MAP = """# 4 * 40GiB: one process spreads the model over the four GPUs (device_map), as ms-swift runs it
CUDA_VISIBLE_DEVICES=0,1,2,3 \\
swift sft --model Qwen/Qwen2.5-72B-Instruct --tuner_type lora --dataset d.jsonl --torch_dtype bfloat16
"""


def test_listed_gpus_without_nproc_are_one_process_with_device_map(write, tmp_path):
    # ms-swift 4.6 swift/cli/main.py use_torchrun: no NPROC_PER_NODE and no NNODES, no torchrun -- one process
    # sees all four GPUs (utils/env.py is_mp). Imported as four processes, the 72B model's weights were counted
    # once per GPU (135 GiB) and the transformers engine's memory floor refused a published way to train.
    recipe = tmp_path / "dm.yaml"
    imported = swift_ext("import", write("dm.sh", DEVICE_MAP), "-o", recipe)
    assert "ms-swift runs one process that spreads the model over the 4 GPUs (device_map)" in imported.stderr
    data = yaml.safe_load(recipe.read_text())
    assert data["launch"]["gpus_per_node"] == 1 and data["env"]["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    planned = swift_ext("plan", recipe, "launch.gpu=A100-80G", "--print")
    assert planned.returncode == 0, planned.stderr
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3" in planned.stdout and "NPROC_PER_NODE" not in planned.stdout
    # one process per GPU, as NPROC_PER_NODE=4 asks: each holds the whole model, which does not fit
    ddp = tmp_path / "ddp.yaml"
    swift_ext("import", write("ddp.sh", DEVICE_MAP.replace("CUDA_VISIBLE_DEVICES=0,1,2,3", "NPROC_PER_NODE=4 "
                                                                 "CUDA_VISIBLE_DEVICES=0,1,2,3")), "-o", ddp)
    assert yaml.safe_load(ddp.read_text())["launch"]["gpus_per_node"] == 4
    refused = swift_ext("plan", ddp, "launch.gpu=A100-80G")
    assert refused.returncode == 2 and "the model's states alone need" in refused.stderr, refused.stderr


MEGATRON_WANDB = """NPROC_PER_NODE=1 megatron sft --model Qwen/Qwen3-0.6B --dataset d.jsonl --train_iters 31 \\
    --wandb_project llm101 --wandb_exp_name qwen3-0.6b-megatron
"""


def test_upgrade_keeps_a_3x_megatron_script_logging_to_wandb(write, tmp_path):
    # 3.x Megatron logged to wandb from --wandb_project (ms-swift PR #4074); 4.x needs report_to wandb.
    src = write("wandb.sh", MEGATRON_WANDB)
    plain = swift_ext("import", src, "-o", tmp_path / "plain.yaml")
    assert plain.returncode == 0, plain.stderr
    assert "report_to" not in yaml.safe_load((tmp_path / "plain.yaml").read_text())["args"]
    assert "--wandb_project without --report_to" in plain.stderr and "--upgrade" in plain.stderr
    said = swift_ext("plan", tmp_path / "plain.yaml")
    assert "args.wandb_project" in said.stdout + said.stderr and "report_to wandb" in said.stdout + said.stderr
    upgraded = swift_ext("import", src, "--upgrade", "-o", tmp_path / "up.yaml")
    assert yaml.safe_load((tmp_path / "up.yaml").read_text())["args"]["report_to"] == ["tensorboard", "wandb"]
    assert "--report_to tensorboard wandb added" in upgraded.stderr
    planned = swift_ext("plan", tmp_path / "up.yaml")
    assert "args.wandb_project" not in planned.stdout + planned.stderr
