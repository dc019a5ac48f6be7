"""Recurrent policies against feed-forward ones (issue 12): ``python -m benchmarks.recurrent [--quick] [--out DIR]``.

Two measurements on velocity-free CartPole (``make_env("CartPole-v1", mask_velocity=True)``), the
issue's settings (horizon 128, 8 workers, lr 1e-3, no entropy bonus, ``drill(., 10, 256)``) and
the "simple" builders:

1. **Cycle cost**: ffn, gru and lstm agents of the same size drill a few cycles each, in rounds
   (ffn, gru, lstm; again with the next seed). Medians pool every round's cycles after its first:
   the first cycle traces and XLA-compiles the update and is reported on its own.
   Target: a recurrent cycle costs at most 3x a feed-forward one (ratio of seconds per cycle).
2. **Time to solve**: the GRU agent until the rolling mean of the last 20 training returns
   reaches 475 (benchmark 1's rule), budget 300,000 frames, seeds 0..4; the clock covers the
   ``drill`` calls only (and, separately, with the agent's construction). The feed-forward agent
   runs the same budget on a seed or two, to show it does not solve (its best rolling mean).
   Each GRU variant tried is reported; the headline is the issue's settings if they solve most
   seeds, else the variant that solved most (then the fastest).

Each measurement is its own subprocess (``python -m benchmarks.recurrent_side``) with the thread
limits of :mod:`benchmarks.limits` (``--threads``, default 1). ``--quick`` shrinks every budget to
check the machinery (CI); it claims no target.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/recurrent.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import SOLVE_THRESHOLD, SOLVE_WINDOW, median  # noqa: E402
from benchmarks.run import (  # noqa: E402
    _fmt_load, _format, _json_default, _load, format_table, machine, run_module, warn_if_busy)

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_TYPES = ("ffn", "gru", "lstm")
MAX_COST_RATIO = 3.0  # issue 12: "a recurrent cycle costs at most 3x a feed-forward one of the same size"

# GRU settings tried for the time to solve: the issue's first, then the alternatives (at most two).
VARIANTS = {
    "issue": dict(agent_overrides={}, one_drill=False),
    "linear-lr": dict(agent_overrides={"lr_schedule": "linear"}, one_drill=True),
    "chunk-32": dict(agent_overrides={"chunk_length": 32}, one_drill=False),
    # The RL Zoo's RecurrentPPO settings for CartPoleNoVel-v1 as far as they translate: short horizon,
    # 20 epochs of one whole-cycle minibatch, γ 0.98, λ 0.8, lr decaying linearly, normalised states and rewards.
    "zoo": dict(agent_overrides={"horizon": 32, "discount": 0.98, "lam": 0.8, "lr_schedule": "linear", "chunk_length": 32},
                transformers=["state", "reward"], epochs=20, one_drill=True),
}
VARIANT_NOTES = {
    "issue": "horizon 128, 8 workers, lr 1e-3 constant, chunk 16; drill(1, 10, 256) until solved",
    "linear-lr": "as issue, lr 1e-3 -> 0 linearly over the budget: one drill call a callback stops at the solve",
    "chunk-32": "as issue, chunk_length=32",
    "zoo": "horizon 32, 8 workers, γ 0.98, λ 0.8, lr 1e-3 -> 0 linearly over the budget, chunk 32, state and reward "
           "normalisation, drill(·, 20, 256) in one call a callback stops at the solve",
}


def plan(quick: bool, seeds: int | None) -> dict:
    """Budgets of every measurement."""
    if quick:
        return dict(cycles=2, cycle_rounds=1, solve_seeds=list(range(seeds or 1)), ffn_seeds=[0],
                    budget_steps=2048, variants=["issue"], timeout=300)
    return dict(cycles=11, cycle_rounds=2, solve_seeds=list(range(seeds or 5)), ffn_seeds=[0, 1],
                budget_steps=300_000, variants=list(VARIANTS), timeout=1800)


def run_task(task: str, kwargs: dict, threads: int, log_dir: Path, label: str, timeout: float) -> dict:
    """One measurement of ``benchmarks.recurrent_side`` in a fresh subprocess (``run.run_module``), with progress.

    Returns the measurement's dict plus ``process_seconds``, or ``{"error": ...}`` naming the log to read.
    """
    print(f"  {label} ...", end="", flush=True)
    result = run_module(["benchmarks.recurrent_side", task, json.dumps(kwargs)], task, threads, log_dir, label, timeout)
    if "error" in result:
        print(" FAILED\n    " + result["error"].replace("\n", "\n    "))
    else:
        print(f" {result['process_seconds']:.1f} s")
    return result


def measure(settings: dict, threads: int, out: Path) -> dict:
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    timeout = settings["timeout"]
    print("1. cycle cost, ffn vs gru vs lstm (rounds alternate the model types)")
    rounds = {model_type: [] for model_type in MODEL_TYPES}
    for index in range(settings["cycle_rounds"]):
        for model_type in MODEL_TYPES:
            rounds[model_type].append(run_task("cycles", dict(model_type=model_type, cycles=settings["cycles"],
                                                              seed=index),
                                               threads, log_dir, f"cycles-{model_type}-round{index}", timeout))
    print(f"2. time to solve velocity-free CartPole (budget {settings['budget_steps']:,} frames; seeds alternate)")
    solve = {f"gru/{name}": [] for name in settings["variants"]}
    solve["ffn/issue"] = []
    for seed in settings["solve_seeds"]:
        for name in settings["variants"]:
            kwargs = dict(model_type="gru", seed=seed, budget_steps=settings["budget_steps"], **VARIANTS[name])
            solve[f"gru/{name}"].append(run_task("solve", kwargs, threads, log_dir, f"solve-gru-{name}-seed{seed}",
                                                 timeout))
        if seed in settings["ffn_seeds"]:
            kwargs = dict(model_type="ffn", seed=seed, budget_steps=settings["budget_steps"], **VARIANTS["issue"])
            solve["ffn/issue"].append(run_task("solve", kwargs, threads, log_dir, f"solve-ffn-seed{seed}", timeout))
    return {"cycles": {model_type: pool_cycles(runs) for model_type, runs in rounds.items()}, "solve": solve}


def pool_cycles(runs: list) -> dict:
    """Medians over every round's cycles after its first; the rounds themselves are kept in ``rounds``."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"error": runs[0]["error"], "rounds": runs}
    frames = good[0]["frames_per_cycle"]

    def later(key):
        return [value for run in good for value in (run.get(key) or [])[1:] if value is not None]

    gather, optimize = later("gather_seconds"), later("optimize_seconds")
    return {
        "rounds": runs,
        "frames_per_cycle": frames,
        "updates_per_cycle": good[0]["updates_per_cycle"],
        "measured_cycles": len(later("cycle_seconds")),
        "median_cycle_seconds": median(later("cycle_seconds")),
        "median_cycle_cpu_seconds": median(later("cycle_cpu_seconds")),
        "median_gather_seconds": median(gather),
        "median_optimize_seconds": median(optimize),
        "gather_frames_per_second": median([frames / g for g in gather if g > 0]),
        "update_frames_per_second": median([frames / o for o in optimize if o > 0]),
        "first_cycle_seconds": median([run["first_cycle_seconds"] for run in good]),
        "build_seconds": median([run["build_seconds"] for run in good]),
        "peak_rss_bytes": max(run["peak_rss_bytes"] for run in good),
    }


