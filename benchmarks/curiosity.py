"""Curiosity on MountainCar-v0 (issue 13): ``python -m benchmarks.curiosity [--seeds 5] [--quick] [--out DIR]``.

MountainCar's reward is −1 per step until the car reaches the flag, which random play almost
never does within the 200-step limit. The measure is **frames until an episode first reaches the
flag** (the first cycle of ``progress.csv`` whose mean episode length is below 200), for plain PPO,
the count-based bonus and RND, over the same seeds and frame budget.

Every run is the CLI, in its own process, with the same settings except ``--intrinsic``::

    dexterity-nb drill MountainCar-v0 --transformers none --horizon 256 --workers 8 --learning-rate 0.001
        --discount 0.99 --lam 0.95 --c-entropy 0.01 --lr-schedule constant --epochs 10 --batch-size 256
        --target-return 0 --frames BUDGET --seed S [--intrinsic counts | --intrinsic rnd --intrinsic-weight 2]

(no normalisation: the setting in which plain PPO stays at −200). ``--quick`` runs one seed with
a tiny budget to check the machinery (CI); it claims nothing.
"""

import argparse
import csv
import datetime
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/curiosity.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.limits import thread_environment  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMON_FLAGS = ["--transformers", "none", "--horizon", "256", "--workers", "8", "--learning-rate", "0.001",
                "--discount", "0.99", "--lam", "0.95", "--c-entropy", "0.01", "--lr-schedule", "constant",
                "--epochs", "10", "--batch-size", "256", "--target-return", "0"]
VARIANTS = {
    "plain PPO": [],
    "counts": ["--intrinsic", "counts"],
    "RND": ["--intrinsic", "rnd", "--intrinsic-weight", "2"],
}
FLAG_LENGTH = 200  # MountainCar-v0's time limit: a shorter episode reached the flag


def frames_to_first_flag(progress_csv: Path):
    """``(frames at the end of the first cycle with an episode shorter than 200 steps or None, rows)``."""
    with open(progress_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        length = float(row["mean_length"]) if row["mean_length"] not in ("", "nan") else math.nan
        if length < FLAG_LENGTH:
            return int(row["frames"]), rows
    return None, rows


def run_one(variant: str, seed: int, frames: int, out: Path, threads: int) -> dict:
    folder = out / "runs" / f"{variant.replace(' ', '-')}-seed{seed}"
    command = [sys.executable, "-m", "dexterity_nb", "drill", "MountainCar-v0", *COMMON_FLAGS,
               "--frames", str(frames), "--seed", str(seed), "--out", str(folder), *VARIANTS[variant]]
    environment = {**__import__("os").environ, **thread_environment(threads)}
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "logs" / f"{folder.name}.log").write_text(f"$ {' '.join(command)}\n{completed.stdout}\n{completed.stderr}")
    if completed.returncode != 0:
        return {"variant": variant, "seed": seed, "error": f"exit {completed.returncode}; see logs/{folder.name}.log"}
    first, rows = frames_to_first_flag(folder / "progress.csv")
    last = [float(row["mean_return"]) for row in rows[-5:] if row["mean_return"] not in ("", "nan")]
    return {"variant": variant, "seed": seed, "first_flag_frames": first, "frames": int(rows[-1]["frames"]),
            "final_mean_return": statistics.fmean(last) if last else None, "process_seconds": seconds,
            "command": " ".join(command[1:])}


def summarise(runs: list) -> list:
    table = []
    for variant in VARIANTS:
        mine = [run for run in runs if run["variant"] == variant and "error" not in run]
        # An unreached flag counts as infinitely many frames: the median says "never" if most runs failed.
        firsts = sorted(math.inf if run["first_flag_frames"] is None else run["first_flag_frames"] for run in mine)
        median = statistics.median(firsts) if firsts else None
        table.append({"variant": variant, "runs": len(mine), "reached": sum(math.isfinite(value) for value in firsts),
                      "median_first_flag_frames": None if median is None or not math.isfinite(median) else median,
                      "first_flag_frames": [None if not math.isfinite(value) else int(value) for value in firsts],
                      "final_mean_returns": [run["final_mean_return"] for run in mine]})
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200_704, help="frame budget per run (98 cycles of 2,048)")
    parser.add_argument("--quick", action="store_true", help="one seed, 4,096 frames: checks the machinery only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/curiosity")
    arguments = parser.parse_args(argv)
    seeds, frames = (1, 4096) if arguments.quick else (arguments.seeds, arguments.frames)
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_one(variant, seed, frames, out, arguments.threads) for seed in range(seeds) for variant in VARIANTS]
    table = summarise(runs)
    print(f"MountainCar-v0, frames to the first episode that reaches the flag; {seeds} seed(s), budget {frames:,} "
          f"frames{' (--quick: machinery only)' if arguments.quick else ''}")
    print(f"{'variant':<10}  {'reached':>7}  {'median frames':>13}  per seed (sorted; - = never)")
    for row in table:
        median = "never" if row["median_first_flag_frames"] is None else f"{row['median_first_flag_frames']:,.0f}"
        each = ", ".join("-" if value is None else f"{value:,}" for value in row["first_flag_frames"])
        print(f"{row['variant']:<10}  {row['reached']:>3}/{row['runs']:<3}  {median:>13}  {each}")
    for run in runs:
        if "error" in run:
            print(f"FAILED {run['variant']} seed {run['seed']}: {run['error']}")
    print(f"settings: {' '.join(COMMON_FLAGS)} --frames {frames}; variants: {json.dumps(VARIANTS)}")
    report = {"quick": arguments.quick, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "frames": frames, "seeds": seeds, "common_flags": COMMON_FLAGS, "variants": VARIANTS,
              "table": table, "runs": runs}
    (out / "results.json").write_text(json.dumps(report, indent=1))
    return 1 if any("error" in run for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
