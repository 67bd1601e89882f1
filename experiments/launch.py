"""The experiment registry and the one entry point of every run.

:data:`EXPERIMENTS` maps ``config.experiment`` to the family's ``run(config,
workdir)``; :func:`run_experiment` is what ``python -m experiments.run`` calls, what each
point of a sweep calls (:func:`experiments.sweep_jobs.run_point`, one submitit job) and what
``python -m experiments.reproduce`` calls for each run.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

import jax
import ml_collections
import threadpoolctl
from absl import logging

from harness import config_checks
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
  """Keeps compiled programs across runs in ``directory``, as :func:`compilation_cache_dir`
  reads it: every program, however quickly it compiled (JAX's default keeps only those that
  took at least 1 s, and a run's many sub-second programs, its evaluations, initialisations
  and held-out checks, then compile anew every time);
  ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` in the environment sets another bound."""
  resolved = compilation_cache_dir(directory)
  if resolved is None:
    return  # off
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):  # else JAX reads it itself
    jax.config.update('jax_compilation_cache_dir', resolved)


def join_hosts(config: ml_collections.ConfigDict) -> None:
  if config.get('distributed', False) and not jax.distributed.is_initialized():
    jax.distributed.initialize(**distributed_settings())


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
  join_hosts(config)
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
