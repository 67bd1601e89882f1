"""Exactly invertible image pre-processing and dequantisation (RealNVP Sec. 4.1).

AlignFlow's exact cycle consistency (AlignFlow Prop. 1) needs every step
between pixels and latents to be a bijection. The pipeline for integer pixels
``k in {0, ..., B-1}^D`` (``B = num_bins``, ``D`` dimensions) is

  k --dequantize--> x = (k + u) / B in [0, 1)^D --Logit--> logit space --flow--> z

where only :func:`dequantize` (adding uniform noise ``u ~ U[0, 1)^D``) is not
a bijection. Data in ``[-1, 1]`` enters the chain through
``ScaleShift(scale=0.5, shift=0.5)``, which maps ``[-1, 1]`` onto ``[0, 1]``.

Likelihoods: a flow density on ``[0, 1)^D`` gives ``log p(x)``; the density of
the dequantised pixels ``k + u`` on ``[0, B)^D`` is
``log p(x) + D * log(1 / B)``, i.e. ``log p(x)`` plus the log-determinant
``-D log B`` of the map ``k + u -> (k + u) / B``
(:func:`dequantization_log_det`). Its negative, divided by ``D log 2``, is the
bits per dimension (:func:`bits_per_dim`), an upper bound on the discrete
model's code length.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nflax.bijectors.base import Bijector

__all__ = ['Logit', 'ScaleShift', 'dequantize', 'dequantization_log_det', 'bits_per_dim']

Array = jax.Array


def _check_has_batch_axis(name: str, x: Array) -> None:
  if x.ndim < 1:
    raise ValueError(f'{name} expects (batch, *event_shape) inputs, got a scalar')


def _sum_event(values: Array) -> Array:
  """Sums ``(batch, *event_shape)`` over the event axes; shape ``(batch,)``."""
  return jnp.sum(values, axis=tuple(range(1, values.ndim)))


class Logit(Bijector):
  """Elementwise ``y = logit(alpha + (1 - 2 alpha) x)`` from ``(0, 1)`` to the reals.

  The logit pre-processing of RealNVP (Sec. 4.1, ``alpha = 0.05``), here in
  the symmetric form that maps ``[0, 1]`` onto ``[alpha, 1 - alpha]``, which
  keeps pixels at 0 or 1 away from the singularities of the logit. Per
  element, with ``p = alpha + (1 - 2 alpha) x``,

    dy/dx = (1 - 2 alpha) / (p (1 - p)),

  so ``log|det dy/dx| = sum(log(1 - 2 alpha) - log p - log(1 - p))`` over the
  event. The inverse is ``x = (sigmoid(y) - alpha) / (1 - 2 alpha)`` with
  log-determinant ``sum(log sigmoid(y) + log sigmoid(-y) - log(1 - 2 alpha))``.
  Inputs are ``(batch, *event_shape)``; ``x`` must lie in ``[0, 1]`` (in
  ``(0, 1)`` when ``alpha = 0``).

  Attributes:
    alpha: margin in ``[0, 0.5)``.
  """

  alpha: float = 0.05

  def _check(self, x: Array) -> None:
    _check_has_batch_axis('Logit', x)
    if not 0 <= self.alpha < 0.5:
      raise ValueError(f'Logit alpha must lie in [0, 0.5), got {self.alpha}')

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = logit(alpha + (1 - 2 alpha) x)``; log-det ``(batch,)``."""
    self._check(x)
    squeezed = self.alpha + (1 - 2 * self.alpha) * x
    log_p, log_one_minus_p = jnp.log(squeezed), jnp.log1p(-squeezed)
    log_det = _sum_event(math.log(1 - 2 * self.alpha) - log_p - log_one_minus_p)
    return log_p - log_one_minus_p, log_det

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = (sigmoid(y) - alpha) / (1 - 2 alpha)``; log-det ``(batch,)``."""
    self._check(y)
    x = (jax.nn.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
    log_det = _sum_event(
        jax.nn.log_sigmoid(y) + jax.nn.log_sigmoid(-y) - math.log(1 - 2 * self.alpha))
    return x, log_det


class ScaleShift(Bijector):
  """Fixed (not learned) elementwise affine map ``y = scale * x + shift``.

  ``log|det dy/dx| = D log|scale|`` for events of ``D`` elements. Use
  ``ScaleShift(scale=0.5, shift=0.5)`` to map ``[-1, 1]`` onto ``[0, 1]`` and
  ``ScaleShift(scale=2.0, shift=-1.0)`` for the opposite direction.

  Attributes:
    scale: non-zero multiplier.
    shift: offset added after scaling.
  """

  scale: float = 1.0
  shift: float = 0.0

  def _log_det(self, x: Array) -> Array:
    _check_has_batch_axis('ScaleShift', x)
    if self.scale == 0:
      raise ValueError('ScaleShift scale must be non-zero')
    num_elements = math.prod(x.shape[1:])
    return jnp.full(x.shape[:1], num_elements * math.log(abs(self.scale)), x.dtype)

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = scale * x + shift``; log-det ``D log|scale|``, ``(batch,)``."""
    return self.scale * x + self.shift, self._log_det(x)

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = (y - shift) / scale``; log-det ``-D log|scale|``, ``(batch,)``."""
    return (y - self.shift) / self.scale, -self._log_det(y)


def dequantize(key: Array, pixels: Array, num_bins: int = 256) -> Array:
  """Uniform dequantisation ``x = (k + u) / num_bins``, ``u ~ U[0, 1)`` (RealNVP Sec. 4.1).

  The one non-bijective step of the pre-processing. Its output lies in
  ``[0, 1)``: values that float rounding would push to 1 are clipped to the
  largest float below 1. A density ``log p(x)`` of the result is turned into
  the density of ``k + u`` by adding :func:`dequantization_log_det`.

  Args:
    key: PRNG key of the noise ``u``.
    pixels: integer array of any shape with values in ``{0, ..., num_bins-1}``
      (e.g. ``uint8`` images).
    num_bins: number of quantisation levels ``B``.

  Returns:
    A float32 array of ``pixels``'s shape with values in ``[0, 1)``.

  Raises:
    ValueError: if ``pixels`` is not of an integer dtype or ``num_bins < 1``.
  """
  pixels = jnp.asarray(pixels)
  if not jnp.issubdtype(pixels.dtype, jnp.integer):
    raise ValueError(
        f'dequantize expects integer pixel values, got dtype {pixels.dtype}')
  if num_bins < 1:
    raise ValueError(f'num_bins must be at least 1, got {num_bins}')
  noise = jax.random.uniform(key, pixels.shape, jnp.float32)
  x = (pixels.astype(jnp.float32) + noise) / num_bins
  return jnp.minimum(x, jnp.nextafter(jnp.float32(1), jnp.float32(0)))


def dequantization_log_det(num_dims: int, num_bins: int = 256) -> float:
  """``-D log(num_bins)``: log-det of ``k + u -> (k + u) / num_bins`` on ``D`` dimensions.

  Added to a log-density of dequantised data in ``[0, 1)^D`` it gives the
  log-density of ``k + u`` on ``[0, num_bins)^D``, the quantity that bits per
  dimension are reported for.
  """
  return -num_dims * math.log(num_bins)


def bits_per_dim(log_prob: Array, num_dims: int, num_bins: int = 256) -> Array:
  """Bits per dimension ``-(log p(x) - D log B) / (D log 2)``.

  Args:
    log_prob: ``log p(x)`` (nats) of dequantised data ``x`` in ``[0, 1)^D``
      under the model, any shape (e.g. ``(batch,)``).
    num_dims: ``D``, elements per example (``H * W * C`` for images).
    num_bins: quantisation levels ``B`` used by :func:`dequantize`.

  Returns:
    Bits per dimension, same shape as ``log_prob``.
  """
  if num_dims < 1:
    raise ValueError(f'num_dims must be at least 1, got {num_dims}')
  log_prob_of_pixels = log_prob + dequantization_log_det(num_dims, num_bins)
  return -log_prob_of_pixels / (num_dims * math.log(2))
