"""distrax views of bound ``nflax`` modules (optional: ``pip install -e ".[distrax]"``).

For code written against distrax:

* :func:`bijector` -- an ``nflax`` bijector with fixed variables as a ``distrax.Bijector``
  with the same orientation (forward = data -> latent);
* :func:`distribution` -- an ``nflax`` density with fixed variables as a
  ``distrax.Distribution`` (``log_prob`` over any leading axes, ``sample``).

distrax is not a core dependency: it pulls ``tfp-nightly``, a different build every day, and
nothing else in the project needs it. Importing this module without it fails with an error
that says how to install it.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

try:
  import distrax
except ImportError as err:  # pragma: no cover - exercised only without the extra
  raise ImportError('nflax.distrax_views needs distrax: pip install -e ".[distrax]" '
                    '(with the lock file: -c requirements/lock.txt)') from err

from nflax import densities
from nflax.bijectors.base import Bijector

__all__ = ['bijector', 'distribution']


class _Bijector(distrax.Bijector):
  """A bound ``nflax`` bijector seen as a ``distrax.Bijector``.

  Any number of leading sample/batch axes is flattened into the single batch
  axis that ``nflax`` modules expect, then restored. ``key``, when given, is the
  ``'hutchinson'`` rng of every call (FFJORD's stochastic trace estimator).
  """

  def __init__(self, module: Bijector, variables: Any, event_ndims: int,
               key: jax.Array | None = None):
    super().__init__(event_ndims_in=event_ndims)
    self._module = module
    self._variables = variables
    self._event_ndims = event_ndims
    self._rngs = None if key is None else {'hutchinson': key}

  def _apply(self, x, method):
    x = jnp.asarray(x)
    split = x.ndim - self._event_ndims
    lead, event = x.shape[:split], x.shape[split:]
    y, log_det = self._module.apply(self._variables, x.reshape((-1,) + event), method=method,
                                    rngs=self._rngs)
    return y.reshape(lead + y.shape[1:]), log_det.reshape(lead)

  def forward_and_log_det(self, x):
    return self._apply(x, type(self._module).forward_and_log_det)

  def inverse_and_log_det(self, y):
    return self._apply(y, type(self._module).inverse_and_log_det)


def bijector(module: Bijector, variables: Any, event_ndims: int = 1,
             key: jax.Array | None = None) -> distrax.Bijector:
  """Wraps ``module`` with fixed ``variables`` as a ``distrax.Bijector``.

  Args:
    module: an ``nflax`` bijector.
    variables: its Flax variables (``{'params': ..., ...}``).
    event_ndims: number of trailing axes forming one event (1 for vectors,
      3 for ``(H, W, C)`` images).
    key: the ``'hutchinson'`` rng of flows with a stochastic trace estimator (FFJORD
      with ``trace_estimator='hutchinson'``): every call uses this one probe draw; wrap
      again with another key for another draw.

  Returns:
    A distrax bijector whose forward is the module's forward (data -> latent).
    A density in distrax form is therefore
    ``distrax.Transformed(base, distrax.Inverse(bijector(flow, variables)))``.
  """
  return _Bijector(module, variables, event_ndims, key)


class _Distribution(distrax.Distribution):
  """A bound ``nflax`` density seen as a ``distrax.Distribution``."""

  def __init__(self, module: densities.Density, variables: Any, event_shape: Sequence[int],
               key: jax.Array | None = None):
    self._module = module
    self._variables = variables
    self._event_shape = tuple(event_shape)
    self._rngs = None if key is None else {'hutchinson': key}

  @property
  def event_shape(self):
    return self._event_shape

  def log_prob(self, value):
    value = jnp.asarray(value)
    lead = value.shape[:value.ndim - len(self._event_shape)]
    flat = value.reshape((-1,) + self._event_shape)
    return self._module.apply(self._variables, flat, method=type(self._module).log_prob,
                              rngs=self._rngs).reshape(lead)

  def _sample_n(self, key, n):
    return self._module.apply(self._variables, key, n, method=type(self._module).sample,
                              rngs=self._rngs)


def distribution(module: densities.Density, variables: Any, event_shape: Sequence[int],
                 key: jax.Array | None = None) -> distrax.Distribution:
  """Wraps a density module with fixed ``variables`` as a distrax distribution.

  A :class:`nflax.densities.FlowDensity` whose base is
  :class:`nflax.densities.StandardNormal` becomes an ordinary ``distrax.Transformed`` (so
  distrax's bijector algebra applies); any other density is wrapped directly. Both have
  ``log_prob`` over any leading axes and ``sample(seed=key, sample_shape=n)``. ``key`` is the
  ``'hutchinson'`` rng of flows with a stochastic trace estimator (FFJORD with
  ``trace_estimator='hutchinson'``; one probe draw for every call).
  """
  if (isinstance(module, densities.FlowDensity)
      and isinstance(module.base, densities.StandardNormal)):
    flow_vars = {k: v['flow'] for k, v in variables.items() if 'flow' in v}
    event_ndims = len(event_shape)
    base = distrax.Independent(
        distrax.Normal(jnp.zeros(event_shape), jnp.ones(event_shape)),
        reinterpreted_batch_ndims=event_ndims)
    return distrax.Transformed(
        base, distrax.Inverse(bijector(module.flow, flow_vars, event_ndims, key)))
  return _Distribution(module, variables, event_shape, key)
