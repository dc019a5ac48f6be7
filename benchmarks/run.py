"""Benchmark dexterity_nb against Stable-Baselines3: ``python -m benchmarks.run [--quick] [--out DIR]``.

Measures the targets of issues 5 and 14 and prints one table (metric, ours, SB3, ratio ours/SB3,
raw limit, target, met?), a scaling table, and writes ``results.json`` (every raw figure)
and ``return_vs_time.png`` into ``--out``.

Every measurement runs in its own subprocess (`benchmarks.worker`), one framework per
process, with the same thread limits for both (`benchmarks.limits`, default 1 thread).
Solve runs alternate seeds and frameworks (seed 0: SB3, ours, preset; seed 1: ...), so
machine noise falls on both alike; compare the ratios, not the absolute seconds.

``--quick`` shrinks every budget so the whole machinery runs in a couple of minutes
(for CI); its timings mean nothing and its "met?" column says so.
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import SOLVE_THRESHOLD, SOLVE_WINDOW, TUTORIAL, ZOO, median  # noqa: E402
from benchmarks.construction import TARGETS as BUILD_TARGETS, count_retracing_warnings, retracing_functions  # noqa: E402
from benchmarks.limits import thread_environment  # noqa: E402
from benchmarks.panel import BEFORE_COMMAND, BEFORE_MEASURED, BEFORE_SECONDS  # noqa: E402
from benchmarks.panel import TARGET_RATIO as PANEL_TARGET  # noqa: E402
from benchmarks.start_to_solved import TARGET_RATIO as START_TARGET  # noqa: E402
from benchmarks.worker import RESULT_MARKER  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
GIB = 1024 ** 3
INSTALL_HINT = ("Stable-Baselines3 side skipped: the `bench` extra is missing. Install it with\n"
                "    pip install -e '.[bench]'\n"
                "(it pins torch==2.13.0: an unpinned torch may pull a multi-GB CUDA build).")
CORE_HINT = ("dexterity_nb side skipped: `dexterity_nb.agent.ppo_agent` cannot be imported. "
             "Install the package with `pip install -e .` from the repository root.")

SCALING_FULL = (
    [dict(workers=w) for w in (1, 4, 12, 32)]
    + [dict(horizon=h) for h in (128, 2048)]
    + [dict(width=u) for u in (32, 256)]
)
SCALING_QUICK = [dict(workers=1, horizon=32, epochs=1, batch_size=32), dict(workers=2, horizon=32, epochs=1, batch_size=32),
                 dict(workers=1, horizon=32, epochs=1, batch_size=32, width=16)]


def bench_extra_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "stable_baselines3"))


def core_available() -> bool:
    try:
        return importlib.util.find_spec("dexterity_nb.agent.ppo_agent") is not None
    except ModuleNotFoundError:
        return False


def run_task(side: str, task: str, kwargs: dict, threads: int, log_dir: Path, label: str,
             timeout: float) -> dict:
    """Run one measurement of ``benchmarks.worker`` in a fresh subprocess (see :func:`run_module`)."""
    return run_module(["benchmarks.worker", side, task, json.dumps(kwargs)], f"{side}.{task}", threads, log_dir,
                      label, timeout)


def run_module(arguments: list, name: str, threads: int, log_dir: Path, label: str, timeout: float) -> dict:
    """``python -m *arguments`` in a fresh subprocess with the thread limits; its output goes to ``log_dir/label.log``.

    Returns the dict the module printed after ``RESULT_MARKER`` plus ``process_seconds`` and
    ``retracing_warnings`` (TensorFlow's "triggered tf.function retracing" warnings on its stderr) with
    ``retracing_functions`` (the functions they name), or ``{"error": ...}`` naming ``name`` and the log to read.
    """
    environment = dict(os.environ)
    environment.update(thread_environment(threads))
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", *arguments]
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                                   text=True, timeout=timeout)
        output, errors, code = completed.stdout, completed.stderr, completed.returncode
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or ""
        errors = (expired.stderr or "") + f"\ntimed out after {timeout:.0f} s"
        output = output.decode() if isinstance(output, bytes) else output
        errors = errors.decode() if isinstance(errors, bytes) else errors
        code = None
    wall = time.perf_counter() - start
    (log_dir / f"{label}.log").write_text(
        f"$ {' '.join(command)}\n--- exit {code}, {wall:.1f} s\n--- stdout\n{output}\n--- stderr\n{errors}")
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER):])
            result["process_seconds"] = wall
            result["retracing_warnings"] = count_retracing_warnings(errors)
            result["retracing_functions"] = retracing_functions(errors)
            return result
    tail = "\n".join(errors.strip().splitlines()[-5:])
    return {"error": f"{name} failed (exit {code}); see {log_dir / (label + '.log')}\n{tail}"}


def plan(quick: bool, seeds: int) -> dict:
    """Budgets and sizes of every measurement."""
    if quick:
        return dict(seeds=list(range(seeds or 1)), solve_budget=512,
                    cycle=dict(workers=2, horizon=64, epochs=1, batch_size=64),
                    our_cycles=3, sb3_iterations=2, raw_steps=500, scaling=SCALING_QUICK, cycle_rounds=1,
                    scaling_cycles=2, timeout=600, builds=3, discarded=3,
                    panel=dict(seeds=1, cycles=2, repeats=1), start_seeds=list(range(seeds or 1)))
    return dict(seeds=list(range(seeds or 5)), solve_budget=ZOO["n_timesteps"], cycle=dict(TUTORIAL),
                our_cycles=10, sb3_iterations=6, raw_steps=20_000, scaling=SCALING_FULL, cycle_rounds=2,
                scaling_cycles=4, timeout=1800, builds=10, discarded=30,
                panel=dict(seeds=2, cycles=30, repeats=3), start_seeds=list(range(seeds or 5)))


def measure(settings: dict, threads: int, out: Path, run_sb3: bool, run_ours: bool, panel_before=None) -> dict:
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = {"solve": {"sb3": [], "ours": [], "preset": []}}

    def task(side, name, kwargs, label, module=None):
        print(f"  {label} ...", end="", flush=True)
        if module is None:
            result = run_task(side, name, kwargs, threads, log_dir, label, settings["timeout"])
        else:  # a module of its own with a --child mode (construction, panel)
            result = run_module(module, name, threads, log_dir, label, settings["timeout"])
        if "error" in result:
            print(" FAILED")
            print("    " + result["error"].replace("\n", "\n    "))
        elif "skipped" in result:
            print(f" skipped: {result['skipped']}")
        else:
            print(f" {result['process_seconds']:.1f} s")
        return result

    print("1. time to solve CartPole-v1 (seeds alternate between frameworks)")
    for seed in settings["seeds"]:
        kwargs = dict(seed=seed, budget_steps=settings["solve_budget"])
        if run_sb3:
            results["solve"]["sb3"].append(dict(seed=seed, **task("sb3", "solve", kwargs, f"solve-sb3-seed{seed}")))
        if run_ours:
            results["solve"]["ours"].append(dict(seed=seed, **task("ours", "solve", kwargs, f"solve-ours-seed{seed}")))
            results["solve"]["preset"].append(
                dict(seed=seed, **task("ours", "solve_preset", kwargs, f"solve-preset-seed{seed}")))

    print("2-4. tutorial cycle, gathering rate, peak memory (rounds alternate SB3, ours, ours epsilon)")
    cycle = settings["cycle"]
    rounds = {"cycle_sb3": [], "cycle_ours": [], "cycle_ours_epsilon": []}
    for index in range(settings["cycle_rounds"]):
        if run_sb3:
            rounds["cycle_sb3"].append(task("sb3", "cycle", dict(iterations=settings["sb3_iterations"], seed=index,
                                                                  **cycle), f"cycle-sb3-round{index}"))
        if run_ours:
            rounds["cycle_ours"].append(task("ours", "cycles", dict(
                cycles=settings["our_cycles"], raw_steps_per_worker=settings["raw_steps"], seed=index, **cycle),
                f"cycle-ours-round{index}"))
            rounds["cycle_ours_epsilon"].append(task("ours", "cycles", dict(
                cycles=max(2, settings["our_cycles"] // 2 + 1), gatherer="epsilon", raw_steps_per_worker=0,
                seed=index, **cycle), f"cycle-ours-epsilon-round{index}"))
    for key, runs in rounds.items():
        if runs:
            results[key] = pool_cycle_runs(runs)
    if run_ours:
        print("5. scaling")
        results["scaling"] = task("ours", "scaling", dict(configs=settings["scaling"],
                                  cycles=settings["scaling_cycles"]), "scaling-ours")
        print("6. building agents (a fresh process: first build, later builds, memory per discarded agent)")
        results["construction"] = task("ours", "benchmarks.construction", None, "construction", module=[
            "benchmarks.construction", "--child", "--builds", str(settings["builds"]),
            "--discarded", str(settings["discarded"])])
        print("7. comparison panel (a fresh process per repeat"
              + (f"; alternating with the code in {panel_before})" if panel_before else ")"))
        results["panel"] = measure_panel(settings["panel"], panel_before, task)
    print("8. process start to solved: our CLI against SB3 (seeds alternate)")
    from benchmarks import start_to_solved

    results["start_to_solved"] = start_to_solved.measure(
        settings["start_seeds"], settings["quick"], threads, log_dir, run_sb3=run_sb3, run_ours=run_ours,
        timeout=settings["timeout"])
    return results


def measure_panel(panel: dict, panel_before, task) -> dict:
    """Repeats of ``benchmarks.panel --child``; with ``panel_before``, each repeat measures that code first."""
    arguments = ["benchmarks.panel", "--child", "--seeds", str(panel["seeds"]), "--cycles", str(panel["cycles"])]
    runs = {"current": [], "before": []}
    for repeat in range(panel["repeats"]):
        if panel_before:
            runs["before"].append(task("ours", "benchmarks.panel (before)", None, f"panel-before-repeat{repeat}",
                                       module=arguments + ["--package-root", str(panel_before)]))
        runs["current"].append(task("ours", "benchmarks.panel", None, f"panel-repeat{repeat}", module=arguments))
    summary = dict(panel, runs=runs)
    for side, side_runs in runs.items():
        good = [run for run in side_runs if "error" not in run]
        if good:
            summary[side] = {"median_seconds": median([run["seconds"] for run in good]),
                             "median_cpu_seconds": median([run["cpu_seconds"] for run in good]),
                             "package": good[0]["package"], "repeats": len(good)}
        elif side_runs:
            summary[side] = side_runs[0]  # the error, for the table's note
    return summary


def pool_cycle_runs(runs: list) -> dict:
    """Merge the rounds of one cycle measurement: medians over every round's cycles after its first.

    Keeps each round in ``rounds``; peak RSS is the largest of the rounds (each a separate process).
    """
    good = [run for run in runs if "error" not in run]
    if not good:
        return runs[0]
    import numpy as np

    def pooled(key):
        values = [value for run in good for value in (run.get(key) or [None])[1:] if value is not None]
        return float(np.median(values)) if values else None

    merged = dict(good[0])
    merged.update({
        "rounds": runs,
        "median_cycle_seconds": pooled("cycle_seconds"),
        "median_cycle_cpu_seconds": pooled("cycle_cpu_seconds"),
        "median_gather_seconds": pooled("gather_seconds"),
        "median_optimize_seconds": pooled("optimize_seconds"),
        "peak_rss_bytes": max(run["peak_rss_bytes"] for run in good),
    })
    rates = [run["gather_steps_per_second"] for run in good if run.get("gather_steps_per_second")]
    raws = [run["raw_env_steps_per_second"] for run in good if run.get("raw_env_steps_per_second")]
    gathers = [g for run in good for g in run["gather_seconds"][1:] if g > 0]
    if rates:
        merged["gather_steps_per_second"] = float(np.median([merged["frames_per_cycle"] / g for g in gathers]))
    if raws:
        merged["raw_env_steps_per_second"] = float(np.median(raws))
    for key in ("cycle_seconds", "cycle_cpu_seconds", "gather_seconds", "optimize_seconds"):
        merged[key] = [value for run in good for value in (run.get(key) or [])]
    return merged


# ----------------------------------------------------------------------------- reporting

def _solve_summary(runs: list) -> dict | None:
    """Medians over seeds; an unsolved run counts as infinitely slow."""
    runs = [r for r in runs if "error" not in r and "skipped" not in r]
    if not runs:
        return None
    seconds = [r["seconds_to_solve"] if r["solved"] else math.inf for r in runs]
    steps = [r["steps_to_solve"] if r["solved"] else math.inf for r in runs]
    cpu = [r.get("cpu_seconds_to_solve") or math.inf if r["solved"] else math.inf for r in runs]
    first = [r["first_call_seconds"] for r in runs if r.get("first_call_seconds") is not None]
    return {"median_seconds": median(seconds), "median_steps": median(steps), "median_cpu_seconds": median(cpu),
            "solved": sum(r["solved"] for r in runs), "runs": len(runs),
            "seconds": seconds, "steps": steps, "cpu_seconds": cpu,
            "median_first_call_seconds": median(first) if first else None}


def _get(result, key):
    if not result or "error" in result or "skipped" in result:
        return None
    return result.get(key)


def _ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0 or math.isinf(theirs):
        return None
    return ours / theirs


def summarise(results: dict, quick: bool) -> list:
    """Rows of the main table as dicts (numbers, not strings)."""
    rows = []
    sb3 = _solve_summary(results["solve"]["sb3"])
    ours = _solve_summary(results["solve"]["ours"])
    preset = _solve_summary(results["solve"]["preset"])

    def solve_note(summary):
        return "not measured" if summary is None else f"{summary['solved']}/{summary['runs']} solved"

    def cpu_note(summary):
        if summary is None or sb3 is None:
            return ""
        ratio = _ratio(summary["median_cpu_seconds"], sb3["median_cpu_seconds"])
        return "" if ratio is None else f"; CPU-time ratio {ratio:.3f}"

    def first_call_note(summary):
        # The update is traced on a background thread from the agent's construction on (outside the clock);
        # the first drill call waits for what is left of it (inside the clock).
        first = summary and summary.get("median_first_call_seconds")
        return "" if first is None else f"; ours' first drill call (waits for the tracing begun at construction): {first:.2f} s"

    time_ratio = _ratio(ours and ours["median_seconds"], sb3 and sb3["median_seconds"])
    issue5 = "" if time_ratio is None else f"; issue 5's target ratio <= 0.5: {'met' if time_ratio <= 0.5 else 'NOT met'}"
    rows.append(dict(metric="1. solve CartPole, Zoo settings: median s", ours=ours and ours["median_seconds"],
                     sb3=sb3 and sb3["median_seconds"], ratio=time_ratio, limit=None, target="ratio <= 0.3",
                     met=None if time_ratio is None else time_ratio <= 0.3,
                     note=f"ours {solve_note(ours)}, SB3 {solve_note(sb3)}{cpu_note(ours)}{issue5}{first_call_note(ours)}"))
    rows.append(dict(metric="   ... env steps to solve (median)", ours=ours and ours["median_steps"],
                     sb3=sb3 and sb3["median_steps"],
                     ratio=_ratio(ours and ours["median_steps"], sb3 and sb3["median_steps"]),
                     limit=None, target="report", met=None))
    preset_ratio = _ratio(preset and preset["median_seconds"], sb3 and sb3["median_seconds"])
    preset_met = None
    if preset_ratio is not None and ours is not None:
        preset_met = preset_ratio < 1 and preset["median_seconds"] < ours["median_seconds"]
    skipped = [r.get("skipped") for r in results["solve"]["preset"] if "skipped" in r]
    rows.append(dict(metric="1b. solve CartPole, our CLI preset: median s",
                     ours=preset and preset["median_seconds"], sb3=sb3 and sb3["median_seconds"],
                     ratio=preset_ratio, limit=None, target="beats SB3 and ours(Zoo)", met=preset_met,
                     note=skipped[0] if skipped else f"preset {solve_note(preset)}{cpu_note(preset)}"))
    rows.append(dict(metric="    ... env steps to solve (median)", ours=preset and preset["median_steps"],
                     sb3=sb3 and sb3["median_steps"],
                     ratio=_ratio(preset and preset["median_steps"], sb3 and sb3["median_steps"]),
                     limit=None, target="report", met=None))

    cycle_ours, cycle_sb3 = results.get("cycle_ours"), results.get("cycle_sb3")
    rate, raw = _get(cycle_ours, "gather_steps_per_second"), _get(cycle_ours, "raw_env_steps_per_second")
    fraction = None if rate is None or not raw else rate / raw
    sb3_rate = _get(cycle_sb3, "median_gather_seconds")
    sb3_rate = cycle_sb3["frames_per_cycle"] / sb3_rate if sb3_rate else None
    rows.append(dict(metric="2. gathering env steps/s (tutorial setup)", ours=rate, sb3=sb3_rate,
                     ratio=_ratio(rate, sb3_rate), limit=raw, target=">= 25% of raw (issue 5)",
                     met=None if fraction is None else fraction >= 0.25,
                     note=None if fraction is None else f"ours = {100 * fraction:.1f}% of raw"))
    rows.append(dict(metric="2b. gathering as a share of raw env stepping", ours=fraction,
                     sb3=None if sb3_rate is None or not raw else sb3_rate / raw, ratio=None, limit=1.0,
                     target=">= 0.5 (issue 14)", met=None if fraction is None else fraction >= 0.5,
                     note=None if fraction is None else "raw: 12 plain CartPole-v1 envs, random actions, in the "
                     "process that gathered (SB3's share uses the raw rate of ours, measured in the same run)"))
    ours_cycle, sb3_cycle = _get(cycle_ours, "median_cycle_seconds"), _get(cycle_sb3, "median_cycle_seconds")
    ratio = _ratio(ours_cycle, sb3_cycle)
    rows.append(dict(metric="3. tutorial cycle, default gatherer: median s", ours=ours_cycle, sb3=sb3_cycle,
                     ratio=ratio, limit=None, target="ratio <= 0.5", met=None if ratio is None else ratio <= 0.5,
                     note=_split_note(cycle_ours, cycle_sb3)))
    epsilon = _get(results.get("cycle_ours_epsilon"), "median_cycle_seconds")
    ratio = _ratio(epsilon, sb3_cycle)
    rows.append(dict(metric="3b. tutorial cycle, EpsilonGreedyGatherer: median s", ours=epsilon, sb3=sb3_cycle,
                     ratio=ratio, limit=None, target="ratio <= 0.8", met=None if ratio is None else ratio <= 0.8,
                     note=_split_note(results.get("cycle_ours_epsilon"), cycle_sb3)))
    rss, sb3_rss = _get(cycle_ours, "peak_rss_bytes"), _get(cycle_sb3, "peak_rss_bytes")
    rows.append(dict(metric="4. peak RSS drilling the tutorial setup: GiB",
                     ours=rss and rss / GIB, sb3=sb3_rss and sb3_rss / GIB, ratio=_ratio(rss, sb3_rss),
                     limit=1.0, target="<= 1.0 GiB", met=None if rss is None else rss <= GIB))
    rows += _issue14_rows(results)
    if quick:
        for row in rows:
            row["met"] = "quick" if row["met"] is not None else None
    return rows


def _at_most(value, limit):
    return None if value is None else value <= limit


def _issue14_rows(results: dict) -> list:
    """Rows 6-8: building agents, the comparison panel, process start to solved."""
    rows = []
    built = results.get("construction")
    first, later = _get(built, "first_build_seconds"), _get(built, "later_build_seconds")
    per_agent, traces = _get(built, "mib_per_discarded_agent"), _get(built, "traces")
    warnings = _get(built, "retracing_warnings")
    failed = built.get("error") if built else None
    rows.append(dict(metric="6a. build the first PPOAgent in a process: s", ours=first, sb3=None, ratio=None,
                     limit=None, target=f"<= {BUILD_TARGETS['first_build_seconds']:g} s",
                     met=_at_most(first, BUILD_TARGETS["first_build_seconds"]), note=failed))
    builds = len(_get(built, "later_builds") or []) or "n/a"
    rows.append(dict(metric=f"6b. build a later PPOAgent (median of {builds}): s", ours=later, sb3=None, ratio=None,
                     limit=None, target=f"<= {BUILD_TARGETS['later_build_seconds']:g} s",
                     met=_at_most(later, BUILD_TARGETS["later_build_seconds"])))
    before_after = _get(built, "resident_mib_before_after")
    rows.append(dict(metric="6c. RSS growth per built-and-discarded agent: MiB", ours=per_agent, sb3=None,
                     ratio=None, limit=None, target=f"<= {BUILD_TARGETS['mib_per_discarded_agent']:g} MiB",
                     met=_at_most(per_agent, BUILD_TARGETS["mib_per_discarded_agent"]),
                     note=None if not before_after else
                     f"resident {before_after[0]:.0f} -> {before_after[1]:.0f} MiB over the discarded agents"))
    removed = _get(built, "retracing_filters_removed")
    rows.append(dict(metric="6d. 'tf.function retracing' warnings, all builds", ours=warnings, sb3=None, ratio=None,
                     limit=None, target="0 (and 1 trace)",
                     met=None if warnings is None or traces is None else warnings == 0 and traces == 1,
                     note=None if traces is None else f"the compiled update was traced {traces} time(s); "
                     f"{removed} package filter(s) of its own retracing warnings removed first"
                     + "".join(f"; warned about {name}" for name in _get(built, "retracing_functions") or [])))

    panel = results.get("panel") or {}
    current, before = panel.get("current"), panel.get("before")
    seconds = _get(current, "median_seconds")
    if _get(before, "median_seconds") is not None:
        before_seconds, where = before["median_seconds"], f"measured in this run ({before['package']})"
    else:
        before_seconds, where = BEFORE_SECONDS, f"recorded {BEFORE_MEASURED}, not this run; `{BEFORE_COMMAND}`"
    limit = PANEL_TARGET * before_seconds
    note = (current or {}).get("error") or (
        None if seconds is None else f"{panel['repeats']} repeat(s); CPU {current['median_cpu_seconds']:.2f} s; "
        f"{seconds / before_seconds:.2f} x before (0749cae: {before_seconds:.2f} s, {where})")
    rows.append(dict(metric=f"7. comparison panel, 3 variants x {panel.get('seeds', 'n/a')} seeds x "
                     f"{panel.get('cycles', 'n/a')} cycles: s", ours=seconds, sb3=None, ratio=None, limit=limit,
                     target=f"<= {PANEL_TARGET:g} x before", met=_at_most(seconds, limit), note=note))

    start = results.get("start_to_solved") or {}
    ours, sb3 = start.get("ours"), start.get("sb3")
    ours_seconds, sb3_seconds = ours and ours["median_seconds"], sb3 and sb3["median_seconds"]
    ratio = _ratio(ours_seconds, sb3_seconds)
    parts = [f"{name} {summary['solved']}/{summary['runs']} printed the solve line"
             for name, summary in (("ours", ours), ("SB3", sb3)) if summary]
    cpu_ratio = _ratio(ours and ours["median_cpu_seconds"], sb3 and sb3["median_cpu_seconds"])
    if cpu_ratio is not None:
        parts.append(f"CPU-time ratio {cpu_ratio:.3f}")
    rows.append(dict(metric="8. CLI drill CartPole, process start to Solved: median s", ours=ours_seconds,
                     sb3=sb3_seconds, ratio=ratio, limit=None, target=f"ratio <= {START_TARGET:g}",
                     met=_at_most(ratio, START_TARGET), note="; ".join(parts) or None))
    return rows


def _split_note(ours, sb3):
    parts = []
    ours_cpu, sb3_cpu = _get(ours, "median_cycle_cpu_seconds"), _get(sb3, "median_cycle_cpu_seconds")
    if ours_cpu is not None and sb3_cpu:
        parts.append(f"CPU-time ratio {ours_cpu / sb3_cpu:.3f}")
    for name, result in (("ours", ours), ("SB3", sb3)):
        gather, optimize = _get(result, "median_gather_seconds"), _get(result, "median_optimize_seconds")
        if gather is not None:
            parts.append(f"{name} gather {gather:.3f} + optimise {optimize:.3f}")
    return "; ".join(parts) or None


def _format(value, digits=3):
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isinf(value):
        return "unsolved"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def format_table(header: list, rows: list) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main_table(rows: list) -> str:
    header = ["metric", "ours", "SB3", "ratio ours/SB3", "raw limit", "target", "met?"]
    cells = []
    for row in rows:
        met = {True: "yes", False: "NO", None: "-"}.get(row["met"], row["met"])
        cells.append([row["metric"], _format(row["ours"]), _format(row["sb3"]), _format(row["ratio"]),
                      _format(row["limit"]), row["target"], met])
    notes = [f"  {row['metric'].strip()}: {row['note']}" for row in rows if row.get("note")]
    return format_table(header, cells) + ("\nnotes:\n" + "\n".join(notes) if notes else "")


def scaling_model(rows: list) -> dict | None:
    """Least-squares fit, for the default width, of

        gather_seconds   ≈ horizon · (a + b · workers)      (per-step Python cost + per-env cost)
        optimize_seconds ≈ c · updates                      (cost of one minibatch update)
    """
    import numpy as np

    base = [r for r in rows if r["config"].get("width") is None]
    if len(base) < 2:
        return None
    horizon = np.array([r["config"]["horizon"] for r in base], dtype=float)
    workers = np.array([r["config"]["workers"] for r in base], dtype=float)
    gather = np.array([r["median_gather_seconds"] for r in base])
    design = np.stack([horizon, horizon * workers], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, gather, rcond=None)
    updates = np.array([r["updates_per_cycle"] or 0 for r in base], dtype=float)
    optimize = np.array([r["median_optimize_seconds"] for r in base])
    c = float(updates @ optimize / (updates @ updates)) if updates.any() else float("nan")
    return {"seconds_per_step": float(a), "seconds_per_env_step": float(b), "seconds_per_update": c}


def scaling_table(result: dict) -> str:
    header = ["workers", "horizon", "width", "frames/cycle", "updates/cycle", "s/cycle", "CPU s/cycle", "gather s",
              "optimise s", "gather us/frame", "optimise ms/update"]
    cells = []
    for row in result["rows"]:
        config = row["config"]
        updates = row["updates_per_cycle"]
        cells.append([config["workers"], config["horizon"], config.get("width") or "64 (default)",
                      row["frames_per_cycle"], updates, f"{row['median_cycle_seconds']:.3f}",
                      _format(row.get("median_cycle_cpu_seconds")),
                      f"{row['median_gather_seconds']:.3f}", f"{row['median_optimize_seconds']:.3f}",
                      f"{1e6 * row['median_gather_seconds'] / row['frames_per_cycle']:.1f}",
                      f"{1e3 * row['median_optimize_seconds'] / updates:.2f}" if updates else "n/a"])
    text = format_table(header, cells)
    model = scaling_model(result["rows"])
    if model:
        text += ("\npredict (default width): seconds per cycle ≈ horizon × ({:.1f} µs + {:.2f} µs × workers)"
                 " + updates × {:.2f} ms,  updates = epochs × ceil(workers × horizon / batch_size)").format(
            1e6 * model["seconds_per_step"], 1e6 * model["seconds_per_env_step"],
            1e3 * model["seconds_per_update"])
        result["model"] = model
    return text


def plot(results: dict, path: Path) -> bool:
    """Rolling mean of training returns against wall time and env steps, every solve run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no plot written")
        return False
    figure, (by_time, by_steps) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"sb3": ("SB3 (Zoo)", "tab:orange"), "ours": ("ours (Zoo)", "tab:blue"),
              "preset": ("ours (CLI preset)", "tab:green")}
    for side, (label, colour) in styles.items():
        for index, run in enumerate(r for r in results["solve"][side] if r.get("curve")):
            seconds, steps, _, rolling = zip(*run["curve"])
            by_time.plot(seconds, rolling, color=colour, alpha=0.8, label=label if index == 0 else None)
            by_steps.plot(steps, rolling, color=colour, alpha=0.8, label=label if index == 0 else None)
    for axis, xlabel in ((by_time, "wall time of learning calls [s]"), (by_steps, "env steps")):
        axis.axhline(SOLVE_THRESHOLD, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(f"mean return of last {SOLVE_WINDOW} training episodes")
        axis.legend(loc="lower right")
        axis.grid(alpha=0.3)
    figure.suptitle("CartPole-v1: dexterity_nb vs Stable-Baselines3 (one line per seed)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def machine() -> dict:
    versions = {}
    for name in ("numpy", "gymnasium", "tensorflow", "keras", "torch", "stable_baselines3"):
        try:
            from importlib.metadata import version

            versions[name] = version(name.replace("_", "-"))
        except Exception:  # not installed
            versions[name] = None
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "versions": versions}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the machinery, not timings")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "benchmark",
                        help="directory for results.json, return_vs_time.png and logs/ (default: runs/benchmark)")
    parser.add_argument("--seeds", type=int, default=None, help="solve runs per framework (default 5; quick 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op and inter-op threads for TensorFlow and torch alike (default 1)")
    parser.add_argument("--no-sb3", action="store_true", help="measure our side only")
    parser.add_argument("--panel-before", type=Path, default=None, metavar="DIR",
                        help="also time the comparison panel on the dexterity_nb in DIR (e.g. commit 0749cae, "
                             "extracted), alternating with the current code, for the row's ratio")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    run_sb3 = not args.no_sb3 and bench_extra_available()
    if not args.no_sb3 and not run_sb3:
        print(INSTALL_HINT)
    sys.path.insert(0, str(REPO_ROOT))
    run_ours = core_available()
    if not run_ours:
        print(CORE_HINT)
    settings = plan(args.quick, args.seeds)
    settings["quick"] = args.quick
    print(f"benchmark ({'quick' if args.quick else 'full'}), {args.threads} thread(s) per framework, "
          f"output in {out}")
    load_before = _load()
    warn_if_busy(load_before, "wall-clock figures will be slow and noisy; the CPU-time ratios in the notes hold better.")
    started = time.perf_counter()
    results = measure(settings, args.threads, out, run_sb3, run_ours, args.panel_before)
    load_after = _load()
    rows = summarise(results, args.quick)

    print()
    print(main_table(rows))
    if results.get("scaling") and "rows" in results["scaling"]:
        print("\n5. scaling (ours, drill(., epochs, batch_size) per cycle, medians after the first cycle)")
        print(scaling_table(results["scaling"]))
    if args.quick:
        print("\n(--quick: tiny budgets; the figures check the machinery and say nothing about speed)")
    plotted = plot(results, out / "return_vs_time.png")
    report = {
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.run"] + (argv or sys.argv[1:])),
        "quick": args.quick, "threads": args.threads, "machine": machine(), "settings": settings,
        "zoo": ZOO, "tutorial": TUTORIAL, "sb3_measured": run_sb3, "ours_measured": run_ours,
        "table": rows, "results": results, "plot": "return_vs_time.png" if plotted else None,
        "total_seconds": time.perf_counter() - started,
        "load_average_before": load_before, "load_average_after": load_after,
    }
    (out / "results.json").write_text(json.dumps(report, indent=1, default=_json_default))
    if load_after:
        print(f"\nload average (1, 5, 15 min) before: {_fmt_load(load_before)}, after: {_fmt_load(load_after)}"
              f" on {os.cpu_count()} cores")
    print(f"wrote {out / 'results.json'}" + (f" and {out / 'return_vs_time.png'}" if plotted else ""))
    return 0


def _load():
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):  # not on every platform
        return None


def _fmt_load(load):
    return "n/a" if not load else "/".join(f"{value:.1f}" for value in load)


def warn_if_busy(load, what_holds: str):
    """Say so when the 1-minute load exceeds the cores: absolute seconds are then slow and noisy."""
    if load and load[0] > (os.cpu_count() or 1):
        print(f"WARNING: the machine is busy (load {load[0]:.1f} on {os.cpu_count()} cores): {what_holds}")


def _json_default(value):
    if isinstance(value, float) and math.isinf(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
