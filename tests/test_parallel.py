"""The engine on a ``('replica', 'data')`` mesh of 4 (virtual CPU) devices equals one device.

One subprocess (the device count is fixed when JAX starts) fits small Real NVP densities of
two moons: every replica of a run on the 4-device mesh must end with the parameters and
validation loss of a one-seed fit on one device, whether the mesh splits the batch
(1 replica: mesh 1 x 4), spreads the replicas (4 replicas: mesh 4 x 1) or both
(2 replicas: mesh 2 x 2). Splitting the batch only reorders float sums. On CPU the mesh
keeps the devices in order.
"""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, optax
    from sklearn.datasets import make_moons
    from nflax import bijectors, densities, engine, fitting, parallel

    assert jax.device_count() == 4, jax.devices()
    DENSITY = densities.FlowDensity(bijectors.realnvp(num_blocks=2, hidden=(32,)),
                                    densities.StandardNormal((2,)))
    OPT = optax.adam(1e-3)

    def data(seed):
      x = make_moons(640, noise=0.05, random_state=seed)[0].astype(np.float32)
      return x[:512], x[512:]

    def fit(seeds, mesh, batch_size=64):
      train, val = map(np.stack, zip(*[data(s) for s in seeds]))
      keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
      variables = jax.vmap(lambda k, x: DENSITY.init(k, x[:8]))(keys, train)
      return fitting.fit(fitting.nll_objective(DENSITY), fitting.init_fit_run(variables, OPT),
                         train, val, optimizer=OPT, num_steps=40, batch_size=batch_size,
                         keys=keys, steps_per_dispatch=20, mesh=mesh)

    single = {s: fit((s,), parallel.mesh(1, jax.devices()[:1])) for s in (0, 1, 2, 3)}
    for seeds in ((0,), (0, 1, 2, 3), (1, 3)):
      mesh = parallel.mesh(len(seeds))
      result = fit(seeds, mesh)
      devices = len(jax.tree.leaves(result.state.params)[0].sharding.device_set)
      params = parallel.to_host(result.params)
      for index, seed in enumerate(seeds):
        diff = max(float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(
            jax.tree.leaves(engine.replica(params, index)),
            jax.tree.leaves(engine.replica(single[seed].params, 0))))
        val = abs(float(result.history[-1]['val_loss'][index])
                  - float(single[seed].history[-1]['val_loss'][0]))
        print('CASE', len(seeds), mesh.shape['replica'], mesh.shape['data'], devices, seed,
              diff, val)
    laid_out = parallel.mesh(2)
    print('LAYOUT', [d.id for d in laid_out.devices.flat],
          *(str(t) for t in laid_out.axis_types))
    try:
      fit((0,), parallel.mesh(1), batch_size=66)
    except ValueError as err:
      print('DIVISIBILITY', err)
""")


def test_replicas_and_batch_split_over_four_devices_match_one_device():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', _SCRIPT], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  cases = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith('CASE')]
  # (replicas, mesh replica axis, mesh data axis): batch split, replicas spread, both.
  meshes = {tuple(map(int, case[:3])) for case in cases}
  assert meshes == {(1, 1, 4), (4, 4, 1), (2, 2, 2)}, out.stdout
  assert len(cases) == 1 + 4 + 2, out.stdout
  for replicas, _, _, devices, seed, param_diff, val_diff in cases:
    assert int(devices) == 4, out.stdout  # the state lives on every device of the mesh
    assert float(param_diff) < 1e-5, (replicas, seed, out.stdout)
    assert float(val_diff) < 1e-5, (replicas, seed, out.stdout)
  # jax.make_mesh keeps the CPU devices in order; the axes stay Auto (jit propagates).
  assert "LAYOUT [0, 1, 2, 3] AxisType.Auto AxisType.Auto" in out.stdout, out.stdout
  divisibility = [line for line in out.stdout.splitlines() if line.startswith('DIVISIBILITY')]
  assert divisibility and "not divisible by the 4 devices of the 'data'" in divisibility[0], (
      out.stdout)
