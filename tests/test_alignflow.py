"""AlignFlow: exact cycle consistency on real images, densities, losses, pool and steps."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from alignflow import critics, cyclegan, losses
from alignflow import model as model_lib
from alignflow import training
from configs import alignflow_digits_adaptation, alignflow_mnist, alignflow_moons
from experiments.alignflow import adaptation as alignflow_adaptation
from experiments.alignflow import evaluation, paired_data
from experiments.alignflow import translation as alignflow_experiment
from harness import data as data_lib
from harness import workdir as workdir_lib
from nflax import bijectors, engine, gan, nets


def _perturbed(variables, key, scale=0.05):
  """Parameters moved off the identity initialisation, so the maps are non-trivial."""
  leaves, treedef = jax.tree.flatten(variables)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [
      leaf + scale * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys)])


def _image_model():
  def private():
    return bijectors.realnvp_image(num_levels=1, hidden_channels=4, num_blocks=1, num_final=2)
  shared = bijectors.Chain([bijectors.ActNorm(), bijectors.AffineCoupling(
      mask='checkerboard', conditioner=functools.partial(nets.ResNet, hidden_channels=4,
                                                         num_blocks=1))])
  preprocess = bijectors.Chain([bijectors.ScaleShift(scale=0.5, shift=0.5),
                                bijectors.Logit(alpha=0.05)])
  return model_lib.AlignFlow(private_a=private(), private_b=private(), shared=shared,
                             preprocess=preprocess)


def _vector_model(num_shared=1, num_private=2):
  shared = bijectors.realnvp(num_blocks=num_shared, hidden=(8,)) if num_shared else None
  return model_lib.AlignFlow(private_a=bijectors.realnvp(num_blocks=num_private, hidden=(8,)),
                             private_b=bijectors.realnvp(num_blocks=num_private, hidden=(8,)),
                             shared=shared)


def test_exact_cycle_consistency_on_real_mnist_images():
  """Prop. 1 in data space: A -> B -> A and B -> A -> B return the input (float32)."""
  pair = data_lib.load('mnist_transformed_pair', n=8, seed=0, size=8)
  a, b = jnp.asarray(pair.a), jnp.asarray(pair.b)
  model = _image_model()
  variables = _perturbed(model.init(jax.random.PRNGKey(0), a, b), jax.random.PRNGKey(1), 0.02)

  @jax.jit
  def round_trips(a, b):
    a_to_b = functools.partial(model.apply, variables, method=model.a_to_b)
    b_to_a = functools.partial(model.apply, variables, method=model.b_to_a)
    translated = a_to_b(a)
    return translated, b_to_a(translated), a_to_b(b_to_a(b))

  translated, a_again, b_again = round_trips(a, b)
  assert float(jnp.mean(jnp.abs(translated - a))) > 0.05  # a real, non-identity map
  # Float32 rounding only; the worst pixels sit where the sigmoid of the post-processing
  # saturates, the median is at the 1e-7 level.
  for again, original in ((a_again, a), (b_again, b)):
    error = jnp.abs(again - original)
    assert float(jnp.max(error)) < 1e-4 and float(jnp.median(error)) < 1e-6


def test_translation_log_det_matches_dense_jacobian():
  model = _vector_model(num_shared=0)
  a = jax.random.normal(jax.random.PRNGKey(0), (3, 2))
  variables = _perturbed(model.init(jax.random.PRNGKey(1), a, a), jax.random.PRNGKey(2), 0.3)

  @jax.jit
  def log_dets(a):
    _, log_det = model.apply(variables, a, method=model.forward_and_log_det)
    single = lambda x: model.apply(variables, x[None], method=model.a_to_b)[0]
    return log_det, jax.vmap(lambda x: jnp.linalg.slogdet(jax.jacfwd(single)(x))[1])(a)

  log_det, dense = log_dets(a)
  np.testing.assert_allclose(log_det, dense, atol=1e-4)


def test_shared_layers_share_parameters_and_densities_are_flow_densities():
  model = _vector_model(num_shared=1)
  a = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
  variables = model.init(jax.random.PRNGKey(1), a, a + 1)
  assert set(variables['params']) == {'private_a', 'private_b', 'shared'}
  variables = _perturbed(variables, jax.random.PRNGKey(2), 0.3)
  z, log_det = model.apply(variables, a, method=model.encode_a)
  expected = -0.5 * jnp.sum(z**2, -1) - math.log(2 * math.pi) + log_det
  np.testing.assert_allclose(model.apply(variables, a, method=model.log_prob_a), expected,
                             rtol=1e-5)
  fake_b, fake_a, log_p_a, log_p_b = model.apply(variables, a, a + 1,
                                                 method=model.translate_with_log_probs)
  np.testing.assert_allclose(fake_b, model.apply(variables, a, method=model.a_to_b), atol=1e-6)
  np.testing.assert_allclose(log_p_b, model.apply(variables, a + 1, method=model.log_prob_b),
                             rtol=1e-5)
  sample_a, sample_b = model.apply(variables, z, method=model.sample_pairs)
  np.testing.assert_allclose(sample_a, a, atol=1e-5)  # G_{Z->A}(G_{A->Z}(a)) = a
  np.testing.assert_allclose(sample_b, fake_b, atol=1e-5)  # paired: same z into B


def test_polar_interpolation_endpoints():
  z1, z2 = jnp.ones((2, 2)), -jnp.ones((2, 2))
  path = model_lib.polar_interpolation(z1=z1, z2=z2, angles=[0.0, math.pi / 2, math.pi / 4])
  assert path.shape == (3, 2, 2)
  np.testing.assert_allclose(path[0], z2, atol=1e-6)
  np.testing.assert_allclose(path[1], z1, atol=1e-6)
  np.testing.assert_allclose(path[2], 0.0, atol=1e-6)
  with pytest.raises(ValueError, match='one shape'):
    model_lib.polar_interpolation(z1=z1, z2=jnp.ones(3), angles=[0.0])


def test_cycle_loss_and_paired_mse_match_hand_computed_values():
  np.testing.assert_allclose(losses.cycle_loss(reconstructed=jnp.array([[1.0, 2.0]]),
                                               original=jnp.array([[0.0, 0.0]])), 1.5)
  np.testing.assert_allclose(losses.paired_mse(translated=jnp.array([1.0, -1.0]),
                                               target=jnp.zeros(2)), 1.0)


def test_hybrid_loss_value_and_special_cases():
  terms = dict(gan_a=jnp.array(0.3), gan_b=jnp.array(0.7), log_likelihood_a=jnp.array(-2.0),
               log_likelihood_b=jnp.array(-4.0))
  np.testing.assert_allclose(losses.hybrid_loss(**terms, lam_a=0.5, lam_b=0.25),
                             1.0 + 1.0 + 1.0)
  np.testing.assert_allclose(losses.hybrid_loss(**terms, lam_a=0.0, lam_b=0.0), 1.0)  # ADV
  np.testing.assert_allclose(  # MLE only: the lam -> inf limit, divided by lam
      losses.hybrid_loss(**terms, lam_a=1.0, lam_b=1.0, adversarial_weight=0.0), 6.0)
  lam = 1e6
  np.testing.assert_allclose(losses.hybrid_loss(**terms, lam_a=lam, lam_b=lam) / lam, 6.0,
                             rtol=1e-6)
  with pytest.raises(ValueError, match='lam_a must be >= 0'):
    losses.hybrid_loss(**terms, lam_a=-1.0, lam_b=0.0)


def _vector_setup(lam, adversarial_weight, pool_size=0):
  model = _vector_model(num_shared=0, num_private=1)
  critic = critics.MLPCritic(hidden=(8,))
  a = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  b = 2.0 * jax.random.normal(jax.random.PRNGKey(1), (32, 2)) + 1.0
  variables = model.init(jax.random.PRNGKey(2), a, b)
  critic_params = {'a': critic.init(jax.random.PRNGKey(3), a)['params'],
                   'b': critic.init(jax.random.PRNGKey(4), b)['params']}
  objective = training.alignflow_objective(
      model=model, critic=critic, form='least_squares', lam_a=lam, lam_b=lam,
      adversarial_weight=adversarial_weight)
  optimizer = optax.adam(1e-2)
  state = training.init_state(variables=variables, critic_params=critic_params,
                              optimizer=optimizer, critic_optimizer=optimizer,
                              pool_size=pool_size, event_shape=(2,))
  return model, critic, a, b, objective, optimizer, state


def test_alignflow_objective_modes_are_settings_of_one_loss():
  model, critic, a, b, _, _, state = _vector_setup(0.0, 1.0)
  variables = {'params': state.params}
  log_p_a, log_p_b = model.apply(variables, a, b)
  gan_a = gan.generator_loss(fake_logits=critic.apply(
      {'params': state.critic_params['a']}, model.apply(variables, b, method=model.b_to_a)),
      form='least_squares')
  gan_b = gan.generator_loss(fake_logits=critic.apply(
      {'params': state.critic_params['b']}, model.apply(variables, a, method=model.a_to_b)),
      form='least_squares')
  for lam, weight, expected in [
      (0.0, 1.0, gan_a + gan_b),
      (0.1, 1.0, gan_a + gan_b - 0.1 * (jnp.mean(log_p_a) + jnp.mean(log_p_b))),
      (1.0, 0.0, -(jnp.mean(log_p_a) + jnp.mean(log_p_b)))]:
    objective = training.alignflow_objective(model=model, critic=critic, form='least_squares',
                                             lam_a=lam, lam_b=lam, adversarial_weight=weight)
    loss, _ = jax.jit(objective)(state.params, {}, state.critic_params, a, b,
                                 jax.random.PRNGKey(0))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_mle_step_leaves_critics_and_adversarial_step_trains_them():
  for lam, weight, train_critics in [(1.0, 0.0, False), (0.1, 1.0, True)]:
    _, critic, a, b, objective, optimizer, state = _vector_setup(lam, weight, pool_size=8)
    step = training.AlternatingStep(
        objective=objective, critic=critic, form='least_squares', optimizer=optimizer,
        critic_optimizer=optimizer, train_critics=train_critics)
    run, metrics = engine.dispatch(engine.init_run(engine.add_replica_axis(state)),
                                   engine.Independent((a[None], b[None])),
                                   jax.random.PRNGKey(5)[None], step_fn=step, batch_size=8,
                                   num_steps=3)
    new_state = engine.replica(run.state, 0)
    assert int(new_state.step) == 3 and metrics['loss'].shape == (3, 1)
    critic_moved = jax.tree.leaves(jax.tree.map(
        lambda x, y: jnp.any(x != y), new_state.critic_params, state.critic_params))
    assert any(map(bool, critic_moved)) == train_critics
    assert int(new_state.extras['pool_a'].count) == (8 if train_critics else 0)
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())


def test_history_pool_fills_then_mixes():
  pool = training.init_pool(3, (2,))
  fakes = jnp.arange(10.0).reshape(5, 2)
  pool, returned = training.query_pool(pool, fakes, jax.random.PRNGKey(0))
  assert int(pool.count) == 3
  np.testing.assert_array_equal(returned[:3], fakes[:3])  # filling: returned as they are
  stored = {tuple(row) for row in np.asarray(pool.samples)}
  assert stored <= {tuple(row) for row in np.asarray(fakes)}
  for row in np.asarray(returned[3:]):  # a new sample or one it replaced
    assert tuple(row) in {tuple(r) for r in np.asarray(fakes)}
  outputs = jax.vmap(lambda key: training.query_pool(pool, fakes + 100.0, key)[1])(
      jax.random.split(jax.random.PRNGKey(1), 100))
  fraction_own = np.mean(np.all(np.asarray(outputs) == np.asarray(fakes + 100.0), axis=-1))
  assert 0.4 < fraction_own < 0.6  # a full pool returns a past sample half of the time
  _, out = training.query_pool(training.init_pool(0, (2,)), fakes, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, fakes)
  with pytest.raises(ValueError, match='do not fit'):
    training.query_pool(training.init_pool(2, (3,)), fakes, jax.random.PRNGKey(0))


def test_patch_critic_scores_patches_and_cyclegan_objective_is_gan_plus_cycle():
  images = jnp.zeros((2, 8, 8, 1))
  patch_critic = critics.PatchCritic(base_channels=4, num_layers=2)
  patch_params = patch_critic.init(jax.random.PRNGKey(0), images)['params']
  assert patch_critic.apply({'params': patch_params}, images).shape == (2, 4, 4)
  with pytest.raises(ValueError, match='expects images'):
    patch_critic.apply({'params': patch_params}, jnp.zeros((2, 8)))
  a = jax.random.normal(jax.random.PRNGKey(1), (6, 2))
  b = a + 1.0
  model = cyclegan.CycleGAN(a_to_b_net=cyclegan.VectorTranslator(hidden=(8,)),
                            b_to_a_net=cyclegan.VectorTranslator(hidden=(8,)))
  variables = _perturbed(model.init(jax.random.PRNGKey(2), a, b), jax.random.PRNGKey(3), 0.3)
  critic = critics.MLPCritic(hidden=(8,))
  critic_params = critic.init(jax.random.PRNGKey(4), a)['params']
  objective = cyclegan.cyclegan_objective(model=model, critic=critic, form='least_squares',
                                          cycle_weight=10.0)
  loss, (fake_a, fake_b, metrics) = objective(
      variables['params'], {}, {'a': critic_params, 'b': critic_params}, a, b,
      jax.random.PRNGKey(5))
  np.testing.assert_allclose(fake_b, model.apply(variables, a, method=model.a_to_b))
  cycle_a = jnp.mean(jnp.abs(model.apply(variables, fake_b, method=model.b_to_a) - a))
  np.testing.assert_allclose(metrics['cycle_a'], cycle_a, rtol=1e-6)
  assert float(cycle_a) > 0  # CycleGAN is only approximately cycle consistent
  np.testing.assert_allclose(loss, metrics['generator_gan_a'] + metrics['generator_gan_b']
                             + 10.0 * (metrics['cycle_a'] + metrics['cycle_b']), rtol=1e-6)


def test_mnist_transformed_pair_keeps_the_pairing():
  pair = data_lib.load('mnist_transformed_pair', n=6, seed=1, size=8, transform='invert_gamma')
  assert pair.a.shape == pair.b.shape == (6, 8, 8, 1) and pair.labels.shape == (6,)
  assert pair.a.min() >= -1.0 and pair.a.max() <= 1.0
  np.testing.assert_allclose(pair.b, 2 * (1 - (pair.a + 1) / 2)**2 - 1, atol=1e-6)
  with pytest.raises(ValueError, match="unknown transform 'blur'"):
    data_lib.load('mnist_transformed_pair', n=6, transform='blur')


def test_rotated_pair_is_a_quarter_turn_of_the_same_digits():
  """``rotate90``: ``b[i, r, c] = a[i, c, size - 1 - r]``; a permutation of the pixels, so the
  pairing is kept and the intensities are the same multiset."""
  pair = data_lib.load('mnist_transformed_pair', n=6, seed=1, size=8, transform='rotate90')
  plain = data_lib.load('mnist_transformed_pair', n=6, seed=1, size=8, transform='invert')
  np.testing.assert_array_equal(pair.a, plain.a)
  np.testing.assert_array_equal(pair.labels, plain.labels)
  assert pair.b.shape == (6, 8, 8, 1) and pair.b.dtype == np.float32
  for r, c in ((0, 0), (2, 5), (7, 3)):
    np.testing.assert_array_equal(pair.b[:, r, c], pair.a[:, c, 7 - r])
  np.testing.assert_array_equal(np.sort(pair.b.reshape(6, -1)), np.sort(pair.a.reshape(6, -1)))
  assert not np.allclose(pair.b, pair.a)  # digits are not symmetric under a quarter turn


def test_default_cyclegan_has_as_many_generator_parameters_as_alignflow():
  """The fair comparison of Table 1: the config's CycleGAN generators (both directions) hold
  the AlignFlow flows' number of parameters within 5%, and a run states the ratio."""
  config = alignflow_mnist.get_config()
  x = jnp.zeros((2, 8, 8, 1))

  def count(model):
    return sum(leaf.size for leaf in jax.tree.leaves(
        model.init(jax.random.PRNGKey(0), x, x)['params']))

  models = alignflow_experiment.build_models(config)
  ratio = count(models['cyclegan']) / count(models['alignflow'])
  assert abs(ratio - 1.0) < 0.05, ratio


