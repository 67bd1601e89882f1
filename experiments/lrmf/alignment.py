"""LRMF alignment experiments on point clouds (LRMF Sec. 4, setup 1; Fig. 2, 8, 9).

Data -> train -> evaluate -> write:

1. for every seed of ``config.seeds``, load domains A and B (``config.data.a`` /
   ``config.data.b``: a registered data set, the array field and an optional label
   field each; synthetic sets drawn anew per seed, :mod:`harness.replicas`) and
   split each into train / validation / test; with ``config.data.logit_alpha`` set, image
   domains in ``[0, 1]`` are dequantised and moved to logit space once
   (:func:`to_logit_space`; setup 4, Glow LRMF in pixel space);
2. build the models (:func:`build_models`: the density family ``config.model.density``
   and the flow ``config.model.flow``) and run Algorithm 1
   (:func:`lrmf.algorithm.train_lrmf`), all seeds side by side in one program; every stage
   (``private``, A's and B's fits side by side, with ``config.train.private``, ``joint``
   with ``config.train.joint``) is checkpointed and resumable;
3. evaluate on the test split: the LRMF objective (Eq. 3, with c(A, B) from the
   private models on the same test data; ``train_objective``: the same on the training
   sets, what Fig. 2 and 9(c) plot, of the kept joint restart) and its convergence flags
   (``converged``: the two-sided rule of :mod:`lrmf.held_out`; ``converged_algorithm1``:
   Algorithm 1's own), the objective of the identity map for reference, the 1-NN accuracy
   of a classifier fitted on B's labelled points and scored on T(A) with A's labels (with a
   flow density, also on the back-to-back ``F o G^-1`` of the two private models, the
   AlignFlow-inspired baseline of Fig. 4 and 6a, which needs no training),
   and the first two moments of T(A) against B's (Frobenius/Euclidean norms of
   the differences, on the test and on the training split); for synthetic data sets,
   Eq. 3 and its flag also on ``config.fresh_eval_size`` points per domain drawn afresh
   from the generators (:func:`fresh_evaluation`), and ``converged_but_fresh_off``: the
   test split's flag says converged while Eq. 3 on the fresh points is beyond ``2 eps``;
   with ``config.doubling_control``, the offset of the fresh Eq. 3 at a perfect alignment
   from the private models trained on twice their data (:func:`doubling_control`), and the
   fresh Eq. 3 less it (``fresh_objective_beyond_doubling``);
4. write ``results.json`` (means over seeds, standard errors, every seed's values) and
   the plots of Fig. 2/8/9 for the first seed (the objective of every seed): A, B and
   T(A) coloured
   by position in A, the private and shared densities, the objective against
   the zero line, and T's displacement field (for images: A, T(A), B and
   T^-1(B) as pictures, Fig. 6a, and the objective, Fig. 6b).
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from harness import data as data_lib
from harness import domains
from harness import models, plots, replicas, stages, config_checks
from harness import workdir as workdir_lib
from lrmf import algorithm, baselines, held_out
from nflax import bijectors, densities, engine, fitting

def to_logit_space(domain: dict[str, np.ndarray], alpha: float,
                   seed: int) -> dict[str, np.ndarray]:
  """Dequantises ``[0, 1]`` images once and maps them through ``nflax`` ``Logit(alpha)``.

  Every ``{split}_x`` gets uniform noise of one 8-bit level, ``x + u / 256``
  clipped to ``[0, 1]`` (drawn once from ``seed``, so the data are fixed
  continuous sets), and then ``y = logit(alpha + (1 - 2 alpha) x)``. The LRMF
  objective is unchanged by a fixed bijection ``g`` applied to both domains:
  ``T' = g T g^-1`` has ``log|det dT'| = log|det dT| + log|g'(T(a))| -
  log|g'(a)|``, and the Jacobian terms of ``g`` cancel against those in the
  private and shared log-likelihoods of Eq. 3. So Eq. 3 in logit space *is*
  Eq. 3 in pixel space, with densities that do not blow up at 0 and 1.
  """
  rng = np.random.default_rng(seed)
  logit = bijectors.Logit(alpha=alpha)
  out = dict(domain)
  for split in domains.SPLITS:
    x = domain[f'{split}_x']
    if x.min() < 0 or x.max() > 1:
      raise ValueError(f'data.logit_alpha needs values in [0, 1], got [{x.min()}, {x.max()}]')
    noisy = np.clip(x + rng.uniform(0, 1 / 256, x.shape), 0, 1).astype(np.float32)
    out[f'{split}_x'] = np.asarray(logit.apply({}, jnp.asarray(noisy),
                                               method=bijectors.Logit.forward))
  return out


def from_logit_space(x: np.ndarray, alpha: float) -> np.ndarray:
  """Inverse of :func:`to_logit_space`'s map (noise aside): back to ``[0, 1]`` images."""
  return np.asarray(bijectors.Logit(alpha=alpha).apply({}, jnp.asarray(x),
                                                       method=bijectors.Logit.inverse))


