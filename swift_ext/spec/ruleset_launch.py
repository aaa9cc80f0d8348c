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
]
