"""A floor under the transformers engine's memory at the loss: the model's weights and the logits of the longest
answer the recipe's local data certainly trains (`swift sft`, causal_lm).

What ms-swift 4.6 and transformers 5 hold there (read in the installed sources):
- Seq2SeqTrainer._prepare_inputs turns on use_logits_to_keep by default (SwiftMixin.get_use_logits_to_keep: the model's
  forward takes `logits_to_keep`, no sequence parallel); prepare_logits_to_keep then keeps the positions whose next
  label is trained (a one-row batch: packing, padding_free) or the suffix from the earliest label (more rows), so the
  LM head still computes a [tokens, vocab] row for every trained token of the row, and more without logits_to_keep;
- the loss is ForCausalLMLoss (transformers loss/loss_utils.py, through the model's `self.loss_function`) or, when
  Seq2SeqTrainer.compute_loss takes the labels out (loss_scale, channel or DFT loss, loss_type cross_entropy),
  per_token_loss_func / CustomCrossEntropyLoss (swift/trainers/utils.py, swift/loss/causal_lm.py): both upcast the
  logits with `.float()` and call F.cross_entropy, whose log_softmax output autograd keeps for the backward;
- measured on CPU through the installed model and loss code (tests/test_memory_logits.py, a dispatch mode summing the
  live [tokens, vocab] storages): 10 bytes per logit at the forward's log_softmax (bf16 logits, their fp32 copy, the
  fp32 log_softmax) and 12 at the backward's log_softmax backward (the kept fp32 log_softmax, NLLLoss's fp32 gradient
  and log_softmax's fp32 gradient). The backward moment is the larger; the weights are on the GPU at both. A real
  `swift sft` step (sft_main on CPU with the tiny model, the same test) peaks there too: 12 bytes a logit for 303
  rows where swift-ext counts a 306-token answer (TEMPLATE_SLACK covers the difference).

Counted low on purpose: one row's answer only (its batch mates, the prompt tokens, earlier trained turns, the model's
activations, optimizer moments and gradients, CUDA context all come on top), less a few tokens for the template's
end-of-turn marks; and nothing at all unless that row is certainly trained: a local dataset counted in full, no row
sampling (`path#N`), no streaming, no split into a validation set, no drop_last, every row seen (max_steps covers
an epoch), the row within max_length (packing_length), no media in it (a row whose image fails to load is dropped).
Not judged: liger kernel (fused linear cross entropy makes no logits), unsloth, sequence parallel, label smoothing
(HF's LabelSmoother takes log_softmax of the unconverted logits), another loss_type, torch_compile, models whose
transformers code computes the loss another way, encoder task types, rlhf/pt, device_map model parallelism.
"""

from __future__ import annotations

import importlib.util
import os
import re

from swift_ext.planner.memory_swift import GIB, state_parts
from swift_ext.planner.task_kind import task_type
from swift_ext.spec.local_devices import gpus_per_process

BYTES_PER_LOGIT = 12  # measured at the backward's log_softmax (module docstring; tests/test_memory_logits.py)
WHOLE_ANSWER_SCALES = {"default", "last_round", "all", "base", "ignore_empty_think"}
TEMPLATE_SLACK = 16  # tokens the count of an answer may hold beyond ms-swift's labels (end-of-turn marks)


def longest_answer(lengths, limit: int | None) -> int | None:
    """Tokens of the longest final answer among the rows ms-swift keeps whole (total <= LIMIT) and that hold no
    media, from swift_ext.datasets.lengths.Lengths; None when no row qualifies or LIMIT is unknown."""
    if not limit:
        return None
    best = [c for p, c, m in zip(lengths.prompt, lengths.completion, lengths.media) if p + c <= limit and not m]
    return max(best) if best else None


def answer_limit(args) -> int | None:
    """The longest row ms-swift trains whole: max_length, and packing_length when packing sets a smaller one."""
    limit = args.int("max_length")
    if limit and args.bool("packing") and (args.int("packing_length") or limit) < limit:
        limit = args.int("packing_length")
    return limit


