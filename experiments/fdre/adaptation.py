"""Featurized DRE for covariate-shift domain adaptation with KMM and KLIEP (Sec. 5.1, App. F.2, F.3).

One seed per program (``config.seeds`` holds one seed ``s``, :func:`harness.replicas.single_seed`);
per run ``i`` (``config.num_runs`` data seeds ``s + i``, run one after the other: the flow's
training and validation sets can differ in size between runs, as the biased source of
``breast_cancer_biased`` does):

1. load the :class:`~harness.data.synthetic.DomainAdaptationSplit` ``config.data.name``
   (:func:`load_split`: ``gaussian_mixture_2d`` for Table 8, ``breast_cancer_biased`` for
   Table 9); split the target into an unlabelled part (used to estimate the ratios and to
   fit the flow), a labelled validation part (hyper-parameter selection) and a test part
   (reported only), of ``data.target_fractions`` of it; hold out
   ``round(data.source_val_fraction * n_source)`` source points as the flow's validation
   set (both cuts :func:`harness.domains.split_indices`, of the child streams ``(seed, 0)``
   and ``(seed, 1)`` of the run's data seed);
2. Algorithm 1: fit the flow ``config.model.flow`` by maximum likelihood on the mixture of
   source and unlabelled target (training block ``config.train.flow``, checkpointed stage
   ``run<i>_flow``), encode;
3. for each estimator (``'kmm'``, ``'kliep'``) and space (``x``, ``z = f(x)``),
   importance weights ``p_target / p_source`` on the source points for every
   hyper-parameter of the grid (``config.kernel_gammas``, KMM's ``config.kmm_bounds``);
   train the weighted downstream classifier ``config.model.downstream`` on source ``x``
   (logistic regression or an RBF SVM, scikit-learn, one per ``C`` of ``c_values``), pick
   the hyper-parameters with the lowest target-validation error. With
   ``config.kliep_selection = 'lcv'`` KLIEP's kernel is instead chosen without labels,
   by likelihood cross-validation on the unlabelled target (the KLIEP paper's rule,
   :func:`fdre.estimators.kliep_lcv_score`); on the 2-D mixture it picks the
   narrowest kernel of any grid (held-out folds are drawn from the target only, so
   narrow kernels that miss the sparse source points go unpenalised);
4. report the target-test error of the unweighted classifier and of IW(x) and
   IW(z) per estimator (mean and standard error over runs), write
   ``results.json`` and, for 2-d data, the weights in x and z.

Controls (keys of ``results.json``; not the paper's):

* ``test_error/<est>/iw_<space>/grid_min``: the lowest target-test error over the weight grid
  (the selection an oracle of the test labels would make);
* ``test_error/<est>/iw_<space>/mean_one``: the selected weights rescaled to mean 1 over the
  source. scikit-learn's logistic regression minimises ``C sum_i w_i loss_i + |coef|^2 / 2``,
  so the weights' overall scale is also the strength of its L2 penalty; this key separates
  the weights' shape from their scale (KMM's sum constraint lets the mean range over
  ``[1 - eps, 1 + eps]``);
* on ``gaussian_mixture_2d``, whose ratio is known in closed form
  (:func:`harness.data.synthetic.gaussian_mixture_2d_log_ratio`): ``test_error/oracle_iw``, the
  classifier weighted by the true ``q(x) / p(x)`` (what exact importance weighting reaches at
  this sample size), ``test_error/oracle_iw_kmm_min_sum`` (the true weights scaled to the
  smallest sum, ``sqrt(n)``, that KMM's default constraint admits), and
  ``weights/<est>/iw_<space>/log_corr`` / ``log_mse`` (Pearson correlation and mean squared
  difference of the selected weights' logs, floored at the smallest true weight, with the
  true log weights on the source points; by Lemma 1 the truth is the same in x and z) and
  ``mean`` (their mean over the source).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from sklearn import base as sklearn_base
from sklearn import linear_model, svm

from harness import data as data_lib
from harness.data import synthetic
from harness import domains, models, plots, replicas
from experiments.fdre import biased_sampling, modes
from harness import workdir as workdir_lib
from fdre import estimators, featurize
from nflax import densities

ESTIMATORS = ('kmm', 'kliep')

DATA_SETS = ('gaussian_mixture_2d', 'breast_cancer_biased')
"""The domain-adaptation splits (source and target, labelled) ``config.data.name`` may name."""


def load_split(data: ml_collections.ConfigDict, seed: int) -> synthetic.DomainAdaptationSplit:
  """The split ``data.name`` (:data:`DATA_SETS`) with ``data.options``, drawn from ``seed``:
  ``breast_cancer_biased`` from this family's :mod:`experiments.fdre.biased_sampling`, the
  others through :func:`harness.data.load`.

  Raises:
    ValueError: ``data.name`` is not one of :data:`DATA_SETS`.
  """
  if data.name not in DATA_SETS:
    raise ValueError(f'config.data.name {data.name!r} is not a domain-adaptation data set; '
                     f'available: {DATA_SETS}')
  if data.name == 'breast_cancer_biased':
    return biased_sampling.breast_cancer_biased(seed=seed, **dict(data.options))
  return data_lib.load(data.name, seed=seed, **dict(data.options))


def importance_weights(estimator: str, source: np.ndarray, target: np.ndarray, *,
                       kernel_gamma: float, bound: float, num_centers: int) -> np.ndarray:
  """``p_target / p_source`` at the ``(n, d)`` source points, by KMM or KLIEP."""
  if estimator == 'kmm':
    with jax.enable_x64(True):  # the QP is solved in float64 (fdre.estimators.kmm_solve)
      return np.asarray(estimators.kmm_weights(
          source=jnp.asarray(source, jnp.float64), target=jnp.asarray(target, jnp.float64),
          kernel_gamma=kernel_gamma, bound=bound))
  source, target = jnp.asarray(source), jnp.asarray(target)
  if estimator == 'kliep':
    centers = target[:num_centers]
    alpha = estimators.kliep_fit(numerator=target, denominator=source, centers=centers,
                                 kernel_gamma=kernel_gamma)
    return np.exp(np.asarray(estimators.kliep_log_ratio(
        source, centers=centers, alpha=alpha, kernel_gamma=kernel_gamma)))
  raise ValueError(f'unknown estimator {estimator!r}; available: {ESTIMATORS}')


def _downstream(model: ml_collections.ConfigDict, c_value: float):
  if model.kind == 'logistic_regression':
    return linear_model.LogisticRegression(C=c_value)
  if model.kind == 'svm':
    return svm.SVC(C=c_value, kernel='rbf', gamma=model.svm_gamma)
  raise ValueError(f"unknown model.downstream.kind {model.kind!r}; available: "
                   "'logistic_regression', 'svm'")


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The models of ``config.model`` by role (the flow unbound, the classifiers unfitted).

  * ``'flow'``: the feature map ``f`` (a :mod:`nflax` bijector, ``(n, d) -> (n, d)``),
    ``models.build_flow(config.model.flow)``, fitted by maximum likelihood on source and
    unlabelled target under a standard normal base (Algorithm 1);
  * ``'downstream'``: ``{C: scikit-learn classifier}`` for every ``C`` of
    ``config.model.downstream.c_values``, unfitted: logistic regression or an RBF SVM of
    ``svm_gamma`` (``kind``), trained on the weighted source ``(n, d)`` points to predict
    their labels (a fresh clone per fit).
  """
  downstream = config.model.downstream
  return {'flow': models.build_flow(config.model.flow),
          'downstream': {c_value: _downstream(downstream, c_value)
                         for c_value in downstream.c_values}}