# ----------------------------------------------------------------------------- summaries

def cycle_rows(cycles: dict, quick: bool) -> list:
    """One row per model type; recurrent rows carry the ratio to the feed-forward cycle."""
    base = cycles.get("ffn", {}).get("median_cycle_seconds")
    base_cpu = cycles.get("ffn", {}).get("median_cycle_cpu_seconds")
    rows = []
    for model_type in MODEL_TYPES:
        result = cycles.get(model_type) or {"error": "not measured"}
        if "error" in result:
            rows.append(dict(model=model_type, error=result["error"], met=None))
            continue
        seconds, cpu = result["median_cycle_seconds"], result["median_cycle_cpu_seconds"]
        ratio = seconds / base if base and model_type != "ffn" else None
        cpu_ratio = cpu / base_cpu if cpu is not None and base_cpu and model_type != "ffn" else None
        met = None if ratio is None else ratio <= MAX_COST_RATIO
        rows.append(dict(model=model_type, gather_frames_per_second=result["gather_frames_per_second"],
                         update_frames_per_second=result["update_frames_per_second"],
                         cycle_seconds=seconds, cycle_cpu_seconds=cpu, ratio_to_ffn=ratio, cpu_ratio_to_ffn=cpu_ratio,
                         met="quick" if quick and met is not None else met,
                         first_cycle_seconds=result["first_cycle_seconds"], build_seconds=result["build_seconds"],
                         measured_cycles=result["measured_cycles"]))
    return rows


