"""GPU models a recipe may name in `launch.gpu`: memory, compute capability (FP8 checks), dense bf16 peak (MFU)."""

from __future__ import annotations

from typing import NamedTuple


class Gpu(NamedTuple):
    memory_gib: float
    compute_capability: tuple[int, int]
    bf16_tflops: float  # dense (not sparse) bf16 peak per GPU from the vendor datasheet: ranks layouts; MFU denominator


GPUS: dict[str, Gpu] = {
    "B200": Gpu(180, (10, 0), 2250),
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
    "V100": Gpu(32, (7, 0), 125),
}
