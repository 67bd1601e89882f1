"""Everything an experiment writes into its workdir.

Layout of ``<workdir>``::

    config.json          the resolved config of the run
    environment.json     Python, package versions, devices, git commit (and whether the tree
                         was dirty) and command line of the (last) invocation
    metrics.jsonl        one JSON object per logged record (``{"step", "stage", ...}``)
    events.out.tfevents* the same scalars for TensorBoard (when tensorboardX is present),
                         and at the end the run's hyper-parameters (hparams) and figures
    results.json         the final metrics of the run
    error.txt            why a sweep point failed, and its traceback (:func:`write_error`)
    plots/*.png          figures
    checkpoints/<stage>/ orbax checkpoints of each training stage
    lock                 pid and host of the live run
                         (:class:`harness.workdir_guards.WorkdirLock`)

A workdir is new, empty or a run's own (:func:`harness.workdir_guards.check_own`): a folder
of other files is refused before anything is written. A rerun of the same command resumes: :class:`MetricsLog`
drops records past the checkpoint that the run resumes from and keeps one record per
``(stage, step)``, so the log reads like one run. A rerun with a config that changes results is refused before
anything is written (:func:`check_resumable`, :data:`NON_RESULT_FIELDS`).

In a multi-host job only process 0 (:func:`nflax.parallel.is_writer`) writes files:
every writer here is a no-op elsewhere. :func:`finish_run` is the one end of every run.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import struct
from typing import Any, Callable

import ml_collections
import numpy as np
from absl import logging

from harness import plots, provenance
from harness.data import paper_data
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


NON_RESULT_FIELDS = ('distributed',)
"""Config fields that do not change a run's results: a rerun into an existing workdir may
change them (``distributed`` only says how the processes of a job find each other). Any
other difference from the workdir's ``config.json`` is refused (:func:`check_resumable`)."""


DATA_ROOT_FIELD = 'root'
"""The data blocks' field naming a folder of a paper's data set (:mod:`harness.data.paper_data`);
a workdir's config from before the field existed reads as ``root = ''`` (its stand-in)."""


def _differences(saved: Any, requested: Any, path: str = '') -> list[tuple[str, Any, Any]]:
  if isinstance(saved, dict) and isinstance(requested, dict):
    out = []
    for name in sorted(set(saved) | set(requested), key=str):
      field = f'{path}.{name}' if path else str(name)
      if field in NON_RESULT_FIELDS or (
          name == DATA_ROOT_FIELD and name not in saved and requested[name] == ''):
        continue
      missing = '<absent>'
      out += _differences(saved.get(name, missing), requested.get(name, missing), field)
    return out
  return [] if saved == requested else [(path, saved, requested)]


def check_resumable(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses to continue the run in ``workdir`` with a config that changes its results.

  A workdir whose ``config.json`` comes with training output (``metrics.jsonl``,
  ``checkpoints/`` or ``results.json``) holds a run of that config: any difference in a
  field outside :data:`NON_RESULT_FIELDS` raises, naming each field with the workdir's and
  the requested value. Reads only; a workdir with a config but no output yet (a run that
  failed before training) takes the new config.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path) or not any(
      os.path.exists(os.path.join(workdir, name))
      for name in ('metrics.jsonl', 'checkpoints', 'results.json')):
    return
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError) as err:
    raise ValueError(f'{path} cannot be read ({err}); the workdir holds a run whose config '
                     'is unknown: use a new --workdir') from err
  requested = json.loads(json.dumps(_jsonable(config.to_dict())))
  differences = _differences(saved, requested)
  if differences:
    fields = '; '.join(f'{field}: {old!r} in the workdir, {new!r} requested'
                       for field, old, new in differences)
    raise ValueError(f'{workdir} holds a run of another config, refusing to continue it '
                     f'with {len(differences)} changed field(s): {fields}. Rerun with the '
                     'workdir\'s values or use a new --workdir.')


ERROR_FILE = 'error.txt'


def write_error(workdir: str, text: str) -> None:
  """Writes ``<workdir>/error.txt`` (a failed sweep point; its first line says what failed;
  process 0 only)."""
  if not parallel.is_writer():
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, ERROR_FILE), 'w') as f:
    f.write(text)


def read_error(workdir: str) -> str | None:
  """The text of ``<workdir>/error.txt``, ``None`` if there is none."""
  try:
    with open(os.path.join(workdir, ERROR_FILE)) as f:
      return f.read()
  except FileNotFoundError:
    return None


