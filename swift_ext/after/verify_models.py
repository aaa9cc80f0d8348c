"""verify's two checks that run models: parity (logits of base + adapter vs merged, layer by layer)
and generate (one prompt through ms-swift's own `swift infer`). See verify.py for what each proves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from swift_ext.runs.rundir import ARGS_FILE
from swift_ext.spec.findings import UserError

# `report` below is verify.VerifyReport (not imported: verify imports this module).

# Logit thresholds by the merged model's dtype: (max abs diff, mean abs diff, min top-1 agreement).
# bf16 keeps ~3 significant digits: logits of size 10-30 move by 0.06-0.12 per rounding step, and
# ms-swift #6862's broken merges showed token mean diffs above 0.1.
PARITY_LIMITS = {
    "float32": (1e-3, 1e-4, 0.99),
    "float16": (0.25, 0.01, 0.98),
    "bfloat16": (1.0, 0.05, 0.95),
}
FALLBACK_PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain in one sentence what a mixture-of-experts model is.",
    "Compute 17 * 23 and show your work.",
]


def load_prompts(adapter_path: Path | None, k: int) -> tuple[list[list[dict]], str]:
    """K conversations (without the final assistant turn) from the run's validation split, else fixed."""
    if adapter_path is not None and (adapter_path / ARGS_FILE).is_file():
        from swift_ext.after.infer import find_manifest, resolve_val
        from swift_ext.after.merge import read_checkpoint

        try:
            ckpt = read_checkpoint(adapter_path)
            val = resolve_val(ckpt, "val", find_manifest(ckpt))
        except UserError:
            val = None
        if val is not None:
            prompts = []
            for line in val.read_text(encoding="utf-8").splitlines():
                try:
                    messages = json.loads(line).get("messages") or []
                except (ValueError, AttributeError):
                    continue
                while messages and messages[-1].get("role") == "assistant":
                    messages = messages[:-1]
                if messages and all(isinstance(m.get("content"), str) for m in messages):
                    prompts.append([{"role": m["role"], "content": m["content"]} for m in messages])
                if len(prompts) == k:
                    break
            if prompts:
                return prompts, str(val)
    return [[{"role": "user", "content": p}] for p in FALLBACK_PROMPTS[:k]], "fixed prompts"


def _encode(tokenizer, conversations: list[list[dict]], max_tokens: int):
    ids = []
    for conv in conversations:
        try:
            text = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        except Exception:  # no chat template: plain text
            text = "\n".join(m["content"] for m in conv)
        ids.append(tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens])
    return ids


def _model_class(model_dir: Path):
    import transformers

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    for arch in config.get("architectures") or []:
        if hasattr(transformers, arch):
            return getattr(transformers, arch)
    return transformers.AutoModelForCausalLM


def _decoder_layers(model):
    """The longest ModuleList named `layers` (the decoder stack, not the vision tower's blocks)."""
    import torch

    best = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.endswith("layers") and "visual" not in name:
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    return best


def _run(model, prompts_ids, keep_layers: bool):
    """Logits per prompt, and each decoder layer's output per prompt (float32, CPU)."""
    import torch

    found = _decoder_layers(model) if keep_layers else None
    captured: list[list] = []
    hooks = []
    if found:
        for i, layer in enumerate(found[1]):
            def hook(_m, _inp, out, i=i):
                hidden = out[0] if isinstance(out, tuple) else out
                captured[-1].append((i, hidden.detach().to(torch.float32).cpu()))
            hooks.append(layer.register_forward_hook(hook))
    logits = []
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for ids in prompts_ids:
                captured.append([])
                out = model(input_ids=torch.tensor([ids], device=device), use_cache=False)
                logits.append(out.logits[0].detach().to(torch.float32).cpu())
    finally:
        for h in hooks:
            h.remove()
    return logits, captured, (found[0].removeprefix("base_model.model.") if found else None)


