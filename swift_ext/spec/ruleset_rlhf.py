"""The entries of the RLHF algorithm arguments the trainers read (msswift/rlhf_rules.py).
spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import RLHF, SFT, Evidence, RuleInfo, code

RLHF_ARGUMENT_RULE_INFO = [
    RuleInfo("zero3-generation-gather", "warning", "ds3_gather_for_generation false under DeepSpeed ZeRO-3 with "
             "generation on the trained model (GRPO / on-policy GKD without vLLM, sft predict_with_generate): every "
             "decoding step all-gathers the sharded weights, and the first step can take hours",
             (code("ms-swift swift/utils/transformers_utils.py: unwrap_model_for_generation (ZeRO-3: "
                   "GatheredParameters once per generate unless gather_deepspeed3_params is false)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._generate_completions "
                   "(gather_deepspeed3_params=args.ds3_gather_for_generation without vLLM)"),
              code("ms-swift swift/trainers/seq2seq_trainer.py: Seq2SeqTrainer.prediction_step (the same for "
                   "predict_with_generate)"),
              Evidence("report", "huggingface/trl#3858", "GRPO on 8 GPUs, ZeRO-3 with CPU optimizer offload, "
                       "transformers generation, max_completion_length 4096, ds3_gather_for_generation False: step 0 "
                       "after an hour, about 10 hours in all; the maintainer: intended, keep the default True or use "
                       "vLLM")),
             "engine: swift, a DeepSpeed config of ZeRO stage 3 readable here, ds3_gather_for_generation false; "
             "rlhf_type grpo, or gkd with lmbda > 0, without use_vllm; or sft with predict_with_generate"),
    RuleInfo("loss-type", "error", "loss_type names a loss the RLHF trainer computes: GRPO's and KTO's (both engines), "
             "DPO's and CPO/SimPO's (transformers engine)",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_loss_and_metrics (\"Unknown "
                   "loss type\")"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer.loss_func"),
              code("ms-swift swift/rlhf_trainers/dpo_trainer.py: DPOTrainer.dpo_loss"),
              code("trl experimental/kto/kto_trainer.py: KTOTrainer.kto_loss (kto / apo_zero_unpaired only; another "
                   "name leaves the loss unassigned: UnboundLocalError at the first step)"),
              code("trl experimental/cpo/cpo_trainer.py: CPOTrainer.cpo_loss (\"Unknown loss type\"; ms-swift runs "
                   "rlhf_type cpo and simpo with it)"),
              Evidence("report", "unslothai/unsloth#3122", "TRL-style GRPO with loss_type gspo: ValueError in the "
                       "GRPO loss (GSPO is importance_sampling_level sequence)")),
             "rlhf_type grpo and kto (both engines) with one loss_type; rlhf_type dpo, cpo and simpo on engine swift"),
    RuleInfo("sft-loss-type", "error", "`swift sft/pt`'s loss_type names an entry of ms-swift's loss_map (the RLHF "
             "losses belong to `swift rlhf`)",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.create_loss_and_eval_metric (loss_map[loss_type])"),
              code("ms-swift swift/loss/mapping.py: loss_map (read from the installed package)"),
              Evidence("report", "ms-swift#5283", "`swift sft --loss_type grpo` (the Web-UI's GRPO page, ms-swift "
                       "3.6.4): KeyError 'grpo' when the trainer is built")),
             "engine swift, command sft or pt; names not judged where an external_plugins file may fill loss_map"),
    RuleInfo("encoder-loss-type", "error", "task_type embedding and generative_reranker train only with a loss_type of "
             "their family (embedding: cosine_similarity, contrastive, online_contrastive, infonce; rerankers: "
             "pointwise_reranker, listwise_reranker)",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.create_loss_and_eval_metric (compute_loss_func only "
                   "with loss_type)"),
              code("transformers trainer.py: Trainer.compute_loss (labels left in the inputs without "
                   "compute_loss_func; \"The model did not return a loss\")"),
              code("ms-swift swift/model/patcher.py: patch_output_normalizer (the embedding head returns only "
                   "last_hidden_state)"),
              code("ms-swift swift/trainers/reranker_trainer.py: RerankerTrainer.compute_loss (no loss function: "
                   "the model's own loss)"),
              code("ms-swift swift/loss/embedding.py: the embedding losses read outputs['last_hidden_state']"),
              code("ms-swift swift/loss/reranker.py: the reranker losses read outputs.logits"),
              Evidence("measurement", "tiny Qwen3.6 model here, task_type embedding / generative_reranker, the "
                       "collated pair labels through the model's forward: RuntimeError shape '[-1, 248320]' is invalid")),
             "engine swift, command sft/pt, task_type (or the model's registered task) embedding or generative_reranker "
             "without loss_type, or any encoder task with the other family's loss (task_type reranker trains its "
             "seq_cls head's own loss without one); Megatron: megatron-task-loss"),
    RuleInfo("megatron-dpo-loss", "warning", "Megatron DPO trains sigmoid DPO whatever loss_type says",
             (code("ms-swift swift/megatron/trainers/dpo_trainer.py: MegatronDPOTrainer.loss_func (dpo_loss without "
                   "loss_type, whose default is sigmoid)"),
              Evidence("report", "ms-swift#10167", "pull request: Megatron DPO with loss_type hinge / ipo trains "
                       "sigmoid DPO (open fix, after 4.6)")),
             "engine megatron, rlhf_type dpo, loss_type other than sigmoid"),
    RuleInfo("cispo-clip", "warning", "loss_type cispo with an epsilon_high cap below 1 (unset: epsilon, 0.2) clamps "
             "every token's importance weight to that constant",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_loss_and_metrics "
                   "(torch.clamp(coef_1, max=self.epsilon_high)); _prepare_algorithm_params (epsilon_high falls back "
                   "to epsilon)"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer.loss_func"),
              Evidence("report", "NovaSky-AI/SkyRL#553", "pull request: CISPO clip bounds 0.2/0.2 replaced by 0 and 5 "
                       "after the ScaleRL ablation (clip_ratio rose); ms-swift's CISPO page sets epsilon_high 5.0")),
             "rlhf_type grpo, loss_type cispo, both engines"),
    RuleInfo("gspo-clip", "warning", "GSPO (importance_sampling_level sequence) with a token-level clip range "
             "(epsilon / epsilon_high 0.01 or more; unset: 0.2) and 4+ updates per rollout: the sequence ratio "
             "hardly ever reaches the clip, the off-policy updates run unclipped",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_loss_and_metrics (sequence "
                   "level: exp(mean token log-ratio), then clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)); "
                   "_prepare_algorithm_params (epsilon_high falls back to epsilon)"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer.loss_func (the same)"),
              Evidence("report", "huggingface/trl#3834", "GSPO used PPO's default clip epsilon 0.2; the GSPO paper "
                       "(section 5.1) clips the sequence ratio at 3e-4 / 4e-4, as ms-swift's GSPO page and TRL's "
                       "paper index ask")),
             "rlhf_type grpo, importance_sampling_level sequence or sequence_token, loss_type grpo / bnpo / dr_grpo / "
             "dapo / fipo, both engines; only when a rollout feeds 4+ optimizer steps, the paper's 4 mini-batches "
             "(steps_per_generation over gradient_accumulation_steps, a larger generation_batch_size, num_iterations; "
             "Megatron: steps_per_generation): with one the ratio is exactly 1, with 2-3 it stays near 1"),
    RuleInfo("grpo-completion-budget", "warning", "GRPO with an answer-graded reward (accuracy, math) and "
             "max_completion_length below ms-swift's 512 default: completions cut before their answer score 0 and "
             "all-cut groups train nothing",
             (code("ms-swift swift/rewards/orm.py: MathAccuracy.__call__ (math_verify parses the <answer> tag or the "
                   "boxed answer; nothing parsed: 0) / MathORM.extract_boxed_result"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_rollout_params and "
                   "swift/megatron/trainers/rollout_mixin.py: _init_rollout_params (max_tokens=max_completion_length)"),
              Evidence("report", "huggingface/trl#5697", "Qwen2.5-0.5B-Instruct on DeepMath-103K with "
                       "max_completion_length 256: 97-99% of completions clipped, reward 0, loss 0, grad_norm 0"),
              Evidence("report", "huggingface/trl#6263", "GSM8K at 256 tokens: 57% (Qwen2.5-0.5B-Instruct), 80% "
                       "(Qwen2.5-Math-1.5B-Instruct), 50% (Qwen3-0.6B, thinking off) of completions truncated")),
             "rlhf_type grpo, both engines, reward_funcs with accuracy or math, max_completion_length stated below 512; "
             "not a smoke run (train_iters / max_steps stated below 10)"),
    RuleInfo("vllm-lora-sync", "error, warning", "LoRA adapter sync to vLLM (vllm_enable_lora): vLLM's LoRA loader "
             "refuses the full modules_to_save weights the adapter state dict carries (warning), DoRA and an adapter "
             "bias (error; warning with a rollout server)",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._move_adapter_to_vllm "
                   "(get_peft_model_state_dict and asdict(peft_config) as a TensorLoRARequest)"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: adapter sync with asdict(peft_config) "
                   "(bias = lora_bias, megatron/utils/utils.py)"),
              code("ms-swift swift/rlhf_trainers/utils.py: patch_vllm_load_adapter.patched_load_adapter "
                   "(PEFTHelper.from_dict(peft_config).validate_legal)"),
              code("vLLM vllm/lora/peft_helper.py: PEFTHelper._validate_features / validate_legal (\"vLLM does not "
                   "yet support DoRA.\", adapter bias refused; public source)"),
              code("vLLM vllm/lora/utils.py: parse_fine_tuned_lora_name (\"is unsupported LoRA weight\"; public source)"),
              Evidence("report", "vllm-project/vllm#9280", "an adapter trained with modules_to_save (lm_head): "
                       "ValueError base_model.model.lm_head.weight is unsupported LoRA weight when vLLM loads it"),
              Evidence("report", "vllm-project/vllm#6983", "a DoRA adapter: lora_magnitude_vector is unsupported "
                       "LoRA weight (maintainer: vLLM does not support DoRA)")),
             "rlhf_type grpo/gkd, use_vllm with vllm_enable_lora, tuner_type lora: modules_to_save (engine swift); "
             "use_dora (engine swift) or lora_bias other than none (both engines), error with a colocated engine, "
             "warning in server mode (the sync happens only if the server enabled LoRA)"),
    RuleInfo("vllm-server", "error", "rollout server addresses: one vllm_server_port per vllm_server_host, one "
             "vllm_server_group_port per server; Megatron's server mode needs a host or base URL",
             (code("ms-swift swift/rlhf_trainers/vllm_client.py: VLLMInferClient.__init__ (\"host and server_port must "
                   "have same length\") / VLLMClient.__init__ (\"group_port must be int or list of length num_servers\")"),
              code(f"{RLHF} RLHFArguments._init_external_vllm (engine swift: built whenever a host or base URL is set)"),
              code("ms-swift swift/megatron/pipelines/train/rlhf.py: MegatronRLHF._prepare_vllm_client (vllm_mode "
                   "server: the host list as given, None included)")),
             "rlhf_type grpo/gkd; engine swift with vllm_server_host or vllm_server_base_url set, engine megatron with "
             "use_vllm and vllm_mode server; the port pairing only without vllm_server_base_url"),
    RuleInfo("vllm-group-port", "warning", "one rollout server on a port other than the default 8000 with "
             "vllm_server_group_port unset: the weight-sync group still takes 51216 on the server's host, where a second "
             "trainer/server pair collides ('Address already in use' at init_communicator)",
             (code("ms-swift swift/rlhf_trainers/vllm_client.py: VLLMClient.__init__ (group_ports default 51216 + i) / "
                   "init_communicator (the group's store on the server's host at that port)"),
              Evidence("report", "modelscope/ms-swift#6866", "two GKD jobs on one node, each with its own `swift "
                       "rollout` (the second on --port 8001): the second server failed at init_communicator with "
                       "'address already in use'")),
             "rlhf_type grpo/gkd with a rollout server (engine swift: vllm_server_host set; engine megatron: use_vllm, "
             "vllm_mode server), one host and one port given, the port not 8000, no vllm_server_group_port, no base URL"),
    RuleInfo("rollout-is-filtering", "warning", "rollout importance sampling with top_p < 1, top_k > 0 or a "
             "repetition_penalty: vLLM's processed logprobs are taken after the filtering and the penalty, the "
             "trainer's are not, so the ratio is biased",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._get_rollout_is_correction "
                   "(old_per_token_logps - rollout_per_token_logps)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: _prepare_vllm_engine (logprobs_mode "
                   "'processed_logprobs'; megatron/trainers/rollout_mixin.py alike)"),
              Evidence("report", "modelscope/ms-swift#8442", "maintainers: processed logprobs are affected by top_k/top_p "
                       "filtering, a significant discrepancy from the training logprobs; defaults changed to -1 / 1.0"),
              Evidence("report", "NVIDIA-NeMo/RL#2053", "NeMo-RL refuses top_p filtering with vLLM V1 logprobs for the "
                       "same reason"),
              Evidence("code", "vLLM vllm/v1/sample/sampler.py: Sampler.forward (penalties -- repetition, frequency, "
                       "presence -- then temperature, then top-k/top-p, before the processed logprobs; public source)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py / megatron/trainers/rollout_mixin.py (request "
                   "config repetition_penalty=args.repetition_penalty)")),
             "rlhf_type grpo with use_vllm and rollout_importance_sampling_mode set, top_p < 1, top_k > 0 or "
             "repetition_penalty != 1 stated, both engines"),
    RuleInfo("grpo-dynamic-opd", "warning", "loss_type real/fipo or off_policy_sequence_mask_delta without a teacher: "
             "ms-swift 4.6's trainer counts every teacherless GRPO as dynamic self-distillation and its loss refuses "
             "them ('OPD-RL (teacher) does not support ...')",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._setup_teacher (_has_teacher = "
                   "explicit or _is_dynamic_self_distillation; megatron/trainers/rollout_mixin.py the same)"),
              code("ms-swift swift/rlhf_trainers/gkd_helpers.py: resolve_dynamic_opd_self_distillation (true with no "
                   "teacher configured)"),
              code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_loss_and_metrics; "
                   "megatron/trainers/grpo_trainer.py MegatronGRPOTrainer.loss_func (the raise)")),
             "rlhf_type grpo, both engines, no teacher_model/teacher_model_server, not the transformers engine's "
             "Liger loss; a warning because ms-swift's published real/fipo examples take this path"),
    RuleInfo("solution-column", "error", "GRPO's accuracy / cosine reward on hub data known to carry no `solution` "
             "column (gsm8k, alpaca-gpt4): the reward's required argument is missing at the first reward",
             (code("ms-swift swift/rewards/orm.py: MathAccuracy.__call__(completions, solution) / CosineReward.__call__"),
              code("ms-swift swift/rl_core/grpo_algorithm.py: compute_rewards_per_func (the rows' columns as keyword "
                   "arguments); dataset/preprocessor/core.py RowPreprocessor (keeps `solution` only when present)"),
              Evidence("report", "modelscope/ms-swift#7316", "GRPO with the accuracy reward on gsm8k, training with "
                       "evaluation: the maintainer: the accuracy reward needs a solution column, gsm8k has none"),
              Evidence("policy", "ms-swift's own gsm8k GRPO examples (examples/train/grpo/internal/qlora.sh, the "
                       "Qwen3.5 best practice) pass columns '{\"answer\": \"solution\"}'")),
             "rlhf_type grpo, both engines, reward_funcs with accuracy or cosine, every dataset entry a hub id in "
             "reward_arg_rules.NO_SOLUTION_HUB (columns from the dataset cards), no `columns` mapping onto solution; "
             "not judged: `columns` as a JSON file path or text only json_repair reads (json_parse_to_dict), "
             "external_plugins / custom_register_path / custom_dataset_info (may re-register the dataset or the "
             "reward); local files are checked row by row (grpo-missing-solution)"),
    RuleInfo("cosine-max-len", "warning", "the cosine reward with cosine_max_len below max_completion_length: the "
             "unclamped cosine rewards completions past cosine_max_len again",
             (code("ms-swift swift/rewards/orm.py: CosineReward.cosfn / __call__ (no clamp of gen_len at "
                   "cosine_max_len)"),
              code("ms-swift swift/rlhf_trainers/arguments.py: GRPOConfig.__post_init__ (cosine_max_len defaults to "
                   "max_completion_length; megatron_args.py the same)")),
             "rlhf_type grpo, both engines, reward_funcs with cosine, cosine_max_len set below max_completion_length"),
    RuleInfo("soft-overlong-window", "warning", "soft_overlong whose penalty window (past soft_max_length - "
             "soft_cache_length) starts at or beyond max_completion_length never penalises a completion",
             (code("ms-swift swift/rewards/orm.py: SoftOverlong.__call__ (min(-(len - (max - cache)) / cache, 0))"),),
             "rlhf_type grpo, both engines, reward_funcs with soft_overlong, soft_max_length and soft_cache_length set; "
             "not with a multi_turn_scheduler (a completion spans every turn)"),
    RuleInfo("repetition-penalty-sign", "warning", "the repetition reward with a positive repetition_max_penalty "
             "rewards repetition",
             (code("ms-swift swift/rewards/orm.py: RepetitionPenalty.__call__ (reward = repeated share x "
                   "repetition_max_penalty; default -1.0)"),),
             "rlhf_type grpo, both engines, reward_funcs with repetition, repetition_max_penalty > 0"),
    RuleInfo("teacher-server-topk", "warning", "GKD against a teacher_model_server with gkd_logits_topk above 20: the "
             "server must allow that many prompt logprobs (vLLM's default max_logprobs is 20), and ms-swift 4.6's "
             "`swift rollout` drops its --max_logprobs",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._infer_teacher_requests "
                   "(RequestConfig(prompt_logprobs=topk); megatron/trainers/rollout_mixin.py the same)"),
              code("ms-swift swift/pipelines/infer/rollout.py: SwiftRolloutDeploy.get_infer_engine (engine kwargs "
                   "built without max_logprobs; pipelines/infer/deploy.py SwiftDeploy.get_infer_engine passes it)"),
              Evidence("code", "vLLM vllm/v1/engine/processor.py: Processor._validate_logprobs (\"Requested prompt "
                       "logprobs of K, which is greater than max allowed: 20\"; ModelConfig.max_logprobs default 20; "
                       "public source)"),
              Evidence("report", "ms-swift#9644", "OPSD (GKD with teacher prompts) against a `swift rollout` teacher "
                       "started with --max_logprobs 64: vLLM still refuses the top-64 prompt logprobs (max allowed 20)")),
             "command rlhf, rlhf_type gkd, both engines, teacher_model_server set, gkd_logits_topk above 20 (the "
             "server's own flags are not in the recipe: a warning)"),
    RuleInfo("grpo-chord", "error", "CHORD (chord_sft_dataset) needs its mu schedule: chord_mu_warmup_steps, "
             "chord_mu_decay_steps, chord_mu_valley, and chord_mu_peak unless both step counts are 0",
             (code("ms-swift swift/rlhf_trainers/utils.py: compute_chord_loss / mu_schedule_function (None compared "
                   "and added at the first step)"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: the chord_mu_* defaults (None)")),
             "engine: swift, rlhf_type grpo, chord_sft_dataset set"),
    RuleInfo("gym-env", "error", "a colocated gym_scheduler's gym_env names an environment registered in ms-swift's "
             "envs (built in or by an external_plugins file)",
             (code("ms-swift swift/rollout/multi_turn.py: GYMScheduler._create_env (\"Environment '...' not found\")"),
              code("ms-swift swift/rollout/gym_env.py: envs (read from the installed package)")),
             "rlhf_type grpo/gkd, multi_turn_scheduler gym_scheduler, gym_env set, not vllm_mode server; names not "
             "judged where an external_plugins file is missing or fills envs other than by envs['name'] = ..., nor "
             "where every row of the (local .jsonl) training data names its env_config.name, which wins over gym_env"),
    RuleInfo("gym-scheduler", "error, warning", "use_gym_env (or gym_env) scores completions with the environment's "
             "total_reward, which only a gym scheduler records: a colocated rollout without one fails at the first "
             "reward",
             (code("ms-swift swift/rl_core/grpo_algorithm.py: score_completions (s.rollout_infos['total_reward'] for "
                   "every sample when use_gym_env)"),
              code("ms-swift swift/rollout/multi_turn.py: GYMScheduler.on_turn_end / OpenEnvScheduler (the only "
                   "writers of total_reward); rlhf_trainers/rollout_mixin.py single-turn rollout_infos {'num_turns': 1}")),
             "rlhf_type grpo, both engines; use_gym_env true, or gym_env set with use_gym_env unset; not vllm_mode "
             "server (swift rollout runs its own scheduler); multi_turn_scheduler unset or a built-in one other than "
             "gym_scheduler/openenv_scheduler (plugin schedulers not judged). Engine swift without use_vllm: a "
             "warning (rollout_mixin.py _prepare_vllm turns use_gym_env off, the gym reward is silently dropped)"),
    RuleInfo("grpo-reward", "warning", "GRPO with no reward_funcs, no reward_model (the transformers engine only), no "
             "gym environment and no teacher runs self-distillation: only rows with a teacher_prompt give a signal",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer.__init__ (refuses only without a teacher; "
                   "rollout_mixin.py _setup_teacher makes 'no teacher' dynamic self-distillation: _has_teacher true)"),
              code("ms-swift swift/rlhf_trainers/gkd_helpers.py: resolve_dynamic_opd_self_distillation"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer._prepare_rewards (the same "
                   "assert, the same teacher setup; reward_model is never read)")),
             "rlhf_type grpo, both engines; not judged with use_gym_env unset in vllm_mode server (the rollout server "
             "decides it)"),
    RuleInfo("ppo-reward-model", "error", "PPO needs exactly one reward_model (its value model is built from it); "
             "reward_funcs are not PPO's",
             (code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF._prepare_model_tokenizer / _prepare_single_model "
                   "(value model from reward_model; one reward model for PPO)"),
              code("ms-swift swift/rlhf_trainers/ppo_trainer.py: PPOTrainer.__init__ (TRL's PPOTrainer.__init__: "
                   "PolicyAndValueWrapper over the value model)"),
              Evidence("report", "huggingface/trl#2273", "PPO given a reward function instead of a reward model "
                       "fails (\"PPO expect reward_model to be a model, not a function\")")),
             "engine swift, rlhf_type ppo"),
    RuleInfo("kto-batch", "error", "KTO needs a batch of 2 or more for its KL term (not with loss_type "
             "apo_zero_unpaired)",
             (code("ms-swift swift/pipelines/train/kto.py: prepare_kto_dataset (\"Batch size is 1 (too small)\")"),
              Evidence("report", "huggingface/trl#2554", "KTOTrainer with an actual batch size of 1 refused (the "
                       "KL term needs another sample's completion)")),
             "rlhf_type kto, both engines, with dataset or val_dataset (SwiftSft._prepare_dataset runs it through "
             "_get_dataset; a cached_dataset alone skips it), loss_type other than apo_zero_unpaired: "
             "global_batch_size on Megatron, processes x per_device_train_batch_size x gradient_accumulation_steps on "
             "the transformers engine"),
    RuleInfo("sync-ref-model", "warning", "GRPO's sync_ref_model with no reference model of its own (LoRA, or beta 0) "
             "never syncs anything",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: SyncRefModelCallback.on_step_end (returns when "
                   "ref_model is None)"),
              code(f"{RLHF} RLHFArguments.__post_init__ (ref_model only for full training, dropped at beta 0)"),
              Evidence("report", "huggingface/trl#3108", "GRPO with LoRA and sync_ref_model: TRL refuses the pair "
                       "(PR #4912), ms-swift 4.6 skips the sync silently")),
             "engine: swift, rlhf_type grpo, sync_ref_model with a tuner other than full (as load_args reads it) or "
             "beta 0"),
    RuleInfo("rlhf-ref-adapter", "warning", "DPO/KTO/GRPO continuing an SFT LoRA adapter without ref_adapters take "
             "the base model (adapter disabled) as the reference",
             (code("ms-swift swift/megatron/trainers/rlhf_mixin.py: MegatronRLHFTrainer.null_ref_context (LoRA: the "
                   "adapter disabled unless ref_adapters loaded a 'ref_adapter')"),
              code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF.prepare_model (ref_adapters)"),
              code(f"{SFT} SftArguments.__post_init__ (resume_only_model with LoRA becomes adapters)"),
              Evidence("report", "ms-swift#8047", "DPO LoRA on Qwen3-8B from an SFT LoRA checkpoint by "
                       "resume_from_checkpoint + resume_only_model: a different loss from DPO on the merged model"),
              Evidence("report", "huggingface/trl#3194", "GRPO on a model with SFT LoRA weights: the reference is the "
                       "base without them, a KL divergence from step 0")),
             "command rlhf, rlhf_type dpo/kto/grpo (grpo with beta != 0), tuner_type lora/lora_llm, adapters (or "
             "mcore_adapter, or resume_only_model on the transformers engine) set and ref_adapters/mcore_ref_adapter "
             "not"),
]
