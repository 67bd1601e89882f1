"""Density estimation: fit a flow (or Gaussian family) by maximum likelihood.

Data -> train -> evaluate -> write:

1. load ``config.data`` from the registry, take the array ``config.data.field``,
   check it (finite, event shape) and split it into train/validation/test;
2. fit ``config.model`` by maximum likelihood with held-out early stopping
   (:func:`experiments.training.train`, checkpointed and resumable);
3. score the test set with the best-on-validation parameters and with the
   closed-form maximum-likelihood Gaussian as a baseline;
4. write ``results.json`` and plots (data vs samples, learned density, loss).
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from scipy import stats

from experiments import data as data_lib
from experiments import models, plots, training
from experiments import workdir as workdir_lib
from nflax import fitting


def load_splits(data_config: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
  """Loads, checks and splits ``data_config`` into ``train``/``val``/``test`` arrays."""
  dataset = data_lib.load(data_config.name, **data_config.options)
  fields = getattr(dataset, '_fields', ())
  if data_config.field not in fields:
    raise ValueError(f"data set '{data_config.name}' has no field "
                     f"'{data_config.field}'; its fields are {list(fields)}")
  x = data_lib.validate(getattr(dataset, data_config.field),
                        f'{data_config.name}.{data_config.field}',
                        data_config.get('event_shape'))
  x = np.asarray(x, np.float32)
  n_train, n_val, n_test = data_config.splits
  if n_train + n_val + n_test > len(x):
    raise ValueError(f"data.splits {tuple(data_config.splits)} need "
                     f"{n_train + n_val + n_test} examples; '{data_config.name}' has {len(x)}")
  order = np.random.default_rng(seed).permutation(len(x))
  x = x[order]
  return {'train': x[:n_train], 'val': x[n_train:n_train + n_val],
          'test': x[n_train + n_val:n_train + n_val + n_test]}


def gaussian_baseline_nll(train: np.ndarray, test: np.ndarray) -> float:
  """Test NLL (nats/example) of the maximum-likelihood full-covariance Gaussian."""
  flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
  mean = flat_train.mean(0)
  cov = np.cov(flat_train, rowvar=False, bias=True) + 1e-6 * np.eye(flat_train.shape[1])
  return float(-stats.multivariate_normal(mean, cov).logpdf(flat_test).mean())


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the density experiment of ``config`` in ``workdir``; returns the results."""
  start = time.time()
  splits = load_splits(config.data, config.seed)
  event_shape = splits['train'].shape[1:]
  density = models.build_density(config.model, event_shape)
  key_init, key_train, key_sample = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  variables = density.init(key_init, jnp.asarray(splits['train'][:256]))
  metrics = workdir_lib.MetricsLog(workdir)
  objective = fitting.nll_objective(density)
  result = training.train(objective, variables, splits['train'], splits['val'],
                          train_config=config.train, workdir=workdir, stage='density',
                          key=key_train, metrics=metrics)
  best = {'params': result.params, **result.model_state}
  nll = lambda x: float(fitting.evaluate(result.params, result.model_state, jnp.asarray(x),
                                         eval_loss=objective.eval_loss))
  results = {
      'test_nll': nll(splits['test']),
      'val_nll': nll(splits['val']),
      'train_nll': nll(splits['train']),
      'gaussian_test_nll': gaussian_baseline_nll(splits['train'], splits['test']),
      'steps': int(result.state.step),
      'stopped_early': bool(result.stopped_early),
      'num_params': int(sum(p.size for p in jax.tree.leaves(result.params))),
      'seconds': time.time() - start,
  }
  logging.info('results: %s', results)
  metrics.write('final', results['steps'], results)
  metrics.close()
  workdir_lib.write_json(os.path.join(workdir, 'results.json'), results)
  _plot(density, best, splits, key_sample, workdir)
  return results


def _plot(density, variables, splits, key, workdir) -> None:
  out = workdir_lib.plots_dir(workdir)
  history = workdir_lib.read_metrics(workdir, 'density')
  steps = np.array([r['step'] for r in history])
  series = [('train NLL', steps, np.array([r['train_loss'] for r in history]))]
  val = [(r['step'], r['val_loss']) for r in history if 'val_loss' in r]
  if val:
    series.append(('validation NLL', *map(np.array, zip(*val))))
  plots.curves(series, os.path.join(out, 'loss.png'), ylabel='NLL (nats)')
  test = splits['test']
  if test.ndim != 2:
    return
  samples = np.asarray(density.apply(variables, key, len(test),
                                     method=type(density).sample))
  plots.scatter_panels([('test data', test), ('model samples', samples)],
                       os.path.join(out, 'samples.png'))
  if test.shape[1] == 2:
    log_prob = jax.jit(lambda x: density.apply(variables, x, method=type(density).log_prob))
    plots.density_panels([('learned density', lambda g: log_prob(jnp.asarray(g)))],
                         test, os.path.join(out, 'density.png'))
