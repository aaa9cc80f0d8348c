"""The entries of the megatron-core config refusals reached through ms-swift's model config
(planner/mcore_config_rules.py). spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import GMC, MS, TC, Evidence, RuleInfo, code

MCORE_CONFIG_RULE_INFO = [
    RuleInfo("recompute-modules", "error", "selective recompute_modules: known names; moe_act needs moe_grouped_gemm; "
             "moe_act/layernorm not with FP8 delayed scaling (ms-swift's default fp8_recipe); mla_up_proj needs MLA; "
             "shared_experts not with moe_shared_expert_overlap; moe_layer_recompute not with full granularity",
             (code(TC + " (the recompute_granularity == \"selective\" block; moe_layer_recompute)"), code(GMC)),
             "engine: megatron, recompute_granularity selective (ms-swift's default; moe_layer_recompute: full, or "
             "a megatron_extra_kwargs recompute_modules string without \"moe\", which its append fails on)"),
    RuleInfo("moe-deepep", "error", "moe_enable_deepep needs the flex dispatcher; the flex dispatcher's DeepEP backend "
             "(its default) excludes moe_pad_expert_input_to_capacity",
             (code(TC + " (\"DeepEP backend is only supported with flex token dispatcher\"; \"Flex token dispatcher "
                    "with deepep backend does not support moe_pad_expert_input_to_capacity\")"), code(GMC)),
             "engine: megatron, moe_enable_deepep or moe_token_dispatcher_type flex"),
    RuleInfo("moe-load-balancing", "error", "one moe_aux_loss_coeff per listed load balancing type; "
             "moe_expert_capacity_factor only with aux_loss/seq_aux_loss/global_aux_loss/none; "
             "moe_pad_expert_input_to_capacity needs moe_expert_capacity_factor; sinkhorn takes no moe_aux_loss_coeff",
             (code(TC + " (moe_aux_loss_coeff / moe_expert_capacity_factor / moe_pad_expert_input_to_capacity)"),
              code("megatron-core transformer/moe/router.py: TopKRouter.sinkhorn_load_balancing (\"Sinkhorn routing "
                   "does not support aux loss.\", first training step)"),
              code(f"{MS} MegatronArguments.__post_init__ (one-item lists become their item)"), code(GMC)),
             "engine: megatron, recipes setting moe_router_load_balancing_type, moe_expert_capacity_factor or "
             "moe_pad_expert_input_to_capacity"),
    RuleInfo("moe-bias-etp", "error", "MoE experts with biases (gpt-oss) need expert_tensor_parallel_size 1",
             (code(TC + " (\"Bias in Moe is only supported when ETP==1\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py:237 hf_to_mcore_config (add_bias_linear for "
                    "gpt_oss; 1.6.5 :318)")),
             "engine: megatron, gpt-oss language models, expert_tensor_parallel_size > 1"),
    RuleInfo("recompute-chunks", "error", "full recompute with recompute_method uniform under bridge_backend "
             "megatron-bridge: recompute_num_layers divides the decoder layers of every model chunk (pipeline "
             "stage, or virtual stage; as an explicit pipeline_model_parallel_layout or the account_for_* splits "
             "place them)",
             (code("megatron-core transformer/transformer_block.py: TransformerBlock._checkpointed_forward (uniform: "
                    "custom(layer_idx, layer_idx + recompute_num_layers) runs _get_layer past the chunk's last layer)"),
              code("megatron-core transformer/transformer_block.py: get_num_layers_to_build (layout stages, "
                    "account_for_embedding/loss_in_pipeline_split)"),
              Evidence("report", "NVIDIA/Megatron-LM#1807", "recompute_method uniform with recompute_num_layers not a "
                       "factor of num_layers_per_pipeline_rank: list index out of range"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/modules/transformer_block.py:205 "
                    "TransformerBlock._checkpointed_forward (chunk_end = min(..., num_layers_per_pipeline_rank), the same "
                    "line in 1.6.5; wheels 1.5.0 to 1.6.5 alike: why the default backend is out of scope)"), code(GMC)),
             "engine: megatron, bridge_backend megatron-bridge (megatron-core's TransformerBlock), "
             "recompute_granularity full, recompute_method uniform; not Nemotron-H (a Mamba stack in Megatron-Bridge)"),
    RuleInfo("recompute-mtp", "error, warning", "full recompute with MTP layers: recompute_method uniform needs "
             "recompute_num_layers 1 (error); block leaves the MTP layers un-recomputed (warning)",
             (code("megatron-core transformer/multi_token_prediction.py: MultiTokenPredictionLayer._checkpointed_forward "
                    "(uniform asserts recompute_num_layers == 1; block warns and skips recompute)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/modules/mtp_layer.py:272 / :277 "
                    "MultiTokenPredictionLayer._checkpointed_forward (the same two branches; 1.6.5 :292 / :297)"),
              code(GMC)),
             "engine: megatron, mtp_num_layers > 0, recompute_granularity full"),
    RuleInfo("dsa-attention", "error", "DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5) runs without context parallel "
             "and without RoPE fusion",
             (code(TC + " (experimental_attention_variant == \"dsa\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py:196 / :256 hf_to_mcore_config "
                    "(experimental_attention_variant 'dsa' for deepseek_v32 / glm_moe_dsa; 1.6.5 :228 / :337)")),
             "engine: megatron, model types deepseek_v32 / glm_moe_dsa, context_parallel_size > 1 or apply_rope_fusion"),
    RuleInfo("mrope-section", "error", "position_embedding_type mrope from megatron_extra_kwargs on a text model whose "
             "config.json has no mrope_section: megatron-core's GPTModel asserts one when the model is built",
             (code("megatron-core models/gpt/gpt_model.py: GPTModel.__init__ (\"mrope require mrope_section setting, "
                   "but we got None from TransformerConfig\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/gpt_model.py GPTModel.__init__ (calls it with the config's "
                   "position_embedding_type) / config/parser.py hf_to_mcore_config (mrope_section from the rope section)"),
              code(GMC + "; megatron_extra_kwargs last")),
             "engine: megatron, megatron_extra_kwargs position_embedding_type 'mrope' on a text model (no vision "
             "tower), no mrope_section in config.json or megatron_extra_kwargs"),
]
