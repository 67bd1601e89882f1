"""Tests of nflax.bijectors.linear."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nflax.bijectors.linear import ElementwiseAffine, Permutation, PositiveDefiniteAffine, Reverse
from tests.bijector_checks import check_bijector, init_variables, normal, perturb


@pytest.mark.parametrize('shape', [(3, 4), (3, 4, 4, 2)])
def test_elementwise_affine_contract_and_closed_form(shape):
  x = normal(shape)
  module = ElementwiseAffine()
  variables = perturb(init_variables(module, x))
  check_bijector(module, x, variables)
  y, log_det = module.apply(variables, x)
  params = variables['params']
  assert params['log_scale'].shape == shape[1:]
  np.testing.assert_allclose(
      y, x * jnp.exp(params['log_scale']) + params['shift'], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(log_det, jnp.full(shape[:1], params['log_scale'].sum()), rtol=1e-5)


def test_elementwise_affine_is_identity_at_init():
  x = normal((3, 5))
  module = ElementwiseAffine()
  y, log_det = module.apply(init_variables(module, x), x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(log_det, jnp.zeros(3))


def test_positive_definite_affine_contract():
  x = normal((3, 4))
  module = PositiveDefiniteAffine()
  variables = init_variables(module, x)
  np.testing.assert_array_equal(variables['params']['matrix'], jnp.eye(4))
  np.testing.assert_array_equal(module.apply(variables, x)[0], x)
  check_bijector(module, x, perturb(variables))


def test_positive_definite_affine_matches_closed_form():
  x = normal((3, 3))
  factor = normal((3, 3), seed=2) + 2 * jnp.eye(3)
  positive_definite = factor @ factor.T
  shift = jnp.array([1.0, -2.0, 0.5])
  module = PositiveDefiniteAffine()
  variables = PositiveDefiniteAffine.make_variables_from_positive_definite(
      positive_definite, shift)
  np.testing.assert_allclose(
      variables['params']['matrix'].T @ variables['params']['matrix'], positive_definite,
      rtol=1e-4, atol=1e-4)
  y, log_det = module.apply(variables, x)
  np.testing.assert_allclose(y, x @ positive_definite.T + shift, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(
      log_det, jnp.full(3, jnp.linalg.slogdet(positive_definite)[1]), rtol=1e-4)
  check_bijector(module, x, variables)


def test_positive_definite_affine_make_variables_uses_a_transpose_a():
  matrix = jnp.array([[1.0, 2.0], [0.0, 3.0]])
  variables = PositiveDefiniteAffine.make_variables(matrix, jnp.zeros(2))
  x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  y, log_det = PositiveDefiniteAffine().apply(variables, x)
  np.testing.assert_allclose(y, matrix.T @ matrix, rtol=1e-6)
  np.testing.assert_allclose(log_det, jnp.full(2, 2 * np.log(3.0)), rtol=1e-6)


def test_positive_definite_affine_rejects_bad_input():
  with pytest.raises(ValueError, match='vectors'):
    PositiveDefiniteAffine().init(jax.random.PRNGKey(0), jnp.ones((2, 2, 2)))
  with pytest.raises(ValueError, match='square'):
    PositiveDefiniteAffine.make_variables(jnp.ones((2, 3)), jnp.zeros(2))
  with pytest.raises(ValueError, match='shift'):
    PositiveDefiniteAffine.make_variables(jnp.eye(2), jnp.zeros(3))
  with pytest.raises(ValueError, match='positive definite'):
    PositiveDefiniteAffine.make_variables_from_positive_definite(-jnp.eye(2), jnp.zeros(2))


@pytest.mark.parametrize('module', [
    Permutation(permutation=(2, 0, 3, 1)), Permutation(seed=3), Reverse()])
@pytest.mark.parametrize('shape', [(3, 4), (2, 2, 2, 4)])
def test_permutations_contract(module, shape):
  check_bijector(module, normal(shape))


def test_permutation_closed_forms():
  x = jnp.arange(8.0).reshape(2, 4)
  y, log_det = Permutation(permutation=(2, 0, 3, 1)).apply({}, x)
  np.testing.assert_array_equal(y, x[:, [2, 0, 3, 1]])
  np.testing.assert_array_equal(log_det, jnp.zeros(2))
  np.testing.assert_array_equal(Reverse().apply({}, x)[0], x[:, ::-1])
  seeded = Permutation(seed=5).apply({}, x)[0]
  np.testing.assert_array_equal(seeded, Permutation(seed=5).apply({}, x)[0])
  np.testing.assert_array_equal(np.sort(seeded, axis=-1), x)


def test_permutation_rejects_bad_configuration():
  x = jnp.ones((2, 3))
  with pytest.raises(ValueError, match='not a permutation'):
    Permutation(permutation=(0, 1, 1)).apply({}, x)
  with pytest.raises(ValueError, match='not a permutation'):
    Permutation(permutation=(0, 1)).apply({}, x)
  with pytest.raises(ValueError, match='exactly one'):
    Permutation().apply({}, x)
  with pytest.raises(ValueError, match='exactly one'):
    Permutation(permutation=(0, 1, 2), seed=0).apply({}, x)
  with pytest.raises(ValueError, match='batch'):
    Reverse().apply({}, jnp.ones(3))
