"""`swift-ext submit`: one sbatch script per run, rendered from the recipe, checked, then submitted.

Runs on the login node. What runs on the ranks is the same ms-swift command `swift-ext plan --print`
shows, started once per node by srun; the batch script adds rendezvous variables, shared caches,
resume from the newest complete checkpoint, and signal forwarding with self-requeue
(swift_ext/runs/slurm_templates/*.sbatch).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from swift_ext.spec.findings import UserError
from swift_ext.runs.rundir import RunDir, load_flag, read_json_object
from swift_ext.planner.launch import Launch
from swift_ext.spec.recipe import SLURM_TIME, SLURM_TIME_FORMS, Recipe
from swift_ext.spec.secrets import is_secret, masked_args

# Package data (pyproject: swift_ext/runs/slurm_templates/*.sbatch), so an installed wheel can render them too.
TEMPLATES = resources.files("swift_ext.runs") / "slurm_templates"


@dataclass(frozen=True)
class SlurmOptions:
    nodes: int | None = None
    partition: str | None = None
    account: str | None = None
    time: str | None = None
    qos: str | None = None
    grace_s: int = 120
    cache_dir: str | None = None
    job_name: str | None = None
    extra: tuple[str, ...] = ()
    then: tuple[str, ...] = ()  # follow-up verbs: merge, infer
    sweep: tuple[str, ...] = ()  # "args.lr=1e-5,5e-5"
    doctor_blocks: bool = True  # a blocking `swift-ext doctor` finding stops the job (submit --force: warns)


@dataclass
class Rendered:
    script: str
    followups: list[tuple[str, str]] = field(default_factory=list)  # (verb, script)
    array: list[dict] = field(default_factory=list)  # per element: {"overrides": {...}, "output_dir": ...}
    secrets: list[str] = field(default_factory=list)  # names forwarded from the environment
    output_dir: str = ""
    evaluation: str = ""  # eval.sbatch: one checkpoint's evaluation job (recipe `eval:`), "" without one


def q(value) -> str:
    return shlex.quote(str(value))


def sweep_elements(sweeps: tuple[str, ...]) -> list[dict[str, str]]:
    """`args.lr=1e-5,5e-5` x `args.lora_rank=8,16` -> the cartesian product of override dicts."""
    elements: list[dict[str, str]] = [{}]
    for spec in sweeps:
        if "=" not in spec or not spec.startswith("args."):
            raise UserError.one(f"--sweep {spec!r}: expected args.NAME=V1,V2,...", file="command line")
        key, _, values = spec.partition("=")
        options = [v for v in values.split(",") if v]
        if len(options) < 2:
            raise UserError.one(f"--sweep {spec!r}: give at least two comma-separated values", file="command line")
        repeated = sorted({v for v in options if options.count(v) > 1})
        if repeated:  # two array tasks would train the same run into two output dirs
            raise UserError.one(f"--sweep {spec!r}: {', '.join(repeated)} given more than once", file="command line")
        if key in elements[0]:
            raise UserError.one(f"--sweep {spec!r}: {key} is swept twice", file="command line",
                                hint="give all its values in one --sweep")
        elements = [{**e, key: v} for e in elements for v in options]
    return elements if sweeps else []


def render(recipe: Recipe, launch: Launch, opts: SlurmOptions, elements: list[dict[str, str]],
           element_launches: list[Launch]) -> Rendered:
    if recipe.engine != "megatron":
        raise UserError.one("swift-ext submit runs Megatron recipes (engine: megatron); the transformers "
                            "backend recipes here are for single-machine CPU/GPU runs", file=recipe.source)
    for name in recipe.env:
        if is_secret(name):
            raise UserError.one(f"env.{name} looks like a secret: it would be written into the batch script",
                                file=recipe.source, path=f"env.{name}",
                                hint=f"remove it from the recipe and `export {name}=...` in the shell you submit "
                                     "from; swift-ext forwards it by name")
    nodes = opts.nodes or recipe.launch.nodes
    gpus = recipe.launch.gpus_per_node
    output_dir = os.path.abspath(launch.output_dir or "megatron_output")
    name = opts.job_name or f"sx-{Path(recipe.source).stem}"
    log_dir = output_dir if not elements else os.path.join(output_dir, "slurm")
    sbatch = [f"--job-name={name}", f"--nodes={nodes}", "--ntasks-per-node=1"]
    if gpus > 0:
        sbatch.append(f"--gpus-per-node={gpus}")
    for flag, value in (("partition", opts.partition), ("account", opts.account), ("qos", opts.qos)):
        if value:
            sbatch.append(f"--{flag}={value}")
    if opts.time:
        if not SLURM_TIME.match(opts.time):
            raise UserError.one(f"--time {opts.time!r} is not a Slurm time limit ({SLURM_TIME_FORMS})")
        sbatch.append(f"--time={opts.time}")
    sbatch += ["--requeue", f"--signal=B:USR1@{opts.grace_s}", "--open-mode=append",
               f"--output={log_dir}/slurm-%A{'_%a' if elements else ''}.out"]
    if elements:
        sbatch.append(f"--array=0-{len(elements) - 1}")
    for item in opts.extra:
        if not item.startswith("--") or "\n" in item:
            raise UserError.one(f"sbatch argument {item!r}: pass options as --name=value", file="command line")
        sbatch.append(item)
    sbatch_lines = "\n".join(f"#SBATCH {q(s)}" for s in sbatch)

    argv = launch.printable_argv()  # credentials as "$VARIABLE": the job's shell expands them
    env_lines = "\n".join(f"export {k}={q(v)}" for k, v in launch.env.items()
                          if k not in ("NPROC_PER_NODE", "NNODES", "CUDA_VISIBLE_DEVICES"))
    array_case, array = _array_case(elements, element_launches, launch)
    cache = opts.cache_dir or os.path.join(os.path.dirname(output_dir), ".cache")
    tuner = str(recipe.args.get("tuner_type", "full"))
    script = _fill(TEMPLATES / "train.sbatch", {
        "RECIPE": recipe.source,
        "SBATCH": sbatch_lines,
        "OUTPUT_DIR": q(output_dir),
        "ARRAY_CASE": array_case,
        "NPROC": q(max(gpus, 1)),
        "CACHE": _dq(cache),
        "ENV": env_lines,
        "RESUME_FLAG": f"--{load_flag(tuner)}",
        "ARGV": _argv_lines(argv),
        "DOCTOR_RECIPE": yaml.safe_dump(_shareable(recipe), sort_keys=False, allow_unicode=True).rstrip(),
        "PYTHON": q(sys.executable),
        "DOCTOR_FAILED": ('echo "swift-ext: doctor found blocking problems (above); not starting the ranks" >&2; exit 1'
                          if opts.doctor_blocks else
                          'echo "swift-ext: doctor found problems (above); starting anyway (submitted with --force)" >&2'),
        "WATCH": _watch_prefix(recipe),
        "MAX_STALL_REQUEUES": str(recipe.watch.max_stall_requeues),
        **_eval_hooks(recipe, output_dir),
    })
    secrets = sorted(k for k in os.environ if is_secret(k))
    followups = []
    for verb in opts.then:
        if verb not in ("merge", "infer"):
            raise UserError.one(f"--then {verb!r}: expected merge or infer", file="command line")
        if opts.then.count(verb) > 1:
            raise UserError.one(f"--then {verb} given more than once", file="command line")
        f_sbatch = [f"--job-name={name}-{verb}", "--nodes=1", "--ntasks-per-node=1",
                    f"--output={log_dir}/slurm-%A{'_%a' if elements else ''}-{verb}.out"]
        if gpus > 0:
            f_sbatch.append(f"--gpus-per-node={gpus}")
        for flag, value in (("partition", opts.partition), ("account", opts.account), ("qos", opts.qos)):
            if value:
                f_sbatch.append(f"--{flag}={value}")
        if elements:
            f_sbatch.append(f"--array=0-{len(elements) - 1}")
        followups.append((verb, _fill(TEMPLATES / "followup.sbatch", {
            "VERB": verb,
            "SBATCH": "\n".join(f"#SBATCH {q(s)}" for s in f_sbatch),
            "OUTPUT_DIR": q(output_dir),
            "ARRAY_CASE": array_case,
            "PYTHON": q(sys.executable),
            "VERB_ARGS": "",
        })))
    evaluation = _eval_script(recipe, opts, name, log_dir, output_dir, cache, elements) if recipe.eval else ""
    return Rendered(script, followups, array, secrets, output_dir, evaluation)


EVAL_SCRIPT = "eval.sbatch"  # written next to train-*.sbatch in OUTPUT_DIR/slurm/; the training job sbatches it


def _eval_hooks(recipe: Recipe, output_dir: str) -> dict[str, str]:
    """The training script's side of evaluation (swift_ext/runs/evaljobs.py): a background submitter of one
    evaluation job per saved checkpoint while the step runs, one last pass once it ended well. Errors there
    are printed, never returned: evaluation cannot fail or requeue training."""
    if recipe.eval is None:
        return {"EVAL_START": "", "EVAL_END": ""}
    cmd = (f'{q(sys.executable)} -m swift_ext.runs.evaljobs "$OUTPUT_DIR" "$EVAL_SCRIPT" '
           f"--every {q(recipe.eval.every)}")
    return {
        "EVAL_START": "# Evaluation: one job per saved checkpoint (recipe `eval:`), never a dependency of this job.\n"
                      f'EVAL_SCRIPT={q(os.path.join(output_dir, "slurm", EVAL_SCRIPT))}; [ -f "$EVAL_SCRIPT" ] || EVAL_SCRIPT=""\n'
                      'EVAL_SUBMITTER=""\n'
                      f'[ -n "$EVAL_SCRIPT" ] && {{ {cmd} & EVAL_SUBMITTER=$!; }}',
        "EVAL_END": '[ -n "$EVAL_SUBMITTER" ] && { kill -TERM "$EVAL_SUBMITTER" 2>/dev/null; wait "$EVAL_SUBMITTER"; }\n'
                    f'[ -n "$EVAL_SCRIPT" ] && [ "$RC" -eq 0 ] && {{ {cmd} --once || true; }}',
    }


def _eval_script(recipe: Recipe, opts: SlurmOptions, name: str, log_dir: str, output_dir: str, cache: str,
                 elements: list) -> str:
    ev = recipe.eval
    sbatch = [f"--job-name={name}-eval", "--nodes=1", "--ntasks-per-node=1", "--no-requeue",
              f"--output={log_dir}/slurm-%j-eval.out"]
    if ev.launch.gpus > 0:
        sbatch.append(f"--gpus-per-node={ev.launch.gpus}")
    if ev.launch.time:  # its form is checked with the recipe (spec/recipe.py EvalLaunch)
        sbatch.append(f"--time={ev.launch.time}")
    for flag, value in (("partition", ev.launch.partition or opts.partition), ("account", opts.account),
                        ("qos", opts.qos)):
        if value:
            sbatch.append(f"--{flag}={value}")
    return _fill(TEMPLATES / EVAL_SCRIPT, {
        "RECIPE": recipe.source, "SBATCH": "\n".join(f"#SBATCH {q(s)}" for s in sbatch),
        # an array element's output dir is the training job's $OUTPUT_DIR, inherited through sbatch's --export=ALL
        "OUTPUT_DIR": '"${OUTPUT_DIR:-' + _dq(output_dir) + '}"' if elements else q(output_dir),
        "CACHE": _dq(cache), "PYTHON": q(sys.executable)})


def _watch_prefix(recipe: Recipe) -> str:
    """The hang sidecar that runs the training command on each node (swift_ext/runs/watch.py), unless turned off."""
    w = recipe.watch
    if w.stall_minutes == 0:
        return ""
    opts = ["--output-dir", '"$OUTPUT_DIR"', "--startup-minutes", q(w.startup_minutes),
            "--marker", '"stalled-$SLURM_JOB_ID-${SLURM_RESTART_COUNT:-0}"']
    if w.stall_minutes is not None:
        opts += ["--stall-minutes", q(w.stall_minutes)]
    return f"{q(sys.executable)} -m swift_ext.runs.watch supervise {' '.join(opts)} -- \\\n  "


def _argv_lines(argv: list[str]) -> str:
    """`megatron sft` then one flag (with its values) per continued line, as in ms-swift's examples."""
    from swift_ext.planner.launch import shell_lines

    lines = shell_lines(argv)
    return " \\\n  ".join(lines[:1] + ["    " + line for line in lines[1:]])


