r"""The training engine's overhead and its gain from training seeds side by side.

  python -m benchmarks.engine [--repeats=5] [--seed_repeats=3] [--quick]
      [--only=overhead,seeds,maf] [--results=benchmarks/RESULTS.md]

Three measurements, each a ratio of two programs timed side by side in this one run
(alternating, so that other load on the machine hits both alike):

* ``overhead``: steps/s after compilation of the engine's maximum-likelihood step
  (:func:`nflax.fitting.fit`, i.e. :func:`nflax.engine.train` running
  :class:`nflax.fitting.GradientStep`, one replica, one dispatch: epoch batches, the NaN
  guard, the host round trip of the metrics) against a plain flax + optax step of
  the same density in the same kind of ``lax.scan`` over batch indices drawn before the
  scan. Real NVP 2-D, 4 blocks of 2 x 512, batch 256.
* ``seeds``: wall clock, compilation included, of 8 seeds trained in one program
  (:func:`nflax.fitting.fit` with 8 replicas) against 8 one-seed fits in sequence
  (caches cleared before each run, as 8 separate jobs would compile 8 times). MAF 2-D
  (FDRE's toy flow: 5 blocks of 100, batch norm) and the two-moons Real NVP.
* ``maf``: steps/s of the engine (as in ``overhead``) for MAF 2-D, 5 blocks of 100, batch
  100, one replica.

Each line reports the median over ``--repeats`` paired measurements and the min-max
range of the ratio. The Markdown table is printed and, with ``--results``, written into
that file between the markers of this benchmark's section.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging
from sklearn import datasets as sk_datasets

from nflax import bijectors, densities, engine, fitting

_REPEATS = flags.DEFINE_integer('repeats', 5, 'Paired timed runs per measurement.')
_SEED_REPEATS = flags.DEFINE_integer('seed_repeats', 3, 'Paired runs of the seeds measurement.')
_QUICK = flags.DEFINE_bool('quick', False, 'Fewer steps and repeats (smoke check).')
_ONLY = flags.DEFINE_list('only', ['overhead', 'seeds', 'maf'], 'Measurements to run.')
_RESULTS = flags.DEFINE_string('results', None,
                               'Markdown file whose engine section is replaced by the table.')

BEGIN, END = '<!-- benchmarks.engine: begin -->', '<!-- benchmarks.engine: end -->'


def _moons(n: int, seed: int) -> np.ndarray:
  x, _ = sk_datasets.make_moons(n_samples=n, noise=0.05, random_state=seed)
  return x.astype(np.float32)


def _realnvp():
  return densities.FlowDensity(bijectors.realnvp(num_blocks=4, hidden=(512, 512)),
                               densities.StandardNormal((2,)))


def _maf():
  return densities.FlowDensity(bijectors.maf(num_blocks=5, hidden=(100,)),
                               densities.StandardNormal((2,)))


def _timed(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def _summary(values: list[float]) -> str:
  return f'{statistics.median(values):.4g} ({min(values):.4g}-{max(values):.4g})'


# --- overhead: the engine's step against a plain flax + optax scan ---------------------------

def _plain_steps(density, optimizer, batch_size: int):
  """A plain ``lax.scan`` of Adam steps on the NLL over batch indices drawn up front."""
  method = type(density).log_prob

  @functools.partial(jax.jit, static_argnames=('num_steps',))
  def run(params, model_state, opt_state, data, key, num_steps):
    indices = jax.random.randint(key, (num_steps, batch_size), 0, data.shape[0])

    def loss_fn(params, model_state, batch):
      variables = {'params': params, **model_state}
      if model_state:
        log_prob, new_state = density.apply(variables, batch, method=method,
                                            mutable=list(model_state))
      else:
        log_prob, new_state = density.apply(variables, batch, method=method), {}
      return -jnp.mean(log_prob), new_state

    def step(carry, idx):
      params, model_state, opt_state = carry
      (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          params, model_state, data[idx])
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), model_state, opt_state), loss

    return jax.lax.scan(step, (params, model_state, opt_state), indices)

  return run


def _engine_steps(density, optimizer, batch_size: int):
  """:func:`nflax.fitting.fit` of one replica, one dispatch, no validation set."""
  objective = fitting.nll_objective(density)

  def run(run_, data, keys, num_steps):
    return fitting.fit(objective, run_, data, optimizer=optimizer, num_steps=num_steps,
                       batch_size=batch_size, keys=keys,
                       steps_per_dispatch=num_steps).state

  return run


def _single_device_run(density, optimizer, data: np.ndarray, batch_size: int):
  variables = density.init(jax.random.PRNGKey(0), data[:batch_size])
  run = fitting.init_fit_run(engine.add_replica_axis(variables), optimizer)
  return variables, run


def engine_steps_per_sec(density, batch_size: int, num_steps: int, repeats: int,
                         baseline: bool) -> dict:
  """Engine (and optionally plain) steps/s after compilation, paired repeats."""
  optimizer = optax.adam(1e-4)
  data = _moons(2048, 0)
  variables, run = _single_device_run(density, optimizer, data, batch_size)
  ours = _engine_steps(density, optimizer, batch_size)
  data_r, keys = jnp.asarray(data)[None], jax.random.PRNGKey(1)[None]
  engine_fn = lambda: ours(run, data_r, keys, num_steps)
  if baseline:
    plain = _plain_steps(density, optimizer, batch_size)
    params = variables['params']
    model_state = {k: v for k, v in variables.items() if k != 'params'}
    opt_state = optimizer.init(params)
    data_1 = jnp.asarray(data)
    plain_fn = lambda: plain(params, model_state, opt_state, data_1, jax.random.PRNGKey(1),
                             num_steps)
    jax.block_until_ready(plain_fn())
  jax.block_until_ready(engine_fn())
  rates, plain_rates, ratios = [], [], []
  for _ in range(repeats):
    rates.append(num_steps / _timed(engine_fn))
    if baseline:
      plain_rates.append(num_steps / _timed(plain_fn))
      ratios.append(rates[-1] / plain_rates[-1])
  return {'engine': rates, 'plain': plain_rates, 'ratio': ratios}


# --- seeds: 8 replicas in one program against 8 one-seed runs ---------------------------------

def _fit_seeds(density, seeds, *, num_steps: int, batch_size: int) -> None:
  optimizer = optax.adam(1e-3)
  data = [_moons(2500, seed) for seed in seeds]
  train = np.stack([x[:2000] for x in data])
  val = np.stack([x[2000:] for x in data])
  keys = jnp.stack([jax.random.PRNGKey(seed) for seed in seeds])
  variables = jax.jit(jax.vmap(lambda key, x: density.init(key, x[:batch_size])))(keys, train)
  result = fitting.fit(fitting.nll_objective(density), fitting.init_fit_run(variables, optimizer),
                       train, val, optimizer=optimizer, num_steps=num_steps,
                       batch_size=batch_size, keys=keys, steps_per_dispatch=100)
  jax.block_until_ready(result.params)


def seeds_wall_clock(build, *, num_seeds: int, num_steps: int, batch_size: int,
                     repeats: int) -> dict:
  """Wall clock of ``num_seeds`` replicas in one fit vs one-seed fits in sequence."""
  together, apart, ratios = [], [], []
  seeds = tuple(range(num_seeds))
  for _ in range(repeats):
    jax.clear_caches()
    together.append(_timed(lambda: _fit_seeds(build(), seeds, num_steps=num_steps,
                                              batch_size=batch_size)))
    total = 0.0
    for seed in seeds:
      jax.clear_caches()
      total += _timed(lambda: _fit_seeds(build(), (seed,), num_steps=num_steps,
                                         batch_size=batch_size))
    apart.append(total)
    ratios.append(together[-1] / apart[-1])
  return {'together': together, 'apart': apart, 'ratio': ratios}


def _write_section(path: str, section: str) -> None:
  text = open(path).read() if os.path.exists(path) else ''
  block = f'{BEGIN}\n{section.rstrip()}\n{END}'
  if BEGIN in text and END in text:
    text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
  else:
    text = text.rstrip() + '\n\n' + block + '\n'
  with open(path, 'w') as f:
    f.write(text)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # no progress lines of the engine
  quick, repeats = _QUICK.value, (2 if _QUICK.value else _REPEATS.value)
  started = time.strftime('%Y-%m-%d %H:%M')
  rows = []

  def row(*cells):
    rows.append('| ' + ' | '.join(cells) + ' |')
    print(rows[-1], flush=True)

  print('| measurement | ours | reference | ratio (median, min-max) | target |')
  print('|---|---|---|---|---|')
  if 'overhead' in _ONLY.value:
    steps = 10 if quick else 100
    r = engine_steps_per_sec(_realnvp(), 256, steps, repeats, baseline=True)
    row('engine vs plain flax+optax step, Real NVP 2-D 4x(512,512), batch 256 (steps/s)',
        _summary(r['engine']), _summary(r['plain']), _summary(r['ratio']), '>= 0.95')
  if 'seeds' in _ONLY.value:
    for name, build, steps, target in (
        ('MAF 2-D 5x100 (batch norm), batch 128', _maf, 100 if quick else 500, '<= 0.35'),
        ('Real NVP 2-D 4x(512,512), batch 256', _realnvp, 20 if quick else 100, '<= 1.0')):
      r = seeds_wall_clock(build, num_seeds=8, num_steps=steps,
                           batch_size=128 if build is _maf else 256,
                           repeats=1 if quick else _SEED_REPEATS.value)
      row(f'8 seeds in one program vs 8 one-seed runs, {name}, {steps} steps (s, with '
          'compilation)', _summary(r['together']), _summary(r['apart']), _summary(r['ratio']),
          target)
  if 'maf' in _ONLY.value:
    r = engine_steps_per_sec(_maf(), 100, 200 if quick else 2000, repeats, baseline=True)
    row('engine steps/s, MAF 2-D 5x100 (batch norm), batch 100; reference: plain scan',
        _summary(r['engine']), _summary(r['plain']), _summary(r['ratio']),
        '>= 2300 steps/s')
  if _RESULTS.value:
    header = (f'## Training engine (`python -m benchmarks.engine`, {started})\n\n'
              f'Device: {jax.devices()[0]} x {jax.device_count()}; {repeats} paired repeats '
              f'({1 if quick else _SEED_REPEATS.value} for the seeds rows); median (min-max).\n\n'
              '| measurement | ours | reference | ratio (median, min-max) | target |\n'
              '|---|---|---|---|---|\n')
    _write_section(_RESULTS.value, header + '\n'.join(rows))


if __name__ == '__main__':
  app.run(main)
