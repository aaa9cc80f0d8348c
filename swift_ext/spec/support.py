"""Version-gated support as data: which feature works with which versions of the stack and which GPUs.

ONE table (SUPPORT) says, per feature and model type, the lowest version of each package (ms-swift,
megatron-core, transformers, vLLM, Transformer Engine) and of CUDA it needs, the version of a package that
removed it (where one did), the lowest GPU compute capability it needs and the capabilities it does not run
on, with the place that says so. The version-gated pre-flight rules (planner/layout.py), `plan
--target-versions` and `swift-ext doctor` all read this table; nothing else holds a version gate.

Versions are checked against a declared target set when one is given (planning on a laptop for the
cluster), else the installed copies. A package that is neither declared nor installed is "unknown":
its gates are not checked (no verdict; `plan` says so in a note), except megatron-core, which falls back
to ms-swift 4.6's floor.

CUDA is the machine's, not a package's: the version torch was built with (torch.version.cuda), which is what
Transformer Engine compares (`float(torch.version.cuda) >= 12.9`). `plan` learns it only from a declared
target (`--target-versions cuda=12.9`, or SWIFT_EXT_TARGET_VERSIONS in the recipe's env): the planning
machine's torch says nothing about the cluster's. `doctor`, which runs on the training machine, reads it
from the installed torch (torch/version.py, not imported).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

from swift_ext.spec.findings import UserError

DISTRIBUTIONS = ("ms-swift", "megatron-core", "transformers", "vllm", "transformer-engine")
CUDA = "cuda"  # torch.version.cuda: see the module docstring
PACKAGES = (*DISTRIBUTIONS, CUDA)
# Short names accepted in --target-versions / SWIFT_EXT_TARGET_VERSIONS.
ALIASES = {"swift": "ms-swift", "mcore": "megatron-core", "te": "transformer-engine",
           "transformer_engine": "transformer-engine", "megatron_core": "megatron-core", "ms_swift": "ms-swift"}
# `plan --target-versions` and this recipe/process env var take the same text: "megatron-core=0.18.0,vllm=0.11".
ENV_TARGETS = "SWIFT_EXT_TARGET_VERSIONS"
# The older, megatron-core-only spelling (the oracle's); still read, as `megatron-core=<value>`.
ENV_MCORE = "SWIFT_EXT_MCORE_VERSION"
# ms-swift 4.6 requires megatron-core >= 0.16 (README of ms-swift 4.6; mcore-bridge 1.6.3's ModelConfig.__post_init__
# `require_version('megatron-core>=0.16.0.dev')` only for an experimental_attention_variant -- Gated DeltaNet, DSA --
# model_config.py:315): what the Megatron rules assume when nothing says more.
MCORE_FLOOR = "0.16.1"


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.16.1rc2' -> (0, 16, 1); the numeric prefix of up to three parts."""
    parts = []
    for piece in str(version).split(".")[:3]:
        digits = ""
        for ch in piece:
            if ch not in "0123456789":  # not isdigit(): '²' is a digit there, and int() refuses it
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def parse_targets(text: str, where: str = "--target-versions") -> dict[str, str]:
    """'megatron-core=0.18.0,te=2.8' -> {'megatron-core': '0.18.0', 'transformer-engine': '2.8'}."""
    found: dict[str, str] = {}
    for item in (p.strip() for p in str(text).split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = ALIASES.get(name.strip().lower(), name.strip().lower())
        if not sep or name not in PACKAGES or not version_tuple(value.strip()):
            raise UserError.one(f"{where}: {item!r} is not PACKAGE=VERSION",
                                hint=f"e.g. megatron-core=0.18.0,transformer-engine=2.8,cuda=12.9; names: {', '.join(PACKAGES)}")
        found[name] = value.strip()
    return found


@lru_cache(maxsize=1)
def installed_versions() -> dict[str, str]:
    """Versions of the installed packages, from package metadata (no import)."""
    found = {}
    for dist in DISTRIBUTIONS:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


@lru_cache(maxsize=1)
def installed_cuda() -> str | None:
    """torch.version.cuda of the installed torch, read from torch/version.py without importing torch (seconds, and a
    login node may have no GPU driver); None for a CPU build, a ROCm build or no torch."""
    try:
        spec = importlib.util.find_spec("torch")  # a top-level name: finds the package, runs nothing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            text = open(os.path.join(folder, "version.py"), encoding="utf-8").read()
        except OSError:
            continue
        # torch writes `cuda: Optional[str] = '13.0'` (None on a CPU build)
        found = re.search(r"^cuda\s*(?::[^=\n]*)?=\s*['\"]([0-9.]+)['\"]", text, re.M)
        return found.group(1) if found else None
    return None


@dataclass(frozen=True)
class Versions:
    """The versions the rules judge against: package -> version, and where each came from."""

    versions: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, package: str) -> tuple[int, ...] | None:
        value = self.versions.get(package)
        return version_tuple(value) if value else None

    @property
    def mcore(self) -> tuple[int, ...]:
        return self.get("megatron-core") or version_tuple(MCORE_FLOOR)

    def describe(self, package: str) -> str:
        name = "CUDA (torch.version.cuda)" if package == CUDA else package
        return f"{name} {self.versions[package]}" if package in self.versions else f"{name} (unknown)"


