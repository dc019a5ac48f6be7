"""Mistakes a new learner makes, each met by an error that says what came, what was expected and
what to do, raised before any work is lost."""

import os
import random
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

from dexterity_nb import cli
from dexterity_nb.agent.gather import Gatherer, GathererError
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.transformers import StateNormalizationTransformer, resolve_transformer
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import MODEL_BUILDERS, build_feed_forward, get_model_builder, register_model_builder
from dexterity_nb.common.policies import Categorical


def small_agent(env_id="CartPole-v1", **options):
    settings = dict(horizon=16, workers=3, seed=0, verbose=False)
    settings.update(options)
    return PPOAgent(get_model_builder("simple", "ffn"), make_env(env_id), **settings)


def gather_with(gatherer_class, env_id="CartPole-v1", steps=4):
    agent = small_agent(env_id)
    agent.assign_gatherer(gatherer_class)
    return agent.rollout.gather(agent._policy_forward, steps)


# ---------------------------------------------------------------- 1. what select_action returns
class ForgetsReturn(Gatherer):
    def select_action(self, predicted_parameters):
        super().select_action(predicted_parameters)


class ReturnsOnlyTheAction(Gatherer):
    def select_action(self, predicted_parameters):
        action, _ = super().select_action(predicted_parameters)
        return action


class ReturnsThreeThings(Gatherer):
    def select_action(self, predicted_parameters):
        action, log_probability = super().select_action(predicted_parameters)
        return action, log_probability, "extra"


class ReturnsAString(Gatherer):
    def select_action(self, predicted_parameters):
        return "left"


@pytest.mark.parametrize("gatherer, message", [
    (ForgetsReturn, r"ForgetsReturn.select_action returned None; it must return \(action, log_probability\) "
                    r"— did you forget `return`\?"),
    (ReturnsOnlyTheAction, r"ReturnsOnlyTheAction.select_action returned int64 np.int64\(\d\); it must return "
                           r"the pair \(action, log_probability\)"),
    (ReturnsThreeThings, r"ReturnsThreeThings.select_action returned a tuple of 3 items \(.*'extra'\); it must return "
                         r"the pair \(action, log_probability\)"),
    (ReturnsAString, r"ReturnsAString.select_action returned str 'left'; it must return the pair"),
])
def test_a_gatherer_returning_the_wrong_thing_is_named(gatherer, message):
    with pytest.raises(GathererError, match=message) as error:
        gather_with(gatherer)
    assert "return action, log_probability" in str(error.value)


# ---------------------------------------------------------------- 2. probability instead of log-probability
class ReturnsTheProbability(Gatherer):
    """What "the probability of that action" in the founding tutorial's wording invites."""

    def select_action(self, predicted_parameters):
        action, log_probability = super().select_action(predicted_parameters)
        return action, np.exp(log_probability)


class ReturnsTheNegativeLogProbability(Gatherer):
    def select_action(self, predicted_parameters):
        action, log_probability = super().select_action(predicted_parameters)
        return action, -log_probability


class ReturnsAPositiveNumber(Gatherer):
    def select_action(self, predicted_parameters):
        action, _ = super().select_action(predicted_parameters)
        return action, 3.0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_a_probability_instead_of_a_log_probability_is_refused(env_id):
    with pytest.raises(GathererError, match=r"ReturnsTheProbability.select_action returned .* which equals "
                                            r"π\(a\|s\) .* not log π\(a\|s\).*np.log\(p\)"):
        gather_with(ReturnsTheProbability, env_id)


def test_a_negative_log_probability_and_a_positive_number_are_refused():
    with pytest.raises(GathererError, match=r"ReturnsTheNegativeLogProbability.*equals −log π\(a\|s\).*drop the minus"):
        gather_with(ReturnsTheNegativeLogProbability)
    with pytest.raises(GathererError, match=r"ReturnsAPositiveNumber.select_action returned the log-probability 3 "
                                            r"for worker 0.*must be ≤ 0"):
        gather_with(ReturnsAPositiveNumber)


