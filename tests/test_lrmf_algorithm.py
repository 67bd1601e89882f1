"""LRMF's Algorithm 1: its objective against the pure losses, the convergence check, the
training loss with batch statistics, train_lrmf's restarts and checks, and the affine Gaussian
case reaching the closed form of Example 2.1 / Sec. 8.3."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrmf import algorithm, gaussian, held_out, losses
from nflax import bijectors, densities, engine, fitting
from tests.lrmf_checks import AFFINE, draw, lrmf_constant, lrmf_loss, mle_variables


# --- the objective of Algorithm 1 ----------------------------------------------------


def test_objective_matches_the_pure_losses():
  rng = np.random.default_rng(5)
  density = densities.Gaussian(dim=2)
  # Unequal sizes, not multiples of the evaluation chunk.
  a, b = draw(rng, [0.0, 1.0], np.eye(2), 150), draw(rng, [1.0, 0.0], np.eye(2), 70)
  private_a, private_b = mle_variables(a), mle_variables(b)
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
  assert (check.objective_a, check.objective_b) == pytest.approx((terms_a.mean(), terms_b.mean()))
  assert check.objective == pytest.approx(check.objective_a + check.objective_b)
  # A large negative value is not convergence here; Algorithm 1's one-sided rule (if L >= eps
  # then failed) calls it converged, and fails a value at or above eps.
  below = held_out.convergence_check(terms_a - 1.0, terms_b, eps=0.05)
  assert not below.converged and below.converged_algorithm1
  above = held_out.convergence_check(terms_a + 0.2, terms_b, eps=0.05)
  assert above.objective >= 0.05 and not above.converged_algorithm1
  # One far point: its share of the mean is reported, and the interval widens.
  spiked = terms_b.copy()
  spiked[0] = -150.0
  check = held_out.convergence_check(terms_a, spiked, eps=0.05)
  assert check.worst_percent == pytest.approx(-1.5, abs=0.02)  # 5 points; the spike's -1.5
  assert check.standard_error > 1.0 and not check.converged


def test_training_loss_is_lrmf_loss_scoring_the_mixture_once():
  rng = np.random.default_rng(8)
  a = draw(rng, [0.0, 1.0], np.eye(2), 48)
  b = draw(rng, [2.0, 0.0], [[2.0, 0.3], [0.3, 0.5]], 32)
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
  a = draw(rng, [0.0, 1.0], np.eye(2), 64)
  b = draw(rng, [2.0, 0.0], np.eye(2), 64)
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
  assert stages == ['private', 'joint'] and joint_stages == ['joint']  # A's, B's side by side
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
  a = np.stack([draw(rng, [0.0, 1.0], np.eye(2), 64) for _ in range(2)])
  b = np.stack([draw(rng, [2.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], 64) for _ in range(2)])
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
  assert single.restart_objectives.shape == (2, 1)  # Eq. 3 on the training sets, K = 1
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
  flow_all, shared_all = algorithm.split_joint_variables(fit.params, fit.model_state)
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
  """With J private restarts the private stage trains 2 R J fits, A's and B's side by side
  (restart 0 the run without restarts), and keeps, per replica and domain, the one with the
  lowest NLL on that domain's validation set."""
  rng = np.random.default_rng(12)
  a = np.stack([draw(rng, [0.0, 1.0], np.eye(2), 64) for _ in range(2)])
  b = np.stack([draw(rng, [2.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], 64) for _ in range(2)])
  a_val, b_val = a[:, :16] + 0.5, b[:, :16] - 0.5  # held-out sets the restarts fit differently
  density = densities.Gaussian(dim=2)
  fits = []
  # Few steps of small minibatches: the restarts end in different places.
  inner = fitting.fit_runner(optimizer=optax.sgd(0.05), num_steps=4, batch_size=8,
                             steps_per_dispatch=2)

  def private_runner(stage, objective, variables, train_data, val_data, keys):
    assert stage == 'private'
    fits.append((keys, train_data, inner(stage, objective, variables, train_data, val_data,
                                         keys)))
    return fits[-1][2]

  joint = fitting.fit_runner(optimizer=optax.sgd(0.05), num_steps=2, batch_size=8)
  run = lambda j: algorithm.train_lrmf(
      flow=AFFINE, density=density, a_train=a, b_train=b, a_val=a_val, b_val=b_val,
      keys=jax.random.split(jax.random.PRNGKey(3), 2), eps=0.1, private_runner=private_runner,
      joint_runner=joint, private_restarts=j)
  single = run(1)
  result = run(3)
  (single_keys, single_data, _), (keys, data, fitted) = fits
  assert single_keys.shape == (4, 2) and keys.shape == (12, 2)
  nll = fitting.nll_objective(density)
  for d, (kept_variables, single_variables, train, val, name) in enumerate((
      (result.private_a, single.private_a, a, a_val, 'private_a'),
      (result.private_b, single.private_b, b, b_val, 'private_b'))):
    for r in range(2):
      rows = 6 * r + 3 * d + np.arange(3)  # replica r's block: A's 3 restarts, then B's
      np.testing.assert_array_equal(data[rows], np.repeat(train[r][None], 3, axis=0))
      np.testing.assert_array_equal(single_data[2 * r + d], train[r])
      np.testing.assert_array_equal(keys[rows[0]], single_keys[2 * r + d])  # restart 0
      jax.tree.map(np.testing.assert_array_equal, engine.replica(fitted.params, rows[0]),
                   engine.replica(single_variables['params'], r))
      losses = [float(nll.eval_loss(engine.replica(fitted.params, row), {}, val[r]))
                for row in rows]
      assert np.ptp(losses) > 0  # the restarts differed
      jax.tree.map(np.testing.assert_array_equal, engine.replica(kept_variables['params'], r),
                   engine.replica(fitted.params, rows[int(np.argmin(losses))]))
    assert np.shape(result.histories[name][-1]['val_loss']) == (2,)


def test_train_lrmf_fits_a_and_b_one_after_the_other_when_their_shapes_differ():
  """A and B of different sizes cannot share a stage: two stages, with the same fits as
  side by side (replicas are independent)."""
  rng = np.random.default_rng(13)
  a = draw(rng, [0.0, 1.0], np.eye(2), 64)[None]
  b = draw(rng, [2.0, 0.0], np.eye(2), 96)[None]
  density = densities.Gaussian(dim=2)
  stages = []
  inner = fitting.fit_runner(optimizer=optax.sgd(0.05), num_steps=4, batch_size=8)

  def runner(stage, *args):
    stages.append(stage)
    return inner(stage, *args)

  train = lambda b_train: algorithm.train_lrmf(
      flow=AFFINE, density=density, a_train=a, b_train=b_train, a_val=a[:, :16],
      b_val=b[:, :16], keys=jax.random.PRNGKey(3)[None], eps=0.1, private_runner=runner,
      joint_runner=runner)
  apart = train(b)
  assert stages == ['private_a', 'private_b', 'joint']
  # B cut to A's size: side by side; A's fit is the same as when it trained alone.
  together = train(b[:, :64])
  assert stages[3:] == ['private', 'joint']
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
               together.private_a, apart.private_a)


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
  a_train, a_val = draw(rng, mean_a, cov_a, n), draw(rng, mean_a, cov_a, n)
  b_train, b_val = draw(rng, mean_b, cov_b, n), draw(rng, mean_b, cov_b, n)
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