def resolve_versions(env: dict[str, str] | None = None, declared: dict[str, str] | None = None,
                     installed: bool = True, machine: bool = False) -> Versions:
    """Declared targets (--target-versions) first, then the recipe's env, then the process env
    (SWIFT_EXT_TARGET_VERSIONS, and SWIFT_EXT_MCORE_VERSION for megatron-core), then the installed copies
    (unless `installed` is False), then ms-swift 4.6's megatron-core floor. `machine`: this is the machine that
    trains (doctor), so the installed torch's CUDA counts too; plan knows CUDA only from a declared target."""
    versions: dict[str, str] = {}
    sources: dict[str, str] = {}

    def take(found: dict[str, str], source: str) -> None:
        for name, value in found.items():
            if name not in versions:
                versions[name], sources[name] = value, source

    take(declared or {}, "--target-versions")
    for label, source in (("recipe env", env or {}), ("environment", os.environ)):
        if source.get(ENV_TARGETS):
            take(parse_targets(source[ENV_TARGETS], f"{ENV_TARGETS} in the {label}"), f"{ENV_TARGETS} in the {label}")
        if source.get(ENV_MCORE):
            take({"megatron-core": source[ENV_MCORE].strip()}, f"{ENV_MCORE} in the {label}")
    if installed:
        take(installed_versions(), "installed")
    if machine and installed_cuda():
        take({CUDA: installed_cuda()}, "torch.version.cuda (installed torch)")
    take({"megatron-core": MCORE_FLOOR}, "ms-swift 4.6's minimum; megatron-core is not installed here")
    return Versions(versions, sources)


# -------------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Support:
    feature: str  # stable key: rules and doctor look rows up by it
    what: str
    model_types: tuple[str, ...] | None  # model_type prefixes the row concerns; None: any model
    needs: dict[str, str]  # package -> lowest version that supports the feature
    compute_capability: tuple[int, int] | None  # lowest GPU compute capability; None: any
    evidence: str  # where the gate is read from (file and function of the package, or its docs)
    removed: dict[str, str] = field(default_factory=dict)  # package -> first version without the feature
    # GPUs the feature does not run on though they pass compute_capability: [first, below) -- below None: every
    # capability from `first` on (a newer architecture the package refuses, not an older one)
    excluded_capability: tuple[tuple[int, int], tuple[int, int] | None] | None = None


# Model types whose decoder has Gated DeltaNet (linear attention) layers (transformers' and mcore-bridge's
# qwen3_next / qwen3_5 / qwen3_5_moe implementations).
GATED_DELTANET = ("qwen3_next", "qwen3_5")

