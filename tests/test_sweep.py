"""Sweeps: points through submitit's local executor, skip and resume on rerun,
errors before submission, failed points in the summary, the summary command, TensorBoard
hparams and images. On the ``:smoke`` configs."""

import csv
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time

import pytest
from tensorboardX.proto import event_pb2, plugin_hparams_pb2

from harness import summary, sweeps
from experiments import sweep_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_POINTS = ('variant=smoke,model.density.hidden=16',
                'variant=smoke,model.density.hidden=32-32')
SMOKE_OVERRIDES = {'train.density.num_steps': 40, 'model.density.hidden': (8,)}
"""The smoke sweep's command-line overrides: one field for every point, one swept field."""


def _sweep(workdir, config, *flags):
  return subprocess.run([sys.executable, '-m', 'experiments.sweep', f'--config={config}',
                         f'--workdir={workdir}', *flags], cwd=REPO, capture_output=True,
                        text=True, timeout=300)


def _rows(directory):
  with open(os.path.join(directory, 'summary.csv')) as f:
    return {row['point']: row for row in csv.DictReader(f)}


def test_points_products_zips_and_names():
  points = sweeps.product(
      sweeps.axis('variant', ['', 'maf']),
      sweeps.zip_axes(sweeps.axis('model.hidden', [(64, 64), (8,)]),
                      sweeps.axis('train.lr', [1e-3, 3e-4])))
  assert points[1] == {'variant': '', 'model.hidden': (8,), 'train.lr': 3e-4}
  assert [sweeps.point_name(p) for p in points] == [
      'model.hidden=64-64,train.lr=0.001', 'model.hidden=8,train.lr=0.0003',
      'variant=maf,model.hidden=64-64,train.lr=0.001',
      'variant=maf,model.hidden=8,train.lr=0.0003']
  assert sweeps.point_name({'data.name': 'a/b c', 'x': None}) == 'data.name=a_b_c,x=None'
  assert sweeps.point_name({}) == 'base'
  long_name = sweeps.point_name({'data.root': 'x' * 500})
  assert len(long_name) == sweeps.MAX_NAME_LENGTH and long_name != sweeps.point_name(
      {'data.root': 'x' * 501})
  with pytest.raises(ValueError, match="share the folder name 'model.hidden=64-64'"):
    sweeps.check_names([{'model.hidden': (64, 64)}, {'model.hidden': '64-64'}])
  with pytest.raises(ValueError, match='equal length'):
    sweeps.zip_axes(sweeps.axis('a', [1, 2]), sweeps.axis('b', [1]))
  with pytest.raises(ValueError, match="field 'a' is set by two axes"):
    sweeps.product(sweeps.axis('a', [1]), sweeps.axis('a', [2]))


def test_the_configs_sweeps_are_valid():
  for spec in ('configs/density_moons.py', 'configs/lrmf_moons.py'):
    for name in ('', 'smoke'):
      points, resources = sweep_jobs.load_sweep(os.path.join(REPO, spec), name)
      assert len(sweep_jobs.check_points(os.path.join(REPO, spec), points, '/nonexistent')) == len(
          points) >= 2
      assert resources['timeout_min'] > 0
  with pytest.raises(ValueError, match="variant=maf: it sets variant 'maf' but --config "
                                       'already names :smoke'):
    sweep_jobs.point_config(os.path.join(REPO, 'configs/density_moons.py:smoke'), {'variant': 'maf'})


@pytest.fixture(scope='module')
def swept(tmp_path_factory):
  """The density_moons smoke sweep (two points) with :data:`SMOKE_OVERRIDES`, run once
  through the local executor."""
  workdir = tmp_path_factory.mktemp('sweep') / 'density'
  out = _sweep(workdir, 'configs/density_moons.py', '--sweep=smoke',
               '--config.train.density.num_steps=40', '--config.model.density.hidden=(8,)')
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir


def test_two_point_sweep_writes_two_runs_and_a_summary(swept):
  for name in SMOKE_POINTS:
    assert (swept / name / 'results.json').exists(), name
    assert (swept / name / 'plots' / 'loss.png').exists(), name
  for name, hidden in zip(SMOKE_POINTS, ([16], [32, 32])):  # the swept field wins
    with open(swept / name / 'config.json') as f:
      config = json.load(f)
    assert config['model']['density']['hidden'] == hidden, name
    assert config['train']['density']['num_steps'] == 40, name
    with open(swept / name / 'results.json') as f:
      assert json.load(f)['steps'] == 40, name
  with open(swept / 'sweep.json') as f:
    assert json.load(f)['overrides'] == {'train.density.num_steps': 40,
                                         'model.density.hidden': [8]}
  assert len(glob.glob(str(swept / '_submitit' / '*_submitted.pkl'))) == 2
  rows = _rows(swept)
  assert set(rows) == set(SMOKE_POINTS)
  assert {row['status'] for row in rows.values()} == {'done'}
  assert rows[SMOKE_POINTS[0]]['model.density.hidden'] == '(16,)'
  assert float(rows[SMOKE_POINTS[1]]['test_nll']) > 0
  markdown = (swept / 'summary.md').read_text()
  assert all(name in markdown for name in SMOKE_POINTS)
  assert (swept / 'plots' / 'summary_test_nll.png').exists()


def test_rerun_skips_finished_points(swept):
  before = {name: os.stat(swept / name / 'results.json').st_mtime_ns for name in SMOKE_POINTS}
  with pytest.raises(ValueError, match=f'sweep point {SMOKE_POINTS[0]}: .* holds a run of '
                                       r'another config.*train\.density\.num_steps: 40 in the '
                                       'workdir'):
    sweep_jobs.run_sweep('configs/density_moons.py', str(swept), sweep='smoke')  # no overrides
  assert sweep_jobs.run_sweep('configs/density_moons.py', str(swept), sweep='smoke',
                          overrides=SMOKE_OVERRIDES) == []
  assert before == {name: os.stat(swept / name / 'results.json').st_mtime_ns
                    for name in SMOKE_POINTS}
  assert len(glob.glob(str(swept / '_submitit' / '*_submitted.pkl'))) == 2


def _events(workdir):
  """Every event of the run's TensorBoard files (TFRecord: length, crc, data, crc)."""
  events = []
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents*')):
    with open(path, 'rb') as f:
      data = f.read()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack('<Q', data[offset:offset + 8])
      events.append(event_pb2.Event.FromString(data[offset + 12:offset + 12 + length]))
      offset += 12 + length + 4
  return events


def test_tensorboard_has_hparams_and_figures(swept):
  values = [v for e in _events(swept / SMOKE_POINTS[1]) for v in e.summary.value]
  starts = [v for v in values if v.tag == '_hparams_/session_start_info']
  assert len(starts) == 1
  hparams = plugin_hparams_pb2.HParamsPluginData.FromString(
      starts[0].metadata.plugin_data.content).session_start_info.hparams
  assert hparams['model.density.hidden'].string_value == '(32, 32)'
  assert hparams['train.density.lr'].number_value == pytest.approx(1e-3)
  experiment = [v for v in values if v.tag == '_hparams_/experiment'][0]
  assert b'final/test_nll' in experiment.metadata.plugin_data.content
  assert 'final/test_nll' in {v.tag for v in values if v.HasField('simple_value')}
  images = {v.tag: v.image for v in values if v.HasField('image')}
  assert {'plots/loss', 'plots/samples', 'plots/density'} <= set(images)
  assert images['plots/loss'].encoded_image_string.startswith(b'\x89PNG')


def test_summarize_command_on_a_sweep_and_on_ordinary_runs(swept, tmp_path):
  out = subprocess.run([sys.executable, '-m', 'experiments.summarize', str(swept),
                        '--metrics=test_nll,num_params', '--x=model.density.hidden'], cwd=REPO,
                       capture_output=True, text=True, timeout=120, check=True)
  assert ('| point | variant | model.density.hidden | status | test_nll | num_params |'
          in out.stdout)
  assert (swept / 'plots' / 'summary_num_params.png').exists()
  runs = tmp_path / 'runs'  # the same runs, as if started one by one with experiments.run
  for index, name in enumerate(SMOKE_POINTS):
    shutil.copytree(swept / name, runs / f'run{index}')
  written = summary.summarize(str(runs), ['test_nll'])
  assert ('| point | model.density.hidden | status | test_nll |'
          in (runs / 'summary.md').read_text())
  assert _rows(runs)['run0']['model.density.hidden'] == '(16,)'
  assert written['figures'] == [str(runs / 'plots' / 'summary_test_nll.png')]
  assert os.path.exists(written['figures'][0])
  with pytest.raises(ValueError, match='model.width is not a swept field'):
    summary.summarize(str(runs), x='model.width')


