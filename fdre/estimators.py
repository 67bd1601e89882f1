"""Base density-ratio estimators as pure functions (featurized DRE Sec. 2.2, App. A).

Every estimator works on any array of points, in input space (``x``) or in a
flow's feature space (``z = f(x)``, Algorithm 1); by Lemma 1 both estimate the
same ratio ``r = p / q``.

* probabilistic classification: :func:`classifier_log_ratio` turns the logits
  of a classifier of ``D_p`` (label 1) against ``D_q`` (label 0) into
  ``log r``, with the set-size correction; :func:`logistic_loss` is its
  training loss ``L_sup``;
* kernel mean matching: :func:`kmm_solve` / :func:`kmm_weights` solve the QP of Huang et
  al. (2006) with the box and sum constraints, by a log-barrier interior-point method in
  float64 stopped on a certified duality gap;
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


def _box_slab_min(g: Array, bound: Array, low: Array, high: Array) -> Array:
  """``min g^T b`` over ``{0 <= b <= bound, low <= sum b <= high}`` (a fractional knapsack).

  The minimiser fills coordinates in increasing order of ``g``, each up to ``bound``, with a
  total of ``clip(bound * #{g < 0}, low, high)``.
  """
  ordered = jnp.sort(g)
  total = jnp.clip(bound * jnp.sum(g < 0), low, high)
  filled = jnp.clip(total - bound * jnp.arange(g.shape[0], dtype=g.dtype), 0.0, bound)
  return ordered @ filled


class KMMSolution(NamedTuple):
  """What :func:`kmm_solve` returns.

  Attributes:
    weights: ``(n,)`` the weights ``beta``, strictly inside the feasible set.
    residual: the Frank-Wolfe duality gap ``max_{b feasible} grad f(beta)^T (beta - b)``
      relative to ``max(|f(beta)|, 1)``: a certificate, since by convexity
      ``f(beta) - min f <= gap`` (0 exactly at the QP's optimum).
    iterations: Newton steps run.
    converged: ``residual <= tol``.
  """
  weights: Array
  residual: Array
  iterations: Array
  converged: Array


def kmm_solve(*, source: Array, target: Array, kernel_gamma: float, bound: float,
              eps: float | None = None, tol: float = 1e-8,
              max_iterations: int = 500) -> KMMSolution:
  """Kernel mean matching weights ``beta_i ~ p_target(x_i) / p_source(x_i)`` (App. A).

  Solves the QP of Huang et al. (2006)::

    min_beta f(beta) = 1/2 beta^T K beta - kappa^T beta
    s.t.     0 <= beta_i <= bound,   |sum_i beta_i - n| <= n eps

  with ``K_ij = k(s_i, s_j)``, ``kappa_i = (n / m) sum_j k(s_i, t_j)`` for
  ``n`` source points ``s`` and ``m`` target points ``t``; the default
  ``eps = (sqrt(n) - 1) / sqrt(n)``. The objective is ``n^2 / 2`` times the
  squared RKHS distance between the beta-weighted source mean embedding and the
  target mean embedding, up to a constant.

  Method: a log-barrier interior-point method (damped Newton steps on
  ``t f(beta) - sum of the logs of the 2n + 2 constraint slacks``, ``t`` multiplied by 10
  each time a step is nearly centred), as the paper's interior-point QP solver. With the
  wide kernels of the paper's grid ``K`` is singular to working precision, so the QP is
  nearly flat along many directions: a first-order method stopped at a modest residual
  returns visibly different (smoother) weights; this one is stopped on the Frank-Wolfe
  duality gap (:class:`KMMSolution`), which bounds the objective's distance to its
  minimum. It runs in float64 only (inside ``jax.enable_x64(True)``, on float64 points):
  in float32 the gap of these nearly singular problems rounds to values that certify
  nothing. Each step factorises an ``(n, n)`` matrix: about 100 steps and a second for
  ``n = 1000`` on a 2-core CPU.

  Args:
    source: ``(n, d)`` points where the weights are wanted (the training domain).
    target: ``(m, d)`` points of the domain the weights should match.
    kernel_gamma: Gaussian kernel coefficient (module docstring).
    bound: the box bound ``B``.
    eps: sum-constraint tolerance, ``> 0``; ``None`` for ``(sqrt(n) - 1) / sqrt(n)``.
    tol: stopping tolerance on the relative duality gap (at ``1e-8`` on Table 8's mixture the
      weights agree with a ``1e-10`` solve to a correlation of 0.9999 at ``kernel_gamma``
      0.01; much below ``1e-10`` the gap can stall at float64's precision).
    max_iterations: Newton steps at most.

  Returns:
    A :class:`KMMSolution`.
  """
  n, m = source.shape[0], target.shape[0]
  if n < 1 or m < 1:
    raise ValueError(f'kmm_weights needs points in both sets, got {n} source and {m} target')
  if jnp.result_type(source, target) != jnp.float64:
    raise ValueError(
        f'kmm_solve needs float64 points, got {jnp.result_type(source, target)}: the QP is '
        'singular to float32 precision at the paper\'s kernel widths (its duality gap cannot '
        'be certified there); call it inside `with jax.enable_x64(True):` on float64 arrays')
  if not tol > 0 or max_iterations < 1:
    raise ValueError(f'tol must be > 0 and max_iterations >= 1, got {tol}, {max_iterations}')
  eps = (math.sqrt(n) - 1.0) / math.sqrt(n) if eps is None else eps
  if not eps > 0:
    raise ValueError(f'KMM needs a sum tolerance eps > 0 (an interior to start from), got '
                     f'{eps} (the default is 0 for n = 1)')
  low, high = max(n * (1.0 - eps), 0.0), n * (1.0 + eps)
  if not bound * n > low:
    raise ValueError(f'KMM is infeasible: n * bound = {n * bound} <= n (1 - eps) = {low}')
  return _kmm_solve(source, target, kernel_gamma, bound, low, high, tol, max_iterations)


def kmm_weights(*, source: Array, target: Array, kernel_gamma: float, bound: float,
                eps: float | None = None, tol: float = 1e-8,
                max_iterations: int = 500) -> Array:
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
        f'KMM did not converge: relative duality gap {float(solution.residual):.3g} '
        f'> tol {tol} after {int(solution.iterations)} Newton steps (kernel_gamma '
        f'{kernel_gamma}, bound {bound}); raise max_iterations or tol')
  return solution.weights


@functools.partial(jax.jit, static_argnames=('max_iterations',))
def _kmm_solve(source: Array, target: Array, kernel_gamma: Array, bound: Array, low: Array,
               high: Array, tol: Array, max_iterations: int) -> KMMSolution:
  """The barrier method of :func:`kmm_solve`; compiled once per shape."""
  n, m = source.shape[0], target.shape[0]
  gram = gaussian_kernel(source, source, kernel_gamma=kernel_gamma)
  gram = 0.5 * (gram + gram.T)
  kappa = (n / m) * jnp.sum(gaussian_kernel(source, target, kernel_gamma=kernel_gamma), 1)
  dtype = gram.dtype
  bound, low, high, tol = (jnp.asarray(v, dtype) for v in (bound, low, high, tol))
  num_constraints = 2 * n + 2

  objective = lambda beta: 0.5 * beta @ gram @ beta - kappa @ beta

  def gap(beta):
    g = gram @ beta - kappa
    return jnp.maximum(g @ beta - _box_slab_min(g, bound, low, high), 0.0) / jnp.maximum(
        jnp.abs(objective(beta)), 1.0)

  def barrier(beta, t):
    total = jnp.sum(beta)
    slack = jnp.concatenate([beta, bound - beta, jnp.stack([total - low, high - total])])
    return jnp.where(jnp.all(slack > 0), t * objective(beta) - jnp.sum(jnp.log(slack)),
                     jnp.inf)

  def newton_step(carry):
    beta, t, iteration, _ = carry
    total = jnp.sum(beta)
    lower, upper = total - low, high - total
    grad = (t * (gram @ beta - kappa) - 1.0 / beta + 1.0 / (bound - beta)
            - 1.0 / lower + 1.0 / upper)
    hessian = (t * gram + jnp.diag(1.0 / beta**2 + 1.0 / (bound - beta)**2)
               + (1.0 / lower**2 + 1.0 / upper**2))
    # Jacobi scaling to a unit diagonal first: the barrier's diagonal spans many orders of
    # magnitude near the optimum, where some weights approach 0 or the bound.
    scale = jax.lax.rsqrt(jnp.diag(hessian))
    scaled = scale[:, None] * hessian * scale[None, :] + 1e-13 * jnp.eye(n, dtype=dtype)
    direction = -scale * jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(scaled),
                                                    scale * grad)
    decrement = -grad @ direction
    # Largest step that keeps every slack positive, then backtracking (Armijo).
    change = jnp.sum(direction)
    ratios = jnp.concatenate([
        jnp.where(direction < 0, -beta / direction, jnp.inf),
        jnp.where(direction > 0, (bound - beta) / direction, jnp.inf),
        jnp.stack([jnp.where(change < 0, -lower / change, jnp.inf),
                   jnp.where(change > 0, upper / change, jnp.inf)])])
    step = jnp.minimum(1.0, 0.99 * jnp.min(ratios))
    value = barrier(beta, t)
    shrink = lambda s: s * 0.5
    step = jax.lax.while_loop(
        lambda s: (barrier(beta + s * direction, t) > value - 0.25 * s * decrement) & (s > 1e-9),
        shrink, step)
    stalled = step <= 1e-9  # no decrease the working precision can see
    new_beta = jnp.where(jnp.isfinite(decrement) & (decrement > 0) & ~stalled,
                         beta + step * direction, beta)
    # Nearly centred for this t (or as centred as the precision allows): tighten the barrier.
    t = jnp.where((decrement < 1e-2) | stalled, t * 10.0, t)
    return new_beta, t, iteration + 1, gap(new_beta)

  def not_done(carry):
    _, _, iteration, residual = carry
    return (iteration < max_iterations) & (residual > tol)

  # A strictly feasible start (beta = 1 whenever it is inside), and the t whose barrier
  # gap (num_constraints / t) equals the start's Frank-Wolfe gap.
  low_c, high_c = jnp.maximum(low / n, 0.0), jnp.minimum(high / n, bound)
  level = jnp.where((low_c < 1.0) & (1.0 < high_c), 1.0, 0.5 * (low_c + high_c))
  start = jnp.full((n,), level, dtype)
  start_gap = gap(start)
  t0 = num_constraints / jnp.maximum(start_gap * jnp.maximum(jnp.abs(objective(start)), 1.0),
                                     jnp.finfo(dtype).tiny)
  beta, _, iterations, residual = jax.lax.while_loop(
      not_done, newton_step, (start, t0, jnp.zeros((), jnp.int32), start_gap))
  return KMMSolution(beta, residual, iterations, residual <= tol)


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