def solve_summary(runs: list) -> dict | None:
    """Medians over seeds; an unsolved seed counts as infinitely slow (and infinitely many frames)."""
    runs = [run for run in runs if "error" not in run]
    if not runs:
        return None
    seconds = [run["seconds_to_solve"] if run["solved"] else math.inf for run in runs]
    wall = [run["wall_seconds_to_solve"] if run["solved"] else math.inf for run in runs]
    frames = [run["steps_to_solve"] if run["solved"] else math.inf for run in runs]
    best = [run["best_rolling"] for run in runs if run["best_rolling"] is not None]
    solved = sum(run["solved"] for run in runs)
    return {"runs": len(runs), "solved": solved, "fraction_solved": solved / len(runs),
            "median_seconds": median(seconds), "median_wall_seconds": median(wall), "median_frames": median(frames),
            "median_seconds_of_solved": median([value for value in seconds if math.isfinite(value)]),
            "median_frames_of_solved": median([value for value in frames if math.isfinite(value)]),
            "median_best_rolling": median(best), "max_best_rolling": max(best) if best else None,
            "seconds": seconds, "wall_seconds": wall, "frames": frames, "best_rolling": best,
            "seeds": [run["seed"] for run in runs]}


def headline_variant(summaries: dict) -> str | None:
    """The issue's settings if they solve most seeds; else the GRU variant that solved most, then the fastest."""
    gru = {key: value for key, value in summaries.items() if key.startswith("gru/") and value}
    if not gru:
        return None
    issue = gru.get("gru/issue")
    if issue and issue["solved"] > issue["runs"] / 2:
        return "gru/issue"
    return min(gru, key=lambda key: (-gru[key]["fraction_solved"], gru[key]["median_seconds"]))  # ties: first tried


def cycle_table(rows: list) -> str:
    header = ["model", "gather frames/s", "update frames/s", "s/cycle", "CPU s/cycle", "ratio to ffn (CPU)",
              f"<= {MAX_COST_RATIO:g}?", "first cycle (compile) s", "build s"]
    cells = []
    for row in rows:
        if "error" in row:
            cells.append([row["model"], "FAILED"] + [""] * (len(header) - 2))
            continue
        ratio = "-" if row["ratio_to_ffn"] is None else (
            f"{row['ratio_to_ffn']:.2f} ({_format(row['cpu_ratio_to_ffn'])})")
        met = {True: "yes", False: "NO", None: "-"}.get(row["met"], row["met"])
        cells.append([row["model"], _format(row["gather_frames_per_second"]), _format(row["update_frames_per_second"]),
                      _format(row["cycle_seconds"]), _format(row["cycle_cpu_seconds"]), ratio, met,
                      _format(row["first_cycle_seconds"]), _format(row["build_seconds"])])
    return format_table(header, cells)


