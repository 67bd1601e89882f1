"""Featurized DRE for importance-weighted data augmentation (Sec. 5, App. D.5, E.3, E.4, Table 3).

The paper's pipeline (Omniglot, a DAGAN as generator, a CNN downstream) on what this machine
has: the bundled digits ``data.name`` (the configs: the 5,000 MNIST digits,
``'mnist_5000'``; :data:`experiments.fdre.targeted.DIGIT_SETS`), or Omniglot's characters from
the folder ``data.root`` where it is set (:func:`real_examples`), at ``data.size`` pixels a
side, one Real NVP per class as the generator, logistic regression (scikit-learn) downstream;
the models are those of :func:`build_models`. Every seed of ``config.seeds`` is a replica
(:mod:`harness.replicas`: its own dequantisation, split, initialisations and keys) and the
seeds' flows and classifiers train side by side in one program per stage; the downstream
classifiers are fitted seed by seed:

1. split every class into ``data.train_per_class`` real training digits,
   ``data.val_per_class`` validation digits and the rest as the test set (reported only;
   :func:`split_per_class`);
2. fit one flow ``g_c = realnvp o logit`` per class on that class's real training digits, all
   classes in one compiled program (:func:`nflax.fitting.per_class_nll_objective`,
   training block ``config.train.generator``, checkpointed stage ``generators``, early
   stopping on the summed NLL of the validation digits); draw ``synthetic_per_class``
   labelled synthetic digits from each (and
   ``synthetic_val_per_class`` more for the ratio classifiers' validation), at temperature
   ``model.generator.temperature``, clipped to ``[0, 1]``;
3. ratios ``r = p_real / q_synthetic`` at the synthetic digits: IW(x), a classifier on pixels
   (:func:`fdre.featurize.fit_log_ratio` mode ``'baseline'``), and IW(z), Algorithm 1 (mode
   ``'separate'``: a flow fitted on the mixture of real and synthetic training digits, then a
   classifier on ``z = f(x)``); both with the set-size correction and early stopping on real
   + synthetic validation digits (App. D.5);
4. downstream classifiers trained on: real only (data-only), synthetic only, real + synthetic
   (mixture), and real + synthetic with the synthetic digits weighted by IW(x) or IW(z); real
   digits keep weight 1 (App. D.5). Synthetic weights are flattened and self-normalised
   (App. D.1): ``w_i = n * r_i^gamma / sum_j r_j^gamma`` (mean 1); ``gamma`` is chosen from
   ``config.weighting_powers`` by real-validation accuracy, separately for IW(x) and IW(z);
5. test accuracy on the held-out real digits (mean, ``<name>_se`` standard error and
   ``per_seed``: :func:`harness.replicas.aggregate`), with
   diagnostics: balanced accuracy of each ratio classifier on the validation digits, the
   effective sample fraction of the weights, and how often a synthetic digit's class agrees with
   the data-only classifier, unweighted and weighted (do the weights favour well-formed digits?).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
from sklearn import base as sklearn_base
from sklearn import linear_model

from harness import domains, models, plots, replicas, stages, config_checks
from harness.data import paper_data
from experiments.fdre import modes, targeted
from harness import workdir as workdir_lib
from fdre import featurize, weighting
from nflax import bijectors, densities, engine, fitting

METHODS = ('data_only', 'synthetic_only', 'mixture', 'mixture_iw_x', 'mixture_iw_z')
"""Downstream training sets of Table 3, in its column order."""

_SPACES = {'iw_x': 'baseline', 'iw_z': 'separate'}


def real_examples(data: ml_collections.ConfigDict,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
  """The real examples of ``data`` (``config.data``) as ``(n, size * size)`` vectors in
  ``[0, 1)`` (:func:`experiments.fdre.targeted.dequantize_images`, with the key of ``seed``) and
  ``(n,)`` int32 classes, ``size = data.size``.

  With ``data.root`` a folder of Omniglot (``images_background/<alphabet>/<character>/*.png``,
  ``images_evaluation/...``): every character is a class, those of the background set numbered
  first and those of the evaluation set after them (1,623 in all), grey at ``size`` in
  ``[0, 1]`` (:func:`harness.data.paper_data.load_labelled`; white paper and dark strokes, as
  the files have them). Otherwise the digits of
  :func:`experiments.fdre.targeted.dequantized_digits` (the bundled set ``data.name``, or the
  training split of another data set in ``data.root``). ``data.classes`` (a field of the
  ``:paper`` variant; ``None``: every class) keeps the first that many classes: the paper's
  first 1,200 characters of Omniglot (App. D.5).
  """
  if data.get('root') and paper_data.format_of(data.root) == 'omniglot_folders':
    background, evaluation = (
        paper_data.load_labelled(data.root, split, size=data.size, channels=1,
                                 value_range=(0.0, 1.0)) for split in paper_data.SPLITS)
    x = targeted.dequantize_images(np.concatenate([background.images, evaluation.images]), seed)
    labels = np.concatenate([background.labels, evaluation.labels + background.labels.max() + 1])
  else:
    x, labels = targeted.dequantized_digits(data, seed)
  if data.get('classes') is not None:
    keep = labels < data.classes
    x, labels = x[keep], labels[keep]
  return x, labels


def split_per_class(labels: np.ndarray, seed: int, *, train_per_class: int,
                    val_per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Indices of ``train_per_class`` / ``val_per_class`` examples of every class, and the rest
  (the test set): :func:`harness.domains.split_indices_per_class` drawn from ``seed``.

  Raises:
    ValueError: a class has no example left for the test set.
  """
  classes, counts = np.unique(labels, return_counts=True)
  for label, count in zip(classes, counts):
    if count <= train_per_class + val_per_class:
      raise ValueError(f'class {label} has {count} examples; data.train_per_class + '
                       f'data.val_per_class = {train_per_class + val_per_class} leave none to test')
  return tuple(domains.split_indices_per_class(labels, (train_per_class, val_per_class), seed,
                                               'the digits'))


def _logit_flow(config: ml_collections.ConfigDict,
                model: ml_collections.ConfigDict) -> bijectors.Bijector:
  return bijectors.Chain((bijectors.Logit(alpha=config.data.logit_alpha),
                          models.build_flow(model)))


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The models of ``config.model`` by role (modules unbound, classifiers unfitted).

  * ``'generator'``: the density ``g_c`` of one class, ``model.generator``'s flow after the
    exact logit bijector of ``config.data.logit_alpha``, under a standard normal base on
    ``(n, size * size)`` pixels in ``[0, 1)``; one copy per class is fitted
    (:func:`synthesize`), sampled at ``model.generator.temperature``;
  * ``'flow'``: the feature map ``f = flow o logit`` of IW(z) (``model.flow``), ``(n, size *
    size) -> (n, size * size)``, fitted on real + synthetic training digits;
  * ``'classifier'``: :class:`fdre.featurize.RatioClassifier`, an MLP of
    ``model.classifier.hidden`` from ``(n, size * size)`` points (``x`` or ``z``) to ``(n,)``
    logits of real against synthetic;
  * ``'downstream'``: the digit classifier, scikit-learn's logistic regression of
    ``model.downstream`` (``C``, ``max_iter``), unfitted (a fresh clone per fit).
  """
  return {'generator': densities.FlowDensity(
              flow=_logit_flow(config, config.model.generator),
              base=densities.StandardNormal((config.data.size**2,))),
          'flow': _logit_flow(config, config.model.flow),
          'classifier': featurize.RatioClassifier(hidden=tuple(config.model.classifier.hidden)),
          'downstream': linear_model.LogisticRegression(
              C=config.model.downstream.C, max_iter=config.model.downstream.max_iter)}


def _by_class(x: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
  """Examples ``(n, *event)`` with equal class counts -> ``(n / classes, classes, *event)``."""
  return np.stack([x[labels == label] for label in classes], axis=1)


def synthesize(config: ml_collections.ConfigDict, density: densities.FlowDensity,
               real: np.ndarray, labels: np.ndarray, real_val: np.ndarray,
               labels_val: np.ndarray, *, keys: jax.Array, workdir: str, stage: str,
               metrics: workdir_lib.MetricsLog
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Fits one generator flow per class and replica (one checkpointed stage); samples digits.

  Every replica has the same classes, and every class the same number of training and
  validation digits (``split_per_class``).

  Args:
    config: the experiment.
    density: the generator of one class (:func:`build_models`' ``'generator'``).
    real, real_val: ``(R, n, size * size)``, ``(R, m, size * size)`` the replicas' digits.
    labels, labels_val: ``(R, n)``, ``(R, m)`` their classes.
    keys: ``(R, 2)`` the replicas' keys.
    workdir, stage, metrics: where the stage checkpoints and logs.

  Returns:
    ``(train, train_labels, val, val_labels)``: ``synthetic_per_class`` and
    ``synthetic_val_per_class`` samples of every class and replica, ``(R, n', size * size)``
    in ``[0, 1]`` and ``(R, n')`` labels.
  """
  classes = np.unique(labels[0])
  train = np.stack([_by_class(x, y, classes) for x, y in zip(real, labels)])
  val = np.stack([_by_class(x, y, classes) for x, y in zip(real_val, labels_val)])
  config_checks.check_batch_sizes({'train.generator.batch_size': (
      config.train.generator.batch_size, train.shape[1])}, len(keys))
  key_init, key_fit, key_sample = jnp.moveaxis(
      jax.vmap(lambda key: jax.random.split(key, 3))(keys), 1, 0)
  # (R, classes) stacked variables: one flow per class (inner vmap) and replica (outer).
  init = jax.jit(jax.vmap(lambda key, x: jax.vmap(density.init)(
      jax.random.split(key, len(classes)), jnp.swapaxes(x, 0, 1))))(key_init, jnp.asarray(train))
  fitted = stages.train(fitting.per_class_nll_objective(density), init, train, val,
                          train_config=config.train.generator, workdir=workdir, stage=stage,
                          keys=key_fit, metrics=metrics)
  per_class = config.synthetic_per_class + config.synthetic_val_per_class
  z = config.model.generator.temperature * jax.vmap(
      lambda key: jax.random.normal(key, (len(classes), per_class, real.shape[-1])))(key_sample)
  decode = lambda variables, latent: density.apply(variables, latent,
                                                   method=densities.FlowDensity.decode)
  samples = np.clip(np.asarray(jax.jit(jax.vmap(jax.vmap(decode)))(
      {'params': fitted.params, **fitted.model_state}, z)), 0.0, 1.0)  # (R, C, per_class, d)
  sample_labels = np.broadcast_to(classes[None, :, None], samples.shape[:3]).astype(np.int32)
  cut = config.synthetic_per_class
  flat = lambda a: a.reshape(a.shape[:1] + (-1,) + a.shape[3:])
  return (flat(samples[:, :, :cut]), flat(sample_labels[:, :, :cut]),
          flat(samples[:, :, cut:]), flat(sample_labels[:, :, cut:]))


def _fit(downstream: linear_model.LogisticRegression, x, y,
         weights=None) -> linear_model.LogisticRegression:
  return sklearn_base.clone(downstream).fit(x, y, sample_weight=weights)


def _real_splits(config, seed: int) -> dict[str, np.ndarray]:
  """One seed's real examples (:func:`real_examples`): their dequantisation and per-class
  split (drawn from ``seed``)."""
  x, labels = real_examples(config.data, seed)
  train_idx, val_idx, test_idx = split_per_class(
      labels, seed, train_per_class=config.data.train_per_class,
      val_per_class=config.data.val_per_class)
  return {'real': x[train_idx], 'real_y': labels[train_idx], 'val': x[val_idx],
          'val_y': labels[val_idx], 'test': x[test_idx], 'test_y': labels[test_idx]}


def _downstream(config, downstream: linear_model.LogisticRegression, data: dict,
                log_ratios: dict[str, np.ndarray]) -> dict:
  """Step 4-5 for one seed: clones of ``downstream`` fitted to every training set, and their
  accuracies."""
  real, real_y, val, val_y = data['real'], data['real_y'], data['val'], data['val_y']
  synthetic, synthetic_y = data['synthetic'], data['synthetic_y']
  results: dict = {}
  mixture_x = np.concatenate([real, synthetic])
  mixture_y = np.concatenate([real_y, synthetic_y])
  accuracy = lambda model, x, y: float(model.score(x, y))
  classifiers = {'data_only': _fit(downstream, real, real_y),
                 'synthetic_only': _fit(downstream, synthetic, synthetic_y),
                 'mixture': _fit(downstream, mixture_x, mixture_y)}
  agrees = classifiers['data_only'].predict(synthetic) == synthetic_y
  results['synthetic_label_agreement/unweighted'] = float(np.mean(agrees))
  for space, log_ratio in log_ratios.items():
    best = None
    for power in config.weighting_powers:
      weights = np.asarray(weighting.augmentation_weights(jnp.asarray(log_ratio), power=power),
                           np.float64)
      model = _fit(downstream, mixture_x, mixture_y,
                   np.concatenate([np.ones(len(real)), weights]))
      val_accuracy = accuracy(model, val, val_y)
      results[f'val_accuracy/mixture_{space}/power_{power:g}'] = val_accuracy
      if best is None or val_accuracy > best[0]:
        best = (val_accuracy, power, weights, model)
    _, power, weights, classifiers[f'mixture_{space}'] = best
    results[f'selected_power/{space}'] = power
    results[f'effective_sample_fraction/{space}'] = float(
        np.sum(weights)**2 / np.sum(weights**2) / len(weights))
    results[f'synthetic_label_agreement/{space}'] = float(np.average(agrees, weights=weights))
  for method in METHODS:
    results[f'val_accuracy/{method}'] = accuracy(classifiers[method], val, val_y)
    results[f'accuracy/{method}'] = accuracy(classifiers[method], data['test'], data['test_y'])
  return results


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """The Table 3 pipeline, every seed side by side; returns test accuracies over seeds."""
  start = time.time()
  seeds = replicas.seeds_of(config)
  metrics = workdir_lib.MetricsLog(workdir)
  data = replicas.stack([_real_splits(config, seed) for seed in seeds])
  root = replicas.keys(seeds)
  num_classes = len(np.unique(data['real_y'][0]))
  modes.check_sizes(config, data['real'].shape[1] + config.synthetic_per_class * num_classes,
                    len(seeds))
  fold = lambda i: jax.vmap(lambda key: jax.random.fold_in(key, i))(root)
  built = build_models(config)
  synthetic, synthetic_y, synthetic_val, _ = synthesize(
      config, built['generator'], data['real'], data['real_y'], data['val'], data['val_y'],
      keys=fold(1), workdir=workdir, stage='generators', metrics=metrics)
  data.update(synthetic=synthetic, synthetic_y=synthetic_y)
  per_seed = [{} for _ in seeds]
  log_ratios = [{} for _ in seeds]
  for index, (space, mode) in enumerate(_SPACES.items()):
    fitted = featurize.fit_log_ratio(
        mode=mode, flow=built['flow'], classifier=built['classifier'], p_train=data['real'],
        q_train=synthetic, p_val=data['val'], q_val=synthetic_val, keys=fold(2 + index),
        runner=modes.stage_runner(config, workdir, metrics, space))
    on_synthetic, on_val, on_synthetic_val = (
        np.asarray(fitted.log_ratio(x), np.float64) for x in (synthetic, data['val'],
                                                               synthetic_val))
    for r, results in enumerate(per_seed):
      log_ratios[r][space] = on_synthetic[r]
      results[f'ratio_balanced_accuracy/{space}'] = float(
          0.5 * np.mean(on_val[r] > 0) + 0.5 * np.mean(on_synthetic_val[r] < 0))
  for r, results in enumerate(per_seed):
    results.update(_downstream(config, built['downstream'], engine.replica(data, r),
                               log_ratios[r]))
  results = replicas.aggregate(per_seed, seeds)
  results.update({'num_seeds': len(seeds), 'n_real_train': int(data['real'].shape[1]),
                  'n_synthetic_train': int(synthetic.shape[1])})
  results['seconds'] = time.time() - start
  first = {'real': data['real'][0], 'synthetic': synthetic[0], 'log_ratios': log_ratios[0]}
  return workdir_lib.finish_run(workdir, results, metrics, plot=lambda: (
      _plot_samples(config, first, workdir), _plot_accuracy(results, workdir)))


def _plot_samples(config, arrays, workdir, count: int = 12) -> None:
  """Real digits and synthetic digits with the highest and lowest IW(x) / IW(z) weights."""
  side = config.data.size
  images = lambda rows: rows.reshape(len(rows), side, side, 1)
  rows = [('real', images(arrays['real'][::max(1, len(arrays['real']) // count)][:count]))]
  for space, log_ratio in arrays['log_ratios'].items():
    order = np.argsort(-log_ratio)
    label = 'IW(x)' if space == 'iw_x' else 'IW(z)'
    rows.append((f'highest {label}', images(arrays['synthetic'][order[:count]])))
    rows.append((f'lowest {label}', images(arrays['synthetic'][order[-count:]])))
  plots.image_rows(rows, os.path.join(workdir_lib.plots_dir(workdir), 'synthetic_by_weight.png'))


def _plot_accuracy(results, workdir) -> None:
  fig, ax = plt.subplots(figsize=(6.0, 3.4))
  means = [results[f'accuracy/{m}'] for m in METHODS]
  errors = [results[f'accuracy/{m}_se'] for m in METHODS] if results['num_seeds'] > 1 else None
  ax.bar(range(len(METHODS)), means, yerr=errors, color='tab:blue', capsize=3)
  ax.set_title(f"{results['num_seeds']} seed(s); error bars: standard error", fontsize=9)
  ax.set_xticks(range(len(METHODS)))
  ax.set_xticklabels([m.replace('_', ' ') for m in METHODS], rotation=20, ha='right')
  ax.set_ylim(max(0.0, min(means) - 0.1), min(1.0, max(means) + 0.05))
  ax.set_ylabel('test accuracy (real digits)')
  plots.save(fig, os.path.join(workdir_lib.plots_dir(workdir), 'accuracy.png'))
