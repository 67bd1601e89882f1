"""Seeds and settings as replicas: a config's ``seeds`` and ``side_by_side`` settings, the
per-seed data draws, and the results over seeds.

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

``side_by_side`` names numeric settings that do not change shapes and the values to train
side by side in the same program, ``'<field>=<v1>,<v2>;<field>=...'`` (e.g.
``--config.side_by_side='train.joint.lr=1e-3,3e-4'``); every combination of values trains
with every seed (:class:`Layout`), each combination's seeds sharing their initialisation
and batches with the other combinations' (a paired comparison), and results are reported
per setting (:func:`aggregate_layout`). Each family names the fields it supports.
"""

from __future__ import annotations

import dataclasses
import itertools
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
  error ``std / sqrt(R)`` (``ddof=1``; absent where fewer than two seeds give a finite
  value, so a one-seed run has none). Other values are kept when
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
      if finite.size > 1:
        out[f'{name}_se'] = float(finite.std(ddof=1) / math.sqrt(finite.size))
    elif all(v == values[0] for v in values):
      out[name] = values[0]
    else:
      out[name] = values
  out['seeds'] = list(seeds)
  out['per_seed'] = [{'seed': seed, **result} for seed, result in zip(seeds, per_seed)]
  return out


def settings_of(config: ml_collections.ConfigDict,
                supported: Sequence[str]) -> list[dict[str, float]]:
  """Every combination of ``config.side_by_side``'s values, ``[{}]`` when it is empty.

  Raises:
    ValueError: a malformed entry, a field the family does not support or the config does
      not have, a non-numeric field, or a value that is not a finite number; the message
      names the field.
  """
  spec = config.get('side_by_side', '') or ''
  if not spec.strip():
    return [{}]
  fields: dict[str, tuple[float, ...]] = {}
  for entry in spec.split(';'):
    path, sign, text = entry.partition('=')
    path = path.strip()
    if not sign or not path or not text.strip():
      raise ValueError(f"config.side_by_side entry {entry!r} is not '<field>=<v1>,<v2>'")
    if path not in supported:
      raise ValueError(f"config.side_by_side: field '{path}' cannot differ between replicas "
                       f"of experiment '{config.experiment}'; supported: {list(supported)}")
    node = config
    for name in path.split('.'):
      if not isinstance(node, ml_collections.ConfigDict) or name not in node:
        raise ValueError(f"config.side_by_side: the config has no field '{path}'")
      node = node[name]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
      raise ValueError(f"config.side_by_side: field '{path}' is not a number ({node!r})")
    try:
      values = tuple(float(v) for v in text.split(','))
    except ValueError as err:
      raise ValueError(f"config.side_by_side: field '{path}' needs numbers, got {text!r}"
                       ) from err
    if not all(math.isfinite(v) for v in values) or len(set(values)) != len(values):
      raise ValueError(f"config.side_by_side: field '{path}' needs distinct finite values, "
                       f'got {values}')
    if path in fields:
      raise ValueError(f"config.side_by_side names field '{path}' twice")
    fields[path] = values
  return [dict(zip(fields, combo)) for combo in itertools.product(*fields.values())]


def setting_label(setting: dict[str, float]) -> str:
  """``'train.joint.lr=0.001,eps=0.1'``: a setting's name in results keys."""
  return ','.join(f'{path}={value:g}' for path, value in setting.items())


@dataclasses.dataclass(frozen=True)
class Layout:
  """Replica ``r`` trains seed ``seeds[r % S]`` with setting ``settings[r // S]``.

  Attributes:
    seeds: the config's seeds (``S`` of them).
    settings: the combinations of side-by-side values (``[{}]`` for none).
  """
  seeds: tuple[int, ...]
  settings: tuple[dict[str, float], ...]

  @property
  def num_replicas(self) -> int:
    return len(self.seeds) * len(self.settings)

  def seed_index(self) -> np.ndarray:
    """``(R,)`` each replica's index into ``seeds``."""
    return np.arange(self.num_replicas) % len(self.seeds)

  def tile(self, per_seed: Any) -> Any:
    """Per-seed arrays (leading axis ``S``) expanded to every replica (leading axis ``R``)."""
    index = self.seed_index()
    return jax.tree.map(lambda leaf: leaf[index], per_seed)

  def keys(self) -> jax.Array:
    """``(R, 2)``: replicas of one seed share its key (paired comparisons of settings)."""
    return self.tile(keys(self.seeds))

  def values(self, config: ml_collections.ConfigDict, path: str) -> np.ndarray:
    """``(R,)`` the value of field ``path`` for every replica."""
    default = config
    for name in path.split('.'):
      default = default[name]
    per_setting = [setting.get(path, default) for setting in self.settings]
    return np.repeat(np.asarray(per_setting, np.float64), len(self.seeds))

  def block_values(self, config: ml_collections.ConfigDict, block: str) -> dict[str, np.ndarray]:
    """``{field: (R,) values}`` of the fields of training block ``block`` (a dotted path,
    e.g. ``'train.density'``) that differ between settings (for
    :func:`harness.stages.train`'s ``per_replica``)."""
    fields = {path[len(block) + 1:] for setting in self.settings for path in setting
              if path.startswith(block + '.')}
    return {field: self.values(config, f'{block}.{field}') for field in sorted(fields)}

  def config_of(self, config: ml_collections.ConfigDict,
                replica: int) -> ml_collections.ConfigDict:
    """``config`` with replica ``replica``'s setting applied."""
    setting = self.settings[replica // len(self.seeds)]
    if not setting:
      return config
    copy = ml_collections.ConfigDict(config.to_dict())
    for path, value in setting.items():
      *parents, name = path.split('.')
      node = copy
      for parent in parents:
        node = node[parent]
      node[name] = type(node[name])(value)
    return copy


def layout_of(config: ml_collections.ConfigDict, supported: Sequence[str] = ()) -> Layout:
  """The replicas of ``config``: its seeds times its side-by-side settings."""
  return Layout(seeds_of(config), tuple(settings_of(config, supported)))


def aggregate_layout(per_replica: Sequence[dict], layout: Layout) -> dict:
  """``results.json`` of a run with :class:`Layout` ``layout``.

  One setting: :func:`aggregate` over the seeds. Several: ``per_setting`` lists each
  setting's :func:`aggregate` block with its ``setting``, and every numeric metric is also
  at the top level as ``<name>/<setting label>`` (with ``_se``).
  """
  if len(per_replica) != layout.num_replicas:
    raise ValueError(f'{len(per_replica)} results for {layout.num_replicas} replicas')
  count = len(layout.seeds)
  blocks = [aggregate(per_replica[i * count:(i + 1) * count], layout.seeds)
            for i in range(len(layout.settings))]
  if len(layout.settings) == 1:
    return blocks[0]
  out: dict[str, Any] = {'seeds': list(layout.seeds), 'per_setting': []}
  for setting, block in zip(layout.settings, blocks):
    label = setting_label(setting)
    for name, value in block.items():
      if name not in ('seeds', 'per_seed') and (value is None or _is_number(value)):
        out[f'{name}/{label}'] = value
    out['per_setting'].append({'setting': setting, **block})
  return out
