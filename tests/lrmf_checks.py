"""Helpers of the LRMF tests: the affine flow T, the jitted pure losses, Gaussian samples and
their maximum-likelihood fits."""

import jax
import numpy as np

from lrmf import gaussian, losses
from nflax import bijectors

AFFINE = bijectors.PositiveDefiniteAffine()
"""``T(x) = P x + b`` with ``P`` positive definite (the affine T of Example 2.1, Sec. 8.3)."""

# Compiled once per shape: op-by-op execution compiles every primitive.
lrmf_loss = jax.jit(losses.lrmf_loss, static_argnames=('flow', 'density'))
lrmf_constant = jax.jit(losses.lrmf_constant, static_argnames=('density',))


def draw(rng: np.random.Generator, mean, cov, n: int) -> np.ndarray:
  """``(n, d)`` float32 draws of ``N(mean, cov)``."""
  return rng.multivariate_normal(mean, cov, n).astype(np.float32)


def mle_variables(x: np.ndarray) -> dict:
  """Variables of :class:`nflax.densities.Gaussian` at the maximum-likelihood fit to ``x``."""
  return gaussian.gaussian_variables(*gaussian.gaussian_mle(x))
