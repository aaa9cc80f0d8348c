"""The shape of a pre-flight rule's entry (spec/ruleset.py): what it checks, its evidence and its scope, and the
reference prefixes the entries share."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Evidence:
    kind: str  # code | report | measurement | policy
    ref: str  # "megatron-core transformer/transformer_config.py: TransformerConfig.__post_init__", "ms-swift#8001"
    conditions: str = ""  # for a report: what it ran (versions, settings, GPUs)

    @property
    def tag(self) -> str:
        if self.kind == "code":
            package, _, where = self.ref.partition(" ")
            function = (where.split(": ", 1)[-1] if ": " in where else where).split(" (", 1)[0].strip()
            return f"{package} {function}".strip()
        if self.kind == "report":
            return f"report: {self.ref}" + (f", {self.conditions.split(';')[0]}" if self.conditions else "")
        return f"{self.kind}: {self.ref}"


@dataclass(frozen=True)
class RuleInfo:
    name: str
    severity: str  # error | warning | error, warning
    what: str
    evidence: tuple[Evidence, ...]
    scope: str  # when it applies

    def as_dict(self) -> dict:
        return {**asdict(self), "evidence": [{**asdict(e), "tag": e.tag} for e in self.evidence]}


def code(ref: str) -> Evidence:
    """Evidence of kind code: the engine's own check that a rule mirrors."""
    return Evidence("code", ref)


MS = "ms-swift swift/megatron/arguments/megatron_args.py:"
SFT = "ms-swift swift/arguments/sft_args.py:"
RLHF = "ms-swift swift/arguments/rlhf_args.py:"
TC = "megatron-core transformer/transformer_config.py: TransformerConfig.__post_init__"
PS = "megatron-core parallel_state.py: initialize_model_parallel"
GMC = "ms-swift swift/megatron/model/utils.py: get_mcore_model_config (copies the arguments named like config fields)"