# The founding tutorial's gatherer, as written: log π for the random action too.
from benchmarks.epsilon_greedy import EpsilonGreedyGatherer as TutorialEpsilonGreedyGatherer  # noqa: E402


class BehaviourPolicyGatherer(Gatherer):
    """ε-greedy returning log μ(a|s) of the behaviour policy μ = (1 − ε) π + ε · uniform, not log π."""

    epsilon = 0.5

    def select_action(self, predicted_parameters):
        logits = np.asarray(predicted_parameters[0], dtype=np.float64)[0]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        behaviour = (1 - self.epsilon) * probabilities + self.epsilon / len(probabilities)
        action = int(self.rng.choice(len(behaviour), p=behaviour))
        return action, np.log(behaviour[action])


@pytest.mark.parametrize("gatherer", [TutorialEpsilonGreedyGatherer, BehaviourPolicyGatherer])
def test_log_probabilities_of_a_behaviour_policy_are_accepted(gatherer):
    random.seed(0)
    agent = small_agent()
    agent.assign_gatherer(gatherer)
    data = agent.rollout.gather(agent._policy_forward, 64)
    logits = np.stack([agent._policy_forward(step)[0] for step in data.observations])
    policy = Categorical(agent.env.action_space)
    log_pi = policy.log_probability(data.actions.reshape(-1), logits.reshape(-1, 2)).reshape(data.actions.shape)
    assert np.all(data.log_probabilities <= 0)
    if gatherer is BehaviourPolicyGatherer:  # the recorded values are log μ, and μ differs from π
        assert np.abs(data.log_probabilities - log_pi).max() > 1e-3
    else:
        np.testing.assert_allclose(data.log_probabilities, log_pi, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- 3. assign is all or nothing
class FailsForWorkerTwo(Gatherer):
    def __init__(self, worker_id, env, distribution, rng):
        rng.random()  # a draw before failing must not move the workers' streams
        if worker_id == 2:
            raise RuntimeError("no sensor for worker 2")
        super().__init__(worker_id, env, distribution, rng)


class PassThroughGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        return super().select_action(predicted_parameters)


def test_a_gatherer_failing_to_start_leaves_the_old_gatherers_in_place():
    agent = small_agent()
    agent.assign_gatherer(PassThroughGatherer)
    gatherers = list(agent.rollout.gatherers)
    states = agent.rollout.rng_states()
    with pytest.raises(RuntimeError, match="no sensor for worker 2") as error:
        agent.rollout.assign(FailsForWorkerTwo)
    assert any("FailsForWorkerTwo" in note and "worker 2" in note for note in getattr(error.value, "__notes__", []))
    assert agent.rollout.gatherers == gatherers and agent.rollout.custom_selection
    assert agent.rollout.rng_states() == states


# ---------------------------------------------------------------- 4. make_env's arguments
@pytest.mark.parametrize("transformers, shown", [
    ("state", "'state' (a str)"),
    (StateNormalizationTransformer, "StateNormalizationTransformer"),
    (StateNormalizationTransformer(), "StateNormalizationTransformer"),
    (3, "3 (an int)"),
    (None, "None"),
])
def test_transformers_must_be_a_list(transformers, shown):
    with pytest.raises(TypeError, match=r"`transformers` must be a list") as error:
        make_env("CartPole-v1", transformers=transformers)
    assert shown in str(error.value) and "transformers=[\"state\"]" in str(error.value)


@pytest.mark.parametrize("seed", ["abc", -1, 1.5, True, 2**64, 2**32])
def test_make_env_refuses_a_seed_it_would_ignore(seed):
    with pytest.raises((TypeError, ValueError), match=r"`seed` must be None or an int in \[0, 2\*\*32 − 1\], got "):
        make_env("CartPole-v1", seed=seed)


def test_make_env_accepts_the_extreme_seeds():
    assert make_env("CartPole-v1", seed=2**32 - 1).reset()[0].shape == (4,)
    assert make_env("CartPole-v1", seed=np.int64(0)).reset()[0].shape == (4,)


def _box2d_installed():
    try:
        import Box2D  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_box2d_installed(), reason="Box2D is installed here; the simulated test covers this")
