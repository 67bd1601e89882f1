"""AlignFlow for unsupervised domain adaptation between digit domains (Sec. 5.2, Table 2, App. B.2).

The paper replaces CyCADA's CycleGAN with AlignFlow, translates the labelled source
images into the target domain and trains the target classifier on the translations
(MNIST <-> USPS, SVHN -> MNIST; 32x32). This is the pixel-level part of that pipeline with
a simple classifier (no feature-level or semantic-consistency losses). Domains A and B
are two labelled digit sets at one resolution and number of channels (``config.data.a`` /
``config.data.b``, e.g. the ``digit_images`` data set: the bundled MNIST digits and
scikit-learn's 8x8 digits, or the papers' MNIST, USPS and SVHN from a domain's ``root``, grey
or RGB); one AlignFlow model serves both directions, A -> B and B -> A.

Data -> train -> select -> evaluate -> write:

1. load both domains with labels, split each into train / validation / test
   (:func:`harness.domains.load_domain`) and map the ``[0, 1]`` pixels to ``[-1, 1]``;
2. train the translators of ``config.modes`` / ``config.lams`` (hybrid AlignFlow by
   default; adversarial-only, MLE-only and the CycleGAN baseline are settings of the
   same code in :mod:`experiments.alignflow.translation`) on the UNLABELLED training images of both
   domains; every ``config.train.flows.select_every`` steps (a candidate), translate the
   labelled source training images of each direction into its target domain;
3. for each direction, fit the classifier ``config.model.classifier`` (logistic regression)
   on each candidate's translations with the source labels and pick the candidate (``lam``,
   step count) with the best accuracy on the labelled target VALIDATION split;
4. report the accuracy on the target TEST split of the picked candidate's classifier,
   of ``source_only`` (fitted on the raw source images) and of ``target_only`` (fitted on
   the labelled target training images, the ceiling), McNemar's exact test of the
   translated classifier against each reference, and the cycle errors of each final
   AlignFlow model (:func:`experiments.alignflow.evaluation.cycle_report`);
5. write ``results.json`` and ``plots/translation_<direction>.png``: source images, their
   translations by the picked candidate, target images.

Each candidate's translations are cached in ``<workdir>/translations/<stage>_step<k>.npz``
next to the stage checkpoints, so a rerun resumes without retraining (the checkpoints keep
only the latest states, not every candidate's).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from experiments.alignflow import evaluation, translation
from harness import classification
from harness import plots, replicas, config_checks
from harness import workdir as workdir_lib
from harness.domains import load_domain
from nflax import engine

DIRECTIONS = {'a_to_b': ('a', 'b'), 'b_to_a': ('b', 'a')}
"""Direction -> (source domain, target domain)."""


def load_domains(config: ml_collections.ConfigDict) -> dict[str, dict[str, np.ndarray]]:
  """Both labelled domains, split, with pixels mapped from ``[0, 1]`` to ``[-1, 1]``.

  Returns:
    ``{'a': domain, 'b': domain}``, each with ``{train,val,test}_x`` ``(n, H, W, C)`` in
    ``[-1, 1]`` and ``{train,val,test}_labels`` ``(n,)``.
  """
  domains = {}
  for index, name in enumerate(('a', 'b')):
    domain = load_domain(config.data[name], config.data[f'splits_{name}'],
                                  replicas.single_seed(config) + index)
    for split in ('train', 'val', 'test'):
      x = domain[f'{split}_x']
      if x.ndim != 4 or x.min() < 0.0 or x.max() > 1.0:
        raise ValueError(f'domain {name.upper()} ({config.data[name].name}): expected images '
                         f'(n, H, W, C) in [0, 1], got shape {x.shape}, range '
                         f'[{x.min():.3g}, {x.max():.3g}]')
      domain[f'{split}_x'] = 2.0 * x - 1.0
    domains[name] = domain
  if domains['a']['train_x'].shape[1:] != domains['b']['train_x'].shape[1:]:
    raise ValueError(f"domains A and B differ in image shape: {domains['a']['train_x'].shape[1:]}"
                     f" vs {domains['b']['train_x'].shape[1:]}; give both the same size")
  return domains


def build_classifier(block: ml_collections.ConfigDict) -> Callable[..., np.ndarray]:
  """The target classifier of ``block`` (``config.model.classifier``): ``hits(train_images,
  train_labels, test_images, test_labels)``, the ``(n_test,)`` hits of a logistic regression
  with L2 penalty ``1 / block.c`` fitted on the training images
  (:func:`harness.classification.classifier_hits`)."""
  return functools.partial(classification.classifier_hits, c=block.c)


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The models of ``config``, by role, unbound: ``'alignflow'`` (the two flows with their
  shared latent space) and ``'critic'`` (the architecture of ``C_A`` and ``C_B``) as in
  :func:`experiments.alignflow.translation.build_models`, and ``'classifier'``
  (:func:`build_classifier`), fitted on translated source images and scored on the target."""
  return translation.build_roles(
      config.model, {**translation.MODEL_BUILDERS, 'classifier': build_classifier})


