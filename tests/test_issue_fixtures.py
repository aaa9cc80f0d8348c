"""Real failed launches from public ms-swift / Megatron-LM issues, rebuilt as recipes
(tests/fixtures/issues/*.yaml): `plan` must refuse each one with an error on the flag the report
blames, and the one-flag fix the report found must clear that error. The header of each file gives
the issue, the error it hit, the culprit flag and the fix; `expect: warning` marks a failure `plan` can
only warn about (a report-scoped rule), which must then be a warning on the culprit flag.

Published working setups (tests/fixtures/working/*.yaml, each citing the script or recipe it rebuilds)
must plan ok, with no warning beyond the advisory kinds listed in ADVISORY.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
CASES = sorted(ISSUES.glob("*.yaml"))
WORKING = sorted((FIXTURES / "working").glob("*.yaml"))  # files/: what a workdir header points at
# Warnings a working setup may carry: where its data lives, memory headroom, resumability, the
# MTP head a published script leaves untrained (issue 21: said, not refused), and a rollout engine shorter
# than max_length + max_completion_length, which bites only on prompts longer than the data's (ms-swift's
# own GRPO examples set vllm_max_model_len to max_length with short math prompts), and a max_length past the
# positions config.json covers, which likewise bites only on samples longer than those positions (ms-swift's own
# sequence_parallel.sh trains Qwen2.5-3B-Instruct, 32768 positions, at max_length 65536 on LongAlpaca-12k).
# kv-groups-tp as a warning says TP past the KV groups is legal on megatron-core >= 0.16 and costs KV memory per rank
# (ms-swift's own Qwen3.5-35B-A3B packing example runs TP=4 over 2 KV groups). sequence-parallel as a warning (never for
# MoE, where it is an error) says a dense model at TP > 1 without SP keeps whole activations on each TP rank: memory
# advice (NeMo-RL's Megatron distillation recipe runs TP=2 with sequence_parallel off). moe-a2a-overlap as a warning
# says the EP all-to-all overlap, published running on Megatron-Bridge's own trainer, reads as a TypeError under
# ms-swift 4.6's forward_step (from the source, not seen run). tp-comm-overlap likewise says that TE's userbuffers,
# sized once for max_length x micro_batch_size, take only micro-batches of exactly that many tokens, which ms-swift's
# collator gives only when every sample or pack is max_length long (the data decides; Megatron-Bridge's recipes that
# publish it run fixed-length pretraining batches on their own trainer). attention-flash-mla says that MLA under plain
# attention_backend flash on an sm90+ GPU runs only where flash-attn 3/4 is installed on the training machine (the
# published MLA setups on H100/H20/B200 ran with it, or on their framework's auto backend). moe-hybridep-lengths
# likewise says that HybridEP needs one token count on every rank of the expert group, which ms-swift's batches have
# only when every sample or pack is max_length long (the published HybridEP recipes run fixed-length mock-data
# pretraining on Megatron-Bridge's or Megatron-LM's own trainer). cuda-graph-te says that TransformerEngine CUDA
# graphs, captured by Megatron-LM's training loop in the published recipes, are never captured by ms-swift's trainer:
# the rebuilt run trains, eagerly.
# tp-comm-overlap-fp8 as a warning says the training machine's Transformer Engine decides: ms-swift 4.6's userbuffer
# set-up reads an argument it lacks on TE >= 2.7 (Megatron-Bridge's FP8 recipes that publish tp_comm_overlap run on
# Bridge's own trainer; with a declared TE >= 2.7 plan refuses them).
# megatron-run-length as a warning says ms-swift 4.6's Megatron trainer needs train_iters or num_train_epochs: the RL
# frameworks' setups (slime, NeMo-RL, verl) count rollouts, and their translations here leave the length open.
# rl-moe-aux-loss says a MoE GRPO run keeps the router's load-balancing loss, which NeMo-RL PR #3169 saw cost
# accuracy: it runs, and verl's Qwen3-VL-30B-A3B example keeps it (0.01) on purpose, where the other RL recipes set 0.
# rollout-param-gather says overlap_param_gather makes ms-swift 4.6 sync un-gathered shards to vLLM: NeMo-RL's
# recipes that set it run there because NeMo-RL forces the all-gather before refit (NVIDIA-NeMo/RL PR #4086), which
# their ms-swift translations here do not get -- the warning is right on them, and they still plan.
# grpo-dynamic-opd as a warning says the installed ms-swift 4.6 trainer counts a teacherless GRPO as dynamic
# self-distillation and its loss refuses loss_type real/fipo there; ms-swift's published real/fipo examples (from its
# main branch) are written for that path, so plan says it and leaves the run to decide.
# mtp-checkpoint-tp says mcore-bridge 1.6.3's own MTP layer (tp_group None) makes the first full-weight mcore save fail
# its sharding check under TP > 1: the published MTP setups at TP > 1 (Megatron-Bridge, NeMo-RL, verl) ran megatron-core's
# MTP layer on their own trainers, whose sharded_state_dict falls back to the TP group; rebuilt for ms-swift the
# warning is right on them, and they still plan.
# resume-source says finetune false without mcore_model restores no optimizer, scheduler or RNG state: true, and
# harmless on a run that starts fresh (ms-swift#7847's Megatron SFT of Qwen3-VL-4B posted finetune false with no
# checkpoint to resume, and trained from iteration 0).
# vllm-mm-cache says vLLM's multimodal processor cache can crash a colocated VL rollout late in a run
# (vllm-project/vllm#31404, ms-swift#9863): ms-swift's own VL GRPO examples leave it on and finish their short demos.
# vllm-cascade-attn says ms-swift keeps vLLM's cascade attention on (vllm_disable_cascade_attn false) for long GRPO
# generations on a non-Hopper card, where vLLM's FlashAttention-2 cascade path drifts from the trainer (vllm#19384,
# #22103; verl PR #3595): the published A100/L20/B200 setups train, and the drift is a quantity, not a failure.
# teacher-server-topk says a teacher server must be started with max_logprobs >= gkd_logits_topk: the published top-64
# GKD setups start theirs that way (`swift deploy --max_logprobs 64`, `vllm serve --max-logprobs 64`), which a training
# recipe cannot show.
# lora-all-linear-experts says ms-swift 4.6 expands all-linear to the nn.Linear layers, which leave transformers 5's
# fused routed experts (Qwen3-MoE, Qwen3.5-MoE, gpt-oss) out: ms-swift's own MoE LoRA examples, written when
# transformers 4 kept one Linear per expert, still run on 4.6 -- with their experts frozen; the warning is right on
# them, and they still plan.
# lora-param-wrapper / lora-fused-pair, judged with this machine's transformers 5 only, say that peft 0.20 refuses
# dropout (or half a pair) on fused experts: ms-swift's Qwen3-Next LoRA example was written for transformers 4.57, where
# it runs, and plans as published; on the installed stack the warning is right.
ADVISORY = {"grpo-dynamic-opd", "vllm-mm-cache", "dataset", "memory", "resume", "launch", "mtp-untrained", "rollout-length",
            "max-positions", "kv-groups-tp",
            "sequence-parallel", "moe-a2a-overlap", "tp-comm-overlap", "attention-flash-mla",
            "moe-hybridep-lengths", "tp-comm-overlap-fp8", "cuda-graph-te",
            "megatron-run-length", "rl-moe-aux-loss",
            "rollout-param-gather", "mtp-checkpoint-tp", "resume-source", "vllm-cascade-attn", "teacher-server-topk",
            "lora-all-linear-experts", "lora-param-wrapper", "lora-fused-pair"}


def header(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        out[key] = value.strip()
    return out


def plan(path: Path, *overrides: str):
    # a `workdir` header names the directory the report's relative paths (a plugin file) are read from: plan there
    workdir = header(path).get("workdir")
    with contextlib.chdir(path.parent / workdir) if workdir else contextlib.nullcontext():
        return make_plan(load_recipe(path, list(overrides)), oracle=False)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_plan_catches_the_failed_launch_naming_the_culprit(path):
    meta = header(path)
    assert meta["source"].startswith("https://github.com/"), "each fixture cites its public issue"
    result = plan(path)
    found = "warnings" if meta.get("expect") == "warning" else "errors"
    if found == "errors":
        assert not result.ok
    assert meta["culprit"] in {p.path for p in getattr(result, found)}, [p.render() for p in getattr(result, found)]
    fixed = plan(path, *meta["fix"].split())
    assert meta["culprit"] not in {p.path for p in getattr(fixed, found)}, [p.render() for p in getattr(fixed, found)]


def _caught(path: Path) -> bool:
    result = plan(path)
    meta = header(path)
    return meta["culprit"] in {e.path for e in result.errors + (result.warnings if meta.get("expect") == "warning" else [])}


@pytest.mark.parametrize("path", WORKING, ids=lambda p: p.stem)
def test_published_working_setup_plans_ok_without_spurious_warnings(path, request):
    meta = header(path)
    assert meta["source"].startswith("https://github.com/"), "each working setup cites the script it rebuilds"
    if "xfail" in meta:
        request.applymarker(pytest.mark.xfail(reason=meta["xfail"], strict=True))
    result = plan(path)  # from its workdir: the script's relative paths (a .txt system prompt) are read from there
    assert result.ok, [p.render() for p in result.errors] + [result.memory and result.memory.verdict]
    spurious = [w.render() for w in result.warnings if w.code not in ADVISORY]
    assert not spurious, spurious


def test_catch_rate():
    caught = [p.stem for p in CASES if _caught(p)]
    print(f"\nreal failed launches caught naming the culprit flag: {len(caught)}/{len(CASES)}")
    assert len(CASES) >= 10 and len(caught) / len(CASES) >= 0.9


def test_a_working_setup_that_targets_newer_megatron_core_is_refused_on_the_installed_one():
    # NeMo-RL's Qwen3.5-35B-A3B GRPO at CP=2 runs on megatron-core >= 0.18 (ms-swift#9535); its fixture names that
    # target. Planned for 0.16.1, Gated DeltaNet under CP is refused on the flag that needs the newer release.
    path = FIXTURES / "working" / "nemo-rl-grpo-qwen35-35b-a3b-ep16-tp2-cp2-mcore018.yaml"
    assert plan(path).ok
    older = plan(path, "env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.16.1")
    assert [(e.code, e.path) for e in older.errors] == [("linear-attention-cp", "args.context_parallel_size")]
