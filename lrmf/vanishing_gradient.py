r"""The vanishing LRMF gradient of Example 2.2, simulated as in Sec. 8.8 (Fig. 7).

Setup (LRMF paper, Example 2.2). ``M(m1, m2, s^2)`` is the family of equal
mixtures of two univariate Gaussians with a shared variance,
``P_M(x) = 1/2 N(x; m1, s^2) + 1/2 N(x; m2, s^2)``. The data sets are
``A ~ M(mu + delta, mu - delta, sigma0^2)`` and ``B_mu ~ M(delta, -delta,
sigma0^2)``, the flow is a shift ``T(x; b) = x + b`` (log-determinant 0). For
large ``mu`` the optimal shared model is ``theta* = (mu + b, 0, sigma0^2 +
delta^2)``: one component per data set, each moment-matched to it. The loss is
then, up to a constant, the cross-entropy between ``m1 = M(delta, -delta,
sigma0^2)`` (the law of B) and ``m2(mu + b) = M(mu + b, 0, sigma0^2 +
delta^2)``; the paper claims ``|dL/dmu (b=0, mu)| ~ exp(-mu^2)``.

What is differentiated (Sec. 8.8). With a fixed sample ``X = (x_1..x_n) ~ m1``
(n = 100k), the Monte-Carlo cross-entropy

  ``H_n(mu) = -1/n sum_i log m2(x_i; mu)``,
  ``log m2(x; mu) = logsumexp(log N(x; mu, s^2) - log 2, log N(x; 0, s^2) - log 2)``,
  ``s^2 = sigma0^2 + delta^2``,

is differentiated in ``mu`` by autodiff, and ``sqrt(-log|dH_n/dmu|)`` is fitted
by ``a mu + b`` (paper: a = 0.6, b = -1.168, R = 0.99996).

Ambiguities in the paper's text, and how they are resolved here:

* Sec. 8.8 writes the objective as ``logsumexp_i(log p_i(X; mu) + log 2)``: the
  equal weights give ``- log 2`` (a constant, no effect on the gradient) and
  the average over X is implicit. The average matters: a sum would multiply
  the gradient by n and shift ``log|g|`` by ``log n``, changing ``b``. The
  authors' notebook (``lrmf_gradient_simulation.ipynb``) averages; so do we.
* Example 2.2 writes ``L = -2 H[m1, m2] + C`` (the LRMF loss has two
  cross-entropy terms, T(A) and B, equal by symmetry; the sign reads as a
  typo, since the loss adds cross-entropies). Sec. 8.8 and Fig. 7 use one
  cross-entropy term without the 2; we report ``|dH_n/dmu|``, which is what
  the fitted numbers refer to. ``|dL/dmu| = 2 |dH_n/dmu|`` shifts ``b`` only.
* Sec. 8.8's text says ``-log(|dL/dmu|)`` fits ``a mu + b``; Fig. 7(a) and the
  numbers are for ``sqrt(-log|dL/dmu|)``. ``R`` is Pearson's correlation
  coefficient of that fit (not its square).
* The paper gives neither ``delta``, ``sigma0`` nor the ``mu`` grid. The
  notebook uses delta = 1, sigma0 = 0.5, 100 points of ``mu`` in [4, 20] and
  fits on points 20..79 (``mu`` in about [7.2, 16.8], Fig. 7(c)).
* The decay rate of the Monte-Carlo estimate is not that of the exact
  cross-entropy. The exact gradient ``dH/dmu = E_m1[d/dmu -log m2(x; mu)]``
  decays like ``exp(-delta^2 mu^2 / (2 s^4))`` (slope ``delta / (sqrt(2)
  s^2)`` of ``sqrt(-log|g|)``, 0.566 for the notebook's numbers), while with a
  fixed sample the few largest ``x_i`` dominate once ``mu`` is large and the
  estimate decays like ``exp(-mu^2 / (2 s^2))`` (slope ``1 / (sqrt(2) s)``,
  0.632). The paper's 0.60 falls in the crossover between the two; both are
  ``exp(-c mu^2)``, so the qualitative claim holds either way
  (:func:`expected_cross_entropy_grad`, :func:`asymptotic_decay_slopes`).

Precision: ``|dH/dmu|`` reaches ``1e-38`` (the float32 limit) near mu = 17, so
the functions here follow the dtype of their inputs and callers evaluate them
under ``jax.enable_x64(True)`` for grids beyond that.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy import stats

__all__ = [
    'shared_scale', 'equal_mixture_log_prob', 'sample_equal_mixture', 'cross_entropy',
    'cross_entropy_grad', 'expected_cross_entropy_grad', 'asymptotic_decay_slopes',
    'fit_sqrt_neg_log'
]

Array = jax.Array

_LOG_2 = math.log(2.0)


def _check_positive(name: str, value: Any) -> None:
  """Raises ``ValueError`` if a concrete (non-traced) ``value`` is not > 0."""
  if isinstance(value, (int, float)) and not value > 0:
    raise ValueError(f'{name} must be positive, got {value}')


def shared_scale(*, delta: float, sigma0: float) -> float | Array:
  """Standard deviation ``s = sqrt(sigma0^2 + delta^2)`` of theta* (Example 2.2).

  A single Gaussian moment-matched to ``M(m + delta, m - delta, sigma0^2)``
  has variance ``sigma0^2 + delta^2``.
  """
  _check_positive('sigma0', sigma0)
  return (sigma0**2 + delta**2)**0.5


def equal_mixture_log_prob(x: Array, *, mean1: float | Array, mean2: float | Array,
                           scale: float | Array) -> Array:
  """Log-density of ``M(mean1, mean2, scale^2)`` (Example 2.2).

  ``log P_M(x) = logsumexp(log N(x; mean1, scale^2) - log 2,
  log N(x; mean2, scale^2) - log 2)``.

  Args:
    x: points, any shape.
    mean1: mean of the first component (broadcasts against ``x``).
    mean2: mean of the second component.
    scale: shared standard deviation, > 0.

  Returns:
    ``log P_M(x)``, the shape of ``x`` broadcast with the parameters.
  """
  _check_positive('scale', scale)
  log_components = jnp.stack(jnp.broadcast_arrays(
      stats.norm.logpdf(x, mean1, scale), stats.norm.logpdf(x, mean2, scale)))
  return jax.nn.logsumexp(log_components, axis=0) - _LOG_2


def sample_equal_mixture(key: Array, num_samples: int, *, mean1: float, mean2: float,
                         scale: float, dtype: Any = jnp.float32) -> Array:
  """A sample of ``M(mean1, mean2, scale^2)`` with exactly equal halves.

  The first ``num_samples // 2`` points come from ``N(mean1, scale^2)``, the
  rest from ``N(mean2, scale^2)``, with independent noise (stratified, as in
  the authors' notebook, so the sample mean has no component-count noise).

  Args:
    key: PRNG key.
    num_samples: ``n >= 2``.
    mean1: mean of the first component.
    mean2: mean of the second component.
    scale: shared standard deviation, > 0.
    dtype: floating dtype of the sample (float64 needs ``jax.enable_x64``).

  Returns:
    ``(n,)`` sample.
  """
  if num_samples < 2:
    raise ValueError(f'num_samples must be at least 2, got {num_samples}')
  _check_positive('scale', scale)
  half = num_samples // 2
  z = jax.random.normal(key, (num_samples,), dtype)
  means = jnp.where(jnp.arange(num_samples) < half, mean1, mean2).astype(dtype)
  return means + scale * z


def cross_entropy(mu: Array, *, x: Array, delta: float, sigma0: float) -> Array:
  """Monte-Carlo cross-entropy ``H_n(mu)`` of Sec. 8.8 (one term of Example 2.2's loss).

  ``H_n(mu) = -1/n sum_i log m2(x_i; mu)``, ``m2(mu) = M(mu, 0, sigma0^2 +
  delta^2)`` the shared model theta* at ``b = 0``, ``x`` a fixed sample of
  ``m1 = M(delta, -delta, sigma0^2)``.

  Args:
    mu: scalar mean of the far component (the distance between A and B).
    x: ``(n,)`` fixed sample of ``m1``.
    delta: half-distance between the components of A and of B.
    sigma0: component standard deviation of A and B, > 0.

  Returns:
    Scalar ``H_n(mu)`` in nats.
  """
  if x.ndim != 1:
    raise ValueError(f'x must be a 1-D sample, got shape {x.shape}')
  scale = shared_scale(delta=delta, sigma0=sigma0)
  return -jnp.mean(equal_mixture_log_prob(x, mean1=mu, mean2=0.0, scale=scale))


def cross_entropy_grad(mus: Array, *, x: Array, delta: float, sigma0: float) -> Array:
  """``dH_n/dmu`` by autodiff at every ``mu`` of a grid (Sec. 8.8, Fig. 7).

  ``jax.vmap(jax.grad(cross_entropy))``; the fixed sample ``x`` is shared by
  all grid points. For ``mu`` far from 0 the gradient is positive (moving the
  far component further away loses the little mass it still explains).

  Args:
    mus: ``(m,)`` grid of ``mu``.
    x: ``(n,)`` fixed sample of ``m1``.
    delta: half-distance between the components.
    sigma0: component standard deviation, > 0.

  Returns:
    ``(m,)`` gradients; memory is ``O(m n)``.
  """
  if mus.ndim != 1:
    raise ValueError(f'mus must be a 1-D grid, got shape {mus.shape}')
  grad = jax.grad(lambda mu: cross_entropy(mu, x=x, delta=delta, sigma0=sigma0))
  return jax.vmap(grad)(mus)


def expected_cross_entropy_grad(mus: Array, *, delta: float, sigma0: float,
                                num_points: int = 20001, width: float = 12.0) -> Array:
  """The exact ``dH/dmu = -E_{x~m1}[d/dmu log m2(x; mu)]``, by quadrature.

  ``d/dmu log m2(x; mu) = r(x) (x - mu) / s^2`` with ``r(x)`` the posterior
  weight of the component at ``mu``. The expectation is a trapezoid rule on
  ``num_points`` points of ``[-|delta| - width sigma0, max(|delta| + width
  sigma0, mu)]``, which holds the whole mass of ``m1`` and the tilted peak of
  the integrand (at ``delta + sigma0^2 mu / s^2 < mu``). This is the
  population value the Monte-Carlo estimate of :func:`cross_entropy_grad`
  approximates; its magnitude falls below float32's range near mu = 17.

  Args:
    mus: ``(m,)`` grid of ``mu``.
    delta: half-distance between the components.
    sigma0: component standard deviation, > 0.
    num_points: quadrature points (static).
    width: half-width of the integration range around ``+-delta`` in units of
      ``sigma0``.

  Returns:
    ``(m,)`` gradients.
  """
  if mus.ndim != 1:
    raise ValueError(f'mus must be a 1-D grid, got shape {mus.shape}')
  if num_points < 3:
    raise ValueError(f'num_points must be at least 3, got {num_points}')
  scale = shared_scale(delta=delta, sigma0=sigma0)
  edge = abs(delta) + width * sigma0

  def one(mu):
    x = jnp.linspace(-edge, jnp.maximum(edge, mu), num_points, dtype=mus.dtype)
    density = jnp.exp(equal_mixture_log_prob(x, mean1=delta, mean2=-delta, scale=sigma0))
    log_far = stats.norm.logpdf(x, mu, scale)
    weight = jax.nn.sigmoid(log_far - stats.norm.logpdf(x, 0.0, scale))
    return jnp.trapezoid(density * weight * (mu - x) / scale**2, x)

  return jax.vmap(one)(mus)


def asymptotic_decay_slopes(*, delta: float, sigma0: float) -> tuple[float, float]:
  """Large-``mu`` slopes of ``sqrt(-log|dH/dmu|)`` against ``mu``.

  Population (exact cross-entropy): a Gaussian tilt of ``m1`` gives ``|dH/dmu|
  ~ exp(-delta^2 mu^2 / (2 s^4) + O(mu))``, slope ``|delta| / (sqrt(2) s^2)``.
  Fixed sample: the largest ``x_i`` dominate, ``|dH_n/dmu| ~ exp(-(mu -
  max x)^2 / (2 s^2))``, slope ``1 / (sqrt(2) s)``. ``s^2 = sigma0^2 + delta^2``.

  Returns:
    ``(population_slope, fixed_sample_slope)``.
  """
  scale = shared_scale(delta=delta, sigma0=sigma0)
  return abs(delta) / (math.sqrt(2.0) * scale**2), 1.0 / (math.sqrt(2.0) * scale)


def fit_sqrt_neg_log(mus: Array, grads: Array) -> tuple[Array, Array, Array]:
  """Least-squares line ``sqrt(-log|g|) = a mu + b`` (Fig. 7(a), Sec. 8.8).

  ``y = sqrt(-log|g|)``; ``a = cov(mu, y) / var(mu)``, ``b = mean(y) - a
  mean(mu)``, ``R = cov(mu, y) / sqrt(var(mu) var(y))`` (Pearson's r, as the
  paper's R = 0.99996). A positive ``a`` means ``|g| = exp(-(a mu + b)^2)``:
  super-exponential decay. Needs ``0 < |g| < 1`` at every point, else the
  results are NaN (check them before use).

  Args:
    mus: ``(m,)`` points, ``m >= 3``.
    grads: ``(m,)`` gradients at ``mus`` (sign ignored).

  Returns:
    Scalars ``(a, b, R)``.
  """
  if mus.ndim != 1 or mus.shape != grads.shape:
    raise ValueError(f'mus and grads must be 1-D of one shape, got {mus.shape} and '
                     f'{grads.shape}')
  if mus.shape[0] < 3:
    raise ValueError(f'need at least 3 points to fit a line and its R, got {mus.shape[0]}')
  y = jnp.sqrt(-jnp.log(jnp.abs(grads)))
  dm, dy = mus - jnp.mean(mus), y - jnp.mean(y)
  cov, var_m, var_y = jnp.mean(dm * dy), jnp.mean(dm**2), jnp.mean(dy**2)
  a = cov / var_m
  return a, jnp.mean(y) - a * jnp.mean(mus), cov / jnp.sqrt(var_m * var_y)
