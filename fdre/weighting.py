"""Importance weights in practice and sampling-importance-resampling (App. D.1, D.4).

Everything works on log-ratios ``log r(x)`` (``(n,)`` arrays), so weights of
very different magnitudes stay finite.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ['self_normalize', 'flatten', 'augmentation_weights', 'mixture_log_weight', 'sir_indices']

Array = jax.Array


def self_normalize(log_weights: Array) -> Array:
  """Self-normalised weights ``r(x_i) / sum_j r(x_j)`` (App. D.1, item 1), ``(n,)``.

  Args:
    log_weights: ``(n,)`` log importance weights ``log r(x_i)``.

  Returns:
    ``(n,)`` non-negative weights summing to 1.
  """
  if log_weights.ndim != 1:
    raise ValueError(f'self_normalize expects (n,) log-weights, got {log_weights.shape}')
  return jax.nn.softmax(log_weights)


def flatten(log_weights: Array, *, power: float) -> Array:
  """Flattened weights ``r(x)^power`` (App. D.1, item 2), returned as logs ``power log r``.

  ``power = 0`` gives uniform weights, ``power = 1`` the ratios themselves.
  """
  if power < 0:
    raise ValueError(f'the flattening power must be >= 0, got {power}')
  return power * log_weights


def augmentation_weights(log_ratio: Array, *, power: float) -> Array:
  """Flattened, self-normalised weights scaled to mean 1 (App. D.1, items 1 and 2).

  ``w_i = n r_i^power / sum_j r_j^power`` for ``(n,)`` log-ratios ``log r_i``: the weights of
  ``n`` synthetic examples in an importance-weighted training set (App. D.5), where real
  examples keep weight 1. ``power = 0`` gives the unweighted set, ``power = 1`` plain
  self-normalisation.

  Returns:
    ``(n,)`` non-negative weights with mean 1.
  """
  return log_ratio.shape[0] * self_normalize(flatten(log_ratio, power=power))


def mixture_log_weight(*, log_ratio: Array, n_p: int, n_q: int) -> Array:
  """``log p(x) / h(x)`` for a model ``h`` fitted on the mixture of ``D_p`` and ``D_q`` (App. D.4).

  A flow fitted by maximum likelihood on the union of ``n_p`` samples of ``p``
  and ``n_q`` of ``q`` learns ``h = pi_p p + pi_q q`` with the actual set
  fractions ``pi_p = n_p / (n_p + n_q)``, ``pi_q = 1 - pi_p``. The importance
  weight that turns samples of ``h`` into samples of ``p`` is therefore
  ``r'(x) = p / h = r / (pi_p r + pi_q)`` with ``r = p / q``; for
  ``n_p = n_q`` this is the paper's ``r / (1/2 (r + 1))``.

  Args:
    log_ratio: ``(n,)`` estimates of ``log r(x) = log p(x) / q(x)``.
    n_p: number of samples of ``p`` the flow was fitted on.
    n_q: number of samples of ``q`` the flow was fitted on.

  Returns:
    ``(n,)`` values of ``log r'(x)``.
  """
  if n_p <= 0 or n_q <= 0:
    raise ValueError(f'set sizes must be positive, got n_p={n_p}, n_q={n_q}')
  log_pi_p = math.log(n_p / (n_p + n_q))
  log_pi_q = math.log(n_q / (n_p + n_q))
  return log_ratio - jnp.logaddexp(log_pi_p + log_ratio, log_pi_q)


def sir_indices(key: Array, *, log_weights: Array, num_samples: int) -> Array:
  """Sampling-importance-resampling: ``num_samples`` draws of ``j ~ Categorical(w~)`` (App. D.4).

  ``w~`` are the self-normalised weights :func:`self_normalize` of
  ``log_weights``; draws are with replacement.

  Args:
    key: PRNG key.
    log_weights: ``(n,)`` log importance weights of ``n`` proposals.
    num_samples: number of resampled indices.

  Returns:
    ``(num_samples,)`` int32 indices into the proposals.
  """
  if log_weights.ndim != 1:
    raise ValueError(f'sir_indices expects (n,) log-weights, got {log_weights.shape}')
  return jax.random.categorical(key, log_weights, shape=(num_samples,))
