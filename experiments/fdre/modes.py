"""Featurized DRE: the training modes of Sec. 3.3 on two tasks (Fig. 2, 4, 5, 6, 9).

The task is the data set ``config.data.name`` (:data:`DATA_SETS`):

* ``'gaussians'`` (the motivating example, Sec. 3.1, Fig. 2/5/6):
  ``p = N(0, I)``, ``q = N(mu, I)``, ``mu = config.data.mean_q`` (``[3, 3]``), drawn as the
  two components of ``gaussian_mixture_2d``; error of each mode's ``log r(x)``
  against the true ``log r(x) = -mu^T x + ||mu||^2 / 2``: mean squared error on
  the test points of both sets, of ``p``, of ``q``, and on the test points with
  ``|log r| <= config.overlap_log_ratio`` (``log_ratio_mse_overlap``: where both
  sets have data; elsewhere the logistic loss is flat and ``log r`` is an
  extrapolation), in bands of ``|log r|`` (:data:`LOG_RATIO_BANDS`), and the
  1-Wasserstein distance between the estimated and true ``log r``'s distributions
  (``log_ratio_w1``: Fig. 2's overlaid histograms); with ``config.oracle_controls``
  the control :func:`oracle_controls` (the same classifier taught the true ratio on
  ``x`` and on the separate flow's ``z``, and the slope of ``log r`` in ``z``; the
  separate mode on the exact flow :func:`exact_mixture_flow`), and
  ``train_points_across_boundary`` (Sec. 3.1's failure on ``x`` needs none);
* ``'correlated_gaussians'``, mutual information (Sec. 5.2, App. D.3, Fig. 4/9): pairs of
  ``config.data.dim``-d Gaussians with correlation ``config.data.rho``; ``D_p`` the joint
  pairs, ``D_q`` the pairs with ``y`` shuffled (product of marginals); MI = mean ``log r``
  over test joint pairs, against the true ``-d/2 log(1 - rho^2)`` (16.61).

Data -> train -> evaluate -> write: every seed of ``config.seeds`` is a replica
(:mod:`harness.replicas`) with its own data draw (:func:`load_task`), initialisation
and keys, all trained side by side in one program per stage; every entry ``(name, mode,
alpha)`` of :func:`mode_entries` (``config.modes``, ``'joint'`` once per alpha of
``config.joint_alphas``) trains the models of :func:`build_models` through
:func:`fdre.featurize.fit_log_ratio`, with the training blocks ``config.train.flow``,
``.classifier`` and ``.joint`` as checkpointed stages ``<name>_flow``, ``<name>_classifier``,
``<name>_joint``; ``results.json`` holds the metrics per mode (mean over seeds,
``<metric>_se``, ``per_seed``), with :func:`diagnostics` (validation losses of the classifier
and the flow next to those of the true densities); plots show seed 0's estimated against
true log-ratio and the encodings of each flow, and every seed's loss curves of every stage.
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
from scipy import special, stats

from harness import data as data_lib
from harness import domains, models, plots, replicas, stages, config_checks
from harness import workdir as workdir_lib
from harness.data import synthetic
from fdre import estimators, featurize, mutual_information
from nflax import fitting

STAGES = ('flow', 'classifier', 'joint')
"""The stages of :func:`fdre.featurize.fit_log_ratio`, each trained with
``config.train.<stage>``."""

DATA_SETS = ('gaussians', 'correlated_gaussians')
"""The names ``config.data.name`` may take (module docstring)."""


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The unbound modules of ``config.model``, by role.

  * ``'flow'``: the feature map ``f`` (a :mod:`nflax` bijector, ``(n, d) -> (n, d)``) of the
    separate, joint and discriminative modes, ``models.build_flow(config.model.flow)``;
  * ``'classifier'``: :class:`fdre.featurize.RatioClassifier`, an MLP of
    ``config.model.classifier.hidden`` mapping ``(n, d)`` points (``x`` or ``z = f(x)``) to
    ``(n,)`` logits of ``P(x ~ p)``.
  """
  return {'flow': models.build_flow(config.model.flow),
          'classifier': featurize.RatioClassifier(hidden=tuple(config.model.classifier.hidden))}


