"""What a sweep is: a list of points, each a dict of overrides, and each point's name.

A config file that sweeps defines ``get_sweep(name='')`` returning a list of points. A point
maps dotted config fields to values (``{'model.hidden': (64, 64), 'train.lr': 1e-3}``);
the reserved key :data:`VARIANT` picks the variant of the config file the point starts from
(``{'variant': 'maf', 'model.hidden': (100,)}``). Build points with :func:`axis`,
:func:`product` and :func:`zip_axes`::

  def get_sweep(name=''):
    \"\"\"Flow family x width.\"\"\"
    return sweeps.product(sweeps.axis('variant', ['', 'maf']),
                          sweeps.axis('model.hidden', [(64, 64), (256, 256)]))

Named sweeps (``get_sweep('smoke')``, a tiny one for tests) are listed in the file's
``SWEEPS``; per-job resources of its jobs (submitit's ``timeout_min``, ``gpus_per_node``,
``cpus_per_task``, ``mem_gb``, ``slurm_partition``, ...) in its ``SWEEP_RESOURCES`` dict.
``python -m experiments.sweep`` runs the points, each into ``<dir>/<point_name(point)>``.

This module is pure (no JAX, no files): config files import it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any, Iterable, Sequence

VARIANT = 'variant'
"""The point key that names the config file's variant (``''``: the base config)."""

MAX_NAME_LENGTH = 200
"""Longer point names keep their first characters and end in a hash of the whole name."""

_UNSAFE = re.compile(r'[^A-Za-z0-9._=,+-]')


def axis(field: str, values: Iterable[Any]) -> list[dict[str, Any]]:
  """One point per value of ``field``: ``[{field: v} for v in values]``."""
  return [{field: value} for value in values]


def _merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
  merged = {}
  for part in parts:
    for field, value in part.items():
      if field in merged:
        raise ValueError(f'field {field!r} is set by two axes of one sweep point')
      merged[field] = value
  return merged


def product(*axes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Every combination of one point from each axis, merged (the last axis varies fastest).

  ``product(axis('a', [1, 2]), axis('b', [3, 4]))`` has 4 points. An axis is any list of
  points, e.g. a :func:`zip_axes`. A field set by two axes raises ``ValueError``.
  """
  return [_merge(parts) for parts in itertools.product(*axes)]


def zip_axes(*axes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """The i-th points of all axes merged, for axes of equal length (fields that move
  together, e.g. a width and its learning rate)."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise ValueError(f'zip_axes needs axes of equal length, got lengths {sorted(lengths)}')
  return [_merge(parts) for parts in zip(*axes)]


def _format(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return '-'.join(_format(v) for v in value) if value else 'empty'
  if isinstance(value, float):
    return repr(value)
  return str(value)


def point_name(point: dict[str, Any]) -> str:
  """The point's folder name: ``field=value`` pairs, the variant first, then the fields in
  sorted order, joined by ``,`` (``variant=maf,model.hidden=64-64,train.lr=0.001``).

  Tuples join their elements with ``-``; characters other than letters, digits and
  ``._=,+-`` become ``_``; the empty point is ``base``. Deterministic and readable; two
  different points could in principle share a name (``'64-64'`` and ``(64, 64)``), which
  :func:`check_names` refuses.
  """
  fields = sorted(field for field in point if field != VARIANT)
  pairs = [(VARIANT, point[VARIANT])] if point.get(VARIANT) else []
  pairs += [(field, point[field]) for field in fields]
  name = _UNSAFE.sub('_', ','.join(f'{field}={_format(value)}' for field, value in pairs))
  name = name or 'base'
  if len(name) > MAX_NAME_LENGTH:
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    name = f'{name[:MAX_NAME_LENGTH - 13]}~{digest}'
  return name


def check_names(points: Sequence[dict[str, Any]]) -> list[str]:
  """The points' names (:func:`point_name`), in order.

  Raises:
    ValueError: two points with the same name (a repeated point, or values that format
      alike), naming both.
  """
  names, seen = [], {}
  for index, point in enumerate(points):
    name = point_name(point)
    if name in seen:
      raise ValueError(f'sweep points {seen[name]} ({points[seen[name]]!r}) and {index} '
                       f'({point!r}) share the folder name {name!r}: make them differ')
    seen[name] = index
    names.append(name)
  return names