def _dq(path: str) -> str:
    """A path for use inside double quotes (the cache defaults expand ${VAR:-...})."""
    return path.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")


def _array_case(elements, element_launches, launch) -> tuple[str, list[dict]]:
    if not elements:
        return "EXTRA=()", []
    lines = ["EXTRA=()", 'case "${SLURM_ARRAY_TASK_ID:-}" in']
    array = []
    base = launch.argv
    for i, (overrides, el) in enumerate(zip(elements, element_launches)):
        extra = _argv_diff(base, el.argv)
        out = os.path.abspath(el.output_dir or "")
        lines.append(f"  {i}) EXTRA=({' '.join(q(a) for a in extra)}); OUTPUT_DIR={q(out)} ;;")
        array.append({"index": i, "overrides": overrides, "output_dir": out})
    lines.append('  *) echo "swift-ext: unexpected array task ${SLURM_ARRAY_TASK_ID:-}" >&2; exit 2 ;;')
    lines.append("esac")
    return "\n".join(lines), array


def _argv_diff(base: list[str], other: list[str]) -> list[str]:
    """Flags of `other` whose values differ from `base` (argparse keeps the last occurrence)."""
    from swift_ext.msswift.conventions import flag_groups

    def groups(argv):
        return {g[0]: g[1:] for g in flag_groups(argv[2:])}

    a, b = groups(base), groups(other)
    diff = []
    for flag, values in b.items():
        if a.get(flag) != values:
            diff += [flag, *values]
    return diff


