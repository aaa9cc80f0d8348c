"""The distillation teacher's tokenizer (planner/teacher_rules.py) beyond the failed launch in tests/fixtures/issues
(huggingface/trl#4562): where the rule stays quiet, and GRPO's OPD-RL teacher."""

from __future__ import annotations

from test_length_rules import findings


TEACHER = "trl-4562-gkd-cross-tokenizer-teacher"


def test_a_teacher_of_the_student_family_is_quiet_even_with_a_padded_vocabulary():
    # Qwen2.5-1.5B pads its embedding to 151936, Qwen2.5-7B to 152064: one tokenizer
    assert "teacher-tokenizer" in findings(TEACHER)[1]
    assert "teacher-tokenizer" not in findings(TEACHER, "args.teacher_model=Qwen/Qwen2.5-7B-Instruct")[1]
    assert "teacher-tokenizer" not in findings(TEACHER, "args.teacher_model=Qwen/Qwen3-8B")[1]
    # a teacher with no config.json here is not judged
    assert "teacher-tokenizer" not in findings(TEACHER, "args.teacher_model=/nowhere/teacher")[1]


def test_an_opd_rl_teacher_of_another_tokenizer_is_warned_too():
    warned = findings(TEACHER, "args.rlhf_type=grpo", "args.reward_funcs=[accuracy]", "args.num_generations=8",
                      "args.per_device_train_batch_size=8")[1]
    assert warned.get("teacher-tokenizer") == {"args.teacher_model"}
