"""Command line: ``dexterity-nb drill CartPole-v1`` and ``dexterity-nb evaluate DIR``.

Under ``mpirun -n K python -m dexterity_nb drill ...`` the drill runs on K processes (see
``dexterity_nb.common.mpi``): rank 0 prints, saves and plots; an error on any rank ends them all.

Every flag left out takes its value from ``dexterity_nb.presets``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from dexterity_nb.presets import preset_for

AGENT_FILE = "agent.npz"


# Flag types: argparse names the flag in the message and stops before anything is loaded.
def _flag_type(convert, accept, expected: str):
    """An argparse ``type``: ``convert(text)``, refused unless ``accept(value)``."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value

    return parse


_positive_int = _flag_type(int, lambda value: value > 0, "a positive int")
_positive_number = _flag_type(float, lambda value: 0 < value < math.inf, "a positive number")
_seed = _flag_type(int, lambda value: 0 <= value <= 2**32 - 1, "an int in [0, 2**32 − 1]")


def _check_output_folder(out: Path):
    """Raise if ``out`` cannot become a writable folder; it is created only when the agent is saved."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"--out {out} cannot be a folder: {folder} is a file. Choose another --out.")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ValueError(f"--out {out} cannot be written: {folder} is not writable. Choose another --out.")
            return


def _parser():
    parser = argparse.ArgumentParser(prog="dexterity-nb", description="Drill and evaluate PPO agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    drill = commands.add_parser("drill", help="train an agent and save it with its learning curve")
    drill.add_argument("env", help="a gymnasium id, e.g. CartPole-v1")
    drill.add_argument("--cycles", type=_positive_int, help="cycles to drill")
    drill.add_argument("--epochs", type=_positive_int, help="passes over each cycle's experience")
    drill.add_argument("--batch-size", type=_positive_int, help="samples per gradient step")
    drill.add_argument("--horizon", type=_positive_int, help="steps each worker gathers per cycle")
    drill.add_argument("--workers", type=_positive_int, help="parallel environment copies")
    drill.add_argument("--learning-rate", type=_positive_number)
    drill.add_argument("--seed", type=_seed, default=None)
    drill.add_argument("--transformers", help='comma-separated: "state", "reward", "state,reward" or "none"')
    drill.add_argument("--model", default="simple", help="registered model builder name (default: simple)")
    drill.add_argument("--distribution", default=None, help="categorical, gaussian or beta (default: from the action space)")
    drill.add_argument("--gatherer", help="module:Class of a Gatherer subclass")
    drill.add_argument("--out", help="output folder (default: runs/<env>-<time>)")
    drill.add_argument("--target-return", type=float,
                       help="stop once the last 20 training episodes average this (default: the preset's; 0 = never)")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved agent")
    evaluate.add_argument("path", help="the folder written by drill, or the agent file")
    evaluate.add_argument("--episodes", type=_positive_int, default=10)
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the most likely")
    return parser


def _load_gatherer(spec):
    """Import the ``module:Class`` of ``--gatherer``: the user's own command line, never a file's words."""
    import importlib

    from dexterity_nb.agent.gather import check_gatherer_class

    module_name, _, qualname = spec.partition(":")
    if not module_name or not qualname:
        raise SystemExit(f"--gatherer must look like module:Class, got {spec!r}.")
    sys.path.insert(0, os.getcwd())  # a module next to where the command runs
    try:
        target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"--gatherer {spec!r} cannot be imported ({error}); check the module path, "
                         "and run the command from the folder that holds the module.") from error
    return check_gatherer_class(target)


def drill_command(arguments) -> int:
    from dexterity_nb.common.wrappers import check_env_id, make_env

    check_env_id(arguments.env)  # fail before TensorFlow loads
    preset = preset_for(arguments.env)
    transformers = preset["transformers"] if arguments.transformers is None else [
        name.strip() for name in arguments.transformers.split(",") if name.strip() and name.strip() != "none"
    ]
    agent_options = dict(preset["agent"])
    for name in ("horizon", "workers", "learning_rate"):
        if getattr(arguments, name) is not None:
            agent_options[name] = getattr(arguments, name)
    drill_options = dict(preset["drill"])
    for name in ("cycles", "epochs", "batch_size"):
        if getattr(arguments, name) is not None:
            drill_options[name] = getattr(arguments, name)
    gatherer = _load_gatherer(arguments.gatherer) if arguments.gatherer else None
    out = Path(arguments.out or f"runs/{arguments.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_output_folder(out)  # now, not after the drill: a bad --out must not cost the trained agent
    env = make_env(arguments.env, transformers=transformers)  # a missing Box2D shows here, before TensorFlow loads

    # TensorFlow's start-up log lines are dropped where it is imported (common/quiet_import.py).
    from dexterity_nb.agent.callbacks import StopAtReturn
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.models import get_model_builder

    agent = PPOAgent(get_model_builder(arguments.model, "ffn"), env, seed=arguments.seed,
                     distribution=arguments.distribution, **agent_options)
    if gatherer is not None:
        agent.assign_gatherer(gatherer)
    target = preset.get("target_return") if arguments.target_return is None else arguments.target_return
    callbacks = [StopAtReturn(target)] if target else []
    agent.drill(drill_options["cycles"], drill_options["epochs"], drill_options["batch_size"], callbacks=callbacks)
    if callbacks and callbacks[0].solved_at is not None:
        print(f"Solved: the last 20 episodes averaged ≥ {target:g} at cycle {callbacks[0].solved_at[0]} "
              f"({callbacks[0].solved_at[1]} frames).")
    if not agent.communicator.is_root:
        return 0  # with MPI, rank 0 saves, plots and evaluates
    out.mkdir(parents=True, exist_ok=True)
    saved = agent.save(out / AGENT_FILE)
    figure_path = out / "learning_curve.png"
    from dexterity_nb.widgets.plots import plot_history

    figure = plot_history(agent.history, title=f"{arguments.env}: PPO")
    figure.savefig(figure_path, dpi=100)
    evaluation = agent.evaluate(10)
    (out / "evaluation.json").write_text(json.dumps({"returns": evaluation.returns.tolist(), "lengths": evaluation.lengths.tolist()}))
    print(evaluation)
    print(f"Saved the agent to {saved} and its learning curve to {figure_path}.")
    print(f"Evaluate it again with: dexterity-nb evaluate {out}")
    return 0


def evaluate_command(arguments) -> int:
    from dexterity_nb.agent.gather import Gatherer
    from dexterity_nb.agent.ppo_agent import PPOAgent

    # Evaluating never gathers nor drills, so neither the gatherer nor the learning-rate schedule
    # is used: passing stand-ins lets an agent saved with a custom gatherer or schedule (which only
    # its notebook could supply) be evaluated here. The file's names still resolve only from the
    # registries: a crafted file is refused all the same.
    agent = PPOAgent.load(arguments.path, gatherer=Gatherer, lr_schedule=_constant_rate)
    print(agent.evaluate(arguments.episodes, deterministic=not arguments.stochastic))
    return 0


def _constant_rate(progress: float) -> float:
    """The stand-in learning-rate schedule of ``evaluate`` (never called: evaluation does not drill)."""
    return 1.0


def main(argv=None) -> int:
    arguments = _parser().parse_args(argv)
    from gymnasium.error import DependencyNotInstalled

    from dexterity_nb.common.mpi import launched_by_mpirun, run_or_abort

    # Errors the user fixes from the message alone (a wrong argument, a package to install): one line, no traceback.
    brief_errors = (ValueError, TypeError, DependencyNotInstalled)
    if launched_by_mpirun():  # an error on one rank must end every rank (not hang them), shown once
        command = drill_command if arguments.command == "drill" else evaluate_command
        return run_or_abort(command, arguments, brief_errors=brief_errors, program="dexterity-nb")
    try:
        if arguments.command == "drill":
            return drill_command(arguments)
        return evaluate_command(arguments)
    except brief_errors as error:
        print(f"dexterity-nb: error: {error}", file=sys.stderr)
        return 2