def _sweep_file(tmp_path, points, first=None):
  """A config file whose ``get_sweep()`` is ``points`` (``get_sweep('first')``: ``first``)."""
  path = tmp_path / 'sweep_config.py'
  path.write_text(textwrap.dedent(f'''\
      """A test sweep over density_moons."""
      from configs import density_moons

      get_config = density_moons.get_config
      SWEEP_RESOURCES = {{'timeout_min': 10}}


      def get_sweep(name=''):
        return {first!r} if name == 'first' else {points!r}
      '''))
  return str(path)


@pytest.mark.parametrize('point, message', [
    ({'variant': 'smoke', 'train.density.lrr': 1e-3},
     r'config\.train\.density\.lrr does not exist'),
    ({'variant': 'smoke', 'train.density.batch_size': 'big'},
     r'config\.train\.density\.batch_size .*wrong type'),
    ({'variant': 'smoke', 'model.density.hidden': (32, 0.5)},
     r'config\.model\.density\.hidden must be'),
])
def test_bad_points_fail_before_any_submission(tmp_path, point, message):
  good = {'variant': 'smoke', 'model.density.hidden': (16,)}
  spec, workdir = _sweep_file(tmp_path, [good, point]), tmp_path / 'sweep'
  assert sweep_jobs.check_points(spec, [good], str(workdir)) == [
      'variant=smoke,model.density.hidden=16']
  with pytest.raises(ValueError, match=r'sweep point variant=smoke,.*: ' + message):
    sweep_jobs.run_sweep(spec, str(workdir))
  assert not workdir.exists()


def test_overrides_apply_to_every_point_under_its_swept_fields(tmp_path):
  spec = _sweep_file(tmp_path, [{'variant': 'smoke', 'train.density.lr': 0.01},
                                {'variant': 'maf'}])
  points, _ = sweep_jobs.load_sweep(spec)
  overrides = {'train.density.lr': 0.5, 'train.density.num_steps': 7}
  configs = [sweep_jobs.point_config(spec, point, overrides)[0] for point in points]
  assert [(c.train.density.lr, c.train.density.num_steps) for c in configs] == [(0.01, 7),
                                                                                (0.5, 7)]
  assert configs[1].model.density.flow == 'maf'
  with pytest.raises(ValueError, match=r'sweep point variant=smoke,train\.density\.lr=0\.01: '
                                       r'--config\.model\.density\.batch_norm: '
                                       r'config\.model\.density\.batch_norm does not'):
    sweep_jobs.check_points(spec, points, str(tmp_path / 'sweep'),
                            {'model.density.batch_norm': False})


def test_command_line_refusals(tmp_path):
  """A mistyped override fails at flag parsing (the config is locked); ``--distributed``
  with an executor that cannot run it is refused before anything is written."""
  out = _sweep(tmp_path / 'sweep', 'configs/density_moons.py', '--sweep=smoke',
               '--config.train.density.lrr=0.1')
  assert out.returncode != 0 and 'lrr' in out.stderr
  out = _sweep(tmp_path / 'sweep', 'configs/density_moons.py', '--sweep=smoke',
               '--distributed', '--executor=local')
  assert out.returncode == 2, out.stderr[-3000:]
  assert ('--distributed works only with --executor=debug' in out.stderr
          and 'not with --executor=local' in out.stderr)
  with pytest.raises(ValueError, match='not with --executor=slurm: its jobs would be submitted'):
    sweep_jobs.run_sweep('configs/density_moons.py', str(tmp_path / 'sweep'), sweep='smoke',
                     executor='slurm', distributed=True)
  assert not (tmp_path / 'sweep').exists()


