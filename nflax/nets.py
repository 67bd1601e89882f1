"""Conditioner networks used inside flow layers.

Every network maps a batch ``(batch, *in_shape)`` to ``(batch, *out_shape)``;
the output layer is zero-initialised where noted, so that a coupling layer
starts at the identity map.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax

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
