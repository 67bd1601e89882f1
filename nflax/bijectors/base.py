"""The bijector contract shared by every flow in ``nflax``.

A bijector is a Flax Linen module with two methods

* ``forward_and_log_det(x) -> (y, log|det dy/dx|)``
* ``inverse_and_log_det(y) -> (x, log|det dx/dy|)``

Shapes: ``x`` and ``y`` are ``(batch, *event_shape)`` with exactly one leading
batch axis; the log-determinants are ``(batch,)``. ``forward`` and ``inverse``
derive from the two methods, and ``__call__`` is ``forward_and_log_det`` so that
``module.init(key, x)`` creates every parameter.

Direction convention: a flow's *forward* direction is the normalising one,
data -> latent (``z = f(x)``), so a flow density is
``log p(x) = log p_Z(f(x)) + log|det df/dx|`` and sampling runs the inverse.
:func:`nflax.distrax_views.bijector` turns a module and its variables into a
``distrax.Bijector`` with the same orientation (optional extra ``distrax``).

Parameters whose shapes depend on the input are created inside one
``@nn.compact`` helper method that both directions call; Flax reuses the same
parameters on every call within one ``apply``.

Stateful layers (batch normalisation) treat a call in which the
``batch_stats`` collection is mutable as a training call: apply with
``mutable=['batch_stats']`` to use and update batch statistics, without it to
use the running averages.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ['Bijector', 'Chain', 'Inverse']

Array = jax.Array


class Bijector(nn.Module):
  """Abstract invertible map with tractable log-determinant.

  Subclasses implement :meth:`forward_and_log_det` and
  :meth:`inverse_and_log_det` on batches ``(batch, *event_shape)``.
  """

  def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
    raise NotImplementedError

  def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
    raise NotImplementedError

  def forward(self, x: Array) -> Array:
    return self.forward_and_log_det(x)[0]

  def inverse(self, y: Array) -> Array:
    return self.inverse_and_log_det(y)[0]

  def __call__(self, x: Array) -> tuple[Array, Array]:
    return self.forward_and_log_det(x)


class Chain(Bijector):
  """Composition ``f = layers[-1] o ... o layers[0]`` (``layers[0]`` acts first).

  The log-determinant is the sum of the layers' log-determinants.
  """

  layers: Sequence[Bijector]

  def forward_and_log_det(self, x):
    log_det = jnp.zeros(x.shape[:1], x.dtype)
    for layer in self.layers:
      x, ld = layer.forward_and_log_det(x)
      log_det = log_det + ld
    return x, log_det

  def inverse_and_log_det(self, y):
    log_det = jnp.zeros(y.shape[:1], y.dtype)
    for layer in reversed(self.layers):
      y, ld = layer.inverse_and_log_det(y)
      log_det = log_det + ld
    return y, log_det


class Inverse(Bijector):
  """The inverse ``f^{-1}`` of a bijector ``f``, sharing its parameters."""

  bijector: Bijector

  def forward_and_log_det(self, x):
    return self.bijector.inverse_and_log_det(x)

  def inverse_and_log_det(self, y):
    return self.bijector.forward_and_log_det(y)