def _fill(template, values: dict[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", str(value))
    leftover = re.findall(r"@@[A-Z_]+@@", text)
    assert not leftover, leftover
    return text


# --------------------------------------------------------------------------------------------------
# Side effects: writing and submitting


def sbatch(script_path: Path, dependency: str | None = None, exports: list[str] | None = None) -> str:
    cmd = ["sbatch", "--parsable"]
    if exports:
        # ALL keeps PATH and the rest of the submitting shell; the names document what is forwarded.
        cmd.append("--export=ALL," + ",".join(exports))
    if dependency:
        cmd.append(f"--dependency={dependency}")
    cmd.append(str(script_path))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UserError.one("sbatch not found: run this on a Slurm login node (or `make slurm-up` for the local "
                            "test cluster)") from None
    if out.returncode != 0:
        raise UserError.one(f"sbatch refused the job: {out.stderr.strip() or out.stdout.strip()}",
                            file=str(script_path))
    return out.stdout.strip().split(";")[0]


def write_script(directory: Path, stem: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        path = directory / f"{stem}-{stamp}{'' if n == 0 else f'-{n}'}.sbatch"
        try:
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(text)
            path.chmod(0o755)
            return path
        except FileExistsError:
            continue
    raise UserError.one(f"cannot create a new script in {directory}")


def scontrol_job(job_id: str) -> dict[str, str]:
    """`scontrol show job -o` as a dict (empty when slurmctld no longer knows the job)."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    fields: dict[str, str] = {}
    for line in out.stdout.splitlines():
        for token in line.split():
            if "=" in token:
                k, _, v = token.partition("=")
                fields.setdefault(k, v)
    return fields


def latest_complete_checkpoint(output_dir: Path) -> Path | None:
    """The checkpoint the next (re)start resumes from (the rule: swift_ext/runs/rundir.py)."""
    return RunDir(output_dir).latest_checkpoint("megatron")


def recorded_jobs(output_dir: Path) -> tuple[list[dict], list[str]]:
    """The Slurm jobs the run's manifests record, and the names of manifests that could not be read."""
    jobs, damaged = [], []
    for m in RunDir(output_dir).manifests():
        try:
            data = read_json_object(m)
        except UserError:
            damaged.append(m.name)
            continue
        slurm = data.get("slurm") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(slurm or {}, dict):
            damaged.append(m.name)
            continue
        listed = (slurm or {}).get("jobs") or []
        jobs += [j for j in listed if isinstance(j, dict) and {"job_id", "verb"} <= j.keys()] \
            if isinstance(listed, list) else []
    return jobs, damaged


def submit_recipe(recipe_path: Path, overrides: list[str], opts: SlurmOptions, *, dry_run: bool, force: bool,
                  resume: bool, print_problems, say, write) -> int:
    """`swift-ext submit`: plan the recipe (and every sweep element), refuse what fails pre-flight, render the
    batch script(s), then either print them (dry run) or sbatch the chain and write the run's manifest.
    Presentation is the caller's: `print_problems(plan)`, `say(line)` (stderr), `write(text)` (stdout)."""
    from swift_ext.planner import oracle
    from swift_ext.planner.plan import make_plan
    from swift_ext.runs import run as runner
    from swift_ext.spec.recipe import load_recipe

    overrides = list(overrides)
    if opts.nodes:
        overrides.append(f"launch.nodes={opts.nodes}")
    rec = load_recipe(recipe_path, overrides)
    rec.launch.world_size  # noqa: B018 -- sizes left to the scheduler: a one-line UserError asking for them
    out_arg = str(rec.args.get("output_dir") or "megatron_output")
    if not Path(out_arg).is_absolute():  # the ranks may start elsewhere: pin the output dir
        overrides.append(f"args.output_dir={Path(out_arg).resolve()}")
        rec = load_recipe(recipe_path, overrides)
    elements = sweep_elements(opts.sweep)
    main_plan = make_plan(rec, oracle=oracle.for_launch())
    element_plans = [make_plan(load_recipe(recipe_path, overrides + [f"{k}={v}" for k, v in el.items()] + [
        f"args.output_dir={sweep_dir(rec, i, el)}"]), oracle=oracle.for_launch()) for i, el in enumerate(elements)]
    failed = False
    for p in [main_plan, *element_plans]:
        print_problems(p)
        failed |= not p.ok
    if failed and not force:
        say("refusing to submit a recipe that fails pre-flight (--force overrides)")
        return 2
    launch = main_plan.launch
    rendered = render(rec, launch, opts, elements, [p.launch for p in element_plans])
    if resume:
        from swift_ext.runs.resume import argv_to_args, refuse_resume

        ckpt, issues = refuse_resume(Path(launch.output_dir or out_arg), argv_to_args(launch.argv))
        for issue in issues:
            say(f"{issue.severity}: --resume: {issue.message}")
        if any(i.severity == "error" for i in issues):
            say("refusing to resume: ms-swift would start over or fail (see above)")
            return 2
        if ckpt:
            say(f"resume: the job continues from {ckpt}")
    if dry_run:
        write(rendered.script)
        if rendered.evaluation:
            write("\n# ---- evaluation job: submitted by the training job for each saved checkpoint ----\n")
            write(rendered.evaluation)
        for verb, text in rendered.followups:
            write(f"\n# ---- follow-up job: {verb} (submitted with --dependency=afterok:<job>) ----\n")
            write(text)
        return 0
    out = runner.prepare_output_dir(rec, launch, resume=resume)
    scripts = out / "slurm"
    if rendered.evaluation:  # before the training job can start and look for it
        scripts.mkdir(parents=True, exist_ok=True)
        (scripts / EVAL_SCRIPT).write_text(rendered.evaluation, encoding="utf-8")
    main_script = write_script(scripts, "train", rendered.script)
    job_id = sbatch(main_script, exports=rendered.secrets)
    chain = [{"verb": "train", "job_id": job_id, "script": str(main_script)}]
    previous = job_id
    for verb, text in rendered.followups:
        path = write_script(scripts, verb, text)
        follow = sbatch(path, dependency=f"afterok:{previous}", exports=rendered.secrets)
        chain.append({"verb": verb, "job_id": follow, "script": str(path)})
        previous = follow
    manifest = runner.manifest(rec, launch, {"slurm": {"jobs": chain, "array": rendered.array,
                                                         "forwarded_env": rendered.secrets,
                                                         "sbatch_extra": list(opts.extra)}})
    path = runner.write_manifest(out, manifest)
    for item in chain:
        say(f"submitted {item['verb']}: job {item['job_id']} ({item['script']})")
    say(f"manifest: {path}")
    say(f"follow it: swift-ext watch {out}   |   swift-ext status {out}   |   squeue -j "
        f"{','.join(c['job_id'] for c in chain)}   |   tail -f {out}/slurm-{job_id}{'_*' if elements else ''}.out")
    return 0


def sweep_dir(rec: Recipe, index: int, element: dict) -> str:
    """Each sweep element's own output folder under the recipe's: sweep-<i>-<key=value...>."""
    base = str(rec.args.get("output_dir") or "megatron_output")
    label = "-".join(f"{k.split('.', 1)[1]}={v}" for k, v in element.items())
    return os.path.join(base, f"sweep-{index}-{re.sub(r'[^A-Za-z0-9_.=-]', '_', label)}")


def _shareable(recipe: Recipe) -> dict:
    """The recipe as the batch script embeds it: credentials as $VARIABLE references."""
    data = recipe.to_yaml_dict()
    data["args"] = masked_args(data.get("args", {}))
    return data
