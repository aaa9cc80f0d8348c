"""planner/mcore_feature_rules.py (pipeline-p2p-pp2): at PP 2 with virtual pipeline stages and overlap_p2p_comm off,
megatron-core 0.16.1's interleaved schedule sends and receives to the one peer in both directions in one batch, and
the variable-length shape exchange pairs them crossed (NVIDIA/Megatron-LM PR #1451, #5271). Each test changes a
published working setup: NeMo-RL's Llama-3.1-8B DPO at TP 2, PP 2, 16 virtual stages (overlap_p2p_comm left at
ms-swift's default, on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
PP2_VPP16 = "nemo-rl-dpo-llama31-8b-tp2pp2-vpp16-32gpu.yaml"


def _refused(*overrides: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / PP2_VPP16, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "pipeline-p2p-pp2"}


def test_the_engine_lines_the_rule_mirrors():
    # megatron-core 0.16.1 as installed: the shape exchange posts one fixed order and never reads batch_p2p_comm;
    # the interleaved schedule's no-overlap branch uses the bidirectional call
    from swift_ext.msswift.source_reader import _package_dir

    core = _package_dir("megatron") / "core/pipeline_parallel"
    p2p = (core / "p2p_communication.py").read_text(encoding="utf-8")
    shapes = p2p[p2p.index("def _communicate_shapes"):p2p.index("def _communicate(")]
    assert "batch_p2p_comm" not in shapes and "batch_isend_irecv(ops)" in shapes
    order = [shapes.index(f"{name}_op = torch.distributed.P2POp") for name in
             ("send_prev", "recv_prev", "send_next", "recv_next")]
    assert order == sorted(order)
    schedules = (core / "schedules.py").read_text(encoding="utf-8")
    no_overlap = schedules[schedules.index("else:  # No p2p overlap."):]
    assert "send_forward_backward_recv_forward_backward(" in no_overlap[:3000]


def test_pp2_virtual_stages_without_p2p_overlap_are_refused():
    assert _refused("args.overlap_p2p_comm=false") == {"args.overlap_p2p_comm"}
    # 4 micro-batches per step (32 / (1 x DP 8)): the steady phase posts the combined exchange
    assert _refused("args.overlap_p2p_comm=false", "args.global_batch_size=32") == {"args.overlap_p2p_comm"}
    assert _refused("args.overlap_p2p_comm=false", "args.batch_p2p_comm=false") == {"args.overlap_p2p_comm"}
    assert _refused("args.megatron_extra_kwargs={overlap_p2p_comm: false}") == {"args.megatron_extra_kwargs"}
    # a layout with 4 stages over PP 2 is two virtual stages too
    assert _refused("args.overlap_p2p_comm=false", "args.virtual_pipeline_model_parallel_size=null",
                    "args.pipeline_model_parallel_layout=Et*8|t*8|t*8|t*8L") == {"args.overlap_p2p_comm"}


def test_no_word_with_overlap_or_without_virtual_stages_or_at_other_pp():
    assert _refused() == set()  # ms-swift's default: overlap_p2p_comm on with virtual stages
    assert _refused("args.overlap_p2p_comm=false", "args.virtual_pipeline_model_parallel_size=null") == set()
    # PP 4: the previous and the next stage are different ranks
    assert _refused("args.overlap_p2p_comm=false", "args.pipeline_model_parallel_size=4",
                    "args.virtual_pipeline_model_parallel_size=8") == set()
    # 2 micro-batches per step (16 / (1 x DP 8)): rank 0 runs both in the warm-up, nothing crosses
    assert _refused("args.overlap_p2p_comm=false", "args.global_batch_size=16") == set()
    assert _refused("args.overlap_p2p_comm=false", "args.global_batch_size=32", "args.micro_batch_size=2") == set()
    # no shape exchange: variable_seq_lengths turned off through megatron_extra_kwargs
    assert _refused("args.overlap_p2p_comm=false", "args.batch_p2p_comm=false", "args.padding_free=false",
                    "args.megatron_extra_kwargs={variable_seq_lengths: false}") == set()


def test_megatron_cores_schedule_crosses_from_three_microbatches():
    # bench/mcore_audit/p2p_pp2_pairing.py runs the installed schedule per rank (its own process: it patches
    # megatron-core's module globals) and pairs the posted operations in order; columns V M G overlap crossed warmup
    script = Path(__file__).resolve().parents[1] / "bench" / "mcore_audit" / "p2p_pp2_pairing.py"
    out = subprocess.run([sys.executable, str(script), "2", "2", "2", "2", "4", "2", "4", "2", "2", "2", "3", "3"],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    rows = {tuple(map(int, line.split()[:4])): tuple(map(int, line.split()[4:])) for line in out.splitlines()}
    assert rows[(2, 2, 2, 0)] == (0, 1) and rows[(4, 2, 2, 0)] == (0, 1)  # M 2: all warm-up on rank 0, no cross
    assert rows[(2, 4, 2, 0)][0] > 0 and rows[(2, 3, 3, 0)][0] > 0        # M >= 3 without overlap: crossed
    assert all(crossed == 0 for (_, _, _, overlap), (crossed, _) in rows.items() if overlap)
