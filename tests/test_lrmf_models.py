"""The LRMF experiments' build_models: every ``config.model.<role>`` of every variant of every
LRMF config built by its experiment module, the densities over the shape of the data."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.lrmf import alignment
from nflax import bijectors, densities

CONFIGS = ('lrmf_moons', 'lrmf_blobs', 'lrmf_digits', 'lrmf_glow_digits',
           'lrmf_moons_baselines', 'lrmf_surfaces', 'lrmf_vanishing_gradient')


def _experiment(config):
  return importlib.import_module(f'experiments.{config.experiment}')


@pytest.mark.parametrize('name', CONFIGS)
def test_build_models_builds_every_model_role_of_every_variant(name):
  module = importlib.import_module(f'configs.{name}')
  for variant in ('',) + tuple(module.VARIANTS):
    config = module.get_config(variant)
    built = _experiment(config).build_models(config)
    assert set(built) == set(config.get('model', {})), (name, variant)
    if 'density' in built:
      assert isinstance(built['density'], densities.Density)
      assert isinstance(built['flow'], bijectors.Bijector)


@pytest.mark.parametrize('name', ['lrmf_moons', 'lrmf_glow_digits', 'lrmf_surfaces'])
def test_the_density_scores_the_data_it_is_built_for(name):
  """Without a shape, the density is built over the events of domain A (one finite log
  density per point); T maps them to events of the same shape."""
  config = importlib.import_module(f'configs.{name}').get_config('smoke')
  x = jnp.asarray(alignment.load_domains(config, 0)[0]['train_x'][:4])
  built = _experiment(config).build_models(config)
  density, flow = built['density'], built['flow']
  assert alignment.event_shape_of(config) == x.shape[1:]
  log_prob = density.apply(jax.jit(density.init)(jax.random.PRNGKey(0), x), x,
                           method=type(density).log_prob)
  assert log_prob.shape == (4,) and np.all(np.isfinite(log_prob))
  moved = flow.apply(jax.jit(flow.init)(jax.random.PRNGKey(1), x), x,
                     method=type(flow).forward)
  assert moved.shape == x.shape
