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
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from nflax import fitting, nets

Array = jax.Array


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
