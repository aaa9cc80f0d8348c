"""From a recipe to a Plan: model shape, parallel layout, memory, megatron-core oracle, search, FLOPs, the launch command."""
