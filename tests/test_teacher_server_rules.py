"""What a GKD recipe asks of its teacher server (swift_ext/msswift/teacher_server_rules.py)."""

from __future__ import annotations

from test_msrules import MEG_GRPO, SWIFT_GRPO, problems

SERVER = ["args.rlhf_type=gkd", "args.reward_funcs=null", "args.teacher_model_server=http://teacher:8000"]


def test_topk_past_vllms_default_max_logprobs_warns_on_both_engines():
    # ms-swift#9644: a `swift rollout` teacher keeps vLLM's max_logprobs 20 and refuses top-64 prompt logprobs.
    for base in (SWIFT_GRPO, MEG_GRPO):
        _, warnings = problems(base, *SERVER, "args.gkd_logits_topk=64")
        assert ("teacher-server-topk", "args.gkd_logits_topk") in warnings, base


def test_topk_within_the_default_or_a_local_teacher_is_not_flagged():
    for extra in (["args.gkd_logits_topk=20"], ["args.gkd_logits_topk=5"]):
        _, warnings = problems(SWIFT_GRPO, *SERVER, *extra)
        assert not [w for w in warnings if w[0] == "teacher-server-topk"], extra
    # a local teacher computes its own top-k: no server cap
    _, warnings = problems(SWIFT_GRPO, "args.rlhf_type=gkd", "args.reward_funcs=null",
                           "args.teacher_model=Qwen/Qwen3-0.6B", "args.gkd_logits_topk=64")
    assert not [w for w in warnings if w[0] == "teacher-server-topk"]
