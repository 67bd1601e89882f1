"""Every setting of a config checked before anything is written or trained.

:func:`validate` walks the whole config and checks each field by its name, wherever it
sits (``train.joint.lr``, ``train.critic.lr``, ``train.joint.batch_size``, ...):

==========================================  ==============================================
field name                                  must be
==========================================  ==============================================
``lr``, ``*_lr``                            a finite number > 0
``weight_decay``, ``grad_clip``,            a finite number >= 0
``*_grad_clip``
``num_steps``                               an int >= 0
``batch_size``, ``*_batch_size``            an int >= 1
``steps_per_dispatch``, ``*_every``         an int >= 1 (periods in steps)
``patience``                                ``None`` or an int >= 1
``hidden``, ``*_hidden``                    a tuple of ints >= 1 (layer widths)
``splits``, ``splits_*``                    a tuple of ints >= 0
``seeds``                                   :func:`harness.replicas.seeds_of`
any number, also inside tuples              finite (data options such as
                                            ``rotation_degrees`` included)
a tuple field                               the element types of the config file's
                                            default (``defaults``)
``side_by_side`` values                     the rule of the field they set
==========================================  ==============================================

Each failure names the field's full path (``model.flow.hidden``, ``data.b.options.
rotation_degrees``).

Every config has one schema (:func:`check_schema`)::

  experiment      'family.module' (experiments.launch.EXPERIMENTS)
  seeds           the seeds trained (side by side where the family can)
  data            the data: its ``name`` (or ``a.name`` and ``b.name`` for two domains),
                  options and splits
  model.<role>    one block per model the experiment builds (``model.density``,
                  ``model.flow``, ``model.critic``, ...): each experiment module's
                  ``build_models(config)`` builds every one of them, by role
  train.<stage>   one block per training stage (``train.private``, ``train.joint``, ...):
                  each goes through the one optimiser factory
                  :func:`harness.stages.make_optimizer`, and optimiser settings live
                  nowhere else
  <setting>       the method's own settings, each a number, string or tuple at the top
                  level (``eps``, ``restarts``, ``lams``, ...) Checks that need the data (a batch size against its stage's training
set, divisibility by the data mesh) run in each family before its first stage trains:
:func:`check_batch_sizes`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import ml_collections
import numpy as np

from harness import replicas
from nflax import parallel


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
      value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _rule(name: str):
  """``(description, check)`` of a field called ``name``, or ``None``."""
  if name == 'lr' or name.endswith('_lr'):
    return 'a finite number > 0', lambda v: _is_number(v) and math.isfinite(v) and v > 0
  if name in ('weight_decay', 'grad_clip') or name.endswith('_grad_clip'):
    return 'a finite number >= 0', lambda v: _is_number(v) and math.isfinite(v) and v >= 0
  if name == 'num_steps':
    return 'an int >= 0', lambda v: _is_int(v) and v >= 0
  if name == 'batch_size' or name.endswith('_batch_size'):
    return 'an int >= 1', lambda v: _is_int(v) and v >= 1
  if name == 'steps_per_dispatch' or name.endswith('_every'):
    return 'an int >= 1 (a period in steps)', lambda v: _is_int(v) and v >= 1
  if name == 'patience':
    return 'None or an int >= 1', lambda v: v is None or (_is_int(v) and v >= 1)
  if name == 'hidden' or name.endswith('_hidden'):
    return 'a tuple of ints >= 1', lambda v: isinstance(v, (tuple, list)) and all(
        _is_int(x) and x >= 1 for x in v)
  if name == 'splits' or name.startswith('splits_'):
    return 'a tuple of ints >= 0', lambda v: isinstance(v, (tuple, list)) and all(
        _is_int(x) and x >= 0 for x in v)
  return None


def _check_field(path: str, value: Any) -> None:
  name = path.rsplit('.', 1)[-1]
  rule = _rule(name)
  if rule is not None and not rule[1](value):
    raise ValueError(f'config.{path} must be {rule[0]}, got {value!r}')
  for item in (value if isinstance(value, (tuple, list)) else (value,)):
    if _is_number(item) and not math.isfinite(item):
      raise ValueError(f'config.{path} must be finite, got {value!r}')


def _kind(value: Any) -> str:
  if _is_int(value):
    return 'int'
  return 'float' if _is_number(value) else type(value).__name__


def _check_elements(path: str, value: Any, default: Any) -> None:
  """Tuple elements of the kinds of the default's elements (an int may stand for a float;
  a default mixing kinds, e.g. ``('joint', 0.1)``, gives them by position)."""
  if not isinstance(value, (tuple, list)) or not isinstance(default, (tuple, list)) or not default:
    return
  kinds = [_kind(x) for x in default]
  for index, item in enumerate(value):
    want = kinds[min(index, len(kinds) - 1)] if len(set(kinds)) > 1 else kinds[0]
    if not (_kind(item) == want or (want == 'float' and _kind(item) == 'int')):
      raise ValueError(f'config.{path}: element {index} ({item!r}) of {tuple(value)!r} must '
                       f'be of type {want}, like the defaults {tuple(default)!r}')


def _leaves(node: Any, prefix: str = ''):
  for name, value in node.items():
    path = f'{prefix}{name}'
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      yield from _leaves(value, path + '.')
    else:
      yield path, value


def _lookup(node: Any, path: str) -> Any:
  for name in path.split('.'):
    if not isinstance(node, (dict, ml_collections.ConfigDict)) or name not in node:
      return None
    node = node[name]
  return node


def validate(config: ml_collections.ConfigDict,
             defaults: ml_collections.ConfigDict | None = None) -> None:
  """Checks the schema (:func:`check_schema`) and every field of ``config`` (see the module
  docstring); ``defaults`` is the config file's own config (without overrides), whose tuples
  give the element types.

  Raises:
    ValueError: naming the first bad field by its full path.
  """
  check_schema(config)
  leaves = dict(_leaves(config))
  for path, value in leaves.items():
    _check_field(path, value)
    if defaults is not None:
      _check_elements(path, value, _lookup(defaults, path))
  if 'seeds' in config:
    replicas.seeds_of(config)
  numeric = [path for path, value in leaves.items() if _is_number(value)]
  for setting in replicas.settings_of(config, numeric):
    for path, value in setting.items():
      _check_field(path, int(value) if _is_int(leaves[path]) and value == int(value)
                   else value)


BLOCKS = ('data', 'model', 'train')
"""The only top-level blocks of a config."""

OPTIMIZER_FIELDS = ('lr', 'b1', 'b2', 'weight_decay', 'weight_decay_style', 'schedule',
                    'grad_clip')
"""Fields of :func:`harness.stages.make_optimizer`: they belong to ``train.<stage>`` blocks."""


def _is_block(value: Any) -> bool:
  return isinstance(value, (dict, ml_collections.ConfigDict))


def check_schema(config: ml_collections.ConfigDict) -> None:
  """The one config schema (module docstring): ``experiment``, ``seeds``, and as blocks only
  ``data`` (naming its data sets), ``model.<role>`` and ``train.<stage>``.

  Raises:
    ValueError: naming the field that breaks it.
  """
  for name in ('experiment', 'seeds'):
    if name not in config:
      raise ValueError(f'config.{name} is missing (every config has experiment and seeds)')
  for name, value in config.items():
    if _is_block(value) and name not in BLOCKS:
      raise ValueError(f'config.{name} is a block; the only blocks are {BLOCKS} (a model '
                       f'goes in model.<role>, a training stage in train.<stage>, a setting '
                       'of the method is a top-level number, string or tuple)')
  for name in ('model', 'train'):
    for role, block in config.get(name, {}).items():
      if not _is_block(block):
        raise ValueError(f'config.{name}.{role} must be a block ({name}.<'
                         f'{"role" if name == "model" else "stage"}>), got {block!r}')
  data = config.get('data')
  if data is not None and 'name' not in data and not all(
      _is_block(data.get(side)) and 'name' in data[side] for side in ('a', 'b')):
    raise ValueError('config.data must name its data set: data.name, or data.a.name and '
                     'data.b.name for two domains')
  for path, _ in _leaves(config):
    field = path.rsplit('.', 1)[-1]
    optimizer_field = field in OPTIMIZER_FIELDS or field.endswith(('_lr', '_grad_clip'))
    if optimizer_field and not (path.startswith('train.') and path.count('.') == 2):
      raise ValueError(f'config.{path} is an optimiser setting: it belongs in a '
                       'train.<stage> block (harness.stages.make_optimizer)')


def check_batch_sizes(sizes: dict[str, tuple[int, int]], num_replicas: int = 1) -> None:
  """Each batch size against the training set it draws from, before any training.

  Args:
    sizes: ``{field path: (batch size, training-set size)}``, e.g.
      ``{'train.joint.batch_size': (256, 400)}`` (the smallest set a stage draws from).
    num_replicas: replicas trained side by side (they set the data mesh,
      :func:`nflax.parallel.mesh`).

  Raises:
    ValueError: naming the field: a batch size outside ``[1, training-set size]`` or not
      divisible by the devices of the ``'data'`` mesh axis.
  """
  mesh = parallel.mesh(num_replicas, jax.devices())
  for path, (batch_size, size) in sizes.items():
    if not 0 < batch_size <= size:
      raise ValueError(f'config.{path} = {batch_size} must be in [1, {size}] (the size of '
                       'the training set it draws from)')
    try:
      parallel.check_divisible(batch_size, mesh)
    except ValueError as err:
      raise ValueError(f'config.{path}: {err}') from err
