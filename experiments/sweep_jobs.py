"""A config's sweep as submitit jobs, one per point: what ``python -m experiments.sweep``
runs (its module docstring says how to call it).

:func:`point_config` builds and checks one point's config; :func:`check_sweep_folder` and
:func:`check_points` refuse a sweep before anything is submitted; :func:`run_sweep` submits
the unfinished points; :func:`run_point` (inside :class:`SweepPointJob`, requeued at a time
limit) runs one point through :func:`experiments.launch.run_experiment`.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import traceback
from typing import Any

import jax
import ml_collections
import submitit
from absl import logging

from experiments import launch
from harness import config_checks, summary, sweeps
from harness import workdir as workdir_lib
from harness import workdir_guards
from nflax import parallel


def _set_field(config: ml_collections.ConfigDict, field: str, value: Any) -> None:
  node, names = config, field.split('.')
  for depth, name in enumerate(names):
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      where = 'config.' + '.'.join(names[:depth]) if depth else 'the config'
      raise ValueError(f'config.{field} does not exist ({where} has no field {name!r})')
    if depth < len(names) - 1:
      node = node[name]
  try:
    setattr(node, names[-1], value)
  except (TypeError, ValueError) as err:
    raise ValueError(f'config.{field} = {value!r} has the wrong type: {err}') from err


def point_config(spec: str, point: dict[str, Any], overrides: dict[str, Any] | None = None
                 ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
  """``(config, defaults)`` of one sweep point: the config file's config (``spec``, a
  ``--config`` value) in the point's variant (:data:`harness.sweeps.VARIANT`), with
  ``overrides`` (the sweep command's ``--config.<field>=<value>``, dotted field -> value)
  and then the point's own fields applied (a swept field wins over an override of it), and
  validated (:func:`harness.config_checks.validate` against ``defaults``, the variant's
  config without overrides).

  Raises:
    ValueError: naming the point and the field: a field that does not exist, a value of the
      wrong type or outside its rule, a variant on top of a ``spec`` that names one, or an
      unknown ``experiment``.
  """
  path, _, variant = spec.partition(':')
  point_variant = point.get(sweeps.VARIANT) or ''
  name = sweeps.point_name(point)
  try:
    if point_variant and variant:
      raise ValueError(f'it sets variant {point_variant!r} but --config already names '
                       f':{variant}; give --config without a variant')
    chosen = point_variant or variant
    defaults = launch.default_config(f'{path}:{chosen}' if chosen else path)
    config = copy.deepcopy(defaults)
    for field, value in (overrides or {}).items():
      try:
        _set_field(config, field, value)
      except ValueError as err:
        raise ValueError(f'--config.{field}: {err}') from err
    for field, value in point.items():
      if field != sweeps.VARIANT:
        _set_field(config, field, value)
    if config.get('experiment') not in launch.EXPERIMENTS:
      raise ValueError(f"unknown config.experiment {config.get('experiment')!r}; "
                       f"available: {', '.join(sorted(launch.EXPERIMENTS))}")
    config_checks.validate(config, defaults)
  except ValueError as err:
    raise ValueError(f'sweep point {name}: {err}') from err
  return config, defaults


def run_point(spec: str, point: dict[str, Any], workdir: str,
              overrides: dict[str, Any] | None = None, compilation_cache: str | None = None,
              distributed: bool = False) -> dict:
  """One sweep point, the body of its submitit job:
  :func:`experiments.launch.run_experiment` of :func:`point_config` (``spec``, ``point``,
  ``overrides``) in ``workdir`` (so a rerun resumes it), ``config.distributed`` set when
  ``distributed``. Returns the results.

  A stale ``error.txt`` is removed when the point starts; an exception is written there
  (:func:`harness.workdir.write_error`: ``<type>: <message>``, then the traceback) and
  raised again, so the job fails. Logs at INFO (into the job's log:
  ``_submitit/<job>_0_log.err``).
  """
  launch.log_through_absl()
  logging.set_verbosity(logging.INFO)
  launch.use_compilation_cache(compilation_cache)
  try:
    config, defaults = point_config(spec, point, overrides)
    if distributed:
      config.distributed = True
    launch.join_hosts(config)
    workdir_guards.check_own(workdir, 'sweep point folder')  # before error.txt is touched
    workdir_lib.clear_error(workdir)
    return launch.run_experiment(config, workdir, defaults)
  except Exception as err:
    if not isinstance(err, workdir_guards.ForeignFolderError):  # writes nothing into it
      workdir_lib.write_error(workdir, f'{type(err).__name__}: {err}\n\n{traceback.format_exc()}')
    raise


class SweepPointJob(submitit.helpers.Checkpointable):
  """The callable of a sweep point's submitit job: :func:`run_point`, checkpointable.

  When a job reaches its time limit (SLURM signals it ``SIGUSR2`` shortly before; so does
  the local executor) or is preempted, submitit calls the inherited ``checkpoint``, which
  resubmits this callable with the same arguments, and requeues the job (up to the
  executor's ``max_num_timeout`` timeouts). The requeued job runs the point again into the
  same folder, so it resumes from the point's checkpoints
  (:func:`experiments.launch.run_experiment`) and ends with the results of an uninterrupted run.
  """

  def __call__(self, spec: str, point: dict[str, Any], workdir: str,
               overrides: dict[str, Any] | None = None,
               compilation_cache: str | None = None, distributed: bool = False) -> dict:
    return run_point(spec, point, workdir, overrides, compilation_cache, distributed)


DEFAULT_RESOURCES = {'timeout_min': 24 * 60}
"""Under every sweep's resources (submitit's local executor would stop a job after 2 min)."""


def parse_resources(text: str) -> dict[str, Any]:
  """``"a=1,b=gpu"`` -> ``{'a': 1, 'b': 'gpu'}`` (Python literals, else strings)."""
  resources = {}
  for item in filter(None, (part.strip() for part in text.split(','))):
    name, sep, value = item.partition('=')
    if not sep or not name.strip():
      raise ValueError(f'--resources: {item!r} is not name=value')
    try:
      resources[name.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      resources[name.strip()] = value.strip()
  return resources


def load_sweep(spec: str, name: str = '') -> tuple[list[dict], dict[str, Any]]:
  """``(points, resources)`` of the config file of ``spec``: ``get_sweep(name)`` (or
  ``get_sweep()``) and :data:`DEFAULT_RESOURCES` updated by its ``SWEEP_RESOURCES``."""
  path = spec.partition(':')[0]
  module = launch.config_module(path)
  if not hasattr(module, 'get_sweep'):
    raise ValueError(f'{path} defines no get_sweep(); configs with sweeps: see '
                     '`python -m experiments.run --list`')
  points = module.get_sweep(name) if name else module.get_sweep()
  if not points or not all(isinstance(p, dict) for p in points):
    raise ValueError(f'get_sweep({name!r}) of {path} must return a non-empty list of '
                     f'override dicts, got {points!r}')
  return list(points), {**DEFAULT_RESOURCES, **getattr(module, 'SWEEP_RESOURCES', {})}


def check_points(spec: str, points: list[dict], workdir: str,
                 overrides: dict[str, Any] | None = None) -> list[str]:
  """The points' folder names after every point is checked; reads only: its config
  (:func:`point_config` with ``overrides``), distinct names
  (:func:`harness.sweeps.check_names`), a point folder that is not empty and holds no run
  (:func:`harness.workdir_guards.check_own`) and one holding a run of another config
  (:func:`harness.workdir.check_resumable`).

  Raises:
    ValueError: naming the point and the problem.
  """
  names = sweeps.check_names(points)
  for point, name in zip(points, names):
    config, _ = point_config(spec, point, overrides)
    try:
      workdir_guards.check_own(os.path.join(workdir, name), 'sweep point folder')
      workdir_lib.check_resumable(config, os.path.join(workdir, name))
    except ValueError as err:
      raise ValueError(f'sweep point {name}: {err}') from err
  return names


def check_sweep_folder(workdir: str) -> None:
  """Refuses a sweep ``workdir`` that is neither new, empty nor a sweep's own (its
  ``sweep.json``), naming the files found; reads only (:func:`harness.workdir_guards.check_folder`).
  The point folders of a sweep's own folder are checked one by one (:func:`check_points`)."""
  recorded = os.path.join(workdir, summary.SWEEP_FILE)
  if os.path.isfile(recorded) and workdir_guards.is_json_object_with(recorded, 'points'):
    return
  workdir_guards.check_folder(workdir, lambda name, _: name == summary.SWEEP_FILE + '.tmp',
                              'sweep folder', 'Use a new or empty --workdir for the sweep.')


