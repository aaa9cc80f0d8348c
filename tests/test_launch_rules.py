"""planner/launch_rules.py: ranks against visible devices on both engines, and torchrun's rendezvous variables in a
recipe's env -- each refusal beside the near-by setup that runs."""

from __future__ import annotations

from conftest import FIXTURES, RECIPES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"  # Megatron, one node of 4 GPUs
SWIFT_1GPU = FIXTURES / "working/ms-swift-docs-qwen3-bp-swift-lora-8b-1gpu.yaml"
MULTINODE = FIXTURES / "working/ms-swift-example-megatron-multinode-dense-tp4.yaml"  # 2 nodes x 4 GPUs


def plan(path, *overrides):
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def paths(result, code: str) -> tuple[set, set]:
    return ({p.path for p in result.errors if p.code == code}, {p.path for p in result.warnings if p.code == code})


def test_engine_swift_more_ranks_than_visible_gpus_is_refused():
    # swift/utils/env.py is_mp: assert n_gpu % local_world_size == 0 (ms-swift#5310: n_gpu 4, local_world_size 6)
    assert paths(plan(SWIFT_1GPU, "launch.gpus_per_node=6", "env.CUDA_VISIBLE_DEVICES=0,1,2,3"), "launch")[0] == \
        {"env.CUDA_VISIBLE_DEVICES"}
    # one rank per listed GPU runs; more GPUs than ranks is device_map, not this rule's
    assert paths(plan(SWIFT_1GPU, "launch.gpus_per_node=4", "env.CUDA_VISIBLE_DEVICES=0,1,2,3"), "launch") == \
        (set(), set())
    assert paths(plan(SWIFT_1GPU, "launch.gpus_per_node=2", "env.CUDA_VISIBLE_DEVICES=0,1,2,3"), "launch") == \
        (set(), set())
    # SWIFT_SINGLE_DEVICE_MODE skips is_mp's assertion, not set_device on a missing device
    assert paths(plan(SWIFT_1GPU, "launch.gpus_per_node=6", "env.CUDA_VISIBLE_DEVICES=0,1,2,3",
                      "env.SWIFT_SINGLE_DEVICE_MODE=1"), "launch")[0] == {"env.CUDA_VISIBLE_DEVICES"}


def test_env_nproc_per_node_counts_the_ranks():
    # build_launch applies the env last: 8 ranks over the 4 devices launch.gpus_per_node lists
    assert paths(plan(SFT, "env.NPROC_PER_NODE=8"), "launch")[0] == {"env.NPROC_PER_NODE"}
    # fewer ranks than launch.gpus_per_node runs, but not the world plan checked: said
    assert paths(plan(SFT, "env.NPROC_PER_NODE=2"), "launch") == (set(), {"env.NPROC_PER_NODE"})
    assert paths(plan(SFT, "env.NPROC_PER_NODE=4"), "launch") == (set(), set())


def test_loopback_master_addr_on_several_nodes_is_refused():
    assert paths(plan(MULTINODE, "env.MASTER_ADDR=127.0.0.1"), "launch-env")[0] == {"env.MASTER_ADDR"}
    assert paths(plan(MULTINODE, "env.MASTER_ADDR=localhost"), "launch-env")[0] == {"env.MASTER_ADDR"}
    # a reachable address on several nodes, or the loopback on one node, runs
    assert paths(plan(MULTINODE, "env.MASTER_ADDR=10.0.0.1"), "launch-env") == (set(), set())
    assert paths(plan(SFT, "env.MASTER_ADDR=127.0.0.1"), "launch-env") == (set(), set())


