"""LRMF against the alignment baselines on one domain pair (LRMF Sec. 4 setups 1-2; Fig. 3, 4).

Data -> train every method -> evaluate -> write:

1. load domains A and B as :mod:`experiments.lrmf.alignment` does (``config.data.a`` /
   ``config.data.b`` / ``config.data.splits``); with ``config.data.standardize``
   each domain is centred and divided by one scalar, its training split's RMS
   distance to the mean per coordinate, ``x -> (x - mu) / sqrt(E||x - mu||^2 / d)``
   (isotropic, so each surface keeps its shape);
2. build the models (:func:`build_models`) and run the methods named in ``config.methods``
   (:data:`METHODS`):

   * ``'lrmf'``: Algorithm 1 (:func:`lrmf.algorithm.train_lrmf`) with the
     checkpointed stages of :func:`experiments.lrmf.alignment.stage_runner`, its joint stage
     logging the 1-NN accuracy of the current ``T`` at every evaluation beside its held-out
     objective (the stage's ``annotate``, :func:`_joint_one_nn`; with ``config.restarts > 1``
     every restart's, and Fig. 3's numbers read the restart Algorithm 1 keeps);
   * ``'back_to_back'``: ``F o G^-1`` (Fig. 4) from LRMF's private models
     (:func:`lrmf.baselines.back_to_back_from_densities`), no extra training;
     needs ``config.model.density.family == 'flow'`` and ``'lrmf'`` in the methods;
   * ``'mmd'`` / ``'emd'``: the flow family ``T`` from a fresh (identity)
     initialisation trained to minimise :func:`lrmf.discrepancies.mmd_loss` (bandwidths
     ``config.mmd_bandwidths``) / :func:`lrmf.discrepancies.sinkhorn_divergence`
     (``config.emd_epsilon``, ``config.emd_num_iters``) between ``T(A)`` and ``B`` through
     :func:`harness.stages.train` (stages ``'mmd'``, ``'emd'``, train
     config ``config.train.baseline``);
   * ``'mmd_particles'`` / ``'emd_matching'``: the non-parametric MMD and EMD alignments
     that Sec. 4 compares LRMF with ("non-parametric models"): no map is fitted, A's test
     points themselves are moved onto B's test points, by Adam on the MMD
     (:func:`lrmf.discrepancies.mmd_particle_map`, bandwidths ``config.mmd_bandwidths``,
     optimiser and steps ``config.train.particles``) or onto
     their exact optimal-transport matches (:func:`lrmf.discrepancies.exact_emd_map`,
     equal test sizes);
   * ``'adversarial'``: SN-GAN alignment (Fig. 3), :func:`lrmf.baselines.adversarial_step`
     run by the engine (``config.train.adversarial`` for ``T``, ``config.train.critic`` for
     the critic ``config.model.critic``), logging both losses and the 1-NN accuracy every
     ``config.train.adversarial.eval_every`` steps,
     checkpointed and resumable like every stage;

3. score every method and the identity map (``'input'``) on the test split:
   1-NN accuracy (:func:`lrmf.baselines.one_nn_accuracy`, when both domains
   are labelled), the kNN preservation :func:`knn_preservation` with
   ``k = config.knn_k``, and the exact EMD between ``T(A_test)`` and
   ``B_test`` (:func:`lrmf.discrepancies.exact_emd`, equal test sizes);
4. Fig. 3 in numbers (:func:`objective_vs_quality`, from the logs of step 2): over the
   evaluations of training, the rank correlations (Spearman's rho, ``*_spearman``, and
   Goodman and Kruskal's gamma, ``*_gamma``, which the 1-NN's ties at its ceiling do not
   shrink) between LRMF's held-out objective and its 1-NN accuracy
   (``objective_one_nn_*/lrmf``; the claim: strongly negative), between SN-GAN's critic /
   generator loss and its 1-NN accuracy (``critic_one_nn_*/adversarial``,
   ``generator_one_nn_*/adversarial``), ``objective_tracking/<method>`` (LRMF: ``-gamma``;
   SN-GAN: the larger ``|gamma|`` of its two losses), ``one_nn_drift/<method>``, the best
   1-NN over training minus the last, and ``one_nn_max_drop/<method>``, the largest fall
   below the best reached before;
5. write ``results.json`` (``{method: {metric: value}}`` plus flat
   ``'<metric>/<method>'`` keys), ``table.md`` and the plots: ``alignment.png``
   (A, B and every ``T(A)`` coloured by position in A, Fig. 4) and
   ``objective_vs_alignment.png`` (Fig. 3: LRMF's held-out objective and SN-GAN's losses,
   each with the 1-NN accuracy of its ``T``, at every evaluation of training).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
from scipy import stats
from sklearn import neighbors

from harness import domains
from experiments.lrmf import alignment
from harness import plots, replicas, stages, config_checks
from harness import workdir as workdir_lib
from lrmf import algorithm, baselines, discrepancies
from nflax import engine, parallel

METHODS = ('lrmf', 'back_to_back', 'mmd', 'emd', 'mmd_particles', 'emd_matching', 'adversarial')
"""Methods a config may list in ``config.methods``, in table order."""

_NAMES = {'input': 'input (identity)', 'lrmf': 'LRMF', 'back_to_back': 'F o G^-1',
          'mmd': 'MMD (Real NVP T)', 'emd': 'EMD (Sinkhorn, Real NVP T)',
          'mmd_particles': 'MMD (non-parametric: points moved)',
          'emd_matching': 'EMD (non-parametric: exact OT matching)', 'adversarial': 'SN-GAN'}


def knn_preservation(x: np.ndarray, y: np.ndarray, k: int) -> float:
  """Fraction of k nearest neighbours a map preserves (local structure, Sec. 4 setup 2).

  For ``y_i = T(x_i)``: ``1/n sum_i |N_k(x_i; x) & N_k(y_i; y)| / k`` where
  ``N_k(p; S)`` are the indices of the ``k`` nearest points of ``S`` to ``p``
  (Euclidean, the point itself excluded). 1 for any isometry; about
  ``k / (n - 1)`` when ``y`` is ``x`` randomly permuted.

  Args:
    x: ``(n, d)`` points of A.
    y: ``(n, e)`` their images, row ``i`` the image of ``x[i]``.
    k: neighbours per point, ``1 <= k < n``.

  Returns:
    The preserved fraction in ``[0, 1]``.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
    raise ValueError(f'knn_preservation needs (n, d) points and their n images, got '
                     f'{x.shape} and {y.shape}')
  if not 1 <= k < x.shape[0]:
    raise ValueError(f'k must be in [1, n) with n = {x.shape[0]}, got {k}')

  def neighbour_sets(points):
    return neighbors.NearestNeighbors(n_neighbors=k).fit(points).kneighbors(
        return_distance=False)

  before, after = neighbour_sets(x), neighbour_sets(y)
  shared = [len(np.intersect1d(p, q, assume_unique=True)) for p, q in zip(before, after)]
  return float(np.mean(shared) / k)


