"""Which PP=2 interleaved schedules cross the pipeline's point-to-point messages (rule pipeline-p2p-pp2).

Runs megatron-core 0.16.1's own forward_backward_pipelining_with_interleaving once per pipeline rank on the CPU, with
forward_step / backward_step replaced by stand-ins and the communicator's transport replaced by a recorder that logs
the operations in the order P2PCommunicator._communicate_shapes posts them (send_prev, recv_prev, send_next,
recv_next; variable_seq_lengths is on under ms-swift). At PP 2 both directions go to the one peer over one
communicator, and NCCL pairs same-peer operations in posting order: the k-th send from rank a meets the k-th receive
on rank b. A "crossed" receive is a recv_prev (waiting for an activation) that gets a gradient, or the reverse.

Run: python bench/mcore_audit/p2p_pp2_pairing.py [V M G] ... ; prints one line per case:
  V M G overlap crossed all_warmup
(G = microbatch_group_size_per_vp_stage, PP by default). Measured on megatron-core 0.16.1: with overlap_p2p_comm off,
every M >= 3 crosses receives; M = 2 (every micro-batch of rank 0 in the warm-up) crosses none; overlap on crosses
none. This process patches megatron-core's module globals: run it as its own process (the tests do)."""
from __future__ import annotations

import sys
import types


def _simulate(v: int, m: int, g: int, overlap: bool):
    import torch
    import megatron.core.pipeline_parallel.schedules as schedules
    from megatron.core.enums import ModelType
    from megatron.core.pipeline_parallel.p2p_communication import P2PCommunicator
    from megatron.core.transformer.transformer_config import TransformerConfig

    zeros = torch.zeros
    torch.zeros = lambda *a, **k: zeros(*a, **{x: y for x, y in k.items() if x != "device"})  # device="cuda"

    class Group:
        def __init__(self, rank, size):
            self._rank, self._size = rank, size

        def rank(self):
            return self._rank

        def size(self):
            return self._size

    class Recorder(P2PCommunicator):
        def __init__(self, pp_group, config, log):  # no torch.distributed: the peer is the other rank
            self.pp_group, self.config, self.log = pp_group, config, log
            self.virtual_pipeline_model_parallel_size = config.virtual_pipeline_model_parallel_size
            self.next_rank = self.prev_rank = 1 - pp_group.rank()

        def _communicate(self, *, tensor_send_next, tensor_send_prev, recv_prev, recv_next, tensor_shape,
                         wait_on_reqs=True):
            ops = []  # _communicate_shapes' posting order
            if tensor_send_prev is not None:
                ops.append(("send", "grad"))
            if recv_prev:
                ops.append(("recv", "act"))
            if tensor_send_next is not None:
                ops.append(("send", "act"))
            if recv_next:
                ops.append(("recv", "grad"))
            self.log.append(ops)
            make = lambda: torch.zeros(tensor_shape, requires_grad=True)  # noqa: E731
            return (make() if recv_prev else None), (make() if recv_next else None), \
                ([] if self.config.batch_p2p_comm else {})

    class Chunk(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config, self.model_type = config, ModelType.encoder_or_decoder
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def set_input_tensor(self, tensor):
            pass

    schedules.forward_step = lambda *a, **k: (torch.ones(4, 1, 8, requires_grad=True), torch.tensor(1))
    schedules.backward_step = lambda *a, **k: torch.ones(4, 1, 8)
    schedules.is_pp_first_stage = lambda group: group.rank() == 0
    schedules.is_pp_last_stage = lambda group: group.rank() == group.size() - 1

    logs, all_warmup = [], None
    for rank in (0, 1):
        config = TransformerConfig(num_layers=2 * v, hidden_size=8, num_attention_heads=1,
                                   pipeline_model_parallel_size=2, virtual_pipeline_model_parallel_size=v,
                                   overlap_p2p_comm=overlap, batch_p2p_comm=not overlap, variable_seq_lengths=True,
                                   moe_token_dispatcher_type="alltoall", pipeline_dtype=torch.float32)
        config.microbatch_group_size_per_vp_stage = g
        log, group = [], Group(rank, 2)
        single = Group(0, 1)
        groups = types.SimpleNamespace(tp=single, cp=single, embd=None, pos_embd=None, pp=group, dp_cp=single)
        schedules.forward_backward_pipelining_with_interleaving(
            forward_step_func=None, data_iterator=[iter(()) for _ in range(v)],
            model=[Chunk(config) for _ in range(v)], num_microbatches=m, seq_length=4, micro_batch_size=1,
            p2p_communicator=Recorder(group, config, log), pg_collection=groups)
        logs.append(log)
        if rank == 0:
            all_warmup = schedules.get_pp_rank_microbatches(
                m, v, g, p2p_communicator=types.SimpleNamespace(pp_group=group,
                                                                virtual_pipeline_model_parallel_size=v))[1]
    crossed = 0
    for src in (0, 1):
        sent = [kind for call in logs[src] for op, kind in call if op == "send"]
        awaited = [kind for call in logs[1 - src] for op, kind in call if op == "recv"]
        assert len(sent) == len(awaited), (src, len(sent), len(awaited))
        crossed += sum(a != b for a, b in zip(sent, awaited))
    return crossed, all_warmup


def main(argv):
    cases = [tuple(map(int, argv[i:i + 3])) for i in range(0, len(argv), 3)] or \
        [(2, 2, 2), (2, 4, 2), (4, 2, 2), (4, 4, 2), (2, 3, 3), (2, 6, 3)]
    for v, m, g in cases:
        for overlap in (False, True):
            crossed, all_warmup = _simulate(v, m, g, overlap)
            print(v, m, g, int(overlap), crossed, int(all_warmup))


if __name__ == "__main__":
    main(sys.argv[1:])
