"""The analytic Gaussian case of LRMF: affine flows and the Gaussian family.

With ``M`` the Gaussian family and ``T`` affine, the LRMF objective (Eq. 3) has
a closed form and its minimiser matches the first two moments of ``T(A)`` to
those of ``B`` (Example 2.1 in 1-D, Sec. 8.3 and Fig. 8 for the multivariate
map ``T(x) = (A^T A) x + b``). These reference solutions are computed in NumPy
float64 (not traceable by JAX); they are what a trained affine Gaussian LRMF
must reach, and :func:`gaussian_variables` turns moments into variables of
:class:`nflax.densities.Gaussian` so the pure losses can be checked against
them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nflax.bijectors import PositiveDefiniteAffine

__all__ = [
    'optimal_affine_1d', 'optimal_affine', 'optimal_affine_variables', 'gaussian_lrmf_objective',
    'gaussian_lrmf_objective_1d', 'gaussian_mle', 'gaussian_variables'
]

ArrayLike = Any

_GAUSSIAN_SCALE_FLOOR = 1e-5  # nflax.densities.Gaussian: diag(L) = softplus(raw) + 1e-5


def _vector(x: ArrayLike, name: str) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 1:
    raise ValueError(f'{name} must be a vector (d,), got shape {x.shape}')
  return x


def _covariance(cov: ArrayLike, dim: int, name: str) -> np.ndarray:
  cov = np.asarray(cov, np.float64)
  if cov.shape != (dim, dim):
    raise ValueError(f'{name} must have shape ({dim}, {dim}), got {cov.shape}')
  if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9):
    raise ValueError(f'{name} is not symmetric')
  if np.linalg.eigvalsh(cov).min() <= 0:
    raise ValueError(f'{name} is not positive definite')
  return cov


def _positive_scale(sigma: float, name: str) -> float:
  if not (math.isfinite(sigma) and sigma > 0):
    raise ValueError(f'{name} must be a positive finite standard deviation, got {sigma}')
  return float(sigma)


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root ``S^{1/2}`` of a symmetric positive-definite ``S``."""
  eigenvalues, eigenvectors = np.linalg.eigh(matrix)
  return (eigenvectors * np.sqrt(eigenvalues)) @ eigenvectors.T


def optimal_affine_1d(mu_a: float, sigma_a: float, mu_b: float,
                      sigma_b: float) -> tuple[float, float]:
  """Minimiser ``(a*, b*)`` of the 1-D affine Gaussian LRMF, Example 2.1.

  ``T(x) = a x + b`` with ``a* = sigma_B / sigma_A`` and ``b* = mu_B - a* mu_A``,
  so that ``T(A)`` has the mean and standard deviation of ``B``. The paper
  prints ``b* = mu_B - mu_A``; that is the same map when ``A`` is centred
  (``mu_A = 0``), and in general only ``b* = mu_B - a* mu_A`` zeroes the mean
  term of :func:`gaussian_lrmf_objective_1d`.

  Args:
    mu_a: mean of A.
    sigma_a: standard deviation of A (> 0).
    mu_b: mean of B.
    sigma_b: standard deviation of B (> 0).

  Returns:
    ``(a*, b*)`` as floats.
  """
  scale = _positive_scale(sigma_b, 'sigma_b') / _positive_scale(sigma_a, 'sigma_a')
  return scale, float(mu_b) - scale * float(mu_a)


