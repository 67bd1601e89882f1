"""Conditioner networks used inside flow layers.

Every network maps a batch ``(batch, *in_shape)`` to ``(batch, *out_shape)``;
the output layer is zero-initialised where noted, so that a coupling layer
starts at the identity map.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax

__all__ = ['MLP', 'ConvNet', 'ResidualBlock', 'ResNet']

Array = jax.Array


class MLP(nn.Module):
  """Fully connected network ``(batch, d_in) -> (batch, out_features)``.

  Attributes:
    hidden: widths of the hidden layers, e.g. ``(512, 512)``.
    out_features: width of the output layer.
    activation: non-linearity between layers.
    zero_init_output: start the output layer at zero (identity couplings).
  """

  hidden: Sequence[int]
  out_features: int
  activation: Callable[[Array], Array] = nn.relu
  zero_init_output: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for width in self.hidden:
      x = self.activation(nn.Dense(width)(x))
    init = nn.initializers.zeros if self.zero_init_output else nn.initializers.lecun_normal()
    return nn.Dense(self.out_features, kernel_init=init)(x)


class ConvNet(nn.Module):
  """Convolutional conditioner ``(batch, H, W, C_in) -> (batch, H, W, out_channels)``.

  ``num_layers`` hidden 3x3 convolutions with ``hidden_channels`` filters and
  ReLU, followed by a 3x3 output convolution whose kernel and bias start at
  zero (so a coupling layer using it starts at the identity). Layout is NHWC
  and every convolution is ``'SAME'``-padded, so the spatial size is kept.

  Attributes:
    out_channels: channels of the output.
    hidden_channels: filters of each hidden convolution.
    num_layers: number of hidden convolutions.
  """

  out_channels: int
  hidden_channels: int = 512
  num_layers: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if x.ndim != 4:
      raise ValueError(f'ConvNet expects (batch, H, W, C) inputs, got shape {x.shape}')
    for _ in range(self.num_layers):
      x = nn.relu(nn.Conv(self.hidden_channels, (3, 3), padding='SAME')(x))
    return nn.Conv(self.out_channels, (3, 3), padding='SAME',
                   kernel_init=nn.initializers.zeros)(x)


class ResidualBlock(nn.Module):
  """Pre-activation residual block ``h + conv(relu(conv(relu(h))))``, 3x3 convs.

  Attributes:
    channels: channels of the input, the hidden layer and the output.
  """

  channels: int

  @nn.compact
  def __call__(self, h: Array) -> Array:
    residual = nn.Conv(self.channels, (3, 3), padding='SAME')(nn.relu(h))
    residual = nn.Conv(self.channels, (3, 3), padding='SAME')(nn.relu(residual))
    return h + residual


class ResNet(nn.Module):
  """Residual conditioner ``(batch, H, W, C_in) -> (batch, H, W, out_channels)``.

  A 3x3 input convolution to ``hidden_channels``, ``num_blocks``
  :class:`ResidualBlock` s, a ReLU and a zero-initialised 3x3 output
  convolution (identity couplings at initialisation). NHWC, ``'SAME'`` padding.

  Attributes:
    out_channels: channels of the output.
    hidden_channels: channels inside the residual blocks.
    num_blocks: number of residual blocks.
  """

  out_channels: int
  hidden_channels: int = 64
  num_blocks: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if x.ndim != 4:
      raise ValueError(f'ResNet expects (batch, H, W, C) inputs, got shape {x.shape}')
    h = nn.Conv(self.hidden_channels, (3, 3), padding='SAME')(x)
    for _ in range(self.num_blocks):
      h = ResidualBlock(self.hidden_channels)(h)
    return nn.Conv(self.out_channels, (3, 3), padding='SAME',
                   kernel_init=nn.initializers.zeros)(nn.relu(h))
