"""Featurized DRE: Lemma 1, the estimators against known ratios, weighting, SIR and MI."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from scipy import optimize, stats

from experiments.fdre import modes as fdre_modes
from fdre import estimators, featurize, mutual_information, weighting
from nflax import bijectors, fitting


def _gaussian_log_pdf(x, mean, cov):
  return stats.multivariate_normal(mean, cov).logpdf(x)


def test_lemma1_ratio_in_x_equals_ratio_in_z_for_an_affine_map():
  """p, q Gaussian, f(x) = A x + b: log p/q (x) = log p'/q' (f(x)) with p' = N(A mu + b, A S A^T)."""
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 2)) + 2 * np.eye(2), rng.normal(size=2)
  mean_p, cov_p = np.zeros(2), np.eye(2)
  mean_q, cov_q = np.array([3.0, 3.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
  x = rng.normal(size=(50, 2)) * 2
  log_r_x = _gaussian_log_pdf(x, mean_p, cov_p) - _gaussian_log_pdf(x, mean_q, cov_q)
  log_r_z = lambda z: (_gaussian_log_pdf(np.asarray(z), a @ mean_p + b, a @ cov_p @ a.T)
                       - _gaussian_log_pdf(np.asarray(z), a @ mean_q + b, a @ cov_q @ a.T))
  composed = featurize.compose(log_r_z, lambda x: x @ a.T + b)
  np.testing.assert_allclose(composed(x), log_r_x, rtol=1e-6, atol=1e-6)


def test_lemma1_with_a_maf_feature_map():
  """Random MAF f: p'(z) = p(f^-1(z)) |det df^-1/dz| (log-det checked by jacfwd); same ratio."""
  flow = bijectors.maf(num_blocks=1, hidden=(8,), batch_norm=False)
  x = jax.random.normal(jax.random.PRNGKey(0), (40, 2)) * 2
  variables = flow.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(lambda v: v + 0.3 * jax.random.normal(jax.random.PRNGKey(2), v.shape),
                           variables)
  forward = jax.jit(lambda x: flow.apply(variables, x, method=type(flow).forward))
  inverse = jax.jit(lambda z: flow.apply(variables, z, method=type(flow).inverse_and_log_det))
  z = forward(x)
  x_back, inv_log_det = inverse(z)
  np.testing.assert_allclose(x_back, x, atol=1e-4)
  jacobians = jax.jit(jax.vmap(jax.jacfwd(lambda zi: inverse(zi[None])[0][0])))(z)
  np.testing.assert_allclose(inv_log_det, np.linalg.slogdet(np.asarray(jacobians))[1], atol=1e-4)
  log_p = lambda x: _gaussian_log_pdf(np.asarray(x), np.zeros(2), np.eye(2))
  log_q = lambda x: _gaussian_log_pdf(np.asarray(x), np.array([3.0, 3.0]), np.eye(2))
  log_p_z = log_p(x_back) + inv_log_det  # the density of f(X_p) at z
  log_q_z = log_q(x_back) + inv_log_det
  np.testing.assert_allclose(log_p_z - log_q_z, log_p(x) - log_q(x), atol=1e-3)


def test_classifier_log_ratio_of_the_bayes_classifier_is_exact():
  x = np.linspace(-3, 3, 13)
  n_p, n_q = 300, 1200
  log_p, log_q = stats.norm(1, 1).logpdf(x), stats.norm(-1, 1).logpdf(x)
  bayes_logit = np.log(n_p) + log_p - np.log(n_q) - log_q
  got = estimators.classifier_log_ratio(logits=jnp.asarray(bayes_logit), n_p=n_p, n_q=n_q)
  np.testing.assert_allclose(got, log_p - log_q, atol=1e-5)
  with pytest.raises(ValueError, match='positive'):
    estimators.classifier_log_ratio(logits=jnp.zeros(3), n_p=0, n_q=3)


def test_trained_classifier_log_ratio_approaches_the_true_one_with_unequal_sizes():
  """p = N(1, 1), q = N(-1, 1): log r(x) = 2x; n_p = 2000, n_q = 500 (size correction needed)."""
  rng = np.random.default_rng(0)
  p, q = rng.normal(1, 1, (2500, 1)), rng.normal(-1, 1, (625, 1))
  runner = fitting.fit_runner(optimizer=optax.adam(0.05), num_steps=600, batch_size=500,
                                steps_per_dispatch=300)
  fitted = featurize.fit_log_ratio(  # one replica: a leading axis of 1
      mode='baseline', flow=None, classifier=featurize.RatioClassifier(hidden=()),
      p_train=p[None, :2000], q_train=q[None, :500], p_val=p[None, 2000:],
      q_val=q[None, 500:625], keys=jax.random.PRNGKey(0)[None], runner=runner)
  grid = np.linspace(-2, 2, 21)[:, None].astype(np.float32)
  assert fitted.log_ratio(grid[None]).shape == (1, 21)
  np.testing.assert_allclose(fitted.log_ratio(grid[None])[0], 2 * grid[:, 0], atol=0.3)


@pytest.mark.parametrize('mode', ['separate', 'joint'])  # the two code paths of the modes
def test_fit_log_ratio_replicas_train_independently(mode):
  """Two replicas (own data, own key) side by side give each replica's one-replica fit."""
  rng = np.random.default_rng(4)
  sets = rng.normal(size=(4, 2, 40, 2)).astype(np.float32) + np.array([0.0, 2.0])[:, None, None]
  p_train, q_train, p_val, q_val = sets[0], sets[1], sets[2], sets[3]  # (R=2, 40, 2) each
  keys = jnp.stack([jax.random.PRNGKey(3), jax.random.PRNGKey(8)])
  runner = fitting.fit_runner(optimizer=optax.adam(1e-2), num_steps=6, batch_size=20,
                              steps_per_dispatch=3)
  common = dict(mode=mode, flow=bijectors.maf(num_blocks=1, hidden=(8,), batch_norm=True),
                classifier=featurize.RatioClassifier(hidden=(8,)), runner=runner, alpha=0.5)
  both = featurize.fit_log_ratio(p_train=p_train, q_train=q_train, p_val=p_val, q_val=q_val,
                                 keys=keys, **common)
  points = rng.normal(size=(2, 7, 2)).astype(np.float32)
  got = np.asarray(both.log_ratio(points))
  assert got.shape == (2, 7)
  if both.encode is not None:
    assert both.encode(points).shape == (2, 7, 2)
    np.testing.assert_allclose(both.decode(both.encode(points)), points, atol=1e-4)
  for r in range(2):
    one = featurize.fit_log_ratio(p_train=p_train[r:r + 1], q_train=q_train[r:r + 1],
                                  p_val=p_val[r:r + 1], q_val=q_val[r:r + 1],
                                  keys=keys[r:r + 1], **common)
    np.testing.assert_allclose(got[r], np.asarray(one.log_ratio(points[r:r + 1]))[0],
                               rtol=1e-4, atol=1e-4)


def test_hybrid_loss_is_eq1():
  logits, labels = jnp.array([0.5, -1.0]), jnp.array([1.0, 0.0])
  log_prob = jnp.array([-2.0, -3.0])
  sup = estimators.logistic_loss(logits=logits, labels=labels)
  expected = 0.3 * sup + 0.7 * 2.5
  assert np.isclose(featurize.hybrid_loss(logits=logits, labels=labels, log_prob=log_prob,
                                          alpha=0.3), expected)
  assert np.isclose(featurize.hybrid_loss(logits=logits, labels=labels,
                                          log_prob=jnp.array([jnp.nan, 0.0]), alpha=1.0), sup)
  with pytest.raises(ValueError, match='alpha'):
    featurize.hybrid_loss(logits=logits, labels=labels, log_prob=log_prob, alpha=1.5)


def _one_d_shift(n_source=1000, n_target=1000):
  """Source N(0, 1), target N(0.5, 0.8^2): r(x) = target / source."""
  rng = np.random.default_rng(1)
  source = rng.normal(0.0, 1.0, (n_source, 1)).astype(np.float32)
  target = rng.normal(0.5, 0.8, (n_target, 1)).astype(np.float32)
  true_log_ratio = lambda x: stats.norm(0.5, 0.8).logpdf(x[:, 0]) - stats.norm(0, 1).logpdf(x[:, 0])
  return source, target, true_log_ratio


def _f64(x):
  return jnp.asarray(x, jnp.float64)


def test_kmm_recovers_a_known_ratio_in_1d():
  source, target, true_log_ratio = _one_d_shift()
  with jax.enable_x64(True):
    beta = np.asarray(estimators.kmm_weights(source=_f64(source), target=_f64(target),
                                             kernel_gamma=0.5, bound=10.0, tol=1e-10))
  truth = np.exp(true_log_ratio(source))
  assert np.all(beta >= -1e-6) and np.all(beta <= 10 + 1e-6)
  inside = np.abs(source[:, 0] - 0.3) < 1.5
  # The exact QP optimum is spikier than the ratio (a few weights carry more), so compare
  # ranks and the mean error.
  assert stats.spearmanr(beta[inside], truth[inside])[0] > 0.95
  assert np.mean(np.abs(beta[inside] - truth[inside])) < 0.15


def test_kmm_solves_its_qp_like_a_reference_solver():
  rng = np.random.default_rng(2)
  source, target = rng.normal(size=(12, 2)), rng.normal(0.7, 1.0, (15, 2))
  with jax.enable_x64(True):
    kw = dict(source=_f64(source), target=_f64(target), kernel_gamma=0.5)
    solution = estimators.kmm_solve(**kw, bound=3.0, eps=0.1)
    assert bool(solution.converged) and float(solution.residual) <= 1e-8
    beta = np.asarray(solution.weights)
    objective = lambda b: float(estimators.kmm_objective(_f64(b), **kw))
    reference = optimize.minimize(
        objective, np.ones(12), method='SLSQP', bounds=[(0, 3.0)] * 12,
        options=dict(ftol=1e-14, maxiter=1000),
        constraints=[{'type': 'ineq', 'fun': lambda b: 12 * 1.1 - b.sum()},
                     {'type': 'ineq', 'fun': lambda b: b.sum() - 12 * 0.9}])
    assert reference.success, reference
    assert np.all(beta > 0) and np.all(beta < 3.0) and 10.8 < beta.sum() < 13.2
    # The certificate holds against the reference optimum, and the two minimisers agree.
    assert objective(beta) <= reference.fun + 1e-8 * abs(reference.fun)
    np.testing.assert_allclose(beta, reference.x, atol=1e-4)


def test_kmm_reaches_the_slsqp_minimum_at_the_papers_widest_kernel():
  """At kernel_gamma 0.01 (Table 8's grid) the Gram matrix is singular to float64 precision:
  the solution must still reach the minimum a general-purpose QP method finds (SLSQP from
  the same start, 60 points), within its duality-gap certificate."""
  from harness.data import synthetic
  split = synthetic.gaussian_mixture_2d(60, seed=4, n_target=60)
  with jax.enable_x64(True):
    kw = dict(source=_f64(split.source_x), target=_f64(split.target_x), kernel_gamma=0.01)
    solution = estimators.kmm_solve(**kw, bound=1000.0)
    assert bool(solution.converged)
    objective = lambda b: float(estimators.kmm_objective(_f64(b), **kw))
    n, eps = 60, (math.sqrt(60) - 1) / math.sqrt(60)
    reference = optimize.minimize(
        objective, np.ones(n), jac=lambda b: np.asarray(jax.grad(
            lambda v: estimators.kmm_objective(v, **kw))(_f64(b))), method='SLSQP',
        bounds=[(0, 1000.0)] * n, options=dict(ftol=1e-15, maxiter=2000),
        constraints=[{'type': 'ineq', 'fun': lambda b: n * (1 + eps) - b.sum()},
                     {'type': 'ineq', 'fun': lambda b: b.sum() - n * (1 - eps)}])
    value = objective(solution.weights)
    assert value <= reference.fun + 1e-9 * abs(reference.fun)
    assert value >= reference.fun - float(solution.residual) * abs(value) - 1e-9 * abs(value)


def test_kmm_refuses_float32_and_fails_loudly_when_it_does_not_converge():
  source, target, _ = _one_d_shift()
  with pytest.raises(ValueError, match='kmm_solve needs float64 points, got float32'):
    estimators.kmm_weights(source=jnp.asarray(source), target=jnp.asarray(target),
                           kernel_gamma=0.5, bound=10.0)
  with jax.enable_x64(True):
    with pytest.raises(RuntimeError, match='KMM did not converge: relative duality gap'):
      estimators.kmm_weights(source=_f64(source), target=_f64(target), kernel_gamma=0.5,
                             bound=10.0, max_iterations=5)
    with pytest.raises(ValueError, match='eps > 0'):
      estimators.kmm_weights(source=_f64(source), target=_f64(target), kernel_gamma=0.5,
                             bound=10.0, eps=0.0)


def test_kliep_recovers_a_known_ratio_in_1d():
  source, target, true_log_ratio = _one_d_shift()
  alpha = estimators.kliep_fit(numerator=jnp.asarray(target), denominator=jnp.asarray(source),
                               centers=jnp.asarray(target[:100]), kernel_gamma=0.5)
  log_ratio = lambda x: estimators.kliep_log_ratio(
      jnp.asarray(x), centers=jnp.asarray(target[:100]), alpha=alpha, kernel_gamma=0.5)
  assert np.all(np.asarray(alpha) >= 0)
  # The constraint mean_j r(x_j^den) = 1 holds.
  assert np.isclose(float(jnp.mean(jnp.exp(log_ratio(source)))), 1.0, atol=1e-3)
  inside = np.abs(source[:, 0] - 0.3) < 1.5
  got, truth = np.exp(log_ratio(source[inside])), np.exp(true_log_ratio(source[inside]))
  assert np.corrcoef(got, truth)[0, 1] > 0.95
  assert np.mean(np.abs(got - truth)) < 0.1


def test_kliep_likelihood_cross_validation_prefers_a_sensible_kernel():
  """LCV ranks a moderate width above a too-wide (r ~ 1, score ~ 0) and a too-narrow kernel."""
  source, target, _ = _one_d_shift(n_source=400, n_target=400)
  score = lambda g: estimators.kliep_lcv_score(numerator=jnp.asarray(target),
                                               denominator=jnp.asarray(source), kernel_gamma=g,
                                               num_centers=50)
  moderate, wide, narrow = score(0.5), score(1e-4), score(200.0)
  assert abs(wide) < 0.02 < moderate  # the true KL(target || source) is ~0.2
  assert narrow < moderate
  with pytest.raises(ValueError, match='num_centers'):
    estimators.kliep_lcv_score(numerator=jnp.asarray(target), denominator=jnp.asarray(source),
                               kernel_gamma=0.5, num_centers=400)


def test_mixture_correction_uses_the_actual_set_sizes():
  x = np.linspace(-3, 3, 9)
  n_p, n_q = 250, 1000
  log_p, log_q = stats.norm(1, 1).logpdf(x), stats.norm(-1, 2).logpdf(x)
  log_h = np.logaddexp(np.log(n_p / 1250) + log_p, np.log(n_q / 1250) + log_q)
  got = weighting.mixture_log_weight(log_ratio=jnp.asarray(log_p - log_q), n_p=n_p, n_q=n_q)
  np.testing.assert_allclose(got, log_p - log_h, atol=1e-5)
  equal = weighting.mixture_log_weight(log_ratio=jnp.asarray(log_p - log_q), n_p=5, n_q=5)
  r = np.exp(log_p - log_q)
  np.testing.assert_allclose(equal, np.log(r / (0.5 * (r + 1))), atol=1e-5)  # App. D.4


def test_sir_from_the_mixture_targets_p():
  """Samples of h = 0.2 N(2, 1) + 0.8 N(-2, 1) resampled with p/h weights have p's mean 2."""
  key_c, key_x, key_s = jax.random.split(jax.random.PRNGKey(0), 3)
  n = 4000
  from_p = jax.random.bernoulli(key_c, 0.2, (n,))
  x = jnp.where(from_p, 2.0, -2.0) + jax.random.normal(key_x, (n,))
  log_r = stats.norm(2, 1).logpdf(np.asarray(x)) - stats.norm(-2, 1).logpdf(np.asarray(x))
  log_w = weighting.mixture_log_weight(log_ratio=jnp.asarray(log_r), n_p=200, n_q=800)
  idx = weighting.sir_indices(key_s, log_weights=log_w, num_samples=2000)
  assert abs(float(jnp.mean(x[idx])) - 2.0) < 0.15


def test_self_normalisation_and_flattening():
  log_r = jnp.array([0.0, 1.0, 2.0, 50.0])
  w = weighting.self_normalize(log_r)
  assert np.isclose(float(w.sum()), 1.0) and np.all(np.isfinite(w))
  np.testing.assert_allclose(weighting.self_normalize(weighting.flatten(log_r, power=0.0)), 0.25)
  np.testing.assert_allclose(weighting.flatten(log_r, power=0.2), 0.2 * log_r)
  with pytest.raises(ValueError, match='power'):
    weighting.flatten(log_r, power=-1.0)


def test_augmentation_weights_flatten_then_self_normalise_to_mean_one():
  log_r = jnp.log(jnp.array([0.5, 1.0, 2.0, 4.0]))
  np.testing.assert_allclose(weighting.augmentation_weights(log_r, power=0.0), np.ones(4))
  plain = weighting.augmentation_weights(log_r, power=1.0)
  np.testing.assert_allclose(plain, 4 * np.exp(log_r) / np.exp(log_r).sum(), rtol=1e-5)
  flattened = weighting.augmentation_weights(log_r, power=0.2)
  np.testing.assert_allclose(flattened, 4 * np.exp(0.2 * log_r) / np.exp(0.2 * log_r).sum(),
                             rtol=1e-5)
  assert np.ptp(flattened) < np.ptp(plain)


def test_mutual_information_of_the_true_ratio_is_the_true_mi():
  dim, rho, n = 20, 0.9, 10000
  key_x, key_e, key_p = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(key_x, (n, dim))
  y = rho * x + math.sqrt(1 - rho**2) * jax.random.normal(key_e, (n, dim))
  joint, marginals = mutual_information.joint_and_marginal_samples(key_p, x=x, y=y)
  assert joint.shape == marginals.shape == (n, 2 * dim)
  np.testing.assert_allclose(marginals[:, :dim], x)
  xs, ys = joint[:, :dim], joint[:, dim:]
  # log v(x, y) / (p(x) q(y)) for unit-variance pairs with correlation rho, per coordinate.
  log_r = jnp.sum(-0.5 * jnp.log(1 - rho**2) - (rho**2 * (xs**2 + ys**2) - 2 * rho * xs * ys)
                  / (2 * (1 - rho**2)), 1)
  true_mi = -dim / 2 * math.log(1 - rho**2)
  assert abs(float(mutual_information.mutual_information(joint_log_ratio=log_r)) - true_mi) < 0.2


def test_true_log_densities_of_the_toy_and_mi_tasks_match_scipy():
  rng = np.random.default_rng(3)
  toy = ml_collections.ConfigDict({'data': {'name': 'gaussians', 'mean_q': (3.0, 3.0)}})
  x = rng.normal(size=(6, 2))
  log_p, log_q = fdre_modes.true_log_densities(toy, x)
  np.testing.assert_allclose(log_p, _gaussian_log_pdf(x, np.zeros(2), np.eye(2)), rtol=1e-10)
  np.testing.assert_allclose(log_q, _gaussian_log_pdf(x, np.full(2, 3.0), np.eye(2)), rtol=1e-10)
  mi = ml_collections.ConfigDict(
      {'data': {'name': 'correlated_gaussians', 'dim': 2, 'rho': 0.9}})
  pairs = rng.normal(size=(6, 4))  # [x1, x2, y1, y2]: x_i and y_i correlated
  cov = np.eye(4) + 0.9 * (np.eye(4, k=2) + np.eye(4, k=-2))
  log_joint, log_marginals = fdre_modes.true_log_densities(mi, pairs)
  np.testing.assert_allclose(log_joint, _gaussian_log_pdf(pairs, np.zeros(4), cov), rtol=1e-10)
  np.testing.assert_allclose(log_marginals, _gaussian_log_pdf(pairs, np.zeros(4), np.eye(4)),
                             rtol=1e-10)


def test_breast_cancer_biased_split_follows_app_d2():
  from experiments.fdre import biased_sampling
  split = biased_sampling.breast_cancer_biased(seed=0)
  assert len(split.target_x) == round(0.75 * 569)
  assert split.source_labels.mean() < 0.3 < 0.5 < split.target_labels.mean()  # benign dropped
  used = np.concatenate([split.source_x, split.target_x])
  np.testing.assert_allclose(used.mean(0), 0.0, atol=1e-4)
  np.testing.assert_allclose(used.std(0), 1.0, atol=1e-3)
  with pytest.raises(ValueError, match='target_fraction'):
    biased_sampling.breast_cancer_biased(target_fraction=1.0)


def test_two_seed_gaussians_smoke_run_gives_each_seed_its_one_seed_numbers(tmp_path):
  """fdre_gaussians:smoke with seeds (0, 1) side by side = the runs with seeds (0,) and (1,)."""
  from configs import fdre_gaussians
  from experiments import launch

  def run(seeds):
    config = fdre_gaussians.get_config('smoke')
    config.seeds = seeds
    return launch.run_experiment(config, str(tmp_path / '_'.join(map(str, seeds))))

  both = run((0, 1))
  assert both['seeds'] == [0, 1] and [r['seed'] for r in both['per_seed']] == [0, 1]
  assert both['per_seed'][0]['overlap_fraction'] != both['per_seed'][1]['overlap_fraction']
  for index, seed in enumerate((0, 1)):
    alone = run((seed,))['per_seed'][0]
    together = both['per_seed'][index]
    assert set(alone) == set(together)
    for name, value in alone.items():
      np.testing.assert_allclose(together[name], value, rtol=1e-3, atol=1e-4, err_msg=name)
  mse = 'log_ratio_mse_overlap/joint_alpha_0_9'
  np.testing.assert_allclose(both[mse], np.mean([r[mse] for r in both['per_seed']]))
  assert both[f'{mse}_se'] > 0


def test_paper_variant_trains_100_epochs_of_the_union_of_both_sets():
  """App. E.1/E.2: 100 epochs; every stage draws its batches from D_p u D_q, so an epoch is
  2 * n_train points (the variant once counted one set's 4000 points: 50 epochs)."""
  from configs import fdre_gaussians
  config = fdre_gaussians.get_config('paper')
  union = 2 * config.data.splits[0]
  for stage, train in config.train.items():
    assert train.num_steps * train.batch_size == pytest.approx(100 * union, rel=0.02), stage


def test_mode_metrics_w1_and_bands_against_their_definitions():
  config = ml_collections.ConfigDict({'data': {'name': 'gaussians'}})
  truth = np.array([-12.0, -3.0, -1.0, 0.5, 4.0, 7.0])
  estimate = truth + np.array([2.0, 1.0, 0.0, -1.0, 3.0, 0.0])
  overlap = np.abs(truth) <= 5
  out = fdre_modes._mode_metrics(config, 'm', estimate, truth, overlap, n_p_test=3)
  assert out['log_ratio_w1/m'] == pytest.approx(stats.wasserstein_distance(estimate, truth))
  assert fdre_modes._mode_metrics(config, 'm', truth, truth, overlap, 3)['log_ratio_w1/m'] == 0
  # the distance between distributions ignores which point an estimate belongs to
  shuffled = fdre_modes._mode_metrics(config, 'm', truth[::-1], truth, overlap, 3)
  assert shuffled['log_ratio_w1/m'] == 0 and shuffled['log_ratio_mse/m'] > 0
  assert out['log_ratio_mse_band_0_2.5/m'] == pytest.approx((0.0 + 1.0) / 2)
  assert out['log_ratio_mse_band_2.5_5/m'] == pytest.approx((1.0 + 9.0) / 2)
  assert out['log_ratio_mse_band_5_10/m'] == 0.0
  assert out['log_ratio_mse_band_10_inf/m'] == pytest.approx(4.0)
  assert out['log_ratio_mse_overlap/m'] == pytest.approx((1 + 0 + 1 + 9) / 4)


def test_bayes_posterior_and_slope_of_log_r_in_z_for_an_affine_map():
  """The oracle labels are sigmoid(log r + log(n_p / n_q)); for z = 2 x + b the slope of
  log r(f^{-1}(z)) is ||mu|| / 2."""
  config = ml_collections.ConfigDict({'data': {'name': 'gaussians', 'mean_q': (3.0, 3.0)}})
  x = np.random.default_rng(0).normal(size=(2, 5, 2))
  labels = fdre_modes.bayes_posterior(config, x, n_p=100, n_q=300)
  logits = np.stack([fdre_modes.true_log_ratio(config, points) for points in x]) + np.log(1 / 3)
  np.testing.assert_allclose(labels, 1 / (1 + np.exp(-logits)), rtol=1e-5)
  slope = fdre_modes.log_ratio_slope_z(config, lambda x: 2 * jnp.asarray(x) + 1.0,
                                       lambda z: (jnp.asarray(z) - 1.0) / 2, x)
  np.testing.assert_allclose(slope, np.full((2, 5), np.sqrt(18.0) / 2), rtol=1e-5)


def test_oracle_controls_run_and_a_classifier_taught_the_bayes_posterior_recovers_log_r(
    tmp_path):
  """The control's classifier on x with the true posterior as labels fits log r on the
  overlap better than a constant, the run reports the controls' metrics, and the baseline
  without weight decay is paired with the baseline."""
  from configs import fdre_gaussians
  from experiments import launch
  config = fdre_gaussians.get_config('smoke')
  config.modes = ('baseline', 'separate')
  config.oracle_controls = True
  # weight decay 0: the control without weight decay must then be the baseline itself (same
  # keys, initialisation and batches)
  config.train.classifier.update(num_steps=300, lr=3e-3, eval_every=100, steps_per_dispatch=100,
                                 weight_decay=0.0)
  results = launch.run_experiment(config, str(tmp_path / 'run'))
  for metric in ('log_ratio_mse', 'log_ratio_w1'):
    assert results[f'{metric}/baseline_no_weight_decay'] == pytest.approx(
        results[f'{metric}/baseline'], rel=1e-5)
  for name in ('oracle_x', 'oracle_z', 'separate_exact_flow', 'oracle_exact_flow',
               'baseline_no_weight_decay'):
    for metric in ('log_ratio_mse_overlap', 'log_ratio_w1', 'log_ratio_mse_band_10_inf'):
      assert math.isfinite(results[f'{metric}/{name}']), (metric, name)
  # log r = 0 everywhere would score about 8 on |log r| <= 5 (its spread there)
  assert results['log_ratio_mse_overlap/oracle_x'] < 4.0
  assert results['log_ratio_slope_x'] == pytest.approx(math.sqrt(18.0))
  assert results['log_ratio_slope_z_overlap/separate'] > 0
  # the exact flow squeezes the gap between the two components: a steeper target than on x
  assert results['train_points_across_boundary'] == int(results['train_points_across_boundary'])
  assert 0 <= results['train_points_across_boundary'] <= 400
  assert results['log_ratio_slope_z_overlap/exact_flow'] > math.sqrt(18.0)


def test_exact_mixture_flow_maps_the_training_mixture_to_a_standard_normal():
  """T of the weighted mixture pi_p N(0, I) + pi_q N(mu, I) is N(0, I) distributed, log r is
  a function of z_1 with the returned slope (finite differences), and far tails stay finite."""
  config = ml_collections.ConfigDict({'data': {'name': 'gaussians', 'mean_q': (3.0, 3.0)}})
  rng = np.random.default_rng(0)
  n_p, n_q = 30000, 10000
  x = np.concatenate([rng.normal(size=(n_p, 2)), rng.normal(size=(n_q, 2)) + 3.0])
  z, slope = fdre_modes.exact_mixture_flow(config, x, n_p, n_q)
  np.testing.assert_allclose(z.mean(0), 0.0, atol=0.02)
  np.testing.assert_allclose(np.cov(z.T), np.eye(2), atol=0.03)
  assert stats.kstest(z[:, 0], 'norm').pvalue > 1e-3
  assert stats.kstest(z[:, 1], 'norm').pvalue > 1e-3
  # log r = -||mu|| u + ||mu||^2 / 2 moves along mu; T moves only z_1 there
  step = 1e-4 * np.array([1.0, 1.0]) / np.sqrt(2.0)
  points = x[:50].astype(np.float64)
  z_step = fdre_modes.exact_mixture_flow(config, points + step, n_p, n_q)[0]
  log_r_step = np.sqrt(18.0) * 1e-4
  np.testing.assert_allclose(z_step[:, 1], z[:50, 1], atol=1e-5)
  np.testing.assert_allclose(log_r_step / np.abs(z_step[:, 0].astype(np.float64) - z[:50, 0]),
                             slope[:50], rtol=0.05)
  far_z, far_slope = fdre_modes.exact_mixture_flow(
      config, np.array([[-40.0, -40.0], [40.0, 40.0]]), n_p, n_q)
  assert np.all(np.isfinite(far_z)) and far_z[0, 0] < -30 and far_z[1, 0] > 30
  np.testing.assert_allclose(far_slope, np.sqrt(18.0), rtol=0.01)


def test_l2_weight_decay_style_is_pytorch_adams_coupled_penalty():
  """``weight_decay_style='l2'`` adds ``wd * params`` to the gradient before Adam's scaling
  (torch.optim.Adam(weight_decay=wd)); the default decays after it (AdamW)."""
  from harness import stages
  params = {'w': jnp.array([2.0, -1.0])}
  grads = {'w': jnp.array([1e-3, 0.0])}
  block = lambda style: ml_collections.ConfigDict(
      {'lr': 0.1, 'weight_decay': 0.5, 'weight_decay_style': style})
  updates = {}
  for style in ('l2', 'decoupled'):
    optimizer = stages.make_optimizer(block(style))
    updates[style], _ = optimizer.update(grads, optimizer.init(params), params)
  g = grads['w'] + 0.5 * params['w']  # first Adam step: m / sqrt(v) = sign(g) (eps aside)
  np.testing.assert_allclose(updates['l2']['w'], -0.1 * np.sign(g), rtol=1e-4)
  np.testing.assert_allclose(updates['decoupled']['w'],
                             -0.1 * (np.array([1.0, 0.0]) + 0.5 * params['w']), rtol=1e-4)
  with pytest.raises(ValueError, match='weight_decay_style'):
    stages.make_optimizer(block('adamw'))


def test_gaussian_mixture_2d_log_ratio_is_the_closed_form_target_over_source():
  """The true importance weight of Table 8's mixtures (and of other options of the generator)."""
  from harness.data import synthetic
  x = np.random.default_rng(0).normal(1.5, 2.0, (64, 2))
  mixture = lambda weights, means, std: np.log(sum(
      w * stats.multivariate_normal(m, std**2 * np.eye(2)).pdf(x) for w, m in zip(weights, means)))
  table8 = ((0, 0), (3, 3))
  np.testing.assert_allclose(
      synthetic.gaussian_mixture_2d_log_ratio(x, n=1000, n_target=3000),
      mixture((0.99, 0.01), table8, 1.0) - mixture((0.01, 0.99), table8, 1.0), rtol=1e-6)
  options = dict(means=((0, 0), (2, -1), (1, 1)), std=0.7, source_weights=(0.2, 0.5, 0.3),
                 target_weights=(0.6, 0.0, 0.4))
  np.testing.assert_allclose(
      synthetic.gaussian_mixture_2d_log_ratio(x, **options),
      mixture((0.6, 0.0, 0.4), options['means'], 0.7)
      - mixture((0.2, 0.5, 0.3), options['means'], 0.7), rtol=1e-6)


def test_kmm_and_kliep_weights_on_the_table8_mixture_follow_the_closed_form_weights():
  """Regression test against the true q(x) / p(x) of App. F.2 in input space: both estimators
  rank the source points like the truth, put far more weight on the 1% of source points from
  the target's main component, and KMM's QP converges inside its sum constraint."""
  from harness.data import synthetic
  split = synthetic.gaussian_mixture_2d(600, seed=3, n_target=600)
  source, target = jnp.asarray(split.source_x), jnp.asarray(split.target_x)
  true_log = synthetic.gaussian_mixture_2d_log_ratio(split.source_x)
  main = split.source_labels == 1  # N(0, I): 99% of the target, 1% of the source
  with jax.enable_x64(True):
    solution = estimators.kmm_solve(source=_f64(source), target=_f64(target), kernel_gamma=0.1,
                                    bound=10.0)
  kmm = np.asarray(solution.weights)
  eps = (math.sqrt(600) - 1) / math.sqrt(600)
  assert bool(solution.converged) and 1 - eps - 1e-4 <= kmm.mean() <= 1 + eps + 1e-4
  alpha = estimators.kliep_fit(numerator=target, denominator=source, centers=target[:100],
                               kernel_gamma=0.5)
  kliep = np.exp(np.asarray(estimators.kliep_log_ratio(source, centers=target[:100],
                                                       alpha=alpha, kernel_gamma=0.5)))
  for weights in (kmm, kliep):
    log_weights = np.log(np.maximum(weights, np.exp(true_log.min())))
    assert np.corrcoef(log_weights, true_log)[0, 1] > 0.6
    assert weights[main].mean() > 10 * weights[~main].mean()


def test_domain_adaptation_smoke_run_reports_the_true_weight_controls(tmp_path):
  """fdre_domain_adaptation:smoke writes the oracle (true-weight) error and the selected
  weights' agreement with the closed-form weights, next to the paper's test errors."""
  from configs import fdre_domain_adaptation
  from experiments import launch
  results = launch.run_experiment(fdre_domain_adaptation.get_config('smoke'), str(tmp_path))
  for key in ('unweighted', 'oracle_iw', 'oracle_iw_kmm_min_sum', 'kmm/iw_x', 'kmm/iw_z',
              'kliep/iw_z/mean_one', 'kmm/iw_z/grid_min'):
    assert 0.0 <= results[f'test_error/{key}'] <= 1.0, key
  for name in ('kmm/iw_x', 'kmm/iw_z', 'kliep/iw_x', 'kliep/iw_z'):
    assert -1.0 <= results[f'weights/{name}/log_corr'] <= 1.0, name
    assert results[f'weights/{name}/log_mse'] >= 0 and results[f'weights/{name}/mean'] > 0
    assert results[f'test_error/{name}/grid_min'] <= results[f'test_error/{name}'] + 1e-12



FDRE_CONFIGS = ('fdre_gaussians', 'fdre_mutual_information', 'fdre_domain_adaptation',
                'fdre_targeted_mnist', 'fdre_augmentation')


def test_mode_entries_name_each_joint_alpha_in_the_order_of_the_modes():
  config = ml_collections.ConfigDict({'modes': ('baseline', 'joint', 'separate'),
                                      'joint_alphas': (0.01, 0.9)})
  assert fdre_modes.mode_entries(config) == [
      ('baseline', 'baseline', 1.0), ('joint_alpha_0_01', 'joint', 0.01),
      ('joint_alpha_0_9', 'joint', 0.9), ('separate', 'separate', 1.0)]
  config.modes = ('joint', 'adversarial')
  with pytest.raises(ValueError, match="config.modes: unknown mode 'adversarial'"):
    fdre_modes.mode_entries(config)


@pytest.mark.parametrize('name', FDRE_CONFIGS)
def test_a_data_set_the_experiment_cannot_load_is_named_by_its_field(name, tmp_path):
  """``config.data.name`` picks the data; one the experiment has no loader for fails before
  anything trains, naming the field."""
  import importlib
  from experiments import launch
  config = importlib.import_module(f'configs.{name}').get_config('smoke')
  config.data.name = 'moons'
  with pytest.raises(ValueError, match=r"config.data.name 'moons'"):
    launch.run_experiment(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_oracle_controls_refused_before_training_where_they_are_not_defined(tmp_path):
  """The controls need the toy task's known mean shift and a separate mode: the MI configs
  leave them off, and asking for them fails before any stage trains."""
  from configs import fdre_mutual_information
  from experiments import launch
  for variant in ('',) + fdre_mutual_information.VARIANTS:
    assert not fdre_mutual_information.get_config(variant).oracle_controls, variant
  config = fdre_mutual_information.get_config('smoke')
  config.oracle_controls = True
  with pytest.raises(ValueError, match="oracle_controls needs config.data.name 'gaussians'"):
    launch.run_experiment(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()
