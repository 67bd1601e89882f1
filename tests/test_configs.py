"""Every config under configs/: its variants (``VARIANTS``) build, its smoke variant runs."""

import importlib
import json
import math
import pathlib

import pytest

from benchmarks import smoke
from harness import models
from experiments import launch

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / 'configs'
CONFIG_NAMES = sorted(p.stem for p in CONFIG_DIR.glob('*.py') if p.stem != '__init__')
# Configs whose smoke variant a dedicated test already runs end to end (with more checks).
SMOKE_RUN_ELSEWHERE = {
    'alignflow_mnist': 'tests/test_alignflow.py::'
                       'test_smoke_run_states_generator_parameter_ratio_and_logs_validation_mse',
    'density_moons': 'tests/test_launcher.py::test_smoke_run_writes_everything',
    'fdre_gaussians': 'tests/test_fdre.py::'
                      'test_two_seed_gaussians_smoke_run_gives_each_seed_its_one_seed_numbers',
    'lrmf_moons_baselines':
        'tests/test_lrmf_compare.py::test_moons_smoke_run_writes_results_table_and_plots',
    'lrmf_vanishing_gradient': 'tests/test_lrmf_gradient.py::test_smoke_config_runs_end_to_end',
}


def _module(name):
  return importlib.import_module(f'configs.{name}')


def _check_splits_fit_the_domains(config, where):
  """Every domain ``config.data.a`` / ``.b`` drawn with ``n`` points has room for its splits
  (``data.splits_<side>`` or ``data.splits``); found only when its data load otherwise."""
  data = config.get('data')
  for side in ('a', 'b'):
    domain = data.get(side) if data is not None else None
    if domain is None or domain.get('options') is None or domain.options.get('n') is None:
      continue
    splits = data.get(f'splits_{side}', data.get('splits'))
    if splits is not None:
      assert sum(splits) <= domain.options.n, (where, side, tuple(splits), domain.options.n)


@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_variants_build(name):
  module = _module(name)
  assert 'python -m experiments.run --config=configs/' in module.__doc__, 'run command missing'
  for variant in ('',) + tuple(module.VARIANTS):
    config = module.get_config(variant)
    assert config.experiment in launch.EXPERIMENTS, (name, variant)
    _check_splits_fit_the_domains(config, (name, variant))
    # every flow and density block builds (the family experiments build the others)
    if 'model' in config and 'family' in config.model:
      models.build_density(config.model, config.data.event_shape)
    if 'density' in config:
      models.build_density(config.density, (2,) if config.density.get('family') in (
          'gaussian', 'gaussian_mixture') else (4, 4, 1))
    for block in ('flow', 'generator'):
      if block in config and 'flow' in config[block]:
        models.build_flow(config[block])
  with pytest.raises(ValueError, match='unknown variant'):
    module.get_config('no_such_variant')


@pytest.mark.parametrize('name', [n for n in CONFIG_NAMES if n not in SMOKE_RUN_ELSEWHERE])
def test_smoke_variant_runs(name, tmp_path):
  config = _module(name).get_config('smoke')
  returned = launch.run_experiment(config, str(tmp_path))
  with open(tmp_path / 'results.json') as f:
    results = json.load(f)
  # what the run returns is what it wrote, and it is all it measured: no NaN/Inf metric, one
  # record per seed where several seeds ran, and the wall time the report shows
  assert json.loads(json.dumps(returned)) == results
  bad = [(path, value) for path, value in smoke.numbers(results) if not math.isfinite(value)]
  assert not bad, bad
  seeds = tuple(config.get('seeds', (0,)))
  if len(seeds) > 1:
    assert [record['seed'] for record in results['per_seed']] == list(seeds)
  assert results['seconds'] > 0
  assert len(list(smoke.numbers(results))) > 2, 'a run that measured nothing'
