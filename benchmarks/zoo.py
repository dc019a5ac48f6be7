"""Train every preset and compare with the RL Zoo: ``python -m benchmarks.zoo [--tasks A,B] [--seeds N] [--quick]``.

For each task of :mod:`dexterity_nb.presets` (or ``--tasks``) and each seed, one subprocess
(`benchmarks.worker`, one thread, `benchmarks.limits`) trains the preset for its frame budget
and evaluates the final policy deterministically over 20 episodes. With the ``bench`` extra,
Stable-Baselines3 trains the same settings for the first ``--sb3-frames`` frames in its own
subprocess, alternating with ours (seed 0: SB3, ours; seed 1: SB3, ours; ...), so that the
seconds per frame of both come from the same run under the same load.

One table is printed: task, the Zoo's published score ± sd at its budget, the target (score
minus one sd), our median and min–max evaluation return, how many seeds reached the target,
frames, median wall seconds, SB3's and our seconds per frame over the same first slice, and
their ratio. Every raw figure goes to ``--out`` as JSON.

``--quick`` trains two classic-control tasks for two cycles each and one seed: it checks the
machinery (CI), and its scores and timings mean nothing.
"""

import argparse
import copy
import datetime
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/zoo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import median  # noqa: E402
from benchmarks.run import (  # noqa: E402
    INSTALL_HINT, _fmt_load, _load, bench_extra_available, format_table, machine, run_task, warn_if_busy,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

# RL Baselines3 Zoo benchmark.md, PPO: (mean, sd) of the deterministic evaluation, and the budget.
ZOO_RESULTS = {
    "CartPole-v1": dict(score=500.0, sd=0.0, frames=100_000),
    "Acrobot-v1": dict(score=-73.5, sd=18.2, frames=1_000_000),
    "MountainCar-v0": dict(score=-110.4, sd=19.5, frames=1_000_000),
    "MountainCarContinuous-v0": dict(score=88.3, sd=2.6, frames=20_000, note="gSDE"),
    "Pendulum-v1": dict(score=-172.2, sd=104.2, frames=100_000, note="gSDE"),
    "LunarLander-v3": dict(score=242.1, sd=31.8, frames=1_000_000, note="v2"),
    "LunarLanderContinuous-v3": dict(score=270.9, sd=32.1, frames=1_000_000, note="v2"),
    "BipedalWalker-v3": dict(score=213.3, sd=129.5, frames=5_000_000),
}

# Cheapest first: the order of a full run.
TASK_ORDER = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1", "MountainCar-v0",
              "LunarLanderContinuous-v3", "MountainCarContinuous-v0", "BipedalWalker-v3"]
QUICK_TASKS = ["CartPole-v1", "Pendulum-v1"]


def target_of(env_id: str) -> float | None:
    """The Zoo's score minus one of its standard deviations (None without a published score)."""
    zoo = ZOO_RESULTS.get(env_id)
    return None if zoo is None else zoo["score"] - zoo["sd"]


def sb3_settings(preset: dict) -> dict:
    """Stable-Baselines3 PPO keyword arguments doing the same work as ``preset``.

    Same envs, steps, minibatches, epochs, coefficients and normalisation; SB3's MlpPolicy has
    the same networks as our "simple" model (separate 2×64 tanh policy and value, log σ₀ = 0).
    A linear learning rate becomes ``{"linear": lr}`` (decaying over SB3's shorter run: the same
    cost per frame).
    """
    agent = preset["agent"]
    learning_rate = agent.get("learning_rate", 3e-4)
    if agent.get("lr_schedule") == "linear":
        learning_rate = {"linear": learning_rate}
    elif agent.get("lr_schedule") is not None:
        raise ValueError(f"sb3_settings translates lr_schedule None or 'linear', got {agent['lr_schedule']!r}")
    gradient_clipping = agent.get("gradient_clipping", 0.5)
    return dict(
        n_envs=agent["workers"], n_steps=agent["horizon"], batch_size=preset["drill"]["batch_size"],
        n_epochs=preset["drill"]["epochs"], gamma=agent.get("discount", 0.99), gae_lambda=agent.get("lam", 0.95),
        learning_rate=learning_rate, clip_range=agent.get("clip", 0.2), ent_coef=agent.get("c_entropy", 0.0),
        vf_coef=agent.get("c_value", 0.5), max_grad_norm=1e9 if gradient_clipping is None else gradient_clipping,
        norm_obs="state" in preset["transformers"], norm_reward="reward" in preset["transformers"],
    )


