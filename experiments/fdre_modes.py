"""Featurized DRE: the training modes of Sec. 3.3 on two tasks (Fig. 2, 4, 5, 6, 9).

``config.task``:

* ``'gaussians'`` (the motivating example, Sec. 3.1, Fig. 2/5/6):
  ``p = N(0, I)``, ``q = N([3, 3], I)``; error of each mode's ``log r(x)``
  against the true ``log r(x) = -mu^T x + ||mu||^2 / 2``: mean squared error on
  the test points of both sets, of ``p``, of ``q``, and on the test points with
  ``|log r| <= config.overlap_log_ratio`` (``log_ratio_mse_overlap``: where both
  sets have data; elsewhere the logistic loss is flat and ``log r`` is an
  extrapolation);
* ``'mutual_information'`` (Sec. 5.2, App. D.3, Fig. 4/9): pairs of 20-d
  Gaussians with correlation ``rho``; ``D_p`` the joint pairs, ``D_q`` the
  pairs with ``y`` shuffled (product of marginals); MI = mean ``log r`` over
  test joint pairs, against the true ``-d/2 log(1 - rho^2)`` (16.61).

Data -> train -> evaluate -> write: every entry of ``config.modes``
(``name: (mode, alpha)``) trains through :func:`fdre.featurize.fit_log_ratio`
with checkpointed stages ``<name>_flow``, ``<name>_classifier``,
``<name>_joint``; ``results.json`` holds the metrics per mode, with
:func:`diagnostics` (validation losses of the classifier and the flow next to those
of the true densities); plots show the estimated against the true log-ratio and the
encodings of each flow.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
from absl import logging

from experiments import data as data_lib
from experiments import models, plots, training
from experiments import workdir as workdir_lib
from experiments.data import synthetic
from fdre import estimators, featurize, mutual_information
from nflax import fitting

_TRAIN_BLOCKS = {'flow': 'train_flow', 'classifier': 'train_classifier', 'joint': 'train_joint'}


def stage_runner(config: ml_collections.ConfigDict, workdir: str, metrics: workdir_lib.MetricsLog,
                 prefix: str) -> fitting.StageRunner:
  """Runs stage ``s`` as the checkpointed stage ``<prefix>_<s>`` with ``config.train_<s>``."""
  def run(stage, objective, variables, train_data, val_data, key) -> fitting.FitResult:
    return training.train(objective, variables, train_data, val_data,
                          train_config=config[_TRAIN_BLOCKS[stage]], workdir=workdir,
                          stage=f'{prefix}_{stage}', key=key, metrics=metrics)
  return run


def _split(array: np.ndarray, splits) -> tuple[np.ndarray, ...]:
  bounds = np.cumsum((0,) + tuple(splits))
  if bounds[-1] > len(array):
    raise ValueError(f'data.splits {tuple(splits)} need {bounds[-1]} examples, got {len(array)}')
  return tuple(array[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:]))


def load_task(config: ml_collections.ConfigDict) -> dict[str, tuple[np.ndarray, ...]]:
  """``{'p': (train, val, test), 'q': (train, val, test)}`` for ``config.task``."""
  splits = config.data.splits
  total = int(sum(splits))
  if config.task == 'gaussians':
    dataset = data_lib.load(
        'gaussian_mixture_2d', n=total, seed=config.seed, means=((0.0, 0.0), tuple(config.data.mean_q)),
        source_weights=(1.0, 0.0), target_weights=(0.0, 1.0))
    return {'p': _split(dataset.source_x, splits), 'q': _split(dataset.target_x, splits)}
  if config.task == 'mutual_information':
    pairs = data_lib.load('correlated_gaussians', n=total, seed=config.seed, dim=config.data.dim,
                          rho=config.data.rho)
    keys = jax.random.split(jax.random.PRNGKey(config.seed + 1), 3)
    p_sets, q_sets = [], []
    for key, x, y in zip(keys, _split(pairs.x, splits), _split(pairs.y, splits)):
      joint, marginals = mutual_information.joint_and_marginal_samples(
          key, x=jnp.asarray(x), y=jnp.asarray(y))
      p_sets.append(np.asarray(joint))
      q_sets.append(np.asarray(marginals))
    return {'p': tuple(p_sets), 'q': tuple(q_sets)}
  raise ValueError(f"unknown config.task {config.task!r}; available: 'gaussians', "
                   "'mutual_information'")


def true_log_densities(config: ml_collections.ConfigDict,
                       x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(log p(x), log q(x))`` of the task in closed form, each ``(n,)`` for ``(n, d)`` points.

  ``'gaussians'``: ``p = N(0, I)``, ``q = N(mu, I)``. ``'mutual_information'``: ``p`` the
  joint of ``dim`` independent unit-variance pairs with correlation ``rho``, ``q = N(0, I)``
  on all ``2 dim`` coordinates (the product of the marginals).
  """
  x = np.asarray(x, np.float64)
  log_normal = -0.5 * x.shape[1] * np.log(2 * np.pi) - 0.5 * np.sum(x**2, 1)
  if config.task == 'gaussians':
    mean = np.asarray(config.data.mean_q, np.float64)
    return log_normal, log_normal + x @ mean - 0.5 * mean @ mean
  rho, dim = config.data.rho, config.data.dim
  xs, ys = x[:, :dim], x[:, dim:]
  log_joint = np.sum(-np.log(2 * np.pi) - 0.5 * np.log(1 - rho**2)
                     - (xs**2 + ys**2 - 2 * rho * xs * ys) / (2 * (1 - rho**2)), 1)
  return log_joint, log_normal


