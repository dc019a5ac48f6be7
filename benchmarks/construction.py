"""What building an agent costs (issue 14): ``python -m benchmarks.construction [--quick] [--out DIR]``.

In a fresh process (``python -m benchmarks.construction --child``), with TensorFlow imported
before the clock starts:

1. **first build**: the first ``PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1"))``
   of the process (it traces the compiled functions of its architecture);
2. **later builds**: the median of the next ``--builds`` agents of the same architecture (they
   reuse those traced functions, see ``dexterity_nb/agent/update.py``);
3. **memory per agent**: the growth of the resident set over ``--discarded`` agents built and
   dropped one after the other, divided by their number (after ``gc.collect()``);
4. **traces**: how often the compiled update was traced over all of them (1 = once);
5. **retracing warnings**: the child first removes the package's ``OwnRetracingFilter`` from
   TensorFlow's logger (``dexterity_nb/common/quiet_import.py``), so every "triggered tf.function
   retracing" warning TensorFlow gives reaches stderr; the parent counts them there.

Targets of issue 14: later builds ≤ 0.25 s, first build ≤ 0.6 s, ≤ 2 MiB per discarded agent and no
retracing. ``--quick`` builds few agents to check the machinery (CI); it claims nothing.
"""

import argparse
import datetime
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/construction.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.limits import thread_environment  # noqa: E402
from benchmarks.worker import RESULT_MARKER  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"first_build_seconds": 0.6, "later_build_seconds": 0.25, "mib_per_discarded_agent": 2.0, "traces": 1,
           "retracing_warnings": 0}
RETRACING_WARNING = "triggered tf.function retracing"


def count_retracing_warnings(stderr: str) -> int:
    """How many of TensorFlow's "triggered tf.function retracing" warnings ``stderr`` holds."""
    return stderr.count(RETRACING_WARNING)


def retracing_functions(stderr: str) -> list:
    """The functions those warnings name, without their addresses, each once (in order of appearance).

    TensorFlow writes "5 out of the last 5 calls to <function NumpyForward.refresh.<locals>.<lambda> at
    0x7f...> triggered tf.function retracing. ..."; this returns ["NumpyForward.refresh.<locals>.<lambda>"].
    """
    names = []
    for line in stderr.splitlines():
        if RETRACING_WARNING in line and "<function " in line:
            named = line.split("<function ", 1)[1]
            name = named.split(" at 0x", 1)[0] if " at 0x" in named else named.split("> triggered", 1)[0]
            if name not in names:
                names.append(name)
    return names


def unfilter_retracing_warnings(tensorflow) -> int:
    """Remove the package's filter of its own retracing warnings from TensorFlow's logger; how many were removed.

    The filter exists so that a learner does not see TensorFlow's advice about functions the package
    traces once per agent; here every retracing is what is being measured.
    """
    logger = tensorflow.get_logger()
    own = [found for found in logger.filters if type(found).__name__ == "OwnRetracingFilter"]
    for found in own:
        logger.removeFilter(found)
    return len(own)


def resident_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(builds: int, discarded: int) -> dict:
    """The measurements, in this process (which must not have built an agent yet)."""
    from dexterity_nb.common.quiet_import import keras  # noqa: F401  (TensorFlow's import is not a build)
    from dexterity_nb.common.quiet_import import tensorflow
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    filters_removed = unfilter_retracing_warnings(tensorflow)

    def build():
        return PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1"), verbose=False)

    start = time.perf_counter()
    first = build()
    first_seconds = time.perf_counter() - start
    later = []
    for _ in range(builds):
        start = time.perf_counter()
        build()
        later.append(time.perf_counter() - start)
    gc.collect()
    before = resident_mib()
    for _ in range(discarded):
        agent = build()
        del agent
    gc.collect()
    after = resident_mib()
    return {"first_build_seconds": first_seconds, "later_build_seconds": statistics.median(later),
            "later_builds": later, "mib_per_discarded_agent": (after - before) / discarded,
            "resident_mib_before_after": [before, after], "traces": first.trace_count,
            "retracing_filters_removed": filters_removed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--discarded", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="3 later builds, 3 discarded agents: the machinery only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/construction")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    builds, discarded = (3, 3) if arguments.quick else (arguments.builds, arguments.discarded)
    if arguments.child:
        sys.stdout.write("\n" + RESULT_MARKER + json.dumps(child(builds, discarded)) + "\n")
        return 0
    command = [sys.executable, "-m", "benchmarks.construction", "--child", "--builds", str(builds),
               "--discarded", str(discarded)]
    environment = {**os.environ, **thread_environment(arguments.threads),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        print(completed.stdout + completed.stderr)
        return 1
    marked = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    result = json.loads(marked[-1][len(RESULT_MARKER):])
    result["retracing_warnings"] = count_retracing_warnings(completed.stderr)
    result["retracing_functions"] = retracing_functions(completed.stderr)
    rows = [("first build in a process, s", result["first_build_seconds"], TARGETS["first_build_seconds"]),
            ("later build (median of %d), s" % builds, result["later_build_seconds"], TARGETS["later_build_seconds"]),
            ("resident memory per discarded agent (%d), MiB" % discarded, result["mib_per_discarded_agent"],
             TARGETS["mib_per_discarded_agent"]),
            ("traces of the compiled update, all agents", result["traces"], TARGETS["traces"]),
            ("'triggered tf.function retracing' warnings", result["retracing_warnings"],
             TARGETS["retracing_warnings"])]
    print(f"Building PPOAgent(get_model_builder('simple', 'ffn'), make_env('CartPole-v1')), {arguments.threads} thread(s)"
          f"{' (--quick: machinery only)' if arguments.quick else ''}")
    print(f"{'what':<48}  {'measured':>9}  {'target':>7}")
    for name, value, target in rows:
        verdict = "" if arguments.quick else ("  ✓" if value <= target else "  ✗")
        print(f"{name:<48}  {value:>9.3f}  {'≤ ' + format(target, 'g'):>7}{verdict}")
    if result["retracing_functions"]:
        print(f"retracing warnings named: {', '.join(result['retracing_functions'])}")
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({
        "quick": arguments.quick, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "threads": arguments.threads, "load_average": os.getloadavg(), "targets": TARGETS, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
