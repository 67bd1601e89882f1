"""Fitting objectives through the engine: batches, MLE quality, per-class objectives.

Resume, early stopping, the NaN guard and replicas are tested in tests/test_engine.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats
from sklearn import datasets as sk_datasets

from nflax import bijectors, densities, engine, fitting


def _moons(n, seed):
  x, _ = sk_datasets.make_moons(n_samples=n, noise=0.05, random_state=seed)
  return x.astype(np.float32)


def _gaussian_nll(train, test):
  mean, cov = train.mean(0), np.cov(train, rowvar=False, bias=True)
  return -stats.multivariate_normal(mean, cov).logpdf(test).mean()


def _fit(density, train, val, num_steps, **kwargs):
  """One replica of ``fitting.fit`` (the engine's replicated API, R = 1)."""
  opt = optax.adam(1e-3)
  variables = engine.add_replica_axis(density.init(jax.random.PRNGKey(0), train[:8]))
  result = fitting.fit(fitting.nll_objective(density), fitting.init_fit_run(variables, opt),
                       train[None], val[None], optimizer=opt, num_steps=num_steps,
                       batch_size=64, keys=jax.random.PRNGKey(1)[None], **kwargs)
  return engine.replica(result.params, 0), engine.replica(result.model_state, 0)


def test_mean_over_batches_handles_uneven_chunks():
  data = jnp.arange(10.0)[:, None]
  got = fitting.mean_over_batches(lambda b: b[:, 0], data, batch_size=4)
  assert float(got) == pytest.approx(4.5)


def test_independent_parts_are_sampled_separately():
  a, b = jnp.arange(10.0)[:, None], 100 + jnp.arange(7.0)[:, None]
  data = engine.Independent((a[None], b[None]))
  seen = []

  def step(state, batch, key):
    del key
    return state.replace(step=state.step + 1), {'a': batch.parts[0][:, 0],
                                                 'b': batch.parts[1][:, 0]}

  state = fitting.FitState(step=jnp.zeros(1, jnp.int32), params={}, model_state={},
                           opt_state={})
  engine.train(step, engine.init_run(state), data, jax.random.PRNGKey(0)[None], num_steps=7,
               batch_size=3, steps_per_dispatch=7,
               callback=lambda run, record: seen.append(record))
  _, metrics = engine.dispatch(engine.init_run(state), data, jax.random.PRNGKey(0)[None],
                               step_fn=step, batch_size=3, num_steps=7)
  seen_a = set(np.asarray(metrics['a']).ravel().tolist())
  seen_b = set(np.asarray(metrics['b']).ravel().tolist())
  assert np.asarray(metrics['a']).shape == (7, 1, 3)
  assert seen_a <= set(range(10)) and seen_b <= set(range(100, 107))
  # B has 7 examples, 2 batches of 3 an epoch: its first epoch (steps 0, 1) has 6 distinct.
  assert len(set(np.asarray(metrics['b'])[:2].ravel().tolist())) == 6
  assert len(seen_b) == 7 and len(seen_a) >= 9 and len(seen) == 1


@pytest.mark.parametrize('flow', ['realnvp', 'maf'])
def test_flows_beat_the_gaussian_on_moons(flow):
  if flow == 'realnvp':
    bijector = bijectors.realnvp(num_blocks=4, hidden=(64, 64))
  else:
    bijector = bijectors.maf(num_blocks=5, hidden=(128, 128), batch_norm=True)
  density = densities.FlowDensity(bijector, densities.StandardNormal((2,)))
  train, val, test = _moons(2000, 0), _moons(500, 1), _moons(1000, 2)
  params, model_state = _fit(density, train, val, 1500, steps_per_dispatch=250)
  nll = float(fitting.evaluate(params, model_state, jnp.asarray(test),
                               eval_loss=fitting.nll_objective(density).eval_loss))
  baseline = _gaussian_nll(train, test)
  # Two moons with noise 0.05 have a held-out NLL near 0.3 nats; the Gaussian ~1.9.
  assert nll < baseline - 0.8, (nll, baseline)


def test_per_class_nll_is_the_sum_of_independent_per_class_nlls():
  """Stacked Gaussians: loss = sum_c NLL_c(theta_c) (scipy oracle); d/dtheta_c sees class c only."""
  density = densities.Gaussian(dim=2, covariance='diag')
  data = jax.random.normal(jax.random.PRNGKey(0), (5, 3, 2)) + jnp.arange(3.0)[None, :, None]
  params = jax.vmap(density.init)(jax.random.split(jax.random.PRNGKey(1), 3),
                                  jnp.swapaxes(data, 0, 1))['params']
  params = jax.tree.map(lambda a: a + 0.1 * jnp.arange(3.0).reshape((3,) + (1,) * (a.ndim - 1)),
                        params)
  objective = fitting.per_class_nll_objective(density)
  loss, _ = objective.train_loss(params, {}, data, jax.random.PRNGKey(3))
  expected = 0.0
  for c in range(3):
    own = jax.tree.map(lambda a: a[c], params)
    mean, scale = density.apply({'params': own}, method=densities.Gaussian._mean_and_scale)
    cov = np.asarray(scale @ scale.T)
    log_pdf = stats.multivariate_normal(np.asarray(mean), cov).logpdf(np.asarray(data[:, c]))
    expected -= log_pdf.mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(fitting.evaluate(params, {}, data, eval_loss=objective.eval_loss),
                             expected, rtol=1e-5)
  moved = data.at[:, 1].add(1.0)
  key = jax.random.PRNGKey(2)
  grad = jax.jit(lambda d: jax.grad(lambda p: objective.train_loss(p, {}, d, key)[0])(params))
  before, after = grad(data), grad(moved)
  for leaf_before, leaf_after in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
    others = np.array([0, 2])
    np.testing.assert_allclose(leaf_before[others], leaf_after[others], rtol=1e-6)
    assert not np.allclose(leaf_before[1], leaf_after[1])


def test_map_over_batches_keeps_per_example_shapes_and_refuses_empty_input():
  """Chunks of 3 over 7 examples (the last padded) give each example's own output, of any
  trailing shape; a chunk larger than the data is the data; no examples is an error."""
  x = jnp.arange(14.0).reshape(7, 2)
  per_example = lambda batch: jnp.stack([batch, 2 * batch], axis=1)  # (batch, 2, 2)
  for batch_size in (3, 7, 50):
    np.testing.assert_array_equal(fitting.map_over_batches(per_example, x, batch_size),
                                  per_example(x))
  with pytest.raises(ValueError, match='examples'):
    fitting.map_over_batches(per_example, x[:0], 3)
  with pytest.raises(ValueError, match='batch_size'):
    fitting.map_over_batches(per_example, x, 0)
