"""Featurized DRE for targeted generation on MNIST by SIR (Sec. 5.3, App. D.4, Table 2).

One seed per program (``config.seeds`` holds one seed ``s``,
:func:`harness.replicas.single_seed`; the training sets of the percentages differ in
size, so they train one after the other, each as one replica of the replicated runner).
For each ``perc`` of ``config.percs``:

1. ``D_p`` and ``D_q`` from the digits of ``config.data`` (:func:`dequantized_digits`: MNIST's
   training split from the folder ``data.root`` where it is set, else the bundled digits
   ``data.name`` of :data:`DIGIT_SETS`, the configs' 5,000 MNIST digits ``'mnist_5000'``) at
   ``data.size`` pixels a side, flattened, in ``[0, 1]`` (``'digits'``: p = digits {1, 2},
   q = {0, 7}; ``'background'``:
   p = half the digits, q = the other half with flipped colours), ``|D_q| = perc |D_p|``;
   every cut of the digits (p and q of ``'background'``; each group into 60% for the ratio,
   30% and 10% to train and validate the attribute classifier; per ``perc`` 85% / 15% for
   training and validation) is :func:`harness.domains.split_indices` of a child stream of
   the seed (:data:`SPLIT_STREAMS`);
2. a flow ``f = realnvp o logit`` fitted on ``D_p u D_q`` and a classifier on ``z = f(x)``
   (:func:`fdre.featurize.fit_log_ratio`, mode ``'separate'``: IW(z)), and a classifier on
   ``x`` (mode ``'baseline'``: IW(x)); stages checkpointed as ``perc<i>_<mode>_<stage>``;
3. ``num_proposals`` samples ``z ~ N(0, I)`` decoded by ``f^-1``; SIR draws
   ``num_samples`` of them with weights ``q / h`` (:func:`fdre.weighting.mixture_log_weight`
   with the real set sizes), from the z-classifier on ``z`` and from the x-classifier on the
   decoded ``x``, self-normalised (App. D.4: keys ``iw_z``, ``iw_x``) and flattened to
   ``(q / h)^gamma`` for every ``gamma`` of ``config.flattening_powers`` (App. D.1: keys
   ``iw_z_power_<gamma>``); plain sampling takes the first ``num_samples`` proposals;
4. a separately trained attribute classifier (held-out real digits of both groups, stage
   ``attribute_classifier``) scores every set: the fraction assigned to the target ``q``;
   the effective sample size ``1 / sum w~^2`` of the SIR weights and the number of distinct
   proposals drawn show when a high fraction comes from a few resampled proposals;
   ``plots/samples_perc_<perc>.png`` shows the first samples of every method;
5. the proposal flow's median NLL on its training digits and on the held-out digits of both
   groups (:func:`flow_generalization`): SIR can only reweight what the flow proposes, and a
   flow that has learnt its few training digits proposes little of ``q``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from harness import data as data_lib
from harness import domains, models, plots, replicas
from harness.data import paper_data
from experiments.fdre import modes
from harness import workdir as workdir_lib
from fdre import featurize, weighting
from nflax import bijectors

_DIGITS = {'p': (1, 2), 'q': (0, 7)}

DIGIT_SETS = ('mnist_5000', 'sklearn_digits')
"""The bundled digit sets ``config.data.name`` may name (the sources of
:func:`harness.data.bundled.digit_images`)."""


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The unbound modules of ``config.model``, by role.

  * ``'flow'``: ``f = flow o logit``, the exact logit bijector of ``config.data.logit_alpha``
    then ``models.build_flow(config.model.flow)``, on ``(n, size * size)`` pixels in
    ``[0, 1)`` (fitted on ``D_p u D_q``: the proposal ``h`` and the features of IW(z));
  * ``'classifier'``: :class:`fdre.featurize.RatioClassifier`, an MLP of
    ``config.model.classifier.hidden`` from ``(n, size * size)`` points to ``(n,)`` logits:
    the ratio classifiers on ``z`` (IW(z)) and on ``x`` (IW(x)) and the attribute classifier.
  """
  return {'flow': bijectors.Chain((bijectors.Logit(alpha=config.data.logit_alpha),
                                   models.build_flow(config.model.flow))),
          'classifier': featurize.RatioClassifier(hidden=tuple(config.model.classifier.hidden))}


def dequantize_images(images: np.ndarray, seed: int) -> np.ndarray:
  """``(n, size, size, 1)`` images in ``[0, 1]`` as ``(n, size * size)`` vectors in ``[0, 1)``.

  Pixels are quantised to 256 levels and uniformly dequantised once with the key of ``seed``
  (App. D.1 (a)), so a flow's likelihood cannot collapse onto exact pixel values.
  """
  levels = np.round(images.reshape(len(images), -1) * 255).astype(np.int32)
  return np.asarray(bijectors.dequantize(jax.random.PRNGKey(seed), levels))