SUPPORT: tuple[Support, ...] = (
    Support("cp-linear-attention", "context parallel (CP > 1) on Gated DeltaNet layers", GATED_DELTANET,
            {"megatron-core": "0.18.0"}, None,
            "megatron-core 0.16 transformer/transformer_config.py TransformerConfig.__post_init__ asserts \"Gated "
            "delta net does not support context parallel for now\"; lifted by NVIDIA/Megatron-LM PR #2642, "
            "first released in 0.18 (its TransformerConfig adds linear_cp_mode)"),
    # What bridge_backend megatron-bridge builds for qwen3_next (Megatron-Bridge qwen3_next_bridge.py:
    # experimental_attention_variant "gated_delta_net", megatron-core's own GatedDeltaNet); mcore-bridge (the
    # default backend) runs its own GatedDeltaNet.forward, which takes packed input, so this row is that backend's.
    Support("packed-linear-attention", "packed THD input (padding_free / packing) to megatron-core's own Gated "
            "DeltaNet (bridge_backend megatron-bridge)", GATED_DELTANET, {"megatron-core": "0.19.0"}, None,
            "megatron-core 0.16 ssm/gated_delta_net.py GatedDeltaNet.forward raises NotImplementedError(\"GDN does "
            "not support packed sequence for now.\") for any packed_seq_params; lifted by NVIDIA/Megatron-LM PR "
            "#2645, merged 2026-05-15 (Megatron-LM issue #3798); 0.19.0 is the first release after the merge "
            "(0.18.0's changelog stops at April PRs) -- the version is inferred, not read from either release"),
    # mcore-bridge 1.6.3 model/mm_gpts/qwen3_5.py: under USE_MCORE_GDN=0 Qwen3.5/3.6's linear attention is transformers'
    # GatedDeltaNet, which takes the pack's boundaries (cu_seq_lens_q) only from transformers 5.9.
    Support("packed-linear-attention-hf", "packed THD input (padding_free / packing) to transformers' Qwen3.5 Gated "
            "DeltaNet (Megatron with USE_MCORE_GDN=0)", ("qwen3_5",), {"transformers": "5.9.0"}, None,
            "mcore-bridge 1.6.3 model/mm_gpts/qwen3_5.py Qwen3_5MoeGatedDeltaNet.forward raises \"Packed (thd) varlen "
            "forward for Qwen3.5 requires transformers>=5.9.0, since cu_seq_lens_q was introduced in "
            "huggingface/transformers#45034\" (_TRANSFORMERS_SUPPORTS_CU_SEQ_LENS_Q)"),
    # transformers 5.2.0 (ms-swift 4.6's floor for qwen3_5) names a class that does not exist in Qwen3_5Model's /
    # Qwen3_5MoeModel's _no_split_modules ("Qwen3_5TextDecoderLayer"), and PreTrainedModel.post_init folds the
    # children's lists into the top model's, which accelerate's TRANSFORMER_BASED_WRAP then looks up.
    Support("fsdp-wrap-qwen3_5", "FSDP transformer-based auto wrap of Qwen3.5 / Qwen3.6 (the model's "
            "_no_split_modules)", ("qwen3_5",), {"transformers": "5.3.0"}, None,
            "transformers 5.2.0 models/qwen3_5/modeling_qwen3_5.py Qwen3_5Model._no_split_modules = "
            "[\"Qwen3_5TextDecoderLayer\", ...] (qwen3_5_moe alike), gathered by modeling_utils.py "
            "PreTrainedModel.post_init; accelerate utils/dataclasses.py FullyShardedDataParallelPlugin."
            "set_auto_wrap_policy / utils/fsdp_utils.py fsdp2_prepare_auto_wrap_policy raise \"Could not find the "
            "transformer layer class ... in the model.\"; fixed by huggingface/transformers#44382 (merged 2026-03-02), "
            "5.3.0 names Qwen3_5DecoderLayer (both read from the released wheels)"),
    # ms-swift 4.6 template/templates/qwen.py Qwen3_5Template._post_encode: the transformers engine's packed rows reach
    # Qwen3.5's GatedDeltaNet with their boundaries only from transformers 5.9 (earlier releases drop cu_seq_lens_q one
    # hop before it and the state leaked across samples silently: ms-swift#9618), so ms-swift now refuses them.
    Support("packed-linear-attention-swift", "packed rows (padding_free / packing) to Qwen3.5 / Qwen3.6 on the "
            "transformers engine without sequence parallelism", ("qwen3_5",), {"transformers": "5.9.0"}, None,
            "ms-swift 4.6 swift/template/templates/qwen.py Qwen3_5Template._post_encode raises \"Qwen3.5 "
            "packing/padding_free with sequence_parallel_size=1 requires transformers>=5.9.0\" "
            "(transformers_5_9 from Qwen3VLTemplate.init_env_args); modelscope/ms-swift#9618 (transformers 5.2.0 ~ "
            "5.8.1: the GatedDeltaNet never sees cu_seq_lens_q, fixed upstream in 5.9.0, huggingface/transformers#46093)"),
    # The first transformers release that knows the model type (models/<type>/ in the wheel): below it AutoConfig raises
    # "The checkpoint you are trying to load has model type `...` but Transformers does not recognize this
    # architecture" when ms-swift loads config.json, both engines (swift/model/register.py ModelLoader.load -> get_config).
    Support("transformers-qwen3_5", "Qwen3.5 / Qwen3.6 (model_type qwen3_5 / qwen3_5_moe) in transformers",
            ("qwen3_5",), {"transformers": "5.2.0"}, None,
            "the transformers 5.1.0 wheel has no models/qwen3_5 or qwen3_5_moe, 5.2.0 has both; ms-swift 4.6 "
            "swift/model/models/qwen.py registers qwen3_5 / qwen3_5_moe with requires transformers>=5.2.0 (a warning "
            "only: ModelMeta.check_requires); hiyouga/LlamaFactory#10219 (Qwen3.5-27B on transformers 5.0.0: "
            "KeyError: 'qwen3_5' in AutoConfig)"),
    Support("transformers-qwen3_next", "Qwen3-Next (model_type qwen3_next) in transformers", ("qwen3_next",),
            {"transformers": "4.57.0"}, None,
            "the transformers 4.56.2 wheel has no models/qwen3_next, 5.1.0 has it (4.57.0 first ships it); ms-swift 4.6 "
            "swift/model/models/qwen.py registers qwen3_next with requires transformers>=4.57"),
    Support("transformers-qwen3_vl", "Qwen3-VL / Qwen3-VL-MoE and Qwen3-Omni (model_type qwen3_vl*, qwen3_omni*) in "
            "transformers", ("qwen3_vl", "qwen3_omni"), {"transformers": "4.57.0"}, None,
            "the transformers 4.56.2 wheel has no models/qwen3_vl, qwen3_vl_moe or qwen3_omni_moe, 4.57.0 has all three; "
            "ms-swift 4.6 swift/model/models/qwen.py registers qwen3_vl / qwen3_vl_moe with requires transformers>=4.57 "
            "and qwen3_omni_moe with >=4.57.dev0"),
    Support("vllm-qwen3_5", "Qwen3.5 / Qwen3.6 (Qwen3_5(Moe)ForConditionalGeneration) in the vLLM rollout engine",
            ("qwen3_5",), {"vllm": "0.17.0"}, None,
            "ms-swift Qwen3.5 best practice (docs/source_en/BestPractices/Qwen3_5-Best-Practice.md: vllm>=0.17.0 "
            "for inference/deployment/RL); verl PR #5381 (vLLM 0.15.0: \"Model architectures "
            "['Qwen3_5MoeForConditionalGeneration'] are not supported for now\")"),
    Support("vllm-qwen3_next", "Qwen3-Next (Qwen3NextForCausalLM) in the vLLM rollout engine", ("qwen3_next",),
            {"vllm": "0.10.2"}, None,
            "Qwen's Qwen3-Next release notes (vllm>=0.10.2); gpustack#3827 (the vLLM 0.10.1.1 it shipped \"doesn't "
            "support Qwen3-Next\")"),
    Support("vllm-qwen3_vl", "Qwen3-VL / Qwen3-VL-MoE (Qwen3VL(Moe)ForConditionalGeneration) in the vLLM rollout "
            "engine", ("qwen3_vl",), {"vllm": "0.11.0"}, None,
            "vLLM's Qwen3-VL recipe (docs.vllm.ai recipes Qwen/Qwen3-VL: \"Install vLLM >=0.11.0\"); ms-swift#6649 "
            "(Qwen3-VL-32B GRPO with vLLM 0.8.5.post1 fails; maintainer: \"qwen3-vl models is supported in vllm "
            "0.11.0\"); verl#3906 (Qwen3-VL-MoE GRPO guide: vllm==0.11.0 \"supports qwen3 vl rollout\")"),
    Support("vllm-gpt_oss", "gpt-oss (GptOssForCausalLM, MXFP4 experts) in the vLLM rollout engine", ("gpt_oss",),
            {"vllm": "0.10.1"}, None,
            "vllm-project/vllm PR #22259 (gpt-oss support, 2025-08-05: a 0.10.1+gptoss wheel until the 0.10.1 release); "
            "vLLM's GPT-OSS recipe and snowflakedb/ArcticInference PR #170 (\"vLLM v0.10.1, the newly released "
            "version recommended by the GPT-OSS recipe\"); runpod-workers/worker-vllm#206 (a vLLM 0.9 worker cannot "
            "start openai/gpt-oss-20b)"),
    Support("vllm-glm4v", "GLM-4.1V / GLM-4.5V / GLM-4.6V (Glm4v(Moe)ForConditionalGeneration) in the vLLM rollout "
            "engine", ("glm4v",), {"vllm": "0.9.2"}, None,
            "zai-org/GLM-V#15 (GLM-4.1V-9B-Thinking on vLLM 0.9.1: \"`limit_mm_per_prompt` is only supported for "
            "multimodal models\" -- vLLM does not know the architecture); open-compass/VLMEvalKit PR #1165 (GLM-4.1V: "
            "\"vLLM version >= 0.9.2\")"),
    Support("vllm-glm4v_moe", "GLM-4.5V / GLM-4.6V (Glm4vMoeForConditionalGeneration) in the vLLM rollout engine",
            ("glm4v_moe",), {"vllm": "0.10.1"}, None,
            "gpustack/gpustack#2730 (maintainer: \"The latest vLLM release (v0.10.0) does not support GLM-4.5V ... "
            "Support has been added in the HEAD version\", released as 0.10.1)"),
    # vLLM 0.11.0's Qwen3VLForConditionalGeneration.get_mm_mapping names the tower "model.visual." while the engine's
    # modules are "visual.": nothing is kept out of LoRA, the vision tower's linears are wrapped, and the profile run
    # (or the first image) fails in _lora_shrink. vllm-project/vllm#27027 "[Model] Fix Qwen3VL mm mapping" (merged
    # 2025-10-16, after v0.11.0 of 2025-10-02) corrects the prefixes to "visual." for Qwen3-VL and Qwen3-VL-MoE.
    Support("vllm-lora-qwen3_vl", "a LoRA-enabled vLLM engine for Qwen3-VL / Qwen3-VL-MoE (the vision tower kept "
            "out of LoRA)", ("qwen3_vl",), {"vllm": "0.11.1"}, None,
            "vLLM v0.11.0 vllm/model_executor/models/qwen3_vl.py get_mm_mapping (tower_model \"model.visual.\"); "
            "vllm-project/vllm#27027 fixes it after v0.11.0; vllm-project/vllm#27669 (Qwen3-VL-8B with LoRA on 0.11.0: "
            "\"assert token_lora_mapping.size(0) == M\" in profile_run, EngineCore failed to start); "
            "modelscope/ms-swift#6670 (Qwen3-VL-4B GRPO with vllm_enable_lora: the same AssertionError; vLLM maintainer: "
            "upgrade vLLM)"),
    # vLLM 0.17.0 (the first release with Qwen3.5, out by 2026-03-09) builds Qwen3.5's Gated DeltaNet in_proj_qkvz with
    # 4 output slices but declares 2 packed modules for it: with LoRA enabled, MergedColumnParallelLinearWithLoRA
    # indexes past them (IndexError in set_lora / slice_lora_b) during the LoRA warm-up or the first adapter load.
    # vllm-project/vllm#36976 "[Bugfix][LoRA] Fix Qwen35 LoRA" merged 2026-03-13, after v0.17.0; whether v0.17.1
    # carries it is not read here, so only 0.17.0 is refused.
    Support("vllm-lora-qwen3_5", "a LoRA-enabled vLLM engine for Qwen3.5 / Qwen3.6 (LoRA on the Gated DeltaNet input "
            "projection)", ("qwen3_5",), {"vllm": "0.17.1"}, None,
            "vLLM v0.17.0 vllm/model_executor/models/qwen3_5.py (create_qkvz_proj: 4 output_sizes, packed_modules_mapping "
            "in_proj_qkvz: 2 entries); vllm-project/vllm#35286 (Qwen3.5-MoE with enable_lora: IndexError in "
            "column_parallel_linear.py set_lora, reported by ms-swift's GRPO maintainer); fixed by "
            "vllm-project/vllm#36976 (merged 2026-03-13, after v0.17.0)"),
    Support("kv-groups-replicated", "TP a multiple of the KV groups (each group replicated on TP/groups ranks)",
            None, {"megatron-core": "0.16.0"}, None,
            "megatron-core 0.16 TransformerConfig.__post_init__ accepts num_query_groups dividing TP; core_r0.15.0 "
            "requires a multiple (ms-swift issue #8219: 2 KV groups, TP=8)"),
    # megatron-core 0.16.x SelfAttention.get_query_key_value_tensors narrows the query to the rank's heads when TP
    # exceeds the KV groups but returns the output gate of the whole group; _apply_output_gate's gate.view(*x.shape)
    # then fails. Only megatron-core's own SelfAttention runs it: bridge_backend megatron-bridge on a gated model
    # (Megatron-Bridge qwen3_next_bridge.py sets attention_output_gate on the stock layer spec). mcore-bridge's
    # GatedSelfAttention / Qwen3NextSelfAttention override the method and slice query and gate together.
    Support("gated-attention-kv-replicated", "megatron-core's own gated attention (attention_output_gate) with TP "
            "above the KV groups", None, {"megatron-core": "0.17.0"}, None,
            "megatron-core 0.16.1 transformer/attention.py SelfAttention.get_query_key_value_tensors slices query, "
            "not gate, for num_query_groups < TP (verl-project/verl#5818: \"shape '[656, 1, 768]' is invalid for input "
            "of size 1007616\" at _apply_output_gate); NVIDIA/Megatron-LM PR #3575 adds the slice (THUDM/slime#2221 "
            "backports it, 2026-07). 0.16.1 is the newest release on PyPI; 0.17.0 as the first with the fix is "
            "inferred, not read from a release"),
    Support("sequence-parallel-moe", "MoE layers with TP > 1 (sequence parallel required)", None,
            {"megatron-core": "0.16.0"}, None,
            "megatron-core transformer/moe/moe_layer.py MoELayer.forward raises in training for TP > 1 without "
            "sequence_parallel (the sequence-parallel rule)"),
    Support("mtp", "multi-token prediction layers (mtp_num_layers)", None, {"megatron-core": MCORE_FLOOR}, None,
            "megatron-core 0.16 transformer/multi_token_prediction.py (MTP blocks; ms-swift 4.6 needs megatron-core "
            ">= 0.16 anyway); any model type: mcore-bridge (1.6.3, 1.6.5) builds mtp_num_layers MTP layers and loads "
            "those the checkpoint has (config.json's num_nextn_predict_layers / mtp_num_hidden_layers), randomly "
            "initialising the rest (bridge/gpt_bridge.py _convert_mtp_layer), which the mtp-layers rule says"),
    Support("fp8-delayed", "FP8 with delayed scaling (TE DelayedScaling)", None, {"transformer-engine": "1.0"},
            (8, 9), "Transformer Engine pytorch/fp8.py check_fp8_support: compute capability >= 8.9 (Ada with "
            "CUDA >= 12.1, Hopper and newer); megatron-core fp8_utils.py get_fp8_recipe"),
    Support("fp8-tensorwise", "FP8 with per-tensor current scaling (TE Float8CurrentScaling)", None,
            {"transformer-engine": "2.2.0"}, (8, 9),
            "megatron-core 0.16 fp8_utils.py get_fp8_recipe: Float8CurrentScaling needs TE >= 2.2.0.dev0; "
            "TE check_fp8_support: compute capability >= 8.9"),
    # CUDA: TE asserts in fp8_autocast (check_recipe_support), i.e. at the first forward step, not at start-up.
    Support("fp8-blockwise", "FP8 with 128-wide block scaling (TE Float8BlockScaling)", None,
            {"transformer-engine": "2.3.0", CUDA: "12.9"}, (9, 0),
            "megatron-core 0.16 fp8_utils.py get_fp8_recipe: Float8BlockScaling needs TE >= 2.3.0.dev0; TE "
            "pytorch/quantization.py _compute_fp8_block_scaling_support: compute capability >= 9.0 and "
            "float(torch.version.cuda) >= 12.9, else \"FP8 block scaled GEMM requires compute capability 9.0 or "
            "higher and CUDA >= 12.9.\" (older TE pytorch/fp8.py check_fp8_block_scaling_support: \"requires Hopper "
            "and CUDA >= 12.9\"); ms-swift examples/megatron/fp8/llm.sh header \"cuda>=12.9\", benchmark.sh "
            "\"test_env: H20, cuda12.9\"; NeMo-RL's FP8 docs report that AssertionError with a torch built for CUDA "
            "12.8 (torch < 2.8)"),
    Support("fp8-mxfp8", "MXFP8 (TE MXFP8BlockScaling)", None, {"transformer-engine": "2.1.0"}, (10, 0),
            "megatron-core 0.16 fp8_utils.py get_fp8_recipe: MXFP8BlockScaling needs TE >= 2.1.0; TE docs (MXFP8): "
            "hardware support first appeared in Blackwell, SM 10.0; TE pytorch/quantization.py "
            "_compute_mxfp8_support: compute capability >= 12.0 (consumer / workstation Blackwell, sm_120 / sm_121) "
            "gives \"MXFP8 (for all gemm layouts) is not supported on 12.0+ architectures yet.\" (still in TE 2.14 "
            "and 2.15; TransformerEngine issue #2668, Megatron-LM issue #4175: AssertionError on an RTX PRO 6000)",
            excluded_capability=((12, 0), None)),
    # FP4: megatron-core 0.16 fp4_utils.py get_fp4_recipe builds NVFP4BlockScaling (fp4_recipe nvfp4, ms-swift's only
    # choice) and raises below TE 2.7.0.dev0; TE asserts the GPU when the first FP4 autocast is entered.
    Support("fp4-nvfp4", "NVFP4 training (fp4_format e2m1; TE NVFP4BlockScaling)", None,
            {"transformer-engine": "2.7.0"}, (10, 0),
            "megatron-core 0.16 fp4_utils.py get_fp4_recipe: NVFP4BlockScaling needs TE >= 2.7.0.dev0; TE "
            "pytorch/quantization.py FP8GlobalStateManager.autocast_enter asserts is_nvfp4_available() for an "
            "NVFP4BlockScaling recipe, and _compute_nvfp4_support: \"Device compute capability 10.0 or higher "
            "required for NVFP4 execution.\" (public source, not installed here); on 12.x (RTX 50 / RTX PRO "
            "Blackwell) the default recipe's random Hadamard transform fails (TE tests/pytorch/distributed "
            "check_nvfp4_support: \"NVFP4BlockScaling is failing on SM120 with hadamard_transform ... CUDA Error: "
            "invalid argument\"; TE PR #3195 support matrix: NVFP4 training with RHT and stochastic rounding on "
            "10.x only), and megatron-core builds NVFP4BlockScaling() with those defaults",
            excluded_capability=((12, 0), None)),
    Support("fp8-recompute-act-norm", "selective recompute of moe_act / layernorm under FP8 current or block scaling",
            None, {"transformer-engine": "2.6.0"}, None,
            "megatron-core 0.16 transformer/transformer_config.py TransformerConfig.__post_init__: \"moe_act and "
            "layernorm recompute for fp8 needs transformer-engine>=2.6.0dev0\" (delayed scaling is refused outright: "
            "the recompute-modules rule)"),
    # The fix's release is bounded from below only: 2.5.0 is the reported failing release and 2.6 predates the fix;
    # whether 2.7 carries it is not verified, so 2.7 is the lowest version this row trusts (planner/loss_fusion_rules.py).
    Support("cross-entropy-te-gradient", "the fused cross entropy of Transformer Engine (cross_entropy_fusion_impl te) "
            "with a nonzero gradient", None, {"transformer-engine": "2.7.0"}, None,
            "NVIDIA/TransformerEngine PR #2139 (\"fix cross entropy vanishing gradients\": element_mul_kernel read the "
            "wrong grad_output pointer; opened 2025-08-29, merged September 2025); NVIDIA/Megatron-LM#1750 "
            "(grad_norm 0, TE 2.5.0); megatron-core 0.16 models/common/language_module/language_module.py "
            "compute_language_model_loss (te_parallel_cross_entropy when cross_entropy_fusion_impl is 'te')"),
    # gpt-oss's attention sinks: mcore-bridge 1.6.3 config/parser.py hf_to_mcore_config sets softmax_type 'learnable'
    # for gpt_oss (parser.py:239), which megatron-core hands Transformer Engine's DotProductAttention.
    Support("attention-sinks-te", "attention sinks (gpt-oss's learnable softmax_type) in Transformer Engine's "
            "DotProductAttention", ("gpt_oss",), {"transformer-engine": "2.8.0"}, None,
            "megatron-core 0.16 extensions/transformer_engine.py TEDotProductAttention.__init__ asserts "
            "is_te_min_version(\"2.8.0\") for a softmax_type other than vanilla (\"Transformer-Engine v... must be >= "
            "2.8.0 to support `softmax_type`.\"), at model build; ms-swift 4.6's Megatron quick start asks only "
            "transformer_engine >= 2.3"),
    # Packing / padding_free are gated by the attention backend, not by a version: the rows say which.
    Support("padding-free-swift", "packing / padding_free on the transformers engine: attn_impl flash_attn or "
            "flash_attention_2|3|4 only", None, {}, None,
            "ms-swift 4.6 swift/arguments/sft_args.py SftArguments._check_padding_free (the packing-attn-impl rule)"),
    Support("padding-free-megatron", "packing / padding_free on the Megatron engine: any attention_backend "
            "(padding_free defaults to true)", None, {}, None,
            "ms-swift 4.6 swift/megatron/arguments/megatron_args.py (padding_free: bool = True; only group_by_length "
            "is refused with it: the packing-modes rule)"),
)
BY_FEATURE = {row.feature: row for row in SUPPORT}
# Model architectures a vLLM release before the row's version does not register ("Model architectures [...] are not
# supported for now" when a colocated rollout engine starts): planner/rollout_rules.py vllm-model judges them.
VLLM_MODEL_FEATURES = ("vllm-qwen3_5", "vllm-qwen3_next", "vllm-qwen3_vl", "vllm-gpt_oss", "vllm-glm4v",
                       "vllm-glm4v_moe")
