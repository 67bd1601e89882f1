"""The accelerator smoke script (``python -m benchmarks.smoke``) on CPU: two small configs
run with two seeds and print their devices, wall times, steps/s and finiteness; a config that
raises or returns a non-finite number counts as failed."""

import os
import subprocess
import sys

from benchmarks import smoke
from experiments import launch
from experiments import reproduce  # pylint: disable=unused-import
# ``reproduce`` defines --workdir at import; the smoke script defines its flags only when it
# runs as a script, so the two import side by side (as in one pytest worker).

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lists_every_config_with_a_smoke_variant():
  names = smoke.smoke_configs()
  assert {'density_moons', 'lrmf_moons', 'lrmf_vanishing_gradient'} <= set(names)
  assert all(os.path.exists(os.path.join(launch.CONFIGS_DIR, f'{n}.py')) for n in names)


def test_two_configs_run_on_cpu_with_two_seeds(tmp_path):
  out = subprocess.run([sys.executable, '-m', 'benchmarks.smoke',
                        '--configs=density_moons,lrmf_vanishing_gradient', '--seeds=2',
                        f'--workdir={tmp_path}'], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert out.returncode == 0, out.stdout + out.stderr[-3000:]
  lines = out.stdout.splitlines()
  assert lines[0].startswith('devices: [CpuDevice(id=0)'), out.stdout
  density = next(line for line in lines if line.startswith('density_moons'))
  assert '2 seed(s)' in density and density.endswith('finite'), density
  assert 'steps/s: density ' in density, density  # the engine's rate after compilation
  gradient = next(line for line in lines if line.startswith('lrmf_vanishing_gradient'))
  assert '1 seed(s)' in gradient and gradient.endswith('finite'), gradient  # one per run
  assert lines[-1] == '2/2 configs ran with finite results', out.stdout
  assert (tmp_path / 'density_moons' / 'results.json').exists()


def test_a_config_that_raises_or_has_non_finite_results_fails(tmp_path, monkeypatch, capsys):
  def fake_run(config, workdir, defaults):
    if config.experiment == 'density':
      raise RuntimeError('no device')
    os.makedirs(workdir)
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      f.write('{"loss": NaN, "per_seed": [{"loss": 1.0}]}')

  monkeypatch.setattr(launch, 'run_experiment', fake_run)
  failed = smoke.run_all(['density_moons', 'lrmf_vanishing_gradient'], 2, str(tmp_path))
  assert failed == ['density_moons', 'lrmf_vanishing_gradient']
  printed = capsys.readouterr().out
  assert 'FAILED RuntimeError: no device' in printed
  assert 'FAILED non-finite: /loss' in printed