def _loss_is_upcast_cross_entropy(model_type: str | None) -> bool:
    """The model's transformers code computes its causal-LM loss through `self.loss_function` (ForCausalLMLoss) and
    nowhere with a CrossEntropyLoss of its own; read in the installed transformers, not imported."""
    if not model_type or not re.fullmatch(r"[a-z0-9_]+", model_type):
        return False
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return False
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", model_type, f"modeling_{model_type}.py")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    return "self.loss_function(" in text and "CrossEntropyLoss(" not in text and "logits_to_keep" in text


def _judged(recipe, args, shape) -> bool:
    if recipe.engine != "swift" or recipe.command != "sft" or task_type(args, "sft") != "causal_lm":
        return False
    if args.bool("use_liger_kernel") or (args.str("tuner_backend") or "") == "unsloth":
        return False
    if (args.int("sequence_parallel_size") or 1) > 1 or (args.float("label_smoothing_factor") or 0) > 0:
        return False
    if (args.str("loss_type") or "cross_entropy") != "cross_entropy" or args.bool("torch_compile"):
        return False
    if args.bool("streaming") or (args.float("split_dataset_ratio") or 0) > 0 or args.bool("dataloader_drop_last"):
        return False
    if gpus_per_process(recipe) > 1:
        return False
    # loss scales that keep the final answer's labels (ignore_empty_think masks only an empty think block, inside
    # TEMPLATE_SLACK); agent scales (react, hermes, ...) and custom ones may mask most of it
    if not set((args.str("loss_scale") or "default").split("+")) <= WHOLE_ANSWER_SCALES:
        return False
    return _loss_is_upcast_cross_entropy(getattr(shape, "model_type", None))


def logits_floor(recipe, args, shape, data: dict | None) -> tuple[float, str] | None:
    """(GiB per GPU at the loss's backward, how it was counted), or None where it is not judged."""
    if shape is None or not data or not data.get("longest_answer") or not _judged(recipe, args, shape):
        return None
    if any("#" in str(entry) for entry in _entries(recipe.args.get("dataset"))):
        return None
    epoch = data.get("epoch") or {}
    if not epoch.get("steps") or not epoch.get("steps_per_epoch") or epoch["steps"] < epoch["steps_per_epoch"]:
        return None  # max_steps ends the run before an epoch: the row may never come
    states = state_parts(recipe, args, shape)
    tokens = data["longest_answer"] - TEMPLATE_SLACK
    if states is None or tokens <= 0:
        return None
    weights = states[0]  # gradients and AdamW's moments are not there yet at the first steps' loss
    vocab = shape.vocab_size
    logits = tokens * vocab * BYTES_PER_LOGIT / GIB
    detail = (f"weights {weights:.1f} GiB + the logits of the longest answer in the data, {tokens} trained tokens x "
              f"{vocab} vocabulary x {BYTES_PER_LOGIT} bytes ({logits:.1f} GiB: the fp32 log_softmax autograd keeps "
              f"and the two fp32 gradients of cross_entropy's backward)")
    return weights + logits, detail


def swift_logits_floor(recipe, args, shape, data, err) -> None:
    """Refuses a floor above the whole GPU: everything it leaves out only adds."""
    capacity = recipe.launch.memory_gib
    if capacity is None:
        return
    floor = logits_floor(recipe, args, shape, data)
    if floor is None or floor[0] <= capacity:
        return
    gib, detail = floor
    err("memory-logits", f"the weights and the loss's logits alone need {gib:.1f} GiB per GPU, more than the {capacity:g} GiB of a "
        f"{recipe.launch.gpu or 'GPU'}: {detail}", "max_length",
        hint="use_liger_kernel: true (fused linear cross entropy makes no logits), a max_length below that row's "
             "length (truncation_strategy delete drops it), or deepspeed: zero3 to shard the weights")


def _entries(value) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]
