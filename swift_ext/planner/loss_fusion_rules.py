"""The fused language-model cross entropy as ms-swift 4.6's Megatron trainer reaches it: which kernel
computes the loss (and, in place, its gradient) is a recipe choice, and one of them lost the gradient on
the Transformer Engine releases of mid-2025. Registered with layout.py's version-gated rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config import config_value, is_on
from swift_ext.spec.support import version_gaps


# Evidence: ms-swift 4.6 swift/megatron/model/utils.py get_mcore_model_config copies cross_entropy_loss_fusion
# (MegatronArguments default True) and cross_entropy_fusion_impl (default 'native') into the model config;
# swift/megatron/trainers/trainer.py forward_step passes the labels to the model for a causal LM, and mcore-bridge
# 1.6.3 model/gpt_model.py GPTModel.forward ends in compute_language_model_loss(labels, logits) (the MTP layers' loss
# too). megatron-core 0.16.1 models/common/language_module/language_module.py compute_language_model_loss calls
# Transformer Engine's parallel_cross_entropy (te_parallel_cross_entropy, unreduced per-token loss) when the fusion is
# on and the impl is 'te'. TE's Triton kernel computes the gradient in the forward pass and scales it by grad_output
# in the backward (element_mul_kernel), which read the wrong pointer: the logits' gradient came back zero.
# NVIDIA/TransformerEngine PR #2139 ("fix cross entropy vanishing gradients", opened 2025-08-29, merged in September
# 2025; validated with ms-swift Megatron training of Qwen3-30B-A3B) fixed it. Reports: NVIDIA/Megatron-LM#1750 (filed
# by ms-swift's maintainer: "--cross_entropy_fusion_impl te results in grad_norm 0"; a second user hit it on TE 2.5.0,
# the newest release then, and the run diverged), NVIDIA/Megatron-LM#1627 (Qwen3-30B-A3B-shaped MoE, TP1 PP2 EP8:
# loss diverges, grad_norm abnormally smooth; gone with the option removed). The run trains on, wrongly: a warning.
# The trainers that hand the labels to the model get that loss back: sft / pt of a causal LM, and DPO and KTO, whose
# log-probabilities are the negated per-token loss (swift/megatron/trainers/dpo_trainer.py forward_step, kto_trainer.py,
# rlhf_mixin.py get_logps). GRPO pops the labels first (grpo_trainer.py) and GKD reaches the kernel only for its
# optional SFT term: not judged. Scope: engine megatron, those commands, cross_entropy_loss_fusion on
# and cross_entropy_fusion_impl te, and a training-machine Transformer Engine known (declared or installed) to be
# older than 2.7; TE 2.5.0 is the reported failing release and 2.6 predates the fix, whether 2.7 carries it is not
# verified here, so 2.7 and later -- and an unknown version -- get no verdict.
def cross_entropy_te_gradient(recipe, args, shape, lay, err, warn, versions):
    if recipe.command == "rlhf":
        if args.str("rlhf_type") not in ("dpo", "kto"):
            return
    elif (args.str("task_type") or "causal_lm") != "causal_lm":
        return
    if not is_on(args, "cross_entropy_loss_fusion", True) or config_value(args, "cross_entropy_fusion_impl") != "te":
        return
    gaps = version_gaps("cross-entropy-te-gradient", versions)
    if not gaps:
        return
    warn("cross-entropy-te", f"cross_entropy_fusion_impl te on {', '.join(gaps)}: Transformer Engine's fused "
         "parallel cross entropy returns a zero gradient for the logits there (its backward scales the gradient by "
         "the wrong pointer), so grad_norm collapses to 0 and the loss does not fall or diverges while the run "
         "looks healthy (NVIDIA/Megatron-LM#1750, #1627; fixed by NVIDIA/TransformerEngine#2139)",
         "cross_entropy_fusion_impl",
         hint="cross_entropy_fusion_impl: native (megatron-core's own fused kernel), or upgrade Transformer Engine "
              "on the training machine")


LOSS_FUSION_VERSIONED_RULES = [cross_entropy_te_gradient]
