"""Seeds and settings as replicas: parsing, layout, results over seeds, equivalence to runs."""

import ml_collections
import numpy as np
import pytest

from configs import density_moons
from harness import replicas
from experiments import launch


def _config(**fields):
  config = ml_collections.ConfigDict({'experiment': 'x', 'seeds': (0, 1), 'side_by_side': '',
                                      'eps': 0.05, 'train': {'lr': 1e-3, 'batch_size': 8}})
  config.update(fields)
  return config


def test_settings_are_every_combination_and_bad_ones_name_the_field():
  supported = ('train.lr', 'eps', 'train.batch_size')
  assert replicas.settings_of(_config(), supported) == [{}]
  settings = replicas.settings_of(_config(side_by_side='train.lr=1e-3,3e-4;eps=0.1,0.2'),
                                  supported)
  assert settings == [{'train.lr': 1e-3, 'eps': 0.1}, {'train.lr': 1e-3, 'eps': 0.2},
                      {'train.lr': 3e-4, 'eps': 0.1}, {'train.lr': 3e-4, 'eps': 0.2}]
  for spec, message in (('train.wd=1', "cannot differ"), ('eps=abc', "'eps' needs numbers"),
                        ('eps=nan', 'distinct finite'), ('eps=1,1', 'distinct finite'),
                        ('eps', 'is not'), ('eps=1;eps=2', 'twice')):
    with pytest.raises(ValueError, match=message):
      replicas.settings_of(_config(side_by_side=spec), ('eps', 'train.lr'))
  with pytest.raises(ValueError, match="no field 'train.momentum'"):
    replicas.settings_of(_config(side_by_side='train.momentum=1'), ('train.momentum',))


def test_layout_tiles_seeds_within_settings():
  layout = replicas.layout_of(_config(side_by_side='train.lr=1e-3,3e-4'), ('train.lr',))
  assert layout.num_replicas == 4
  np.testing.assert_array_equal(layout.seed_index(), [0, 1, 0, 1])
  np.testing.assert_allclose(layout.values(_config(), 'train.lr'), [1e-3, 1e-3, 3e-4, 3e-4])
  np.testing.assert_allclose(layout.values(_config(), 'eps'), [0.05] * 4)
  keys = np.asarray(layout.keys())
  np.testing.assert_array_equal(keys[0], keys[2])  # one seed, one key, every setting
  assert layout.config_of(_config(), 3).train.lr == 3e-4
  assert set(layout.block_values(_config(), 'train')) == {'lr'}
  nested = _config(train={'density': {'lr': 1e-3, 'batch_size': 8}},
                   side_by_side='train.density.lr=1e-3,3e-4')
  values = replicas.layout_of(nested, ('train.density.lr',)).block_values(nested,
                                                                          'train.density')
  assert set(values) == {'lr'}
  np.testing.assert_allclose(values['lr'], [1e-3, 1e-3, 3e-4, 3e-4])


def test_aggregate_mean_standard_error_and_per_seed():
  results = replicas.aggregate([{'a': 1.0, 'flag': True, 'name': 'x'},
                                {'a': 3.0, 'flag': False, 'name': 'x'}], (4, 7))
  assert results['a'] == 2.0 and results['a_se'] == pytest.approx(1.0)
  assert results['flag'] == 0.5 and results['name'] == 'x'
  assert results['per_seed'] == [{'seed': 4, 'a': 1.0, 'flag': True, 'name': 'x'},
                                 {'seed': 7, 'a': 3.0, 'flag': False, 'name': 'x'}]
  one = replicas.aggregate([{'a': 1.0}], (0,))
  assert one['a'] == 1.0 and 'a_se' not in one  # no standard error of one seed, not a null
  two = replicas.aggregate([{'a': 1.0}, {'a': float('nan')}], (0, 1))
  assert two['a'] == 1.0 and 'a_se' not in two  # one finite value
  with pytest.raises(ValueError, match='repeated'):
    replicas.seeds_of(_config(seeds=(1, 1)))
  with pytest.raises(ValueError, match='non-negative ints'):
    replicas.seeds_of(_config(seeds=(1, 'a')))


def test_settings_side_by_side_equal_separate_runs(tmp_path):
  """Two learning rates x two seeds in one program = each (seed, lr) run alone."""
  config = density_moons.get_config('smoke')
  config.seeds = (0, 1)
  config.side_by_side = 'train.density.lr=0.001,0.003'
  together = launch.run_experiment(config, str(tmp_path / 'together'))
  assert [block['setting'] for block in together['per_setting']] == [
      {'train.density.lr': 0.001}, {'train.density.lr': 0.003}]
  for block in together['per_setting']:
    alone_config = density_moons.get_config('smoke')
    alone_config.seeds = (1,)
    alone_config.train.density.lr = block['setting']['train.density.lr']
    alone = launch.run_experiment(alone_config,
                                  str(tmp_path / f'lr{alone_config.train.density.lr}'))
    assert block['per_seed'][1]['test_nll'] == pytest.approx(alone['test_nll'], rel=1e-4)
    label = replicas.setting_label(block['setting'])
    assert together[f'test_nll/{label}'] == pytest.approx(block['test_nll'])
  assert (together['per_setting'][0]['per_seed'][0]['test_nll']
          != together['per_setting'][1]['per_seed'][0]['test_nll'])