def stage_runner(config: ml_collections.ConfigDict, workdir: str,
                 metrics: workdir_lib.MetricsLog,
                 layout: replicas.Layout | None = None,
                 annotate_of=None) -> fitting.StageRunner:
  """Algorithm 1's stages through :func:`harness.stages.stage_runner`: the joint
  stage with ``config.train.joint``, the private ones with ``config.train.private``
  (with ``layout``, their learning rates and weight decays per replica; the joint stage
  trains ``config.restarts`` restarts of every replica and the private fits of A and B
  ``config.private_restarts`` each, which share their replica's values; A's and B's fits
  side by side in one stage ``'private'`` where their data have the same shapes,
  :func:`lrmf.algorithm.train_lrmf`), and the continuations of
  :func:`doubling_control` with :func:`continuation_train_config` (A's and B's of a replica
  side by side, with its joint values). ``annotate_of(stage)``:
  the stage's :attr:`harness.stages.Stage.annotate` or ``None`` (e.g. the 1-NN accuracy of
  the joint stage's current ``T``, :mod:`experiments.lrmf.comparison`).
  """
  block = lambda stage: 'private' if stage.startswith('private') else 'joint'
  repeats_of = {'joint': config.get('restarts', 1),
                'private': 2 * config.get('private_restarts', 1),
                'private_a': config.get('private_restarts', 1),
                'private_b': config.get('private_restarts', 1),
                **{stage: 2 for stage in CONTINUATIONS}}

  def per_replica(stage):
    values = layout.block_values(config, f'train.{block(stage)}')
    return {field: np.repeat(value, repeats_of.get(stage, 1)) for field, value in values.items()}

  def train_config_of(stage):
    if stage in CONTINUATIONS:
      return continuation_train_config(config)
    return config.train[block(stage)]

  return stages.stage_runner(workdir, metrics, train_config_of,
                             per_replica_of=None if layout is None else per_replica,
                             annotate_of=annotate_of)


def check_sizes(config: ml_collections.ConfigDict, num_a: int, num_b: int,
                num_replicas: int = 1) -> None:
  """Algorithm 1's batch sizes against the training sets, before its first stage trains:
  a private stage draws from one domain, the joint stage from both (the smaller bounds), and
  the continuations of :func:`doubling_control` (when on) twice the joint batch from one."""
  smaller = min(num_a, num_b)
  sizes = {f'train.{stage}.batch_size': (config.train[stage].batch_size, smaller)
           for stage in ('private', 'joint')}
  if config.get('doubling_control', False):
    sizes['train.joint.batch_size x 2 (doubling_control)'] = (
        continuation_train_config(config).batch_size, smaller)
  config_checks.check_batch_sizes(sizes, num_replicas)


