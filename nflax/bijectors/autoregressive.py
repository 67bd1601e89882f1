"""MADE (Germain et al. 2015) and the masked autoregressive flow (Papamakarios et al. 2017).

A MAF layer models ``x_i = u_i * exp(alpha_i) + mu_i`` with
``(mu_i, alpha_i)`` functions of the inputs preceding ``x_i`` in a fixed
order (MAF Sec. 3.1), computed for all ``i`` at once by a MADE. Its forward map
(data -> noise, the normalising direction) is one parallel pass

  u_i = (x_i - mu_i(x_<i)) * exp(-alpha_i(x_<i)),
  log|det du/dx| = -sum_i alpha_i

and its inverse (sampling) is sequential over the ``d`` dimensions.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nflax.bijectors.base import Bijector, Chain
from nflax.bijectors.batchnorm import BatchNorm
from nflax.bijectors.linear import Reverse

Array = jax.Array


def input_degrees(dim: int, order: Sequence[int] | None = None) -> np.ndarray:
  """Degrees ``m(i)`` of the ``dim`` inputs: ``order`` or the natural ``1..dim``.

  Input ``i`` may only influence outputs of strictly larger degree.

  Raises:
    ValueError: if ``order`` is not a permutation of ``1..dim``.
  """
  if order is None:
    return np.arange(1, dim + 1)
  degrees = np.asarray(order, dtype=int)
  if degrees.ndim != 1 or sorted(degrees.tolist()) != list(range(1, dim + 1)):
    raise ValueError(f'order {tuple(order)} is not a permutation of 1..{dim}')
  return degrees


def hidden_degrees(width: int, dim: int) -> np.ndarray:
  """Deterministic degrees of a hidden layer: ``1, 2, ..., dim - 1, 1, 2, ...``.

  Cycling through ``1..dim-1`` gives every degree the same share of units
  (Germain et al. draw them at random instead). For ``dim = 1`` all
  degrees are 1, so the outputs cannot depend on the input.
  """
  return np.arange(width) % max(dim - 1, 1) + 1


def hidden_mask(in_degrees: np.ndarray, out_degrees: np.ndarray) -> np.ndarray:
  """Mask ``(len(in), len(out))`` allowing ``in -> out`` iff ``m_out >= m_in``."""
  return (out_degrees[None, :] >= in_degrees[:, None]).astype(np.float32)


def output_mask(in_degrees: np.ndarray, out_degrees: np.ndarray) -> np.ndarray:
  """Mask ``(len(in), len(out))`` allowing ``in -> out`` iff ``m_out > m_in``."""
  return (out_degrees[None, :] > in_degrees[:, None]).astype(np.float32)


class MaskedDense(nn.Module):
  """Dense layer ``y = x @ (kernel * mask) + bias``, ``(batch, n_in) -> (batch, n_out)``.

  Attributes:
    mask: ``(n_in, n_out)`` array of zeros and ones; ``n_out`` is the width.
    kernel_init: initialiser of the unmasked kernel.
  """

  mask: Any
  kernel_init: Callable[..., Array] = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    mask = jnp.asarray(self.mask, x.dtype)
    if x.shape[-1] != mask.shape[0]:
      raise ValueError(f'MaskedDense mask expects {mask.shape[0]} inputs, got shape {x.shape}')
    kernel = self.param('kernel', self.kernel_init, mask.shape)
    bias = self.param('bias', nn.initializers.zeros, mask.shape[1:])
    return x @ (kernel * mask) + bias


class MADE(nn.Module):
  """Masked autoencoder for distribution estimation, ``(batch, d) -> (shift, log_scale)``.

  The outputs ``shift[:, i]`` and ``log_scale[:, i]`` depend only on the
  inputs ``x_j`` with ``m(j) < m(i)``, where ``m`` are the input degrees
  (:func:`input_degrees`). Hidden degrees are assigned by
  :func:`hidden_degrees`. The output layer is zero-initialised, so a MAF layer
  starts at the identity.

  Attributes:
    hidden: widths of the hidden masked layers, e.g. ``(100,)``.
    order: degrees of the inputs, a permutation of ``1..d``; ``None`` is the
      natural order ``1..d``.
    activation: non-linearity of the hidden layers.
  """

  hidden: Sequence[int] = (100,)
  order: Sequence[int] | None = None
  activation: Callable[[Array], Array] = nn.relu

  @nn.compact
  def __call__(self, x: Array) -> tuple[Array, Array]:
    """Returns ``(shift, log_scale)``, each ``(batch, d)``."""
    if x.ndim != 2:
      raise ValueError(f'MADE expects vectors (batch, d), got shape {x.shape}')
    dim = x.shape[-1]
    first_degrees = input_degrees(dim, self.order)
    degrees = first_degrees
    h = x
    for width in self.hidden:
      next_degrees = hidden_degrees(width, dim)
      h = self.activation(MaskedDense(hidden_mask(degrees, next_degrees))(h))
      degrees = next_degrees
    out_degrees = np.concatenate([first_degrees, first_degrees])
    output = MaskedDense(output_mask(degrees, out_degrees),
                         kernel_init=nn.initializers.zeros)(h)
    return output[:, :dim], output[:, dim:]


class MAFLayer(Bijector):
  """One MAF layer: ``u = (x - mu(x)) * exp(-alpha(x))`` with a MADE ``(mu, alpha)``.

  Forward (data -> noise) is a single MADE pass with log-determinant
  ``-sum_i alpha_i``; the inverse
  ``x_i = u_i * exp(alpha_i) + mu_i`` is computed in ``d`` MADE passes by a
  ``jax.lax.fori_loop`` (after pass ``k`` every input of degree ``<= k`` is
  exact). Shapes: ``(batch, d)`` in and out, log-determinant ``(batch,)``.

  Attributes:
    hidden: widths of the MADE hidden layers.
    order: MADE input degrees (permutation of ``1..d``); ``None`` is natural.
    activation: MADE hidden non-linearity.
  """

  hidden: Sequence[int] = (100,)
  order: Sequence[int] | None = None
  activation: Callable[[Array], Array] = nn.relu

  @nn.compact
  def _shift_and_log_scale(self, x: Array) -> tuple[Array, Array]:
    """MADE outputs ``(mu, alpha)`` for ``x``, each ``(batch, d)``."""
    return MADE(self.hidden, self.order, self.activation)(x)

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    """``u = (x - mu) * exp(-alpha)``; log-det ``-sum alpha``, ``(batch,)``."""
    shift, log_scale = self._shift_and_log_scale(x)
    return (x - shift) * jnp.exp(-log_scale), -jnp.sum(log_scale, axis=-1)

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    """``x = u * exp(alpha(x)) + mu(x)`` solved sequentially; log-det ``sum alpha``."""

    def refine(x: Array) -> tuple[Array, Array]:
      shift, log_scale = self._shift_and_log_scale(x)
      return y * jnp.exp(log_scale) + shift, log_scale

    first = refine(jnp.zeros_like(y))
    x, log_scale = jax.lax.fori_loop(1, y.shape[-1], lambda _, carry: refine(carry[0]), first)
    return x, jnp.sum(log_scale, axis=-1)


def maf(num_blocks: int = 5, hidden: Sequence[int] = (100,), batch_norm: bool = True) -> Chain:
  """Masked autoregressive flow as in the featurized DRE paper (App. E.1, Table 4).

  ``num_blocks`` :class:`MAFLayer` s in natural order; between consecutive
  blocks a :class:`~nflax.bijectors.batchnorm.BatchNorm` (if ``batch_norm``)
  and a :class:`~nflax.bijectors.linear.Reverse`, so that successive MADEs see
  the dimensions in opposite orders.

  Args:
    num_blocks: number of MADE blocks.
    hidden: hidden widths of each MADE.
    batch_norm: insert batch normalisation between blocks.

  Returns:
    A :class:`Chain` (forward: data -> noise). Apply with
    ``mutable=['batch_stats']`` for training calls.
  """
  if num_blocks < 1:
    raise ValueError(f'num_blocks must be at least 1, got {num_blocks}')
  layers = []
  for block in range(num_blocks):
    if block:
      if batch_norm:
        layers.append(BatchNorm())
      layers.append(Reverse())
    layers.append(MAFLayer(hidden=tuple(hidden)))
  return Chain(layers)
