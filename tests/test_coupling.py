"""Tests of nflax.bijectors.coupling and the convolutional conditioners in nflax.nets."""

import functools

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nflax import distrax_views, nets
from nflax.bijectors.coupling import AffineCoupling, checkerboard, realnvp
from nflax.bijectors.linear import Permutation
from tests.bijector_checks import check_bijector, init_variables, normal, perturb

SMALL_MLP = functools.partial(nets.MLP, hidden=(8,))
SMALL_CONVNET = functools.partial(nets.ConvNet, hidden_channels=4, num_layers=1)
SMALL_RESNET = functools.partial(nets.ResNet, hidden_channels=4, num_blocks=1)


def _unchanged_part(mask, shape, parity):
  """Boolean array of ``shape[1:]``, True where the coupling passes inputs through."""
  unchanged = np.zeros(shape[1:], bool)
  if mask == 'alternate':
    unchanged[int(parity)::2] = True
  elif mask in ('half', 'channel'):
    half = shape[-1] // 2
    unchanged[..., half:] = parity
    unchanged[..., :half] = not parity
  else:
    rows, cols = np.indices(shape[1:3])
    unchanged[(rows + cols) % 2 == int(parity)] = True
  return unchanged


CASES = [
    ('alternate', (3, 5), SMALL_MLP),
    ('half', (3, 5), SMALL_MLP),
    ('checkerboard', (2, 4, 4, 2), SMALL_CONVNET),
    ('channel', (2, 2, 2, 4), SMALL_RESNET),
]


@pytest.mark.parametrize('mask,shape,conditioner', CASES)
def test_coupling_contract(mask, shape, conditioner):
  x = normal(shape)
  module = AffineCoupling(mask=mask, parity=mask in ('alternate', 'checkerboard'),
                          conditioner=conditioner)
  variables = init_variables(module, x)
  y, log_det = module.apply(variables, x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(log_det, jnp.zeros(shape[:1]))
  check_bijector(module, x, perturb(variables))


@pytest.mark.parametrize('parity', [False, True])
@pytest.mark.parametrize('mask,shape,conditioner', CASES)
def test_coupling_transforms_only_the_unmasked_part(mask, shape, conditioner, parity):
  x = normal(shape)
  module = AffineCoupling(mask=mask, parity=parity, conditioner=conditioner)
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  variables = perturb(jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes))
  y, x = np.asarray(module.apply(variables, x)[0]), np.asarray(x)
  unchanged = _unchanged_part(mask, shape, parity)
  np.testing.assert_array_equal(y[:, unchanged], x[:, unchanged])
  assert np.all(np.abs(y[:, ~unchanged] - x[:, ~unchanged]) > 1e-6)


def test_checkerboard_mask():
  np.testing.assert_array_equal(checkerboard(2, 3, False)[..., 0], [[1, 0, 1], [0, 1, 0]])
  np.testing.assert_array_equal(checkerboard(2, 3, True)[..., 0], [[0, 1, 0], [1, 0, 1]])


