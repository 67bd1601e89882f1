"""The experiment registry and the entry points of every run.

:data:`EXPERIMENTS` maps ``config.experiment`` to the family's ``run(config,
workdir)``; :func:`run_experiment` is what ``python -m experiments.run`` calls, and what
each point of a sweep (:func:`run_point`, one submitit job) calls;
:func:`run_sweep` is ``python -m experiments.sweep``.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import traceback
from typing import Any, Callable

import jax
import ml_collections
import submitit
import threadpoolctl
from absl import logging

from harness import summary, sweeps, config_checks
from experiments.density import estimation as density_estimation
from harness import workdir as workdir_lib
from harness import workdir_guards
from experiments.alignflow import adaptation as alignflow_adaptation
from experiments.alignflow import translation as alignflow_translation
from experiments.fdre import adaptation as fdre_adaptation
from experiments.fdre import augmentation as fdre_augmentation
from experiments.fdre import modes as fdre_modes
from experiments.fdre import targeted as fdre_targeted
from experiments.lrmf import alignment as lrmf_alignment
from experiments.lrmf import comparison as lrmf_comparison
from experiments.lrmf import digits as lrmf_digits
from experiments.lrmf import vanishing_gradient as lrmf_vanishing_gradient
from nflax import parallel

EXPERIMENTS: dict[str, Callable[[ml_collections.ConfigDict, str], dict]] = {
    'density': density_estimation.run,
    'lrmf.alignment': lrmf_alignment.run,
    'lrmf.comparison': lrmf_comparison.run,
    'lrmf.digits': lrmf_digits.run,
    'lrmf.vanishing_gradient': lrmf_vanishing_gradient.run,
    'alignflow.translation': alignflow_translation.run,
    'alignflow.adaptation': alignflow_adaptation.run,
    'fdre.modes': fdre_modes.run,
    'fdre.adaptation': fdre_adaptation.run,
    'fdre.targeted': fdre_targeted.run,
    'fdre.augmentation': fdre_augmentation.run,
}
"""Registry key -> ``run(config, workdir) -> results``. Key ``<family>.<module>`` is the
module ``experiments/<family>/<module>.py``."""

SEEDS_SIDE_BY_SIDE = frozenset({'density', 'lrmf.alignment', 'alignflow.translation',
                                'fdre.modes', 'fdre.augmentation'})
"""Experiments that train every seed of ``config.seeds`` side by side in one program; the
others take one seed per run (:func:`harness.replicas.single_seed`)."""


def distributed_settings(environ=os.environ) -> dict:
  """Arguments of ``jax.distributed.initialize()`` from environment variables.

  JAX itself reads ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0) and detects
  the process count and index on TPU pods, Slurm and Open MPI. For any other launch (e.g.
  several processes started by hand on one machine) set ``JAX_NUM_PROCESSES`` and
  ``JAX_PROCESS_ID`` too; they are read here. On CPU, ``JAX_NUM_CPU_DEVICES`` sets each
  process's device count and cross-process collectives use gloo.
  """
  settings = {}
  for name, arg in (('JAX_NUM_PROCESSES', 'num_processes'), ('JAX_PROCESS_ID', 'process_id')):
    if environ.get(name):
      settings[arg] = int(environ[name])
  return settings


CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'configs')


def describe_configs(configs_dir: str = CONFIGS_DIR) -> str:
  """``--list``: every config file with the first line of its docstring, its experiment,
  variants (``VARIANTS``) and sweeps (``get_sweep``, if it defines one, and its named
  sweeps ``SWEEPS``, with the first line of ``get_sweep``'s docstring)."""
  lines = []
  for name in sorted(os.listdir(configs_dir)):
    if not name.endswith('.py') or name.startswith('_'):
      continue
    module = config_module(os.path.join(configs_dir, name))
    summary = (module.__doc__ or '').strip().splitlines()[:1] or ['']
    lines.append(f'configs/{name}  [{module.get_config().experiment}]  {summary[0]}')
    variants = getattr(module, 'VARIANTS', ())
    if variants:
      lines.append(f'    variants: {", ".join(f":{v}" for v in variants)}')
    if hasattr(module, 'get_sweep'):
      summary = (module.get_sweep.__doc__ or '').strip().splitlines()[:1] or ['']
      named = ''.join(f', --sweep={name}' for name in getattr(module, 'SWEEPS', ()))
      lines.append(f'    sweeps: get_sweep(){named}  {summary[0]}')
  return '\n'.join(lines)


def config_module(path: str) -> Any:
  """The config file at ``path`` as a module (``get_config``, ``VARIANTS``, ``get_sweep``,
  ...)."""
  module_spec = importlib.util.spec_from_file_location(
      '_config_' + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def default_config(spec: str) -> ml_collections.ConfigDict:
  """The config of a ``--config`` value (``'configs/x.py'`` or ``'configs/x.py:variant'``)
  without overrides: what :func:`harness.config_checks.validate` takes as ``defaults``."""
  path, _, variant = spec.partition(':')
  module = config_module(path)
  return module.get_config(variant) if variant else module.get_config()


class _QuietLibraries(logging.logging.Filter):
  """Drops the INFO chatter of orbax's checkpoint threads; keeps warnings."""

  def filter(self, record):
    return record.levelno >= logging.logging.WARNING or '/orbax/' not in record.pathname


_QUIET = _QuietLibraries()


def log_through_absl() -> None:
  """Logs through absl's handler, without orbax's INFO chatter (idempotent)."""
  logging.use_absl_handler()
  logging.get_absl_handler().addFilter(_QUIET)


DEFAULT_COMPILATION_CACHE = os.path.join(os.path.expanduser('~'), '.cache', 'nflax', 'xla')
"""Where command-line runs and sweeps keep XLA's compiled programs by default."""


def compilation_cache_dir(directory: str | None) -> str | None:
  """The cache directory a ``--compilation_cache`` value means: the environment variable
  ``JAX_COMPILATION_CACHE_DIR`` when set (JAX reads it itself), else ``directory``;
  ``None`` when that is ``None`` or ``'none'`` (off)."""
  if os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return os.environ['JAX_COMPILATION_CACHE_DIR']
  return None if directory is None or directory.lower() == 'none' else directory


def use_compilation_cache(directory: str | None) -> None:
  """Keeps compiled programs across runs in ``directory`` (those that took at least
  ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` to compile, JAX's default 1 s), as
  :func:`compilation_cache_dir` reads it."""
  resolved = compilation_cache_dir(directory)
  if resolved is None or os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return  # off, or JAX reads the environment variable itself
  jax.config.update('jax_compilation_cache_dir', resolved)


def _join_hosts(config: ml_collections.ConfigDict) -> None:
  if config.get('distributed', False) and not jax.distributed.is_initialized():
    jax.distributed.initialize(**distributed_settings())


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
    defaults = default_config(f'{path}:{chosen}' if chosen else path)
    config = copy.deepcopy(defaults)
    for field, value in (overrides or {}).items():
      try:
        _set_field(config, field, value)
      except ValueError as err:
        raise ValueError(f'--config.{field}: {err}') from err
    for field, value in point.items():
      if field != sweeps.VARIANT:
        _set_field(config, field, value)
    if config.get('experiment') not in EXPERIMENTS:
      raise ValueError(f"unknown config.experiment {config.get('experiment')!r}; "
                       f"available: {', '.join(sorted(EXPERIMENTS))}")
    config_checks.validate(config, defaults)
  except ValueError as err:
    raise ValueError(f'sweep point {name}: {err}') from err
  return config, defaults


def run_point(spec: str, point: dict[str, Any], workdir: str,
              overrides: dict[str, Any] | None = None, compilation_cache: str | None = None,
              distributed: bool = False) -> dict:
  """One sweep point, the body of its submitit job: :func:`run_experiment` of
  :func:`point_config` (``spec``, ``point``, ``overrides``) in ``workdir`` (so a rerun
  resumes it), ``config.distributed`` set when ``distributed``. Returns the results.

  A stale ``error.txt`` is removed when the point starts; an exception is written there
  (:func:`harness.workdir.write_error`: ``<type>: <message>``, then the traceback) and
  raised again, so the job fails. Logs at INFO (into the job's log: ``_submitit/<job>_0_log.err``).
  """
  log_through_absl()
  logging.set_verbosity(logging.INFO)
  use_compilation_cache(compilation_cache)
  try:
    config, defaults = point_config(spec, point, overrides)
    if distributed:
      config.distributed = True
    _join_hosts(config)
    workdir_guards.check_own(workdir, 'sweep point folder')  # before error.txt is touched
    workdir_lib.clear_error(workdir)
    return run_experiment(config, workdir, defaults)
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
  same folder, so it resumes from the point's checkpoints (:func:`run_experiment`) and ends
  with the results of an uninterrupted run.
  """

  def __call__(self, spec: str, point: dict[str, Any], workdir: str,
               overrides: dict[str, Any] | None = None,
               compilation_cache: str | None = None, distributed: bool = False) -> dict:
    return run_point(spec, point, workdir, overrides, compilation_cache, distributed)


def run_experiment(config: ml_collections.ConfigDict, workdir: str,
                   defaults: ml_collections.ConfigDict | None = None) -> dict:
  """Runs ``config`` in ``workdir`` (resuming from its checkpoints, if any).

  Before anything is written: every field is validated
  (:func:`harness.config_checks.validate`, tuple element types against ``defaults``, the
  config file's own values), a non-empty workdir that holds no run (files the project did
  not write: :func:`harness.workdir_guards.check_own`) and a workdir holding a run of another
  config are refused (:func:`harness.workdir.check_resumable`), the workdir must be
  writable and not in use by another live run (:class:`harness.workdir_guards.WorkdirLock`, held
  until the run ends). Only then are ``config.json`` and ``environment.json`` written.

  With ``config.distributed`` set, ``jax.distributed.initialize()`` (unless already done,
  e.g. by a sweep running its points one after another in one process) joins the
  hosts of a multi-host job (TPU pods, Slurm, Open MPI, or the environment variables of
  :func:`distributed_settings`) before anything else touches JAX. Every family's
  results carry ``seconds``, the wall time of this invocation (a resumed run counts only
  its continuation).

  NumPy's BLAS (scikit-learn's downstream classifiers, KMM, KLIEP) runs on one thread: its
  matrices here are small, and its spinning worker threads, competing with XLA's and other
  jobs' threads for the cores, slow logistic regressions down by orders of magnitude on a
  busy small machine.
  """
  if config.get('experiment') not in EXPERIMENTS:
    raise ValueError(f"unknown config.experiment {config.get('experiment')!r}; "
                     f"available: {', '.join(sorted(EXPERIMENTS))}")
  config_checks.validate(config, defaults)
  _join_hosts(config)
  workdir_guards.check_own(workdir)
  workdir_lib.check_resumable(config, workdir)
  workdir_guards.check_writable(workdir, 'workdir')
  lock = workdir_guards.WorkdirLock(workdir).acquire()
  try:
    logging.info('running %r on %s in %s', config.experiment, jax.devices(), workdir)
    workdir_lib.save_config(config, workdir)
    workdir_lib.save_environment(workdir, [str(device) for device in jax.devices()])
    with threadpoolctl.threadpool_limits(limits=1, user_api='blas'):
      return EXPERIMENTS[config.experiment](config, workdir)
  finally:
    lock.release()


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
  module = config_module(path)
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
  (:func:`point_config` with ``overrides``), distinct names (:func:`harness.sweeps.check_names`), a point
  folder that is not empty and holds no run (:func:`harness.workdir_guards.check_own`) and one
  holding a run of another config (:func:`harness.workdir.check_resumable`).

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


def check_reproduction_folder(workdir: str, tiers: Any, tier: str, run_names: Any) -> None:
  """Refuses a ``python -m experiments.reproduce --workdir`` that is neither new, empty nor
  a reproduction's own: ``<workdir>`` may hold only folders of ``tiers``, ``<workdir>/<tier>``
  only folders of the runs ``run_names`` and ``xla_cache``; reads only. Each run's folder is
  checked when it runs (:func:`run_experiment`)."""
  hint = 'Use a new or empty --workdir for the reproduction.'
  workdir_guards.check_folder(workdir, lambda name, is_dir: is_dir and name in tiers,
                           'reproduction workdir', hint)
  workdir_guards.check_folder(
      os.path.join(workdir, tier),
      lambda name, is_dir: is_dir and (name in run_names or name == 'xla_cache'),
      f'reproduction folder of tier {tier!r}', hint)


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
    jax.distributed.initialize(**distributed_settings())
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