def apply_settings(preset: dict, assignments: list) -> dict:
    """A copy of ``preset`` with ``KEY=JSON`` assignments applied (``agent.lam=0.9``, ``frames=200000``)."""
    preset = copy.deepcopy(preset)
    for assignment in assignments:
        key, separator, text = assignment.partition("=")
        if not separator:
            raise ValueError(f"--set takes KEY=VALUE (e.g. agent.lam=0.9), got {assignment!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare string: linear, gaussian
        *path, last = key.split(".")
        target = preset
        for part in path:
            target = target[part]
        target[last] = value
    return preset


def plan(tasks: list, seeds: list, quick: bool, sb3_frames: int, eval_episodes: int, assignments: list) -> list:
    """One entry per task: the preset measured, our frames, SB3's frames, the seeds."""
    from dexterity_nb.presets import PRESETS, cycles_for

    entries = []
    for env_id in tasks:
        if env_id not in PRESETS:
            raise SystemExit(f"No preset for {env_id!r}; presets exist for {', '.join(PRESETS)}.")
        preset = apply_settings(PRESETS[env_id], assignments)
        cycle_frames = preset["agent"]["horizon"] * preset["agent"]["workers"]
        frames = cycles_for(preset) * cycle_frames
        slice_frames = min(sb3_frames, frames)
        if quick:
            frames = slice_frames = 2 * cycle_frames
        entries.append(dict(env_id=env_id, preset=preset, frames=frames, slice_frames=slice_frames,
                            seeds=list(seeds), eval_episodes=eval_episodes))
    return entries


def measure(entries: list, run_sb3: bool, threads: int, jobs: int, out: Path, timeout: float) -> dict:
    """Run every subprocess, alternating SB3 and ours per seed; at most ``jobs`` at a time."""
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    queue = []
    for entry in entries:
        for seed in entry["seeds"]:
            if run_sb3:
                kwargs = dict(env_id=entry["env_id"], seed=seed, settings=sb3_settings(entry["preset"]),
                              frames=entry["slice_frames"])
                queue.append((entry["env_id"], "sb3", "zoo_speed", kwargs, f"{entry['env_id']}-sb3-seed{seed}"))
            kwargs = dict(env_id=entry["env_id"], seed=seed, preset=entry["preset"], frames=entry["frames"],
                          slice_frames=entry["slice_frames"], eval_episodes=entry["eval_episodes"])
            queue.append((entry["env_id"], "zoo-ours", "train", kwargs, f"{entry['env_id']}-ours-seed{seed}"))

    def one(item):
        env_id, side, task, kwargs, label = item
        result = run_task(side, task, kwargs, threads, log_dir, label, timeout)
        status = "FAILED: " + result["error"] if "error" in result else f"{result['process_seconds']:.0f} s"
        if "eval_mean" in result:
            status += f", evaluation {result['eval_mean']:.1f}"
        print(f"  {label}: {status}", flush=True)
        return env_id, side, result

    results = {entry["env_id"]: {"sb3": [], "ours": []} for entry in entries}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for env_id, side, result in pool.map(one, queue):
            results[env_id]["sb3" if side == "sb3" else "ours"].append(result)
    return results


def summarise(entries: list, results: dict, quick: bool) -> list:
    """Table rows as dicts of numbers (None where not measured)."""
    rows = []
    for entry in entries:
        env_id = entry["env_id"]
        ours = [r for r in results[env_id]["ours"] if "error" not in r]
        sb3 = [r for r in results[env_id]["sb3"] if "error" not in r]
        zoo = ZOO_RESULTS.get(env_id)
        target = target_of(env_id)
        scores = [r["eval_mean"] for r in ours]  # each seed: mean of its deterministic evaluation episodes
        ours_per_frame = [r["slice_seconds"] / r["slice_frames"] for r in ours]
        sb3_per_frame = [r["seconds_per_frame"] for r in sb3]
        ours_cpu = [r["slice_cpu_seconds"] / r["slice_frames"] for r in ours]
        sb3_cpu = [r["cpu_seconds"] / r["frames"] for r in sb3]
        ratio = (median(ours_per_frame) / median(sb3_per_frame)) if ours_per_frame and sb3_per_frame else None
        cpu_ratio = (median(ours_cpu) / median(sb3_cpu)) if ours_cpu and sb3_cpu else None
        rows.append(dict(
            task=env_id, zoo_score=zoo and zoo["score"], zoo_sd=zoo and zoo["sd"], zoo_frames=zoo and zoo["frames"],
            zoo_note=zoo and zoo.get("note"), target=target,
            median=median(scores), low=min(scores) if scores else None, high=max(scores) if scores else None,
            scores=scores, at_target=None if target is None or quick else sum(s >= target for s in scores),
            runs=len(ours), failed=len(results[env_id]["ours"]) - len(ours),
            frames=median([r["frames"] for r in ours]), wall_seconds=median([r["learn_seconds"] for r in ours]),
            slice_frames=entry["slice_frames"], sb3_seconds_per_frame=median(sb3_per_frame),
            ours_seconds_per_frame=median(ours_per_frame), ratio=ratio, cpu_ratio=cpu_ratio,
            ratio_met=None if ratio is None or quick else ratio <= 0.3,
            sb3_runs=len(sb3), source=entry["preset"]["source"]))
    return rows


def _number(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def table(rows: list) -> str:
    header = ["task", "Zoo score ± sd (frames)", "target", "ours median [min, max]", "at target",
              "frames", "wall s", "SB3 µs/frame", "ours µs/frame", "ratio (≤0.3)"]
    cells = []
    for row in rows:
        zoo = "n/a" if row["zoo_score"] is None else (
            f"{row['zoo_score']:g} ± {row['zoo_sd']:g} ({row['zoo_frames'] / 1e3:g}k"
            + (f", {row['zoo_note']}" if row["zoo_note"] else "") + ")")
        ours = "not measured" if not row["runs"] else (
            f"{_number(row['median'])} [{_number(row['low'])}, {_number(row['high'])}]")
        at_target = "-" if row["at_target"] is None else f"{row['at_target']}/{row['runs']}"
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}" + (
            "" if row["ratio_met"] is None else (" yes" if row["ratio_met"] else " NO"))
        per_frame = [None if value is None else 1e6 * value
                     for value in (row["sb3_seconds_per_frame"], row["ours_seconds_per_frame"])]
        cells.append([row["task"], zoo, _number(row["target"]), ours, at_target,
                      "n/a" if row["frames"] is None else f"{row['frames']:,.0f}", _number(row["wall_seconds"], 0),
                      _number(per_frame[0], 0), _number(per_frame[1], 0), ratio])
    notes = []
    for row in rows:
        parts = []
        if row["failed"]:
            parts.append(f"{row['failed']} of our runs FAILED (see logs/)")
        if row["ratio"] is not None:
            parts.append(f"speed over the first {row['slice_frames']:,} frames, {row['sb3_runs']} SB3 run(s); "
                         f"CPU-time ratio {row['cpu_ratio']:.2f}")
        if parts:
            notes.append(f"  {row['task']}: " + "; ".join(parts))
    return format_table(header, cells) + ("\nnotes:\n" + "\n".join(notes) if notes else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated env ids (default: every preset, cheapest first)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task (default 3; --quick: 1)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds are first-seed … first-seed + seeds − 1 (default 0): to split a task's seeds over runs")
    parser.add_argument("--sb3-frames", type=int, default=200_000,
                        help="frames SB3 trains to measure its seconds per frame (default 200k; capped at the budget)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="deterministic evaluation episodes (default 20)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change the presets measured, e.g. --set agent.lam=0.9 --set frames=200000 (JSON values)")
    parser.add_argument("--jobs", type=int, default=1, help="subprocesses at a time (default 1; at most the cores)")
    parser.add_argument("--threads", type=int, default=1, help="threads per subprocess, both frameworks (default 1)")
    parser.add_argument("--no-sb3", action="store_true", help="measure our side only")
    parser.add_argument("--quick", action="store_true", help="two tasks, two cycles, one seed: checks the machinery")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "zoo",
                        help="directory for zoo.json and logs/ (default runs/zoo)")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds before a subprocess is killed")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    tasks = args.tasks.split(",") if args.tasks else (QUICK_TASKS if args.quick else TASK_ORDER)
    seeds = 1 if args.quick and "--seeds" not in (argv or sys.argv[1:]) else args.seeds
    eval_episodes = 2 if args.quick else args.eval_episodes
    if seeds < 1 or args.jobs < 1:
        parser.error(f"--seeds and --jobs must be at least 1, got {seeds} and {args.jobs}")
    run_sb3 = not args.no_sb3 and bench_extra_available()
    if not args.no_sb3 and not run_sb3:
        print(INSTALL_HINT)
    entries = plan(tasks, range(args.first_seed, args.first_seed + seeds), args.quick, args.sb3_frames, eval_episodes, args.set)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"zoo benchmark ({'quick' if args.quick else 'full'}): {', '.join(tasks)}; seeds {entries[0]['seeds']}, "
          f"{args.threads} thread(s) per subprocess, {args.jobs} at a time; output in {out}")
    load_before = _load()
    warn_if_busy(load_before, "seconds are slow and noisy; the ratios measured in this run hold better.")
    started = time.perf_counter()
    results = measure(entries, run_sb3, args.threads, args.jobs, out, args.timeout)
    load_after = _load()
    rows = summarise(entries, results, args.quick)
    print()
    print(table(rows))
    if args.quick:
        print("\n(--quick: two cycles per task; the scores and timings check the machinery and mean nothing)")
    report = {
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.zoo"] + (argv or sys.argv[1:])),
        "quick": args.quick, "threads": args.threads, "jobs": args.jobs, "sb3_measured": run_sb3,
        "machine": machine(), "zoo_results": ZOO_RESULTS, "plan": entries, "table": rows, "results": results,
        "total_seconds": time.perf_counter() - started,
        "load_average_before": load_before, "load_average_after": load_after,
    }
    (out / "zoo.json").write_text(json.dumps(report, indent=1, default=str))
    if load_after:
        print(f"\nload average (1, 5, 15 min) before: {_fmt_load(load_before)}, after: {_fmt_load(load_after)}"
              f" on {os.cpu_count()} cores; {report['total_seconds']:.0f} s in all")
    print(f"wrote {out / 'zoo.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
