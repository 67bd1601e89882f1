"""The training engine: replicas equal separate runs, resume, per-replica guard and stopping."""

import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct
from sklearn import datasets as sk_datasets

from nflax import bijectors, densities, engine, fitting

_DENSITY = densities.FlowDensity(bijectors.realnvp(num_blocks=1, hidden=(16,)),
                                 densities.StandardNormal((2,)))
_OPT = optax.adam(1e-3)


def _moons(seed, n=400):
  x, _ = sk_datasets.make_moons(n_samples=n, noise=0.05, random_state=seed)
  x = x.astype(np.float32)
  return x[:300], x[300:]


def _fit(seeds, num_steps=40, run=None, **kwargs):
  train, val = map(jnp.stack, zip(*[_moons(seed) for seed in seeds]))
  keys = jnp.stack([jax.random.PRNGKey(seed) for seed in seeds])
  if run is None:
    variables = jax.vmap(lambda key, x: _DENSITY.init(key, x[:8]))(keys, train)
    run = fitting.init_fit_run(variables, _OPT)
  kwargs.setdefault('steps_per_dispatch', 10)
  return fitting.fit(fitting.nll_objective(_DENSITY), run, train, val, optimizer=_OPT,
                     num_steps=num_steps, batch_size=32, keys=keys, **kwargs)


def _assert_trees_close(a, b, **tol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol),
               a, b)


def test_three_replicas_equal_three_single_runs():
  three = _fit((0, 1, 2))
  for index, seed in enumerate((0, 1, 2)):
    one = _fit((seed,))
    _assert_trees_close(engine.replica(three.params, index), engine.replica(one.params, 0),
                        rtol=1e-5, atol=1e-6)
    assert three.history[-1]['val_loss'][index] == pytest.approx(
        one.history[-1]['val_loss'][0], rel=1e-5)
  # The seeds are independent runs, not copies.
  assert len({float(v) for v in three.history[-1]['val_loss']}) == 3