def _standardize(domain: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Centres and isotropically rescales every split by the training split's statistics."""
  train = domain['train_x']
  mean = train.mean(0)
  scale = np.sqrt(np.mean(np.sum((train - mean)**2, 1)) / train.shape[1])
  return {key: ((value - mean) / scale).astype(np.float32) if key.endswith('_x') else value
          for key, value in domain.items()}


def _load(domain_config: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
          seed: int) -> dict[str, np.ndarray]:
  """:func:`harness.domains.load_domain` plus ``{split}_color`` from ``color_field``."""
  domain = domains.load_domain(domain_config, config.data.splits, seed)
  if domain_config.get('color_field'):
    coloured = ml_collections.ConfigDict(domain_config.to_dict())
    coloured.label_field = domain_config.color_field
    colours = domains.load_domain(coloured, config.data.splits, seed)
    domain.update({f'{split}_color': colours[f'{split}_labels']
                   for split in ('train', 'val', 'test')})
  return _standardize(domain) if config.data.get('standardize', False) else domain


def build_models(config: ml_collections.ConfigDict,
                 event_shape: Sequence[int] | None = None) -> dict[str, Any]:
  """The models of the comparison by their role in ``config.model`` (unbound modules):
  ``'density'`` and ``'flow'``, LRMF's family M and transformation T
  (:func:`experiments.lrmf.alignment.build_models`; every baseline trains a T of the same
  flow family), and with ``config.model.critic`` ``'critic'``, the SN-GAN's spectrally
  normalised MLP critic ``R^d -> R`` (:class:`lrmf.baselines.SpectralNormCritic`).

  Args:
    config: a comparison config.
    event_shape: the shape of one example of A and B; ``None``:
      :func:`experiments.lrmf.alignment.event_shape_of`.
  """
  built = alignment.build_models(config, event_shape)
  if 'critic' in config.model:
    built['critic'] = baselines.SpectralNormCritic(hidden=tuple(config.model.critic.hidden))
  return built


def _init_flow(flow, x, key):
  params_key, probe_key = jax.random.split(key)
  return jax.jit(flow.init)({'params': params_key, 'hutchinson': probe_key}, x[:256])


def _train_discrepancy(method, config, flow, a, b, workdir, metrics, key):
  """MMD / EMD baseline: ``min_phi D(T_phi(A), B)`` from the identity; returns ``phi``."""
  if method == 'mmd':
    discrepancy = functools.partial(discrepancies.mmd_loss,
                                    bandwidths=tuple(config.mmd_bandwidths))
  else:
    discrepancy = functools.partial(discrepancies.sinkhorn_divergence,
                                    epsilon=config.emd_epsilon, num_iters=config.emd_num_iters)
  objective = baselines.alignment_objective(flow=flow, discrepancy=discrepancy)
  init_key, fit_key = jax.random.split(key)
  result = stages.train(
      objective, engine.add_replica_axis(_init_flow(flow, a['train_x'], init_key)),
      engine.Independent((a['train_x'][None], b['train_x'][None])),
      engine.Independent((a['val_x'][None], b['val_x'][None])),
      train_config=config.train.baseline, workdir=workdir, stage=method, keys=fit_key[None],
      metrics=metrics)
  return engine.replica({'params': result.params, **result.model_state}, 0)


def _train_adversarial(config, flow, critic, a, b, workdir, metrics, key):
  """SN-GAN baseline (Fig. 3): alternating steps of ``critic`` and of the transform ``flow``
  through the engine, checkpointed and resumable like every stage; the 1-NN accuracy of ``T``
  is logged after every dispatch of ``eval_every`` steps. Returns ``(phi, log)``."""
  settings = config.train.adversarial
  flow_optimizer = stages.make_optimizer(settings)
  critic_optimizer = stages.make_optimizer(config.train.critic)
  init_key, critic_key, train_key = jax.random.split(key, 3)
  state = baselines.init_adversarial_state(
      flow_variables=_init_flow(flow, a['train_x'], init_key),
      critic_variables=critic.init(critic_key, jnp.asarray(b['train_x'][:8]),
                                   update_stats=False),
      flow_optimizer=flow_optimizer, critic_optimizer=critic_optimizer)
  step_fn = functools.partial(baselines.adversarial_step, flow=flow, critic=critic,
                              flow_optimizer=flow_optimizer, critic_optimizer=critic_optimizer)
  move = alignment.transformer(flow)

  def with_accuracy(run, record):
    trained = engine.replica(run.state, 0)
    accuracy = alignment.one_nn_accuracy(
        config, a, b, move({'params': trained.params, **trained.model_state}, a['test_x']))
    return record if accuracy is None else {**record, 'one_nn_accuracy': accuracy}

  # One dispatch per logged 1-NN accuracy.
  train_config = ml_collections.ConfigDict({**settings.to_dict(),
                                            'steps_per_dispatch': settings.eval_every})
  result = stages.run_stage(
      stages.Stage(name='adversarial', step_fn=step_fn, state=engine.add_replica_axis(state),
                   train_data=engine.Independent((a['train_x'][None], b['train_x'][None])),
                   keys=train_key[None], train_config=train_config, annotate=with_accuracy),
      workdir=workdir, metrics=metrics)
  trained = engine.replica(result.run.state, 0)
  return ({'params': trained.params, **trained.model_state},
          workdir_lib.read_metrics(workdir, 'adversarial'))


def _joint_one_nn(config, flow, a, b):
  """The :attr:`harness.stages.Stage.annotate` of LRMF's joint stage (through
  :func:`experiments.lrmf.alignment.stage_runner`): at every evaluation (a record with
  ``val_loss``) the 1-NN accuracy of the current ``T`` of every replica of the stage, i.e. of
  every joint restart (``config.restarts = K``: ``K`` values, logged as
  ``one_nn_accuracy/replicas`` beside ``val_loss/replicas``); the same scorer as SN-GAN's
  (:func:`experiments.lrmf.alignment.one_nn_accuracy` on ``T(A_test)``)."""
  move = alignment.transformer(flow)

  def annotate(run, record):
    if 'val_loss' not in record:
      return record
    count = np.shape(parallel.to_host(run.state.step))[0]
    accuracies = []
    for index in range(count):
      state = engine.replica(run.state, index)
      accuracy = alignment.one_nn_accuracy(
          config, a, b,
          move(algorithm.split_joint_variables(state.params, state.model_state)[0],
               a['test_x']))
      if accuracy is None:
        return record
      accuracies.append(accuracy)
    return {**record, 'one_nn_accuracy': np.asarray(accuracies)}

  return annotate


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman's rank correlation of paired series (ties get their average rank).

  Pairs with a non-finite value are dropped. NaN with fewer than 3 pairs (2 points always
  give +-1) or when a series is constant (no order to correlate, e.g. a 1-NN accuracy at 1
  at every evaluation).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f'spearman needs two series of one length, got {x.shape} and {y.shape}')
  keep = np.isfinite(x) & np.isfinite(y)
  x, y = x[keep], y[keep]
  if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
    return float('nan')
  return float(stats.spearmanr(x, y).statistic)