def solve_table(summaries: dict, headline: str | None, quick: bool) -> str:
    header = ["agent / settings", "solved", "s to solve (drill calls)", "s incl. build", "frames to solve",
              "solved seeds only: s, frames", "best rolling-20 (median, max)", "per-seed s"]
    cells = []
    for key, summary in summaries.items():
        label = key + (" *" if key == headline else "")
        if summary is None:
            cells.append([label, "FAILED"] + [""] * (len(header) - 2))
            continue
        cells.append([label, f"{summary['solved']}/{summary['runs']}", _format(summary["median_seconds"]),
                      _format(summary["median_wall_seconds"]), _format(summary["median_frames"]),
                      f"{_format(summary['median_seconds_of_solved'])}, {_format(summary['median_frames_of_solved'])}",
                      f"{_format(summary['median_best_rolling'])}, {_format(summary['max_best_rolling'])}",
                      " ".join(_format(value) for value in summary["seconds"])])
    text = format_table(header, cells)
    notes = [f"  {key}: {VARIANT_NOTES[key.split('/')[1]]}" for key in summaries if key.startswith("gru/")]
    notes.append("  ffn/issue: the 'simple' ffn, the issue's settings (no chunks: it has no memory)")
    text += "\nsettings:\n" + "\n".join(notes)
    if headline and not quick:
        summary = summaries[headline]
        why = ("it solved most seeds" if summary["solved"] > summary["runs"] / 2 else
               "no GRU settings solved most seeds; this one solved the most, then was the fastest, then came first")
        text += f"\n* headline: {headline} ({why})"
    return text


def _finite(value):
    """``value`` with every infinite float (an unsolved seed) as None, so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the machinery, claims no target")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "recurrent",
                        help="directory for results.json and logs/ (default: runs/recurrent)")
    parser.add_argument("--seeds", type=int, default=None, help="GRU solve runs per variant (default 5; quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op and inter-op threads (default 1)")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated GRU settings for the solve runs, of {', '.join(VARIANTS)} "
                             "(default: all; quick: issue)")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    settings = plan(args.quick, args.seeds)
    if args.variants:
        variants = [name.strip() for name in args.variants.split(",") if name.strip()]
        unknown = [name for name in variants if name not in VARIANTS]
        if unknown:
            parser.error(f"unknown --variants {', '.join(unknown)}; choose among {', '.join(VARIANTS)}")
        settings["variants"] = variants

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"recurrent benchmark ({'quick' if args.quick else 'full'}), {args.threads} thread(s), output in {out}")
    load_before = _load()
    warn_if_busy(load_before, "wall-clock figures will be slow and noisy; the CPU seconds hold better.")
    started = time.perf_counter()
    results = measure(settings, args.threads, out)
    load_after = _load()

    rows = cycle_rows(results["cycles"], args.quick)
    summaries = {key: solve_summary(runs) for key, runs in results["solve"].items()}
    headline = headline_variant(summaries)
    print("\n1. cycle cost on velocity-free CartPole, 'simple' builders, 8 x 128 frames, drill(., 10, 256); "
          "medians over cycles after the first")
    print(cycle_table(rows))
    print(f"\n2. time to solve velocity-free CartPole (rolling mean of {SOLVE_WINDOW} training returns >= "
          f"{SOLVE_THRESHOLD:g}; budget {settings['budget_steps']:,} frames; unsolved seeds count as infinite)")
    print(solve_table(summaries, headline, args.quick))
    if args.quick:
        print("\n(--quick: tiny budgets; the figures check the machinery and say nothing about speed or solving)")

    report = {
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.recurrent"] + (argv or sys.argv[1:])),
        "quick": args.quick, "threads": args.threads, "machine": machine(), "settings": settings,
        "variants": {name: VARIANTS[name] for name in settings["variants"]},
        "solve_threshold": SOLVE_THRESHOLD, "solve_window": SOLVE_WINDOW, "max_cost_ratio": MAX_COST_RATIO,
        "cycle_table": rows, "solve_summaries": summaries, "headline": headline, "results": results,
        "total_seconds": time.perf_counter() - started,
        "load_average_before": load_before, "load_average_after": load_after,
    }
    (out / "results.json").write_text(json.dumps(_finite(report), indent=1, default=_json_default, allow_nan=False))
    if load_after:
        print(f"\nload average (1, 5, 15 min) before: {_fmt_load(load_before)}, after: {_fmt_load(load_after)}"
              f" on {os.cpu_count()} cores")
    print(f"wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
