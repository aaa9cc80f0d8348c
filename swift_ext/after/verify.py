"""`swift-ext verify MERGED`: is a merged (exported) model really the base model plus the adapter?

Four checks, each streaming, none trusting the export:
- structure: every tensor the base model's safetensors index (or single file) lists is in the merged
  model with the same shape (MTP and vision-tower tensors included), dtypes as expected, no NaN/Inf;
  extra and missing keys listed. Shards are opened with safetensors' `safe_open` and read one tensor
  at a time, so a 35B model needs memory for its largest tensor, not for the model.
- weights: tensor by tensor, merged == base + scale * B @ A for every LoRA-targeted module, merged ==
  base for everything the adapter did not train (modules_to_save: == the adapter's copy). This is what
  names a damaged tensor; the maths is PEFT's merge, recomputed in float32 on one tensor at a time.
- parity: logits of the merged model against base + adapter (PEFT, unmerged) on K fixed prompts from
  the run's validation split (or a fixed prompt set): max/mean absolute difference and top-1 agreement,
  against thresholds by dtype. The two models are never in memory together: base + adapter runs first,
  its logits and each decoder layer's output (forward hooks) are kept on the CPU, the model is freed,
  then the merged model runs and is compared layer by layer, so the first diverging layer is named.
  With `device_map="auto"` a 35B model fits one 8-GPU node; on CPU it is meant for the tiny model.
- generate: one prompt through ms-swift's own `swift infer` on the merged model.
Results go to `MERGED/verify.json` (never overwritten: verify-2.json, ... when it exists).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swift_ext.spec.findings import Finding, UserError
from swift_ext.after.weights import open_safetensors, tensor_group, weight_index
from swift_ext.after.verify_models import check_parity, smoke_generate
from swift_ext.planner.hubcache import cached_model_dir
from swift_ext.planner.tinymodel import resolve_model
from swift_ext.runs.rundir import ARGS_FILE, read_adapter_config, read_args, unmerged_path

# Per-tensor tolerance of merged vs recomputed base + delta: rtol * max|expected| + atol.
TENSOR_TOL = {"F32": (1e-4, 1e-6), "F16": (2e-3, 1e-4), "BF16": (1.6e-2, 1e-3)}
DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
               "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
LIST_LIMIT = 20  # names printed per finding; verify.json keeps all


@dataclass
class VerifyReport:
    merged: str
    base: str | None
    adapter: str | None
    findings: list[Finding] = field(default_factory=list)
    structure: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    generate: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def add(self, check: str, level: str, message: str, tensors: list[str] | None = None) -> None:
        """`check`: structure | weights | parity | generate (its code); `level`: error | warning | note."""
        self.findings.append(Finding(message, code=check, severity=level, details=list(tensors or [])))

    def to_json(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data


# --------------------------------------------------------------------------------------------------
# Reading safetensors checkpoints one tensor at a time


class Shards:
    """Open shards lazily and keep them open; `tensor(key)` reads one tensor."""

    def __init__(self, index: dict[str, Path]):
        self.index = index
        self._open: dict[Path, object] = {}

    def _handle(self, key: str):
        path = self.index[key]
        if path not in self._open:
            if not path.is_file():
                raise UserError.one(f"shard listed in the index is missing (tensor {key})", file=str(path))
            self._open[path] = open_safetensors(path)
        return self._open[path]

    def shape(self, key: str) -> list[int]:
        return list(self._handle(key).get_slice(key).get_shape())

    def dtype(self, key: str) -> str:
        return self._handle(key).get_slice(key).get_dtype()

    def tensor(self, key: str):
        return self._handle(key).get_tensor(key)


def _named(keys: list[str]) -> str:
    shown = ", ".join(f"{k} ({tensor_group(k)})" if tensor_group(k) != "text" else k for k in keys[:LIST_LIMIT])
    return shown + (f" and {len(keys) - LIST_LIMIT} more" if len(keys) > LIST_LIMIT else "")


# --------------------------------------------------------------------------------------------------
# Checks


def check_structure(report: VerifyReport, base: Shards, merged: Shards, expected_dtypes: set[str]) -> None:
    base_keys, merged_keys = set(base.index), set(merged.index)
    missing = sorted(base_keys - merged_keys)
    extra = sorted(merged_keys - base_keys)
    if missing:
        report.add("structure", "error", f"{len(missing)} tensor(s) of the base model missing from the merged "
                   f"model: {_named(missing)}", missing)
    if extra:
        report.add("structure", "error", f"{len(extra)} tensor(s) in the merged model that the base model does not "
                   f"have (unmerged LoRA or renamed keys?): {_named(extra)}", extra)
    shape_bad, dtype_bad, nonfinite = [], [], []
    for key in sorted(base_keys & merged_keys):
        if base.shape(key) != merged.shape(key):
            shape_bad.append(f"{key}: base {base.shape(key)}, merged {merged.shape(key)}")
        dtype = merged.dtype(key)
        if dtype not in expected_dtypes | {base.dtype(key)}:
            dtype_bad.append(f"{key}: {dtype} (expected {' or '.join(sorted(expected_dtypes | {base.dtype(key)}))})")
    import torch

    for key in sorted(merged_keys):
        t = merged.tensor(key)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            nonfinite.append(f"{key}: {nan} NaN, {inf} Inf")
    for items, what in ((shape_bad, "shape differs from the base model"), (dtype_bad, "unexpected dtype"),
                        (nonfinite, "NaN/Inf values")):
        if items:
            report.add("structure", "error", f"{what}: " + "; ".join(items[:LIST_LIMIT])
                       + (f" and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else ""),
                       [i.split(":")[0] for i in items])
    groups: dict[str, int] = {}
    for key in base_keys:
        groups[tensor_group(key)] = groups.get(tensor_group(key), 0) + 1
    report.structure = {"base_tensors": len(base_keys), "merged_tensors": len(merged_keys), "by_group": groups,
                        "missing": missing, "extra": extra, "shape_mismatch": shape_bad,
                        "dtype_mismatch": dtype_bad, "non_finite": nonfinite}


@dataclass(frozen=True)
class Adapter:
    path: Path
    config: dict
    lora: dict[str, tuple[str, str]]  # base tensor name -> (lora_A key, lora_B key)
    replaced: dict[str, str]  # base tensor name -> adapter key holding the full trained tensor
    unsupported: list[str]
    shards: Shards

    def scale(self, module: str) -> float:
        cfg = self.config
        r = _pattern_value(cfg.get("rank_pattern") or {}, module, cfg.get("r", 8))
        alpha = _pattern_value(cfg.get("alpha_pattern") or {}, module, cfg.get("lora_alpha", r))
        return alpha / (r ** 0.5) if cfg.get("use_rslora") else alpha / r


def _pattern_value(patterns: dict, module: str, default):
    for pattern, value in patterns.items():
        if re.search(rf"(^|\.){pattern}$", module):
            return value
    return default


def read_adapter(path: Path) -> Adapter | None:
    """A PEFT LoRA adapter in safetensors (transformers checkpoints; Megatron ones saved with
    save_safetensors). None for Megatron's torch_dist format, which needs GPUs to read."""
    weights = path / "adapter_model.safetensors"
    config = read_adapter_config(path) if weights.is_file() else None
    if config is None:
        return None
    shards = Shards(weight_index_file(weights))
    lora: dict[str, list[str]] = {}
    replaced: dict[str, str] = {}
    unsupported: list[str] = []
    for key in shards.index:
        name = key.removeprefix("base_model.model.")
        m = re.match(r"^(.*)\.lora_([AB])(?:\.default)?\.weight$", name)
        if m:
            slot = lora.setdefault(m.group(1) + ".weight", ["", ""])
            slot[0 if m.group(2) == "A" else 1] = key
        elif "lora_magnitude_vector" in name or ".lora_" in name:
            unsupported.append(key)
        else:  # modules_to_save / trainable tokens: the full trained tensor
            replaced[name.replace(".modules_to_save.default", "")] = key
    if config.get("use_dora"):
        unsupported.append("use_dora")
    return Adapter(path, config, {k: (a, b) for k, (a, b) in lora.items()}, replaced, unsupported, shards)


