"""What a multi-node transformers-engine run reads back from output_dir, which only storage every node sees holds.

transformers (installed) trainer.py Trainer._load_best_model, run on every rank once training ends with
load_best_model_at_end: under DeepSpeed it calls integrations/deepspeed.py deepspeed_load_checkpoint(best checkpoint),
which raises ValueError "Can't find a valid checkpoint at ..." where no global_step* folder is found and fails inside
DeepSpeed where the model states (written by rank 0 only) are missing. ms-swift 4.6 does not override it. On node-local
output_dir the other nodes hold no such checkpoint: the run fails after its last step, with the best model unsaved
by them. plan cannot see whether output_dir is shared, so it says so.
"""

from __future__ import annotations


def best_model_on_every_node(recipe, args, err, warn):
    nodes = recipe.launch.nodes
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf") or not isinstance(nodes, int):
        return
    if nodes < 2 or not args.bool("load_best_model_at_end") or not args.str("deepspeed"):
        return
    if args.bool("save_on_each_node"):
        return  # the recipe already says how its nodes store checkpoints
    warn("multinode-best-model", f"load_best_model_at_end with DeepSpeed on {nodes} nodes: when training ends every "
         "rank loads the best checkpoint through DeepSpeed's loader (transformers Trainer._load_best_model -> "
         "deepspeed_load_checkpoint), which raises \"Can't find a valid checkpoint\" on a node whose output_dir does "
         "not hold it -- the run fails after its last step unless output_dir is on storage every node shares "
         "(hiyouga/LlamaFactory#5757)", "load_best_model_at_end",
         hint="output_dir on shared storage (the same path on every node), or load_best_model_at_end: false and pick "
         "the best checkpoint from the logged metrics")


MULTINODE_SAVE_RULES = [best_model_on_every_node]
