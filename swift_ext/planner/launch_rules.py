"""The launch itself, before any rank runs: how many ranks a node starts against the GPUs it sees, the torchrun
rendezvous variables (NODE_RANK, MASTER_ADDR, MASTER_PORT) a recipe's env hands every node, and PyTorch's allocator
settings every rank parses. Both engines.

ms-swift 4.6 swift/cli/main.py cli_main: with NPROC_PER_NODE or NNODES set it runs `python -m torch.distributed.run`
with --nproc_per_node/--master_port/--nnodes/--node_rank/--master_addr taken from those variables (get_torchrun_args),
else one plain process. swift-ext's launch (planner/launch.py build_launch) sets NPROC_PER_NODE, CUDA_VISIBLE_DEVICES
and NNODES from `launch:` and then applies the recipe's env over them, so the env wins under `swift-ext run`;
`swift-ext submit`'s batch script drops env NPROC_PER_NODE/NNODES/CUDA_VISIBLE_DEVICES but exports every other env
variable after its own MASTER_ADDR/MASTER_PORT (runs/slurm_templates/train.sbatch), on every node.
"""

from __future__ import annotations

import ipaddress

from swift_ext.planner.launch import build_launch
from swift_ext.spec.findings import Finding
from swift_ext.spec.local_devices import devices_and_processes
from swift_ext.spec.recipe import OVERRIDE


