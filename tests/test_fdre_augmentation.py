"""Importance-weighted augmentation (Table 3 pipeline): weights, per-class splits and generators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments import fdre_augmentation
from nflax import densities, fitting


def test_augmentation_weights_flatten_then_self_normalise_to_mean_one():
  log_r = np.log(np.array([0.5, 1.0, 2.0, 4.0]))
  np.testing.assert_allclose(fdre_augmentation.augmentation_weights(log_r, 0.0), np.ones(4))
  plain = fdre_augmentation.augmentation_weights(log_r, 1.0)
  np.testing.assert_allclose(plain, 4 * np.exp(log_r) / np.exp(log_r).sum(), rtol=1e-5)
  flattened = fdre_augmentation.augmentation_weights(log_r, 0.2)
  np.testing.assert_allclose(flattened, 4 * np.exp(0.2 * log_r) / np.exp(0.2 * log_r).sum(),
                             rtol=1e-5)
  assert np.ptp(flattened) < np.ptp(plain)


def test_split_per_class_is_disjoint_balanced_and_checks_sizes():
  labels = np.repeat(np.arange(3), [6, 7, 8])
  train, val, test = fdre_augmentation.split_per_class(
      labels, np.random.default_rng(0), train_per_class=2, val_per_class=3)
  assert len(set(train) | set(val) | set(test)) == len(labels)
  np.testing.assert_array_equal(np.bincount(labels[train]), [2, 2, 2])
  np.testing.assert_array_equal(np.bincount(labels[val]), [3, 3, 3])
  with pytest.raises(ValueError, match='class 0 has 6 examples'):
    fdre_augmentation.split_per_class(labels, np.random.default_rng(0), train_per_class=3,
                                      val_per_class=3)


def test_per_class_nll_is_the_sum_of_independent_per_class_nlls():
  """Stacked Gaussians: loss = sum_c NLL_c(theta_c) (scipy oracle); d/dtheta_c sees class c only."""
  density = densities.Gaussian(dim=2, covariance='diag')
  data = jax.random.normal(jax.random.PRNGKey(0), (5, 3, 2)) + jnp.arange(3.0)[None, :, None]
  params = jax.vmap(density.init)(jax.random.split(jax.random.PRNGKey(1), 3),
                                  jnp.swapaxes(data, 0, 1))['params']
  params = jax.tree.map(lambda a: a + 0.1 * jnp.arange(3.0).reshape((3,) + (1,) * (a.ndim - 1)),
                        params)
  objective = fdre_augmentation.per_class_nll_objective(density)
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
  grad = lambda d: jax.grad(lambda p: objective.train_loss(p, {}, d, key)[0])(params)
  before, after = grad(data), grad(moved)
  for leaf_before, leaf_after in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
    others = np.array([0, 2])
    np.testing.assert_allclose(leaf_before[others], leaf_after[others], rtol=1e-6)
    assert not np.allclose(leaf_before[1], leaf_after[1])
