"""The cases of tests/test_variants.py: every public pure function under test, with its
inputs and an independent reference (NumPy/SciPy formulas; for bijectors the round trip and
the dense Jacobian's log-determinant), by family: LRMF, AlignFlow and GAN losses, f-DRE,
bijectors."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, special, stats

from alignflow import losses as alignflow_losses
from fdre import estimators, mutual_information, weighting
from lrmf import losses as lrmf_losses
from nflax import bijectors, densities, gan
from tests.bijector_checks import dense_log_det


class Case(NamedTuple):
  """A function under test, its inputs and its independent reference values."""
  fn: Callable[[Any], Any]  # pytree of arrays -> pytree of arrays
  make_args: Callable[[int], Any]  # seed -> pytree of arrays (different per seed)
  reference: Callable[[Any], Any]  # args -> expected outputs, computed independently
  atol: float = 1e-5
  rtol: float = 1e-5
  x64: bool = False  # run under jax.enable_x64(True) (float64-only functions: KMM)


def _rng(seed, salt=0):
  return np.random.default_rng(1000 * salt + seed)


def _normal(rng, *shape, scale=1.0, loc=0.0):
  return jnp.asarray(loc + scale * rng.standard_normal(shape), jnp.float32)


def _perturb_params(variables, rng, size=0.3):
  """Gaussian noise on the ``'params'`` only (batch statistics and constants kept)."""
  params = jax.tree.map(
      lambda v: jnp.asarray(np.asarray(v) + size * rng.standard_normal(v.shape), v.dtype),
      variables['params'])
  return {**variables, 'params': params}


def _np(tree):
  return jax.tree.map(lambda v: np.asarray(v, np.float64), tree)


def _log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


# ----------------------------------------------------------------------------- LRMF

GAUSSIAN = densities.Gaussian(dim=2)
PD_AFFINE = bijectors.PositiveDefiniteAffine()


@functools.lru_cache(maxsize=None)
def _initial(module_name: str):
  module = {'gaussian': GAUSSIAN, 'pd_affine': PD_AFFINE, 'maf': MAF_FLOW}[module_name]
  return module.init(jax.random.PRNGKey(0), jnp.zeros((4, 2)))


def _gaussian_variables(rng):
  return _perturb_params(_initial('gaussian'), rng)


def _np_gaussian_log_prob(variables, x):
  """``log N(x; mean, L L^T)`` of :class:`nflax.densities.Gaussian` by SciPy, ``(n,)``."""
  params = _np(variables['params'])
  raw = params['raw_scale_tril']
  scale = np.tril(raw, -1) + np.diag(np.logaddexp(0.0, np.diag(raw)) + 1e-5)
  return stats.multivariate_normal(params['mean'], scale @ scale.T).logpdf(np.asarray(x))


def _np_pd_affine(variables, x):
  params = _np(variables['params'])
  matrix = params['matrix']
  return np.asarray(x) @ (matrix.T @ matrix) + params['shift'], 2 * np.linalg.slogdet(matrix)[1]


def lrmf_args(seed):
  rng = _rng(seed, 1)
  return dict(private_a=_gaussian_variables(rng), private_b=_gaussian_variables(rng),
              shared=_gaussian_variables(rng),
              flow=_perturb_params(_initial('pd_affine'), rng),
              a=_normal(rng, 6, 2), b=_normal(rng, 5, 2, loc=1.0))


def _np_lrmf_loss(args, constant):
  transformed, log_det = _np_pd_affine(args['flow'], args['a'])
  return (-np.mean(log_det + _np_gaussian_log_prob(args['shared'], transformed))
          - np.mean(_np_gaussian_log_prob(args['shared'], args['b'])) + constant)


def _np_constant(args):
  return (np.mean(_np_gaussian_log_prob(args['private_a'], args['a']))
          + np.mean(_np_gaussian_log_prob(args['private_b'], args['b'])))


MAF_FLOW = bijectors.maf(num_blocks=2, hidden=(8,), batch_norm=True)


def _lrmf_maf_args(seed):
  rng = _rng(seed, 2)
  a, b = _normal(rng, 6, 2), _normal(rng, 5, 2, loc=1.0)
  flow = _perturb_params(_initial('maf'), rng)
  return dict(flow=flow, shared=_gaussian_variables(rng), a=a, b=b)


def _lrmf_maf_reference(args):
  """The training-mode objective assembled from separate calls of the flow and the density."""
  (transformed, log_det), flow_state = MAF_FLOW.apply(
      args['flow'], args['a'], method=type(MAF_FLOW).forward_and_log_det,
      mutable=['batch_stats'])
  log_p_t = _np_gaussian_log_prob(args['shared'], transformed)
  log_p_b = _np_gaussian_log_prob(args['shared'], args['b'])
  loss = -np.mean(np.asarray(log_det) + log_p_t) - np.mean(log_p_b) + 0.25
  return loss, (flow_state, {})


def _lrmf_fn(p):
  return dict(
      average_log_likelihood=lrmf_losses.average_log_likelihood(
          density=GAUSSIAN, variables=p['shared'], x=p['a']),
      constant=lrmf_losses.lrmf_constant(
          density=GAUSSIAN, private_a=p['private_a'], private_b=p['private_b'], a=p['a'],
          b=p['b']),
      loss=lrmf_losses.lrmf_loss(
          flow=PD_AFFINE, density=GAUSSIAN, flow_variables=p['flow'], shared=p['shared'],
          a=p['a'], b=p['b'], constant=0.7),
      distance=lrmf_losses.log_likelihood_ratio_distance(
          density=GAUSSIAN, private_a=p['private_a'], private_b=p['private_b'],
          shared=p['shared'], a=p['a'], b=p['b']))


def _lrmf_reference(p):
  log_p_shared = lambda x: np.mean(_np_gaussian_log_prob(p['shared'], x))
  return dict(average_log_likelihood=log_p_shared(p['a']), constant=_np_constant(p),
              loss=_np_lrmf_loss(p, 0.7),
              distance=_np_constant(p) - log_p_shared(p['a']) - log_p_shared(p['b']))


LRMF_CASES = {
    'lrmf_losses': Case(_lrmf_fn, lrmf_args, _lrmf_reference, atol=1e-4),
    'lrmf_loss_maf_training_mode': Case(
        fn=lambda p: lrmf_losses.lrmf_loss(
            flow=MAF_FLOW, density=GAUSSIAN, flow_variables=p['flow'], shared=p['shared'],
            a=p['a'], b=p['b'], constant=0.25, mutable=True),
        make_args=_lrmf_maf_args, reference=_lrmf_maf_reference, atol=1e-4),
}

# ----------------------------------------------------------------------- AlignFlow, GAN


def _alignflow_args(seed):
  rng = _rng(seed, 3)
  images = _normal(rng, 5, 3, 3, 2)
  return dict(log_prob=_normal(rng, 7, scale=3.0), terms=_normal(rng, 4, scale=2.0),
              images=images, other=images + _normal(rng, 5, 3, 3, 2, scale=0.5))


def _alignflow_fn(p):
  gan_a, gan_b, ll_a, ll_b = p['terms']
  return dict(
      mle=alignflow_losses.mle_value(log_prob=p['log_prob']),
      hybrid=alignflow_losses.hybrid_loss(gan_a=gan_a, gan_b=gan_b, log_likelihood_a=ll_a,
                                          log_likelihood_b=ll_b, lam_a=0.5, lam_b=2.0,
                                          adversarial_weight=0.3),
      cycle=alignflow_losses.cycle_loss(reconstructed=p['other'], original=p['images']),
      mse=alignflow_losses.paired_mse(translated=p['other'], target=p['images']))


def _alignflow_reference(p):
  p = _np(p)
  gan_a, gan_b, ll_a, ll_b = p['terms']
  return dict(mle=np.mean(p['log_prob']), hybrid=0.3 * (gan_a + gan_b) - 0.5 * ll_a - 2.0 * ll_b,
              cycle=np.mean(np.abs(p['other'] - p['images'])),
              mse=np.mean((p['other'] - p['images'])**2))


def _gan_args(seed):
  rng = _rng(seed, 4)  # PatchGAN-shaped logits; real and fake batches of different sizes
  return dict(real=_normal(rng, 4, 3, 3, scale=2.0), fake=_normal(rng, 6, 3, 3, scale=2.0))


def _gan_fn(p):
  return {form: dict(
      value=gan.gan_value(real_logits=p['real'], fake_logits=p['fake'], form=form),
      critic=gan.critic_loss(real_logits=p['real'], fake_logits=p['fake'], form=form),
      generator=gan.generator_loss(fake_logits=p['fake'], form=form)) for form in gan.GAN_FORMS}


def _gan_reference(p):
  real, fake = np.asarray(p['real'], np.float64), np.asarray(p['fake'], np.float64)
  cross_entropy = np.mean(_log_sigmoid(real)) + np.mean(_log_sigmoid(-fake))
  least_squares = -0.5 * np.mean((real - 1)**2) - 0.5 * np.mean(fake**2)
  return dict(
      cross_entropy=dict(value=cross_entropy, critic=-cross_entropy,
                         generator=-np.mean(_log_sigmoid(fake))),
      least_squares=dict(value=least_squares, critic=-least_squares,
                         generator=0.5 * np.mean((fake - 1)**2)))


LOSS_CASES = {
    'alignflow_losses': Case(_alignflow_fn, _alignflow_args, _alignflow_reference),
    'gan_losses': Case(_gan_fn, _gan_args, _gan_reference),
}

# ----------------------------------------------------------------------------- f-DRE


def _classifier_args(seed):
  rng = _rng(seed, 5)
  return dict(logits=_normal(rng, 7, scale=3.0),
              labels=jnp.asarray(rng.integers(0, 2, 7), jnp.float32))


def _classifier_fn(p):
  return dict(
      log_ratio=estimators.classifier_log_ratio(logits=p['logits'], n_p=30, n_q=50),
      bce=estimators.binary_cross_entropy(logits=p['logits'], labels=p['labels']),
      loss=estimators.logistic_loss(logits=p['logits'], labels=p['labels']))


def _classifier_reference(p):
  logits, labels = np.asarray(p['logits'], np.float64), np.asarray(p['labels'], np.float64)
  bce = -(labels * _log_sigmoid(logits) + (1 - labels) * _log_sigmoid(-logits))
  return dict(log_ratio=logits + np.log(50 / 30), bce=bce, loss=np.mean(bce))


def _np_kernel(x, y, gamma):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return np.exp(-gamma * np.sum((x[:, None, :] - y[None, :, :])**2, -1))


KMM = dict(kernel_gamma=0.5, bound=3.0, eps=0.1)


def kmm_args(seed):
  """Float64 NumPy points: KMM runs in float64 only (the case sets ``x64``)."""
  rng = _rng(seed, 6)
  return dict(source=1.5 * rng.standard_normal((8, 2)),
              target=0.5 + 1.5 * rng.standard_normal((10, 2)))


def _kmm_fn(p):
  solution = estimators.kmm_solve(source=p['source'], target=p['target'], **KMM)
  weights = estimators.kmm_weights(source=p['source'], target=p['target'], **KMM)
  return dict(weights=weights, solve_weights=solution.weights,
              converged=solution.converged.astype(jnp.float32),
              objective=estimators.kmm_objective(weights, source=p['source'], target=p['target'],
                                                 kernel_gamma=KMM['kernel_gamma']))


def _kmm_reference(p):
  """The KMM QP solved by SciPy's SLSQP (strictly convex: one minimiser)."""
  source, target = np.asarray(p['source'], np.float64), np.asarray(p['target'], np.float64)
  n, m = len(source), len(target)
  gram = _np_kernel(source, source, KMM['kernel_gamma'])
  kappa = (n / m) * _np_kernel(source, target, KMM['kernel_gamma']).sum(1)
  objective = lambda b: 0.5 * b @ gram @ b - kappa @ b
  result = optimize.minimize(
      objective, np.ones(n), jac=lambda b: gram @ b - kappa, method='SLSQP',
      bounds=[(0, KMM['bound'])] * n, options=dict(ftol=1e-14, maxiter=1000),
      constraints=[{'type': 'ineq', 'fun': lambda b: n * (1 + KMM['eps']) - b.sum()},
                   {'type': 'ineq', 'fun': lambda b: b.sum() - n * (1 - KMM['eps'])}])
  assert result.success, result
  return dict(weights=result.x, solve_weights=result.x, converged=1.0,
              objective=objective(result.x))


