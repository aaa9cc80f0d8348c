"""megatron-core's own `parallel_state.initialize_model_parallel`, on the CPU, in this one process.

torch's fake process group (`backend="fake"`, `FakeStore`) lets one process claim to be rank r of W:
`new_group` returns groups that never communicate, so megatron-core builds its real grid -- the
tensor/pipeline/context/data groups, the expert grid (ETP x EP x PP, its own RankGenerator), and
raises its own world-size divisibility and pipeline-group errors -- without a GPU or a network.
With the groups up, the per-rank checks that read them run as megatron-core's own code too:
`BaseMoELayer.__init__` (experts per EP rank), the sequence-parallel check at the top of
`MoELayer.forward`, and `transformer_block.get_num_layers_to_build` on each pipeline stage.

What differs from a real launch, and why it does not change the grid logic:
- `create_gloo_process_groups=False`: gloo groups over a FakeStore crash torch (a segfault in
  `_create_gloo_process_group`); they are the same ranks as the data-parallel groups, made with a
  second backend for checkpoint I/O, so nothing the verdict reads is lost.
- no CUDA call is patched: `initialize_model_parallel` only touches torch.cuda with SHARP, which
  ms-swift does not turn on.
- the MoE probe runs `BaseMoELayer.__init__` and `MoELayer.forward`'s first check, not the router,
  experts and token dispatcher (building those allocates the experts' weights).

Every verdict tears the groups and the process group down again, so calls repeat in one process.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable

INIT = "megatron.core.parallel_state.initialize_model_parallel"
MOE_INIT = "megatron.core.transformer.moe.moe_layer.BaseMoELayer.__init__"
MOE_FORWARD = "megatron.core.transformer.moe.moe_layer.MoELayer.forward"
SPLIT = "megatron.core.transformer.transformer_block.get_num_layers_to_build"

# initialize_model_parallel's messages -> the recipe argument to point at. First match wins.
_GRID_FLAGS = [
    ("expert_tensor_model_pipeline", "expert_model_parallel_size"),
    ("non-expert and expert", "expert_model_parallel_size"),
    ("data parallel size of the attention and moe", "expert_model_parallel_size"),
    ("interleaved schedule", "virtual_pipeline_model_parallel_size"),
    ("distopt", "num_distributed_optimizer_instances"),
    ("is not divisible by", "tensor_model_parallel_size"),
]


def grid_flag(message: str) -> str:
    low = message.lower()
    return next((flag for word, flag in _GRID_FLAGS if word in low), "tensor_model_parallel_size")


@contextmanager
def fake_rank(world: int, rank: int):
    """This process as rank `rank` of `world` under torch's fake process group; torn down on exit."""
    import torch.distributed as dist
    from megatron.core import parallel_state
    from torch.testing._internal.distributed.fake_pg import FakeStore  # registers backend "fake"

    if dist.is_initialized():  # somebody else's process group: do not clobber it
        raise RuntimeError("a torch.distributed process group already exists in this process")
    # init_process_group wraps sys.excepthook to prefix every line with "[rankN]: " (torch 2.x,
    # distributed_c10d.py: _distributed_excepthook) and destroy_process_group leaves it there: without
    # this, every later traceback of this process (`plan --oracle` then an error, a test run) reads as
    # if from rank N of a fake world, one prefix per probed rank.
    excepthook = sys.excepthook
    try:
        dist.init_process_group(backend="fake", rank=rank, world_size=world, store=FakeStore())
        try:
            yield
        finally:
            parallel_state.destroy_model_parallel()
            dist.destroy_process_group()
    finally:
        sys.excepthook = excepthook


def init_kwargs(lay: Any, vpp: int | None) -> dict:
    """What ms-swift passes (swift/megatron/utils/megatron_lm_utils.py:_initialize_mpu), less gloo."""
    return dict(tensor_model_parallel_size=lay.tp, pipeline_model_parallel_size=lay.pp,
                virtual_pipeline_model_parallel_size=vpp, context_parallel_size=lay.cp,
                expert_model_parallel_size=lay.ep, expert_tensor_parallel_size=lay.etp,
                create_gloo_process_groups=False)


