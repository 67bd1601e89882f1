"""Glow layers and multi-scale image flows (Kingma & Dhariwal 2018; Dinh et al. 2017).

Layers, all in the normalising direction (data -> latent) and NHWC layout:

* :class:`ActNorm`: per-channel affine map with data-dependent initialisation
  (Glow Sec. 3.1, Table 1 row 1).
* :class:`Invertible1x1Conv`: a learned channel-mixing matrix in LU form
  (Glow Sec. 3.2, Eq. 10).
* :class:`Squeeze`: space-to-depth reshaping ``(H, W, C) -> (H/2, W/2, 4C)``
  (RealNVP Sec. 3.6).
* :class:`MultiScale`: the multi-scale architecture (RealNVP Sec. 3.6, Glow
  Fig. 2b): half of the features is factored out after every level and passed
  through unchanged, so the whole flow stays an image -> image bijection whose
  output coordinates are all scored by the prior.

Builders :func:`glow` and :func:`realnvp_image` assemble the image flows of the
Glow paper and of AlignFlow (App. B.1).

Channel-mixing weights of :class:`Invertible1x1Conv` have a fixed permutation
``P`` and fixed signs, drawn at initialisation; they are stored in the
non-trainable collection ``'constants'`` (:data:`CONSTANTS`), which must be
passed to ``apply`` with the parameters (``{'params': ..., 'constants': ...}``)
and is not optimised.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import jax.scipy.linalg

from nflax import nets
from nflax.bijectors.base import Bijector, Chain, Inverse
from nflax.bijectors.coupling import AffineCoupling

__all__ = [
    'CONSTANTS', 'ActNorm', 'LUFactors', 'Invertible1x1Conv', 'squeeze', 'unsqueeze', 'Squeeze',
    'MultiScale', 'glow_step', 'glow', 'realnvp_image'
]

Array = jax.Array

CONSTANTS = 'constants'


def _check_has_channels(name: str, x: Array) -> None:
  if x.ndim < 2:
    raise ValueError(
        f'{name} expects (batch, ..., channels) inputs, got shape {x.shape}')


def _check_image(name: str, x: Array) -> None:
  if x.ndim != 4:
    raise ValueError(f'{name} expects images (batch, H, W, C), got shape {x.shape}')


def _positions_per_channel(x: Array) -> int:
  """Number of positions sharing one channel's parameters, ``H * W`` for images."""
  return math.prod(x.shape[1:-1])


class ActNorm(Bijector):
  """Per-channel affine normalisation ``y = (x + bias) * exp(log_scale)`` (Glow Sec. 3.1).

  Inputs are ``(batch, ..., C)``: images ``(batch, H, W, C)`` or vectors
  ``(batch, C)``; ``bias`` and ``log_scale`` have shape ``(C,)`` and are shared
  by all ``H * W`` positions, so ``log|det dy/dx| = H * W * sum(log_scale)``.

  Data-dependent initialisation: the batch seen by the first call (the one
  that creates the parameters, normally ``init`` through ``__call__``) gets
  zero mean and unit variance per channel,
  ``bias = -mean(x)``, ``log_scale = -log(std(x) + eps)``, statistics taken
  over the batch and spatial axes. Afterwards both are ordinary parameters.

  Attributes:
    eps: added to the initial standard deviation, guarding constant channels.
  """

  eps: float = 1e-6

  @nn.compact
  def _bias_and_log_scale(self, x: Array) -> tuple[Array, Array]:
    """Parameters ``bias`` and ``log_scale``, each ``(C,)``, initialised from ``x``."""
    statistics_axes = tuple(range(x.ndim - 1))
    num_channels = x.shape[-1]

    def initial_bias(_, shape):
      return jnp.broadcast_to(-jnp.mean(x, axis=statistics_axes), shape)

    def initial_log_scale(_, shape):
      return jnp.broadcast_to(
          -jnp.log(jnp.std(x, axis=statistics_axes) + self.eps), shape)

    bias = self.param('bias', initial_bias, (num_channels,))
    log_scale = self.param('log_scale', initial_log_scale, (num_channels,))
    return bias, log_scale

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = (x + bias) * exp(log_scale)``; log-det ``H W sum(log_scale)``, ``(batch,)``."""
    _check_has_channels('ActNorm', x)
    bias, log_scale = self._bias_and_log_scale(x)
    log_det = _positions_per_channel(x) * jnp.sum(log_scale)
    return (x + bias) * jnp.exp(log_scale), jnp.broadcast_to(log_det, x.shape[:1])

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = y * exp(-log_scale) - bias``; log-det ``-H W sum(log_scale)``."""
    _check_has_channels('ActNorm', y)
    bias, log_scale = self._bias_and_log_scale(y)
    log_det = -_positions_per_channel(y) * jnp.sum(log_scale)
    return y * jnp.exp(-log_scale) - bias, jnp.broadcast_to(log_det, y.shape[:1])


