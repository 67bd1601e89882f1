r"""Training steps/s and samples/s of the standard flows, against the matmul peak.

  python -m benchmarks.flows [--out=benchmarks/results.json] [--quick]

In one run: the machine's float32 matmul GFLOP/s (the reference), then for each
flow the training throughput (optimiser steps/s of one replica through the engine's
compiled ``lax.scan``, :func:`nflax.engine.dispatch`, which :func:`nflax.fitting.fit`
runs), the sampling throughput, the FLOPs of one training step from XLA's cost
analysis, and so the fraction of the matmul peak each flow achieves. All numbers are
measured after compilation, as the median of ``--repeats`` timed runs.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from absl import app, flags

from nflax import bijectors, densities, engine, fitting

_OUT = flags.DEFINE_string('out', None, 'Optional JSON file for the results.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed runs per measurement.')
_QUICK = flags.DEFINE_bool('quick', False, 'Fewer steps (smoke check of the script).')


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_gflops(size: int, repeats: int) -> float:
  """float32 GFLOP/s of a jitted ``size x size`` matmul chain."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
  chain = 4
  step = jax.jit(lambda a, b: jax.lax.fori_loop(0, chain, lambda _, x: (x @ b) * 1e-3, a))
  seconds = _median_seconds(lambda: step(a, b), repeats)
  return 2 * size**3 * chain / seconds / 1e9


BENCHMARKS = {
    'realnvp_2d_4x(512,512)': (lambda: bijectors.realnvp(4, (512, 512)), (2,), 256),
    'maf_2d_5x100': (lambda: bijectors.maf(5, (100,), batch_norm=True), (2,), 256),
    'maf_40d_5x100': (lambda: bijectors.maf(5, (100,), batch_norm=True), (40,), 256),
    'glow_16x16x1_2lv_x4': (lambda: bijectors.glow(num_levels=2, steps_per_level=4,
                                                   hidden_channels=64), (16, 16, 1), 64),
}
"""Name -> (flow builder, event shape, batch size)."""


def bench_flow(build, event_shape, batch_size, steps, repeats, target_seconds=2.0) -> dict:
  """Throughput of one flow; ``steps`` per timed dispatch, fewer if one takes > ``target_seconds``."""
  density = densities.FlowDensity(build(), densities.StandardNormal(event_shape))
  data = jax.random.normal(jax.random.PRNGKey(0), (4 * batch_size, *event_shape))
  optimizer = optax.adam(1e-4)
  variables = density.init(jax.random.PRNGKey(1), data[:batch_size])
  run_ = fitting.init_fit_run(engine.add_replica_axis(variables), optimizer)
  step_fn = fitting.GradientStep(fitting.nll_objective(density), optimizer)
  data_r, keys = data[None], jax.random.PRNGKey(2)[None]
  dispatch = lambda n: engine.dispatch(run_, data_r, keys, step_fn=step_fn,
                                       batch_size=batch_size, num_steps=n, guard=False)
  probe = 5
  seconds_per_step = _median_seconds(lambda: dispatch(probe), 1) / probe
  steps = max(probe, min(steps, int(target_seconds / seconds_per_step)))
  train_seconds = _median_seconds(lambda: dispatch(steps), repeats)
  lowered = engine.dispatch.lower(run_, data_r, keys, step_fn=step_fn, batch_size=batch_size,
                                  num_steps=1, guard=False)
  cost = lowered.compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops_per_step = float(cost.get('flops', float('nan')))
  num_samples = 4 * batch_size
  sample = jax.jit(lambda k: density.apply(variables, k, num_samples,
                                           method=type(density).sample))
  sample_seconds = _median_seconds(lambda: sample(jax.random.PRNGKey(3)), repeats)
  return {
      'batch_size': batch_size,
      'timed_steps': steps,
      'train_steps_per_s': steps / train_seconds,
      'train_examples_per_s': steps * batch_size / train_seconds,
      'samples_per_s': num_samples / sample_seconds,
      'gflop_per_step': flops_per_step / 1e9,
      'achieved_gflops': flops_per_step * steps / train_seconds / 1e9,
  }


def main(argv):
  del argv
  steps = 10 if _QUICK.value else 100
  repeats = 2 if _QUICK.value else _REPEATS.value
  peak = matmul_gflops(512 if _QUICK.value else 2048, repeats)
  results = {'device': str(jax.devices()[0]), 'matmul_gflops': peak, 'flows': {}}
  print(f'device: {results["device"]}   float32 matmul: {peak:.1f} GFLOP/s\n')
  print('| flow | batch | train steps/s | samples/s | GFLOP/step | GFLOP/s | % of matmul |')
  print('|---|---|---|---|---|---|---|')
  for name, (build, shape, batch) in BENCHMARKS.items():
    r = bench_flow(build, shape, batch, steps, repeats)
    results['flows'][name] = r
    print(f"| {name} | {batch} | {r['train_steps_per_s']:.1f} | {r['samples_per_s']:.0f} | "
          f"{r['gflop_per_step']:.3f} | {r['achieved_gflops']:.2f} | "
          f"{100 * r['achieved_gflops'] / peak:.1f}% |", flush=True)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
