"""Mutual information as an average log density ratio (Sec. 5.2, App. D.3).

``I(X; Y) = E_{v(x, y)} [log v(x, y) / (p(x) q(y))]``: a ratio estimator between
samples of the joint ``v`` (pairs ``(x_i, y_i)``) and samples of the product of
marginals (pairs ``(x_i, y_pi(i))`` with ``pi`` a random permutation) gives the
MI as the mean estimated log-ratio over held-out joint samples.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ['joint_and_marginal_samples', 'mutual_information']

Array = jax.Array


def joint_and_marginal_samples(key: Array, *, x: Array, y: Array) -> tuple[Array, Array]:
  """Samples of the joint and of the product of marginals from paired data.

  Args:
    key: PRNG key of the permutation.
    x: ``(n, d_x)`` first variable.
    y: ``(n, d_y)`` second variable, ``y_i`` paired with ``x_i``.

  Returns:
    ``(joint, marginals)``, each ``(n, d_x + d_y)``: ``[x_i, y_i]`` and
    ``[x_i, y_pi(i)]``.
  """
  if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
    raise ValueError(f'expected paired (n, d_x) and (n, d_y) arrays, got {x.shape} and {y.shape}')
  shuffled = y[jax.random.permutation(key, y.shape[0])]
  return jnp.concatenate([x, y], 1), jnp.concatenate([x, shuffled], 1)


def mutual_information(*, joint_log_ratio: Array) -> Array:
  """MI estimate ``mean_i log r(x_i, y_i)`` over ``(n,)`` log-ratios on joint samples."""
  if joint_log_ratio.ndim != 1:
    raise ValueError(f'expected (n,) log-ratios, got {joint_log_ratio.shape}')
  return jnp.mean(joint_log_ratio)
