"""LRMF: pure losses against hand-computed Gaussian values, the closed forms of
Example 2.1 and Sec. 8.3, and Algorithm 1 reaching them."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import optimize

from lrmf import algorithm, gaussian, held_out, losses
from nflax import bijectors, densities, engine, fitting

AFFINE = bijectors.PositiveDefiniteAffine()

# Compiled once per shape: op-by-op execution compiles every primitive.
lrmf_loss = jax.jit(losses.lrmf_loss, static_argnames=('flow', 'density'))
lrmf_constant = jax.jit(losses.lrmf_constant, static_argnames=('density',))
log_likelihood_ratio_distance = jax.jit(losses.log_likelihood_ratio_distance,
                                        static_argnames=('density',))


def _draw(rng, mean, cov, n):
  return rng.multivariate_normal(mean, cov, n).astype(np.float32)


def _mle_variables(x):
  return gaussian.gaussian_variables(*gaussian.gaussian_mle(x))


def _hand_log_likelihood(x, mean, var):
  """``1/n sum_i log N(x_i; mean, var)`` of 1-D samples, written out."""
  x = np.asarray(x, np.float64).ravel()
  return float(np.mean(-0.5 * math.log(2 * math.pi * var) - (x - mean)**2 / (2 * var)))


def _random_spd(rng, dim):
  m = rng.normal(size=(dim, dim))
  return m @ m.T + 0.5 * np.eye(dim)


# --- closed forms (Example 2.1, Sec. 8.3) ---------------------------------------------


def test_optimal_affine_1d_scales_and_shifts():
  assert gaussian.optimal_affine_1d(1.0, 2.0, -3.0, 0.5) == pytest.approx((0.25, -3.25))
  # For a centred A the paper's b* = mu_B - mu_A is the same map.
  assert gaussian.optimal_affine_1d(0.0, 2.0, -3.0, 0.5) == pytest.approx((0.25, -3.0))
  matrix, shift = gaussian.optimal_affine([1.0], [[4.0]], [-3.0], [[0.25]])
  np.testing.assert_allclose([matrix[0, 0], shift[0]], [0.25, -3.25])


def test_optimal_affine_matches_the_first_two_moments():
  rng = np.random.default_rng(0)
  mean_a, mean_b = rng.normal(size=3), rng.normal(size=3)
  cov_a, cov_b = _random_spd(rng, 3), _random_spd(rng, 3)
  matrix, shift = gaussian.optimal_affine(mean_a, cov_a, mean_b, cov_b)
  np.testing.assert_allclose(matrix, matrix.T)
  assert np.linalg.eigvalsh(matrix).min() > 0
  np.testing.assert_allclose(matrix @ cov_a @ matrix, cov_b, atol=1e-10)
  np.testing.assert_allclose(matrix @ mean_a + shift, mean_b, atol=1e-12)
  variables = gaussian.optimal_affine_variables(mean_a, cov_a, mean_b, cov_b)
  root = np.asarray(variables['params']['matrix'], np.float64)
  np.testing.assert_allclose(root.T @ root, matrix, rtol=1e-5, atol=1e-5)
  x = rng.normal(size=(5, 3)).astype(np.float32)
  np.testing.assert_allclose(AFFINE.apply(variables, x, method=AFFINE.forward),
                             x @ matrix + shift, rtol=1e-5, atol=1e-5)
  assert gaussian.gaussian_lrmf_objective(matrix, shift, mean_a, cov_a, mean_b,
                                          cov_b) == pytest.approx(0.0, abs=1e-10)


def test_example_2_1_objective_is_zero_exactly_at_the_optimum():
  moments = (1.0, 2.0, -3.0, 0.5)
  a_opt, b_opt = gaussian.optimal_affine_1d(*moments)
  assert gaussian.gaussian_lrmf_objective_1d(a_opt, b_opt, *moments) == pytest.approx(
      0.0, abs=1e-12)
  for a, b in [(1.0, 0.0), (0.3, -3.25), (0.25, -2.0), (-0.25, -3.25)]:
    assert gaussian.gaussian_lrmf_objective_1d(a, b, *moments) > 1e-3
  # The mirrored map -a* x + (mu_B + a* mu_A) matches the moments too.
  assert gaussian.gaussian_lrmf_objective_1d(-a_opt, -3.0 + a_opt, *moments) == pytest.approx(
      0.0, abs=1e-12)
  found = optimize.minimize(
      lambda p: gaussian.gaussian_lrmf_objective_1d(math.exp(p[0]), p[1], *moments),
      x0=[0.0, 0.0], method='Nelder-Mead', options={'xatol': 1e-9, 'fatol': 1e-12})
  np.testing.assert_allclose([math.exp(found.x[0]), found.x[1]], [a_opt, b_opt], atol=1e-4)
  assert gaussian.gaussian_lrmf_objective([[0.7]], [0.4], [1.0], [[4.0]], [-3.0], [[
      0.25]]) == pytest.approx(gaussian.gaussian_lrmf_objective_1d(0.7, 0.4, *moments))


@pytest.mark.parametrize('call, message', [
    (lambda: gaussian.optimal_affine_1d(0.0, -1.0, 0.0, 1.0), 'sigma_a'),
    (lambda: gaussian.optimal_affine([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), 'mean_b'),
    (lambda: gaussian.optimal_affine([0.0], [[1.0]], [0.0], [[-1.0]]), 'cov_b'),
    (lambda: gaussian.optimal_affine([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0],
                                     np.eye(2)), 'symmetric'),
    (lambda: gaussian.gaussian_lrmf_objective_1d(0.0, 0.0, 0.0, 1.0, 0.0, 1.0), 'slope'),
    (lambda: gaussian.gaussian_mle(np.zeros(5)), r'\(n, d\)'),
])
def test_bad_gaussian_inputs_raise(call, message):
  with pytest.raises(ValueError, match=message):
    call()


def test_gaussian_variables_round_trip():
  rng = np.random.default_rng(1)
  mean, cov = rng.normal(size=2), _random_spd(rng, 2)
  density = densities.Gaussian(dim=2)
  got_mean, got_cov = density.apply(gaussian.gaussian_variables(mean, cov),
                                    method=density.mean_and_covariance)
  np.testing.assert_allclose(got_mean, mean, rtol=1e-6)
  np.testing.assert_allclose(got_cov, cov, rtol=1e-5, atol=1e-6)


# --- the pure losses against hand-computed values ------------------------------------


def test_losses_match_hand_computed_1d_gaussian_values():
  rng = np.random.default_rng(2)
  a, b = _draw(rng, [1.0], [[4.0]], 400), _draw(rng, [-3.0], [[0.25]], 400)
  density = densities.Gaussian(dim=1)
  (mu_a, var_a), (mu_b, var_b) = [(m[0], c[0, 0]) for m, c in map(gaussian.gaussian_mle, (a, b))]
  private_a, private_b = _mle_variables(a), _mle_variables(b)
  # Maximum average log-likelihood of a Gaussian: -1/2 log(2 pi e sigma^2).
  hand_c = -0.5 * math.log(2 * math.pi * math.e * var_a) - 0.5 * math.log(
      2 * math.pi * math.e * var_b)
  constant = lrmf_constant(density=density, private_a=private_a, private_b=private_b,
                                  a=a, b=b)
  assert float(constant) == pytest.approx(hand_c, abs=1e-4)

  slope, shift = 0.7, 0.4
  flow_variables = AFFINE.make_variables([[math.sqrt(slope)]], [shift])
  shared = gaussian.gaussian_variables([0.3], [[1.7]])
  hand = (-math.log(slope) - _hand_log_likelihood(slope * a + shift, 0.3, 1.7)
          - _hand_log_likelihood(b, 0.3, 1.7) + hand_c)
  loss = lrmf_loss(flow=AFFINE, density=density, flow_variables=flow_variables,
                          shared=shared, a=a, b=b, constant=constant)
  assert float(loss) == pytest.approx(hand, abs=1e-4)

  # At the shared Gaussian fitted to the equal mixture of T(A) and B, Eq. 3 is
  # the closed form of Example 2.1 at the sample moments.
  optimal_shared = _mle_variables(np.concatenate([slope * a + shift, b]))
  loss = lrmf_loss(flow=AFFINE, density=density, flow_variables=flow_variables,
                          shared=optimal_shared, a=a, b=b, constant=constant)
  closed_form = gaussian.gaussian_lrmf_objective_1d(slope, shift, mu_a, math.sqrt(var_a),
                                                    mu_b, math.sqrt(var_b))
  assert float(loss) == pytest.approx(closed_form, abs=1e-4)

  # Definition 2.1 = Example 2.1 with T the identity.
  distance = log_likelihood_ratio_distance(
      density=density, private_a=private_a, private_b=private_b,
      shared=_mle_variables(np.concatenate([a, b])), a=a, b=b)
  assert float(distance) == pytest.approx(gaussian.gaussian_lrmf_objective_1d(
      1.0, 0.0, mu_a, math.sqrt(var_a), mu_b, math.sqrt(var_b)), abs=1e-4)
  assert float(distance) > 1.0


def test_distance_is_zero_for_equal_data_and_positive_otherwise():
  rng = np.random.default_rng(3)
  density = densities.Gaussian(dim=2)
  a = _draw(rng, [0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]], 300)
  private = _mle_variables(a)
  same = log_likelihood_ratio_distance(density=density, private_a=private,
                                              private_b=private, shared=private, a=a, b=a)
  assert float(same) == pytest.approx(0.0, abs=1e-6)
  b = a + np.float32([0.3, 0.0])
  different = log_likelihood_ratio_distance(
      density=density, private_a=private, private_b=_mle_variables(b),
      shared=_mle_variables(np.concatenate([a, b])), a=a, b=b)
  assert float(different) > 1e-3


def test_objective_is_non_negative_at_converged_private_models():
  rng = np.random.default_rng(4)
  density = densities.Gaussian(dim=2)
  a = _draw(rng, [0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]], 300)
  b = _draw(rng, [2.0, -1.0], [[0.6, -0.2], [-0.2, 1.5]], 300)
  constant = lrmf_constant(density=density, private_a=_mle_variables(a),
                                  private_b=_mle_variables(b), a=a, b=b)
  num = 64
  flows = {'params': {'matrix': jnp.eye(2) + 0.5 * rng.normal(size=(num, 2, 2)),
                      'shift': 2.0 * rng.normal(size=(num, 2))}}
  shared = {'params': {'mean': 2.0 * rng.normal(size=(num, 2)),
                       'raw_scale_tril': rng.normal(size=(num, 2, 2))}}
  objective = jax.jit(jax.vmap(lambda f, s: losses.lrmf_loss(
      flow=AFFINE, density=density, flow_variables=f, shared=s, a=a, b=b, constant=constant)))
  values = np.asarray(objective(flows, shared))
  assert values.min() > -1e-4, values.min()
  # ... and about 0 at the closed-form optimum with the optimal shared model.
  optimum = gaussian.optimal_affine_variables(*gaussian.gaussian_mle(a),
                                              *gaussian.gaussian_mle(b))
  transformed = AFFINE.apply(optimum, a, method=AFFINE.forward)
  at_optimum = lrmf_loss(
      flow=AFFINE, density=density, flow_variables=optimum,
      shared=_mle_variables(np.concatenate([transformed, b])), a=a, b=b, constant=constant)
  assert float(at_optimum) == pytest.approx(0.0, abs=1e-4)


# --- the objective of Algorithm 1 ----------------------------------------------------


def test_objective_matches_the_pure_losses():
  rng = np.random.default_rng(5)
  density = densities.Gaussian(dim=2)
  # Unequal sizes, not multiples of the evaluation chunk.
  a, b = _draw(rng, [0.0, 1.0], np.eye(2), 150), _draw(rng, [1.0, 0.0], np.eye(2), 70)
  private_a, private_b = _mle_variables(a), _mle_variables(b)
  flow_variables = AFFINE.make_variables([[1.2, 0.1], [0.0, 0.9]], [0.3, -0.2])
  shared = gaussian.gaussian_variables([0.5, 0.5], [[1.5, 0.2], [0.2, 0.8]])
  pure_constant = float(lrmf_constant(density=density, private_a=private_a,
                                      private_b=private_b, a=a, b=b))
  pure = float(lrmf_loss(flow=AFFINE, density=density, flow_variables=flow_variables,
                         shared=shared, a=a, b=b))
  constant = float(jax.jit(held_out.constant_fn(density, 64))(private_a, private_b, a, b))
  assert constant == pytest.approx(pure_constant, abs=1e-4)
  objective = algorithm.lrmf_objective(flow=AFFINE, density=density, eval_batch_size=64)
  joint = algorithm.joint_variables(flow_variables, shared)
  params, model_state = joint['params'], {k: v for k, v in joint.items() if k != 'params'}
  assert set(params) == {'flow', 'shared'} and model_state == {}
  train, new_state = jax.jit(objective.train_loss)(params, model_state,
                                                   engine.Independent((a, b)),
                                                   jax.random.PRNGKey(0))
  assert new_state == {}
  assert float(train) == pytest.approx(pure, abs=1e-4)
  held_out_value = float(fitting.evaluate(params, model_state,
                                          algorithm.HeldOut(a, b, jnp.asarray(constant)),
                                          eval_loss=objective.eval_loss))
  assert held_out_value == pytest.approx(pure + pure_constant, abs=1e-4)
  terms_a, terms_b = held_out.objective_terms(
      flow=AFFINE, density=density, flow_variables=flow_variables, shared=shared,
      private_a=private_a, private_b=private_b, a=a, b=b, batch_size=64)
  assert terms_a.shape == (150,) and terms_b.shape == (70,)
  assert float(jnp.mean(terms_a) + jnp.mean(terms_b)) == pytest.approx(held_out_value, abs=1e-4)


def test_convergence_check_is_two_sided_with_its_standard_error():
  rng = np.random.default_rng(0)
  terms_a, terms_b = rng.normal(0.0, 0.1, 400), rng.normal(0.0, 0.1, 100)
  check = held_out.convergence_check(terms_a, terms_b, eps=0.05)
  se = math.sqrt(terms_a.var(ddof=1) / 400 + terms_b.var(ddof=1) / 100)
  assert check.standard_error == pytest.approx(se)
  assert check.converged == (abs(check.objective) + 1.96 * se <= 0.05)
  # A large negative value is not convergence (the one-sided rule L < eps called it so).
  assert not held_out.convergence_check(terms_a - 1.0, terms_b, eps=0.05).converged
  # One far point: its share of the mean is reported, and the interval widens.
  spiked = terms_b.copy()
  spiked[0] = -150.0
  check = held_out.convergence_check(terms_a, spiked, eps=0.05)
  assert check.worst_percent == pytest.approx(-1.5, abs=0.02)  # 5 points; the spike's -1.5
  assert check.standard_error > 1.0 and not check.converged


def test_training_loss_is_lrmf_loss_scoring_the_mixture_once():
  rng = np.random.default_rng(8)
  a = _draw(rng, [0.0, 1.0], np.eye(2), 48)
  b = _draw(rng, [2.0, 0.0], [[2.0, 0.3], [0.3, 0.5]], 32)
  # Batch statistics in T and in the shared model, Glow-style 'constants' in T.
  flow = bijectors.Chain([bijectors.Invertible1x1Conv(), bijectors.BatchNorm()])
  density = densities.FlowDensity(flow=bijectors.BatchNorm(),
                                  base=densities.StandardNormal((2,)))
  flow_variables = jax.jit(flow.init)(jax.random.PRNGKey(0), a)
  shared = jax.jit(density.init)(jax.random.PRNGKey(1), b)
  objective = algorithm.lrmf_objective(flow=flow, density=density)
  joint = algorithm.joint_variables(flow_variables, shared)
  params = joint['params']
  model_state = {k: v for k, v in joint.items() if k != 'params'}
  key = jax.random.PRNGKey(2)
  train, new_state = jax.jit(objective.train_loss)(params, model_state,
                                                   engine.Independent((a, b)), key)
  # Chain holds a list, so the modules are closed over rather than static arguments.
  loss_fn = functools.partial(losses.lrmf_loss, flow=flow, density=density)
  pure, (flow_state, shared_state) = jax.jit(functools.partial(loss_fn, mutable=True))(
      flow_variables=flow_variables, shared=shared, a=a, b=b, key=key)
  assert float(train) == pytest.approx(float(pure), abs=1e-6)
  jax.tree.map(np.testing.assert_array_equal, new_state,
               algorithm.joint_variables(flow_state, shared_state))
  assert set(flow_state) == {'constants', 'batch_stats'} and set(shared_state) == {'batch_stats'}
  # The shared model normalises with the statistics of [T(a); b], T in training mode.
  transformed, _ = flow.apply(flow_variables, a, method=flow.forward,
                              mutable=['batch_stats', 'constants'])
  mixture = np.concatenate([transformed, b])
  stats = shared_state['batch_stats']['flow']
  np.testing.assert_allclose(stats['batch_mean'], mixture.mean(0), atol=1e-5)
  np.testing.assert_allclose(stats['batch_var'], mixture.var(0), atol=1e-5)
  # Evaluation mode (running averages) differs from training mode.
  frozen = float(jax.jit(loss_fn)(flow_variables=flow_variables, shared=shared, a=a, b=b))
  assert abs(frozen - float(pure)) > 1e-3


def test_train_lrmf_keeps_constants_and_batch_statistics():
  rng = np.random.default_rng(7)
  a = _draw(rng, [0.0, 1.0], np.eye(2), 64)
  b = _draw(rng, [2.0, 0.0], np.eye(2), 64)
  flow = bijectors.Chain([bijectors.Invertible1x1Conv(), bijectors.BatchNorm()])
  density = densities.FlowDensity(flow=bijectors.BatchNorm(),
                                  base=densities.StandardNormal((2,)))
  flow_variables = engine.add_replica_axis(jax.jit(flow.init)(jax.random.PRNGKey(0), a))
  # A caller's own runner: private models stay at their initialisation (no
  # steps), the joint stage runs one dispatch.
  private = fitting.fit_runner(optimizer=optax.adam(1e-2), num_steps=0, batch_size=32)
  joint_stages = []
  joint = fitting.fit_runner(
      optimizer=optax.adam(1e-2), num_steps=5, batch_size=32, steps_per_dispatch=5,
      callback=lambda stage, state, record: joint_stages.append(stage))
  stages = []

  def runner(stage, *args):
    stages.append(stage)
    return (joint if stage == 'joint' else private)(stage, *args)

  replicated = algorithm.train_lrmf(
      flow=flow, density=density, a_train=a[None], b_train=b[None], a_val=a[None],
      b_val=b[None], keys=jax.random.PRNGKey(1)[None], eps=0.1, private_runner=runner,
      joint_runner=runner, flow_variables=flow_variables)
  result = replicated.replica(0)
  flow_variables = engine.replica(flow_variables, 0)
  assert stages == ['private_a', 'private_b', 'joint'] and joint_stages == ['joint']
  assert set(result.flow_variables) == {'params', 'constants', 'batch_stats'}
  assert set(result.shared_variables) == {'params', 'batch_stats'}
  jax.tree.map(np.testing.assert_array_equal, result.flow_variables['constants'],
               flow_variables['constants'])
  moved = lambda new, old: any(jax.tree.leaves(jax.tree.map(
      lambda x, y: not np.allclose(x, y), new['batch_stats'], old['batch_stats'])))
  assert moved(result.flow_variables, flow_variables)
  assert moved(result.shared_variables, result.private_b)  # thS started at thB
  assert math.isfinite(result.objective)
  assert result.objective == pytest.approx(result.histories['joint'][-1]['val_loss'][0],
                                          abs=1e-5)
  assert result.converged == (abs(result.objective) + 1.96 * result.objective_se <= 0.1)


def _restart_setup(restarts, calls):
  """Two replicas of a 2-D Gaussian problem; the joint runner records what it trains."""
  rng = np.random.default_rng(11)
  a = np.stack([_draw(rng, [0.0, 1.0], np.eye(2), 64) for _ in range(2)])
  b = np.stack([_draw(rng, [2.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], 64) for _ in range(2)])
  private = fitting.fit_runner(optimizer=optax.adam(0.1), num_steps=30, batch_size=64,
                               steps_per_dispatch=30)
  # Small minibatches and few steps: restarts end in different places.
  joint = fitting.fit_runner(optimizer=optax.sgd(0.05), num_steps=6, batch_size=8,
                             steps_per_dispatch=3)

  def joint_runner(stage, objective, variables, train_data, val_data, keys):
    fit = joint(stage, objective, variables, train_data, val_data, keys)
    calls.append({'variables': variables, 'train': train_data, 'keys': keys, 'fit': fit})
    return fit

  result = algorithm.train_lrmf(
      flow=AFFINE, density=densities.Gaussian(dim=2), a_train=a, b_train=b, a_val=a, b_val=b,
      keys=jax.random.split(jax.random.PRNGKey(3), 2), eps=0.1, private_runner=private,
      joint_runner=joint_runner, restarts=restarts)
  return result, a, b


def test_train_lrmf_restarts_keep_the_lowest_training_objective():
  single_calls, calls = [], []
  single, _, _ = _restart_setup(1, single_calls)
  result, a, b = _restart_setup(3, calls)
  (call,) = calls
  assert single.restart_objectives is None
  # The joint stage trained 2 x 3 replicas: each replica's data three times in a row, restart
  # 0 with the key of the run without restarts, the others with keys of their own.
  assert call['keys'].shape == (6, 2)
  np.testing.assert_array_equal(call['keys'][::3], single_calls[0]['keys'])
  assert len({tuple(np.asarray(key).tolist()) for key in call['keys']}) == 6
  np.testing.assert_array_equal(call['train'].parts[0], np.repeat(a, 3, axis=0))
  np.testing.assert_array_equal(call['train'].parts[1], np.repeat(b, 3, axis=0))
  # The training objective of every restart, recomputed model by model (oracle: the pure
  # lrmf_loss plus lrmf_constant on the whole training sets, one replica at a time), and the
  # kept one is its minimum.
  fit = call['fit']
  flow_all, shared_all = algorithm._split(fit.params, fit.model_state)
  assert result.restart_objectives.shape == (2, 3)
  for r in range(2):
    for k in range(3):
      want = float(lrmf_loss(
          flow=AFFINE, density=densities.Gaussian(dim=2),
          flow_variables=engine.replica(flow_all, 3 * r + k),
          shared=engine.replica(shared_all, 3 * r + k), a=a[r], b=b[r],
          constant=lrmf_constant(density=densities.Gaussian(dim=2),
                                 private_a=engine.replica(result.private_a, r),
                                 private_b=engine.replica(result.private_b, r), a=a[r],
                                 b=b[r])))
      assert result.restart_objectives[r, k] == pytest.approx(want, abs=1e-4)
    kept = 3 * r + int(np.argmin(result.restart_objectives[r]))
    jax.tree.map(np.testing.assert_array_equal, engine.replica(result.flow_variables, r),
                 engine.replica(flow_all, kept))
    jax.tree.map(np.testing.assert_array_equal, engine.replica(result.shared_variables, r),
                 engine.replica(shared_all, kept))
  assert np.ptp(result.restart_objectives, axis=1).min() > 0  # the restarts differed
  # The history keeps the kept restarts only, and the held-out check is theirs.
  last = result.histories['joint'][-1]
  assert np.shape(last['val_loss']) == (2,)
  np.testing.assert_allclose(result.objective, last['val_loss'], atol=1e-5)


def test_train_lrmf_private_restarts_keep_the_lowest_validation_nll():
  """With J private restarts each private stage trains R J fits (restart 0 the run without
  restarts) and keeps, per replica, the one with the lowest NLL on the validation set."""
  rng = np.random.default_rng(12)
  a = np.stack([_draw(rng, [0.0, 1.0], np.eye(2), 64) for _ in range(2)])
  b = np.stack([_draw(rng, [2.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], 64) for _ in range(2)])
  a_val, b_val = a[:, :16] + 0.5, b[:, :16] - 0.5  # held-out sets the restarts fit differently
  density = densities.Gaussian(dim=2)
  fits = {}
  # Few steps of small minibatches: the restarts end in different places.
  inner = fitting.fit_runner(optimizer=optax.sgd(0.05), num_steps=4, batch_size=8,
                             steps_per_dispatch=2)

  def private_runner(stage, objective, variables, train_data, val_data, keys):
    fits.setdefault(stage, []).append((keys, inner(stage, objective, variables, train_data,
                                                   val_data, keys)))
    return fits[stage][-1][1]

  joint = fitting.fit_runner(optimizer=optax.sgd(0.05), num_steps=2, batch_size=8)
  run = lambda j: algorithm.train_lrmf(
      flow=AFFINE, density=density, a_train=a, b_train=b, a_val=a_val, b_val=b_val,
      keys=jax.random.split(jax.random.PRNGKey(3), 2), eps=0.1, private_runner=private_runner,
      joint_runner=joint, private_restarts=j)
  single = run(1)
  result = run(3)
  nll = fitting.nll_objective(density)
  for stage, kept_variables, single_variables, val in (
      ('private_a', result.private_a, single.private_a, a_val),
      ('private_b', result.private_b, single.private_b, b_val)):
    (single_keys, _), (keys, fitted) = fits[stage]
    assert keys.shape == (6, 2)
    np.testing.assert_array_equal(keys[::3], single_keys)  # restart 0 = the single run
    jax.tree.map(np.testing.assert_array_equal, engine.replica(fitted.params, 0),
                 engine.replica(single_variables['params'], 0))
    for r in range(2):
      losses = [float(nll.eval_loss(engine.replica(fitted.params, 3 * r + j), {}, val[r]))
                for j in range(3)]
      assert np.ptp(losses) > 0  # the restarts differed
      jax.tree.map(np.testing.assert_array_equal, engine.replica(kept_variables['params'], r),
                   engine.replica(fitted.params, 3 * r + int(np.argmin(losses))))
    assert np.shape(result.histories[stage][-1]['val_loss']) == (2,)


@pytest.mark.parametrize('restarts', [0, 2.5, -1])
def test_train_lrmf_rejects_bad_restarts(restarts):
  x = np.zeros((1, 8, 2), np.float32)
  runner = fitting.fit_runner(optimizer=optax.sgd(0.1), num_steps=1, batch_size=4)
  for name in ('restarts', 'private_restarts'):
    with pytest.raises(ValueError, match=f'^{name} must be a positive integer'):
      algorithm.train_lrmf(flow=AFFINE, density=densities.Gaussian(dim=2), a_train=x,
                           b_train=x, a_val=x, b_val=x, keys=jax.random.PRNGKey(0)[None],
                           eps=0.1, private_runner=runner, joint_runner=runner,
                           **{name: restarts})


def test_train_lrmf_rejects_mismatched_event_shapes():
  x2, x3 = np.zeros((8, 2), np.float32), np.zeros((8, 3), np.float32)
  runner = fitting.fit_runner(optimizer=optax.sgd(0.1), num_steps=1, batch_size=4)
  with pytest.raises(ValueError, match='event shape'):
    algorithm.train_lrmf(flow=AFFINE, density=densities.Gaussian(dim=2), a_train=x2[None],
                         b_train=x3[None], a_val=x2[None], b_val=x3[None],
                         keys=jax.random.PRNGKey(0)[None], eps=0.1,
                         private_runner=runner, joint_runner=runner)


# --- Algorithm 1 reaches the closed form ---------------------------------------------


@pytest.mark.parametrize('mean_a, cov_a, mean_b, cov_b', [
    ([1.0], [[2.25]], [-2.0], [[0.5625]]),
    ([0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]], [2.0, -1.0], [[0.6, -0.2], [-0.2, 1.5]]),
], ids=['1d', '2d'])
def test_affine_gaussian_lrmf_reaches_the_closed_form(mean_a, cov_a, mean_b, cov_b):
  rng = np.random.default_rng(8)
  n = 256
  a_train, a_val = _draw(rng, mean_a, cov_a, n), _draw(rng, mean_a, cov_a, n)
  b_train, b_val = _draw(rng, mean_b, cov_b, n), _draw(rng, mean_b, cov_b, n)
  dim = len(mean_a)
  density = densities.Gaussian(dim=dim)
  # Full batches and one evaluation per stage: the joint stage minimises Eq. 3
  # on the training samples, whose minimiser is the closed form at their
  # sample moments (selecting among several evaluations would follow the
  # held-out noise instead).
  result = algorithm.train_lrmf(
      flow=AFFINE, density=density, a_train=a_train[None], b_train=b_train[None],
      a_val=a_val[None], b_val=b_val[None], keys=jax.random.PRNGKey(0)[None], eps=0.02,
      private_runner=fitting.fit_runner(optimizer=optax.adam(0.1), num_steps=200,
                                          batch_size=n, steps_per_dispatch=200),
      joint_runner=fitting.fit_runner(optimizer=optax.adam(0.05), num_steps=400,
                                        batch_size=n, steps_per_dispatch=400),
      estimate_bias=True).replica(0)
  sample_a, sample_b = gaussian.gaussian_mle(a_train), gaussian.gaussian_mle(b_train)
  for private, (mean, cov) in [(result.private_a, sample_a), (result.private_b, sample_b)]:
    got_mean, got_cov = density.apply(private, method=density.mean_and_covariance)
    np.testing.assert_allclose(got_mean, mean, atol=2e-3)
    np.testing.assert_allclose(got_cov, cov, atol=2e-3)
  root = np.asarray(result.flow_variables['params']['matrix'], np.float64)
  matrix, shift = root.T @ root, np.asarray(result.flow_variables['params']['shift'])
  if dim == 1:  # Example 2.1
    slope, offset = gaussian.optimal_affine_1d(
        sample_a[0][0], math.sqrt(sample_a[1][0, 0]), sample_b[0][0],
        math.sqrt(sample_b[1][0, 0]))
    want_matrix, want_shift = np.array([[slope]]), np.array([offset])
  else:  # Sec. 8.3
    want_matrix, want_shift = gaussian.optimal_affine(*sample_a, *sample_b)
  np.testing.assert_allclose(matrix, want_matrix, atol=5e-3)
  np.testing.assert_allclose(shift, want_shift, atol=5e-3)
  moved_mean, moved_cov = gaussian.gaussian_mle(a_train @ matrix + shift)
  np.testing.assert_allclose(moved_mean, sample_b[0], atol=5e-3)
  np.testing.assert_allclose(moved_cov, sample_b[1], atol=5e-3)
  assert gaussian.gaussian_lrmf_objective(matrix, shift, *sample_a, *sample_b) < 1e-4
  assert abs(result.objective) < 0.02
  assert result.converged
  # Lemma 2.2: an affine map of a Gaussian is a Gaussian, so E_bias = 0 (Sec. 8.3).
  assert abs(result.bias) < 5e-3
