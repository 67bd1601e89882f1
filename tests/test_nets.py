"""nflax.nets.Conv / conv_general_dilated against Flax's nn.Conv and lax's convolution."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from nflax import nets

_CASES = [
    dict(features=8, kernel_size=(3, 3), padding='SAME'),
    dict(features=8, kernel_size=(4, 4), strides=2, padding='SAME'),
    dict(features=5, kernel_size=(3, 3), padding='VALID'),
    dict(features=5, kernel_size=(1, 1)),
    dict(features=5, kernel_size=(3, 3), padding=((2, 1), (0, 3)), strides=(2, 3)),
]


@pytest.mark.parametrize('kwargs', _CASES)
def test_conv_equals_flax_conv(kwargs):
  """Same parameter tree, outputs, reverse- and forward-mode derivatives as nn.Conv."""
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 10, 11, 3))
  ours, flax_conv = nets.Conv(**kwargs), nn.Conv(**kwargs)
  variables = flax_conv.init(jax.random.PRNGKey(1), x)
  # Non-zero bias so that it is checked too.
  variables = jax.tree.map(lambda v: v + 0.1, variables)
  assert (jax.tree.structure(ours.init(jax.random.PRNGKey(1), x))
          == jax.tree.structure(variables))
  np.testing.assert_allclose(jax.jit(ours.apply)(variables, x), flax_conv.apply(variables, x),
                             rtol=1e-5, atol=1e-5)

  def loss(module):
    return lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))

  grads = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(variables, x)
  expected = jax.grad(loss(flax_conv), argnums=(0, 1))(variables, x)
  for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  jac = jax.jacfwd(lambda x: ours.apply(variables, x))(x[:1])
  np.testing.assert_allclose(jac, jax.jacfwd(lambda x: flax_conv.apply(variables, x))(x[:1]),
                             rtol=1e-5, atol=1e-5)


def test_cpu_lowering_has_no_convolution():
  """On CPU the 3x3 convolution is lowered as a matrix product of patches."""
  x = jnp.ones((2, 8, 8, 3))
  conv = nets.Conv(4, (3, 3))
  variables = conv.init(jax.random.PRNGKey(0), x)
  text = jax.jit(conv.apply).lower(variables, x).as_text()
  if jax.default_backend() == 'cpu':
    assert 'convolution' not in text
    assert 'dot_general' in text


def test_unsupported_convolutions_fall_back_to_lax():
  """Dilations, groups and other layouts are lax.conv_general_dilated itself."""
  lhs = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 4))
  rhs = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 2, 6))
  numbers = ('NHWC', 'HWIO', 'NHWC')
  grouped = nets.conv_general_dilated(lhs, rhs, (1, 1), 'SAME', dimension_numbers=numbers,
                                      feature_group_count=2)
  np.testing.assert_allclose(grouped, lax.conv_general_dilated(
      lhs, rhs, (1, 1), 'SAME', dimension_numbers=numbers, feature_group_count=2), rtol=1e-6)
  rhs = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 6))
  dilated = nets.conv_general_dilated(lhs, rhs, (1, 1), 'SAME', rhs_dilation=(2, 2),
                                      dimension_numbers=numbers)
  np.testing.assert_allclose(dilated, lax.conv_general_dilated(
      lhs, rhs, (1, 1), 'SAME', rhs_dilation=(2, 2), dimension_numbers=numbers), rtol=1e-6)
  nchw = jnp.transpose(lhs, (0, 3, 1, 2))
  np.testing.assert_allclose(
      nets.conv_general_dilated(nchw, rhs, (1, 1), 'SAME', dimension_numbers=('NCHW', 'HWIO', 'NCHW')),
      lax.conv_general_dilated(nchw, rhs, (1, 1), 'SAME', dimension_numbers=('NCHW', 'HWIO', 'NCHW')),
      rtol=1e-6)


def test_convnet_is_glows_3x3_1x1_3x3_network():
  """Glow Sec. 3.3: a 3x3 and a 1x1 hidden convolution, a zero-initialised 3x3 output."""
  net = nets.ConvNet(out_channels=6, hidden_channels=8)
  x = jnp.ones((2, 4, 4, 3))
  params = net.init(jax.random.PRNGKey(0), x)['params']
  shapes = [params[f'Conv_{i}']['kernel'].shape for i in range(3)]
  assert shapes == [(3, 3, 3, 8), (1, 1, 8, 8), (3, 3, 8, 6)]
  np.testing.assert_array_equal(net.apply({'params': params}, x), 0.0)
