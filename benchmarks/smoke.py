r"""Every ``:smoke`` config on the devices JAX sees: ``python -m benchmarks.smoke``.

  python -m benchmarks.smoke [--configs=density_moons,lrmf_moons] [--seeds=2] [--workdir=DIR]

A check that the experiments run on an accelerator (after the README's GPU or TPU install
line) and on CPU: it prints JAX's devices, then runs the ``smoke`` variant of every config
under ``configs/`` (or of ``--configs``) through :func:`experiments.launch.run_experiment`,
each into its own folder of a temporary workdir (``--workdir``: that folder, kept), with
``config.seeds = (0, ..., --seeds - 1)`` trained side by side where the experiment does
(:data:`experiments.launch.SEEDS_SIDE_BY_SIDE`; the others take seed 0). For each config
it prints the wall time, the training rate of each stage (the median steps/s of its
``metrics.jsonl`` dispatches after the first, its compiled program's first execution)
and whether every number of its ``results.json`` is finite. Exit status 1 when a config fails (raises, or has a
non-finite result), else 0.
"""

from __future__ import annotations

import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any, Iterator

import jax
from absl import app, flags

from experiments import launch
from harness import workdir as workdir_lib

SMOKE_VARIANT = 'smoke'



def define_flags() -> None:
  """The command line's flags, defined when the module runs as a script only: importing its
  functions (tests do, beside the experiments' command lines) defines none."""
  flags.DEFINE_list('configs', None, 'Config names under configs/ (default: every config with '
                    'a smoke variant).')
  flags.DEFINE_integer('seeds', 2, 'Seeds trained side by side where the experiment does.')
  flags.DEFINE_string('workdir', None, 'Folder of the runs, kept (default: a temporary '
                      'folder, removed at the end).')


def smoke_configs(configs_dir: str = launch.CONFIGS_DIR) -> list[str]:
  """The names (``density_moons``) of the config files in ``configs_dir`` that have a
  ``smoke`` variant, sorted."""
  names = []
  for file_name in sorted(os.listdir(configs_dir)):
    if file_name.endswith('.py') and not file_name.startswith('_'):
      module = launch.config_module(os.path.join(configs_dir, file_name))
      if SMOKE_VARIANT in getattr(module, 'VARIANTS', ()):
        names.append(file_name[:-3])
  return names


def numbers(tree: Any, path: str = '') -> Iterator[tuple[str, float]]:
  """``(path, value)`` of every number (not bool) in a JSON tree; paths like
  ``/per_seed[0]/test_nll``."""
  if isinstance(tree, dict):
    for key, value in tree.items():
      yield from numbers(value, f'{path}/{key}')
  elif isinstance(tree, list):
    for index, value in enumerate(tree):
      yield from numbers(value, f'{path}[{index}]')
  elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
    yield path, tree


def stage_rates(workdir: str) -> dict[str, float]:
  """Stage -> median steps/s of its ``metrics.jsonl`` dispatches after the first (the
  first execution of its compiled program, slower than the others); stages with one
  dispatch are left out."""
  rates: dict[str, list[float]] = {}
  for record in workdir_lib.read_metrics(workdir):
    if 'steps_per_sec' in record:
      rates.setdefault(record['stage'], []).append(record['steps_per_sec'])
  return {stage: statistics.median(values[1:]) for stage, values in rates.items()
          if len(values) > 1}


def run_smoke(name: str, seeds: int, workdir: str) -> dict[str, Any]:
  """Runs ``configs/<name>.py:smoke`` into ``workdir`` with ``seeds`` seeds (side by side
  where the experiment trains them so, else seed 0).

  Returns:
    ``{'name', 'seeds', 'seconds', 'rates'`` (:func:`stage_rates`), ``'non_finite'``
    (paths of non-finite results), ``'error'`` (``'<type>: <message>'`` or ``None``)``}``.
  """
  defaults = launch.default_config(
      os.path.join(launch.CONFIGS_DIR, f'{name}.py:{SMOKE_VARIANT}'))
  config = copy.deepcopy(defaults)
  if config.experiment in launch.SEEDS_SIDE_BY_SIDE:
    config.seeds = tuple(range(seeds))
  outcome = {'name': name, 'seeds': len(config.get('seeds', (0,))), 'rates': {},
             'non_finite': [], 'error': None}
  start = time.perf_counter()
  try:
    launch.run_experiment(config, workdir, defaults)
    with open(os.path.join(workdir, 'results.json')) as f:
      results = json.load(f)
  except Exception as err:  # pylint: disable=broad-except
    outcome['error'] = f'{type(err).__name__}: {err}'
    traceback.print_exc()
  else:
    outcome['non_finite'] = [path for path, value in numbers(results)
                             if not math.isfinite(value)]
    outcome['rates'] = stage_rates(workdir)
  outcome['seconds'] = time.perf_counter() - start
  return outcome


def describe(outcome: dict[str, Any]) -> str:
  """One line of a :func:`run_smoke` outcome: name, seeds, wall time, rates, verdict."""
  rates = ', '.join(f'{stage} {rate:.0f}' for stage, rate in outcome['rates'].items())
  if outcome['error']:
    verdict = f'FAILED {outcome["error"]}'
  elif outcome['non_finite']:
    verdict = f'FAILED non-finite: {", ".join(outcome["non_finite"])}'
  else:
    verdict = 'finite'
  return (f'{outcome["name"]:<32} {outcome["seeds"]} seed(s) {outcome["seconds"]:7.1f} s  '
          f'steps/s: {rates or "-"}  {verdict}')


def run_all(names: list[str], seeds: int, root: str) -> list[str]:
  """Runs the smoke variant of each config of ``names`` into ``<root>/<name>``
  (:func:`run_smoke`), printing one :func:`describe` line per config; returns the names of
  those that failed."""
  failed = []
  for name in names:
    outcome = run_smoke(name, seeds, os.path.join(root, name))
    print(describe(outcome), flush=True)
    if outcome['error'] or outcome['non_finite']:
      failed.append(name)
  return failed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  values = flags.FLAGS
  if values.seeds < 1:
    raise app.UsageError(f'--seeds must be >= 1, got {values.seeds}')
  available = smoke_configs()
  names = values.configs or available
  unknown = sorted(set(names) - set(available))
  if unknown:
    raise app.UsageError(f'no smoke config {unknown}; available: {", ".join(available)}')
  launch.log_through_absl()
  print(f'devices: {jax.devices()}', flush=True)
  with tempfile.TemporaryDirectory(prefix='smoke-') as scratch:
    failed = run_all(names, values.seeds, values.workdir or scratch)
  print(f'{len(names) - len(failed)}/{len(names)} configs ran with finite results'
        + (f'; failed: {", ".join(failed)}' if failed else ''))
  sys.exit(1 if failed else 0)


if __name__ == '__main__':
  define_flags()
  app.run(main)
