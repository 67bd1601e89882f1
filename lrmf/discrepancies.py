"""Sample-based discrepancies and closed-form maps between two point sets: the distances the
LRMF baselines train ``T`` on or are evaluated with, and the maps of setup 3 (LRMF Sec. 4;
Fig. 3, 4).

* MMD (Fig. 4): :func:`mmd_loss`, a multi-bandwidth Gaussian-kernel MMD.
* EMD (Fig. 4): :func:`sinkhorn_divergence`, entropic optimal transport with its self terms
  subtracted (0 at ``x = y``); :func:`sinkhorn_cost` is the biased transport cost alone,
  :func:`sinkhorn_marginal_error` the solver's convergence, :func:`sinkhorn_plan` the plan;
  :func:`exact_emd` is the exact (unregularised) cost for evaluation (host-only, SciPy).
* Setup 3's maps: :func:`coral_map` matches second moments in closed form,
  :func:`exact_emd_map` moves every source point onto its optimal-transport match;
  :func:`mmd_particle_map` moves the source points themselves down the MMD.

Points are ``(n, d)`` arrays; the JAX functions are jit-, grad- and vmap-able.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import optimize, spatial

__all__ = [
    'check_point_sets', 'mmd_loss', 'sinkhorn_plan', 'sinkhorn_cost', 'sinkhorn_marginal_error',
    'entropic_ot', 'sinkhorn_divergence', 'exact_emd', 'exact_emd_map', 'mmd_particle_map',
    'coral_map'
]

Array = jax.Array


def check_point_sets(x: Array, y: Array, who: str) -> None:
  """Raises ``ValueError`` (naming ``who``) unless ``x`` and ``y`` are point sets ``(n, d)``
  and ``(m, d)`` of one dimension ``d``."""
  if x.ndim != 2 or y.ndim != 2:
    raise ValueError(f'{who} expects x of shape (n, d) and y of shape (m, d), got '
                     f'{tuple(x.shape)} and {tuple(y.shape)}')
  if x.shape[1] != y.shape[1]:
    raise ValueError(f'{who}: x and y must have the same dimension d, got '
                     f'{x.shape[1]} and {y.shape[1]}')


def _squared_distances(x: Array, y: Array) -> Array:
  """``D_ij = ||x_i - y_j||^2`` for ``x (n, d)``, ``y (m, d)``; returns ``(n, m)``."""
  cross = x @ y.T
  return jnp.maximum(jnp.sum(x**2, 1)[:, None] + jnp.sum(y**2, 1)[None, :] - 2.0 * cross, 0.0)


def mmd_loss(*, x: Array, y: Array, bandwidths: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0),
             unbiased: bool = True) -> Array:
  """Squared maximum mean discrepancy with a multi-bandwidth Gaussian kernel (Fig. 4, "MMD").

  ``k(x, y) = sum_h exp(-||x - y||^2 / (2 h^2))`` over ``h`` in ``bandwidths``;
  each ``h`` is a length scale (a bandwidth, not a ``gamma = 1 / (2 h^2)``).
  The unbiased U-statistic (Gretton et al. 2012) is

    ``MMD_u^2 = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
    - 2/(nm) sum_{i,j} k(x_i, y_j)``;

  it has expectation ``MMD^2`` and can be slightly negative. The biased
  V-statistic (``unbiased=False``) averages over all pairs, diagonals included,
  is non-negative and is exactly 0 for identical sets.

  Args:
    x: ``(n, d)`` samples, e.g. ``T(A)``.
    y: ``(m, d)`` samples, e.g. ``B``.
    bandwidths: the kernel length scales ``h > 0`` (static Python floats).
    unbiased: U-statistic (True, needs ``n, m >= 2``) or V-statistic (False).

  Returns:
    Scalar squared MMD.
  """
  check_point_sets(x, y, 'mmd_loss')
  bandwidths = tuple(float(h) for h in bandwidths)
  if not bandwidths or min(bandwidths) <= 0:
    raise ValueError(f'mmd_loss needs at least one positive bandwidth, got {bandwidths}')
  n, m = x.shape[0], y.shape[0]
  if unbiased and min(n, m) < 2:
    raise ValueError(f'the unbiased MMD needs at least 2 samples per set, got n={n}, m={m}')

  def kernel(u, v):
    sq = _squared_distances(u, v)
    return sum(jnp.exp(-sq / (2.0 * h**2)) for h in bandwidths)

  k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
  if unbiased:
    within_x = (jnp.sum(k_xx) - jnp.trace(k_xx)) / (n * (n - 1))
    within_y = (jnp.sum(k_yy) - jnp.trace(k_yy)) / (m * (m - 1))
  else:
    within_x, within_y = jnp.mean(k_xx), jnp.mean(k_yy)
  return within_x + within_y - 2.0 * jnp.mean(k_xy)


def _sinkhorn(x: Array, y: Array, epsilon: float, num_iters: int
              ) -> tuple[Array, Array, Array]:
  """``(f, g, cost)``: the log-domain Sinkhorn potentials and the cost matrix (no gradient)."""
  check_point_sets(x, y, 'sinkhorn')
  if isinstance(epsilon, (int, float)) and not epsilon > 0:
    raise ValueError(f'epsilon must be positive, got {epsilon}')
  if not isinstance(num_iters, int) or num_iters < 1:
    raise ValueError(f'num_iters must be a Python int >= 1, got {num_iters!r}')
  cost = jax.lax.stop_gradient(_squared_distances(x, y))
  n, m = cost.shape
  log_a, log_b = -math.log(n), -math.log(m)

  def update(_, potentials):
    _, g = potentials
    f = -epsilon * jax.nn.logsumexp((g[None, :] - cost) / epsilon + log_b, axis=1)
    g = -epsilon * jax.nn.logsumexp((f[:, None] - cost) / epsilon + log_a, axis=0)
    return f, g

  init = (jnp.zeros(n, cost.dtype), jnp.zeros(m, cost.dtype))
  f, g = jax.lax.fori_loop(0, num_iters, update, init)
  return f, g, cost


def sinkhorn_plan(*, x: Array, y: Array, epsilon: float, num_iters: int) -> Array:
  """Entropic optimal-transport plan between uniform point sets, in the log domain.

  Solves ``min_P <P, C> - epsilon H(P)`` over couplings of the uniform weights
  ``a = 1/n``, ``b = 1/m`` with squared Euclidean cost ``C_ij = ||x_i - y_j||^2``
  by ``num_iters`` Sinkhorn iterations on the dual potentials (Cuturi 2013;
  log-domain updates, stable for small ``epsilon``):

    ``f_i = -epsilon logsumexp_j((g_j - C_ij) / epsilon + log b_j)``,
    ``g_j = -epsilon logsumexp_i((f_i - C_ij) / epsilon + log a_i)``,
    ``P_ij = exp((f_i + g_j - C_ij) / epsilon + log a_i + log b_j)``.

  The column marginals of ``P`` are exact, the row marginals converge. The
  iterations need about ``max C / epsilon`` steps, so scale ``num_iters`` with
  ``1 / epsilon``. The plan carries no gradient (see :func:`sinkhorn_cost`).

  Args:
    x: ``(n, d)`` source points.
    y: ``(m, d)`` target points.
    epsilon: entropic regularisation, ``> 0``, in units of squared distance.
    num_iters: number of (f, g) update pairs, a static Python int ``>= 1``.

  Returns:
    ``(n, m)`` plan with total mass 1.
  """
  f, g, cost = _sinkhorn(x, y, epsilon, num_iters)
  n, m = cost.shape
  return jnp.exp((f[:, None] + g[None, :] - cost) / epsilon - math.log(n) - math.log(m))


def sinkhorn_cost(*, x: Array, y: Array, epsilon: float, num_iters: int) -> Array:
  """Transport cost ``<P_eps, C>`` of the entropic plan, the "EMD" objective of Fig. 4.

  ``P_eps`` is :func:`sinkhorn_plan` and ``C_ij = ||x_i - y_j||^2``; as
  ``epsilon -> 0`` the value tends to the exact optimal-transport cost
  (:func:`exact_emd` for equal sizes). Gradients treat the plan as a constant,
  ``d/dx_i = 2 sum_j P_ij (x_i - y_j)``: by the envelope theorem this is the
  exact gradient of the entropic OT value ``min_P <P, C> - epsilon H(P)`` at
  convergence, and memory stays ``O(nm)`` whatever ``num_iters``.

  Args:
    x: ``(n, d)`` points, e.g. ``T(A)``.
    y: ``(m, d)`` points, e.g. ``B``.
    epsilon: entropic regularisation, ``> 0``.
    num_iters: Sinkhorn iterations (static).

  Returns:
    Scalar cost (average squared distance moved per unit of mass).
  """
  plan = sinkhorn_plan(x=x, y=y, epsilon=epsilon, num_iters=num_iters)
  return jnp.sum(plan * _squared_distances(x, y))


def sinkhorn_marginal_error(*, x: Array, y: Array, epsilon: float, num_iters: int) -> Array:
  """Convergence of :func:`sinkhorn_plan`: ``n max_i |sum_j P_ij - 1/n|``.

  The column marginals are exact after each ``g`` update; the row marginals converge. The
  error is relative to the uniform weight ``1/n`` (0 at convergence, 1 means a row's mass
  is off by a whole share).
  """
  plan = sinkhorn_plan(x=x, y=y, epsilon=epsilon, num_iters=num_iters)
  n = plan.shape[0]
  return n * jnp.max(jnp.abs(jnp.sum(plan, 1) - 1.0 / n))


def entropic_ot(*, x: Array, y: Array, epsilon: float, num_iters: int) -> Array:
  """The entropic optimal-transport value ``OT_eps(x, y) = <P, C> + epsilon KL(P | a b^T)``.

  ``P`` is :func:`sinkhorn_plan` (held constant for gradients: by the envelope theorem
  ``d OT_eps / d x_i = 2 sum_j P_ij (x_i - y_j)`` at convergence), ``a``, ``b`` the
  uniform weights. At convergence this is the dual value ``<a, f> + <b, g>``.
  """
  plan = jax.lax.stop_gradient(sinkhorn_plan(x=x, y=y, epsilon=epsilon, num_iters=num_iters))
  n, m = plan.shape
  log_ratio = jnp.log(jnp.maximum(plan, 1e-38)) + math.log(n) + math.log(m)
  entropy_term = epsilon * jnp.sum(jnp.where(plan > 0, plan * log_ratio, 0.0))
  return jnp.sum(plan * _squared_distances(x, y)) + entropy_term


def sinkhorn_divergence(*, x: Array, y: Array, epsilon: float, num_iters: int) -> Array:
  """The debiased Sinkhorn divergence, the EMD baseline's objective (Fig. 4).

  ``S_eps(x, y) = OT_eps(x, y) - 1/2 OT_eps(x, x) - 1/2 OT_eps(y, y)`` with
  :func:`entropic_ot` (Genevay et al. 2018; Feydy et al. 2019): unlike the transport
  cost :func:`sinkhorn_cost`, which is positive for ``x = y`` (the entropic plan spreads
  mass), ``S_eps(y, y) = 0`` and ``S_eps >= 0``, so minimising it over ``T`` is minimised
  at ``T(A) = B``; it interpolates between OT (``epsilon -> 0``) and MMD (large
  ``epsilon``).

  Args:
    x: ``(n, d)`` points, e.g. ``T(A)``.
    y: ``(m, d)`` points, e.g. ``B``.
    epsilon: entropic regularisation, ``> 0``.
    num_iters: Sinkhorn iterations of each of the three problems (static).

  Returns:
    Scalar divergence.
  """
  value = functools.partial(entropic_ot, epsilon=epsilon, num_iters=num_iters)
  return value(x=x, y=y) - 0.5 * value(x=x, y=x) - 0.5 * value(x=y, y=y)


def _optimal_assignment(x: np.ndarray, y: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray]:
  """Squared-distance matrix and the optimal permutation ``sigma`` of equal-size sets."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  check_point_sets(x, y, who)
  if x.shape[0] != y.shape[0]:
    raise ValueError(f'{who} supports equal-size sets only (an assignment problem), got '
                     f'{x.shape[0]} and {y.shape[0]} points')
  cost = spatial.distance.cdist(x, y, 'sqeuclidean')
  rows, cols = optimize.linear_sum_assignment(cost)
  return cost, cols[np.argsort(rows)]


