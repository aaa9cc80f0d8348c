"""swift-ext: recipes, pre-flight checks and launching for ms-swift's Megatron backend."""

__version__ = "0.1.0"
