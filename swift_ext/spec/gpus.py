"""GPU models a recipe may name in `launch.gpu`: memory, compute capability (FP8 checks), dense bf16 peak (MFU)."""

from __future__ import annotations

from typing import NamedTuple


class Gpu(NamedTuple):
    memory_gib: float
    compute_capability: tuple[int, int]
    bf16_tflops: float  # dense (not sparse) bf16 peak per GPU from the vendor datasheet: ranks layouts; MFU denominator


GPUS: dict[str, Gpu] = {
    "B200": Gpu(180, (10, 0), 2250),
    # Grace-Blackwell and Blackwell Ultra, the boards Megatron-Bridge's performance presets name (GB200, GB300, B300
    # configs in scripts/performance/configs): per GPU, NVIDIA's GB200 NVL72 (13.4 TB HBM3e, 180 PF dense FP16/BF16 over
    # 72 GPUs) and GB300 NVL72 (20 TB, 180 PF dense over 72) rack figures, and B300 HGX (270 GB, 2.25 PF dense);
    # Blackwell Ultra is sm_103.
    "GB200": Gpu(186, (10, 0), 2500),
    "GB300": Gpu(278, (10, 3), 2500),
    "B300": Gpu(270, (10, 3), 2250),
    "H200": Gpu(141, (9, 0), 989),
    "H100": Gpu(80, (9, 0), 989),
    "H800": Gpu(80, (9, 0), 989),
    "H20": Gpu(96, (9, 0), 148),
    "L40S": Gpu(48, (8, 9), 362),
    "L20": Gpu(48, (8, 9), 119),
    "A100-80G": Gpu(80, (8, 0), 312),
    "A100-40G": Gpu(40, (8, 0), 312),
    "A800": Gpu(80, (8, 0), 312),
    "A10": Gpu(24, (8, 6), 125),
    "RTX4090": Gpu(24, (8, 9), 165),
    # Consumer Blackwell, sm_120: Transformer Engine refuses MXFP8 on it (spec/support.py fp8-mxfp8). bf16 dense with
    # fp32 accumulate, as for the RTX4090: NVIDIA's 838.4 TFLOPS FP16 tensor figure is sparse with fp16 accumulate.
    "RTX5090": Gpu(32, (12, 0), 209.5),
    # Workstation / data-centre Ampere and Ada (PCIe): dense bf16 with fp32 accumulate from the datasheets
    # (A6000 309.7 and L4 242 TFLOPS are the sparse figures; the RTX 3090's 142 is fp16 accumulate).
    "A6000": Gpu(48, (8, 6), 154.8),
    "RTX3090": Gpu(24, (8, 6), 71),
    "L4": Gpu(24, (8, 9), 121),
    "V100": Gpu(32, (7, 0), 125),
    # Turing (sm_75): no bfloat16 tensor cores and no FlashAttention 2 kernels (flash-attn and TE's flash backend
    # start at sm80), the cards reports name on ms-swift's Megatron path (NVIDIA/TransformerEngine#1680: 2080 Ti).
    # The throughput column is their dense fp16 tensor figure (T4 65; 2080 Ti 53.8 with fp32 accumulate).
    "T4": Gpu(16, (7, 5), 65),
    "RTX2080Ti": Gpu(11, (7, 5), 53.8),
}
