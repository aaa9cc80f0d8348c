"""The entries of the launch rules (planner/launch_rules.py): the ranks a node starts against the GPUs it sees, and
torchrun's rendezvous variables in a recipe's env. spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

LAUNCH_RULE_INFO = [
    RuleInfo("launch", "error, warning", "GPUs for Megatron; no more ranks per node (launch.gpus_per_node, or "
             "NPROC_PER_NODE in env) than CUDA_VISIBLE_DEVICES leaves visible (both engines); env NPROC_PER_NODE / "
             "NNODES that replace launch.* (warning); a GPU model for the memory verdict",
             (code("ms-swift swift/cli/main.py: get_torchrun_args (torchrun from NPROC_PER_NODE / NNODES)"),
              code("ms-swift swift/utils/env.py: is_mp (assert n_gpu % local_world_size == 0, engine swift)"),
              code("torch cuda/__init__.py: set_device (a rank past the visible devices: invalid device ordinal)")),
             "both engines with GPUs; Megatron needs them; extra visible devices are said on Megatron only (engine "
             "swift turns them into device_map: device-map)"),
    RuleInfo("launch-env", "error, warning", "torchrun's rendezvous variables in the recipe's env: NODE_RANK a number "
             "in 0..nodes-1, MASTER_PORT a port, no loopback MASTER_ADDR on more than one node (the env reaches "
             "every node); a NODE_RANK written in the recipe file on several nodes (warning)",
             (code("ms-swift swift/cli/main.py: get_torchrun_args (--node_rank / --master_addr / --master_port from "
                   "the environment)"),
              code("torch distributed/elastic/rendezvous/static_tcp_rendezvous.py: StaticTCPRendezvous.next_rendezvous "
                   "(the store on node rank 0 at master_addr; nnodes ranks expected)"),
              Evidence("report", "modelscope/ms-swift#2485", "the README's multi-node example with MASTER_ADDR "
                       "127.0.0.1 failed; the master's IP address ran")),
             "a torchrun launch (NPROC_PER_NODE or NNODES set); MASTER_ADDR on launch.nodes > 1; the NODE_RANK warning "
             "only for a value from a recipe file (a command-line override is per node)"),
    RuleInfo("alloc-conf", "error", "PYTORCH_CUDA_ALLOC_CONF / PYTORCH_ALLOC_CONF in the recipe's env parse as "
             "PyTorch's allocator reads them: comma-separated key:value pairs of known options, booleans exactly "
             "True/False (expandable_segments:true is refused), whole numbers where it wants them, max_split_size_mb "
             ">= 20, garbage_collection_threshold in (0, 1)",
             (code("torch c10/core/AllocatorConfig.cpp: AcceleratorAllocatorConfig::parseArgs (\"Unrecognized key "
                   "... in Accelerator allocator config\", \"Expected 'True' or 'False'\")"),
              code("torch c10/cuda/CUDAAllocatorConfig.cpp: CUDAAllocatorConfig::parseArgs (the CUDA options)")),
             "both engines on GPUs (every rank parses it at its first CUDA allocation); the env values set"),
    RuleInfo("ray-launch", "error", "use_ray where ms-swift hands the launch to Ray: `swift sft` needs device_groups "
             "(its Ray start-up parses them before any argument), and `megatron rlhf` reads only a Ray YAML given as "
             "--config, which a recipe cannot pass",
             (code("ms-swift swift/ray_utils/__init__.py: try_init_ray (RayHelper.initialize(json.loads(device_groups)), "
                   "called by swift/cli/sft.py)"),
              Evidence("measurement", "the installed ms-swift 4.6 try_init_ray with --use_ray true and no device_groups: "
                       "TypeError 'the JSON object must be str, bytes or bytearray, not NoneType'"),
              code("ms-swift swift/cli/_megatron/rlhf.py: _use_ray, then swift/ray/megatron/pipeline.py main (ValueError "
                   "'Usage: python -m swift.ray.megatron.pipeline --config <yaml>' without --config)")),
             "use_ray true: engine swift command sft without device_groups; engine megatron command rlhf (not sft/pt, "
             "whose entries never start Ray)"),
    RuleInfo("multinode-best-model", "warning", "load_best_model_at_end under DeepSpeed on several nodes: every rank "
             "reloads the best checkpoint through DeepSpeed's loader at the end, which needs output_dir on storage all "
             "nodes share",
             (code("transformers trainer.py: Trainer._load_best_model (deepspeed_load_checkpoint on every rank)"),
              code("transformers integrations/deepspeed.py: deepspeed_load_checkpoint (\"Can't find a valid checkpoint "
                   "at ...\")"),
              Evidence("report", "hiyouga/LlamaFactory#5757", "multi-node training with load_best_model_at_end on "
                       "transformers' Trainer (Ascend NPUs): the checkpoint was saved on the main node only, the other "
                       "nodes could not read it and _load_best_model failed")),
             "engine swift (sft/pt/rlhf), launch.nodes > 1, load_best_model_at_end true, deepspeed set, save_on_each_node "
             "not true; plan cannot see whether output_dir is shared, hence a warning"),
]