def exact_emd(x: np.ndarray, y: np.ndarray) -> float:
  """Exact optimal-transport cost between two equal-size uniform point sets (host side).

  With ``n`` points on each side and uniform weights the optimal plan is a
  permutation (Birkhoff), so ``EMD = min_sigma 1/n sum_i ||x_i - y_sigma(i)||^2``,
  solved exactly by :func:`scipy.optimize.linear_sum_assignment`
  (``O(n^3)``; a second for ``n = 2000``). Only equal sizes are supported;
  subsample the larger set otherwise. Not differentiable; the cost is the
  same squared Euclidean one as :func:`sinkhorn_cost`.

  Args:
    x: ``(n, d)`` points.
    y: ``(n, d)`` points.

  Returns:
    The average squared distance of the optimal matching.
  """
  cost, sigma = _optimal_assignment(x, y, 'exact_emd')
  return float(cost[np.arange(len(sigma)), sigma].mean())


def exact_emd_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """The EMD (optimal transport) alignment of ``x`` onto ``y``: ``T(x_i) = y_sigma(i)``.

  The barycentric projection ``T(x_i) = sum_j P_ij y_j / sum_j P_ij`` of the
  exact optimal plan ``P``; for equal-size uniform sets ``P`` is the
  permutation of :func:`exact_emd`, so each point moves onto its match. The
  map is defined on ``x`` only (no out-of-sample extension), which is how the
  EMD baseline of LRMF's setup 3 transforms the source codes it trains on.

  Args:
    x: ``(n, d)`` source points.
    y: ``(n, d)`` target points.

  Returns:
    ``(n, d)`` transported points, row ``i`` for ``x[i]``.
  """
  _, sigma = _optimal_assignment(x, y, 'exact_emd_map')
  return np.asarray(y)[sigma]