def test_a_missing_box2d_names_the_env_and_the_extra_to_install():
    with pytest.raises(gymnasium.error.DependencyNotInstalled, match=r"LunarLander-v3.*pip install -e '.\[box2d\]'"):
        make_env("LunarLander-v3")


def test_a_missing_dependency_names_the_env_and_the_extra_to_install(monkeypatch):
    def missing(*args, **kwargs):
        raise gymnasium.error.DependencyNotInstalled("Box2D is not installed, you can install it by run `pip install swig`")

    monkeypatch.setattr(gymnasium, "make", missing)
    with pytest.raises(gymnasium.error.DependencyNotInstalled) as error:
        make_env("CarRacing-v3")
    message = str(error.value)
    assert "CarRacing-v3" in message and "Box2D is not installed" in message
    assert "pip install -e '.[box2d]'" in message and 'pip install "dexterity_nb[box2d]"' in message


# ---------------------------------------------------------------- 5. state normalisation needs Box observations
@pytest.mark.parametrize("space", [
    gymnasium.spaces.Dict({"position": gymnasium.spaces.Box(-1, 1, (2,))}),
    gymnasium.spaces.Tuple((gymnasium.spaces.Discrete(3), gymnasium.spaces.Discrete(2))),
    gymnasium.spaces.Discrete(16),
])
def test_state_normalization_refuses_non_box_observations(space):
    expected = (rf"StateNormalizationTransformer normalises Box observations; got {type(space).__name__}\(.*"
                r"gymnasium.wrappers.FlattenObservation")
    with pytest.raises(TypeError, match=expected):
        StateNormalizationTransformer().setup(space, 1)


def test_make_env_refuses_state_normalization_of_tuples_and_the_advice_works():
    with pytest.raises(TypeError, match="StateNormalizationTransformer normalises Box observations; got Tuple"):
        make_env("Blackjack-v1", transformers=["state"])
    env = make_env(lambda: gymnasium.wrappers.FlattenObservation(gymnasium.make("Blackjack-v1")), transformers=["state"])
    assert env.reset(seed=0)[0].shape == (32 + 11 + 2,)


@pytest.mark.parametrize("options, message", [
    (dict(clip=0), r"`clip` must be a positive finite number, got 0"),
    (dict(clip=-5.0), r"`clip` must be a positive finite number, got -5.0"),
    (dict(clip=float("inf")), r"`clip` must be a positive finite number, got inf"),
    (dict(clip="10"), r"`clip` must be a positive finite number, got '10'"),
    (dict(epsilon=0.0), r"`epsilon` must be a positive finite number, got 0.0"),
    (dict(epsilon=float("nan")), r"`epsilon` must be a positive finite number, got nan"),
    (dict(epsilon=True), r"`epsilon` must be a positive finite number, got True"),
])
def test_state_normalization_checks_its_arguments(options, message):
    with pytest.raises(ValueError, match=r"StateNormalizationTransformer: " + message):
        StateNormalizationTransformer(**options)


def test_resolve_transformer_names_the_transformers_argument():
    with pytest.raises(ValueError, match=r"Unknown transformer 'rewards' in `transformers`.*'reward'"):
        resolve_transformer("rewards")
    with pytest.raises(TypeError, match=r"Each of `transformers` must be .*; got 3"):
        make_env("CartPole-v1", transformers=[3])


# ---------------------------------------------------------------- 6. model builders
@pytest.mark.parametrize("hidden_units, error, shown", [
    ("64", TypeError, "'64' (a str)"),
    (64, TypeError, "64 (an int)"),
    ([], ValueError, "[]"),
    ([64, 0], ValueError, "[64, 0]"),
    ([64.5], TypeError, "[64.5]"),
    ([64.0], TypeError, "[64.0]"),
    ([True], TypeError, "[True]"),
])
def test_get_model_builder_checks_hidden_units(hidden_units, error, shown):
    for check in (lambda: get_model_builder("simple", "ffn", hidden_units=hidden_units),
                  lambda: build_feed_forward(gymnasium.spaces.Box(-1, 1, (4,)), Categorical(gymnasium.spaces.Discrete(2)),
                                             False, hidden_units)):
        with pytest.raises(error, match=r"`hidden_units` must be") as raised:
            check()
        assert shown in str(raised.value) and "hidden_units=(64, 64)" in str(raised.value)