def gamma(x: Sequence[float], y: Sequence[float]) -> float:
  """Goodman and Kruskal's gamma of paired series: ``(C - D) / (C + D)`` over the pairs of
  points ordered alike (``C``) or oppositely (``D``) by ``x`` and ``y``; pairs tied in either
  are left out.

  The rank correlation for a quality with ties: a 1-NN accuracy that reaches its ceiling (1)
  ties at every later evaluation, and Spearman's rho of a perfectly ranking objective then
  shrinks with the share of evaluations after the ceiling (one strictly falling series
  against 6 rising points then 74 tied ones: rho = -0.46), while its gamma stays -1. Pairs
  with a non-finite value are dropped; NaN with fewer than 3 points or no untied pair.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f'gamma needs two series of one length, got {x.shape} and {y.shape}')
  keep = np.isfinite(x) & np.isfinite(y)
  x, y = x[keep], y[keep]
  if x.size < 3:
    return float('nan')
  signs = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
  upper = signs[np.triu_indices(x.size, 1)]
  concordant, discordant = np.sum(upper > 0), np.sum(upper < 0)
  if concordant + discordant == 0:
    return float('nan')
  return float((concordant - discordant) / (concordant + discordant))


def drift(accuracies: Sequence[float]) -> float:
  """How far a method ends below its best alignment: the best 1-NN accuracy over the
  evaluations minus the last one (>= 0; 0 when it ends at its best; NaN without any)."""
  x = np.asarray(accuracies, np.float64)
  x = x[np.isfinite(x)]
  return float(x.max() - x[-1]) if x.size else float('nan')


def max_drop(accuracies: Sequence[float]) -> float:
  """The largest fall of the 1-NN accuracy below the best it had reached before:
  ``max_t (max_{s <= t} x_s - x_t)`` (>= :func:`drift`; 0 for a series that never falls;
  NaN without any value)."""
  x = np.asarray(accuracies, np.float64)
  x = x[np.isfinite(x)]
  return float(np.max(np.maximum.accumulate(x) - x)) if x.size else float('nan')


def _joint_series(workdir: str, kept: int | None) -> dict[str, np.ndarray]:
  """LRMF's joint stage at its evaluations, from ``metrics.jsonl``: ``step``, ``val_loss``
  (held-out Eq. 3) and ``one_nn_accuracy``; of restart ``kept`` where the stage trained
  several (``None``: one)."""
  def value(record, name):
    return record[f'{name}/replicas'][kept] if kept is not None else record[name]

  records = [r for r in workdir_lib.read_metrics(workdir, 'joint')
             if 'val_loss' in r and 'one_nn_accuracy' in r]
  return {'step': np.array([r['step'] for r in records]),
          **{name: np.array([value(r, name) for r in records], np.float64)
             for name in ('val_loss', 'one_nn_accuracy')}}


def objective_vs_quality(lrmf_series: dict[str, np.ndarray] | None,
                         adversarial_log: list[dict]) -> dict[str, dict[str, float]]:
  """Fig. 3 in numbers: does each objective tell the 1-NN accuracy of ``T`` over training,
  and does each method stay at its best alignment?

  Over the evaluations of a method's training (every one: the first too, since each lies
  after some training and none is singled out), two rank correlations of an objective with
  the 1-NN accuracy: Spearman's rho (:func:`spearman`, ``*_spearman``) and Goodman and
  Kruskal's gamma (:func:`gamma`, ``*_gamma``), which leaves out the pairs of evaluations tied
  in accuracy. The 1-NN accuracy has a ceiling of 1: once ``T`` reaches it the later
  evaluations tie, and rho then reads how early ``T`` got there more than how well the
  objective ranks the alignments (see :func:`gamma`), so the verdicts read gamma.

  * LRMF: ``objective_one_nn_spearman`` and ``objective_one_nn_gamma`` of the held-out Eq. 3
    (the claim: strongly negative, a lower objective is a better alignment), and
    ``objective_tracking`` ``= -gamma`` (read in the claimed direction);
  * SN-GAN: ``critic_one_nn_*`` and ``generator_one_nn_*`` of the critic's loss and the
    generator's (as the stage logs them: means over the ``eval_every`` training steps that
    end at the evaluation; SN-GAN has no held-out objective, and the paper plots these),
    and ``objective_tracking`` ``= max(|gamma_critic|, |gamma_generator|)``: the better of
    the two losses in either direction, the most generous reading of the adversarial
    objective (no sign of it is known in advance to mean "better");
  * both: ``one_nn_drift``, the best 1-NN over the evaluations minus the last
    (:func:`drift`; the paper: SN-GAN drifts away from near-optimal alignments, LRMF
    stays), ``one_nn_max_drop``, the largest fall below the best reached before
    (:func:`max_drop`: a method that leaves a near-optimal alignment and comes back before
    the end has no drift but a drop), and ``one_nn_evaluations``, how many evaluations
    these read.

  NaN where a correlation is undefined (:func:`spearman`, :func:`gamma`).
  """
  out: dict[str, dict[str, float]] = {}
  if lrmf_series is not None and len(lrmf_series['step']):
    objective, accuracy = lrmf_series['val_loss'], lrmf_series['one_nn_accuracy']
    ranked = gamma(objective, accuracy)
    out['lrmf'] = {'objective_one_nn_spearman': spearman(objective, accuracy),
                   'objective_one_nn_gamma': ranked, 'objective_tracking': -ranked,
                   'one_nn_drift': drift(accuracy), 'one_nn_max_drop': max_drop(accuracy),
                   'one_nn_evaluations': len(lrmf_series['step'])}
  log = [r for r in adversarial_log if 'one_nn_accuracy' in r]
  if log:
    accuracy = [r['one_nn_accuracy'] for r in log]
    out['adversarial'] = {'one_nn_drift': drift(accuracy), 'one_nn_max_drop': max_drop(accuracy),
                          'one_nn_evaluations': len(log)}
    magnitudes = []
    for name, key in (('critic', 'critic_loss'), ('generator', 'loss')):
      losses = [r[key] for r in log]
      ranked = gamma(losses, accuracy)
      out['adversarial'].update({f'{name}_one_nn_spearman': spearman(losses, accuracy),
                                 f'{name}_one_nn_gamma': ranked})
      if np.isfinite(ranked):
        magnitudes.append(abs(ranked))
    out['adversarial']['objective_tracking'] = max(magnitudes) if magnitudes else float('nan')
  return out


def _scores(config, a, b, moved) -> dict[str, float]:
  scores = {'knn_preservation': knn_preservation(a['test_x'], moved, config.knn_k),
            'exact_emd': discrepancies.exact_emd(moved, b['test_x'])}
  accuracy = alignment.one_nn_accuracy(config, a, b, moved)
  if accuracy is not None:
    scores['one_nn_accuracy'] = accuracy
  return scores


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs LRMF and the baselines of ``config.methods`` in ``workdir``; returns the results."""
  start = time.time()
  unknown = set(config.methods) - set(METHODS)
  if unknown:
    raise ValueError(f'unknown config.methods {sorted(unknown)}; available: {METHODS}')
  if 'back_to_back' in config.methods and ('lrmf' not in config.methods
                                           or config.model.density.family != 'flow'):
    raise ValueError("'back_to_back' needs 'lrmf' in config.methods and a flow density "
                     f'family (it composes the private flows), got methods {config.methods} '
                     f'and density family {config.model.density.family!r}')
  seed = replicas.single_seed(config)
  a = _load(config.data.a, config, seed)
  b = _load(config.data.b, config, seed + 1)
  if a['train_x'].shape[1:] != b['train_x'].shape[1:]:
    raise ValueError(f"domains A and B differ in shape: {a['train_x'].shape[1:]} vs "
                     f"{b['train_x'].shape[1:]}")
  if len(a['test_x']) != len(b['test_x']):
    raise ValueError('the exact EMD needs equal test splits of A and B')
  num_a, num_b = len(a['train_x']), len(b['train_x'])
  if 'lrmf' in config.methods:
    alignment.check_sizes(config, num_a, num_b)
  config_checks.check_batch_sizes(
      {**({'train.baseline.batch_size': (config.train.baseline.batch_size, min(num_a, num_b))}
          if {'mmd', 'emd'} & set(config.methods) else {}),
       **({'train.adversarial.batch_size': (config.train.adversarial.batch_size,
                                            min(num_a, num_b))}
          if 'adversarial' in config.methods else {})})
  built = build_models(config, a['train_x'].shape[1:])
  flow, density = built['flow'], built['density']
  move = alignment.transformer(flow)
  metrics = workdir_lib.MetricsLog(workdir)
  keys = dict(zip(METHODS, jax.random.split(jax.random.PRNGKey(seed), len(METHODS))))
  moved = {'input': a['test_x']}
  results, adversarial_log, lrmf_result, lrmf_series = {}, [], None, None
  if 'lrmf' in config.methods:
    joint_one_nn = _joint_one_nn(config, flow, a, b)
    runner = alignment.stage_runner(
        config, workdir, metrics,
        annotate_of=lambda stage: joint_one_nn if stage == 'joint' else None)
    trained = algorithm.train_lrmf(
        flow=flow, density=density, a_train=a['train_x'][None], b_train=b['train_x'][None],
        a_val=a['val_x'][None], b_val=b['val_x'][None], keys=keys['lrmf'][None],
        eps=config.eps, private_runner=runner, joint_runner=runner,
        restarts=config.get('restarts', 1))
    lrmf_result = trained.replica(0)
    # With K > 1 joint restarts every restart's 1-NN is logged; Fig. 3's numbers read the
    # restart Algorithm 1 kept (lowest Eq. 3 on the training sets).
    lrmf_series = _joint_series(
        workdir, None if len(lrmf_result.restart_objectives) == 1
        else int(np.argmin(lrmf_result.restart_objectives)))
    moved['lrmf'] = move(lrmf_result.flow_variables, a['test_x'])
    details = alignment.evaluate([config], flow, density, trained, [(a, b)])[0]
    results['lrmf'] = {name: details[name] for name in ('test_objective', 'converged')}
  if 'back_to_back' in config.methods:
    moved['back_to_back'] = alignment.back_to_back_transformer(density)(lrmf_result,
                                                                         a['test_x'])
  for method in ('mmd', 'emd'):
    if method in config.methods:
      variables = _train_discrepancy(method, config, flow, a, b, workdir, metrics, keys[method])
      moved[method] = move(variables, a['test_x'])
  if 'mmd_particles' in config.methods:
    moved['mmd_particles'] = np.asarray(discrepancies.mmd_particle_map(
        jnp.asarray(a['test_x']), jnp.asarray(b['test_x']),
        bandwidths=tuple(config.mmd_bandwidths), num_steps=config.train.particles.num_steps,
        optimizer=stages.make_optimizer(config.train.particles)))
  if 'emd_matching' in config.methods:
    moved['emd_matching'] = discrepancies.exact_emd_map(a['test_x'], b['test_x'])
  if 'adversarial' in config.methods:
    variables, adversarial_log = _train_adversarial(config, flow, built['critic'], a, b,
                                                    workdir, metrics, keys['adversarial'])
    moved['adversarial'] = move(variables, a['test_x'])
  for method, points in moved.items():
    results.setdefault(method, {}).update(_scores(config, a, b, points))
  for method, values in objective_vs_quality(lrmf_series, adversarial_log).items():
    results[method].update(values)
  if 'emd' in moved:  # did the Sinkhorn solver of the objective converge at the end?
    results['emd']['sinkhorn_marginal_error'] = float(discrepancies.sinkhorn_marginal_error(
        x=jnp.asarray(moved['emd']), y=jnp.asarray(b['test_x']), epsilon=config.emd_epsilon,
        num_iters=config.emd_num_iters))
  flat = {f'{metric}/{method}': value for method, scores in results.items()
          for metric, value in scores.items()}
  results.update(flat)
  results['seconds'] = time.time() - start
  if parallel.is_writer():
    _write_table(results, list(moved), os.path.join(workdir, 'table.md'))

  def plot():
    out = workdir_lib.plots_dir(workdir)
    _plot_alignment(a, b, moved, os.path.join(out, 'alignment.png'))
    _plot_fig3(lrmf_series, adversarial_log, os.path.join(out, 'objective_vs_alignment.png'))

  return workdir_lib.finish_run(workdir, results, metrics, plot=plot)


