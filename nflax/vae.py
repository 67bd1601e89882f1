"""A variational autoencoder with a Gaussian latent space (Kingma & Welling, 2014).

LRMF's setup 3 embeds two image domains into one shared latent space with an
autoencoder trained on the unlabelled images of both, aligns the latent codes
with a flow, and decodes them back to images. :class:`VAE` is that
autoencoder; :func:`elbo_objective` trains it with :func:`nflax.fitting.fit`.

* Encoder ``q(z | x) = N(mu(x), diag(sigma(x)^2))``, an MLP on the flattened
  image.
* Prior ``p(z) = N(0, I)``.
* Decoder ``p(x | z)``: independent Bernoulli likelihoods with logits from an
  MLP, applied to intensities in ``[0, 1]`` (the usual "continuous targets"
  cross-entropy; it is a proper likelihood only for binary pixels, so the ELBO
  is reported in nats of that cross-entropy).

The negative ELBO per example is
``-E_q log p(x | z) + KL(q(z | x) || N(0, I))`` with one reparameterised
sample ``z = mu + sigma * eps`` and the closed-form Gaussian KL
``1/2 sum_k (mu_k^2 + sigma_k^2 - 1 - 2 log sigma_k)``.

The VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric", the autoencoder of LRMF's setup 3) makes the decoder also the
generator of a GAN: a :class:`Discriminator` ``Dis`` tells real images ``x`` from
reconstructions ``x~ = Dec(z), z ~ q(z | x)`` and from prior samples
``x_p = Dec(z_p), z_p ~ N(0, I)``. :func:`vaegan_step` trains the three
networks as Larsen et al. Sec. 2 and Alg. 1 do, with the pixel likelihood kept:

* the discriminator minimises ``nflax.gan.critic_loss`` of ``x`` against
  ``[x~; x_p]`` (Larsen's ``-L_GAN``, here with the two fake sets averaged);
* the encoder and decoder minimise
  ``-ELBO + w_f L_feat + w_a L_gen``, where
  ``L_feat = 1/2 ||Dis_l(x) - Dis_l(x~)||^2`` is the Gaussian reconstruction
  likelihood in the discriminator's last hidden layer ``Dis_l`` (Larsen's
  ``L_llike^Dis_l``, unit variance, constants dropped) and ``L_gen`` the non-saturating
  ``nflax.gan.generator_loss`` of ``[x~; x_p]``; as in Larsen Alg. 1 the encoder
  gets no GAN gradient (``L_gen`` decodes ``stop_gradient(z)``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from nflax import fitting, gan, nets, two_player

__all__ = ['VAE', 'elbo_objective', 'Discriminator', 'vaegan_losses', 'vaegan_step']

Array = jax.Array
PyTree = Any


class VAE(nn.Module):
  """Gaussian-latent VAE on ``(batch, *event_shape)`` data with values in ``[0, 1]``.

  Attributes:
    event_shape: shape of one example, e.g. ``(16, 16, 1)``.
    latent_dim: dimension of ``z``.
    hidden: widths of the encoder's hidden layers; the decoder mirrors them.
  """

  event_shape: Sequence[int]
  latent_dim: int
  hidden: Sequence[int] = (512, 256)

  def setup(self):
    self._encoder = nets.MLP(hidden=tuple(self.hidden), out_features=2 * self.latent_dim,
                             zero_init_output=False)
    self._decoder = nets.MLP(hidden=tuple(reversed(self.hidden)),
                             out_features=math.prod(self.event_shape), zero_init_output=False)

  def _check(self, x: Array) -> None:
    if tuple(x.shape[1:]) != tuple(self.event_shape):
      raise ValueError(f'VAE expects (batch, *{tuple(self.event_shape)}) inputs, '
                       f'got shape {x.shape}')

  def encode(self, x: Array) -> tuple[Array, Array]:
    """``(mu, log_sigma)`` of ``q(z | x)``, each ``(batch, latent_dim)``."""
    self._check(x)
    out = self._encoder(x.reshape(x.shape[0], -1))
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, -10.0, 5.0)

  def decode_logits(self, z: Array) -> Array:
    """Bernoulli logits of ``p(x | z)``, ``(batch, *event_shape)``."""
    return self._decoder(z).reshape((z.shape[0], *self.event_shape))

  def decode(self, z: Array) -> Array:
    """The decoder's mean image ``sigmoid(logits)`` in ``[0, 1]``, ``(batch, *event_shape)``."""
    return jax.nn.sigmoid(self.decode_logits(z))

  def negative_elbo(self, x: Array, key: Array) -> Array:
    """``-ELBO(x) = -E_q log p(x | z) + KL(q(z | x) || N(0, I))`` per example, ``(batch,)``.

    Args:
      x: ``(batch, *event_shape)`` intensities in ``[0, 1]``.
      key: the key of the reparameterised sample ``z = mu + sigma * eps``.
    """
    mean, log_std = self.encode(x)
    z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    logits = self.decode_logits(z)
    flat = lambda v: v.reshape(v.shape[0], -1)
    reconstruction = jnp.sum(flat(optax.sigmoid_binary_cross_entropy(logits, x)), axis=-1)
    kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)
    return reconstruction + kl

  def __call__(self, x: Array, key: Array) -> Array:
    return self.negative_elbo(x, key)


