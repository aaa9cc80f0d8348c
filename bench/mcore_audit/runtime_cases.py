"""The runtime audit's cases (megatron-core 0.16.1 checks that fire when the model is built or in the first
forward/backward/optimizer step, not in TransformerConfig/parallel_state): (id, file:line function, working fixture,
overrides). Only checks an ms-swift 4.6 recipe can reach are listed; runtime_inventory.py lists every assert/raise in
the audited files (447 in 0.16.1); the rest guard internal invariants (tensor shapes/dtypes, process-group wiring,
checkpoint sharding, inference paths, missing optional packages) that recipe arguments do not set."""
from cases import DENSE, Q3, Q35, ek

RUNTIME_CASES = [
    # experts.py GroupedMLP.forward / TEGroupedMLP.forward: moe_apply_probs_on_input asserts moe_router_topk == 1
    ("rt-probs-on-input-topk", "experts.py:658 TEGroupedMLP.forward", Q3, (ek('"moe_apply_probs_on_input": true'),)),
    # experts.py GroupedMLP.forward: the legacy grouped GEMM asserts bf16
    ("rt-legacy-gg-fp16", "experts.py:225 GroupedMLP.forward", Q3, ("args.fp16=true", "args.bf16=false",
                                                                    ek('"moe_use_legacy_grouped_gemm": true'))),
    # experts.py TEGroupedMLP.__init__: add_bias_linear with bias_dropout_fusion
    ("rt-gg-bias-dropout-fusion", "experts.py:529 TEGroupedMLP.__init__", Q3,
     (ek('"add_bias_linear": true, "bias_dropout_fusion": true'),)),
    # multi_token_prediction.py MultiTokenPredictionLayer._checkpointed_forward: uniform recompute needs 1 layer
    ("rt-mtp-recompute-uniform", "multi_token_prediction.py:846 _checkpointed_forward", Q3,
     ("args.mtp_num_layers=1", "args.recompute_num_layers=2")),
    # token_dispatcher.py MoEFlexTokenDispatcher.__init__: tp*ep > 1 (the start-up audit's moe-flex-tp1ep1, EP1 TP1)
    ("rt-flex-tp1ep1", "token_dispatcher.py:1346 MoEFlexTokenDispatcher.__init__", Q35,
     ("args.expert_model_parallel_size=1", "args.moe_token_dispatcher_type=flex", "args.moe_shared_expert_overlap=false")),
    # token_dispatcher.py MoEFlexTokenDispatcher.set_shared_experts: shared expert overlap with flex
    ("rt-flex-shared-overlap", "token_dispatcher.py:1372 MoEFlexTokenDispatcher.set_shared_experts", Q35,
     ("args.moe_token_dispatcher_type=flex",)),
    # router.py TopKRouter.sinkhorn_load_balancing: aux loss coeff must be 0
    ("rt-sinkhorn-aux", "router.py:238 sinkhorn_load_balancing", Q35,
     ("args.moe_router_load_balancing_type=sinkhorn", "args.moe_aux_loss_coeff=0.01")),
    # moe_layer.py MoELayer.forward: TP>1 without sequence parallel in training
    ("rt-moe-tp-no-sp", "moe_layer.py:380 MoELayer.forward", Q3,
     ("args.tensor_model_parallel_size=2", "args.expert_model_parallel_size=1", ek('"sequence_parallel": false'))),
    # moe_layer.py BaseMoELayer.__init__: experts % EP
    ("rt-experts%ep", "moe_layer.py:101 BaseMoELayer.__init__", Q35, ("args.expert_model_parallel_size=3",)),
    # schedules.py forward_backward_pipelining_without_interleaving: overlap_p2p_comm without VPP
    ("rt-sched-overlap-nonint", "schedules.py:2005 forward_backward_pipelining_without_interleaving", DENSE,
     (ek('"overlap_p2p_comm": true'),)),
    # no case for schedules.py:922 (overlap_p2p_comm with batch_p2p_comm): mcore-bridge 1.6.3 ModelConfig.__post_init__
    # turns batch_p2p_comm off whenever overlap_p2p_comm is on, so no recipe reaches it
    # schedules.py forward_backward_pipelining_with_interleaving: microbatch_group_size_per_vp_stage vs PP
    ("rt-sched-vpp-group", "schedules.py:1003 forward_backward_pipelining_with_interleaving", DENSE,
     ("args.virtual_pipeline_model_parallel_size=2", "args.microbatch_group_size_per_vp_stage=1")),
    # extensions/transformer_engine.py TEDotProductAttention.__init__: deterministic_mode needs
    # NVTE_ALLOW_NONDETERMINISTIC_ALGO=0 (mcore-bridge always builds Transformer Engine attention)
    ("rt-te-deterministic", "transformer_engine.py:1256 TEDotProductAttention.__init__", DENSE,
     (ek('"deterministic_mode": true'), "env.NVTE_ALLOW_NONDETERMINISTIC_ALGO=1")),
    # models/gpt/gpt_model.py GPTModel.__init__: position_embedding_type mrope needs mrope_section (a text model has none)
    ("rt-mrope-no-section", "gpt_model.py:201 GPTModel.__init__", DENSE, (ek('"position_embedding_type": "mrope"'),)),
]
