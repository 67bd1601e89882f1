"""The LRMF objective and the log-likelihood ratio distance as pure functions.

Notation (LRMF paper, "Notation"): ``log P_M(X; theta) = E_{x~X} log P_M(x;
theta)``, the average log-likelihood of a data set under a member of the
density family ``M``. Densities are ``nflax.densities`` modules (any module
with ``log_prob``), flows are ``nflax.bijectors`` modules whose forward map is
the transformation ``T``. Every function takes Flax variable dicts
(``{'params': ..., ...}``) and batches, so it can be ``jit``-ed, ``vmap``-ed
and differentiated with respect to the parameters inside those dicts.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    'average_log_likelihood', 'lrmf_constant', 'lrmf_loss', 'log_likelihood_ratio_distance'
]

Array = jax.Array
Variables = Any


def average_log_likelihood(*, density: nn.Module, variables: Variables, x: Array) -> Array:
  """``log P_M(X; theta) = 1/n sum_i log P_M(x_i; theta)``; ``x`` is ``(n, *event)``.

  The density's ``log_prob`` must give one value per example, ``(n,)`` (checked).
  """
  log_prob = density.apply(variables, x, method=type(density).log_prob)
  chex.assert_shape(log_prob, (x.shape[0],))
  return jnp.mean(log_prob)


def lrmf_constant(*, density: nn.Module, private_a: Variables, private_b: Variables,
                  a: Array, b: Array) -> Array:
  """The constant of Eq. 3, ``c(A, B) = max_thA log P_M(A; thA) + max_thB log P_M(B; thB)``.

  The maxima are taken by the caller (fit ``private_a`` and ``private_b`` by
  maximum likelihood to convergence); this evaluates them on ``a`` and ``b``.
  For the objective to sit at 0 at alignment, ``c`` must be evaluated on the
  same data (and with the same estimator) as the rest of :func:`lrmf_loss`.

  Args:
    density: the density family ``M``.
    private_a: variables of the model fitted to A.
    private_b: variables of the model fitted to B.
    a: ``(n_a, *event)`` samples of A.
    b: ``(n_b, *event)`` samples of B.

  Returns:
    Scalar ``c(A, B)``.
  """
  return (average_log_likelihood(density=density, variables=private_a, x=a)
          + average_log_likelihood(density=density, variables=private_b, x=b))


def _apply(module: nn.Module, variables: Variables, x: Array, *, method: str, mutable: bool,
           key: Array | None) -> tuple[Any, Variables]:
  """``module.<method>(x)`` and its updated non-``'params'`` collections (``{}`` if none).

  With ``mutable`` every other collection of ``variables`` is mutable (training mode:
  layers with batch statistics use and update those of ``x``); otherwise all are
  read-only and ``{}`` is returned for them. ``key`` is the ``'hutchinson'`` rng.
  """
  rngs = {} if key is None else {'hutchinson': key}
  collections = [name for name in variables if name != 'params'] if mutable else []
  method_fn = getattr(type(module), method)
  if collections:
    return module.apply(variables, x, method=method_fn, mutable=collections, rngs=rngs)
  return module.apply(variables, x, method=method_fn, rngs=rngs), {}


def lrmf_loss(*, flow: nn.Module, density: nn.Module, flow_variables: Variables,
              shared: Variables, a: Array, b: Array, constant: Array | float = 0.0,
              mutable: bool = False, key: Array | None = None
              ) -> Array | tuple[Array, tuple[Variables, Variables]]:
  """The LRMF objective, Eq. 3 (Definition 2.2).

  ``L(A, B, phi, thS) = -E_A log|det dT(a)/da| - log P_M(T(A); thS)
  - log P_M(B; thS) + c(A, B)``.

  With ``constant = c(A, B)`` from :func:`lrmf_constant` the objective is
  about 0 exactly when ``T(A)`` and ``B`` are indistinguishable for ``M``
  (Lemma 2.1, Theorem 2.3) and it upper-bounds the log-likelihood ratio
  distance ``d(T(A), B; M)`` up to the bias term (Eq. 4).

  The shared model scores ``T(a)`` and ``b`` in one call, on their concatenation
  ``[T(a); b]`` (``(n_a + n_b, *event)``): a model with batch statistics in
  training mode (``mutable=True``) normalises with those of the mixture it is
  fitted to. Without batch statistics the value is the same as scoring the two
  sets separately.

  Shapes are checked at trace time (``chex``): ``a`` and ``b`` share their event shape,
  ``T`` keeps the shape of ``a`` and returns a ``(n_a,)`` log-determinant, and the shared
  model returns one log-density per example.

  Args:
    flow: the normalising flow ``T``; its forward maps A towards B.
    density: the density family ``M``.
    flow_variables: variables ``phi`` of ``T``.
    shared: variables ``thS`` of the shared model.
    a: ``(n_a, *event)`` batch of A.
    b: ``(n_b, *event)`` batch of B.
    constant: ``c(A, B)`` (0 gives the objective up to its constant, which has
      the same gradients).
    mutable: training mode, a static Python bool. False: every collection is
      read-only (running averages of batch statistics are used). True: the
      non-``'params'`` collections of ``flow_variables`` and ``shared`` (batch
      statistics, Glow's ``'constants'``) are mutable, and the updated ones are
      returned.
    key: optional ``'hutchinson'`` rng of stochastic trace estimators (FFJORD);
      split between ``T`` and the shared model.

  Returns:
    The scalar objective; with ``mutable=True`` the pair ``(objective,
    (flow_state, shared_state))`` of the updated non-``'params'`` collections of
    ``flow_variables`` and ``shared`` (``{}`` for a model without any).
  """
  # a and b share the event shape; T keeps it and gives one log-det and the shared model
  # one log-density per example (a (n,)-vs-scalar mix-up would broadcast silently).
  chex.assert_equal_rank([a, b])
  chex.assert_equal_shape([a, b], dims=tuple(range(1, a.ndim)))
  key_flow, key_shared = (None, None) if key is None else jax.random.split(key)
  (transformed, log_det), flow_state = _apply(
      flow, flow_variables, a, method='forward_and_log_det', mutable=mutable, key=key_flow)
  chex.assert_equal_shape([transformed, a])
  n_a = a.shape[0]
  chex.assert_shape(log_det, (n_a,))
  log_prob, shared_state = _apply(
      density, shared, jnp.concatenate([transformed, b]), method='log_prob', mutable=mutable,
      key=key_shared)
  chex.assert_shape(log_prob, (n_a + b.shape[0],))
  loss = -jnp.mean(log_det + log_prob[:n_a]) - jnp.mean(log_prob[n_a:]) + constant
  if mutable:
    return loss, (flow_state, shared_state)
  return loss


def log_likelihood_ratio_distance(*, density: nn.Module, private_a: Variables,
                                  private_b: Variables, shared: Variables, a: Array,
                                  b: Array) -> Array:
  """The log-likelihood ratio distance of Definition 2.1 at given models.

  ``d(A, B; M) = [log P_M(A; thA) + log P_M(B; thB)] - [log P_M(A; thS) +
  log P_M(B; thS)]`` where ``thA``, ``thB`` are fitted to A and B alone and
  ``thS`` to their union (the maxima of Definition 2.1 are taken by the
  caller). Non-negative at the optima (Lemma 2.1); 0 iff one shared model fits
  both data sets as well as the private ones.

  Args:
    density: the density family ``M``.
    private_a: variables fitted to A.
    private_b: variables fitted to B.
    shared: variables fitted to A and B together (equal weight per data set).
    a: ``(n_a, *event)`` samples of A.
    b: ``(n_b, *event)`` samples of B.

  Returns:
    Scalar distance.
  """
  return (lrmf_constant(density=density, private_a=private_a, private_b=private_b, a=a, b=b)
          - average_log_likelihood(density=density, variables=shared, x=a)
          - average_log_likelihood(density=density, variables=shared, x=b))
