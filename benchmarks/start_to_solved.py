"""From process start to a solved CartPole-v1 (issue 14): our CLI against Stable-Baselines3.

What a learner waits for: ``dexterity-nb drill CartPole-v1`` is launched, and the clock stops when it
prints its "Solved" line (the last 20 training episodes average ≥ 475, the preset's target); imports,
the agent's construction and its first tracing are all inside. The other side is a process that
imports Stable-Baselines3 and trains PPO with the RL Zoo settings (``benchmarks.sb3_side.solve`` with
``announce=True``: same settings, same rule) and prints "solved" at that moment. Both get the thread
limits of ``benchmarks.limits``; seeds alternate SB3, ours, SB3, ours, ...

Our CLI runs with the defaults a learner gets (the CartPole-v1 preset, no TensorBoard) plus
``--seed S`` and ``--out`` in a temporary folder that is removed afterwards; it is terminated once it
has printed "Solved" (what follows is saving, the learning-curve plot and an evaluation). A side
that never prints its line within its budget counts as infinitely slow.

Used by ``python -m benchmarks.run`` (row 8); ``quick`` gives both sides a budget of 1,024 frames and a
target return of 10, so that they print their line at once and only the machinery is checked.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import SOLVE_THRESHOLD, ZOO, median
from benchmarks.limits import thread_environment
from benchmarks.sb3_side import SOLVED_LINE

REPO_ROOT = Path(__file__).resolve().parent.parent
OUR_LINE = "Solved"  # dexterity_nb.cli.drill_command: "Solved: the last 20 episodes averaged ≥ ..."
SB3_LINE = SOLVED_LINE  # what benchmarks.sb3_side.solve(announce=True) prints
QUICK_TARGET = 10.0  # any 20 random CartPole episodes average more: the line comes after the first cycle
QUICK_FRAMES = 1024  # two cycles of the preset (64 × 8: ~20 episodes each at first), four of the Zoo settings
TARGET_RATIO = 0.6


def _process_cpu_seconds(pid: int):
    """User + system CPU seconds of a running process so far (Linux ``/proc``), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def time_to_line(command: list, line_start: str, cwd, environment: dict, log_path: Path, timeout: float,
                 stop_at_line: bool) -> dict:
    """Launch ``command``; seconds from just before the launch until a stdout line starts with ``line_start``.

    Stdout is read line by line (the child runs unbuffered); stderr goes straight to the log. With
    ``stop_at_line`` the process is terminated once the line came, else it is waited for. Returns
    ``seconds`` (None if the line never came), ``cpu_seconds`` of the child at that moment (Linux),
    ``exit_code`` and ``total_seconds``.
    """
    environment = {**environment, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        log.write(f"$ {' '.join(map(str, command))}\n--- stdout and stderr\n")
        log.flush()
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=log,
                                   text=True, bufsize=1)
        seconds = cpu_seconds = None
        watchdog = threading.Timer(timeout, process.kill)  # a silent, stuck child ends the stdout loop too
        watchdog.start()
        try:
            for line in process.stdout:
                if seconds is None and line.startswith(line_start):
                    seconds = time.perf_counter() - start
                    cpu_seconds = _process_cpu_seconds(process.pid)
                    log.write(line)
                    if stop_at_line:
                        break
                else:
                    log.write(line)
        finally:
            watchdog.cancel()
            if time.perf_counter() - start > timeout:
                log.write(f"\n--- stopped after the time limit of {timeout:.0f} s\n")
            if process.poll() is None:
                process.terminate()
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            process.stdout.close()
        total = time.perf_counter() - start
        log.write(f"\n--- exit {code}, line after {seconds} s, {total:.1f} s in all\n")
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "exit_code": code, "total_seconds": total}


def our_command(seed: int, out: str, quick: bool) -> list:
    command = [sys.executable, "-m", "dexterity_nb", "drill", "CartPole-v1", "--seed", str(seed), "--out", out]
    if quick:
        command += ["--frames", str(QUICK_FRAMES), "--target-return", str(QUICK_TARGET)]
    return command


def sb3_command(seed: int, quick: bool) -> list:
    import json

    kwargs = dict(seed=seed, announce=True)
    if quick:
        kwargs.update(budget_steps=QUICK_FRAMES, threshold=QUICK_TARGET)
    return [sys.executable, "-m", "benchmarks.worker", "sb3", "solve", json.dumps(kwargs)]


def measure(seeds: list, quick: bool, threads: int, log_dir: Path, run_sb3: bool = True, run_ours: bool = True,
            timeout: float = 900, log=print) -> dict:
    """Alternate SB3 and our CLI over ``seeds``; per-seed figures and the medians (unsolved = ∞)."""
    environment = {**os.environ, **thread_environment(threads),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    runs = {"sb3": [], "ours": []}
    for seed in seeds:
        if run_sb3:
            log(f"  start-sb3-seed{seed} ...", end="", flush=True)
            result = time_to_line(sb3_command(seed, quick), SB3_LINE, REPO_ROOT, environment,
                                  log_dir / f"start-sb3-seed{seed}.log", timeout, stop_at_line=False)
            runs["sb3"].append(dict(seed=seed, **result))
            log(f" {_seconds_text(result)}")
        if run_ours:
            log(f"  start-ours-seed{seed} ...", end="", flush=True)
            with tempfile.TemporaryDirectory(prefix="dexterity-cli-") as folder:
                result = time_to_line(our_command(seed, str(Path(folder) / "run"), quick), OUR_LINE, folder,
                                      environment, log_dir / f"start-ours-seed{seed}.log", timeout, stop_at_line=True)
            runs["ours"].append(dict(seed=seed, **result))
            log(f" {_seconds_text(result)}")
    summary = {"runs": runs, "quick": quick,
               "threshold": QUICK_TARGET if quick else SOLVE_THRESHOLD,
               "sb3_budget_steps": QUICK_FRAMES if quick else ZOO["n_timesteps"]}
    for side, side_runs in runs.items():
        if side_runs:
            summary[side] = {
                "median_seconds": median([run["seconds"] if run["seconds"] is not None else float("inf")
                                          for run in side_runs]),
                "median_cpu_seconds": median([run["cpu_seconds"] if run["cpu_seconds"] is not None else float("inf")
                                              for run in side_runs]),
                "solved": sum(run["seconds"] is not None for run in side_runs), "runs": len(side_runs)}
    return summary


def _seconds_text(result: dict) -> str:
    if result["seconds"] is None:
        return f"no solve line (exit {result['exit_code']}, {result['total_seconds']:.1f} s)"
    return f"{result['seconds']:.1f} s to the solve line"
