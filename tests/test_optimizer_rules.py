"""muon-mtp-embedding (planner/optimizer_rules.py): fires on Megatron-LM#4641's setting (Muon + PP + MTP, full
training, megatron-core 0.16) and stays quiet on the nearby settings where no optimizer holds a second, untagged
replica of the word embeddings. The engine fact it rests on is read from the installed megatron-core."""

from __future__ import annotations

import inspect

import pytest

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

MUON_MTP = FIXTURES / "issues" / "megatron-lm-4641-muon-pp-mtp-embedding.yaml"


def _plan(path, overrides=(), **kwargs):
    plan = make_plan(load_recipe(path, list(overrides)), oracle=False, **kwargs)
    return plan.errors, plan.warnings


def _codes(findings, code):
    return [f for f in findings if f.code == code]


@pytest.mark.parametrize("overrides", [
    [],                                                                     # the report's setting (dist_muon)
    ["args.optimizer=muon"],                                                # the non-distributed Muon alike
    ["args.mtp_num_layers=2"],
])
def test_muon_with_mtp_under_pipeline_parallel_is_warned(overrides):
    errors, warns = _plan(MUON_MTP, overrides)
    assert any(w.path == "args.optimizer" for w in _codes(warns, "muon-mtp-embedding")), warns
    assert not _codes(errors, "muon-mtp-embedding")


@pytest.mark.parametrize("overrides", [
    ["args.optimizer=adam"],                                                # the fix
    ["args.pipeline_model_parallel_size=1"],                                # the MTP block shares the first stage
    ["args.mtp_num_layers=0"],                                              # no MTP block: no second replica
    ["args.tuner_type=lora"],                                               # embeddings frozen: in no optimizer
    ["env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.18.0"],                 # a later line is not judged
])
def test_muon_mtp_embedding_is_quiet_where_no_replica_is_split(overrides):
    _, warns = _plan(MUON_MTP, overrides)
    assert not _codes(warns, "muon-mtp-embedding"), warns


def test_the_installed_megatron_core_tags_the_embedding_only_on_the_first_stage():
    """The rule's premise, read from the installed megatron-core: the embedding tag is set under pre_process only,
    the MTP stage builds an embedding of its own, and Muon takes every untagged 2-D parameter."""
    pytest.importorskip("megatron.core")
    from megatron.core.models.common.language_module.language_module import LanguageModule
    from megatron.core.models.gpt import gpt_model
    from megatron.core.optimizer import muon

    setup = inspect.getsource(LanguageModule.setup_embeddings_and_output_layer)
    tag = "self.embedding.word_embeddings.weight.is_embedding_or_output_parameter = True"
    assert tag in setup
    assert setup[:setup.index(tag)].rstrip().endswith("if self.pre_process:")
    assert "if self.pre_process or self.mtp_process:" in inspect.getsource(gpt_model.GPTModel.__init__)
    split = inspect.getsource(muon.get_megatron_muon_optimizer)
    assert "not getattr(param, 'is_embedding_or_output_parameter', False)" in split


# --- muon-qkv-split --------------------------------------------------------------------------------------------------

QKV_SPLIT = FIXTURES / "issues" / "megatron-lm-4731-muon-qkv-split-gated-attention.yaml"


@pytest.mark.parametrize("overrides", [
    [],                                                                     # the report's 4608 rows per rank (TP=2)
    ["args.optimizer=muon", "args.expert_model_parallel_size=8"],
    ["args.tensor_model_parallel_size=1", "args.sequence_parallel=false"],  # 9216 rows split by 2560 fails too
])
def test_muon_split_of_gated_qkv_is_refused(overrides):
    errors, _ = _plan(QKV_SPLIT, overrides)
    assert any(e.path == "args.optimizer" for e in _codes(errors, "muon-qkv-split")), errors


@pytest.mark.parametrize("overrides", [
    ["args.muon_split_qkv=false"],                                          # the fix
    ["args.optimizer=adam"],
    ["args.tuner_type=lora"],                                               # linear_qkv frozen
    ["env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.18.0"],                 # a later line is not judged
    ["args.model=Qwen/Qwen3-30B-A3B"],                                      # plain [q, k, v] groups, TP <= groups
])
def test_muon_qkv_split_is_quiet_where_the_groups_are_q_k_v(overrides):
    errors, warns = _plan(QKV_SPLIT, overrides)
    assert not _codes(errors, "muon-qkv-split") and not _codes(warns, "muon-qkv-split"), (errors, warns)


@pytest.mark.parametrize("heads, groups, kv, hidden, tp, gated", [
    (16, 2, 256, 2048, 2, True),    # Qwen3.5-35B-A3B, the report
    (16, 2, 256, 2048, 1, True),
    (16, 4, 256, 2560, 1, True),    # Qwen3.5-4B
    (16, 2, 256, 2048, 4, True),    # TP past the KV groups
    (8, 4, 128, 1024, 1, True),     # two query heads a group: the sizes divide, it runs and mis-splits
    (28, 4, 128, 3584, 2, False),   # Qwen2.5-7B, ms-swift's muon.sh: fine
    (64, 8, 128, 5120, 8, False),
    (64, 8, 128, 5120, 16, False),  # more TP ranks than KV groups: no whole group on a rank
    (32, 32, 128, 4096, 4, False),  # MHA
])
def test_the_reshape_verdict_matches_megatron_cores_muon(heads, groups, kv, hidden, tp, gated):
    """muon_qkv_reshape_fails against megatron-core 0.16.1's own TensorParallelMuon.orthogonalize, run on a gradient of
    the rank's linear_qkv shape with the split shapes get_megatron_muon_optimizer computes (the Newton-Schulz step
    itself, from emerging-optimizers, replaced by the identity: it keeps the shape)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("megatron.core")
    from types import SimpleNamespace

    from megatron.core.optimizer.muon import TensorParallelMuon
    from swift_ext.planner.optimizer_rules import muon_qkv_reshape_fails

    split = (heads // groups * kv, kv, kv)
    rows = (heads * (2 if gated else 1) + 2 * groups) * kv // tp
    fake = SimpleNamespace(pg_collection=None, mode="blockwise", split_qkv=True, is_qkv_fn=lambda p: True,
                           qkv_split_shapes=split, scaled_orthogonalize_fn=lambda g, group, dim: g)
    grad = torch.zeros(rows, hidden)
    try:
        TensorParallelMuon.orthogonalize(fake, grad, grad)
        raised = False
    except RuntimeError:
        raised = True
    assert muon_qkv_reshape_fails(rows, hidden, split) == raised