# Model types an older transformers does not know (planner/linear_attention_rules.py transformers-model judges them).
TRANSFORMERS_MODEL_FEATURES = ("transformers-qwen3_5", "transformers-qwen3_next", "transformers-qwen3_vl")
FP8_RECIPES = ("delayed", "tensorwise", "blockwise", "mxfp8")


def applies(feature: str, model_type: str | None) -> bool:
    row = BY_FEATURE[feature]
    return row.model_types is None or (model_type is not None and model_type.startswith(row.model_types))


def version_gaps(feature: str, versions: Versions) -> list[str]:
    """Why `versions` do not support `feature` ("megatron-core 0.16.1 < 0.18.0", "vllm 0.12.0 >= 0.12.0, which
    removed it"); [] when they do, or when the package's version is unknown (no verdict without a version:
    unknown_gates names those)."""
    row = BY_FEATURE[feature]
    gaps = []
    for package, least in row.needs.items():
        have = versions.get(package)
        if have is not None and have < version_tuple(least):
            gaps.append(f"{versions.describe(package)} < {least}")
    for package, gone in row.removed.items():
        have = versions.get(package)
        if have is not None and have >= version_tuple(gone):
            gaps.append(f"{versions.describe(package)} >= {gone}, which removed it")
    return gaps


def unknown_gates(feature: str, versions: Versions) -> list[str]:
    """The packages `feature` is gated on whose version is not known (neither declared nor installed)."""
    row = BY_FEATURE[feature]
    return [p for p in (*row.needs, *row.removed) if versions.get(p) is None]


