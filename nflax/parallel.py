"""Data parallelism: one mesh axis ``'data'`` over the local devices.

Training code stays single-program: parameters and the full data set are
replicated, each step's batch is constrained to be split along ``'data'``, and
``jax.jit`` inserts the gradient all-reduce. With one device this is a no-op,
so the same code runs on a laptop CPU, one GPU or every chip of a TPU host.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = 'data'


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh with axis ``'data'`` over ``devices`` (default: all local ones)."""
  devices = jax.local_devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every array of ``tree`` on every device of ``mesh``."""
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """Inside ``jit``: splits the leading (batch) axis of every leaf over ``'data'``."""
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batch)


def check_divisible(batch_size: int, mesh: Mesh) -> None:
  """Raises if ``batch_size`` cannot be split evenly over the mesh's devices."""
  num = mesh.shape[DATA_AXIS]
  if batch_size % num:
    raise ValueError(
        f'batch size {batch_size} is not divisible by the {num} devices of the '
        f"'{DATA_AXIS}' mesh axis; choose a multiple of {num}")
