"""`swift-ext merge CKPT`: the right ms-swift merge/export command for a checkpoint, checked first.

- Megatron LoRA checkpoint: `megatron export --mcore_adapter CKPT --to_hf true --merge_lora true`
  (needs GPUs; ms-swift's docs advise merging MoE LoRA this way);
- Megatron full checkpoint: `megatron export --mcore_model CKPT --to_hf true`;
- transformers-backend LoRA checkpoint: `swift export --adapters CKPT --merge_lora true`.
Before that: the checkpoint must have args.json, its base model must be reachable (for a Megatron LoRA also the
mcore_model base its args.json names, which megatron export loads first), a Megatron checkpoint must hold what export
loads (safetensors, or the mcore checkpoint), the output dir must not exist, and MTP layers are kept when the model
has them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from swift_ext.spec.findings import UserError, shown
from swift_ext.spec.recipe import MAX_GPUS_PER_NODE, MAX_NODES
from swift_ext.planner.launch import Launch
from swift_ext.runs.rundir import (ADAPTER_CONFIG, ARGS_FILE, is_megatron_args, merged_path, read_adapter_config,
                                   read_args, tuner_of)

_HUB_ID = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    args: dict
    engine: str  # "megatron" | "swift"
    tuner: str  # "lora" | "full" | ...

    @property
    def base_model(self) -> str | None:
        model = self.args.get("model")
        return str(model) if model else None

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def args_file(self) -> Path:
        return self.path / ARGS_FILE


def _parallel_size(ckpt, key: str) -> int:
    """A parallel size as the checkpoint's args.json records it (unset: 1); a hand-edited or damaged value is an
    error naming the file, not a ValueError -- or a CUDA_VISIBLE_DEVICES listing a billion GPUs."""
    value = ckpt.args.get(key) or 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NODES * MAX_GPUS_PER_NODE:
        raise UserError.one(f"{key} {shown(value)} is not a parallel size (a whole number from 1 to "
                            f"{MAX_NODES * MAX_GPUS_PER_NODE:,})", file=str(ckpt.path / ARGS_FILE),
                            hint="restore args.json from the run, or fix the value training used")
    return value


def read_checkpoint(path: str | Path) -> Checkpoint:
    ckpt = Path(path)
    if not ckpt.is_dir():
        raise UserError.one("not a directory; expected a checkpoint directory such as "
                            "output/<run>/v0-<time>/checkpoint-<step>", file=str(ckpt))
    args = read_args(ckpt)
    if args is None and re.fullmatch(r"iter_\d+", ckpt.name) and read_args(ckpt.parent) is not None:
        # Megatron's torch_dist folder inside ms-swift 4.x's checkpoint-N (save_mcore_checkpoint writes
        # CKPT/iter_NNNNNNN; args.json sits beside it in CKPT)
        raise UserError.one("a Megatron torch_dist folder inside an ms-swift checkpoint, not the checkpoint itself",
                            file=str(ckpt), hint=f"pass its checkpoint folder: {ckpt.parent}")
    if args is None:
        raise UserError.one(f"no {ARGS_FILE}: not an ms-swift checkpoint (ms-swift writes {ARGS_FILE} into every "
                            "checkpoint-N directory)", file=str(ckpt),
                            hint="pass the checkpoint-N directory itself, not its run directory")
    return Checkpoint(ckpt, args, "megatron" if is_megatron_args(args) else "swift", tuner_of(args, "lora"))


# ms-swift's own tuners (swift/tuners/base.py SwiftModel.save_pretrained) write their config into CKPT/<adapter>/
# ("default"), not PEFT's top-level file. Swift.merge_and_unload folds only LoRAConfig adapters (LoRA, LongLoRA) into
# the base; LLaMA-Pro needs no folding: its blocks sit in the model and config (num_hidden_layers), so ms-swift's
# export saves the expanded model. Every other swift tuner (adapter, side, part, prompt, ...) stays a module beside
# the base weights: the saved model carries it as keys transformers drops when it loads the model.
SWIFT_TUNER_DIR = "default"  # the adapter name ms-swift's tuners save under; ReFT saves under "reft"
SWIFT_TUNERS_MERGED = ("LORA", "longlora", "LLAMAPRO")


def refuse_non_adapter(ckpt: Checkpoint) -> None:
    """`--adapters CKPT` needs an adapter config; without it ms-swift fails deep inside the load. A swift tuner that
    ms-swift's merge cannot fold would be saved as a model that loses the training: refused too."""
    if read_adapter_config(ckpt.path) is not None:
        return
    where = next((d for d in (ckpt.path / SWIFT_TUNER_DIR, *sorted(ckpt.path.iterdir()))
                  if d.is_dir() and (d / ADAPTER_CONFIG).is_file()), ckpt.path / SWIFT_TUNER_DIR)
    swift_config = read_adapter_config(where)
    if swift_config is None:
        raise UserError.one(f"not a LoRA adapter checkpoint: no {ADAPTER_CONFIG} (args.json says tuner_type "
                            f"{ckpt.tuner}); there is nothing to merge", file=str(ckpt.path),
                            hint="a full-parameter checkpoint is already a model; pass the adapter's checkpoint-N")
    kind = str(swift_config.get("swift_type") or ckpt.tuner)
    if kind not in SWIFT_TUNERS_MERGED:
        raise UserError.one(f"a tuner_type {ckpt.tuner} checkpoint (ms-swift's {kind} tuner): ms-swift's merge "
                            "(Swift.merge_and_unload) folds only LoRA into the base model, so the model it saved "
                            f"would keep the {ckpt.tuner} weights as extra keys that transformers drops on load",
                            file=str(where / ADAPTER_CONFIG),
                            hint=f"use it unmerged: swift-ext infer {ckpt.path} (ms-swift loads it with --adapters)")


