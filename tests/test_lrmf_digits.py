"""LRMF setups 3 and 4: the VAE and VAE-GAN, the digit domains, the logit-space data."""

import functools
import json
import shutil

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import lrmf_digits
from harness import data as data_lib
from harness import workdir as workdir_lib
from experiments.lrmf import alignment as lrmf_lib
from experiments.lrmf import digits
from nflax import two_player
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


def _vaegan(event_shape=(4, 4, 1), latent_dim=3):
  vae, variables = _vae_and_variables(event_shape, latent_dim)
  discriminator = vae_lib.Discriminator(hidden=(8,))
  critic_params = jax.jit(discriminator.init)(jax.random.PRNGKey(4),
                                              jnp.zeros((2, *event_shape)))['params']
  return vae, variables['params'], discriminator, critic_params


def _vaegan_grads(adversarial_weight, feature_weight, x, key):
  vae, params, discriminator, critic_params = _vaegan()
  loss = lambda p: vae_lib.vaegan_losses(
      p, critic_params, x, key, vae=vae, discriminator=discriminator,
      adversarial_weight=adversarial_weight, feature_weight=feature_weight)[0][0]
  return jax.jit(jax.grad(loss))(params)


def test_vaegan_loss_without_its_terms_is_the_negative_elbo():
  vae, params, discriminator, critic_params = _vaegan()
  x = jax.random.uniform(jax.random.PRNGKey(2), (5, 4, 4, 1))
  key = jax.random.PRNGKey(3)
  (vae_loss, _), terms = vae_lib.vaegan_losses(
      params, critic_params, x, key, vae=vae, discriminator=discriminator,
      adversarial_weight=0.0, feature_weight=0.0)
  posterior_key, _ = jax.random.split(key)
  expected = jnp.mean(vae.apply({'params': params}, x, posterior_key))
  np.testing.assert_allclose(vae_loss, expected, rtol=1e-5)
  np.testing.assert_allclose(terms['negative_elbo'], expected, rtol=1e-5)


def test_gan_term_changes_only_the_decoders_gradient():
  x = jax.random.uniform(jax.random.PRNGKey(2), (6, 4, 4, 1))
  key = jax.random.PRNGKey(3)
  plain, adversarial = (_vaegan_grads(weight, 0.0, x, key) for weight in (0.0, 1.0))
  # Larsen et al. Alg. 1: the encoder gets no GAN gradient, the decoder does.
  np.testing.assert_allclose(
      jax.flatten_util.ravel_pytree(plain['_encoder'])[0],
      jax.flatten_util.ravel_pytree(adversarial['_encoder'])[0], rtol=1e-5, atol=1e-7)
  difference = jax.tree.map(lambda p, q: float(jnp.max(jnp.abs(p - q))),
                            plain['_decoder'], adversarial['_decoder'])
  assert max(jax.tree.leaves(difference)) > 1e-3
  # The feature-space reconstruction reaches the encoder too.
  featured = _vaegan_grads(0.0, 1.0, x, key)
  assert not np.allclose(jax.flatten_util.ravel_pytree(plain['_encoder'])[0],
                         jax.flatten_util.ravel_pytree(featured['_encoder'])[0])


def test_vaegan_step_trains_the_discriminator_on_its_own_loss():
  vae, params, discriminator, critic_params = _vaegan()
  optimizer, critic_optimizer = optax.adam(1e-3), optax.adam(1e-2)
  state = two_player.init_state(variables={'params': params},
                                critic_variables={'params': critic_params},
                                optimizer=optimizer, critic_optimizer=critic_optimizer)
  step = jax.jit(functools.partial(
      vae_lib.vaegan_step, vae=vae, discriminator=discriminator, optimizer=optimizer,
      critic_optimizer=critic_optimizer, adversarial_weight=1.0, feature_weight=1.0))
  x = (jax.random.uniform(jax.random.PRNGKey(2), (16, 4, 4, 1)) > 0.5).astype(jnp.float32)
  key = jax.random.PRNGKey(5)
  # The step's discriminator gradient is that of the critic loss in the critic's parameters.
  critic_loss = lambda c: vae_lib.vaegan_losses(
      params, c, x, key, vae=vae, discriminator=discriminator, adversarial_weight=1.0,
      feature_weight=1.0)[0][1]
  _, metrics = step(state, x, key)
  np.testing.assert_allclose(metrics['critic_grad_norm'],
                             optax.tree.norm(jax.grad(critic_loss)(critic_params)), rtol=1e-5)
  losses = []
  for i in range(60):
    state, metrics = step(state, x, jax.random.fold_in(key, i))
    losses.append(float(metrics['critic_loss']))
  assert int(state.step) == 60
  # Binary images against blurry reconstructions: the discriminator learns to tell them
  # apart, its loss falls from log 4 (chance).
  assert losses[0] > 1.2 and np.mean(losses[-10:]) < losses[0] - 0.2


def test_vaegan_stage_resumes_to_the_uninterrupted_result(tmp_path):
  config = lrmf_digits.get_config('smoke')
  config.train.vae.update(num_steps=20, checkpoint_every=10)
  images = data_lib.load('digit_images', source='sklearn_digits', size=4, n=60, seed=0).images
  domain = {'train_x': images[:30], 'val_x': images[30:40]}
  built = digits.build_models(config, images.shape[1:])
  key = jax.random.PRNGKey(0)
  fit = lambda workdir: digits._fit_vae(config, built['vae'], built['vae_discriminator'], domain,
                                        domain, str(workdir),
                                        workdir_lib.MetricsLog(str(workdir)), key)
  straight = fit(tmp_path / 'straight')
  # A run killed after its step-10 checkpoint: the same workdir without the last one.
  shutil.copytree(tmp_path / 'straight', tmp_path / 'resumed')
  shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / 'vae' / '20')
  resumed = fit(tmp_path / 'resumed')
  with open(tmp_path / 'resumed' / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f if '"vae"' in line]
  assert [r['step'] for r in records] == [10, 20] and 'critic_loss' in records[-1]
  np.testing.assert_allclose(jax.flatten_util.ravel_pytree(straight)[0],
                             jax.flatten_util.ravel_pytree(resumed)[0], rtol=1e-5, atol=1e-6)