@pytest.mark.parametrize('module, config_module', [
    (alignflow_experiment, alignflow_moons), (alignflow_experiment, alignflow_mnist),
    (alignflow_adaptation, alignflow_digits_adaptation)])
def test_build_models_builds_every_role_of_every_variant(module, config_module):
  """``build_models`` builds one model per ``config.model`` block, whose fields choose image
  or point models; the flows' optimiser clips, the critics' and CycleGAN's do not."""
  for variant in ('',) + config_module.VARIANTS:
    config = config_module.get_config(variant)
    models = module.build_models(config)
    assert set(models) == set(config.model), variant
    assert isinstance(models['alignflow'], model_lib.AlignFlow)
    images = 'num_levels' in config.model.alignflow
    assert (models['alignflow'].preprocess is not None) == images, variant
    assert isinstance(models['critic'], critics.PatchCritic if images else critics.MLPCritic)
    if 'cyclegan' in models:
      assert isinstance(models['cyclegan'], cyclegan.CycleGAN)
    if 'classifier' in models:
      assert models['classifier'].keywords == {'c': config.model.classifier.c}
    assert config.train.flows.grad_clip == 10.0 and config.train.critic.grad_clip == 0.0
  config.model.vae = {'hidden': (8,)}
  with pytest.raises(ValueError, match=r"unknown config.model roles \['vae'\]"):
    module.build_models(config)


