"""Tests for ``nflax.bijectors.ffjord``, the FFJORD continuous flow.

Every ``diffrax`` solve compiles for a given module configuration and input
shape, so the tests share a few module instances and batch shapes to reuse the
compiled solvers.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nflax.bijectors.base import Chain
from nflax.bijectors.continuous import (FFJORD, exact_divergence, ffjord,
                                    hutchinson_divergence)
from nflax.nets import MLP
from tests.bijector_checks import check_bijector

TOLERANCE = 1e-6
# Forward-mode differentiable, for the dense ``jax.jacfwd`` Jacobian oracle;
# the forward map itself does not depend on the adjoint.
EXACT = FFJORD(rtol=TOLERANCE, atol=TOLERANCE, adjoint='forward')
HUTCHINSON = FFJORD(rtol=TOLERANCE, atol=TOLERANCE,
                    trace_estimator='hutchinson')
BATCH = 3


def random_like(shapes, seed: int, scale: float):
  """``scale * N(0, 1)`` arrays with the shapes and dtypes of ``shapes``.

  Sampled in one jitted call instead of one compiled kernel per leaf shape.
  """
  leaves, treedef = jax.tree_util.tree_flatten(shapes)

  def sample():
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return treedef.unflatten([
        scale * jax.random.normal(key, leaf.shape, leaf.dtype)
        for leaf, key in zip(leaves, keys)
    ])

  return jax.jit(sample)()


def standard_normal_log_prob(z):
  """``log N(z; 0, I)`` per row: ``(batch, d) -> (batch,)``."""
  return -0.5 * jnp.sum(z**2, -1) - 0.5 * z.shape[-1] * jnp.log(2 * jnp.pi)


@functools.cache
def batch_and_variables(dim: int):
  """A ``(BATCH, dim)`` input and random ``EXACT`` variables for it.

  Every parameter is ``0.3 * N(0, 1)`` (output layer included), so the map is
  far from the identity; ``jax.eval_shape`` gives the parameter shapes without
  compiling an initialisation.
  """
  x = jax.random.normal(jax.random.PRNGKey(dim), (BATCH, dim))
  shapes = jax.eval_shape(EXACT.init, jax.random.PRNGKey(0), x)
  return x, random_like(shapes, seed=dim, scale=0.3)


def test_identity_at_initialisation():
  x = jax.random.normal(jax.random.PRNGKey(2), (BATCH, 2))
  variables = EXACT.init(jax.random.PRNGKey(1), x)
  y, log_det = EXACT.apply(variables, x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(log_det, np.zeros(BATCH))
  x_back, inverse_log_det = EXACT.apply(
      variables, x, method=FFJORD.inverse_and_log_det)
  np.testing.assert_array_equal(x_back, x)
  np.testing.assert_array_equal(inverse_log_det, np.zeros(BATCH))


def test_parameter_shapes_follow_lrmf_architecture():
  _, variables = batch_and_variables(2)
  shapes = jax.tree_util.tree_map(jnp.shape, variables['params']['dynamics'])
  assert [shapes[f'Dense_{i}']['kernel'] for i in range(4)] == [
      (3, 16), (16, 16), (16, 16), (16, 2)]


def test_check_bijector_exact_trace():
  x, variables = batch_and_variables(2)
  y, log_det = EXACT.apply(variables, x)
  assert np.abs(np.asarray(y - x)).max() > 0.1, 'map should not be identity'
  assert np.abs(np.asarray(log_det)).max() > 0.01
  # Solver tolerances 1e-6 give errors ~1e-6; the checks allow 10x-100x that.
  check_bijector(EXACT, x, variables, atol=1e-5, rtol=1e-5,
                 log_det_atol=1e-4)


def test_constant_vector_field_is_a_translation():
  """Only the output bias ``b`` is non-zero: ``f = b`` and ``y = x + T b``.

  A constant field is a translation, so the log-determinant is zero.
  """
  x, variables = batch_and_variables(2)
  zeros = jax.tree_util.tree_map(jnp.zeros_like, variables)
  shift = jnp.array([0.7, -1.3])
  zeros['params']['dynamics']['Dense_3']['bias'] = shift
  y, log_det = EXACT.apply(zeros, x)
  np.testing.assert_allclose(y, x + EXACT.integration_time * shift, atol=1e-5)
  np.testing.assert_allclose(log_det, np.zeros(BATCH), atol=1e-6)


def test_exact_divergence_of_linear_field_is_matrix_trace():
  matrix = jax.random.normal(jax.random.PRNGKey(0), (3, 3))
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
  value, trace = exact_divergence(lambda points: points @ matrix.T, z)
  np.testing.assert_allclose(value, z @ matrix.T, rtol=1e-6)
  np.testing.assert_allclose(trace, np.full(4, np.trace(matrix)), rtol=1e-5)


@pytest.mark.parametrize('probe_kind', ['rademacher', 'gaussian'])
def test_hutchinson_mean_matches_exact_trace(probe_kind):
  """Mean of ``e^T (df/dz) e`` over many probes ~ ``tr(df/dz)``.

  The field is a random tanh MLP; the mean must lie within five standard
  errors of the exact trace.
  """
  dim, num_probes = 3, 20000
  net = MLP(hidden=(16, 16), out_features=dim, activation=nn.tanh,
            zero_init_output=False)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, dim))
  params = net.init(jax.random.PRNGKey(1), z)

  def field(points):
    return net.apply(params, points)

  def estimate(key):
    if probe_kind == 'rademacher':
      probe = jax.random.rademacher(key, z.shape, z.dtype)
    else:
      probe = jax.random.normal(key, z.shape, z.dtype)
    return hutchinson_divergence(field, z, probe)

  values, estimates = jax.jit(jax.vmap(estimate))(
      jax.random.split(jax.random.PRNGKey(2), num_probes))
  exact_values, exact_trace = jax.jit(exact_divergence, static_argnums=0)(
      field, z)
  np.testing.assert_allclose(values[0], exact_values, rtol=1e-5, atol=1e-6)
  mean = estimates.mean(0)
  standard_error = estimates.std(0) / np.sqrt(num_probes)
  assert np.all(standard_error > 0), 'estimator should be stochastic'
  np.testing.assert_array_less(np.abs(mean - exact_trace),
                               5 * standard_error + 1e-6)


def test_hutchinson_log_det_is_unbiased_and_round_trip_exact():
  """Hutchinson log-dets equal the exact ones in expectation, both directions.

  Each input is repeated ``num_probes`` times, so each copy gets its own probe;
  the trajectory does not depend on the probe, so the round trip is exact.
  """
  num_probes = 500
  x, variables = batch_and_variables(2)
  _, exact_log_det = EXACT.apply(variables, x)
  repeated = jnp.repeat(x, num_probes, axis=0)

  @jax.jit
  def forward_then_inverse(key):
    forward_key, inverse_key = jax.random.split(key)
    y, log_det = HUTCHINSON.apply(variables, repeated,
                                  rngs={'hutchinson': forward_key})
    x_back, inverse_log_det = HUTCHINSON.apply(
        variables, y, rngs={'hutchinson': inverse_key},
        method=FFJORD.inverse_and_log_det)
    return x_back, log_det, inverse_log_det

  x_back, log_det, inverse_log_det = forward_then_inverse(
      jax.random.PRNGKey(3))
  np.testing.assert_allclose(x_back, repeated, atol=1e-4)
  for estimates, target in ((log_det, exact_log_det),
                            (inverse_log_det, -exact_log_det)):
    estimates = np.asarray(estimates).reshape(BATCH, num_probes)
    standard_error = estimates.std(1) / np.sqrt(num_probes)
    assert np.all(standard_error > 0), 'estimator should be stochastic'
    np.testing.assert_array_less(np.abs(estimates.mean(1) - target),
                                 5 * standard_error + 1e-4)


def test_hutchinson_init_uses_params_rng_and_apply_needs_a_stream():
  x, variables = batch_and_variables(2)
  shapes = jax.eval_shape(HUTCHINSON.init, jax.random.PRNGKey(0), x)
  assert (jax.tree_util.tree_structure(shapes)
          == jax.tree_util.tree_structure(variables))
  with pytest.raises(ValueError, match='hutchinson'):
    HUTCHINSON.apply(variables, x)


def test_density_integrates_to_one():
  """``exp(log N(f(x)) + log|det df/dx|)`` sums to 1 on a [-8, 8]^2 grid."""
  _, variables = batch_and_variables(2)
  step = 0.2
  axis = np.arange(-8.0, 8.0 + step / 2, step)
  grid = np.stack(np.meshgrid(axis, axis, indexing='ij'), -1).reshape(-1, 2)
  z, log_det = EXACT.apply(variables, jnp.asarray(grid, jnp.float32))
  assert np.abs(np.asarray(z - grid)).max() > 0.1, 'map should not be identity'
  density = np.exp(np.asarray(standard_normal_log_prob(z) + log_det))
  np.testing.assert_allclose(density.sum() * step**2, 1.0, rtol=1e-2)


def test_gradients_reach_every_parameter():
  """Reverse mode (default adjoint) gives finite, non-zero, correct gradients.

  Correctness: the directional derivative along a random unit direction
  matches a central finite difference.
  """
  x, variables = batch_and_variables(2)
  reverse_mode = EXACT.clone(adjoint='recursive_checkpoint')

  def negative_log_likelihood(params):
    z, log_det = reverse_mode.apply({'params': params}, x)
    return -jnp.mean(standard_normal_log_prob(z) + log_det)

  value_and_grad = jax.jit(jax.value_and_grad(negative_log_likelihood))
  _, grads = value_and_grad(variables['params'])
  for path, grad in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(grad)), path
    assert np.abs(np.asarray(grad)).max() > 0, path
  direction = random_like(grads, 7, 1.0)
  norm = jnp.sqrt(sum(jnp.sum(d**2)
                      for d in jax.tree_util.tree_leaves(direction)))
  direction = jax.tree_util.tree_map(lambda d: d / norm, direction)
  epsilon = 1e-2

  def shifted(sign):
    return jax.tree_util.tree_map(lambda p, d: p + sign * epsilon * d,
                                  variables['params'], direction)

  finite_difference = (value_and_grad(shifted(1.0))[0]
                       - value_and_grad(shifted(-1.0))[0]) / (2 * epsilon)
  directional = sum(jnp.vdot(g, d) for g, d in zip(
      jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction)))
  np.testing.assert_allclose(finite_difference, directional, rtol=2e-2)


def test_builder_stacks_identity_blocks():
  flow = ffjord(num_transforms=2, rtol=TOLERANCE, atol=TOLERANCE,
                adjoint='forward')
  assert isinstance(flow, Chain) and len(flow.layers) == 2
  assert all(layer == EXACT for layer in flow.layers)
  x, _ = batch_and_variables(2)
  variables = flow.init(jax.random.PRNGKey(0), x)
  assert len(variables['params']) == 2
  y, log_det = flow.apply(variables, x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(log_det, np.zeros(BATCH))


@pytest.mark.parametrize('module, x, message', [
    (EXACT, jnp.zeros((2, 2, 2)), 'rank 3'),
    (EXACT, jnp.zeros((2,)), 'rank 1'),
    (FFJORD(trace_estimator='stochastic'), jnp.zeros((2, 2)),
     'trace_estimator'),
    (FFJORD(trace_estimator='hutchinson', hutchinson_probe='uniform'),
     jnp.zeros((2, 2)), 'hutchinson_probe'),
    (FFJORD(integration_time=0.0), jnp.zeros((2, 2)), 'integration_time'),
    (FFJORD(adjoint='backsolve'), jnp.zeros((2, 2)), 'adjoint'),
])
def test_bad_input_raises(module, x, message):
  with pytest.raises(ValueError, match=message):
    module.init(jax.random.PRNGKey(0), x)


def test_builder_rejects_empty_stack():
  with pytest.raises(ValueError, match='num_transforms'):
    ffjord(num_transforms=0)
