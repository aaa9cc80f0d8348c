"""Peak bytes per logit of megatron-core's vocab-parallel cross entropy, measured on its real code path.

swift_ext/planner/memory.py sizes the logits of the last pipeline stage as tokens x vocab/TP x CE_BYTES_FUSED
(cross_entropy_loss_fusion, ms-swift's default) or CE_BYTES_UNFUSED. This script runs the installed
megatron-core functions that ms-swift's GPTModel calls (fusions/fused_cross_entropy.py, which is
torch.compile'd, and tensor_parallel/cross_entropy.py) on CPU with a one-rank gloo group, behind a bf16
matmul standing in for the output layer, and reads the process's resident-memory high-water mark
(VmHWM, reset through /proc/self/clear_refs) around the forward and the backward. Large tensors are
mmap'ed by glibc, so the resident set follows the live tensors; the compiled kernels' buffer plan is
decided above the device code generator, so CPU shows which full-size buffers exist.

    python bench/measure_cross_entropy_bytes.py            # both paths, one child process each
    python bench/measure_cross_entropy_bytes.py fused 8192 32768
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys


def _status() -> tuple[int, int]:
    with open("/proc/self/status") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "VmHWM"))}
    return fields["VmRSS"] * 1024, fields["VmHWM"] * 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(mode: str, tokens: int, vocab: int) -> dict:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=0, world_size=1)
    from megatron.core import parallel_state
    from megatron.core.fusions.fused_cross_entropy import fused_vocab_parallel_cross_entropy
    from megatron.core.tensor_parallel.cross_entropy import vocab_parallel_cross_entropy

    parallel_state.initialize_model_parallel(1, 1)
    tp_group = parallel_state.get_tensor_model_parallel_group()
    torch.manual_seed(0)
    hidden = 64
    weight = torch.randn(vocab, hidden, dtype=torch.bfloat16) * 0.02
    x = torch.randn(tokens, 1, hidden, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, vocab, (tokens, 1))

    def loss():
        logits = torch.matmul(x, weight.t())  # [s, b, V/TP] bf16, as the output layer writes them
        if mode == "fused":
            return fused_vocab_parallel_cross_entropy(logits, labels, tp_group)
        return vocab_parallel_cross_entropy(logits, labels)

    warm = loss()  # torch.compile traces and compiles at this shape first
    warm.sum().backward()
    del warm
    x.grad = None
    gc.collect()
    base, _ = _status()
    _reset_peak()
    out = loss()
    held, fwd_peak = _status()
    _reset_peak()
    out.sum().backward()
    _, bwd_peak = _status()
    n = tokens * vocab
    dist.destroy_process_group()
    return {"mode": mode, "tokens": tokens, "vocab": vocab,
            "forward_peak": round((fwd_peak - base) / n, 2),
            "held_for_backward": round((held - base) / n, 2),
            "backward_peak": round((bwd_peak - base) / n, 2)}


def main(argv: list[str]) -> None:
    if argv:
        mode, tokens, vocab = argv[0], int(argv[1]), int(argv[2])
        print(json.dumps(measure(mode, tokens, vocab)))
        return
    print(f"{'path':8} {'tokens':>7} {'vocab':>7} {'fwd peak':>9} {'held':>6} {'bwd peak':>9}  (bytes per logit)")
    for mode in ("unfused", "fused"):
        done = subprocess.run([sys.executable, __file__, mode, "8192", "32768"], capture_output=True, text=True,
                              check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mode:8} {r['tokens']:7} {r['vocab']:7} {r['forward_peak']:9.2f} {r['held_for_backward']:6.2f} "
              f"{r['backward_peak']:9.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
