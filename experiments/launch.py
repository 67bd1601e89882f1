"""The experiment registry and the one entry point of every run.

:data:`EXPERIMENTS` maps ``config.experiment`` to the family's ``run(config,
workdir)``; :func:`run_experiment` is what ``python -m experiments.run`` calls.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

import jax
import ml_collections
from absl import logging

from experiments import density, validation
from experiments import workdir as workdir_lib
from experiments.alignflow_experiments import adaptation as alignflow_adaptation
from experiments.alignflow_experiments import translation as alignflow_translation
from experiments.fdre_experiments import adaptation as fdre_adaptation
from experiments.fdre_experiments import augmentation as fdre_augmentation
from experiments.fdre_experiments import modes as fdre_modes
from experiments.fdre_experiments import targeted as fdre_targeted
from experiments.lrmf_experiments import alignment as lrmf_alignment
from experiments.lrmf_experiments import comparison as lrmf_comparison
from experiments.lrmf_experiments import digits as lrmf_digits
from experiments.lrmf_experiments import vanishing_gradient as lrmf_vanishing_gradient

EXPERIMENTS: dict[str, Callable[[ml_collections.ConfigDict, str], dict]] = {
    'density': density.run,
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
module ``experiments/<family>_experiments/<module>.py``."""


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
  variants (``VARIANTS``) and sweeps (``get_sweep``, if it defines one)."""
  lines = []
  for name in sorted(os.listdir(configs_dir)):
    if not name.endswith('.py') or name.startswith('_'):
      continue
    module = _config_module(os.path.join(configs_dir, name))
    summary = (module.__doc__ or '').strip().splitlines()[:1] or ['']
    lines.append(f'configs/{name}  [{module.get_config().experiment}]  {summary[0]}')
    variants = getattr(module, 'VARIANTS', ())
    if variants:
      lines.append(f'    variants: {", ".join(f":{v}" for v in variants)}')
    if hasattr(module, 'get_sweep'):
      summary = (module.get_sweep.__doc__ or '').strip().splitlines()[:1] or ['']
      lines.append(f'    sweep: get_sweep()  {summary[0]}')
  return '\n'.join(lines)


def _config_module(path: str) -> Any:
  """The config file at ``path`` as a module (``get_config``, ``VARIANTS``, ...)."""
  module_spec = importlib.util.spec_from_file_location(
      '_config_' + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def default_config(spec: str) -> ml_collections.ConfigDict:
  """The config of a ``--config`` value (``'configs/x.py'`` or ``'configs/x.py:variant'``)
  without overrides: what :func:`experiments.validation.validate` takes as ``defaults``."""
  path, _, variant = spec.partition(':')
  module = _config_module(path)
  return module.get_config(variant) if variant else module.get_config()


def run_experiment(config: ml_collections.ConfigDict, workdir: str,
                   defaults: ml_collections.ConfigDict | None = None) -> dict:
  """Runs ``config`` in ``workdir`` (resuming from its checkpoints, if any).

  Before anything is written: every field is validated
  (:func:`experiments.validation.validate`, tuple element types against ``defaults``, the
  config file's own values), a workdir holding a run of another config is refused
  (:func:`experiments.workdir.check_resumable`), the workdir must be writable and not in
  use by another live run (:class:`experiments.workdir.WorkdirLock`, held until the run
  ends). Only then are ``config.json`` and ``environment.json`` written.

  With ``config.distributed`` set, ``jax.distributed.initialize()`` joins the
  hosts of a multi-host job (TPU pods, Slurm, Open MPI, or the environment variables of
  :func:`distributed_settings`) before anything else touches JAX. Every family's
  results carry ``seconds``, the wall time of this invocation (a resumed run counts only
  its continuation).
  """
  if config.get('experiment') not in EXPERIMENTS:
    raise ValueError(f"unknown config.experiment {config.get('experiment')!r}; "
                     f"available: {', '.join(sorted(EXPERIMENTS))}")
  validation.validate(config, defaults)
  if config.get('distributed', False):
    jax.distributed.initialize(**distributed_settings())
  workdir_lib.check_resumable(config, workdir)
  workdir_lib.check_writable(workdir, 'workdir')
  lock = workdir_lib.WorkdirLock(workdir).acquire()
  try:
    logging.info('running %r on %s in %s', config.experiment, jax.devices(), workdir)
    workdir_lib.save_config(config, workdir)
    workdir_lib.save_environment(workdir, [str(device) for device in jax.devices()])
    return EXPERIMENTS[config.experiment](config, workdir)
  finally:
    lock.release()