@dataclass(frozen=True)
class MergePlan:
    launch: Launch | None  # None when there is nothing to run
    output_dir: Path
    notes: list[str] = field(default_factory=list)
    already_merged: bool = False


def plan_merge(ckpt: Checkpoint, out: str | Path | None = None, base_model: str | None = None) -> MergePlan:
    notes: list[str] = []
    merged_by_training = merged_path(ckpt.path)
    if merged_by_training.is_dir() and out is None:
        why = "training ran with merge_lora: true" if ckpt.args.get("merge_lora") else "it was merged before"
        return MergePlan(None, merged_by_training, [f"{why}; the merged model is already at {merged_by_training} "
                                                    "(pass --out DIR to merge again elsewhere)"], already_merged=True)
    if ckpt.engine == "swift" and ckpt.tuner == "full":
        return MergePlan(None, ckpt.path, ["a full-parameter transformers checkpoint is already a complete model"],
                         already_merged=True)
    hf_format = (ckpt.path / "adapter_model.safetensors").is_file() or (ckpt.path / "model.safetensors").is_file() \
        or any(ckpt.path.glob("model-*.safetensors"))
    if ckpt.tuner != "full" and (ckpt.engine == "swift" or hf_format):
        refuse_non_adapter(ckpt)  # these are merged with --adapters CKPT
    if ckpt.engine == "megatron" and ckpt.tuner == "full" and hf_format:
        # Checked before the base model: mcore-bridge's save_weights wrote the whole model with its config and
        # processor (save_checkpoint under save_safetensors), so nothing is loaded from the base and nothing is run --
        # a base path recorded on the training machine that is missing here does not matter.
        return MergePlan(None, ckpt.path, ["a full-parameter checkpoint saved with save_safetensors is already "
                                           "a Hugging Face model"], already_merged=True)
    base = base_model or ckpt.base_model
    check_base_model(base, ckpt)
    if ckpt.engine == "swift":
        refuse_unmergeable_base(base, ckpt, base_model is not None)
    output = Path(out) if out else merged_by_training
    if output.exists():
        raise UserError.one("output directory already exists; not writing into it", file=str(output),
                            hint="pass --out NEW_DIR, or remove it yourself")
    mtp = mtp_layers_of(base)
    trained_mtp = ckpt.args.get("mtp_num_layers")
    if ckpt.engine == "megatron":
        refuse_unloadable_megatron(ckpt, hf_format)
        if ckpt.tuner != "full" and ckpt.args.get("mcore_model") and base_model:
            notes.append(f"megatron export takes the base weights from args.json's mcore_model "
                         f"{ckpt.args['mcore_model']}, not from --base-model (which gives the config and tokenizer)")
        argv = ["megatron", "export"]
        if ckpt.tuner == "full":
            argv += ["--mcore_model", str(ckpt.path)]
        else:  # safetensors adapters (save_safetensors: true) or Megatron's torch_dist format
            argv += ["--adapters" if hf_format else "--mcore_adapter", str(ckpt.path)]
        if base_model:
            argv += ["--model", base]
        argv += ["--to_hf", "true"]
        if ckpt.tuner != "full":
            argv += ["--merge_lora", "true"]
        argv += ["--output_dir", str(output)]
        sizes = {k: _parallel_size(ckpt, k) for k in ("tensor_model_parallel_size", "expert_model_parallel_size",
                                                      "pipeline_model_parallel_size")}
        for key, value in sizes.items():
            if value > 1:
                argv += [f"--{key}", str(value)]
        if trained_mtp:
            argv += ["--mtp_num_layers", str(trained_mtp)]
        elif mtp:
            # Trained without MTP: copy the base model's MTP weights so speculative decoding still works.
            argv += ["--save_missing_weights", "true"]
            notes.append(f"{base} has {mtp} MTP layer(s) that training did not touch; save_missing_weights keeps them")
        tp, ep, pp = (sizes["tensor_model_parallel_size"], sizes["expert_model_parallel_size"],
                      sizes["pipeline_model_parallel_size"])
        world = math.lcm(tp * pp, ep * pp)  # the smallest world where both grids fit
        env = {"NPROC_PER_NODE": str(world), "CUDA_VISIBLE_DEVICES": ",".join(map(str, range(world)))} if world > 1 else {}
        notes.append("megatron export needs GPUs (mcore-bridge imports transformer-engine)")
    else:
        argv = ["swift", "export", "--adapters", str(ckpt.path), "--merge_lora", "true", "--output_dir", str(output)]
        if base_model:
            argv += ["--model", base]
        env = {}
        if ckpt.tuner == "llamapro":
            notes.append("LLaMA-Pro: the merged model is the base expanded with the trained blocks "
                         "(config.json's num_hidden_layers grows by llamapro_num_new_blocks)")
        if mtp:
            notes.append(f"{base} has {mtp} MTP layer(s); the transformers path does not train them, and swift-ext "
                         "copies the base model's MTP weights into the merged model (transformers drops them)")
        if _is_moe(ckpt):
            notes.append("MoE LoRA merged on the transformers path; ms-swift recommends merging MoE LoRA in "
                         "Megatron (train with engine: megatron to get that path)")
    return MergePlan(Launch(env=env, argv=argv, output_dir=str(output)), output, notes)


