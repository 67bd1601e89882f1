"""Density estimation: fit a flow (or Gaussian family) by maximum likelihood.

Data -> train -> evaluate -> write:

1. load ``config.data`` from the registry, take the array ``config.data.field``,
   check it (finite, event shape) and split it into train/validation/test;
2. fit the density ``config.model.density`` (:func:`build_models`) by maximum likelihood
   with held-out early stopping, the stage ``config.train.density``
   (:func:`harness.stages.train`, checkpointed and resumable), every seed of
   ``config.seeds`` a replica of one program (:mod:`harness.replicas`);
3. score the test set with the best-on-validation parameters and with the
   closed-form maximum-likelihood Gaussian as a baseline;
4. write ``results.json`` (means over seeds, standard errors, every seed) and plots (data
   vs samples and the learned density of the first seed, every seed's losses).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy import stats

from harness import domains
from harness import models, plots, replicas, stages, config_checks
from harness import workdir as workdir_lib
from nflax import engine, fitting


def load_splits(data_config: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
  """``data_config`` loaded, checked and split into ``train``/``val``/``test`` arrays
  (:func:`harness.domains.load_domain`; ``seed`` draws the data and the split)."""
  domain = domains.load_domain(data_config, data_config.splits, seed)
  return {split: domain[f'{split}_x'] for split in domains.SPLITS}


def gaussian_baseline_nll(train: np.ndarray, test: np.ndarray) -> float:
  """Test NLL (nats/example) of the maximum-likelihood full-covariance Gaussian."""
  flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
  mean = flat_train.mean(0)
  cov = np.cov(flat_train, rowvar=False, bias=True) + 1e-6 * np.eye(flat_train.shape[1])
  return float(-stats.multivariate_normal(mean, cov).logpdf(flat_test).mean())


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The models of ``config``, by role: ``{'density': the density fitted by maximum
  likelihood}``, a :class:`nflax.densities.Density` over events of ``config.data.event_shape``
  (:func:`harness.models.build_density` of ``config.model.density``), unbound."""
  return {'density': models.build_density(config.model.density, config.data.event_shape)}


SIDE_BY_SIDE = ('train.density.lr', 'train.density.weight_decay')
"""Settings of ``config.side_by_side`` this family trains side by side."""


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the density experiment of ``config`` (every seed and setting) in ``workdir``."""
  start = time.time()
  layout = replicas.layout_of(config, SIDE_BY_SIDE)
  splits = layout.tile(replicas.stack([load_splits(config.data, seed)
                                       for seed in layout.seeds]))
  config_checks.check_batch_sizes(
      {'train.density.batch_size': (config.train.density.batch_size,
                                    splits['train'].shape[1])},
      layout.num_replicas)
  density = build_models(config)['density']
  key_init, key_train, key_sample = jnp.moveaxis(
      jax.vmap(lambda key: jax.random.split(key, 3))(layout.keys()), 1, 0)
  variables = jax.jit(jax.vmap(lambda key, x: density.init(key, x[:256])))(
      key_init, jnp.asarray(splits['train']))
  metrics = workdir_lib.MetricsLog(workdir)
  objective = fitting.nll_objective(density)
  result = stages.train(objective, variables, splits['train'], splits['val'],
                        train_config=config.train.density, workdir=workdir, stage='density',
                        keys=key_train, metrics=metrics,
                        per_replica=layout.block_values(config, 'train.density'))
  per_seed = []
  for index in range(layout.num_replicas):
    params, model_state = (engine.replica(result.params, index),
                           engine.replica(result.model_state, index))
    nll = lambda x: float(fitting.evaluate(params, model_state, jnp.asarray(x),
                                           eval_loss=objective.eval_loss))
    per_seed.append({
        'test_nll': nll(splits['test'][index]),
        'val_nll': nll(splits['val'][index]),
        'train_nll': nll(splits['train'][index]),
        'gaussian_test_nll': gaussian_baseline_nll(splits['train'][index],
                                                   splits['test'][index]),
        'steps': int(result.state.step[index]),
        'stopped_early': bool(result.stopped_early[index]),
        'num_params': int(sum(p.size for p in jax.tree.leaves(params))),
    })
  results = replicas.aggregate_layout(per_seed, layout)
  results['seconds'] = time.time() - start
  first = {'params': engine.replica(result.params, 0),
           **engine.replica(result.model_state, 0)}
  workdir_lib.finish_run(workdir, results, metrics, plot=lambda: _plot(
      density, first, engine.replica(splits, 0), key_sample[0], workdir))
  return results


def _plot(density, variables, splits, key, workdir) -> None:
  out = workdir_lib.plots_dir(workdir)
  history = workdir_lib.read_metrics(workdir, 'density')
  series = (plots.replica_series('train NLL', history, 'loss')
            + plots.replica_series('validation NLL', history, 'val_loss'))
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