def _np_kliep_fit(numerator, denominator, centers, gamma, iterations):
  b = np.maximum(_np_kernel(denominator, centers, gamma).mean(0), 1e-30)
  components = _np_kernel(numerator, centers, gamma) / b
  w = np.full(len(centers), 1.0 / len(centers))
  for _ in range(iterations):
    w = np.mean(components * w / np.maximum(components @ w, 1e-30)[:, None], 0)
  return w / b


def _kliep_args(seed):
  rng = _rng(seed, 7)
  return dict(numerator=_normal(rng, 12, 2, loc=0.5), denominator=_normal(rng, 15, 2),
              x=_normal(rng, 6, 2))


def _kliep_fn(p):
  centers = p['numerator'][:5]
  alpha = estimators.kliep_fit(numerator=p['numerator'], denominator=p['denominator'],
                               centers=centers, kernel_gamma=0.5, num_iterations=50)
  return dict(
      alpha=alpha,
      log_ratio=estimators.kliep_log_ratio(p['x'], centers=centers, alpha=alpha,
                                           kernel_gamma=0.5),
      kernel=estimators.gaussian_kernel(p['x'], centers, kernel_gamma=0.5),
      lcv=estimators.kliep_lcv_score(numerator=p['numerator'], denominator=p['denominator'],
                                     kernel_gamma=0.5, num_centers=4, num_folds=3))


