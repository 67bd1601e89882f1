"""LRMF Example 2.2 / Fig. 7: the vanishing gradient of the shared-model loss (Sec. 8.8).

Data -> compute -> fit -> write:

1. draw the fixed sample ``X ~ M(delta, -delta, sigma0^2)`` (``config.num_samples``);
2. on the grid of ``config.mu_grid_num`` values of ``mu`` from ``config.mu_grid_start`` to
   ``config.mu_grid_stop`` (both included), the autodiff gradient ``dH_n/dmu`` of the
   Monte-Carlo cross-entropy (:func:`lrmf.vanishing_gradient.cross_entropy_grad`)
   and, for comparison, the exact expected gradient by quadrature;
3. fit ``sqrt(-log|dH/dmu|) = a mu + b`` on ``config.fit_range`` (the paper:
   a = 0.6, b = -1.168, R = 0.99996);
4. write ``results.json`` (ours next to the paper's) and the Fig. 7 panels under
   ``plots/``: ``fig7a_sqrt_neg_log_grad.png`` (the line fit) and
   ``fig7bc_grad_vs_fit.png`` (``|dH/dmu|`` against ``exp(-(a mu + b)^2)``,
   linear as Fig. 7(b) and log-scale on the fit range as Fig. 7(c)).

Everything runs in float64 (``jax.enable_x64``): the gradient drops below
float32's smallest normal number (1e-38) near mu = 17, inside the paper's grid.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections
import numpy as np
from absl import logging

from harness import plots, replicas
from harness import workdir as workdir_lib
from lrmf import vanishing_gradient as vg

PAPER = {'a': 0.6, 'b': -1.168, 'r': 0.99996}
"""Sec. 8.8: the fit of ``sqrt(-log|dL/dmu|)`` by ``a mu + b`` and its R."""


def build_models(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``{}``: Example 2.2 computes gradients of a closed-form mixture density; it trains no
  model."""
  del config
  return {}


