"""ms-swift's own example scripts through `import` -> `plan --print` (issue #21's first acceptance line).

    python bench/bench_examples_roundtrip.py DIR [DIR...] [--oracle] [--upgrade] [--gpu=H100] [--verbose]

Every `*.sh` under the folders that runs `megatron sft|pt|rlhf` (or `swift sft|pt|rlhf`, counted apart) is
imported with the functions the `import` verb uses (import_file, then the same argument check), written as
YAML, read back with load_recipe and planned with make_plan as `plan --print` does. A script's verdict is
the worst of its commands': ok, warned, refused (rule code and flag named), import failed (a clean one-line
error from `import`) or crashed (a traceback: a bug in swift-ext, counted apart). Scripts with no training
command (`megatron export`, `swift infer`, ...) are listed as skipped.

The scripts are not ours to commit: point it at a copy (e.g. of ms-swift's examples/megatron). With no
folder it says so and exits 0, so `make bench` skips it (there it reads the folders from
SWIFT_EXT_EXAMPLES, os.pathsep-separated). `--upgrade` imports as `import --upgrade` does
(ms-swift 3.x names renamed): the way to plan scripts written for 3.x against the installed 4.x.
Each folder is planned from itself as the working directory (ms-swift's scripts run from the checkout's
root, and their relative paths, external_plugins among them, are read from there).
Besides the counts per engine, it says how many of the scripts written with names ms-swift 4.6 knows (no
unknown-argument finding: neither a 3.x name nor a flag added after 4.6) plan: the scripts among which a false
refusal of a published, running setup would show.
`--gpu=NAME` plans each recipe with launch.gpu=NAME, so the memory verdict is part of it (an imported
script names no GPU, and without one plan gives no memory verdict).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A training command anywhere on a line that is not a comment (after `nohup`, `cd DIR &&`, env assignments):
# the pre-filter; whether the importer finds it is what the bench measures.
_TRAINING = re.compile(r"(?:^|[\s;&|(])(megatron|swift)\s+(sft|pt|rlhf)\b|(?:^|[\s/])swift/cli/(_megatron/)?(sft|pt|rlhf)\.py"
                       r"|\s-m\s+swift\.cli\.(_megatron\.)?(sft|pt|rlhf)\b", re.M)
RANK = {"ok": 0, "warned": 1, "refused": 2, "import failed": 3, "crashed": 4}


@dataclass
class Outcome:
    script: str
    engine: str  # "megatron" or "swift": a script with both counts as megatron
    commands: int = 0
    verdict: str = "ok"
    reasons: list[str] = field(default_factory=list)  # "code flag" per refusal / the import error
    warnings: list[str] = field(default_factory=list)
    trace: str | None = None
    upgraded: bool = False  # refused as written, planned without refusal after `import --upgrade`

    def worse(self, verdict: str, reason: str | None = None) -> None:
        if RANK[verdict] > RANK[self.verdict]:
            self.verdict = verdict
        if reason:
            self.reasons.append(reason)


def training_commands(text: str) -> list[str]:
    """The engine of each training command the script's text shows, in order."""
    # Comment lines go before continuations are joined: bash ends a comment at its newline even when it ends
    # in a backslash, so `# --flag \` above a command does not swallow the command (ms-swift's scripts
    # keep commented-out flags between the variables and the launch line).
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    joined = re.sub(r"\\\r?\n", " ", code)
    return [m.group(1) or ("megatron" if m.group(3) or m.group(5) else "swift") for m in _TRAINING.finditer(joined)]


def roundtrip(path: Path, base: Path, oracle: bool, upgrade: bool, gpu: str | None = None) -> Outcome:
    from swift_ext.cli.imports import _import_warnings
    from swift_ext.msswift.importer import import_file, recipe_yaml
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.findings import UserError
    from swift_ext.spec.recipe import load_recipe

    shown = training_commands(path.read_text(encoding="utf-8", errors="replace"))
    out = Outcome(str(path.relative_to(base)), "megatron" if "megatron" in shown else "swift")
    try:
        imported = import_file(path, upgrade)
        for data, _notes in imported:
            _import_warnings(data, path)  # `import` refuses an invalid recipe here
    except UserError as exc:
        out.worse("import failed", "; ".join(p.render() for p in exc.problems)[:200])
        return out
    except Exception:  # noqa: BLE001 — a traceback is the finding
        out.worse("crashed", "import")
        out.trace = traceback.format_exc()
        return out
    out.commands = len(imported)
    if len(imported) < len(shown):  # a command the importer did not see is a silent loss
        out.worse("import failed", f"imported {len(imported)} of the {len(shown)} training commands in the script")
    with tempfile.TemporaryDirectory(prefix="roundtrip-") as tmp:
        for k, (data, _notes) in enumerate(imported, 1):
            recipe_path = Path(tmp) / f"{path.stem}-{k}.yaml"
            recipe_path.write_text(recipe_yaml(data), encoding="utf-8")
            try:
                result = make_plan(load_recipe(recipe_path, [f"launch.gpu={gpu}"] if gpu else []), oracle=oracle)
            except UserError as exc:
                out.worse("refused", "; ".join(f"{p.code or 'input'} {p.path or ''}".strip() for p in exc.problems))
                continue
            except Exception:  # noqa: BLE001
                out.worse("crashed", f"plan of command {k}")
                out.trace = traceback.format_exc()
                continue
            for p in result.errors:
                out.worse("refused", f"{p.code or 'input'} {p.path or ''}".strip())
            mem = result.memory
            if mem is not None and mem.verdict == "does_not_fit":  # the estimate, next to (or instead of) its finding
                out.reasons = [r for r in out.reasons if r != "memory"]
                out.worse("refused", f"memory {mem.per_gpu_gib:.1f}/{mem.capacity_gib:g} GiB")
            if result.warnings:
                out.worse("warned")
                out.warnings += [f"{p.code} {p.path or ''}".strip() for p in result.warnings]
    return out