def mode_entries(config: ml_collections.ConfigDict) -> list[tuple[str, str, float]]:
  """``(name, mode, alpha)`` of every mode trained, in the order of ``config.modes``.

  ``'joint'`` trains once per alpha of ``config.joint_alphas`` (Eq. 1's weight of ``L_sup``),
  named ``joint_alpha_<alpha>`` with ``_`` for the point (``joint_alpha_0_9``); every other
  mode once, named by the mode, with ``alpha = 1`` (unused).
  """
  entries = []
  for mode in config.modes:
    if mode not in featurize.MODES:
      raise ValueError(f'config.modes: unknown mode {mode!r}; available: {featurize.MODES}')
    if mode == 'joint':
      entries += [('joint_alpha_' + str(alpha).replace('.', '_'), 'joint', alpha)
                  for alpha in config.joint_alphas]
    else:
      entries.append((mode, mode, 1.0))
  return entries


def stage_runner(config: ml_collections.ConfigDict, workdir: str, metrics: workdir_lib.MetricsLog,
                 prefix: str) -> fitting.StageRunner:
  """The FDRE families' stages through :func:`harness.stages.stage_runner`: stage
  ``s`` as the checkpointed stage ``<prefix>_<s>`` with the training block
  ``config.train.<s>``."""
  return stages.stage_runner(workdir, metrics, lambda stage: config.train[stage], prefix)


def check_sizes(config: ml_collections.ConfigDict, num_train: int,
                num_replicas: int = 1) -> None:
  """The batch size of every FDRE training block ``config.train.<stage>`` of
  :data:`STAGES` against the ``num_train`` labelled examples of p and q its stages draw
  from, before they train."""
  config_checks.check_batch_sizes(
      {f'train.{stage}.batch_size': (config.train[stage].batch_size, num_train)
       for stage in STAGES if stage in config.train}, num_replicas)


def _data_name(config: ml_collections.ConfigDict) -> str:
  if config.data.name not in DATA_SETS:
    raise ValueError(f'config.data.name {config.data.name!r} is not a data set of fdre.modes; '
                     f'available: {DATA_SETS}')
  return config.data.name


def load_task(config: ml_collections.ConfigDict,
              seed: int = 0) -> dict[str, tuple[np.ndarray, ...]]:
  """``{'p': (train, val, test), 'q': (train, val, test)}`` of ``config.data`` for one seed.

  ``seed`` is the replica's: the synthetic data are drawn with
  :func:`harness.replicas.data_seed` ``(config.data.seed, seed)`` (``config.data.seed``
  defaults to 0), so seed 0 draws the data of the one-seed run, and cut into
  ``config.data.splits`` by :func:`harness.domains.split_indices` (one permutation, drawn
  from the child stream ``(draw seed, 1)`` apart from the data's draw, for p and q alike).
  """
  splits = config.data.splits
  total = int(sum(splits))
  draw = replicas.data_seed(config.data.get('seed', 0), seed)
  parts = domains.split_indices(total, splits, (draw, 1), f"'{_data_name(config)}'")
  if config.data.name == 'gaussians':
    dataset = data_lib.load(
        'gaussian_mixture_2d', n=total, seed=draw, means=((0.0, 0.0), tuple(config.data.mean_q)),
        source_weights=(1.0, 0.0), target_weights=(0.0, 1.0))
    return {'p': tuple(dataset.source_x[part] for part in parts),
            'q': tuple(dataset.target_x[part] for part in parts)}
  pairs = data_lib.load(config.data.name, n=total, seed=draw, dim=config.data.dim,
                        rho=config.data.rho)
  keys = jax.random.split(jax.random.PRNGKey(draw + 1), 3)
  p_sets, q_sets = [], []
  for key, part in zip(keys, parts):
    joint, marginals = mutual_information.joint_and_marginal_samples(
        key, x=jnp.asarray(pairs.x[part]), y=jnp.asarray(pairs.y[part]))
    p_sets.append(np.asarray(joint))
    q_sets.append(np.asarray(marginals))
  return {'p': tuple(p_sets), 'q': tuple(q_sets)}


