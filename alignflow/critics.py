"""Critics ``C_A``, ``C_B`` of AlignFlow's adversarial terms (Eq. 6, 7).

Both return real-valued logits ``D(x)`` (the cross-entropy critic is ``sigmoid(D)``):

* :class:`PatchCritic` for images: a PatchGAN (Isola et al. 2017) convolutional critic
  that scores overlapping patches, ``(batch, H, W, C) -> (batch, h, w)``, as in the
  public AlignFlow / CycleGAN code;
* :class:`MLPCritic` for vectors, ``(batch, d) -> (batch,)``.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax

from nflax.nets import Conv

__all__ = ['PatchCritic', 'MLPCritic']

Array = jax.Array

_leaky_relu = functools.partial(nn.leaky_relu, negative_slope=0.2)


class PatchCritic(nn.Module):
  """PatchGAN critic: strided 4x4 convolutions, then a 1-channel convolution of logits.

  Layer ``i < num_layers`` is a 4x4 convolution with ``base_channels * 2**i`` filters
  (stride 2 except the last), instance-free (no normalisation: batches are small and
  the logits must not depend on the other examples), followed by a leaky ReLU (slope
  0.2); a 4x4 stride-1 convolution maps to one logit per patch. ``'SAME'`` padding.

  Attributes:
    base_channels: filters of the first layer (CycleGAN: 64).
    num_layers: hidden convolutions (CycleGAN's 70x70 PatchGAN: 4).
  """

  base_channels: int = 64
  num_layers: int = 3

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Patch logits ``(batch, h, w)`` for images ``(batch, H, W, C)``."""
    if x.ndim != 4:
      raise ValueError(f'PatchCritic expects images (batch, H, W, C), got shape {x.shape}')
    for index in range(self.num_layers):
      stride = 2 if index < self.num_layers - 1 else 1
      x = _leaky_relu(Conv(self.base_channels * 2**index, (4, 4), strides=stride,
                              padding='SAME')(x))
    return Conv(1, (4, 4), padding='SAME')(x)[..., 0]


class MLPCritic(nn.Module):
  """Fully connected critic ``(batch, d) -> (batch,)`` logits.

  Attributes:
    hidden: widths of the hidden layers.
    activation: non-linearity between layers (leaky ReLU, slope 0.2).
  """

  hidden: Sequence[int] = (128, 128)
  activation: Callable[[Array], Array] = _leaky_relu

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Logits ``(batch,)`` for vectors ``(batch, d)``."""
    if x.ndim != 2:
      raise ValueError(f'MLPCritic expects vectors (batch, d), got shape {x.shape}')
    for width in self.hidden:
      x = self.activation(nn.Dense(width)(x))
    return nn.Dense(1)(x)[:, 0]