def _write_table(results: dict, methods: list[str], path: str) -> None:
  """Markdown table: one row per method, one column per test metric."""
  columns = [c for c in ('one_nn_accuracy', 'knn_preservation', 'exact_emd', 'test_objective')
             if any(c in results[m] for m in methods)]
  lines = ['| method | ' + ' | '.join(columns) + ' |', '|---' * (len(columns) + 1) + '|']
  for method in methods:
    cells = [f'{results[method][c]:.4f}' if c in results[method] else '-' for c in columns]
    lines.append(f'| {_NAMES[method]} | ' + ' | '.join(cells) + ' |')
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')


def _colours(domain: dict[str, np.ndarray]) -> np.ndarray:
  """Position colour per test point: the intrinsic coordinate, else the angle about the centre."""
  if 'test_color' in domain:
    return domain['test_color']
  centred = domain['test_x'] - domain['test_x'].mean(0)
  return np.arctan2(centred[:, 1], centred[:, 0])


def _view(points: np.ndarray) -> np.ndarray:
  """2-D view: the points themselves, or the (x, z) plane in which 3-D surfaces curl."""
  return points if points.shape[1] == 2 else points[:, [0, 2]]


def _plot_alignment(a, b, moved, path) -> None:
  """Fig. 4: A, B and ``T(A)`` of every method, coloured by position in A."""
  colour_a = _colours(a)
  panels = [('A', _view(a['test_x'])), ('B', _view(b['test_x']))]
  colours = [colour_a, _colours(b) if 'test_color' in b else None]
  for method, points in moved.items():
    if method != 'input':
      panels.append((f'T(A): {_NAMES[method]}', _view(points)))
      colours.append(colour_a)
  plots.scatter_panels(panels, path, colors=colours)


