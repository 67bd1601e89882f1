"""Independent oracles that every bijector test applies.

``check_bijector`` verifies, for a module and an input batch:

* the round trip ``inverse(forward(x)) == x`` within float32 tolerance;
* ``log|det J|`` of the forward map equals ``slogdet`` of the dense Jacobian
  computed by ``jax.jacfwd`` (or ``jax.jacrev``) of one sample at a time;
* forward and inverse log-determinants are negatives of each other;
* all of the above with and without ``jax.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def init_variables(module, x, seed=0, method=None):
  """Initialises ``module`` on the batch ``x`` (data-dependent init included), compiled."""
  return jax.jit(lambda key, x: module.init(key, x, method=method))(jax.random.PRNGKey(seed), x)


def normal(shape, seed=0):
  """Standard normal float32 array (drawn by NumPy: no compilation per shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32))


def perturb(variables, seed=1, size=0.3):
  """Adds Gaussian noise of standard deviation ``size`` to every variable."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda v: jnp.asarray(np.asarray(v) + size * rng.standard_normal(v.shape, np.float32)),
      variables)


def dense_log_det(module, variables, x, jacobian=jax.jacfwd):
  """Per-sample ``log|det df/dx|`` from the dense Jacobian; shape ``(batch,)``."""
  event_shape = x.shape[1:]
  size = int(np.prod(event_shape))

  def flat_forward(flat_x):
    y, _ = module.apply(variables, flat_x.reshape((1,) + event_shape),
                        method=type(module).forward_and_log_det)
    return y.reshape(-1)

  def one(xi):
    jac = jacobian(flat_forward)(xi.reshape(-1))
    assert jac.shape == (size, size), jac.shape
    return jnp.linalg.slogdet(jac)[1]

  return jax.jit(jax.vmap(one))(x)


def check_bijector(module, x, variables=None, *, atol=1e-4, rtol=1e-4,
                   log_det_atol=1e-3, jacobian=jax.jacfwd, check_jacobian=True):
  """Asserts the bijector contract for ``module`` on the batch ``x``.

  Returns the variables used, so callers can run further checks.
  """
  if variables is None:
    variables = init_variables(module, x)
  cls = type(module)

  def fwd(v, x):
    return module.apply(v, x, method=cls.forward_and_log_det)

  def inv(v, y):
    return module.apply(v, y, method=cls.inverse_and_log_det)

  for wrap in (lambda f: f, jax.jit):
    y, ld_f = wrap(fwd)(variables, x)
    assert y.shape == x.shape, (y.shape, x.shape)
    assert ld_f.shape == x.shape[:1], ld_f.shape
    x_back, ld_i = wrap(inv)(variables, y)
    np.testing.assert_allclose(x_back, x, atol=atol, rtol=rtol,
                               err_msg='round trip inverse(forward(x)) != x')
    np.testing.assert_allclose(ld_i, -ld_f, atol=log_det_atol, rtol=rtol,
                               err_msg='inverse log-det != -forward log-det')
    assert np.all(np.isfinite(np.asarray(ld_f)))
  if check_jacobian:
    np.testing.assert_allclose(
        ld_f, dense_log_det(module, variables, x, jacobian),
        atol=log_det_atol, rtol=rtol,
        err_msg='log-det != slogdet of the dense Jacobian')
  return variables
