"""What a distillation run asks of its teacher server (teacher_model_server): the server is another process, started
with its own flags that the recipe does not show, so these rules warn about what the recipe's side requires of it.
Registered by rules.py."""

from __future__ import annotations

# vLLM's ModelConfig.max_logprobs default: the most prompt logprobs a request may ask for unless the server was started
# with --max-logprobs (vllm serve) / --max_logprobs (swift deploy, DeployArguments.max_logprobs = 20 as well).
VLLM_DEFAULT_MAX_LOGPROBS = 20


def teacher_server_topk(recipe, args, err, warn):
    # GKD against a teacher server asks it for the top gkd_logits_topk prompt logprobs of every position
    # (rlhf_trainers/rollout_mixin.py _infer_teacher_requests: RequestConfig(prompt_logprobs=topk); Megatron's
    # rollout_mixin.py the same). vLLM refuses a request past the server's max_logprobs (v1 processor
    # _validate_logprobs: "Requested prompt logprobs of K, which is greater than max allowed: 20"), and its default is
    # 20. `swift deploy --max_logprobs K` passes it on (pipelines/infer/deploy.py get_infer_engine), but ms-swift 4.6's
    # `swift rollout` parses --max_logprobs (RolloutArguments inherits DeployArguments) and never hands it to vLLM
    # (pipelines/infer/rollout.py get_infer_engine builds its engine kwargs without it): ms-swift#9644, an OPSD run whose
    # rollout server was given --max_logprobs 64 and still refused 64. The server is not in the recipe: a warning.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "gkd" or not args.str("teacher_model_server"):
        return
    topk = args.int("gkd_logits_topk")
    if topk is None or topk <= VLLM_DEFAULT_MAX_LOGPROBS:
        return
    warn("teacher-server-topk", f"gkd_logits_topk {topk} asks the teacher server for {topk} prompt logprobs per token, "
         f"more than vLLM's default max_logprobs ({VLLM_DEFAULT_MAX_LOGPROBS}): a server not started with max_logprobs "
         f">= {topk} refuses every request (\"Requested prompt logprobs of {topk}, which is greater than max allowed: "
         f"{VLLM_DEFAULT_MAX_LOGPROBS}\"), and ms-swift 4.6's `swift rollout` drops its --max_logprobs (ms-swift#9644)",
         "gkd_logits_topk",
         hint=f"start the teacher with `vllm serve --max-logprobs {topk}` or `swift deploy --max_logprobs {topk}` (a "
              f"`swift rollout` teacher: --vllm_engine_kwargs '{{\"max_logprobs\": {topk}}}'), or gkd_logits_topk: "
              f"{VLLM_DEFAULT_MAX_LOGPROBS}")


TEACHER_SERVER_RULES = [teacher_server_topk]
