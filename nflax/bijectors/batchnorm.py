"""Batch normalisation as a bijector (MAF paper, Papamakarios et al. 2017).

  y = exp(log_gamma) * (x - m) / sqrt(v + eps) + beta,
  log|det dy/dx| = sum(log_gamma - 0.5 * log(v + eps))

where ``(m, v)`` are the mean and variance of the current batch in a training
call and running averages otherwise.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from nflax.bijectors.base import Bijector

__all__ = ['BatchNorm']

Array = jax.Array


class BatchNorm(Bijector):
  """Batch normalisation bijector on ``(batch, *event_shape)``.

  Statistics are per event element (per feature for vectors), taken over the
  batch axis. Learnable ``log_gamma`` and ``beta`` (event shape, zero
  initialised) give the output scale and shift.

  Which statistics are used (the same rule in both directions):

  * training call (``batch_stats`` mutable, e.g. ``apply(...,
    mutable=['batch_stats'])``): the forward uses the biased mean and variance
    of its input batch, stores them as ``batch_mean``/``batch_var`` and moves
    the running averages ``mean``/``var`` towards them,
    ``running <- momentum * running + (1 - momentum) * batch`` (not during
    ``init``). A training inverse uses the stored ``batch_mean``/``batch_var``
    of the latest training forward, so it undoes that forward exactly.
  * otherwise: both directions use the running averages, and the layer is an
    elementwise affine map of each sample.

  Attributes:
    momentum: decay of the running averages.
    eps: added to the variance for numerical stability.
  """

  momentum: float = 0.9
  eps: float = 1e-5

  @nn.compact
  def _statistics(self, x: Array | None, event_shape: tuple[int, ...]
                  ) -> tuple[Array, Array, Array, Array]:
    """Returns ``(log_gamma, beta, mean, var)``, each of shape ``event_shape``.

    Args:
      x: the forward input batch, whose statistics a training call uses and
        records; ``None`` from the inverse.
      event_shape: shape of one sample.
    """
    log_gamma = self.param('log_gamma', nn.initializers.zeros, event_shape)
    beta = self.param('beta', nn.initializers.zeros, event_shape)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, event_shape)
    running_var = self.variable('batch_stats', 'var', jnp.ones, event_shape)
    batch_mean = self.variable('batch_stats', 'batch_mean', jnp.zeros, event_shape)
    batch_var = self.variable('batch_stats', 'batch_var', jnp.ones, event_shape)
    if not self.is_mutable_collection('batch_stats'):
      return log_gamma, beta, running_mean.value, running_var.value
    if x is not None:
      batch_mean.value = jnp.mean(x, axis=0)
      batch_var.value = jnp.var(x, axis=0)
      if not self.is_initializing():
        running_mean.value = (self.momentum * running_mean.value
                              + (1 - self.momentum) * batch_mean.value)
        running_var.value = (self.momentum * running_var.value
                             + (1 - self.momentum) * batch_var.value)
    return log_gamma, beta, batch_mean.value, batch_var.value

  def _log_det(self, log_gamma: Array, var: Array, batch_size: int) -> Array:
    log_det = jnp.sum(log_gamma - 0.5 * jnp.log(var + self.eps))
    return jnp.broadcast_to(log_det, (batch_size,))

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = exp(log_gamma) (x - m) / sqrt(v + eps) + beta``; log-det ``(batch,)``."""
    if x.ndim < 2:
      raise ValueError(f'BatchNorm expects (batch, *event_shape) inputs, got shape {x.shape}')
    log_gamma, beta, mean, var = self._statistics(x, x.shape[1:])
    y = jnp.exp(log_gamma) * (x - mean) * jax.lax.rsqrt(var + self.eps) + beta
    return y, self._log_det(log_gamma, var, x.shape[0])

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = (y - beta) exp(-log_gamma) sqrt(v + eps) + m``; log-det ``(batch,)``."""
    if y.ndim < 2:
      raise ValueError(f'BatchNorm expects (batch, *event_shape) inputs, got shape {y.shape}')
    log_gamma, beta, mean, var = self._statistics(None, y.shape[1:])
    x = (y - beta) * jnp.exp(-log_gamma) * jnp.sqrt(var + self.eps) + mean
    return x, -self._log_det(log_gamma, var, y.shape[0])
