"""Engine megatron: optimizer settings that start and then update the model wrong, with no engine line that refuses
them. Said, not refused (warnings scoped to the reports' conditions and the engine versions read):

- muon-mtp-embedding: Muon (optimizer muon / dist_muon) with MTP layers under pipeline parallelism on megatron-core
  0.16, where the MTP stage's copy of the word embeddings is handed to Muon while the first stage's copy stays with
  the scalar optimizer, so the two replicas of one tied parameter take different updates.
- muon-qkv-split: Muon's per-group Q/K/V split (muon_split_qkv, on by default) on megatron-core 0.16 assumes each
  query group's rows of linear_qkv are [q, k, v]: with gated attention (Qwen3-Next, Qwen3.5/3.6: [q, gate, k, v])
  or fewer query groups than TP ranks, the reshape of the rank's gradient fails in the first optimizer step, or
  (where the sizes happen to divide) splits the rows in the wrong places.

Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config_rules import mtp_layers

# The megatron-core line read below. The fix (Megatron-LM PR #5034, merged 2026-05-28, which also closed #4641's
# PR #4642) tags the MTP stage's embedding; which release first carries it is not pinned down here, so later
# versions are not judged.
MCORE_MUON_MTP_EMBEDDING = (0, 16)


# Evidence: megatron-core 0.16.1 models/gpt/gpt_model.py GPTModel.__init__ builds a LanguageModelEmbedding on every
# stage with pre_process or mtp_process (mcore-bridge 1.6.3's GPTModel subclasses it; bridge_backend megatron-bridge
# builds it too); models/common/language_module/language_module.py LanguageModule.setup_embeddings_and_output_layer
# sets is_embedding_or_output_parameter on the word embeddings only `if self.pre_process`, and marks the MTP stage's
# copy shared_embedding (its gradient is all-reduced with the first stage's). optimizer/muon.py
# get_megatron_muon_optimizer puts every trainable 2-D parameter without is_embedding_or_output_parameter into Muon
# and the rest into the scalar optimizer (Adam), so with PP > 1 (the MTP block sits on the last stage, never the
# first) one tied parameter has a Muon replica and an Adam replica. ms-swift 4.6 calls get_megatron_muon_optimizer
# for both muon and dist_muon (swift/megatron/trainers/base.py get_optimizer_and_scheduler). Report:
# NVIDIA/Megatron-LM#4641 (Muon + PP + MTP: "Divergent optimizer updates across the tied replicas ... which corrupts
# training", and orphan optimizer state at checkpoint save/load; fixed on main by PR #5034).
def muon_mtp_embedding(recipe, args, shape, lay, err, warn, versions):
    optimizer = args.str("optimizer") or "adam"
    if optimizer not in ("muon", "dist_muon") or lay.pp < 2 or not mtp_layers(args):
        return
    if (args.str("tuner_type") or "full") != "full" or args.bool("freeze_llm"):
        return  # the word embeddings are frozen: no optimizer holds either replica
    if versions.mcore[:2] != MCORE_MUON_MTP_EMBEDDING:
        return
    warn("muon-mtp-embedding", f"optimizer {optimizer} with mtp_num_layers {mtp_layers(args)} and "
         f"pipeline_model_parallel_size {lay.pp} on megatron-core {'.'.join(map(str, versions.mcore))}: the MTP "
         "stage's copy of the word embeddings is not tagged as an embedding parameter, so Muon updates it while the "
         "first stage's copy is updated by Adam; the tied replicas drift apart and the checkpoint's optimizer state "
         "does not match (Megatron-LM#4641)", "optimizer",
         hint="optimizer: adam with MTP under pipeline parallelism, pipeline_model_parallel_size 1, or a "
              "megatron-core carrying Megatron-LM PR #5034")


# The megatron-core line read below; the fix for gated attention (Megatron-LM PR #4728, merged 2026-05) and the
# per-head rework for TP > num_query_groups (PR #6326/#7085, open) are not pinned to a release: later versions are not
# judged.
MCORE_MUON_QKV_SPLIT = (0, 16)


def muon_qkv_reshape_fails(rows: int, hidden: int, split: tuple[int, int, int]) -> bool:
    """Whether megatron-core 0.16.1's TensorParallelMuon.orthogonalize raises on a linear_qkv gradient of shape
    (rows, hidden) with qkv_split_shapes `split`: grad.view(rows // sum(split), sum(split), -1), torch.split on dim 1,
    each piece reshape(-1, hidden), and after orthogonalizing view(groups, -1, hidden) -- the shape arithmetic of
    those four calls (tests/test_optimizer_rules.py runs the method itself against it)."""
    total, width = rows * hidden, sum(split)
    groups = rows // width
    if groups == 0 or total % (groups * width):
        return True  # view(groups, width, -1): no such shape (groups 0 has no -1 to infer)
    last = total // (groups * width)
    for part in split:
        elements = groups * part * last
        if elements % hidden or (elements // hidden) % groups:
            return True  # reshape(-1, hidden), then view(groups, -1, hidden)
    return False


# Evidence: megatron-core 0.16.1 optimizer/muon.py get_megatron_muon_optimizer tags every 2-D trainable parameter named
# `linear_qkv.weight` is_qkv and builds TensorParallelMuon with split_qkv=config.muon_split_qkv (OptimizerConfig
# default True; ms-swift 4.6's muon_split_qkv defaults to True and is copied into the config by name) and
# qkv_split_shapes [heads // groups * kv_channels, kv_channels, kv_channels]; TensorParallelMuon.orthogonalize splits
# the rank's gradient with it. The rank's rows are linear_qkv's output over TP (tensor_parallel ColumnParallelLinear):
# (heads + 2 * groups) * kv_channels, plus heads * kv_channels with attention_output_gate, which mcore-bridge 1.6.3
# sets for qwen3_next / qwen3_5 / qwen3_5_moe / qwen4_exp (config/parser.py hf_to_mcore_config; gpts/qwen3_next.py
# Qwen3NextSelfAttention builds 2 * query_projection_size + 2 * kv_projection_size rows). Report:
# NVIDIA/Megatron-LM#4731 (a Qwen3.5-style MoE trained with Muon: linear_qkv rows 4608 = 2048 + 2048 + 256 + 256
# split as [2048, 256, 256], "which makes the reshape in the Muon orthogonalization path invalid"; fixed on main by
# PR #4728); PR #6326 fixes TP > num_query_groups the same way.
def muon_qkv_split(recipe, args, shape, lay, err, warn, versions):
    optimizer = args.str("optimizer") or "adam"
    if optimizer not in ("muon", "dist_muon"):
        return
    if args.has("muon_split_qkv") and not args.bool("muon_split_qkv"):
        return  # Muon orthogonalizes linear_qkv whole
    if (args.str("tuner_type") or "full") != "full" or args.bool("freeze_llm"):
        return  # linear_qkv's weight is frozen: Muon never sees it
    if versions.mcore[:2] != MCORE_MUON_QKV_SPLIT or shape.is_mla or shape.global_head_dim:
        return  # MLA has no linear_qkv; Gemma 4's global layers have a head size of their own (not read here)
    heads, groups, kv = shape.num_attention_heads, shape.num_key_value_heads or shape.num_attention_heads, shape.head_dim
    if not heads or not groups or not kv or heads % groups or lay.tp < 1:
        return
    out = (heads * (2 if shape.gated_attention else 1) + 2 * groups) * kv
    if out % lay.tp:
        return  # heads-tp / kv-groups-tp report the layout
    rows, split = out // lay.tp, (heads // groups * kv, kv, kv)
    why = ("gated attention adds an output-gate block to every query group's rows" if shape.gated_attention else
           f"{groups} query group(s) over {lay.tp} TP ranks leave a rank less than one group")
    fix = "muon_split_qkv: false (orthogonalize linear_qkv whole), or optimizer: adam"
    if muon_qkv_reshape_fails(rows, shape.hidden_size, split):
        err("muon-qkv-split", f"optimizer {optimizer} with muon_split_qkv (on by default) on megatron-core "
            f"{'.'.join(map(str, versions.mcore))}: {shape.name}'s linear_qkv gradient is {rows} x {shape.hidden_size} "
            f"per TP rank, which Muon reshapes into query groups of {sum(split)} rows split {list(split)} -- {why}, "
            "and the reshape raises RuntimeError in the first optimizer step (Megatron-LM#4731)", "optimizer",
            hint=fix)
    elif shape.gated_attention:
        warn("muon-qkv-split", f"optimizer {optimizer} with muon_split_qkv on megatron-core "
             f"{'.'.join(map(str, versions.mcore))}: {shape.name}'s linear_qkv rows per group are [q, gate, k, v] but "
             f"Muon splits them as {list(split)}: the sizes divide, so nothing fails, and Newton-Schulz runs on "
             "blocks that cut across q, gate, k and v (Megatron-LM#4731)", "optimizer", hint=fix)


OPTIMIZER_VERSIONED_RULES = [muon_mtp_embedding, muon_qkv_split]
