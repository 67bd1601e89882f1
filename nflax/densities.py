"""Densities: standard and full-covariance Gaussians, Gaussian mixtures, flows.

Every density is a Flax module with

* ``log_prob(x) -> (batch,)`` for ``x`` of shape ``(batch, *event_shape)``;
* ``sample(key, num_samples) -> (num_samples, *event_shape)``;
* ``__call__ = log_prob`` so ``module.init(key, x)`` creates every parameter.

These are the model families ``M`` of LRMF (a density with parameters
``theta``), the flow density of featurized DRE, and the latent prior of
AlignFlow. :func:`nflax.distrax_views.distribution` gives a ``distrax.Distribution``
view of a bound density for code written against distrax (optional extra ``distrax``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from nflax.bijectors.base import Bijector

__all__ = ['Density', 'StandardNormal', 'Gaussian', 'GaussianMixture', 'FlowDensity']

Array = jax.Array

_LOG_2PI = math.log(2.0 * math.pi)


class Density(nn.Module):
  """Abstract density over events of shape ``event_shape``."""

  def log_prob(self, x: Array) -> Array:
    raise NotImplementedError

  def sample(self, key: Array, num_samples: int) -> Array:
    raise NotImplementedError

  def __call__(self, x: Array) -> Array:
    return self.log_prob(x)


def _check_event(x: Array, event_shape: Sequence[int], who: str) -> None:
  if tuple(x.shape[1:]) != tuple(event_shape):
    raise ValueError(
        f'{who} expects inputs of shape (batch, {", ".join(map(str, event_shape))}'
        f'{"," if len(event_shape) == 1 else ""}), got {tuple(x.shape)}')


class StandardNormal(Density):
  """``N(0, I)`` over ``event_shape``; no parameters.

  ``log N(x) = -1/2 ||x||^2 - D/2 log(2 pi)`` with ``D = prod(event_shape)``.
  """

  event_shape: Sequence[int]

  def log_prob(self, x):
    _check_event(x, self.event_shape, 'StandardNormal')
    flat = x.reshape(x.shape[0], -1)
    return -0.5 * jnp.sum(flat**2, -1) - 0.5 * flat.shape[-1] * _LOG_2PI

  def sample(self, key, num_samples):
    return jax.random.normal(key, (num_samples, *self.event_shape))


def _tril_with_positive_diagonal(raw: Array) -> Array:
  """Lower-triangular matrix whose diagonal is ``softplus``-positive."""
  diag = jax.nn.softplus(jnp.diagonal(raw, axis1=-2, axis2=-1)) + 1e-5
  return jnp.tril(raw, -1) + diag[..., :, None] * jnp.eye(raw.shape[-1])


def _softplus_inverse(y: float) -> float:
  return math.log(math.expm1(y))


class Gaussian(Density):
  """Learnable Gaussian ``N(mean, L L^T)`` on vectors of dimension ``dim``.

  ``L`` is lower triangular with a positive diagonal (``covariance='full'``) or
  diagonal (``covariance='diag'``). Starts at ``N(0, I)``.

  ``log N(x) = -1/2 ||L^{-1}(x - mean)||^2 - sum log diag(L) - D/2 log(2 pi)``.
  """

  dim: int
  covariance: str = 'full'

  @nn.compact
  def _mean_and_scale(self) -> tuple[Array, Array]:
    if self.covariance not in ('full', 'diag'):
      raise ValueError(
          f"Gaussian covariance must be 'full' or 'diag', got {self.covariance!r}")
    mean = self.param('mean', nn.initializers.zeros, (self.dim,))
    if self.covariance == 'diag':
      raw = self.param('raw_scale', nn.initializers.constant(
          _softplus_inverse(1.0 - 1e-5)), (self.dim,))
      return mean, jnp.diag(jax.nn.softplus(raw) + 1e-5)
    raw = self.param(
        'raw_scale_tril',
        lambda _: jnp.eye(self.dim) * _softplus_inverse(1.0 - 1e-5))
    return mean, _tril_with_positive_diagonal(raw)

  def mean_and_covariance(self) -> tuple[Array, Array]:
    """Returns ``(mean (dim,), covariance (dim, dim))``."""
    mean, scale = self._mean_and_scale()
    return mean, scale @ scale.T

  def log_prob(self, x):
    _check_event(x, (self.dim,), 'Gaussian')
    mean, scale = self._mean_and_scale()
    white = jax.scipy.linalg.solve_triangular(scale, (x - mean).T, lower=True).T
    return (-0.5 * jnp.sum(white**2, -1)
            - jnp.sum(jnp.log(jnp.diagonal(scale))) - 0.5 * self.dim * _LOG_2PI)

  def sample(self, key, num_samples):
    mean, scale = self._mean_and_scale()
    return mean + jax.random.normal(key, (num_samples, self.dim)) @ scale.T


class GaussianMixture(Density):
  """Mixture of ``num_components`` full-covariance Gaussians in ``dim`` dims.

  ``log p(x) = logsumexp_k [log pi_k + log N(x; mu_k, L_k L_k^T)]``. Means start
  spread as ``N(0, init_spread^2 I)`` draws so the components can separate.
  """

  dim: int
  num_components: int
  init_spread: float = 1.0

  @nn.compact
  def _parameters(self) -> tuple[Array, Array, Array]:
    logits = self.param('logits', nn.initializers.zeros, (self.num_components,))
    means = self.param('means', nn.initializers.normal(self.init_spread),
                       (self.num_components, self.dim))
    raw = self.param(
        'raw_scale_tril',
        lambda _: jnp.tile(jnp.eye(self.dim) * _softplus_inverse(1.0 - 1e-5),
                           (self.num_components, 1, 1)))
    return jax.nn.log_softmax(logits), means, _tril_with_positive_diagonal(raw)

  def log_prob(self, x):
    _check_event(x, (self.dim,), 'GaussianMixture')
    log_weights, means, scales = self._parameters()

    def component(mean, scale):
      white = jax.scipy.linalg.solve_triangular(scale, (x - mean).T, lower=True).T
      return (-0.5 * jnp.sum(white**2, -1)
              - jnp.sum(jnp.log(jnp.diagonal(scale))) - 0.5 * self.dim * _LOG_2PI)

    per_component = jax.vmap(component)(means, scales)  # (K, batch)
    return jax.nn.logsumexp(per_component + log_weights[:, None], axis=0)

  def sample(self, key, num_samples):
    log_weights, means, scales = self._parameters()
    key_k, key_z = jax.random.split(key)
    k = jax.random.categorical(key_k, log_weights, shape=(num_samples,))
    z = jax.random.normal(key_z, (num_samples, self.dim))
    return means[k] + jnp.einsum('nij,nj->ni', scales[k], z)


class FlowDensity(Density):
  """Density of ``x`` whose image under a flow ``f`` follows a base density.

  ``log p(x) = log p_Z(f(x)) + log|det df/dx|`` (change of variables);
  samples are ``f^{-1}(z)`` with ``z ~ p_Z``. ``flow`` maps data to latent.
  """

  flow: Bijector
  base: Density

  def log_prob(self, x):
    z, log_det = self.flow.forward_and_log_det(jnp.asarray(x))
    return self.base.log_prob(z) + log_det

  def sample(self, key, num_samples):
    return self.flow.inverse(self.base.sample(key, num_samples))

  def encode(self, x: Array) -> Array:
    """Maps data to the latent space, ``z = f(x)``."""
    return self.flow.forward(x)

  def decode(self, z: Array) -> Array:
    """Maps latents to data space, ``x = f^{-1}(z)``."""
    return self.flow.inverse(z)
