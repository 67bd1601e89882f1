"""Settings checked before anything is written: every field by its rule
(:mod:`harness.config_checks`), tuple overrides of the wrong type, batch sizes against their
training sets and the data mesh; nothing is written when one is refused."""

import os
import subprocess
import sys

import jax
import pytest

from configs import alignflow_moons, density_moons, lrmf_moons
from experiments import launch
from harness import config_checks
from nflax import parallel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(workdir, *overrides, config='configs/density_moons.py:smoke'):
  return [sys.executable, '-m', 'experiments.run', f'--config={config}',
          f'--workdir={workdir}', *overrides]


def _bad(config, path, value):
  node = config
  *parents, name = path.split('.')
  for parent in parents:
    node = node[parent]
  with config.unlocked():
    node[name] = value
  return config


@pytest.mark.parametrize('path, value, message', [
    ('train.density.lr', float('nan'), 'config.train.density.lr must be a finite number > 0'),
    ('train.density.lr', -1.0, 'config.train.density.lr must be a finite number > 0'),
    ('train.density.batch_size', 0, 'config.train.density.batch_size must be an int >= 1'),
    ('train.density.num_steps', -10, 'config.train.density.num_steps must be an int >= 0'),
    ('train.density.steps_per_dispatch', 0,
     'config.train.density.steps_per_dispatch must be an int >= 1'),
    ('train.density.checkpoint_every', 0,
     'config.train.density.checkpoint_every must be an int >= 1'),
    ('train.density.eval_every', 0, 'config.train.density.eval_every must be an int >= 1'),
    ('train.density.patience', 0, 'config.train.density.patience must be None or an int >= 1'),
    ('model.density.hidden', ('abc',), 'config.model.density.hidden must be a tuple of ints >= 1'),
    ('data.options.noise', float('inf'), 'config.data.options.noise must be finite'),
    ('side_by_side', 'train.density.lr=1e-3,-1',
     'config.train.density.lr must be a finite number > 0'),
])
def test_bad_setting_is_named_before_anything_is_written(tmp_path, path, value, message):
  config = _bad(density_moons.get_config('smoke'), path, value)
  with pytest.raises(ValueError, match=message):
    launch.run_experiment(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('path, value, message', [
    ('data.b.options.rotation_degrees', float('inf'),
     'config.data.b.options.rotation_degrees must be finite'),
    ('lams', ('abc',), r"config.lams: element 0 \('abc'\) of \('abc',\) must be of type float"),
    ('model.critic.hidden', (8, 'x'), 'config.model.critic.hidden must be a tuple of ints'),
    ('train.critic.lr', 0.0, 'config.train.critic.lr must be a finite number > 0'),
    ('train.flows.grad_clip', -1.0, 'config.train.flows.grad_clip must be a finite number >= 0'),
])
def test_alignflow_settings_are_checked(tmp_path, path, value, message):
  defaults = alignflow_moons.get_config('smoke')
  config = _bad(alignflow_moons.get_config('smoke'), path, value)
  with pytest.raises(ValueError, match=message):
    launch.run_experiment(config, str(tmp_path / 'run'), defaults=defaults)
  assert not (tmp_path / 'run').exists()


def test_tuple_override_of_the_wrong_type_fails_before_config_json():
  out = subprocess.run(_cli('/nonexistent/never', '--config.model.density.hidden=abc'), cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 1
  assert "config.model.density.hidden must be a tuple of ints >= 1, got ('abc',)" in out.stderr
  assert out.stderr.strip().splitlines()[-1].endswith("got ('abc',)")


@pytest.mark.parametrize('batch_size', [0, -4, 100000])
def test_alignflow_batch_size_is_checked_against_the_training_halves(tmp_path, batch_size):
  config = alignflow_moons.get_config('smoke')
  config.train.flows.batch_size = batch_size
  with pytest.raises(ValueError, match='config.train.flows.batch_size'):
    launch.run_experiment(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_lrmf_joint_batch_size_is_checked_before_the_private_stages_train(tmp_path):
  config = lrmf_moons.get_config('smoke')
  config.train.joint.batch_size = 100000
  with pytest.raises(ValueError, match=r'config.train.joint.batch_size = 100000 must be in '
                                       r'\[1, \d+\]'):
    launch.run_experiment(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_batch_size_must_split_over_the_data_mesh(monkeypatch):
  # Four devices on the 'data' axis, as jax.make_mesh would lay out four hosts' devices.
  monkeypatch.setattr(parallel, 'mesh', lambda num_replicas, devices: (
      jax.sharding.AbstractMesh((1, 4), (parallel.REPLICA_AXIS, parallel.DATA_AXIS))))
  with pytest.raises(ValueError, match='config.train.batch_size: batch size 6 is not divisible '
                                       'by the 4 devices'):
    config_checks.check_batch_sizes({'train.batch_size': (6, 100)})
