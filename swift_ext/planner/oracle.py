"""megatron-core as the oracle: ask the engine itself whether a layout is legal, on the CPU.

swift-ext's own layout rules (layout.py) are hand-written from reading megatron-core's source. When
megatron-core is importable, this module runs megatron-core's own code on the recipe and reports what
it raises, with its own message:
- `TransformerConfig` / `MLATransformerConfig.__post_init__`, on the config built the way ms-swift
  builds it (`swift/megatron/model/utils.py:get_mcore_model_config`, starting from mcore-bridge's
  `hf_to_mcore_config` and copying every argument that is a config field). That translation is the
  one hand-copied piece: running ms-swift's own needs the model's HF config and mcore-bridge loaded.
- `parallel_state.initialize_model_parallel` for the recipe's world size, as several ranks of it
  under torch's fake process group, and the per-rank checks that read its groups:
  `BaseMoELayer.__init__`, `MoELayer.forward`'s first check, `get_num_layers_to_build`
  (oracle_grid.py).
- `OptimizerConfig.__post_init__`, on the optimizer config as ms-swift builds it.

Nothing here touches a GPU, and nothing here may crash `plan`: a megatron-core that does not
import, or a check that needs Transformer Engine (CUDA), becomes a note, never an error.

Importing megatron-core imports torch (seconds), so `plan` runs the oracle only when asked
(`plan --oracle`, or SWIFT_EXT_ORACLE=1); `run` and `submit` run it whenever megatron-core is
installed (a launch costs minutes anyway). Verdicts are cached on disk (oracle_cache.py): a repeat
costs no import at all. See docs/preflight.md.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from swift_ext.planner.mcore_config import ARGUMENT_OF
from swift_ext.planner.model_shape import ModelShape
from swift_ext.spec.findings import Finding

# The floor and the env var naming the cluster's megatron-core live with the other version gates
# (spec/support.py); SWIFT_EXT_TARGET_VERSIONS names it too.
from swift_ext.spec.support import ENV_MCORE as ENV_VERSION, MCORE_FLOOR, resolve_versions, version_tuple  # noqa: E402,F401
ENV_ORACLE = "SWIFT_EXT_ORACLE"  # 1: always run the oracle in plan; 0: never (also not in run/submit)

HAND_COPIED = " (hand-copied)"  # marks a source that is swift-ext's copy of a megatron-core check, not its code


def oracle_finding(flag: str, message: str, source: str, hand_copied: bool = False) -> Finding:
    """megatron-core's own message about recipe argument `flag`; `source`: the megatron-core function that raised
    (or, marked, the one a hand-copied check copies)."""
    return Finding(message, code="oracle", path=f"args.{flag}", source=source + (HAND_COPIED if hand_copied else ""))


def flag_of(finding: Finding) -> str:
    return (finding.path or "").removeprefix("args.")


def is_hand_copied(finding: Finding) -> bool:
    return (finding.source or "").endswith(HAND_COPIED)


@dataclass
class Verdict:
    version: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def accepts(self) -> bool:
        return not self.findings


def installed_version() -> str | None:
    """Version of the installed megatron-core, read from package metadata (no import)."""
    try:
        return importlib.metadata.version("megatron-core")
    except importlib.metadata.PackageNotFoundError:
        return None


def assumed_version(env: dict[str, str] | None = None, declared: dict[str, str] | None = None) -> tuple[str, str]:
    """(version, where it came from): declared targets, the recipe's env, the process env, the installed
    copy, then ms-swift 4.6's floor (spec.support.resolve_versions). The version-aware rules follow it."""
    versions = resolve_versions(env, declared)
    return versions.versions["megatron-core"], versions.sources["megatron-core"]


def wanted(explicit: bool | None, default: bool) -> bool:
    """Whether to run the oracle: an explicit choice, else SWIFT_EXT_ORACLE, else the verb's default."""
    if explicit is not None:
        return explicit
    env = os.environ.get(ENV_ORACLE)
    if env is not None and env.strip() != "":
        return env.strip().lower() in {"1", "true", "yes", "on"}
    return default