def load_domains(config: ml_collections.ConfigDict,
                 seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """Domains A and B of one seed (split seeds ``seed`` and ``seed + 1``), checked, and
  moved to logit space when ``config.data.logit_alpha`` is set."""
  a = domains.load_domain(config.data.a, config.data.splits, seed)
  b = domains.load_domain(config.data.b, config.data.splits, seed + 1)
  if a['train_x'].shape[1:] != b['train_x'].shape[1:]:
    raise ValueError(f"domains A and B differ in shape: {a['train_x'].shape[1:]} vs "
                     f"{b['train_x'].shape[1:]}")
  if config.data.get('logit_alpha') is not None:
    a = to_logit_space(a, config.data.logit_alpha, seed)
    b = to_logit_space(b, config.data.logit_alpha, seed + 1)
  return a, b


FRESH_SEED_OFFSET = 5_000
"""A fresh draw of replica ``s`` uses the draw seed of its training data plus this offset:
below :data:`harness.replicas.DATA_SEED_STRIDE`, so it is no replica's training draw."""

DOUBLING_SEED_OFFSET = 6_000
"""The extra training points of :func:`doubling_control`, drawn as the fresh points are but
with this offset: neither a replica's training draw nor the fresh evaluation's."""

CONTINUATIONS = ('continued', 'doubled')
"""The stages of :func:`doubling_control`: every private model trained on, on its own
training set and on that set with as many extra points of its distribution."""


def is_synthetic(domain_config: ml_collections.ConfigDict) -> bool:
  """A data set drawn from a generator (:data:`harness.data.GENERATED`), so fresh samples
  exist; resampling a finite collection (digits) would reuse training points."""
  return domain_config.get('name') in data_lib.GENERATED


def fresh_domains(config: ml_collections.ConfigDict, seed: int, size: int,
                  offset: int = FRESH_SEED_OFFSET) -> tuple[np.ndarray, np.ndarray]:
  """``size`` fresh points of A and of B for replica ``seed``, drawn from the data sets'
  generators with seeds that drew none of the run's train / validation / test points (A's
  and B's draws of :func:`load_domains` moved by ``offset``, below
  :data:`harness.replicas.DATA_SEED_STRIDE`)."""
  drawn = []
  for domain_config, data_seed in ((config.data.a, seed), (config.data.b, seed + 1)):
    fresh = ml_collections.ConfigDict(domain_config.to_dict())
    fresh.options.n = size
    fresh.options.seed = domain_config.options.seed + offset
    drawn.append(domains.load_array(fresh, data_seed, domain_config.get('event_shape'))[0])
  return drawn[0], drawn[1]


def fresh_points(config: ml_collections.ConfigDict, layout: replicas.Layout, size: int,
                 offset: int = FRESH_SEED_OFFSET) -> tuple[jax.Array, jax.Array] | None:
  """:func:`fresh_domains` of every replica, ``(R, size, *event)`` for A and for B; ``None``
  when ``size`` is 0 or a domain is not synthetic (no generator to draw from)."""
  if not size or not (is_synthetic(config.data.a) and is_synthetic(config.data.b)):
    return None
  if config.data.get('logit_alpha') is not None:
    raise ValueError('fresh points need point data (no data.logit_alpha)')
  pairs = [fresh_domains(config, seed, size, offset) for seed in layout.seeds]
  return tuple(jnp.asarray(layout.tile(replicas.stack([pair[side] for pair in pairs])))
               for side in (0, 1))


def fresh_evaluation(config: ml_collections.ConfigDict, flow, density,
                     result: algorithm.LRMFResult, layout: replicas.Layout,
                     fresh: tuple[jax.Array, jax.Array]) -> list[dict]:
  """Eq. 3 and its check on the fresh points ``fresh = (a, b)`` (:func:`fresh_points`) of
  every replica.

  A 500-point test mean is dominated by the few points where a private flow has almost no
  density; a large fresh sample from the generators estimates the objective of the trained
  models on the data distributions themselves. One vmapped program over replicas
  (:func:`lrmf.held_out.held_out_checks`, the same terms as the test evaluation, with
  ``c(A, B)`` from the private models on the fresh points).
  """
  checks = held_out.held_out_checks(
      flow=flow, density=density, flow_variables=result.flow_variables,
      shared=result.shared_variables, private_a=result.private_a, private_b=result.private_b,
      a=fresh[0], b=fresh[1], eps=layout.values(config, 'eps'))
  return [{'fresh_objective': check.objective,
           'fresh_objective_point_se': check.standard_error,
           'fresh_objective_worst_percent': check.worst_percent,
           'fresh_objective_a_term': check.objective_a,
           'fresh_objective_b_term': check.objective_b,
           'fresh_converged': check.converged,
           'fresh_converged_algorithm1': check.converged_algorithm1} for check in checks]


def continuation_train_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The training block of :func:`doubling_control`'s continuations: the joint stage's
  (``config.train.joint``: its steps, learning rate and schedule, last parameters kept) with
  twice its batch, the ``T(a)`` and ``b`` minibatches the shared model sees in a step."""
  train = ml_collections.ConfigDict(config.train.joint.to_dict())
  train.batch_size = 2 * config.train.joint.batch_size
  return train


def doubling_control(config: ml_collections.ConfigDict, density, result: algorithm.LRMFResult,
                     layout: replicas.Layout, runner: fitting.StageRunner,
                     a: dict[str, np.ndarray], b: dict[str, np.ndarray],
                     fresh: tuple[jax.Array, jax.Array]) -> list[dict]:
  """How far below 0 the fresh-data Eq. 3 reads at a perfect alignment: the gain of doubling
  the private models' training sets (a control of Algorithm 1's flag, ``config.doubling_control``).

  Eq. 3's per-point terms (Sec. 2) compare the private model of each domain, fitted to its
  ``n`` training points, with the shared model. At a perfect alignment ``T(A)`` has B's
  distribution, so the shared model is fitted to ``2n`` points of that distribution: on fresh
  data it is the better model, and the fresh Eq. 3 sits below 0 by the gain of doubling the
  training set, even though the population objective is 0 there. This control measures that
  gain with the density family alone. Each private model (``thA``, ``thB``) is trained on the
  way the joint stage trains the shared model (:func:`continuation_train_config`), from its
  private variables:

  * stage ``'continued'``: on its own ``n`` training points. Where this lowers the fresh NLL,
    the private fit stopped short of its maximum;
  * stage ``'doubled'``: on those and ``n`` extra points drawn from the domain's generator
    (:data:`DOUBLING_SEED_OFFSET`): the data the shared model has at a perfect alignment.

  Args:
    config: the run's config.
    density: the density family ``M``.
    result: Algorithm 1's result (``R`` replicas).
    layout: the run's replicas.
    runner: the run's stage runner (:func:`stage_runner`; the two stages are checkpointed).
    a, b: the domains' splits, ``(R, n, *event)`` arrays (``train_x``, ``val_x``).
    fresh: the fresh points of A and B (:func:`fresh_points`).

  Returns:
    Per replica, on the fresh points: ``fresh_continued_{a,b}_term`` and
    ``fresh_doubling_{a,b}_term``, the mean of ``log P(x; th_private) - log P(x; th_cont)``
    over the fresh points of the domain (below 0: the continuation describes the domain
    better), and ``fresh_doubling_objective``, the sum of the two doubling terms: what the
    fresh Eq. 3 reads at a perfect alignment when the shared model gains what doubling its
    data gains each family.
  """
  n = a['train_x'].shape[1]
  extra = fresh_points(config, layout, n, offset=DOUBLING_SEED_OFFSET)
  if extra is None:
    raise ValueError('doubling_control needs synthetic domains (fresh points to draw)')
  nll = fitting.nll_objective(density)
  pair = lambda a, b: engine.interleave_replicas([a, b], layout.num_replicas)
  start = pair(result.private_a, result.private_b)
  keys = jax.vmap(lambda key: jax.random.split(jax.random.fold_in(key, 7), 2))(layout.keys())
  keys = keys.reshape(-1, keys.shape[-1])
  own = pair(jnp.asarray(a['train_x']), jnp.asarray(b['train_x']))
  val = pair(jnp.asarray(a['val_x']), jnp.asarray(b['val_x']))
  doubled_data = jnp.concatenate([own, pair(*extra)], axis=1)
  fitted = {stage: runner(stage, nll, start, data, val, keys)
            for stage, data in (('continued', own), ('doubled', doubled_data))}
  mean_nll = jax.jit(jax.vmap(lambda v, x: nll.eval_loss(
      v['params'], {k: value for k, value in v.items() if k != 'params'}, x)))
  fresh_both = pair(*fresh)
  private_nll = np.asarray(mean_nll(start, fresh_both), np.float64)
  # log P(x; th_private) - log P(x; th_cont), averaged: NLL(th_cont) - NLL(th_private).
  terms = {stage: (np.asarray(mean_nll({'params': fit.params, **fit.model_state}, fresh_both),
                              np.float64) - private_nll).reshape(-1, 2)
           for stage, fit in fitted.items()}
  return [{'fresh_continued_a_term': float(terms['continued'][r, 0]),
           'fresh_continued_b_term': float(terms['continued'][r, 1]),
           'fresh_doubling_a_term': float(terms['doubled'][r, 0]),
           'fresh_doubling_b_term': float(terms['doubled'][r, 1]),
           'fresh_doubling_objective': float(terms['doubled'][r].sum())}
          for r in range(layout.num_replicas)]


SIDE_BY_SIDE = ('train.private.lr', 'train.private.weight_decay', 'train.joint.lr',
                'train.joint.weight_decay', 'eps')
"""Settings of ``config.side_by_side`` this family trains side by side."""


def event_shape_of(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The shape of one example of domain A as ``config.data.a`` gives it (its data set
  loaded once; a domain read from the paper's files has the shape of its stand-in)."""
  return domains.load_array(config.data.a, 0)[0].shape[1:]