def judge_grid(lay: Any, vpp: int | None, config: Any, training: bool,
               add: Callable[[str, str, str], None], note: Callable[[str], None]) -> list[int]:
    """Run initialize_model_parallel as each probed rank, then the per-rank checks against `config`
    (a TransformerConfig, or None when megatron-core refused it). `add(flag, message, source)` records
    a finding, `note(text)` a note. Returns the ranks probed."""
    from megatron.core import parallel_state

    # The grid arithmetic is the same on every rank; what differs per rank is its pipeline stage (the
    # layer split) and its expert slice. So: rank 0, every stage of its pipeline group, and the last
    # rank (last in every group). Each probe builds all W ranks' groups (tens of ms at W=64), hence
    # not every rank.
    world = lay.world
    queue = [0, world - 1]
    probed: list[int] = []
    while queue:
        rank = queue.pop(0)
        if rank in probed:
            continue
        probed.append(rank)
        with fake_rank(world, rank):
            try:
                parallel_state.initialize_model_parallel(**init_kwargs(lay, vpp))
            except (RuntimeError, AssertionError, ValueError) as exc:
                # The same arithmetic on every rank: the first refusal is megatron-core's answer.
                message = " ".join(str(exc).split()) or type(exc).__name__
                add(grid_flag(message), message, INIT)
                return probed
            if rank == 0:
                import torch.distributed as dist

                queue[1:1] = dist.get_process_group_ranks(parallel_state.get_pipeline_model_parallel_group())
            if config is not None:
                _moe_layer(config, training, add, note)
                _pipeline_split(config, add, note)
    return probed


def _moe_layer(config, training: bool, add, note) -> None:
    """BaseMoELayer.__init__ and the first check of MoELayer.forward, as megatron-core's own code."""
    if not config.num_moe_experts:
        return
    import torch
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.moe.moe_layer import BaseMoELayer, MoELayer

    class Probe(MoELayer):
        """A MoELayer without router, experts and dispatcher (their weights): the stages of forward
        after the sequence-parallel check are identities."""

        def __init__(self, config, pg_collection):  # noqa: D107 -- BaseMoELayer's init, not MoELayer's
            BaseMoELayer.__init__(self, config, layer_number=1, pg_collection=pg_collection)
            self.fwd_execution_map = ["expert_compute"]
            self.moe_layer_recompute = False

        def dispatch(self, hidden_states, probs):
            return hidden_states, probs

        def routed_experts_compute(self, hidden_states, probs):
            return hidden_states, None

        def combine(self, output):
            return output

    pgs = ProcessGroupCollection.use_mpu_process_groups(required_pgs=["tp", "ep"])
    try:
        probe = Probe(config, pgs)
    except AssertionError as exc:
        ep = pgs.ep.size()
        add("expert_model_parallel_size", str(exc) or f"num_moe_experts ({config.num_moe_experts}) % "
            f"expert_model_parallel_size ({ep}) != 0", MOE_INIT)
        return
    probe.train(training)
    hidden = torch.zeros(1, 1, 1)
    try:
        probe(hidden, intermediate_tensors=(hidden, None))
    except ValueError as exc:
        add("sequence_parallel", " ".join(str(exc).split()), MOE_FORWARD)
    except Exception as exc:  # noqa: BLE001 -- past the check, in the probe's stand-ins: not a verdict
        note(f"MoELayer.forward probe stopped after its check: {type(exc).__name__}: {exc}")


def _pipeline_split(config, add, note) -> None:
    """get_num_layers_to_build on this rank's pipeline stage (each virtual stage), reading the rank
    from parallel_state as megatron-core does when it builds the model."""
    from megatron.core.transformer.transformer_block import get_num_layers_to_build

    stages = config.virtual_pipeline_model_parallel_size or 1
    try:
        for vp_stage in range(stages):
            get_num_layers_to_build(config, vp_stage=vp_stage if stages > 1 else None)
    except (AssertionError, ValueError) as exc:
        add("pipeline_model_parallel_size", str(exc) or type(exc).__name__, SPLIT)
    except Exception as exc:  # noqa: BLE001 -- a path this machine cannot take: not a verdict
        note(f"pipeline split not judged on this machine: {type(exc).__name__}: {exc}")