def test_smoke_run_states_generator_parameter_ratio_and_logs_validation_mse(tmp_path):
  config = alignflow_mnist.get_config('smoke')
  results = alignflow_experiment.run(config, str(tmp_path))
  assert results['generator_param_ratio/cyclegan_vs_mle'] == pytest.approx(
      results['num_generator_params/cyclegan'] / results['num_generator_params/mle'])
  assert 'generator_param_ratio/cyclegan_vs_cyclegan' not in results
  test_b = paired_data.load_paired_domains(config, seed=0)['test_b']
  assert results['mse_wrong_pair/a_to_b'] == pytest.approx(
      float(np.mean((np.roll(test_b, 1, axis=0) - test_b)**2)), rel=1e-5)
  assert 0 < results['mse_mean_image/b_to_a'] < results['mse_wrong_pair/b_to_a']
  with open(tmp_path / 'metrics.jsonl') as f:
    logged = [json.loads(line) for line in f]
  assert {(m['stage'], m['step']) for m in logged if 'val_loss' in m} >= {
      ('mle', 1), ('mle', 2), ('cyclegan', 1), ('cyclegan', 2)}
  assert (tmp_path / 'plots' / 'validation_mse.png').exists()


def _logit_actnorm_model(divisor: float):
  """An AlignFlow on logit images whose ``G_{A->Z}`` is the identity and ``G_{B->Z}`` divides
  logits by ``divisor`` (ActNorm parameters set by hand), two 4x4 test images (all pixels 0.9;
  a ramp from -0.5 to 0.5) and its variables."""
  preprocess = bijectors.Chain([bijectors.ScaleShift(scale=0.5, shift=0.5),
                                bijectors.Logit(alpha=0.05)])
  model = model_lib.AlignFlow(private_a=bijectors.ActNorm(), private_b=bijectors.ActNorm(),
                              preprocess=preprocess)
  images = np.stack([np.full((4, 4, 1), 0.9, np.float32),
                     np.linspace(-0.5, 0.5, 16, dtype=np.float32).reshape(4, 4, 1)])
  variables = {'params': {
      'private_a': {'bias': jnp.zeros(1), 'log_scale': jnp.zeros(1)},
      'private_b': {'bias': jnp.zeros(1), 'log_scale': jnp.full(1, -math.log(divisor))}}}
  return model, images, variables


