import gymnasium
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from dexterity_nb.common.policies import Beta, Categorical, Gaussian, get_distribution


def test_categorical_matches_scipy_for_numpy_and_tensors():
    distribution = Categorical(gymnasium.spaces.Discrete(3))
    logits = np.array([[0.1, 2.0, -1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    actions = np.array([1, 2])
    expected = np.log(probabilities[[0, 1], actions])
    np.testing.assert_allclose(distribution.log_probability(actions, logits), expected, rtol=1e-6)
    tensor_result = distribution.log_probability(tf.constant(actions), tf.constant(logits))
    assert isinstance(tensor_result, tf.Tensor)
    np.testing.assert_allclose(tensor_result.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(distribution.entropy(logits), [stats.entropy(p) for p in probabilities], rtol=1e-5)
    np.testing.assert_array_equal(distribution.deterministic(logits), [1, 0])


def test_categorical_samples_follow_the_probabilities():
    distribution = Categorical(gymnasium.spaces.Discrete(3))
    logits = np.log(np.array([[0.2, 0.5, 0.3]] * 20000))
    samples = distribution.sample(logits, rng=np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(samples, minlength=3) / len(samples), [0.2, 0.5, 0.3], atol=0.015)


@pytest.mark.parametrize("dimensions", [1, 3])
def test_gaussian_log_probability_and_entropy_match_scipy(dimensions):
    space = gymnasium.spaces.Box(-1.0, 1.0, (dimensions,))
    distribution = Gaussian(space)
    rng = np.random.default_rng(dimensions)
    mean = rng.normal(size=(4, dimensions))
    log_std = rng.normal(scale=0.3, size=(4, dimensions))
    actions = rng.normal(size=(4, dimensions))
    expected = [stats.multivariate_normal(mean[i], np.diag(np.exp(2 * log_std[i]))).logpdf(actions[i]) for i in range(4)]
    np.testing.assert_allclose(distribution.log_probability(actions, mean, log_std), expected, rtol=1e-6)
    tensor_result = distribution.log_probability(tf.constant(actions, tf.float32), tf.constant(mean, tf.float32), tf.constant(log_std, tf.float32))
    np.testing.assert_allclose(tensor_result.numpy(), expected, rtol=1e-4)
    expected_entropy = [stats.multivariate_normal(mean[i], np.diag(np.exp(2 * log_std[i]))).entropy() for i in range(4)]
    np.testing.assert_allclose(distribution.entropy(mean, log_std), expected_entropy, rtol=1e-6)


def test_beta_on_box_bounds_matches_scipy():
    space = gymnasium.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]))
    distribution = Beta(space)
    alpha = np.array([[1.5, 3.0], [2.0, 1.2]])
    beta = np.array([[2.5, 1.1], [2.0, 4.0]])
    actions = np.array([[0.5, 0.3], [-1.0, 0.9]])
    low, width = space.low.astype(np.float64), (space.high - space.low).astype(np.float64)
    expected = [
        sum(stats.beta(alpha[i, d], beta[i, d], loc=low[d], scale=width[d]).logpdf(actions[i, d]) for d in range(2))
        for i in range(2)
    ]
    np.testing.assert_allclose(distribution.log_probability(actions, alpha, beta), expected, rtol=1e-6)
    tensor_result = distribution.log_probability(*(tf.constant(x, tf.float32) for x in (actions, alpha, beta)))
    np.testing.assert_allclose(tensor_result.numpy(), expected, rtol=1e-4)
    expected_entropy = [
        sum(stats.beta(alpha[i, d], beta[i, d], loc=low[d], scale=width[d]).entropy() for d in range(2)) for i in range(2)
    ]
    np.testing.assert_allclose(distribution.entropy(alpha, beta), expected_entropy, rtol=1e-5)
    samples = distribution.sample(np.repeat(alpha[:1], 500, 0), np.repeat(beta[:1], 500, 0), rng=np.random.default_rng(0))
    assert np.all(samples >= space.low) and np.all(samples <= space.high)


def test_default_distributions_and_errors():
    assert isinstance(get_distribution(gymnasium.spaces.Discrete(2)), Categorical)
    assert isinstance(get_distribution(gymnasium.spaces.Box(-1, 1, (2,))), Gaussian)
    assert isinstance(get_distribution(gymnasium.spaces.Box(-1, 1, (2,)), "beta"), Beta)
    with pytest.raises(ValueError, match="Unknown distribution 'poisson'.*categorical"):
        get_distribution(gymnasium.spaces.Discrete(2), "poisson")
    with pytest.raises(TypeError, match="Discrete and Box"):
        get_distribution(gymnasium.spaces.MultiBinary(3))
    with pytest.raises(ValueError, match="finite Box bounds"):
        Beta(gymnasium.spaces.Box(-np.inf, np.inf, (1,)))


def test_rows_use_their_own_random_streams():
    distribution = Categorical(gymnasium.spaces.Discrete(4))
    logits = np.zeros((2, 4))
    together = distribution.sample(logits, rng=[np.random.default_rng(1), np.random.default_rng(2)])
    alone = [distribution.sample(logits[:1], rng=np.random.default_rng(seed))[0] for seed in (1, 2)]
    np.testing.assert_array_equal(together, alone)


@pytest.mark.parametrize("distribution, parameters, actions", [
    (Categorical(gymnasium.spaces.Discrete(3)), [np.array([[0.1, 2.0, -1.0]])], np.array([2])),
    (Gaussian(gymnasium.spaces.Box(-1, 1, (2,))), [np.array([[0.1, -0.3]]), np.array([[0.2, -0.5]])], np.array([[0.4, 0.1]])),
    (Beta(gymnasium.spaces.Box(-2, 2, (2,))), [np.array([[1.5, 3.0]]), np.array([[2.5, 1.1]])], np.array([[0.5, -1.0]])),
])
def test_compiled_formulas_equal_the_numpy_ones(distribution, parameters, actions):
    """Inside tf.function the TensorFlow formulas run (eager tensors take the NumPy path)."""
    action_dtype = tf.int64 if isinstance(distribution, Categorical) else tf.float32

    @tf.function
    def compiled(actions, *parameters):
        return distribution.log_probability(actions, *parameters), distribution.entropy(*parameters)

    log_probability, entropy = compiled(tf.constant(actions, action_dtype), *(tf.constant(p, tf.float32) for p in parameters))
    np.testing.assert_allclose(log_probability.numpy(), distribution.log_probability(actions, *parameters), rtol=1e-4)
    np.testing.assert_allclose(entropy.numpy(), distribution.entropy(*parameters), rtol=1e-4)


@pytest.mark.parametrize("distribution, parameters", [
    (Categorical(gymnasium.spaces.Discrete(3, start=1)), [np.array([[0.1, 2.0, -1.0], [0.0, 0.0, 0.0]])]),
    (Gaussian(gymnasium.spaces.Box(-1, 1, (2,))), [np.array([[0.1, -0.3], [0.5, 0.2]]), np.array([[0.2, -0.5], [0.0, 0.0]])]),
])
def test_noise_drawn_ahead_gives_the_actions_of_step_by_step_sampling(distribution, parameters):
    """Gathering draws a cycle's noise at once; the actions, their log-probabilities and where each
    worker's stream ends must be those of drawing step by step."""
    steps = 6
    step_by_step = [np.random.default_rng(seed) for seed in (1, 2)]
    ahead = [np.random.default_rng(seed) for seed in (1, 2)]
    noise = distribution.draw_noise(ahead, steps)
    assert noise.shape[:2] == (steps, 2)
    for t in range(steps):
        expected_actions, expected_log_probabilities = distribution.sample_with_log_probability(*parameters, rng=step_by_step)
        actions, log_probabilities = distribution.sample_with_noise(noise[t], *parameters)
        np.testing.assert_array_equal(actions, expected_actions)
        np.testing.assert_array_equal(log_probabilities, expected_log_probabilities)
    assert [g.bit_generator.state for g in ahead] == [g.bit_generator.state for g in step_by_step]


def test_a_distribution_that_samples_its_own_way_draws_no_noise_ahead():
    class Greedy(Categorical):
        def sample_with_log_probability(self, logits, rng=None):
            actions = np.argmax(logits, axis=-1)
            return actions, self.log_probability(actions, logits)

    space = gymnasium.spaces.Discrete(2)
    assert Greedy(space).draw_noise([np.random.default_rng(0)], 4) is None
    assert Categorical(space).draw_noise([np.random.default_rng(0)], 4) is not None
