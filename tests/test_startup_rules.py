"""ms-swift 4.6's start-up refusals in swift_ext/msswift/startup_rules.py (and the Liger GRPO additions in rules.py):
one failing and one passing recipe per rule on the engine it belongs to; where ms-swift's own argument method runs
without a model or a GPU, it is called on the same input to show it refuses what the rule refuses."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import pytest

from swift_ext.msswift import startup_rules, startup_rules_megatron
from test_msrules import MEG_GRPO, MEG_SFT, SWIFT_GRPO, SWIFT_SFT, problems
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

TEXT_MOE = "args.model=Qwen/Qwen3-30B-A3B"  # a text-only model ms-swift's registry knows
LORA_LLM = ["args.tuner_type=lora_llm", "args.merge_lora=true", "args.no_save_optim=true"]
RLSD, SDAR = "args.advantage_reweight=rlsd", "args.sdar_loss_coef=0.1"
SERVER = "args.teacher_model_server=http://t:8000"
SWANLAB = ["args.report_to=[swanlab]"]
EMAIL = [*SWANLAB, "args.swanlab_notification_method=email", "args.swanlab_sender_email=a@x", "args.swanlab_receiver_email=b@x",
         "args.swanlab_smtp_server=smtp.x"]
NO_MCORE = ["args.model=mistralai/Mistral-7B-Instruct-v0.2", "args.mtp_num_layers=null"]  # mcore-bridge maps no 'mistral'
RM = "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]"
FSDP1 = """args.fsdp='{"fsdp": "full_shard auto_wrap", "fsdp_config": {"fsdp_version": 1}}'"""
FSDP2 = """args.fsdp='{"fsdp": "full_shard auto_wrap", "fsdp_config": {"fsdp_version": 2}}'"""
MP = ["launch.gpus_per_node=1", "env.CUDA_VISIBLE_DEVICES=0,1"]  # one process, two GPUs: ms-swift's is_mp()
MP_DDP = ["launch.gpus_per_node=2", "env.CUDA_VISIBLE_DEVICES=0,1"]  # a process per GPU
DDP2 = MP_DDP
TWO_BY_TWO = ["launch.gpus_per_node=2", "env.NPROC_PER_NODE=2", "env.CUDA_VISIBLE_DEVICES=0,1,2,3"]  # is_mp_ddp()
VLLM_SERVER = ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]"]
MEG_TEACHER = ["command=rlhf", "args.rlhf_type=gkd", "args.teacher_model=Qwen/Qwen3-30B-A3B", "args.use_vllm=false"]

CASES = [
    # (rule, flag it names, base recipe, overrides that break it, overrides that satisfy it)
    ("epoch-iters", "global_batch_size", MEG_GRPO,
     ["args.dataset=[AI-MO/NuminaMath-TIR#16]", "args.global_batch_size=256", "args.num_generations=8"],
     ["args.dataset=[AI-MO/NuminaMath-TIR#32]", "args.global_batch_size=256", "args.num_generations=8"]),
    ("ref-model", "ref_model", SWIFT_GRPO, ["args.ref_model=Qwen/Qwen3-0.6B"],
     ["args.ref_model=Qwen/Qwen3-0.6B", "args.tuner_type=full"]),
    ("ref-model", "ref_model", SWIFT_GRPO, ["args.ref_model=Qwen/Qwen3-0.6B", "args.beta=0.04"],
     ["args.ref_model=Qwen/Qwen3-0.6B", "args.beta=0"]),  # GRPO with beta 0: ms-swift drops ref_model
    ("ref-model", "ref_model", SWIFT_GRPO,
     ["args.rlhf_type=orpo", "args.tuner_type=full", "args.ref_model=Qwen/Qwen3-0.6B"],
     ["args.rlhf_type=dpo", "args.tuner_type=full", "args.ref_model=Qwen/Qwen3-0.6B"]),
    ("quant-bits", "quant_bits", SWIFT_SFT, ["args.quant_method=bnb"], ["args.quant_method=bnb", "args.quant_bits=4"]),
    ("quant-bits", "quant_bits", SWIFT_SFT, ["args.quant_method=bnb", "args.quant_bits=2"],
     ["args.quant_method=quanto", "args.quant_bits=2"]),
    ("quant-bits", "quant_bits", SWIFT_SFT, ["args.quant_method=eetq", "args.quant_bits=4"],
     ["args.quant_method=fp8"]),
    ("quant-bits", "quant_bits", MEG_SFT, ["args.quant_method=hqq"], ["args.quant_method=hqq", "args.quant_bits=4"]),
    ("muon-optimizer", "overlap_grad_reduce", MEG_SFT, ["args.optimizer=muon", "args.overlap_grad_reduce=true"],
     ["args.optimizer=dist_muon", "args.overlap_grad_reduce=true"]),
    ("muon-optimizer", "overlap_param_gather", MEG_SFT, ["args.optimizer=muon", "args.overlap_param_gather=true"],
     ["args.optimizer=muon", "args.overlap_param_gather=false"]),
    ("muon-optimizer", "fp16", MEG_SFT, ["args.optimizer=dist_muon", "args.fp16=true", "args.bf16=false"],
     ["args.optimizer=dist_muon", "args.bf16=true"]),
    ("muon-optimizer", "torch_dtype", MEG_SFT, ["args.optimizer=muon", "args.torch_dtype=float16"],
     ["args.optimizer=muon", "args.torch_dtype=bfloat16"]),
    ("distributed-optimizer", "optimizer", MEG_SFT, ["args.optimizer=sgd"],
     ["args.optimizer=sgd", "args.use_distributed_optimizer=false"]),
    ("distributed-optimizer", "optimizer", MEG_SFT, ["args.optimizer=sgd", "args.use_distributed_optimizer=true"],
     ["args.optimizer=sgd", "args.optimizer_cpu_offload=true"]),  # a HybridDeviceOptimizer: DistributedOptimizer takes it
    ("weight-decay-schedule", "start_weight_decay", MEG_SFT, ["args.weight_decay_incr_style=cosine"],
     ["args.weight_decay_incr_style=cosine", "args.start_weight_decay=0.0", "args.end_weight_decay=0.1"]),
    ("weight-decay-schedule", "end_weight_decay", MEG_SFT,
     ["args.weight_decay_incr_style=linear", "args.start_weight_decay=0.0"],
     ["args.weight_decay_incr_style=linear", "args.start_weight_decay=0.0", "args.end_weight_decay=0.1"]),
    ("weight-decay-schedule", "start_weight_decay", MEG_SFT, ["args.start_weight_decay=0.01"],
     ["args.weight_decay=0.01"]),
    ("fsdp-args", "deepspeed", SWIFT_SFT, ["args.fsdp=fsdp2", "args.deepspeed=zero2"], ["args.fsdp=fsdp2"]),
    ("fsdp-args", "save_only_model", SWIFT_SFT, ["args.fsdp=fsdp2", "args.save_only_model=true"],
     ["args.fsdp=fsdp2", "args.save_only_model=false"]),
    ("warmup", "warmup_ratio", SWIFT_SFT, ["args.warmup_ratio=0.1", "args.warmup_steps=10"],
     ["args.warmup_ratio=0.1"]),
    ("warmup", "warmup_ratio", SWIFT_GRPO, ["args.warmup_ratio=1.0"], ["args.warmup_steps=10"]),
    ("swift-gkd", "async_generate", SWIFT_GRPO,
     ["args.rlhf_type=gkd", "args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=127.0.0.1",
      "args.async_generate=true"],
     ["args.rlhf_type=gkd", "args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=127.0.0.1"]),
    ("swift-gkd", "use_liger_kernel", SWIFT_GRPO, ["args.rlhf_type=gkd", "args.use_liger_kernel=true"],
     ["args.rlhf_type=gkd", "args.use_liger_kernel=true", "args.teacher_model=Qwen/Qwen3-0.6B"]),
    ("swift-gkd", "gkd_logits_topk", SWIFT_GRPO,
     ["args.rlhf_type=gkd", "args.use_liger_kernel=true", "args.teacher_model=Qwen/Qwen3-0.6B",
      "args.gkd_logits_topk=20"],
     ["args.rlhf_type=gkd", "args.teacher_model=Qwen/Qwen3-0.6B", "args.gkd_logits_topk=20"]),
    ("swift-gkd", "gkd_logits_topk", SWIFT_GRPO, ["args.rlhf_type=gkd", "args.teacher_model_server=http://t:8000"],
     ["args.rlhf_type=gkd", "args.teacher_model_server=http://t:8000", "args.gkd_logits_topk=20"]),
    ("dataset-required", "dataset", SWIFT_SFT, ["args.dataset=null"], ["args.dataset=null",
                                                                         "args.cached_dataset=[cache/train]"]),
    ("dataset-required", "dataset", MEG_SFT, ["args.dataset=null"], []),
    ("lora-llm", "tuner_type", MEG_SFT, [TEXT_MOE, "args.mtp_num_layers=null", *LORA_LLM],
     [TEXT_MOE, "args.mtp_num_layers=null", "args.tuner_type=lora"]),
    ("lora-llm", "tuner_type", MEG_SFT, [*LORA_LLM, "args.language_model_only=true"], LORA_LLM),
    ("swift-gkd", "sft_alpha", SWIFT_GRPO,
     ["args.rlhf_type=gkd", "args.use_liger_kernel=true", "args.teacher_model=Qwen/Qwen3-0.6B", "args.sft_alpha=0.5"],
     ["args.rlhf_type=gkd", "args.teacher_model=Qwen/Qwen3-0.6B", "args.sft_alpha=0.5"]),
    ("rlhf-loss-types", "loss_type", SWIFT_GRPO, ["args.rlhf_type=dpo", "args.loss_type=[kto_pair]"],
     ["args.rlhf_type=dpo", "args.loss_type=[ipo]"]),
    ("grpo-reweight", "rlsd_lambda", SWIFT_GRPO, [RLSD, "args.rlsd_lambda=1.5"], [RLSD, "args.rlsd_lambda=1.0"]),
    ("grpo-reweight", "rlsd_reweight_clip_range", SWIFT_GRPO, [RLSD, "args.rlsd_reweight_clip_range=-0.1"], [RLSD]),
    ("grpo-reweight", "reward_funcs", SWIFT_GRPO, [RLSD, "args.reward_funcs=null"], ["args.reward_funcs=null"]),
    ("grpo-reweight", "use_liger_kernel", SWIFT_GRPO, [RLSD, "args.use_liger_kernel=true"], [RLSD]),
    ("grpo-reweight", "loss_type", SWIFT_GRPO, [RLSD, "args.loss_type=real"], [RLSD, "args.loss_type=dapo"]),
    ("grpo-reweight", "off_policy_sequence_mask_delta", SWIFT_GRPO, [RLSD, "args.off_policy_sequence_mask_delta=0.5"],
     ["args.off_policy_sequence_mask_delta=0.5"]),
    ("grpo-reweight", "teacher_model_server", SWIFT_GRPO, [RLSD, SERVER], [RLSD, "args.teacher_model=Qwen/Qwen3-0.6B"]),
    ("grpo-reweight", "sdar_gate_beta", SWIFT_GRPO, [SDAR, "args.sdar_gate_beta=0"], [SDAR]),
    ("grpo-reweight", "sdar_loss_coef", SWIFT_GRPO, [SDAR, "args.use_liger_kernel=true"], ["args.use_liger_kernel=true"]),
    ("grpo-reweight", "sdar_loss_coef", SWIFT_GRPO, [SDAR, RLSD], [RLSD]),
    ("grpo-reweight", "teacher_model_server", SWIFT_GRPO, [SDAR, SERVER], [SDAR, "args.teacher_model=Qwen/Qwen3-0.6B"]),
    ("grpo-reasoning-parser", "vllm_reasoning_parser", SWIFT_GRPO, ["args.vllm_reasoning_parser=qwen3"],
     ["args.rlhf_type=gkd", "args.reward_funcs=null", "args.vllm_reasoning_parser=qwen3"]),
    ("swanlab-notification", "swanlab_notification_method", SWIFT_SFT,
     [*SWANLAB, "args.swanlab_notification_method=pager"], [*SWANLAB, "args.swanlab_notification_method=slack"]),
    ("swanlab-notification", "swanlab_smtp_port", SWIFT_SFT, EMAIL, [*EMAIL, "args.swanlab_smtp_port=465"]),
    ("rope-scaling-type", "rope_scaling", SWIFT_SFT, ["args.rope_scaling=longrope", "args.max_model_len=8192"],
     ["args.rope_scaling=yarn", "args.max_model_len=8192"]),
    ("rope-scaling-type", "rope_scaling", MEG_SFT, ["args.rope_scaling=default"],
     ['args.rope_scaling={"rope_type": "yarn", "factor": 2}']),
    # a JSON file on the training machine (json_parse_to_dict opens any existing path): not this machine's to judge
    ("rope-scaling-type", "rope_scaling", MEG_SFT, ["args.rope_scaling=Yarn"],
     ["args.rope_scaling=/cluster/configs/rope_yarn.json"]),
    ("rope-scaling-type", "rope_scaling", SWIFT_SFT, ["args.rope_scaling=longrope", "args.max_model_len=8192"],
     ["args.rope_scaling=rope_yarn.json", "args.max_model_len=8192"]),
    ("megatron-adapters", "adapters", MEG_SFT, ["args.adapters=[/tmp/a1,/tmp/a2]"], ["args.adapters=[/tmp/a1]"]),
    ("megatron-adapters", "ref_adapters", MEG_SFT, ["command=rlhf", "args.rlhf_type=dpo", "args.ref_adapters=[/a,/b]"],
     ["command=rlhf", "args.rlhf_type=dpo", "args.ref_adapters=[/a]"]),
    ("vit-lr-multimodal", "vit_lr", MEG_SFT, [TEXT_MOE, "args.mtp_num_layers=null", "args.vit_lr=1e-5"],
     ["args.vit_lr=1e-5"]),
    ("vit-lr-multimodal", "aligner_lr", MEG_SFT, [TEXT_MOE, "args.mtp_num_layers=null", "args.aligner_lr=1e-5"],
     [TEXT_MOE, "args.mtp_num_layers=null"]),
    ("megatron-task-loss", "loss_type", MEG_SFT, ["args.task_type=embedding"],
     ["args.task_type=embedding", "args.loss_type=infonce"]),
    ("megatron-task-loss", "loss_type", MEG_SFT, ["args.task_type=generative_reranker", "args.loss_type=reranker"],
     ["args.task_type=generative_reranker", "args.loss_type=pointwise_reranker"]),
    ("report-to", "report_to", SWIFT_SFT, ["args.report_to=[tensorbord]"], ["args.report_to=[tensorboard]"]),
    ("report-to", "report_to", SWIFT_SFT, ["args.report_to=[tensorboard, none]"], ["args.report_to=none"]),
    ("megatron-callbacks", "report_to", MEG_SFT, ["args.report_to=none"], ["args.report_to=[tensorboard, wandb]"]),
    ("grpo-teacher", "teacher_model_server", MEG_GRPO, [SERVER, "args.use_ray=true"], [SERVER]),
    ("megatron-model-type", "model", MEG_SFT, NO_MCORE, [TEXT_MOE, "args.mtp_num_layers=null"]),
    ("megatron-model-type", "model", MEG_SFT, NO_MCORE, [*NO_MCORE, "args.bridge_backend=megatron-bridge"]),
    ("megatron-model-type", "model", MEG_GRPO, NO_MCORE, [TEXT_MOE, "args.mtp_num_layers=null"]),
    ("megatron-model-type", "teacher_model", MEG_SFT, [*MEG_TEACHER, "args.teacher_model=mistralai/Mistral-7B-Instruct-v0.2"],
     MEG_TEACHER),
    # a '~' path is never expanded (os.path.isfile as is; swift-ext passes argv without a shell): an error anywhere
    ("txt-file", "system", SWIFT_SFT, ["args.system=~/prompts/system.txt"], ["args.system=You are a careful assistant."]),
    ("txt-file", "new_special_tokens", MEG_SFT, ["args.new_special_tokens=[<|tool|>,~/tokens.txt]"],
     ["args.new_special_tokens=[<|tool|>]"]),
    ("reward-model-plugin", "reward_model_plugin", SWIFT_GRPO, [RM, "args.reward_model_plugin=[default,genrm]"],
     [RM, "args.reward_model_plugin=[genrm]"]),
    ("reward-model-plugin", "reward_model_plugin", SWIFT_GRPO, [RM, "args.reward_model_plugin=[my_rm]"],
     [RM, "args.reward_model_plugin=[default]"]),
    # a generative judge scored as if it had a value head: the 'default' plugin's logits[:, 0] is a vocabulary row
    ("reward-model-task", "reward_model_plugin", SWIFT_GRPO, ["args.reward_model=[Qwen/Qwen2.5-3B-Instruct]"],
     ["args.reward_model=[Qwen/Qwen2.5-3B-Instruct]", "args.reward_model_plugin=[genrm]"]),
    ("reward-model-task", "reward_model_plugin", SWIFT_GRPO,
     ["args.reward_model=[Qwen/Qwen2.5-3B-Instruct]", "args.reward_model_plugin=[default]"],
     ["args.reward_model=[AI-ModelScope/Skywork-Reward-Llama-3.1-8B-v0.2]", "args.reward_model_plugin=[default]"]),
    # SwiftRLHF._prepare_model_tokenizer zips reward_model with its type/template/revision lists and asserts the lengths
    ("reward-model-lists", "reward_template", SWIFT_GRPO,
     ["args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B,Shanghai_AI_Laboratory/internlm2-7b-reward]",
      "args.reward_template=[qwen3]"],
     ["args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B,Shanghai_AI_Laboratory/internlm2-7b-reward]",
      "args.reward_template=[qwen3,internlm2_reward]"]),
    ("reward-model-lists", "reward_model_type", SWIFT_GRPO,
     [RM, "args.reward_model_type=[qwen3_reward,qwen3_reward]"], [RM]),
    ("rollout-fsdp1", "fsdp", SWIFT_GRPO, [FSDP1], ["args.fsdp=fsdp2"]),
    ("rollout-fsdp1", "fsdp", SWIFT_GRPO, ["args.rlhf_type=gkd", FSDP1], ["args.rlhf_type=gkd", FSDP2]),
    ("deepspeed-hpz", "zero_hpz_partition_size", SWIFT_SFT,
     ['args.deepspeed={"train_micro_batch_size_per_gpu": "auto"}', "args.zero_hpz_partition_size=8"],
     ["args.deepspeed=zero3", "args.zero_hpz_partition_size=8"]),
    # a DeepSpeed value that is not "auto" must equal the argument (transformers' HfTrainerDeepSpeedConfig.fill_match)
    ("deepspeed-values", "deepspeed", SWIFT_SFT,
     ['args.deepspeed={"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}}'],
     ['args.deepspeed={"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}}',
      "args.per_device_train_batch_size=4"]),
    # ZeRO-3 over bitsandbytes weights: 4-bit needs bnb_4bit_quant_storage = torch_dtype; 8-bit never fits; ZeRO-2 does
    ("zero3-bnb", "bnb_4bit_quant_storage", SWIFT_SFT,
     ["args.quant_method=bnb", "args.quant_bits=4", "args.torch_dtype=bfloat16", "args.deepspeed=zero3"],
     ["args.quant_method=bnb", "args.quant_bits=4", "args.torch_dtype=bfloat16", "args.deepspeed=zero3",
      "args.bnb_4bit_quant_storage=bfloat16"]),
    ("zero3-bnb", "bnb_4bit_quant_storage", SWIFT_SFT,
     ["args.quant_method=bnb", "args.quant_bits=4", "args.torch_dtype=bfloat16", "args.deepspeed=zero3_offload",
      "args.bnb_4bit_quant_storage=float16"],
     ["args.quant_method=bnb", "args.quant_bits=4", "args.torch_dtype=bfloat16", "args.deepspeed=zero2"]),
    ("zero3-bnb", "quant_bits", SWIFT_SFT, ["args.quant_method=bnb", "args.quant_bits=8", "args.deepspeed=zero3"],
     ["args.quant_method=bnb", "args.quant_bits=8", "args.deepspeed=zero2"]),
    ("grpo-liger", "top_entropy_quantile", SWIFT_GRPO, ["args.use_liger_kernel=true", "args.top_entropy_quantile=0.8"],
     ["args.use_liger_kernel=true"]),
    ("grpo-liger", "log_entropy", SWIFT_GRPO, ["args.use_liger_kernel=true", "args.log_entropy=true"],
     ["args.log_entropy=true"]),
    ("grpo-liger", "off_policy_sequence_mask_delta", SWIFT_GRPO,
     ["args.use_liger_kernel=true", "args.off_policy_sequence_mask_delta=0.5"], ["args.use_liger_kernel=true"]),
    ("grpo-liger", "importance_sampling_level", SWIFT_GRPO,
     ["args.use_liger_kernel=true", "args.importance_sampling_level=sequence_token"],
     ["args.use_liger_kernel=true", "args.importance_sampling_level=sequence"]),
    ("grpo-liger", "teacher_model", SWIFT_GRPO, ["args.use_liger_kernel=true", "args.teacher_model=Qwen/Qwen3-0.6B"],
     ["args.teacher_model=Qwen/Qwen3-0.6B"]),
    # device_map model parallelism (one process sees two GPUs): refused beside DeepSpeed, FSDP, Liger and GRPO's vLLM;
    # the same recipe with one process per GPU, or device_map alone (ms-swift's device_map example), is not
    ("device-map", "deepspeed", SWIFT_SFT, [*MP, "args.deepspeed=zero2"], [*MP_DDP, "args.deepspeed=zero2"]),
    ("device-map", "deepspeed", SWIFT_SFT, [*MP, "args.deepspeed=zero3"], MP),
    ("device-map", "fsdp", SWIFT_SFT, [*MP, "args.fsdp=fsdp2"], [*MP_DDP, "args.fsdp=fsdp2"]),
    ("device-map", "use_liger_kernel", SWIFT_SFT, [*MP, "args.use_liger_kernel=true"],
     [*MP, "args.use_liger_kernel=true", "env.SWIFT_SINGLE_DEVICE_MODE=1"]),
    ("device-map", "use_vllm", SWIFT_GRPO, [*MP, *VLLM_SERVER], [*MP_DDP, *VLLM_SERVER]),
    ("device-map", "use_vllm", SWIFT_GRPO, [*MP, "args.rlhf_type=gkd", *VLLM_SERVER], [*MP, "args.rlhf_type=gkd"]),
    ("device-map", "use_vllm", SWIFT_GRPO, [*MP, *VLLM_SERVER], [*MP, *VLLM_SERVER, "env.CUDA_VISIBLE_DEVICES=1"]),
    ("device-map", "env.CUDA_VISIBLE_DEVICES", SWIFT_SFT,
     ["launch.gpus_per_node=2", "env.CUDA_VISIBLE_DEVICES=0,1,2"], ["launch.gpus_per_node=2", "env.CUDA_VISIBLE_DEVICES=0,1"]),
    # NPROC_PER_NODE=7 over the launch's 8 GPUs (the 8th kept for vLLM, ms-swift#3695): the env value is the one named
    ("device-map", "env.NPROC_PER_NODE", SWIFT_SFT, ["launch.gpus_per_node=8", "env.NPROC_PER_NODE=7"],
     ["launch.gpus_per_node=8", "env.NPROC_PER_NODE=8"]),
    # a stated spreading device_map with one GPU per process (ms-swift#4567): plain DDP ranks each spread a copy and
    # accelerate refuses it; the same device_map with 2 GPUs per process is ms-swift's MP+DDP, one rank is not DDP,
    # and a device_map pinning one device spreads nothing
    ("device-map-ddp", "device_map", SWIFT_SFT, [*DDP2, "args.device_map=auto"], [*TWO_BY_TWO, "args.device_map=auto"]),
    ("device-map-ddp", "device_map", SWIFT_SFT, [*DDP2, "args.device_map=balanced"],
     ["launch.gpus_per_node=1", "args.device_map=auto"]),
    ("device-map-ddp", "device_map", SWIFT_SFT, [*DDP2, """args.device_map='{"model.embed_tokens": 0, "model.layers": 1}'"""],
     [*DDP2, """args.device_map='{"": 0}'"""]),
    ("device-map-ddp", "device_map", SWIFT_SFT, [*DDP2, "args.device_map=auto"],
     [*DDP2, "args.device_map=auto", "args.deepspeed=zero2"]),
    # max_memory naming one GPU: ModelArguments._init_max_memory shifts it to each rank's own GPU and accelerate's
    # infer_auto_device_map collapses the map to {'': rank}, one entry (test_one_gpu_max_memory_keeps_one_entry)
    ("device-map-ddp", "device_map", SWIFT_SFT, [*DDP2, "args.device_map=auto", "args.max_memory={0: 70GiB, 1: 70GiB}"],
     [*DDP2, "args.device_map=auto", "args.max_memory={0: 70GiB}"]),
    # use_ray: `swift sft` parses device_groups before anything else (json.loads(None) without them); `megatron rlhf`
    # hands the launch to the Ray pipeline, which reads only --config <ray yaml> (swift/ray/megatron/pipeline.py main)
    ("ray-launch", "use_ray", SWIFT_SFT, ["args.use_ray=true"],
     ["args.use_ray=true", """args.device_groups='{"nproc_per_node": 4, "default": {"device": "GPU", "ranks": [0, 1, 2, 3]}}'"""]),
    ("ray-launch", "use_ray", MEG_GRPO, ["args.use_ray=true"], ["args.use_ray=false"]),
    # a misspelt preset: ms-swift's json_parse_to_dict takes it for JSON text and fails (the test below runs it)
    ("config-name", "deepspeed", SWIFT_SFT, ["args.deepspeed=zero3_offlod"], ["args.deepspeed=zero3_offload"]),
    ("config-name", "fsdp", SWIFT_SFT, ["args.fsdp=fsdp2_offload"], ["args.fsdp=fsdp2"]),
    ("grpo-liger", "teacher_model_server", SWIFT_GRPO,  # the finding names the teacher flag the recipe sets
     ["args.use_liger_kernel=true", "args.teacher_model_server=http://t:8000"],
     ["args.teacher_model_server=http://t:8000"]),
]


@pytest.mark.parametrize("rule, flag, base, bad, good", CASES, ids=[f"{c[0]}:{c[1]}:{c[2].stem}" for c in CASES])
def test_rule_fails_then_passes(rule, flag, base, bad, good):
    errors, _ = problems(base, *bad)
    assert (rule, flag if flag.startswith("env.") else f"args.{flag}") in errors, errors
    errors, _ = problems(base, *good)
    assert rule not in {r for r, _ in errors}, errors


def test_every_rule_has_a_case():
    source = inspect.getsource(startup_rules) + inspect.getsource(startup_rules_megatron)
    named = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith('err("')}
    assert named and named <= {c[0] for c in CASES}, named - {c[0] for c in CASES}


def _refuses(method, **values) -> bool:
    try:
        method(SimpleNamespace(**values))
    except (ValueError, AssertionError, NotImplementedError):
        return True
    return False


def test_ms_swift_itself_refuses_the_same_inputs():
    # The real methods of ms-swift 4.6 (and transformers) on the rules' failing and passing inputs; the Megatron
    # ones need mcore-bridge to import, so only the transformers engine's are run here.
    from swift.arguments.base_args.quant_args import QuantizeArguments
    from swift.arguments.rlhf_args import RLHFArguments
    from swift.arguments.sft_args import SftArguments
    from swift.trainers.arguments import TrainArgumentsMixin

    quant = QuantizeArguments.get_quantization_config
    assert _refuses(quant, quant_method="bnb", quant_bits=None)
    assert _refuses(quant, quant_method="bnb", quant_bits=2)
    assert _refuses(quant, quant_method="eetq", quant_bits=4)  # transformers EetqConfig: int8 only
    assert _refuses(quant, quant_method="quanto", quant_bits=3)
    assert not _refuses(quant, quant_method="fp8", quant_bits=None, model_meta=None)  # no model_info: returns None
    warm = TrainArgumentsMixin._handle_hf_removed_args
    assert _refuses(warm, warmup_ratio=0.1, warmup_steps=10)
    assert _refuses(warm, warmup_ratio=1.0, warmup_steps=0)
    assert _refuses(SftArguments._init_fsdp, fsdp="fsdp2", deepspeed="zero2", use_ray=False)
    assert _refuses(SftArguments._check_fsdp2_compatibility, save_only_model=True,
                    fsdp_config={"state_dict_type": "SHARDED_STATE_DICT"})
    assert not _refuses(SftArguments._check_fsdp2_compatibility, save_only_model=True, gradient_checkpointing=False,
                        fsdp_config={"state_dict_type": "FULL_STATE_DICT"})
    from swift.utils.utils import json_parse_to_dict
    for text in ("zero3_offlod", "fsdp2_offload", "full_shard auto_wrap"):
        with pytest.raises(ValueError):
            json_parse_to_dict(text)
    assert json_parse_to_dict('{"fsdp": "full_shard"}') == {"fsdp": "full_shard"}
    gkd = dict(rlhf_type="gkd", use_vllm=False, async_generate=False, seq_kd=False, teacher_model_server=None,
               gkd_logits_topk=None, use_liger_kernel=False)
    assert _refuses(RLHFArguments._check_gkd, **{**gkd, "async_generate": True})
    assert _refuses(RLHFArguments._check_gkd, **{**gkd, "teacher_model_server": "http://t:8000"})
    assert _refuses(RLHFArguments._check_gkd, **{**gkd, "gkd_logits_topk": 20, "use_liger_kernel": True})
    assert not _refuses(RLHFArguments._check_gkd, **{**gkd, "gkd_logits_topk": 20})


def test_swift_sft_starts_ray_from_device_groups_before_any_argument(monkeypatch):
    # ray-launch: the installed swift/cli/sft.py entry calls try_init_ray() first; with --use_ray true and no
    # device_groups it fails on json.loads(None) (Ray itself is not installed here, so only the failing side and the
    # Ray-free path run)
    from swift.ray_utils import try_init_ray

    monkeypatch.setattr("sys.argv", ["sft.py", "--model", "m", "--use_ray", "true"])
    with pytest.raises(TypeError):
        try_init_ray()
    monkeypatch.setattr("sys.argv", ["sft.py", "--model", "m", "--use_ray", "false"])
    try_init_ray()  # no Ray: nothing parsed, nothing started


def test_the_fsdp2_preset_is_read_from_the_installed_ms_swift():
    # The rule reads state_dict_type from ms-swift's own preset file, not from a copy.
    config = startup_rules._fsdp_config("fsdp2")
    assert config is not None and config["fsdp_config"]["state_dict_type"] == "SHARDED_STATE_DICT"
    assert startup_rules._fsdp_config("no-such-file.json") is None


def test_an_fsdp_config_file_with_a_full_state_dict_may_save_only_the_model(tmp_path):
    config = tmp_path / "fsdp_full.json"
    config.write_text('{"fsdp": "full_shard auto_wrap", "fsdp_config": {"state_dict_type": "FULL_STATE_DICT"}}')
    errors, _ = problems(SWIFT_SFT, f"args.fsdp={config}", "args.save_only_model=true")
    assert "fsdp-args" not in {r for r, _ in errors}
    config.write_text('{"fsdp": "full_shard auto_wrap", "fsdp_config": {}}')  # ms-swift's default: sharded
    errors, _ = problems(SWIFT_SFT, f"args.fsdp={config}", "args.save_only_model=true")
    assert ("fsdp-args", "args.save_only_model") in errors


def test_muon_mcore_facts_come_from_the_installed_source():
    found = startup_rules_megatron._mcore_muon()
    if found is None:
        pytest.skip("megatron-core is not installed")
    fields, _ = found
    assert "muon_momentum" in fields  # megatron-core 0.16's OptimizerConfig has Muon fields
    # megatron-core 0.16.1 lacks muon_scalar_optimizer: ms-swift refuses a non-default one there.
    if "muon_scalar_optimizer" not in fields:
        errors, _ = problems(MEG_SFT, "args.optimizer=muon", "args.muon_scalar_optimizer=sgd")
        assert ("muon-optimizer", "args.muon_scalar_optimizer") in errors
    errors, _ = problems(MEG_SFT, "args.optimizer=muon")
    assert "muon-optimizer" not in {r for r, _ in errors}


# --- a checkpoint's args.json, loaded before ms-swift's checks (load_args) -------------------------------------------

def _checkpoint(tmp_path, name, **saved):
    directory = tmp_path / name
    directory.mkdir()
    (directory / "args.json").write_text(json.dumps({"swift_version": "4.6.0", **saved}))
    return directory


def test_ms_swift_loads_tuner_type_quant_bits_and_data_from_args_json(tmp_path):
    # ms-swift's own BaseArguments._init_ckpt_dir / load_args_from_ckpt on the inputs the tests below plan: with
    # load_args, tuner_type is always taken from args.json, quant_bits where unset, the dataset with load_data_args.
    from swift.arguments import BaseArguments

    ckpt = _checkpoint(tmp_path, "full-sft", tuner_type="full", quant_bits=4, dataset=["data/train.jsonl"])
    held = SimpleNamespace(model=str(ckpt), adapters=[], load_args=True, load_data_args=True, tuner_type="lora",
                           quant_method="bnb", quant_bits=None, dataset=[], cached_dataset=[])
    held.load_args_from_ckpt = lambda: BaseArguments.load_args_from_ckpt(held)
    BaseArguments._init_ckpt_dir(held)
    assert (held.tuner_type, held.quant_bits, held.dataset) == ("full", 4, ["data/train.jsonl"])
    held = SimpleNamespace(model=str(ckpt), adapters=[], load_args=False, tuner_type="lora", quant_bits=None)
    BaseArguments._init_ckpt_dir(held)  # training's default: args.json is not read
    assert (held.tuner_type, held.quant_bits) == ("lora", None)


def test_ref_model_with_a_full_checkpoint_loaded_by_load_args_is_accepted(tmp_path):
    # DPO from a full-parameter SFT checkpoint with load_args: ms-swift takes tuner_type full from its args.json,
    # then sets ref_model itself (RLHFArguments.__post_init__) -- the recipe's default tuner_type lora is not used.
    ckpt = _checkpoint(tmp_path, "full-sft", tuner_type="full")
    dpo = ["args.rlhf_type=dpo", f"args.model={ckpt}", "args.ref_model=Qwen/Qwen3-0.6B"]
    errors, _ = problems(SWIFT_GRPO, *dpo, "args.load_args=true")
    assert "ref-model" not in {r for r, _ in errors}, errors
    errors, _ = problems(SWIFT_GRPO, *dpo)  # without load_args the default tuner_type lora refuses ref_model
    assert ("ref-model", "args.ref_model") in errors
    # and the other way: a LoRA checkpoint's tuner_type replaces the recipe's full
    lora = _checkpoint(tmp_path, "lora-sft", tuner_type="lora")
    errors, _ = problems(SWIFT_GRPO, "args.rlhf_type=dpo", "args.tuner_type=full", f"args.adapters=[{lora}]",
                         "args.ref_model=Qwen/Qwen3-0.6B", "args.load_args=true")
    assert ("ref-model", "args.ref_model") in errors


def test_quant_bits_loaded_from_the_checkpoint_is_accepted(tmp_path):
    ckpt = _checkpoint(tmp_path, "qlora-sft", tuner_type="lora", quant_method="bnb", quant_bits=4)
    errors, _ = problems(SWIFT_SFT, "args.quant_method=bnb", f"args.adapters=[{ckpt}]", "args.load_args=true")
    assert "quant-bits" not in {r for r, _ in errors}, errors
    errors, _ = problems(SWIFT_SFT, "args.quant_method=bnb", f"args.adapters=[{ckpt}]")
    assert ("quant-bits", "args.quant_bits") in errors


def test_load_data_args_needs_load_args_and_a_checkpoint_with_a_dataset(tmp_path):
    with_data = _checkpoint(tmp_path, "sft", tuner_type="lora", dataset=["data/train.jsonl"])
    no_data = _checkpoint(tmp_path, "sft-no-data", tuner_type="lora", dataset=[], cached_dataset=[])
    base = ["args.dataset=null", "args.load_data_args=true"]
    errors, _ = problems(SWIFT_SFT, *base, f"args.adapters=[{with_data}]", "args.load_args=true")
    assert "dataset-required" not in {r for r, _ in errors}, errors
    errors, _ = problems(SWIFT_SFT, *base, f"args.adapters=[{with_data}]")  # load_args false: nothing is read
    assert ("dataset-required", "args.load_args") in errors
    errors, _ = problems(SWIFT_SFT, *base, f"args.adapters=[{no_data}]", "args.load_args=true")
    assert ("dataset-required", "args.dataset") in errors


def _errors_on(path, *overrides):
    """Every error check_msswift returns (not a set: one fault reported twice must show up twice)."""
    from test_msrules import Args, check_msswift, load_recipe, schema_for

    recipe = load_recipe(path, list(overrides))
    return [(e.code, e.path) for e in check_msswift(recipe, Args.bind(recipe, schema_for(recipe.engine,
                                                                                          recipe.command)))[0]]


@pytest.mark.parametrize("extra", [[], ["args.use_vllm=true", "args.vllm_mode=colocate"],
                                   ["args.multi_turn_scheduler=thinking_tips_scheduler"]])
def test_gkd_async_generate_is_one_error_naming_async_generate(extra):
    # GKD refuses async_generate in every vllm_mode (RLHFArguments._check_gkd); _init_rollout's "needs server" and
    # _check_grpo's multi-turn refusal would only send the user to a mode GKD refuses too.
    errors = _errors_on(SWIFT_GRPO, "args.rlhf_type=gkd", "args.async_generate=true", *extra)
    assert [e for e in errors if e[1] == "args.async_generate"] == [("swift-gkd", "args.async_generate")], errors


def test_grpo_async_generate_outside_server_mode_is_still_refused():
    errors = _errors_on(SWIFT_GRPO, "args.async_generate=true")
    assert errors.count(("grpo-vllm", "args.async_generate")) == 1, errors
    errors = _errors_on(SWIFT_GRPO, "args.async_generate=true", "args.use_vllm=true", "args.vllm_mode=server",
                        "args.vllm_server_host=127.0.0.1", "args.multi_turn_scheduler=thinking_tips_scheduler")
    assert ("grpo-vllm", "args.async_generate") in errors, errors


@pytest.mark.parametrize("base", [SWIFT_SFT, MEG_SFT], ids=["swift", "megatron"])
def test_quant_bits_without_quant_method_is_a_warning(base):
    # ModelArguments.get_model_kwargs passes get_quantization_config(), which is None without quant_method: the
    # model trains unquantized and ms-swift says nothing (QLoRA recipes from other tools set bits only).
    from swift.arguments.base_args.quant_args import QuantizeArguments

    assert QuantizeArguments.get_quantization_config(SimpleNamespace(quant_method=None, quant_bits=4)) is None
    errors, warnings = problems(base, "args.quant_bits=4")
    assert ("quant-bits-unused", "args.quant_bits") in warnings and "quant-bits" not in {r for r, _ in errors}
    _, warnings = problems(base, "args.quant_bits=4", "args.quant_method=bnb")
    assert "quant-bits-unused" not in {r for r, _ in warnings}
    _, warnings = problems(base)
    assert "quant-bits-unused" not in {r for r, _ in warnings}


def test_quant_bits_alone_is_taken_by_unsloth():
    # BaseArguments.get_model_processor -> load_by_unsloth: load_in_4bit=args.quant_bits == 4, no quant_method read.
    _, warnings = problems(SWIFT_SFT, "args.quant_bits=4", "args.tuner_backend=unsloth")
    assert "quant-bits-unused" not in {r for r, _ in warnings}


def _findings(base, *overrides):
    from test_msrules import Args, check_msswift, load_recipe, schema_for

    recipe = load_recipe(base, list(overrides))
    errors, warnings = check_msswift(recipe, Args.bind(recipe, schema_for(recipe.engine, recipe.command)))
    return [e for e in errors if e.code == "megatron-model-type"], [w for w in warnings if w.code == "megatron-model-type"]


def test_an_unsupported_model_is_refused_by_name_and_an_unknown_one_is_not_judged(tmp_path):
    errors, _ = _findings(MEG_SFT, *NO_MCORE)
    assert len(errors) == 1 and "mistralai/Mistral-7B-Instruct-v0.2" in errors[0].message
    assert "model_type mistral" in errors[0].message and "is not supported" in errors[0].message
    # the teacher is named as such
    errors, _ = _findings(MEG_SFT, *MEG_TEACHER, "args.teacher_model=mistralai/Mistral-7B-Instruct-v0.2")
    assert [e.path for e in errors] == ["args.teacher_model"] and "Mistral-7B-Instruct-v0.2" in errors[0].message
    # a directory ms-swift's registry does not name: its model_type comes from config.json at launch, not judged
    local = tmp_path / "my-finetune"
    local.mkdir()
    assert _findings(MEG_SFT, f"args.model={local}", "args.mtp_num_layers=null") == ([], [])
    # ...unless model_type is given
    errors, _ = _findings(MEG_SFT, f"args.model={local}", "args.model_type=mistral", "args.mtp_num_layers=null")
    assert len(errors) == 1 and str(local) in errors[0].message


def test_the_teacher_uses_the_students_mcore_model_type():
    # MegatronArguments._get_mcore_model_type(model_meta) reads self.model_meta.mcore_model_type: Qwen3-Reranker sets
    # 'gpt', so a Mistral teacher beside it gets 'gpt' too and passes ms-swift's check.
    reranker = ["args.model=Qwen/Qwen3-Reranker-4B", "args.mtp_num_layers=null"]
    teacher = [*MEG_TEACHER, "args.teacher_model=mistralai/Mistral-7B-Instruct-v0.2"]
    assert _findings(MEG_SFT, *reranker, *teacher)[0] == []
    assert [e.path for e in _findings(MEG_SFT, *teacher)[0]] == ["args.teacher_model"]


def test_the_rule_mirrors_ms_swifts_lookup():
    # The installed ms-swift still builds the mcore model type this way (the rule's teacher quirk included).
    from swift_ext.msswift.schema import _package_dir

    source = (_package_dir("swift") / "megatron" / "arguments" / "megatron_args.py").read_text()
    body = source[source.index("def _get_mcore_model_type"):].split("\n    def ")[0]
    assert "self.model_meta.mcore_model_type" in body and "get_mcore_model_type(model_type)" in body
    assert "get_model_meta(self._get_mcore_model_type(self.teacher_model_meta))" in source
    assert source.count("if self.bridge_backend == 'megatron-bridge':") >= 2  # both checks skipped there


def test_a_plugin_that_registers_models_makes_the_verdict_a_warning(tmp_path):
    # MegatronBaseArguments.__post_init__: BaseArguments.__post_init__ imports external_plugins / custom_register_path
    # before MegatronArguments.__post_init__ looks the model up, so a plugin registering a model (ms-swift's
    # register_model with mcore_model_type='gpt', as its own yi / codefuse_codellama do) can make Mistral buildable.
    from swift_ext.msswift.schema import _package_dir

    base_args = (_package_dir("swift") / "megatron" / "arguments" / "megatron_base_args.py").read_text()
    post_init = base_args[base_args.index("    def __post_init__"):]
    assert post_init.index("BaseArguments.__post_init__(self)") < post_init.index("self._init_megatron_args()")
    registers = tmp_path / "mistral_mcore.py"
    registers.write_text("from swift.model import ModelMeta, register_model\n"
                         "register_model(ModelMeta('mistral', [], mcore_model_type='gpt'), exist_ok=True)\n")
    rewards = tmp_path / "rewards.py"
    rewards.write_text("from swift.rewards import orms\norms['mine'] = object\n")
    for flag in ("external_plugins", "custom_register_path"):
        errors, warnings = _findings(MEG_SFT, *NO_MCORE, f"args.{flag}=[{registers}]")
        assert errors == [] and len(warnings) == 1 and "unless an external_plugins file" in warnings[0].message
    # a plugin that registers no model (reward functions) leaves the refusal; a plugin file not here may register one
    assert len(_findings(MEG_SFT, *NO_MCORE, f"args.external_plugins=[{rewards}]")[0]) == 1
    errors, warnings = _findings(MEG_SFT, *NO_MCORE, f"args.external_plugins=[{tmp_path / 'absent.py'}]")
    assert errors == [] and len(warnings) == 1


def test_a_model_only_a_later_mcore_bridge_maps_is_a_warning_when_none_is_installed():
    from swift_ext.msswift import mcore_support

    if mcore_support.load()["installed"]:
        pytest.skip("mcore-bridge is installed: its own registry decides")
    # GLM-5.3-Flash (ms-swift model_type glm5_next): mapped from mcore-bridge 1.6.5 on, not by 1.6.3, ms-swift's floor
    errors, warnings = _findings(MEG_SFT, "args.model=ZhipuAI/GLM-5.3-Flash", "args.mtp_num_layers=null")
    assert errors == [] and len(warnings) == 1 and "GLM-5.3-Flash" in warnings[0].message


# --- the second audit: .txt files, reward model plugins, FSDP1 under GRPO/GKD, ZeRO++ ---------------------------------

def test_ms_swift_reads_a_txt_value_as_a_file_from_the_working_directory(tmp_path, monkeypatch):
    # ModelArguments._init_new_special_tokens and TemplateArguments.__post_init__ themselves: a value ending in .txt
    # must be a file (relative to the working directory, '~' not expanded); anything else is the text itself.
    from swift.arguments.base_args.model_args import ModelArguments
    from swift.arguments.base_args.template_args import TemplateArguments

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tokens.txt").write_text("<|a|> <|b|>\n")
    held = SimpleNamespace(new_special_tokens=["tokens.txt", "<|c|>"])
    ModelArguments._init_new_special_tokens(held)
    assert held.new_special_tokens == ["<|a|>", "<|b|>", "<|c|>"]
    assert _refuses(ModelArguments._init_new_special_tokens, new_special_tokens=["missing.txt"])
    template = dict(use_chat_template=None, response_prefix=None, truncation_strategy=None, _set_loss_scale=lambda: None)
    assert _refuses(TemplateArguments.__post_init__, system="missing.txt", **template)
    assert _refuses(TemplateArguments.__post_init__, system=f"~/{tmp_path.name}.txt", **template)
    assert not _refuses(TemplateArguments.__post_init__, system="You read notes.md", **template)


def test_a_txt_file_missing_here_is_a_warning_naming_where_it_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for base, key in ((SWIFT_SFT, "system"), (MEG_SFT, "new_special_tokens")):
        errors, warnings = problems(base, f"args.{key}=prompts/system.txt")
        assert ("txt-file", f"args.{key}") in warnings and "txt-file" not in {r for r, _ in errors}
        (tmp_path / "prompts").mkdir(exist_ok=True)
        (tmp_path / "prompts" / "system.txt").write_text("You are a careful assistant.")
        errors, warnings = problems(base, f"args.{key}=prompts/system.txt")
        assert "txt-file" not in {r for r, _ in errors} | {r for r, _ in warnings}
        (tmp_path / "prompts" / "system.txt").unlink()
    from test_msrules import Args, check_msswift, load_recipe, schema_for

    recipe = load_recipe(SWIFT_SFT, ["args.system=prompts/system.txt"])
    _, warnings = check_msswift(recipe, Args.bind(recipe, schema_for(recipe.engine, recipe.command)))
    found = [w for w in warnings if w.code == "txt-file"]
    assert len(found) == 1 and str(tmp_path / "prompts" / "system.txt") in found[0].message
    # an absolute path that is only on the cluster: a warning too, never an error
    errors, warnings = problems(SWIFT_SFT, "args.system=/cluster/prompts/system.txt")
    assert ("txt-file", "args.system") in warnings and "txt-file" not in {r for r, _ in errors}


def test_builtin_rm_plugins_are_read_from_the_installed_ms_swift():
    from swift.rewards.rm_plugin import rm_plugins

    from swift_ext.msswift.plugin_registry import builtin_names

    assert builtin_names("rewards/rm_plugin.py", "rm_plugins") == frozenset(rm_plugins)


def test_a_reward_model_plugin_an_external_plugin_registers_is_accepted(tmp_path):
    plugin = tmp_path / "rm_plugin.py"
    plugin.write_text("from swift.rewards import rm_plugins\nfrom swift.rewards.rm_plugin import DefaultRMPlugin\n\n"
                      "class MyRM(DefaultRMPlugin):\n    pass\n\nrm_plugins['my_rm'] = MyRM\n")
    chosen = [RM, "args.reward_model_plugin=[my_rm]"]
    errors, _ = problems(SWIFT_GRPO, *chosen, f"args.external_plugins=[{plugin}]")
    assert "reward-model-plugin" not in {r for r, _ in errors}, errors
    errors, _ = problems(SWIFT_GRPO, *chosen)  # without the file the name is unknown
    assert ("reward-model-plugin", "args.reward_model_plugin") in errors
    # a file that fills rm_plugins another way: its names cannot be listed, so none is refused
    plugin.write_text("from swift.rewards import rm_plugins\nrm_plugins.update({'my_rm': object})\n")
    errors, _ = problems(SWIFT_GRPO, *chosen, f"args.external_plugins=[{plugin}]")
    assert "reward-model-plugin" not in {r for r, _ in errors}, errors
    # a missing plugin file is plugin-file's error alone
    errors, _ = problems(SWIFT_GRPO, *chosen, f"args.external_plugins=[{tmp_path / 'gone.py'}]")
    assert "reward-model-plugin" not in {r for r, _ in errors}


def test_reward_model_plugin_is_read_only_beside_a_reward_model():
    errors, _ = problems(SWIFT_GRPO, "args.reward_model_plugin=[my_rm,genrm]")
    assert "reward-model-plugin" not in {r for r, _ in errors}


def test_transformers_takes_the_fsdp_version_from_fsdp_config():
    # What RolloutTrainerMixin's accelerator.is_fsdp2 comes from: transformers' TrainingArguments builds the FSDP
    # plugin with fsdp_config's version ("fsdp_version", prefix stripped), so a stated 1 is FSDP1.
    from transformers import TrainingArguments

    def version(config):
        built = TrainingArguments(output_dir="/tmp/swift-ext-fsdp-version", fsdp="full_shard auto_wrap",
                                  fsdp_config=dict(config), report_to=[])
        return built.fsdp_plugin_args["fsdp_version"]

    assert version({"fsdp_version": 1}) == 1 and startup_rules._fsdp_version({"fsdp_version": 1}) == 1
    assert version({"fsdp_version": 2}) == 2 and startup_rules._fsdp_version({"version": "2"}) == 2
    assert startup_rules._fsdp_version({}) is None  # unstated: the installed transformers' default, not judged


def test_a_refusal_of_a_value_read_from_args_json_names_the_file(tmp_path):
    # the recipe never wrote the value: the message says where it came from, so the user can find it
    lora = _checkpoint(tmp_path, "lora-sft", tuner_type="lora")
    errors = _messages(SWIFT_GRPO, "args.rlhf_type=dpo", "args.tuner_type=full", f"args.adapters=[{lora}]",
                       "args.ref_model=Qwen/Qwen3-0.6B", "args.load_args=true")
    assert f"tuner_type lora (read from {lora / 'args.json'} by load_args)" in errors["ref-model"]
    qlora = _checkpoint(tmp_path, "qlora-sft", tuner_type="lora", quant_method="bnb", quant_bits=3)
    errors = _messages(SWIFT_SFT, f"args.adapters=[{qlora}]", "args.load_args=true")
    assert f"quant_bits 3 (read from {qlora / 'args.json'} by load_args)" in errors["quant-bits"]
    assert "read from" not in _messages(SWIFT_SFT, "args.quant_method=bnb", "args.quant_bits=3")["quant-bits"]
    no_data = _checkpoint(tmp_path, "sft-no-data", tuner_type="lora", dataset=[], cached_dataset=[])
    errors = _messages(SWIFT_SFT, "args.dataset=null", "args.load_data_args=true", f"args.adapters=[{no_data}]",
                       "args.load_args=true")
    assert f"load_data_args read them from {no_data / 'args.json'}, which holds none" in errors["dataset-required"]


def _messages(path, *overrides) -> dict[str, str]:
    recipe = load_recipe(path, list(overrides))
    return {f.code: f.message for f in make_plan(recipe, oracle=False).errors}


def test_a_config_path_missing_here_is_said_and_json_text_passes():
    # A path is the training machine's to resolve (a warning); JSON text json_parse_to_dict reads is no finding.
    errors, warnings = problems(SWIFT_SFT, "args.fsdp=configs/my_fsdp.json")
    assert ("config-name", "args.fsdp") in warnings and "config-name" not in {r for r, _ in errors}, (errors, warnings)
    errors, warnings = problems(SWIFT_SFT, 'args.deepspeed={"zero_optimization": {"stage": 2}}')
    assert "config-name" not in {r for r, _ in errors | warnings}, (errors, warnings)


def test_ms_swift_2x_deepspeed_names_are_refused_with_their_4x_name(write):
    # ms-swift 2.x's prepare_deepspeed mapped default-zero3 etc.; 4.6 reads the name as JSON text and fails.
    plan = make_plan(load_recipe(SWIFT_SFT, ["args.deepspeed=default-zero3"]))
    (error,) = [e for e in plan.errors if e.code == "config-name"]
    assert error.hint.startswith("deepspeed: zero3 (ms-swift 2.x's name for it"), error.hint
    from conftest import swift_ext
    upgraded = swift_ext("import", "--upgrade", write("ds.sh", "NPROC_PER_NODE=2 swift sft --model Qwen/Qwen2-7B-Instruct "
                                                      "--tuner_type lora --dataset d.jsonl --deepspeed zero3-offload\n"))
    assert "deepspeed: zero3_offload" in upgraded.stdout and "--deepspeed zero3-offload is `zero3_offload`" in upgraded.stderr


OFFLOAD = ["args.optimizer_cpu_offload=true", "args.use_precision_aware_optimizer=true"]


@pytest.mark.parametrize("key", ["exp_avg_dtype", "exp_avg_sq_dtype", "main_params_dtype"])
def test_cpu_offload_drops_the_optimizer_state_dtypes_and_says_so(key):
    errors, warnings = problems(MEG_SFT, *OFFLOAD, f"args.{key}=fp16")
    assert ("optimizer-offload-dtypes", f"args.{key}") in warnings, warnings
    assert not {e for e in errors if e[0] == "optimizer-offload-dtypes"}
    # the same dtype without the offload is what the precision-aware optimizer honours: nothing said
    _, warnings = problems(MEG_SFT, "args.use_precision_aware_optimizer=true", f"args.{key}=fp16")
    assert "optimizer-offload-dtypes" not in {w[0] for w in warnings}
    _, warnings = problems(MEG_SFT, *OFFLOAD)
    assert "optimizer-offload-dtypes" not in {w[0] for w in warnings}


def test_megatron_core_builds_the_optimizers_the_rules_name():
    """The lines distributed-optimizer, muon-optimizer (fp16) and optimizer-offload-dtypes mirror, read from the
    installed megatron-core source (it imports without a GPU but needs process groups to build an optimizer)."""
    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    dist = reader.parse("megatron.core.optimizer.distrib_optimizer")
    muon = reader.parse("megatron.core.optimizer.muon")
    init = reader.parse("megatron.core.optimizer")
    if dist is None or muon is None or init is None:
        pytest.skip("megatron-core is not installed here")
    assert "Only Adam and HybridDeviceOptimizer currently supported" in "\n".join(dist[1])
    assert "muon with fp16 is not supported." in "\n".join(muon[1])
    text = "\n".join(init[1])
    offload = text[text.index("optimizer = HybridDeviceOptimizer("):]
    assert "param_update_in_fp32=True" in offload[:800] and "exp_avg_dtype" not in offload[:800]



@pytest.mark.parametrize("extra, flag", [
    (["args.use_precision_aware_optimizer=false"], "optimizer_cpu_offload"),
    (["args.use_precision_aware_optimizer=false", "args.use_distributed_optimizer=false"], "use_distributed_optimizer"),
    ([], None),  # the path ms-swift's offload examples take: nothing said
    (["args.use_precision_aware_optimizer=false", "args.optimizer=muon"], None),  # Muon builds its own optimizers
])
def test_cpu_offload_off_the_hybrid_optimizers_path(extra, flag):
    _, warnings = problems(MEG_SFT, *OFFLOAD, *extra)
    found = {w for w in warnings if w[0] == "optimizer-offload-path"}
    assert found == ({("optimizer-offload-path", f"args.{flag}")} if flag else set()), warnings


NONREENTRANT = """args.gradient_checkpointing_kwargs={"use_reentrant": false}"""


@pytest.mark.parametrize("bad", [
    ["args.tuner_type=lora", "args.deepspeed=zero3", NONREENTRANT],
    ["args.tuner_type=lora", "args.deepspeed=zero3_offload", """args.gradient_checkpointing_kwargs='{"use_reentrant": false}'"""],
    # full training of a VLM keeps the vision tower frozen by default (freeze_vit true)
    ["args.tuner_type=full", "args.model=Qwen/Qwen2.5-VL-7B-Instruct", "args.deepspeed=zero3", NONREENTRANT],
])
def test_zero3_nonreentrant_checkpoint_said(bad):
    _, warnings = problems(SWIFT_SFT, *bad)
    assert ("zero3-nonreentrant-checkpoint", "args.gradient_checkpointing_kwargs") in warnings, warnings


@pytest.mark.parametrize("good", [
    ["args.tuner_type=lora", "args.deepspeed=zero3"],  # ms-swift picks reentrant under DeepSpeed
    ["args.tuner_type=lora", "args.deepspeed=zero2", NONREENTRANT],  # ZeRO-2 keeps whole parameters
    ["args.tuner_type=lora", "args.deepspeed=zero3", """args.gradient_checkpointing_kwargs={"use_reentrant": true}"""],
    ["args.tuner_type=lora", "args.deepspeed=zero3", NONREENTRANT, "args.gradient_checkpointing=false"],
    ["args.tuner_type=full", "args.model=Qwen/Qwen3-8B", "args.deepspeed=zero3", NONREENTRANT],  # nothing frozen
    ["args.tuner_type=full", "args.model=Qwen/Qwen2.5-VL-7B-Instruct", "args.deepspeed=zero3", NONREENTRANT,
     "args.freeze_vit=false", "args.freeze_aligner=false"],
])
def test_zero3_nonreentrant_checkpoint_quiet(good):
    _, warnings = problems(SWIFT_SFT, *good)
    assert "zero3-nonreentrant-checkpoint" not in {c for c, _ in warnings}, warnings


def test_swift_checkpoints_reentrantly_under_deepspeed_unless_told():
    # the installed trainer's own choice the rule relies on: use_reentrant True under DeepSpeed when unset
    from swift.trainers.mixin import SwiftMixin
    source = inspect.getsource(SwiftMixin._fix_gradient_checkpointing)
    assert "gradient_checkpointing_kwargs.get('use_reentrant')" in source
    assert "not self.is_deepspeed_enabled" in source


@pytest.mark.parametrize("method", [["args.quant_method=bnb", "args.quant_bits=4"], ["args.quant_method=fp8"]])
def test_quant_method_on_megatron_is_said(method):
    _, warnings = problems(MEG_SFT, *method)
    assert ("quant-method-megatron", "args.quant_method") in warnings, warnings


def test_quant_method_on_the_transformers_engine_or_absent_is_quiet():
    _, warnings = problems(SWIFT_SFT, "args.quant_method=bnb", "args.quant_bits=4")
    assert "quant-method-megatron" not in {c for c, _ in warnings}
    _, warnings = problems(MEG_SFT)
    assert "quant-method-megatron" not in {c for c, _ in warnings}


def test_megatron_sft_loads_no_transformers_weights():
    # the installed MegatronSft builds the model with mcore-bridge; transformers' model (where a quantization config
    # would act) is loaded without weights or as a meta dummy
    # (read as text: importing swift.megatron needs mcore-bridge, which is not installed here)
    from swift_ext.msswift.schema import _package_dir
    source = (_package_dir("swift") / "megatron" / "pipelines" / "train" / "sft.py").read_text(encoding="utf-8")
    init = source[source.index("def __init__"):source.index("def run(")]
    assert "'load_model': False" in init and "return_dummy_model" in init and "torch.device('meta')" in init


def test_a_megatron_run_without_a_length_is_said():
    # MegatronArguments.init_iters fills train_iters only from num_train_epochs; the scheduler set-up multiplies it
    _, warnings = problems(MEG_SFT, "args.num_train_epochs=null")
    assert ("megatron-run-length", "args.train_iters") in warnings, warnings


@pytest.mark.parametrize("overrides", [[], ["args.num_train_epochs=null", "args.train_iters=100"]])
def test_a_megatron_run_with_a_length_is_quiet(overrides):
    _, warnings = problems(MEG_SFT, *overrides)
    assert "megatron-run-length" not in {c for c, _ in warnings}


def test_the_megatron_scheduler_multiplies_train_iters_and_only_epochs_fill_it():
    from swift_ext.msswift.schema import _package_dir
    root = _package_dir("swift") / "megatron"
    assert "wd_incr_steps = args.train_iters * args.global_batch_size" in (
        root / "utils" / "megatron_lm_utils.py").read_text(encoding="utf-8")
    assigned = [path for path in root.rglob("*.py")
                if "self.train_iters = " in path.read_text(encoding="utf-8", errors="replace")]
    assert [p.name for p in assigned] == ["megatron_args.py"]
    init_iters = (root / "arguments" / "megatron_args.py").read_text(encoding="utf-8")
    init_iters = init_iters[init_iters.index("def init_iters"):]
    init_iters = init_iters[:init_iters.index("\n    def ")]
    assert init_iters.count("self.train_iters = ") == 1 and "if self.num_train_epochs is not None:" in init_iters


# epoch-iters: a sized training set under one global batch of samples makes init_iters' train_iters 0
SMALL = ["args.dataset=[AI-MO/NuminaMath-TIR#16]", "args.global_batch_size=256", "args.num_generations=8"]


def test_a_megatron_training_set_under_one_global_batch_is_refused():
    # 16 prompts x 8 completions = 128 samples < 256: train_iters 0, OptimizerParamScheduler's assert (THUDM/slime#2366)
    errors, _ = problems(MEG_GRPO, *SMALL)
    assert ("epoch-iters", "args.global_batch_size") in errors, errors
    _, warnings = problems(MEG_GRPO, *SMALL, "args.lr_decay_iters=100")  # the scheduler builds; 0 iterations run
    assert ("epoch-iters", "args.global_batch_size") in warnings, warnings


@pytest.mark.parametrize("overrides", [
    ["args.global_batch_size=128"],  # 16 x 8 = one global batch: train_iters 1
    ["args.num_train_epochs=2"],  # 256 samples over two epochs
    ["args.dataset=[AI-MO/NuminaMath-TIR]"],  # unsized: the hub's row count is not read here
])
def test_a_megatron_training_set_of_one_global_batch_or_unsized_is_not_refused(overrides):
    errors, warnings = problems(MEG_GRPO, *SMALL, *overrides)
    assert "epoch-iters" not in {c for c, _ in errors | warnings}


TWO = "args.dataset=[AI-MO/NuminaMath-TIR#8, AI-MO/NuminaMath-TIR#8]"  # 16 rows x 8 = 128 samples, as SMALL


def test_interleaving_until_all_exhausted_is_not_bounded_by_the_rows():
    # datasets.interleave_datasets with all_exhausted oversamples the entries until each is used up: 8 + 8 rows at
    # 0.9 / 0.1 make far more than 16, so train_iters can be positive; first_exhausted stays under the sum
    mix = [TWO, "args.interleave_prob=[0.9, 0.1]"]
    errors, warnings = problems(MEG_GRPO, *SMALL, *mix, "args.stopping_strategy=all_exhausted")
    assert "epoch-iters" not in {c for c, _ in errors | warnings}
    errors, _ = problems(MEG_GRPO, *SMALL, *mix)  # first_exhausted, the default
    assert ("epoch-iters", "args.global_batch_size") in errors, errors


def test_a_jsonl_file_holding_a_json_array_is_not_counted_by_its_lines(tmp_path):
    # datasets' json builder reads a file that opens with '[' as one JSON array: 40 rows on one line
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(40)]
    array, lines = tmp_path / "array.jsonl", tmp_path / "lines.jsonl"
    array.write_text(json.dumps(rows) + "\n")
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows[:8]))
    gbs = ["args.global_batch_size=16", "args.num_train_epochs=1"]
    errors, warnings = problems(MEG_SFT, f"args.dataset=[{array}]", *gbs)
    assert "epoch-iters" not in {c for c, _ in errors | warnings}
    errors, _ = problems(MEG_SFT, f"args.dataset=[{lines}]", *gbs)  # 8 JSON lines < 16: still refused
    assert ("epoch-iters", "args.global_batch_size") in errors, errors
    pytest.importorskip("swift.dataset")
    from swift.dataset import load_dataset

    assert len(load_dataset([str(array)], num_proc=1)[0]) == 40  # what ms-swift trains on


def test_interleave_datasets_all_exhausted_makes_more_rows_than_the_entries_hold():
    from datasets import Dataset, interleave_datasets
    a, b = Dataset.from_dict({"x": list(range(8))}), Dataset.from_dict({"x": list(range(8))})
    assert len(interleave_datasets([a, b], [0.9, 0.1], seed=42, stopping_strategy="all_exhausted")) > 16
    assert len(interleave_datasets([a, b], [0.9, 0.1], seed=42, stopping_strategy="first_exhausted")) <= 16


def test_init_iters_multiplies_the_rows_by_num_generations_and_the_scheduler_asserts_decay_steps():
    from swift_ext.msswift.schema import _package_dir
    args_src = (_package_dir("swift") / "megatron" / "arguments" / "megatron_args.py").read_text(encoding="utf-8")
    assert "self.train_iters = dataset_sample * self.num_train_epochs // self.global_batch_size" in args_src
    assert "num_generations = self.num_generations if self.rlhf_type == 'grpo' else 1" in args_src
    core = (_package_dir("megatron") / "core" / "optimizer_param_scheduler.py").read_text(encoding="utf-8")
    assert "assert self.lr_decay_steps > 0" in core


def test_one_gpu_max_memory_keeps_one_entry():
    # accelerate's own placement: max_memory listing one GPU gives a one-entry map, which verify_device_map (more
    # than one entry) lets through under DDP; two GPUs spread the layers
    import torch
    from accelerate import Accelerator, infer_auto_device_map

    model = torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(6)])
    one = infer_auto_device_map(model, max_memory={0: 10**9})
    two = infer_auto_device_map(model, max_memory={0: 40_000, 1: 10**9})
    assert dict(one) == {"": 0} and len(set(two.values())) == 2
    model.hf_device_map = one
    assert not Accelerator.verify_device_map(None, model)
    model.hf_device_map = two
    assert Accelerator.verify_device_map(None, model)


def _local_model(tmp_path, config, saved=None):
    path = tmp_path / "rm"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    if saved is not None:
        (path / "args.json").write_text(json.dumps(saved))
    return path


def test_generative_reward_model_reads_a_local_checkpoint_like_ms_swift(tmp_path):
    # SwiftRLHF._get_model_task_type: args.json's task_type when there is one, else a *ForSequenceClassification
    # architecture or num_labels 1 make it seq_cls; otherwise the policy's causal_lm.
    causal = _local_model(tmp_path, {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"})
    errors, _ = problems(SWIFT_GRPO, f"args.reward_model=[{causal}]")
    assert ("reward-model-task", "args.reward_model_plugin") in errors, errors
    (causal / "args.json").write_text(json.dumps({"task_type": "seq_cls", "num_labels": 1}))
    errors, _ = problems(SWIFT_GRPO, f"args.reward_model=[{causal}]")
    assert "reward-model-task" not in {r for r, _ in errors}, errors


def test_sequence_classification_checkpoint_is_a_reward_model(tmp_path):
    seq_cls = _local_model(tmp_path, {"architectures": ["Qwen2ForSequenceClassification"], "num_labels": 1})
    errors, _ = problems(SWIFT_GRPO, f"args.reward_model=[{seq_cls}]")
    assert "reward-model-task" not in {r for r, _ in errors}, errors


def test_generative_reward_model_is_judged_per_model_and_plugin():
    # the published genrm example: an LLM judge with genrm beside a registered reward model with its own plugin
    errors, _ = problems(SWIFT_GRPO, "args.reward_model=[Qwen/Qwen2.5-3B-Instruct,Shanghai_AI_Laboratory/internlm2-7b-reward]",
                         "args.reward_model_plugin=[genrm,default]")
    assert "reward-model-task" not in {r for r, _ in errors}, errors
    errors, _ = problems(SWIFT_GRPO, "args.reward_model=[Shanghai_AI_Laboratory/internlm2-7b-reward,Qwen/Qwen2.5-3B-Instruct]",
                         "args.reward_model_plugin=[default,default]")
    assert [m for r, m in errors if r == "reward-model-task"] == ["args.reward_model_plugin"], errors


def test_unregistered_reward_model_with_a_causal_reward_model_type_is_not_judged():
    # _get_model_task_type reads the checkpoint's own config.json (Qwen3ForSequenceClassification: seq_cls,
    # num_labels 1), not the ModelMeta of reward_model_type, so a reward model ms-swift does not register works
    # with the 'default' plugin under its base model's type.
    errors, _ = problems(SWIFT_GRPO, "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-8B]",
                         "args.reward_model_type=[qwen3]")
    assert "reward-model-task" not in {r for r, _ in errors}, errors
    # a registered causal LM stays refused with its type named
    errors, _ = problems(SWIFT_GRPO, "args.reward_model=[Qwen/Qwen3-8B]", "args.reward_model_type=[qwen3]")
    assert ("reward-model-task", "args.reward_model_plugin") in errors, errors


@pytest.mark.parametrize("flag", ["deepspeed_autotp_size", "zero_hpz_partition_size"])
def test_deepspeed_only_values_without_deepspeed_are_a_warning(flag):
    # SftArguments._init_deepspeed reads both only inside `if self.deepspeed:`: the real method leaves the arguments
    # untouched (no assert, no config) when deepspeed is unset, so the run trains plain DDP.
    from swift.arguments.sft_args import SftArguments

    values = SimpleNamespace(deepspeed=None, **{"deepspeed_autotp_size": None, "zero_hpz_partition_size": None,
                                                flag: 4})
    SftArguments._init_deepspeed(values)
    assert values.deepspeed is None
    errors, warnings = problems(SWIFT_SFT, f"args.{flag}=4")
    assert ("deepspeed-unread", f"args.{flag}") in warnings and not errors, (errors, warnings)
    _, warnings = problems(SWIFT_SFT, f"args.{flag}=4", "args.deepspeed=zero3")
    assert "deepspeed-unread" not in {r for r, _ in warnings}


NO_GATHER = "trl-3858-grpo-zero3-no-gather-generation"


def test_zero3_generation_without_gather_is_said_where_the_trained_model_generates():
    from test_length_rules import findings
    assert findings(NO_GATHER)[1].get("zero3-generation-gather") == {"args.ds3_gather_for_generation"}
    # on-policy GKD without vLLM generates with the student too
    assert "zero3-generation-gather" in findings(NO_GATHER, "args.rlhf_type=gkd", "args.reward_funcs=null",
                                                 "args.num_generations=null", "args.teacher_model=Qwen/Qwen2.5-7B-Instruct")[1]


@pytest.mark.parametrize("good", [
    ["args.ds3_gather_for_generation=true"],  # one gather per generate (the default)
    ["args.ds3_gather_for_generation=null"],
    ["args.deepspeed=zero2"],  # whole parameters on every rank
    ["args.use_vllm=true"],  # vLLM generates
])
def test_zero3_generation_without_gather_quiet(good):
    from test_length_rules import findings
    assert "zero3-generation-gather" not in findings(NO_GATHER, *good)[1]


SAVE_ONLY_BEST = "transformers-27751-deepspeed-save-only-model-best"


def test_save_only_model_with_best_model_under_a_wrapper_is_refused():
    from test_length_rules import findings
    assert findings(SAVE_ONLY_BEST)[0].get("save-only-best-model") == {"args.save_only_model"}
    assert findings(SAVE_ONLY_BEST, "args.deepspeed=null", "args.fsdp=fsdp2")[0].get("save-only-best-model") is not None
    for fine in (["args.save_only_model=false"], ["args.load_best_model_at_end=false"],
                 ["args.deepspeed=null"]):  # plain DDP reloads the model weights themselves
        assert "save-only-best-model" not in findings(SAVE_ONLY_BEST, *fine)[0], fine


def test_auto_find_batch_size_is_refused_under_zero3_only():
    from test_length_rules import findings
    assert findings(SAVE_ONLY_BEST, "args.save_only_model=false", "args.deepspeed=zero3",
                    "args.auto_find_batch_size=true")[0].get("auto-batch-zero3") == {"args.auto_find_batch_size"}
    for fine in (["args.deepspeed=zero2"], ["args.deepspeed=null"], ["args.deepspeed=zero3",
                                                                    "args.auto_find_batch_size=false"]):
        assert "auto-batch-zero3" not in findings(SAVE_ONLY_BEST, "args.save_only_model=false",
                                                  "args.auto_find_batch_size=true", *fine)[0], fine


def test_the_trainer_refuses_both_at_init():
    import inspect as _inspect

    from transformers import Trainer
    source = _inspect.getsource(Trainer.create_accelerator_and_postprocess)
    assert "can't be used with `save_only_model` along with `load_best_model_at_end`" in source
    assert "`auto_find_batch_size` isn't supported yet with DeepSpeed Zero-3" in source


RESUME_WORLD = "deepspeed-6441-zero3-resume-8-to-16-ranks"


def test_resuming_zero_state_on_another_data_parallel_size_is_refused():
    from test_issue_fixtures import ISSUES, plan
    path = ISSUES / f"{RESUME_WORLD}.yaml"

    def codes(*overrides):
        return {e.code for e in plan(path, *overrides).errors}

    assert "deepspeed-resume-world" in codes()
    assert "deepspeed-resume-world" in codes("args.deepspeed=zero2")  # every ZeRO stage partitions the optimizer
    for fine in (["launch.nodes=1"],  # the 8 ranks it was saved on
                 ["args.resume_only_model=true"],
                 ["args.deepspeed=null"],  # DDP: the optimizer state is whole
                 ["args.resume_from_checkpoint=output/checkpoint-999"],  # not readable here: not judged
                 ["""args.deepspeed={"zero_optimization": {"stage": 3}, "checkpoint": {"load_universal": true}}"""],
                 # ms-swift's elastic callback turns load_universal on and resumes only from a universal checkpoint
                 ["args.callbacks=[deepspeed_elastic]"],
                 # AutoTP 2 on the 16 ranks: 8 data-parallel ranks, as saved
                 ["args.deepspeed_autotp_size=2"]):
        assert "deepspeed-resume-world" not in codes(*fine), fine
    assert "deepspeed-resume-world" in codes("args.deepspeed_autotp_size=4")  # 4 dp ranks against 8 saved