def test_node_rank_and_master_port_ranges():
    assert paths(plan(MULTINODE, "env.NODE_RANK=2"), "launch-env")[0] == {"env.NODE_RANK"}
    assert paths(plan(SFT, "env.NODE_RANK=1"), "launch-env")[0] == {"env.NODE_RANK"}  # one node: only rank 0
    assert paths(plan(MULTINODE, "env.MASTER_PORT=70000"), "launch-env")[0] == {"env.MASTER_PORT"}
    assert paths(plan(MULTINODE, "env.MASTER_PORT=29500"), "launch-env") == (set(), set())
    # a per-node override on the command line is how a node gets its rank: nothing said
    assert paths(plan(MULTINODE, "env.NODE_RANK=1"), "launch-env") == (set(), set())
    # one plain process (engine swift, one GPU: no torchrun) reads no rendezvous variable
    assert paths(plan(SWIFT_1GPU, "env.NODE_RANK=3", "env.MASTER_PORT=x"), "launch-env") == (set(), set())


def test_node_rank_written_in_a_multinode_recipe_file_is_said(tmp_path):
    text = MULTINODE.read_text(encoding="utf-8").replace(
        "  PYTORCH_CUDA_ALLOC_CONF: expandable_segments:True\n",
        "  PYTORCH_CUDA_ALLOC_CONF: expandable_segments:True\n  NODE_RANK: '0'\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text, encoding="utf-8")
    assert paths(plan(recipe), "launch-env") == (set(), {"env.NODE_RANK"})


ALLOC_CASES = ["expandable_segments:True", "expandable_segments:False", "", "expandable_segments:true",
               "expandable_segments=True", "expandable_segments:True;max_split_size_mb:128",
               "max_split_size_mb:128,expandable_segments:True", "max_split_size_mb:10", "max_split_size_mb:abc",
               "garbage_collection_threshold:0.6", "garbage_collection_threshold:1.5",
               "roundup_power2_divisions:[256:1,512:2]", "foo:1", "expandable_segments : True",
               "pinned_use_background_threads:True", "per_process_memory_fraction:0.9"]


def test_alloc_conf_mirror_agrees_with_torchs_own_parser():
    # torch.cuda.memory._set_allocator_settings runs the allocator config parser without a GPU
    import torch

    from swift_ext.planner.launch_rules import alloc_conf_problem

    try:
        for text in ALLOC_CASES:
            try:
                torch.cuda.memory._set_allocator_settings(text)
                refused = False
            except (ValueError, RuntimeError):
                refused = True
            assert (alloc_conf_problem(text) is not None) == refused, text
    finally:
        torch.cuda.memory._set_allocator_settings("expandable_segments:False")


def test_alloc_conf_in_the_recipe_env():
    assert paths(plan(SFT, "env.PYTORCH_CUDA_ALLOC_CONF=expandable_segments:true"), "alloc-conf")[0] == \
        {"env.PYTORCH_CUDA_ALLOC_CONF"}
    assert paths(plan(SFT, "env.PYTORCH_ALLOC_CONF=expandable_segments=True"), "alloc-conf")[0] == \
        {"env.PYTORCH_ALLOC_CONF"}
    assert paths(plan(SFT, "env.PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"), "alloc-conf") == (set(), set())


SWIFT_MULTINODE = FIXTURES / "working/ms-swift-example-swift-multinode-zero2.yaml"  # engine swift, 2 nodes, ZeRO-2


def test_best_model_reload_under_deepspeed_on_several_nodes_is_said():
    # transformers Trainer._load_best_model -> deepspeed_load_checkpoint on every rank: "Can't find a valid checkpoint"
    # where output_dir is node-local (hiyouga/LlamaFactory#5757); plan cannot see the storage, so a warning
    best = "args.load_best_model_at_end=true"
    assert paths(plan(SWIFT_MULTINODE, best), "multinode-best-model") == (set(), {"args.load_best_model_at_end"})
    # one node, no DeepSpeed, or a recipe that says how its nodes store checkpoints: nothing said
    assert paths(plan(SWIFT_MULTINODE, best, "launch.nodes=1"), "multinode-best-model") == (set(), set())
    assert paths(plan(SWIFT_MULTINODE, best, "args.deepspeed=null"), "multinode-best-model") == (set(), set())
    assert paths(plan(SWIFT_MULTINODE, best, "args.save_on_each_node=true"), "multinode-best-model") == (set(), set())
    assert paths(plan(SWIFT_MULTINODE), "multinode-best-model") == (set(), set())

