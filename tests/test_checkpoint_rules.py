"""The Megatron checkpoint rules (swift_ext/msswift/checkpoint_rules.py): settings under which ms-swift's first
mcore checkpoint save raises, and resume flags without the checkpoint that holds the optimizer state. One failing and
one passing recipe per case, and the megatron-core lines they mirror read from the installed source."""

from __future__ import annotations

import pytest

from test_msrules import MEG_SFT, problems

FULL = "args.tuner_type=full"
FSDP = ["args.use_megatron_fsdp=true", "env.CUDA_DEVICE_MAX_CONNECTIONS=32"]
NO_MCORE_CKPT = ["args.save_safetensors=true", "args.no_save_optim=true"]

SAVE = "args.no_save_optim=false"  # the base recipe saves safetensors only; this writes the mcore checkpoint too

CASES = [
    # (flag it names, overrides that break it, overrides that satisfy it)
    ("async_save", [FULL, SAVE, *FSDP, "args.async_save=true"], [FULL, SAVE, *FSDP]),
    ("async_save", [FULL, SAVE, *FSDP, "args.async_save=true"], [FULL, *FSDP, "args.async_save=true", *NO_MCORE_CKPT]),
    ("virtual_pipeline_model_parallel_size",
     [FULL, SAVE, *FSDP, "args.pipeline_model_parallel_size=2", "args.virtual_pipeline_model_parallel_size=2"],
     [FULL, SAVE, *FSDP, "args.pipeline_model_parallel_size=2"]),
    ("dist_ckpt_save_pre_mcore_014", [FULL, SAVE, "args.dist_ckpt_save_pre_mcore_014=true"],
     [FULL, "args.dist_ckpt_save_pre_mcore_014=true", "args.no_save_optim=true"]),
    ("dist_ckpt_save_pre_mcore_014", [SAVE, "args.dist_ckpt_save_pre_mcore_014=true"],  # LoRA's optimizer is one too
     [SAVE, "args.dist_ckpt_save_pre_mcore_014=true", "args.use_distributed_optimizer=false"]),
]


@pytest.mark.parametrize("flag, bad, good", CASES, ids=[c[0] for c in CASES])
def test_checkpoint_save_fails_then_passes(flag, bad, good):
    errors, _ = problems(MEG_SFT, *bad)
    assert ("checkpoint-save", f"args.{flag}") in errors, errors
    errors, _ = problems(MEG_SFT, *good)
    assert "checkpoint-save" not in {r for r, _ in errors}, errors


def test_the_pre_014_optimizer_format_is_refused_by_the_installed_megatron_core():
    """fully_sharded_model_space gives every optimizer-state ShardedTensor a flattened_range, which
    ShardedTensor.validate_metadata_integrity refuses (megatron-core 0.16.1, checked on the real class)."""
    torch = pytest.importorskip("torch")
    try:
        from megatron.core.dist_checkpointing.core import CheckpointingException
        from megatron.core.dist_checkpointing.mapping import ShardedTensor
    except ImportError:
        pytest.skip("megatron-core is not installed here")
    from dataclasses import replace

    from swift_ext.msswift.source_reader import _SourceReader

    tensor = ShardedTensor.from_rank_offsets("w", torch.zeros(4, 4))
    tensor.validate_metadata_integrity()  # the model's own tensor is fine
    # the state tensor the pre-0.14 format builds: `replace(sharded_metadata, ..., flattened_range=item_slice)`
    with pytest.raises(CheckpointingException, match="flattened_range is not supported"):
        replace(tensor, data=torch.zeros(8), flattened_range=slice(0, 8)).validate_metadata_integrity()
    parsed = _SourceReader().parse("megatron.core.optimizer.distrib_optimizer")
    text = "\n".join(parsed[1])
    fs = text[text.index("def sharded_param_state_fs_model_space"):]
    assert "flattened_range=item_slice" in fs[:6000] and "replace(sharded_metadata" in fs[:6000]


@pytest.mark.parametrize("asked, given, said", [
    (["args.finetune=false"], [], True),  # MEG_SFT is a LoRA run: only mcore_adapter carries its optimizer
    (["args.no_load_optim=false"], ["args.mcore_model=base-mcore"], True),  # mcore_model is the base under LoRA
    (["args.finetune=false"], ["args.mcore_adapter=out/checkpoint-200"], False),
    (["args.finetune=false", "args.tuner_type=full"], [], True),
    (["args.finetune=false", "args.tuner_type=full"], ["args.mcore_model=out/checkpoint-200"], False),
    ([], ["args.mcore_model=base-mcore"], False),  # nothing asked: ms-swift's defaults start fresh, as meant
    (["args.no_load_optim=false"], ["args.mcore_adapter=out/checkpoint-200"], True),  # finetune left true
    (["args.no_load_optim=false"], ["args.mcore_adapter=out/checkpoint-200", "args.finetune=false"], False),
])
def test_resume_flags_without_the_checkpoint_that_holds_the_optimizer(asked, given, said):
    _, warnings = problems(MEG_SFT, *asked, *given)
    found = {w for w in warnings if w[0] == "resume-source"}
    assert bool(found) == said, warnings
    if said:
        assert found == {("resume-source", asked[0].split("=")[0])}


