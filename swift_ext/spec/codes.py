"""Every finding code swift-ext reports, in one table: its family (which check reports it), its default
severity, and a title. docs/codes.md is generated from this table (python -m swift_ext.cli.docgen), and
tests/test_docs.py fails when a code used in the code is missing here or the docs drift from it.

Codes are stable: scripts, CI and `--json` readers match on them. A retired code keeps its line with
severity "retired" so its number or name is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_ext.spec.ruleset import RULES


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
        "E114": "bad-column-mapping", "E115": "bad-tool-call", "E116": "bad-tools",
        "E117": "tool-without-query", "E118": "user-after-tool-response",
        "E201": "sft-no-final-answer", "E202": "grpo-last-not-user", "E203": "grpo-missing-solution",
        "E204": "dpo-bad-rejected", "E205": "kto-bad-label", "E206": "kto-one-answer",
        "E207": "seq-cls-bad-label", "E208": "encoder-bad-candidates",
        "E301": "media-missing", "E302": "media-not-a-file", "E304": "media-bad-entry",
        "E305": "image-unreadable", "E306": "video-unreadable", "E307": "audio-unreadable",
        "E308": "bad-base64", "E309": "bad-objects",
        "E401": "unbalanced-think",
    }),
    # E108 bad-turn-order: retired (ms-swift's template accepts nearly any order of its known roles: it merges
    # repeated roles, folds tool_call turns into the assistant's and puts an empty user turn before a
    # leading assistant turn — Template._swift_prepare_inputs, _preprocess_tool_call, _get_std_messages);
    # the two orders it cannot pair are E117 and E118 (datasets/rows.py RowChecker._turn_order).
    "E108": Code("data", "retired", "bad-turn-order"),
    **_family("data", "warning", {"W111": "unknown-message-key", "W113": "repeated-role",
                                  "W204": "grpo-blank-solution", "W402": "duplicate-row",
                                  "W403": "kto-shared-answers",
                                  "W206": "reranker-no-candidates", "W207": "seq-cls-label-truncated",
                                  "W208": "sft-ends-with-tool-response", "W209": "sft-ends-without-answer",
                                  "W501": "too-long"}),
    **_family("data", "note", {"N103": "media-tags-added", "N112": "role-alias", "N303": "media-url"}),
    # -- plan: every pre-flight rule, from the rule registry that carries each one's evidence and scope ----
    **{name: Code("plan", info.severity.split(",")[0].strip(), info.what) for name, info in RULES.items()},
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
        "changed_layout": "the parallel layout changed since the checkpoint (an error where the distributed optimizer's "
                          "dp_reshardable state would be loaded into it)",
        "nothing_left": "the checkpoint is already at the last iteration",
    }),
    # -- doctor ---------------------------------------------------------------------------------------------
    **_family("doctor", "error", {
        "doctor-package": "a package the engine needs is missing (warning when only speed suffers)",
        "doctor-gpus": "fewer or other GPUs visible than launch asks for",
        "doctor-memory": "the GPUs' memory against the plan's estimate",
        "doctor-cache": "caches on node-local or missing shared folders for a multi-node run",
        "doctor-unsupported": "a recipe feature the installed versions or GPUs do not support (spec/support.py)",
        "doctor-fused-wgrad": "gradient_accumulation_fusion / defer_embedding_wgrad_compute need apex's "
                              "fused_weight_gradient_mlp_cuda extension, which this machine lacks",
    }),
    # -- verify ---------------------------------------------------------------------------------------------
    **_family("verify", "error", {
        "structure": "tensor names, shapes and dtypes of the merged model against base + adapter",
        "weights": "merged = base + scale * B @ A, tensor by tensor",
        "parity": "logits of base + adapter against the merged model",
        "generate": "a `swift infer` smoke test of the merged model",
    }),
    "base_not_local": Code("verify", "warning", "the base model is not a local directory: weights and parity skipped"),
}


def family_of(code: str | None) -> str | None:
    entry = CODES.get(code or "")
    return entry.family if entry else None
