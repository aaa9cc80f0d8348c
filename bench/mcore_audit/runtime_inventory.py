"""Inventory for the runtime audit (runtime_cases.py): every assert/raise in the megatron-core 0.16.1 files whose
checks fire at model build or in the first forward/backward/optimizer step, one row each (file, enclosing function,
line, condition). runtime_cases.py holds the ones an ms-swift 4.6 recipe reaches.
Run: python bench/mcore_audit/runtime_inventory.py [megatron/core-relative files]"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import megatron.core

ROOT = Path(megatron.core.__file__).parent
FILES = ["pipeline_parallel/schedules.py", "pipeline_parallel/p2p_communication.py", "transformer/moe/moe_layer.py",
         "transformer/moe/router.py", "transformer/moe/token_dispatcher.py", "transformer/moe/moe_utils.py",
         "transformer/moe/experts.py", "transformer/moe/fused_a2a.py", "models/gpt/gpt_model.py",
         "models/common/embeddings/rotary_pos_embedding.py", "transformer/attention.py",
         "transformer/dot_product_attention.py", "tensor_parallel/layers.py", "tensor_parallel/mappings.py",
         "tensor_parallel/cross_entropy.py", "optimizer/distrib_optimizer.py", "optimizer/optimizer.py",
         "distributed/distributed_data_parallel.py", "distributed/param_and_grad_buffer.py",
         "transformer/multi_token_prediction.py", "extensions/transformer_engine.py"]


def checks(rel: str):
    def walk(node, where):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else where
            if isinstance(child, ast.Assert):
                yield rel, name, child.lineno, f"assert {ast.unparse(child.test)[:100]}"
            elif isinstance(child, ast.Raise):
                yield rel, name, child.lineno, f"raise {ast.unparse(child.exc)[:100] if child.exc else ''}"
            yield from walk(child, name)
    yield from walk(ast.parse((ROOT / rel).read_text(encoding="utf-8")), "<module>")


if __name__ == "__main__":
    rows = [row for rel in (sys.argv[1:] or FILES) for row in checks(rel)]
    for row in rows:
        print("\t".join(map(str, row)))
    print(f"# {len(rows)} checks", file=sys.stderr)
