"""Everything an experiment writes into its workdir.

Layout of ``<workdir>``::

    config.json          the resolved config of the run
    environment.json     Python, package versions and devices of the (last) invocation
    metrics.jsonl        one JSON object per logged record (``{"step", "stage", ...}``)
    events.out.tfevents* the same scalars for TensorBoard (when tensorboardX is present)
    results.json         the final metrics of the run
    plots/*.png          figures
    checkpoints/<stage>/ orbax checkpoints of each training stage

A rerun of the same command resumes: :class:`MetricsLog` drops records past
the checkpoint that the run resumes from, so the log reads like one run.

In a multi-host job only process 0 (:func:`nflax.parallel.is_writer`) writes files:
every writer here is a no-op elsewhere. :func:`finish_run` is the one end of every run.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
from typing import Any, Callable

import ml_collections
import numpy as np
from absl import logging

from nflax import parallel


def _jsonable(value: Any) -> Any:
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, '__array__'):
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def write_json(path: str, payload: Any) -> None:
  """Writes ``payload`` as indented JSON, atomically (write then rename); process 0 only."""
  if not parallel.is_writer():
    return
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(_jsonable(payload), f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes the resolved config to ``<workdir>/config.json``."""
  if parallel.is_writer():
    os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, 'config.json'), config.to_dict())


RECORDED_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'distrax', 'orbax-checkpoint', 'numpy',
                     'scipy', 'scikit-learn')
"""Packages whose versions change a run's numbers (the setup.py pins are lower bounds)."""


def save_environment(workdir: str, devices: list[str]) -> None:
  """Writes ``<workdir>/environment.json``: Python, :data:`RECORDED_PACKAGES`, ``devices``."""
  versions = {}
  for name in RECORDED_PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  write_json(os.path.join(workdir, 'environment.json'),
             {'python': platform.python_version(), 'packages': versions, 'devices': devices})


def plots_dir(workdir: str) -> str:
  path = os.path.join(workdir, 'plots')
  os.makedirs(path, exist_ok=True)
  return path


def read_metrics(workdir: str, stage: str) -> list[dict]:
  """The records of ``stage`` in ``<workdir>/metrics.jsonl``, in order."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [r for r in records if r.get('stage') == stage]


class MetricsLog:
  """Appends records to ``metrics.jsonl`` and TensorBoard event files (process 0 only)."""

  def __init__(self, workdir: str):
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._writer = parallel.is_writer()
    self._tensorboard = None
    if not self._writer:
      return
    os.makedirs(workdir, exist_ok=True)
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tensorboard = SummaryWriter(workdir)
    except ImportError:
      logging.info('tensorboardX not installed: writing metrics.jsonl only')
      self._tensorboard = None

  def truncate_after(self, stage: str, step: int) -> None:
    """Drops the records of ``stage`` past ``step`` (work lost by a kill)."""
    if not self._writer or not os.path.exists(self._path):
      return
    with open(self._path) as f:
      records = [json.loads(line) for line in f if line.strip()]
    kept = [r for r in records if r.get('stage') != stage or r['step'] <= step]
    with open(self._path + '.tmp', 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in kept)
    os.replace(self._path + '.tmp', self._path)

  def write(self, stage: str, step: int, scalars: dict[str, Any]) -> None:
    if not self._writer:
      return
    record = {'stage': stage, 'step': int(step), **_jsonable(scalars)}
    with open(self._path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    if self._tensorboard is not None:
      for name, value in scalars.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != 'step':
          self._tensorboard.add_scalar(f'{stage}/{name}', value, step)
      self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()


def finish_run(workdir: str, results: dict, metrics: MetricsLog,
               plot: Callable[[], Any] | None = None) -> dict:
  """The end of every run: log the results, append the ``final`` record, write
  ``results.json``, close the metrics, then draw the figures.

  A figure that cannot be drawn is logged as a warning: it never fails a run whose results
  are written. Returns ``results``.
  """
  logging.info('results: %s', {k: v for k, v in results.items() if k != 'per_seed'})
  metrics.write('final', 0, {k: v for k, v in results.items()
                             if isinstance(v, (int, float, bool, str)) or v is None})
  metrics.close()
  write_json(os.path.join(workdir, 'results.json'), results)
  if plot is not None and parallel.is_writer():
    try:
      plot()
    except Exception as err:  # pylint: disable=broad-except
      logging.warning('a figure of %s could not be drawn: %r', workdir, err)
  return results
