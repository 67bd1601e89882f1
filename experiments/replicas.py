"""Seeds as replicas: a config's ``seeds``, the per-seed data draws, and the results over seeds.

A config's ``seeds`` (a tuple of ints, default ``(0,)``) lists independent replicas that
train side by side in one program (:mod:`nflax.engine`). Seed ``s`` owns its initialisation,
its batches and randomness (keys from ``PRNGKey(s)``), its split (a permutation drawn from
``s``) and its data draw: a synthetic data set whose options carry ``seed`` is drawn with
:func:`data_seed` ``(options.seed, s)``, which is ``options.seed`` itself for ``s = 0``.
So seed ``s`` of a multi-seed run gives the numbers of the one-seed run
``--config.seeds='(s,)'`` (up to float reassociation).

:func:`aggregate` turns per-seed results into ``results.json``: each metric at the top
level is the mean over seeds, ``<name>_se`` its standard error, and ``per_seed`` lists
every seed's metrics with its seed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

DATA_SEED_STRIDE = 10_000
"""Seed ``s`` draws a synthetic data set with ``options.seed + DATA_SEED_STRIDE * s``."""


def seeds_of(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """``config.seeds`` checked: a non-empty tuple of distinct non-negative ints."""
  seeds = config.get('seeds')
  if seeds is None:
    raise ValueError('config.seeds is missing: give a tuple of ints, e.g. (0,)')
  if isinstance(seeds, (int, np.integer)):
    seeds = (seeds,)
  seeds = tuple(seeds)
  if not seeds or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                          and s >= 0 for s in seeds):
    raise ValueError(f'config.seeds must be a non-empty tuple of non-negative ints, got '
                     f'{seeds!r}')
  if len(set(seeds)) != len(seeds):
    raise ValueError(f'config.seeds has repeated seeds: {seeds}')
  return tuple(int(s) for s in seeds)


def single_seed(config: ml_collections.ConfigDict) -> int:
  """The one seed of a family that does not train seeds side by side yet."""
  seeds = seeds_of(config)
  if len(seeds) != 1:
    raise ValueError(f"experiment '{config.experiment}' runs one seed at a time; got "
                     f'config.seeds={seeds}: run each seed as its own job')
  return seeds[0]


def data_seed(option_seed: int, seed: int) -> int:
  """The draw seed of a synthetic data set for replica ``seed`` (``option_seed`` at 0)."""
  return int(option_seed) + DATA_SEED_STRIDE * int(seed)


def with_data_seed(options: dict, seed: int) -> dict:
  """Data-set ``options`` for replica ``seed``: ``options['seed']`` moved by :func:`data_seed`."""
  options = dict(options)
  if 'seed' in options:
    options['seed'] = data_seed(options['seed'], seed)
  return options


def keys(seeds: Sequence[int]) -> jax.Array:
  """``(R, 2)`` the replicas' root keys, ``PRNGKey(s)`` for each seed."""
  return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def stack(per_seed: Sequence[Any]) -> Any:
  """Stacks per-seed pytrees (numpy arrays) along a new leading replica axis."""
  return jax.tree.map(lambda *leaves: np.stack(leaves), *per_seed)


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float, bool, np.integer, np.floating, np.bool_))


def aggregate(per_seed: Sequence[dict], seeds: Sequence[int]) -> dict:
  """``results.json`` over seeds: mean, ``<name>_se`` and ``per_seed``.

  Numeric metrics (booleans count as 0/1, so a flag's mean is the fraction of seeds that
  set it) are averaged over the seeds where they are finite; ``<name>_se`` is the standard
  error ``std / sqrt(R)`` (``ddof=1``; ``None`` with one seed). Other values are kept when
  every seed agrees and listed per seed otherwise. ``per_seed`` holds every seed's metrics
  with its ``seed``.
  """
  if len(per_seed) != len(seeds):
    raise ValueError(f'{len(per_seed)} results for {len(seeds)} seeds')
  names = list(dict.fromkeys(name for result in per_seed for name in result))
  out: dict[str, Any] = {}
  for name in names:
    values = [result.get(name) for result in per_seed]
    if all(_is_number(v) for v in values):
      numbers = np.asarray(values, np.float64)
      finite = numbers[np.isfinite(numbers)]
      out[name] = float(finite.mean()) if finite.size else float('nan')
      out[f'{name}_se'] = (float(finite.std(ddof=1) / math.sqrt(finite.size))
                           if finite.size > 1 else None)
    elif all(v == values[0] for v in values):
      out[name] = values[0]
    else:
      out[name] = values
  out['seeds'] = list(seeds)
  out['per_seed'] = [{'seed': seed, **result} for seed, result in zip(seeds, per_seed)]
  return out