def optimal_affine(mean_a: ArrayLike, cov_a: ArrayLike, mean_b: ArrayLike,
                   cov_b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Minimiser ``(M, b)`` of the multivariate affine Gaussian LRMF (Sec. 8.3).

  ``T(x) = M x + b`` with ``M`` symmetric positive definite (the paper's
  ``M = A^T A``). The Gaussian LRMF is minimised when ``T(A)`` has the first
  two moments of ``B`` (Example 2.1, Fig. 8): ``M S M = cov_B`` with
  ``S = cov_A`` and ``M mean_A + b = mean_B``. The unique symmetric
  positive-definite solution is

  ``M = S^{-1/2} (S^{1/2} cov_B S^{1/2})^{1/2} S^{-1/2}``, ``b = mean_B - M mean_A``

  (check: ``M S M = S^{-1/2} (S^{1/2} cov_B S^{1/2}) S^{-1/2} = cov_B``). In
  1-D it reduces to :func:`optimal_affine_1d`. :func:`optimal_affine_variables`
  gives the matching ``A``.

  Args:
    mean_a: ``(d,)`` mean of A.
    cov_a: ``(d, d)`` covariance of A (symmetric positive definite).
    mean_b: ``(d,)`` mean of B.
    cov_b: ``(d, d)`` covariance of B (symmetric positive definite).

  Returns:
    ``M`` of shape ``(d, d)`` and ``b`` of shape ``(d,)`` (float64).
  """
  mean_a, mean_b = _vector(mean_a, 'mean_a'), _vector(mean_b, 'mean_b')
  dim = mean_a.shape[0]
  if mean_b.shape != (dim,):
    raise ValueError(f'mean_b must have shape ({dim},) like mean_a, got {mean_b.shape}')
  cov_a, cov_b = _covariance(cov_a, dim, 'cov_a'), _covariance(cov_b, dim, 'cov_b')
  root_a = _sqrtm_psd(cov_a)
  inverse_root_a = np.linalg.inv(root_a)
  matrix = inverse_root_a @ _sqrtm_psd(root_a @ cov_b @ root_a) @ inverse_root_a
  matrix = (matrix + matrix.T) / 2
  return matrix, mean_b - matrix @ mean_a


def optimal_affine_variables(mean_a: ArrayLike, cov_a: ArrayLike, mean_b: ArrayLike,
                             cov_b: ArrayLike) -> dict[str, Any]:
  """:class:`nflax.bijectors.PositiveDefiniteAffine` variables of the optimum.

  ``A = M^{1/2}`` (the symmetric root, so ``A^T A = A A = M``) and ``b`` from
  :func:`optimal_affine`; arguments as there. Returns
  ``{'params': {'matrix': A (d, d), 'shift': b (d,)}}`` in float32.
  """
  matrix, shift = optimal_affine(mean_a, cov_a, mean_b, cov_b)
  return PositiveDefiniteAffine.make_variables(
      _sqrtm_psd(matrix).astype(np.float32), shift.astype(np.float32))


def gaussian_lrmf_objective(matrix: ArrayLike, shift: ArrayLike, mean_a: ArrayLike,
                            cov_a: ArrayLike, mean_b: ArrayLike, cov_b: ArrayLike) -> float:
  """Eq. 3 for ``T(x) = M x + b``, Gaussian ``M``, at the optimal shared Gaussian.

  With Gaussian private models (their maxima are ``-1/2 log det(2 pi e S)``)
  and the shared Gaussian fitted to the equal mixture of ``T(A)`` and ``B``
  (mean of the two means, covariance ``S_mix``), the objective of Example 2.1
  generalised to ``d`` dimensions is

  ``L = -log|det M| + log det S_mix - 1/2 log det cov_A - 1/2 log det cov_B``,
  ``S_mix = (M cov_A M^T + cov_B) / 2 + delta delta^T / 4``,
  ``delta = M mean_A + b - mean_B``

  (the ``d log(2 pi e)`` terms cancel). ``L >= 0`` with equality iff ``T(A)``
  and ``B`` share mean and covariance.

  Args:
    matrix: ``M``, shape ``(d, d)``, invertible.
    shift: ``b``, shape ``(d,)``.
    mean_a, cov_a, mean_b, cov_b: moments of A and B, shapes ``(d,)`` and
      ``(d, d)``.

  Returns:
    The objective as a float.
  """
  mean_a, mean_b = _vector(mean_a, 'mean_a'), _vector(mean_b, 'mean_b')
  dim = mean_a.shape[0]
  if mean_b.shape != (dim,):
    raise ValueError(f'mean_b must have shape ({dim},) like mean_a, got {mean_b.shape}')
  cov_a, cov_b = _covariance(cov_a, dim, 'cov_a'), _covariance(cov_b, dim, 'cov_b')
  matrix, shift = np.asarray(matrix, np.float64), _vector(shift, 'shift')
  if matrix.shape != (dim, dim) or shift.shape != (dim,):
    raise ValueError(f'matrix and shift must have shapes ({dim}, {dim}) and ({dim},), got '
                     f'{matrix.shape} and {shift.shape}')
  sign, log_abs_det = np.linalg.slogdet(matrix)
  if sign == 0:
    raise ValueError('matrix is singular')
  delta = matrix @ mean_a + shift - mean_b
  mixture = (matrix @ cov_a @ matrix.T + cov_b) / 2 + np.outer(delta, delta) / 4
  return float(-log_abs_det + np.linalg.slogdet(mixture)[1]
               - np.linalg.slogdet(cov_a)[1] / 2 - np.linalg.slogdet(cov_b)[1] / 2)


def gaussian_lrmf_objective_1d(a: float, b: float, mu_a: float, sigma_a: float,
                               mu_b: float, sigma_b: float) -> float:
  """The closed-form objective of Example 2.1 for ``T(x) = a x + b``.

  ``L = -log|a| + log[(a^2 sigma_A^2 + sigma_B^2) / 2 + (a mu_A + b - mu_B)^2 / 4]
  - log sigma_A - log sigma_B``: Eq. 3 with Gaussian private models and the
  shared Gaussian fitted to the equal mixture of ``T(A)`` and ``B``, whose
  variance is the mean of the variances plus the variance of the means. (The
  paper prints ``- (mu_A + b - mu_B)^2 / 4``; the mixture variance needs
  ``+ (a mu_A + b - mu_B)^2 / 4``.) Zero exactly at :func:`optimal_affine_1d`
  and at its mirror image ``a = -a*``, ``b = mu_B + a* mu_A``, the two affine
  maps that give ``T(A)`` the moments of ``B``.

  Args:
    a: slope of ``T`` (non-zero).
    b: offset of ``T``.
    mu_a, sigma_a, mu_b, sigma_b: means and standard deviations (> 0) of A, B.

  Returns:
    The objective as a float.
  """
  if a == 0 or not math.isfinite(a):
    raise ValueError(f'a must be a finite non-zero slope, got {a}')
  sigma_a = _positive_scale(sigma_a, 'sigma_a')
  sigma_b = _positive_scale(sigma_b, 'sigma_b')
  mixture_variance = (a**2 * sigma_a**2 + sigma_b**2) / 2 + (a * mu_a + b - mu_b)**2 / 4
  return (-math.log(abs(a)) + math.log(mixture_variance)
          - math.log(sigma_a) - math.log(sigma_b))


def gaussian_mle(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Maximum-likelihood Gaussian of samples ``x`` of shape ``(n, d)``.

  Returns the sample mean ``(d,)`` and the biased sample covariance
  ``1/n sum_i (x_i - mean)(x_i - mean)^T``, ``(d, d)``, in float64.
  """
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f'x must be (n, d) samples with n >= 2, got shape {x.shape}')
  mean = x.mean(0)
  centred = x - mean
  return mean, centred.T @ centred / x.shape[0]