def test_get_model_builder_accepts_lists_and_numpy_ints():
    assert get_model_builder("deep", "ffn", hidden_units=[32, np.int64(16)]).options == {"hidden_units": [32, np.int64(16)]}


def test_get_model_builder_checks_shared_names_and_options():
    with pytest.raises(TypeError, match=r"`shared` must be True or False, got 'no'"):
        get_model_builder("simple", "ffn", shared="no")
    with pytest.raises(TypeError, match=r"`model` must be the name \(a str\) of a registered builder.*got 3"):
        get_model_builder(3)
    with pytest.raises(TypeError, match=r"`model_type` must be the name \(a str\).*got None"):
        get_model_builder("simple", None)
    with pytest.raises(TypeError, match=r"The model builder \('wide', 'ffn'\) has no option `hidden_unit`; "
                                        r"it accepts: hidden_units. Did you mean `hidden_units`\?"):
        get_model_builder("wide", "ffn", hidden_unit=(64,))


def test_a_builder_with_keyword_arguments_accepts_any_option():
    @register_model_builder("open-test", "ffn", overwrite=True)
    def build_open(observation_space, distribution, shared, **options):
        return build_feed_forward(observation_space, distribution, shared)

    try:
        assert get_model_builder("open-test", "ffn", anything=1).options == {"anything": 1}
    finally:
        MODEL_BUILDERS.pop(("open-test", "ffn"))


# ---------------------------------------------------------------- 7. the command line
class AgentMustNotBeBuilt:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the agent was built before the arguments were checked")


@pytest.mark.parametrize("flag, value, message", [
    ("--cycles", "0", "must be a positive int, got 0"),
    ("--epochs", "0", "must be a positive int, got 0"),
    ("--batch-size", "0", "must be a positive int, got 0"),
    ("--horizon", "0", "must be a positive int, got 0"),
    ("--workers", "-2", "must be a positive int, got -2"),
    ("--learning-rate", "-0.001", "must be a positive number, got -0.001"),
    ("--learning-rate", "nan", "must be a positive number, got nan"),
    ("--seed", "-1", r"must be an int in [0, 2**32 − 1], got -1"),
])
def test_cli_checks_numbers_before_anything_is_built(flag, value, message, capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    with pytest.raises(SystemExit) as exit:
        cli.main(["drill", "CartPole-v1", flag, value])
    assert exit.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_cli_checks_the_output_folder_before_drilling(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "run"):
        assert cli.main(["drill", "CartPole-v1", "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert f"dexterity-nb: error: --out {out} cannot be a folder: {a_file} is a file." in error


def test_cli_checks_the_output_folder_is_writable(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    real_access = os.access
    # As root every folder is writable: the test makes os.access say no for this one.
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(locked) and real_access(path, mode))
    assert cli.main(["drill", "CartPole-v1", "--out", str(locked / "run")]) == 2
    assert f"dexterity-nb: error: --out {locked / 'run'} cannot be written: {locked} is not writable." in capsys.readouterr().err


def test_cli_argument_errors_come_before_tensorflow_loads(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("")
    code = (
        "import sys\nfrom dexterity_nb import cli\n"
        f"assert cli.main(['drill', 'CartPole-v1', '--out', {str(a_file)!r}]) == 2\n"
        "try:\n    cli.main(['drill', 'CartPole-v1', '--horizon', '0'])\nexcept SystemExit as exit:\n    assert exit.code == 2\n"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_cli_reports_a_missing_box2d_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    if _box2d_installed():
        def missing(*args, **kwargs):
            raise gymnasium.error.DependencyNotInstalled("Box2D is not installed")

        monkeypatch.setattr(gymnasium, "make", missing)
    assert cli.main(["drill", "LunarLander-v3", "--cycles", "1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dexterity-nb: error: ") and error.strip().count("\n") == 0
    assert "LunarLander-v3" in error and "pip install -e '.[box2d]'" in error
