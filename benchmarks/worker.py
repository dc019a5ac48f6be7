"""Entry point of one measuring subprocess: ``python -m benchmarks.worker SIDE TASK KWARGS_JSON``.

SIDE is ``sb3``, ``ours`` or ``zoo-ours``; TASK names a function in ``benchmarks.sb3_side``,
``benchmarks.our_side`` or ``benchmarks.zoo_ours``; KWARGS_JSON its keyword arguments. The result is printed as one
line starting with ``RESULT_MARKER`` so the orchestrator can find it among library chatter.
The parent sets the thread-limit environment variables (`benchmarks.limits`) before start.
"""

import importlib
import json
import sys

RESULT_MARKER = "BENCHMARK-RESULT "
SIDES = {"sb3": "benchmarks.sb3_side", "ours": "benchmarks.our_side", "zoo-ours": "benchmarks.zoo_ours"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in SIDES:
        print(f"usage: python -m benchmarks.worker {{{'|'.join(SIDES)}}} TASK KWARGS_JSON, "
              f"got {argv}", file=sys.stderr)
        return 2
    side, task, kwargs = argv[0], argv[1], json.loads(argv[2])
    module = importlib.import_module(SIDES[side])
    result = getattr(module, task)(**kwargs)
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
