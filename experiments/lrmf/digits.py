"""LRMF between digit domains in a shared VAE latent space (LRMF Sec. 4, setup 3; Fig. 5b, 11).

The paper embeds USPS and MNIST with one VAE-GAN into a 32-d latent space, aligns
USPS codes to MNIST codes with Real NVP LRMF, decodes the transformed codes and
trains digit classifiers on them (LRMF .55, EMD .47, CORAL .48 accuracy on the
target; McNemar p < 1e-3). USPS is not bundled; scikit-learn's 8x8 digits,
resized to USPS's 16x16, are domain A here, the 5,000 bundled MNIST digits
(16x16) domain B.

Data -> train -> evaluate -> write:

1. load A and B (``config.data.a`` / ``config.data.b``, e.g. the
   ``digit_images`` data set) and split each into train / validation / test;
2. build the models (:func:`build_models`) and fit one :class:`nflax.vae.VAE`
   (``config.model.vae``) to the unlabelled training images of both domains (stage
   ``'vae'``, ``config.train.vae``, checkpointed), as the decoder of a VAE-GAN
   (:func:`nflax.vae.vaegan_step`: a discriminator ``config.model.vae_discriminator``,
   optimiser ``config.train.vae_discriminator``, on real images, reconstructions and
   decoded prior samples; generator loss weighted ``config.model.vae.adversarial_weight``,
   feature-space reconstruction ``config.model.vae.feature_weight``; both 0: a plain VAE),
   and encode every split: with ``config.model.vae.codes == 'mean'`` by the posterior
   mean, with ``'sample'`` by one fixed draw ``z ~ q(z | x)`` per image. Either way 32-d flow densities
   fitted to a few thousand codes overfit quickly (measured with means: private
   train NLL -61 vs validation -39 nats after 3000 steps; with draws: the
   validation NLL of A's private model rose from 56 to 5,384 over 2000 steps),
   so the stages are short (the private models keep their best parameters on
   the validation codes, the joint stage its last ones);
3. run Algorithm 1 (:func:`lrmf.algorithm.train_lrmf`, ``config.model.density`` and
   ``config.model.flow``) on the codes (stages ``'private'``, or ``'private_a'`` and
   ``'private_b'`` when the domains' splits differ in size, and ``'joint'``) and
   evaluate Eq. 3 on the test codes with its convergence flag;
4. transform A's training codes with every method -- ``'source_only'`` (no
   alignment), ``'lrmf'`` (``T``), ``'coral'`` (:func:`lrmf.discrepancies.coral_map`)
   and ``'emd'`` (:func:`lrmf.discrepancies.exact_emd_map` onto an equal-size
   subsample of B's training codes) -- decode them, fit a logistic-regression
   digit classifier (``config.model.classifier``) on the decoded images with A's labels
   and score it on B's test images; ``'target_only'`` (fitted on B's real training
   images) is the ceiling;
5. McNemar's exact test of LRMF's test predictions against each baseline's;
6. write ``results.json`` (``accuracy/<method>``, ``mcnemar_p/lrmf_vs_<method>``,
   the objective), ``plots/objective.png`` and ``plots/translations.png``
   (A, its reconstruction, the decoded LRMF / CORAL / EMD translations, and B).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from harness import classification
from harness import domains
from experiments.lrmf import alignment
from harness import plots, replicas, stages, config_checks
from harness import workdir as workdir_lib
from lrmf import algorithm, discrepancies, held_out
from nflax import engine, two_player
from nflax import vae as vae_lib

METHODS = ('source_only', 'lrmf', 'coral', 'emd')
"""The alignments of A's codes that are decoded and classified, in report order."""