def dequantized_digits(data: ml_collections.ConfigDict,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
  """The digits of ``data`` (``config.data``) as ``(n, size * size)`` vectors in ``[0, 1)``
  (:func:`dequantize_images`) and ``(n,)`` int32 labels, ``size = data.size``.

  With ``data.root`` set, the training split of the labelled image set in that folder (MNIST's
  IDX files: 60,000 digits), brought to the stand-in's form (``size`` a side, grey, ``[0, 1]``:
  :func:`harness.data.paper_data.load_labelled`); else the bundled digit set ``data.name``
  (:data:`DIGIT_SETS`) at that size.

  Raises:
    ValueError: without a root, ``data.name`` is not one of :data:`DIGIT_SETS`; the root holds
      image pairs.
  """
  if data.get('root'):
    images, labels = paper_data.load_labelled(data.root, 'train', size=data.size, channels=1,
                                              value_range=(0.0, 1.0))
  elif data.name not in DIGIT_SETS:
    raise ValueError(f'config.data.name {data.name!r} is not a bundled digit set; available: '
                     f'{DIGIT_SETS}')
  else:
    images, labels = data_lib.load('digit_images', source=data.name, size=data.size, seed=seed)
  return dequantize_images(images, seed), labels


SPLIT_STREAMS = {'background': 0, 'p': 1, 'q': 2, 'p_perc': 3, 'q_perc': 4}
"""The child streams ``(seed, stream[, perc index])`` of the seed that draw each cut."""


def _cut(array: np.ndarray, sizes, seed, what: str) -> list[np.ndarray]:
  """``array`` cut into parts of ``sizes`` examples (:func:`harness.domains.split_indices`)."""
  return [array[part] for part in domains.split_indices(len(array), sizes, seed, what)]


def _fractions(array: np.ndarray, fractions) -> list[int]:
  return [int(f * len(array)) for f in fractions]


def _groups(config, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """All examples of ``p`` and of ``q`` as ``(n, size * size)`` vectors in ``[0, 1)``."""
  flat, labels = dequantized_digits(config.data, seed)
  if config.scenario == 'digits':
    return flat[np.isin(labels, _DIGITS['p'])], flat[np.isin(labels, _DIGITS['q'])]
  if config.scenario == 'background':
    half = len(flat) // 2
    p, q = _cut(flat, (half, len(flat) - half), (seed, SPLIT_STREAMS['background']),
                f"'{config.data.name}'")
    return p, 1.0 - q
  raise ValueError(f"unknown config.scenario {config.scenario!r}; available: 'digits', "
                   "'background'")


def _fit_one(mode: str, flow, classifier, p_train, q_train, p_val, q_val, key,
             runner) -> featurize.FittedRatio:
  """:func:`fdre.featurize.fit_log_ratio` of one replica: ``(n, d)`` sets and one key in,
  the replicated maps out (callers add and take the replica axis of size 1)."""
  return featurize.fit_log_ratio(
      mode=mode, flow=flow, classifier=classifier, p_train=p_train[None], q_train=q_train[None],
      p_val=p_val[None], q_val=q_val[None], keys=key[None], runner=runner)


def _one(fn, x) -> np.ndarray:
  """A replicated map of one replica applied to ``(n, ...)`` points."""
  return np.asarray(fn(jnp.asarray(x)[None]))[0]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Targeted generation for every ``perc``; returns target fractions per method."""
  start = time.time()
  seed = replicas.single_seed(config)
  p_all, q_all = _groups(config, seed)
  # Held-out real digits of both groups train the attribute classifier (label 1 = target q).
  p_ratio, p_attr, p_attr_val = _cut(p_all, _fractions(p_all, (0.6, 0.3, 0.1)),
                                     (seed, SPLIT_STREAMS['p']), 'the digits of p')
  q_ratio, q_attr, q_attr_val = _cut(q_all, _fractions(q_all, (0.6, 0.3, 0.1)),
                                     (seed, SPLIT_STREAMS['q']), 'the digits of q')
  modes.check_sizes(config, len(p_attr) + len(q_attr))
  metrics = workdir_lib.MetricsLog(workdir)
  built = build_models(config)
  flow, classifier = built['flow'], built['classifier']
  attribute = _fit_one('baseline', None, classifier, q_attr, p_attr, q_attr_val, p_attr_val,
                       jax.random.PRNGKey(seed),
                       modes.stage_runner(config, workdir, metrics, 'attribute'))
  target_fraction = lambda x: float(np.mean(_one(attribute.log_ratio, x) > 0))
  results: dict = {'held_out_target_fraction/q': target_fraction(q_attr_val),
                   'held_out_target_fraction/p': target_fraction(p_attr_val)}
  drawn_by_perc = {}
  for index, perc in enumerate(config.percs):
    p_train, p_val = _cut(p_ratio, _fractions(p_ratio, (0.85, 0.15)),
                          (seed, SPLIT_STREAMS['p_perc'], index), 'the ratio digits of p')
    q_count = max(int(perc * len(p_train)), 10)
    # q_count training digits of q (at most all of them), 15% of the drawn ones to validate.
    q_drawn = min(int(q_count / 0.85), len(q_ratio))
    q_train, q_val = _cut(q_ratio, (int(0.85 * q_drawn), int(0.15 * q_drawn)),
                          (seed, SPLIT_STREAMS['q_perc'], index), 'the ratio digits of q')
    modes.check_sizes(config, len(p_train) + len(q_train))
    key = jax.random.fold_in(jax.random.PRNGKey(seed), index + 1)
    fitted = {mode: _fit_one(
        mode, flow, classifier, p_train, q_train, p_val, q_val, jax.random.fold_in(key, i),
        modes.stage_runner(config, workdir, metrics, f'perc{index}_{mode}'))
        for i, mode in enumerate(('separate', 'baseline'))}
    z = jax.random.normal(jax.random.fold_in(key, 7), (config.num_proposals, p_train.shape[1]))
    x = _one(fitted['separate'].decode, z)
    # The classifiers estimate log p/q; the target is q, so the SIR weight is q / h.
    log_q_over_p = {'iw_z': -_one(fitted['separate'].log_ratio, x),
                    'iw_x': -_one(fitted['baseline'].log_ratio, x)}
    name = f'perc_{perc:g}'
    drawn = {'regular': x[:config.num_samples]}
    for method, log_r in log_q_over_p.items():
      log_w = weighting.mixture_log_weight(log_ratio=jnp.asarray(log_r), n_p=len(q_train),
                                           n_q=len(p_train))
      for power in (1.0,) + tuple(config.flattening_powers):
        # power 1: self-normalised weights as in App. D.4; below 1: flattened (App. D.1).
        label = method if power == 1.0 else f'{method}_power_{power:g}'
        flat = weighting.flatten(log_w, power=power)
        idx = np.asarray(weighting.sir_indices(jax.random.fold_in(key, 11), log_weights=flat,
                                               num_samples=config.num_samples))
        drawn[label] = x[idx]
        # Degenerate weights resample few proposals: the effective sample size
        # 1 / sum w~^2 and the number of distinct proposals drawn show it.
        normalized = np.asarray(weighting.self_normalize(flat), np.float64)
        results[f'{name}/{label}_effective_sample_size'] = float(1.0 / np.sum(normalized**2))
        results[f'{name}/{label}_distinct_samples'] = int(len(np.unique(idx)))
    for label, samples in drawn.items():
      results[f'{name}/{label}'] = target_fraction(samples)
    drawn_by_perc[name] = drawn
    results[f'{name}/n_p'], results[f'{name}/n_q'] = len(p_train), len(q_train)
    results.update(flow_generalization(fitted['separate'], np.concatenate([p_train, q_train]),
                                       np.concatenate([p_val, q_val]), name))
    metrics.write('perc', index, {k: v for k, v in results.items() if k.startswith(name)})
  results['seconds'] = time.time() - start
  return workdir_lib.finish_run(workdir, results, metrics, plot=lambda: [
      _plot_samples(config, drawn, name, workdir) for name, drawn in drawn_by_perc.items()])


def flow_generalization(fitted: featurize.FittedRatio, train: np.ndarray, held_out: np.ndarray,
                        name: str) -> dict[str, float]:
  """How the proposal flow ``h`` (fitted on ``D_p u D_q``) describes digits it never saw: the
  median of ``-log h(x)`` (nats per digit) over its ``(n, d)`` training digits
  (``<name>/flow_nll_train``) and over the ``(m, d)`` held-out digits of both groups that
  selected it (``<name>/flow_nll_held_out``), and their difference ``<name>/flow_nll_gap``
  (about 0 for a flow that generalises; far above 0 when it has learnt its training digits
  and proposes little else). Medians, since an over-fitted flow gives some held-out digits an
  infinite NLL."""
  train_nll = float(np.median(-_one(fitted.log_prob, train)))
  held_out_nll = float(np.median(-_one(fitted.log_prob, held_out)))
  return {f'{name}/flow_nll_train': train_nll, f'{name}/flow_nll_held_out': held_out_nll,
          f'{name}/flow_nll_gap': held_out_nll - train_nll}


def _plot_samples(config, drawn: dict[str, np.ndarray], name: str, workdir: str,
                  count: int = 12) -> None:
  """The first ``count`` samples of every method (repeats show degenerate SIR weights)."""
  side = config.data.size
  titles = {'regular': 'regular', 'iw_x': 'SIR IW(x)', 'iw_z': 'SIR IW(z)'}
  rows = []
  for label, samples in drawn.items():
    method, _, power = label.partition('_power_')
    title = titles[method] + (f', r^{power}' if power else '')
    rows.append((title, samples[:count].reshape(-1, side, side, 1)))
  plots.image_rows(rows, os.path.join(workdir_lib.plots_dir(workdir), f'samples_{name}.png'))
