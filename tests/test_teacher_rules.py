"""The distillation teacher's tokenizer (planner/teacher_rules.py) beyond the failed launch in tests/fixtures/issues
(huggingface/trl#4562): where the rule stays quiet, and GRPO's OPD-RL teacher; the teacher's memory on Megatron
(planner/memory_teacher.py) around ms-swift#7295."""

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


# ---- teacher-memory (planner/memory_teacher.py) -------------------------------------------------------------------

OOM = "ms-swift-7295-megatron-gkd-235b-teacher-oom"


def test_a_teacher_shard_that_fits_beside_the_student_is_not_refused():
    assert findings(OOM)[0].get("teacher-memory") == {"args.teacher_model"}
    # a sleeping colocated vLLM gives back its 12 GiB: the floor (35.8 + 33.9 GiB) is under 80 GiB
    assert "teacher-memory" not in findings(OOM, "args.sleep_level=1")[0]
    # a teacher served elsewhere, or the student as its own teacher under LoRA (adapter disabled), loads no shard
    assert "teacher-memory" not in findings(OOM, "args.teacher_model=null", "args.teacher_model_server=http://h:8000",
                                            "args.gkd_logits_topk=64")[0]
    assert "teacher-memory" not in findings(OOM, "args.teacher_model=Qwen/Qwen3-30B-A3B", "args.tuner_type=lora")[0]
    # the same model under lora_llm: _check_teacher clears teacher_model under lora only, so lora_llm loads a copy
    # (the 30B-A3B teacher beside the student's weights and an awake vLLM: fits)
    assert "teacher-memory" not in findings(OOM, "args.teacher_model=Qwen/Qwen3-30B-A3B", "args.tuner_type=lora_llm")[0]
    big = ("args.model=Qwen/Qwen3-235B-A22B", "args.teacher_model=Qwen/Qwen3-235B-A22B")
    assert "teacher-memory" not in findings(OOM, *big, "args.tuner_type=lora")[0]
    assert findings(OOM, *big, "args.tuner_type=lora_llm")[0].get("teacher-memory") == {"args.teacher_model"}
    # use_ray: the Ray config's groups place the teacher and vLLM (teacher replicas on their own GPUs): not judged
    assert "teacher-memory" not in findings(OOM, "args.use_ray=true")[0]
    # the 30B-A3B teacher itself, in full training: a second copy that fits
    assert "teacher-memory" not in findings(OOM, "args.teacher_model=Qwen/Qwen3-30B-A3B")[0]


def test_full_vocabulary_teacher_logits_are_warned_when_they_pass_the_card():
    # sleeping vLLM: the weights fit (69.7 GiB); 128 micro-batches of full-vocabulary logits at 10240 tokens do not
    errors, warnings = findings(OOM, "args.sleep_level=1", "args.global_batch_size=1024")
    assert "teacher-memory" not in errors
    assert warnings.get("teacher-memory") == {"args.gkd_logits_topk"}
    # top-k logits only: no full-vocabulary buffer
    assert "teacher-memory" not in findings(OOM, "args.sleep_level=1", "args.global_batch_size=1024",
                                            "args.gkd_logits_topk=64")[1]
