"""What `swift-ext import --upgrade` turns an ms-swift 3.x script's arguments into for 4.x (importer.py reads the
script): renamed arguments (schema.RENAMED, VLLM_RENAMED), negated switches turned round (NEGATED_RENAMED), names
counted in another unit (MEGATRON_RESCALED), removed ones dropped (REMOVED, MEGATRON_REMOVED), renamed values, and the
vllm_mode 4.x requires -- each with a note in the import output."""

from __future__ import annotations

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.conventions import is_true, typed_text


def vllm_mode(data: dict, upgrade: bool, notes: list, at: str) -> None:
    """ms-swift 4.x needs vllm_mode with use_vllm (swift/arguments/rlhf_args.py RLHFArguments._init_rollout: "vllm_mode
    is required when use_vllm is true"; Megatron: rollout_mixin.py _init_rollout_engine "Invalid vllm_mode: None");
    ms-swift 3.x scripts (and two of ms-swift's own GRPO examples) leave it out. --upgrade fills it in the way the
    script runs: server when it names a rollout server, else colocate -- with a note; without --upgrade, a note
    naming --upgrade (plan refuses the recipe as ms-swift would)."""
    args = data["args"]
    # Megatron GRPO's use_vllm defaults to true (megatron_args.py; "use_vllm must be True for Megatron GRPO").
    megatron_grpo = data["engine"] == "megatron" and data["command"] == "rlhf" and args.get("rlhf_type") == "grpo"
    if not is_true(args.get("use_vllm", megatron_grpo)) or args.get("vllm_mode") not in (None, ""):
        return
    # `--vllm_server_host ""` (an unset variable a 3.x script expanded) names no server: ms-swift would dial ''
    server = next((k for k in ("vllm_server_host", "vllm_server_base_url")
                   if any(str(v).strip() for v in (args[k] if isinstance(args.get(k), list) else [args.get(k)])
                          if v is not None)), None)
    mode = "server" if server else "colocate"
    why = f"it names {server}" if server else "it names no vllm_server_host / vllm_server_base_url"
    if "use_vllm" not in args:
        why += " (use_vllm is Megatron GRPO's default, true)"
    if upgrade:
        args["vllm_mode"] = mode
        notes.append(f"{at}: --vllm_mode {mode} added: ms-swift 4.x requires vllm_mode when use_vllm is true, and {why}")
    else:
        notes.append(f"{at}: use_vllm true without vllm_mode: ms-swift 4.x refuses it (\"vllm_mode is required when "
                     f"use_vllm is true\"); import with --upgrade to add `vllm_mode: {mode}` ({why}), or set it")


def megatron_wandb(data: dict, upgrade: bool, notes: list, at: str) -> None:
    """ms-swift 3.x's Megatron logged to wandb whenever wandb_project was set (Megatron-LM's convention; ms-swift PR
    #4074); 4.x starts a wandb run only for report_to wandb (MegatronArguments.__post_init__ builds the callbacks from
    report_to, default [tensorboard]). A 3.x script with wandb_project and no report_to would train without wandb:
    --upgrade adds `report_to: [tensorboard, wandb]` (3.x wrote TensorBoard too), with a note; without --upgrade, a
    note naming --upgrade (plan says it as tracker-unused)."""
    args = data["args"]
    given = [k for k in ("wandb_project", "wandb_exp_name") if args.get(k) not in (None, "")]
    if data["engine"] != "megatron" or not given or "report_to" in args:
        return
    if upgrade:
        args["report_to"] = ["tensorboard", "wandb"]
        notes.append(f"{at}: --report_to tensorboard wandb added: ms-swift 3.x's Megatron logged to wandb from "
                     f"--{given[0]}, 4.x only with report_to wandb")
    else:
        notes.append(f"{at}: --{given[0]} without --report_to: ms-swift 4.x starts no wandb run (3.x's Megatron did); "
                     "import with --upgrade to add `report_to: [tensorboard, wandb]`, or set it")


def _switch(value) -> bool | None:
    """A 3.x bool switch's value as its parser (HfArgumentParser's string_to_bool) read it: `1`, `yes`, `t` are
    true as `true` is (the importer types an unknown name's `1` as a number); None for what it refused."""
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        read = typed_text(value, {"kind": "bool"})
        return read if isinstance(read, bool) and value.strip() else None  # "" was no value to 3.x either
    return None


def upgrade_names(args: dict, schema: msargs.ArgSchema, notes: list, source: str, lineno: int) -> dict:
    upgraded: dict = {}
    megatron = schema.dataclass_name.startswith("Megatron")
    removed = {**msargs.REMOVED, **(msargs.MEGATRON_REMOVED if megatron else {})}
    for name, value in args.items():
        new = msargs.RENAMED.get(name) or (None if megatron else msargs.VLLM_RENAMED.get(name))
        if name in schema.fields:
            upgraded[name] = _upgrade_value(name, value, notes, f"{source}:{lineno}")
        elif name in removed:
            notes.append(f"{source}:{lineno}: --{name} dropped: {removed[name]}")
        elif megatron and name in msargs.MEGATRON_RESCALED and msargs.MEGATRON_RESCALED[name][0] in schema.fields \
                and msargs.MEGATRON_RESCALED[name][0] not in args:
            _rescale(name, value, upgraded, notes, f"{source}:{lineno}")
        elif (flipped := msargs.NEGATED_RENAMED.get(name)) in schema.fields and flipped not in args \
                and _switch(value) is not None:
            notes.append(f"{source}:{lineno}: --{name} {value if isinstance(value, str) else str(value).lower()} is "
                         f"ms-swift 3.x's switch; 4.x has `{flipped}` the other way round: "
                         f"`{flipped}: {str(not _switch(value)).lower()}`")
            upgraded[flipped] = not _switch(value)
        elif new in schema.fields and new not in args:
            notes.append(f"{source}:{lineno}: --{name} is `{new}` in ms-swift 4.x; renamed")
            upgraded[new] = value
        else:
            upgraded[name] = value
    return upgraded


def _rescale(name: str, value, upgraded: dict, notes: list, at: str) -> None:
    """A 3.x name whose 4.x name counts in another unit (msargs.MEGATRON_RESCALED): the value converted, or, when the
    script leaves it to the shell, dropped with what to set."""
    new, factor = msargs.MEGATRON_RESCALED[name]
    number = value if type(value) is int else int(value) if isinstance(value, str) and value.strip().isdigit() else None
    if number is None:
        notes.append(f"{at}: --{name} {value} is ms-swift 3.x's (minutes); 4.x has `{new}` in seconds, {factor}x: "
                     f"not imported -- set `{new}` yourself")
        return
    upgraded[new] = number * factor
    notes.append(f"{at}: --{name} {number} is `{new}: {number * factor}` in ms-swift 4.x ({new} counts seconds); "
                 "converted")


def _upgrade_value(name: str, value, notes: list, at: str):
    new = msargs.RENAMED_VALUES.get(name, {}).get(value) if isinstance(value, str) else None
    if new is None:
        return value
    notes.append(f"{at}: --{name} {value} is `{new}` in ms-swift 4.x; renamed")
    return new
