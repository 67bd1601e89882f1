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

__all__ = [
    'input_degrees', 'hidden_degrees', 'hidden_mask', 'output_mask', 'MaskedDense', 'MADE',
    'MAFLayer', 'maf'
]

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
  ``x_i = u_i * exp(alpha_i) + mu_i`` is sequential over the ``d`` input degrees:
  one ``lax.scan`` that computes, per degree, only that input's ``mu_i`` and
  ``alpha_i`` (:func:`_sequential_inverse`; the same numbers as ``d`` full MADE
  passes, :meth:`_inverse_by_passes`, up to float rounding). Shapes: ``(batch, d)`` in and out, log-determinant ``(batch,)``.

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
    """``x = u * exp(alpha(x)) + mu(x)`` solved sequentially; log-det ``sum alpha``.

    With hidden layers, one ``lax.scan`` step per input degree computes only what that
    degree needs (:func:`_sequential_inverse`): ``O(batch * width)`` work per dimension
    instead of a full MADE pass; without, ``d`` full MADE passes (:meth:`_inverse_by_passes`).
    """
    if y.ndim != 2:
      raise ValueError(f'MAFLayer expects vectors (batch, d), got shape {y.shape}')
    if self.is_initializing():
      self._shift_and_log_scale(y)  # creates the MADE's parameters
    if not self.hidden:
      return self._inverse_by_passes(y)
    return _sequential_inverse(self.variables['params']['MADE_0'], y, tuple(self.hidden),
                               self.order, self.activation)

  def _inverse_by_passes(self, y: Array) -> tuple[Array, Array]:
    """The inverse by ``d`` full MADE passes (a ``fori_loop``): after pass ``k`` every input
    of degree ``<= k`` is exact. The reference of :func:`_sequential_inverse`."""

    def refine(x: Array) -> tuple[Array, Array]:
      shift, log_scale = self._shift_and_log_scale(x)
      return y * jnp.exp(log_scale) + shift, log_scale

    first = refine(jnp.zeros_like(y))
    x, log_scale = jax.lax.fori_loop(1, y.shape[-1], lambda _, carry: refine(carry[0]), first)
    return x, jnp.sum(log_scale, axis=-1)


def _sequential_inverse(made_params: dict, y: Array, hidden: tuple[int, ...],
                        order: Sequence[int] | None,
                        activation: Callable[[Array], Array]) -> tuple[Array, Array]:
  """MAF's inverse ``x_i = y_i exp(alpha_i) + mu_i`` one input degree at a time.

  The same numbers as ``d`` full MADE passes (up to float rounding), computed in one
  ``lax.scan`` over the degrees ``k = 1 .. d``, whose carry is the first hidden layer's
  pre-activation ``a = x @ W_1 + b_1`` of the inputs solved so far. Step ``k`` reads the
  hidden units from ``a`` (through any further hidden layers), forms only output ``i``
  (the input of degree ``k``): ``mu_i``, ``alpha_i`` from two columns of the output layer,
  sets ``x_i`` and adds ``x_i W_1[i]`` to ``a``. Inputs of degree ``> k`` are still zero in
  ``a`` and cannot reach output ``i`` anyway (the masks), so ``mu_i`` and ``alpha_i`` are
  those of the final ``x``. Work per step: ``O(batch * width)`` for one hidden layer,
  instead of a full pass ``O(batch * width * d)``.

  Args:
    made_params: the MADE's parameters (``MaskedDense_0`` ... ``MaskedDense_L``).
    y: ``(batch, d)`` noise.
    hidden: the MADE's hidden widths (at least one).
    order: its input degrees (``None``: natural).
    activation: its hidden non-linearity.

  Returns:
    ``x`` of shape ``(batch, d)`` and ``sum_i alpha_i`` of shape ``(batch,)``.
  """
  dim = y.shape[-1]
  in_degrees = input_degrees(dim, order)
  degrees, masks = in_degrees, []
  for width in hidden:
    next_degrees = hidden_degrees(width, dim)
    masks.append(hidden_mask(degrees, next_degrees))
    degrees = next_degrees
  masks.append(output_mask(degrees, np.concatenate([in_degrees, in_degrees])))
  layers = [made_params[f'MaskedDense_{index}'] for index in range(len(masks))]
  kernels = [layer['kernel'] * jnp.asarray(mask, y.dtype)
             for layer, mask in zip(layers, masks)]
  biases = [layer['bias'] for layer in layers]
  positions = np.argsort(in_degrees)  # the input of degree k + 1 is positions[k]
  out_kernel, out_bias = kernels[-1], biases[-1]
  per_degree = (kernels[0][positions],                 # (d, width_1): rows of W_1
                out_kernel[:, positions].T,            # (d, width_L): shift columns
                out_kernel[:, dim + positions].T,      # (d, width_L): log-scale columns
                out_bias[positions], out_bias[dim + positions],
                y.T[positions])                        # (d, batch)

  def step(pre_activation, inputs):
    first_row, shift_column, log_scale_column, shift_bias, log_scale_bias, y_i = inputs
    h = activation(pre_activation)
    for kernel, bias in zip(kernels[1:-1], biases[1:-1]):
      h = activation(h @ kernel + bias)
    shift = h @ shift_column + shift_bias
    log_scale = h @ log_scale_column + log_scale_bias
    x_i = y_i * jnp.exp(log_scale) + shift
    return pre_activation + x_i[:, None] * first_row, (x_i, log_scale)

  initial = jnp.broadcast_to(biases[0], y.shape[:1] + biases[0].shape).astype(y.dtype)
  _, (x_sorted, log_scale_sorted) = jax.lax.scan(step, initial, per_degree)
  inverse_positions = np.argsort(positions)
  x = x_sorted[inverse_positions].T
  return x, jnp.sum(log_scale_sorted, axis=0)


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
