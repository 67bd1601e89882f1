"""Builds ``nflax`` flows and densities from a config's ``model`` block.

``model.family`` picks the density:

* ``'flow'``: :class:`nflax.densities.FlowDensity` with a standard normal base
  and the flow named by ``model.flow``, one of :data:`FLOWS`;
* ``'gaussian'``: a full-covariance :class:`nflax.densities.Gaussian`;
* ``'gaussian_mixture'``: a :class:`nflax.densities.GaussianMixture` with
  ``model.num_components`` components.

Each flow builder reads only its own fields from ``model`` (listed in
:data:`FLOWS`), so a config holds exactly the fields of the flow it names.
"""

from __future__ import annotations

from typing import Callable, Sequence

import ml_collections

from nflax import bijectors, densities


def _realnvp(model: ml_collections.ConfigDict) -> bijectors.Bijector:
  return bijectors.realnvp(num_blocks=model.num_blocks, hidden=tuple(model.hidden))


def _maf(model: ml_collections.ConfigDict) -> bijectors.Bijector:
  return bijectors.maf(num_blocks=model.num_blocks, hidden=tuple(model.hidden),
                       batch_norm=model.batch_norm)


def _ffjord(model: ml_collections.ConfigDict) -> bijectors.Bijector:
  return bijectors.ffjord(num_transforms=model.num_transforms, hidden=tuple(model.hidden),
                          trace_estimator=model.trace_estimator)


def _glow(model: ml_collections.ConfigDict) -> bijectors.Bijector:
  return bijectors.glow(num_levels=model.num_levels, steps_per_level=model.steps_per_level,
                        hidden_channels=model.hidden_channels)


def _affine(model: ml_collections.ConfigDict) -> bijectors.Bijector:
  del model
  return bijectors.PositiveDefiniteAffine()


FLOWS: dict[str, tuple[Callable[[ml_collections.ConfigDict], bijectors.Bijector],
                       tuple[str, ...]]] = {
    'realnvp': (_realnvp, ('num_blocks', 'hidden')),
    'maf': (_maf, ('num_blocks', 'hidden', 'batch_norm')),
    'ffjord': (_ffjord, ('num_transforms', 'hidden', 'trace_estimator')),
    'glow': (_glow, ('num_levels', 'steps_per_level', 'hidden_channels')),
    'affine': (_affine, ()),
}
"""Flow name -> (builder, the ``model`` fields it reads)."""


def build_flow(model: ml_collections.ConfigDict) -> bijectors.Bijector:
  """The flow named by ``model.flow``, configured by its fields."""
  if model.flow not in FLOWS:
    raise ValueError(f"unknown flow {model.flow!r}; available: {', '.join(sorted(FLOWS))}")
  builder, fields = FLOWS[model.flow]
  missing = [f for f in fields if f not in model]
  if missing:
    raise ValueError(f'flow {model.flow!r} needs config fields model.{", model.".join(missing)}')
  return builder(model)


def build_density(model: ml_collections.ConfigDict,
                  event_shape: Sequence[int]) -> densities.Density:
  """The density named by ``model.family`` over events of ``event_shape``."""
  event_shape = tuple(event_shape)
  if model.family == 'flow':
    return densities.FlowDensity(flow=build_flow(model),
                                 base=densities.StandardNormal(event_shape))
  if len(event_shape) != 1 and model.family in ('gaussian', 'gaussian_mixture'):
    raise ValueError(f'model.family {model.family!r} needs vector data, got event '
                     f'shape {event_shape}')
  if model.family == 'gaussian':
    return densities.Gaussian(dim=event_shape[0])
  if model.family == 'gaussian_mixture':
    return densities.GaussianMixture(dim=event_shape[0],
                                     num_components=model.num_components)
  raise ValueError(f"unknown model.family {model.family!r}; available: 'flow', "
                   "'gaussian', 'gaussian_mixture'")
