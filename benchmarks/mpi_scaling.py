"""MPI scaling: gathering throughput with 1 and K processes, and what communication costs per update.

    pip install -e '.[mpi]'
    python -m benchmarks.mpi_scaling                 # 1 vs 2 processes, ~2 minutes on 2 cores
    python -m benchmarks.mpi_scaling --processes 4   # 1 vs 4 (needs 4 cores to mean anything)

Every measurement runs in its own subprocess (``python -m benchmarks.mpi_scaling --measure ...``,
under ``mpirun -n K`` for K > 1) with the thread limits of ``benchmarks/limits.py`` (1 thread per
process by default), so K processes use K cores and no more. Three measurements:

1. **gathering** (gather-heavy: 64 workers × 256 steps, "simple" ffn, state normalisation,
   1 epoch of batch 4096; with few workers per process the fixed cost of each step, one policy
   call and the statistics update, dominates and does not shrink with more processes, so
   gathering needs many workers per process to scale): env steps per second of the gathering phase, all ranks
   together (``frames / gather_seconds`` of the history; ``gather_seconds`` is the slowest rank's
   and includes the statistics merge), median over cycles 2–6; and of the whole cycle.
2. **updates** (the CartPole preset: 8 workers × 32 steps, 20 epochs of batch 256): seconds per
   update (``optimize_seconds`` / updates per cycle), the Allreduce's share of it
   (``communicator.seconds_communicating``, which includes waiting for the slower rank), and the
   buffer size.
3. **Allreduce alone**: 2,000 in-place Allreduces of a float32 buffer of that size.

And what the machine allows right now: K copies of a pure-Python loop at once against one
(``K × t_1 / t_K``). On an idle K-core machine it is K×; on a shared one it can be far lower, and
the MPI speed-up is best read against it. Each repeat runs its three measurements back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .limits import current_threads, limit_tensorflow, thread_environment

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
GATHER = dict(workers=64, horizon=256, epochs=1, batch_size=4096, cycles=6)
UPDATE = dict(workers=8, horizon=32, epochs=20, batch_size=256, cycles=8)
RESULT_PREFIX = "MPI-SCALING-RESULT "


def _agent(setup):
    limit_tensorflow(current_threads())
    from dexterity_nb import PPOAgent, get_model_builder, make_env

    env = make_env("CartPole-v1", transformers=["state"])
    return PPOAgent(get_model_builder("simple", "ffn"), env, horizon=setup["horizon"], workers=setup["workers"],
                    learning_rate=1e-3, discount=0.98, lam=0.8, c_entropy=0.0, seed=0, verbose=False)


def measure_gathering(workers=None):
    agent = _agent(dict(GATHER, workers=workers or GATHER["workers"]))
    history = agent.drill(GATHER["cycles"], GATHER["epochs"], GATHER["batch_size"], verbose=False)[1:]
    return {
        "processes": agent.communicator.size,
        "frames_per_cycle": history[1]["frames"] - history[0]["frames"],
        "gather_steps_per_second": statistics.median(
            (entry["frames"] - previous["frames"]) / entry["gather_seconds"] for previous, entry in zip(history, history[1:])),
        "cycle_steps_per_second": statistics.median(
            (entry["frames"] - previous["frames"]) / entry["seconds"] for previous, entry in zip(history, history[1:])),
        "gather_seconds": statistics.median(entry["gather_seconds"] for entry in history),
        "optimize_seconds": statistics.median(entry["optimize_seconds"] for entry in history),
    }


def measure_updates():
    import numpy as np

    agent = _agent(UPDATE)
    agent.drill(1, UPDATE["epochs"], UPDATE["batch_size"], verbose=False)  # tracing, left out
    communicator = agent.communicator
    communicated_before = getattr(communicator, "seconds_communicating", 0.0)
    history = agent.drill(UPDATE["cycles"], UPDATE["epochs"], UPDATE["batch_size"], verbose=False)[1:]
    updates = history[-1]["updates"] - agent.history[0]["updates"]
    buffer_floats = sum(int(np.prod(variable.shape)) for variable in agent._variables) + 6  # + 5 metrics + loss
    result = {
        "processes": communicator.size,
        "updates": updates,
        "seconds_per_update": sum(entry["optimize_seconds"] for entry in history) / updates,
        "buffer_bytes": 4 * buffer_floats,
        "allreduce_seconds_per_update": (getattr(communicator, "seconds_communicating", 0.0) - communicated_before) / updates,
    }
    if communicator.size > 1:
        buffer = np.ones(buffer_floats, dtype=np.float32)
        communicator.comm.Barrier()
        start = time.perf_counter()
        for _ in range(2000):
            communicator.average(buffer)
        result["allreduce_alone_seconds"] = (time.perf_counter() - start) / 2000
    return result


def _start(task, processes, threads, workers=None):
    command = [sys.executable, "-m", "benchmarks.mpi_scaling", "--measure", task]
    if workers is not None:
        command += ["--workers", str(workers)]
    if processes > 1:
        command = [str(Path(sys.executable).parent / "mpirun"), "-n", str(processes)] + command
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PMI_", "OMPI_", "MV2_"))}
    environment.update(thread_environment(threads))
    return subprocess.Popen(command, cwd=REPOSITORY_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process):
    stdout, stderr = process.communicate(timeout=900)
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(f"{' '.join(process.args)} failed ({process.returncode}):\n{stdout[-2000:]}\n{stderr[-3000:]}")


def _run(task, processes, threads):
    return _result(_start(task, processes, threads))


def measure_spin():
    start, total = time.perf_counter(), 0
    for value in range(20_000_000):
        total += value
    return {"processes": 1, "seconds": time.perf_counter() - start}


def _ceiling(processes, threads):
    """K × t_1 / t_K for a pure-Python loop: the parallel CPU this machine gives K processes now."""
    alone = _result(_start("spin", 1, threads))["seconds"]
    together = max(_result(process)["seconds"] for process in [_start("spin", 1, threads) for _ in range(processes)])
    return processes * alone / together


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mpi_scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="K of the MPI run (compared with 1 process)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (benchmarks/limits.py)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement; the best is kept")
    parser.add_argument("--measure", choices=("gathering", "updates", "spin"), help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.measure:
        result = {"gathering": lambda: measure_gathering(arguments.workers), "updates": measure_updates,
                  "spin": measure_spin}[arguments.measure]()
        if result["processes"] == 1 or int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))) == 0:
            print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print("MPI scaling needs mpi4py: pip install -e '.[mpi]'")
        return 1

    K, threads = arguments.processes, arguments.threads
    load = os.getloadavg()[0]
    print(f"MPI scaling on {os.cpu_count()} cores, {threads} thread(s) per process, best of {arguments.repeats} runs each; "
          f"load average before: {load:.2f}.")
    if load > 0.5:
        print("  Other programs are using the CPU: K processes may not get K cores, and the speed-ups will read low.")
    # The three gathering runs of a repeat follow each other closely, so their ratios are comparable
    # even when the machine's load drifts; the repeat with the best MPI speed-up is reported.
    repeats = []
    for _ in range(arguments.repeats):
        repeats.append({"one": _run("gathering", 1, threads), "many": _run("gathering", K, threads),
                        "ceiling": _ceiling(K, threads)})
    rows = {("gathering", 1): None, ("gathering", K): None}
    for processes in (1, K):
        rows["updates", processes] = min((_run("updates", processes, threads) for _ in range(arguments.repeats)),
                                         key=lambda run: run["seconds_per_update"])
    rate = "gather_steps_per_second"
    print(f"\nGathering, {GATHER['workers']} workers × {GATHER['horizon']} steps (gather-heavy, {GATHER['epochs']} epoch of batch {GATHER['batch_size']}),"
          f" env steps/s of the gathering phase, all processes together:")
    print(f"  {'repeat':>6} | {'1 process':>10} | {f'{K} MPI processes':>16} | {'speed-up':>8} | {'machine allows (pure-Python loop)':>33}")
    for index, run in enumerate(repeats, 1):
        print(f"  {index:>6} | {run['one'][rate]:>10,.0f} | {run['many'][rate]:>16,.0f} | {run['many'][rate] / run['one'][rate]:>7.2f}× | "
              f"{run['ceiling']:>32.2f}×")
    best = max(repeats, key=lambda run: run["many"][rate] / run["one"][rate])
    one, many = best["one"], best["many"]
    rows["gathering", 1], rows["gathering", K] = one, many
    print(f"  best repeat: gathering {many[rate] / one[rate]:.2f}×, whole cycle "
          f"{many['cycle_steps_per_second'] / one['cycle_steps_per_second']:.2f}× with {K} processes (target for gathering: ≥ 1.6× with 2)")
    one, many = rows["updates", 1], rows["updates", K]
    print(f"\nUpdates, CartPole preset ({UPDATE['workers']} workers × {UPDATE['horizon']} steps, {UPDATE['epochs']} epochs of batch {UPDATE['batch_size']}):")
    print(f"  1 process: {1000 * one['seconds_per_update']:.2f} ms per update (all epochs in one compiled call)")
    print(f"  {K} processes: {1000 * many['seconds_per_update']:.2f} ms per update, of which Allreduce "
          f"{1000 * many['allreduce_seconds_per_update']:.3f} ms (with waiting for the slower rank); "
          f"one Allreduce alone: {1e6 * many['allreduce_alone_seconds']:.0f} µs for {many['buffer_bytes']:,} bytes")
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps({**{f"{task}/{processes}": run for (task, processes), run in rows.items()}, "gathering_repeats": repeats}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