def test_bad_field_fails_on_the_command_line_naming_it(tmp_path):
  spec = _sweep_file(tmp_path, [{'variant': 'smoke', 'model.density.widths': (16,)}])
  out = _sweep(tmp_path / 'sweep', spec)
  assert out.returncode == 2
  assert 'config.model.density.widths does not exist' in out.stderr
  assert 'sweep point variant=smoke,model.density.widths=16' in out.stderr
  assert not (tmp_path / 'sweep').exists()


def _gone(pid, timeout=10.0):
  deadline = time.time() + timeout
  while time.time() < deadline:
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return True
    time.sleep(0.05)
  return False


def test_killed_point_resumes_and_a_failed_point_does_not_stop_the_others(tmp_path):
  long = {'variant': 'smoke', 'train.density.num_steps': 5000, 'train.density.patience': 1000,
          'train.density.eval_every': 100, 'train.density.steps_per_dispatch': 100,
          'train.density.checkpoint_every': 500}
  broken = {'variant': 'smoke', 'data.name': 'moonz'}  # valid setting, fails in the job
  spec, workdir = _sweep_file(tmp_path, [long, broken], first=[long]), tmp_path / 'sweep'
  long_dir, broken_dir = workdir / sweeps.point_name(long), workdir / sweeps.point_name(broken)
  # First the long point alone, the sweep and its job killed after the first checkpoint.
  proc = subprocess.Popen([sys.executable, '-m', 'experiments.sweep', f'--config={spec}',
                           '--sweep=first', f'--workdir={workdir}'], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if any(c.name.isdigit() and (c / 'commit_success.txt').exists()
           for c in (long_dir / 'checkpoints' / 'density').glob('*')):
      break
    time.sleep(0.02)
  with open(long_dir / 'lock') as f:
    job_pid = json.load(f)['pid']
  os.killpg(proc.pid, signal.SIGKILL)  # the sweep, submitit's controller and the job
  proc.wait()
  assert job_pid != proc.pid and _gone(job_pid)
  assert not (long_dir / 'results.json').exists(), 'the point finished before it was killed'
  assert summary.scan(str(workdir))[0][0]['status'] == 'unfinished'

  # Then the whole sweep: the killed point resumes and finishes, the broken one fails.
  assert sweep_jobs.run_sweep(spec, str(workdir)) == [broken_dir.name]
  logs = ''.join(open(p).read() for p in glob.glob(str(workdir / '_submitit' / '*_log.err')))
  assert 'resuming from the checkpoint at step' in logs
  with open(long_dir / 'results.json') as f:
    assert json.load(f)['steps'] == 5000
  assert not (long_dir / 'error.txt').exists()
  assert 'Traceback' in (broken_dir / 'error.txt').read_text()
  summary.summarize(str(workdir))
  rows = _rows(workdir)
  assert rows[long_dir.name]['status'] == 'done'
  assert rows[broken_dir.name]['status'].startswith(
      "failed: ValueError: unknown data set 'moonz'; available: ")
  assert "failed: ValueError: unknown data set 'moonz'" in (workdir / 'summary.md').read_text()


def test_a_point_signalled_at_its_time_limit_is_requeued_and_resumes_to_the_same_results(
    tmp_path):
  """SIGUSR2 to the running job, as SLURM (and the local executor's controller) sends it
  before the time limit: submitit checkpoints the point's job, requeues it, and the requeued
  job resumes from the point's checkpoint and ends with an uninterrupted run's numbers."""
  point = {'variant': 'smoke', 'train.density.num_steps': 3000, 'train.density.patience': 1000,
           'train.density.eval_every': 100, 'train.density.steps_per_dispatch': 100,
           'train.density.checkpoint_every': 200}
  # SWEEP_RESOURCES' timeout_min=10: past submitit's guaranteed wall time (min(0.8 T,
  # T - 10 min)) at once, so the signal counts as the time limit, not a preemption.
  spec, workdir = _sweep_file(tmp_path, [point]), tmp_path / 'sweep'
  point_dir = workdir / sweeps.point_name(point)
  with open(tmp_path / 'sweep.log', 'w') as log:
    proc = subprocess.Popen([sys.executable, '-m', 'experiments.sweep', f'--config={spec}',
                             f'--workdir={workdir}'], cwd=REPO, stdout=log, stderr=log,
                            start_new_session=True)
    try:
      deadline = time.time() + 240
      while time.time() < deadline and proc.poll() is None and not any(
          (c / 'commit_success.txt').exists()
          for c in (point_dir / 'checkpoints' / 'density').glob('[0-9]*')):
        time.sleep(0.02)
      with open(point_dir / 'lock') as f:
        job_pid = json.load(f)['pid']
      assert job_pid != proc.pid
      os.kill(job_pid, signal.SIGUSR2)
      assert proc.wait(timeout=240) == 0, (tmp_path / 'sweep.log').read_text()[-3000:]
    finally:
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
  logs = ''.join(open(p).read() for p in glob.glob(str(workdir / '_submitit' / '*_log.*')))
  assert 'this job is timed-out' in logs and 'Requeued job' in logs, logs[-3000:]
  assert 'resuming from the checkpoint at step' in logs, logs[-3000:]
  with open(point_dir / 'results.json') as f:
    resumed = json.load(f)
  sweep_jobs.run_point(spec, point, str(tmp_path / 'straight'))
  with open(tmp_path / 'straight' / 'results.json') as f:
    straight = json.load(f)
  numbers = ('test_nll', 'val_nll', 'train_nll', 'gaussian_test_nll', 'steps', 'num_params')
  assert {k: resumed[k] for k in numbers} == {k: straight[k] for k in numbers}
  assert resumed['steps'] == 3000 and not (point_dir / 'error.txt').exists()


def test_summary_shows_each_runs_commit_and_command(tmp_path):
  command = "python -m experiments.run --config=configs/density.py --config.train.lr=0.1"
  for name, code in (('clean', {'commit': 'a1b2c3d4e5' * 4, 'dirty': False}),
                     ('dirty', {'commit': 'f6e5d4c3b2' * 4, 'dirty': True})):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'results.json').write_text(json.dumps({'test_nll': 1.0}))
    (tmp_path / name / 'environment.json').write_text(
        json.dumps({'code': code, 'command': command}))
  (tmp_path / 'unstarted').mkdir()
  (tmp_path / 'unstarted' / 'config.json').write_text(json.dumps({'seeds': [0]}))
  summary.summarize(str(tmp_path))
  markdown = (tmp_path / 'summary.md').read_text()
  assert markdown.splitlines()[0] == '| point | status | test_nll | commit | command |'
  assert f'| clean | done | 1 | a1b2c3d | `{command}` |' in markdown
  assert f'| dirty | done | 1 | f6e5d4c+dirty | `{command}` |' in markdown
  rows = _rows(tmp_path)
  assert rows['dirty']['commit'] == 'f6e5d4c+dirty' and rows['dirty']['command'] == command
  assert rows['unstarted']['commit'] == rows['unstarted']['command'] == ''