class LUFactors(NamedTuple):
  """Factors of ``W = P L (U + diag(sign * exp(log_scale)))`` (Glow Eq. 10).

  Attributes:
    permutation: ``P``, a ``(C, C)`` permutation matrix.
    lower: ``L``, ``(C, C)`` lower triangular with unit diagonal.
    upper: ``U + diag(sign * exp(log_scale))``, ``(C, C)`` upper triangular.
    log_scale: ``log|diag|`` of the upper factor, ``(C,)``.
  """
  permutation: Array
  lower: Array
  upper: Array
  log_scale: Array


def _random_rotation_lu(key: Array, num_channels: int) -> dict[str, Array]:
  """LU factors of a random orthogonal ``(C, C)`` matrix ``Q = P L U``.

  Args:
    key: PRNG key.
    num_channels: ``C``.

  Returns:
    A dict with ``permutation`` ``P``, ``lower`` (strictly lower part of ``L``),
    ``upper`` (strictly upper part of ``U``), ``sign`` and ``log_scale``
    (``sign(diag U)`` and ``log|diag U|``, each ``(C,)``).
  """
  rotation = jax.random.orthogonal(key, num_channels)
  permutation, lower, upper = jax.scipy.linalg.lu(rotation)
  diagonal = jnp.diag(upper)
  return {'permutation': permutation, 'lower': jnp.tril(lower, -1),
          'upper': jnp.triu(upper, 1), 'sign': jnp.sign(diagonal),
          'log_scale': jnp.log(jnp.abs(diagonal))}


class Invertible1x1Conv(Bijector):
  """Invertible 1x1 convolution ``y_ij = W x_ij`` in LU form (Glow Sec. 3.2, Eq. 10).

  ``W = P L (U + diag(sign * exp(log_scale)))`` acts on the channels of every
  position of ``(batch, ..., C)`` inputs (images ``(batch, H, W, C)`` or
  vectors ``(batch, C)``), so ``log|det dy/dx| = H * W * sum(log_scale)``
  (Glow Table 1, row 3). ``L`` is unit lower triangular and ``U`` strictly
  upper triangular (parameters ``lower`` and ``upper``, of which only the
  strict triangles are used) and ``log_scale`` is a parameter; the
  permutation ``P`` and the signs are fixed, kept in the ``'constants'``
  collection. At initialisation ``W`` is a random rotation (log-det 0). The
  inverse applies ``W^{-1}`` obtained by two triangular solves.
  """

  @nn.compact
  def _factors(self, num_channels: int) -> LUFactors:
    """The LU factors of ``W``, creating the variables of a ``C``-channel input."""

    @functools.cache
    def initial() -> dict[str, Array]:
      return _random_rotation_lu(self.make_rng('params'), num_channels)

    def variable(collection: str, name: str) -> Array:
      return self.variable(collection, name, lambda: initial()[name]).value

    # All five variables come from one rotation, drawn only when they are
    # created; ``self.variable`` (unlike ``self.param``) never re-runs the
    # initialiser on later calls.
    permutation, sign = variable(CONSTANTS, 'permutation'), variable(CONSTANTS, 'sign')
    lower, upper = variable('params', 'lower'), variable('params', 'upper')
    log_scale = variable('params', 'log_scale')
    return LUFactors(
        permutation=permutation,
        lower=jnp.tril(lower, -1) + jnp.eye(num_channels, dtype=lower.dtype),
        upper=jnp.triu(upper, 1) + jnp.diag(sign * jnp.exp(log_scale)),
        log_scale=log_scale)

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``y = W x`` per position; log-det ``H W sum(log_scale)``, ``(batch,)``."""
    _check_has_channels('Invertible1x1Conv', x)
    factors = self._factors(x.shape[-1])
    weight = factors.permutation @ factors.lower @ factors.upper
    log_det = _positions_per_channel(x) * jnp.sum(factors.log_scale)
    return (jnp.einsum('...k,ck->...c', x, weight),
            jnp.broadcast_to(log_det, x.shape[:1]))

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = W^{-1} y = U^{-1} L^{-1} P^T y`` per position; log-det ``-H W sum(log_scale)``."""
    _check_has_channels('Invertible1x1Conv', y)
    factors = self._factors(y.shape[-1])
    lower_inverse_permuted = jax.scipy.linalg.solve_triangular(
        factors.lower, factors.permutation.T, lower=True, unit_diagonal=True)
    weight_inverse = jax.scipy.linalg.solve_triangular(
        factors.upper, lower_inverse_permuted, lower=False)
    log_det = -_positions_per_channel(y) * jnp.sum(factors.log_scale)
    return (jnp.einsum('...k,ck->...c', y, weight_inverse),
            jnp.broadcast_to(log_det, y.shape[:1]))


