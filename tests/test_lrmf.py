"""LRMF's closed forms (Example 2.1, Sec. 8.3) and its pure losses against hand-computed
Gaussian values; Algorithm 1 reaching them: tests/test_lrmf_algorithm.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from lrmf import gaussian, losses
from nflax import densities
from tests.lrmf_checks import AFFINE, draw, lrmf_constant, lrmf_loss, mle_variables

log_likelihood_ratio_distance = jax.jit(losses.log_likelihood_ratio_distance,
                                        static_argnames=('density',))


def _hand_log_likelihood(x, mean, var):
  """``1/n sum_i log N(x_i; mean, var)`` of 1-D samples, written out."""
  x = np.asarray(x, np.float64).ravel()
  return float(np.mean(-0.5 * math.log(2 * math.pi * var) - (x - mean)**2 / (2 * var)))


def _random_spd(rng, dim):
  m = rng.normal(size=(dim, dim))
  return m @ m.T + 0.5 * np.eye(dim)


# --- closed forms (Example 2.1, Sec. 8.3) ---------------------------------------------


def test_optimal_affine_1d_scales_and_shifts():
  assert gaussian.optimal_affine_1d(1.0, 2.0, -3.0, 0.5) == pytest.approx((0.25, -3.25))
  # For a centred A the paper's b* = mu_B - mu_A is the same map.
  assert gaussian.optimal_affine_1d(0.0, 2.0, -3.0, 0.5) == pytest.approx((0.25, -3.0))
  matrix, shift = gaussian.optimal_affine([1.0], [[4.0]], [-3.0], [[0.25]])
  np.testing.assert_allclose([matrix[0, 0], shift[0]], [0.25, -3.25])


def test_optimal_affine_matches_the_first_two_moments():
  rng = np.random.default_rng(0)
  mean_a, mean_b = rng.normal(size=3), rng.normal(size=3)
  cov_a, cov_b = _random_spd(rng, 3), _random_spd(rng, 3)
  matrix, shift = gaussian.optimal_affine(mean_a, cov_a, mean_b, cov_b)
  np.testing.assert_allclose(matrix, matrix.T)
  assert np.linalg.eigvalsh(matrix).min() > 0
  np.testing.assert_allclose(matrix @ cov_a @ matrix, cov_b, atol=1e-10)
  np.testing.assert_allclose(matrix @ mean_a + shift, mean_b, atol=1e-12)
  variables = gaussian.optimal_affine_variables(mean_a, cov_a, mean_b, cov_b)
  root = np.asarray(variables['params']['matrix'], np.float64)
  np.testing.assert_allclose(root.T @ root, matrix, rtol=1e-5, atol=1e-5)
  x = rng.normal(size=(5, 3)).astype(np.float32)
  np.testing.assert_allclose(AFFINE.apply(variables, x, method=AFFINE.forward),
                             x @ matrix + shift, rtol=1e-5, atol=1e-5)
  assert gaussian.gaussian_lrmf_objective(matrix, shift, mean_a, cov_a, mean_b,
                                          cov_b) == pytest.approx(0.0, abs=1e-10)


def test_example_2_1_objective_is_zero_exactly_at_the_optimum():
  moments = (1.0, 2.0, -3.0, 0.5)
  a_opt, b_opt = gaussian.optimal_affine_1d(*moments)
  assert gaussian.gaussian_lrmf_objective_1d(a_opt, b_opt, *moments) == pytest.approx(
      0.0, abs=1e-12)
  for a, b in [(1.0, 0.0), (0.3, -3.25), (0.25, -2.0), (-0.25, -3.25)]:
    assert gaussian.gaussian_lrmf_objective_1d(a, b, *moments) > 1e-3
  # The mirrored map -a* x + (mu_B + a* mu_A) matches the moments too.
  assert gaussian.gaussian_lrmf_objective_1d(-a_opt, -3.0 + a_opt, *moments) == pytest.approx(
      0.0, abs=1e-12)
  found = optimize.minimize(
      lambda p: gaussian.gaussian_lrmf_objective_1d(math.exp(p[0]), p[1], *moments),
      x0=[0.0, 0.0], method='Nelder-Mead', options={'xatol': 1e-9, 'fatol': 1e-12})
  np.testing.assert_allclose([math.exp(found.x[0]), found.x[1]], [a_opt, b_opt], atol=1e-4)
  assert gaussian.gaussian_lrmf_objective([[0.7]], [0.4], [1.0], [[4.0]], [-3.0], [[
      0.25]]) == pytest.approx(gaussian.gaussian_lrmf_objective_1d(0.7, 0.4, *moments))


@pytest.mark.parametrize('call, message', [
    (lambda: gaussian.optimal_affine_1d(0.0, -1.0, 0.0, 1.0), 'sigma_a'),
    (lambda: gaussian.optimal_affine([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), 'mean_b'),
    (lambda: gaussian.optimal_affine([0.0], [[1.0]], [0.0], [[-1.0]]), 'cov_b'),
    (lambda: gaussian.optimal_affine([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0],
                                     np.eye(2)), 'symmetric'),
    (lambda: gaussian.gaussian_lrmf_objective_1d(0.0, 0.0, 0.0, 1.0, 0.0, 1.0), 'slope'),
    (lambda: gaussian.gaussian_mle(np.zeros(5)), r'\(n, d\)'),
])
def test_bad_gaussian_inputs_raise(call, message):
  with pytest.raises(ValueError, match=message):
    call()


def test_gaussian_variables_round_trip():
  rng = np.random.default_rng(1)
  mean, cov = rng.normal(size=2), _random_spd(rng, 2)
  density = densities.Gaussian(dim=2)
  got_mean, got_cov = density.apply(gaussian.gaussian_variables(mean, cov),
                                    method=density.mean_and_covariance)
  np.testing.assert_allclose(got_mean, mean, rtol=1e-6)
  np.testing.assert_allclose(got_cov, cov, rtol=1e-5, atol=1e-6)


# --- the pure losses against hand-computed values ------------------------------------


def test_losses_match_hand_computed_1d_gaussian_values():
  rng = np.random.default_rng(2)
  a, b = draw(rng, [1.0], [[4.0]], 400), draw(rng, [-3.0], [[0.25]], 400)
  density = densities.Gaussian(dim=1)
  (mu_a, var_a), (mu_b, var_b) = [(m[0], c[0, 0]) for m, c in map(gaussian.gaussian_mle, (a, b))]
  private_a, private_b = mle_variables(a), mle_variables(b)
  # Maximum average log-likelihood of a Gaussian: -1/2 log(2 pi e sigma^2).
  hand_c = -0.5 * math.log(2 * math.pi * math.e * var_a) - 0.5 * math.log(
      2 * math.pi * math.e * var_b)
  constant = lrmf_constant(density=density, private_a=private_a, private_b=private_b,
                                  a=a, b=b)
  assert float(constant) == pytest.approx(hand_c, abs=1e-4)

  slope, shift = 0.7, 0.4
  flow_variables = AFFINE.make_variables([[math.sqrt(slope)]], [shift])
  shared = gaussian.gaussian_variables([0.3], [[1.7]])
  hand = (-math.log(slope) - _hand_log_likelihood(slope * a + shift, 0.3, 1.7)
          - _hand_log_likelihood(b, 0.3, 1.7) + hand_c)
  loss = lrmf_loss(flow=AFFINE, density=density, flow_variables=flow_variables,
                          shared=shared, a=a, b=b, constant=constant)
  assert float(loss) == pytest.approx(hand, abs=1e-4)

  # At the shared Gaussian fitted to the equal mixture of T(A) and B, Eq. 3 is
  # the closed form of Example 2.1 at the sample moments.
  optimal_shared = mle_variables(np.concatenate([slope * a + shift, b]))
  loss = lrmf_loss(flow=AFFINE, density=density, flow_variables=flow_variables,
                          shared=optimal_shared, a=a, b=b, constant=constant)
  closed_form = gaussian.gaussian_lrmf_objective_1d(slope, shift, mu_a, math.sqrt(var_a),
                                                    mu_b, math.sqrt(var_b))
  assert float(loss) == pytest.approx(closed_form, abs=1e-4)

  # Definition 2.1 = Example 2.1 with T the identity.
  distance = log_likelihood_ratio_distance(
      density=density, private_a=private_a, private_b=private_b,
      shared=mle_variables(np.concatenate([a, b])), a=a, b=b)
  assert float(distance) == pytest.approx(gaussian.gaussian_lrmf_objective_1d(
      1.0, 0.0, mu_a, math.sqrt(var_a), mu_b, math.sqrt(var_b)), abs=1e-4)
  assert float(distance) > 1.0


def test_distance_is_zero_for_equal_data_and_positive_otherwise():
  rng = np.random.default_rng(3)
  density = densities.Gaussian(dim=2)
  a = draw(rng, [0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]], 300)
  private = mle_variables(a)
  same = log_likelihood_ratio_distance(density=density, private_a=private,
                                              private_b=private, shared=private, a=a, b=a)
  assert float(same) == pytest.approx(0.0, abs=1e-6)
  b = a + np.float32([0.3, 0.0])
  different = log_likelihood_ratio_distance(
      density=density, private_a=private, private_b=mle_variables(b),
      shared=mle_variables(np.concatenate([a, b])), a=a, b=b)
  assert float(different) > 1e-3


def test_objective_is_non_negative_at_converged_private_models():
  rng = np.random.default_rng(4)
  density = densities.Gaussian(dim=2)
  a = draw(rng, [0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]], 300)
  b = draw(rng, [2.0, -1.0], [[0.6, -0.2], [-0.2, 1.5]], 300)
  constant = lrmf_constant(density=density, private_a=mle_variables(a),
                                  private_b=mle_variables(b), a=a, b=b)
  num = 64
  flows = {'params': {'matrix': jnp.eye(2) + 0.5 * rng.normal(size=(num, 2, 2)),
                      'shift': 2.0 * rng.normal(size=(num, 2))}}
  shared = {'params': {'mean': 2.0 * rng.normal(size=(num, 2)),
                       'raw_scale_tril': rng.normal(size=(num, 2, 2))}}
  objective = jax.jit(jax.vmap(lambda f, s: losses.lrmf_loss(
      flow=AFFINE, density=density, flow_variables=f, shared=s, a=a, b=b, constant=constant)))
  values = np.asarray(objective(flows, shared))
  assert values.min() > -1e-4, values.min()
  # ... and about 0 at the closed-form optimum with the optimal shared model.
  optimum = gaussian.optimal_affine_variables(*gaussian.gaussian_mle(a),
                                              *gaussian.gaussian_mle(b))
  transformed = AFFINE.apply(optimum, a, method=AFFINE.forward)
  at_optimum = lrmf_loss(
      flow=AFFINE, density=density, flow_variables=optimum,
      shared=mle_variables(np.concatenate([transformed, b])), a=a, b=b, constant=constant)
  assert float(at_optimum) == pytest.approx(0.0, abs=1e-4)

