"""Step 4 of LRMF's Algorithm 1: Eq. 3 on held-out data, per point, and the convergence flag.

Every held-out form of Eq. 3 is made of the per-point terms of :func:`shared_terms_fn`
(the shared model's part) and each point's private log-density: the joint stage's validation
loss (:func:`lrmf.algorithm.lrmf_objective`), the final check (:func:`objective_terms`,
:func:`held_out_checks`, :func:`convergence_check`) and ``c(A, B)`` (:func:`constant_fn`).
Everything is evaluated in evaluation mode, ``batch_size`` points at a time.

The convergence rule. Algorithm 1 flags convergence when the objective is below ``eps``
(``if L >= eps then failed``): ``converged_algorithm1``, the paper's rule, evaluated here on
the held-out points. That one-sided rule calls a large *negative* value converged, although Eq. 3 is
about 0 at alignment and a value well below 0 only says that the private models fit the
held-out data worse than the shared one (their ``c(A, B)`` is off); and a held-out mean of a
few hundred points can be dominated by a handful of points where a private flow density has
almost no mass (one point at ``-log p = 1467`` moves a 500-point mean by 0.65 nats on its
own). So here the held-out objective is an average of per-point terms
(:func:`objective_terms`) reported with its standard error over the points, and
"converged", the stricter rule of this project, means that its interval ``L +- z SE``
(``z = 1.96``) lies inside ``[-eps, eps]``; the share of the mean that comes from the worst 1% of points is reported
next to it.

Eq. 3 is 0 at alignment only when the family fits ``T(A)`` as well as ``A``. With ``T(A)``
distributed as ``B`` and ``thS = thB``, Eq. 3 equals ``log P_M(A; thA) - log P_M(T(A); thB)
- log|det dT|``, which is ``-E_bias`` of Lemma 2.2 (:func:`bias_fn`): a family that
fits the target set worse than the source (Real NVP's axis-aligned couplings and a rotated
set) leaves the objective above 0 at a perfect alignment, and the flag then stays off. Read
the flag next to the run's E_bias.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nflax import densities, fitting

__all__ = [
    'log_prob_fn', 'shared_terms_fn', 'constant_fn', 'HeldOutCheck', 'objective_terms',
    'held_out_checks', 'convergence_check', 'bias_fn'
]

Array = jax.Array
PyTree = Any
Variables = Any


def log_prob_fn(module: nn.Module, batch_size: int) -> Callable[[Variables, Array], Array]:
  """Traceable ``(variables, x) -> (n,)`` log-densities of ``module`` in evaluation mode,
  ``batch_size`` examples at a time."""
  rngs = {'hutchinson': jax.random.PRNGKey(0)}

  def log_prob(variables, x):
    return fitting.map_over_batches(
        lambda batch: module.apply(variables, batch, method=type(module).log_prob, rngs=rngs),
        x, batch_size)

  return log_prob


def shared_terms_fn(flow: nn.Module, density: nn.Module, batch_size: int
                     ) -> Callable[[Variables, Variables, Array, Array], tuple[Array, Array]]:
  """Traceable ``(flow_variables, shared, a, b) -> (v_A (n_a,), v_B (n_b,))``: the per-point
  terms of Eq. 3 without ``c(A, B)``, in evaluation mode,

  ``v_A(a) = -log|det dT(a)/da| - log P_M(T(a); thS)`` (the negative log-density of ``a``
  under the flow density ``FlowDensity(T, M)``) and ``v_B(b) = -log P_M(b; thS)``.

  Every held-out Eq. 3 of this module is made of these: the joint stage's validation loss
  (:func:`lrmf_objective`) is ``mean(v_A) + mean(v_B) + c``, and the per-point terms of the
  final check (:func:`objective_terms`) add each point's private log-density to them.
  """
  pushforward = log_prob_fn(densities.FlowDensity(flow=flow, base=density), batch_size)
  log_prob = log_prob_fn(density, batch_size)

  def terms(flow_variables, shared, a, b):
    joined: dict[str, dict[str, PyTree]] = {}  # FlowDensity's scopes: 'flow', 'base'
    for scope, variables in (('flow', flow_variables), ('base', shared)):
      for collection, tree in variables.items():
        joined.setdefault(collection, {})[scope] = tree
    return -pushforward(joined, a), -log_prob(shared, b)

  return terms


def constant_fn(density: nn.Module,
                 batch_size: int) -> Callable[[Variables, Variables, Array, Array], Array]:
  """Traceable ``(private_a, private_b, a, b) -> c(A, B)`` of Eq. 3 in evaluation mode, in
  chunks: the mean log-density of each set under its own private model (the same quantity
  as :func:`lrmf.losses.lrmf_constant`)."""
  log_prob = log_prob_fn(density, batch_size)

  def constant(private_a, private_b, a, b):
    return jnp.mean(log_prob(private_a, a)) + jnp.mean(log_prob(private_b, b))

  return constant


class HeldOutCheck(NamedTuple):
  """Algorithm 1's final check on held-out data (:func:`convergence_check`).

  Attributes:
    objective: Eq. 3 on the held-out sets, ``mean(u_A) + mean(u_B)``.
    standard_error: its standard error over the held-out points,
      ``sqrt(var(u_A) / n_A + var(u_B) / n_B)``.
    worst_percent: the part of ``objective`` contributed by the 1% of points with the
      largest ``|u / n|`` (nats).
    converged: ``|objective| + z standard_error <= eps`` (two-sided, with the held-out
      points' uncertainty).
    converged_algorithm1: ``objective < eps``, Algorithm 1's own one-sided rule.
    objective_a: ``mean(u_A)``, A's part of ``objective``: the private model of A against the
      shared model through ``T``.
    objective_b: ``mean(u_B)``, B's part: the private model of B against the shared model,
      which starts at it and trains further on ``T(A)`` and ``B`` (negative: the shared model
      describes these points of B better than B's own maximum-likelihood fit does; on held-out
      points at alignment it does, having been fitted to twice the data).
  """
  objective: float
  standard_error: float
  worst_percent: float
  converged: bool
  converged_algorithm1: bool
  objective_a: float
  objective_b: float


def objective_terms(*, flow: nn.Module, density: nn.Module, flow_variables: Variables,
                    shared: Variables, private_a: Variables, private_b: Variables, a: Array,
                    b: Array, batch_size: int = 1024) -> tuple[Array, Array]:
  """Eq. 3 on whole data sets as per-point terms, ``L = mean(u_A) + mean(u_B)``.

  ``u_A(a) = log P_M(a; thA) - log P_M(T(a); thS) - log|det dT(a)/da|`` and
  ``u_B(b) = log P_M(b; thB) - log P_M(b; thS)``: each point's log-likelihood ratio of
  its private model against the shared model (through ``T`` for A), in evaluation mode.
  Their means add up to the held-out Eq. 3 with ``c(A, B)`` from the private models on
  ``a`` and ``b`` (:func:`shared_terms_fn` gives the shared model's part).

  Returns:
    ``(u_A (n_a,), u_B (n_b,))``.
  """
  terms = jax.jit(_objective_terms_fn(flow, density, batch_size))
  return terms(flow_variables, shared, private_a, private_b, a, b)


def _objective_terms_fn(flow: nn.Module, density: nn.Module, batch_size: int
                        ) -> Callable[..., tuple[Array, Array]]:
  """Traceable ``(flow_variables, shared, private_a, private_b, a, b) -> (u_A, u_B)`` of
  :func:`objective_terms` (vmap it over replicas)."""
  shared_terms = shared_terms_fn(flow, density, batch_size)
  log_prob = log_prob_fn(density, batch_size)

  def terms(flow_variables, shared, private_a, private_b, a, b):
    v_a, v_b = shared_terms(flow_variables, shared, a, b)
    return log_prob(private_a, a) + v_a, log_prob(private_b, b) + v_b

  return terms


def held_out_checks(*, flow: nn.Module, density: nn.Module, flow_variables: Variables,
                    shared: Variables, private_a: Variables, private_b: Variables, a: Array,
                    b: Array, eps: float | np.ndarray,
                    batch_size: int = 1024) -> list[HeldOutCheck]:
  """Algorithm 1's final check of every replica on replicated data, one compiled program.

  :func:`objective_terms` vmapped over the leading replica axis ``R`` of every argument
  (variables and ``a`` ``(R, n_a, *event)``, ``b`` ``(R, n_b, *event)``), then
  :func:`convergence_check` per replica with ``eps`` (a float or ``(R,)``).

  Returns:
    ``R`` :class:`HeldOutCheck`.
  """
  terms_a, terms_b = jax.jit(jax.vmap(_objective_terms_fn(flow, density, batch_size)))(
      flow_variables, shared, private_a, private_b, a, b)
  eps = np.broadcast_to(np.asarray(eps, np.float64), (terms_a.shape[0],))
  return [convergence_check(terms_a[r], terms_b[r], eps[r]) for r in range(len(eps))]


def convergence_check(terms_a: Array, terms_b: Array, eps: float,
                      z: float = 1.96) -> HeldOutCheck:
  """The held-out objective of :func:`objective_terms` with its standard error, the share of
  its worst 1% of points, the two-sided convergence flag and Algorithm 1's one-sided one
  (module docstring)."""
  terms_a, terms_b = np.asarray(terms_a, np.float64), np.asarray(terms_b, np.float64)
  n_a, n_b = len(terms_a), len(terms_b)
  value = float(terms_a.mean() + terms_b.mean())
  variance = (terms_a.var(ddof=1) / n_a if n_a > 1 else 0.0) + (
      terms_b.var(ddof=1) / n_b if n_b > 1 else 0.0)
  contributions = np.concatenate([terms_a / n_a, terms_b / n_b])
  count = max(1, int(np.ceil(0.01 * len(contributions))))
  worst = contributions[np.argsort(-np.abs(contributions))[:count]]
  standard_error = float(np.sqrt(variance))
  return HeldOutCheck(objective=value, standard_error=standard_error,
                      worst_percent=float(worst.sum()),
                      converged=bool(abs(value) + z * standard_error <= float(eps)),
                      converged_algorithm1=bool(value < float(eps)),
                      objective_a=float(terms_a.mean()), objective_b=float(terms_b.mean()))



def bias_fn(flow: nn.Module, density: nn.Module, batch_size: int) -> Callable[..., Array]:
  """Traceable ``(flow_variables, private_a, private_transformed, a) -> gap``: the estimate
  of ``E_bias(A, T, M)`` (Lemma 2.2, Eq. 2) on the samples ``a`` (vmap it over replicas).

  Eq. 2 bounds the best fit of ``M`` to the transformed set by the best fit to ``A``
  moved by the change of variables, up to ``E_bias``:
  ``max log P_M(T(A); thAT) <= max log P_M(A; thA) - log|det dT(A)| + E_bias``. With
  ``thA`` and ``thAT`` fitted by maximum likelihood to ``A`` and to ``T(A)``, the gap
  ``log P_M(T(a); thAT) - log P_M(a; thA) + log|det dT(a)/da|`` averaged over ``a`` is a
  lower estimate of ``E_bias`` (0 when ``M`` fits ``A`` and ``T(A)`` equally well, e.g.
  Gaussians under an affine ``T``); a large value says that the family fits one of them
  worse, and Eq. 4's bound on the likelihood-ratio distance is loose by that much.
  """
  rngs = {'hutchinson': jax.random.PRNGKey(0)}

  def gap(flow_variables, private_a, private_transformed, a):
    def per_example(batch):
      moved, log_det = flow.apply(flow_variables, batch,
                                  method=type(flow).forward_and_log_det, rngs=rngs)
      return (density.apply(private_transformed, moved, method=type(density).log_prob,
                            rngs=rngs)
              - density.apply(private_a, batch, method=type(density).log_prob, rngs=rngs)
              + log_det)
    return fitting.mean_over_batches(per_example, a, batch_size)

  return gap