def squeeze(x: Array, factor: int = 2) -> Array:
  """Space-to-depth ``(batch, H, W, C) -> (batch, H/f, W/f, f*f*C)``.

  ``out[b, i, j, (p * f + q) * C + c] = x[b, f * i + p, f * j + q, c]`` for
  ``0 <= p, q < f``: each ``f x f`` block of pixels becomes one pixel whose
  channels list the block row by row, all ``C`` channels of a pixel together.

  Raises:
    ValueError: if ``x`` is not ``(batch, H, W, C)`` or ``H``, ``W`` are not
      multiples of ``factor``.
  """
  _check_image('squeeze', x)
  batch, height, width, channels = x.shape
  if factor < 1 or height % factor or width % factor:
    raise ValueError(
        f'squeeze by {factor} needs height and width divisible by {factor}, got '
        f'an image of size {height}x{width}')
  blocks = x.reshape(batch, height // factor, factor, width // factor, factor, channels)
  blocks = blocks.transpose(0, 1, 3, 2, 4, 5)
  return blocks.reshape(batch, height // factor, width // factor, factor * factor * channels)


def unsqueeze(y: Array, factor: int = 2) -> Array:
  """Depth-to-space ``(batch, H, W, f*f*C) -> (batch, f*H, f*W, C)``, inverse of :func:`squeeze`.

  Raises:
    ValueError: if ``y`` is not ``(batch, H, W, C)`` or ``C`` is not a
      multiple of ``factor**2``.
  """
  _check_image('unsqueeze', y)
  batch, height, width, channels = y.shape
  if factor < 1 or channels % (factor * factor):
    raise ValueError(
        f'unsqueeze by {factor} needs channels divisible by {factor * factor}, got '
        f'{channels}')
  blocks = y.reshape(batch, height, width, factor, factor, channels // (factor * factor))
  blocks = blocks.transpose(0, 1, 3, 2, 4, 5)
  return blocks.reshape(batch, height * factor, width * factor, channels // (factor * factor))


class Squeeze(Bijector):
  """Space-to-depth bijector ``(H, W, C) -> (H/f, W/f, f*f*C)``, log-det 0.

  See :func:`squeeze` for the exact placement of pixels in channels; the
  inverse is :func:`unsqueeze`. Input is ``(batch, H, W, C)``; ``H`` and ``W``
  must be multiples of ``factor`` (``ValueError`` otherwise).

  Attributes:
    factor: side ``f`` of the pixel blocks moved into channels.
  """

  factor: int = 2

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """Space-to-depth; log-det zeros ``(batch,)``."""
    return squeeze(x, self.factor), jnp.zeros(x.shape[:1], x.dtype)

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """Depth-to-space; log-det zeros ``(batch,)``."""
    return unsqueeze(y, self.factor), jnp.zeros(y.shape[:1], y.dtype)


class MultiScale(Bijector):
  """Multi-scale flow with factored-out halves (RealNVP Sec. 3.6, Glow Fig. 2b).

  Forward on ``x_0`` of shape ``(batch, H, W, C)``, with ``L = len(levels)``:

  * for ``i = 0 .. L-1``: ``levels[i]`` maps ``x_i`` of shape ``(h, w, c)``
    to ``(h/2, w/2, 4c)`` (it must contain one :class:`Squeeze`); its output
    is split along channels into ``x_{i+1}`` (first ``2c`` channels, which
    the next level transforms) and ``z_i`` (last ``2c``, factored out: passed
    through unchanged);
  * ``o_L = final(x_L)``, ``final`` keeping the shape of ``x_L``;
  * assembly, ``i = L-1 .. 0``: ``o_i = unsqueeze(concat(o_{i+1}, z_i))``,
    a fixed depth-to-space re-arrangement back to the shape of ``x_i``.

  The output ``y = o_0`` has the input's shape ``(batch, H, W, C)``; every
  coordinate of it, factored out early or late, is a latent coordinate scored
  by the flow density's prior. The log-determinant is the sum of those of
  ``levels`` and ``final`` (splits and re-arrangements have log-det 0).
  The inverse squeezes and splits ``y`` level by level to recover
  ``(z_0, ..., z_{L-1}, o_L)``, inverts ``final`` and then the levels in
  reverse order, re-attaching ``z_i`` before inverting ``levels[i]``.

  Attributes:
    levels: flows ``(batch, h, w, c) -> (batch, h/2, w/2, 4c)``, one per
      factor-out step.
    final: flow applied to what remains after the last factor-out.
  """

  levels: Sequence[Bijector]
  final: Bijector

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """Image ``(batch, H, W, C)`` to latent of the same shape; log-det ``(batch,)``."""
    _check_image('MultiScale', x)
    log_det = jnp.zeros(x.shape[:1], x.dtype)
    factored_out = []
    for index, level in enumerate(self.levels):
      level_input_shape = x.shape
      x, level_log_det = level.forward_and_log_det(x)
      _check_level_output(index, level_input_shape, x.shape)
      log_det = log_det + level_log_det
      x, factored = jnp.split(x, 2, axis=-1)
      factored_out.append(factored)
    y, final_log_det = self.final.forward_and_log_det(x)
    if y.shape != x.shape:
      raise ValueError(
          f'MultiScale final flow must keep the shape {x.shape}, returned {y.shape}')
    for factored in reversed(factored_out):
      y = unsqueeze(jnp.concatenate([y, factored], axis=-1))
    return y, log_det + final_log_det

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """Latent ``(batch, H, W, C)`` to image of the same shape; log-det ``(batch,)``."""
    _check_image('MultiScale', y)
    factored_out = []
    for _ in self.levels:
      y, factored = jnp.split(squeeze(y), 2, axis=-1)
      factored_out.append(factored)
    x, log_det = self.final.inverse_and_log_det(y)
    for index in reversed(range(len(self.levels))):
      level_output = jnp.concatenate([x, factored_out[index]], axis=-1)
      x, level_log_det = self.levels[index].inverse_and_log_det(level_output)
      _check_level_output(index, x.shape, level_output.shape)
      log_det = log_det + level_log_det
    return x, log_det


def _check_level_output(index: int, input_shape: tuple[int, ...],
                        output_shape: tuple[int, ...]) -> None:
  """Checks that level ``index`` maps ``(h, w, c)`` to ``(h/2, w/2, 4c)``."""
  batch, height, width, channels = input_shape
  expected = (batch, height // 2, width // 2, 4 * channels)
  if height % 2 or width % 2 or tuple(output_shape) != expected:
    raise ValueError(
        f'MultiScale level {index} must map {tuple(input_shape)} to {expected} '
        f'(one Squeeze), got {tuple(output_shape)}')


def glow_step(hidden_channels: int, num_layers: int = 2, parity: bool = False) -> Chain:
  """One step of flow (Glow Fig. 2a): ActNorm -> 1x1 conv -> affine coupling.

  Args:
    hidden_channels: filters of the hidden convolutions of the coupling's
      :class:`nflax.nets.ConvNet` (Glow: 512).
    num_layers: hidden convolutions of that network (Glow: 2, a 3x3 then a 1x1).
    parity: which channel half conditions the coupling.

  Returns:
    A :class:`Chain` on ``(batch, H, W, C)`` with ``C >= 2``.
  """
  conditioner = functools.partial(
      nets.ConvNet, hidden_channels=hidden_channels, num_layers=num_layers)
  return Chain([ActNorm(), Invertible1x1Conv(),
                AffineCoupling(mask='channel', parity=parity, conditioner=conditioner)])


def glow(num_levels: int = 3, steps_per_level: int = 8, hidden_channels: int = 512,
         num_layers: int = 2) -> MultiScale:
  """The Glow image flow (Glow Sec. 3, Fig. 2b) as a same-shape :class:`MultiScale`.

  Each of the ``num_levels`` levels is ``Squeeze`` followed by
  ``steps_per_level`` :func:`glow_step` s (coupling parities alternate); all
  levels but the last then factor out half of the channels. The last level is
  followed by an unsqueeze so that the output has the input's shape. Input
  ``(batch, H, W, C)`` needs ``H`` and ``W`` divisible by ``2**num_levels``.
  The factored-out halves are scored by the (fixed) prior of the density, not
  by Glow's learned conditional prior.

  Args:
    num_levels: number of levels ``L`` (``L - 1`` factor-outs).
    steps_per_level: steps of flow ``K`` per level.
    hidden_channels: filters of the coupling networks.
    num_layers: hidden convolutions of the coupling networks.

  Returns:
    A :class:`MultiScale` mapping images to latents of the same shape.
  """
  if num_levels < 1 or steps_per_level < 1:
    raise ValueError(
        f'glow needs num_levels >= 1 and steps_per_level >= 1, got {num_levels} '
        f'and {steps_per_level}')

  def steps() -> list[Bijector]:
    return [glow_step(hidden_channels, num_layers, parity=step % 2 == 1)
            for step in range(steps_per_level)]

  levels = [Chain([Squeeze(), *steps()]) for _ in range(num_levels - 1)]
  final = Chain([Squeeze(), *steps(), Inverse(Squeeze())])
  return MultiScale(levels=levels, final=final)


def _couplings(mask: str, count: int, hidden_channels: int, num_blocks: int,
               actnorm: bool) -> list[Bijector]:
  """``count`` affine couplings with alternating parity and ResNet conditioners."""
  conditioner = functools.partial(
      nets.ResNet, hidden_channels=hidden_channels, num_blocks=num_blocks)
  layers = []
  for index in range(count):
    if actnorm:
      layers.append(ActNorm())
    layers.append(AffineCoupling(mask=mask, parity=index % 2 == 1, conditioner=conditioner))
  return layers


def realnvp_image(num_levels: int = 4, hidden_channels: int = 32, num_blocks: int = 4,
                  num_checkerboard: int = 3, num_channelwise: int = 3, num_final: int = 4,
                  actnorm: bool = True) -> MultiScale:
  """The RealNVP multi-scale image flow used by AlignFlow (App. B.1; RealNVP Sec. 3.6).

  Levels ``i = 0 .. L-2``: ``num_checkerboard`` checkerboard couplings ->
  :class:`Squeeze` -> ``num_channelwise`` channel-wise couplings, then half of
  the channels is factored out. The last level is ``num_final`` checkerboard
  couplings. Coupling parities alternate; each coupling's scale and shift come
  from a :class:`nflax.nets.ResNet` with ``num_blocks`` residual blocks and
  ``hidden_channels * 2**i`` channels at level ``i`` (doubled for the
  channel-wise couplings), i.e. 32/64, 64/128, 128/256 and 256 for the
  defaults, as in AlignFlow App. B.1. With ``actnorm`` an :class:`ActNorm`
  precedes every coupling (AlignFlow App. B.1). The channel-wise couplings
  come after the squeeze, as in RealNVP, so that they split ``4c`` channels.
  Input ``(batch, H, W, C)`` needs ``H`` and ``W`` divisible by
  ``2**(num_levels - 1)`` and ``H * W >= 2`` at the last level.

  Args:
    num_levels: number of scales ``L`` (``L - 1`` factor-outs).
    hidden_channels: ResNet channels of the first level's checkerboard couplings.
    num_blocks: residual blocks per ResNet.
    num_checkerboard: checkerboard couplings per level before the squeeze.
    num_channelwise: channel-wise couplings per level after the squeeze.
    num_final: checkerboard couplings of the last level.
    actnorm: put an :class:`ActNorm` before every coupling.

  Returns:
    A :class:`MultiScale` mapping images to latents of the same shape.
  """
  if num_levels < 1:
    raise ValueError(f'realnvp_image needs num_levels >= 1, got {num_levels}')
  levels = []
  for level in range(num_levels - 1):
    width = hidden_channels * 2**level
    levels.append(Chain([
        *_couplings('checkerboard', num_checkerboard, width, num_blocks, actnorm),
        Squeeze(),
        *_couplings('channel', num_channelwise, 2 * width, num_blocks, actnorm),
    ]))
  final = Chain(_couplings('checkerboard', num_final, hidden_channels * 2**(num_levels - 1),
                           num_blocks, actnorm))
  return MultiScale(levels=levels, final=final)
