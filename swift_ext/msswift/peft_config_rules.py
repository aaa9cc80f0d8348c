"""The installed peft 0.20's config validations that ms-swift 4.6's prepare_adapter (swift/pipelines/train/tuner.py)
reaches from recipe flags, found by the peft audit (bench/peft_audit/peft_checks.tsv). prepare_adapter builds the peft
config from a fixed set of flags (lora_rank, init_weights, use_dora, the adalora_*/boft_* flags); the checks on fields
it never passes (loftq_config, layers_to_transform, megatron_config, peft's own lora_bias) cannot fire. Engine swift,
a new adapter only (resume_from_checkpoint / adapters load the saved one and prepare_adapter does not run)."""

from __future__ import annotations

from swift_ext.msswift.adapter_setup_rules import _builds_new_adapter, _swift_training


def _unknown_lora_init(value: str) -> bool:
    """peft/tuners/lora/layer.py LoraLayer.update_layer dispatches init_lora_weights by name (pissa*/corda* prefixes,
    olora/mica case-blind, loftq/eva/orthogonal/lora_ga exact); any other truthy string reaches
    reset_lora_parameters, which knows only True and 'gaussian' and raises "Unknown initialization". corda* reaches
    LoraLayer.corda_init, which raises without the `eigens` that peft's preprocess_corda attaches -- and ms-swift never
    calls preprocess_corda. ms-swift turns 'true'/'false' into bools (TunerArguments.__post_init__) and handles
    'lora-ga' itself."""
    if not value or value.lower() in ("true", "false", "gaussian", "olora", "mica") or value == "lora-ga":
        return False
    return not (value.startswith("pissa") or value in ("loftq", "eva", "orthogonal", "lora_ga"))


def peft_config(recipe, args, err, warn):
    if not _swift_training(recipe) or not _builds_new_adapter(args):
        return
    tuner = args.str("tuner_type")
    # prepare_adapter builds peft's LoraConfig for lora/longlora only on the peft backend without use_swift_lora
    peft_lora = tuner in ("lora", "longlora") and not args.bool("use_swift_lora") \
        and (args.str("tuner_backend") or "peft") == "peft"
    if (peft_lora or tuner == "adalora") and args.str("init_weights") == "loftq":
        # peft/tuners/lora/config.py LoraConfig.__post_init__: init_lora_weights 'loftq' needs loftq_config (and
        # scipy); ms-swift has no flag for loftq_config, so the LoraConfig(...) call in prepare_adapter raises.
        # AdaLoraConfig (its adalora branch passes init_lora_weights too) runs LoraConfig.__post_init__ first.
        err("peft-config", "init_weights loftq needs peft's loftq_config, which ms-swift never passes: LoraConfig "
            "raises \"`loftq_config` must be specified when `init_lora_weights` is 'loftq'\"", "init_weights",
            hint="init_weights: true, gaussian, pissa, olora (or quantize with quant_method and keep true)")
    init = args.str("init_weights")
    if peft_lora and init and _unknown_lora_init(init):
        err("peft-config", f"init_weights {init!r} cannot initialise through prepare_adapter: peft 0.20's "
            "update_layer raises while wrapping the first module (\"Unknown initialization\", or for corda the "
            "missing preprocess_corda eigens)", "init_weights",
            hint="init_weights: true, false, gaussian, pissa, pissa_niter_[n], olora, orthogonal, lora-ga")
    rank = args.int("lora_rank", 8)
    if peft_lora and init == "orthogonal" and rank and rank % 2:
        # peft/tuners/lora/layer.py LoraLayer.orthogonal_init: "Orthogonal initialization requires the LoRA rank to be
        # even" (prepare_adapter passes no rank_pattern, so every module gets lora_rank).
        err("peft-config", f"init_weights orthogonal needs an even lora_rank, got {rank}: peft's orthogonal_init "
            "raises while wrapping the first module", "lora_rank", hint=f"lora_rank: {rank + 1}")
    if tuner == "adalora":
        # peft/tuners/adalora/config.py AdaLoraConfig.__post_init__: prepare_adapter passes use_dora through
        # lora_kwargs, and AdaLoRA refuses DoRA; orth_reg_weight below 0 is refused too.
        if args.bool("use_dora"):
            err("peft-config", "AdaLoRA does not support DoRA: AdaLoraConfig raises \"ADALORA does not support "
                "DoRA.\"", "use_dora", hint="use_dora: false, or tuner_type: lora")
        orth = args.float("adalora_orth_reg_weight", 0.5)
        if orth is not None and orth < 0:
            err("peft-config", f"adalora_orth_reg_weight {orth} < 0: AdaLoraConfig raises", "adalora_orth_reg_weight",
                hint="adalora_orth_reg_weight >= 0 (ms-swift's default 0.5)")
        # total_step is calculate_max_steps (swift/trainers/utils.py): max_steps when set, else from the dataset's
        # length, which plan does not know -- so only a stated max_steps is judged.
        total, tinit, tfinal = args.int("max_steps"), args.int("adalora_tinit", 0), args.int("adalora_tfinal", 0)
        if total and total > 0 and tinit is not None and tfinal is not None and tinit >= total - tfinal:
            err("peft-config", f"AdaLoRA adalora_tinit {tinit} >= max_steps {total} - adalora_tfinal {tfinal} leaves "
                "no budgeting phase: AdaLoraConfig raises", "adalora_tfinal" if tfinal else "adalora_tinit",
                hint="adalora_tinit + adalora_tfinal < max_steps")
    if tuner == "fourierft":
        # peft/tuners/fourierft/layer.py FourierFTLayer.update_layer: n_frequency must be positive.
        n = args.int("fourier_n_frequency", 2000)
        if n is not None and n <= 0:
            err("peft-config", f"fourier_n_frequency {n} <= 0: FourierFT's update_layer raises", "fourier_n_frequency",
                hint="fourier_n_frequency > 0 (ms-swift's default 2000)")
    if tuner == "boft":
        # peft/tuners/boft/config.py BOFTConfig.__post_init__: exactly one of boft_block_size / boft_block_num must be
        # non-zero (their product is in_features). ms-swift's defaults are 4 and 0.
        size, num = args.int("boft_block_size", 4), args.int("boft_block_num", 0)
        if (size != 0) == (num != 0):
            err("peft-config", f"BOFT needs exactly one of boft_block_size ({size}) and boft_block_num ({num}) "
                "non-zero: BOFTConfig raises", "boft_block_num" if num else "boft_block_size",
                hint="boft_block_size: 4 with boft_block_num: 0, or boft_block_size: 0 with boft_block_num set")
    if tuner == "bone":
        # prepare_adapter's bone branch does `from peft import BoneConfig`; the installed peft 0.20 exports no
        # BoneConfig (peft/__init__.py, no tuners/bone), so the import fails at start-up.
        err("peft-config", "tuner_type bone imports peft.BoneConfig, which the installed peft 0.20 does not export: "
            "ImportError at start-up", "tuner_type", hint="tuner_type: lora")


PEFT_CONFIG_RULES = [peft_config]
