"""Every public pure function gives the same values eagerly, under ``jit``, ``vmap`` and ``pmap``.

Covered: the LRMF losses (:mod:`lrmf.losses`), the AlignFlow losses
(:mod:`alignflow.losses`), the GAN losses (:mod:`nflax.gan`), the f-DRE estimators,
weighting and mutual-information functions (:mod:`fdre`) and ``forward_and_log_det`` /
``inverse_and_log_det`` of the bijectors (affine, element-wise, Real NVP, MAF with batch
norm, a two-level Glow on a tiny image).

The cases live in tests/variant_cases.py. Each case is a function of one pytree of arrays (static settings -- modules, forms, set
sizes, tolerances -- are closed over), an input generator and an *independent* reference
(NumPy/SciPy formulas; for bijectors, the round trip and the log-determinant of the dense
Jacobian), so that a wrong reduction axis or a wrong formula fails in every variant, and a
Python branch on a traced value fails the traced ones:

* ``chex.variants(with_jit, without_jit, with_pmap)``: eager and under ``jit``, the output
  on one input equals its reference (``chex.assert_trees_all_close``); under ``pmap``, 4
  different inputs, one per device, give the 4 references;
* ``vmap``: the function vmapped over the 4 stacked inputs gives the 4 references (the
  per-example loop);
* KMM's non-convergence: an eager call raises, a traced one returns NaN weights.

The ``pmap`` variants need 4 devices, and the device count is fixed when JAX starts. With
fewer (the normal test session: 1 CPU device) they skip here, and
:meth:`VariantsTest.test_subprocess_runs_pmap_on_four_devices` runs them in a subprocess
with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (as ``test_parallel.py``
does), handing it the inputs and references already computed; the rest of the suite keeps
its single device. Run this file with that flag set and everything runs in-process.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import subprocess
import sys
import tempfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from alignflow import losses as alignflow_losses
from fdre import estimators
from lrmf import losses as lrmf_losses
from tests.variant_cases import (BIJECTOR_CASES, FDRE_CASES, GAUSSIAN, LOSS_CASES, LRMF_CASES,
                                 PD_AFFINE, Case, kmm_args, lrmf_args)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_DEVICES = 4
SUBPROCESS_ENV = 'NFLAX_VARIANTS_SUBPROCESS'


CASES = {**LRMF_CASES, **LOSS_CASES, **FDRE_CASES, **BIJECTOR_CASES}
SEEDS = tuple(range(N_DEVICES))

# In the pmap subprocess, the inputs and references the parent computed (a pickle named by
# SUBPROCESS_ENV): the subprocess then compiles the pmapped functions and nothing else.
_PRECOMPUTED = None
if os.environ.get(SUBPROCESS_ENV):
  with open(os.environ[SUBPROCESS_ENV], 'rb') as f:
    _PRECOMPUTED = pickle.load(f)


@functools.lru_cache(maxsize=None)
def _args(name: str, seed: int):
  if _PRECOMPUTED is not None:
    return _PRECOMPUTED['args'][name, seed]
  return CASES[name].make_args(seed)


@functools.lru_cache(maxsize=None)
def _reference(name: str, seed: int):
  if _PRECOMPUTED is not None:
    return _PRECOMPUTED['reference'][name, seed]
  return CASES[name].reference(_args(name, seed))


def _stack(trees):
  return jax.tree.map(lambda *leaves: np.stack([np.asarray(leaf) for leaf in leaves]), *trees)


def _needs_devices(test: parameterized.TestCase) -> None:
  if jax.device_count() < N_DEVICES:
    test.skipTest(f'needs {N_DEVICES} devices, have {jax.device_count()}: run by '
                  'test_subprocess_runs_pmap_on_four_devices')


def _assert_close(got, expected, case: Case) -> None:
  chex.assert_trees_all_equal_structs(got, expected)
  chex.assert_trees_all_close(got, expected, atol=case.atol, rtol=case.rtol)


class VariantsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
  @parameterized.named_parameters(*[(name, name) for name in CASES])
  def test_values(self, name):
    """Eager and jit: seed 0 against its reference. pmap: seeds 0-3, one per device."""
    case = CASES[name]
    if self.variant.type == chex.ChexVariantType.WITH_PMAP:
      _needs_devices(self)
    with jax.enable_x64(case.x64):
      if self.variant.type == chex.ChexVariantType.WITH_PMAP:
        run = self.variant(case.fn, broadcast_args_to_devices=False, reduce_fn=None,
                           n_devices=N_DEVICES)
        got = run(_stack([_args(name, seed) for seed in SEEDS]))
        chex.assert_tree_shape_prefix(got, (N_DEVICES,))
        _assert_close(got, _stack([_reference(name, seed) for seed in SEEDS]), case)
      else:
        _assert_close(self.variant(case.fn)(_args(name, 0)), _reference(name, 0), case)

  @parameterized.named_parameters(*[(name, name) for name in CASES])
  def test_vmap_matches_the_per_example_references(self, name):
    """The function vmapped over 4 stacked inputs equals the loop of their references."""
    case = CASES[name]
    with jax.enable_x64(case.x64):
      got = jax.jit(jax.vmap(case.fn))(_stack([_args(name, seed) for seed in SEEDS]))
    chex.assert_tree_shape_prefix(got, (N_DEVICES,))
    _assert_close(got, _stack([_reference(name, seed) for seed in SEEDS]), case)

  @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
  def test_kmm_non_convergence_raises_eagerly_and_is_nan_when_traced(self):
    """Eager: RuntimeError. Traced: NaN weights; under vmap only for the unconverged problem."""
    if self.variant.type == chex.ChexVariantType.WITH_PMAP:
      _needs_devices(self)
    hard = kmm_args(0)
    hard = dict(source=hard['source'], target=hard['target'][:8])  # vmap needs equal shapes
    settings = dict(kernel_gamma=0.5, bound=3.0, tol=1e-12, max_iterations=5)
    weights = lambda p: estimators.kmm_weights(source=p['source'], target=p['target'],
                                               **settings)
    run = self.variant(weights, n_devices=N_DEVICES)
    with jax.enable_x64(True):
      if self.variant.type == chex.ChexVariantType.WITHOUT_JIT:
        with pytest.raises(RuntimeError, match='KMM did not converge'):
          run(hard)
        # target == source: the start beta = 1 is the optimum (zero gradient, zero duality
        # gap), converged at once
        easy = dict(source=hard['source'], target=hard['source'])
        batched = np.asarray(jax.vmap(weights)(_stack([easy, hard])))
        np.testing.assert_allclose(batched[0], np.ones(8), atol=1e-6)
        assert np.all(np.isnan(batched[1])), batched
      else:
        got = np.asarray(run(hard))
        chex.assert_shape(got, (8,))
        assert np.all(np.isnan(got)), got

  def test_shape_assertions_catch_misuse(self):
    """Shape checks at the public boundaries reject inputs that would broadcast silently."""
    p = lrmf_args(0)
    with pytest.raises(AssertionError):  # a (batch,) log-likelihood where a scalar belongs
      alignflow_losses.hybrid_loss(gan_a=0.0, gan_b=0.0, log_likelihood_a=jnp.zeros(4),
                                   log_likelihood_b=0.0, lam_a=1.0, lam_b=1.0)
    with pytest.raises(AssertionError):  # a and b of different event shapes
      lrmf_losses.lrmf_loss(flow=PD_AFFINE, density=GAUSSIAN, flow_variables=p['flow'],
                            shared=p['shared'], a=p['a'], b=jnp.zeros((5, 3)))
    with pytest.raises(AssertionError):  # alpha of another number of centres
      estimators.kliep_log_ratio(p['a'], centers=p['b'], alpha=jnp.ones(4), kernel_gamma=1.0)
    with pytest.raises(AssertionError):  # beta of another length than the source
      estimators.kmm_objective(jnp.ones(5), source=p['a'], target=p['b'], kernel_gamma=1.0)

  def test_subprocess_runs_pmap_on_four_devices(self):
    """The pmap variants above, in a fresh process that has 4 virtual CPU devices."""
    if _PRECOMPUTED is not None or jax.device_count() >= N_DEVICES:
      self.skipTest('the pmap variants run in this process')
    precomputed = dict(
        args={(name, seed): jax.device_get(_args(name, seed)) for name in CASES for seed in SEEDS},
        reference={(name, seed): jax.device_get(_reference(name, seed))
                   for name in CASES for seed in SEEDS})
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'precomputed.pkl')
      with open(path, 'wb') as f:
        pickle.dump(precomputed, f)
      env = dict(os.environ, JAX_PLATFORMS='cpu', **{SUBPROCESS_ENV: path})
      env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count='
                          f'{N_DEVICES}').strip()
      out = subprocess.run(
          [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-p', 'no:xdist',
           os.path.abspath(__file__), '-k', 'with_pmap'],
          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ''
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    passed = re.search(r'(\d+) passed', summary)
    # each case's pmap variant and the KMM non-convergence one, none skipped
    assert passed and int(passed.group(1)) == len(CASES) + 1, summary
    assert 'skipped' not in summary and 'failed' not in summary, summary
