"""Devices: one mesh over every device of every host, axes ``('replica', 'data')``.

Replicated training state and data carry a leading replica axis (seeds and
shape-preserving settings, :mod:`nflax.engine`). The mesh puts as many devices on the
``'replica'`` axis as divide the number of replicas (``gcd(R, devices)``) and the rest on
``'data'``: with enough devices every replica trains on its own devices, otherwise each
step's batch is split along ``'data'`` and ``jax.jit`` inserts the gradient all-reduce.
With one device all of this is a no-op, so the same code runs on a laptop CPU, one GPU or
every chip of a TPU pod.

Multi-host (``jax.distributed.initialize()``): every process holds the same host copy of
the (small) data sets and states; :func:`place_replicated` builds global arrays from it,
each process feeding only its own devices, and :func:`to_host` brings results back to
every process. Only :func:`is_writer` (process 0) writes files.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

__all__ = [
    'REPLICA_AXIS', 'DATA_AXIS', 'mesh', 'replicated_sharding', 'place_replicated', 'to_host',
    'is_writer', 'check_divisible'
]

REPLICA_AXIS = 'replica'
DATA_AXIS = 'data'


def mesh(num_replicas: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A ``(replica, data)`` mesh over ``devices`` (default: every device of every host).

  The ``'replica'`` axis has ``gcd(num_replicas, len(devices))`` devices, the ``'data'``
  axis the rest. The devices are laid out by ``jax.make_mesh``, which follows the
  interconnect (the torus of a TPU slice, the device numbering of a GPU host; on CPU the
  order of ``devices``); both axes are ``AxisType.Auto`` (sharding propagated by
  ``jax.jit``, as for a plain ``Mesh``). One TPU slice at most: ``jax.make_mesh`` refuses
  devices of several slices.
  """
  devices = jax.devices() if devices is None else list(devices)
  if num_replicas < 1:
    raise ValueError(f'num_replicas must be >= 1, got {num_replicas}')
  replica_size = math.gcd(num_replicas, len(devices))
  return jax.make_mesh((replica_size, len(devices) // replica_size),
                       (REPLICA_AXIS, DATA_AXIS), axis_types=(AxisType.Auto,) * 2,
                       devices=devices)


def replicated_sharding(mesh_: Mesh) -> NamedSharding:
  """Leading axis split over ``'replica'``, the rest copied over ``'data'``."""
  return NamedSharding(mesh_, PartitionSpec(REPLICA_AXIS))


def place_replicated(tree: Any, mesh_: Mesh) -> Any:
  """Places every leaf (leading replica axis) on ``mesh_`` with :func:`replicated_sharding`.

  In a multi-process job every process passes the same values; each feeds its own devices.
  """
  sharding = replicated_sharding(mesh_)

  def place(leaf):
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
      return leaf
    if jax.process_count() == 1:
      return jax.device_put(leaf, sharding)
    host = to_host(leaf) if isinstance(leaf, jax.Array) else np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

  return jax.tree.map(place, tree)


def to_host(tree: Any) -> Any:
  """Every leaf as a numpy array on this host (gathered across processes if needed)."""
  def get(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
    return np.asarray(leaf)
  return jax.tree.map(get, tree)


def is_writer() -> bool:
  """Whether this process writes files (process 0 of a multi-host job)."""
  return jax.process_index() == 0


def check_divisible(batch_size: int, mesh_: Mesh) -> None:
  """Raises if ``batch_size`` cannot be split evenly over the mesh's ``'data'`` axis."""
  num = mesh_.shape[DATA_AXIS]
  if batch_size % num:
    raise ValueError(
        f'batch size {batch_size} is not divisible by the {num} devices of the '
        f"'{DATA_AXIS}' mesh axis; choose a multiple of {num}")
