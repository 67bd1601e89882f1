"""LRMF setups 3 and 4: the VAE, the digit domains, the logit-space data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import data as data_lib
from experiments.lrmf_experiments import alignment as lrmf_lib
from nflax import vae as vae_lib


def _vae_and_variables(event_shape=(4, 4, 1), latent_dim=3):
  vae = vae_lib.VAE(event_shape=event_shape, latent_dim=latent_dim, hidden=(8,))
  x = jnp.full((2, *event_shape), 0.5)
  return vae, jax.jit(vae.init)(jax.random.PRNGKey(0), x, jax.random.PRNGKey(1))


def test_negative_elbo_is_reconstruction_plus_closed_form_kl():
  vae, variables = _vae_and_variables()
  x = jax.random.uniform(jax.random.PRNGKey(2), (5, 4, 4, 1))
  key = jax.random.PRNGKey(3)
  mean, log_std = jax.jit(lambda x: vae.apply(variables, x, method=vae_lib.VAE.encode))(x)
  z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
  p = np.asarray(jax.jit(lambda z: vae.apply(variables, z, method=vae_lib.VAE.decode))(z),
                 np.float64)
  t = np.asarray(x, np.float64)
  reconstruction = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=(1, 2, 3))
  # KL(N(m, s^2) || N(0, 1)) by numerical integration on a grid, per latent coordinate.
  grid = np.linspace(-12, 12, 4001)
  m, s = np.asarray(mean, np.float64), np.exp(np.asarray(log_std, np.float64))
  q = np.exp(-0.5 * ((grid - m[..., None]) / s[..., None]) ** 2) / (s[..., None] * np.sqrt(2 * np.pi))
  log_ratio = np.log(np.maximum(q, 1e-300)) + 0.5 * grid ** 2 + 0.5 * np.log(2 * np.pi)
  kl = np.sum(np.trapezoid(q * log_ratio, grid, axis=-1), axis=-1)
  np.testing.assert_allclose(jax.jit(vae.apply)(variables, x, key), reconstruction + kl,
                             rtol=1e-4)


def test_vae_rejects_wrong_image_shape():
  vae, variables = _vae_and_variables()
  with pytest.raises(ValueError, match=r'\(batch, \*\(4, 4, 1\)\)'):
    jax.eval_shape(lambda x: vae.apply(variables, x, method=vae_lib.VAE.encode),
                   jnp.zeros((2, 5, 5, 1)))


def test_digit_images_share_one_resolution_and_range():
  digits = data_lib.load('digit_images', source='sklearn_digits', size=16, n=50, seed=0)
  mnist = data_lib.load('digit_images', source='mnist_5000', size=16, n=50, seed=0)
  for images in (digits.images, mnist.images):
    assert images.shape == (50, 16, 16, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.9
  with pytest.raises(ValueError, match="unknown source 'usps'"):
    data_lib.load('digit_images', source='usps')


def test_logit_space_round_trip_within_one_dequantisation_level():
  images = data_lib.load('digit_images', source='sklearn_digits', size=8, n=30, seed=0).images
  domain = {f'{split}_x': images[i * 10:(i + 1) * 10] for i, split in
            enumerate(('train', 'val', 'test'))}
  moved = lrmf_lib.to_logit_space(domain, alpha=0.05, seed=0)
  assert np.all(np.isfinite(moved['train_x']))
  back = lrmf_lib.from_logit_space(moved['test_x'], alpha=0.05)
  assert np.max(np.abs(back - domain['test_x'])) <= 1 / 256 + 1e-6
  with pytest.raises(ValueError, match=r'values in \[0, 1\]'):
    lrmf_lib.to_logit_space({k: v * 2 for k, v in domain.items()}, alpha=0.05, seed=0)
