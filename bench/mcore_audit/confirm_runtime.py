"""Confirms on the CPU, with megatron-core 0.16.1's own code, the refusals the oracle does not run (they fire when the
model is built or in the first step): the audit's rows moe-flex-tp1ep1, moe-sinkhorn-aux and sched-overlap-nonint, and hybrid-cp-dict-batch (rule
hybrid-cp-schedule: the no-pipelining schedule with hybrid_context_parallel fed ms-swift's micro-batch dict), and the
runtime audit's (runtime_cases.py) expert-module rows rt-gg-bias-dropout-fusion and rt-probs-on-input-topk (rule
moe-experts-config).
Run: PYTHONPATH=. python bench/mcore_audit/confirm_runtime.py"""
from __future__ import annotations

import torch

from megatron.core import parallel_state
from megatron.core.transformer.transformer_config import TransformerConfig
from swift_ext.planner.oracle_grid import fake_rank

BASE = dict(num_layers=2, hidden_size=64, num_attention_heads=4, num_moe_experts=4, moe_ffn_hidden_size=32,
            moe_router_topk=2, bf16=True, params_dtype=torch.bfloat16, use_cpu_initialization=True)


def outcome(fn) -> str:
    try:
        fn()
        return "accepted"
    except Exception as exc:  # noqa: BLE001 -- the engine's own refusal is what is printed
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:90]}"


def flex_tp1_ep1():
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.moe.token_dispatcher import MoEFlexTokenDispatcher

    with fake_rank(1, 0):
        parallel_state.initialize_model_parallel(create_gloo_process_groups=False)
        cfg = TransformerConfig(**BASE, moe_token_dispatcher_type="flex", moe_router_dtype="fp32")
        pgs = ProcessGroupCollection.use_mpu_process_groups()
        MoEFlexTokenDispatcher(4, [0, 1, 2, 3], cfg, pg_collection=pgs)


def sinkhorn_aux():
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.moe.router import TopKRouter

    with fake_rank(1, 0):
        parallel_state.initialize_model_parallel(create_gloo_process_groups=False)
        cfg = TransformerConfig(**{**BASE, "bf16": False, "params_dtype": torch.float32},
                                moe_router_load_balancing_type="sinkhorn", moe_aux_loss_coeff=0.01)
        router = TopKRouter(cfg, pg_collection=ProcessGroupCollection.use_mpu_process_groups())
        router.train()
        router.sinkhorn_load_balancing(torch.zeros(3, 4))


def overlap_nonint():
    from megatron.core.pipeline_parallel.schedules import forward_backward_pipelining_without_interleaving

    cfg = TransformerConfig(**BASE, pipeline_model_parallel_size=2, pipeline_dtype=torch.bfloat16,
                            overlap_p2p_comm=True, batch_p2p_comm=False)
    model = torch.nn.Linear(1, 1)
    model.config = cfg
    forward_backward_pipelining_without_interleaving(forward_step_func=None, data_iterator=None, model=[model],
                                                    num_microbatches=2, seq_length=8, micro_batch_size=1)


def hybrid_cp_dict_batch():
    # forward_backward_no_pipelining hands the step to this function when config.hybrid_context_parallel is on (it
    # first allocates a CUDA tensor, so the CPU run calls the function it dispatches to directly).
    from megatron.core.pipeline_parallel.hybrid_cp_schedule import hybrid_context_parallel_forward_backward

    with fake_rank(1, 0):
        parallel_state.initialize_model_parallel(create_gloo_process_groups=False)
        batch = {"input_ids": torch.zeros(1, 8, dtype=torch.long)}  # what ms-swift's cyclic_iter yields per step
        hybrid_context_parallel_forward_backward(None, iter([batch]), [None], 1, None, None, [], None, False, None,
                                                 False, None, 0, None, None)




def _experts_config(**over):
    return TransformerConfig(**{**BASE, "bf16": False, "params_dtype": torch.float32}, **over)


def te_grouped_bias_fusion():
    # the assert comes before any Transformer Engine call, so the CPU (no TE) reaches it
    from megatron.core.transformer.moe.experts import TEGroupedMLP

    with fake_rank(1, 0):
        parallel_state.initialize_model_parallel(create_gloo_process_groups=False)
        TEGroupedMLP(2, _experts_config(add_bias_linear=True, bias_dropout_fusion=True), None)


def sequential_probs_on_input_topk2():
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.moe.experts import SequentialMLP

    with fake_rank(1, 0):
        parallel_state.initialize_model_parallel(create_gloo_process_groups=False)
        cfg = _experts_config(moe_apply_probs_on_input=True)
        spec = get_gpt_layer_local_spec(num_experts=4, moe_grouped_gemm=False).submodules.mlp.submodules.experts
        mlp = SequentialMLP(2, cfg, spec.submodules, pg_collection=ProcessGroupCollection.use_mpu_process_groups())
        mlp(torch.zeros(4, 64), torch.tensor([2, 2]), torch.ones(4))


if __name__ == "__main__":
    for name, fn in (("moe-flex-tp1ep1", flex_tp1_ep1), ("moe-sinkhorn-aux", sinkhorn_aux),
                     ("sched-overlap-nonint", overlap_nonint), ("hybrid-cp-dict-batch", hybrid_cp_dict_batch),
                     ("rt-gg-bias-dropout-fusion", te_grouped_bias_fusion),
                     ("rt-probs-on-input-topk", sequential_probs_on_input_topk2)):
        print(f"{name}\t{outcome(fn)}", flush=True)
