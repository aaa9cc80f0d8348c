"""`swift-ext doctor [RECIPE]`: can this machine run the recipe? Packages, GPUs, memory, shared caches.

Run by `swift-ext run` before it starts anything, and by the sbatch script on every node before the
ranks start, so a missing package or GPU is one line instead of every rank dying with a traceback.
Reads package metadata and `nvidia-smi`; imports neither torch nor ms-swift (fast, and safe on a login node).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from swift_ext.spec.findings import Finding
from swift_ext.spec.recipe import Recipe

# Filesystems whose contents the other nodes of a job can see.
SHARED_FS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "fuse.glusterfs", "glusterfs",
             "panfs", "wekafs", "fuse.juicefs", "virtiofs", "9p", "cifs", "smb3", "fuse.sshfs"}
# Model types whose transformers implementation has Gated DeltaNet layers (fast kernels: fla, causal-conv1d).
GATED_DELTANET = ("qwen3_next", "qwen3_5")


def _found(code: str, message: str, blocking: bool) -> Finding:
    """blocking: the run cannot work here (an error), vs. it will be slow or may hang (a warning)."""
    return Finding(message, code=code, severity="error" if blocking else "warning")


def render(finding: Finding) -> str:
    return f"{finding.severity}: doctor: {finding.message}"


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def packages_for(recipe: Recipe | None, model_type: str | None) -> dict[str, tuple[bool, str]]:
    """Distribution name -> (required, why) for what the recipe will run."""
    wanted: dict[str, tuple[bool, str]] = {"ms-swift": (True, "the training engine")}
    if recipe is None:
        return {**wanted, "megatron-core": (False, "engine: megatron"), "mcore-bridge": (False, "engine: megatron"),
                "transformer-engine": (False, "engine: megatron"), "flash-attn": (False, "flash attention"),
                "vllm": (False, "GRPO rollouts with use_vllm")}
    gpus = recipe.launch.gpus_per_node > 0
    if recipe.engine == "megatron":
        # swift.megatron imports megatron.core, mcore_bridge and transformer_engine's layers unconditionally.
        wanted["megatron-core"] = (True, "engine: megatron")
        wanted["mcore-bridge"] = (True, "engine: megatron (HF <-> Megatron weights)")
        wanted["transformer-engine"] = (True, "engine: megatron (ms-swift builds TE layers)")
    attn = str(recipe.args.get("attn_impl") or "")
    if attn.startswith("flash_att") or attn == "flash_attn":
        wanted["flash-attn"] = (True, f"attn_impl: {attn}")
    if recipe.command == "rlhf" and str(recipe.args.get("use_vllm", "")).lower() == "true":
        wanted["vllm"] = (True, "use_vllm: true")
    if gpus and model_type and model_type.startswith(GATED_DELTANET):
        why = (f"{model_type} has Gated DeltaNet layers; without it transformers falls back to slow "
               "reference kernels")
        wanted["flash-linear-attention"] = (False, why)
        wanted["causal-conv1d"] = (False, why)
    return wanted


def visible_gpus(env: dict[str, str]) -> tuple[list[Gpu], str | None]:
    """GPUs this process may use (nvidia-smi, filtered by CUDA_VISIBLE_DEVICES); or why none were found."""
    if shutil.which("nvidia-smi") is None:
        return [], "no NVIDIA driver (nvidia-smi not found)"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi failed: {exc}"
    if out.returncode != 0:
        return [], f"nvidia-smi failed: {(out.stderr or out.stdout).strip().splitlines()[:1]}"
    gpus = {}
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            gpus[parts[0]] = Gpu(parts[1], float(parts[2]) / 1024)
    devices = env.get("CUDA_VISIBLE_DEVICES")
    if devices is not None:
        chosen = [gpus[d.strip()] for d in devices.split(",") if d.strip() in gpus]
        return chosen, None if chosen else f"CUDA_VISIBLE_DEVICES={devices!r} selects none of {len(gpus)} GPU(s)"
    return list(gpus.values()), None if gpus else "nvidia-smi lists no GPU"


def filesystem_type(path: str) -> str | None:
    """The type of the mount holding `path` (from /proc/mounts), or None where that is unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            mount = parts[1].replace("\\040", " ")
            if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                best, best_type = mount, parts[2]
    return best_type


def diagnose(recipe: Recipe | None, plan=None, env: dict[str, str] | None = None) -> list[Finding]:
    """Every problem found, one Finding each; an empty list means nothing stands in the way."""
    env = dict(os.environ if env is None else env)
    if recipe is not None:
        env = {**env, **{k: v for k, v in recipe.env.items() if k != "CUDA_VISIBLE_DEVICES"}}
    findings: list[Finding] = []
    model_type = shape_type(recipe)
    for dist, (required, why) in packages_for(recipe, model_type).items():
        if version(dist) is None and recipe is not None:
            findings.append(_found("doctor-package", f"{dist} is not installed ({why})", required))
    if recipe is not None:
        findings += unsupported_here(recipe, model_type)
        findings += fused_wgrad_here(recipe)
    if recipe is None or recipe.launch.gpus_per_node == 0:
        return findings
    gpus, why_none = visible_gpus(env)
    wanted = recipe.launch.gpus_per_node
    if len(gpus) < wanted:
        findings.append(_found("doctor-gpus", f"launch.gpus_per_node is {wanted} but {len(gpus)} GPU(s) are visible"
                                f"{': ' + why_none if why_none else ''}", True))
    memory = getattr(plan, "memory", None) if plan is not None else None
    if gpus and memory is not None and getattr(memory, "per_gpu_gib", None):
        smallest = min(gpus, key=lambda g: g.memory_gib)
        if memory.per_gpu_gib > smallest.memory_gib:
            findings.append(_found("doctor-memory", f"the plan estimates {memory.per_gpu_gib:.1f} GiB per GPU but {smallest.name} "
                                    f"has {smallest.memory_gib:.1f} GiB", False))
        elif recipe.launch.memory_gib and smallest.memory_gib < recipe.launch.memory_gib * 0.95:
            findings.append(_found("doctor-memory", f"the recipe plans for {recipe.launch.memory_gib:g} GiB GPUs "
                                    f"(launch.gpu {recipe.launch.gpu}); this machine has {smallest.name} with "
                                    f"{smallest.memory_gib:.1f} GiB", False))
    if recipe.launch.nodes > 1:
        for var in ("MODELSCOPE_CACHE", "HF_HOME"):
            value = env.get(var)
            if not value:
                findings.append(_found("doctor-cache", f"multi-node run without {var}: every node downloads and preprocesses on "
                                        "its own, and ms-swift may hang; point it at shared storage", False))
                continue
            fs = filesystem_type(value)
            if fs is not None and fs not in SHARED_FS:
                findings.append(_found("doctor-cache", f"{var}={value} is on a {fs} filesystem, which looks node-local; multi-node "
                                        "ms-swift needs it shared", False))
    return findings


