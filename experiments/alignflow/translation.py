"""AlignFlow translation experiments (AlignFlow Sec. 5.1, 5.3; Table 1, 3; Fig. 2, 4).

Data -> train -> evaluate -> write, for two domains with a known pairing:

1. load paired domains (``config.data``, :mod:`experiments.alignflow.paired_data`): either
   one paired data set with fields ``a`` and ``b`` (``mnist_transformed_pair``), or two point
   sets ``config.data.a`` / ``config.data.b`` drawn with the same seed (moons and the same
   moons rotated). The pairs are split into disjoint A-train and B-train halves (so training
   is unpaired), then paired validation and test splits. With ``config.data.root``, the
   paper's pix2pix pairs (Maps, Facades, CityScapes) from that folder;
2. train one model per entry of ``config.modes``: ``'adversarial'`` (lam = 0),
   ``'hybrid'`` (one run per ``config.lams``, Table 3), ``'mle'`` (critics off,
   lam -> inf), all AlignFlow (``config.model.alignflow``) through the same loss and step;
   and ``'cyclegan'`` (the baseline ``config.model.cyclegan``, same critics
   ``config.model.critic`` and GAN form). The flows train with ``config.train.flows``, the
   critics with ``config.train.critic``, CycleGAN's generators with ``config.train.cyclegan``;
   ``config.train.flows`` also holds every stage's loop (steps, batch, dispatch, checkpoint
   and evaluation periods). Each stage is checkpointed and resumes;
3. evaluate on the paired test split (:mod:`experiments.alignflow.evaluation`): MSE of
   ``G_{A->B}(a)`` to its true pair ``b`` and of ``G_{B->A}(b)`` to ``a`` (Table 1; images in
   ``[-1, 1]``), the largest cycle error ``|G_{B->A}(G_{A->B}(a)) - a|`` computed in float64
   in data space and between the pre-processed (logit) spaces where the flows act (Prop. 1:
   float rounding for the flows), the share of translations whose logits lie beyond float64's
   sigmoid and the share of float32 round trips that saturate (over the test and validation
   pairs), held-out log-likelihoods; the hybrid ``lam`` is chosen by validation MSE (Table 1
   reports the cross-validated best);
4. write ``results.json`` (with each stage's generator and critic parameter counts and,
   when CycleGAN runs, ``generator_param_ratio/cyclegan_vs_<stage>``, CycleGAN's generator
   parameters over each AlignFlow stage's: the capacity side of the comparison; the
   paired MSE's chance levels ``mse_mean_image/<direction>`` and
   ``mse_wrong_pair/<direction>``) and plots:
   ``validation_mse.png``, the paired validation MSE against steps of every stage and seed
   (logged every ``config.train.flows.eval_every`` steps), translations (scatter plots for
   points, image grids for images), paired samples from ``Z`` and latent interpolations
   ``z1 sin(phi) + z2 cos(phi)`` decoded into both domains (Fig. 2, 4).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from alignflow import critics as critics_lib
from alignflow import cyclegan
from alignflow import model as model_lib
from alignflow import training as alignflow_training
from experiments.alignflow import evaluation, paired_data
from harness import config_checks, replicas, stages
from harness import workdir as workdir_lib
from nflax import bijectors, engine, nets, two_player

MODES = ('adversarial', 'hybrid', 'mle', 'cyclegan')


def build_alignflow(block: ml_collections.ConfigDict) -> model_lib.AlignFlow:
  """The two flows of ``block`` (``config.model.alignflow``) with ``num_shared`` shared layers.

  Images (the block has ``num_levels``): each private flow is
  :func:`nflax.bijectors.realnvp_image` (AlignFlow App. B.1, reduced), the shared layers are
  ActNorm + checkerboard couplings on the latent image, and the fixed pre-processing
  ``[-1, 1] -> [0, 1] -> logit`` keeps the data -> data map a bijection. Points: Real NVP
  private (``num_private``) and shared blocks of MLP widths ``hidden``, no pre-processing.
  """
  if 'num_levels' in block:
    def private():
      return bijectors.realnvp_image(
          num_levels=block.num_levels, hidden_channels=block.hidden_channels,
          num_blocks=block.num_blocks, num_checkerboard=block.num_checkerboard,
          num_channelwise=block.num_channelwise, num_final=block.num_final)
    conditioner = functools.partial(nets.ResNet, hidden_channels=block.hidden_channels,
                                    num_blocks=block.num_blocks)
    shared_layers = []
    for index in range(block.num_shared):
      shared_layers += [bijectors.ActNorm(), bijectors.AffineCoupling(
          mask='checkerboard', parity=index % 2 == 1, conditioner=conditioner)]
    preprocess = bijectors.Chain([bijectors.ScaleShift(scale=0.5, shift=0.5),
                                  bijectors.Logit(alpha=block.logit_alpha)])
  else:
    def private():
      return bijectors.realnvp(num_blocks=block.num_private, hidden=tuple(block.hidden))
    shared_layers = ([bijectors.realnvp(num_blocks=block.num_shared, hidden=tuple(block.hidden))]
                     if block.num_shared else [])
    preprocess = None
  shared = bijectors.Chain(shared_layers) if shared_layers else None
  return model_lib.AlignFlow(private_a=private(), private_b=private(), shared=shared,
                             preprocess=preprocess)


def build_critic(block: ml_collections.ConfigDict) -> nn.Module:
  """The critic architecture of ``C_A`` and ``C_B`` (``config.model.critic``): a
  :class:`~alignflow.critics.PatchCritic` for images (the block has ``base_channels``), an MLP
  critic of widths ``hidden`` for points."""
  if 'base_channels' in block:
    return critics_lib.PatchCritic(base_channels=block.base_channels,
                                   num_layers=block.num_layers)
  return critics_lib.MLPCritic(hidden=tuple(block.hidden))


def build_cyclegan(block: ml_collections.ConfigDict) -> cyclegan.CycleGAN:
  """The baseline's two generators (``config.model.cyclegan``): ResNet image translators
  (the block has ``hidden_channels``), MLP translators of widths ``hidden`` for points."""
  if 'hidden_channels' in block:
    make = functools.partial(cyclegan.ImageTranslator, hidden_channels=block.hidden_channels,
                             num_blocks=block.num_blocks)
  else:
    make = functools.partial(cyclegan.VectorTranslator, hidden=tuple(block.hidden))
  return cyclegan.CycleGAN(a_to_b_net=make(), b_to_a_net=make())


MODEL_BUILDERS: dict[str, Callable[[ml_collections.ConfigDict], Any]] = {
    'alignflow': build_alignflow, 'critic': build_critic, 'cyclegan': build_cyclegan}
"""Role in ``config.model`` -> the builder of its block."""


def build_roles(model_config: ml_collections.ConfigDict,
                builders: dict[str, Callable[[ml_collections.ConfigDict], Any]]
                ) -> dict[str, Any]:
  """``{role: builders[role](block)}`` for every ``role: block`` of ``model_config``."""
  unknown = set(model_config) - set(builders)
  if unknown:
    raise ValueError(f'unknown config.model roles {sorted(unknown)}; known: {sorted(builders)}')
  return {role: builders[role](block) for role, block in model_config.items()}


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The models of ``config``, by role, unbound (a block's fields choose images or points):

  * ``'alignflow'``: the :class:`~alignflow.model.AlignFlow` of the two flows ``G_A: A -> Z``
    and ``G_B: B -> Z`` with their shared latent space (:func:`build_alignflow`);
  * ``'critic'``: the architecture of both critics ``C_A`` and ``C_B`` (:func:`build_critic`);
  * ``'cyclegan'``: the baseline's :class:`~alignflow.cyclegan.CycleGAN` generators
    (:func:`build_cyclegan`).
  """
  return build_roles(config.model, MODEL_BUILDERS)