def build_models(config: ml_collections.ConfigDict,
                 event_shape: Sequence[int] | None = None) -> dict[str, Any]:
  """Setup 3's models by their role in ``config.model`` (unbound modules, the classifier's
  settings):

  * ``'vae'``: the shared autoencoder, a :class:`nflax.vae.VAE` of images of
    ``event_shape`` with ``config.model.vae.latent_dim``-d codes;
  * ``'vae_discriminator'``: the VAE-GAN's discriminator of such images, an MLP
    (:class:`nflax.vae.Discriminator`);
  * ``'density'`` and ``'flow'``: LRMF's family M and transformation T on the codes
    (:func:`experiments.lrmf.alignment.build_models` over events of shape ``(latent_dim,)``);
  * ``'classifier'``: ``config.model.classifier``, the settings of the logistic-regression
    digit classifier on decoded images (:func:`harness.classification.classifier_hits`: its
    inverse L2 strength ``c``).

  Args:
    config: a setup-3 config.
    event_shape: the shape of one image of A and B; ``None``:
      :func:`experiments.lrmf.alignment.event_shape_of`.
  """
  shape = alignment.event_shape_of(config) if event_shape is None else tuple(event_shape)
  settings = config.model.vae
  return {
      'vae': vae_lib.VAE(event_shape=shape, latent_dim=settings.latent_dim,
                         hidden=tuple(settings.hidden)),
      'vae_discriminator': vae_lib.Discriminator(
          hidden=tuple(config.model.vae_discriminator.hidden)),
      **alignment.build_models(config, (settings.latent_dim,)),
      'classifier': config.model.classifier,
  }


def _fit_vae(config, vae, discriminator, a, b, workdir, metrics, key):
  """The shared autoencoder ``vae`` fitted to both domains' unlabelled training images
  (stage ``'vae'``): a VAE-GAN (:func:`nflax.vae.vaegan_step`, with ``discriminator``) when
  ``config.model.vae.adversarial_weight`` or ``config.model.vae.feature_weight`` is positive,
  a plain VAE otherwise. Returns its variables (the parameters of lowest validation negative
  ELBO with ``train.vae.keep_best``)."""
  settings = config.model.vae
  train = np.concatenate([a['train_x'], b['train_x']])
  val = np.concatenate([a['val_x'], b['val_x']])
  init_key, fit_key, critic_key = jax.random.split(key, 3)
  variables = jax.jit(vae.init)(init_key, jnp.asarray(train[:8]), init_key)
  if settings.adversarial_weight == 0 and settings.feature_weight == 0:
    result = stages.train(vae_lib.elbo_objective(vae), engine.add_replica_axis(variables),
                            train[None], val[None], train_config=config.train.vae,
                            workdir=workdir, stage='vae', keys=fit_key[None], metrics=metrics)
    return {'params': engine.replica(result.params, 0)}
  optimizer = stages.make_optimizer(config.train.vae)
  critic_optimizer = stages.make_optimizer(config.train.vae_discriminator)
  state = two_player.init_state(
      variables={'params': variables['params']},
      critic_variables=jax.jit(discriminator.init)(critic_key, jnp.asarray(train[:8])),
      optimizer=optimizer, critic_optimizer=critic_optimizer)
  step_fn = functools.partial(
      vae_lib.vaegan_step, vae=vae, discriminator=discriminator, optimizer=optimizer,
      critic_optimizer=critic_optimizer, adversarial_weight=settings.adversarial_weight,
      feature_weight=settings.feature_weight)
  evaluate = functools.partial(_held_out_negative_elbo, vae_lib.elbo_objective(vae))
  keep_best = config.train.vae.get('keep_best', True)
  snapshot = _vae_params if keep_best else None

  final = stages.run_stage(
      stages.Stage(name='vae', step_fn=step_fn, state=engine.add_replica_axis(state),
                   train_data=train[None], keys=fit_key[None], train_config=config.train.vae,
                   val_data=val[None], evaluate=evaluate, snapshot=snapshot),
      workdir=workdir, metrics=metrics).run
  params = final.best if keep_best else final.state.params
  return {'params': engine.replica(params, 0)}


def _vae_params(state: two_player.TwoPlayerState):
  return state.params


