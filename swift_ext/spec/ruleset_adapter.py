"""The entries of engine swift's adapter and resume warnings (msswift/adapter_setup_rules.py): what an adapter leaves
frozen, and what resume_only_model still restores. spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

ADAPTER_RULE_INFO = [
    RuleInfo("new-tokens-frozen", "warning", "new_special_tokens with an adapter tuner and neither the embedding nor "
             "the output head among the trained modules: the new tokens' rows keep their initial values",
             (code("ms-swift swift/model/register.py: ModelLoader._add_new_special_tokens (add_special_tokens, then "
                   "resize_token_embeddings)"),
              code("ms-swift swift/pipelines/train/tuner.py: TunerMixin.prepare_model (model.requires_grad_(False) "
                   "for an adapter; modules_to_save/all-embedding in get_modules_to_save reopen modules)"),
              Evidence("report", "modelscope/ms-swift#5998", "LoRA SFT of Qwen3-32B with five new emotion tokens "
                       "opening each reply: the tuned model emits <tool_response> or garbage there; the maintainers: "
                       "train embedding and lm_head via modules_to_save (same in ms-swift#5302)")),
             "both engines, tuner_type not full, new_special_tokens given, a new adapter (no resume_from_checkpoint / "
             "adapters), and no embedding or head name (all-embedding, embed_tokens, lm_head, word_embeddings, "
             "output_layer, ...) in modules_to_save, target_modules or target_regex, nor trainable_parameters; plan "
             "cannot see the tokenizer, so tokens it already has (their rows are trained) are warned about too"),
    RuleInfo("resume-only-model-step", "warning", "resume_only_model without ignore_data_skip: the weights load, and "
             "the checkpoint's global step and data position are restored too, so the run skips that many steps "
             "and ends at once when they reach its total",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.__init__ (clears resume_from_checkpoint only when "
                   "ignore_data_skip too) / _load_optimizer_and_scheduler / _load_rng_state (skipped)"),
              code("transformers trainer.py: Trainer._init_training_state (TrainerState.load_from_json of "
                   "trainer_state.json; epochs and steps to skip unless ignore_data_skip)"),
              Evidence("report", "modelscope/ms-swift#6084", "LoRA on Qwen3-VL-30B-A3B continued from checkpoint-35200 "
                       "on new data of 30255 steps with resume_only_model: 'global_step/max_steps': '35200/30255', "
                       "train_loss 0.0, nothing trained")),
             "engine: swift, command sft/pt/rlhf, resume_only_model true, resume_from_checkpoint set, ignore_data_skip "
             "not true, streaming off (resume-stream-replay covers streamed data)"),
    RuleInfo("peft-config", "error", "the installed peft 0.20's config checks that prepare_adapter reaches: "
             "init_weights loftq (no loftq_config), corda (no preprocess_corda), orthogonal with an odd "
             "lora_rank or a name peft does not know, AdaLoRA with use_dora, "
             "adalora_orth_reg_weight < 0 or adalora_tinit >= max_steps - adalora_tfinal, BOFT with both or neither "
             "of boft_block_size/boft_block_num, fourier_n_frequency <= 0, tuner_type bone (no peft.BoneConfig)",
             (code("ms-swift swift/pipelines/train/tuner.py: prepare_adapter (builds LoraConfig/AdaLoraConfig/"
                   "BOFTConfig from the flags; bone branch imports peft.BoneConfig)"),
              code("peft 0.20 peft/tuners/lora/config.py: LoraConfig.__post_init__ (loftq_config required)"),
              code("peft 0.20 peft/tuners/lora/layer.py: LoraLayer.reset_lora_parameters (Unknown initialization) / "
                   "corda_init (eigens from preprocess_corda, which ms-swift never calls) / orthogonal_init (even "
                   "rank)"),
              code("peft 0.20 peft/tuners/fourierft/layer.py: FourierFTLayer.update_layer (n_frequency > 0)"),
              code("peft 0.20 peft/tuners/adalora/config.py: AdaLoraConfig.__post_init__ (DoRA, orth_reg_weight, "
                   "tinit < total_step - tfinal; total_step from ms-swift's calculate_max_steps)"),
              code("peft 0.20 peft/tuners/boft/config.py: BOFTConfig.__post_init__ (block size xor block num)")),
             "engine: swift, command sft/pt/rlhf, a new adapter (no resume_from_checkpoint / adapters); the "
             "init_weights checks only under tuner_type lora/longlora with tuner_backend peft and not "
             "use_swift_lora (loftq under adalora too: AdaLoraConfig runs LoraConfig.__post_init__); the AdaLoRA schedule only with max_steps stated (otherwise total_step comes from the "
             "dataset's length)"),
    RuleInfo("peft-target-modules", "error, warning", "target_modules must name at least one module of the model",
             (code("peft 0.20 peft/tuners/tuners_utils.py: BaseTuner.inject_adapter (\"Target modules ... not found "
                   "in the base model\")"),
              code("ms-swift swift/pipelines/train/tuner.py: prepare_adapter (get_target_modules, then "
                   "Swift.prepare_model)"),
              code("ms-swift swift/pipelines/train/tuner.py: TunerMixin.prepare_model (a tuner_plugin tuners_map entry "
                   "is used instead of prepare_adapter)"),
              code("swift-ext swift_ext/planner/shape_lookup.py: _bundled_by_directory_name (a guessed shape)")),
             "engine: swift, command sft/pt/rlhf, tuner_type lora/longlora (peft backend, not use_swift_lora)/"
             "adalora/vera/boft/fourierft, a new adapter, plain target_modules names (no all-linear, dots or regex, "
             "no target_regex/target_parameters, no external_plugins/custom_register_path, which may register the "
             "loader or the tuner), text-only dense llama/qwen2/qwen3/mistral models; none of the names is a module "
             "name segment of that architecture. A warning where the shape is a bundled config guessed from the "
             "directory's name (the path may hold another architecture)"),
]
