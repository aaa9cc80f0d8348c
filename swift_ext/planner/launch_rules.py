"""The launch itself, before any rank runs: how many ranks a node starts against the GPUs it sees, and the
torchrun rendezvous variables (NODE_RANK, MASTER_ADDR, MASTER_PORT) a recipe's env hands every node. Both engines.

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
    if recipe.launch.scheduled:
        return errors, warnings  # make_plan sizes the recipe first; an unsized one has nothing to compare
    _devices(recipe, errors, warnings)
    _rendezvous(recipe, errors, warnings)
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
