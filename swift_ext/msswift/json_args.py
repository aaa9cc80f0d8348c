"""Arguments ms-swift reads as a JSON object (or a JSON file) when given as a string: swift/utils/utils.py
json_parse_to_dict. Text that is not JSON is not refused there: it goes through json_repair, which rewrites it into
its guess ('{a: *x}' becomes {"a": "x"}, 'hello' becomes '' and then fails), with only a log line."""

from __future__ import annotations

import json
import os

from swift_ext.spec.findings import shown

# The string-or-mapping arguments ms-swift 4.6 passes through json_parse_to_dict with strict=True (its repair path):
# megatron/arguments/megatron_args.py (megatron_extra_kwargs, vllm_engine_kwargs, vllm_limit_mm_per_prompt,
# vit_gradient_checkpointing_kwargs), rlhf_trainers/args_mixin.py (vllm_speculative_config),
# arguments/base_args/base_args.py (model_kwargs), model_args.py (max_memory), trainers/arguments.py
# (lr_scheduler_kwargs, gradient_checkpointing_kwargs, eval_generation_config, extra_eval_args, eval_dataset_args).
JSON_OBJECT_ARGS = ("megatron_extra_kwargs", "vllm_engine_kwargs", "vllm_limit_mm_per_prompt",
                    "vit_gradient_checkpointing_kwargs", "vllm_speculative_config", "model_kwargs", "max_memory",
                    "lr_scheduler_kwargs", "gradient_checkpointing_kwargs", "eval_generation_config",
                    "extra_eval_args", "eval_dataset_args")


def json_object_strings(recipe, args, err, warn):
    for name in JSON_OBJECT_ARGS:
        value = args.raw(name) if args.has(name) else None
        if not isinstance(value, str) or not value.strip() or os.path.exists(value):
            continue  # a mapping (the type check reads it), or a JSON file ms-swift opens
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            warn("json-string", f"{name} {shown(value)} is not JSON: ms-swift passes it through json_repair, which "
                 "rewrites it into a guess or stops", name,
                 hint=f"write it as a YAML mapping under {name}:, or as JSON text")
            continue
        if not isinstance(parsed, dict):
            warn("json-string", f"{name} {shown(value)} is JSON but not an object: ms-swift reads it as the "
                 f"{name} mapping", name, hint=f"write it as a YAML mapping under {name}:")


JSON_ARG_RULES = [json_object_strings]