def _kliep_reference(p):
  numerator, denominator, x = (np.asarray(p[k], np.float64) for k in ('numerator', 'denominator',
                                                                     'x'))
  centers = numerator[:5]
  alpha = _np_kliep_fit(numerator, denominator, centers, 0.5, 50)
  folds = numerator.reshape(3, 4, 2)
  scores = []
  for k in range(3):
    train = np.concatenate([folds[j] for j in range(3) if j != k])
    fold_alpha = _np_kliep_fit(train, denominator, train[:4], 0.5, 500)
    scores.append(np.mean(np.log(_np_kernel(folds[k], train[:4], 0.5) @ fold_alpha)))
  return dict(alpha=alpha, log_ratio=np.log(_np_kernel(x, centers, 0.5) @ alpha),
              kernel=_np_kernel(x, centers, 0.5), lcv=np.mean(scores))


def _weighting_args(seed):
  rng = _rng(seed, 8)
  hot = int(rng.integers(0, 6))  # every proposal but one has weight ~e^-40
  return dict(log_r=_normal(rng, 6, scale=2.0), key=jax.random.PRNGKey(seed),
              peaked=jnp.asarray(np.where(np.arange(6) == hot, 0.0, -40.0), jnp.float32))


def _weighting_fn(p):
  log_r = p['log_r']
  return dict(
      normalized=weighting.self_normalize(log_r),
      flattened=weighting.flatten(log_r, power=0.5),
      augmentation=weighting.augmentation_weights(log_r, power=0.5),
      mixture=weighting.mixture_log_weight(log_ratio=log_r, n_p=20, n_q=60),
      sir=weighting.sir_indices(p['key'], log_weights=p['peaked'], num_samples=9))