def mmd_particle_map(x: Array, y: Array, *, optimizer: optax.GradientTransformation,
                     num_steps: int,
                     bandwidths: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0)) -> Array:
  """The non-parametric MMD alignment of ``x`` onto ``y``: the points themselves moved.

  LRMF's Fig. 4 compares LRMF with MMD and EMD alignments that its Sec. 4 calls
  "non-parametric models". With no map to fit, the source points are the
  parameters: ``num_steps`` steps of ``optimizer`` (e.g. Adam) on the unbiased
  :func:`mmd_loss` ``MMD_u^2(x, y)`` (kernel ``bandwidths``) with respect to ``x``,
  from ``x`` itself, in one compiled ``lax.scan``. Like :func:`exact_emd_map`, it
  moves only the given points (no out-of-sample extension).

  Args:
    x: ``(n, d)`` source points, e.g. A's test split.
    y: ``(m, d)`` target points.
    optimizer: the optax transformation of the points' gradient (step sizes in the
      data's units).
    num_steps: optimiser steps.
    bandwidths: the Gaussian kernels' length scales.

  Returns:
    ``(n, d)`` moved points, row ``i`` for ``x[i]``.
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  check_point_sets(x, y, 'mmd_particle_map')
  gradient = jax.grad(lambda points: mmd_loss(x=points, y=y, bandwidths=tuple(bandwidths)))

  def step(carry, _):
    points, state = carry
    updates, state = optimizer.update(gradient(points), state, points)
    return (optax.apply_updates(points, updates), state), None

  @jax.jit
  def descend(points):
    (moved, _), _ = jax.lax.scan(step, (points, optimizer.init(points)), None,
                                 length=num_steps)
    return moved

  return descend(x)


def coral_map(x: Array, *, source: Array, target: Array, ridge: float = 1.0) -> Array:
  """CORAL alignment (Sun et al., 2016): match the source's second moments to the target's.

  ``T(x) = (x - mu_s) C_s^{-1/2} C_t^{1/2} + mu_t`` with
  ``C = cov + ridge * I`` (the original algorithm's regularised covariances;
  it whitens and re-colours uncentred, standardised features, here the means
  are matched as well). This is the closed-form affine map that LRMF's setup 3
  compares with (an affine T matching the first two moments, cf. Ex. 2.1).

  Args:
    x: ``(m, d)`` points to transform.
    source: ``(n_s, d)`` source sample (its moments define the whitening).
    target: ``(n_t, d)`` target sample.
    ridge: added to both covariances' diagonals.

  Returns:
    ``(m, d)`` transformed points.
  """
  check_point_sets(source, target, 'coral_map')

  def moments(z):
    mean = jnp.mean(z, axis=0)
    centred = z - mean
    cov = centred.T @ centred / (z.shape[0] - 1) + ridge * jnp.eye(z.shape[1])
    return mean, cov

  def matrix_power(cov, power):
    values, vectors = jnp.linalg.eigh(cov)
    return (vectors * values ** power) @ vectors.T

  mean_s, cov_s = moments(source)
  mean_t, cov_t = moments(target)
  return (x - mean_s) @ matrix_power(cov_s, -0.5) @ matrix_power(cov_t, 0.5) + mean_t