def check_parity(report: VerifyReport, base_dir: Path, adapter: Path, merged_dir: Path, k: int, max_tokens: int,
                 dtype_name: str) -> None:
    import gc

    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    conversations, source = load_prompts(adapter, k)
    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir if (merged_dir / "tokenizer_config.json").is_file()
                                                  else base_dir))
    prompts_ids = _encode(tokenizer, conversations, max_tokens)
    torch_dtype = getattr(torch, dtype_name)
    kwargs = {"dtype": torch_dtype, "device_map": "auto" if torch.cuda.is_available() else None}
    cls = _model_class(base_dir)
    reference = PeftModel.from_pretrained(cls.from_pretrained(str(base_dir), **kwargs), str(adapter)).eval()
    ref_logits, ref_layers, layers_name = _run(reference, prompts_ids, keep_layers=True)
    del reference
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    merged = _model_class(merged_dir).from_pretrained(str(merged_dir), **kwargs).eval()
    got_logits, got_layers, _ = _run(merged, prompts_ids, keep_layers=True)
    del merged
    gc.collect()

    max_diff, total, count, agree, positions = 0.0, 0.0, 0, 0, 0
    for a, b in zip(ref_logits, got_logits, strict=True):
        d = (a - b).abs()
        max_diff = max(max_diff, float(d.max()))
        total += float(d.sum())
        count += d.numel()
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        positions += a.shape[0]
    mean_diff = total / max(count, 1)
    top1 = agree / max(positions, 1)
    per_layer: list[float] = []
    for ref_p, got_p in zip(ref_layers, got_layers, strict=True):
        for (i, ra), (_, gb) in zip(ref_p, got_p, strict=True):
            while len(per_layer) <= i:
                per_layer.append(0.0)
            per_layer[i] = max(per_layer[i], float((ra - gb).abs().max()))
    max_lim, mean_lim, top1_lim = PARITY_LIMITS.get(dtype_name, PARITY_LIMITS["bfloat16"])
    first_bad = next((i for i, v in enumerate(per_layer) if v > max_lim), None)
    report.parity = {"prompts": len(prompts_ids), "prompt_source": source, "tokens": positions, "dtype": dtype_name,
                     "max_abs_diff": max_diff, "mean_abs_diff": mean_diff, "top1_agreement": top1,
                     "limits": {"max_abs_diff": max_lim, "mean_abs_diff": mean_lim, "top1_agreement": top1_lim},
                     "decoder_layers": layers_name, "per_layer_max_abs_diff": per_layer,
                     "first_diverging_layer": first_bad}
    failed = []
    if max_diff > max_lim:
        failed.append(f"max abs logit diff {max_diff:.3g} > {max_lim:g}")
    if mean_diff > mean_lim:
        failed.append(f"mean abs logit diff {mean_diff:.3g} > {mean_lim:g}")
    if top1 < top1_lim:
        failed.append(f"top-1 agreement {top1:.3f} < {top1_lim:g}")
    if failed:
        where = f" (first diverging decoder layer: {layers_name}.{first_bad})" if first_bad is not None else ""
        report.add("parity", "error", "merged model does not reproduce base + adapter: " + "; ".join(failed) + where)


def smoke_generate(report: VerifyReport, merged_dir: Path, args: dict, max_new_tokens: int = 8) -> None:
    """One prompt through ms-swift's own `swift infer` on the merged model."""
    with tempfile.TemporaryDirectory(prefix="swift-ext-verify-") as tmp:
        row = Path(tmp) / "prompt.jsonl"
        row.write_text(json.dumps({"messages": [{"role": "user", "content": FALLBACK_PROMPTS[0]}]}) + "\n")
        result = Path(tmp) / "result.jsonl"
        argv = ["swift", "infer", "--model", str(merged_dir), "--val_dataset", str(row), "--infer_backend",
                "transformers", "--max_new_tokens", str(max_new_tokens), "--result_path", str(result)]
        for key in ("template", "torch_dtype"):
            if args.get(key):
                argv += [f"--{key}", str(args[key])]
        env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
        except FileNotFoundError:
            report.add("generate", "error", "`swift` is not on PATH; cannot run the generation smoke test")
            return
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()] if result.is_file() else []
        response = rows[0].get("response") if rows else None
        report.generate = {"command": argv, "exit_code": proc.returncode, "prompt": FALLBACK_PROMPTS[0],
                           "response": response}
        if proc.returncode != 0 or not isinstance(response, str):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            report.add("generate", "error", f"`swift infer` on the merged model failed (exit {proc.returncode}): "
                       + " | ".join(tail))
        elif not response.strip():
            report.add("generate", "warning", "`swift infer` produced an empty response")
