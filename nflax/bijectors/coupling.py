"""Affine coupling layers (Real NVP, Dinh et al. 2017) and a vector Real NVP.

A coupling layer splits its input by a binary mask into a conditioning part
``x_a`` that passes through unchanged and a transformed part ``x_b``:

  y_a = x_a,    y_b = x_b * exp(s(x_a)) + t(x_a)

with log-determinant ``sum s(x_a)`` (Real NVP Sec. 3.3) and inverse
``x_b = (y_b - t(y_a)) * exp(-s(y_a))``. Here ``s = scale * tanh(raw)`` with a
learnable ``scale`` per transformed feature (per channel for the checkerboard
mask), which bounds the log-scale; ``(raw, t)`` come from one conditioner
network whose output layer is zero-initialised, so every layer starts at the
identity map.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nflax import nets
from nflax.bijectors.base import Bijector, Chain
from nflax.bijectors.linear import Permutation, Reverse

__all__ = ['VECTOR_MASKS', 'IMAGE_MASKS', 'checkerboard', 'AffineCoupling', 'realnvp']

Array = jax.Array

VECTOR_MASKS = ('alternate', 'half')
IMAGE_MASKS = ('checkerboard', 'channel')


def _split_indices(mask: str, size: int, parity: bool) -> tuple[np.ndarray, np.ndarray]:
  """Indices ``(conditioning, transformed)`` of a last axis of length ``size``.

  ``'alternate'`` conditions on even indices, ``'half'`` and ``'channel'`` on
  the first ``size // 2``; ``parity`` swaps the two parts.
  """
  indices = np.arange(size)
  if mask == 'alternate':
    first, second = indices[0::2], indices[1::2]
  else:
    first, second = indices[:size // 2], indices[size // 2:]
  return (second, first) if parity else (first, second)


def checkerboard(height: int, width: int, parity: bool) -> np.ndarray:
  """Checkerboard mask of shape ``(height, width, 1)``.

  Entry ``(i, j)`` is 1 (conditioning) where ``(i + j) % 2 == parity`` and 0
  (transformed) elsewhere.
  """
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return ((rows + cols) % 2 == int(parity)).astype(np.float32)[..., None]


class AffineCoupling(Bijector):
  """Affine coupling ``y_b = x_b * exp(s(x_a)) + t(x_a)``, ``y_a = x_a``.

  Vectors ``(batch, d)`` use the ``'alternate'`` mask (condition on even
  indices) or ``'half'`` (condition on the first ``d // 2``); images
  ``(batch, H, W, C)`` use ``'checkerboard'`` (condition on pixels with
  ``(i + j)`` even, the conditioner sees the masked image ``x * b`` and its
  output is used on the other pixels) or ``'channel'`` (condition on the first
  ``C // 2`` channels). Uneven splits of odd sizes are allowed; each part must
  be non-empty.

  Attributes:
    mask: one of ``'alternate'``, ``'half'`` (vectors), ``'checkerboard'``,
      ``'channel'`` (images).
    parity: swap the conditioning and transformed parts.
    conditioner: factory of the network producing ``(raw_scale, shift)``:
      called as ``conditioner(out_features=2 * k)`` for vector masks (the
      network maps ``(batch, d_a) -> (batch, 2 * k)``) and as
      ``conditioner(out_channels=2 * k)`` for image masks (``(batch, H, W, c)
      -> (batch, H, W, 2 * k)``), ``k`` being the number of transformed
      features or channels. Its output layer should start at zero. ``None``
      selects ``functools.partial(nets.MLP, hidden=(512, 512))`` for vectors
      and ``nets.ConvNet`` (two hidden layers of 512 filters) for images.
  """

  mask: str = 'alternate'
  parity: bool = False
  conditioner: Callable[..., nn.Module] | None = None

  def _check_input(self, x: Array) -> None:
    if self.mask in VECTOR_MASKS:
      if x.ndim != 2:
        raise ValueError(f"mask '{self.mask}' needs vectors (batch, d), got shape {x.shape}")
      if x.shape[-1] < 2:
        raise ValueError(f"mask '{self.mask}' cannot split a vector of size {x.shape[-1]}")
    elif self.mask in IMAGE_MASKS:
      if x.ndim != 4:
        raise ValueError(
            f"mask '{self.mask}' needs images (batch, H, W, C), got shape {x.shape}")
      if self.mask == 'channel' and x.shape[-1] < 2:
        raise ValueError(f"mask 'channel' cannot split {x.shape[-1]} channel(s)")
      if self.mask == 'checkerboard' and x.shape[1] * x.shape[2] < 2:
        raise ValueError(f"mask 'checkerboard' cannot split a {x.shape[1]}x{x.shape[2]} image")
    else:
      raise ValueError(
          f"unknown mask '{self.mask}'; expected one of {VECTOR_MASKS + IMAGE_MASKS}")

  def _make_conditioner(self, num_outputs: int) -> nn.Module:
    factory = self.conditioner
    if self.mask in VECTOR_MASKS:
      if factory is None:
        factory = functools.partial(nets.MLP, hidden=(512, 512))
      return factory(out_features=num_outputs)
    if factory is None:
      factory = nets.ConvNet
    return factory(out_channels=num_outputs)

  @nn.compact
  def _log_scale_and_shift(self, conditioning: Array, num_features: int) -> tuple[Array, Array]:
    """Bounded log-scale ``s`` and shift ``t``, each ``(*, num_features)``.

    Args:
      conditioning: ``(batch, d_a)`` or ``(batch, H, W, c)`` conditioner input.
      num_features: size ``k`` of the last axis of ``s`` and ``t``.

    Returns:
      ``s = scale * tanh(raw)`` and ``t``, split from the conditioner output.
    """
    output = self._make_conditioner(2 * num_features)(conditioning)
    if output.shape[:-1] != conditioning.shape[:-1] or output.shape[-1] != 2 * num_features:
      raise ValueError(
          f'conditioner output has shape {output.shape}, expected '
          f'{conditioning.shape[:-1] + (2 * num_features,)}')
    scale = self.param('scale', nn.initializers.ones, (num_features,))
    raw, shift = jnp.split(output, 2, axis=-1)
    return scale * jnp.tanh(raw), shift

  def _couple(self, inputs: Array, direction: int) -> tuple[Array, Array]:
    """Applies the coupling forward (``direction=1``) or inverse (``-1``)."""
    self._check_input(inputs)
    sum_axes = tuple(range(1, inputs.ndim))
    if self.mask == 'checkerboard':
      _, height, width, channels = inputs.shape
      conditioning_mask = checkerboard(height, width, self.parity).astype(inputs.dtype)
      log_scale, shift = self._log_scale_and_shift(inputs * conditioning_mask, channels)
      log_scale = log_scale * (1 - conditioning_mask)
      shift = shift * (1 - conditioning_mask)
      if direction == 1:
        outputs = inputs * jnp.exp(log_scale) + shift
      else:
        outputs = (inputs - shift) * jnp.exp(-log_scale)
      return outputs, direction * jnp.sum(log_scale, axis=sum_axes)
    conditioning_idx, transformed_idx = _split_indices(
        self.mask, inputs.shape[-1], self.parity)
    log_scale, shift = self._log_scale_and_shift(
        inputs[..., conditioning_idx], len(transformed_idx))
    transformed = inputs[..., transformed_idx]
    if direction == 1:
      transformed = transformed * jnp.exp(log_scale) + shift
    else:
      transformed = (transformed - shift) * jnp.exp(-log_scale)
    outputs = inputs.at[..., transformed_idx].set(transformed)
    return outputs, direction * jnp.sum(log_scale, axis=sum_axes)

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y_b = x_b * exp(s(x_a)) + t(x_a)``; log-det ``sum s(x_a)``, shape ``(batch,)``."""
    return self._couple(x, 1)

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x_b = (y_b - t(y_a)) * exp(-s(y_a))``; log-det ``-sum s(y_a)``."""
    return self._couple(y, -1)


def realnvp(num_blocks: int = 4, hidden: Sequence[int] = (512, 512),
            permutation: str = 'reverse', seed: int = 0) -> Chain:
  """Real NVP for vectors ``(batch, d)`` as in the LRMF experiments (LRMF Sec. 8.3).

  "Four NVP blocks (spaced by permutations), each block parameterized by a
  dense neural network": ``num_blocks`` :class:`AffineCoupling` layers with the
  ``'half'`` mask (the second half of the features is transformed given the
  first), each conditioned by an MLP of widths ``hidden`` (ReLU), with a fixed
  permutation between consecutive blocks. ``permutation='reverse'`` reverses
  the features, so consecutive couplings transform complementary halves (for
  2-D data: x_2 given x_1, then x_1 given x_2); ``'random'`` uses fixed random
  permutations (seed ``seed + block index``), better mixing for large d. With
  ``'reverse'`` a closing :class:`Reverse` is appended when the number of
  reversals is odd, so the chain keeps the feature order and is the identity
  at initialisation (LRMF starts T at the identity); with ``'random'`` it is a
  fixed permutation at initialisation.

  Args:
    num_blocks: number of coupling layers.
    hidden: hidden widths of each conditioner MLP.
    permutation: ``'reverse'`` or ``'random'``.
    seed: base seed of the random permutations.

  Returns:
    A :class:`Chain` mapping data to latent (forward).
  """
  if num_blocks < 1:
    raise ValueError(f'num_blocks must be at least 1, got {num_blocks}')
  if permutation not in ('reverse', 'random'):
    raise ValueError(f"permutation must be 'reverse' or 'random', got {permutation!r}")
  conditioner = functools.partial(nets.MLP, hidden=tuple(hidden))
  layers = []
  for block in range(num_blocks):
    if block:
      layers.append(Reverse() if permutation == 'reverse' else Permutation(seed=seed + block))
    layers.append(AffineCoupling(mask='half', conditioner=conditioner))
  if permutation == 'reverse' and num_blocks % 2 == 0:
    layers.append(Reverse())
  return Chain(layers)
