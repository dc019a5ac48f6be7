"""Command line: ``dexterity-nb drill CartPole-v1``, ``dexterity-nb evaluate DIR`` and ``dexterity-nb presets``.

Under ``mpirun -n K python -m dexterity_nb drill ...`` the drill runs on K processes (see
``dexterity_nb.common.mpi``): rank 0 prints, logs, saves and plots; an error on any rank ends them all.

Every flag left out takes its value from ``dexterity_nb.presets``; ``dexterity-nb presets ENV``
shows what that is.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

from dexterity_nb import presets

AGENT_FILE = "agent.npz"
PROGRESS_FILE = "progress.csv"

# The PPOAgent arguments that have a flag of the same name (dashes for underscores).
AGENT_FLAGS = ("horizon", "workers", "learning_rate", "discount", "lam", "clip", "c_entropy", "c_value",
               "gradient_clipping", "lr_schedule", "value_clip", "distribution")

# What the words "none" (--gradient-clipping, --value-clip) and "auto" (--distribution) parse to, made
# PPOAgent's None when the options are gathered: argparse's None already means "not given, use the preset".
OFF = object()

# The module each pip extra of pyproject.toml provides, to say whether it is installed here.
_EXTRA_MODULES = {"box2d": "Box2D"}


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
_seed = _flag_type(int, lambda value: 0 <= value <= 2**32 - 1, "an int in [0, 2**32 − 1]")


def _setting_type(name: str):
    """The flag type of the numeric ``PPOAgent`` setting ``name``, with the range the agent checks.

    The ranges come from the agent's own table, so a flag accepts exactly what ``PPOAgent`` does;
    a setting that may be ``None`` (off) takes the word ``none``.
    """
    from dexterity_nb.agent.ppo_agent import _SETTINGS  # gymnasium and NumPy only: TensorFlow loads in PPOAgent()

    low, high, low_inclusive, may_be_none = _SETTINGS[name]
    positive = low == 0 and not low_inclusive  # "a positive number", and a separate message above the top
    expected = "a positive number" if positive else f"a number in [{low:g}, {high:g}]"

    def convert(text):
        if may_be_none and text.strip().lower() == "none":
            return OFF
        value = float(text)
        return value if math.isfinite(value) else None

    def accept(value):
        return value is OFF or (low < value if positive else low <= value <= high)

    checked = _flag_type(convert, accept, expected + (" or none" if may_be_none else ""))

    def parse(text):
        value = checked(text)
        if value is not OFF and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g}, got {text}")
        return value

    return parse


def _model_name(text):
    """``--model``: the name of a model builder registered for every model type (simple, wide, deep)."""
    from dexterity_nb.models import MODEL_BUILDERS

    types = ("ffn", "rnn", "gru", "lstm")
    known = sorted(name for name in {name for name, _ in MODEL_BUILDERS} if all((name, kind) in MODEL_BUILDERS for kind in types))
    if text not in known:
        raise argparse.ArgumentTypeError(f"must be a registered model builder ({', '.join(known)}), got {text}")
    return text


def _distribution_name(text):
    """``--distribution``: a registered distribution name, or ``auto`` for the action space's default."""
    from dexterity_nb.common.policies import DISTRIBUTIONS

    if text.lower() == "auto":
        return OFF  # the action space's default, whatever the preset says
    if text.lower() not in DISTRIBUTIONS:
        raise argparse.ArgumentTypeError(f"must be auto or one of {', '.join(DISTRIBUTIONS)}, got {text}")
    return text.lower()


