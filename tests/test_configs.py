"""Every config under configs/: its variants (``VARIANTS``) are on the one schema and build, its
sweeps' points name its fields, its smoke variant runs."""

import importlib
import json
import math
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from benchmarks import smoke
from experiments import launch, sweep_jobs
from harness import config_checks, stages

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


def _experiment_module(config):
  """The family module whose ``run`` the registry maps ``config.experiment`` to."""
  return sys.modules[launch.EXPERIMENTS[config.experiment].__module__]


@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_every_block_of_every_variant_builds(name):
  """Each variant is on the one schema, its experiment's ``build_models`` builds every
  ``model.<role>`` block (the builders its run uses) and the optimiser factory every
  ``train.<stage>`` block."""
  module = _module(name)
  assert 'python -m experiments.run --config=configs/' in module.__doc__, 'run command missing'
  params = {'w': jnp.zeros((3,))}
  for variant in ('',) + tuple(module.VARIANTS):
    config = module.get_config(variant)
    where = (name, variant)
    assert config.experiment in launch.EXPERIMENTS, where
    config_checks.check_schema(config)
    _check_splits_fit_the_domains(config, where)
    built = _experiment_module(config).build_models(config)
    assert set(built) == set(config.get('model', {})), where
    assert all(model is not None for model in built.values()), where
    for stage, block in config.get('train', {}).items():
      # an optimiser stepping in another block's loop (a critic) takes that loop's length
      optimizer = stages.make_optimizer(block, num_steps=block.get('num_steps', 10))
      updates, _ = optimizer.update(params, optimizer.init(params), params)
      assert jax.tree.leaves(updates)[0].shape == (3,), (where, stage)
  with pytest.raises(ValueError, match='unknown variant'):
    module.get_config('no_such_variant')


@pytest.mark.parametrize('name', [n for n in CONFIG_NAMES
                                  if hasattr(_module(n), 'get_sweep')])
def test_every_point_of_every_sweep_names_fields_of_its_config(name):
  """A swept field that a config move left behind fails here, not in a submitted job."""
  module = _module(name)
  spec = str(CONFIG_DIR / f'{name}.py')
  for sweep in ('',) + tuple(getattr(module, 'SWEEPS', ())):
    points, _ = sweep_jobs.load_sweep(spec, sweep)
    for point in points:
      sweep_jobs.point_config(spec, point)


def test_a_config_off_the_schema_is_refused_naming_the_field():
  config = _module('lrmf_moons').get_config('smoke')
  config.train.joint.lr_extra = ml_collections.ConfigDict({'lr': 1e-3})
  with pytest.raises(ValueError, match=r'config.train.joint.lr_extra.lr is an optimiser'):
    config_checks.check_schema(config)
  config = _module('lrmf_moons').get_config('smoke')
  config.critic = ml_collections.ConfigDict({'hidden': (8,)})
  with pytest.raises(ValueError, match=r'config.critic is a block; the only blocks are'):
    config_checks.check_schema(config)
  config = _module('lrmf_moons').get_config('smoke')
  del config.data.b['name']
  with pytest.raises(ValueError, match='config.data must name its data set'):
    config_checks.check_schema(config)


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
