"""The entries of the data-encoding rules (msswift/template_rules.py): loss_scale names, JSON-valued arguments,
truncation_strategy split, cached datasets with streaming, tool turns under the generation template. spec/ruleset.py
joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

TEMPLATE_RULE_INFO = [
    RuleInfo("loss-scale", "error", "loss_scale is a base strategy (default, last_round, all) and/or '+'-joined names "
             "of ms-swift's loss_scale_map (ms-swift 3.x's combined names such as last_round_with_ignore_empty_think "
             "are none)",
             (code("ms-swift swift/loss_scale/mapping.py: get_loss_scale (loss_scale_map[name], read from the installed "
                   "package)"),
              code("ms-swift swift/template/base.py: Template.loss_scale (built when the first row is encoded)")),
             "both engines; names not judged where an external_plugins file may fill loss_scale_map"),
    RuleInfo("json-argument", "error", "dict-valued arguments given as text (msswift/json_args.py JSON_OBJECT_ARGS: "
             "columns, model_kwargs, megatron_extra_kwargs, ...) that json_repair cannot mend into an object",
             (code("ms-swift swift/utils/utils.py: json_parse_to_dict (file, else json.loads, else json_repair; "
                   "'old:new' mends to '' and raises)"),
              code("ms-swift swift/arguments/base_args/data_args.py: DataArguments.__post_init__ (columns)"),
              Evidence("report", "modelscope/ms-swift#5044", "`--columns old_name:new_name`: an error at start-up "
                       "(the docs ask for JSON)")),
             "the arguments the command has; text that names a path (a JSON file on the training machine) is not "
             "judged; max_memory read by ast.literal_eval first"),
    RuleInfo("cached-dataset-streaming", "error", "cached_dataset / cached_val_dataset excludes streaming",
             (code("ms-swift swift/pipelines/train/sft.py: SwiftSft._prepare_dataset (\"Cached dataset does not "
                   "support streaming.\")"),),
             "both engines, streaming with a cached dataset"),
    RuleInfo("agent-template-name", "warning", "agent_template names an agent template ms-swift registers (else each "
             "row with tools or tool calls raises KeyError and is dropped)",
             (code("ms-swift swift/template/base.py: Template.agent_template (agent_template_map[name])"),
              code("ms-swift swift/agent_template/mapping.py: agent_template_map (read from the installed package)")),
             "both engines, agent_template set; names not judged where an external_plugins file may fill "
             "agent_template_map"),
    RuleInfo("generation-template-tools", "warning", "agent_template or an agent loss_scale with use_chat_template "
             "off: the generation template has no chat turns for tool calls and responses",
             (code("ms-swift swift/template/template_meta.py: TemplateMeta.to_generate_template_meta (chat_sep None)"),
              code("ms-swift swift/agent_template/hermes.py: HermesAgentTemplate._format_tool_responses "
                   "(template_meta.chat_sep.copy())"),
              Evidence("report", "modelscope/ms-swift#8449", "swift pt, Qwen3.5-4B, agent_template qwen3_5, loss_scale "
                       "qwen, tool-call rows: AttributeError 'NoneType' object has no attribute 'copy'")),
             "both engines, use_chat_template off (pt's default or stated) with agent_template or an agent loss_scale "
             "(react, hermes, qwen, agentflan, alpha_umi); the rows are not read here"),
    RuleInfo("model-type-modality", "warning", "a stated model_type whose modality (multimodal or text-only) differs "
             "from the model_type ms-swift's registry matches for the model's name",
             (code("ms-swift swift/model/model_meta.py: get_model_info_meta (a stated model_type wins; no check against "
                   "the matched one)"),
              Evidence("report", "modelscope/ms-swift#4339", "swift pt of a local Qwen2.5-VL-32B-Instruct with "
                       "model_type qwen2_5 (ms-swift 3.x): the text template fails on the rows at encode time")),
             "both engines, model_type stated and the model's name in the registry under a type of the other "
             "modality; not with external_plugins / custom_register_path"),
    RuleInfo("model-type-unmatched", "error", "a local model, ref_model, teacher_model or reward_model whose name "
             "ms-swift's registry does not know, with no model_type for it, whose config.json architecture ms-swift "
             "files under several model_types",
             (code("ms-swift swift/model/model_meta.py: _get_model_info (get_matched_model_types; \"Failed to "
                   "automatically match `model_type`\"), swift/pipelines/train/rlhf.py: "
                   "SwiftRLHF._prepare_single_model (teacher/reward: their own *_model_type, no fallback)"),
              Evidence("report", "modelscope/ms-swift#8472", "swift rlhf gkd, a merged Qwen3-VL-32B checkpoint as "
                       "model and teacher_model, model_type qwen3_vl stated, teacher_model_type not (ms-swift 4.0.2)")),
             "transformers engine; a local directory with config.json and no args.json naming a model_type; not with "
             "external_plugins / custom_register_path (they may register the name); a ref_model only under full "
             "dpo/kto/ppo/grpo when the student itself gets no model_type (ref_model_type falls back to the "
             "student's resolved type: RLHFArguments.__post_init__ after ModelArguments._init_model_info)"),
    RuleInfo("resume-stream-replay", "warning", "resume_from_checkpoint with streaming (and ignore_data_skip off): the "
             "resumed run reads, encodes and drops every batch the checkpoint's steps consumed before its first step",
             (code("transformers trainer.py: Trainer._inner_training_loop (skips global_step x gradient_accumulation_steps "
                   "batches unless ignore_data_skip)"),
              code("ms-swift swift/trainers/mixin.py: SwiftMixin._patch_skip_first_batches / get_train_dataloader "
                   "(an iterable dataset: DataLoaderDispatcher(skip_batches=...))"),
              code("accelerate data_loader.py: DataLoaderDispatcher.__iter__ (fetches each batch, yields from "
                   "skip_batches on)"),
              Evidence("report", "modelscope/ms-swift#3951", "swift sft --streaming true resumed from checkpoint-2000 "
                       "(66 accumulation steps, 27.9M rows) sat at 0%; a small dataset resumed normally")),
             "transformers engine, streaming true, resume_from_checkpoint set, ignore_data_skip not true"),
]