def gaussian_variables(mean: ArrayLike, covariance: ArrayLike) -> dict[str, Any]:
  """Variables of ``nflax.densities.Gaussian(dim=d)`` (full covariance) for given moments.

  ``Gaussian`` stores ``L`` (``covariance = L L^T``) as ``raw_scale_tril``
  whose strict lower triangle is ``L``'s and whose diagonal ``r`` gives
  ``diag(L) = softplus(r) + 1e-5``; this inverts that map for the Cholesky
  factor of ``covariance``.

  Args:
    mean: ``(d,)``.
    covariance: ``(d, d)`` symmetric positive definite, with Cholesky diagonal
      above ``1e-5``.

  Returns:
    ``{'params': {'mean': (d,), 'raw_scale_tril': (d, d)}}`` in float32.
  """
  mean = _vector(mean, 'mean')
  cholesky = np.linalg.cholesky(_covariance(covariance, mean.shape[0], 'covariance'))
  diagonal = np.diagonal(cholesky) - _GAUSSIAN_SCALE_FLOOR
  if diagonal.min() <= 0:
    raise ValueError('covariance is too close to singular for nflax.densities.Gaussian')
  raw_diagonal = diagonal + np.log(-np.expm1(-diagonal))  # softplus^{-1}
  raw = np.tril(cholesky, -1) + np.diag(raw_diagonal)
  return {'params': {'mean': mean.astype(np.float32), 'raw_scale_tril': raw.astype(np.float32)}}
