"""The rules of swift_ext/msswift/multimodal_rules.py: one failing and one passing recipe per case, on both engines
where the refusal is both engines'. Where ms-swift's own code runs here without a model or a GPU (the transformers
engine's get_multimodal_target_regex, _init_lazy_tokenize) it is called on the same input."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import pytest

from swift_ext.msswift import multimodal_rules
from test_msrules import MEG_SFT, SWIFT_GRPO, SWIFT_SFT, problems

VL = "args.model=Qwen/Qwen2.5-VL-7B-Instruct"  # multimodal in ms-swift's registry (qwen2_5_vl)
TEXT = "args.model=Qwen/Qwen3-8B"
SPLIT = "args.truncation_strategy=split"

CASES = [
    # (rule, flag it names, base recipe, overrides that break it, overrides that satisfy it)
    ("lora-multimodal-targets", "freeze_llm", SWIFT_SFT, [VL, "args.freeze_llm=true"],
     [VL, "args.freeze_llm=true", "args.freeze_vit=false"]),
    ("lora-multimodal-targets", "freeze_llm", SWIFT_SFT, [VL, "args.freeze_llm=true"],
     [VL, "args.freeze_llm=true", "args.freeze_aligner=false"]),
    ("lora-multimodal-targets", "freeze_llm", SWIFT_SFT, [VL, "args.freeze_llm=true"], [VL]),
    # a target_regex replaces all-linear; the regex is the user's own
    ("lora-multimodal-targets", "freeze_llm", SWIFT_SFT, [VL, "args.freeze_llm=true"],
     [VL, "args.freeze_llm=true", "args.target_regex=^model.visual.*qkv$"]),
    ("lora-multimodal-targets", "freeze_llm", SWIFT_GRPO, [VL, "args.freeze_llm=true"], [VL]),
    # engine megatron: the Qwen3.6 recipe is multimodal (qwen3_5_moe); lora_llm fixes the freeze flags itself
    ("lora-multimodal-targets", "freeze_llm", MEG_SFT, ["args.tuner_type=lora", "args.freeze_llm=true"],
     ["args.tuner_type=lora", "args.freeze_llm=true", "args.freeze_vit=false"]),
    ("truncation-split", "truncation_strategy", SWIFT_SFT, [TEXT, SPLIT], [TEXT, SPLIT, "command=pt"]),
    # the lengths column is written only by eager tokenization; unset, lazy_tokenize is false under group_by_length
    ("lazy-group-by-length", "lazy_tokenize", SWIFT_SFT, [VL, "args.group_by_length=true", "args.lazy_tokenize=true"],
     [VL, "args.group_by_length=true"]),
    ("lazy-group-by-length", "lazy_tokenize", SWIFT_SFT, [TEXT, "args.group_by_length=true", "args.lazy_tokenize=true"],
     [TEXT, "args.group_by_length=true", "args.lazy_tokenize=false"]),
    # cached_dataset rows carry their lengths (swift export runs SwiftSft._encode_dataset's AddLengthPreprocessor)
    ("lazy-group-by-length", "lazy_tokenize", SWIFT_SFT, [TEXT, "args.group_by_length=true", "args.lazy_tokenize=true"],
     [TEXT, "args.group_by_length=true", "args.lazy_tokenize=true", "args.dataset=null",
      "args.cached_dataset=[/data/cached/train]"]),
    # engine megatron: its sampler reads dataset['lengths'] too, once padding_free is off (on, megatron_args refuses)
    ("lazy-group-by-length", "lazy_tokenize", MEG_SFT, ["args.group_by_length=true", "args.lazy_tokenize=true",
                                                         "args.packing=false", "args.padding_free=false"],
     ["args.group_by_length=true", "args.lazy_tokenize=false", "args.packing=false", "args.padding_free=false"]),
    ("vit-lr-multimodal", "vit_lr", SWIFT_SFT, [TEXT, "args.vit_lr=1e-5"], [VL, "args.vit_lr=1e-5"]),
    ("vit-lr-multimodal", "aligner_lr", SWIFT_SFT, [TEXT, "args.aligner_lr=1e-5"], [TEXT]),
    ("truncation-split", "truncation_strategy", SWIFT_SFT, [VL, SPLIT, "command=pt"],
     [VL, SPLIT, "command=pt", "args.lazy_tokenize=false"]),
    ("truncation-split", "truncation_strategy", SWIFT_SFT, [VL, SPLIT, "command=pt"],
     [VL, SPLIT, "command=pt", "args.streaming=true", "args.max_steps=100"]),
    ("truncation-split", "lazy_tokenize", SWIFT_SFT, [TEXT, SPLIT, "command=pt", "args.lazy_tokenize=true"],
     [TEXT, SPLIT, "command=pt"]),
    # the Qwen3.6 recipe packs, and packing keeps lazy_tokenize off
    ("truncation-split", "truncation_strategy", MEG_SFT, [SPLIT, "command=pt", "args.packing=false"],
     [SPLIT, "command=pt"]),
    ("truncation-split", "truncation_strategy", MEG_SFT, [SPLIT], ["args.truncation_strategy=delete"]),
    # media-env: Qwen-VL-family processors read the budgets with int(); shell arithmetic or a float stops every rank
    ("media-env", "env.MAX_PIXELS", SWIFT_SFT, [VL, "env.MAX_PIXELS=1280*28*28"], [VL, "env.MAX_PIXELS=1003520"]),
    ("media-env", "env.MAX_PIXELS", SWIFT_SFT, [VL, "env.MAX_PIXELS=1003520.0"], [TEXT, "env.MAX_PIXELS=1003520.0"]),
    # a token budget set: compat_qwen_vl_utils never reads the pixel one
    ("media-env", "env.MAX_PIXELS", SWIFT_SFT, [VL, "env.MAX_PIXELS=1e6"],
     [VL, "env.MAX_PIXELS=1e6", "env.IMAGE_MAX_TOKEN_NUM=1024"]),
    ("media-env", "env.FPS_MAX_FRAMES", MEG_SFT, ["env.FPS_MAX_FRAMES=16.0"], ["env.FPS_MAX_FRAMES=16"]),
    ("media-env", "env.FPS", MEG_SFT, ["env.FPS=two"], ["env.FPS=0.5"]),
    # Gemma 4's towers wrap their linears (Gemma4ClippableLinear): explicit names reach them, all-linear does not
    ("lora-tower-wrapper", "target_modules", SWIFT_SFT,
     ["args.model=google/gemma-4-E4B-it", "args.tuner_type=lora", "args.target_modules=[q_proj]"],
     ["args.model=google/gemma-4-E4B-it", "args.tuner_type=lora", "args.target_modules=[all-linear]"]),
]


@pytest.mark.parametrize("rule, flag, base, bad, good", CASES, ids=[f"{c[0]}:{i}" for i, c in enumerate(CASES)])
def test_rule_fails_then_passes(rule, flag, base, bad, good):
    errors, _ = problems(base, *bad)
    assert (rule, flag if flag.startswith("env.") else f"args.{flag}") in errors, errors
    errors, _ = problems(base, *good)
    assert rule not in {r for r, _ in errors}, errors


def test_every_rule_has_a_case():
    source = inspect.getsource(multimodal_rules)
    named = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith('err("')}
    assert named and named <= {c[0] for c in CASES}, named - {c[0] for c in CASES}


def test_swift_regex_asserts_with_everything_frozen():
    # ms-swift's own function on a stand-in model with the three parts: the assertion the rule mirrors, and the
    # regex it builds once one part is left unfrozen.
    from swift.utils.transformers_utils import get_multimodal_target_regex
    import torch.nn as nn

    class VLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.language_model = nn.Sequential(nn.Linear(4, 4))
            self.visual = nn.Sequential(nn.Linear(4, 4))
            self.merger = nn.Linear(4, 4)

    model = VLM()
    arch = SimpleNamespace(language_model=["language_model"], vision_tower=["visual"], aligner=["merger"],
                           generator=[], lm_head=None)
    model.model_meta = SimpleNamespace(model_arch=arch)
    model.model_info = SimpleNamespace(is_moe_model=False)
    with pytest.raises(AssertionError, match="modules"):
        get_multimodal_target_regex(model, freeze_llm=True, freeze_vit=True, freeze_aligner=True)
    assert "language_model" in get_multimodal_target_regex(model, freeze_llm=False)


def test_lazy_tokenize_defaults_true_for_multimodal():
    # BaseArguments._init_lazy_tokenize on the fields it reads: unset lazy_tokenize becomes true for a multimodal
    # model, which is what truncation-split refuses beside split.
    from swift.arguments.base_args.base_args import BaseArguments

    ns = SimpleNamespace(lazy_tokenize=None, cached_dataset=[], cached_val_dataset=[], streaming=False, packing=False,
                         group_by_length=False, model_meta=SimpleNamespace(is_multimodal=True))
    BaseArguments._init_lazy_tokenize(ns)
    assert ns.lazy_tokenize is True
    ns = SimpleNamespace(**{**vars(ns), "lazy_tokenize": None, "packing": True})
    BaseArguments._init_lazy_tokenize(ns)
    assert ns.lazy_tokenize is False


def _internvl_plan(tmp_path, llm_type: str, *extra):
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    model = tmp_path / llm_type
    model.mkdir()
    # InternVL2.5-8B's config.json, trimmed (InternViT-300M + InternLM2.5-7B); only llm_config.model_type changes
    (model / "config.json").write_text(json.dumps({
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "downsample_ratio": 0.5,
        "llm_config": {"architectures": ["InternLM2ForCausalLM"], "model_type": llm_type, "hidden_size": 4096,
                       "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                       "num_key_value_heads": 8, "vocab_size": 92553, "max_position_embeddings": 32768},
        "vision_config": {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "hidden_size": 1024,
                          "num_hidden_layers": 24, "intermediate_size": 4096}}))
    recipe = load_recipe(MEG_SFT, [f"args.model={model}", "args.model_type=internvl_chat", "args.template=internvl2_5",
                                   "args.expert_model_parallel_size=1", "args.mtp_num_layers=null", *extra])
    return {(f.code, f.path) for f in make_plan(recipe).errors}


def test_internvl_language_model(tmp_path):
    assert ("internvl-language-model", "args.model") in _internvl_plan(tmp_path, "internlm2")
    assert "internvl-language-model" not in {c for c, _ in _internvl_plan(tmp_path, "qwen2")}
    assert "internvl-language-model" not in {
        c for c, _ in _internvl_plan(tmp_path, "internlm3", "args.language_model_only=true")}


@pytest.mark.parametrize("value, refused", [("1280*28*28", True), ("1003520.0", True), ("1003520", False)])
def test_ms_swift_compat_qwen_vl_utils_reads_max_pixels_with_int(monkeypatch, value, refused):
    from swift.model.models.qwen import compat_qwen_vl_utils

    monkeypatch.setenv("MAX_PIXELS", value)
    monkeypatch.setenv("IMAGE_MAX_TOKEN_NUM", "")  # empty counts as unset there; undo then removes what it writes
    try:
        compat_qwen_vl_utils(image_patch_size=14)
    except ValueError:
        assert refused
    else:
        assert not refused


INTERNVL_HF = "args.model=OpenGVLab/InternVL3_5-4B-HF"  # model_type internvl, template internvl_hf


@pytest.mark.parametrize("bad, name", [
    ([INTERNVL_HF, "env.VIDEO_MAX_PIXELS=50176"], "env.VIDEO_MAX_PIXELS"),
    ([INTERNVL_HF, "env.FPS_MAX_FRAMES=16", "env.MAX_PIXELS=1003520"], "env.FPS_MAX_FRAMES"),
    (["args.model=OpenBMB/MiniCPM-V-4_5", "env.IMAGE_MAX_TOKEN_NUM=1024"], "env.IMAGE_MAX_TOKEN_NUM"),
])
def test_media_env_unread_for_processors_that_never_read_it(bad, name):
    _, warnings = problems(SWIFT_SFT, *bad)
    assert ("media-env-unread", name) in warnings, warnings


@pytest.mark.parametrize("good", [
    [VL, "env.VIDEO_MAX_PIXELS=50176", "env.FPS_MAX_FRAMES=16"],  # qwen_vl_utils reads them
    ["args.model=Qwen/Qwen3-VL-8B-Instruct", "env.IMAGE_MAX_TOKEN_NUM=1024"],
    [TEXT, "env.MAX_PIXELS=1003520"],  # a text model: no media to size
    [INTERNVL_HF, "env.MAX_NUM=8"],  # not a Qwen-VL budget (InternVL's own name)
    [INTERNVL_HF, "env.VIDEO_MAX_PIXELS="],  # empty: nothing set
])
def test_media_env_unread_passes_where_the_processor_reads_it_or_nothing_is_set(good):
    _, warnings = problems(SWIFT_SFT, *good)
    assert "media-env-unread" not in {c for c, _ in warnings}, warnings


def test_media_env_unread_leaves_the_pixel_budgets_ovis2_5_reads():
    # Ovis2_5Template.init_env_args reads MIN_PIXELS / MAX_PIXELS / VIDEO_MAX_PIXELS (get_env_args); FPS_MAX_FRAMES not
    _, warnings = problems(SWIFT_SFT, "args.model=AIDC-AI/Ovis2.5-9B", "env.MAX_PIXELS=1003520",
                           "env.VIDEO_MAX_PIXELS=401408", "env.FPS_MAX_FRAMES=16")
    assert {n for c, n in warnings if c == "media-env-unread"} == {"env.FPS_MAX_FRAMES"}, warnings
    import inspect
    import re

    from swift.template.templates.qwen import Ovis2_5Template
    read = {n.upper() for n in re.findall(r"get_env_args\('(\w+)'", inspect.getsource(Ovis2_5Template.init_env_args))}
    assert set(multimodal_rules._OTHER_READERS["ovis2_5"]) == read & set(multimodal_rules.QWEN_MEDIA_ENV)


def test_media_env_unread_leaves_moss_vl_video_budgets():
    # MossVLTemplate._processor_env_keys reads the video budgets and frame rate itself; MAX_PIXELS it does not
    meta = multimodal_rules._OTHER_READERS["moss_vl"]
    assert "FPS_MAX_FRAMES" in meta and "MAX_PIXELS" not in meta
    from swift.template.templates.moss import MossVLTemplate
    read = {env.upper() for env, _ in MossVLTemplate._processor_env_keys.values()}
    assert set(meta) <= read


GEMMA4 = "args.model=google/gemma-4-E4B-it"


@pytest.mark.parametrize("targets", ["[q_proj, k_proj, v_proj]", "[gate_proj, up_proj, down_proj]", "[o_proj]"])
def test_lora_tower_wrapper_refused_for_names_the_towers_wrap(targets):
    errors, _ = problems(SWIFT_SFT, GEMMA4, "args.tuner_type=lora", f"args.target_modules={targets}")
    assert ("lora-tower-wrapper", "args.target_modules") in errors, errors


@pytest.mark.parametrize("good", [
    [GEMMA4, "args.tuner_type=lora", "args.target_modules=[all-linear]"],  # ms-swift's language-model regex
    [GEMMA4, "args.tuner_type=lora", "args.target_modules=[q_proj]", "args.target_regex=^model\\.language_model.*q_proj$"],
    [GEMMA4, "args.tuner_type=full"],
    ["args.model=Qwen/Qwen2.5-VL-7B-Instruct", "args.tuner_type=lora", "args.target_modules=[q_proj, v_proj]"],
])
def test_lora_tower_wrapper_passes_near_by(good):
    errors, _ = problems(SWIFT_SFT, *good)
    assert "lora-tower-wrapper" not in {c for c, _ in errors}, errors


def test_the_wrapped_names_are_transformers_gemma4_clippable_linears_and_peft_refuses_them():
    # the table against the installed transformers source, and the installed peft on the installed class
    import re
    from types import SimpleNamespace

    import torch.nn as nn
    from peft import LoraConfig, get_peft_model
    from transformers.models.gemma4 import modeling_gemma4

    source = inspect.getsource(modeling_gemma4)
    wrapped = set(re.findall(r"self\.(\w+) = Gemma4ClippableLinear\(", source))
    assert wrapped == set(multimodal_rules.WRAPPED_TOWER_LINEARS["gemma4"])

    tower = nn.Module()
    tower.q_proj = modeling_gemma4.Gemma4ClippableLinear(SimpleNamespace(use_clipped_linears=False), 8, 8)
    model = nn.Module()
    model.tower = tower
    with pytest.raises(ValueError, match="Gemma4ClippableLinear"):
        get_peft_model(model, LoraConfig(target_modules=["q_proj"], r=2))


INTERNVL = "args.model=OpenGVLab/InternVL3_5-8B"
DDP4 = "launch.gpus_per_node=4"
OWN = "args.template=null"  # the base recipe names qwen3_5; the model's own template decides here


@pytest.mark.parametrize("bad, key", [
    ([INTERNVL, OWN, DDP4, "args.tuner_type=full", "args.freeze_vit=false"], "args.freeze_vit"),
    ([INTERNVL, OWN, DDP4, "args.tuner_type=full", "args.freeze_aligner=false"], "args.freeze_aligner"),
])
def test_ddp_text_only_vision_said(bad, key):
    _, warnings = problems(SWIFT_SFT, *bad)
    assert ("ddp-text-only-vision", key) in warnings, warnings


@pytest.mark.parametrize("good", [
    [INTERNVL, OWN, DDP4, "args.tuner_type=full", "args.freeze_vit=false", "args.deepspeed=zero2"],
    [INTERNVL, OWN, DDP4, "args.tuner_type=full", "args.freeze_vit=false", "args.ddp_find_unused_parameters=true"],
    [INTERNVL, OWN, DDP4, "args.tuner_type=lora", "args.freeze_vit=false"],  # PeftModel: find_unused_parameters on
    [INTERNVL, OWN, "launch.gpus_per_node=1", "args.tuner_type=full", "args.freeze_vit=false"],  # no DDP
    [INTERNVL, OWN, DDP4, "args.tuner_type=full"],  # vision tower and aligner frozen (the defaults)
    [VL, OWN, DDP4, "args.tuner_type=full", "args.freeze_vit=false"],  # Qwen-VL feeds a dummy image on every batch
])
def test_ddp_text_only_vision_quiet(good):
    _, warnings = problems(SWIFT_SFT, *good)
    assert "ddp-text-only-vision" not in {c for c, _ in warnings}, warnings


def test_deepspeed_only_dummy_templates_are_the_installed_ones():
    from swift.template.register import TEMPLATE_MAPPING

    found = set()
    for name, meta in TEMPLATE_MAPPING.items():
        for cls in meta.template_cls.__mro__:
            if "_post_encode" in cls.__dict__:
                source = inspect.getsource(cls._post_encode)
                if "elif is_deepspeed_enabled()" in source or ("plain-text" in source
                                                               and "if is_deepspeed_enabled()" in source):
                    found.add(name)
                break
    assert found == multimodal_rules.DEEPSPEED_ONLY_DUMMY_TEMPLATES


@pytest.mark.parametrize("base, bad, flag", [
    (SWIFT_SFT, [VL, "args.vit_lr=1e-5"], "args.vit_lr"),  # LoRA all-linear, freeze_vit default true
    (SWIFT_SFT, [VL, "args.tuner_type=full", "args.aligner_lr=1e-5"], "args.aligner_lr"),
    (SWIFT_SFT, [VL, "args.freeze_vit=true", "args.freeze_aligner=false", "args.vit_lr=1e-5",
                 "args.aligner_lr=1e-5"], "args.vit_lr"),
    (MEG_SFT, ["args.tuner_type=lora", "args.vit_lr=1e-5"], "args.vit_lr"),
])
def test_vit_lr_frozen_said(base, bad, flag):
    _, warnings = problems(base, *bad)
    assert ("vit-lr-frozen", flag) in warnings, warnings


@pytest.mark.parametrize("base, good", [
    (SWIFT_SFT, [VL, "args.vit_lr=1e-5", "args.freeze_vit=false"]),
    (SWIFT_SFT, [VL, "args.tuner_type=full", "args.aligner_lr=1e-5", "args.freeze_aligner=false"]),
    (SWIFT_SFT, [VL, "args.vit_lr=1e-5", "args.target_modules=[q_proj,qkv]"]),  # explicit names may reach the ViT
    (SWIFT_SFT, [VL, "args.vit_lr=1e-5", "args.trainable_parameters=[visual]", "args.tuner_type=full"]),
    (SWIFT_SFT, [TEXT, "args.vit_lr=1e-5"]),  # vit-lr-multimodal's refusal, not this warning
    (MEG_SFT, ["args.tuner_type=lora_llm", "args.vit_lr=1e-5"]),  # lora_llm trains the towers in full
])
def test_vit_lr_frozen_quiet(base, good):
    _, warnings = problems(base, *good)
    assert "vit-lr-frozen" not in {c for c, _ in warnings}, warnings
