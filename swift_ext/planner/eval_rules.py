"""The recipe's `eval` section, checked before training starts: `swift-ext eval` reads it only when the first
checkpoint is evaluated, by which time the run has been training for a while."""

from __future__ import annotations

import difflib

from swift_ext.msswift.bound_args import Args
from swift_ext.planner.grpo_rules import builtin_reward_names, plugin_paths, plugin_reward_names
from swift_ext.planner.vllm_lora import adapter_refusals
from swift_ext.spec.findings import Finding, shown
from swift_ext.spec.recipe import EVAL_METRICS, Recipe


def eval_metric_problems(recipe: Recipe, args: Args) -> list[Finding]:
    """eval.metrics names what after/evalmetrics.check_metric_names accepts when the evaluation starts: a metric it
    computes, or a reward function in ms-swift's `orms` once swift-ext's rewards are registered there. It imports
    no external_plugins file, so a reward only such a file registers is refused there too."""
    from swift_ext.plugins import REWARD_NAMES

    names = (recipe.eval.metrics or []) if recipe.eval is not None else []
    known = set(EVAL_METRICS) | builtin_reward_names() | set(REWARD_NAMES)
    unknown = [str(n) for n in names if str(n) not in known]
    if not unknown:
        return []
    plugin_only = set(unknown) & plugin_reward_names(plugin_paths(args))
    name = unknown[0]
    if name in plugin_only:
        why = "a reward function only an external_plugins file registers, which the evaluation does not import"
        hint = "score it in training (reward_funcs) or register it in swift-ext's rewards"
    else:
        why = "neither one of its metrics nor a reward function ms-swift or swift-ext registers"
        close = difflib.get_close_matches(name, sorted(known), n=1) if len(name) <= 200 else []
        hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(EVAL_METRICS)}"
    return [Finding(f"unknown evaluation metric {shown(name)}: {why}; `swift-ext eval` refuses it when the first "
                    "checkpoint is evaluated", code="eval-metrics", hint=hint, **recipe.where("eval.metrics"))]


def eval_vllm_problems(recipe: Recipe, args: Args) -> list[Finding]:
    """eval.backend vllm: each checkpoint runs as `swift infer --infer_backend vllm` (after/evaluate.py), a LoRA
    checkpoint of engine swift as base + `--adapters CKPT`, which vLLM's LoRA loader must accept; and the local
    follower starts next to the trainer on the GPUs it inherits."""
    if recipe.eval is None or recipe.eval.backend != "vllm":
        return []
    found: list[Finding] = []
    # Engine megatron: torch_dist checkpoints are exported merged first; its safetensors adapters carry neither
    # DoRA nor modules_to_save from these arguments, so only engine swift's adapters are judged here.
    if recipe.engine == "swift" and (args.str("tuner_type") or "lora") == "lora":
        refused = adapter_refusals(args.bool("use_dora"), args.list("modules_to_save"), args.str("lora_bias"),
                                   args.int("lora_rank"))
        for key, why in refused:
            found.append(Finding(f"{key} with eval.backend vllm: every checkpoint is evaluated as `swift infer "
                                 f"--infer_backend vllm --adapters CKPT`, and vLLM refuses to load the adapter "
                                 f"({why}); no checkpoint gets a metrics line", code="eval-vllm-lora",
                                 hint="eval.backend: transformers (loads any PEFT adapter), or drop " + key,
                                 **recipe.where(f"args.{key}")))
    if recipe.eval.devices is None and recipe.launch.gpus_per_node != 0:
        found.append(Finding("eval.backend vllm without eval.devices: run locally, the follower evaluates next to the "
                             "trainer on the GPUs it inherits, and vLLM reserves vllm_gpu_memory_utilization (0.9) of "
                             "the first GPU's memory at start-up, refusing to start while training holds more than "
                             "the rest (\"Free memory on device ... is less than desired GPU memory utilization\")",
                             code="eval-vllm-gpu", severity="warning",
                             hint="eval.devices: a GPU training does not use (launch.gpus_per_node one fewer), or "
                                  "eval.backend: transformers; `swift-ext submit` runs evaluations as their own jobs",
                             **recipe.where("eval.backend")))
    return found


