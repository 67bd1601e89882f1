"""nflax.gan: the GAN value, critic and generator losses against textbook values."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from nflax import gan


def _sigmoid(t):
  return 1 / (1 + np.exp(-np.asarray(t, np.float64)))


def test_cross_entropy_matches_hand_computed_values():
  real, fake = jnp.array([0.0, math.log(3.0)]), jnp.array([0.0])
  # E log sigmoid(real) = (log 1/2 + log 3/4) / 2, E log(1 - sigmoid(0)) = log 1/2.
  expected = (math.log(0.5) + math.log(0.75)) / 2 + math.log(0.5)
  np.testing.assert_allclose(
      gan.gan_value(real_logits=real, fake_logits=fake, form='cross_entropy'), expected,
      rtol=1e-6)
  np.testing.assert_allclose(
      gan.critic_loss(real_logits=real, fake_logits=fake, form='cross_entropy'), -expected,
      rtol=1e-6)
  # Non-saturating: -log sigmoid(0) = log 2.
  np.testing.assert_allclose(gan.generator_loss(fake_logits=fake, form='cross_entropy'),
                             math.log(2.0), rtol=1e-6)


def test_cross_entropy_is_the_binary_cross_entropy_and_stable():
  real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0, 1.0])
  expected_critic = -np.mean(np.log(_sigmoid(real))) - np.mean(np.log(1 - _sigmoid(fake)))
  np.testing.assert_allclose(gan.critic_loss(real_logits=real, fake_logits=fake,
                                             form='cross_entropy'), expected_critic, rtol=1e-6)
  np.testing.assert_allclose(gan.generator_loss(fake_logits=fake, form='cross_entropy'),
                             -np.mean(np.log(_sigmoid(fake))), rtol=1e-6)
  extreme = jnp.array([1e4, -1e4])
  for form in gan.GAN_FORMS:
    assert np.isfinite(float(gan.critic_loss(real_logits=extreme, fake_logits=extreme,
                                             form=form)))
  assert np.isfinite(float(gan.generator_loss(fake_logits=extreme, form='cross_entropy')))


def test_least_squares_matches_hand_computed_values():
  # -1/2 mean((1-1)^2, (3-1)^2) - 1/2 mean(0^2, 2^2) = -1 - 1; logits of any shape.
  real, fake = jnp.array([1.0, 3.0]), jnp.array([[0.0, 2.0]])
  np.testing.assert_allclose(
      gan.gan_value(real_logits=real, fake_logits=fake, form='least_squares'), -2.0)
  np.testing.assert_allclose(
      gan.critic_loss(real_logits=real, fake_logits=fake, form='least_squares'), 2.0)
  # 1/2 mean((1-1)^2, (3-1)^2) = 1.
  np.testing.assert_allclose(
      gan.generator_loss(fake_logits=jnp.array([1.0, 3.0]), form='least_squares'), 1.0)


def test_unknown_form_is_refused():
  logits = jnp.zeros(2)
  with pytest.raises(ValueError, match='unknown GAN form'):
    gan.gan_value(real_logits=logits, fake_logits=logits, form='wasserstein')
  with pytest.raises(ValueError, match='unknown GAN form'):
    gan.generator_loss(fake_logits=logits, form='wasserstein')
  with pytest.raises(TypeError):
    gan.critic_loss(logits, logits, 'cross_entropy')  # keyword-only