def optimizer_of(config: ml_collections.ConfigDict, block: str) -> optax.GradientTransformation:
  """The optimiser of ``config.train.<block>`` (:func:`harness.stages.make_optimizer`); its
  schedule spans the stage's ``config.train.flows.num_steps``."""
  return stages.make_optimizer(config.train[block], num_steps=config.train.flows.num_steps)


def training_stages(config: ml_collections.ConfigDict) -> list[tuple[str, str, float]]:
  """``(stage name, mode, lam)`` for every model the config trains."""
  unknown = set(config.modes) - set(MODES)
  if unknown:
    raise ValueError(f'unknown config.modes {sorted(unknown)}; available: {MODES}')
  stages = []
  for mode in config.modes:
    if mode == 'hybrid':
      stages += [(f'hybrid_lam{lam:g}', mode, float(lam)) for lam in config.lams]
    else:
      stages.append((mode, mode, 0.0 if mode in ('adversarial', 'cyclegan') else 1.0))
  return stages


class StageSetup(NamedTuple):
  """What one training stage needs: the generator, its objective and optimiser, a state."""
  model: nn.Module
  objective: alignflow_training.GeneratorObjective
  optimizer: optax.GradientTransformation
  train_critics: bool
  state: two_player.TwoPlayerState


def init_stage(config: ml_collections.ConfigDict, models: dict[str, Any], mode: str,
               lam: float, init_batch: tuple[jax.Array, jax.Array], *,
               critic_optimizer: optax.GradientTransformation, model_key: jax.Array,
               critic_keys: tuple[jax.Array, jax.Array]) -> StageSetup:
  """The generator of ``mode`` (one of :data:`MODES`) and fresh replicated states.

  AlignFlow modes are settings of one objective (Eq. 7) of ``models['alignflow']``:
  ``'adversarial'`` (``lam = 0``), ``'hybrid'`` (``lam_A = lam_B = lam``), ``'mle'``
  (critics off), trained with ``config.train.flows``; ``'cyclegan'`` is the baseline
  ``models['cyclegan']`` with the same critics ``models['critic']``, trained with
  ``config.train.cyclegan``. ``init_batch = (a, b)``, ``(R, B, *event)`` each, initialise
  every replica's generator (data-dependent ActNorm) and critics ``C_A``, ``C_B`` from its
  keys (``model_key`` and ``critic_keys`` are ``(R, 2)``).
  """
  event_shape = tuple(init_batch[0].shape[2:])
  critic = models['critic']
  if mode == 'cyclegan':
    if 'cyclegan' not in models:
      raise ValueError("config.modes has 'cyclegan' but config.model has no cyclegan block")
    model = models['cyclegan']
    objective = cyclegan.cyclegan_objective(model=model, critic=critic, form=config.gan_form,
                                            cycle_weight=config.cyclegan_cycle_weight)
    optimizer = optimizer_of(config, 'cyclegan')
  else:
    model = models['alignflow']
    objective = alignflow_training.alignflow_objective(
        model=model, critic=critic, form=config.gan_form, lam_a=lam, lam_b=lam,
        adversarial_weight=0.0 if mode == 'mle' else 1.0,
        dequantization_width=config.dequantization_width)
    optimizer = optimizer_of(config, 'flows')

  def one(model_key, critic_key_a, critic_key_b, a, b):
    return alignflow_training.init_state(
        variables=model.init(model_key, a, b),
        critic_params={'a': critic.init(critic_key_a, a)['params'],
                       'b': critic.init(critic_key_b, b)['params']},
        optimizer=optimizer, critic_optimizer=critic_optimizer, pool_size=config.pool_size,
        event_shape=event_shape)

  state = jax.jit(jax.vmap(one))(model_key, *critic_keys, *init_batch)
  return StageSetup(model, objective, optimizer, mode != 'mle', state)


