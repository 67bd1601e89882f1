"""Tests of experiments/lrmf/comparison.py: the kNN-preservation metric, loading, Fig. 3's
numbers (rank correlations, drift) and their logs, a smoke run."""

import json
import types

import jax
import numpy as np
import optax
import pytest

from nflax import fitting
from configs import lrmf_moons_baselines, lrmf_surfaces
from experiments.lrmf import comparison as lrmf_compare


def _points(n=300, d=2, seed=0):
  return np.random.default_rng(seed).normal(size=(n, d))


def test_knn_preservation_identity_and_isometry_is_one():
  x = _points()
  rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
  assert lrmf_compare.knn_preservation(x, x, 10) == 1.0
  assert lrmf_compare.knn_preservation(x, 3.0 * x @ rotation + 5.0, 10) == 1.0


def test_knn_preservation_of_a_random_permutation_is_about_k_over_n():
  n, k = 1000, 10
  x = _points(n)
  y = x[np.random.default_rng(1).permutation(n)]
  value = lrmf_compare.knn_preservation(x, y, k)
  assert abs(value - k / (n - 1)) < 0.005


def test_knn_preservation_rejects_bad_arguments():
  x = _points(20)
  with pytest.raises(ValueError, match='k must be'):
    lrmf_compare.knn_preservation(x, x, 20)
  with pytest.raises(ValueError, match='images'):
    lrmf_compare.knn_preservation(x, x[:10], 3)