def _parser():
    parser = argparse.ArgumentParser(prog="dexterity-nb", description="Drill and evaluate PPO agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    drill = commands.add_parser("drill", help="train an agent and save it with its learning curve",
                                description="Every flag left out takes the task's preset (see: dexterity-nb presets ENV).")
    drill.add_argument("env", help="a gymnasium id, e.g. CartPole-v1")
    length = drill.add_mutually_exclusive_group()
    length.add_argument("--cycles", type=_positive_int, help="cycles to drill")
    length.add_argument("--frames", type=_positive_int,
                        help="frames (env steps) to drill, rounded up to whole cycles of horizon × workers frames")
    drill.add_argument("--epochs", type=_positive_int, help="passes over each cycle's experience")
    drill.add_argument("--batch-size", type=_positive_int, help="samples per gradient step")
    drill.add_argument("--horizon", type=_positive_int, help="steps each worker gathers per cycle")
    drill.add_argument("--workers", type=_positive_int, help="parallel environment copies")
    drill.add_argument("--learning-rate", type=_setting_type("learning_rate"), help="Adam's step size α")
    drill.add_argument("--lr-schedule", choices=("constant", "linear"),
                       help="constant, or linear from --learning-rate down towards 0 over the drill")
    drill.add_argument("--discount", type=_setting_type("discount"), help="γ, how much future rewards count")
    drill.add_argument("--lam", type=_setting_type("lam"), help="λ of GAE")
    drill.add_argument("--clip", type=_setting_type("clip"), help="ε of the clipped surrogate")
    drill.add_argument("--c-entropy", type=_setting_type("c_entropy"), help="weight of the entropy bonus")
    drill.add_argument("--c-value", type=_setting_type("c_value"), help="weight of the value loss")
    drill.add_argument("--gradient-clipping", type=_setting_type("gradient_clipping"),
                       help="largest global norm of the gradient, or none")
    drill.add_argument("--value-clip", type=_setting_type("value_clip"),
                       help="how far value predictions may move per cycle, or none (off)")
    drill.add_argument("--seed", type=_seed, default=None)
    drill.add_argument("--transformers", help='comma-separated: "state", "reward", "state,reward" or "none"')
    drill.add_argument("--mask-velocity", action="store_true",
                       help="drop the velocities from the observation, so that only a policy with memory can infer "
                            "them (the tasks of dexterity_nb.common.wrappers.VELOCITY_INDICES)")
    drill.add_argument("--model", type=_model_name, default="simple",
                       help="registered model builder name (default: simple)")
    drill.add_argument("--model-type", choices=("ffn", "rnn", "gru", "lstm"), default="ffn",
                       help="ffn (feed-forward, default) or a recurrent network that remembers: rnn, gru or lstm "
                            "(for tasks whose observation hides part of the state, e.g. with --mask-velocity)")
    drill.add_argument("--chunk-length", type=_positive_int,
                       help="recurrent model types only: steps per training sequence (default 16)")
    drill.add_argument("--distribution", type=_distribution_name,
                       help="categorical, gaussian, beta or auto (default: the preset's, else from the action space)")
    drill.add_argument("--gatherer", help="module:Class of a Gatherer subclass")
    drill.add_argument("--intrinsic", choices=("rnd", "counts"),
                       help="curiosity: add a novelty bonus to the reward, by Random Network Distillation (rnd) or by "
                            "counting visits on a grid (counts); for sparse rewards such as MountainCar-v0's")
    drill.add_argument("--intrinsic-weight", type=_flag_type(float, lambda value: math.isfinite(value) and value >= 0,
                                                               "a finite number ≥ 0"),
                       metavar="β", help="weight β of the curiosity bonus (default 1); needs --intrinsic")
    drill.add_argument("--out", help="output folder (default: runs/<env>-<time>); progress.csv is written there every cycle")
    drill.add_argument("--tensorboard", metavar="DIR", help="also log every cycle for TensorBoard in DIR")
    drill.add_argument("--target-return", type=float,
                       help="stop once the last 20 training episodes average this (default: the preset's; 0 = never)")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved agent")
    evaluate.add_argument("path", help="the folder written by drill, or the agent file")
    evaluate.add_argument("--episodes", type=_positive_int, default=10)
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the deterministic one "
                          "(the most likely for Categorical, the mean for Gaussian and Beta)")

    listing = commands.add_parser("presets", help="list the tasks with presets, or show one preset in full")
    listing.add_argument("env", nargs="?", help="show this task's preset (default: list them all)")
    return parser