def elbo_objective(vae: VAE, eval_batch_size: int = 1024) -> fitting.Objective:
  """The mean negative ELBO as an :class:`nflax.fitting.Objective`.

  Training draws ``z`` with the step's key; evaluation uses the fixed key 0, so
  the held-out value is a deterministic one-sample estimate that early
  stopping can compare across steps.
  """

  def train_loss(params, model_state, batch, key):
    return jnp.mean(vae.apply({'params': params}, batch, key)), model_state

  def eval_loss(params, model_state, data):
    del model_state
    key = jax.random.PRNGKey(0)
    return fitting.mean_over_batches(lambda batch: vae.apply({'params': params}, batch, key),
                                     data, eval_batch_size)

  return fitting.Objective(train_loss, eval_loss)


class Discriminator(nn.Module):
  """MLP discriminator of a VAE-GAN on ``(batch, *event_shape)`` images.

  ``h_1 = phi(W_1 vec(x) + c_1), ..., h_L = phi(W_L h_{L-1} + c_L)`` with leaky ReLU
  ``phi`` (slope 0.2); returns the logits ``w^T h_L + c`` ``(batch,)`` and the features
  ``Dis_l(x) = h_L`` ``(batch, hidden[-1])`` in which the VAE-GAN measures
  reconstructions.

  Attributes:
    hidden: widths of the hidden layers (at least one).
  """

  hidden: Sequence[int] = (256, 256)

  @nn.compact
  def __call__(self, x: Array) -> tuple[Array, Array]:
    if not self.hidden:
      raise ValueError('Discriminator needs at least one hidden layer (its features)')
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), negative_slope=0.2)
    return nn.Dense(1)(h)[:, 0], h