def report_lines(recipe: Recipe | None, model_type: str | None) -> list[str]:
    """The versions of every package that matters for the recipe (or for any recipe)."""
    lines = []
    for dist, (required, why) in packages_for(recipe, model_type).items():
        found = version(dist)
        lines.append(f"{dist:24} {found or 'not installed':16} {'required' if required else 'optional'}: {why}")
    return lines


def unsupported_here(recipe: Recipe, model_type: str | None) -> list[Finding]:
    """The recipe's features that the installed versions (and launch.gpu) do not support, read from the
    one version table (spec/support.py); a package not installed here gives no verdict."""
    from swift_ext.spec.gpus import GPUS
    from swift_ext.spec.support import recipe_features, resolve_versions, unsupported

    gpu = GPUS.get(recipe.launch.gpu or "")
    # this machine's packages and its torch's CUDA, not a declared target
    versions = resolve_versions(installed=True, machine=True)
    return [_found("doctor-unsupported", f"not supported here: {line}", True)
            for line in unsupported(recipe_features(recipe.args, model_type), versions,
                                    gpu.compute_capability if gpu else None)]


def _findable(module: str) -> bool:
    """A top-level module this Python would import (found, not run)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# What the recipe's Megatron flags need of apex, which plan cannot see (it is the training machine's). ms-swift 4.6
# swift/megatron/arguments/megatron_args.py MegatronArguments.__post_init__: gradient_accumulation_fusion (default
# true) is turned off, with a warning, when `import apex` fails; megatron_extra_kwargs, applied after it
# (get_mcore_model_config), can turn it back on. megatron-core 0.16.1 tensor_parallel/layers.py imports apex's
# fused_weight_gradient_mlp_cuda extension and ColumnParallelLinear.__init__ (the output layer, on every model) raises
# RuntimeError "...gradient_accumulation_fusion set to True but the custom CUDA extension fused_weight_gradient_mlp_cuda
# module is not found" without it; model_parallel_config.py ModelParallelConfig.__post_init__ raises "Cannot defer
# embedding wgrad compute when gradient accumulation fusion is not used" (defer_embedding_wgrad_compute).
def fused_wgrad_here(recipe: Recipe) -> list[Finding]:
    if recipe.engine != "megatron":
        return []
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args
    from swift_ext.planner.mcore_config import config_value, from_extra

    try:
        args = Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command))
        asked = bool(config_value(args, "gradient_accumulation_fusion", True))
        forced = from_extra(args, "gradient_accumulation_fusion")
        defer = bool(config_value(args, "defer_embedding_wgrad_compute", False))
    except Exception:  # noqa: BLE001 -- a recipe plan refuses (bad values) is plan's to report, not doctor's
        return []
    apex, kernels = _findable("apex"), _findable("fused_weight_gradient_mlp_cuda")
    fusion = asked and (apex or forced)  # what the config gets
    found = []
    if fusion and not kernels:
        why = ("megatron_extra_kwargs sets gradient_accumulation_fusion" if forced else
               "gradient_accumulation_fusion is on (ms-swift's default) and apex is installed")
        found.append(_found("doctor-fused-wgrad", f"{why}, but apex's fused_weight_gradient_mlp_cuda extension is "
                            "not: megatron-core's ColumnParallelLinear raises RuntimeError when the model is built",
                            True))
    if defer and asked and not fusion:
        found.append(_found("doctor-fused-wgrad", "defer_embedding_wgrad_compute needs gradient_accumulation_fusion, "
                            "which ms-swift turns off here because apex is not installed: megatron-core refuses the "
                            "config (\"Cannot defer embedding wgrad compute when gradient accumulation fusion is not "
                            "used\")", True))
    for finding in found:
        finding.message += ("; install apex with its C++/CUDA extensions (--cpp_ext --cuda_ext), or set "
                            "gradient_accumulation_fusion: false" + (" and drop defer_embedding_wgrad_compute"
                                                                      if defer else ""))
    return found


def shape_type(recipe: Recipe | None) -> str | None:
    """The model's `model_type` when its config.json (or a preset) is at hand; None otherwise."""
    if recipe is None:
        return None
    from swift_ext.spec.findings import UserError
    from swift_ext.planner.shape_lookup import resolve_shape
    from swift_ext.planner.tinymodel import resolve_model

    model = resolve_model(recipe.args.get("model"))
    try:
        return resolve_shape(model).model_type
    except UserError:
        return None