def clear_error(workdir: str) -> None:
  """Removes the ``error.txt`` of an earlier attempt (process 0 only)."""
  if parallel.is_writer() and os.path.exists(os.path.join(workdir, ERROR_FILE)):
    os.remove(os.path.join(workdir, ERROR_FILE))


RECORDED_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'distrax', 'orbax-checkpoint', 'numpy',
                     'scipy', 'scikit-learn')
"""Packages whose versions change a run's numbers (the setup.py pins are lower bounds)."""


ENVIRONMENT_FILE = 'environment.json'


def save_environment(workdir: str, devices: list[str]) -> None:
  """Writes ``<workdir>/environment.json``: Python, :data:`RECORDED_PACKAGES`, ``devices``,
  the code's git commit and whether the tree was dirty (``code``), and the full command
  line (``command``) of this invocation (:mod:`harness.provenance`)."""
  versions = {}
  for name in RECORDED_PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  write_json(os.path.join(workdir, ENVIRONMENT_FILE),
             {'python': platform.python_version(), 'packages': versions, 'devices': devices,
              'code': provenance.code_version(), 'command': provenance.command_line()})


def read_environment(workdir: str) -> dict:
  """``<workdir>/environment.json`` (:func:`save_environment`), ``{}`` if there is none."""
  try:
    with open(os.path.join(workdir, ENVIRONMENT_FILE)) as f:
      return json.load(f)
  except FileNotFoundError:
    return {}


def plots_dir(workdir: str) -> str:
  path = os.path.join(workdir, 'plots')
  os.makedirs(path, exist_ok=True)
  return path


