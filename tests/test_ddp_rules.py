"""Engine swift's plain-DDP rules (planner/ddp_rules.py): reentrant activation checkpointing is refused where DDP
searches for unused parameters (ddp_find_unused_parameters true, or unset on an adapter run) and warned otherwise, and the setups DDP takes (ms-swift's own non-reentrant choice,
DeepSpeed, FSDP, one rank, no checkpointing, a static graph) are left alone."""

from __future__ import annotations

from test_length_rules import findings

REENTRANT = "ms-swift-2746-internvl25-lora-ddp-reentrant"


def test_reentrant_checkpointing_with_find_unused_is_refused_and_without_it_warned():
    errors, warnings = findings(REENTRANT)
    assert errors.get("ddp-reentrant") == {"args.gradient_checkpointing_kwargs"}
    # unset, the Trainer turns find_unused_parameters on for a model that is not a PreTrainedModel: the LoRA run's
    # PeftModel (transformers Trainer._build_accelerator_args) -- the report's first run, before the flag was added
    errors, warnings = findings(REENTRANT, "args.ddp_find_unused_parameters=null")
    assert errors.get("ddp-reentrant") == {"args.gradient_checkpointing_kwargs"}
    # full training hands it the PreTrainedModel, and gradient checkpointing turns the search off: a warning
    errors, warnings = findings(REENTRANT, "args.ddp_find_unused_parameters=null", "args.tuner_type=full")
    assert "ddp-reentrant" not in errors and warnings.get("ddp-reentrant") == {"args.gradient_checkpointing_kwargs"}
    # stated false: DDP does no search, and the reentrant checkpoint's hooks fire once (a warning)
    errors, warnings = findings(REENTRANT, "args.ddp_find_unused_parameters=false")
    assert "ddp-reentrant" not in errors and warnings.get("ddp-reentrant") == {"args.gradient_checkpointing_kwargs"}
    # two nodes of one GPU each are DDP too
    assert "ddp-reentrant" in findings(REENTRANT, "launch.nodes=2", "launch.gpus_per_node=1")[0]


def test_the_setups_ddp_takes_are_left_alone():
    for runs in (('args.gradient_checkpointing_kwargs={"use_reentrant":false}',),  # ms-swift's own choice on DDP
                 ("args.gradient_checkpointing_kwargs=null",),                       # ... which it makes when unset
                 ("args.deepspeed=zero2",),                 # DeepSpeed's engine, not DDP's reducer
                 ("args.fsdp=fsdp2", "args.gradient_checkpointing=false"),
                 ("launch.gpus_per_node=1",),               # one process: no torchrun, no DDP
                 ("args.gradient_checkpointing=false",),
                 ("args.ddp_static_graph=true",)):          # the documented workaround
        errors, warnings = findings(REENTRANT, *runs)
        assert "ddp-reentrant" not in errors and "ddp-reentrant" not in warnings, runs