def _cc(capability: tuple[int, int]) -> str:
    return f"{capability[0]}.{capability[1]}"


def capability_gap(feature: str, capability: tuple[int, int] | None) -> str | None:
    """Why a GPU of `capability` cannot run `feature`; None when it can (or the capability is unknown)."""
    row = BY_FEATURE[feature]
    if capability is None:
        return None
    capability = tuple(capability)
    if row.compute_capability is not None and capability < row.compute_capability:
        return f"compute capability {_cc(capability)} < {_cc(row.compute_capability)}"
    if row.excluded_capability is not None:
        first, below = row.excluded_capability
        if capability >= first and (below is None or capability < below):
            return (f"compute capability {_cc(capability)} is not supported ({_cc(first)}+"
                    f"{'' if below is None else f' below {_cc(below)}'} excluded)")
    return None


def gpu_needs(feature: str) -> str | None:
    """The GPUs `feature` needs, in words ("compute capability 10.0+, not 12.0+"); None: any."""
    row = BY_FEATURE[feature]
    parts = [f"compute capability {_cc(row.compute_capability)}+"] if row.compute_capability else []
    if row.excluded_capability is not None:
        first, below = row.excluded_capability
        parts.append(f"not {_cc(first)}+" if below is None else f"not {_cc(first)} to below {_cc(below)}")
    return ", ".join(parts) or None