def true_log_densities(config: ml_collections.ConfigDict,
                       x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(log p(x), log q(x))`` of the task in closed form, each ``(n,)`` for ``(n, d)`` points.

  ``'gaussians'``: ``p = N(0, I)``, ``q = N(mu, I)``. ``'correlated_gaussians'``: ``p`` the
  joint of ``dim`` independent unit-variance pairs with correlation ``rho``, ``q = N(0, I)``
  on all ``2 dim`` coordinates (the product of the marginals).
  """
  x = np.asarray(x, np.float64)
  log_normal = -0.5 * x.shape[1] * np.log(2 * np.pi) - 0.5 * np.sum(x**2, 1)
  if _data_name(config) == 'gaussians':
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


def diagnostics(config: ml_collections.ConfigDict, *, log_ratio_val: np.ndarray,
                log_prob_val: np.ndarray | None, p_val: np.ndarray, q_val: np.ndarray,
                n_p: int, n_q: int) -> dict[str, float]:
  """Validation losses of one replica's fitted mode next to those of the true densities.

  Args:
    config: the task.
    log_ratio_val: ``(m_p + m_q,)`` the fitted ``log r`` at ``[p_val; q_val]``.
    log_prob_val: ``(m_p + m_q,)`` the flow's ``log h`` there (``None``: no flow density).
    p_val, q_val: ``(m_p, d)``, ``(m_q, d)`` the replica's validation samples.
    n_p, n_q: the training-set sizes (the classifier's prior shift).

  Returns:
    * ``classifier_val_loss``: the logistic loss ``L_sup`` of the fitted classifier (logit
      ``log r + log(n_p / n_q)``) on ``D_p^val u D_q^val``, and ``bayes_val_loss`` the same
      loss of the Bayes classifier (the true ``log r``): equal values mean a calibrated
      classifier on the data;
    * ``flow_val_nll`` (with ``log_prob_val``): ``-mean log h(x)`` of the flow on the
      validation union, and ``true_mixture_val_nll`` that of the mixture
      ``pi_p p + pi_q q`` it should learn (``pi`` the training-set fractions).
  """
  val = np.concatenate([p_val, q_val])
  labels = jnp.concatenate([jnp.ones(len(p_val)), jnp.zeros(len(q_val))])
  shift = np.log(n_p / n_q)
  log_p, log_q = true_log_densities(config, val)
  fitted_logits = np.asarray(log_ratio_val, np.float64) + shift
  loss = lambda logits: float(estimators.logistic_loss(logits=jnp.asarray(logits), labels=labels))
  out = {'classifier_val_loss': loss(fitted_logits), 'bayes_val_loss': loss(log_p - log_q + shift)}
  if log_prob_val is not None:
    log_h = np.logaddexp(np.log(n_p / (n_p + n_q)) + log_p, np.log(n_q / (n_p + n_q)) + log_q)
    out['flow_val_nll'] = -float(np.mean(np.asarray(log_prob_val, np.float64)))
    out['true_mixture_val_nll'] = -float(np.mean(log_h))
  return out


LOG_RATIO_BANDS = (0.0, 2.5, 5.0, 10.0, np.inf)
"""Edges of the bands of ``|true log r|`` of ``log_ratio_mse_band_<lo>_<hi>``: the error
curve from the overlap of the two sets (small ``|log r|``) to the tails of one set only."""


def band_name(lo: float, hi: float) -> str:
  """``'0_2.5'``, ..., ``'10_inf'``: the suffix of a band's metric."""
  return f'{lo:g}_{hi:g}'


def _mode_metrics(config, name: str, estimate: np.ndarray, truth: np.ndarray,
                  overlap: np.ndarray, n_p_test: int) -> dict[str, float]:
  """Errors of one replica's ``(n,)`` estimate of ``log r`` on its test points.

  Besides the mean squared errors (all points, per set, the overlap, bands of ``|log r|`` on
  the toy task):
  ``log_ratio_w1``, the 1-Wasserstein distance between the empirical distributions of the
  estimated and of the true ``log r`` over all test points. That is what the paper's Fig. 2
  compares: histograms of the estimates over samples of both sets against the histogram of
  the true ``log r`` (the authors' notebook, ``notebooks/toy-gmm.ipynb`` of
  ermongroup/f-dre), not a point-by-point error.
  """
  squared = (estimate - truth)**2
  out = {f'log_ratio_mse/{name}': float(np.mean(squared)),
         f'log_ratio_mse_p/{name}': float(np.mean(squared[:n_p_test])),
         f'log_ratio_mse_q/{name}': float(np.mean(squared[n_p_test:])),
         f'log_ratio_mse_overlap/{name}': float(np.mean(squared[overlap])),
         f'log_ratio_mae/{name}': float(np.mean(np.abs(estimate - truth))),
         f'log_ratio_w1/{name}': float(stats.wasserstein_distance(estimate, truth))}
  if config.data.name == 'gaussians':  # MI's 40-d log-ratios lie almost all in the last band
    size = np.abs(truth)
    for lo, hi in zip(LOG_RATIO_BANDS[:-1], LOG_RATIO_BANDS[1:]):
      band = (size >= lo) & (size < hi)
      out[f'log_ratio_mse_band_{band_name(lo, hi)}/{name}'] = (
          float(np.mean(squared[band])) if band.any() else float('nan'))
  if config.data.name == 'correlated_gaussians':
    mi = float(mutual_information.mutual_information(
        joint_log_ratio=jnp.asarray(estimate[:n_p_test])))
    out[f'mi/{name}'] = mi
    out[f'mi_abs_error/{name}'] = abs(mi - synthetic.correlated_gaussians_true_mi(
        config.data.dim, config.data.rho))
  return out


def bayes_posterior(config: ml_collections.ConfigDict, x: np.ndarray, n_p: int,
                    n_q: int) -> np.ndarray:
  """``P(y = 1 | x)`` of the Bayes classifier of ``n_p`` samples of p against ``n_q`` of q:
  ``sigmoid(log r(x) + log(n_p / n_q))``, ``(R, n)`` float32 for ``(R, n, d)`` points."""
  logits = np.stack([true_log_ratio(config, points) for points in x]) + np.log(n_p / n_q)
  return special.expit(logits).astype(np.float32)


def log_ratio_slope_z(config: ml_collections.ConfigDict, encode, decode,
                      x: np.ndarray) -> np.ndarray:
  """``|grad_z log r(f^{-1}(z))|`` at ``z = f(x)``, ``(R, n)``, for the Gaussian task.

  What a classifier on the flow's features must fit is ``log r o f^{-1}``; its slope next to
  the input-space slope ``|grad_x log r| = ||mu||`` says how much steeper the flow makes the
  target (by the chain rule ``grad_z = J_{f^{-1}}(z)^T grad_x``, one Jacobian-vector product
  of the fitted decoder per latent coordinate; batch norm in evaluation mode keeps the points
  independent).
  """
  if config.data.name != 'gaussians':
    raise ValueError(f"log_ratio_slope_z needs config.data.name 'gaussians', got "
                     f'{config.data.name!r}')
  grad_x = -jnp.asarray(config.data.mean_q, jnp.float32)  # log r = -mu^T x + ||mu||^2 / 2
  z = jnp.asarray(encode(x))
  columns = []
  for j in range(z.shape[-1]):
    tangent = jnp.zeros_like(z).at[..., j].set(1.0)
    _, dx = jax.jvp(lambda zz: jnp.asarray(decode(zz)), (z,), (tangent,))
    columns.append(dx @ grad_x)
  return np.sqrt(sum(np.asarray(column, np.float64)**2 for column in columns))


def exact_mixture_flow(config: ml_collections.ConfigDict, x: np.ndarray, n_p: int,
                       n_q: int) -> tuple[np.ndarray, np.ndarray]:
  """An exact flow of the toy task's training mixture and the slope of its ``log r`` in ``z``.

  The mixture the separate flow is fitted to is ``h = pi_p N(0, I) + pi_q N(mu, I)``
  (``pi`` the training-set fractions). With ``u = x . mu / ||mu||`` and ``v`` the coordinate
  orthogonal to ``mu`` (``N(0, 1)`` under both components, independent of ``u``),
  ``T(x) = (Phi^{-1}(pi_p Phi(u) + pi_q Phi(u - ||mu||)), v)`` maps ``h`` exactly onto
  ``N(0, I)``: the flow that maximum likelihood aims at, with no fitting error (any other
  exact flow differs from it by a map that keeps ``N(0, I)``). The CDF is inverted in log
  space (``ndtri_exp`` of the smaller tail), so points far in either tail stay finite.

  Args:
    config: the task (``config.data.name == 'gaussians'``).
    x: ``(..., n, 2)`` points.
    n_p, n_q: the training-set sizes (the mixture's weights).

  Returns:
    ``(z, slope)``: ``z = T(x)`` ``(..., n, 2)`` float32 and ``|d log r / d z|`` at those
    points ``(..., n)`` (``log r = -||mu|| u + ||mu||^2 / 2`` depends on ``z_1`` only:
    ``||mu|| phi(z_1) / h_u(u)``, ``h_u`` the mixture's density of ``u``).
  """
  if config.data.name != 'gaussians':
    raise ValueError(f"exact_mixture_flow needs config.data.name 'gaussians', got "
                     f'{config.data.name!r}')
  mean = np.asarray(config.data.mean_q, np.float64)
  gap = float(np.linalg.norm(mean))
  along = mean / gap
  across = np.array([-along[1], along[0]])
  x = np.asarray(x, np.float64)
  u, v = x @ along, x @ across
  log_pi_p, log_pi_q = np.log(n_p / (n_p + n_q)), np.log(n_q / (n_p + n_q))
  log_cdf = np.logaddexp(log_pi_p + special.log_ndtr(u), log_pi_q + special.log_ndtr(u - gap))
  log_sf = np.logaddexp(log_pi_p + special.log_ndtr(-u), log_pi_q + special.log_ndtr(gap - u))
  z1 = np.where(log_cdf < log_sf, special.ndtri_exp(np.minimum(log_cdf, log_sf)),
                -special.ndtri_exp(np.minimum(log_cdf, log_sf)))
  log_normal = lambda t: -0.5 * t**2 - 0.5 * np.log(2 * np.pi)
  log_density_u = np.logaddexp(log_pi_p + log_normal(u), log_pi_q + log_normal(u - gap))
  slope = np.exp(np.log(gap) + log_normal(z1) - log_density_u)
  return np.stack([z1, v], -1).astype(np.float32), slope


def oracle_controls(config: ml_collections.ConfigDict, separate: featurize.FittedRatio,
                    classifier, *, p_train, q_train, p_val, q_val, test, truth, overlap,
                    n_p_test: int, root_keys, workdir: str, metrics: workdir_lib.MetricsLog,
                    baseline_keys=None) -> list[dict[str, float]]:
  """Control of the machinery: the same classifier and training block, taught the true ratio
  or given an exact flow, and the baseline without weight decay.

  ``oracle_x`` and ``oracle_z`` train the classifier with the Bayes posterior
  (:func:`bayes_posterior`) as soft labels of the training and validation points, on ``x``
  and on the separate flow's ``z = f(x)``: no label noise, so what is left of their error is
  what the classifier and its recipe make of the target ``log r`` (on ``x``) and
  ``log r o f^{-1}`` (on ``z``). ``separate_exact_flow`` is the separate mode with the
  flow replaced by the exact one (:func:`exact_mixture_flow`): the same classifier, recipe
  and labels (``D_p`` 1, ``D_q`` 0) on ``T(x)``, so it is what Algorithm 1 gives with no
  flow-fitting error at all; ``oracle_exact_flow`` the same taught the Bayes posterior.
  ``baseline_no_weight_decay`` is the baseline mode (its keys ``baseline_keys``, so the same
  initialisation and batches as the baseline) with ``config.train.classifier.weight_decay``
  0: the authors' released input-space classifier config (``mlp_x.yaml`` of ermongroup/f-dre)
  has no weight decay, their feature-space one (``mlp_z.yaml``) and Table 6 5e-4.
  Their metrics are those of the modes (``log_ratio_mse_overlap/oracle_z``, ...), with
  ``log_ratio_slope_z_overlap/separate`` the median of :func:`log_ratio_slope_z` on the
  overlap test points, ``log_ratio_slope_z_overlap/exact_flow`` that of the exact flow and
  ``log_ratio_slope_x`` ``||mu||``. Stages ``<name>_classifier``.
  """
  n_p, n_q = p_train.shape[1], q_train.shape[1]
  train, val = featurize.labelled_union(p_train, q_train), featurize.labelled_union(p_val, q_val)
  soft = {'train': bayes_posterior(config, train['x'], n_p, n_q),
          'val': bayes_posterior(config, val['x'], n_p, n_q)}
  exact = lambda x: exact_mixture_flow(config, x, n_p, n_q)[0]
  learned = lambda x: np.asarray(separate.encode(x))
  results = [{} for _ in range(len(truth))]
  # (name, points, Bayes posterior as labels); the fold-in index keeps the first two controls'
  # keys, and so their numbers, as they were before the exact-flow controls.
  controls = (('oracle_x', lambda x: x, True), ('oracle_z', learned, True),
              ('separate_exact_flow', exact, False), ('oracle_exact_flow', exact, True))
  for index, (name, points, taught) in enumerate(controls):
    keys = jax.vmap(lambda key: jax.random.split(jax.random.fold_in(key, 1000 + index)))(
        root_keys)
    labels = soft if taught else {'train': train['label'], 'val': val['label']}
    log_ratio, _ = featurize.fit_classifier(
        classifier=classifier, train={'x': points(train['x']), 'label': labels['train']},
        val={'x': points(val['x']), 'label': labels['val']}, keys=keys,
        runner=stage_runner(config, workdir, metrics, name), n_p=n_p, n_q=n_q)
    estimates = np.asarray(log_ratio(points(test)), np.float64)
    for r, out in enumerate(results):
      out.update(_mode_metrics(config, name, estimates[r], truth[r], overlap[r], n_p_test))
  no_decay = ml_collections.ConfigDict(config.train.classifier.to_dict())
  no_decay.weight_decay = 0.0
  name = 'baseline_no_weight_decay'
  if baseline_keys is None:
    baseline_keys = jax.vmap(lambda key: jax.random.fold_in(key, 1000 + len(controls)))(
        root_keys)
  unregularised = featurize.fit_log_ratio(
      mode='baseline', flow=None, classifier=classifier, p_train=p_train, q_train=q_train,
      p_val=p_val, q_val=q_val, keys=baseline_keys,
      runner=stages.stage_runner(workdir, metrics, lambda stage: no_decay, name))
  estimates = np.asarray(unregularised.log_ratio(test), np.float64)
  for r, out in enumerate(results):
    out.update(_mode_metrics(config, name, estimates[r], truth[r], overlap[r], n_p_test))
  slopes = log_ratio_slope_z(config, separate.encode, separate.decode, test)
  exact_slopes = exact_mixture_flow(config, test, n_p, n_q)[1]
  for r, out in enumerate(results):
    out['log_ratio_slope_z_overlap/separate'] = float(np.median(slopes[r][overlap[r]]))
    out['log_ratio_slope_z_overlap/exact_flow'] = float(np.median(exact_slopes[r][overlap[r]]))
    out['log_ratio_slope_x'] = float(np.linalg.norm(config.data.mean_q))
  return results


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every mode of :func:`mode_entries` on ``config.data`` for every seed; returns the
  results."""
  start = time.time()
  seeds = replicas.seeds_of(config)
  sets = replicas.stack([load_task(config, seed) for seed in seeds])
  (p_train, p_val, p_test), (q_train, q_val, q_test) = sets['p'], sets['q']
  n_p, n_q, n_p_test = p_train.shape[1], q_train.shape[1], p_test.shape[1]
  check_sizes(config, n_p + n_q, len(seeds))
  separate = [name for name, mode, _ in mode_entries(config) if mode == 'separate']
  if config.get('oracle_controls', False) and (config.data.name != 'gaussians' or not separate):
    raise ValueError("config.oracle_controls needs config.data.name 'gaussians' and a "
                     'separate mode in config.modes')
  metrics = workdir_lib.MetricsLog(workdir)
  built = build_models(config)
  flow, classifier = built['flow'], built['classifier']
  test = np.concatenate([p_test, q_test], axis=1)  # (R, n_test, d)
  val = np.concatenate([p_val, q_val], axis=1)
  truth = np.stack([true_log_ratio(config, x) for x in test])
  # Where both sets have data the logistic loss pins log r down; far from both it is an
  # extrapolation that no loss term constrains (|log r| up to ~20 on the toy test points).
  overlap = np.abs(truth) <= config.overlap_log_ratio
  per_seed = [{'overlap_fraction': float(np.mean(overlap[r]))} for r in range(len(seeds))]
  if config.data.name == 'gaussians':
    # Sec. 3.1's failure of the classifier on x needs D_p and D_q without points on each
    # other's side of the Bayes boundary (log r = 0); how many the training sets hold:
    for r, results in enumerate(per_seed):
      results['train_points_across_boundary'] = float(
          np.sum(true_log_ratio(config, p_train[r]) < 0)
          + np.sum(true_log_ratio(config, q_train[r]) > 0))
  seconds, fitted_by_mode, keys_by_mode = {}, {}, {}
  root_keys = replicas.keys(seeds)
  for index, (name, mode, alpha) in enumerate(mode_entries(config)):
    mode_start = time.time()
    keys_by_mode[mode] = jax.vmap(lambda key: jax.random.fold_in(key, index))(root_keys)
    fitted = featurize.fit_log_ratio(
        mode=mode, flow=flow, classifier=classifier, p_train=p_train, q_train=q_train,
        p_val=p_val, q_val=q_val, alpha=alpha, runner=stage_runner(config, workdir, metrics, name),
        keys=keys_by_mode[mode])
    estimates = np.asarray(fitted.log_ratio(test), np.float64)
    val_log_ratio = np.asarray(fitted.log_ratio(val), np.float64)
    val_log_prob = (np.asarray(fitted.log_prob(val), np.float64)
                    if fitted.log_prob is not None and mode != 'discriminative' else None)
    for r, results in enumerate(per_seed):
      results.update(_mode_metrics(config, name, estimates[r], truth[r], overlap[r], n_p_test))
      for key, value in diagnostics(
          config, log_ratio_val=val_log_ratio[r],
          log_prob_val=None if val_log_prob is None else val_log_prob[r],
          p_val=p_val[r], q_val=q_val[r], n_p=n_p, n_q=n_q).items():
        results[f'{key}/{name}'] = value
    seconds[f'seconds/{name}'] = time.time() - mode_start
    fitted_by_mode[name] = fitted
  if config.get('oracle_controls', False):
    control_start = time.time()
    for results, controls in zip(per_seed, oracle_controls(
        config, fitted_by_mode[separate[0]], classifier, p_train=p_train, q_train=q_train,
        p_val=p_val, q_val=q_val, test=test, truth=truth, overlap=overlap, n_p_test=n_p_test,
        root_keys=root_keys, workdir=workdir, metrics=metrics,
        baseline_keys=keys_by_mode.get('baseline'))):
      results.update(controls)
    seconds['seconds/oracle_controls'] = time.time() - control_start
  if config.data.name == 'correlated_gaussians':
    for r, results in enumerate(per_seed):
      results['mi_true_ratio_on_test'] = float(np.mean(truth[r, :n_p_test]))
  results = replicas.aggregate(per_seed, seeds)
  if config.data.name == 'correlated_gaussians':
    results['true_mi'] = synthetic.correlated_gaussians_true_mi(config.data.dim, config.data.rho)
  results.update(seconds)
  results['seconds'] = time.time() - start
  workdir_lib.finish_run(workdir, results, metrics, plot=lambda: _plot(
      config, fitted_by_mode, test, truth, n_p_test, results, seeds, workdir))
  return results


def _plot(config, fitted_by_mode, test, truth, n_p, results, seeds, workdir) -> None:
  """Seed 0's log-ratios against the truth and encodings; every seed's loss curves."""
  out = workdir_lib.plots_dir(workdir)
  names = list(fitted_by_mode)
  first = results['per_seed'][0]
  for name in names:
    for stage in STAGES:
      records = workdir_lib.read_metrics(workdir, f'{name}_{stage}')
      if records:
        plots.curves(plots.replica_series('train', records, 'loss', seeds)
                     + plots.replica_series('validation', records, 'val_loss', seeds),
                     os.path.join(out, f'loss_{name}_{stage}.png'),
                     title=f'{name}: stage {stage}')
  test0, truth0 = test[0], truth[0]
  fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
  lo, hi = float(truth0.min()), float(truth0.max())
  for ax, name in zip(axes[0], names):
    estimate = np.asarray(fitted_by_mode[name].log_ratio(test))[0]
    ax.scatter(truth0[:n_p], estimate[:n_p], s=3, label='x ~ p')
    ax.scatter(truth0[n_p:], estimate[n_p:], s=3, label='x ~ q')
    ax.plot([lo, hi], [lo, hi], 'k--', lw=0.8)
    ax.axvspan(-config.overlap_log_ratio, config.overlap_log_ratio, color='0.9', zorder=0)
    ax.set_xlabel('true log r(x)')
    ax.set_ylabel('estimated log r(x)')
    overlap_mse = first[f'log_ratio_mse_overlap/{name}']
    ax.set_title(f"{name}, seed {seeds[0]}\nMSE {first[f'log_ratio_mse/{name}']:.3g}, on "
                 f"|log r| <= {config.overlap_log_ratio:g} (grey) {overlap_mse:.3g}", fontsize=9)
  axes[0][0].legend(fontsize=7)
  plots.save(fig, os.path.join(out, 'log_ratio_vs_truth.png'))
  if config.data.name == 'correlated_gaussians':
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.6))
    ax.bar(names, [first[f'mi/{n}'] for n in names])
    ax.axhline(results['true_mi'], color='k', ls='--', label=f"true MI {results['true_mi']:.2f}")
    ax.set_ylabel('estimated MI (nats)')
    ax.set_title(f'seed {seeds[0]}', fontsize=9)
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
    plots.save(fig, os.path.join(out, 'mutual_information.png'))
    return
  panels = [(f'data, seed {seeds[0]} (p: first half, q: second)', test0)]
  colours = [np.r_[np.zeros(n_p), np.ones(len(test0) - n_p)]]
  for name, fitted in fitted_by_mode.items():
    if fitted.encode is not None:
      panels.append((f'f(x), {name}', np.asarray(fitted.encode(test))[0]))
      colours.append(colours[0])
  plots.scatter_panels(panels, os.path.join(out, 'encodings.png'), colors=colours)
