"""Two JAX processes on this machine give the numbers of one, and only process 0 writes.

A real multi-process job: ``jax.distributed`` with a coordinator on localhost, two
processes of two CPU devices each (a global ``('replica', 'data')`` mesh of 4 devices),
gloo for the cross-process collectives. Two checks:

* a 2-replica :func:`nflax.fitting.fit` (mesh 2 x 2: replicas over the processes, each
  batch split over a process's two devices) ends with the parameters and validation
  losses of the same fit in one process on one device;
* ``python -m experiments.run --config.distributed=True`` started in both processes (the
  coordinator and process index passed through the environment variables of
  :func:`experiments.launch.distributed_settings`) writes the ``results.json`` of a
  one-process run, and every metrics line is written once (process 1 writes no file).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TIMEOUT = 120


def _gloo_available() -> bool:
  try:
    from jax._src.lib import _jax  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return hasattr(_jax, 'make_gloo_tcp_collectives')


pytestmark = pytest.mark.skipif(
    not _gloo_available(),
    reason='this jaxlib has no gloo CPU collectives (jax_cpu_collectives_implementation)')

_FIT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, optax
    from sklearn.datasets import make_moons
    from nflax import bijectors, densities, fitting, parallel

    def fit(mesh):
      density = densities.FlowDensity(bijectors.realnvp(num_blocks=2, hidden=(16,)),
                                      densities.StandardNormal((2,)))
      opt = optax.adam(1e-3)
      data = [make_moons(320, noise=0.05, random_state=s)[0].astype(np.float32) for s in (0, 1)]
      train, val = np.stack([x[:256] for x in data]), np.stack([x[256:] for x in data])
      keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
      variables = jax.vmap(lambda k, x: density.init(k, x[:8]))(keys, train)
      result = fitting.fit(fitting.nll_objective(density), fitting.init_fit_run(variables, opt),
                           train, val, optimizer=opt, num_steps=20, batch_size=32, keys=keys,
                           steps_per_dispatch=10, mesh=mesh)
      return {'mesh': dict(mesh.shape),
              'params': [np.asarray(x).tolist() for x in
                         jax.tree.leaves(parallel.to_host(result.params))],
              'val_loss': np.asarray(result.history[-1]['val_loss']).tolist()}
""")

_WORKER = 'import json, os\n' + _FIT + textwrap.dedent("""
    # The coordinator's address comes from JAX_COORDINATOR_ADDRESS.
    jax.distributed.initialize(num_processes=int(os.environ['JAX_NUM_PROCESSES']),
                               process_id=int(os.environ['JAX_PROCESS_ID']))
    assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
    print('FIT', jax.process_index(), json.dumps(fit(parallel.mesh(2))), flush=True)
    jax.distributed.shutdown()
""")


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


def _two_processes(command: list[str], logdir: str) -> list[str]:
  """Runs ``command`` as processes 0 and 1 of a localhost job; returns their logs."""
  port = _free_port()
  procs, logs = [], []
  for index in range(2):
    env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2',
               JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo',
               JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}', JAX_NUM_PROCESSES='2',
               JAX_PROCESS_ID=str(index))
    env.pop('XLA_FLAGS', None)
    logs.append(os.path.join(logdir, f'process_{index}.log'))
    with open(logs[-1], 'w') as log:
      procs.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                    stderr=subprocess.STDOUT))
  deadline = time.monotonic() + _TIMEOUT
  try:
    while any(p.poll() is None for p in procs):
      # A failed process leaves the other waiting in a collective: stop it.
      if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
        break
      time.sleep(0.2)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
    codes = [p.wait() for p in procs]
  texts = [open(path).read() for path in logs]
  assert codes == [0, 0], '\n\n'.join(f'process {i} (exit {c}):\n{t[-3000:]}'
                                      for i, (c, t) in enumerate(zip(codes, texts)))
  return texts


def test_two_process_fit_equals_one_process(tmp_path):
  logs = _two_processes([sys.executable, '-c', _WORKER], str(tmp_path))
  got = [json.loads(line.split(' ', 2)[2]) for log in logs for line in log.splitlines()
         if line.startswith('FIT ')]
  assert len(got) == 2 and got[0] == got[1], logs  # every process sees the global result
  assert got[0]['mesh'] == {'replica': 2, 'data': 2}

  import jax  # pylint: disable=g-import-not-at-top
  namespace = {}
  exec(_FIT, namespace)  # pylint: disable=exec-used
  one = namespace['fit'](namespace['parallel'].mesh(2, jax.devices()[:1]))
  np.testing.assert_allclose(got[0]['val_loss'], one['val_loss'], rtol=1e-5)
  for a, b in zip(got[0]['params'], one['params']):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


_OVERRIDES = ['--config=configs/density_moons.py:smoke', "--config.seeds=(0,1)",
              '--config.train.density.num_steps=40']


def test_two_process_experiment_writes_once_and_equals_one_process(tmp_path):
  two, one = str(tmp_path / 'two'), str(tmp_path / 'one')
  command = [sys.executable, '-m', 'experiments.run', f'--workdir={two}', *_OVERRIDES,
             '--config.distributed=True']
  # The one-process reference runs alongside (the two-process job idles in collectives).
  with open(tmp_path / 'single.log', 'w') as single_log:
    single = subprocess.Popen([sys.executable, '-m', 'experiments.run', f'--workdir={one}',
                               *_OVERRIDES], cwd=REPO, env=dict(os.environ, JAX_PLATFORMS='cpu'),
                              stdout=single_log, stderr=subprocess.STDOUT)
    try:
      logs = _two_processes(command, str(tmp_path))
      code = single.wait(timeout=_TIMEOUT)
    finally:
      if single.poll() is None:
        single.kill()
  assert code == 0, (tmp_path / 'single.log').read_text()[-3000:]
  for index, log in enumerate(logs):
    assert "'density' on [CpuDevice(id=0), CpuDevice(id=1), CpuDevice(id=2048)" in log, (
        index, log[-2000:])

  results = [json.load(open(os.path.join(d, 'results.json'))) for d in (two, one)]
  for name in ('test_nll', 'val_nll', 'train_nll', 'gaussian_test_nll'):
    np.testing.assert_allclose([s[name] for s in results[0]['per_seed']],
                               [s[name] for s in results[1]['per_seed']], rtol=1e-5)
  assert [s['steps'] for s in results[0]['per_seed']] == [40, 40]

  with open(os.path.join(two, 'metrics.jsonl')) as f:
    lines = [line for line in f if line.strip()]
  records = [(r['stage'], r['step']) for r in map(json.loads, lines)]
  assert records == [('density', 20), ('density', 40), ('final', 0)], records

  # Rerun in both processes: the finished stage comes back from the checkpoint the two
  # processes wrote together (orbax's multi-host restore, onto the global mesh).
  again_logs = str(tmp_path / 'again')
  os.makedirs(again_logs)
  logs = _two_processes(command, again_logs)
  assert all('resuming from the checkpoint at step 40' in log for log in logs), logs[0][-2000:]
  rerun = json.load(open(os.path.join(two, 'results.json')))
  np.testing.assert_allclose([s['test_nll'] for s in rerun['per_seed']],
                             [s['test_nll'] for s in results[0]['per_seed']], rtol=1e-6)
