"""The library on its own: LRMF's objective (Eq. 3) under ``jit``, ``grad`` and ``vmap``.

Runs with only the core installed (``pip install . -c requirements/lock.txt``), from any
folder: ``python examples/library_example.py``. A Real NVP flow ``T`` (the identity at
initialisation) maps samples of A towards B; a learnable Gaussian is the shared model.
"""

import jax
import jax.numpy as jnp

from lrmf import losses
from nflax import bijectors, densities

a = jax.random.normal(jax.random.PRNGKey(0), (256, 2)) + 3.0
b = jax.random.normal(jax.random.PRNGKey(1), (256, 2))
flow = bijectors.realnvp(num_blocks=2, hidden=(32, 32))
density = densities.Gaussian(dim=2)
phi = flow.init(jax.random.PRNGKey(2), a)
theta = density.init(jax.random.PRNGKey(3), b)


def objective(phi, theta, a, b):
  """Eq. 3 up to its constant ``c(A, B)``, which has no gradient."""
  return losses.lrmf_loss(flow=flow, density=density, flow_variables=phi, shared=theta,
                          a=a, b=b)


value, grads = jax.jit(jax.value_and_grad(objective))(phi, theta, a, b)
per_replica = jax.vmap(objective, in_axes=(None, None, 0, 0))(
    phi, theta, a.reshape(4, 64, 2), b.reshape(4, 64, 2))
grad_norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
assert jnp.isfinite(value) and jnp.all(jnp.isfinite(per_replica)) and grad_norm > 0
print(f'lrmf_loss {float(value):.3f}  |grad phi| {float(grad_norm):.3f}  per replica',
      ' '.join(f'{float(v):.3f}' for v in per_replica))