# What `swift infer --infer_backend vllm` starts the evaluation's engine with: after/evaluate.py passes none of
# --vllm_gpu_memory_utilization, --vllm_tensor_parallel_size or --vllm_max_model_len, so ms-swift's VllmArguments
# defaults hold (rlhf_trainers/args_mixin.py: 0.9, 1, None -- vLLM then derives max_model_len from config.json).
EVAL_VLLM_UTILIZATION = 0.9


def eval_vllm_memory(recipe: Recipe, args: Args, shape) -> list[Finding]:
    """eval.backend vllm: one GPU must hold the model's weights and the KV cache of one sequence of the length vLLM
    derives from config.json, within 0.9 of its memory, or vLLM refuses to start every evaluation (vllm/v1/core/
    kv_cache_utils.py check_enough_kv_cache_memory: "To serve at least one request with the model's max seq len ...").
    Judged on launch.gpu, the machine a local follower evaluates on; not when eval.launch.partition names another."""
    from swift_ext.planner.length_rules import rollout_engine_gib

    if recipe.eval is None or recipe.eval.backend != "vllm" or shape is None or not getattr(shape, "max_positions", 0):
        return []
    capacity = recipe.launch.memory_gib
    if not capacity or recipe.eval.launch.partition is not None or args.raw("quant_method"):
        return []
    # Training that rewrites the config's length (rope_scaling, max_model_len) saves checkpoints of another length.
    if args.raw("rope_scaling") is not None or args.raw("max_model_len") is not None:
        return []
    length = shape.max_positions
    need = rollout_engine_gib(shape, 1, length)
    budget = EVAL_VLLM_UTILIZATION * capacity
    if need is None or need <= budget:
        return []
    kv = need - rollout_engine_gib(shape, 1, 0)
    return [Finding(f"eval.backend vllm: each checkpoint is evaluated by `swift infer --infer_backend vllm` on one GPU "
                    f"with vLLM's defaults -- gpu_memory_utilization {EVAL_VLLM_UTILIZATION}, so {budget:.1f} GiB of "
                    f"{capacity:g}, and max_model_len {length} from {shape.name}'s config.json -- but the weights "
                    f"({need - kv:.1f} GiB) and the KV cache of one {length}-token sequence ({kv:.1f} GiB) need "
                    f"{need:.1f} GiB: vLLM refuses to start (\"To serve at least one request with the model's max seq "
                    "len ...\"), and no checkpoint gets a metrics line", code="eval-vllm-memory",
                    hint="eval.backend: transformers, or evaluate on a GPU with more memory (launch.gpu)",
                    **recipe.where("eval.backend"))]


def eval_vllm_lora_model(recipe: Recipe, args: Args, shape) -> list[Finding]:
    """eval.backend vllm over engine swift's LoRA checkpoints: `swift infer --adapters CKPT` starts vLLM with
    enable_lora (infer_engine/vllm_engine.py VllmEngine.__init__), which the target vLLM must support for the model
    (planner/rollout_rules.py vllm_lora_model_gaps; judged only with a known vLLM version)."""
    from swift_ext.planner.rollout_rules import vllm_lora_model_gaps

    if recipe.eval is None or recipe.eval.backend != "vllm" or recipe.engine != "swift" or shape is None:
        return []
    if (args.str("tuner_type") or "lora") != "lora":
        return []
    return [Finding(f"eval.backend vllm: engine swift's LoRA checkpoints are evaluated as `swift infer --infer_backend "
                    f"vllm --adapters CKPT`, which starts vLLM with LoRA, and {what} needs a newer vLLM: {why}; no "
                    "checkpoint gets a metrics line", code="vllm-lora-model",
                    hint=f"eval.backend: transformers, or {newer} where the evaluation runs",
                    **recipe.where("eval.backend"))
            for what, why, newer in vllm_lora_model_gaps(getattr(shape, "model_type", None), recipe.env)]