def _grid_and_fit_mask(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """The ``mu`` grid and the mask of its points inside ``config.fit_range``."""
  grid = (config.mu_grid_start, config.mu_grid_stop, config.mu_grid_num)
  if config.mu_grid_num < 3 or not config.mu_grid_start < config.mu_grid_stop:
    raise ValueError('the mu grid needs mu_grid_start < mu_grid_stop and mu_grid_num >= 3, '
                     f'got (start, stop, num) = {grid}')
  if config.num_samples < 2:
    raise ValueError(f'num_samples must be at least 2, got {config.num_samples}')
  if not config.sigma0 > 0:
    raise ValueError(f'sigma0 must be positive, got {config.sigma0}')
  mus = np.linspace(*grid)
  low, high = config.fit_range
  in_fit = (mus >= low) & (mus <= high)
  if in_fit.sum() < 3:
    raise ValueError(f'fit_range {tuple(config.fit_range)} holds {in_fit.sum()} points of '
                     f'the mu grid (start, stop, num) = {grid}; the line fit needs at least 3')
  return mus, in_fit


def _fit(mus: np.ndarray, grads: np.ndarray, what: str) -> dict[str, float]:
  """``a, b, R`` of ``sqrt(-log|g|) = a mu + b``; ValueError if ``|g|`` is not in (0, 1)."""
  magnitude = np.abs(grads)
  bad = ~((magnitude > 0) & (magnitude < 1) & np.isfinite(magnitude))
  if bad.any():
    raise ValueError(f'{what}: |dH/dmu| must lie in (0, 1) on the fit range to take '
                     f'sqrt(-log|g|); it is {magnitude[bad][:3]} at mu = {mus[bad][:3]}')
  a, b, r = vg.fit_sqrt_neg_log(jnp.asarray(mus), jnp.asarray(grads))
  return {'a': float(a), 'b': float(b), 'r': float(r)}


def _sqrt_neg_log(grads: np.ndarray) -> np.ndarray:
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.sqrt(-np.log(np.abs(grads)))


def plot_line_fit(mus: np.ndarray, grads: np.ndarray, expected: np.ndarray, in_fit: np.ndarray,
                  fit: dict[str, float], path: str) -> str:
  """Fig. 7(a): ``sqrt(-log|dH/dmu|)`` against ``mu`` with the fitted line."""
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(mus, _sqrt_neg_log(grads), 'o', ms=3, label='Monte Carlo (autodiff)')
  ax.plot(mus, _sqrt_neg_log(expected), lw=1, label='exact (quadrature)')
  ax.plot(mus[in_fit], fit['a'] * mus[in_fit] + fit['b'], 'k--',
          label=f"{fit['a']:.4f} mu {fit['b']:+.4f}, R = {fit['r']:.5f}")
  ax.set_xlabel('mu')
  ax.set_ylabel('sqrt(-log |dH/dmu|)')
  ax.set_title('Fig. 7(a): gradient of the shared-model cross-entropy')
  ax.legend()
  return plots.save(fig, path)


def plot_grad_vs_fit(mus: np.ndarray, grads: np.ndarray, in_fit: np.ndarray,
                     fit: dict[str, float], path: str) -> str:
  """Fig. 7(b, c): ``|dH/dmu|`` and ``exp(-(a mu + b)^2)``, linear and log-scale."""
  fitted = np.exp(-(fit['a'] * mus + fit['b'])**2)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for ax, mask, title, scale in ((axes[0], np.ones_like(in_fit), '(b) whole grid', 'linear'),
                                 (axes[1], in_fit, '(c) fit range', 'log')):
    ax.plot(mus[mask], np.abs(grads[mask]), 'o', ms=3, label='|dH/dmu|')
    ax.plot(mus[mask], fitted[mask], 'k--', label='exp(-(a mu + b)^2)')
    ax.set_yscale(scale)
    ax.set_xlabel('mu')
    ax.set_title(f'Fig. 7{title}')
    ax.legend()
  return plots.save(fig, path)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Computes the gradients, fits the line, writes ``results.json`` and the plots.

  Returns (and writes) ``a, b, r`` of the Monte-Carlo fit next to ``paper_a,
  paper_b, paper_r``; ``exact_a, exact_b, exact_r`` of the same fit to the exact
  expected gradient; the large-``mu`` slopes ``population_slope`` and
  ``fixed_sample_slope`` (:func:`lrmf.vanishing_gradient.asymptotic_decay_slopes`);
  ``max_abs_log_residual``, the largest ``|log|g| + (a mu + b)^2|`` on the fit
  range (nats); ``num_fit_points``, ``sample_max``, ``seconds``; and the curves
  ``mu``, ``grad``, ``expected_grad``.
  """
  mus, in_fit = _grid_and_fit_mask(config)
  start = time.time()
  with jax.enable_x64(True):
    x = vg.sample_equal_mixture(jax.random.PRNGKey(replicas.single_seed(config)), config.num_samples,
                                mean1=config.delta, mean2=-config.delta, scale=config.sigma0,
                                dtype=jnp.float64)
    grads = np.asarray(jax.jit(
        lambda m, s: vg.cross_entropy_grad(m, x=s, delta=config.delta, sigma0=config.sigma0)
    )(jnp.asarray(mus), x))
    expected = np.asarray(jax.jit(
        lambda m: vg.expected_cross_entropy_grad(m, delta=config.delta, sigma0=config.sigma0,
                                                 num_points=config.quadrature_points)
    )(jnp.asarray(mus)))
    fit = _fit(mus[in_fit], grads[in_fit], 'Monte-Carlo gradient')
    exact_fit = _fit(mus[in_fit], expected[in_fit], 'exact gradient')
    sample_max = float(jnp.max(x))
  elapsed = time.time() - start
  population_slope, sample_slope = vg.asymptotic_decay_slopes(delta=config.delta,
                                                              sigma0=config.sigma0)
  log_residual = np.log(np.abs(grads[in_fit])) + (fit['a'] * mus[in_fit] + fit['b'])**2
  results = {
      **fit,
      **{f'paper_{k}': v for k, v in PAPER.items()},
      **{f'exact_{k}': v for k, v in exact_fit.items()},
      'population_slope': population_slope,
      'fixed_sample_slope': sample_slope,
      'max_abs_log_residual': float(np.abs(log_residual).max()),
      'num_fit_points': int(in_fit.sum()),
      'sample_max': sample_max,
      'seconds': elapsed,
      'mu': mus,
      'grad': grads,
      'expected_grad': expected,
  }
  logging.info('sqrt(-log|dH/dmu|) = %.4f mu %+.4f, R = %.6f (paper: 0.6 mu - 1.168, '
               'R = 0.99996); exact gradient: %.4f mu %+.4f; %.1f s', fit['a'], fit['b'],
               fit['r'], exact_fit['a'], exact_fit['b'], elapsed)

  def plot():
    out = workdir_lib.plots_dir(workdir)
    plot_line_fit(mus, grads, expected, in_fit, fit,
                  os.path.join(out, 'fig7a_sqrt_neg_log_grad.png'))
    plot_grad_vs_fit(mus, grads, in_fit, fit, os.path.join(out, 'fig7bc_grad_vs_fit.png'))

  return workdir_lib.finish_run(workdir, results, workdir_lib.MetricsLog(workdir), plot=plot)
