"""LRMF Example 2.2 / Sec. 8.8: the mixture density, autodiff gradients, the line fit, the run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from configs import lrmf_vanishing_gradient
from experiments.lrmf import vanishing_gradient as lrmf_gradient
from lrmf import vanishing_gradient as vg

DELTA, SIGMA0 = 1.0, 0.5


def _sample(n, seed=0):
  return vg.sample_equal_mixture(jax.random.PRNGKey(seed), n, mean1=DELTA, mean2=-DELTA,
                                 scale=SIGMA0, dtype=jnp.float64)


def _grads(mus, x):
  return vg.cross_entropy_grad(mus, x=x, delta=DELTA, sigma0=SIGMA0)


def test_mixture_log_prob_matches_scipy_and_integrates_to_one():
  x = np.linspace(-6.0, 9.0, 3001)
  log_p = vg.equal_mixture_log_prob(jnp.asarray(x), mean1=3.0, mean2=-1.0, scale=0.7)
  expected = np.log(0.5 * stats.norm.pdf(x, 3.0, 0.7) + 0.5 * stats.norm.pdf(x, -1.0, 0.7))
  np.testing.assert_allclose(log_p, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.trapezoid(np.exp(np.asarray(log_p)), x), 1.0, atol=1e-5)


def test_sample_has_equal_halves_with_the_component_moments():
  with jax.enable_x64(True):
    x = np.asarray(_sample(20000))
  assert x.dtype == np.float64 and x.shape == (20000,)
  np.testing.assert_allclose([x[:10000].mean(), x[10000:].mean()], [DELTA, -DELTA], atol=0.02)
  np.testing.assert_allclose([x[:10000].std(), x[10000:].std()], [SIGMA0, SIGMA0], rtol=0.03)


def test_autodiff_gradient_matches_finite_difference():
  with jax.enable_x64(True):
    x = _sample(2000)
    mus = jnp.array([0.5, 2.0, 4.0, 6.0])
    grads = jax.jit(_grads)(mus, x)
    h = 1e-5
    loss = jax.jit(jax.vmap(lambda mu: vg.cross_entropy(mu, x=x, delta=DELTA, sigma0=SIGMA0)))
    finite = (loss(mus + h) - loss(mus - h)) / (2 * h)
  np.testing.assert_allclose(grads, finite, rtol=1e-5, atol=1e-10)


def test_monte_carlo_gradient_estimates_the_exact_expected_gradient():
  with jax.enable_x64(True):
    mus = jnp.array([1.0, 2.5, 4.0])
    mc = jax.jit(_grads)(mus, _sample(40000))
    exact = jax.jit(lambda m: vg.expected_cross_entropy_grad(
        m, delta=DELTA, sigma0=SIGMA0, num_points=4001))(mus)
  np.testing.assert_allclose(mc, exact, rtol=0.05)


def test_line_fit_recovers_a_known_decay():
  mus = jnp.linspace(3.0, 9.0, 13, dtype=jnp.float32)
  a, b, r = vg.fit_sqrt_neg_log(mus, -jnp.exp(-(0.7 * mus - 1.0)**2))
  np.testing.assert_allclose([a, b, r], [0.7, -1.0, 1.0], rtol=1e-4, atol=1e-4)


def test_gradient_decays_super_exponentially():
  with jax.enable_x64(True):
    mus = jnp.linspace(4.0, 12.0, 17)
    grads = np.asarray(jax.jit(_grads)(mus, _sample(4000)))
    a, b, r = (float(v) for v in vg.fit_sqrt_neg_log(mus, jnp.asarray(grads)))
  log_g = np.log(np.abs(grads))
  assert np.all(np.diff(log_g, 2) < 0), 'log|g| is not concave: the decay is not faster than exp'
  assert a > 0.5 and r > 0.999, (a, b, r)
  population, fixed_sample = vg.asymptotic_decay_slopes(delta=DELTA, sigma0=SIGMA0)
  assert population < a < fixed_sample


@pytest.mark.parametrize('call, match', [
    (lambda: vg.fit_sqrt_neg_log(jnp.ones(4), jnp.ones(3)), 'one shape'),
    (lambda: vg.fit_sqrt_neg_log(jnp.ones(2), jnp.ones(2)), 'at least 3'),
    (lambda: vg.sample_equal_mixture(jax.random.PRNGKey(0), 1, mean1=1.0, mean2=-1.0,
                                     scale=0.5), 'num_samples'),
    (lambda: vg.equal_mixture_log_prob(jnp.zeros(3), mean1=0.0, mean2=1.0, scale=0.0),
     'scale must be positive'),
    (lambda: vg.cross_entropy(1.0, x=jnp.zeros((2, 2)), delta=1.0, sigma0=0.5), '1-D sample'),
])
def test_bad_input_raises(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_fit_range_without_three_grid_points_raises(tmp_path):
  config = lrmf_vanishing_gradient.get_config('smoke')
  config.fit_range = (30.0, 40.0)
  with pytest.raises(ValueError, match='fit_range'):
    lrmf_gradient.run(config, str(tmp_path))
  with pytest.raises(ValueError, match='unknown variant'):
    lrmf_vanishing_gradient.get_config('full')


def test_smoke_config_runs_end_to_end(tmp_path):
  results = lrmf_gradient.run(lrmf_vanishing_gradient.get_config('smoke'), str(tmp_path))
  for name in ('results.json', 'plots/fig7a_sqrt_neg_log_grad.png',
               'plots/fig7bc_grad_vs_fit.png'):
    assert (tmp_path / name).exists(), name
  with open(tmp_path / 'results.json') as f:
    written = json.load(f)
  assert written['paper_a'] == 0.6 and written['paper_b'] == -1.168
  assert written['a'] == pytest.approx(results['a'])
  assert written['a'] > 0 and written['r'] > 0.999 and written['exact_r'] > 0.999
  assert len(written['grad']) == len(written['mu']) == 19