def true_log_ratio(config: ml_collections.ConfigDict, x: np.ndarray) -> np.ndarray:
  """``log p(x) / q(x)`` of the task, in closed form, ``(n,)``."""
  log_p, log_q = true_log_densities(config, x)
  return log_p - log_q


def diagnostics(config: ml_collections.ConfigDict, fitted: featurize.FittedRatio, *,
                p_val: np.ndarray, q_val: np.ndarray, n_p: int, n_q: int) -> dict[str, float]:
  """Validation losses of a fitted mode next to those of the true densities.

  * ``classifier_val_loss``: the logistic loss ``L_sup`` of the fitted classifier (logit
    ``log r + log(n_p / n_q)``) on ``D_p^val u D_q^val``, and ``bayes_val_loss`` the same
    loss of the Bayes classifier (the true ``log r``): equal values mean a calibrated
    classifier on the data;
  * ``flow_val_nll`` (modes with a flow density): ``-mean log h(x)`` of the flow on the
    validation union, and ``true_mixture_val_nll`` that of the mixture ``pi_p p + pi_q q``
    it should learn (``pi`` the training-set fractions).
  """
  val = np.concatenate([p_val, q_val])
  labels = jnp.concatenate([jnp.ones(len(p_val)), jnp.zeros(len(q_val))])
  shift = np.log(n_p / n_q)
  log_p, log_q = true_log_densities(config, val)
  fitted_logits = np.asarray(fitted.log_ratio(jnp.asarray(val)), np.float64) + shift
  loss = lambda logits: float(estimators.logistic_loss(logits=jnp.asarray(logits), labels=labels))
  out = {'classifier_val_loss': loss(fitted_logits), 'bayes_val_loss': loss(log_p - log_q + shift)}
  if fitted.log_prob is not None and fitted.mode != 'discriminative':
    log_h = np.logaddexp(np.log(n_p / (n_p + n_q)) + log_p, np.log(n_q / (n_p + n_q)) + log_q)
    out['flow_val_nll'] = -float(np.mean(np.asarray(fitted.log_prob(jnp.asarray(val)))))
    out['true_mixture_val_nll'] = -float(np.mean(log_h))
  return out


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every mode of ``config.modes`` on ``config.task``; returns the results."""
  start = time.time()
  sets = load_task(config)
  (p_train, p_val, p_test), (q_train, q_val, q_test) = sets['p'], sets['q']
  metrics = workdir_lib.MetricsLog(workdir)
  flow = models.build_flow(config.flow)
  classifier = featurize.RatioClassifier(hidden=tuple(config.classifier.hidden))
  test = np.concatenate([p_test, q_test])
  truth = true_log_ratio(config, test)
  # Where both sets have data the logistic loss pins log r down; far from both it is an
  # extrapolation that no loss term constrains (|log r| up to ~20 on the toy test points).
  overlap = np.abs(truth) <= config.overlap_log_ratio
  results: dict = {'overlap_fraction': float(np.mean(overlap))}
  fitted_by_mode = {}
  for index, (name, (mode, alpha)) in enumerate(config.modes.items()):
    mode_start = time.time()
    fitted = featurize.fit_log_ratio(
        mode=mode, flow=flow, classifier=classifier, p_train=p_train, q_train=q_train,
        p_val=p_val, q_val=q_val, alpha=alpha, runner=stage_runner(config, workdir, metrics, name),
        key=jax.random.fold_in(jax.random.PRNGKey(config.seed), index))
    estimate = np.asarray(fitted.log_ratio(jnp.asarray(test)), np.float64)
    squared = (estimate - truth)**2
    results[f'log_ratio_mse/{name}'] = float(np.mean(squared))
    results[f'log_ratio_mse_p/{name}'] = float(np.mean(squared[:len(p_test)]))
    results[f'log_ratio_mse_q/{name}'] = float(np.mean(squared[len(p_test):]))
    results[f'log_ratio_mse_overlap/{name}'] = float(np.mean(squared[overlap]))
    results[f'log_ratio_mae/{name}'] = float(np.mean(np.abs(estimate - truth)))
    for key, value in diagnostics(config, fitted, p_val=p_val, q_val=q_val, n_p=len(p_train),
                                  n_q=len(q_train)).items():
      results[f'{key}/{name}'] = value
    if config.task == 'mutual_information':
      results[f'mi/{name}'] = float(mutual_information.mutual_information(
          joint_log_ratio=jnp.asarray(estimate[:len(p_test)])))
    results[f'seconds/{name}'] = time.time() - mode_start
    fitted_by_mode[name] = fitted
  if config.task == 'mutual_information':
    results['true_mi'] = synthetic.correlated_gaussians_true_mi(config.data.dim, config.data.rho)
    results['mi_true_ratio_on_test'] = float(np.mean(truth[:len(p_test)]))
  results['seconds'] = time.time() - start
  logging.info('results: %s', results)
  metrics.write('final', 0, results)
  metrics.close()
  workdir_lib.write_json(os.path.join(workdir, 'results.json'), results)
  _plot(config, fitted_by_mode, test, truth, len(p_test), results, workdir)
  return results


def _plot(config, fitted_by_mode, test, truth, n_p, results, workdir) -> None:
  out = workdir_lib.plots_dir(workdir)
  names = list(fitted_by_mode)
  fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
  lo, hi = float(truth.min()), float(truth.max())
  for ax, name in zip(axes[0], names):
    estimate = np.asarray(fitted_by_mode[name].log_ratio(jnp.asarray(test)))
    ax.scatter(truth[:n_p], estimate[:n_p], s=3, label='x ~ p')
    ax.scatter(truth[n_p:], estimate[n_p:], s=3, label='x ~ q')
    ax.plot([lo, hi], [lo, hi], 'k--', lw=0.8)
    ax.axvspan(-config.overlap_log_ratio, config.overlap_log_ratio, color='0.9', zorder=0)
    ax.set_xlabel('true log r(x)')
    ax.set_ylabel('estimated log r(x)')
    overlap_mse = results[f'log_ratio_mse_overlap/{name}']
    ax.set_title(f"{name}\nMSE {results[f'log_ratio_mse/{name}']:.3g}, on |log r| <= "
                 f"{config.overlap_log_ratio:g} (grey) {overlap_mse:.3g}", fontsize=9)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'log_ratio_vs_truth.png'), dpi=110)
  plt.close(fig)
  if config.task == 'mutual_information':
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.6))
    ax.bar(names, [results[f'mi/{n}'] for n in names])
    ax.axhline(results['true_mi'], color='k', ls='--', label=f"true MI {results['true_mi']:.2f}")
    ax.set_ylabel('estimated MI (nats)')
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'mutual_information.png'), dpi=110)
    plt.close(fig)
    return
  panels = [('data (p: first half, q: second)', test)]
  colours = [np.r_[np.zeros(n_p), np.ones(len(test) - n_p)]]
  for name, fitted in fitted_by_mode.items():
    if fitted.encode is not None:
      panels.append((f'f(x), {name}', np.asarray(fitted.encode(jnp.asarray(test)))))
      colours.append(colours[0])
  plots.scatter_panels(panels, os.path.join(out, 'encodings.png'), colors=colours)