def _check_output_folder(out: Path):
    """Raise if ``out`` cannot become a writable folder; it is made when the drill begins (progress.csv)."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"--out {out} cannot be a folder: {folder} is a file. Choose another --out.")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ValueError(f"--out {out} cannot be written: {folder} is not writable. Choose another --out.")
            return


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


# ---------------------------------------------------------------- presets: old and new schema alike
def frame_budget(preset: dict) -> int:
    """The frames a preset drills: its ``frames``, or (older presets) ``cycles × horizon × workers``."""
    if preset.get("frames") is not None:
        return int(preset["frames"])
    return int(preset["drill"]["cycles"]) * int(preset["agent"]["horizon"]) * int(preset["agent"]["workers"])


def cycles_for_frames(frames: int, frames_per_cycle: int) -> int:
    """⌈frames / frames_per_cycle⌉: whole cycles, never fewer frames than asked."""
    return -(-frames // frames_per_cycle)


def describe_rounding(env_id: str, frames: int, frames_per_cycle: int) -> str | None:
    """The line saying how ``frames`` became whole cycles, or ``None`` if they already were."""
    cycles = cycles_for_frames(frames, frames_per_cycle)
    if cycles * frames_per_cycle == frames:
        return None
    return (f"{env_id}: {frames:,} frames is {frames / frames_per_cycle:,.2f} cycles of {frames_per_cycle:,} frames; "
            f"drilling {cycles:,} cycles ({cycles * frames_per_cycle:,} frames).")


def extra_of(env_id: str, preset: dict | None = None) -> str | None:
    """The pip extra ``env_id`` needs: the preset's ``extra``, else guessed from gymnasium's entry point."""
    if preset is not None and "extra" in preset:
        return preset["extra"]
    import gymnasium

    entry_point = str(gymnasium.registry[env_id].entry_point).lower() if env_id in gymnasium.registry else ""
    return next((extra for extra in _EXTRA_MODULES if extra in entry_point), None)


def _extra_status(extra: str | None) -> str:
    if extra is None:
        return "none"
    module = _EXTRA_MODULES.get(extra)
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{extra} (not installed here: pip install \"dexterity_nb[{extra}]\", or pip install -e '.[{extra}]' in a checkout)"
    return f"{extra} (installed)" if module is not None else extra


# ---------------------------------------------------------------- drill
def _agent_options(arguments, preset: dict) -> dict:
    """The preset's PPOAgent arguments with every flag given on the command line in their place."""
    options = dict(preset["agent"])
    for name in AGENT_FLAGS:
        value = getattr(arguments, name)
        if value is None:
            continue
        options[name] = None if value is OFF or value == "constant" else value  # PPOAgent's word for off or constant
    return options


def _cycles_to_drill(arguments, preset: dict, agent_options: dict, report) -> int:
    """``--cycles``; else ``--frames`` or the preset's frame budget in whole cycles (``report`` says when rounded)."""
    if arguments.cycles is not None:
        return arguments.cycles
    if arguments.frames is None and preset.get("frames") is None and "cycles" in preset["drill"]:
        return int(preset["drill"]["cycles"])  # an older preset counted cycles
    frames = arguments.frames if arguments.frames is not None else frame_budget(preset)
    frames_per_cycle = agent_options["horizon"] * agent_options["workers"]
    line = describe_rounding(arguments.env, frames, frames_per_cycle)
    if line is not None:
        report(line)
    return cycles_for_frames(frames, frames_per_cycle)


def _loggers(arguments, out: Path) -> list:
    """``progress.csv`` in ``out`` and, with ``--tensorboard``, ``TensorBoard(DIR)``: built now, so a
    bad path fails before the drill (the loggers check their paths when built)."""
    from dexterity_nb.agent.callbacks import CSVLogger, TensorBoard

    loggers = [CSVLogger(out / PROGRESS_FILE)]  # it makes the folder when the drill begins
    if arguments.tensorboard is not None:
        try:
            loggers.append(TensorBoard(arguments.tensorboard))
        except ValueError as error:
            raise ValueError(f"--tensorboard: {error}") from None  # the flag the user typed, not the argument's name
    return loggers