def _weighting_reference(p):
  log_r = np.asarray(p['log_r'], np.float64)
  normalized = special.softmax(log_r)
  flat = special.softmax(0.5 * log_r)
  return dict(normalized=normalized, flattened=0.5 * log_r, augmentation=6 * flat,
              mixture=log_r - np.log(0.25 * np.exp(log_r) + 0.75),
              sir=np.full(9, np.argmax(np.asarray(p['peaked']))))


def _mi_args(seed):
  rng = _rng(seed, 9)
  return dict(key=jax.random.PRNGKey(seed), x=_normal(rng, 6, 2), y=_normal(rng, 6, 1),
              log_r=_normal(rng, 6))


def _mi_fn(p):
  joint, marginals = mutual_information.joint_and_marginal_samples(p['key'], x=p['x'], y=p['y'])
  return dict(joint=joint, marginals=marginals,
              mi=mutual_information.mutual_information(joint_log_ratio=p['log_r']))


def _mi_reference(p):
  x, y = np.asarray(p['x']), np.asarray(p['y'])
  order = np.asarray(jax.random.permutation(p['key'], 6))  # the documented permutation
  assert sorted(order.tolist()) == list(range(6))
  return dict(joint=np.concatenate([x, y], 1), marginals=np.concatenate([x, y[order]], 1),
              mi=np.mean(np.asarray(p['log_r'], np.float64)))


FDRE_CASES = {
    'fdre_classifier': Case(_classifier_fn, _classifier_args, _classifier_reference),
    'fdre_kmm': Case(_kmm_fn, kmm_args, _kmm_reference, atol=1e-5, rtol=1e-5, x64=True),
    'fdre_kliep': Case(_kliep_fn, _kliep_args, _kliep_reference, atol=1e-4, rtol=1e-4),
    'fdre_weighting': Case(_weighting_fn, _weighting_args, _weighting_reference),
    'fdre_mutual_information': Case(_mi_fn, _mi_args, _mi_reference),
}

