"""The encoder tasks' arguments (task_type embedding, reranker, generative_reranker): the loss each needs and the
InfoNCE loss's environment settings. Their rows are checked by the data check (swift_ext/datasets/encoder.py).
(seq_cls with padding_free/packing is supported on engine swift: SwiftMixin patches the model with
revert_padding_free before the pooling, trainers/mixin.py -- not refused.)"""

from __future__ import annotations

from swift_ext.msswift.model_table import model_meta


def _task(args) -> str | None:
    """The task ms-swift trains: task_type, else the model's registered one (swift/model/model_meta.py
    get_model_info_meta; a given num_labels makes it seq_cls)."""
    meta = (model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None) or {}
    if args.str("task_type") or meta.get("task_type"):
        return args.str("task_type") or meta.get("task_type")
    return "seq_cls" if args.int("num_labels") is not None or meta.get("reward") else None


# swift/loss/mapping.py loss_map by what each loss reads: the embedding losses take outputs['last_hidden_state'] (the
# embedding head's only output), the reranker losses outputs.logits (swift/loss/embedding.py, reranker.py).
EMBEDDING_LOSSES = ("cosine_similarity", "contrastive", "online_contrastive", "infonce")
RERANKER_LOSSES = ("pointwise_reranker", "listwise_reranker")


def encoder_loss_type(recipe, args, err, warn):
    # The embedding and generative-reranker tasks have no loss of their own on the transformers engine: without
    # loss_type, trainers/mixin.py sets no compute_loss_func, transformers' Trainer.compute_loss leaves `labels` (the
    # collator's 1.0/0.0 pair labels) in the inputs, and the causal LM's own loss raises on them ("shape
    # '[-1, vocab]' is invalid for input of size ..."); were it to pass, ms-swift's embedding output hook
    # (model/patcher.py patch_output_normalizer) returns only last_hidden_state ("The model did not return a loss").
    # RerankerTrainer.compute_loss falls back to the same path for generative_reranker. A loss of the other family
    # reads an output the model does not give (KeyError 'last_hidden_state' / AttributeError logits). The
    # classifier reranker (task_type reranker: a num_labels-1 seq_cls head) trains its own MSE loss without one.
    # On Megatron, MegatronEmbeddingTrainer / MegatronRerankerTrainer.__init__ take loss_map[args.loss_type]: the
    # megatron-task-loss rule (msswift/startup_rules_megatron.py) says that.
    if recipe.command not in ("sft", "pt") or recipe.engine != "swift":
        return
    task = _task(args)
    if task not in ("embedding", "reranker", "generative_reranker"):
        return
    names = [str(t) for t in args.list("loss_type")]
    family, other = (EMBEDDING_LOSSES, RERANKER_LOSSES) if task == "embedding" else (RERANKER_LOSSES, EMBEDDING_LOSSES)
    if not names and task != "reranker":
        err("encoder-loss-type", f"task_type {task} without loss_type: ms-swift sets no loss function and the "
            "model's own forward has none for its pair labels (the first step raises)",
            "task_type" if args.str("task_type") else "model", hint=f"loss_type: one of {', '.join(family)}")
    elif names and names[0] in other:
        err("encoder-loss-type", f"loss_type {names[0]} is a {'reranker' if task == 'embedding' else 'embedding'} "
            f"loss: it reads an output the {task} model does not give", "loss_type",
            hint=f"loss_type: one of {', '.join(family)}")


# swift/loss/embedding.py InfonceLoss.__call__ reads its settings from the environment at every step (both engines):
# float() for the temperature and the fake-negative margin, transformers' strtobool for the switches (y/yes/t/true/
# on/1, n/no/f/false/off/0 in any case; anything else is ValueError), int() for the hard-negative count.
INFONCE_FLOATS = ("INFONCE_TEMPERATURE", "INFONCE_FAKE_NEG_MARGIN")
INFONCE_SWITCHES = ("INFONCE_USE_BATCH", "INFONCE_MASK_FAKE_NEGATIVE", "INFONCE_INCLUDE_QQ", "INFONCE_INCLUDE_DD")
TRUTH = {"y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"}


def infonce_env(recipe, args, err, warn):
    if recipe.command not in ("sft", "pt") or [str(t) for t in args.list("loss_type")][:1] != ["infonce"]:
        return
    for name in (*INFONCE_FLOATS, *INFONCE_SWITCHES, "INFONCE_HARD_NEGATIVES"):
        if name not in args.env:
            continue
        value = str(args.env[name])
        if name in INFONCE_SWITCHES:
            ok, want = value.lower() in TRUTH, "true or false (strtobool: y/yes/t/true/on/1, n/no/f/false/off/0)"
        elif name == "INFONCE_HARD_NEGATIVES":
            try:
                int(value)
                ok = True
            except ValueError:
                ok = False
            want = "a whole number written as digits"
        else:
            try:
                number = float(value)
                ok = True
            except ValueError:
                number, ok = None, False
            want = "a number"
            if ok and name == "INFONCE_TEMPERATURE" and not number > 0:
                warn("infonce-env", f"env INFONCE_TEMPERATURE={value!r}: the InfoNCE similarities are divided by it, "
                     "so the loss is inf/NaN", f"env.{name}", hint="INFONCE_TEMPERATURE: a positive number (0.1 is "
                     "ms-swift's default)")
                continue
        if not ok:
            err("infonce-env", f"env {name}={value[:40]!r}: ms-swift's InfoNCE loss parses it at the first step and "
                "raises ValueError", f"env.{name}", hint=f"{name}: {want}")


ENCODER_RULES = [encoder_loss_type, infonce_env]