def _held_out_negative_elbo(objective, state: two_player.TwoPlayerState, data):
  return objective.eval_loss(state.params, {}, data)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs setup 3 in ``workdir`` (one seed); returns the results."""
  start = time.time()
  seed = replicas.single_seed(config)
  a = domains.load_domain(config.data.a, config.data.splits_a, seed)
  b = domains.load_domain(config.data.b, config.data.splits_b, seed + 1)
  if a['train_x'].shape[1:] != b['train_x'].shape[1:]:
    raise ValueError(f"domains A and B differ in image shape: {a['train_x'].shape[1:]} vs "
                     f"{b['train_x'].shape[1:]}; give both the same data.*.options.size")
  num_a, num_b = len(a['train_x']), len(b['train_x'])
  config_checks.check_batch_sizes({'train.vae.batch_size': (config.train.vae.batch_size,
                                                           num_a + num_b)})
  alignment.check_sizes(config, num_a, num_b)
  codes = config.model.vae.codes
  if codes not in ('sample', 'mean'):
    raise ValueError(f"config.model.vae.codes must be 'sample' or 'mean', got {codes!r}")
  built = build_models(config, a['train_x'].shape[1:])
  vae, flow, density = built['vae'], built['flow'], built['density']
  metrics = workdir_lib.MetricsLog(workdir)
  vae_key, code_key, lrmf_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  vae_variables = _fit_vae(config, vae, built['vae_discriminator'], a, b, workdir, metrics,
                           vae_key)

  @jax.jit
  def encode(x, key):
    mean, log_std = vae.apply(vae_variables, x, method=vae_lib.VAE.encode)
    if codes == 'mean':
      return mean
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

  decode = jax.jit(lambda z: vae.apply(vae_variables, z, method=vae_lib.VAE.decode))
  code_keys = iter(jax.random.split(code_key, 6))
  codes_a, codes_b = ({f'{s}_x': np.asarray(encode(domain[f'{s}_x'], next(code_keys)))
                       for s in ('train', 'val', 'test')} for domain in (a, b))

  runner = alignment.stage_runner(config, workdir, metrics)
  result = algorithm.train_lrmf(
      flow=flow, density=density, a_train=codes_a['train_x'][None],
      b_train=codes_b['train_x'][None], a_val=codes_a['val_x'][None],
      b_val=codes_b['val_x'][None], keys=lrmf_key[None], eps=config.eps,
      private_runner=runner, joint_runner=runner,
      restarts=config.get('restarts', 1)).replica(0)
  check = held_out.convergence_check(*held_out.objective_terms(
      flow=flow, density=density, flow_variables=result.flow_variables,
      shared=result.shared_variables, private_a=result.private_a, private_b=result.private_b,
      a=jnp.asarray(codes_a['test_x']), b=jnp.asarray(codes_b['test_x'])), config.eps)

  source = codes_a['train_x']
  matched = np.random.default_rng(seed).choice(
      len(codes_b['train_x']), len(source), replace=len(source) > len(codes_b['train_x']))
  aligned = {
      'source_only': source,
      'lrmf': alignment.transformer(flow)(result.flow_variables, source),
      'coral': np.asarray(discrepancies.coral_map(jnp.asarray(source), source=source,
                                              target=codes_b['train_x'],
                                              ridge=config.coral_ridge)),
      'emd': discrepancies.exact_emd_map(source, codes_b['train_x'][matched]),
  }
  decoded = {method: np.asarray(decode(jnp.asarray(z))) for method, z in aligned.items()}
  c = built['classifier'].c
  hits = {method: classification.classifier_hits(images, a['train_labels'], b['test_x'],
                                                 b['test_labels'], c=c)
          for method, images in decoded.items()}
  hits['target_only'] = classification.classifier_hits(b['train_x'], b['train_labels'],
                                                       b['test_x'], b['test_labels'], c=c)
  results = {
      'test_objective': check.objective,
      'test_objective_point_se': check.standard_error,
      'test_objective_worst_percent': check.worst_percent,
      'val_objective': float(result.objective),
      'converged': check.converged,
      'eps': config.eps,
      'vae_val_negative_elbo': float(vae_lib.elbo_objective(vae).eval_loss(
          vae_variables['params'], {}, jnp.asarray(np.concatenate([a['val_x'], b['val_x']])))),
  }
  results.update({f'accuracy/{method}': float(np.mean(h)) for method, h in hits.items()})
  results.update({f'mcnemar_p/lrmf_vs_{method}': classification.mcnemar_p_value(hits['lrmf'], hits[method])
                  for method in METHODS if method != 'lrmf'})
  results['seconds'] = time.time() - start
  return workdir_lib.finish_run(workdir, results, metrics, plot=lambda: _plot(
      workdir, a, b, decoded, decode(jnp.asarray(source[:12])), results))


def _plot(workdir, a, b, decoded, reconstructed, results) -> None:
  alignment.plot_objective(workdir, results['test_objective'])
  count = 12
  plots.image_rows(
      [('A', a['train_x'][:count]), ('A decoded', np.asarray(reconstructed)),
       ('LRMF T(A)', decoded['lrmf'][:count]), ('CORAL', decoded['coral'][:count]),
       ('EMD', decoded['emd'][:count]), ('B', b['train_x'][:count])],
      os.path.join(workdir_lib.plots_dir(workdir), 'translations.png'))