def test_coupling_matches_formula_with_fixed_conditioner():
  class Fixed(nn.Module):
    """Conditioner returning ``(raw, shift) = (x_a @ w, 2 * x_a)``."""
    out_features: int

    @nn.compact
    def __call__(self, x):
      w = jnp.array([[1.0, -1.0], [0.5, 2.0]])
      return jnp.concatenate([x @ w, 2 * x], axis=-1)

  x = normal((3, 4))
  module = AffineCoupling(mask='half', conditioner=Fixed)
  variables = init_variables(module, x)
  y, log_det = module.apply(variables, x)
  log_scale = jnp.tanh(x[:, :2] @ jnp.array([[1.0, -1.0], [0.5, 2.0]]))
  expected = x[:, 2:] * jnp.exp(log_scale) + 2 * x[:, :2]
  np.testing.assert_allclose(y[:, 2:], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(log_det, log_scale.sum(-1), rtol=1e-5, atol=1e-6)


def test_coupling_log_scale_is_bounded_by_scale():
  x = 100 * normal((3, 4))
  module = AffineCoupling(mask='alternate', conditioner=SMALL_MLP)
  variables = perturb(init_variables(module, x), size=10.0)
  _, log_det = module.apply(variables, x)
  bound = jnp.sum(jnp.abs(variables['params']['scale']))
  assert np.all(np.abs(log_det) <= bound + 1e-5)


def test_default_conditioners():
  vector = AffineCoupling(mask='alternate')
  params = jax.eval_shape(vector.init, jax.random.PRNGKey(0), jnp.ones((2, 4)))['params']
  assert params['MLP_0']['Dense_0']['kernel'].shape == (2, 512)
  image = AffineCoupling(mask='channel')
  params = jax.eval_shape(image.init, jax.random.PRNGKey(0), jnp.ones((1, 2, 2, 2)))['params']
  assert params['ConvNet_0']['Conv_0']['kernel'].shape == (3, 3, 1, 512)


@pytest.mark.parametrize('mask,shape,match', [
    ('alternate', (2, 4, 4, 2), 'needs vectors'),
    ('half', (2, 1), 'cannot split'),
    ('checkerboard', (2, 4), 'needs images'),
    ('channel', (2, 4, 4, 1), 'cannot split'),
    ('checkerboard', (2, 1, 1, 2), 'cannot split'),
    ('diagonal', (2, 4), 'unknown mask'),
])
def test_coupling_rejects_bad_input(mask, shape, match):
  module = AffineCoupling(mask=mask, conditioner=SMALL_MLP)
  with pytest.raises(ValueError, match=match):
    module.init(jax.random.PRNGKey(0), jnp.ones(shape))


def test_coupling_rejects_wrong_conditioner_output():
  module = AffineCoupling(mask='half', conditioner=lambda out_features: nn.Dense(out_features + 1))
  with pytest.raises(ValueError, match='conditioner output'):
    module.init(jax.random.PRNGKey(0), jnp.ones((2, 4)))


@pytest.mark.parametrize('net', [SMALL_CONVNET, SMALL_RESNET])
def test_conv_conditioners_shapes_and_zero_output(net):
  x = normal((2, 4, 4, 3))
  module = net(out_channels=6)
  out = module.apply(init_variables(module, x), x)
  assert out.shape == (2, 4, 4, 6)
  np.testing.assert_array_equal(out, jnp.zeros_like(out))
  with pytest.raises(ValueError, match='batch, H, W, C'):
    module.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))


def test_realnvp_contract_and_mixing():
  x = normal((3, 2))
  flow = realnvp(num_blocks=2, hidden=(8,))
  variables = init_variables(flow, x)
  y, log_det = flow.apply(variables, x)
  np.testing.assert_allclose(y, x, atol=1e-6)
  np.testing.assert_allclose(log_det, jnp.zeros(3), atol=1e-6)
  variables = check_bijector(flow, x, perturb(variables))
  jacobian = jax.jit(jax.jacfwd(lambda v: flow.apply(variables, v[None])[0][0]))(x[0])
  assert np.all(np.abs(np.asarray(jacobian)) > 1e-6), 'some output ignores some input'


def test_realnvp_structure():
  flow = realnvp(num_blocks=3, hidden=(8,))
  kinds = [type(layer).__name__ for layer in flow.layers]
  assert kinds == ['AffineCoupling', 'Reverse', 'AffineCoupling', 'Reverse', 'AffineCoupling']
  assert type(realnvp(num_blocks=2, hidden=(8,)).layers[-1]).__name__ == 'Reverse'
  assert {layer.mask for layer in flow.layers if isinstance(layer, AffineCoupling)} == {'half'}
  shuffled = realnvp(num_blocks=3, hidden=(8,), permutation='random', seed=4)
  assert [layer.seed for layer in shuffled.layers if isinstance(layer, Permutation)] == [5, 6]
  with pytest.raises(ValueError, match='num_blocks'):
    realnvp(num_blocks=0)
  with pytest.raises(ValueError, match='permutation'):
    realnvp(permutation='shuffle')


def test_realnvp_distrax_density():
  flow = realnvp(num_blocks=2, hidden=(8,))
  x = normal((1, 3, 2))
  variables = perturb(init_variables(flow, x[0]))
  base = distrax.MultivariateNormalDiag(jnp.zeros(2), jnp.ones(2))
  density = distrax.Transformed(base, distrax.Inverse(distrax_views.bijector(flow, variables)))
  z, log_det = flow.apply(variables, x[0])
  expected = base.log_prob(z) + log_det
  np.testing.assert_allclose(density.log_prob(x)[0], expected, rtol=1e-5, atol=1e-5)