def refuse_unloadable_megatron(ckpt: Checkpoint, hf_format: bool) -> None:
    """What `megatron export` loads before it converts anything, checked here (ms-swift 4.6
    megatron/pipelines/export/export.py convert_mcore2hf): a checkpoint without safetensors goes in as --mcore_adapter /
    --mcore_model, which load_mcore_checkpoint opens as DIR/iter_<N> from latest_checkpointed_iteration.txt; and for a
    LoRA checkpoint MegatronExportArguments._init_megatron_args re-reads args.json's mcore_model
    (MegatronArguments.load_args_config keeps it unless tuner_type is full), which convert_mcore2hf loads as the
    base weights before --model. Either directory missing, or holding no mcore checkpoint, raises
    CheckpointingException ("Checkpoint directory ... does not exist") after the GPUs have started."""
    from swift_ext.msswift.checkpoint_rules import mcore_checkpoint_problem

    problem = None if hf_format else mcore_checkpoint_problem(ckpt.path)
    if problem is not None:
        raise UserError.one(f"no safetensors (adapter_model.safetensors / model*.safetensors) and no loadable mcore "
                            f"checkpoint ({problem[0]}): megatron export has nothing to load (CheckpointingException: "
                            f"'{problem[1]}')", file=str(ckpt.path),
                            hint="pass a checkpoint-N whose save finished (it holds iter_N/ or the safetensors)")
    base = ckpt.args.get("mcore_model")
    if ckpt.tuner == "full" or not base:
        return
    base_dir = Path(str(base)).expanduser()
    if not base_dir.is_dir():
        raise UserError.one(f"args.json's mcore_model {base} (the mcore base model this LoRA was trained on) is not "
                            "here: megatron export re-reads it from args.json and loads the base weights from it "
                            "first, whatever --base-model says", file=str(ckpt.args_file), path="mcore_model",
                            hint="restore the converted base at that path (swift export --model BASE --to_mcore true "
                                 f"--output_dir {base}), or fix mcore_model in args.json")
    problem = mcore_checkpoint_problem(base_dir)
    if problem is not None:
        raise UserError.one(f"args.json's mcore_model {base} holds no loadable mcore checkpoint ({problem[0]}): "
                            f"megatron export loads the base weights from it (CheckpointingException: '{problem[1]}')",
                            file=str(ckpt.args_file), path="mcore_model",
                            hint="point mcore_model in args.json at the `swift export --to_mcore` output, or remove it "
                                 "to load the base from model")


def check_base_model(base: str | None, ckpt: Checkpoint) -> None:
    if not base:
        raise UserError.one("args.json names no base model (`model`)", file=str(ckpt.args_file),
                            hint="pass --base-model PATH_OR_ID")
    local = Path(base).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise UserError.one(f"base model directory {base} has no config.json", file=str(ckpt.args_file),
                                hint="pass --base-model PATH_OR_ID")
        return
    if base.startswith(("/", "./", "../", "~")) or not _HUB_ID.match(base):
        raise UserError.one(f"base model {base!r} recorded in args.json does not exist here and is not a hub id",
                            file=str(ckpt.args_file), path="model",
                            hint="pass --base-model with where the base model is now")


