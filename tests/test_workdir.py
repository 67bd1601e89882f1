"""A workdir you can trust: changed configs refused, one writer, one metrics record
per (stage, step), corrupt checkpoints and step folders that are none, unwritable folders,
no non-finite checkpoint, figures that cannot be drawn, folders that hold no run (a run's, a
sweep's, a reproduction's) refused. Mostly on the ``:smoke`` configs. Settings checked up
front: tests/test_config_checks.py."""

import json
import logging as std_logging
import os
import shutil
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import struct

from configs import density_moons
from harness import stages
from experiments import launch, sweep_jobs
from harness import workdir as workdir_lib
from harness import workdir_guards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(workdir, *overrides, config='configs/density_moons.py:smoke'):
  return [sys.executable, '-m', 'experiments.run', f'--config={config}',
          f'--workdir={workdir}', *overrides]


def _keys(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [(r['stage'], r['step']) for r in map(json.loads, f)]


def _assert_one_record_per_step(workdir):
  keys = _keys(workdir)
  assert len(keys) == len(set(keys)), keys
  assert keys.count(('final', 0)) == 1 and keys[-1] == ('final', 0), keys


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A finished smoke run (copy it before changing it)."""
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  results = launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
  return workdir, results


def _copy(finished, tmp_path):
  target = tmp_path / 'run'
  shutil.copytree(finished[0], target)
  return target


# 1. A changed config is refused before anything is written.

def test_changed_config_is_refused_naming_fields_and_values(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  before = {name: (workdir / name).read_bytes() for name in ('config.json', 'metrics.jsonl')}
  config = density_moons.get_config('smoke')
  config.seeds = (1,)
  config.data.name = 'moonz'
  with pytest.raises(ValueError, match=r"changed field\(s\): data.name: 'moons' in the "
                                       r"workdir, 'moonz' requested; seeds: \[0\] in the "
                                       r"workdir, \[1\] requested"):
    launch.run_experiment(config, str(workdir))
  assert before == {name: (workdir / name).read_bytes() for name in before}
  assert not (workdir / 'lock').exists()


def test_fields_that_do_not_change_results_may_differ(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  config = density_moons.get_config('smoke')
  assert workdir_lib.NON_RESULT_FIELDS == ('distributed',)
  config.distributed = True
  workdir_lib.check_resumable(config, str(workdir))  # does not raise


def test_config_of_a_run_that_never_trained_is_replaced(tmp_path):
  config = density_moons.get_config('smoke')
  config.data.name = 'moonz'
  with pytest.raises(ValueError, match="unknown data set 'moonz'"):
    launch.run_experiment(config, str(tmp_path))
  workdir_lib.check_resumable(density_moons.get_config('smoke'), str(tmp_path))


# 2. metrics.jsonl: one record per (stage, step) and one final record.

def test_reruns_of_a_finished_run_keep_one_final_record(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  for _ in range(2):
    again = launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
    assert again['test_nll'] == finished[1]['test_nll']
  _assert_one_record_per_step(workdir)


def test_stage_stopped_before_its_first_checkpoint_restarts_its_log(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  shutil.rmtree(workdir / 'checkpoints')
  (workdir / 'results.json').unlink()
  with open(workdir / 'metrics.jsonl', 'a') as f:  # a stage killed at step 20, re-logged
    f.write(json.dumps({'stage': 'density', 'step': 20, 'loss': 9.0}) + '\n')
  launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
  _assert_one_record_per_step(workdir)
  assert [s for stage, s in _keys(workdir) if stage == 'density'] == [20, 40, 60]


def test_torn_last_line_is_dropped_with_a_warning_naming_the_file(finished, tmp_path, caplog):
  workdir = _copy(finished, tmp_path)
  with open(workdir / 'metrics.jsonl', 'a') as f:
    f.write('{"stage": "density", "st')
  with caplog.at_level(std_logging.WARNING):
    assert [r['step'] for r in workdir_lib.read_metrics(str(workdir), 'density')] == [20, 40, 60]
  assert f'{workdir}/metrics.jsonl: dropping its torn last line' in caplog.text
  log = workdir_lib.MetricsLog(str(workdir))
  log.write('density', 80, {'loss': 1.0})
  log.close()
  assert _keys(workdir)[-1] == ('density', 80)
  with open(workdir / 'metrics.jsonl', 'a') as f:
    f.write('{"stage": "density", "st')
  launch.run_experiment(density_moons.get_config('smoke'), str(workdir))  # resumes
  assert 'JSONDecodeError' not in caplog.text


def test_a_bad_line_inside_the_log_is_named(tmp_path):
  (tmp_path / 'metrics.jsonl').write_text('{"stage": "a", "step": 1}\nnot json\n'
                                          '{"stage": "a", "step": 2}\n')
  with pytest.raises(ValueError, match=r'metrics.jsonl: line 2 is not a JSON record'):
    workdir_lib.read_metrics(str(tmp_path), 'a')


def test_records_written_twice_are_replaced(tmp_path):
  log = workdir_lib.MetricsLog(str(tmp_path))
  for value in (1.0, 2.0):
    log.write('run', 0, {'error': value})
    log.write('final', 0, {'error': value})
  log.close()
  assert workdir_lib.read_metrics(str(tmp_path), 'run') == [
      {'stage': 'run', 'step': 0, 'error': 2.0}]
  assert len(workdir_lib.read_metrics(str(tmp_path), 'final')) == 1


# 3. Unwritable workdir or checkpoint folder (a regular file in the path fails for root too).

def test_workdir_below_a_file_fails_naming_it(tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(OSError, match=f'workdir {tmp_path}/file/run is not a writable folder'):
    launch.run_experiment(density_moons.get_config('smoke'), str(tmp_path / 'file' / 'run'))


def test_checkpoint_folder_that_is_a_file_fails_naming_it(tmp_path):
  workdir_lib.save_config(density_moons.get_config('smoke'), str(tmp_path))  # a run's own
  (tmp_path / 'checkpoints').mkdir()
  (tmp_path / 'checkpoints' / 'density').write_text('')
  with pytest.raises(OSError, match=f"{tmp_path}/checkpoints/density is not a writable"):
    launch.run_experiment(density_moons.get_config('smoke'), str(tmp_path))
  assert not (tmp_path / 'lock').exists()


def test_live_run_locks_its_workdir_and_a_failed_save_ends_it(tmp_path):
  """A second run into a live workdir fails at once naming the holder; a checkpoint folder
  that becomes unwritable mid-run (orbax's background save fails) ends the process within
  seconds, non-zero, naming the folder, instead of hanging in orbax's threads."""
  overrides = ['--config.train.density.num_steps=100000',
               '--config.train.density.patience=100000',
               '--config.train.density.checkpoint_every=100']
  proc = subprocess.Popen(_cli(tmp_path, *overrides), cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  try:
    first = tmp_path / 'checkpoints' / 'density' / '100' / 'commit_success.txt'
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and proc.poll() is None:
      time.sleep(0.05)
    assert first.exists(), proc.stderr.read() if proc.poll() is not None else 'no checkpoint'
    holder = json.loads((tmp_path / 'lock').read_text())
    assert holder == {'pid': proc.pid, 'host': socket.gethostname()}
    config = density_moons.get_config('smoke')
    config.train.density.update(num_steps=100000, patience=100000, checkpoint_every=100)
    with pytest.raises(RuntimeError, match=f'in use by process {proc.pid} on host '
                                           f'{socket.gethostname()}'):
      launch.run_experiment(config, str(tmp_path))
    os.rename(tmp_path / 'checkpoints' / 'density', tmp_path / 'moved')
    (tmp_path / 'checkpoints' / 'density').write_text('')
    broken = time.time()
    _, stderr = proc.communicate(timeout=60)
    assert time.time() - broken < 30
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 1
  assert f'{tmp_path}/checkpoints/density failed' in stderr.splitlines()[-1]
  assert not (tmp_path / 'lock').exists()


# 4. Locks.

def test_lock_of_a_dead_process_is_taken_over(finished, tmp_path, caplog):
  workdir = _copy(finished, tmp_path)
  dead = subprocess.Popen(['true'])
  dead.wait()
  (workdir / 'lock').write_text(json.dumps({'pid': dead.pid, 'host': socket.gethostname()}))
  with caplog.at_level(std_logging.WARNING):
    launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
  assert f'taking over the lock of process {dead.pid}' in caplog.text
  assert not (workdir / 'lock').exists()


def test_lock_held_on_another_host_is_refused(tmp_path):
  (tmp_path / 'lock').write_text(json.dumps({'pid': 1, 'host': 'elsewhere'}))
  with pytest.raises(RuntimeError, match='locked by process 1 on host elsewhere'):
    launch.run_experiment(density_moons.get_config('smoke'), str(tmp_path))
  assert (tmp_path / 'lock').exists() and not (tmp_path / 'config.json').exists()


# 5. Corrupt checkpoints.

def _snapshot(root):
  """Every path under ``root`` with its bytes (``None`` for a folder)."""
  return {str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
          for path in sorted(root.rglob('*'))}


def _checkpoint_files(workdir, step):
  return sorted((workdir / 'checkpoints' / 'density' / str(step)).rglob('*'),
                key=lambda p: p.stat().st_size if p.is_file() else -1)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(finished, tmp_path, caplog):
  workdir = _copy(finished, tmp_path)
  largest = _checkpoint_files(workdir, 60)[-1]
  with open(largest, 'r+b') as f:
    f.truncate(100)
  with caplog.at_level(std_logging.WARNING):
    again = launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
  folder = workdir / 'checkpoints' / 'density'
  assert f'the checkpoint at step 60 in {folder} cannot be read' in caplog.text
  assert (folder / '60.corrupt').exists() and (folder / '60').exists()
  assert again['test_nll'] == pytest.approx(finished[1]['test_nll'], rel=1e-5)
  _assert_one_record_per_step(workdir)


def test_no_readable_checkpoint_fails_with_one_line(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  for step in (40, 60):
    (workdir / 'checkpoints' / 'density' / str(step) / 'default' / '_METADATA').unlink()
  folder = workdir / 'checkpoints' / 'density'
  (folder / '9999').mkdir()  # and a step folder that is no checkpoint at all
  before = _snapshot(folder)
  with pytest.raises(RuntimeError, match=rf'no readable checkpoint in {folder} \(step\(s\) '
                                         r'\[9999, 60, 40\] cannot be read: step 9999: no '
                                         r'_CHECKPOINT_METADATA.*\); nothing was moved or '
                                         r'deleted') as raised:
    launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
  assert 'delete' not in str(raised.value).split('nothing was moved or deleted')[1]
  assert _snapshot(folder) == before


# 6. The NaN guard and finite checkpoints.

def test_nan_learning_rate_stops_at_step_one_without_a_checkpoint(tmp_path):
  config = density_moons.get_config('smoke')
  config.train.density.update(lr=float('nan'), checkpoint_every=1, steps_per_dispatch=1,
                              eval_every=1)
  with pytest.raises(RuntimeError, match=r'replica 0 at step 1 .*update_norm nan.*no '
                                         'checkpoint had been written yet'):
    launch.EXPERIMENTS['density'](config, str(tmp_path))  # past the up-front check
  assert not list((tmp_path / 'checkpoints' / 'density').iterdir())


@struct.dataclass
class _State:
  step: jax.Array
  w: jax.Array


def _finite_metrics_step(state, batch, key):
  """A step whose metrics stay finite whatever the state holds."""
  return state.replace(step=state.step + 1), {'loss': jnp.sum(batch)}


def test_a_state_with_nan_is_never_saved(tmp_path):
  stage = stages.Stage(
      name='s', step_fn=_finite_metrics_step,
      state=_State(jnp.zeros((1,), jnp.int32), jnp.array([[1.0, jnp.nan]])),
      train_data=jnp.ones((1, 4, 2)), keys=jax.random.PRNGKey(0)[None],
      train_config=ml_collections.ConfigDict({'num_steps': 1, 'batch_size': 2,
                                              'steps_per_dispatch': 1, 'checkpoint_every': 1}))
  metrics = workdir_lib.MetricsLog(str(tmp_path))
  with pytest.raises(RuntimeError, match=r'the state at step 1 holds NaN/Inf in 1 leaves \(\.w\) '
                                         'although its metrics were finite; it was not saved'):
    stages.run_stage(stage, workdir=str(tmp_path), metrics=metrics)
  assert not list((tmp_path / 'checkpoints' / 's').iterdir())


# 7. Figures never fail a run whose results are written.

def test_diverged_run_writes_results_and_survives_plotting_and_reruns(tmp_path):
  config = density_moons.get_config('smoke')
  config.train.density.lr = 10.0
  for _ in range(2):
    results = launch.run_experiment(config, str(tmp_path))
    assert (tmp_path / 'results.json').exists() and 'test_nll' in results
  _assert_one_record_per_step(tmp_path)


def test_a_figure_that_fails_is_a_warning(tmp_path, caplog):
  metrics = workdir_lib.MetricsLog(str(tmp_path))

  def plot():
    raise np.linalg.LinAlgError('singular matrix')

  with caplog.at_level(std_logging.WARNING):
    workdir_lib.finish_run(str(tmp_path), {'x': 1.0}, metrics, plot=plot)
  assert 'could not be drawn' in caplog.text and (tmp_path / 'results.json').exists()


# 8. Step folders that are no checkpoint (a copy interrupted mid-way, a stray folder).

_NUMBERS = ('test_nll', 'val_nll', 'train_nll', 'gaussian_test_nll', 'steps', 'num_params')


def _half_copy(folder, step, of=60):
  """``<step>`` with the files an interrupted copy of checkpoint ``of`` may have: its
  metadata, but not its arrays."""
  (folder / str(step) / 'default').mkdir(parents=True)
  for name in ('_CHECKPOINT_METADATA', 'commit_success.txt', 'default/_METADATA'):
    shutil.copyfile(folder / str(of) / name, folder / str(step) / name)


@pytest.mark.parametrize('case', ['empty newest', 'empty in the middle', 'unrelated files',
                                  'half-copied newest', 'half-copied and 60 truncated'])
def test_step_folders_that_are_no_checkpoint_are_skipped(finished, tmp_path, caplog, case):
  """The newest readable checkpoint is restored whatever an interrupted copy left (a failed
  restore does not poison the next), the skipped folders are moved aside unchanged, and the
  run ends with the numbers of an uninterrupted one."""
  workdir = _copy(finished, tmp_path)
  folder = workdir / 'checkpoints' / 'density'
  skipped = {'empty newest': [9999], 'empty in the middle': [50],
             'unrelated files': [9999], 'half-copied newest': [9999],
             'half-copied and 60 truncated': [9999, 60]}[case]
  if case.startswith('empty'):
    (folder / str(skipped[0])).mkdir()
  elif case == 'unrelated files':
    (folder / '9999').mkdir()
    (folder / '9999' / 'notes.txt').write_text('not a checkpoint')
  else:
    _half_copy(folder, 9999)
  if case == 'half-copied and 60 truncated':
    with open(_checkpoint_files(workdir, 60)[-1], 'r+b') as f:
      f.truncate(100)
  before = {step: _snapshot(folder / str(step)) for step in skipped}
  with caplog.at_level(std_logging.WARNING):
    again = launch.run_experiment(density_moons.get_config('smoke'), str(workdir))
  restored = 40 if 60 in skipped else 60
  assert (f'skipped step folder(s) {skipped} of {folder}' in caplog.text
          and f'continuing from the checkpoint at step {restored}' in caplog.text), caplog.text
  for step in skipped:
    assert _snapshot(folder / f'{step}.corrupt') == before[step]  # moved aside, unchanged
  assert {p.name for p in folder.iterdir()} == {'40', '60', *(f'{s}.corrupt' for s in skipped)}
  assert {k: again[k] for k in _NUMBERS} == {k: finished[1][k] for k in _NUMBERS}
  _assert_one_record_per_step(workdir)


# 9. A folder that holds no run is refused before anything is written into it.

def _foreign(root, case):
  root.mkdir(parents=True, exist_ok=True)
  if case == 'results and notes':
    (root / 'results.json').write_text('{"mine": 1}\n')
    (root / 'notes.txt').write_text('notes\n')
  elif case == 'a project folder':
    (root / 'src').mkdir()
    (root / 'src' / 'main.py').write_text('print(1)\n')
    (root / 'README.md').write_text('# mine\n')
  elif case == "someone else's config.json":
    (root / 'config.json').write_text('{"name": "my-app"}\n')
    (root / 'metrics.jsonl').write_text('{"step": 1}\n')
  elif case == 'checkpoints of something else':
    (root / 'checkpoints').mkdir()
    (root / 'checkpoints' / 'model.pt').write_bytes(b'\x00\x01')
  return _snapshot(root)


FOREIGN = ['results and notes', 'a project folder', "someone else's config.json",
           'checkpoints of something else']


def test_the_issue_command_refuses_a_folder_of_other_files(tmp_path):
  before = _foreign(tmp_path / 'H', 'results and notes')
  out = subprocess.run(_cli(tmp_path / 'H'), cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 1
  assert out.stderr.strip().splitlines()[-1].endswith(
      f'ForeignFolderError: workdir {tmp_path}/H is not empty and holds no run (no '
      'config.json): it holds notes.txt, results.json; refusing to write into it, nothing was '
      'changed. Use a new or empty --workdir (e.g. a new subfolder of it).')
  assert _snapshot(tmp_path / 'H') == before


@pytest.mark.parametrize('case', FOREIGN)
def test_a_folder_that_holds_no_run_is_refused_unchanged(tmp_path, case):
  before = _foreign(tmp_path / 'H', case)
  with pytest.raises(workdir_guards.ForeignFolderError, match=f'workdir {tmp_path}/H '):
    launch.run_experiment(density_moons.get_config('smoke'), str(tmp_path / 'H'))
  assert _snapshot(tmp_path / 'H') == before


def test_new_empty_and_a_runs_own_folders_are_taken(finished, tmp_path):
  workdir_guards.check_own(str(tmp_path / 'new'))
  workdir_guards.check_own(str(tmp_path))  # empty
  workdir = _copy(finished, tmp_path)
  (workdir / 'notes.txt').write_text('mine')  # a run's own folder may hold the user's notes
  workdir_guards.check_own(str(workdir))
  stopped = tmp_path / 'stopped'  # a run or sweep job stopped before it wrote config.json
  stopped.mkdir()
  for name in ('lock', 'error.txt', 'config.json.tmp', 'lock.123.tmp'):
    (stopped / name).write_text('{}')
  workdir_guards.check_own(str(stopped))


def _points():
  points, _ = sweep_jobs.load_sweep('configs/density_moons.py', 'smoke')
  return points, sweep_jobs.check_points('configs/density_moons.py', points, '/nonexistent')


@pytest.mark.parametrize('where', ['sweep folder', 'point folder'])
def test_a_sweep_into_a_folder_that_holds_no_sweep_is_refused_unchanged(tmp_path, where):
  sweep = tmp_path / 'S'
  _, names = _points()
  if where == 'sweep folder':
    before = _foreign(sweep, 'results and notes')
    message = f'sweep folder {sweep} holds notes.txt, results.json, which it did not write'
  else:  # a sweep's own folder whose point folder holds someone's files
    sweep.mkdir()
    (sweep / 'sweep.json').write_text(json.dumps({'points': {}}))
    _foreign(sweep / names[1], 'results and notes')
    before = _snapshot(sweep)
    message = (f'sweep point {names[1]}: sweep point folder {sweep}/{names[1]} is not empty '
               'and holds no run')
  with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
    sweep_jobs.run_sweep('configs/density_moons.py', str(sweep), sweep='smoke', executor='debug')
  assert _snapshot(sweep) == before


def test_a_sweep_job_in_a_foreign_folder_writes_nothing(tmp_path):
  points, _ = _points()
  before = _foreign(tmp_path / 'P', 'results and notes')
  (tmp_path / 'P' / 'error.txt').write_text('my error notes\n')
  before = _snapshot(tmp_path / 'P')
  with pytest.raises(workdir_guards.ForeignFolderError):
    sweep_jobs.run_point('configs/density_moons.py', points[0], str(tmp_path / 'P'))
  assert _snapshot(tmp_path / 'P') == before  # its error.txt neither removed nor written


def test_the_reproduce_command_refuses_a_foreign_workdir(tmp_path):
  """Exit 1, nothing written (the sweep command's refusal, exit 2, is its ValueError)."""
  before = _foreign(tmp_path / 'S', 'results and notes')
  out = subprocess.run([sys.executable, '-m', 'experiments.reproduce', '--tier=fast',
                        '--runs=lrmf_moons', f'--workdir={tmp_path}/S',
                        f'--report={tmp_path}/report.md'],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1, out.stderr[-2000:]
  assert out.stderr.strip().splitlines()[-1].startswith(
      f'reproduction refused: reproduction workdir {tmp_path}/S holds notes.txt, results.json')
  assert _snapshot(tmp_path / 'S') == before and not (tmp_path / 'report.md').exists()


def test_a_reproduction_folder_holds_tiers_runs_and_the_cache(tmp_path):
  runs = ('lrmf_moons', 'fdre_gaussians')
  (tmp_path / 'R' / 'fast' / 'lrmf_moons').mkdir(parents=True)
  (tmp_path / 'R' / 'fast' / 'xla_cache').mkdir()
  workdir_guards.check_reproduction_folder(str(tmp_path / 'R'), ('fast', 'paper'), 'fast', runs)
  workdir_guards.check_reproduction_folder(str(tmp_path / 'new'), ('fast', 'paper'), 'fast', runs)
  (tmp_path / 'R' / 'fast' / 'mine.txt').write_text('mine')
  before = _snapshot(tmp_path / 'R')
  with pytest.raises(workdir_guards.ForeignFolderError,
                     match=f"reproduction folder of tier 'fast' {tmp_path}/R/fast holds "
                           'mine.txt, which it did not write'):
    workdir_guards.check_reproduction_folder(str(tmp_path / 'R'), ('fast', 'paper'), 'fast', runs)
  assert _snapshot(tmp_path / 'R') == before
