"""The alignment baselines of LRMF Fig. 3/4: MMD, Sinkhorn/EMD, F o G^-1, SN-GAN, 1-NN."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import spatial
from scipy.spatial import distance

from lrmf import baselines, discrepancies
from nflax import bijectors, densities, engine, fitting


def _points(n, seed, shift=0.0, d=2):
  return (np.random.default_rng(seed).normal(size=(n, d)) + shift).astype(np.float32)


def _init(module, *args, **kwargs):
  """``module.init(PRNGKey(0), *args, **kwargs)``, compiled (eager init compiles op by op)."""
  return jax.jit(functools.partial(module.init, **kwargs))(jax.random.PRNGKey(0), *args)


def _perturbed(variables, seed, scale=0.3):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda l: l + scale * rng.normal(size=l.shape).astype(np.float32),
                      variables)


def _numpy_mmd(x, y, bandwidths, unbiased):
  def gram(u, v):
    sq = distance.cdist(u.astype(np.float64), v.astype(np.float64), 'sqeuclidean')
    return sum(np.exp(-sq / (2 * h**2)) for h in bandwidths)
  n, m = len(x), len(y)
  k_xx, k_yy, k_xy = gram(x, x), gram(y, y), gram(x, y)
  if unbiased:
    return ((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * k_xy.mean())
  return k_xx.mean() + k_yy.mean() - 2 * k_xy.mean()


@pytest.mark.parametrize('unbiased', [True, False])
def test_mmd_matches_numpy(unbiased):
  x, y = _points(40, 0), _points(30, 1, shift=0.5)
  bandwidths = (0.3, 1.0, 3.0)
  got = discrepancies.mmd_loss(x=x, y=y, bandwidths=bandwidths, unbiased=unbiased)
  np.testing.assert_allclose(got, _numpy_mmd(x, y, bandwidths, unbiased), rtol=1e-4, atol=1e-5)


def test_mmd_is_zero_for_identical_samples_and_grows_with_shift():
  x = _points(100, 0)
  assert float(discrepancies.mmd_loss(x=x, y=x, unbiased=False)) == 0.0
  values = [float(discrepancies.mmd_loss(x=x, y=_points(100, 1, shift=s))) for s in (0., 1., 3.)]
  assert abs(values[0]) < 0.05
  assert values[0] < values[1] < values[2]


def test_mmd_rejects_bad_input():
  with pytest.raises(ValueError, match='dimension'):
    discrepancies.mmd_loss(x=_points(5, 0, d=2), y=_points(5, 0, d=3))
  with pytest.raises(ValueError, match='bandwidth'):
    discrepancies.mmd_loss(x=_points(5, 0), y=_points(5, 1), bandwidths=(1.0, -1.0))


def test_sinkhorn_approaches_exact_emd_as_epsilon_shrinks():
  x, y = _points(24, 0), _points(24, 1, shift=1.0)
  emd = discrepancies.exact_emd(x, y)
  plan_fn = jax.jit(lambda eps: discrepancies.sinkhorn_plan(x=x, y=y, epsilon=eps, num_iters=4000))
  cost = distance.cdist(x, y, 'sqeuclidean')
  plans = [np.asarray(plan_fn(eps)) for eps in (1.0, 0.1, 0.01)]
  gaps = [abs(np.sum(plan * cost) - emd) for plan in plans]
  assert gaps[0] > gaps[1] > gaps[2]
  assert gaps[2] < 0.01 * emd
  np.testing.assert_allclose(plans[2].sum(0), np.full(24, 1 / 24), atol=1e-5)
  np.testing.assert_allclose(plans[2].sum(1), np.full(24, 1 / 24), atol=1e-3)
  np.testing.assert_allclose(discrepancies.sinkhorn_cost(x=x, y=y, epsilon=0.01, num_iters=4000),
                             np.sum(plans[2] * cost), rtol=1e-4)


def test_exact_emd_of_a_permutation_is_zero_and_of_a_shift_is_its_square():
  x = _points(50, 0).astype(np.float64)
  perm = np.random.default_rng(1).permutation(50)
  assert discrepancies.exact_emd(x, x[perm]) == pytest.approx(0.0, abs=1e-12)
  assert discrepancies.exact_emd(x, x + np.array([0.3, 0.4])) == pytest.approx(0.25)
  with pytest.raises(ValueError, match='equal-size'):
    discrepancies.exact_emd(x, x[:10])


def test_sinkhorn_divergence_is_zero_on_itself_and_debiases_the_cost():
  x, y = _points(60, 0), _points(50, 1, shift=1.0)
  kw = dict(epsilon=0.05, num_iters=1000)
  assert float(discrepancies.sinkhorn_cost(x=y, y=y, **kw)) > 0.01  # the bias the divergence removes
  assert abs(float(discrepancies.sinkhorn_divergence(x=y, y=y, **kw))) < 1e-6
  value = float(discrepancies.sinkhorn_divergence(x=x, y=y, **kw))
  assert value > 0.5  # a unit shift in 2-D moves about 1 unit of squared distance
  # The gradient vanishes where T(A) = B and points the way to B otherwise.
  grad_self = jax.grad(lambda z: discrepancies.sinkhorn_divergence(x=z, y=y, **kw))(y)
  np.testing.assert_allclose(grad_self, 0.0, atol=1e-4)
  grad = jax.grad(lambda z: discrepancies.sinkhorn_divergence(x=z, y=y, **kw))(x)
  assert float(jnp.sum(grad * (jnp.mean(x, 0) - jnp.mean(y, 0)))) > 0
  # The solver converges with enough iterations (its row marginals), not with one.
  assert float(discrepancies.sinkhorn_marginal_error(x=x, y=y, **kw)) < 1e-3
  assert float(discrepancies.sinkhorn_marginal_error(x=x, y=y, epsilon=0.05, num_iters=1)) > 1e-2


def test_sinkhorn_gradient_is_the_plan_weighted_displacement():
  x, y = _points(10, 0), _points(12, 1, shift=0.5)
  cost = functools.partial(discrepancies.sinkhorn_cost, epsilon=0.1, num_iters=300)
  grad = jax.grad(lambda u: cost(x=u, y=y))(x)
  plan = discrepancies.sinkhorn_plan(x=x, y=y, epsilon=0.1, num_iters=300)
  expected = 2 * (plan.sum(1)[:, None] * x - plan @ y)
  np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match='epsilon'):
    cost(x=x, y=y, epsilon=0.0)


def test_alignment_objective_trains_a_shift_with_mmd():
  a, b = _points(128, 0), _points(128, 1, shift=1.5)
  flow = bijectors.ElementwiseAffine()
  optimizer = optax.adam(0.05)
  objective = baselines.alignment_objective(
      flow=flow, discrepancy=functools.partial(discrepancies.mmd_loss, bandwidths=(0.5, 1.0, 2.0)))
  run = fitting.init_fit_run(engine.add_replica_axis(_init(flow, a[:4])), optimizer)
  data = engine.Independent((a[None], b[None]))
  result = fitting.fit(objective, run, data, data, optimizer=optimizer, num_steps=150,
                       batch_size=64, keys=jax.random.PRNGKey(1)[None], steps_per_dispatch=150)
  variables = engine.replica({'params': result.params, **result.model_state}, 0)
  moved = flow.apply(variables, a, method=flow.forward)
  np.testing.assert_allclose(moved.mean(0), b.mean(0), atol=0.25)
  assert result.history[-1]['val_loss'][0] < 0.05


def _fitted_flow_density(seed):
  density = densities.FlowDensity(bijectors.realnvp(num_blocks=2, hidden=(8,)),
                                  densities.StandardNormal(event_shape=(2,)))
  variables = _perturbed(_init(density, jnp.zeros((1, 2))), seed)
  return density, variables


def test_back_to_back_maps_model_a_onto_model_b():
  density_a, variables_a = _fitted_flow_density(0)
  density_b, variables_b = _fitted_flow_density(1)
  composed, variables = baselines.back_to_back_from_densities(
      density_a=density_a, variables_a=variables_a, density_b=density_b,
      variables_b=variables_b)
  flow_a, flow_b = density_a.flow, density_b.flow

  @jax.jit
  def check(key):
    samples_a = density_a.apply(variables_a, key, 64, method=density_a.sample)
    samples_b = density_b.apply(variables_b, key, 64, method=density_b.sample)
    mapped, log_det = composed.apply(variables, samples_a)
    back, inverse_log_det = composed.apply(variables, mapped,
                                           method=composed.inverse_and_log_det)
    z, log_det_a = flow_a.apply({'params': variables_a['params']['flow']}, samples_a)
    _, log_det_b_inverse = flow_b.apply({'params': variables_b['params']['flow']}, z,
                                        method=flow_b.inverse_and_log_det)
    return (samples_a, samples_b, mapped, log_det, back, inverse_log_det,
            log_det_a + log_det_b_inverse)

  (samples_a, samples_b, mapped, log_det, back, inverse_log_det,
   log_det_parts) = check(jax.random.PRNGKey(2))
  np.testing.assert_allclose(mapped, samples_b, atol=1e-4)
  np.testing.assert_allclose(back, samples_a, atol=1e-4)
  np.testing.assert_allclose(inverse_log_det, -log_det, atol=1e-4)
  np.testing.assert_allclose(log_det, log_det_parts, atol=1e-4)


def test_back_to_back_of_one_architecture_keeps_two_parameter_sets():
  flow = bijectors.realnvp(num_blocks=1, hidden=(4,))
  variables = _init(baselines.back_to_back(flow, flow), jnp.zeros((1, 2)))
  assert set(variables['params']) == {'layers_0', 'layers_1'}


def test_back_to_back_rejects_learned_bases():
  density = densities.FlowDensity(bijectors.realnvp(num_blocks=1, hidden=(4,)),
                                  densities.Gaussian(dim=2))
  variables = _init(density, jnp.zeros((1, 2)))
  with pytest.raises(ValueError, match='base'):
    baselines.back_to_back_from_densities(density_a=density, variables_a=variables,
                                          density_b=density, variables_b=variables)


def test_critic_is_spectrally_normalised():
  critic = baselines.SpectralNormCritic(hidden=(16, 8))
  x = _points(32, 0, d=3)
  variables = _init(critic, x, update_stats=False)
  params = _perturbed(variables['params'], 1, scale=2.0)

  @jax.jit
  def power_iterations(stats):
    def one(_, stats):
      _, updates = critic.apply({'params': params, 'batch_stats': stats}, x, update_stats=True,
                                mutable=['batch_stats'])
      return updates['batch_stats']
    stats = jax.lax.fori_loop(0, 100, one, stats)
    return stats, critic.apply({'params': params, 'batch_stats': stats}, x, update_stats=False)

  stats, logits = power_iterations(variables['batch_stats'])
  hidden = x
  names = sorted(params, key=lambda name: int(name.split('_')[1]))
  for index, name in enumerate(names):
    sigma = stats[f'SpectralNorm_{index}'][f'{name}/kernel/sigma']
    kernel = params[name]['kernel']
    assert np.linalg.norm(kernel, 2) > 1.5
    np.testing.assert_allclose(np.linalg.norm(kernel / sigma, 2), 1.0, rtol=1e-3)
    hidden = hidden @ (kernel / sigma) + params[name]['bias']
    if index < len(names) - 1:
      hidden = np.where(hidden > 0, hidden, 0.2 * hidden)
  assert logits.shape == (32,)
  np.testing.assert_allclose(logits, hidden[:, 0], rtol=1e-3, atol=1e-4)


def test_adversarial_steps_move_a_shifted_set_towards_b():
  a, b = _points(128, 0), _points(128, 1, shift=2.0)
  flow = bijectors.ElementwiseAffine()
  critic = baselines.SpectralNormCritic(hidden=(16,))
  flow_optimizer, critic_optimizer = optax.adam(0.05, b1=0.5), optax.adam(0.02, b1=0.5)
  state = baselines.init_adversarial_state(
      flow_variables=_init(flow, a[:4]),
      critic_variables=_init(critic, b[:4], update_stats=False),
      flow_optimizer=flow_optimizer, critic_optimizer=critic_optimizer)
  step = functools.partial(
      baselines.adversarial_step, flow=flow, critic=critic, flow_optimizer=flow_optimizer,
      critic_optimizer=critic_optimizer)

  result = engine.train(step, engine.init_run(engine.add_replica_axis(state)),
                        engine.Independent((a[None], b[None])), jax.random.PRNGKey(2)[None],
                        num_steps=150, batch_size=64, steps_per_dispatch=150)
  state = engine.replica(result.state, 0)
  metrics = {name: value for name, value in result.history[-1].items()}
  assert int(state.step) == 150
  assert np.all(np.isfinite(metrics['critic_loss']))
  assert np.all(np.isfinite(metrics['loss']))  # the generator's (T's)
  moved = flow.apply({'params': state.params}, a, method=flow.forward)
  gap = np.linalg.norm(np.mean(moved, 0) - np.mean(b, 0))
  assert gap < 0.25 * np.linalg.norm(np.mean(a, 0) - np.mean(b, 0))


def test_one_nn_accuracy_on_a_toy_case():
  reference = np.array([[0.0, 0.0], [10.0, 0.0]])
  reference_labels = np.array([0, 1])
  x = np.array([[1.0, 0.0], [9.0, 1.0], [4.0, 0.0], [6.0, 0.0], [8.0, 0.0]])
  labels = np.array([0, 1, 0, 0, 1])
  accuracy = baselines.one_nn_accuracy(reference_x=reference, reference_labels=reference_labels,
                                       x=x, labels=labels, chunk_size=2)
  assert accuracy == pytest.approx(0.8)
  with pytest.raises(ValueError, match='label'):
    baselines.one_nn_accuracy(reference_x=reference, reference_labels=reference_labels[:1],
                              x=x, labels=labels)


def test_one_nn_accuracy_matches_a_kd_tree_on_a_large_set():
  rng = np.random.default_rng(0)
  reference, x = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2))
  reference_labels, labels = (reference[:, 0] > 0).astype(int), (x[:, 0] > 0).astype(int)
  _, nearest = spatial.cKDTree(reference).query(x)
  expected = np.mean(reference_labels[nearest] == labels)
  got = baselines.one_nn_accuracy(reference_x=reference, reference_labels=reference_labels,
                                  x=x, labels=labels)
  assert got == pytest.approx(expected)


def test_coral_map_matches_target_moments():
  rng = np.random.default_rng(0)
  source = rng.normal(size=(400, 3)) @ np.array([[1., .5, 0.], [0., 1., .2], [0., 0., .3]])
  target = rng.normal(size=(600, 3)) @ np.diag([2., 1., .5]) + np.array([1., -2., 3.])
  for ridge in (0.0, 1.0):
    moved = np.asarray(discrepancies.coral_map(jnp.asarray(source), source=source, target=target,
                                           ridge=ridge), np.float64)
    np.testing.assert_allclose(moved.mean(0), target.mean(0), atol=1e-4)
    # CORAL maps C_s + ridge I onto C_t + ridge I, so cov(T(x)) = C_t + ridge (I - W^T W),
    # W = C_s^-1/2 C_t^1/2: exactly C_t without the ridge.
    if ridge == 0.0:
      np.testing.assert_allclose(np.cov(moved, rowvar=False), np.cov(target, rowvar=False),
                                 atol=2e-3)


def test_exact_emd_map_moves_points_onto_their_optimal_matches():
  x = _points(30, 0)
  permutation = np.random.default_rng(1).permutation(30)
  y = x[permutation] + 0.01
  moved = discrepancies.exact_emd_map(x, y)
  np.testing.assert_allclose(moved, x + 0.01, atol=1e-6)
  z = _points(30, 2, shift=1.0)
  cost = np.mean(np.sum((discrepancies.exact_emd_map(x, z) - x) ** 2, axis=1))
  np.testing.assert_allclose(cost, discrepancies.exact_emd(x, z), rtol=1e-6)
  with pytest.raises(ValueError, match='equal-size'):
    discrepancies.exact_emd_map(x, z[:10])


def test_mmd_particle_map_is_adam_on_the_points_and_closes_the_mmd():
  """Three steps equal Adam written out step by step; many steps shrink the (biased) MMD
  fifty-fold; bad shapes raise."""
  x, y = _points(40, 0), _points(30, 1, shift=1.5)
  bandwidths = (0.5, 1.0)
  optimizer, points = optax.adam(0.05), jnp.asarray(x)
  state = optimizer.init(points)
  for _ in range(3):
    grad = jax.grad(lambda p: discrepancies.mmd_loss(x=p, y=y, bandwidths=bandwidths))(points)
    updates, state = optimizer.update(grad, state)
    points = optax.apply_updates(points, updates)
  np.testing.assert_allclose(
      discrepancies.mmd_particle_map(x, y, bandwidths=bandwidths, num_steps=3,
                                     optimizer=optax.adam(0.05)), points, rtol=1e-5, atol=1e-6)
  moved = discrepancies.mmd_particle_map(x, y, bandwidths=bandwidths, num_steps=1500,
                                         optimizer=optax.adam(0.05))
  before = float(discrepancies.mmd_loss(x=x, y=y, bandwidths=bandwidths, unbiased=False))
  after = float(discrepancies.mmd_loss(x=moved, y=y, bandwidths=bandwidths, unbiased=False))
  assert after < 0.02 * before
  with pytest.raises(ValueError, match='same dimension'):
    discrepancies.mmd_particle_map(x, y[:, :1], optimizer=optax.adam(0.05), num_steps=1)