def test_round_trip_saturated_in_float32_is_exact_in_float64():
  """Prop. 1 is exact in real arithmetic; float32 loses a cycle to the sigmoid, float64 not.

  ``G_{A->Z}`` is the identity on logit pixels and ``G_{B->Z}`` divides them by 8 (ActNorm
  parameters set by hand), so a pixel of 0.9 (logit 2.25) lands at logit 18 in B, where
  the float32 sigmoid rounds to 1: the way back meets an infinite logit, and
  ``sigmoid(inf) = 1`` returns 1/0.9 instead of 0.9 (layers that mix pixels, such as
  couplings, turn the infinity into NaN). The float64 sigmoid does not round, and the
  cycle returns the pixel to ~1e-10.
  """
  model, images, variables = _logit_actnorm_model(8.0)
  assert jax.tree.structure(variables) == jax.tree.structure(
      model.init(jax.random.PRNGKey(0), images, images))

  reports, _ = evaluation.cycle_report(  # one replica, through round_trips
      model, jax.tree.map(lambda leaf: leaf[None], variables), images[None], images[None])
  report = reports[0]
  assert report['max_cycle_error_float32_a'] == pytest.approx(1 / 0.9 - 0.9, rel=1e-5)
  assert 1e-13 < report['max_cycle_error_float64_a'] < 1e-8  # float rounding only, ~1e-10
  assert report['max_cycle_error_float32_b'] < 1e-5  # B -> A -> B does not saturate
  assert report['max_cycle_error_float64_b'] < 1e-12
  assert report['non_finite_cycle_fraction_float64_a'] == 0.0