def for_launch() -> bool:
    """`run`/`submit` ask megatron-core too when it is installed: a launch costs minutes, the import seconds."""
    return wanted(None, default=installed_version() is not None)


# -------------------------------------------------------------------------------------------------
# The verdict


def judge(shape: ModelShape, args: Any, lay: Any, training: bool = True, cache: bool = True) -> Verdict:
    """megatron-core's verdict on `lay` (a layout.Layout) for `shape` with the recipe's `args`
    (a layout.Args). Raises ImportError when megatron-core cannot be imported. With `cache`, a
    verdict already on disk for the same inputs and versions is returned without importing torch."""
    version = installed_version()
    cache_key = None
    if cache and version:
        from swift_ext.planner import oracle_cache

        cache_key = oracle_cache.key(shape, args, lay, training, version)
        stored = oracle_cache.load(cache_key)
        if stored is not None:
            return Verdict(version=stored["version"], findings=[Finding(**f) for f in stored["findings"]],
                           notes=[*stored["notes"], "cached verdict"])
    verdict = _judge_now(shape, args, lay, training)
    if cache_key and not any(mark in n for n in verdict.notes for mark in _PARTIAL):
        oracle_cache.store(cache_key, {"version": verdict.version, "notes": verdict.notes,
                                       "findings": [dataclasses.asdict(f) for f in verdict.findings]})
    return verdict


# Notes that mean a check could not run in this process (a live process group, a TE-only path): such a
# verdict is not the whole answer, so it is not cached.
_PARTIAL = ("not judged", "not fully judged", "could not finish", "probe stopped")


def _judge_now(shape: ModelShape, args: Any, lay: Any, training: bool) -> Verdict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import megatron.core  # noqa: F401  (ImportError propagates: the caller turns it into a note)

        from swift_ext.planner import oracle_grid

        verdict = Verdict(version=installed_version() or "unknown")
        cls, kw = model_config_kwargs(shape, args, lay)
        config = _transformer_config(cls, kw, verdict)

        def add(flag: str, message: str, source: str) -> None:
            if not any(flag_of(f) == flag and f.message == message for f in verdict.findings):
                verdict.findings.append(oracle_finding(flag, message, source))

        def note(text: str) -> None:
            if text not in verdict.notes:
                verdict.notes.append(text)

        try:
            ranks = oracle_grid.judge_grid(lay, kw.get("virtual_pipeline_model_parallel_size"), config,
                                           training, add, note)
            note(f"{oracle_grid.INIT} ran as rank{'s' if len(ranks) > 1 else ''} {_spans(ranks)} of {lay.world} "
                 "(torch fake process group, no gloo groups)")
        except (ImportError, RuntimeError) as exc:  # no fake process group in this torch, or a live one here
            note(f"the rank grid was not judged here: {type(exc).__name__}: {exc}")
        _optimizer_config(args, verdict)
    note("hand-copied, not megatron-core's code: the recipe -> TransformerConfig translation "
         "(ms-swift get_mcore_model_config / mcore-bridge hf_to_mcore_config)")
    return verdict