def recipe_features(args: dict, model_type: str | None) -> list[str]:
    """The table's features a recipe uses, read from its raw `args` (doctor reads the recipe unbound)."""
    def on(name):
        return str(args.get(name, "")).lower() in ("true", "1", "yes")

    def size(name):
        try:
            return int(args.get(name) or 1)
        except (TypeError, ValueError):
            return 1

    used = []
    if size("context_parallel_size") > 1 and model_type and model_type.startswith(GATED_DELTANET):
        used.append("cp-linear-attention")
    gdn = bool(model_type and model_type.startswith(GATED_DELTANET))
    # padding_free defaults to true on the Megatron engine, the only one with bridge_backend; packing forces it
    packed = on("packing") or str(args.get("padding_free", "true")).lower() in ("true", "1", "yes")
    if gdn and args.get("bridge_backend") == "megatron-bridge" and packed:
        used.append("packed-linear-attention")
    # only a stated use_vllm: the raw args carry no engine, and the Megatron GRPO default (true) is the plan rule's
    for feature in VLLM_MODEL_FEATURES:
        if model_type and model_type.startswith(BY_FEATURE[feature].model_types) and on("use_vllm"):
            used.append(feature)
    for feature in ("vllm-lora-qwen3_vl", "vllm-lora-qwen3_5"):
        if model_type and model_type.startswith(BY_FEATURE[feature].model_types) and on("use_vllm") \
                and on("vllm_enable_lora") and args.get("tuner_type") == "lora":
            used.append(feature)
    if args.get("mtp_num_layers") not in (None, 0, "0"):
        used.append("mtp")
    if args.get("fp8_format"):
        recipe = str(args.get("fp8_recipe") or "delayed")
        if recipe in FP8_RECIPES:
            used.append(f"fp8-{recipe}")
        modules = args.get("recompute_modules") or []
        # megatron-core reads recompute_modules only under selective granularity (ms-swift's default)
        selective = str(args.get("recompute_granularity") or "selective") == "selective"
        if selective and recipe != "delayed" and {"moe_act", "layernorm"} & set(
                modules if isinstance(modules, list) else [modules]):
            used.append("fp8-recompute-act-norm")
    return used


