"""The launcher end to end: outputs, kill-and-resume, and the errors users meet."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import density_moons
from harness import data as data_lib
from experiments import launch
from experiments.density import estimation
from nflax import densities

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch_cmd(workdir, *overrides):
  return [sys.executable, '-m', 'experiments.run',
          '--config=configs/density_moons.py:smoke', f'--workdir={workdir}', *overrides]


def _results(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


def test_smoke_run_writes_everything(tmp_path):
  results = launch.run_experiment(density_moons.get_config('smoke'), str(tmp_path))
  for name in ('config.json', 'metrics.jsonl', 'results.json', 'plots/loss.png',
               'plots/samples.png', 'plots/density.png'):
    assert (tmp_path / name).exists(), name
  assert list(tmp_path.glob('events.out.tfevents*'))
  assert (tmp_path / 'checkpoints' / 'density' / '60').exists()
  assert results['test_nll'] < results['gaussian_test_nll']
  with open(tmp_path / 'config.json') as f:
    assert json.load(f)['model']['density']['flow'] == 'realnvp'
  with open(tmp_path / 'environment.json') as f:
    environment = json.load(f)
  assert environment['packages']['jax'] == jax.__version__ and environment['devices']
  # provenance: the checkout's commit and state, and the invocation's command line
  head = subprocess.run(['git', '-C', REPO, 'rev-parse', 'HEAD'], capture_output=True,
                        text=True)
  if head.returncode == 0:
    assert environment['code']['commit'] == head.stdout.strip()
    assert isinstance(environment['code']['dirty'], bool)
  else:  # not a git checkout: nothing to record, and nothing made up
    assert environment['code'] == {'commit': None, 'dirty': None}
  assert isinstance(environment['command'], str) and environment['command']


def test_build_models_builds_the_density_of_every_variant():
  for variant in ('',) + density_moons.VARIANTS:
    config = density_moons.get_config(variant)
    models = estimation.build_models(config)
    assert set(models) == set(config.model) == {'density'}, variant
    assert isinstance(models['density'], densities.Density), variant


def test_killed_run_resumes_to_the_same_result(tmp_path):
  overrides = ['--config.train.density.num_steps=1500', '--config.train.density.patience=1000',
               '--config.train.density.checkpoint_every=300']
  straight, killed = tmp_path / 'straight', tmp_path / 'killed'
  subprocess.run(_launch_cmd(straight, *overrides), cwd=REPO, check=True,
                 capture_output=True)
  proc = subprocess.Popen(_launch_cmd(killed, *overrides), cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  checkpoints = killed / 'checkpoints' / 'density'
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    # A finished checkpoint: its folder renamed from the temporary name to the bare step.
    if any(c.name.isdigit() and (c / 'commit_success.txt').exists()
           for c in checkpoints.glob('*')):
      break
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (killed / 'results.json').exists(), 'the run finished before it was killed'
  resumed = subprocess.run(_launch_cmd(killed, *overrides), cwd=REPO, check=True,
                           capture_output=True, text=True)
  assert 'resuming from the checkpoint at step' in resumed.stderr
  with open(straight / 'environment.json') as f:  # the full command line, as a shell reruns it
    command = json.load(f)['command']
  assert '-m experiments.run' in command and f'--workdir={straight}' in command
  assert all(override in command for override in overrides), command
  a, b = _results(straight), _results(killed)
  for name in ('test_nll', 'val_nll', 'train_nll', 'steps'):
    assert a[name] == pytest.approx(b[name], rel=1e-6), name
  with open(killed / 'metrics.jsonl') as f:
    steps = [json.loads(l)['step'] for l in f if json.loads(l)['stage'] == 'density']
  assert steps == sorted(set(steps)), 'the metrics log repeats steps after the resume'


def test_mistyped_override_fails_at_once(tmp_path):
  out = subprocess.run(_launch_cmd(tmp_path, '--config.train.density.lrr=1.0'), cwd=REPO,
                       capture_output=True, text=True)
  assert out.returncode != 0
  assert 'lrr' in out.stderr
  assert not (tmp_path / 'checkpoints').exists()


def _config(**data):
  config = density_moons.get_config('smoke')
  with config.unlocked():
    config.data.update(data)
  return config


def test_unknown_data_set_is_named(tmp_path):
  with pytest.raises(ValueError, match="unknown data set 'moonz'; available: .*moons"):
    launch.run_experiment(_config(name='moonz'), str(tmp_path))


def test_unknown_experiment_is_named(tmp_path):
  config = density_moons.get_config('smoke')
  config.experiment = 'densty'
  with pytest.raises(ValueError, match="unknown config.experiment 'densty'"):
    launch.run_experiment(config, str(tmp_path))


def test_missing_data_file_is_named(tmp_path):
  config = _config(name='mnist_idx', field='images', event_shape=(28, 28, 1))
  config.data.options = {'root': str(tmp_path / 'no_mnist_here')}
  with pytest.raises(Exception, match='no_mnist_here'):
    launch.run_experiment(config, str(tmp_path / 'run'))


def test_wrong_data_shape_is_named(tmp_path):
  with pytest.raises(ValueError, match=r'moons\.x'):
    launch.run_experiment(_config(event_shape=(3,)), str(tmp_path))


def test_nan_in_data_is_named(tmp_path, monkeypatch):
  def points_with_nan(n=100, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)
    x[7, 1] = np.nan
    return data_lib.synthetic.LabelledPoints(x, np.zeros(n, np.int32))

  monkeypatch.setitem(data_lib.DATASETS, 'points_with_nan', points_with_nan)
  config = _config(name='points_with_nan')
  config.data.options = {'n': 600}
  with pytest.raises(ValueError, match='NaN'):
    launch.run_experiment(config, str(tmp_path))


def test_diverging_loss_stops_with_a_clear_message(tmp_path):
  config = density_moons.get_config('smoke')
  config.model.density.family = 'gaussian'
  config.train.density.lr = 1e30
  with pytest.raises(RuntimeError, match=r'non-finite values in training: replica 0 at step \d+'):
    launch.run_experiment(config, str(tmp_path))


def test_early_stop_on_a_checkpoint_step_finishes_and_resumes(tmp_path):
  config = density_moons.get_config('gaussian')
  config.data.options.n, config.data.splits = 600, (400, 100, 100)
  config.train.density.update(num_steps=400, batch_size=64, steps_per_dispatch=20,
                              eval_every=20, checkpoint_every=20, patience=1, lr=0.3)
  first = launch.run_experiment(config, str(tmp_path))
  assert first['stopped_early']
  again = launch.run_experiment(config, str(tmp_path))
  assert again['steps'] == first['steps'] and again['test_nll'] == first['test_nll']


def test_list_names_every_config_with_its_variants():
  out = subprocess.run([sys.executable, '-m', 'experiments.run', '--list'], cwd=REPO,
                       capture_output=True, text=True, timeout=120, check=True).stdout
  names = sorted(n for n in os.listdir(os.path.join(REPO, 'configs'))
                 if n.endswith('.py') and not n.startswith('_'))
  for name in names:
    assert f'configs/{name}  [' in out, name
  assert 'configs/lrmf_moons.py  [lrmf.alignment]  LRMF on two pairs of moons' in out
  assert 'variants: :gaussian, :ffjord, :smoke' in out
  assert 'sweeps: get_sweep(), --sweep=smoke  Flow family (RealNVP, MAF) x' in out


@pytest.mark.parametrize('bound, expected', [(None, 0.0), ('0.7', 0.7)])
def test_the_compilation_cache_keeps_every_program_unless_the_environment_says(
    bound, expected, tmp_path, monkeypatch):
  """Runs keep their sub-second programs too (JAX's default bound is 1 s); a bound set in
  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS stands (JAX read it at import)."""
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  monkeypatch.delenv('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', raising=False)
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  try:
    if bound is not None:  # set, and read by JAX when it was imported
      monkeypatch.setenv('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', bound)
      jax.config.update('jax_persistent_cache_min_compile_time_secs', float(bound))
    launch.use_compilation_cache(str(tmp_path / 'cache'))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'cache')
    assert jax.config.jax_persistent_cache_min_compile_time_secs == expected
  finally:
    jax.config.update('jax_compilation_cache_dir', before[0])
    jax.config.update('jax_persistent_cache_min_compile_time_secs', before[1])


def test_a_second_run_reuses_the_compilation_cache(tmp_path):
  """Runs from the command line keep compiled programs; the second run compiles nothing new."""
  cache = tmp_path / 'cache'
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  env['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'  # cache every program
  overrides = [f'--compilation_cache={cache}', '--config.model.density.family=gaussian']

  def entries():
    return {p.name for p in cache.iterdir()} if cache.exists() else set()

  subprocess.run(_launch_cmd(tmp_path / 'first', *overrides), cwd=REPO, env=env, check=True,
                 capture_output=True, timeout=300)
  first = entries()
  assert first, 'nothing was cached'
  subprocess.run(_launch_cmd(tmp_path / 'second', *overrides), cwd=REPO, env=env,
                 check=True, capture_output=True, timeout=300)
  assert entries() == first
  # Off: nothing is written where the default cache would be.
  home = tmp_path / 'home'
  subprocess.run(_launch_cmd(tmp_path / 'third', '--compilation_cache=none',
                             '--config.model.density.family=gaussian'), cwd=REPO,
                 env=dict(env, HOME=str(home)), check=True, capture_output=True, timeout=300)
  assert not (home / '.cache' / 'nflax').exists()