def test_standardize_uses_training_statistics_and_keeps_shape():
  domain = {'train_x': 10.0 * _points(500, 3) + 4.0, 'test_x': np.ones((5, 3)),
            'train_labels': np.zeros(500)}
  out = lrmf_compare._standardize(domain)
  np.testing.assert_allclose(out['train_x'].mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(np.mean(out['train_x']**2), 1.0, rtol=1e-4)
  assert out['train_labels'] is domain['train_labels']


def test_unknown_method_is_rejected(tmp_path):
  config = lrmf_surfaces.get_config('smoke')
  config.methods = ('lrmf', 'cyclegan')
  with pytest.raises(ValueError, match='unknown config.methods'):
    lrmf_compare.run(config, str(tmp_path))


def test_surfaces_are_standardised_and_coloured_by_their_coordinate():
  config = lrmf_surfaces.get_config('smoke')
  for domain_config in (config.data.a, config.data.b):
    domain = lrmf_compare._load(domain_config, config, config.seeds[0])
    np.testing.assert_allclose(np.mean(domain['train_x']**2), 1.0, rtol=1e-3)
    assert domain['test_color'].shape == domain['test_x'].shape[:1]
  assert np.ptp(domain['test_color']) > 1.0


def test_moons_smoke_run_writes_results_table_and_plots(tmp_path):
  config = lrmf_moons_baselines.get_config('smoke')
  results = lrmf_compare.run(config, str(tmp_path))
  for method in ('input',) + tuple(config.methods):
    assert 0.0 <= results[f'knn_preservation/{method}'] <= 1.0
    assert results[f'exact_emd/{method}'] >= 0.0
  assert results['knn_preservation/input'] == 1.0
  with open(tmp_path / 'results.json') as f:
    assert json.load(f)['lrmf']['knn_preservation'] == results['knn_preservation/lrmf']
  assert (tmp_path / 'table.md').read_text().count('\n') == len(config.methods) + 3
  assert (tmp_path / 'plots' / 'alignment.png').exists()
  assert 0.0 <= results['one_nn_accuracy/adversarial'] <= 1.0
  assert (tmp_path / 'plots' / 'objective_vs_alignment.png').exists()
  # Fig. 3: LRMF's joint stage logs the 1-NN of T at each of its 4 evaluations, as SN-GAN does
  joint = [r for r in lrmf_compare.workdir_lib.read_metrics(str(tmp_path), 'joint')
           if 'val_loss' in r]
  assert [r['step'] for r in joint] == [10, 20, 30, 40]
  assert all(0.0 <= r['one_nn_accuracy'] <= 1.0 for r in joint)
  assert joint[-1]['one_nn_accuracy'] == results['one_nn_accuracy/lrmf']  # last T = final T
  for method, names in (('lrmf', ('objective_one_nn_spearman', 'objective_one_nn_gamma')),
                        ('adversarial', ('critic_one_nn_spearman', 'generator_one_nn_spearman',
                                         'critic_one_nn_gamma', 'generator_one_nn_gamma'))):
    assert results[f'one_nn_evaluations/{method}'] == 4
    for name in names + ('objective_tracking',):
      value = results[f'{name}/{method}']
      assert np.isnan(value) or -1.0 <= value <= 1.0
    assert 0.0 <= results[f'one_nn_drift/{method}'] <= results[f'one_nn_max_drop/{method}'] <= 1.0
  assert 'one_nn_max_drop' in json.load(open(tmp_path / 'results.json'))['lrmf']


def test_interrupted_sn_gan_stage_resumes_to_the_uninterrupted_state(tmp_path):
  """The SN-GAN baseline is an engine stage: stopped at a checkpoint and rerun, it ends
  where a straight run ends (flow, critic, spectral-norm statistics, both optimisers)."""
  config = lrmf_moons_baselines.get_config('smoke')
  config.train.adversarial.update(num_steps=20, eval_every=5, checkpoint_every=10)
  a = lrmf_compare._load(config.data.a, config, 0)
  b = lrmf_compare._load(config.data.b, config, 1)
  built = lrmf_compare.build_models(config, a['train_x'].shape[1:])
  key = lrmf_compare.jax.random.PRNGKey(3)

  def train(workdir, num_steps):
    config.train.adversarial.num_steps = num_steps
    metrics = lrmf_compare.workdir_lib.MetricsLog(str(workdir))
    variables, log = lrmf_compare._train_adversarial(config, built['flow'], built['critic'], a,
                                                     b, str(workdir), metrics, key)
    metrics.close()
    return variables, log

  straight, straight_log = train(tmp_path / 'straight', 20)
  train(tmp_path / 'resumed', 10)  # "killed" after the checkpoint at step 10
  resumed, resumed_log = train(tmp_path / 'resumed', 20)
  assert [r['step'] for r in resumed_log] == [5, 10, 15, 20] == [r['step'] for r in straight_log]
  for x, y in zip(lrmf_compare.jax.tree.leaves(straight), lrmf_compare.jax.tree.leaves(resumed)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
  assert resumed_log[-1]['one_nn_accuracy'] == straight_log[-1]['one_nn_accuracy']


def test_spearman_on_hand_computed_cases():
  assert lrmf_compare.spearman([4.0, 3.0, 2.0, 1.0], [0.5, 0.6, 0.9, 0.95]) == pytest.approx(-1)
  assert lrmf_compare.spearman([1.0, 2.0, 3.0], [1.0, 4.0, 9.0]) == pytest.approx(1)
  # ties take their average rank: ranks (1, 2, 3, 4) against (1, 3, 3, 3), rho = 3 / sqrt(15)
  assert lrmf_compare.spearman([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 1.0]) == pytest.approx(
      3 / np.sqrt(15))
  # a non-finite pair is dropped
  assert lrmf_compare.spearman([1.0, np.nan, 2.0, 3.0], [3.0, 0.0, 2.0, 1.0]) == pytest.approx(-1)
  assert np.isnan(lrmf_compare.spearman([1.0, 2.0], [2.0, 1.0]))  # 2 points: always +-1
  assert np.isnan(lrmf_compare.spearman([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]))  # constant
  with pytest.raises(ValueError, match='one length'):
    lrmf_compare.spearman([1.0, 2.0, 3.0], [1.0, 2.0])


def test_gamma_on_hand_computed_cases_and_ties_at_a_ceiling():
  assert lrmf_compare.gamma([4.0, 3.0, 2.0, 1.0], [0.5, 0.6, 0.9, 0.95]) == -1.0
  # pairs (1,2) D, (1,3) C, (1,4) D, (2,3) C, (2,4) C, (3,4) D: (3 - 3) / 6
  assert lrmf_compare.gamma([1, 2, 3, 4], [0.9, 0.6, 0.95, 0.7]) == 0.0
  # a pair tied in x is left out: 5 concordant pairs, none discordant
  assert lrmf_compare.gamma([0.7, 0.6, 0.8, 0.7], [0.9, 0.6, 0.95, 0.7]) == 1.0
  # an objective falling all along against a 1-NN that rises to its ceiling and stays there:
  # gamma reads the perfect ranking, Spearman's rho the share of evaluations before the ceiling
  objective = -np.arange(80.0)
  accuracy = np.minimum(np.arange(80), 6) / 6
  assert lrmf_compare.gamma(objective, accuracy) == -1.0
  assert -0.5 < lrmf_compare.spearman(objective, accuracy) < -0.4
  assert np.isnan(lrmf_compare.gamma([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]))  # no untied pair
  assert np.isnan(lrmf_compare.gamma([1.0, 2.0], [2.0, 1.0]))
  assert lrmf_compare.gamma([1.0, np.nan, 2.0, 3.0], [3.0, 0.0, 2.0, 1.0]) == -1.0


def test_drift_and_max_drop_on_hand_computed_cases():
  rising = [0.5, 0.7, 0.9, 0.99]
  assert lrmf_compare.drift(rising) == 0.0 == lrmf_compare.max_drop(rising)
  # best 0.9, last 0.85; the largest fall below the best so far: 0.9 -> 0.5
  series = [0.6, 0.9, 0.5, 0.8, 0.85]
  assert lrmf_compare.drift(series) == pytest.approx(0.05)
  assert lrmf_compare.max_drop(series) == pytest.approx(0.4)
  # a fall that comes back before the end: no drift, but a drop
  assert lrmf_compare.drift([0.9, 0.6, 0.9]) == 0.0
  assert lrmf_compare.max_drop([0.9, 0.6, 0.9]) == pytest.approx(0.3)
  assert np.isnan(lrmf_compare.drift([])) and np.isnan(lrmf_compare.max_drop([]))


def test_objective_vs_quality_reads_each_method_in_its_own_terms():
  lrmf = {'step': np.array([25, 50, 75, 100]), 'val_loss': np.array([2.0, 1.0, 0.5, 0.1]),
          'one_nn_accuracy': np.array([0.9, 0.95, 0.99, 1.0])}
  log = [{'step': s, 'critic_loss': c, 'loss': g, 'one_nn_accuracy': x}
         for s, c, g, x in ((25, 1.0, 0.7, 0.9), (50, 2.0, 0.6, 0.6), (75, 3.0, 0.8, 0.95),
                            (100, 4.0, 0.7, 0.7))]
  out = lrmf_compare.objective_vs_quality(lrmf, log)
  assert out['lrmf'] == {'objective_one_nn_spearman': pytest.approx(-1.0),
                         'objective_one_nn_gamma': -1.0, 'objective_tracking': 1.0,
                         'one_nn_drift': 0.0, 'one_nn_max_drop': 0.0, 'one_nn_evaluations': 4}
  # accuracy ranks (3, 1, 4, 2): against the critic's (1, 2, 3, 4) rho = 1 - 6 * 10 / 60 = 0
  # and gamma = (3 - 3) / 6; against the generator's (2.5, 1, 4, 2.5) rho = 4.5 / sqrt(4.5 * 5)
  # and gamma = 1 (its tied pair left out)
  adversarial = out['adversarial']
  assert adversarial['critic_one_nn_spearman'] == pytest.approx(0.0, abs=1e-12)
  assert adversarial['generator_one_nn_spearman'] == pytest.approx(4.5 / np.sqrt(22.5))
  assert adversarial['critic_one_nn_gamma'] == 0.0
  assert adversarial['generator_one_nn_gamma'] == 1.0
  assert adversarial['objective_tracking'] == 1.0  # the larger |gamma| of the two losses
  assert adversarial['one_nn_drift'] == pytest.approx(0.25)
  assert adversarial['one_nn_max_drop'] == pytest.approx(0.3)
  assert adversarial['one_nn_evaluations'] == 4
  assert lrmf_compare.objective_vs_quality(None, []) == {}


def test_joint_stage_annotation_scores_every_restart_and_the_kept_one_is_read(tmp_path):
  """The joint stage's annotate gives one 1-NN accuracy per replica of the stage (every joint
  restart), at evaluations only; :func:`_joint_series` reads the kept restart's series."""
  config = lrmf_moons_baselines.get_config('smoke')
  a = lrmf_compare._load(config.data.a, config, 0)
  b = lrmf_compare._load(config.data.b, config, 1)
  built = lrmf_compare.build_models(config, a['train_x'].shape[1:])
  flow, density = built['flow'], built['density']
  x = np.asarray(a['train_x'][:64])
  flow_variables = [lrmf_compare._init_flow(flow, x, jax.random.PRNGKey(k)) for k in (0, 1)]
  # restart 1's T moved away from the identity
  flow_variables[1] = jax.tree.map(
      lambda leaf: leaf + 0.3 * jax.random.normal(jax.random.PRNGKey(2), leaf.shape),
      flow_variables[1])
  shared = density.init(jax.random.PRNGKey(3), x)
  stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *flow_variables)
  variables = lrmf_compare.algorithm.joint_variables(
      stacked, jax.tree.map(lambda leaf: np.stack([leaf, leaf]), shared))
  run = types.SimpleNamespace(state=fitting.init_fit_state(variables, optax.sgd(0.1)))
  annotate = lrmf_compare._joint_one_nn(config, flow, a, b)
  no_evaluation = {'step': 5, 'loss': np.zeros(2)}
  assert annotate(run, no_evaluation) is no_evaluation
  scored = annotate(run, {'step': 10, 'val_loss': np.zeros(2)})['one_nn_accuracy']
  move = lrmf_compare.alignment.transformer(flow)
  expected = [lrmf_compare.alignment.one_nn_accuracy(config, a, b, move(v, a['test_x']))
              for v in flow_variables]
  np.testing.assert_allclose(scored, expected)
  assert expected[0] != expected[1]
  # the metrics log of two restarts, as harness.stages writes it: the kept one is read
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    for step, losses, accuracies in ((10, [1.0, 2.0], [0.9, 0.5]), (20, [0.5, 2.5], [0.95, 0.4])):
      f.write(json.dumps({'stage': 'joint', 'step': step, 'val_loss': np.mean(losses),
                          'val_loss/replicas': losses, 'one_nn_accuracy': np.mean(accuracies),
                          'one_nn_accuracy/replicas': accuracies}) + '\n')
    f.write(json.dumps({'stage': 'joint', 'step': 25, 'loss': 0.0}) + '\n')  # no evaluation
  kept = lrmf_compare._joint_series(str(tmp_path), 1)
  assert kept['step'].tolist() == [10, 20]
  assert kept['val_loss'].tolist() == [2.0, 2.5]
  assert kept['one_nn_accuracy'].tolist() == [0.5, 0.4]
  assert lrmf_compare._joint_series(str(tmp_path), None)['one_nn_accuracy'].tolist() == [
      pytest.approx(0.7), pytest.approx(0.675)]
