"""Conditioner networks used inside flow layers, and the convolution they share.

Every network maps a batch ``(batch, *in_shape)`` to ``(batch, *out_shape)``;
the output layer is zero-initialised where noted, so that a coupling layer
starts at the identity map.

Every convolution of the project is :class:`Conv`: Flax's ``nn.Conv`` (same
parameters, same names, same numbers up to float rounding) whose 2-D channels-last
convolutions lower to one matrix product of image patches on CPU
(:func:`conv_general_dilated`). XLA's CPU convolution runs at a few percent of
its matmul rate, and its kernel gradient is 10-30x slower still inside a
``lax.scan`` body, which is where every training step runs; accelerators keep
their native convolution.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

__all__ = ['conv_general_dilated', 'Conv', 'MLP', 'ConvNet', 'ResidualBlock', 'ResNet']

Array = jax.Array


def _conv_as_matmul(lhs: Array, rhs: Array, *, strides: tuple[int, int],
                    pads: Sequence[tuple[int, int]], precision) -> Array:
  """NHWC x HWIO convolution as ``patches @ kernel`` (im2col).

  ``lhs`` is ``(batch, H, W, C_in)``, ``rhs`` is ``(kh, kw, C_in, C_out)``. The padded
  input's ``kh * kw`` strided windows are stacked along channels in ``(i, j, c)``
  order, ``(batch, H_out, W_out, kh * kw * C_in)``, and multiplied by the kernel
  flattened in the same order, ``(kh * kw * C_in, C_out)``. The gradients are
  slices, pads and two more matrix products, so they stay fast inside loops.
  """
  kh, kw, c_in, c_out = rhs.shape
  padded = jnp.pad(lhs, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
  out_h = (padded.shape[1] - kh) // strides[0] + 1
  out_w = (padded.shape[2] - kw) // strides[1] + 1
  windows = [
      lax.slice(padded, (0, i, j, 0),
                (padded.shape[0], i + strides[0] * (out_h - 1) + 1,
                 j + strides[1] * (out_w - 1) + 1, c_in),
                (1, strides[0], strides[1], 1))
      for i in range(kh) for j in range(kw)]
  patches = windows[0] if len(windows) == 1 else jnp.concatenate(windows, axis=-1)
  return jnp.dot(patches, rhs.reshape(kh * kw * c_in, c_out), precision=precision)


def conv_general_dilated(lhs: Array, rhs: Array, window_strides: Sequence[int],
                         padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision=None,
                         preferred_element_type=None) -> Array:
  """``lax.conv_general_dilated`` with a matrix-product lowering on CPU.

  Same signature and result as :func:`jax.lax.conv_general_dilated`. A 2-D
  ``NHWC`` / ``HWIO`` convolution without dilation or groups and with non-negative
  padding is computed, when the program is lowered for CPU, as one product of the
  input's patches with the flattened kernel (:func:`_conv_as_matmul`); on any other
  platform, and for every other convolution, it is ``lax.conv_general_dilated``.
  The choice is made at lowering (``lax.platform_dependent``), so a jitted function
  traced once runs the fast form on each backend; forward- and reverse-mode
  derivatives of both forms are the ordinary ones.
  """
  native = functools.partial(
      lax.conv_general_dilated, window_strides=window_strides, padding=padding,
      lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type)
  if lhs.ndim != 4 or rhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1:
    return native(lhs, rhs)
  if any(d != 1 for d in (lhs_dilation or ())) or any(d != 1 for d in (rhs_dilation or ())):
    return native(lhs, rhs)
  channels_last = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ('NHWC', 'HWIO', 'NHWC'))
  if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != channels_last:
    return native(lhs, rhs)
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
  else:
    pads = [tuple(int(p) for p in pair) for pair in padding]
  if any(p < 0 for pair in pads for p in pair) or preferred_element_type is not None:
    return native(lhs, rhs)
  as_matmul = functools.partial(_conv_as_matmul, strides=strides, pads=pads,
                                precision=precision)
  return lax.platform_dependent(lhs, rhs, cpu=as_matmul, default=native)


class Conv(nn.Conv):
  """``flax.linen.Conv`` computed by :func:`conv_general_dilated`.

  Parameters (``kernel`` ``(kh, kw, C_in, C_out)``, ``bias``) and their names are
  those of ``nn.Conv``, so checkpoints of either load into the other.
  """

  conv_general_dilated: Callable[..., Array] | None = conv_general_dilated


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
  """Glow's coupling network (Glow Sec. 3.3) ``(batch, H, W, C_in) -> (batch, H, W, out_channels)``.

  A 3x3 convolution, then ``num_layers - 1`` 1x1 convolutions, each with
  ``hidden_channels`` filters and ReLU, then a 3x3 output convolution whose kernel
  and bias start at zero (so a coupling layer using it starts at the identity).
  Glow's is ``num_layers = 2`` with 512 filters: 3x3, 1x1, 3x3. Layout is NHWC and
  every convolution is ``'SAME'``-padded, so the spatial size is kept.

  Attributes:
    out_channels: channels of the output.
    hidden_channels: filters of each hidden convolution.
    num_layers: number of hidden convolutions (the first 3x3, the others 1x1).
  """

  out_channels: int
  hidden_channels: int = 512
  num_layers: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if x.ndim != 4:
      raise ValueError(f'ConvNet expects (batch, H, W, C) inputs, got shape {x.shape}')
    for index in range(self.num_layers):
      size = (3, 3) if index == 0 else (1, 1)
      x = nn.relu(Conv(self.hidden_channels, size, padding='SAME')(x))
    return Conv(self.out_channels, (3, 3), padding='SAME',
                kernel_init=nn.initializers.zeros)(x)


class ResidualBlock(nn.Module):
  """Pre-activation residual block ``h + conv(relu(conv(relu(h))))``, 3x3 convs.

  Attributes:
    channels: channels of the input, the hidden layer and the output.
  """

  channels: int

  @nn.compact
  def __call__(self, h: Array) -> Array:
    residual = Conv(self.channels, (3, 3), padding='SAME')(nn.relu(h))
    residual = Conv(self.channels, (3, 3), padding='SAME')(nn.relu(residual))
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
    h = Conv(self.hidden_channels, (3, 3), padding='SAME')(x)
    for _ in range(self.num_blocks):
      h = ResidualBlock(self.hidden_channels)(h)
    return Conv(self.out_channels, (3, 3), padding='SAME',
                   kernel_init=nn.initializers.zeros)(nn.relu(h))