def test_resume_reproduces_an_uninterrupted_run():
  full = _fit((0, 1), num_steps=40)
  half = _fit((0, 1), num_steps=20)
  resumed = _fit((0, 1), num_steps=40, run=half.run)
  assert np.asarray(resumed.state.step).tolist() == [40, 40]
  _assert_trees_close(full.state.params, resumed.state.params, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(full.history[-1]['val_loss'], resumed.history[-1]['val_loss'],
                             rtol=1e-6)
  assert [r['step'] for r in full.history] == [10, 20, 30, 40]


def test_interleave_replicas_keeps_each_replicas_rows_together():
  """R = 2 replicas of J = 3 rows in each of D = 2 trees: replica r's rows of tree d land at
  r D J + d J + j, with every leaf of a pytree laid out alike; one tree is returned as is."""
  replicas, rows = 2, 3
  trees = [{'x': np.arange(replicas * rows)[:, None] + 100 * d,
            'y': np.full((replicas * rows, 2, 2), float(d))} for d in range(2)]
  joined = engine.interleave_replicas(trees, replicas)
  assert joined['x'].shape == (12, 1) and joined['y'].shape == (12, 2, 2)
  for r in range(replicas):
    for d in range(2):
      for j in range(rows):
        assert int(joined['x'][r * 6 + d * 3 + j, 0]) == r * rows + j + 100 * d
        assert float(joined['y'][r * 6 + d * 3 + j, 0, 0]) == d
  assert engine.interleave_replicas(trees[:1], replicas) is trees[0]


def test_epoch_batches_are_permutations():
  indices = engine.epoch_batch_indices(jax.random.PRNGKey(0), jnp.asarray(3), num_examples=10,
                                       batch_size=3, num_steps=7)
  indices = np.asarray(indices)
  assert indices.shape == (7, 3)
  # Steps 3, 4, 5 are epoch 1 (3 steps of 3 from 10 examples): nine distinct examples.
  assert len(set(indices[:3].ravel())) == 9
  again = engine.epoch_batch_indices(jax.random.PRNGKey(0), jnp.asarray(5), num_examples=10,
                                     batch_size=3, num_steps=2)
  np.testing.assert_array_equal(np.asarray(again), indices[2:4])


class _Quadratic(struct.PyTreeNode):
  step: jax.Array
  w: jax.Array
  lr: jax.Array


def _quadratic_step(state, batch, key):
  """Gradient descent on ``exp(w^2)``: diverges (overflow) for a large learning rate."""
  del batch, key
  loss, grad = jax.value_and_grad(lambda w: jnp.exp(w**2))(state.w)
  update = -state.lr * grad
  return state.replace(step=state.step + 1, w=state.w + update), {
      'loss': loss, 'update_norm': jnp.abs(update)}


def test_a_non_finite_replica_is_named_and_its_last_good_state_kept():
  state = _Quadratic(step=jnp.zeros(3, jnp.int32), w=jnp.array([0.5, 1.0, 0.5]),
                     lr=jnp.array([0.01, 30.0, 0.01]))
  data = jnp.zeros((3, 8, 1))
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  with pytest.raises(engine.NonFiniteError, match='replica 1 at step') as caught:
    engine.train(_quadratic_step, engine.init_run(state), data, keys, num_steps=50,
                 batch_size=4, steps_per_dispatch=25)
  error = caught.value
  assert error.replicas == [1]
  run = error.run
  halted = np.asarray(run.halted)
  assert halted.tolist() == [False, True, False]
  assert np.all(np.isfinite(np.asarray(run.state.w)))
  # The healthy replicas finished the dispatch; the bad one stopped at its last good step.
  steps = np.asarray(run.state.step)
  assert steps[0] == steps[2] == 25 and steps[1] < 25
  assert error.steps == [int(steps[1]) + 1]


def _diverging_evaluation(state, limit):
  """``w^2``, and NaN once the replica's step passes its ``limit`` (the held-out loss of a
  model that keeps training finitely while its evaluation-mode outputs overflow)."""
  return jnp.where(state.step > limit[0], jnp.nan, state.w**2)


def _weight_snapshot(state):
  return state.w


def test_a_diverged_validation_loss_stops_its_replica_when_asked():
  """Replica 1's held-out loss turns NaN after step 20: with the flag it stops there as early
  stopping would (best snapshot from step 20 kept, the others train on); without it, or when
  no earlier evaluation was finite (replica 2, NaN from the start), the run raises."""
  def run_with(limits, stop):
    state = _Quadratic(step=jnp.zeros(3, jnp.int32), w=jnp.array([0.5, 0.5, 0.5]),
                       lr=jnp.full(3, 0.01))
    return engine.train(
        _quadratic_step, engine.init_run(state, _weight_snapshot), jnp.zeros((3, 8, 1)),
        jax.random.split(jax.random.PRNGKey(0), 3), num_steps=50, batch_size=4,
        val_data=jnp.asarray(limits, jnp.float32)[:, None], evaluate=_diverging_evaluation,
        snapshot=_weight_snapshot, steps_per_dispatch=10, stop_on_nonfinite_validation=stop)

  result = run_with([1e9, 20, 1e9], stop=True)
  steps = np.asarray(result.run.state.step)
  assert steps.tolist() == [50, 30, 50]
  assert np.asarray(result.run.stopped).tolist() == [False, True, False]
  at_20 = [r for r in result.history if r['step'] == 20][0]
  assert float(result.run.best[1]) == pytest.approx(
      float(np.sqrt(at_20['val_loss'][1])), rel=1e-6)
  assert np.isnan([r for r in result.history if r['step'] == 30][0]['val_loss'][1])
  with pytest.raises(engine.NonFiniteError,
                     match=r'validation loss at step 30 in replica\(s\) \[1\]'):
    run_with([1e9, 20, 1e9], stop=False)
  with pytest.raises(engine.NonFiniteError,
                     match=r'validation loss at step 10 in replica\(s\) \[2\]'):
    run_with([1e9, 20, -1], stop=True)


def test_progress_rates_leave_compilation_out(monkeypatch):
  """A step whose tracing takes 1000 s of a patched clock: the compilation line reports
  them, the first dispatch's steps/s (logged and in the history) and its ETA do not."""
  offset = [0.0]
  real_clock = time.perf_counter
  monkeypatch.setattr(time, 'perf_counter', lambda: real_clock() + offset[0])

  def slow_to_compile(state, batch, key):
    offset[0] += 1000.0
    return _quadratic_step(state, batch, key)

  lines = []
  monkeypatch.setattr(engine.logging, 'info', lambda text, *args: lines.append(text % args))
  state = _Quadratic(step=jnp.zeros(1, jnp.int32), w=jnp.ones(1), lr=jnp.full(1, 0.01))
  result = engine.train(slow_to_compile, engine.init_run(state), jnp.zeros((1, 8, 1)),
                        jax.random.split(jax.random.PRNGKey(0), 1), num_steps=20,
                        batch_size=4, steps_per_dispatch=10)
  compiled, first, second = lines
  assert float(re.fullmatch(r'compiled a dispatch of 10 steps in ([\d.]+) s',
                            compiled).group(1)) >= 1000
  assert float(re.search(r'([\d.]+) steps/s', first).group(1)) > 1
  assert result.history[0]['steps_per_sec'] > 1
  assert re.search(r'ETA 00:00:0\d$', first)
  assert 'compiled' not in second


def test_early_stopping_freezes_each_replica_on_its_own():
  result = _fit((0, 1), num_steps=3000, steps_per_dispatch=50, patience=2)
  stopped, steps = result.stopped_early, np.asarray(result.state.step)
  assert stopped.any()
  for index, seed in enumerate((0, 1)):
    vals = [r['val_loss'][index] for r in result.history if np.isfinite(r['val_loss'][index])]
    assert float(result.run.best_val_loss[index]) == pytest.approx(min(vals))
    got = fitting.evaluate(engine.replica(result.params, index),
                           engine.replica(result.model_state, index),
                           jnp.asarray(_moons(seed)[1]),
                           eval_loss=fitting.nll_objective(_DENSITY).eval_loss)
    assert float(got) == pytest.approx(min(vals), rel=1e-5)
    if stopped[index]:
      # Frozen where it stopped while the other replica trained on; a one-seed run of the
      # same seed stops at the same step with the same best parameters (up to float
      # reassociation, which a thousand steps amplify).
      assert steps[index] == 50 * len(vals) < 3000
      alone = _fit((seed,), num_steps=3000, steps_per_dispatch=50, patience=2)
      assert int(alone.state.step[0]) == steps[index]
      _assert_trees_close(engine.replica(result.params, index),
                          engine.replica(alone.params, 0), rtol=1e-2, atol=2e-3)
    else:
      assert steps[index] == 3000 or stopped.all()
  again = _fit((0, 1), num_steps=int(steps.max()), run=result.run, steps_per_dispatch=50,
               patience=2)
  assert not again.history


def test_bad_settings_are_refused():
  state = _Quadratic(step=jnp.zeros(1, jnp.int32), w=jnp.ones(1), lr=jnp.ones(1))
  data, keys = jnp.zeros((1, 8, 1)), jax.random.PRNGKey(0)[None]
  for settings, message in (({'batch_size': 0}, 'batch_size 0'),
                            ({'batch_size': 9}, r'batch_size 9 must be in \[1, 8\]'),
                            ({'steps_per_dispatch': 0}, 'steps_per_dispatch'),
                            ({'num_steps': -10}, 'num_steps')):
    kwargs = {'num_steps': 5, 'batch_size': 4, **settings}
    with pytest.raises(ValueError, match=message):
      engine.train(_quadratic_step, engine.init_run(state), data, keys, **kwargs)
  with pytest.raises(ValueError, match='same number of replicas'):
    engine.train(_quadratic_step, engine.init_run(state), jnp.zeros((2, 8, 1)), keys,
                 num_steps=5, batch_size=4)