def main(argv: list[str]) -> int:
    gpu = next((a.partition("=")[2] for a in argv if a.startswith("--gpu=")), None)
    flags = {a for a in argv if a.startswith("--") and not a.startswith("--gpu=")}
    unknown = flags - {"--oracle", "--upgrade", "--verbose"}
    if unknown:
        raise SystemExit(f"unknown option(s): {', '.join(sorted(unknown))}\n{__doc__}")
    dirs = [Path(a) for a in argv if not a.startswith("--")]
    if not dirs:
        print("bench_examples_roundtrip: no folder of scripts given; skipped "
              "(python bench/bench_examples_roundtrip.py DIR [DIR...])")
        return 0
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise SystemExit(f"not a folder: {', '.join(missing)}")
    outcomes: list[Outcome] = []
    skipped = 0
    here = Path.cwd()
    for base in (d.resolve() for d in dirs):
        # ms-swift's scripts are run from the checkout's root (their relative paths, e.g. external_plugins
        # examples/train/grpo/plugin/plugin.py, start there), and ms-swift resolves them against the working
        # directory: plan from the folder given, as a user of that checkout would.
        os.chdir(base)
        try:
            for path in sorted(base.rglob("*.sh")):
                if not training_commands(path.read_text(encoding="utf-8", errors="replace")):
                    skipped += 1
                    continue
                outcome = roundtrip(path, base, "--oracle" in flags, "--upgrade" in flags, gpu)
                if outcome.verdict == "refused" and "--upgrade" not in flags:
                    # Refused as written: would `import --upgrade` (ms-swift 3.x names renamed) take it? The copy
                    # of the examples may hold 3.x versions of a script, which the installed 4.x refuses.
                    again = roundtrip(path, base, "--oracle" in flags, True, gpu)
                    outcome.upgraded = again.verdict in ("ok", "warned")
                outcomes.append(outcome)
        finally:
            os.chdir(here)
    width = max((len(o.script) for o in outcomes), default=10)
    print(f"{'script':<{width}}  cmds  {'verdict':<13}  refusing rule / flag")
    for o in outcomes:
        print(f"{o.script:<{width}}  {o.commands:>4}  {o.verdict:<13}  {', '.join(dict.fromkeys(o.reasons))}")
        if "--verbose" in flags and o.warnings:
            print(f"{'':<{width}}              warnings: {', '.join(dict.fromkeys(o.warnings))}")
    for o in outcomes:
        if o.trace:
            print(f"\n--- {o.script}: traceback ---\n{o.trace}")
    for engine in ("megatron", "swift"):
        group = [o for o in outcomes if o.engine == engine]
        if not group:
            continue
        passed = sum(o.verdict in ("ok", "warned") for o in group)
        counts = {v: sum(o.verdict == v for o in group) for v in RANK}
        print(f"{engine}: {passed} of {len(group)} planned without refusal ("
              + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ")")
        if "--upgrade" not in flags:
            upgraded = sum(o.upgraded for o in group)
            print(f"{engine}: {passed + upgraded} of {len(group)} with `import --upgrade` ({upgraded} of the refused "
                  f"are refused for ms-swift 3.x names only)")
            # The acceptance line's own measure: scripts ms-swift 4.6 could parse as written (no flag it lacks,
            # whether a 3.x name or one added after 4.6) are the ones a false refusal can hide among.
            known = [o for o in group if not any(r.startswith("unknown-argument") for r in o.reasons)]
            print(f"{engine}: {sum(o.verdict in ('ok', 'warned') for o in known)} of {len(known)} written with "
                  f"names ms-swift 4.6 knows planned without refusal")
    print(f"skipped (no training command): {skipped}")
    crashed = sum(o.verdict == "crashed" for o in outcomes)
    return 1 if crashed else 0


if __name__ == "__main__":
    # Under `make bench` (bench/run_all.py, which gives each benchmark no arguments) the folders come from
    # SWIFT_EXT_EXAMPLES (os.pathsep-separated); without it the bench skips.
    given = sys.argv[1:] or [d for d in os.environ.get("SWIFT_EXT_EXAMPLES", "").split(os.pathsep) if d]
    raise SystemExit(main(given))
