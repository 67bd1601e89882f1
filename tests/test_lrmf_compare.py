"""Tests of experiments/lrmf/comparison.py: the kNN-preservation metric, loading, a smoke run."""

import json

import numpy as np
import pytest

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