def _count(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_problems(recipe) -> tuple[list[Finding], list[Finding]]:
    errors: list[Finding] = []
    warnings: list[Finding] = []
    if recipe.launch.scheduled:  # make_plan sizes the recipe first; an unsized one has no ranks to compare
        return alloc_conf_problems(recipe), warnings
    _devices(recipe, errors, warnings)
    _rendezvous(recipe, errors, warnings)
    errors += alloc_conf_problems(recipe)
    return errors, warnings


def _devices(recipe, errors, warnings) -> None:
    # Every torchrun rank calls torch.cuda.set_device(LOCAL_RANK) (megatron-core through ms-swift's
    # initialize_megatron; transformers TrainingArguments._setup_devices): a rank past the visible devices fails with
    # "invalid device ordinal". On engine swift ms-swift asserts first: swift/utils/env.py is_mp()
    # `assert n_gpu % local_world_size == 0` (TrainArgumentsMixin.__post_init__, every training launch) -- unless
    # SWIFT_SINGLE_DEVICE_MODE=1, which leaves set_device to fail.
    sizes = devices_and_processes(recipe)
    if sizes is None:
        return
    visible, procs = sizes
    gpus = recipe.launch.gpus_per_node
    nproc_env = recipe.env.get("NPROC_PER_NODE")
    where = "env.NPROC_PER_NODE" if nproc_env is not None and procs != gpus else "env.CUDA_VISIBLE_DEVICES"
    devices = recipe.env.get("CUDA_VISIBLE_DEVICES")
    shown = f"CUDA_VISIBLE_DEVICES lists {devices!r}" if devices is not None else \
        f"CUDA_VISIBLE_DEVICES is 0..{gpus - 1} (launch.gpus_per_node)"
    ranks = f"NPROC_PER_NODE={nproc_env} (env)" if where == "env.NPROC_PER_NODE" else \
        f"launch.gpus_per_node is {gpus}"
    if visible < procs:
        errors.append(Finding(f"{shown} but {ranks}: the ranks past the {visible} visible device(s) have no GPU "
                              "(torch.cuda.set_device: invalid device ordinal"
                              + ("; engine swift asserts n_gpu % local_world_size first: swift/utils/env.py is_mp)"
                                 if recipe.engine == "swift" else ")"),
                              code="launch", hint="one rank per visible GPU: launch.gpus_per_node and the device "
                              "list agree, no NPROC_PER_NODE in env", **recipe.where(where)))
        return
    if recipe.engine != "megatron":
        return  # more devices than processes on engine swift is device_map (msswift/device_map_rules.py)
    if nproc_env is not None and procs != gpus:
        # The layout, batch and memory checks sized the world from launch.*; `swift-ext run` starts the env's count
        # (the env is applied last), `submit` the launch's.
        warnings.append(Finding(f"env NPROC_PER_NODE={nproc_env} replaces launch.gpus_per_node ({gpus}) under "
                                f"`swift-ext run` (`submit` keeps {gpus}): the layout, batch and memory checks were "
                                f"made for {gpus} ranks per node", code="launch",
                                hint="set launch.gpus_per_node and drop NPROC_PER_NODE from env",
                                **recipe.where("env.NPROC_PER_NODE")))
    elif visible > procs:
        warnings.append(Finding(f"{shown} but launch.gpus_per_node is {gpus}: only the first {gpus} are used",
                                code="launch", **recipe.where("env.CUDA_VISIBLE_DEVICES")))


def _rendezvous(recipe, errors, warnings) -> None:
    env = recipe.env
    launched = build_launch(recipe).env
    if "NPROC_PER_NODE" not in launched and "NNODES" not in launched:
        return  # one plain process (swift/cli/main.py use_torchrun): nothing reads the rendezvous variables
    nodes = recipe.launch.nodes
    nnodes_env = env.get("NNODES")
    if nnodes_env is not None and _count(nnodes_env) is not None and _count(nnodes_env) != nodes:
        warnings.append(Finding(f"env NNODES={nnodes_env} replaces launch.nodes ({nodes}) under `swift-ext run` "
                                f"(`submit` keeps {nodes}): the layout, batch and memory checks were made for "
                                f"{nodes} node(s)", code="launch", hint="set launch.nodes and drop NNODES from env",
                                **recipe.where("env.NNODES")))
        nodes = _count(nnodes_env) or nodes
    rank = env.get("NODE_RANK")
    if rank is not None:
        # torch.distributed.run: --node_rank is an int; the static rendezvous (elastic/rendezvous/
        # static_tcp_rendezvous.py) hosts its store only on node rank 0 and waits for ranks 0..nnodes-1, so a rank
        # outside that range never completes it (without NNODES torchrun runs one node: only rank 0 starts).
        value = _count(rank)
        if value is None or not 0 <= value < nodes:
            errors.append(Finding(f"env NODE_RANK={rank!r}: torchrun's static rendezvous takes node ranks 0.."
                                  f"{nodes - 1} for {nodes} node(s); this node never joins it (a non-number is "
                                  "refused by torchrun's parser)", code="launch-env",
                                  hint="drop NODE_RANK from env: `swift-ext submit` sets it per node, `swift-ext "
                                  "run` reads it from each node's environment", **recipe.where("env.NODE_RANK")))
        elif nodes > 1 and recipe.where("env.NODE_RANK").get("file") != OVERRIDE:  # a per-node override is right
            warnings.append(Finding(f"env NODE_RANK={rank} written in the recipe reaches every node under `swift-ext "
                                    f"run`: all {nodes} nodes claim rank {value} and the rendezvous never completes "
                                    "(`submit` replaces it per node)", code="launch-env",
                                    hint="drop it from the recipe; set NODE_RANK in each node's environment",
                                    **recipe.where("env.NODE_RANK")))
    port = env.get("MASTER_PORT")
    if port is not None and not 0 < (_count(port) or -1) < 65536:
        errors.append(Finding(f"env MASTER_PORT={port!r} is no TCP port: torchrun's parser (--master_port, an int) "
                              "or its store refuses it", code="launch-env", hint="a port number 1..65535",
                              **recipe.where("env.MASTER_PORT")))
    addr = env.get("MASTER_ADDR")
    if addr is not None and nodes > 1 and _loopback(str(addr)):
        errors.append(Finding(f"env MASTER_ADDR={addr} on {nodes} nodes: the recipe's env reaches every node (it "
                              "replaces the node's own MASTER_ADDR under `swift-ext run` and the first Slurm host "
                              "under `submit`), so every node but the master looks for the rendezvous store on its own "
                              "loopback and times out (modelscope/ms-swift#2485)", code="launch-env",
                              hint="drop MASTER_ADDR from env: `submit` sets the first host's name; under `swift-ext "
                              "run` export the master's reachable address on every node",
                              **recipe.where("env.MASTER_ADDR")))


# PyTorch's allocator configuration (installed torch 2.14: c10/core/AllocatorConfig.cpp AcceleratorAllocatorConfig::
# parseArgs and c10/cuda/CUDAAllocatorConfig.cpp CUDAAllocatorConfig::parseArgs), parsed by every rank at its first CUDA
# allocation: comma-separated `key:value` pairs; an unknown key ("Unrecognized key ... in Accelerator allocator config"),
# a boolean other than exactly True/False ("Expected 'True' or 'False'"), or a number it cannot read stops the rank.
# PYTORCH_ALLOC_CONF is the newer name of the same setting.
_ALLOC_BOOL = {"expandable_segments", "release_lock_on_cudamalloc", "pinned_use_cuda_host_register",
               "pinned_use_background_threads", "graph_capture_record_stream_reuse", "release_lock_on_hipmalloc",
               "pinned_use_hip_host_register"}
_ALLOC_INT = {"max_split_size_mb", "max_non_split_rounding_mb", "pinned_num_register_threads",
              "pinned_reserve_segment_size_mb"}
_ALLOC_FRACTION = {"garbage_collection_threshold", "per_process_memory_fraction"}
_ALLOC_OTHER = {"roundup_power2_divisions", "backend"}
ALLOC_ENV = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")


def _alloc_pairs(text: str) -> list[str]:
    """Split at the commas outside [..] (roundup_power2_divisions takes a bracketed list)."""
    pairs, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            pairs.append(current)
            current = ""
        else:
            current += ch
    return [p for p in (*pairs, current) if p.strip()]


def alloc_conf_problem(text: str) -> str | None:
    """Why torch's allocator parser refuses `text`, or None."""
    for pair in _alloc_pairs(text):
        key, sep, value = (part.strip() for part in pair.partition(":"))
        if key not in _ALLOC_BOOL | _ALLOC_INT | _ALLOC_FRACTION | _ALLOC_OTHER:
            return f"unknown option {key!r} (torch: \"Unrecognized key ... in Accelerator allocator config\")"
        if not sep or not value:
            return f"option {key!r} has no value (key:value pairs, comma-separated)"
        if key in _ALLOC_BOOL and value not in ("True", "False"):
            return f"{key} takes True or False exactly, not {value!r}"
        if key in _ALLOC_INT and not value.isdigit():
            return f"{key} takes a whole number, not {value!r}"
        if key == "max_split_size_mb" and int(value) < 20:
            return "max_split_size_mb must be >= 20"
        if key in _ALLOC_FRACTION:
            try:
                number = float(value)
            except ValueError:
                return f"{key} takes a number, not {value!r}"
            if key == "garbage_collection_threshold" and not 0 < number < 1:
                return "garbage_collection_threshold must be in (0.0, 1.0)"
        if key == "backend" and value not in ("native", "cudaMallocAsync"):
            return f"backend is native or cudaMallocAsync, not {value!r}"
    return None


def alloc_conf_problems(recipe) -> list[Finding]:
    if not isinstance(recipe.launch.gpus_per_node, int) or recipe.launch.gpus_per_node < 1:
        return []  # on the CPU no CUDA allocator parses it
    out = []
    for name in ALLOC_ENV:
        value = recipe.env.get(name)
        why = alloc_conf_problem(str(value)) if value is not None else None
        if why:
            out.append(Finding(f"env {name}={value!r}: {why}; PyTorch parses it at every rank's first CUDA allocation, "
                               "so the run stops at start-up", code="alloc-conf",
                               hint="e.g. expandable_segments:True (comma-separated key:value pairs)",
                               **recipe.where(f"env.{name}")))
    return out