def _plot_fig3(lrmf_series, adversarial_log, path) -> None:
  """Fig. 3: each method's objective (left axis) and the 1-NN accuracy of its ``T`` (right
  axis, red) at every evaluation of its training: LRMF's held-out Eq. 3 (the kept restart's),
  SN-GAN's critic and generator losses."""
  panels = ([('lrmf', lrmf_series)] if lrmf_series is not None and len(lrmf_series['step'])
            else []) + ([('adversarial', adversarial_log)] if adversarial_log else [])
  if not panels:
    return
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
  for ax, (method, log) in zip(axes[0], panels):
    accuracy_ax = ax.twinx()
    accuracy_ax.set_ylabel('1-NN accuracy', color='tab:red')
    if method == 'lrmf':
      steps, accuracy = log['step'], log['one_nn_accuracy']
      ax.plot(steps, log['val_loss'], label='held-out LRMF objective (Eq. 3)')
      ax.axhline(0.0, color='k', lw=0.8, ls='--')
      ax.set_title('LRMF')
    else:
      steps = np.array([r['step'] for r in log])
      for name, label in (('critic_loss', 'critic loss'), ('loss', 'generator loss')):
        ax.plot(steps, [r[name] for r in log], label=label)
      ax.set_title('SN-GAN')
      accuracy = [r['one_nn_accuracy'] for r in log] if 'one_nn_accuracy' in log[0] else []
    if len(accuracy):
      accuracy_ax.plot(steps, accuracy, '.-', color='tab:red')
    ax.set_xlabel('step')
    ax.set_ylabel('objective')
    ax.legend(loc='upper right')
  plots.save(fig, path)
