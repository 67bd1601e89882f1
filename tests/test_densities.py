"""Densities against scipy, grid integration and the distrax views."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nflax import bijectors, densities, distrax_views


def _perturbed(variables, seed=0, scale=0.3):
  leaves, tree = jax.tree.flatten(variables)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree.unflatten(
      tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def test_standard_normal_matches_scipy():
  x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  d = densities.StandardNormal(event_shape=(3,))
  np.testing.assert_allclose(d.apply({}, x), stats.multivariate_normal(np.zeros(3)).logpdf(x),
                             rtol=1e-5)


@pytest.mark.parametrize('covariance', ['full', 'diag'])
def test_gaussian_log_prob_matches_scipy(covariance):
  x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
  d = densities.Gaussian(dim=3, covariance=covariance)
  v = _perturbed(d.init(jax.random.PRNGKey(0), x))
  mean, cov = d.apply(v, method=d.mean_and_covariance)
  expected = stats.multivariate_normal(np.asarray(mean), np.asarray(cov)).logpdf(x)
  np.testing.assert_allclose(d.apply(v, x), expected, rtol=1e-4, atol=1e-4)
  if covariance == 'diag':
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-7)


def test_gaussian_samples_have_its_moments():
  d = densities.Gaussian(dim=2)
  v = _perturbed(d.init(jax.random.PRNGKey(0), jnp.zeros((1, 2))), scale=0.5)
  mean, cov = d.apply(v, method=d.mean_and_covariance)
  s = d.apply(v, jax.random.PRNGKey(1), 200_000, method=d.sample)
  np.testing.assert_allclose(s.mean(0), mean, atol=0.02)
  np.testing.assert_allclose(np.cov(s, rowvar=False), cov, atol=0.03)


def test_gaussian_mixture_matches_scipy():
  x = np.random.default_rng(2).normal(size=(7, 2)).astype(np.float32)
  d = densities.GaussianMixture(dim=2, num_components=3)
  v = _perturbed(d.init(jax.random.PRNGKey(0), x))
  p = v['params']
  weights = np.asarray(jax.nn.softmax(p['logits']))
  tril = np.asarray(densities._tril_with_positive_diagonal(p['raw_scale_tril']))
  expected = np.log(sum(
      w * stats.multivariate_normal(np.asarray(m), l @ l.T).pdf(x)
      for w, m, l in zip(weights, p['means'], tril)))
  np.testing.assert_allclose(d.apply(v, x), expected, rtol=1e-4, atol=1e-4)


def test_wrong_event_shape_is_named():
  d = densities.Gaussian(dim=2)
  with pytest.raises(ValueError, match=r'Gaussian expects inputs of shape \(batch, 2,\)'):
    d.init(jax.random.PRNGKey(0), jnp.zeros((4, 3)))


def test_realnvp_flow_density_integrates_to_one():
  flow = bijectors.realnvp(num_blocks=2, hidden=(16,))
  d = densities.FlowDensity(flow=flow, base=densities.StandardNormal((2,)))
  v = _perturbed(d.init(jax.random.PRNGKey(0), jnp.zeros((1, 2))), scale=0.2)
  lim, n = 7.0, 400
  xs = np.linspace(-lim, lim, n, dtype=np.float32)
  grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
  mass = float(jnp.sum(jnp.exp(jax.jit(d.apply)(v, grid)))) * (xs[1] - xs[0])**2
  assert abs(mass - 1.0) < 0.01, mass


def test_flow_density_sample_inverts_encode():
  flow = bijectors.realnvp(num_blocks=2, hidden=(8,))
  d = densities.FlowDensity(flow=flow, base=densities.StandardNormal((2,)))
  v = _perturbed(d.init(jax.random.PRNGKey(0), jnp.zeros((1, 2))))
  x = d.apply(v, jax.random.PRNGKey(3), 5, method=d.sample)
  z = d.apply(v, x, method=d.encode)
  np.testing.assert_allclose(d.apply(v, z, method=d.decode), x, atol=1e-5)


def test_distrax_views_agree_with_modules():
  flow = bijectors.realnvp(num_blocks=2, hidden=(8,))
  d = densities.FlowDensity(flow=flow, base=densities.StandardNormal((2,)))
  v = _perturbed(d.init(jax.random.PRNGKey(0), jnp.zeros((1, 2))))
  x = np.random.default_rng(4).normal(size=(3, 4, 2)).astype(np.float32)
  as_dx = distrax_views.distribution(d, v, (2,))
  np.testing.assert_allclose(as_dx.log_prob(x), d.apply(v, x.reshape(-1, 2)).reshape(3, 4),
                             rtol=1e-5, atol=1e-5)
  assert as_dx.sample(seed=jax.random.PRNGKey(0), sample_shape=(5,)).shape == (5, 2)
  g = densities.Gaussian(dim=2)
  gv = _perturbed(g.init(jax.random.PRNGKey(0), jnp.zeros((1, 2))))
  g_dx = distrax_views.distribution(g, gv, (2,))
  np.testing.assert_allclose(g_dx.log_prob(x), g.apply(gv, x.reshape(-1, 2)).reshape(3, 4),
                             rtol=1e-5)
  assert g_dx.sample(seed=jax.random.PRNGKey(0), sample_shape=7).shape == (7, 2)


def test_distrax_view_passes_the_hutchinson_key():
  """A Hutchinson-trace FFJORD density in distrax form: the key is its probe draw."""
  density = densities.FlowDensity(
      bijectors.ffjord(num_transforms=1, hidden=(8,), trace_estimator='hutchinson'),
      densities.StandardNormal((2,)))
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
  variables = density.init({'params': jax.random.PRNGKey(1),
                            'hutchinson': jax.random.PRNGKey(2)}, x)
  key = jax.random.PRNGKey(3)
  expected = density.apply(variables, x, method=density.log_prob, rngs={'hutchinson': key})
  got = distrax_views.distribution(density, variables, (2,), key=key).log_prob(x)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='distrax_views'):
    distrax_views.distribution(density, variables, (2,)).log_prob(x)
