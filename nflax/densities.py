"""Densities: standard and full-covariance Gaussians, Gaussian mixtures, flows.

Every density is a Flax module with

* ``log_prob(x) -> (batch,)`` for ``x`` of shape ``(batch, *event_shape)``;
* ``sample(key, num_samples) -> (num_samples, *event_shape)``;
* ``__call__ = log_prob`` so ``module.init(key, x)`` creates every parameter.

These are the model families ``M`` of LRMF (a density with parameters
``theta``), the flow density of featurized DRE, and the latent prior of
AlignFlow. :func:`as_distrax` gives a ``distrax.Distribution`` view of a bound
density for code written against distrax.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from nflax.bijectors.base import Bijector, as_distrax as bijector_as_distrax

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


class _DistraxDensity(distrax.Distribution):
  """A bound ``nflax`` density seen as a ``distrax.Distribution``."""

  def __init__(self, module: Density, variables: Any, event_shape: Sequence[int],
               key: jax.Array | None = None):
    self._module = module
    self._variables = variables
    self._event_shape = tuple(event_shape)
    self._rngs = None if key is None else {'hutchinson': key}

  @property
  def event_shape(self):
    return self._event_shape

  def log_prob(self, value):
    value = jnp.asarray(value)
    lead = value.shape[:value.ndim - len(self._event_shape)]
    flat = value.reshape((-1,) + self._event_shape)
    return self._module.apply(self._variables, flat, method=type(self._module).log_prob,
                              rngs=self._rngs).reshape(lead)

  def _sample_n(self, key, n):
    return self._module.apply(self._variables, key, n, method=type(self._module).sample,
                              rngs=self._rngs)


def as_distrax(module: Density, variables: Any, event_shape: Sequence[int],
               key: jax.Array | None = None) -> distrax.Distribution:
  """Wraps a density module with fixed ``variables`` as a distrax distribution.

  A :class:`FlowDensity` whose base is :class:`StandardNormal` becomes an
  ordinary ``distrax.Transformed`` (so distrax's bijector algebra applies);
  any other density is wrapped directly. Both have ``log_prob`` over any
  leading axes and ``sample(seed=key, sample_shape=n)``. ``key`` is the
  ``'hutchinson'`` rng of flows with a stochastic trace estimator (FFJORD with
  ``trace_estimator='hutchinson'``; one probe draw for every call).
  """
  if isinstance(module, FlowDensity) and isinstance(module.base, StandardNormal):
    flow_vars = {k: v['flow'] for k, v in variables.items() if 'flow' in v}
    event_ndims = len(event_shape)
    base = distrax.Independent(
        distrax.Normal(jnp.zeros(event_shape), jnp.ones(event_shape)),
        reinterpreted_batch_ndims=event_ndims)
    return distrax.Transformed(
        base, distrax.Inverse(bijector_as_distrax(module.flow, flow_vars, event_ndims, key)))
  return _DistraxDensity(module, variables, event_shape, key)