def _errors(classifier, x, labels, weights, evaluation) -> list[float]:
  model = sklearn_base.clone(classifier).fit(x, labels, sample_weight=weights)
  return [float(np.mean(model.predict(ex) != el)) for ex, el in evaluation]


def _grid(config, estimator):
  if config.kliep_selection not in ('lcv', 'validation'):
    raise ValueError(f"config.kliep_selection must be 'lcv' or 'validation', got "
                     f'{config.kliep_selection!r}')
  bounds = config.kmm_bounds if estimator == 'kmm' else (1.0,)
  return list(itertools.product(config.kernel_gammas, bounds))


def run_once(config, workdir, metrics, index: int) -> tuple[dict, dict]:
  """Run ``index`` (data seed ``s + index``): returns ``(test errors by key, plotting arrays)``."""
  seed = replicas.single_seed(config) + index
  split = load_split(config.data, seed)
  num_target, num_source = len(split.target_x), len(split.source_x)
  ratio_rows, val_rows, test_rows = domains.split_indices(
      num_target, [int(f * num_target) for f in config.data.target_fractions], (seed, 0),
      f"the target of '{config.data.name}'")
  source_x, source_labels = split.source_x, split.source_labels
  num_flow_val = round(config.data.source_val_fraction * num_source)
  flow_train, flow_val = domains.split_indices(
      num_source, (num_source - num_flow_val, num_flow_val), (seed, 1),
      f"the source of '{config.data.name}'")
  target_x = split.target_x[ratio_rows]
  evaluation = [(split.target_x[val_rows], split.target_labels[val_rows]),
                (split.target_x[test_rows], split.target_labels[test_rows])]
  built = build_models(config)
  density = densities.FlowDensity(flow=built['flow'],
                                  base=densities.StandardNormal(source_x.shape[1:]))
  modes.check_sizes(config, len(flow_train) + len(target_x))
  # One replica of the replicated runner: a leading axis of 1 in, replica 0 out.
  fitted = featurize.fit_flow_on_mixture(
      density=density, p_train=source_x[flow_train][None], q_train=target_x[None],
      p_val=source_x[flow_val][None], q_val=evaluation[0][0][None],
      keys=jax.random.PRNGKey(seed)[None],
      runner=modes.stage_runner(config, workdir, metrics, f'run{index}'))
  encode = featurize.encoder(density, {'params': fitted.params, **fitted.model_state})
  spaces = {'x': (source_x, target_x),
            'z': (np.asarray(encode(source_x[None]))[0], np.asarray(encode(target_x[None]))[0])}
  grids = {(estimator, space): _grid(config, estimator)
           for estimator, space in itertools.product(config.estimators, spaces)}
  if 'kliep' in config.estimators and config.kliep_selection == 'lcv':
    for space, (source_s, target_s) in spaces.items():
      lcv = lambda point: estimators.kliep_lcv_score(
          numerator=jnp.asarray(target_s), denominator=jnp.asarray(source_s),
          kernel_gamma=point[0], num_centers=config.kliep_num_centers)
      grids['kliep', space] = [max(grids['kliep', space], key=lcv)]
  true_log = (synthetic.gaussian_mixture_2d_log_ratio(source_x, **dict(config.data.options))
              if config.data.name == 'gaussian_mixture_2d' else None)
  errors, kept_weights = {}, {}
  for c_value, downstream in built['downstream'].items():
    suffix = f'/C_{c_value:g}' if len(built['downstream']) > 1 else ''
    errors[f'unweighted{suffix}'] = _errors(downstream, source_x, source_labels, None,
                                            evaluation)[1]
    if true_log is not None:
      errors[f'oracle_iw{suffix}'] = _errors(downstream, source_x, source_labels,
                                             np.exp(true_log), evaluation)[1]
      # The same shape at the smallest total KMM's default sum constraint admits,
      # n (1 - eps) = sqrt(n): the strongest L2 penalty a feasible KMM solution can imply.
      smallest = np.exp(true_log) * math.sqrt(len(source_x)) / np.sum(np.exp(true_log))
      errors[f'oracle_iw_kmm_min_sum{suffix}'] = _errors(downstream, source_x, source_labels,
                                                         smallest, evaluation)[1]
    for estimator, (space, (source_s, target_s)) in itertools.product(
        config.estimators, spaces.items()):
      best, grid_min = None, np.inf
      for kernel_gamma, bound in grids[estimator, space]:
        weights = importance_weights(estimator, source_s, target_s, kernel_gamma=kernel_gamma,
                                     bound=bound, num_centers=config.kliep_num_centers)
        val_error, test_error = _errors(downstream, source_x, source_labels,
                                        np.maximum(weights, 1e-8), evaluation)
        grid_min = min(grid_min, test_error)
        if best is None or val_error < best[0]:
          best = (val_error, test_error, weights, kernel_gamma, bound)
      key = f'{estimator}/iw_{space}{suffix}'
      errors[key] = best[1]
      errors[f'{key}/kernel_gamma'] = best[3]
      errors[f'{key}/bound'] = best[4]
      errors[f'{key}/grid_min'] = grid_min
      weights = np.maximum(best[2], 1e-8)
      errors[f'{key}/mean_one'] = _errors(downstream, source_x, source_labels,
                                          weights / np.mean(weights), evaluation)[1]
      if true_log is not None:
        # Logs of estimates floored at the smallest true weight, so exact zeros (KMM's box)
        # count as that weight rather than as -inf.
        log_weights = np.log(np.maximum(weights, np.exp(true_log.min())))
        errors[f'weights/{key}/log_corr'] = float(np.corrcoef(log_weights, true_log)[0, 1])
        errors[f'weights/{key}/log_mse'] = float(np.mean((log_weights - true_log) ** 2))
        errors[f'weights/{key}/mean'] = float(np.mean(weights))
      kept_weights[f'{estimator} IW({space})'] = best[2]
  return errors, {'source_x': source_x, 'source_z': spaces['z'][0], 'weights': kept_weights}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs ``config.num_runs`` domain-adaptation runs; returns mean test errors."""
  start = time.time()
  metrics = workdir_lib.MetricsLog(workdir)
  per_run, first = [], None
  for index in range(config.num_runs):
    errors, arrays = run_once(config, workdir, metrics, index)
    metrics.write('run', index, errors)
    per_run.append(errors)
    first = first or arrays
  results: dict = {}
  for key in per_run[0]:
    values = np.array([errors[key] for errors in per_run], np.float64)
    if key.endswith(('/kernel_gamma', '/bound')):
      results[key] = values.tolist()
      continue
    se = float(values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0)
    if key.startswith('weights/'):
      results[key] = float(values.mean())
      results[f"weights_se/{key.removeprefix('weights/')}"] = se
      continue
    results[f'test_error/{key}'] = float(values.mean())
    results[f'test_error_se/{key}'] = se
  results['num_runs'] = config.num_runs
  results['seconds'] = time.time() - start
  return workdir_lib.finish_run(workdir, results, metrics, plot=lambda: _plot(first, workdir))


def _plot(first: dict, workdir: str) -> None:
  """The first run's selected weights on the source points and its source encodings (2-d)."""
  if first['source_x'].shape[1] != 2:
    return
  out = workdir_lib.plots_dir(workdir)
  names = sorted(first['weights'])
  panels = [(f'{name} on source x', first['source_x']) for name in names]
  plots.scatter_panels(panels, os.path.join(out, 'weights_x.png'),
                       colors=[np.log(np.maximum(first['weights'][n], 1e-8)) for n in names])
  plots.scatter_panels([('source z = f(x)', first['source_z'])],
                       os.path.join(out, 'source_encodings.png'))
