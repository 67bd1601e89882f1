"""Tests of the exactly invertible pre-processing and of dequantisation."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nflax.bijectors import preprocessing
from tests.bijector_checks import check_bijector


# The dense Jacobian of one sample, compiled once per ``check_bijector`` call.
def _unit_interval(shape, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=0.02, maxval=0.98)


@pytest.mark.parametrize('alpha', [0.05, 0.0])
@pytest.mark.parametrize('shape', [(3, 4), (2, 2, 2, 2)])
def test_logit_contract(alpha, shape):
  check_bijector(preprocessing.Logit(alpha=alpha), _unit_interval(shape))


def test_logit_known_values():
  module = preprocessing.Logit(alpha=0.0)
  y, log_det = module.apply({}, jnp.array([[0.5, 0.5, 0.5]]))
  np.testing.assert_allclose(y, 0.0, atol=1e-7)
  np.testing.assert_allclose(log_det, [3 * math.log(4.0)], rtol=1e-6)
  module = preprocessing.Logit(alpha=0.05)
  y, log_det = module.apply({}, jnp.array([[0.0, 1.0]]))
  np.testing.assert_allclose(y, [[math.log(0.05 / 0.95), math.log(0.95 / 0.05)]], rtol=1e-5)
  expected = 2 * (math.log(0.9) - math.log(0.05) - math.log(0.95))
  np.testing.assert_allclose(log_det, [expected], rtol=1e-5)


def test_logit_pushforward_of_uniform_integrates_to_one():
  """The density of ``Logit(x)``, ``x ~ U[0, 1]``, is ``exp(inverse log-det)``."""
  alpha = 0.05
  module = preprocessing.Logit(alpha=alpha)
  low, high = math.log(alpha / (1 - alpha)), math.log((1 - alpha) / alpha)
  grid = jnp.linspace(low, high, 20001)[:, None]
  _, inverse_log_det = module.apply({}, grid, method=preprocessing.Logit.inverse_and_log_det)
  total = np.trapezoid(np.exp(np.asarray(inverse_log_det, np.float64)),
                       np.asarray(grid[:, 0], np.float64))
  np.testing.assert_allclose(total, 1.0, rtol=1e-4)


@pytest.mark.parametrize('alpha', [-0.1, 0.5])
def test_logit_rejects_bad_alpha(alpha):
  with pytest.raises(ValueError, match='alpha'):
    preprocessing.Logit(alpha=alpha).apply({}, jnp.full((2, 3), 0.5))


def test_scale_shift_contract_and_interval_map():
  module = preprocessing.ScaleShift(scale=0.5, shift=0.5)
  check_bijector(module, 2 * _unit_interval((3, 2, 2, 1)) - 1)
  y, log_det = module.apply({}, jnp.array([[-1.0, 0.0, 1.0]]))
  np.testing.assert_allclose(y, [[0.0, 0.5, 1.0]])
  np.testing.assert_allclose(log_det, [3 * math.log(0.5)], rtol=1e-6)


def test_scale_shift_rejects_zero_scale():
  with pytest.raises(ValueError, match='non-zero'):
    preprocessing.ScaleShift(scale=0.0).apply({}, jnp.ones((2, 3)))


def test_dequantize_range_and_bins():
  pixels = jnp.array([[0, 1, 128, 254, 255]] * 200, dtype=jnp.uint8)
  x = preprocessing.dequantize(jax.random.PRNGKey(0), pixels)
  assert x.shape == pixels.shape and x.dtype == jnp.float32
  assert float(x.min()) >= 0.0 and float(x.max()) < 1.0
  np.testing.assert_array_equal(jnp.floor(x * 256).astype(jnp.int32), pixels)
  noise = x * 256 - pixels
  np.testing.assert_allclose(jnp.mean(noise), 0.5, atol=0.03)


def test_dequantize_range_at_the_top_bin():
  pixels = jnp.full((4,), 255, dtype=jnp.int32)
  x = preprocessing.dequantize(jax.random.PRNGKey(0), pixels, num_bins=256)
  assert float(x.max()) < 1.0
  x = preprocessing.dequantize(jax.random.PRNGKey(1), jnp.array([2]), num_bins=3)
  assert 2 / 3 <= float(x[0]) < 1.0


def test_dequantize_rejects_float_pixels():
  with pytest.raises(ValueError, match='integer'):
    preprocessing.dequantize(jax.random.PRNGKey(0), jnp.array([0.5]))


def test_bits_per_dim_known_values():
  num_dims = 12
  assert preprocessing.dequantization_log_det(num_dims) == pytest.approx(
      -num_dims * math.log(256))
  np.testing.assert_allclose(preprocessing.bits_per_dim(jnp.zeros(2), num_dims), 8.0)
  log_prob = jnp.array([num_dims * math.log(2.0)])
  np.testing.assert_allclose(preprocessing.bits_per_dim(log_prob, num_dims, 16), 3.0,
                             rtol=1e-6)