def weight_index_file(path: Path) -> dict[str, Path]:
    with open_safetensors(path) as fh:
        return {k: path for k in fh.keys()}


def check_weights(report: VerifyReport, base: Shards, merged: Shards, adapter: Adapter) -> None:
    """merged == base + delta, tensor by tensor, in float32."""
    import torch

    common = sorted(set(base.index) & set(merged.index))
    bad_lora, bad_untouched, bad_saved = [], [], []
    worst: tuple[float, str] = (0.0, "")
    largest_delta = 0.0  # shows the check is not vacuous: the adapter did move these weights
    for key in common:
        if base.shape(key) != merged.shape(key):
            continue  # reported by the structure check
        got = merged.tensor(key).to(torch.float32)
        if key in adapter.replaced:
            expected = adapter.shards.tensor(adapter.replaced[key]).to(torch.float32)
            bucket = bad_saved
        else:
            expected = base.tensor(key).to(torch.float32)
            bucket = bad_untouched
            if key in adapter.lora:
                a_key, b_key = adapter.lora[key]
                a = adapter.shards.tensor(a_key).to(torch.float32)
                b = adapter.shards.tensor(b_key).to(torch.float32)
                delta = (b @ a) * adapter.scale(key.removesuffix(".weight"))
                if adapter.config.get("fan_in_fan_out"):
                    delta = delta.T
                if delta.shape != expected.shape:
                    report.add("weights", "warning", f"{key}: LoRA delta shape {list(delta.shape)} does not fit "
                               f"the tensor {list(expected.shape)}; not checked", [key])
                    continue
                expected = expected + delta
                largest_delta = max(largest_delta, float(delta.abs().max()))
                bucket = bad_lora
        rtol, atol = TENSOR_TOL.get(merged.dtype(key), TENSOR_TOL["BF16"])
        diff = float((got - expected).abs().max()) if got.numel() else 0.0
        tol = rtol * float(expected.abs().max() if expected.numel() else 0.0) + atol
        if diff > worst[0]:
            worst = (diff, key)
        if diff > tol:
            bucket.append(f"{key}: off by up to {diff:.3g} (tolerance {tol:.2g})")
    lora_without_base = sorted(set(adapter.lora) - set(base.index))
    if lora_without_base:
        report.add("weights", "warning", f"{len(lora_without_base)} LoRA module(s) match no base tensor, not "
                   f"checked: {_named(lora_without_base)}", lora_without_base)
    if adapter.unsupported:
        report.add("weights", "note", "adapter parts not recomputed (DoRA/other): "
                   + ", ".join(adapter.unsupported[:LIST_LIMIT]))
    for items, what in ((bad_lora, "merged weight is not base + LoRA delta"),
                        (bad_untouched, "tensor the adapter does not train differs from the base model"),
                        (bad_saved, "tensor differs from the adapter's trained copy (modules_to_save)")):
        if items:
            report.add("weights", "error", f"{what}: " + "; ".join(items[:LIST_LIMIT])
                       + (f" and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else ""),
                       [i.split(":")[0] for i in items])
    report.weights = {"checked": len(common), "lora_modules": len(adapter.lora), "modules_to_save": len(adapter.replaced),
                      "max_abs_diff": worst[0], "max_abs_diff_tensor": worst[1],
                      "largest_lora_delta": largest_delta, "bad": bad_lora + bad_untouched + bad_saved}


# --------------------------------------------------------------------------------------------------
# Putting it together


def find_adapter(merged_dir: Path) -> Path | None:
    """`CKPT-merged` -> CKPT when that is an adapter checkpoint."""
    candidate = unmerged_path(merged_dir)
    return candidate if candidate is not None and (candidate / ARGS_FILE).is_file() else None


def resolve_base(merged_dir: Path, adapter: Path | None, base: str | None) -> Path:
    recorded = None
    for where in (adapter, merged_dir):
        if where is not None:
            recorded = (read_args(where) or {}).get("model")
            if recorded:
                break
    name = base or recorded
    if not name:
        raise UserError.one("no base model known: give --base MODEL_DIR", file=str(merged_dir))
    name = resolve_model(str(name))
    path = Path(name).expanduser()
    if not path.is_dir():
        path = cached_model_dir(str(name))
    if path is None:
        raise UserError.one(f"base model {name!r} is neither a local directory nor in the ModelScope/Hugging Face "
                            "cache; verify compares against its safetensors files", file=str(merged_dir),
                            hint="pass --base PATH (a downloaded copy)", code="base_not_local")
    return path


def verify(merged_dir: Path, adapter: Path | None = None, base: str | None = None, *, parity: bool = True,
           generate: bool = True, prompts: int = 4, max_tokens: int = 64, progress=None) -> VerifyReport:
    merged_dir = Path(merged_dir)
    if not merged_dir.is_dir() or not (merged_dir / "config.json").is_file():
        raise UserError.one("not a model directory (no config.json)", file=str(merged_dir))
    adapter = Path(adapter) if adapter else find_adapter(merged_dir)
    base_dir = resolve_base(merged_dir, adapter, base)
    report = VerifyReport(str(merged_dir), str(base_dir), str(adapter) if adapter else None)
    say = progress or (lambda _msg: None)
    args = (read_args(adapter) if adapter is not None else None) or {}
    base_shards, merged_shards = Shards(weight_index(base_dir)), Shards(weight_index(merged_dir))
    expected = {k for k, v in DTYPE_NAMES.items() if v == str(args.get("torch_dtype") or "")}
    say("structure: every base tensor present, same shape, expected dtype, finite")
    check_structure(report, base_shards, merged_shards, expected)
    lora = read_adapter(adapter) if adapter is not None else None
    if lora is None:
        report.add("weights", "note", "no safetensors LoRA adapter given (full checkpoint, or Megatron torch_dist "
                   "format): merged weights not recomputed")
    else:
        say("weights: merged == base + LoRA delta, tensor by tensor")
        check_weights(report, base_shards, merged_shards, lora)
    dtypes = {merged_shards.dtype(k) for k in merged_shards.index}
    float_dtypes = [DTYPE_NAMES[d] for d in ("BF16", "F16", "F32") if d in dtypes]
    dtype_name = str(args.get("torch_dtype") or (float_dtypes[0] if float_dtypes else "bfloat16"))
    if parity and lora is not None:
        say(f"parity: logits of base + adapter vs merged on {prompts} prompt(s), {dtype_name}")
        check_parity(report, base_dir, adapter, merged_dir, prompts, max_tokens, dtype_name)
    elif parity:
        report.add("parity", "note", "parity needs a PEFT adapter in safetensors; skipped")
    if generate:
        say("generate: one prompt through `swift infer`")
        smoke_generate(report, merged_dir, args)
    return report


def write_report(report: VerifyReport) -> Path:
    merged = Path(report.merged)
    for n in range(1, 1000):
        path = merged / ("verify.json" if n == 1 else f"verify-{n}.json")
        try:
            with open(path, "x", encoding="utf-8") as fh:
                json.dump(report.to_json(), fh, indent=2)
                fh.write("\n")
            return path
        except FileExistsError:
            continue
    raise UserError.one(f"cannot create a new verify report in {merged}")


def summary_table(report: VerifyReport):
    """The result as a rich table: one row per check, then the parity figures."""
    from rich.table import Table

    table = Table(title=f"verify {report.merged}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("details", overflow="fold")
    for check in ("structure", "weights", "parity", "generate"):
        found = [f for f in report.findings if f.code == check]
        data = getattr(report, check)
        if any(f.severity == "error" for f in found):
            verdict = "[red]FAIL[/red]"
        elif data:
            verdict = "[green]ok[/green]"
        else:
            verdict = "[dim]skipped[/dim]"
        details = _details(check, data)
        messages = [f"{f.severity}: {f.message}" for f in found]
        table.add_row(check, verdict, "\n".join([details] + messages if details else messages))
    p = report.parity
    if p:
        limits = p["limits"]
        figures = Table(title=f"logit parity, {p['prompts']} prompts / {p['tokens']} tokens ({p['prompt_source']}), "
                        f"{p['dtype']}", title_justify="left")
        for col in ("metric", "value", "limit"):
            figures.add_column(col, justify="left" if col == "metric" else "right")
        figures.add_row("max abs diff", f"{p['max_abs_diff']:.3g}", f"≤ {limits['max_abs_diff']:g}")
        figures.add_row("mean abs diff", f"{p['mean_abs_diff']:.3g}", f"≤ {limits['mean_abs_diff']:g}")
        figures.add_row("top-1 agreement", f"{p['top1_agreement']:.4f}", f"≥ {limits['top1_agreement']:g}")
        from rich.console import Group

        return Group(table, figures)
    return table


def _details(check: str, data: dict) -> str:
    if not data:
        return ""
    if check == "structure":
        groups = ", ".join(f"{v} {k}" for k, v in sorted(data["by_group"].items()))
        return f"{data['merged_tensors']} merged / {data['base_tensors']} base tensors ({groups})"
    if check == "weights":
        return (f"{data['checked']} tensors, {data['lora_modules']} LoRA modules (largest |delta| "
                f"{data['largest_lora_delta']:.3g}); largest deviation from base + delta {data['max_abs_diff']:.3g}"
                + (f" ({data['max_abs_diff_tensor']})" if data["max_abs_diff_tensor"] else ""))
    if check == "parity":
        layers = data["per_layer_max_abs_diff"]
        if data["first_diverging_layer"] is not None:
            return f"first diverging decoder layer: {data['decoder_layers']}.{data['first_diverging_layer']}"
        return (f"{len(layers)} decoder layers compared, largest hidden-state diff "
                f"{max(layers) if layers else 0:.3g}")
    if check == "generate":
        return f"exit {data['exit_code']}, response {str(data.get('response'))[:60]!r}"
    return ""