def train_stage(config: ml_collections.ConfigDict, workdir: str, stage: str,
                state: two_player.TwoPlayerState, data: dict[str, np.ndarray], *,
                model: nn.Module, objective, critic, optimizer, critic_optimizer,
                train_critics: bool, key: jax.Array, metrics: workdir_lib.MetricsLog,
                until: int | None = None) -> two_player.TwoPlayerState:
  """Trains one stage's :func:`alignflow.training.train_step` with the engine, to ``until``,
  for every replica: ``state`` is replicated, ``data`` holds ``(R, n, *event)`` arrays and
  ``key`` is ``(R, 2)``.

  The loop's settings are ``config.train.flows``'s. ``until`` defaults to its ``num_steps``;
  a smaller one stops part-way (the optimisers' schedules still span ``num_steps``), so a
  later call continues the same run. The stage is checkpointed every ``checkpoint_every``
  steps and at ``until`` (:func:`harness.stages.run_stage`, which restores a checkpoint when
  present), the engine's guard stops it on a NaN/Inf before a bad update is applied, and the
  paired validation MSE (:class:`~experiments.alignflow.evaluation.PairedValidationMSE`, when
  ``data`` has ``val_a``/``val_b``) is logged every ``eval_every`` steps; the last state is
  kept (no selection on it).

  Returns:
    The stage's replicated state at ``until``.
  """
  step_fn = alignflow_training.AlternatingStep(
      objective=objective, critic=critic, form=config.gan_form, optimizer=optimizer,
      critic_optimizer=critic_optimizer, train_critics=train_critics)
  train_data = engine.Independent((data['train_a'], data['train_b']))
  validation = None
  if 'val_a' in data:
    validation = (data['val_a'], data['val_b'])

  result = stages.run_stage(
      stages.Stage(name=stage, step_fn=step_fn, state=state, train_data=train_data, keys=key,
                   train_config=config.train.flows, val_data=validation,
                   evaluate=(None if validation is None
                             else evaluation.PairedValidationMSE(model))),
      workdir=workdir, metrics=metrics, until=until)
  return result.run.state


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains and evaluates every mode of ``config.modes`` for every seed (side by side)."""
  start = time.time()
  seeds = replicas.seeds_of(config)
  per_seed_data = [paired_data.load_paired_domains(config, seed) for seed in seeds]
  data = replicas.stack(per_seed_data)
  batch = config.train.flows.batch_size
  config_checks.check_batch_sizes({'train.flows.batch_size': (batch, min(
      data['train_a'].shape[1], data['train_b'].shape[1]))}, len(seeds))
  images = paired_data.is_image(tuple(data['train_a'].shape[2:]))
  if images != ('num_levels' in config.model.alignflow):
    raise ValueError(f"config.model.alignflow {'lacks' if images else 'has'} num_levels (image "
                     f"flows), but the data are {'images' if images else 'points'}")
  models = build_models(config)
  critic = models['critic']
  metrics = workdir_lib.MetricsLog(workdir)
  figures = []
  critic_optimizer = optimizer_of(config, 'critic')
  init_batch = (jnp.asarray(data['train_a'][:, :batch]), jnp.asarray(data['train_b'][:, :batch]))
  per_seed: list[dict] = [{} for _ in seeds]
  val_mse: list[dict[str, float]] = [{} for _ in seeds]
  per_stage: dict[str, float] = {}  # wall times and model sizes: one value for all seeds
  for index, (stage, mode, lam) in enumerate(training_stages(config)):
    stage_start = time.time()
    stage_keys = jax.vmap(lambda key: jax.random.split(jax.random.fold_in(key, index), 5))(
        replicas.keys(seeds))
    init_key, critic_key_a, critic_key_b, train_key, plot_key = jnp.moveaxis(stage_keys, 1, 0)
    model, objective, optimizer, train_critics, state = init_stage(
        config, models, mode, lam, init_batch, critic_optimizer=critic_optimizer,
        model_key=init_key, critic_keys=(critic_key_a, critic_key_b))
    state = train_stage(config, workdir, stage, state, data, model=model, objective=objective,
                        critic=critic, optimizer=optimizer, critic_optimizer=critic_optimizer,
                        train_critics=train_critics, key=train_key, metrics=metrics)
    # Test and validation pairs in one batch: each direction compiles once for all seeds.
    num_test = data['test_a'].shape[1]
    both_a = np.concatenate([data['test_a'], data['val_a']], 1)
    both_b = np.concatenate([data['test_b'], data['val_b']], 1)
    trained = {'params': state.params, **state.model_state}
    reports, translated = evaluation.cycle_report(model, trained, both_a, both_b)
    if mode != 'cyclegan':
      log_prob_a, log_prob_b = jax.jit(jax.vmap(model.apply))(trained, data['test_a'],
                                                              data['test_b'])
    for replica, seed_data in enumerate(per_seed_data):
      one = engine.replica(translated, replica)
      test = {**evaluation.paired_mses(one, both_a[replica], both_b[replica],
                                       slice(0, num_test)),
              **reports[replica]}
      val = evaluation.paired_mses(one, both_a[replica], both_b[replica],
                                   slice(num_test, None))
      val_mse[replica][stage] = (val['mse_a_to_b'] + val['mse_b_to_a']) / 2
      for name, value in test.items():
        per_seed[replica][f'{name}/{stage}'] = value
      if mode != 'cyclegan':
        per_seed[replica][f'test_log_likelihood_a/{stage}'] = float(jnp.mean(log_prob_a[replica]))
        per_seed[replica][f'test_log_likelihood_b/{stage}'] = float(jnp.mean(log_prob_b[replica]))
      if replica == 0:
        first = engine.replica(trained, 0)
        a_to_b, b_to_a = evaluation.translators(model, first)
        if mode != 'cyclegan':
          figures.append(functools.partial(evaluation.plot_latent, stage, model, first,
                                           seed_data, plot_key[0]))
        figures.append(functools.partial(evaluation.plot_translations, stage, a_to_b, b_to_a,
                                         seed_data))
    per_stage[f'seconds/{stage}'] = time.time() - stage_start
    # Generator parameters (both directions) and critic parameters, for a fair comparison.
    per_stage[f'num_generator_params/{stage}'] = int(sum(
        leaf[0].size for leaf in jax.tree.leaves(state.params)))
    per_stage[f'num_critic_params/{stage}'] = int(sum(
        leaf[0].size for leaf in jax.tree.leaves(state.critic_params)))
    logging.info('[%s] %.0f s', stage, per_stage[f'seconds/{stage}'])
  if 'cyclegan' in config.modes:  # the comparison's capacity ratio, stated (1: matched)
    for stage, mode, _ in training_stages(config):
      if mode != 'cyclegan':
        per_stage[f'generator_param_ratio/cyclegan_vs_{stage}'] = (
            per_stage['num_generator_params/cyclegan'] / per_stage[f'num_generator_params/{stage}'])
  hybrid = [stage for stage, mode, _ in training_stages(config) if mode == 'hybrid']
  for replica, seed_data in enumerate(per_seed_data):
    result = per_seed[replica]
    result['num_train_per_domain'] = len(seed_data['train_a'])
    result['num_test_pairs'] = len(seed_data['test_a'])
    result.update(evaluation.chance_levels(seed_data))
    if hybrid:  # lam chosen per seed on its validation pairs (Table 1: cross-validated)
      best = min(hybrid, key=lambda stage: val_mse[replica][stage])
      result['hybrid_best_lam_stage'] = best
      for direction in ('a_to_b', 'b_to_a'):
        result[f'mse_{direction}/hybrid_best'] = result[f'mse_{direction}/{best}']
        if {'adversarial', 'mle'} <= set(config.modes):
          result[f'hybrid_beats_adversarial_and_mle/{direction}'] = bool(
              result[f'mse_{direction}/{best}'] < min(result[f'mse_{direction}/adversarial'],
                                                      result[f'mse_{direction}/mle']))
  results = {**replicas.aggregate(per_seed, seeds), **per_stage}
  results['seconds'] = time.time() - start

  def plot():
    out_dir = workdir_lib.plots_dir(workdir)
    for figure in figures:
      figure(out_dir)
    evaluation.plot_validation_curves(
        workdir, [stage for stage, _, _ in training_stages(config)],
        os.path.join(out_dir, 'validation_mse.png'))

  return workdir_lib.finish_run(workdir, results, metrics, plot=plot)