def test_cycle_lost_to_the_float64_sigmoid_is_exact_between_preprocessed_spaces():
  """A translation whose logits pass float64's sigmoid limit loses the data-space round trip
  to rounding, while the flows' own round trip (between logit images) stays exact, and the
  report names the saturated translations.

  ``G_{B->Z}`` divides logits by 30, so a pixel of 0.9 (logit 2.25) translates to logit 67.5,
  beyond ``53 log 2 ~ 36.7``: its sigmoid is 1 in float64. The other image's largest logit,
  0.97, becomes 29: within the limit.
  """
  model, images, variables = _logit_actnorm_model(30.0)
  reports, _ = evaluation.cycle_report(
      model, jax.tree.map(lambda leaf: leaf[None], variables), images[None], images[None])
  report = reports[0]
  lost = report['max_cycle_error_float64_a'] > 0.1 or report[
      'non_finite_cycle_fraction_float64_a'] > 0
  assert lost  # the data-space cycle of the saturated image is gone, even in float64
  assert report['max_cycle_error_flow_float64_a'] < 1e-12
  assert report['max_cycle_error_flow_float64_b'] < 1e-12
  assert report['saturated_translation_fraction_a'] == 0.5
  assert report['saturated_translation_fraction_b'] == 0.0
  logit = math.log((0.05 + 0.9 * 0.95) / (1 - 0.05 - 0.9 * 0.95))  # pixel 0.9's logit
  assert report['max_abs_translated_preprocessed_a'] == pytest.approx(30 * logit, rel=1e-6)
  assert evaluation.SIGMOID_LIMIT_FLOAT64 == pytest.approx(36.74, abs=0.01)