REGEX = "args.target_regex=^.*\\.(linear_qkv|linear_proj)$"


@pytest.mark.parametrize("bad, good", [
    ([REGEX], [REGEX, "args.save_safetensors=false"]),  # mcore checkpoints only: no peft-format save
    ([REGEX, "args.merge_lora=true"], ["args.target_modules=linear_qkv linear_proj", "args.merge_lora=true"]),
    ([REGEX, FULL, "args.adapters=out/checkpoint-100"], [REGEX, FULL]),  # adapters turn full into lora; full alone
])                                                                        # never builds LoRA (target_regex unused)
def test_lora_target_regex_fails_the_first_safetensors_save(bad, good):
    errors, _ = problems(MEG_SFT, *bad)
    assert ("lora-regex-save", "args.target_regex") in errors, errors
    errors, _ = problems(MEG_SFT, *good)
    assert "lora-regex-save" not in {r for r, _ in errors}, errors


def test_the_installed_ms_swift_asserts_on_a_regex_adapter_save():
    """The lines lora-regex-save mirrors, read from the installed ms-swift: the peft-format save asserts on a string
    target_modules, and save_checkpoint skips the adapter save only for lora_llm or a bridge without grouped LoRA."""
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    init = (root / "megatron/init.py").read_text(encoding="utf-8")
    assert "assert not isinstance(peft_config.target_modules, str)" in init
    assert "target_regex is not currently supported for LoRA conversion" in init
    base = (root / "megatron/trainers/base.py").read_text(encoding="utf-8")
    assert "not hasattr(self.bridge, '_support_hf_grouped_lora')" in base
    utils = (root / "megatron/utils/utils.py").read_text(encoding="utf-8")
    get_target = utils[utils.index("def get_target_modules"):]
    assert "if isinstance(args.target_modules, str):\n        return args.target_modules" in get_target[:200]


@pytest.mark.parametrize("given, said", [
    (["args.save_safetensors=false", "args.merge_lora=true"], True),  # MEG_SFT is a LoRA run
    (["args.save_safetensors=true", "args.merge_lora=true"], False),
    (["args.save_safetensors=false", "args.merge_lora=null"], False),  # merge_lora unset: nothing asked for
    (["args.save_safetensors=false", "args.merge_lora=true", FULL], False),  # full training merges nothing
])
def test_merge_lora_without_safetensors_writes_no_merged_model(given, said):
    errors, warnings = problems(MEG_SFT, *given)
    assert (("merge-lora-unsaved", "args.merge_lora") in warnings) == said, warnings


MTP_TP = [FULL, SAVE, "args.mtp_num_layers=1", "args.tensor_model_parallel_size=2"]
MTP_CASES = [
    # (overrides that keep the full-weight mcore save with MTP under TP, overrides that avoid it)
    (MTP_TP, [FULL, "args.mtp_num_layers=1", "args.tensor_model_parallel_size=2", *NO_MCORE_CKPT]),
    (MTP_TP, [FULL, SAVE, "args.mtp_num_layers=1", "args.tensor_model_parallel_size=1"]),
    (MTP_TP, [FULL, SAVE, "args.mtp_num_layers=0", "args.tensor_model_parallel_size=2"]),  # no MTP block built
    (MTP_TP, [SAVE, "args.mtp_num_layers=1", "args.tensor_model_parallel_size=2"]),  # LoRA: adapter tensors only
]


@pytest.mark.parametrize("bad, good", MTP_CASES)
def test_mtp_checkpoint_under_tp_warns_then_passes(bad, good):
    _, warnings = problems(MEG_SFT, *bad)
    assert ("mtp-checkpoint-tp", "args.mtp_num_layers") in warnings, warnings
    _, warnings = problems(MEG_SFT, *good)
    assert "mtp-checkpoint-tp" not in {r for r, _ in warnings}, warnings


def test_mtp_checkpoint_replica_ids_collide_in_the_installed_megatron_core():
    """The mechanism on megatron-core 0.16.1's own functions: tp_group None with a dp_cp_group yields TP rank 0 in
    every replica_id (so each TP rank claims the main replica), and the validation refuses a doubled main replica."""
    torch = pytest.importorskip("torch")
    try:
        from megatron.core.dist_checkpointing.core import CheckpointingException
        from megatron.core.dist_checkpointing.mapping import ShardedTensor
        from megatron.core.dist_checkpointing.validation import _validate_sharding_for_key
        from megatron.core.utils import get_pg_rank
    except ImportError:
        pytest.skip("megatron-core is not installed here")
    assert get_pg_rank(None) == 0
    main = ShardedTensor.from_rank_offsets("mtp.layers.0.enorm.weight", torch.zeros(4), replica_id=(0, 0, 0))
    with pytest.raises(CheckpointingException, match="Invalid access pattern"):
        _validate_sharding_for_key([(0, main), (1, main)])  # two TP ranks, both replica (0, 0, 0)
    _validate_sharding_for_key([(0, main), (1, ShardedTensor.from_rank_offsets(
        "mtp.layers.0.enorm.weight", torch.zeros(4), replica_id=(0, 1, 0)))])  # with the TP rank in it: fine
