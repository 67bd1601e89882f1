"""Base density-ratio estimators as pure functions (featurized DRE Sec. 2.2, App. A).

Every estimator works on any array of points, in input space (``x``) or in a
flow's feature space (``z = f(x)``, Algorithm 1); by Lemma 1 both estimate the
same ratio ``r = p / q``.

* probabilistic classification: :func:`classifier_log_ratio` turns the logits
  of a classifier of ``D_p`` (label 1) against ``D_q`` (label 0) into
  ``log r``, with the set-size correction; :func:`logistic_loss` is its
  training loss ``L_sup``;
* kernel mean matching: :func:`kmm_solve` / :func:`kmm_weights` solve the QP of Huang et
  al. (2006) with the box and sum constraints, by accelerated projected gradient stopped
  on its projected-gradient residual;
* KLIEP: :func:`kliep_fit` / :func:`kliep_log_ratio`, the Gaussian-kernel model
  ``r(x) = sum_l alpha_l k(x, c_l)`` of Sugiyama et al. (2008), and its kernel selection by
  likelihood cross-validation, :func:`kliep_lcv_score`.

Kernel convention, used by every function here: ``k(x, x') = exp(-kernel_gamma
||x - x'||^2)``; ``kernel_gamma`` is the coefficient of the squared distance
(the paper's grid ``gamma in {0.01, 0.1, 0.5, 1}``), never a bandwidth.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

__all__ = [
    'classifier_log_ratio', 'binary_cross_entropy', 'logistic_loss', 'gaussian_kernel',
    'KMMSolution', 'kmm_solve', 'kmm_weights', 'kmm_objective', 'kliep_fit', 'kliep_log_ratio',
    'kliep_lcv_score'
]

Array = jax.Array


def classifier_log_ratio(*, logits: Array, n_p: int, n_q: int) -> Array:
  """``log r(x) = log p(x)/q(x)`` from a probabilistic classifier (Sec. 2.2).

  A classifier ``c(x) = sigmoid(logit(x)) = P(y = 1 | x)`` trained on ``n_p``
  samples of ``p`` (label 1) and ``n_q`` samples of ``q`` (label 0) has Bayes
  optimum ``c / (1 - c) = n_p p(x) / (n_q q(x))``, so
  ``log r(x) = logit(x) + log(n_q / n_p)`` (the paper's ``r = c / (1 - c)``
  for ``n_p = n_q``).

  Args:
    logits: ``(batch,)`` classifier logits.
    n_p: number of training samples of ``p`` (label 1).
    n_q: number of training samples of ``q`` (label 0).

  Returns:
    ``(batch,)`` log-ratio estimates.
  """
  if n_p <= 0 or n_q <= 0:
    raise ValueError(f'set sizes must be positive, got n_p={n_p}, n_q={n_q}')
  return logits + math.log(n_q / n_p)


def binary_cross_entropy(*, logits: Array, labels: Array) -> Array:
  """Per-example ``-[y log sigmoid(l) + (1 - y) log sigmoid(-l)]``, ``(batch,)``."""
  if logits.shape != labels.shape:
    raise ValueError(f'logits {logits.shape} and labels {labels.shape} differ in shape')
  labels = labels.astype(logits.dtype)
  return -(labels * jax.nn.log_sigmoid(logits) + (1.0 - labels) * jax.nn.log_sigmoid(-logits))


def logistic_loss(*, logits: Array, labels: Array) -> Array:
  """Mean binary cross-entropy ``L_sup`` of Eq. 1 (label 1 = ``D_p``, 0 = ``D_q``).

  ``L_sup = -mean[y log sigmoid(l) + (1 - y) log sigmoid(-l)]``.

  Args:
    logits: ``(batch,)`` logits.
    labels: ``(batch,)`` labels in ``{0, 1}``.

  Returns:
    The scalar loss.
  """
  return jnp.mean(binary_cross_entropy(logits=logits, labels=labels))


def gaussian_kernel(x: Array, y: Array, *, kernel_gamma: float) -> Array:
  """Gram matrix ``K_ij = exp(-kernel_gamma ||x_i - y_j||^2)``.

  Args:
    x: ``(n, d)`` points.
    y: ``(m, d)`` points.
    kernel_gamma: positive coefficient of the squared distance.

  Returns:
    ``(n, m)`` kernel matrix.
  """
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f'gaussian_kernel expects (n, d) and (m, d) points, got {x.shape} '
                     f'and {y.shape}')
  sq = (jnp.sum(x**2, 1)[:, None] + jnp.sum(y**2, 1)[None, :] - 2.0 * x @ y.T)
  return jnp.exp(-kernel_gamma * jnp.maximum(sq, 0.0))


def _project_box_sum(v: Array, bound: float, low: float, high: float,
                     iterations: int = 60) -> Array:
  """Euclidean projection of ``v`` onto ``{0 <= b <= bound, low <= sum b <= high}``.

  The KKT conditions give ``b = clip(v - tau, 0, bound)`` with ``tau = 0`` when
  that sum is already within ``[low, high]`` and otherwise the ``tau`` (found by
  bisection; the sum is monotone in ``tau``) that puts the sum on the violated
  side of the slab.
  """
  clipped_sum = lambda tau: jnp.sum(jnp.clip(v - tau, 0.0, bound))
  target = jnp.clip(clipped_sum(0.0), low, high)
  lo, hi = jnp.min(v) - bound, jnp.max(v)  # clipped_sum(lo) = n bound, clipped_sum(hi) = 0

  def bisect(_, interval):
    lo, hi = interval
    mid = 0.5 * (lo + hi)
    too_big = clipped_sum(mid) > target
    return jnp.where(too_big, mid, lo), jnp.where(too_big, hi, mid)

  lo, hi = jax.lax.fori_loop(0, iterations, bisect, (lo, hi))
  return jnp.clip(v - 0.5 * (lo + hi), 0.0, bound)


class KMMSolution(NamedTuple):
  """What :func:`kmm_solve` returns.

  Attributes:
    weights: ``(n,)`` the weights ``beta``.
    residual: the projected-gradient residual ``||beta - P(beta - s grad)|| / (s ||kappa||)``
      at ``weights`` (0 exactly at the QP's optimum; ``P`` the projection onto the
      feasible set, ``s`` the step), relative to the scale of the linear term.
    iterations: FISTA iterations run.
    converged: ``residual <= tol``.
  """
  weights: Array
  residual: Array
  iterations: Array
  converged: Array


def kmm_solve(*, source: Array, target: Array, kernel_gamma: float, bound: float,
              eps: float | None = None, tol: float = 1e-4,
              max_iterations: int = 20000) -> KMMSolution:
  """Kernel mean matching weights ``beta_i ~ p_target(x_i) / p_source(x_i)`` (App. A).

  Solves the QP of Huang et al. (2006)::

    min_beta 1/2 beta^T K beta - kappa^T beta
    s.t.     0 <= beta_i <= bound,   |sum_i beta_i - n| <= n eps

  with ``K_ij = k(s_i, s_j)``, ``kappa_i = (n / m) sum_j k(s_i, t_j)`` for
  ``n`` source points ``s`` and ``m`` target points ``t``; the default
  ``eps = (sqrt(n) - 1) / sqrt(n)``. The objective is ``n^2 / 2`` times the
  squared RKHS distance between the beta-weighted source mean embedding and the
  target mean embedding, up to a constant. Method: FISTA (accelerated
  projected gradient) with step ``1 / lambda_max(K)`` (power iteration) and the
  exact projection onto the box-and-slab feasible set, stopped when the
  projected-gradient residual (:class:`KMMSolution`) is at most ``tol``.

  Args:
    source: ``(n, d)`` points where the weights are wanted (the training domain).
    target: ``(m, d)`` points of the domain the weights should match.
    kernel_gamma: Gaussian kernel coefficient (module docstring).
    bound: the box bound ``B >= 1``.
    eps: sum-constraint tolerance; ``None`` for ``(sqrt(n) - 1) / sqrt(n)``.
    tol: stopping tolerance on the relative projected-gradient residual.
    max_iterations: FISTA iterations at most.

  Returns:
    A :class:`KMMSolution`.
  """
  n, m = source.shape[0], target.shape[0]
  if n < 1 or m < 1:
    raise ValueError(f'kmm_weights needs points in both sets, got {n} source and {m} target')
  if not tol > 0 or max_iterations < 1:
    raise ValueError(f'tol must be > 0 and max_iterations >= 1, got {tol}, {max_iterations}')
  eps = (math.sqrt(n) - 1.0) / math.sqrt(n) if eps is None else eps
  low, high = max(n * (1.0 - eps), 0.0), n * (1.0 + eps)
  if bound * n < low:
    raise ValueError(f'KMM is infeasible: n * bound = {n * bound} < n (1 - eps) = {low}')
  return _kmm_solve(source, target, kernel_gamma, bound, low, high, tol, max_iterations)


def kmm_weights(*, source: Array, target: Array, kernel_gamma: float, bound: float,
                eps: float | None = None, tol: float = 1e-4,
                max_iterations: int = 20000) -> Array:
  """The weights of :func:`kmm_solve` (same arguments), ``(n,)``.

  Called eagerly (concrete arrays), a solve that did not converge raises. Under a
  transformation (``jax.jit``, ``jax.vmap``, ``jax.pmap``) the convergence
  flag is a traced value that cannot be inspected on the host, so instead the weights of a
  solve that did not converge are all NaN (per problem under ``vmap``): non-convergence
  stays visible and poisons whatever uses the weights. Use :func:`kmm_solve` to read the
  residual and the flag yourself.

  Raises:
    RuntimeError: (eager calls only) the solver did not reach ``tol`` in
      ``max_iterations`` iterations (the message gives the residual).
  """
  solution = kmm_solve(source=source, target=target, kernel_gamma=kernel_gamma, bound=bound,
                       eps=eps, tol=tol, max_iterations=max_iterations)
  if isinstance(solution.converged, jax.core.Tracer):
    return jnp.where(solution.converged, solution.weights, jnp.nan)
  if not bool(solution.converged):
    raise RuntimeError(
        f'KMM did not converge: projected-gradient residual {float(solution.residual):.3g} '
        f'> tol {tol} after {int(solution.iterations)} iterations (kernel_gamma '
        f'{kernel_gamma}, bound {bound}); raise max_iterations or tol')
  return solution.weights


@functools.partial(jax.jit, static_argnames=('max_iterations',))
def _kmm_solve(source: Array, target: Array, kernel_gamma: Array, bound: Array, low: Array,
               high: Array, tol: Array, max_iterations: int) -> KMMSolution:
  """FISTA on the KMM QP (see :func:`kmm_solve`); compiled once per shape."""
  n, m = source.shape[0], target.shape[0]
  gram = gaussian_kernel(source, source, kernel_gamma=kernel_gamma)
  kappa = (n / m) * jnp.sum(gaussian_kernel(source, target, kernel_gamma=kernel_gamma), 1)
  scale = jnp.maximum(jnp.linalg.norm(kappa), 1e-30)

  def power_step(_, u):
    u = gram @ u
    return u / jnp.linalg.norm(u)

  u = jax.lax.fori_loop(0, 100, power_step, jnp.ones(n) / math.sqrt(n))
  step = 1.0 / (1.05 * (u @ gram @ u))
  project = lambda v: _project_box_sum(v, bound, low, high)

  def residual(beta):
    moved = project(beta - step * (gram @ beta - kappa))
    return jnp.linalg.norm(beta - moved) / (step * scale)

  def not_done(carry):
    _, _, _, iteration, res = carry
    return (iteration < max_iterations) & (res > tol)

  def fista_step(carry):
    beta, momentum_point, t, iteration, _ = carry
    new_beta = project(momentum_point - step * (gram @ momentum_point - kappa))
    new_t = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t**2))
    momentum_point = new_beta + ((t - 1.0) / new_t) * (new_beta - beta)
    return new_beta, momentum_point, new_t, iteration + 1, residual(new_beta)

  start = project(jnp.ones(n))
  beta, _, _, iterations, res = jax.lax.while_loop(
      not_done, fista_step, (start, start, jnp.ones(()), jnp.zeros((), jnp.int32),
                             residual(start)))
  return KMMSolution(beta, res, iterations, res <= tol)


def kmm_objective(beta: Array, *, source: Array, target: Array, kernel_gamma: float) -> Array:
  """The KMM objective ``1/2 beta^T K beta - kappa^T beta`` of :func:`kmm_weights`.

  ``beta`` is ``(n,)`` for ``n`` source points ``(n, d)``; ``target`` is ``(m, d)``.
  """
  n, m = source.shape[0], target.shape[0]
  chex.assert_shape(beta, (n,))
  gram = gaussian_kernel(source, source, kernel_gamma=kernel_gamma)
  kappa = (n / m) * jnp.sum(gaussian_kernel(source, target, kernel_gamma=kernel_gamma), 1)
  return 0.5 * beta @ gram @ beta - kappa @ beta


@functools.partial(jax.jit, static_argnames=('num_iterations',))
def kliep_fit(*, numerator: Array, denominator: Array, centers: Array, kernel_gamma: float,
              num_iterations: int = 500) -> Array:
  """KLIEP coefficients ``alpha`` of ``r(x) = sum_l alpha_l k(x, c_l)`` (Sec. 2.2, App. A).

  Maximises the numerator log-likelihood of ``r q``::

    max_alpha  mean_i log r(x_i^num)
    s.t.       mean_j r(x_j^den) = 1,  alpha >= 0

  (the KL divergence from ``p`` to ``r q`` with ``r q`` normalised). With
  ``b_l = mean_j k(x_j^den, c_l)`` and ``w_l = b_l alpha_l`` the constraint is
  ``w`` on the simplex and the program is the log-likelihood of a mixture with
  weights ``w`` and fixed components ``k(x, c_l) / b_l``; it is solved by the
  EM fixed point ``w_l <- w_l mean_i [A_il / (A w)_i]`` (monotone ascent).

  Args:
    numerator: ``(n_num, d)`` samples of ``p`` (the ratio's numerator).
    denominator: ``(n_den, d)`` samples of ``q``.
    centers: ``(b, d)`` kernel centres (usually a subset of ``numerator``).
    kernel_gamma: Gaussian kernel coefficient (module docstring).
    num_iterations: EM iterations.

  Returns:
    ``(b,)`` non-negative coefficients ``alpha``.
  """
  b = jnp.mean(gaussian_kernel(denominator, centers, kernel_gamma=kernel_gamma), 0)
  b = jnp.maximum(b, 1e-30)
  components = gaussian_kernel(numerator, centers, kernel_gamma=kernel_gamma) / b

  def em_step(_, w):
    responsibilities = components * w / jnp.maximum(components @ w, 1e-30)[:, None]
    return jnp.mean(responsibilities, 0)

  num_centers = centers.shape[0]
  w = jax.lax.fori_loop(0, num_iterations, em_step, jnp.full(num_centers, 1.0 / num_centers))
  return w / b


def kliep_log_ratio(x: Array, *, centers: Array, alpha: Array, kernel_gamma: float) -> Array:
  """``log r(x) = log sum_l alpha_l k(x, c_l)`` of a fitted KLIEP model, ``(batch,)``.

  ``x`` is ``(batch, d)``, ``centers`` ``(b, d)`` and ``alpha`` ``(b,)`` (:func:`kliep_fit`).
  """
  chex.assert_shape(alpha, (centers.shape[0],))
  return jnp.log(jnp.maximum(
      gaussian_kernel(x, centers, kernel_gamma=kernel_gamma) @ alpha, 1e-30))


def kliep_lcv_score(*, numerator: Array, denominator: Array, kernel_gamma: float,
                    num_centers: int, num_folds: int = 5) -> Array:
  """Likelihood cross-validation score of KLIEP for one kernel (Sugiyama et al., 2008).

  The numerator samples are cut into ``num_folds`` equal folds (in their given order; shuffle
  them first); for each fold ``k``, KLIEP is fitted (:func:`kliep_fit`) on the other folds
  against all of ``denominator``, with the first ``num_centers`` of those samples as centres,
  and scored by the held-out log-likelihood ``mean_{x in fold k} log r_k(x)``. The score is
  the mean over folds; the kernel with the highest score is selected. Needs no labels.

  Args:
    numerator: ``(n_num, d)`` samples of the ratio's numerator.
    denominator: ``(n_den, d)`` samples of its denominator.
    kernel_gamma: Gaussian kernel coefficient (module docstring).
    num_centers: kernel centres per fit (at most the training part of ``numerator``).
    num_folds: number of folds, at least 2.

  Returns:
    The cross-validated mean held-out ``log r``, a scalar array (``float()`` it on the
    host); the function is pure and can be ``jit``-ed with ``num_centers`` and
    ``num_folds`` static.
  """
  fold = numerator.shape[0] // num_folds
  if num_folds < 2 or fold < 1:
    raise ValueError(f'kliep_lcv_score needs num_folds >= 2 folds of >= 1 sample, got '
                     f'num_folds={num_folds} for {numerator.shape[0]} samples')
  if num_centers > (num_folds - 1) * fold:
    raise ValueError(f'num_centers={num_centers} exceeds the {(num_folds - 1) * fold} '
                     'training samples of a fold')
  folds = numerator[:num_folds * fold].reshape((num_folds, fold) + numerator.shape[1:])
  scores = []
  for k in range(num_folds):
    train = jnp.concatenate([folds[j] for j in range(num_folds) if j != k])
    centers = train[:num_centers]
    alpha = kliep_fit(numerator=train, denominator=denominator, centers=centers,
                      kernel_gamma=kernel_gamma)
    scores.append(jnp.mean(kliep_log_ratio(folds[k], centers=centers, alpha=alpha,
                                           kernel_gamma=kernel_gamma)))
  return jnp.mean(jnp.stack(scores))
