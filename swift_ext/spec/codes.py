"""Every finding code swift-ext reports, in one table: its family (which check reports it), its default
severity, and a title. docs/codes.md is generated from this table (python -m swift_ext.cli.docgen), and
tests/test_docs.py fails when a code used in the code is missing here or the docs drift from it.

Codes are stable: scripts, CI and `--json` readers match on them. A retired code keeps its line with
severity "retired" so its number or name is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    family: str  # data | plan | resume | doctor | verify | oracle
    severity: str  # error | warning | note (the usual one; a check may report a code at another severity)
    title: str


FAMILIES = {
    "data": "`data check` (and `plan`, `infer --split`): one row or file of a dataset as ms-swift reads it",
    "plan": "`plan` (and `run`, `submit`): the recipe against ms-swift's arguments, its own rules, the model's "
            "shape, the layout and memory",
    "oracle": "`plan --oracle`: megatron-core's own code judging the layout",
    "resume": "`run --resume`, `submit --resume`, and every Slurm restart: would ms-swift really continue?",
    "doctor": "`doctor` (run by `run` and on every Slurm node): can this machine run the recipe?",
    "verify": "`verify` (run by `merge`): is the merged model base + adapter?",
}


def _family(family: str, severity: str, rows: dict[str, str]) -> dict[str, Code]:
    return {code: Code(family, severity, title) for code, title in rows.items()}


CODES: dict[str, Code] = {
    # -- data: E = error, W = warning, N = note; the hundreds say what is checked --------------------------
    **_family("data", "error", {
        "E001": "invalid-json", "E002": "not-an-object", "E003": "invalid-utf8", "E004": "line-too-large",
        "E005": "not-json-lines", "E006": "empty-dataset",
        "E101": "messages-missing", "E102": "bad-message", "E103": "image-count-mismatch",
        "E104": "video-count-mismatch", "E105": "audio-count-mismatch", "E106": "unknown-role",
        "E107": "system-not-first", "E109": "bad-content-type", "E110": "mixed-column-type",
        "E114": "bad-column-mapping", "E115": "bad-tool-call",
        "E201": "sft-no-final-answer", "E202": "grpo-last-not-user", "E203": "grpo-missing-solution",
        "E204": "dpo-bad-rejected", "E205": "kto-bad-label",
        "E301": "media-missing", "E302": "media-not-a-file", "E304": "media-bad-entry",
        "E305": "image-unreadable", "E306": "video-unreadable", "E307": "audio-unreadable",
        "E308": "bad-base64", "E309": "bad-objects",
        "E401": "unbalanced-think",
    }),
    # E108 bad-turn-order: retired (ms-swift's template accepts any order of its known roles: it merges
    # repeated roles, folds tool_call turns into the assistant's and puts an empty user turn before a
    # leading assistant turn — Template._swift_prepare_inputs, _preprocess_tool_call, _get_std_messages).
    "E108": Code("data", "retired", "bad-turn-order"),
    **_family("data", "warning", {"W111": "unknown-message-key", "W113": "repeated-role", "W402": "duplicate-row",
                                  "W501": "too-long"}),
    **_family("data", "note", {"N112": "role-alias", "N303": "media-url"}),
    # -- plan: the recipe as written ----------------------------------------------------------------------
    **_family("plan", "error", {
        "unknown-argument": "an args key that the command's ms-swift argument dataclass does not have",
        "argument-type": "a value of the wrong type for ms-swift's argument",
        "argument-range": "a value outside what ms-swift or the library under it accepts",
        "required": "a value ms-swift cannot start without (args, model)",
        "secret": "a credential written into the recipe (env or argument) instead of referenced",
        "dataset": "a dataset entry that is missing, unreadable or fails data check",
        "launch": "launch sizes that contradict the environment (GPUs, CUDA_VISIBLE_DEVICES)",
        "generation": "sampling values that transformers' own logits processors refuse",
        "model-shape": "the model's config.json could not be read or is inconsistent",
        "memory": "the estimated peak per GPU against the GPU's memory (outside the estimate's error band)",
        "resume": "a fixed output folder that already holds a run, or a resume that cannot work",
        "megatron-core": "megatron-core's own code refuses the layout (plan --oracle)",
    }),
    **_family("plan", "warning", {
        "rlhf-type": "rlhf without rlhf_type: ms-swift's default applies",
        "msswift-override": "a recipe value that ms-swift replaces in its __post_init__",
        "base_not_local": "the base recipe is not next to the recipe",
    }),
    # ms-swift's own post-init checks (swift_ext/msswift/rules.py) and the layout rules
    # (swift_ext/planner/layout.py, grpo_rules.py); each rule's evidence is in its docstring/comment.
    **_family("plan", "error", {
        "world-divisible": "world size divisible by TP x PP x CP",
        "expert-layout": "world / PP divisible by ETP x EP",
        "experts-divisible": "number of experts divisible by EP",
        "heads-tp": "attention heads divisible by TP",
        "kv-groups-tp": "KV groups a divisor (or, from megatron-core 0.16, a multiple) of TP",
        "linear-heads-tp": "Gated DeltaNet key/value heads divisible by TP",
        "linear-attention-cp": "context parallel with linear-attention layers (megatron-core >= 0.18)",
        "layers-pp": "layers over pipeline stages (uneven first/last, virtual stages)",
        "pipeline-layout": "an explicit pipeline_model_parallel_layout that matches the model",
        "sequence-parallel": "sequence parallel where megatron-core needs it (MoE with TP)",
        "context-parallel": "context-parallel length and packing rules",
        "recompute": "recompute settings that megatron-core accepts",
        "fp8-param": "fp8_param_gather needs fp8_format",
        "fp8-gpu": "the FP8 recipe against the GPU's compute capability",
        "fp8-optimizer": "FP8 parameters with the precision-aware optimizer or CPU offload",
        "optimizer-precision": "non-fp32 optimizer dtypes need the precision-aware distributed Adam",
        "global-batch": "global batch divisible by micro batch x DP",
        "mtp-layers": "MTP layers the model has",
        "save-total-limit": "save_total_limit with async_save or resumable runs",
        "packing-attn-impl": "packing / padding_free need a flash-attention attn_impl",
        "packing-modes": "packing, padding_free and group_by_length together",
        "megatron-args": "Megatron-only argument combinations ms-swift refuses",
        "megatron-grpo": "GRPO options the Megatron backend refuses",
        "megatron-gkd": "GKD options the Megatron backend refuses",
        "rlhf-padding-free": "padding_free support per rlhf_type",
        "rlhf-sequence-parallel": "sequence-parallel support per rlhf_type",
        "grpo-type": "GRPO needs rlhf_type grpo and a generation setup",
        "grpo-vllm": "vLLM rollout settings (mode, TP, memory, server)",
        "grpo-batch": "the generation batch against num_generations and DP",
        "grpo-generations": "num_generations >= 2 without a teacher",
        "grpo-cached-dataset": "GRPO cannot read a cached (pre-tokenized) dataset",
        "grpo-liger": "Liger loss limits under GRPO",
        "grpo-truncation": "GRPO truncation_strategy left or delete",
        "grpo-soft-overlong": "soft_overlong needs soft_cache_length",
        "grpo-teacher": "teacher / OPD-RL option combinations",
        "grpo-multi-turn": "a multi_turn_scheduler ms-swift or a plugin knows",
        "reward-funcs": "reward functions ms-swift or a plugin file registers, and their weights",
        "vllm-settings": "vLLM settings in their valid ranges",
    }),
    # -- oracle ---------------------------------------------------------------------------------------------
    "oracle": Code("oracle", "error", "megatron-core raised for this layout (the finding names its function)"),
    # -- resume ---------------------------------------------------------------------------------------------
    **_family("resume", "error", {
        "incomplete_checkpoint": "the checkpoint's save never finished",
        "wrong_load_flag": "the resume flag does not match the checkpoint (LoRA vs full)",
        "finetune": "finetune: true resets the iteration: ms-swift would start over",
        "tuner_type": "the tuner type differs from the checkpoint's",
        "no_optimizer_state": "saved without optimizer state: nothing to continue",
        "changed_setting": "a batch or data setting changed since the checkpoint",
        "nothing_to_resume": "no complete checkpoint to resume from",
    }),
    **_family("resume", "warning", {
        "no_args": "the checkpoint's args.json is missing or unreadable: settings not compared",
        "no_load_optim": "no_load_optim: optimizer and LR-scheduler state restart",
        "no_load_rng": "no_load_rng: RNG state restarts",
        "changed_layout": "the parallel layout changed since the checkpoint",
        "nothing_left": "the checkpoint is already at the last iteration",
    }),
    # -- doctor ---------------------------------------------------------------------------------------------
    **_family("doctor", "error", {
        "doctor-package": "a package the engine needs is missing (warning when only speed suffers)",
        "doctor-gpus": "fewer or other GPUs visible than launch asks for",
        "doctor-memory": "the GPUs' memory against the plan's estimate",
        "doctor-cache": "caches on node-local or missing shared folders for a multi-node run",
    }),
    # -- verify ---------------------------------------------------------------------------------------------
    **_family("verify", "error", {
        "structure": "tensor names, shapes and dtypes of the merged model against base + adapter",
        "weights": "merged = base + scale * B @ A, tensor by tensor",
        "parity": "logits of base + adapter against the merged model",
        "generate": "a `swift infer` smoke test of the merged model",
    }),
}


def family_of(code: str | None) -> str | None:
    entry = CODES.get(code or "")
    return entry.family if entry else None
