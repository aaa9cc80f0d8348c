"""Arguments ms-swift reads as a JSON object (or a JSON file) when given as a string: swift/utils/utils.py
json_parse_to_dict. Text that is not JSON is not refused there: it goes through json_repair, which rewrites it into
its guess ('{a: *x}' becomes {"a": "x"}, 'hello' becomes '' and then fails), with only a log line."""

from __future__ import annotations

import ast
import json
import os

from swift_ext.spec.findings import shown

# The string-or-mapping arguments ms-swift 4.6 passes through json_parse_to_dict with strict=True (its repair path):
# megatron/arguments/megatron_args.py (megatron_extra_kwargs, vllm_engine_kwargs, vllm_limit_mm_per_prompt,
# vit_gradient_checkpointing_kwargs), rlhf_trainers/args_mixin.py (vllm_speculative_config),
# arguments/base_args/data_args.py DataArguments.__post_init__ (columns), base_args.py (model_kwargs),
# model_args.py (max_memory), trainers/arguments.py (lr_scheduler_kwargs, gradient_checkpointing_kwargs,
# eval_generation_config, extra_eval_args, eval_dataset_args). A name the command lacks is unknown-argument's.
JSON_OBJECT_ARGS = ("megatron_extra_kwargs", "vllm_engine_kwargs", "vllm_limit_mm_per_prompt",
                    "vit_gradient_checkpointing_kwargs", "vllm_speculative_config", "columns", "model_kwargs",
                    "max_memory", "lr_scheduler_kwargs", "gradient_checkpointing_kwargs", "eval_generation_config",
                    "extra_eval_args", "eval_dataset_args")


def json_object_strings(recipe, args, err, warn):
    for name in JSON_OBJECT_ARGS:
        value = args.raw(name) if args.has(name) else None
        if not isinstance(value, str) or not value.strip() or os.path.exists(value):
            continue  # a mapping (the type check reads it), or a JSON file ms-swift opens
        if "/" in value or "\\" in value or value.lower().endswith(".json"):
            continue  # a JSON file on the training machine: nothing to read here
        if name == "max_memory" and isinstance(_literal(value), dict):
            continue  # model_args.py _init_max_memory tries ast.literal_eval first: '{0: "20GB"}' is read as written
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            if repaired_object(value) is False:
                # `--columns old_name:new_name` (ms-swift#5044): json_repair mends it to '', json.loads raises
                err("json-argument", f"{name} {shown(value)} is not a JSON object: ms-swift parses it with "
                    "json_parse_to_dict, whose json_repair cannot mend it, and raises at start-up", name,
                    hint=f"{name} as a JSON object, e.g. '{{\"old_name\": \"new_name\"}}' (a mapping in the "
                    "recipe's YAML)" if name == "columns" else
                    f"{name} as a JSON object, or a mapping in the recipe's YAML")
            else:
                warn("json-string", f"{name} {shown(value)} is not JSON: ms-swift passes it through json_repair, "
                     "which rewrites it into its guess with only a log line", name,
                     hint=f"write it as a YAML mapping under {name}:, or as JSON text")
            continue
        if not isinstance(parsed, dict):
            warn("json-string", f"{name} {shown(value)} is JSON but not an object: ms-swift reads it as the "
                 f"{name} mapping", name, hint=f"write it as a YAML mapping under {name}:")


def repaired_object(value: str) -> bool | None:
    """Whether ms-swift's json_parse_to_dict makes an object of text json.loads refused (it asks json_repair to mend
    it); None when json_repair is not installed here and the text could hold an object."""
    try:
        parsed = json.loads(value)
    except ValueError:
        try:
            import json_repair
        except ImportError:
            return None if "{" in value else False
        try:
            parsed = json.loads(json_repair.repair_json(value))
        except (ValueError, RecursionError):
            return False
    except RecursionError:
        return None
    return isinstance(parsed, dict)


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


JSON_ARG_RULES = [json_object_strings]
