"""Data-parallel training over 4 (virtual CPU) devices equals training on one."""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, optax
    from sklearn.datasets import make_moons
    from nflax import bijectors, densities, fitting, parallel

    assert jax.device_count() == 4, jax.devices()
    x = make_moons(1024, noise=0.05, random_state=0)[0].astype(np.float32)
    density = densities.FlowDensity(bijectors.realnvp(num_blocks=2, hidden=(32,)),
                                    densities.StandardNormal((2,)))
    opt = optax.adam(1e-3)

    def run(mesh):
      state = fitting.init_fit_state(density.init(jax.random.PRNGKey(0), x[:8]), opt)
      return fitting.fit(fitting.nll_objective(density), state, x[:768], x[768:],
                         optimizer=opt, num_steps=60, batch_size=64,
                         key=jax.random.PRNGKey(1), steps_per_dispatch=30, mesh=mesh)

    four = run(parallel.data_mesh())
    one = run(parallel.data_mesh(jax.devices()[:1]))
    leaves = jax.tree.leaves(four.state.params)
    assert len(leaves[0].sharding.device_set) == 4
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
               zip(leaves, jax.tree.leaves(one.state.params)))
    print('MAX_PARAM_DIFF', diff)
    print('VAL', four.history[-1]['val_loss'], one.history[-1]['val_loss'])
    try:
      fitting.fit(fitting.nll_objective(density),
                  fitting.init_fit_state(density.init(jax.random.PRNGKey(0), x[:8]), opt),
                  x, optimizer=opt, num_steps=1, batch_size=66, key=jax.random.PRNGKey(0))
    except ValueError as err:
      print('DIVISIBILITY', err)
""")


def test_four_devices_match_one():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', _SCRIPT], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = dict(line.split(' ', 1) for line in out.stdout.splitlines() if ' ' in line)
  assert float(lines['MAX_PARAM_DIFF']) < 1e-4, out.stdout
  val_four, val_one = map(float, lines['VAL'].split())
  assert abs(val_four - val_one) < 1e-4
  assert 'not divisible by the 4 devices' in lines['DIVISIBILITY']