def test_summary_shows_mean_and_standard_error_over_seeds(tmp_path):
  for lr, nll, se in ((1e-3, 1.5, 0.1), (1e-2, 1.25, 0.05), (1e-1, 2.0, 0.2)):
    run = tmp_path / f'lr{lr}'
    run.mkdir()
    (run / 'config.json').write_text(json.dumps({'seeds': [0, 1, 2], 'train': {'lr': lr}}))
    (run / 'results.json').write_text(json.dumps(
        {'test_nll': nll, 'test_nll_se': se, 'converged': True, 'per_seed': []}))
  (tmp_path / 'failed').mkdir()
  (tmp_path / 'failed' / 'error.txt').write_text('RuntimeError: diverged\n\nTraceback ...')
  written = summary.summarize(str(tmp_path))
  markdown = (tmp_path / 'summary.md').read_text()
  assert '| lr0.001 | 0.001 | done | 1.5 ± 0.1 |' in markdown
  assert '| failed |  | failed: RuntimeError: diverged |  |' in markdown
  rows = _rows(tmp_path)
  assert float(rows['lr0.01']['test_nll_se']) == 0.05 and rows['failed']['test_nll'] == ''
  assert written['figures'] == [str(tmp_path / 'plots' / 'summary_test_nll.png')]