def _read_records(path: str) -> list[dict]:
  """The records of the metrics file ``path``; a torn last line (a process killed while
  appending) is dropped with a warning naming the file, a bad line elsewhere raises."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = [line for line in f.read().split('\n') if line.strip()]
  records = []
  for number, line in enumerate(lines, 1):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as err:
      if number < len(lines):
        raise ValueError(f'{path}: line {number} is not a JSON record ({err}); fix or delete '
                         'that line') from err
      logging.warning('%s: dropping its torn last line (a run killed while writing it): %r',
                      path, line[:80])
  return records


def read_metrics(workdir: str, stage: str | None = None) -> list[dict]:
  """The records of ``stage`` (``None``: of every stage) in ``<workdir>/metrics.jsonl``, in
  order."""
  return [r for r in _read_records(os.path.join(workdir, 'metrics.jsonl'))
          if stage is None or r.get('stage') == stage]


class MetricsLog:
  """Records in ``metrics.jsonl`` and TensorBoard event files (process 0 only).

  The log holds one record per ``(stage, step)``: writing a key that is already there
  replaces the old record (a rerun's ``final`` record, a redone step), and
  :meth:`truncate_after` drops the steps that a resumed stage redoes. Opening the log
  drops a torn last line left by a kill.
  """

  def __init__(self, workdir: str):
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._writer = parallel.is_writer()
    self._tensorboard = None
    self._keys: set[tuple[str, int]] = set()
    if not self._writer:
      return
    os.makedirs(workdir, exist_ok=True)
    records = _read_records(self._path)
    self._rewrite(records)  # without a torn last line, so that appends start on a new line
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tensorboard = SummaryWriter(workdir)
    except ImportError:
      logging.info('tensorboardX not installed: writing metrics.jsonl only')
      self._tensorboard = None

  def _rewrite(self, records: list[dict]) -> None:
    if records or os.path.exists(self._path):
      with open(self._path + '.tmp', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
      os.replace(self._path + '.tmp', self._path)
    self._keys = {(r.get('stage'), r.get('step')) for r in records}

  def _drop(self, keep: Callable[[dict], bool]) -> None:
    records = _read_records(self._path)
    kept = [r for r in records if keep(r)]
    if len(kept) != len(records):
      self._rewrite(kept)

  def truncate_after(self, stage: str, step: int) -> None:
    """Drops the records of ``stage`` past ``step`` (work lost by a kill; ``step = 0``: a
    stage that restarts from scratch)."""
    if self._writer:
      self._drop(lambda r: r.get('stage') != stage or r['step'] <= step)

  def write(self, stage: str, step: int, scalars: dict[str, Any]) -> None:
    """Appends the record of ``(stage, step)``, replacing one already logged."""
    if not self._writer:
      return
    key = (stage, int(step))
    if key in self._keys:
      self._drop(lambda r: (r.get('stage'), r.get('step')) != key)
    record = {'stage': stage, 'step': int(step), **_jsonable(scalars)}
    with open(self._path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    self._keys.add(key)
    if self._tensorboard is not None:
      for name, value in scalars.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != 'step':
          self._tensorboard.add_scalar(f'{stage}/{name}', value, step)
      self._tensorboard.flush()

  def write_hparams(self, hparams: dict[str, Any], final: dict[str, Any]) -> None:
    """The run's hyper-parameters for TensorBoard's HParams dashboard: ``hparams``
    (``{'train.lr': 1e-3, 'model.hidden': '(64, 64)', ...}``: numbers, bools, strings) with
    the finite numbers of ``final`` as its metrics, read from their ``final/<name>`` scalars
    (:meth:`write` of stage ``'final'``)."""
    if self._tensorboard is None:
      return
    from tensorboardX import summary  # pylint: disable=g-import-not-at-top
    metrics = {f'final/{name}': value for name, value in final.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)
               and math.isfinite(value)}
    for proto in summary.hparams(hparams, metrics):
      self._tensorboard.file_writer.add_summary(proto)
    self._tensorboard.flush()

  def add_image_file(self, path: str) -> None:
    """The PNG file ``path`` as an image in the event file (its bytes as they are), tagged
    by ``path`` relative to the workdir without its extension (``plots/loss``)."""
    if self._tensorboard is None:
      return
    from tensorboardX.proto.summary_pb2 import Summary  # pylint: disable=g-import-not-at-top
    with open(path, 'rb') as f:
      png = f.read()
    if not png.startswith(b'\x89PNG\r\n\x1a\n'):
      raise ValueError(f'{path} is not a PNG file')
    width, height = struct.unpack('>II', png[16:24])  # the IHDR chunk, then its colour type
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(png[25], 3)
    tag = os.path.splitext(os.path.relpath(path, os.path.dirname(self._path)))[0]
    if tag.startswith('..'):
      tag = os.path.splitext(os.path.basename(path))[0]
    image = Summary.Image(height=height, width=width, colorspace=channels,
                          encoded_image_string=png)
    self._tensorboard.file_writer.add_summary(
        Summary(value=[Summary.Value(tag=tag, image=image)]), 0)
    self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()


def hparams_of(config: dict, prefix: str = '') -> dict[str, Any]:
  """A ``config.json`` as flat TensorBoard hparams: ``{'train.lr': 0.001, 'model.hidden':
  '(64, 64)', ...}``; numbers, bools and strings as they are, lists as tuple strings, ``None``
  left out."""
  flat = {}
  for name, value in config.items():
    field = f'{prefix}{name}'
    if isinstance(value, dict):
      flat.update(hparams_of(value, field + '.'))
    elif isinstance(value, list):
      flat[field] = str(tuple(value))
    elif value is not None:
      flat[field] = value
  return flat


def finish_run(workdir: str, results: dict, metrics: MetricsLog,
               plot: Callable[[], Any] | None = None) -> dict:
  """The end of every run: log the results, append the ``final`` record, write the run's
  hyper-parameters (its ``config.json``, :func:`hparams_of`) with its final scalars as
  TensorBoard hparams, write ``results.json`` (with ``data_source``, which data the run read:
  :func:`harness.data.paper_data.data_source` of its ``config.data``, where the experiment
  does not say it), draw the figures (each figure saved through
  :func:`harness.plots.save` also goes into the run's event file as an image), then
  close the metrics.

  A figure that cannot be drawn is logged as a warning: it never fails a run whose results
  are written. Returns ``results``.
  """
  config_path = os.path.join(workdir, 'config.json')
  config = None
  if os.path.exists(config_path):
    with open(config_path) as f:
      config = json.load(f)
    results.setdefault('data_source', paper_data.data_source(config.get('data') or {}))
  logging.info('results: %s', {k: v for k, v in results.items() if k != 'per_seed'})
  final = {k: v for k, v in results.items()
           if isinstance(v, (int, float, bool, str)) or v is None}
  metrics.write('final', 0, final)
  if config is not None:
    metrics.write_hparams(hparams_of(config), final)
  write_json(os.path.join(workdir, 'results.json'), results)
  try:
    if plot is not None and parallel.is_writer():
      try:
        with plots.images_to(metrics.add_image_file):
          plot()
      except Exception as err:  # pylint: disable=broad-except
        logging.warning('a figure of %s could not be drawn: %r', workdir, err)
  finally:
    metrics.close()
  return results