def _write_text(path: str, text: str) -> None:
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def _record(workdir: str, spec: str, sweep: str, overrides: dict[str, Any],
            points: list[dict], names: list[str]) -> None:
  """Adds the points to ``<workdir>/sweep.json`` (the summary's swept fields), with the
  config, sweep and command-line overrides of this invocation."""
  path = os.path.join(workdir, summary.SWEEP_FILE)
  recorded = {'points': {}}
  if os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
  recorded.update(config=spec, sweep=sweep, overrides=overrides)
  recorded['points'].update(zip(names, points))
  _write_text(path, json.dumps(recorded, indent=2))


DISTRIBUTED_EXECUTOR = 'debug'
"""The one executor a ``distributed`` sweep works with: every host of a multi-host job runs
the sweep and each point, one after another, in its own process. The local executor would
start each point as a new process of this host alone, and Slurm jobs submitted from here
are not part of this job."""


def run_sweep(spec: str, workdir: str, *, sweep: str = '',
              overrides: dict[str, Any] | None = None, executor: str = 'local',
              max_parallel: int | None = None, resources: dict[str, Any] | None = None,
              compilation_cache: str | None = None, distributed: bool = False) -> list[str]:
  """Runs the unfinished points of sweep ``sweep`` of ``spec`` into ``workdir``, one submitit
  job per point; returns the names of the points that failed (each with its ``error.txt``).

  ``overrides`` (dotted field -> value, the sweep command's ``--config.<field>=<value>``)
  apply to every point, under its swept fields (:func:`point_config`). ``distributed``
  (only with :data:`DISTRIBUTED_EXECUTOR`) first joins the hosts of the job
  (``jax.distributed.initialize()``, unless already done).

  The sweep folder (:func:`check_sweep_folder`) and every point are checked first
  (:func:`check_points`), then recorded in
  ``<workdir>/sweep.json``. Point ``p`` runs :func:`run_point` into
  ``<workdir>/<sweeps.point_name(p)>``; points with a ``results.json`` are skipped. The
  executor (submitit's ``AutoExecutor(cluster=executor)``, logs in ``<workdir>/_submitit``)
  gets ``resources`` over the config file's ``SWEEP_RESOURCES`` over
  :data:`DEFAULT_RESOURCES`. ``max_parallel``: the Slurm array's parallelism; locally, arrays
  of at most that many jobs one after another. ``executor='debug'`` runs the points one
  after another in this process (with ``distributed``, across all hosts of the job). A job
  that reaches its time limit is requeued and resumes (:class:`SweepPointJob`).

  Raises:
    ValueError: ``distributed`` with another executor, a bad point, sweep or resource, before
      any job is submitted (resources are checked by submitit, after ``<workdir>/sweep.json``
      and ``_submitit/`` are made).
  """
  if distributed and executor != DISTRIBUTED_EXECUTOR:
    raise ValueError(
        f'--distributed works only with --executor={DISTRIBUTED_EXECUTOR} (started on every '
        f'host, each point runs across all of them), not with --executor={executor}: '
        + ('it would start each point as a new process of this host alone'
           if executor == 'local' else
           'its jobs would be submitted from here and not be part of this multi-host job'))
  if distributed and not jax.distributed.is_initialized():
    jax.distributed.initialize(**launch.distributed_settings())
  overrides = dict(overrides or {})
  points, settings = load_sweep(spec, sweep)
  settings.update(resources or {})
  check_sweep_folder(workdir)
  names = check_points(spec, points, workdir, overrides)
  if max_parallel is not None and max_parallel < 1:
    raise ValueError(f'--max_parallel must be >= 1, got {max_parallel}')
  todo = [(point, name) for point, name in zip(points, names)
          if not os.path.exists(os.path.join(workdir, name, 'results.json'))]
  for name in sorted(set(names) - {name for _, name in todo}):
    logging.info('skipping %s: finished (results.json)', name)
  # Asking JAX which process writes would start a JAX backend in this process, which on a
  # GPU takes the memory the jobs need: only with `distributed` (every host runs this).
  writer = not distributed or parallel.is_writer()
  if writer:
    os.makedirs(workdir, exist_ok=True)
    _record(workdir, spec, sweep, overrides, points, names)
  if not todo:
    return []
  jobs = submitit.AutoExecutor(folder=os.path.join(workdir, '_submitit'), cluster=executor)
  if executor == 'slurm' and max_parallel is not None:
    settings['slurm_array_parallelism'] = max_parallel
  try:
    jobs.update_parameters(name=os.path.basename(os.path.abspath(workdir)), **settings)
  except (NameError, AssertionError) as err:  # submitit's unknown name, wrong type
    raise ValueError(f'sweep resources {settings}: {err}') from err
  path, colon, variant = spec.partition(':')
  job_spec = os.path.abspath(path) + colon + variant
  wave = len(todo) if executor == 'slurm' or max_parallel is None else max_parallel
  failed = []
  for start in range(0, len(todo), wave):
    batch = todo[start:start + wave]
    submitted = jobs.map_array(  # absolute paths: a Slurm job may start elsewhere
        SweepPointJob(), [job_spec] * len(batch), [p for p, _ in batch],
        [os.path.join(os.path.abspath(workdir), n) for _, n in batch],
        [overrides] * len(batch), [compilation_cache] * len(batch), [distributed] * len(batch))
    for job, (_, name) in zip(submitted, batch):
      logging.info('%s: job %s', name, job.job_id)
    for job, (_, name) in zip(submitted, batch):
      try:
        error = job.exception()  # waits; for the debug executor, runs the point
      except submitit.core.utils.UncompletedJobError as err:
        error = err
      if error is None:
        logging.info('%s: done', name)
        continue
      failed.append(name)
      point_dir = os.path.join(workdir, name)
      if writer and workdir_lib.read_error(point_dir) is None:  # killed: no error.txt
        os.makedirs(point_dir, exist_ok=True)
        _write_text(os.path.join(point_dir, workdir_lib.ERROR_FILE),
                    f'job {job.job_id} ended without a result ({type(error).__name__}, e.g. '
                    f'killed)\n\n{error}\n')
      logging.error('%s failed (job %s): see %s', name, job.job_id,
                    os.path.join(point_dir, workdir_lib.ERROR_FILE))
  return failed