def _selection_steps(train_config: ml_collections.ConfigDict) -> list[int]:
  """The step counts at which candidates are taken: every ``select_every`` steps."""
  every = train_config.select_every
  if every < 1 or train_config.num_steps % every:
    raise ValueError(f'train.flows.select_every ({every}) must be >= 1 and divide '
                     f'train.flows.num_steps ({train_config.num_steps})')
  return list(range(every, train_config.num_steps + 1, every))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the adaptation experiment in ``workdir``; returns the results."""
  start = time.time()
  domains = load_domains(config)
  data = {'train_a': domains['a']['train_x'], 'train_b': domains['b']['train_x']}
  batch = config.train.flows.batch_size
  config_checks.check_batch_sizes({'train.flows.batch_size': (batch, min(
      len(data['train_a']), len(data['train_b'])))})
  metrics = workdir_lib.MetricsLog(workdir)
  models = build_models(config)
  critic, classifier = models['critic'], models['classifier']
  critic_optimizer = translation.optimizer_of(config, 'critic')
  init_batch = (jnp.asarray(data['train_a'][None, :batch]),
                jnp.asarray(data['train_b'][None, :batch]))
  replicated_data = {name: array[None] for name, array in data.items()}
  key = jax.random.PRNGKey(replicas.single_seed(config))

  def hits(images, labels, target, split):
    return classifier(images, labels, target[f'{split}_x'], target[f'{split}_labels'])

  results: dict = {f'num_{split}_{name}': len(domains[name][f'{split}_x'])
                   for name in ('a', 'b') for split in ('train', 'val', 'test')}
  test_hits: dict[str, dict[str, np.ndarray]] = {}
  for direction, (source, target) in DIRECTIONS.items():
    test_hits[direction] = {
        'source_only': hits(domains[source]['train_x'], domains[source]['train_labels'],
                            domains[target], 'test'),
        'target_only': hits(domains[target]['train_x'], domains[target]['train_labels'],
                            domains[target], 'test')}

  candidates: dict[str, dict[str, np.ndarray]] = {}
  val_accuracy: dict[str, dict[str, float]] = {direction: {} for direction in DIRECTIONS}
  for index, (stage, mode, lam) in enumerate(translation.training_stages(config)):
    if mode == 'cyclegan':
      raise ValueError("config.modes: 'cyclegan' is not an AlignFlow mode of this experiment")
    stage_start = time.time()
    model_key, critic_key_a, critic_key_b, train_key = jax.random.split(
        jax.random.fold_in(key, index), 4)
    model, objective, optimizer, train_critics, state = translation.init_stage(
        config, models, mode, lam, init_batch, critic_optimizer=critic_optimizer,
        model_key=model_key[None], critic_keys=(critic_key_a[None], critic_key_b[None]))

    def train_to(state, until, stage=stage, objective=objective, optimizer=optimizer,
                 train_critics=train_critics, train_key=train_key):
      return translation.train_stage(
          config, workdir, stage, state, replicated_data, model=model, objective=objective,
          critic=critic, optimizer=optimizer, critic_optimizer=critic_optimizer,
          train_critics=train_critics, key=train_key[None], metrics=metrics, until=until)

    for step in _selection_steps(config.train.flows):
      candidate = f'{stage}@{step}'
      cache = os.path.join(workdir, 'translations', f'{stage}_step{step}.npz')
      if os.path.exists(cache):  # a resumed run: this candidate is done
        with np.load(cache) as cached:
          translated = dict(cached)
      else:
        state = train_to(state, step)
        trained = engine.replica(state, 0)
        a_to_b, b_to_a = evaluation.translators(model, {'params': trained.params,
                                                        **trained.model_state})
        translated = {'a_to_b': np.asarray(a_to_b(domains['a']['train_x'])),
                      'b_to_a': np.asarray(b_to_a(domains['b']['train_x']))}
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.savez(cache, **translated)
      candidates[candidate] = translated
      record = {}
      for direction, (source, target) in DIRECTIONS.items():
        accuracy = float(np.mean(hits(translated[direction], domains[source]['train_labels'],
                                      domains[target], 'val')))
        val_accuracy[direction][candidate] = accuracy
        record[f'val_accuracy_{direction}'] = accuracy
        results[f'val_accuracy/{direction}/{candidate}'] = accuracy
      metrics.write(f'{stage}/selection', step, record)
      logging.info('[%s] validation accuracies %s', candidate, record)
    if int(state.step[0]) < config.train.flows.num_steps:  # every candidate was cached
      state = train_to(state, config.train.flows.num_steps)  # restores the final checkpoint
    reports, _ = evaluation.cycle_report(
        model, {'params': state.params, **state.model_state}, domains['a']['test_x'][None],
        domains['b']['test_x'][None])
    for name, value in reports[0].items():
      results[f'{name}/{stage}'] = value
    results[f'seconds/{stage}'] = time.time() - stage_start

  figures = []
  for direction, (source, target) in DIRECTIONS.items():
    picked = max(val_accuracy[direction], key=val_accuracy[direction].get)
    results[f'selected/{direction}'] = picked
    test_hits[direction]['alignflow'] = hits(candidates[picked][direction],
                                             domains[source]['train_labels'], domains[target],
                                             'test')
    for method, method_hits in test_hits[direction].items():
      results[f'accuracy/{direction}/{method}'] = float(np.mean(method_hits))
    for reference in ('source_only', 'target_only'):
      results[f'mcnemar_p/{direction}/alignflow_vs_{reference}'] = classification.mcnemar_p_value(
          test_hits[direction]['alignflow'], test_hits[direction][reference])
    figures.append(functools.partial(_plot, workdir, direction, domains[source]['train_x'],
                                     candidates[picked][direction], domains[target]['train_x'],
                                     picked))
  results['seconds'] = time.time() - start
  return workdir_lib.finish_run(workdir, results, metrics,
                                plot=lambda: [figure() for figure in figures])


def _plot(workdir, direction, source, translated, target, picked, count=12) -> str:
  source_name, target_name = (name.upper() for name in DIRECTIONS[direction])
  return plots.image_rows(
      [(f'source {source_name}', source[:count]),
       (f'G_{source_name}->{target_name}\n[{picked}]', translated[:count]),
       (f'target {target_name}', target[:count])],
      os.path.join(workdir_lib.plots_dir(workdir), f'translation_{direction}.png'),
      low=-1.0, high=1.0)
