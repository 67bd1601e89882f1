"""A training stage (:class:`harness.stages.Stage`) run by :func:`harness.stages.run_stage`:
any step, checkpointed and resumed to the uninterrupted result; gradient descent through
:func:`harness.stages.train` equals :func:`nflax.fitting.fit`."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from harness import stages
from harness import workdir as workdir_lib
from nflax import bijectors, densities, engine, fitting


@struct.dataclass
class _Tracker:
  step: jax.Array
  mean: jax.Array
  noise: jax.Array


def _tracking_step(state: _Tracker, batch: jax.Array, key: jax.Array):
  """Not gradient descent: an exponential moving average of the batch means plus a random
  walk drawn from the step key, so the result depends on every batch and key."""
  mean = 0.9 * state.mean + 0.1 * jnp.mean(batch, axis=0)
  noise = state.noise + 0.01 * jax.random.normal(key, state.noise.shape)
  return (state.replace(step=state.step + 1, mean=mean, noise=noise),
          {'loss': jnp.sum(mean ** 2), 'noise_norm': jnp.linalg.norm(noise)})


def _distance_to_held_out(state: _Tracker, data: jax.Array) -> jax.Array:
  return jnp.sum((state.mean - jnp.mean(data, axis=0)) ** 2)


def _tracker_stage(num_replicas=2) -> stages.Stage:
  data = jax.random.normal(jax.random.PRNGKey(0), (num_replicas, 64, 3)) + jnp.arange(3.0)
  return stages.Stage(
      name='tracker', step_fn=_tracking_step,
      state=_Tracker(step=jnp.zeros((num_replicas,), jnp.int32),
                     mean=jnp.zeros((num_replicas, 3)), noise=jnp.zeros((num_replicas, 3))),
      train_data=data, keys=jax.random.split(jax.random.PRNGKey(1), num_replicas),
      train_config=ml_collections.ConfigDict({
          'num_steps': 12, 'batch_size': 8, 'steps_per_dispatch': 3, 'eval_every': 3,
          'checkpoint_every': 6}),
      val_data=data[:, :16] + 0.5, evaluate=_distance_to_held_out,
      snapshot=lambda state: state.mean,
      annotate=lambda run, record: {**record, 'mean_norm': float(jnp.linalg.norm(
          run.state.mean))})


def _logged(workdir):
  """The stage's records in ``metrics.jsonl`` without their speed."""
  with open(workdir / 'metrics.jsonl') as f:
    return [{name: value for name, value in record.items() if name != 'steps_per_sec'}
            for record in map(json.loads, f) if record['stage'] == 'tracker']


def test_a_custom_stage_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path):
  stage = _tracker_stage()
  straight = stages.run_stage(stage, workdir=str(tmp_path / 'straight'),
                              metrics=workdir_lib.MetricsLog(str(tmp_path / 'straight')))
  partial = stages.run_stage(stage, workdir=str(tmp_path / 'resumed'),
                             metrics=workdir_lib.MetricsLog(str(tmp_path / 'resumed')),
                             until=6)
  assert partial.state.step.tolist() == [6, 6]
  resumed = stages.run_stage(stage, workdir=str(tmp_path / 'resumed'),
                             metrics=workdir_lib.MetricsLog(str(tmp_path / 'resumed')))
  assert [record['step'] for record in resumed.history] == [9, 12], (
      'the second call did not continue from the checkpoint of step 6')
  assert straight.state.step.tolist() == [12, 12]
  jax.tree.map(np.testing.assert_array_equal, straight.run, resumed.run)
  straight_log, resumed_log = _logged(tmp_path / 'straight'), _logged(tmp_path / 'resumed')
  assert [r['step'] for r in resumed_log] == [3, 6, 9, 12]
  assert straight_log == resumed_log  # every metric, the annotation included
  assert 'mean_norm' in resumed_log[-1] and 'noise_norm/replicas' in resumed_log[-1]
  # A finished stage is restored without training.
  again = stages.run_stage(stage, workdir=str(tmp_path / 'resumed'),
                           metrics=workdir_lib.MetricsLog(str(tmp_path / 'resumed')))
  assert again.history == []
  jax.tree.map(np.testing.assert_array_equal, straight.run, again.run)


def test_train_is_fit_as_a_checkpointed_stage(tmp_path):
  density = densities.FlowDensity(bijectors.realnvp(num_blocks=1, hidden=(8,)),
                                  densities.StandardNormal((2,)))
  data = jax.random.normal(jax.random.PRNGKey(0), (2, 80, 2))
  train, val = data[:, :64], data[:, 64:]
  keys = jax.random.split(jax.random.PRNGKey(1), 2)
  variables = jax.vmap(lambda key, x: density.init(key, x[:8]))(keys, train)
  config = ml_collections.ConfigDict({
      'num_steps': 20, 'batch_size': 16, 'lr': 1e-2, 'steps_per_dispatch': 5,
      'eval_every': 5, 'checkpoint_every': 10, 'keep_best': True})
  objective = fitting.nll_objective(density)
  staged = stages.train(objective, variables, train, val, train_config=config,
                        workdir=str(tmp_path), stage='density', keys=keys,
                        metrics=workdir_lib.MetricsLog(str(tmp_path)))
  optimizer = stages.make_optimizer(config)
  fitted = fitting.fit(objective, fitting.init_fit_run(variables, optimizer), train, val,
                       optimizer=optimizer, num_steps=20, batch_size=16, keys=keys,
                       steps_per_dispatch=5, eval_every=5)
  jax.tree.map(np.testing.assert_array_equal, (staged.params, staged.model_state, staged.run),
               (fitted.params, fitted.model_state, fitted.run))
  np.testing.assert_array_equal(staged.history[-1]['val_loss'], fitted.history[-1]['val_loss'])
