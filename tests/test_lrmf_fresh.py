"""LRMF alignment's fresh-data evaluation: Eq. 3 on large samples drawn afresh
from the data sets' generators, against a hand-written Gaussian oracle, on points that the
run never saw."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from configs import lrmf_moons
from harness import replicas
from experiments import launch
from harness import workdir as workdir_lib
from experiments.lrmf import alignment
from lrmf import algorithm, gaussian
from nflax import bijectors, densities

AFFINE = bijectors.PositiveDefiniteAffine()
DENSITY = densities.Gaussian(dim=2)


def _config(seeds, size):
  config = lrmf_moons.get_config('smoke')
  config.seeds = seeds
  config.fresh_eval_size = size
  return config


def test_fresh_points_are_drawn_anew_from_the_generators():
  config = _config((0, 2), 400)
  seen = []
  for seed in config.seeds:
    a, b = alignment.load_domains(config, seed)
    seen += [a[f'{split}_x'] for split in ('train', 'val', 'test')]
    seen += [b[f'{split}_x'] for split in ('train', 'val', 'test')]
  seen = np.concatenate(seen)
  drawn = [alignment.fresh_domains(config, seed, 400) for seed in config.seeds]
  for fresh_a, fresh_b in drawn:
    assert fresh_a.shape == fresh_b.shape == (400, 2)
    for fresh in (fresh_a, fresh_b):
      distances = np.abs(fresh[:, None, :] - seen[None]).sum(-1)
      assert distances.min() > 1e-6  # no point of any split of any replica
  # Each replica its own draw; the same draw again for the same seed.
  assert not np.allclose(drawn[0][0], drawn[1][0])
  np.testing.assert_array_equal(alignment.fresh_domains(config, 2, 400)[1], drawn[1][1])
  # B's generator: the rotated moons (50 degrees), not A's.
  rotated = alignment.fresh_domains(_config((0,), 4000), 0, 4000)
  assert abs(np.corrcoef(rotated[0].T)[0, 1] - np.corrcoef(rotated[1].T)[0, 1]) > 0.3


def _oracle(a, b, flow, shift, private_a, private_b, shared):
  """Eq. 3 written out with scipy: Gaussian models, ``T(x) = P x + shift``."""
  log_n = lambda x, moments: stats.multivariate_normal(*moments).logpdf(x)
  moved = a @ flow.T + shift
  terms_a = log_n(a, private_a) - log_n(moved, shared) - np.linalg.slogdet(flow)[1]
  terms_b = log_n(b, private_b) - log_n(b, shared)
  return terms_a.mean(), terms_b.mean()


def test_fresh_objective_matches_a_hand_written_oracle_per_replica():
  config = _config((0, 3), 3000)
  layout = replicas.layout_of(config, alignment.SIDE_BY_SIDE)
  rng = np.random.default_rng(0)
  models = []
  for _ in config.seeds:
    models.append(dict(
        flow=np.array([[1.1, 0.2], [0.2, 0.8]]) + 0.1 * rng.uniform() * np.eye(2),
        shift=rng.normal(size=2) * 0.3,
        **{name: (rng.normal(size=2) * 0.5, np.diag(rng.uniform(0.2, 0.6, 2)))
           for name in ('private_a', 'private_b', 'shared')}))
  stacked = lambda make: replicas.stack([jax.tree.map(np.asarray, make(m)) for m in models])
  result = algorithm.LRMFResult(
      flow_variables=stacked(lambda m: AFFINE.make_variables_from_positive_definite(
          m['flow'], m['shift'])),
      shared_variables=stacked(lambda m: gaussian.gaussian_variables(*m['shared'])),
      private_a=stacked(lambda m: gaussian.gaussian_variables(*m['private_a'])),
      private_b=stacked(lambda m: gaussian.gaussian_variables(*m['private_b'])),
      constant=np.zeros(2), objective=np.zeros(2), objective_se=np.zeros(2),
      converged=np.zeros(2, bool), histories={})
  points = alignment.fresh_points(config, layout, config.fresh_eval_size)
  fresh = alignment.fresh_evaluation(config, AFFINE, DENSITY, result, layout, points)
  assert len(fresh) == 2
  for seed, model, values in zip(config.seeds, models, fresh):
    a, b = alignment.fresh_domains(config, seed, 3000)
    part_a, part_b = _oracle(a, b, **model)
    assert values['fresh_objective'] == pytest.approx(part_a + part_b, abs=1e-3)
    assert values['fresh_objective_a_term'] == pytest.approx(part_a, abs=1e-3)
    assert values['fresh_objective_b_term'] == pytest.approx(part_b, abs=1e-3)
    assert 0 < values['fresh_objective_point_se'] < 1
    assert values['fresh_converged'] == (
        abs(values['fresh_objective']) + 1.96 * values['fresh_objective_point_se']
        <= config.eps)
    assert values['fresh_converged_algorithm1'] == (values['fresh_objective'] < config.eps)


def test_no_fresh_points_for_loaded_data_or_size_zero():
  config = _config((0,), 0)
  layout = replicas.layout_of(config, alignment.SIDE_BY_SIDE)
  assert alignment.fresh_points(config, layout, 0) is None
  config = _config((0,), 100)
  config.data.b.options = {'path': '/nowhere'}
  config.data.b.name = 'mnist_idx'
  assert not alignment.is_synthetic(config.data.b)
  assert alignment.fresh_points(config, layout, 100) is None
  # a finite collection drawn with n and seed (digits) is a resample, not a fresh draw
  glow = launch.default_config('configs/lrmf_glow_digits.py')
  assert {'n', 'seed'} <= set(glow.data.a.options) and not alignment.is_synthetic(glow.data.a)


def test_smoke_run_reports_the_fresh_objective(tmp_path):
  config = _config((0,), 1000)
  config.estimate_bias = False
  results = alignment.run(config, str(tmp_path))
  for name in ('fresh_objective', 'fresh_objective_point_se', 'fresh_objective_worst_percent',
               'fresh_converged', 'fresh_objective_a_term', 'fresh_objective_b_term',
               'test_objective_a_term', 'test_objective_b_term'):
    assert name in results and name in results['per_seed'][0]
  assert np.isfinite(results['fresh_objective'])
  # The fresh sample is twenty times the 100-point test split: a smaller standard error.
  assert results['fresh_objective_point_se'] < results['test_objective_point_se']
  seed = results['per_seed'][0]
  assert seed['converged_but_fresh_off'] == (
      seed['converged'] and abs(seed['fresh_objective']) > 2 * config.eps)
  assert seed['converged_algorithm1'] == (seed['test_objective'] < config.eps)
  # F o G^-1 of the private flows (Fig. 4, 6a's baseline) is scored beside T on the moons' labels
  assert 0.0 <= seed['one_nn_accuracy_back_to_back'] <= 1.0


def test_smoke_run_with_restarts_and_settings_side_by_side(tmp_path):
  config = _config((0,), 200)
  config.estimate_bias = False
  config.restarts = 2
  config.side_by_side = 'train.joint.lr=0.001,0.003'
  results = alignment.run(config, str(tmp_path))
  # Two settings x two restarts trained in the joint stage; one kept per setting.
  joint = [r for r in workdir_lib.read_metrics(str(tmp_path), 'joint')
           if 'val_loss/replicas' in r]
  assert joint and all(len(r['val_loss/replicas']) == 4 for r in joint)
  assert len(results['per_setting']) == 2
  for setting in results['per_setting']:
    (seed,) = setting['per_seed']
    assert seed['train_objective'] <= seed['train_objective_worst_restart']


def test_back_to_back_mover_is_b_decoder_after_a_encoder():
  """alignment.back_to_back_transformer maps x to G^-1(F(x)) with F, G the private flows of A
  and B (perturbed, so neither is the identity), and to x itself when both are one model."""
  density = densities.FlowDensity(bijectors.realnvp(num_blocks=2, hidden=(8,)),
                                  densities.StandardNormal((2,)))
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (32, 2)))
  init = density.init(jax.random.PRNGKey(1), x[:1])

  def perturbed(seed):
    leaves, tree = jax.tree.flatten(init)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(tree, [leaf + 0.3 * jax.random.normal(key, leaf.shape)
                                     for leaf, key in zip(leaves, keys)])

  private_a, private_b = perturbed(2), perturbed(3)
  move = alignment.back_to_back_transformer(density)
  moved = move(types.SimpleNamespace(private_a=private_a, private_b=private_b), x)
  expected = density.apply(private_b, density.apply(private_a, jnp.asarray(x),
                                                    method=density.encode),
                           method=density.decode)
  np.testing.assert_allclose(moved, expected, rtol=1e-4, atol=1e-4)
  assert np.abs(moved - x).max() > 0.1
  same = move(types.SimpleNamespace(private_a=private_a, private_b=private_a), x)
  np.testing.assert_allclose(same, x, rtol=1e-4, atol=1e-4)


def _gaussian_mle(x):
  return x.mean(0), np.cov(x, rowvar=False, bias=True)


def test_doubling_control_against_gaussian_maximum_likelihood(tmp_path):
  """With the Gaussian family, private models at their maximum-likelihood estimates and the
  continuations trained to convergence, ``continued`` stays at the private estimate (its terms
  ~0) and ``doubled`` reaches the estimate on the training points plus the extra draw: the
  terms are then the closed-form differences of fresh log-likelihoods (scipy)."""
  config = _config((0, 3), 3000)
  config.train.joint.update(num_steps=1500, lr=0.02, batch_size=100, schedule='cosine',
                            steps_per_dispatch=500, eval_every=500, checkpoint_every=500)
  layout = replicas.layout_of(config, alignment.SIDE_BY_SIDE)
  pairs = [alignment.load_domains(config, seed) for seed in config.seeds]
  a, b = (replicas.stack([pair[side] for pair in pairs]) for side in (0, 1))
  private = {part: replicas.stack([jax.tree.map(np.asarray, gaussian.gaussian_variables(
      *_gaussian_mle(pair[side]['train_x']))) for pair in pairs])
      for side, part in ((0, 'a'), (1, 'b'))}
  result = algorithm.LRMFResult(
      flow_variables=None, shared_variables=None, private_a=private['a'],
      private_b=private['b'], constant=np.zeros(2), objective=np.zeros(2),
      objective_se=np.zeros(2), converged=np.zeros(2, bool), histories={})
  fresh = alignment.fresh_points(config, layout, config.fresh_eval_size)
  runner = alignment.stage_runner(config, str(tmp_path), workdir_lib.MetricsLog(str(tmp_path)),
                                  layout)
  control = alignment.doubling_control(config, DENSITY, result, layout, runner, a, b, fresh)
  log_n = lambda x, moments: stats.multivariate_normal(*moments).logpdf(x).mean()
  for index, (seed, values) in enumerate(zip(config.seeds, control)):
    extra = alignment.fresh_domains(config, seed, 200, alignment.DOUBLING_SEED_OFFSET)
    for side, part in ((0, 'a'), (1, 'b')):
      train = (a, b)[side]['train_x'][index]
      x = np.asarray(fresh[side][index])
      doubled = _gaussian_mle(np.concatenate([train, extra[side]]))
      expected = log_n(x, _gaussian_mle(train)) - log_n(x, doubled)
      assert abs(expected) > 5e-4  # the extra draw moves the estimate
      assert values[f'fresh_doubling_{part}_term'] == pytest.approx(expected, abs=2e-4)
      assert abs(values[f'fresh_continued_{part}_term']) < 2e-4
    assert values['fresh_doubling_objective'] == pytest.approx(
        values['fresh_doubling_a_term'] + values['fresh_doubling_b_term'])
  # Both continuations are checkpointed stages of the run, A's and B's side by side.
  for stage in alignment.CONTINUATIONS:
    records = [r for r in workdir_lib.read_metrics(str(tmp_path), stage)
               if 'val_loss/replicas' in r]
    assert records and len(records[-1]['val_loss/replicas']) == 4


def test_smoke_run_with_the_doubling_control(tmp_path):
  config = _config((0,), 500)
  config.estimate_bias = False
  config.doubling_control = True
  results = alignment.run(config, str(tmp_path))
  seed = results['per_seed'][0]
  assert seed['fresh_objective_beyond_doubling'] == pytest.approx(
      seed['fresh_objective'] - seed['fresh_doubling_objective'])
  assert seed['fresh_b_term_beyond_doubling'] == pytest.approx(
      seed['fresh_objective_b_term'] - seed['fresh_doubling_b_term'])
  assert seed['fresh_within_eps_beyond_doubling'] == (
      abs(seed['fresh_objective_beyond_doubling']) <= config.eps)
  # Twice the joint batch must fit in a domain's training set, checked before training.
  config.train.joint.batch_size = 150
  with pytest.raises(ValueError, match='doubling_control'):
    alignment.run(config, str(tmp_path / 'too_large'))
  config.train.joint.batch_size = 50
  config.fresh_eval_size = 0
  with pytest.raises(ValueError, match='fresh points'):
    alignment.run(config, str(tmp_path / 'no_fresh'))
