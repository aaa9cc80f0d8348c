"""Rules on the teacher model of distillation (rlhf_type gkd, and GRPO with a teacher: OPD-RL), both engines: the
teacher scores the student's own token ids, so both must share one tokenizer. Registered with the shared engine
rules (warn_rules.ENGINE_RULES)."""

from __future__ import annotations

from swift_ext.planner.model_shape import ModelShape

from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.spec.findings import UserError

TEACHER_RULES: list = []

# Checkpoints of one tokenizer differ in vocab_size only by the padding of their embedding (Qwen2.5-0.5B 151936,
# Qwen2.5-7B 152064; Llama 3.1 and 3.2 both 128256). A gap wider than this is another tokenizer (Llama 3 128256,
# Qwen 151936, DeepSeek-V3 129280, Gemma 262144).
SAME_TOKENIZER_VOCAB_GAP = 1024


def teacher_rule(fn):
    TEACHER_RULES.append(fn)
    return fn


@teacher_rule
def teacher_tokenizer(recipe, args, shape: ModelShape, lay, err, warn):
    # Both trainers hand the teacher the student's input ids: the local teacher forward reuses the student encoding
    # (rlhf_trainers/gkd_trainer.py GKDTrainer.compute_loss: teacher_model_inputs is the student's unless OPSD;
    # megatron/trainers/gkd_trainer.py alike), and the teacher server gets response_token_ids as raw ids
    # (rlhf_trainers/gkd_helpers.py: "Teacher and student must share the tokenizer/vocabulary ... for the ids to be
    # meaningful"). Nothing checks it: gkd_loss._align_vocab only pads the shorter logits. A teacher of another
    # tokenizer reads other tokens at those ids -- a wrong distillation target without an error (huggingface/trl#4562)
    # -- and ids past its vocabulary index outside its embedding.
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("gkd", "grpo"):
        return
    teacher = args.str("teacher_model")
    if not teacher or teacher == args.str("model") or not isinstance(shape, ModelShape) or not shape.vocab_size:
        return
    try:
        other = resolve_shape(teacher)
    except UserError:
        return  # no config.json for the teacher here: not judged
    if not other.vocab_size or abs(other.vocab_size - shape.vocab_size) <= SAME_TOKENIZER_VOCAB_GAP:
        return
    what = ("student token ids past the teacher's vocabulary index outside its embedding"
            if shape.vocab_size > other.vocab_size else "the teacher reads its own tokens at the student's ids")
    warn("teacher-tokenizer", f"teacher_model {teacher} has a vocabulary of {other.vocab_size} and the student "
         f"{shape.name} {shape.vocab_size}: another tokenizer. ms-swift hands the teacher the student's token ids "
         f"unchanged ({what}), so the distillation target is not the teacher's distribution over the student's text",
         "teacher_model", hint="a teacher of the student's tokenizer family (same vocabulary)")