# Pre-quantized checkpoint formats PEFT cannot merge a LoRA adapter into: LoraModel._check_merge_allowed raises
# "Cannot merge LORA layers when the model is gptq quantized" (peft tuners/lora/model.py), and AwqLoraLinear
# (tuners/lora/awq.py) has no merge, so BaseTunerLayer.merge raises NotImplementedError. ms-swift's merge_lora
# (pipelines/export/merge_lora.py) drops only a quant_method it applied itself (bnb, ...): a checkpoint whose
# config.json carries quantization_config loads quantized whatever the arguments say.
UNMERGEABLE_QUANT = ("gptq", "awq")


def base_quantization(base: str) -> tuple[str, str]:
    """(quant_method, where it was read) of the base model: its config.json's quantization_config when the model is
    here or in a hub cache, else an -AWQ / -GPTQ tag in its id; ('', '') when neither says."""
    from swift_ext.planner.shape_lookup import locate_config
    from swift_ext.runs.rundir import read_json_object

    found = locate_config(base)
    if found is not None:
        try:
            config = read_json_object(found[0]) or {}
        except UserError:
            config = {}
        quant = config.get("quantization_config") if isinstance(config, dict) else None
        method = str(quant.get("quant_method") or "").lower() if isinstance(quant, dict) else ""
        return method, str(found[0])
    name = base.rstrip("/").rsplit("/", 1)[-1].lower()
    tag = next((m for m in UNMERGEABLE_QUANT if m in name), "")
    return tag, ("its id" if tag else "")


def refuse_unmergeable_base(base: str, ckpt: Checkpoint, given: bool) -> None:
    method, where = base_quantization(base)
    if method in UNMERGEABLE_QUANT:
        raise UserError.one(f"base model {base} is {method.upper()}-quantized ({where}): PEFT cannot merge a LoRA "
                            f"adapter into {method.upper()} weights (swift export --merge_lora fails after loading "
                            "the model)", file=str(ckpt.args_file) if not given else "command line",
                            path=None if given else "model",
                            hint="serve base + adapter unmerged (`swift-ext infer` runs --adapters), or merge into "
                                 "the unquantized release with --base-model ORIGINAL (then quantize with swift "
                                 "export --quant_method)")


def mtp_layers_of(base: str | None) -> int:
    if not base:
        return 0
    try:
        from swift_ext.planner.shape_lookup import resolve_shape

        return resolve_shape(base).mtp_num_layers
    except UserError:
        return 0


def _is_moe(ckpt: Checkpoint) -> bool:
    return "moe" in str(ckpt.args.get("model_type") or "")


def keep_base_mtp(base: str | None, merged: Path) -> list[str]:
    """Copy the base model's MTP tensors (`mtp.*`) that a transformers-path merge dropped.

    transformers does not model MTP (`_keys_to_ignore_on_load_unexpected = [r"^mtp.*"]` on Qwen3.5/3.6),
    so `swift export --merge_lora` never loads them and the merged model silently loses them; training on
    this path never touches them either, so the base model's copy is the right one (the transformers-path
    counterpart of Megatron's `--save_missing_weights`). They go into their own shard, listed in
    model.safetensors.index.json (written when ms-swift saved a single file). Returns the names copied.
    """
    if not base or not Path(base).expanduser().is_dir():
        return []
    from safetensors.torch import save_file

    from swift_ext.after.weights import open_safetensors, tensor_group, weight_index

    base_dir = Path(base).expanduser()
    base_index, merged_index = weight_index(base_dir), weight_index(merged)
    missing = sorted(k for k in base_index if tensor_group(k) == "MTP" and k not in merged_index)
    if not missing:
        return []
    tensors = {}
    for key in missing:
        with open_safetensors(base_index[key]) as fh:
            tensors[key] = fh.get_tensor(key)
    shard = merged / "model-mtp.safetensors"
    save_file(tensors, shard, metadata={"format": "pt"})
    index_file = merged / "model.safetensors.index.json"
    if index_file.is_file():
        index = json.loads(index_file.read_text(encoding="utf-8"))
    else:
        index = {"metadata": {}, "weight_map": {k: p.name for k, p in merged_index.items()}}
    index["weight_map"].update({k: shard.name for k in missing})
    index["weight_map"] = dict(sorted(index["weight_map"].items()))
    index.setdefault("metadata", {})["total_size"] = sum(
        (merged / name).stat().st_size for name in set(index["weight_map"].values()))
    index_file.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return missing