def test_round_trips_of_replicas_are_the_replicas_round_trips():
  """``replicas=True`` (one vmapped program for R models) gives each model's own translations
  and cycles, in float32 and float64."""
  model = _vector_model()
  points = jax.random.normal(jax.random.PRNGKey(0), (3, 16, 2))
  variables = [_perturbed(model.init(jax.random.PRNGKey(r), points[r], points[r]),
                          jax.random.PRNGKey(10 + r), 0.1) for r in range(3)]
  stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *variables)
  a, b = np.asarray(points), np.asarray(points[::-1] + 1.0)
  for float64 in (False, True):
    together = model_lib.round_trips(model, stacked, a, b, float64=float64, replicas=True)
    for r in range(3):
      alone = model_lib.round_trips(model, variables[r], a[r], b[r], float64=float64)
      for name, value in alone._asdict().items():
        np.testing.assert_allclose(getattr(together, name)[r], value, rtol=1e-6, atol=1e-6)
      assert together.a_to_b.dtype == (np.float64 if float64 else np.float32)
    np.testing.assert_allclose(together.a_again, a, atol=1e-4)


def test_translator_in_chunks_is_the_translation_of_the_whole_batch():
  """``translator`` maps ``batch_size`` examples at a time (the last chunk padded) and gives
  what one call on every example gives, with and without replicas; a chunk larger than the
  data is the data."""
  model = _vector_model()
  points = jax.random.normal(jax.random.PRNGKey(0), (2, 11, 2))
  variables = [_perturbed(model.init(jax.random.PRNGKey(r), points[r], points[r]),
                          jax.random.PRNGKey(10 + r), 0.1) for r in range(2)]
  stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *variables)
  whole = [model.apply(variables[r], points[r], method=model_lib.AlignFlow.a_to_b)
           for r in range(2)]
  for batch_size in (1, 4, 11, 64):
    one = model_lib.translator(model, model_lib.AlignFlow.a_to_b, batch_size)
    many = model_lib.translator(model, model_lib.AlignFlow.a_to_b, batch_size, replicas=True)
    together = many(stacked, points)
    assert together.shape == points.shape
    for r in range(2):
      np.testing.assert_allclose(one(variables[r], points[r]), whole[r], rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(together[r], whole[r], rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='batch_size'):
    model_lib.translator(model, model_lib.AlignFlow.a_to_b, 0)


def test_interrupted_stage_resumes_to_the_uninterrupted_state(tmp_path):
  """A stage stopped at a checkpoint and restarted ends where a straight run ends.

  The adversarial state carries the flows, both critics, both optimisers and the history
  pools; all of them must come back from the checkpoint for the continuation to match.
  """
  config = alignflow_moons.get_config('smoke')
  data = {name: array[None] for name, array in
          paired_data.load_paired_domains(config, seed=0).items()}
  models = alignflow_experiment.build_models(config)
  critic = models['critic']
  critic_optimizer = alignflow_experiment.optimizer_of(config, 'critic')
  init_batch = (jnp.asarray(data['train_a'][:, :16]), jnp.asarray(data['train_b'][:, :16]))
  keys = jax.random.split(jax.random.PRNGKey(0), 4)[:, None]

  def train(workdir, until=None):
    setup = alignflow_experiment.init_stage(
        config, models, 'hybrid', 0.1, init_batch, critic_optimizer=critic_optimizer,
        model_key=keys[0], critic_keys=(keys[1], keys[2]))
    return alignflow_experiment.train_stage(
        config, str(workdir), 'hybrid', setup.state, data, model=setup.model,
        objective=setup.objective,
        critic=critic, optimizer=setup.optimizer, critic_optimizer=critic_optimizer,
        train_critics=setup.train_critics, key=keys[3],
        metrics=workdir_lib.MetricsLog(str(workdir)), until=until)

  straight = train(tmp_path / 'straight')
  assert int(train(tmp_path / 'resumed', until=2).step[0]) == 2
  resumed = train(tmp_path / 'resumed')  # a fresh state, restored from step 2
  with open(tmp_path / 'resumed' / 'metrics.jsonl') as f:
    logged_steps = [json.loads(line)['step'] for line in f]
  assert logged_steps == [2, 4], 'the second call did not continue from the checkpoint'
  assert int(resumed.step[0]) == int(straight.step[0]) == config.train.flows.num_steps
  assert int(resumed.extras['pool_a'].count[0]) > 0
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7),
               straight, resumed)