def build_models(config: ml_collections.ConfigDict,
                 event_shape: Sequence[int] | None = None) -> dict[str, Any]:
  """Algorithm 1's models by their role in ``config.model`` (unbound modules):

  * ``'density'``: the family M of the private models of A and B and of the shared model,
    a density over events of ``event_shape`` (:func:`harness.models.build_density`);
  * ``'flow'``: the transformation T, a bijection of such events
    (:func:`harness.models.build_flow`).

  Args:
    config: an LRMF config.
    event_shape: the shape of one example of A and B; ``None``: :func:`event_shape_of`.
  """
  shape = event_shape_of(config) if event_shape is None else tuple(event_shape)
  return {'density': models.build_density(config.model.density, shape),
          'flow': models.build_flow(config.model.flow)}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs LRMF for every seed of ``config.seeds`` and every setting of
  ``config.side_by_side`` in ``workdir``; returns the results."""
  start = time.time()
  layout = replicas.layout_of(config, SIDE_BY_SIDE)
  seeds = layout.seeds
  pairs = [load_domains(config, seed) for seed in seeds]
  a, b = (layout.tile(replicas.stack([pair[side] for pair in pairs])) for side in (0, 1))
  check_sizes(config, a['train_x'].shape[1], b['train_x'].shape[1], layout.num_replicas)
  fresh_size = config.get('fresh_eval_size', 0)
  if config.get('doubling_control', False) and not (
      fresh_size and is_synthetic(config.data.a) and is_synthetic(config.data.b)):
    raise ValueError('config.doubling_control needs fresh points: synthetic domains and '
                     'config.fresh_eval_size > 0')
  built = build_models(config, a['train_x'].shape[2:])
  density, flow = built['density'], built['flow']
  metrics = workdir_lib.MetricsLog(workdir)
  runner = stage_runner(config, workdir, metrics, layout)
  result = algorithm.train_lrmf(
      flow=flow, density=density, a_train=a['train_x'], b_train=b['train_x'],
      a_val=a['val_x'], b_val=b['val_x'], keys=layout.keys(), eps=layout.values(config, 'eps'),
      private_runner=runner, joint_runner=runner,
      estimate_bias=config.get('estimate_bias', False), restarts=config.get('restarts', 1),
      private_restarts=config.get('private_restarts', 1))
  per_replica = evaluate([layout.config_of(config, index) for index in range(layout.num_replicas)],
                         flow, density, result, [pairs[seed] for seed in layout.seed_index()])
  fresh = fresh_points(config, layout, fresh_size)
  if fresh is not None:
    control = (doubling_control(config, density, result, layout, runner, a, b, fresh)
               if config.get('doubling_control', False) else [{}] * layout.num_replicas)
    for index, (values, fresh_values, control_values) in enumerate(zip(
        per_replica, fresh_evaluation(config, flow, density, result, layout, fresh), control)):
      values.update(fresh_values, **control_values)
      # A flag the fresh data contradict: converged on the test split while Eq. 3 on fresh
      # data lies beyond 2 eps of zero (no seed may do this).
      eps = layout.config_of(config, index).eps
      values['converged_but_fresh_off'] = bool(
          values['converged'] and abs(values['fresh_objective']) > 2 * eps)
      if control_values:
        # Eq. 3 on fresh data less its offset at a perfect alignment (doubling_control).
        beyond = values['fresh_objective'] - values['fresh_doubling_objective']
        values['fresh_objective_beyond_doubling'] = beyond
        values['fresh_b_term_beyond_doubling'] = (values['fresh_objective_b_term']
                                                  - values['fresh_doubling_b_term'])
        values['fresh_within_eps_beyond_doubling'] = bool(abs(beyond) <= eps)
  results = replicas.aggregate_layout(per_replica, layout)
  results['seconds'] = time.time() - start
  return workdir_lib.finish_run(workdir, results, metrics, plot=lambda: _plot(
      config, flow, density, result.replica(0), pairs[0][0], pairs[0][1], per_replica[0],
      workdir, seeds if layout.num_replicas == len(seeds) else None))


def transformer(flow):
  """``(flow_variables, x) -> T(x)`` on numpy arrays, compiled once; keep it across calls."""
  forward = jax.jit(lambda v, x: flow.apply(v, x, method=type(flow).forward))
  return lambda flow_variables, x: np.asarray(forward(flow_variables, jnp.asarray(x)))


def back_to_back_transformer(density: densities.FlowDensity):
  """``(result, x) -> (F o G^-1)(x)`` on numpy arrays: the back-to-back map of the private
  models of one replica's :class:`lrmf.algorithm.LRMFResult` (Fig. 4 and 6a's
  AlignFlow-inspired baseline, :func:`lrmf.baselines.back_to_back_from_densities`), compiled
  once for every result of ``density``; keep it across calls."""
  move = transformer(baselines.back_to_back(density.flow, density.flow))

  def apply(result: algorithm.LRMFResult, x: np.ndarray) -> np.ndarray:
    _, variables = baselines.back_to_back_from_densities(
        density_a=density, variables_a=result.private_a, density_b=density,
        variables_b=result.private_b)
    return move(variables, x)

  return apply


def evaluate(configs: list[ml_collections.ConfigDict], flow, density,
             result: algorithm.LRMFResult, pairs: list[tuple[dict, dict]]) -> list[dict]:
  """Test-split metrics of every replica of an :class:`lrmf.algorithm.LRMFResult`.

  ``result`` has ``R`` replicas; ``pairs[r]`` are replica ``r``'s domains ``(a, b)`` (split
  dicts of one seed, test splits of one size for all replicas) and ``configs[r]`` its
  config (its ``eps``). Per replica: the held-out objective with its standard error over
  the test points, the part of it due to the worst 1% of points and the two-sided flag
  (:func:`lrmf.held_out.held_out_checks`, one program for all replicas), the objective of
  the identity map, moments and 1-NN accuracy: of ``T``, of the identity and, for a
  :class:`nflax.densities.FlowDensity` with labelled domains, of the back-to-back map
  ``F o G^-1`` of the replica's private models
  (:func:`lrmf.baselines.back_to_back_from_densities`).
  """
  test_a = jnp.asarray(np.stack([a['test_x'] for a, _ in pairs]))
  test_b = jnp.asarray(np.stack([b['test_x'] for _, b in pairs]))
  common = dict(flow=flow, density=density, private_a=result.private_a,
                private_b=result.private_b, a=test_a, b=test_b,
                eps=np.array([config.eps for config in configs]))
  checks = held_out.held_out_checks(flow_variables=result.flow_variables,
                                     shared=result.shared_variables, **common)
  move = transformer(flow)
  initial = jax.jit(flow.init)(jax.random.PRNGKey(0), test_a[0, :8])
  # The reference "no alignment" objective needs T = identity, which flows with a
  # data-dependent initialisation (ActNorm) are not at init.
  first = pairs[0][0]['test_x'][:64]
  identity_objectives = [None] * len(pairs)
  if np.allclose(move(initial, first), first, atol=1e-5):
    tiled = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (len(pairs),) + leaf.shape),
                         initial)
    identity_objectives = [check.objective for check in held_out.held_out_checks(
        flow_variables=tiled, shared=result.private_b, **common)]
  back_to_back = (back_to_back_transformer(density)
                  if isinstance(density, densities.FlowDensity) and _labelled(configs[0])
                  else None)
  return [_replica_metrics(configs[r], result.replica(r), *pairs[r], checks[r],
                           identity_objectives[r], move, back_to_back)
          for r in range(len(pairs))]


def _replica_metrics(config, result: algorithm.LRMFResult, a, b, check: held_out.HeldOutCheck,
                     identity_objective: float | None, move, back_to_back=None) -> dict:
  """One replica's metrics of :func:`evaluate` (``result`` without the replica axis;
  ``back_to_back(result, x)``: ``F o G^-1`` of its private models applied to ``x``, or
  ``None``)."""
  flat = lambda x: x.reshape(len(x), -1)
  moved = flat(move(result.flow_variables, a['test_x']))
  moved_back_to_back = (None if back_to_back is None
                        else flat(back_to_back(result, a['test_x'])))
  moved_train = flat(move(result.flow_variables, a['train_x']))
  a = {key: flat(value) if key.endswith('_x') else value for key, value in a.items()}
  b = {key: flat(value) if key.endswith('_x') else value for key, value in b.items()}
  results = {
      'test_objective': check.objective,
      'test_objective_point_se': check.standard_error,
      'test_objective_worst_percent': check.worst_percent,
      'test_objective_a_term': check.objective_a,
      'test_objective_b_term': check.objective_b,
      'val_objective': float(result.objective),
      'val_objective_point_se': float(result.objective_se),
      'val_converged': bool(result.converged),
      **({} if result.bias is None else {'e_bias_estimate': float(result.bias)}),
      **({} if result.restart_objectives is None else {
          'train_objective': float(result.restart_objectives.min()),
          'train_objective_worst_restart': float(result.restart_objectives.max())}),
      'converged': check.converged,
      'converged_algorithm1': check.converged_algorithm1,
      'eps': config.eps,
      'mean_error': float(np.linalg.norm(moved.mean(0) - b['test_x'].mean(0))),
      'covariance_error': float(np.linalg.norm(
          np.cov(moved, rowvar=False) - np.cov(b['test_x'], rowvar=False))),
      'train_mean_error': float(np.linalg.norm(moved_train.mean(0) - b['train_x'].mean(0))),
      'train_covariance_error': float(np.linalg.norm(
          np.cov(moved_train, rowvar=False) - np.cov(b['train_x'], rowvar=False))),
  }
  if identity_objective is not None:
    results['test_objective_identity_map'] = identity_objective
  accuracy = one_nn_accuracy(config, a, b, moved)
  if accuracy is not None:
    results['one_nn_accuracy'] = accuracy
    results['one_nn_accuracy_identity_map'] = one_nn_accuracy(config, a, b, a['test_x'])
    if moved_back_to_back is not None:
      results['one_nn_accuracy_back_to_back'] = one_nn_accuracy(config, a, b,
                                                                moved_back_to_back)
  return results


def one_nn_accuracy(config, a, b, moved: np.ndarray) -> float | None:
  """1-NN fitted on B's labelled training points, scored on ``moved`` = T(A_test) with A's
  labels (setup 1's local-structure metric); ``None`` when a domain has no labels."""
  if not _labelled(config):
    return None
  return baselines.one_nn_accuracy(reference_x=b['train_x'], reference_labels=b['train_labels'],
                                   x=moved, labels=a['test_labels'])


def _labelled(config) -> bool:
  """Whether both domains carry labels (the 1-NN metrics need them)."""
  return bool(config.data.a.get('label_field') and config.data.b.get('label_field'))


def _position_colours(x: np.ndarray) -> np.ndarray:
  """A colour value per point from its angle about A's centre (shows tearing)."""
  centred = x - x.mean(0)
  return np.arctan2(centred[:, 1], centred[:, 0])


def plot_objective(workdir: str, test_objective: float,
                   seeds: tuple[int, ...] | None = None, restarts: int = 1) -> None:
  """``plots/objective.png``: the joint stage's held-out objective (Eq. 3) against 0, one
  curve per seed (and restart, ``restarts > 1``); ``test_objective`` (the title) is the
  first seed's."""
  history = workdir_lib.read_metrics(workdir, 'joint')
  labels = seeds
  if seeds is not None and restarts > 1:
    labels = [f'{seed} (restart {k})' for seed in seeds for k in range(restarts)]
  series = plots.replica_series('Eq. 3', history, 'val_loss', labels)
  if len(series[0][1]):
    plots.curves(series, os.path.join(workdir_lib.plots_dir(workdir), 'objective.png'),
                 ylabel='held-out LRMF objective, Eq. 3 (nats)', hline=0.0,
                 title=f'test objective {test_objective:.4f} (seed {(seeds or (0,))[0]})')


def _plot(config, flow, density, result, a, b, results, workdir, seeds) -> None:
  out = workdir_lib.plots_dir(workdir)
  plot_objective(workdir, results['test_objective'], seeds, config.get('restarts', 1))
  if a['test_x'].ndim == 4:
    _plot_images(flow, result, a, b, config.data.get('logit_alpha'),
                 os.path.join(out, 'translations.png'))
  if a['test_x'].ndim != 2 or a['test_x'].shape[1] != 2:
    return
  moved = transformer(flow)(result.flow_variables, a['test_x'])
  colours = _position_colours(a['test_x'])
  plots.scatter_panels([('A', a['test_x']), ('B', b['test_x']), ('T(A)', moved)],
                       os.path.join(out, 'alignment.png'), colors=[colours, None, colours])
  log_prob = jax.jit(lambda v, x: density.apply(v, x, method=type(density).log_prob))
  everything = np.concatenate([a['test_x'], b['test_x'], moved])
  plots.density_panels(
      [('private model of A', lambda g: log_prob(result.private_a, jnp.asarray(g))),
       ('private model of B', lambda g: log_prob(result.private_b, jnp.asarray(g))),
       ('shared model', lambda g: log_prob(result.shared_variables, jnp.asarray(g)))],
      everything, os.path.join(out, 'densities.png'))
  _plot_vector_field(flow, result.flow_variables, a['test_x'], os.path.join(out, 'vector_field.png'))


def _plot_images(flow, result, a, b, logit_alpha, path, count=12) -> None:
  """Fig. 6a: A, T(A), B and T^-1(B) as images (mapped back from logit space)."""
  def inverse(flow_variables, y):
    return np.asarray(flow.apply(flow_variables, jnp.asarray(y), method=type(flow).inverse))

  view = (lambda x: from_logit_space(x, logit_alpha)) if logit_alpha is not None else np.asarray
  a_test, b_test = a['test_x'][:count], b['test_x'][:count]
  plots.image_rows([('A', view(a_test)), ('T(A)', view(transformer(flow)(result.flow_variables,
                                                                          a_test))),
                    ('B', view(b_test)), ('T^-1(B)', view(inverse(result.flow_variables, b_test)))],
                   path)


def _plot_vector_field(flow, flow_variables, points, path, resolution=20) -> None:
  """Arrows ``T(x) - x`` on a grid over A's bounding box."""
  lo, hi = points.min(0), points.max(0)
  xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
  grid = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)
  moved = transformer(flow)(flow_variables, grid)
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.scatter(points[:, 0], points[:, 1], s=2, c='0.7')
  ax.quiver(grid[:, 0], grid[:, 1], moved[:, 0] - grid[:, 0], moved[:, 1] - grid[:, 1],
            angles='xy', scale_units='xy', scale=1.0, width=0.003)
  ax.set_title('T(x) - x')
  ax.set_aspect('equal', adjustable='box')
  plots.save(fig, path)
