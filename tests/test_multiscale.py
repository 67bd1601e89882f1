"""Tests of the Glow layers and the multi-scale image flows."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nflax import distrax_views
from nflax.bijectors import base
from nflax.bijectors import multiscale
from tests.bijector_checks import check_bijector, init_variables


@pytest.fixture(autouse=True, scope='module')
def _fast_compilation():
  """Compiles without most XLA optimisations: these tests check math, not speed."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)


def _check(module, x, variables=None):
  return check_bijector(module, x, variables)


def _images(shape, seed=0):
  return 2.0 * jax.random.normal(jax.random.PRNGKey(seed), shape) + 1.0


def _perturb_params(variables, scale=0.1, seed=1):
  """Adds Gaussian noise to every parameter, so no layer stays at the identity."""
  leaves, treedef = jax.tree.flatten(variables['params'])
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  noisy = [leaf + scale * jax.random.normal(key, leaf.shape)
           for leaf, key in zip(leaves, keys)]
  return {**variables, 'params': jax.tree.unflatten(treedef, noisy)}


@pytest.mark.parametrize('shape', [(3, 4, 4, 2), (4, 2)])
def test_actnorm_contract_and_data_dependent_init(shape):
  x = _images(shape)
  module = multiscale.ActNorm()
  variables = _check(module, x)
  y, log_det = module.apply(variables, x)
  axes = tuple(range(x.ndim - 1))
  np.testing.assert_allclose(jnp.mean(y, axis=axes), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.std(y, axis=axes), 1.0, atol=1e-4)
  positions = int(np.prod(shape[1:-1]))
  expected = positions * jnp.sum(variables['params']['log_scale'])
  np.testing.assert_allclose(log_det, jnp.full(shape[:1], expected), rtol=1e-6)


def test_actnorm_keeps_its_parameters_on_new_data():
  module = multiscale.ActNorm()
  variables = init_variables(module, _images((3, 2, 2, 2)))
  other = _images((3, 2, 2, 2), seed=5) * 3.0
  y = module.apply(variables, other)[0]
  expected = (other + variables['params']['bias']) * jnp.exp(variables['params']['log_scale'])
  np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize('shape', [(2, 4, 4, 3), (3, 3)])
def test_invertible_1x1_conv_contract(shape):
  x = _images(shape)
  module = multiscale.Invertible1x1Conv()
  variables = _perturb_params(init_variables(module, x))
  _check(module, x, variables)


