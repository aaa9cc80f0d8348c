"""`use_ray`: the launches ms-swift 4.6 hands to Ray instead of its own trainer entry, and what each needs first.

`swift sft` (swift/cli/sft.py) calls swift/ray_utils try_init_ray() before any argument dataclass is built: with
`--use_ray true` it runs `RayHelper.initialize(json.loads(args.device_groups))`, so a missing `device_groups` is
`json.loads(None)` -- a TypeError before training starts (measured with the installed package: "the JSON object must
be str, bytes or bytearray, not NoneType"). `megatron rlhf` (swift/cli/_megatron/rlhf.py) pops `--use_ray true` from
argv and runs swift/ray/megatron/pipeline.py main(), which reads only `--config <ray yaml>` and raises
ValueError('Usage: python -m swift.ray.megatron.pipeline --config <yaml>') without it; every other argument is
ignored there, and `config` is no MegatronRLHFArguments field, so a recipe cannot hand it over.
"""

from __future__ import annotations


def ray_refusals(recipe, args, err, warn):
    if not args.bool("use_ray"):
        return
    if recipe.engine == "swift" and recipe.command == "sft" and args.raw("device_groups") in (None, "", {}):
        err("ray-launch", "use_ray without device_groups: `swift sft` starts Ray before it reads any argument "
            "(swift/ray_utils try_init_ray: RayHelper.initialize(json.loads(device_groups))), and json.loads(None) "
            "stops the launch with a TypeError", "use_ray",
            hint="device_groups: the Ray placement of each worker group (see ms-swift's Ray documentation), or "
            "use_ray: false")
    elif recipe.engine == "megatron" and recipe.command == "rlhf":
        err("ray-launch", "use_ray on `megatron rlhf` hands the launch to ms-swift's Ray pipeline "
            "(swift/ray/megatron/pipeline.py main), which reads only `--config <ray yaml>`: without it the launch "
            "stops with 'Usage: python -m swift.ray.megatron.pipeline --config <yaml>', and the recipe's other "
            "arguments are never read", "use_ray",
            hint="use_ray: false (the torchrun launch swift-ext starts), or run `megatron rlhf --use_ray true "
            "--config <ray yaml>` outside swift-ext")


RAY_RULES = [ray_refusals]
