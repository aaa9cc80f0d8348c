"""The RLHF algorithm-argument rules of swift_ext/msswift/rlhf_rules.py: one failing and one passing recipe per rule,
the loss names checked against the branches of the installed ms-swift trainers, and ms-swift's own KTO batch check
run on the same inputs."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from swift_ext.msswift import preference_rules, rlhf_rules
from swift_ext.msswift.rlhf_rules import CPO_LOSS_TYPES, DPO_LOSS_TYPES, GRPO_LOSS_TYPES, KTO_LOSS_TYPES
from swift_ext.msswift.schema import _package_dir
from test_msrules import MEG_GRPO, MEG_SFT, SWIFT_GRPO, SWIFT_SFT, problems

KTO = ["command=rlhf", "args.rlhf_type=kto", "args.per_device_train_batch_size=1", "args.gradient_accumulation_steps=1"]
MEG_KTO = ["command=rlhf", "args.rlhf_type=kto", "args.micro_batch_size=1", "args.global_batch_size=1"]
MEG_DPO = ["command=rlhf", "args.rlhf_type=dpo"]
SWIFT_DPO = ["args.rlhf_type=dpo", "args.tuner_type=lora"]
SYNC = ["args.sync_ref_model=true"]
COLOCATE = ["args.use_vllm=true", "args.vllm_mode=colocate", "args.vllm_gpu_memory_utilization=0.5"]
CONTINUE = ["args.rlhf_type=dpo", "args.adapters=[out/sft/checkpoint-100]"]
GKD = ["args.rlhf_type=gkd", "args.reward_funcs=null"]
PPO = ["args.rlhf_type=ppo", "args.reward_funcs=null", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]"]
EMB = ["args.model=Qwen/Qwen3-Embedding-0.6B", "args.task_type=embedding"]
GEN_RERANK = ["args.model=Qwen/Qwen3-Reranker-0.6B", "args.task_type=generative_reranker"]
RERANK = ["args.model=iic/gte-reranker-modernbert-base"]  # ModelMeta task_type reranker
GSPO = ["args.importance_sampling_level=sequence"]
SERVER2 = ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=[10.0.0.2, 10.0.0.3]"]

CASES = [
    # (rule, flag it names, error or warning, base recipe, overrides that break it, overrides that satisfy it)
    ("gym-scheduler", "use_gym_env", "error", MEG_GRPO, ["args.use_gym_env=true"],
     ["args.use_gym_env=true", "args.multi_turn_scheduler=openenv_scheduler"]),
    ("gym-env", "gym_env", "error", MEG_GRPO, ["args.multi_turn_scheduler=gym_scheduler", "args.max_turns=4",
                                               "args.gym_env=frozen_lake"],
     ["args.multi_turn_scheduler=gym_scheduler", "args.max_turns=4", "args.gym_env=math_env"]),
    ("grpo-dynamic-opd", "loss_type", "warning", SWIFT_GRPO, ["args.loss_type=fipo"], ["args.loss_type=dapo"]),
    ("grpo-chord", "chord_mu_warmup_steps", "error", SWIFT_GRPO,
     ["args.chord_sft_dataset=[AI-MO/NuminaMath-TIR]", "args.chord_sft_per_device_train_batch_size=1"],
     ["args.chord_sft_dataset=[AI-MO/NuminaMath-TIR]", "args.chord_sft_per_device_train_batch_size=1",
      "args.chord_mu_warmup_steps=0", "args.chord_mu_decay_steps=200", "args.chord_mu_valley=0.05",
      "args.chord_mu_peak=0.9"]),
    ("loss-type", "loss_type", "error", SWIFT_GRPO, ["args.loss_type=gspo"],
     ["args.loss_type=grpo", "args.importance_sampling_level=sequence"]),
    ("loss-type", "loss_type", "error", SWIFT_GRPO, ["args.loss_type=[sigmoid]"], ["args.loss_type=[dapo]"]),
    ("loss-type", "loss_type", "error", MEG_GRPO, ["args.loss_type=dpo"], ["args.loss_type=cispo"]),
    ("loss-type", "loss_type", "error", SWIFT_GRPO, [*SWIFT_DPO, "args.loss_type=[sigmoid, simpo]"],
     [*SWIFT_DPO, "args.loss_type=[sigmoid, bco_pair, sft]", "args.loss_weights=[0.8, 0.2, 1.0]"]),
    ("cispo-clip", "epsilon_high", "warning", SWIFT_GRPO, ["args.loss_type=cispo"],
     ["args.loss_type=cispo", "args.epsilon_high=5.0"]),
    ("cispo-clip", "epsilon_high", "warning", MEG_GRPO, ["args.loss_type=cispo", "args.epsilon_high=0.28"],
     ["args.loss_type=dapo", "args.epsilon_high=0.28"]),
    # GSPO: the clip matters off-policy, from the paper's 4 updates per rollout; 3e-4 / 4e-4 is the paper's range
    ("gspo-clip", "epsilon", "warning", SWIFT_GRPO, [*GSPO, "args.steps_per_generation=4"],
     [*GSPO, "args.steps_per_generation=4", "args.epsilon=3e-4", "args.epsilon_high=4e-4"]),
    ("gspo-clip", "epsilon", "warning", SWIFT_GRPO, [*GSPO, "args.num_iterations=2", "args.steps_per_generation=2"],
     [*GSPO, "args.gradient_accumulation_steps=4", "args.steps_per_generation=4"]),  # one update per rollout
    ("gspo-clip", "epsilon_high", "warning", MEG_GRPO, [*GSPO, "args.steps_per_generation=4"],
     ["args.importance_sampling_level=token", "args.steps_per_generation=4"]),
    ("gspo-clip", "epsilon", "warning", MEG_GRPO, ["args.importance_sampling_level=sequence_token",
                                                   "args.epsilon_high=null", "args.steps_per_generation=4"],
     ["args.importance_sampling_level=sequence", "args.epsilon_high=null"]),  # its 2 updates: near on-policy
    # an answer-graded reward under ms-swift's 512-token default; other rewards (format) grade no final answer
    ("grpo-completion-budget", "max_completion_length", "warning", SWIFT_GRPO,
     ["args.reward_funcs=[accuracy, format]", "args.max_completion_length=256", "args.max_steps=200"],
     ["args.reward_funcs=[accuracy, format]", "args.max_completion_length=512", "args.max_steps=200"]),
    ("grpo-completion-budget", "max_completion_length", "warning", MEG_GRPO,
     ["args.reward_funcs=[math]", "args.max_completion_length=200"],
     ["args.reward_funcs=[format]", "args.max_completion_length=200"]),
    ("grpo-completion-budget", "max_completion_length", "warning", MEG_GRPO,
     ["args.reward_funcs=[accuracy]", "args.max_completion_length=128", "args.train_iters=200"],
     ["args.reward_funcs=[accuracy]", "args.max_completion_length=128", "args.train_iters=1"]),  # a smoke run
    ("vllm-settings", "vllm_data_parallel_size", "warning", SWIFT_GRPO, [*COLOCATE, "args.vllm_data_parallel_size=8"],
     [*COLOCATE, "args.vllm_tensor_parallel_size=1"]),
    ("vllm-settings", "vllm_max_lora_rank", "warning", SWIFT_GRPO, [*COLOCATE, "args.vllm_max_lora_rank=64"],
     [*COLOCATE, "args.vllm_max_lora_rank=16"]),  # the default, stated
    ("vllm-settings", "vllm_gpu_memory_utilization", "warning", SWIFT_GRPO,
     ["args.use_vllm=true", "args.vllm_mode=colocate"],  # ms-swift's default 0.9, kept while training
     ["args.use_vllm=true", "args.vllm_mode=colocate", "args.sleep_level=1"]),
    ("vllm-lora-sync", "modules_to_save", "warning", SWIFT_GRPO,
     [*COLOCATE, "args.vllm_enable_lora=true", "args.modules_to_save=[lm_head]"],
     [*COLOCATE, "args.vllm_enable_lora=false", "args.modules_to_save=[lm_head]"]),
    ("vllm-lora-sync", "use_dora", "error", SWIFT_GRPO, [*COLOCATE, "args.vllm_enable_lora=true", "args.use_dora=true"],
     [*COLOCATE, "args.vllm_enable_lora=false", "args.use_dora=true"]),  # merged syncs carry no PEFT config
    ("vllm-lora-sync", "use_dora", "warning", SWIFT_GRPO,
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=127.0.0.1", "args.vllm_enable_lora=true",
      "args.use_dora=true"],
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=127.0.0.1", "args.use_dora=true"]),
    ("vllm-lora-sync", "lora_bias", "error", MEG_GRPO, ["args.vllm_enable_lora=true", "args.lora_bias=all"],
     ["args.vllm_enable_lora=true", "args.lora_bias=none"]),
    ("vllm-server", "vllm_server_port", "error", SWIFT_GRPO, [*SERVER2, "args.vllm_server_port=[8000]"],
     [*SERVER2, "args.vllm_server_port=[8000, 8000]"]),  # the same port on two hosts is fine
    ("vllm-server", "vllm_server_group_port", "error", SWIFT_GRPO, [*SERVER2, "args.vllm_server_port=[8000, 8001]",
                                                                    "args.vllm_server_group_port=[51216]"],
     [*SERVER2, "args.vllm_server_port=[8000, 8001]", "args.vllm_server_group_port=[51216, 51217]"]),
    ("vllm-server", "vllm_server_host", "error", MEG_GRPO, ["args.vllm_mode=server"],
     ["args.vllm_mode=server", "args.vllm_server_host=[10.0.0.2]"]),
    # a lone server moved off port 8000 (a second job's, ms-swift#6866) still syncs weights over group port 51216;
    # the default port, a group port of its own, or two servers (51216 + i) are not said
    ("vllm-group-port", "vllm_server_group_port", "warning", SWIFT_GRPO,
     ["args.vllm_server_host=[127.0.0.1]", "args.vllm_server_port=[8001]"],
     ["args.vllm_server_host=[127.0.0.1]", "args.vllm_server_port=[8001]", "args.vllm_server_group_port=[51217]"]),
    ("vllm-group-port", "vllm_server_group_port", "warning", SWIFT_GRPO,
     ["args.vllm_server_host=[127.0.0.1]", "args.vllm_server_port=[8001]"],
     ["args.vllm_server_host=[127.0.0.1]", "args.vllm_server_port=[8000]"]),
    ("vllm-group-port", "vllm_server_group_port", "warning", MEG_GRPO,
     ["args.vllm_mode=server", "args.vllm_server_host=[10.0.0.2]", "args.vllm_server_port=[8001]"],
     [*SERVER2, "args.vllm_server_port=[8000, 8001]"]),
    ("rollout-is-filtering", "top_p", "warning", MEG_GRPO,
     ["args.rollout_importance_sampling_mode=token_truncate", "args.top_p=0.9"],
     ["args.rollout_importance_sampling_mode=token_truncate", "args.top_p=1.0"]),
    ("rollout-is-filtering", "top_k", "warning", SWIFT_GRPO,
     [*COLOCATE, "args.rollout_importance_sampling_mode=sequence_mask", "args.top_k=50"],
     [*COLOCATE, "args.top_k=50"]),  # no rollout logprobs in the loss without the correction
    ("rollout-is-filtering", "repetition_penalty", "warning", MEG_GRPO,
     ["args.rollout_importance_sampling_mode=token_mask", "args.repetition_penalty=1.05"],
     ["args.rollout_importance_sampling_mode=token_mask", "args.repetition_penalty=1.0"]),
    ("fp8-rollout-sync", "vllm_engine_kwargs", "warning", MEG_GRPO, ['args.vllm_engine_kwargs={"quantization": "fp8"}'],
     ['args.vllm_engine_kwargs={"max_num_batched_tokens": 16384}']),
    ("fp8-rollout-sync", "vllm_engine_kwargs", "warning", SWIFT_GRPO,
     [*COLOCATE, 'args.vllm_engine_kwargs={"quantization": "fp8"}'],
     ["args.use_vllm=true", "args.vllm_mode=server", "args.vllm_server_host=127.0.0.1",
      'args.vllm_engine_kwargs={"quantization": "fp8"}']),  # a server loads its own engine: not this trainer's
    # 4.6 starts a GRPO with no reward and no teacher as self-distillation (rollout_mixin._setup_teacher): said
    ("grpo-reward", "reward_funcs", "warning", SWIFT_GRPO, ["args.reward_funcs=null"],
     ["args.reward_funcs=null", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]"]),
    ("grpo-reward", "reward_funcs", "warning", SWIFT_GRPO, ["args.reward_funcs=null", "args.use_gym_env=false"],
     ["args.reward_funcs=null", "args.teacher_model=Qwen/Qwen3-8B"]),  # OPD-RL: the teacher's KL is the signal
    ("grpo-reward", "reward_funcs", "warning", MEG_GRPO,
     ["args.reward_funcs=null", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]"],
     ["args.reward_funcs=[accuracy]", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]"]),
    ("ppo-reward-model", "reward_model", "error", SWIFT_GRPO, ["args.rlhf_type=ppo", "args.reward_funcs=null"],
     ["args.rlhf_type=ppo", "args.reward_funcs=null", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]"]),
    ("ppo-reward-model", "reward_model", "error", SWIFT_GRPO,
     ["args.rlhf_type=ppo", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B, Skywork/Skywork-Reward-V2-Qwen3-1.7B]"],
     ["args.rlhf_type=ppo", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-1.7B]"]),
    ("reward-model-lists", "reward_model_type", "error", SWIFT_GRPO,
     ["args.rlhf_type=ppo", "args.reward_funcs=null", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]",
      "args.reward_model_type=[qwen3_reward, qwen3_reward]"],
     ["args.rlhf_type=ppo", "args.reward_funcs=null", "args.reward_model=[Skywork/Skywork-Reward-V2-Qwen3-0.6B]",
      "args.reward_model_type=[qwen3_reward]"]),
    ("sft-loss-type", "loss_type", "error", SWIFT_SFT, ["args.loss_type=grpo"], ["args.loss_type=cross_entropy"]),
    # the embedding / generative-reranker heads have no loss of their own; the classifier reranker has (seq_cls MSE)
    ("encoder-loss-type", "task_type", "error", SWIFT_SFT, [*EMB], [*EMB, "args.loss_type=infonce"]),
    ("encoder-loss-type", "loss_type", "error", SWIFT_SFT, [*EMB, "args.loss_type=pointwise_reranker"],
     [*EMB, "args.loss_type=cosine_similarity"]),
    ("encoder-loss-type", "task_type", "error", SWIFT_SFT, [*GEN_RERANK], [*GEN_RERANK, "args.loss_type=listwise_reranker"]),
    ("encoder-loss-type", "loss_type", "error", SWIFT_SFT, [*RERANK, "args.loss_type=infonce"], RERANK),
    ("megatron-task-loss", "loss_type", "error", MEG_SFT, [*EMB], [*EMB, "args.loss_type=infonce"]),  # encoder-loss-type's Megatron twin
    ("megatron-dpo-loss", "loss_type", "warning", MEG_SFT, [*MEG_DPO, "args.loss_type=hinge"],
     [*MEG_DPO, "args.loss_type=sigmoid"]),
    # KTO's and CPO/SimPO's loss names (trl's kto_loss / cpo_loss branches); kto (the default) and simpo pass
    ("loss-type", "loss_type", "error", SWIFT_GRPO, [*KTO, "args.gradient_accumulation_steps=2", "args.loss_type=[sigmoid]"],
     [*KTO, "args.gradient_accumulation_steps=2", "args.loss_type=[apo_zero_unpaired]"]),
    ("loss-type", "loss_type", "error", MEG_SFT, [*MEG_KTO, "args.global_batch_size=16", "args.loss_type=ipo"],
     [*MEG_KTO, "args.global_batch_size=16", "args.loss_type=kto"]),
    ("loss-type", "loss_type", "error", SWIFT_GRPO, ["args.rlhf_type=simpo", "args.loss_type=[apo_zero]"],
     ["args.rlhf_type=simpo", "args.loss_type=[alphapo]"]),
    ("loss-type", "loss_type", "error", SWIFT_GRPO, ["args.rlhf_type=cpo", "args.loss_type=[robust]"],
     ["args.rlhf_type=cpo", "args.loss_type=[hinge]"]),
    ("kto-batch", "per_device_train_batch_size", "error", SWIFT_GRPO, KTO,
     [*KTO, "args.gradient_accumulation_steps=2"]),
    ("kto-batch", "per_device_train_batch_size", "error", SWIFT_GRPO, KTO, [*KTO, "args.loss_type=apo_zero_unpaired"]),
    ("kto-batch", "global_batch_size", "error", MEG_SFT, MEG_KTO, [*MEG_KTO, "args.global_batch_size=2"]),
    ("sync-ref-model", "sync_ref_model", "warning", SWIFT_GRPO, SYNC, [*SYNC, "args.tuner_type=full", "args.beta=0.04"]),
    ("sync-ref-model", "sync_ref_model", "warning", SWIFT_GRPO, [*SYNC, "args.tuner_type=full", "args.beta=0"],
     [*SYNC, "args.tuner_type=full"]),  # GRPO's default beta (0.04) keeps a reference model
    ("rlhf-ref-adapter", "ref_adapters", "warning", SWIFT_GRPO, CONTINUE,
     [*CONTINUE, "args.ref_adapters=[out/sft/checkpoint-100]"]),
    ("rlhf-ref-adapter", "ref_adapters", "warning", SWIFT_GRPO,
     ["args.rlhf_type=kto", "args.resume_from_checkpoint=out/sft/checkpoint-100", "args.resume_only_model=true"],
     ["args.rlhf_type=kto", "args.resume_from_checkpoint=out/kto/checkpoint-100"]),  # resuming the KTO run itself
    ("rlhf-ref-adapter", "ref_adapters", "warning", SWIFT_GRPO, ["args.adapters=[out/sft/checkpoint-100]", "args.beta=0.04"],
     ["args.adapters=[out/sft/checkpoint-100]", "args.beta=0"]),  # GRPO without a reference model
    ("rlhf-ref-adapter", "ref_adapters", "warning", MEG_SFT, [*MEG_DPO, "args.mcore_adapter=out/sft/iter_100"],
     [*MEG_DPO, "args.mcore_adapter=out/sft/iter_100", "args.mcore_ref_adapter=out/sft/iter_100"]),
    # msswift/preference_rules.py
    ("gkd-range", "beta", "error", SWIFT_GRPO, [*GKD, "args.beta=2.0"], [*GKD, "args.beta=1.0"]),
    ("gkd-range", "lmbda", "error", SWIFT_GRPO, [*GKD, "args.lmbda=1.5"], [*GKD, "args.lmbda=1.0"]),
    ("gkd-range", "beta", "error", MEG_GRPO, [*GKD, "args.beta=1.5"], [*GKD, "args.beta=0.5"]),
    ("gkd-on-policy", "use_vllm", "warning", MEG_GRPO, [*GKD, "args.use_vllm=false"],
     [*GKD, "args.use_vllm=false", "args.lmbda=0"]),  # lmbda 0: off-policy by choice
    ("ref-adapters", "ref_adapters", "error", SWIFT_GRPO, ["args.rlhf_type=orpo", "args.ref_adapters=[out/sft/ckpt-1]"],
     ["args.rlhf_type=kto", "args.ref_adapters=[out/sft/ckpt-1]"]),
    ("ref-adapters", "ref_adapters", "error", SWIFT_GRPO, [*SWIFT_DPO, "args.ref_adapters=[out/a, out/b]"],
     [*SWIFT_DPO, "args.ref_adapters=[out/a]"]),
    ("ppo-batch", "num_mini_batches", "error", SWIFT_GRPO, [*PPO, "args.num_mini_batches=3"],  # 4 x 4 filled = 16
     [*PPO, "args.num_mini_batches=4"]),
    ("ppo-batch", "whiten_rewards", "error", SWIFT_GRPO, [*PPO, "args.num_mini_batches=4", "args.whiten_rewards=true"],
     [*PPO, "args.whiten_rewards=true"]),  # one mini-batch of 16
    ("megatron-ref-model", "ref_model", "warning", MEG_SFT, [*MEG_DPO, "args.ref_model=Qwen/Qwen3.6-35B-A3B"],
     [*MEG_DPO, "args.ref_model=Qwen/Qwen3.6-35B-A3B", "args.tuner_type=full"]),
    ("megatron-ref-model", "mcore_ref_model", "warning", MEG_SFT,
     ["command=rlhf", "args.rlhf_type=rm", "args.tuner_type=full", "args.mcore_ref_model=out/ref/iter_100"],
     ["command=rlhf", "args.rlhf_type=kto", "args.tuner_type=full", "args.mcore_ref_model=out/ref/iter_100"]),
]


@pytest.mark.parametrize("rule, flag, kind, base, bad, good", CASES, ids=[f"{c[0]}:{c[1]}:{c[3].stem}" for c in CASES])
def test_rule_fails_then_passes(rule, flag, kind, base, bad, good):
    found = problems(base, *bad)[0 if kind == "error" else 1]
    assert (rule, f"args.{flag}") in found, found
    found = problems(base, *good)[0 if kind == "error" else 1]
    assert rule not in {r for r, _ in found}, found


@pytest.mark.parametrize("module", [rlhf_rules, preference_rules], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_rule_has_a_case(module):
    source = inspect.getsource(module)
    named = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith(('err("', 'warn("'))}
    assert named and named <= {c[0] for c in CASES}, named - {c[0] for c in CASES}


def test_a_loss_a_plugin_registers_is_accepted(tmp_path):
    plugin = tmp_path / "loss_plugin.py"
    plugin.write_text("from swift.loss import loss_map\nloss_map['my_loss'] = object\n", encoding="utf-8")
    errors, _ = problems(SWIFT_SFT, "args.loss_type=my_loss", f"args.external_plugins=[{plugin}]")
    assert "sft-loss-type" not in {r for r, _ in errors}
    errors, _ = problems(SWIFT_SFT, "args.loss_type=my_losss", f"args.external_plugins=[{plugin}]")
    assert ("sft-loss-type", "args.loss_type") in errors



def test_a_3x_reranker_loss_is_refused_with_its_4x_name():
    # ms-swift 3.x's listwise_generative_reranker (ms-swift#4820's script) is 4.6's listwise_reranker: the KeyError
    # is real on 4.6 (swift/loss/mapping.py), and the message names the spelling that runs
    from swift_ext.msswift.bound_args import Args
    from swift_ext.msswift.rules import check_msswift
    from swift_ext.msswift.schema import schema_for
    from swift_ext.spec.recipe import load_recipe

    recipe = load_recipe(SWIFT_SFT, ["args.task_type=generative_reranker", "args.loss_type=listwise_generative_reranker"])
    errors, _ = check_msswift(recipe, Args.bind(recipe, schema_for(recipe.engine, recipe.command)))
    found = [e for e in errors if e.code == "sft-loss-type"]
    assert found and "which 4.x calls listwise_reranker" in found[0].message, [e.message for e in errors]
    fixed, _ = problems(SWIFT_SFT, "args.task_type=generative_reranker", "args.loss_type=listwise_reranker")
    assert "sft-loss-type" not in {r for r, _ in fixed}

def _compared_names(path: Path, function: str, var: str) -> set[str]:
    """The string constants `function` in `path` compares `var` (a name, or self.<name>) against with == or in."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function):
        for node in ast.walk(fn):
            if not isinstance(node, ast.Compare) or not isinstance(node.ops[0], (ast.Eq, ast.In)):
                continue
            left = node.left
            named = (isinstance(left, ast.Name) and left.id == var) or \
                (isinstance(left, ast.Attribute) and left.attr == var and isinstance(left.value, ast.Name))
            if not named:
                continue
            right = node.comparators[0]
            items = right.elts if isinstance(right, (ast.List, ast.Tuple, ast.Set)) else [right]
            names |= {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
    return names


def test_the_loss_names_are_the_branches_of_the_installed_trainers():
    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    grpo = _compared_names(root / "rlhf_trainers/grpo_trainer.py", "_compute_loss_and_metrics", "loss_type")
    megatron_grpo = _compared_names(root / "megatron/trainers/grpo_trainer.py", "loss_func", "loss_type")
    dpo = _compared_names(root / "rlhf_trainers/dpo_trainer.py", "dpo_loss", "loss_type")
    assert set(GRPO_LOSS_TYPES) == grpo == megatron_grpo
    assert set(DPO_LOSS_TYPES) == dpo


def test_the_kto_and_cpo_loss_names_are_the_branches_of_the_installed_trl():
    # ms-swift 4.6 runs KTO (both engines) and CPO/SimPO through trl's experimental trainers; alphapo is CPOConfig's
    # alias for simpo (CPOConfig.__post_init__), not a branch of cpo_loss
    root = _package_dir("trl")
    if root is None:
        pytest.skip("trl is not installed here")
    kto = _compared_names(root / "experimental/kto/kto_trainer.py", "kto_loss", "loss_type")
    cpo = _compared_names(root / "experimental/cpo/cpo_trainer.py", "cpo_loss", "loss_type")
    assert set(KTO_LOSS_TYPES) == kto
    assert set(CPO_LOSS_TYPES) - {"alphapo"} == cpo
    assert 'if self.loss_type == "alphapo":' in (root / "experimental/cpo/cpo_config.py").read_text()


def test_trl_itself_refuses_gkd_beta_and_lmbda_out_of_range():
    from trl.experimental.gkd import GKDConfig

    with pytest.raises(ValueError, match="beta must be in the range"):
        GKDConfig(output_dir="/tmp/gkd-range-test", beta=2.0, report_to=[], bf16=False, use_cpu=True)
    with pytest.raises(ValueError, match="lmbda must be in the range"):
        GKDConfig(output_dir="/tmp/gkd-range-test", lmbda=1.5, report_to=[], bf16=False, use_cpu=True)


def test_megatron_gkd_loss_is_nan_for_a_beta_past_one():
    # the loss Megatron GKD calls (rlhf_trainers/gkd_loss.py gkd_loss) mixes the two distributions with log(beta) and
    # log1p(-beta): past 1 that is NaN, where ms-swift itself raises nothing
    import torch

    assert torch.isnan(torch.log1p(-torch.tensor(1.5)))
    source = (_package_dir("swift") / "rlhf_trainers/gkd_loss.py").read_text()
    assert "torch.log1p(-beta_t)" in source and "torch.log(beta_t)" in source


def test_ms_swift_itself_refuses_a_kto_batch_of_one():
    from swift.pipelines.train.kto import prepare_kto_dataset

    args = SimpleNamespace(loss_type="kto", per_device_train_batch_size=1, gradient_accumulation_steps=1,
                           dataset_num_proc=1, data_seed=42)
    with pytest.raises(ValueError, match="Batch size is 1"):
        prepare_kto_dataset(args, None, None)  # one process: WORLD_SIZE unset


def test_precompute_ref_log_probs_is_refused_as_no_argument_of_4_6_with_or_without_liger():
    # trl's DPOConfig has precompute_ref_log_probs, ms-swift 4.6's RLHFArguments does not (its parser refuses it), and
    # swift/rlhf_trainers/dpo_trainer.py DPOTrainer.__init__ raises for it anyway ("precompute_ref_log_probs=True is
    # not supported by Swift DPOTrainer"), Liger DPO loss or not: the unknown-argument check already names the flag,
    # so no rule of its own (the 'precompute_ref_log_probs with use_liger_kernel' idea is wider in 4.6).
    from swift_ext.msswift.schema import schema_for
    from swift_ext.planner.arg_checks import check_args
    from swift_ext.spec.recipe import load_recipe

    assert "'precompute_ref_log_probs=True is not supported by Swift DPOTrainer. '" in (
        _package_dir("swift") / "rlhf_trainers/dpo_trainer.py").read_text()
    for liger in ("true", "false"):
        recipe = load_recipe(SWIFT_SFT, ["command=rlhf", *SWIFT_DPO, f"args.use_liger_kernel={liger}",
                                         "args.precompute_ref_log_probs=true"])
        refused = check_args(recipe, schema_for(recipe.engine, recipe.command))
        assert [p.path for p in refused] == ["args.precompute_ref_log_probs"]
    near = load_recipe(SWIFT_SFT, ["command=rlhf", *SWIFT_DPO, "args.use_liger_kernel=true"])
    assert check_args(near, schema_for(near.engine, near.command)) == []