def vaegan_losses(params: PyTree, critic_params: PyTree, x: Array, key: Array, *, vae: VAE,
                  discriminator: Discriminator, adversarial_weight: float,
                  feature_weight: float) -> tuple[tuple[Array, Array], dict[str, Array]]:
  """The VAE-GAN's two objectives on one batch (module docstring; Larsen et al. Alg. 1).

  Args:
    params: the VAE's parameters.
    critic_params: the discriminator's parameters.
    x: ``(batch, *event_shape)`` real images in ``[0, 1]``.
    key: randomness of ``z ~ q(z | x)`` and of ``z_p ~ N(0, I)``.
    vae, discriminator: the modules.
    adversarial_weight: ``w_a``, the weight of the generator loss.
    feature_weight: ``w_f``, the weight of the feature-space reconstruction.

  Returns:
    ``((vae_loss, critic_loss), terms)``: the scalar the encoder and decoder minimise
    (``mean(-ELBO) + w_f mean(L_feat) + w_a L_gen``), the one the discriminator minimises,
    and the scalar terms ``negative_elbo``, ``feature_loss``, ``generator_loss``. Each
    player's gradient is that of its own objective only (:func:`vaegan_step`).
  """
  posterior_key, prior_key = jax.random.split(key)
  apply = lambda method, *args: vae.apply({'params': params}, *args, method=method)
  mean, log_std = apply(VAE.encode, x)
  z = mean + jnp.exp(log_std) * jax.random.normal(posterior_key, mean.shape)
  logits = apply(VAE.decode_logits, z)
  flat = lambda v: v.reshape(v.shape[0], -1)
  reconstruction = jnp.sum(flat(optax.sigmoid_binary_cross_entropy(logits, x)), axis=-1)
  kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)
  # The GAN's fakes: reconstructions of stop_gradient(z) (no GAN gradient into the encoder)
  # and decoded prior samples.
  z_prior = jax.random.normal(prior_key, mean.shape)
  fakes = apply(VAE.decode, jnp.concatenate([jax.lax.stop_gradient(z), z_prior]))
  n = x.shape[0]
  critic_logits, features = discriminator.apply(
      {'params': critic_params}, jnp.concatenate([x, jax.nn.sigmoid(logits), fakes]))
  feature_loss = 0.5 * jnp.sum((features[:n] - features[n:2 * n]) ** 2, axis=-1)
  real_logits, fake_logits = critic_logits[:n], critic_logits[2 * n:]
  generator_loss = gan.generator_loss(fake_logits=fake_logits, form='cross_entropy')
  critic_loss = gan.critic_loss(real_logits=real_logits, fake_logits=fake_logits,
                                form='cross_entropy')
  negative_elbo = jnp.mean(reconstruction + kl)
  vae_loss = (negative_elbo + feature_weight * jnp.mean(feature_loss)
              + adversarial_weight * generator_loss)
  return (vae_loss, critic_loss), {'negative_elbo': negative_elbo,
                                   'feature_loss': jnp.mean(feature_loss),
                                   'generator_loss': generator_loss}


def vaegan_step(state: two_player.TwoPlayerState, batch: Array, key: Array, *, vae: VAE,
                discriminator: Discriminator, optimizer: optax.GradientTransformation,
                critic_optimizer: optax.GradientTransformation, adversarial_weight: float,
                feature_weight: float) -> tuple[two_player.TwoPlayerState, dict[str, Array]]:
  """One simultaneous VAE-GAN update of the VAE and the discriminator (Larsen Alg. 1).

  Both objectives of :func:`vaegan_losses` come from one forward pass; the VAE steps on
  the gradient of its loss in its parameters, the discriminator on that of its loss in
  its parameters (each player's loss is differentiated only in its own parameters).
  An :mod:`nflax.engine` step once the keyword arguments are bound with
  ``functools.partial``.

  Args:
    state: a :class:`nflax.two_player.TwoPlayerState` whose generator is the VAE and
      whose critic the discriminator (:func:`nflax.two_player.init_state`).
    batch: ``(batch, *event_shape)`` images in ``[0, 1]``.
    key: randomness of this step.
    vae, discriminator, optimizer, critic_optimizer: the modules and their optimisers.
    adversarial_weight, feature_weight: see :func:`vaegan_losses`.

  Returns:
    ``(new_state, metrics)``: scalar ``loss`` (the VAE's), ``critic_loss``, the terms of
    :func:`vaegan_losses`, and the gradient and update norms of both players
    (:mod:`nflax.two_player`).
  """
  losses = functools.partial(vaegan_losses, x=batch, key=key, vae=vae,
                             discriminator=discriminator,
                             adversarial_weight=adversarial_weight,
                             feature_weight=feature_weight)
  (vae_loss, critic_loss), pullback, terms = jax.vjp(losses, state.params,
                                                     state.critic_params, has_aux=True)
  grads, _ = pullback((jnp.ones_like(vae_loss), jnp.zeros_like(critic_loss)))
  _, critic_grads = pullback((jnp.zeros_like(vae_loss), jnp.ones_like(critic_loss)))
  state, critic_norms = two_player.update_critic(state, critic_grads, critic_optimizer)
  state, norms = two_player.update_generator(state, grads, optimizer)
  return state.replace(step=state.step + 1), {
      'loss': vae_loss, 'critic_loss': critic_loss, **terms, **norms, **critic_norms}