def _spans(ranks: list[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0-3, 7'."""
    out, ordered = [], sorted(ranks)
    start = prev = ordered[0]
    for r in ordered[1:] + [None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if r is not None:
            start = prev = r
    return ", ".join(out)


# The recipe arguments ms-swift copies into the model config (get_mcore_model_config copies every
# argument whose name is a config field), with the post-init conversions MegatronArguments makes.
_RENAMED = {argument: field for field, argument in ARGUMENT_OF.items()}


def model_config_kwargs(shape: ModelShape, args: Any, lay: Any) -> tuple[type, dict]:
    """(config class, kwargs) as ms-swift + mcore-bridge would build them for this model and recipe
    (hand-copied from ms-swift: see the module's docstring)."""
    import torch
    from megatron.core.transformer.enums import AttnBackend
    from megatron.core.transformer.transformer_config import MLATransformerConfig, TransformerConfig

    from swift_ext.planner.mcore_config import builds_with_mcore_bridge, mtp_layers_checked

    mla = bool(getattr(shape, "kv_lora_rank", 0))
    mcore_bridge = builds_with_mcore_bridge(args)
    # mcore-bridge's ModelConfig is a TransformerConfig subclass for every model, MLA included (it declares the MLA
    # dimensions itself): MLATransformerConfig.__post_init__'s checks run only under Megatron-Bridge, whose
    # MLAModelProvider is an MLATransformerConfig.
    cls = MLATransformerConfig if mla and not mcore_bridge else TransformerConfig
    names = {f.name for f in dataclasses.fields(cls)}
    # mcore-bridge config/parser.py:hf_to_mcore_config -- the model's own numbers.
    kw: dict[str, Any] = {
        "num_layers": shape.num_layers,
        "hidden_size": shape.hidden_size,
        "num_attention_heads": shape.num_attention_heads,
        "num_query_groups": shape.num_key_value_heads,
        "kv_channels": shape.head_dim,
    }
    if shape.intermediate_size and (not shape.is_moe or shape.num_dense_layers):
        kw["ffn_hidden_size"] = shape.intermediate_size
    if shape.is_moe:
        kw.update(num_moe_experts=shape.num_experts, moe_ffn_hidden_size=shape.moe_intermediate_size,
                  moe_router_topk=shape.num_experts_per_tok or 2)
        if shape.shared_expert_intermediate_size:
            kw["moe_shared_expert_intermediate_size"] = shape.shared_expert_intermediate_size
        if shape.router_num_groups:  # n_group / topk_group -> group-limited routing
            kw.update(moe_router_num_groups=shape.router_num_groups, moe_router_group_topk=shape.router_group_topk or None)
        if shape.num_dense_layers:  # first_k_dense_replace -> moe_layer_freq
            dense = min(shape.num_dense_layers, shape.num_layers)
            kw["moe_layer_freq"] = [0] * dense + [1] * (shape.num_layers - dense)
    if shape.model_type.startswith(("qwen3", "qwen3_5")):
        kw["qk_layernorm"] = True
    if shape.linear_num_value_heads:  # qwen3_next / qwen3_5: Gated DeltaNet every layer but each N-th
        n = shape.full_attention_interval
        kw.update(experimental_attention_variant="gated_delta_net", attention_output_gate=True,
                  layernorm_zero_centered_gamma=True,
                  linear_attention_freq=[0 if (i + 1) % n == 0 else 1 for i in range(shape.num_layers)],
                  linear_num_key_heads=shape.linear_num_key_heads,
                  linear_num_value_heads=shape.linear_num_value_heads,
                  linear_key_head_dim=shape.linear_key_head_dim,
                  linear_value_head_dim=shape.linear_value_head_dim,
                  linear_conv_kernel_dim=shape.linear_conv_kernel_dim)
    if mla:  # DeepSeek-style multi-latent attention (MLATransformerConfig)
        kw.update(multi_latent_attention=True, q_lora_rank=shape.q_lora_rank or None, kv_lora_rank=shape.kv_lora_rank,
                  qk_head_dim=shape.qk_nope_head_dim, qk_pos_emb_head_dim=shape.qk_rope_head_dim,
                  v_head_dim=shape.v_head_dim)
    # The recipe's arguments, with ms-swift's defaults (MegatronArguments), as ms-swift passes them.
    for name in args.names():
        target = _RENAMED.get(name, name)
        if target not in names or target in kw:
            continue
        value = args.raw(name)
        if value is None or isinstance(value, (list, tuple)) and not value:
            continue
        kw[target] = value
    if shape.is_moe:  # the router as mcore-bridge sets it; no MegatronArguments field overrides it
        kw.setdefault("moe_router_score_function", shape.router_score_function)
        kw.setdefault("moe_router_pre_softmax", shape.router_pre_softmax)
    # MegatronArguments.__post_init__ conversions; _init_vpp_size takes VPP from a layout string.
    layout = kw.get("pipeline_model_parallel_layout")
    if isinstance(layout, str):
        from megatron.core.transformer.pipeline_parallel_layer_layout import PipelineParallelLayerLayout

        stages = len(PipelineParallelLayerLayout.parse_str_to_list(layout))
        if stages % lay.pp == 0:
            kw["virtual_pipeline_model_parallel_size"] = stages // lay.pp if stages // lay.pp > 1 else None
    if kw.get("virtual_pipeline_model_parallel_size") == 1:
        kw["virtual_pipeline_model_parallel_size"] = None  # _init_vpp_size: 1 is None
    if kw.get("recompute_granularity") == "none":
        kw["recompute_granularity"] = None
    if kw.get("sequence_parallel") and lay.tp <= 1:
        kw["sequence_parallel"] = False
    backend = kw.get("attention_backend")
    if isinstance(backend, str):
        kw["attention_backend"] = AttnBackend[backend[:5] if backend.startswith("flash_") else backend]
    if isinstance(kw.get("moe_router_dtype"), str) and kw["moe_router_dtype"].lower() == "none":
        kw["moe_router_dtype"] = None
    for key in ("moe_aux_loss_coeff", "moe_router_load_balancing_type"):
        if isinstance(kw.get(key), list) and len(kw[key]) == 1:
            kw[key] = kw[key][0]
    fp16 = args.bool("fp16") or str(args.raw("torch_dtype") or "").endswith("float16") and "bfloat" not in str(
        args.raw("torch_dtype"))
    kw["fp16"], kw["bf16"] = bool(fp16), not fp16
    # ModelArguments._init_mixed_precision fills only the unset one: fp16 stated over a stated bfloat16 keeps both.
    if args.has("fp16") and args.bool("fp16") and (
            args.bool("bf16") if args.has("bf16") else "bfloat16" in str(args.raw("torch_dtype") or "")):
        kw["bf16"] = True
    kw["params_dtype"] = kw["pipeline_dtype"] = torch.float16 if fp16 else torch.bfloat16
    # The parallel sizes as the layout reads them (ETP None means "same as TP" in megatron-core).
    kw.update(tensor_model_parallel_size=lay.tp, pipeline_model_parallel_size=lay.pp,
              context_parallel_size=lay.cp, expert_model_parallel_size=lay.ep,
              expert_tensor_parallel_size=lay.etp)
    if not shape.is_moe:  # get_mcore_model_config: a dense model ignores EP/ETP
        kw["expert_model_parallel_size"] = kw["expert_tensor_parallel_size"] = 1
    # mcore-bridge ModelConfig defaults that differ from TransformerConfig's (swiglu, no linear biases); hf_to_mcore_config
    # gives gpt_oss language models linear biases (the shape knows them by their learnable softmax, set alike) and
    # DeepSeek-V3.2 / GLM-5 DeepSeek Sparse Attention.
    kw.update(add_bias_linear=shape.softmax_type == "learnable", gated_linear_unit=True, normalization="RMSNorm")
    if shape.model_type in ("deepseek_v32", "glm_moe_dsa"):
        kw["experimental_attention_variant"] = "dsa"
    kw.setdefault("add_qkv_bias", False)
    kw.setdefault("variable_seq_lengths", True)
    if kw.get("virtual_pipeline_model_parallel_size") is None:  # MegatronArguments._init_vpp_size
        kw["overlap_p2p_comm"] = False
    kw.setdefault("batch_p2p_comm", not kw.get("overlap_p2p_comm", True))
    extra = args.mapping("megatron_extra_kwargs")
    kw.update(extra)  # get_mcore_model_config: `kwargs.update`d last, over everything
    # mcore-bridge ModelConfig.__post_init__, before TransformerConfig's: overlap_p2p_comm turns batch_p2p_comm off,
    # a shared expert size of 0 means none.
    if kw.get("overlap_p2p_comm", True):
        kw["batch_p2p_comm"] = False
    if kw.get("moe_shared_expert_intermediate_size") == 0:
        kw["moe_shared_expert_intermediate_size"] = None
    if mcore_bridge:  # the same __post_init__: MLA always rotates non-interleaved; one shared MTP layer
        if mla or kw.get("multi_latent_attention"):
            kw["rotary_interleaved"] = False
        if kw.get("mtp_num_layers") is not None and mtp_layers_checked(args) is not None:
            kw["mtp_num_layers"] = mtp_layers_checked(args)
    kw.setdefault("moe_token_dispatcher_type", "alltoall")
    return cls, {k: v for k, v in kw.items() if k in names}


# Config fields whose checks only ask "is the Transformer Engine kernel installed": an installation
# matter of the GPU node, not a property of the recipe. They are judged off here.
_TE_KERNEL_FLAGS = ("moe_permute_fusion", "moe_router_fusion")


@contextmanager
def _assume_transformer_engine(verdict: Verdict):
    """Without Transformer Engine (CPU), megatron-core's TE version checks compare None with a version
    and raise TypeError. The GPU node has TE, so those checks are assumed to pass, and the plan says so."""
    from megatron.core import utils
    from megatron.core.transformer import transformer_config as tc

    if utils.get_te_version() is not None:
        yield
        return
    from packaging.version import Version

    saved = tc.is_te_min_version, tc.get_te_version
    tc.is_te_min_version = lambda *a, **k: True
    tc.get_te_version = lambda: Version("999")
    verdict.notes.append("Transformer Engine is not installed here: megatron-core's TE version checks were "
                         "assumed to pass")
    try:
        yield
    finally:
        tc.is_te_min_version, tc.get_te_version = saved


def _transformer_config(cls, kw: dict, verdict: Verdict):
    src = f"megatron.core.transformer.transformer_config.{cls.__name__}.__post_init__"
    kw = {k: v for k, v in kw.items() if k not in _TE_KERNEL_FLAGS}
    try:
        with _assume_transformer_engine(verdict):
            return cls(**kw)
    except ImportError as exc:  # a Transformer Engine-only path: cannot be judged on this machine
        verdict.notes.append(f"megatron-core could not finish TransformerConfig without Transformer Engine: {exc}")
    except (AssertionError, ValueError, RuntimeError, NotImplementedError, TypeError, KeyError) as exc:
        message = str(exc) or type(exc).__name__
        if "please install te" in message.lower():  # a fused kernel TE provides ("apply_rope_fusion is not available"):
            verdict.notes.append(f"megatron-core could not finish TransformerConfig without Transformer Engine: {message}")
            return None  # the GPU node's installation, not the recipe (cf. _TE_KERNEL_FLAGS)
        frames = traceback.extract_tb(exc.__traceback__)
        in_layout = any(f.filename.endswith("pipeline_parallel_layer_layout.py") for f in frames)
        verdict.findings.append(oracle_finding("pipeline_model_parallel_layout" if in_layout else culprit(message), message,
                                        src))
    return None


def _optimizer_config(args, verdict: Verdict) -> None:
    """The optimizer config as ms-swift builds it (swift/megatron/trainers/base.py:get_optimizer_and_scheduler
    copies every argument that is an OptimizerConfig field; MegatronArguments._map_dtype maps the dtypes)."""
    import torch
    from megatron.core import optimizer as opt

    cls = getattr(opt, "AdamOptimizerConfig", opt.OptimizerConfig) if args.str("optimizer") != "sgd" else getattr(
        opt, "SGDOptimizerConfig", opt.OptimizerConfig)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.uint8}
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in ("loss_scale", "timers") or f.name not in args.names():
            continue
        value = args.raw(f.name)
        if f.name.endswith("_dtype") and isinstance(value, str):
            value = dtypes.get(value, value)
        if value is not None:
            kw[f.name] = value
    kw["fp8_recipe"] = args.str("fp8_recipe") if args.str("fp8_format") else None
    src = "megatron.core.optimizer.optimizer_config.OptimizerConfig.__post_init__"
    try:
        cls(**kw)
    except AssertionError as exc:
        message = str(exc)
        flag = ("use_distributed_optimizer" if "distributed optimizer" in message else
                "optimizer" if "only supported with adam" in message else
                next((n for n in ("main_grads_dtype", "main_params_dtype", "exp_avg_sq_dtype", "exp_avg_dtype")
                      if n in message), "use_precision_aware_optimizer"))
        verdict.findings.append(oracle_finding(flag, message, src))
    except (RuntimeError, ImportError) as exc:  # the TE FusedAdam probe: an installation matter of the GPU node
        verdict.notes.append(f"optimizer config not fully judged on this machine: {exc}")
    except (TypeError, ValueError) as exc:
        verdict.notes.append(f"optimizer config not judged: {type(exc).__name__}: {exc}")


# Words in megatron-core's messages -> the recipe argument to point at. First match wins.
_CULPRITS = [
    ("moe-layer-recompute", "moe_layer_recompute"),
    ("recompute_modules", "recompute_modules"),
    ("shared_experts recompute", "recompute_modules"),
    ("layernorm recompute", "recompute_modules"),
    ("deepep backend is only supported", "moe_enable_deepep"),
    ("use moe_pad_expert_input_to_capacity", "moe_pad_expert_input_to_capacity"),
    ("does not support moe_pad_expert_input_to_capacity", "moe_pad_expert_input_to_capacity"),
    ("moe_expert_capacity_factor only works", "moe_expert_capacity_factor"),
    ("moe_aux_loss_coeff", "moe_aux_loss_coeff"),
    ("moe_shared_expert_overlap only works", "moe_shared_expert_overlap"),
    ("token dispatcher type", "moe_token_dispatcher_type"),
    ("bias in moe", "expert_tensor_parallel_size"),
    ("expert bias for aux-loss-free", "megatron_extra_kwargs"),
    ("output gate is not supported for mla", "megatron_extra_kwargs"),
    ("rope fusion is not supported for dsattention", "apply_rope_fusion"),
    ("only one of self.fp16", "fp16"),
    ("fp4_param", "fp4_param_gather"),
    ("linear_num_key_heads", "tensor_model_parallel_size"),
    ("linear_num_value_heads", "tensor_model_parallel_size"),
    ("context parallel", "context_parallel_size"),
    ("context_parallel", "context_parallel_size"),
    ("num_query_groups", "tensor_model_parallel_size"),
    ("num_attention_heads", "tensor_model_parallel_size"),
    ("sequence parallel", "sequence_parallel"),
    ("recompute_num_layers", "recompute_num_layers"),
    ("recompute_method", "recompute_method"),
    ("recompute", "recompute_granularity"),
    ("first_pipeline", "decoder_first_pipeline_num_layers"),
    ("first stage", "decoder_first_pipeline_num_layers"),
    ("last_pipeline", "decoder_last_pipeline_num_layers"),
    ("last stage", "decoder_last_pipeline_num_layers"),
    ("virtual pipeline", "virtual_pipeline_model_parallel_size"),
    ("pipeline_model_parallel_layout", "pipeline_model_parallel_layout"),
    ("middle", "pipeline_model_parallel_size"),
    ("pipeline", "pipeline_model_parallel_size"),
    ("mtp", "mtp_num_layers"),
    ("fp8_param", "fp8_param_gather"),
    ("fp8", "fp8_recipe"),
    ("fp4", "fp4_format"),
    ("expert", "expert_model_parallel_size"),
    ("moe", "expert_model_parallel_size"),
    ("tensor_model_parallel", "tensor_model_parallel_size"),
]


def culprit(message: str) -> str:
    low = message.lower()
    for word, flag in _CULPRITS:
        if word in low:
            return flag
    return "tensor_model_parallel_size"
