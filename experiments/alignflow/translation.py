"""AlignFlow translation experiments (AlignFlow Sec. 5.1, 5.3; Table 1, 3; Fig. 2, 4).

Data -> train -> evaluate -> write, for two domains with a known pairing:

1. load paired domains (``config.data``): either one paired data set with fields ``a``
   and ``b`` (``mnist_transformed_pair``), or two point sets ``config.data.a`` /
   ``config.data.b`` drawn with the same seed (moons and the same moons rotated). The
   pairs are split into disjoint A-train and B-train halves (so training is unpaired),
   then paired validation and test splits. With ``config.data.root``, the paper's pix2pix
   pairs (Maps, Facades, CityScapes) from that folder (:func:`load_paper_pairs`);
2. train one model per entry of ``config.modes``: ``'adversarial'`` (lam = 0),
   ``'hybrid'`` (one run per ``config.lams``, Table 3), ``'mle'`` (critics off,
   lam -> inf), all AlignFlow through the same loss and step; and ``'cyclegan'`` (the
   baseline, same critics and GAN form). Each stage is checkpointed and resumes;
3. evaluate on the paired test split: MSE of ``G_{A->B}(a)`` to its true pair ``b`` and
   of ``G_{B->A}(b)`` to ``a`` (Table 1; images in ``[-1, 1]``), the largest cycle error
   ``|G_{B->A}(G_{A->B}(a)) - a|`` computed in float64 in data space and between the
   pre-processed (logit) spaces where the flows act (Prop. 1: float rounding for the
   flows), the share of translations whose logits lie beyond float64's sigmoid and the share
   of float32 round trips that saturate (:func:`cycle_report`; over the test and validation
   pairs), held-out log-likelihoods; the hybrid ``lam`` is chosen by validation MSE (Table 1
   reports the cross-validated best);
4. write ``results.json`` (with each stage's generator and critic parameter counts and,
   when CycleGAN runs, ``generator_param_ratio/cyclegan_vs_<stage>``, CycleGAN's generator
   parameters over each AlignFlow stage's: the capacity side of the comparison; the
   paired MSE's chance levels ``mse_mean_image/<direction>`` and
   ``mse_wrong_pair/<direction>``) and plots:
   ``validation_mse.png``, the paired validation MSE against steps of every stage and seed
   (logged every ``config.train.eval_every`` steps), translations (scatter plots for
   points, image grids for images), paired samples from ``Z`` and latent interpolations
   ``z1 sin(phi) + z2 cos(phi)`` decoded into both domains (Fig. 2, 4).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from alignflow import critics as critics_lib
from alignflow import cyclegan, losses
from alignflow import model as model_lib
from alignflow import training as alignflow_training
from harness import data as data_lib
from harness.data import files, paper_data
from harness import domains
from harness import plots, replicas, stages, config_checks
from harness import workdir as workdir_lib
from nflax import bijectors, engine, nets, two_player

MODES = ('adversarial', 'hybrid', 'mle', 'cyclegan')


def load_paired_domains(config: ml_collections.ConfigDict,
                        seed: int) -> dict[str, np.ndarray]:
  """Unpaired training halves and paired validation / test splits of the two domains.

  ``seed`` draws the split and moves a synthetic data set's own ``seed`` option
  (:func:`harness.replicas.with_data_seed`; unchanged for seed 0). With ``config.data.root``
  set, the pairs are the paper's (:func:`load_paper_pairs`).

  Returns:
    ``train_a``, ``train_b`` (disjoint source examples), ``val_a``, ``val_b``,
    ``test_a``, ``test_b`` (``val_b[i]`` is the pair of ``val_a[i]``).
  """
  data = config.data
  if data.get('root'):
    return load_paper_pairs(data, seed)
  if 'name' in data:
    pair = data_lib.load(data.name, **replicas.with_data_seed(data.options, seed))
    a, b = (np.asarray(data_lib.validate(getattr(pair, field), f'{data.name}.{field}'))
            for field in ('a', 'b'))
  else:
    a, b = (np.asarray(data_lib.validate(
        getattr(data_lib.load(domain.name, **replicas.with_data_seed(domain.options, seed)),
                domain.field),
        f'{domain.name}.{domain.field}'), np.float32) for domain in (data.a, data.b))
  if a.shape != b.shape:
    raise ValueError(f'paired domains need equal shapes, got {a.shape} and {b.shape}')
  num_train, num_val, num_test = data.splits
  parts = domains.split_indices(len(a), (num_train, num_train, num_val, num_test), seed,
                                'the paired data set (two disjoint training halves)')
  return {'train_a': a[parts[0]], 'train_b': b[parts[1]], 'val_a': a[parts[2]],
          'val_b': b[parts[2]], 'test_a': a[parts[3]], 'test_b': b[parts[3]]}


def load_paper_pairs(data: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
  """A pix2pix data set (Maps, Facades, CityScapes) from the folder ``data.root``
  (:mod:`harness.data.paper_data`), RGB at ``data.options.size`` pixels a side in ``[-1, 1]``.

  ``data.splits = (num_train, num_val, num_test)``: ``num_train + num_val`` pairs of the
  training split, drawn with ``seed``, give the training images of both domains (the same
  scenes; training draws A and B batches independently, as CycleGAN's unaligned protocol
  does) and the validation pairs; ``num_test`` pairs of the test split (``test/``, else
  ``val/``) the test pairs.

  Returns:
    As :func:`load_paired_domains`: ``(n, size, size, 3)`` float32 arrays in ``[-1, 1]``.
  """
  num_train, num_val, num_test = data.splits
  out = {}
  for split, parts, sizes in (('train', ('train', 'val'), (num_train, num_val)),
                              ('test', ('test',), (num_test,))):
    pairs = paper_data.load_split(data.root, split, size=data.options.size)
    if not isinstance(pairs, files.ImagePair):
      raise ValueError(f'config.data.root: {data.root} holds '
                       f'{paper_data.format_of(data.root)}, not side-by-side image pairs')
    a, b = (paper_data.prepare_images(images, size=data.options.size, channels=3,
                                               value_range=(-1.0, 1.0))
            for images in pairs)
    for part, index in zip(parts, domains.split_indices(
        len(a), sizes, seed, f'the {split} split of {data.root}')):
      out[f'{part}_a'], out[f'{part}_b'] = a[index], b[index]
  return out


def _is_image(event_shape: tuple[int, ...]) -> bool:
  return len(event_shape) == 3


def build_alignflow(model_config: ml_collections.ConfigDict,
                    event_shape: tuple[int, ...]) -> model_lib.AlignFlow:
  """The two flows of ``model_config`` with ``num_shared`` shared layers.

  Images: each private flow is :func:`nflax.bijectors.realnvp_image` (AlignFlow App.
  B.1, reduced), the shared layers are ActNorm + checkerboard couplings on the latent
  image, and the fixed pre-processing ``[-1, 1] -> [0, 1] -> logit`` keeps the data ->
  data map a bijection. Vectors: Real NVP private and shared blocks, no pre-processing.
  """
  if _is_image(event_shape):
    def private():
      return bijectors.realnvp_image(
          num_levels=model_config.num_levels, hidden_channels=model_config.hidden_channels,
          num_blocks=model_config.num_blocks, num_checkerboard=model_config.num_checkerboard,
          num_channelwise=model_config.num_channelwise, num_final=model_config.num_final)
    conditioner = functools.partial(nets.ResNet, hidden_channels=model_config.hidden_channels,
                                    num_blocks=model_config.num_blocks)
    shared_layers = []
    for index in range(model_config.num_shared):
      shared_layers += [bijectors.ActNorm(), bijectors.AffineCoupling(
          mask='checkerboard', parity=index % 2 == 1, conditioner=conditioner)]
    preprocess = bijectors.Chain([bijectors.ScaleShift(scale=0.5, shift=0.5),
                                  bijectors.Logit(alpha=model_config.logit_alpha)])
  else:
    def private():
      return bijectors.realnvp(num_blocks=model_config.num_private,
                               hidden=tuple(model_config.hidden))
    shared_layers = ([bijectors.realnvp(num_blocks=model_config.num_shared,
                                        hidden=tuple(model_config.hidden))]
                     if model_config.num_shared else [])
    preprocess = None
  shared = bijectors.Chain(shared_layers) if shared_layers else None
  return model_lib.AlignFlow(private_a=private(), private_b=private(), shared=shared,
                             preprocess=preprocess)


def build_critic(critic_config: ml_collections.ConfigDict, event_shape: tuple[int, ...]):
  """A :class:`~alignflow.critics.PatchCritic` for images, an MLP critic for vectors."""
  if _is_image(event_shape):
    return critics_lib.PatchCritic(base_channels=critic_config.base_channels,
                                   num_layers=critic_config.num_layers)
  return critics_lib.MLPCritic(hidden=tuple(critic_config.hidden))


def build_cyclegan(config: ml_collections.ConfigDict,
                   event_shape: tuple[int, ...]) -> cyclegan.CycleGAN:
  settings = config.cyclegan
  if _is_image(event_shape):
    make = functools.partial(cyclegan.ImageTranslator, hidden_channels=settings.hidden_channels,
                             num_blocks=settings.num_blocks)
  else:
    make = functools.partial(cyclegan.VectorTranslator, hidden=tuple(settings.hidden))
  return cyclegan.CycleGAN(a_to_b_net=make(), b_to_a_net=make())


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


def init_stage(config: ml_collections.ConfigDict, mode: str, lam: float,
               init_batch: tuple[jax.Array, jax.Array], *, critic: nn.Module,
               critic_optimizer: optax.GradientTransformation, model_key: jax.Array,
               critic_keys: tuple[jax.Array, jax.Array]) -> StageSetup:
  """The generator of ``mode`` (one of :data:`MODES`) and fresh replicated states.

  AlignFlow modes are settings of one objective (Eq. 7): ``'adversarial'`` (``lam = 0``),
  ``'hybrid'`` (``lam_A = lam_B = lam``), ``'mle'`` (critics off); ``'cyclegan'`` is the
  baseline with the same critics. ``init_batch = (a, b)``, ``(R, B, *event)`` each,
  initialise every replica's generator (data-dependent ActNorm) and critics ``C_A``,
  ``C_B`` from its keys (``model_key`` and ``critic_keys`` are ``(R, 2)``).
  """
  event_shape = tuple(init_batch[0].shape[2:])
  if mode == 'cyclegan':
    model = build_cyclegan(config, event_shape)
    objective = cyclegan.cyclegan_objective(model=model, critic=critic, form=config.gan_form,
                                            cycle_weight=config.cyclegan.cycle_weight)
    grad_clip = 0.0
  else:
    model = build_alignflow(config.model, event_shape)
    objective = alignflow_training.alignflow_objective(
        model=model, critic=critic, form=config.gan_form, lam_a=lam, lam_b=lam,
        adversarial_weight=0.0 if mode == 'mle' else 1.0,
        dequantization_width=config.dequantization_width)
    grad_clip = config.train.flow_grad_clip
  optimizer = stages.make_optimizer(config.train, grad_clip=grad_clip)

  def one(model_key, critic_key_a, critic_key_b, a, b):
    return alignflow_training.init_state(
        variables=model.init(model_key, a, b),
        critic_params={'a': critic.init(critic_key_a, a)['params'],
                       'b': critic.init(critic_key_b, b)['params']},
        optimizer=optimizer, critic_optimizer=critic_optimizer, pool_size=config.pool_size,
        event_shape=event_shape)

  state = jax.jit(jax.vmap(one))(model_key, *critic_keys, *init_batch)
  return StageSetup(model, objective, optimizer, mode != 'mle', state)


@dataclasses.dataclass(frozen=True, eq=False)
class PairedValidationMSE:
  """The engine's ``evaluate(state, (a, b))``: paired MSE averaged over both directions,
  ``(|G_{A->B}(a) - b|^2 + |G_{B->A}(b) - a|^2) / 2`` per pixel (Table 1's metric on the
  validation pairs), logged as ``val_loss`` after every evaluation of a stage."""
  model: nn.Module

  def __call__(self, state: two_player.TwoPlayerState, pairs) -> jax.Array:
    a, b = pairs
    variables = {'params': state.params, **state.model_state}
    fake_b = self.model.apply(variables, a, method=type(self.model).a_to_b)
    fake_a = self.model.apply(variables, b, method=type(self.model).b_to_a)
    return 0.5 * (losses.paired_mse(translated=fake_b, target=b)
                  + losses.paired_mse(translated=fake_a, target=a))


def train_stage(config: ml_collections.ConfigDict, workdir: str, stage: str,
                state: two_player.TwoPlayerState, data: dict[str, np.ndarray], *,
                model: nn.Module, objective, critic, optimizer, critic_optimizer,
                train_critics: bool, key: jax.Array, metrics: workdir_lib.MetricsLog,
                until: int | None = None) -> two_player.TwoPlayerState:
  """Trains one stage's :func:`alignflow.training.train_step` with the engine, to ``until``,
  for every replica: ``state`` is replicated, ``data`` holds ``(R, n, *event)`` arrays and
  ``key`` is ``(R, 2)``.

  ``until`` defaults to ``config.train.num_steps``; a smaller one stops part-way (the
  optimiser's schedule still spans ``num_steps``), so a later call continues the same
  run. The stage is checkpointed every ``checkpoint_every`` steps and at ``until``
  (:func:`harness.stages.run_stage`, which restores a checkpoint when present), the
  engine's guard stops it on a NaN/Inf before a bad update is applied, and the paired
  validation MSE (:class:`PairedValidationMSE`, when ``data`` has ``val_a``/``val_b``) is
  logged every ``eval_every`` steps; the last state is kept (no selection on it).

  Returns:
    The stage's replicated state at ``until``.
  """
  settings = config.train
  step_fn = alignflow_training.AlternatingStep(
      objective=objective, critic=critic, form=config.gan_form, optimizer=optimizer,
      critic_optimizer=critic_optimizer, train_critics=train_critics)
  train_data = engine.Independent((data['train_a'], data['train_b']))
  validation = None
  if 'val_a' in data:
    validation = (data['val_a'], data['val_b'])

  result = stages.run_stage(
      stages.Stage(name=stage, step_fn=step_fn, state=state, train_data=train_data, keys=key,
                   train_config=settings, val_data=validation,
                   evaluate=None if validation is None else PairedValidationMSE(model)),
      workdir=workdir, metrics=metrics, until=until)
  return result.run.state


def translators(model: nn.Module, variables) -> tuple[Callable, Callable]:
  """Compiled ``(a_to_b, b_to_a)`` of a trained model (``(batch, *event)`` in and out)."""
  return (jax.jit(lambda x: model.apply(variables, x, method=type(model).a_to_b)),
          jax.jit(lambda x: model.apply(variables, x, method=type(model).b_to_a)))


def _cycle_errors(cycled: np.ndarray, original: np.ndarray) -> tuple[float, float]:
  """Largest ``|cycled - original|`` over finite round trips, and the non-finite fraction.

  A round trip is non-finite when a translated pixel's post-processing sigmoid rounded
  to exactly 0 or 1 (see :func:`alignflow.model.round_trips`): a limit of the number
  format, not of the bijection, reported separately.
  """
  error = np.abs(cycled - original).reshape(len(original), -1)
  finite = np.all(np.isfinite(error), axis=1)
  largest = float(np.max(error[finite])) if finite.any() else float('nan')
  return largest, float(1.0 - np.mean(finite))


SIGMOID_LIMIT_FLOAT64 = 53 * math.log(2.0)
"""``|h|`` beyond which a logit post-processing loses a float64 round trip: ``sigmoid(h)``
lies within one rounding step (``2**-53``) of the interval's end, so ``logit(sigmoid(h))``
no longer gives ``h`` back (about 36.7)."""


def cycle_report(model: nn.Module, variables, a: np.ndarray, b: np.ndarray
                 ) -> tuple[list[dict[str, float]], model_lib.RoundTrips]:
  """Exact cycle consistency (Prop. 1) of trained translators, both ways, for R replicas.

  ``variables`` (every leaf), ``a`` and ``b`` carry a leading replica axis ``R``; each
  direction is compiled once for all replicas in each precision
  (:func:`alignflow.model.round_trips`). Per replica, ``<x>`` in ``a``, ``b``:

  * ``max_cycle_error_float64_<x>``: the largest ``|G_{B->A}(G_{A->B}(a)) - a|`` (and
    ``B -> A -> B``) over finite round trips computed in float64, and
    ``non_finite_cycle_fraction_float64_<x>`` the share that is not finite even there; the
    same in the model's own float32 (``..._float32_<x>``; a saturated sigmoid may also come
    back finite but wrong, as ``sigmoid(inf) = 1``);
  * AlignFlow only: ``max_cycle_error_flow_float64_<x>``, the same round trip between
    pre-processed spaces (:meth:`alignflow.model.AlignFlow.preprocessed_a_to_b`: the flows
    alone, the bijection Prop. 1 is about), and, with a pre-processing,
    ``max_abs_translated_preprocessed_<x>``, the largest ``|preprocess(G(x))|`` of a
    translation, and ``saturated_translation_fraction_<x>``, the share of translations with
    a value beyond :data:`SIGMOID_LIMIT_FLOAT64`: their data-space round trips are lost to
    float64's rounding of the post-processing, not to the flows.

  Returns:
    ``(reports, translated)``: one dict per replica, and the float32 :class:`RoundTrips`
    (``(R, n, *event)`` arrays), whose translations serve the paired errors.
  """
  reports = [{} for _ in range(len(a))]

  def add(name, trips):
    for replica, report in enumerate(reports):
      for start, x, again in (('a', trips.a, trips.a_again), ('b', trips.b, trips.b_again)):
        error, non_finite = _cycle_errors(again[replica], x[replica])
        report[f'max_cycle_error_{name}_{start}'] = error
        if name != 'flow_float64':
          report[f'non_finite_cycle_fraction_{name}_{start}'] = non_finite

  for precision, float64 in (('float64', True), ('float32', False)):
    trips = model_lib.round_trips(model, variables, a, b, float64=float64, replicas=True)
    add(precision, trips)
    if not float64:
      translated = trips
  if isinstance(model, model_lib.AlignFlow):
    flow_trips = model_lib.round_trips(model, variables, a, b, float64=True, replicas=True,
                                       preprocessed=True)
    add('flow_float64', flow_trips)
    if model.preprocess is not None:
      for replica, report in enumerate(reports):
        for start, image in (('a', flow_trips.a_to_b), ('b', flow_trips.b_to_a)):
          largest = np.abs(image[replica]).reshape(len(image[replica]), -1).max(axis=1)
          report[f'max_abs_translated_preprocessed_{start}'] = float(largest.max())
          report[f'saturated_translation_fraction_{start}'] = float(
              np.mean(largest > SIGMOID_LIMIT_FLOAT64))
  return reports, translated


def _paired_mses(translated: model_lib.RoundTrips, a: np.ndarray, b: np.ndarray,
                 rows: slice) -> dict[str, float]:
  """Table 1's paired MSE both ways on ``rows`` of one replica's translations."""
  return {'mse_a_to_b': float(losses.paired_mse(translated=translated.a_to_b[rows], target=b[rows])),
          'mse_b_to_a': float(losses.paired_mse(translated=translated.b_to_a[rows], target=a[rows]))}


def _plot_translations(stage, a_to_b, b_to_a, data, out_dir):
  a, b = data['test_a'], data['test_b']
  path = os.path.join(out_dir, f'translation_{stage}.png')
  if _is_image(a.shape[1:]):
    k = 10
    return plots.image_rows([('A', a[:k]), ('B (the true pairs of A)', b[:k]),
                             (f'G_A->B(A) [{stage}]', np.asarray(a_to_b(a[:k]))),
                             (f'G_B->A(B) [{stage}]', np.asarray(b_to_a(b[:k])))], path,
                            low=-1.0, high=1.0)
  colour = a[:, 0]
  return plots.scatter_panels(
      [('A (test)', a), ('B (test)', b), (f'G_A->B(A) [{stage}]', np.asarray(a_to_b(a))),
       (f'G_B->A(B) [{stage}]', np.asarray(b_to_a(b)))], path,
      colors=[colour, colour, colour, colour])


def _plot_latent(stage, model, variables, data, key, out_dir) -> list[str]:
  """Paired samples from ``Z`` and polar interpolations decoded into both domains."""
  event_shape = data['test_a'].shape[1:]
  z = jax.random.normal(key, (10 if _is_image(event_shape) else 1000, *event_shape))
  sample_a, sample_b = model.apply(variables, z, method=model_lib.AlignFlow.sample_pairs)
  z_ends, _ = model.apply(variables, data['test_a'][:2], method=model_lib.AlignFlow.encode_a)
  path_z = model_lib.polar_interpolation(z1=z_ends[0], z2=z_ends[1],
                                         angles=jnp.linspace(0.0, jnp.pi / 2, 10))
  along_a = model.apply(variables, path_z, method=model_lib.AlignFlow.decode_a)[0]
  along_b = model.apply(variables, path_z, method=model_lib.AlignFlow.decode_b)[0]
  if _is_image(event_shape):
    return [
        plots.image_rows([('z ~ p_Z -> A', np.asarray(sample_a)),
                          ('same z -> B', np.asarray(sample_b))],
                         os.path.join(out_dir, f'paired_samples_{stage}.png'), low=-1.0, high=1.0),
        plots.image_rows([('interpolation in Z -> A', np.asarray(along_a)),
                          ('same latents -> B', np.asarray(along_b))],
                         os.path.join(out_dir, f'interpolation_{stage}.png'), low=-1.0, high=1.0)]
  colour = np.asarray(z[:, 0])
  return [plots.scatter_panels(
      [('z ~ p_Z', np.asarray(z)), ('G_Z->A(z)', np.asarray(sample_a)),
       ('G_Z->B(z)', np.asarray(sample_b))],
      os.path.join(out_dir, f'paired_samples_{stage}.png'), colors=[colour] * 3)]


def _plot_validation_curves(workdir: str, stages: list[str], path: str) -> None:
  """Paired validation MSE (both directions averaged) against steps, every stage and seed in
  one figure (a colour per stage, its seeds thin, their mean thick): AlignFlow's modes and
  CycleGAN trained alike, side by side."""
  groups = []
  for stage in stages:
    records = [r for r in workdir_lib.read_metrics(workdir, stage) if 'val_loss' in r]
    if records:
      values = np.array([r.get('val_loss/replicas', [r['val_loss']]) for r in records], float)
      groups.append((stage, np.array([r['step'] for r in records]), values))
  if groups:
    plots.seed_curves(groups, path, ylabel='paired validation MSE')


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains and evaluates every mode of ``config.modes`` for every seed (side by side)."""
  start = time.time()
  seeds = replicas.seeds_of(config)
  per_seed_data = [load_paired_domains(config, seed) for seed in seeds]
  data = replicas.stack(per_seed_data)
  config_checks.check_batch_sizes({'train.batch_size': (config.train.batch_size, min(
      data['train_a'].shape[1], data['train_b'].shape[1]))}, len(seeds))
  event_shape = tuple(data['train_a'].shape[2:])
  metrics = workdir_lib.MetricsLog(workdir)
  figures = []
  critic = build_critic(config.critic, event_shape)
  critic_optimizer = stages.make_optimizer(config.train, grad_clip=0.0)
  batch = config.train.batch_size
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
        config, mode, lam, init_batch, critic=critic, critic_optimizer=critic_optimizer,
        model_key=init_key, critic_keys=(critic_key_a, critic_key_b))
    state = train_stage(config, workdir, stage, state, data, model=model, objective=objective,
                        critic=critic, optimizer=optimizer, critic_optimizer=critic_optimizer,
                        train_critics=train_critics, key=train_key, metrics=metrics)
    # Test and validation pairs in one batch: each direction compiles once for all seeds.
    num_test = data['test_a'].shape[1]
    both_a = np.concatenate([data['test_a'], data['val_a']], 1)
    both_b = np.concatenate([data['test_b'], data['val_b']], 1)
    trained = {'params': state.params, **state.model_state}
    reports, translated = cycle_report(model, trained, both_a, both_b)
    if mode != 'cyclegan':
      log_prob_a, log_prob_b = jax.jit(jax.vmap(model.apply))(trained, data['test_a'],
                                                              data['test_b'])
    for replica, seed_data in enumerate(per_seed_data):
      one = engine.replica(translated, replica)
      test = {**_paired_mses(one, both_a[replica], both_b[replica], slice(0, num_test)),
              **reports[replica]}
      val = _paired_mses(one, both_a[replica], both_b[replica], slice(num_test, None))
      val_mse[replica][stage] = (val['mse_a_to_b'] + val['mse_b_to_a']) / 2
      for name, value in test.items():
        per_seed[replica][f'{name}/{stage}'] = value
      if mode != 'cyclegan':
        per_seed[replica][f'test_log_likelihood_a/{stage}'] = float(jnp.mean(log_prob_a[replica]))
        per_seed[replica][f'test_log_likelihood_b/{stage}'] = float(jnp.mean(log_prob_b[replica]))
      if replica == 0:
        first = engine.replica(trained, 0)
        a_to_b, b_to_a = translators(model, first)
        if mode != 'cyclegan':
          figures.append(functools.partial(_plot_latent, stage, model, first, seed_data,
                                           plot_key[0]))
        figures.append(functools.partial(_plot_translations, stage, a_to_b, b_to_a, seed_data))
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
    result['mse_identity/a_to_b'] = float(losses.paired_mse(translated=seed_data['test_a'],
                                                            target=seed_data['test_b']))
    # Chance levels of the paired MSE: every test digit sent to the mean training image of
    # the other domain, or to the true pair of another test digit (a plausible translation
    # with the wrong pairing; np.roll by one pairs every digit with its neighbour's).
    for direction, source, target in (('a_to_b', 'train_b', 'test_b'),
                                      ('b_to_a', 'train_a', 'test_a')):
      truth = seed_data[target]
      result[f'mse_mean_image/{direction}'] = float(losses.paired_mse(
          translated=np.broadcast_to(seed_data[source].mean(0), truth.shape), target=truth))
      result[f'mse_wrong_pair/{direction}'] = float(losses.paired_mse(
          translated=np.roll(truth, 1, axis=0), target=truth))
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
    _plot_validation_curves(workdir, [stage for stage, _, _ in training_stages(config)],
                            os.path.join(out_dir, 'validation_mse.png'))

  return workdir_lib.finish_run(workdir, results, metrics, plot=plot)