# --------------------------------------------------------------------------- bijectors


class _Bijector(NamedTuple):
  module: Any
  shape: tuple[int, ...]
  unit_interval: bool = False  # inputs drawn in (0, 1) (Logit)


def _draw(spec: _Bijector, rng):
  if spec.unit_interval:
    return jnp.asarray(rng.uniform(0.02, 0.98, spec.shape), jnp.float32)
  return _normal(rng, *spec.shape, scale=1.5, loc=0.3)


_COMPILED = {}  # (id(module), what) -> value; Flax modules with list fields are unhashable


def _once(module, what, make):
  if (id(module), what) not in _COMPILED:
    _COMPILED[id(module), what] = make()
  return _COMPILED[id(module), what]


def _initial_variables(spec: _Bijector):
  init = lambda: jax.jit(lambda x: spec.module.init(jax.random.PRNGKey(0), x))(
      _draw(spec, _rng(0, 10)))
  return _once(spec.module, 'init', init)


def _compiled_dense_log_det(module):
  """:func:`tests.bijector_checks.dense_log_det`, compiled once per module."""
  return _once(module, 'dense', lambda: jax.jit(functools.partial(dense_log_det, module)))


def _bijector_case(**specs: _Bijector) -> Case:
  """``forward_and_log_det`` and ``inverse_and_log_det`` of bijectors, by name.

  Inputs per bijector ``(variables, x, y)``: perturbed initial variables, a batch ``x`` and
  ``y``, the eager forward image of ``x``. Reference: the log-determinant of the dense
  Jacobian at ``x`` (:func:`tests.bijector_checks.dense_log_det`) for both directions and
  ``x`` itself for the inverse of ``y`` (the round trip).
  """

  def make_args(seed):
    args = {}
    for index, (name, spec) in enumerate(sorted(specs.items())):
      rng = _rng(seed, 11 + index)
      init = _initial_variables(spec)
      variables = _perturb_params(init, rng, size=0.2) if init.get('params') else init
      x = _draw(spec, rng)
      y, _ = spec.module.apply(variables, x, method=type(spec.module).forward_and_log_det)
      args[name] = dict(variables=variables, x=x, y=y)
    return args

  def fn(p):
    out = {}
    for name, spec in specs.items():
      cls, q = type(spec.module), p[name]
      out[name] = dict(
          forward=spec.module.apply(q['variables'], q['x'], method=cls.forward_and_log_det),
          inverse=spec.module.apply(q['variables'], q['y'], method=cls.inverse_and_log_det))
    return out

  def reference(p):
    out = {}
    for name, spec in specs.items():
      q = p[name]
      log_det = np.asarray(_compiled_dense_log_det(spec.module)(q['variables'], q['x']))
      assert np.all(np.isfinite(log_det)), (name, log_det)
      out[name] = dict(forward=(q['y'], log_det), inverse=(q['x'], -log_det))
    return out

  # float32: round trips and dense log-dets agree to ~3e-5 on these sizes
  return Case(fn, make_args, reference, atol=1e-4, rtol=1e-4)


BIJECTOR_CASES = {
    'bijector_affine_and_elementwise': _bijector_case(
        elementwise_affine=_Bijector(bijectors.ElementwiseAffine(), (5, 3)),
        positive_definite_affine=_Bijector(bijectors.PositiveDefiniteAffine(), (5, 3)),
        scale_shift=_Bijector(bijectors.ScaleShift(scale=2.0, shift=-1.0), (5, 2, 2, 1)),
        logit=_Bijector(bijectors.Logit(alpha=0.05), (5, 3), unit_interval=True)),
    'bijector_realnvp': _bijector_case(
        realnvp=_Bijector(bijectors.realnvp(num_blocks=3, hidden=(8,)), (5, 4))),
    'bijector_maf_batchnorm': _bijector_case(  # BatchNorm in evaluation mode
        maf=_Bijector(bijectors.maf(num_blocks=2, hidden=(8,), batch_norm=True), (5, 3))),
    # ActNorm, 1x1 convolution, channel coupling, squeeze and one factor-out:
    # (4, 4, 1) -> (2, 2, 4) -> half factored out -> (1, 1, 8) -> unsqueezed back.
    'bijector_glow': _bijector_case(glow=_Bijector(
        bijectors.glow(num_levels=2, steps_per_level=1, hidden_channels=4, num_layers=1),
        (3, 4, 4, 1))),
}