def test_invertible_1x1_conv_log_det_is_positions_times_slogdet():
  x = _images((2, 3, 2, 3))
  module = multiscale.Invertible1x1Conv()
  variables = init_variables(module, x)
  np.testing.assert_allclose(variables[multiscale.CONSTANTS]['permutation'].sum(0), 1.0)
  initial_weight = _weight(variables)
  np.testing.assert_allclose(initial_weight @ initial_weight.T, jnp.eye(3), atol=1e-5)
  variables = _perturb_params(variables, scale=0.3)
  weight = _weight(variables)
  y, log_det = module.apply(variables, x)
  np.testing.assert_allclose(y, jnp.einsum('bhwk,ck->bhwc', x, weight), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(log_det, 3 * 2 * jnp.linalg.slogdet(weight)[1], rtol=1e-5)


def _weight(variables):
  """``W = P L (U + diag(sign * exp(log_scale)))`` from the variables (Glow Eq. 10)."""
  params, constants = variables['params'], variables[multiscale.CONSTANTS]
  size = params['log_scale'].shape[0]
  lower = jnp.tril(params['lower'], -1) + jnp.eye(size)
  upper = jnp.triu(params['upper'], 1) + jnp.diag(
      constants['sign'] * jnp.exp(params['log_scale']))
  return constants['permutation'] @ lower @ upper


def test_invertible_1x1_conv_needs_its_constants():
  x = _images((2, 3))
  module = multiscale.Invertible1x1Conv()
  variables = init_variables(module, x)
  with pytest.raises(Exception, match='constants'):
    module.apply({'params': variables['params']}, x)


def test_squeeze_places_pixels_exactly():
  batch, height, width, channels = 2, 4, 6, 3
  x = jnp.arange(batch * height * width * channels, dtype=jnp.float32).reshape(
      batch, height, width, channels)
  y = multiscale.squeeze(x)
  assert y.shape == (batch, 2, 3, 4 * channels)
  for b, i, j, p, q, c in itertools.product(
      range(batch), range(2), range(3), range(2), range(2), range(channels)):
    assert y[b, i, j, (p * 2 + q) * channels + c] == x[b, 2 * i + p, 2 * j + q, c]
  np.testing.assert_array_equal(multiscale.unsqueeze(y), x)


@pytest.mark.parametrize('factor', [2, 3])
def test_squeeze_round_trip_and_zero_log_det(factor):
  x = _images((2, 2 * factor, factor, 2))
  module = multiscale.Squeeze(factor=factor)
  for wrap in (lambda f: f, jax.jit):
    y, log_det = wrap(module.apply)({}, x)
    assert y.shape == (2, 2, 1, 2 * factor**2)
    np.testing.assert_array_equal(jnp.sort(y.ravel()), jnp.sort(x.ravel()))
    x_back, inverse_log_det = wrap(
        lambda v, y: module.apply(v, y, method=multiscale.Squeeze.inverse_and_log_det))({}, y)
    np.testing.assert_array_equal(x_back, x)
    np.testing.assert_array_equal(log_det, jnp.zeros(2))
    np.testing.assert_array_equal(inverse_log_det, jnp.zeros(2))


@pytest.mark.parametrize('shape', [(2, 3, 4, 1), (2, 4, 5, 1), (2, 4, 4)])
def test_squeeze_rejects_bad_shapes(shape):
  with pytest.raises(ValueError, match='squeeze'):
    multiscale.Squeeze().apply({}, jnp.zeros(shape))


def test_unsqueeze_rejects_indivisible_channels():
  with pytest.raises(ValueError, match='channels divisible by 4'):
    multiscale.unsqueeze(jnp.zeros((1, 2, 2, 6)))


def test_multiscale_of_squeezes_is_a_fixed_rearrangement():
  x = _images((2, 4, 4, 2))
  module = multiscale.MultiScale(levels=[multiscale.Squeeze()], final=base.Chain([]))
  y, log_det = module.apply({}, x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(log_det, 0.0)


def test_multiscale_passes_factored_out_half_through():
  x = _images((3, 4, 4, 2))
  module = multiscale.MultiScale(levels=[multiscale.Squeeze()], final=multiscale.ActNorm())
  variables = _check(module, x)
  y = module.apply(variables, x)[0]
  np.testing.assert_array_equal(multiscale.squeeze(y)[..., 4:], multiscale.squeeze(x)[..., 4:])
  kept = multiscale.squeeze(y)[..., :4]
  np.testing.assert_allclose(jnp.mean(kept, axis=(0, 1, 2)), 0.0, atol=1e-5)


def test_multiscale_rejects_level_without_squeeze():
  module = multiscale.MultiScale(levels=[multiscale.ActNorm()], final=base.Chain([]))
  with pytest.raises(ValueError, match='level 0 must map'):
    module.init(jax.random.PRNGKey(0), _images((2, 4, 4, 2)))


def test_multiscale_rejects_non_images():
  module = multiscale.MultiScale(levels=[multiscale.Squeeze()], final=base.Chain([]))
  with pytest.raises(ValueError, match='images'):
    module.apply({}, jnp.zeros((2, 16)))


def test_glow_tiny_contract():
  x = _images((2, 4, 4, 2))
  module = multiscale.glow(num_levels=2, steps_per_level=2, hidden_channels=4, num_layers=1)
  variables = _perturb_params(init_variables(module, x))
  _check(module, x, variables)


def test_glow_rejects_images_too_small_for_its_levels():
  module = multiscale.glow(num_levels=3, steps_per_level=1, hidden_channels=4, num_layers=1)
  with pytest.raises(ValueError, match='divisible by 2'):
    jax.eval_shape(module.init, jax.random.PRNGKey(0), _images((2, 4, 2, 1)))


def test_realnvp_image_tiny_contract():
  x = _images((2, 4, 4, 2))
  module = multiscale.realnvp_image(num_levels=2, hidden_channels=4, num_blocks=1,
                              num_checkerboard=2, num_channelwise=2, num_final=1)
  variables = _perturb_params(init_variables(module, x), scale=0.05)
  _check(module, x, variables)


def test_multiscale_distrax_image_bijector():
  x = _images((2, 4, 4, 2))
  module = multiscale.MultiScale(levels=[multiscale.Squeeze()], final=multiscale.ActNorm())
  variables = init_variables(module, x)
  bijector = distrax_views.bijector(module, variables, event_ndims=3)
  y, log_det = bijector.forward_and_log_det(x[None])
  assert y.shape == (1,) + x.shape and log_det.shape == (1, 2)
  x_back, inverse_log_det = bijector.inverse_and_log_det(y)
  np.testing.assert_allclose(x_back[0], x, atol=1e-5)
  np.testing.assert_allclose(inverse_log_det, -log_det, atol=1e-5)
