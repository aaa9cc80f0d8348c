"""The weight-sync communicator's port of a rollout-server run (GRPO / GKD with `swift rollout`).

ms-swift 4.6 swift/rlhf_trainers/vllm_client.py VLLMClient: the trainer asks each server to open its side of the
weight-sync group (`/init_communicator/` with port group_ports[i]), and StatelessProcessGroup.create puts that
group's store on the server's host at that port. group_ports default to 51216 + i whatever vllm_server_port says,
so two trainer/server pairs on one host -- a second job whose server was moved off the default port 8000 -- both ask
for 51216 there, and the second one's server fails with "Address already in use" at init_communicator.
"""

from __future__ import annotations

_DEFAULT_SERVER_PORT = 8000  # rlhf_trainers/vllm_client.py: the port used when vllm_server_port is unset


def second_server_group_port(recipe, args, err, warn):
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd"):
        return
    if recipe.engine == "megatron" and (not args.bool("use_vllm") or args.str("vllm_mode") != "server"):
        return
    hosts, ports = args.list("vllm_server_host"), args.list("vllm_server_port")
    if args.list("vllm_server_base_url") or len(hosts) != 1 or len(ports) != 1 or args.list("vllm_server_group_port"):
        return
    try:
        port = int(str(ports[0]))
    except ValueError:
        return
    if port == _DEFAULT_SERVER_PORT:
        return
    warn("vllm-group-port", f"rollout server on port {port} (not the default {_DEFAULT_SERVER_PORT}) with "
         "vllm_server_group_port unset: the weight-sync group still takes port 51216 on the server's host, so beside "
         "another trainer/server pair there (the usual reason to move a server off 8000) the second server fails at "
         "init_communicator with 'Address already in use' (modelscope/ms-swift#6866)", "vllm_server_group_port",
         hint="a group port of this job's own, free on the server's host: vllm_server_group_port: [51217]")


ROLLOUT_PORT_RULES = [second_server_group_port]