def unknown_notes(features: list[str], versions: Versions) -> list[str]:
    """One note per feature whose gate could not be checked for want of a version (said, not refused)."""
    notes = []
    for feature in features:
        unknown = unknown_gates(feature, versions)
        if unknown:
            needs = BY_FEATURE[feature].needs
            wanted = ", ".join(f"{p} >= {needs[p]}" if p in needs else f"{p} below {BY_FEATURE[feature].removed[p]}"
                               for p in unknown)
            notes.append(f"{BY_FEATURE[feature].what} needs {wanted}: version unknown here, not checked (declare "
                         f"the cluster's with --target-versions {','.join(f'{p}=X' for p in unknown)})")
    return notes


def unsupported(features: list[str], versions: Versions, capability: tuple[int, int] | None = None) -> list[str]:
    """One line per feature the versions or the GPU do not support."""
    lines = []
    for feature in features:
        row = BY_FEATURE[feature]
        gaps = version_gaps(feature, versions)
        gap = capability_gap(feature, capability)
        if gap:
            gaps.append(gap)
        if gaps:
            lines.append(f"{row.what}: {'; '.join(gaps)} ({row.evidence.split(';')[0]})")
    return lines


def table_markdown() -> str:
    """The support table as markdown (docs/preflight.md)."""
    rows = ["| feature | model types | needs | GPU | evidence |", "|---|---|---|---|---|"]
    for r in SUPPORT:
        needs = ", ".join([*(f"{p} >= {v}" for p, v in r.needs.items()),
                           *(f"{p} < {v} (removed)" for p, v in r.removed.items())])
        cc = gpu_needs(r.feature) or "any"
        rows.append(f"| {r.feature}: {r.what} | {', '.join(r.model_types) if r.model_types else 'any'} | {needs} "
                    f"| {cc} | {r.evidence} |")
    return "\n".join(rows)