def drill_command(arguments) -> int:
    from dexterity_nb.common.mpi import resolve_communicator
    from dexterity_nb.common.wrappers import check_env_id, make_env

    check_env_id(arguments.env)  # fail before TensorFlow loads
    if arguments.chunk_length is not None and arguments.model_type == "ffn":
        raise ValueError("--chunk-length is the training sequence length of recurrent networks; add --model-type gru "
                         "(or lstm, rnn), or drop --chunk-length.")
    if arguments.intrinsic_weight is not None and arguments.intrinsic is None:
        raise ValueError("--intrinsic-weight is the weight β of a curiosity bonus; add --intrinsic rnd (or counts), "
                         "or drop --intrinsic-weight.")
    is_root = resolve_communicator().is_root  # with MPI, rank 0 alone prints, logs and saves
    preset = presets.preset_for(arguments.env)
    transformers = preset["transformers"] if arguments.transformers is None else [
        name.strip() for name in arguments.transformers.split(",") if name.strip() and name.strip() != "none"
    ]
    if arguments.intrinsic == "counts" and any(name in ("state", "StateNormalizationTransformer") for name in transformers):
        raise ValueError(f"--intrinsic counts counts visits on a grid over {arguments.env}'s own observation bounds, but "
                         "state normalisation (the \"state\" transformer) changes the observations' scale. Add "
                         "--transformers reward (or none), or use --intrinsic rnd, which normalises for itself.")
    agent_options = _agent_options(arguments, preset)
    drill_options = dict(preset["drill"])
    for name in ("epochs", "batch_size"):
        if getattr(arguments, name) is not None:
            drill_options[name] = getattr(arguments, name)
    gatherer = _load_gatherer(arguments.gatherer) if arguments.gatherer else None
    out = Path(arguments.out or f"runs/{arguments.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_output_folder(out)  # now, not after the drill: a bad --out must not cost the trained agent
    # a missing Box2D, or a task whose velocities are unknown, shows here, before TensorFlow loads
    env = make_env(arguments.env, transformers=transformers, mask_velocity=arguments.mask_velocity)
    loggers = _loggers(arguments, out) if is_root else []  # before the agent: a bad path costs nothing
    cycles = _cycles_to_drill(arguments, preset, agent_options, report=print if is_root else (lambda line: None))

    # TensorFlow's start-up log lines are dropped where it is imported (common/quiet_import.py).
    from dexterity_nb.agent.callbacks import StopAtReturn
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.models import get_model_builder

    if arguments.chunk_length is not None:
        agent_options["chunk_length"] = arguments.chunk_length
    if arguments.intrinsic is not None:
        from dexterity_nb.agent.curiosity import resolve_intrinsic_reward

        agent_options["intrinsic"] = resolve_intrinsic_reward(arguments.intrinsic, arguments.intrinsic_weight)
    agent = PPOAgent(get_model_builder(arguments.model, arguments.model_type), env, seed=arguments.seed, **agent_options)
    if gatherer is not None:
        agent.assign_gatherer(gatherer)
    target = preset.get("target_return") if arguments.target_return is None else arguments.target_return
    stop = StopAtReturn(target) if target else None
    agent.drill(cycles, drill_options["epochs"], drill_options["batch_size"],
                callbacks=loggers + ([stop] if stop is not None else []))
    if stop is not None and stop.solved_at is not None:
        print(f"Solved: the last 20 episodes averaged ≥ {target:g} at cycle {stop.solved_at[0]} "
              f"({stop.solved_at[1]} frames).")
    if not is_root:
        return 0
    return _save_and_report(agent, arguments.env, out)


def _save_and_report(agent, env_id: str, out: Path) -> int:
    """Rank 0 after the drill: the agent, its learning curve and an evaluation, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    saved = agent.save(out / AGENT_FILE)
    figure_path = out / "learning_curve.png"
    from dexterity_nb.widgets.plots import plot_history

    figure = plot_history(agent, title=f"{env_id}: PPO")
    figure.savefig(figure_path, dpi=100)
    evaluation = agent.evaluate(10)
    (out / "evaluation.json").write_text(json.dumps({"returns": evaluation.returns.tolist(), "lengths": evaluation.lengths.tolist()}))
    print(evaluation)
    print(f"Saved the agent to {saved}, its learning curve to {figure_path} and its progress to {out / PROGRESS_FILE}.")
    print(f"Evaluate it again with: dexterity-nb evaluate {out}")
    return 0


# ---------------------------------------------------------------- evaluate
def evaluate_command(arguments) -> int:
    from gymnasium.error import DependencyNotInstalled

    from dexterity_nb.agent.checkpoint_schema import CheckpointError
    from dexterity_nb.agent.gather import Gatherer
    from dexterity_nb.agent.ppo_agent import PPOAgent

    # Evaluating never gathers nor drills, so neither the gatherer nor the learning-rate schedule
    # is used: passing stand-ins lets an agent saved with a custom gatherer or schedule (which only
    # its notebook could supply) be evaluated here. The file's names still resolve only from the
    # registries: a crafted file is refused all the same.
    try:
        agent = PPOAgent.load(arguments.path, gatherer=Gatherer, lr_schedule=_constant_rate)
    except CheckpointError as error:
        if isinstance(error.__cause__, DependencyNotInstalled):
            raise error.__cause__ from None  # the file is fine; a package is missing here: say only which
        raise
    print(agent.evaluate(arguments.episodes, deterministic=not arguments.stochastic))
    return 0


def _constant_rate(progress: float) -> float:
    """The stand-in learning-rate schedule of ``evaluate`` (never called: evaluation does not drill)."""
    return 1.0


# ---------------------------------------------------------------- presets
def presets_command(arguments) -> int:
    print(preset_table() if arguments.env is None else describe_preset(arguments.env))
    return 0


def preset_table() -> str:
    """One line per task with a preset: its frame budget, target, extra and source."""
    rows = [("task", "frames", "target", "extra", "source")]
    for env_id, preset in presets.PRESETS.items():
        target = preset.get("target_return")
        rows.append((env_id, f"{frame_budget(preset):,}", "-" if target is None else f"{target:g}",
                     extra_of(env_id, preset) or "-", preset.get("source", "-")))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths)), row[4]]).rstrip() for row in rows]
    return "\n".join([*lines, "", "Any other gymnasium id drills with the default preset. "
                      "Show one in full with: dexterity-nb presets ENV"])


def describe_preset(env_id: str) -> str:
    """Every setting of ``env_id``'s preset, as the drill would use it; a ``ValueError`` naming close matches if unknown."""
    import gymnasium

    if env_id in presets.PRESETS:
        preset, heading = presets.PRESETS[env_id], env_id
    elif env_id in gymnasium.registry:
        preset, heading = presets.preset_for(env_id), f"{env_id} has no preset of its own; drill uses the default"
    else:
        suggestions = (difflib.get_close_matches(env_id, list(presets.PRESETS), n=3, cutoff=0.6)
                       or difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6))
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        raise ValueError(f"No preset for {env_id!r}, and gymnasium has no such id.{hint} "
                         "`dexterity-nb presets` lists the tasks with presets.")
    agent, drill = preset["agent"], preset["drill"]
    frames, frames_per_cycle = frame_budget(preset), agent["horizon"] * agent["workers"]
    cycles = cycles_for_frames(frames, frames_per_cycle)
    target = preset.get("target_return")
    # The agent's settings in the order of the flags, then any the CLI has no flag for.
    settings = {name: agent[name] for name in AGENT_FLAGS if name in agent}
    settings.update({name: value for name, value in agent.items() if name not in settings})
    settings.update({name: value for name, value in drill.items() if name != "cycles"})
    lines = [
        f"{heading}:",
        f"  frames        {frames:,}: {cycles:,} cycles of {frames_per_cycle:,} frames "
        f"({agent['horizon']:,} steps × {agent['workers']} workers)",
        f"  target        {'none: every cycle runs' if target is None else f'{target:g} (the last 20 training episodes)'}",
        f"  extra         {_extra_status(extra_of(env_id, presets.PRESETS.get(env_id)))}",
        f"  source        {preset.get('source', '-')}",
        f"  transformers  {','.join(preset['transformers']) or 'none'}",
    ]
    lines += [f"  {'--' + name.replace('_', '-'):<20} {_shown(name, value)}" for name, value in settings.items()]
    return "\n".join(lines)


def _shown(name: str, value) -> str:
    """A preset's value as its flag would take it (PPOAgent's None is "constant" or "auto" for some)."""
    if value is None:
        return {"lr_schedule": "constant", "distribution": "auto"}.get(name, "none")
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- entry point
COMMANDS = {"drill": drill_command, "evaluate": evaluate_command, "presets": presets_command}


def main(argv=None) -> int:
    arguments = _parser().parse_args(argv)
    from gymnasium.error import DependencyNotInstalled

    from dexterity_nb.common.mpi import launched_by_mpirun, run_or_abort

    # Errors the user fixes from the message alone (a wrong argument, a package to install): one line, no traceback.
    brief_errors = (ValueError, TypeError, DependencyNotInstalled)
    command = COMMANDS[arguments.command]
    if launched_by_mpirun():  # an error on one rank must end every rank (not hang them), shown once
        return run_or_abort(command, arguments, brief_errors=brief_errors, program="dexterity-nb")
    try:
        return command(arguments)
    except brief_errors as error:
        print(f"dexterity-nb: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `dexterity-nb presets | head` closed the pipe: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return 1
