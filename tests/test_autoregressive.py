"""Tests of MADE / MAF (nflax.bijectors.autoregressive) and nflax.bijectors.batchnorm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nflax.bijectors.autoregressive import (MADE, MAFLayer, hidden_degrees, hidden_mask,
                                            input_degrees, maf, output_mask)
from nflax.bijectors.base import Inverse
from nflax.bijectors.batchnorm import BatchNorm
from nflax.bijectors.linear import Reverse
from tests.bijector_checks import check_bijector, init_variables, normal, perturb

ORDERS = [None, (4, 3, 2, 1), (2, 4, 1, 3)]


def _eval_variables(flow, x):
  """Perturbed parameters and random running statistics (positive variances)."""
  variables = init_variables(flow, x)
  rng = np.random.default_rng(2)
  stats = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.asarray(
          np.exp(0.5 * rng.standard_normal(v.shape, np.float32))
          if 'var' in jax.tree_util.keystr(path) else 0.5 * rng.standard_normal(v.shape, np.float32)),
      variables['batch_stats'])
  return {'params': perturb(variables['params']), 'batch_stats': stats}


def test_degrees_and_masks():
  np.testing.assert_array_equal(input_degrees(3), [1, 2, 3])
  np.testing.assert_array_equal(hidden_degrees(5, 3), [1, 2, 1, 2, 1])
  np.testing.assert_array_equal(hidden_degrees(2, 1), [1, 1])
  degrees_in, degrees_hidden = np.array([2, 1, 3]), np.array([1, 2])
  np.testing.assert_array_equal(hidden_mask(degrees_in, degrees_hidden),
                                [[0, 1], [1, 1], [0, 0]])
  np.testing.assert_array_equal(output_mask(degrees_hidden, degrees_in),
                                [[1, 0, 1], [0, 0, 1]])
  with pytest.raises(ValueError, match='not a permutation'):
    input_degrees(3, (1, 2, 2))


@pytest.mark.parametrize('hidden', [(), (8,), (6, 6)])
@pytest.mark.parametrize('order', ORDERS)
def test_made_is_autoregressive(order, hidden):
  """d(output_i)/d(x_j) != 0 exactly when m(j) < m(i) (all allowed paths exist with tanh)."""
  x = normal((1, 4))
  made = MADE(hidden=hidden, order=order, activation=nn.tanh)
  variables = perturb(init_variables(made, x))
  jacobians = jax.jacfwd(lambda v: jnp.stack(made.apply(variables, v[None]))[:, 0])(x[0])
  degrees = input_degrees(4, order)
  allowed = degrees[None, :] < degrees[:, None]
  for jacobian in np.asarray(jacobians):
    np.testing.assert_array_equal(jacobian[~allowed], 0.0)
    assert np.all(np.abs(jacobian[allowed]) > 1e-7)


def test_made_starts_at_zero_and_rejects_bad_input():
  x = normal((3, 4))
  made = MADE(hidden=(8,))
  shift, log_scale = made.apply(init_variables(made, x), x)
  np.testing.assert_array_equal(shift, 0.0)
  np.testing.assert_array_equal(log_scale, 0.0)
  with pytest.raises(ValueError, match='vectors'):
    made.init(jax.random.PRNGKey(0), jnp.ones((2, 2, 2)))
  with pytest.raises(ValueError, match='not a permutation'):
    MADE(hidden=(8,), order=(1, 2, 3)).init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize('order', ORDERS)
def test_maf_layer_contract_and_log_det(order):
  x = normal((3, 4))
  layer = MAFLayer(hidden=(8,), order=order)
  variables = init_variables(layer, x)
  np.testing.assert_array_equal(layer.apply(variables, x)[0], x)
  variables = check_bijector(layer, x, perturb(variables))
  shift, log_scale = MADE(hidden=(8,), order=order).apply(
      {'params': variables['params']['MADE_0']}, x)
  u, log_det = layer.apply(variables, x)
  np.testing.assert_allclose(u, (x - shift) * jnp.exp(-log_scale), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(log_det, -log_scale.sum(-1), rtol=1e-5, atol=1e-6)


def test_inverse_maf_layer_samples_and_gradients():
  """The sequential inverse as a bijector in its own right (the sampling direction)."""
  u = normal((3, 4))
  inverse = Inverse(MAFLayer(hidden=(8,), order=(2, 4, 1, 3)))
  variables = check_bijector(inverse, u, perturb(init_variables(inverse, u)))
  gradient = jax.grad(lambda v: inverse.apply(v, u)[0].sum())(variables)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(gradient))


def test_maf_layer_one_dimension():
  x = normal((3, 1))
  check_bijector(MAFLayer(hidden=(4,)), x)


def test_batch_norm_eval_contract_and_closed_form():
  x = normal((3, 2, 2))
  norm = BatchNorm()
  variables = _eval_variables(norm, x)
  check_bijector(norm, x, variables)
  y, log_det = norm.apply(variables, x)
  params, stats = variables['params'], variables['batch_stats']
  scale = jnp.exp(params['log_gamma']) / jnp.sqrt(stats['var'] + norm.eps)
  np.testing.assert_allclose(y, (x - stats['mean']) * scale + params['beta'], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(log_det, jnp.full(3, jnp.log(scale).sum()), rtol=1e-5)


def test_batch_norm_training_call():
  x = 2.0 + 3.0 * normal((4, 3))
  norm = BatchNorm(momentum=0.8)
  variables = norm.init(jax.random.PRNGKey(0), x)
  np.testing.assert_array_equal(variables['batch_stats']['mean'], 0.0)
  np.testing.assert_array_equal(variables['batch_stats']['var'], 1.0)
  variables = {'params': perturb(variables['params']),
               'batch_stats': variables['batch_stats']}
  (y, log_det), updates = norm.apply(variables, x, mutable=['batch_stats'])
  params = variables['params']
  mean, var = x.mean(0), x.var(0)
  np.testing.assert_allclose(log_det, jnp.full(4, jnp.sum(
      params['log_gamma'] - 0.5 * jnp.log(var + norm.eps))), rtol=1e-5)
  normalised = (y - params['beta']) * jnp.exp(-params['log_gamma'])
  np.testing.assert_allclose(normalised.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(normalised.var(0), var / (var + norm.eps), rtol=1e-4)
  stats = updates['batch_stats']
  np.testing.assert_allclose(stats['mean'], 0.2 * mean, rtol=1e-5)
  np.testing.assert_allclose(stats['var'], 0.8 + 0.2 * var, rtol=1e-5)
  np.testing.assert_allclose(stats['batch_mean'], mean, rtol=1e-5)
  trained = {'params': params, 'batch_stats': stats}
  (x_back, inverse_log_det), _ = norm.apply(
      trained, y, method=BatchNorm.inverse_and_log_det, mutable=['batch_stats'])
  np.testing.assert_allclose(x_back, x, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(inverse_log_det, -log_det, rtol=1e-5)
  y_eval, log_det_eval = norm.apply(trained, x)
  assert not np.allclose(y_eval, y)
  np.testing.assert_allclose(log_det_eval, jnp.full(4, jnp.sum(
      params['log_gamma'] - 0.5 * jnp.log(stats['var'] + norm.eps))), rtol=1e-5)


def test_batch_norm_rejects_unbatched_input():
  with pytest.raises(ValueError, match='batch'):
    BatchNorm().init(jax.random.PRNGKey(0), jnp.ones(3))


def test_maf_structure():
  flow = maf(num_blocks=3, hidden=(8,))
  assert [type(layer) for layer in flow.layers] == [
      MAFLayer, BatchNorm, Reverse, MAFLayer, BatchNorm, Reverse, MAFLayer]
  flow = maf(num_blocks=2, batch_norm=False)
  assert [type(layer) for layer in flow.layers] == [MAFLayer, Reverse, MAFLayer]
  assert flow.layers[0].hidden == (100,)
  with pytest.raises(ValueError, match='num_blocks'):
    maf(num_blocks=0)


def test_maf_eval_contract_and_training_call():
  x = normal((3, 3))
  flow = maf(num_blocks=2, hidden=(8,))
  variables = _eval_variables(flow, x)
  check_bijector(flow, x, variables)
  (z, log_det), updates = flow.apply(variables, x, mutable=['batch_stats'])
  assert z.shape == x.shape and log_det.shape == (3,)
  assert not np.allclose(updates['batch_stats']['layers_1']['mean'],
                         variables['batch_stats']['layers_1']['mean'])


@pytest.mark.parametrize('hidden', [(8,), (6, 5)])
@pytest.mark.parametrize('order', ORDERS)
def test_sequential_inverse_equals_full_passes(order, hidden):
  """The one-degree-at-a-time inverse gives the numbers of ``d`` full MADE passes."""
  y = normal((5, 4))
  layer = MAFLayer(hidden=hidden, order=order, activation=nn.tanh if len(hidden) > 1 else nn.relu)
  variables = perturb(init_variables(layer, y))
  x, log_det = layer.apply(variables, y, method=MAFLayer.inverse_and_log_det)
  x_ref, log_det_ref = layer.apply(variables, y, method=MAFLayer._inverse_by_passes)
  np.testing.assert_allclose(x, x_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-5, atol=1e-6)
  u, forward_log_det = layer.apply(variables, x)
  np.testing.assert_allclose(u, y, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(forward_log_det, -log_det, rtol=1e-5, atol=1e-5)


def test_sequential_inverse_of_a_784d_maf_block():
  """At the size of targeted MNIST's MAF (784-D, 1024 units): the same samples as the passes."""
  y = normal((3, 784))
  layer = MAFLayer(hidden=(1024,))
  variables = perturb(init_variables(layer, y))
  variables = jax.tree.map(lambda v: 0.05 * v, variables)  # moderate scales over 784 steps
  x, log_det = jax.jit(lambda v, y: layer.apply(v, y, method=MAFLayer.inverse_and_log_det))(
      variables, y)
  x_ref, log_det_ref = jax.jit(lambda v, y: layer.apply(v, y, method=MAFLayer._inverse_by_passes))(
      variables, y)
  np.testing.assert_allclose(x, x_ref, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-4, atol=1e-4)
