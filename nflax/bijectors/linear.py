"""Linear and elementwise-affine bijectors, and fixed permutations.

* :class:`ElementwiseAffine`: ``y = x * exp(log_scale) + shift`` per element.
* :class:`PositiveDefiniteAffine`: ``y = (A^T A) x + b`` (LRMF Sec. 8.3).
* :class:`Permutation`, :class:`Reverse`: fixed reorderings of the last axis.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np

from nflax.bijectors.base import Bijector

__all__ = ['ElementwiseAffine', 'PositiveDefiniteAffine', 'Permutation', 'Reverse']

Array = jax.Array


def _check_has_batch_axis(name: str, x: Array) -> None:
  if x.ndim < 2:
    raise ValueError(f'{name} expects (batch, *event_shape) inputs, got shape {x.shape}')


class ElementwiseAffine(Bijector):
  """``y = x * exp(log_scale) + shift`` with parameters of the event shape.

  Works for any event shape (vectors ``(batch, d)``, images ``(batch, H, W,
  C)``). Starts at the identity (``log_scale = shift = 0``). The
  log-determinant is ``sum(log_scale)`` over the event, the same for every
  sample.
  """

  @nn.compact
  def _log_scale_and_shift(self, event_shape: tuple[int, ...]) -> tuple[Array, Array]:
    """Parameters ``log_scale`` and ``shift``, each of shape ``event_shape``."""
    log_scale = self.param('log_scale', nn.initializers.zeros, event_shape)
    shift = self.param('shift', nn.initializers.zeros, event_shape)
    return log_scale, shift

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = x * exp(log_scale) + shift``; log-det ``sum(log_scale)``, ``(batch,)``."""
    _check_has_batch_axis('ElementwiseAffine', x)
    log_scale, shift = self._log_scale_and_shift(x.shape[1:])
    log_det = jnp.broadcast_to(jnp.sum(log_scale), x.shape[:1])
    return x * jnp.exp(log_scale) + shift, log_det

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = (y - shift) * exp(-log_scale)``; log-det ``-sum(log_scale)``."""
    _check_has_batch_axis('ElementwiseAffine', y)
    log_scale, shift = self._log_scale_and_shift(y.shape[1:])
    log_det = jnp.broadcast_to(-jnp.sum(log_scale), y.shape[:1])
    return (y - shift) * jnp.exp(-log_scale), log_det


class PositiveDefiniteAffine(Bijector):
  """Positive-definite affine map ``y = (A^T A) x + b`` on vectors (LRMF Sec. 8.3).

  ``A`` is a learnable ``(d, d)`` matrix (parameter ``'matrix'``, initialised
  at the identity) and ``b`` a ``(d,)`` shift (``'shift'``, zero). Since
  ``A^T A`` is symmetric positive definite for invertible ``A``,
  ``log|det dy/dx| = log det(A^T A) = 2 log|det A|``. The inverse solves
  ``(A^T A) x = y - b`` with the Cholesky factor of ``A^T A``.

  Use :meth:`make_variables` or :meth:`make_variables_from_positive_definite`
  to build variables with a given ``A`` (or ``A^T A``) and ``b``.
  """

  @nn.compact
  def _matrix_and_shift(self, dim: int) -> tuple[Array, Array]:
    """Parameters ``A`` of shape ``(dim, dim)`` and ``b`` of shape ``(dim,)``."""
    matrix = self.param('matrix', lambda _, shape: jnp.eye(shape[0]), (dim, dim))
    shift = self.param('shift', nn.initializers.zeros, (dim,))
    return matrix, shift

  def _parameters(self, x: Array) -> tuple[Array, Array]:
    if x.ndim != 2:
      raise ValueError(f'PositiveDefiniteAffine expects vectors (batch, d), got shape {x.shape}')
    return self._matrix_and_shift(x.shape[-1])

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = (A^T A) x + b`` per row of ``x``; log-det ``2 log|det A|``, ``(batch,)``."""
    matrix, shift = self._parameters(x)
    gram = matrix.T @ matrix
    log_det = 2 * jnp.linalg.slogdet(matrix)[1]
    return x @ gram + shift, jnp.broadcast_to(log_det, x.shape[:1])

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = (A^T A)^{-1} (y - b)`` by Cholesky solve; log-det ``-2 log|det A|``."""
    matrix, shift = self._parameters(y)
    cholesky = jnp.linalg.cholesky(matrix.T @ matrix)
    x = jax.scipy.linalg.cho_solve((cholesky, True), (y - shift).T).T
    log_det = -2 * jnp.linalg.slogdet(matrix)[1]
    return x, jnp.broadcast_to(log_det, y.shape[:1])

  @staticmethod
  def make_variables(matrix: Array, shift: Array) -> dict[str, Any]:
    """Variables ``{'params': {'matrix': A, 'shift': b}}`` for given ``A``, ``b``.

    Args:
      matrix: ``A``, shape ``(d, d)``, invertible.
      shift: ``b``, shape ``(d,)``.
    """
    matrix, shift = jnp.asarray(matrix), jnp.asarray(shift)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
      raise ValueError(f'matrix must be square (d, d), got shape {matrix.shape}')
    if shift.shape != matrix.shape[:1]:
      raise ValueError(f'shift must have shape {matrix.shape[:1]}, got {shift.shape}')
    return {'params': {'matrix': matrix, 'shift': shift}}

  @staticmethod
  def make_variables_from_positive_definite(positive_definite: Array,
                                            shift: Array) -> dict[str, Any]:
    """Variables for the map ``y = P x + b`` with ``P`` symmetric positive definite.

    ``A`` is taken as the transposed Cholesky factor of ``P`` (``P = L L^T``,
    ``A = L^T``), so that ``A^T A = P``. Call it outside ``jax.jit``: it checks
    ``P`` eagerly.

    Args:
      positive_definite: ``P``, shape ``(d, d)``.
      shift: ``b``, shape ``(d,)``.
    """
    cholesky = jnp.linalg.cholesky(jnp.asarray(positive_definite))
    if not bool(jnp.all(jnp.isfinite(cholesky))):
      raise ValueError('positive_definite is not symmetric positive definite')
    return PositiveDefiniteAffine.make_variables(cholesky.T, shift)


class Permutation(Bijector):
  """Fixed permutation of the last axis (features of vectors, channels of images).

  ``y[..., i] = x[..., permutation[i]]``; log-determinant 0. The permutation is
  either given or drawn (``numpy.random.default_rng(seed)``) once the size of
  the last axis is known; it is not a parameter.

  Attributes:
    permutation: explicit permutation of ``range(d)``.
    seed: seed of a random permutation, used when ``permutation`` is ``None``.
  """

  permutation: Sequence[int] | None = None
  seed: int | None = None

  def _indices(self, x: Array) -> np.ndarray:
    _check_has_batch_axis('Permutation', x)
    size = x.shape[-1]
    if (self.permutation is None) == (self.seed is None):
      raise ValueError('Permutation needs exactly one of `permutation` and `seed`')
    if self.permutation is None:
      return np.random.default_rng(self.seed).permutation(size)
    indices = np.asarray(self.permutation, dtype=int)
    if indices.ndim != 1 or sorted(indices.tolist()) != list(range(size)):
      raise ValueError(
          f'permutation {tuple(self.permutation)} is not a permutation of range({size})')
    return indices

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = x[..., permutation]``; log-det zeros ``(batch,)``."""
    return x[..., self._indices(x)], jnp.zeros(x.shape[:1], x.dtype)

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = y[..., argsort(permutation)]``; log-det zeros ``(batch,)``."""
    return y[..., np.argsort(self._indices(y))], jnp.zeros(y.shape[:1], y.dtype)


class Reverse(Bijector):
  """Reverses the last axis, ``y[..., i] = x[..., d - 1 - i]``; log-det 0."""

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = x[..., ::-1]``; log-det zeros ``(batch,)``."""
    _check_has_batch_axis('Reverse', x)
    return jnp.flip(x, axis=-1), jnp.zeros(x.shape[:1], x.dtype)

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = y[..., ::-1]``; log-det zeros ``(batch,)``."""
    _check_has_batch_axis('Reverse', y)
    return jnp.flip(y, axis=-1), jnp.zeros(y.shape[:1], y.dtype)
