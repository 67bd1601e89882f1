"""Algorithm 1 of LRMF (Sec. 8.1) for any density family and any flow.

1. Fit private models ``thA`` on A and ``thB`` on B by maximum likelihood to
   convergence (held-out early stopping).
2. Start the shared model ``thS`` from ``thB`` and the flow ``phi`` from its
   initialisation (the ``nflax`` flows start at the identity).
3. Minimise the LRMF objective (Eq. 3) jointly over ``(phi, thS)`` on
   independent minibatches of A and B.
4. Recompute the objective on held-out data, with ``c(A, B)`` from the private
   models on that same data, and flag convergence when it is below ``eps``.

Every stage is one call of a :class:`nflax.fitting.StageRunner`;
:func:`nflax.fitting.fit_runner` is the plain in-memory one, and callers that
checkpoint their stages pass their own. The joint stage optimises the params pytree
``{'flow': phi, 'shared': thS}``; the other collections of both modules
(batch statistics, Glow's ``'constants'``) travel in the fit state's
``model_state`` as ``{collection: {'flow': ..., 'shared': ...}}``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lrmf import losses
from nflax import densities, fitting

Array = jax.Array
PyTree = Any
Variables = Any

_PARTS = ('flow', 'shared')


def joint_variables(flow_variables: Variables, shared_variables: Variables) -> Variables:
  """Variables of the joint stage, ``{collection: {'flow': ..., 'shared': ...}}``.

  Pass them to :func:`nflax.fitting.init_fit_state`: its ``params`` are
  ``{'flow': phi, 'shared': thS}`` and the other collections (batch
  statistics, Glow's ``'constants'``) become the model state that
  :func:`lrmf_objective` expects.
  """
  joined: dict[str, dict[str, PyTree]] = {}
  for part, variables in zip(_PARTS, (flow_variables, shared_variables)):
    for collection, tree in variables.items():
      joined.setdefault(collection, {})[part] = tree
  return joined


def _params_and_state(variables: Variables) -> tuple[PyTree, PyTree]:
  """``(params, model_state)`` of Flax variables, as in :class:`nflax.fitting.FitState`."""
  return variables['params'], {k: v for k, v in variables.items() if k != 'params'}


def _split(params: PyTree, model_state: PyTree) -> tuple[Variables, Variables]:
  """Inverse of :func:`joint_variables`: ``(flow_variables, shared_variables)``."""
  variables = {'params': params, **model_state}
  return tuple({collection: tree[part] for collection, tree in variables.items()
                if part in tree} for part in _PARTS)


def lrmf_objective(*, flow: nn.Module, density: nn.Module, constant: float,
                   eval_batch_size: int = 1024) -> fitting.Objective:
  """The LRMF objective (Eq. 3) as an :class:`nflax.fitting.Objective`.

  Params are ``{'flow': phi, 'shared': thS}``; non-trainable collections of
  either module are the model state ``{collection: {'flow': ..., 'shared':
  ...}}`` (see :func:`joint_variables`).

  * ``train_loss(params, model_state, batch, key)`` on a batch
    ``Independent((a, b))`` is :func:`lrmf.losses.lrmf_loss` with ``constant=0``
    (Eq. 3 without ``c(A, B)``, which has the same gradients) in training mode
    (``mutable=True``: batch statistics of ``T`` are those of ``a``, those of the
    shared model those of ``[T(a); b]``, and the updated collections are the new
    model state); ``key`` is the ``'hutchinson'`` rng.
  * ``eval_loss(params, model_state, Independent((a, b)))`` is the full Eq. 3
    on whole held-out sets in evaluation mode, ``eval_batch_size`` examples at
    a time, plus ``constant``. Held-out sets are too large for one
    :func:`~lrmf.losses.lrmf_loss` call, so Eq. 3 is evaluated as the sum of two
    held-out negative log-likelihoods (:func:`nflax.fitting.nll_objective`):
    ``-E_A[log|det dT(a)/da| + log P_M(T(a); thS)]`` is that of A under the
    flow density ``FlowDensity(flow=T, base=M)`` and ``-log P_M(B; thS)`` that
    of B under ``M``.

  Args:
    flow: the flow ``T`` (an ``nflax`` bijector; forward maps A towards B).
    density: the density family ``M``.
    constant: ``c(A, B)`` on the data the evaluation loss will see
      (:func:`evaluate_constant` with converged private models). Computed on
      other data it shifts the objective, which then no longer sits at 0 at
      alignment and can drift below it.
    eval_batch_size: chunk size of the evaluation.

  Returns:
    The objective.
  """
  nll_a = fitting.nll_objective(densities.FlowDensity(flow=flow, base=density),
                                eval_batch_size=eval_batch_size).eval_loss
  nll_b = fitting.nll_objective(density, eval_batch_size=eval_batch_size).eval_loss

  def train_loss(params, model_state, batch, key):
    a, b = batch.parts
    flow_variables, shared = _split(params, model_state)
    loss, (flow_state, shared_state) = losses.lrmf_loss(
        flow=flow, density=density, flow_variables=flow_variables, shared=shared, a=a, b=b,
        mutable=True, key=key)
    return loss, joint_variables(flow_state, shared_state)

  def eval_loss(params, model_state, data):
    a, b = data.parts
    flow_variables, shared = _split(params, model_state)
    pushforward: dict[str, dict[str, PyTree]] = {}  # FlowDensity's scopes: 'flow', 'base'
    for scope, variables in (('flow', flow_variables), ('base', shared)):
      for collection, tree in variables.items():
        pushforward.setdefault(collection, {})[scope] = tree
    return (nll_a(*_params_and_state(pushforward), a) + nll_b(*_params_and_state(shared), b)
            + constant)

  return fitting.Objective(train_loss, eval_loss)


def _constant_fn(density: nn.Module,
                 batch_size: int) -> Callable[[Variables, Variables, Array, Array], Array]:
  """Traceable ``(private_a, private_b, a, b) -> c(A, B)`` in evaluation mode, in chunks."""
  nll = fitting.nll_objective(density, eval_batch_size=batch_size).eval_loss

  def constant(private_a, private_b, a, b):
    return -nll(*_params_and_state(private_a), a) - nll(*_params_and_state(private_b), b)

  return constant


def evaluate_constant(*, density: nn.Module, private_a: Variables, private_b: Variables,
                      a: Array, b: Array, batch_size: int = 1024) -> float:
  """``c(A, B) = log P_M(A; thA) + log P_M(B; thB)`` of Eq. 3 on whole data sets.

  The same quantity as ``lrmf.losses.lrmf_constant``, compiled and evaluated
  ``batch_size`` examples at a time in evaluation mode (the criterion that
  selected the private models).

  Args:
    density: the density family ``M``.
    private_a: converged variables of the model fitted to A.
    private_b: converged variables of the model fitted to B.
    a: ``(n_a, *event)`` samples of A.
    b: ``(n_b, *event)`` samples of B.
    batch_size: chunk size.

  Returns:
    ``c(A, B)`` as a float.
  """
  constant = _constant_fn(density, batch_size)
  return float(jax.jit(constant)(private_a, private_b, a, b))


def evaluate_objective(*, flow: nn.Module, density: nn.Module, flow_variables: Variables,
                       shared: Variables, private_a: Variables, private_b: Variables,
                       a: Array, b: Array, batch_size: int = 1024) -> float:
  """The full LRMF objective (Eq. 3) of given models on whole data sets ``a``, ``b``.

  ``L = -E_A log|det dT(a)/da| - log P_M(T(A); thS) - log P_M(B; thS) + c(A, B)``
  with ``c(A, B)`` from the private models on the same ``a`` and ``b``, so
  ``L`` is about 0 when ``T(A)`` and ``B`` are indistinguishable for ``M``.
  Use it for the final check of Algorithm 1 and for test-set evaluation.

  Args:
    flow: the flow ``T``.
    density: the density family ``M``.
    flow_variables: variables ``phi``.
    shared: variables ``thS``.
    private_a: converged variables of the model fitted to A.
    private_b: converged variables of the model fitted to B.
    a: ``(n_a, *event)`` samples of A.
    b: ``(n_b, *event)`` samples of B.
    batch_size: chunk size.

  Returns:
    ``L`` as a float.
  """
  constant = _constant_fn(density, batch_size)
  without_constant = lrmf_objective(flow=flow, density=density, constant=0.0,
                                    eval_batch_size=batch_size).eval_loss

  def value(flow_variables, shared, private_a, private_b, a, b):
    joint = _params_and_state(joint_variables(flow_variables, shared))
    return (without_constant(*joint, fitting.Independent((a, b)))
            + constant(private_a, private_b, a, b))

  return float(jax.jit(value)(flow_variables, shared, private_a, private_b, a, b))


def fit_private_model(density: nn.Module, variables: Variables, train: Array, val: Array, *,
                      optimizer: optax.GradientTransformation, num_steps: int,
                      batch_size: int, key: Array, patience: int | None = None,
                      steps_per_dispatch: int = 100, eval_every: int | None = None,
                      callback: fitting.StageCallback | None = None,
                      stage: str = 'private') -> fitting.FitResult:
  """Maximum likelihood ``max_th log P_M(X; th)`` (the private models of Eq. 3, Alg. 1).

  Minimises the negative log-likelihood of ``train`` from ``variables`` and
  keeps the parameters that are best on ``val`` (early stopping after
  ``patience`` evaluations without improvement); the other arguments are
  those of :func:`nflax.fitting.fit_runner`, ``stage`` is passed to the callback.

  Args:
    density: the density family ``M``.
    variables: initial Flax variables of ``density``.
    train: ``(n, *event)`` training samples.
    val: ``(n_val, *event)`` held-out samples.

  Returns:
    The :class:`nflax.fitting.FitResult`; ``params`` / ``model_state`` are the
    best on ``val``.
  """
  runner = fitting.fit_runner(optimizer=optimizer, num_steps=num_steps, batch_size=batch_size,
                      patience=patience, steps_per_dispatch=steps_per_dispatch,
                      eval_every=eval_every, callback=callback)
  return runner(stage, fitting.nll_objective(density), variables, train, val, key)


@dataclasses.dataclass
class LRMFResult:
  """What :func:`train_lrmf` returns.

  Attributes:
    flow_variables: best-on-validation variables ``phi*`` of ``T``.
    shared_variables: best-on-validation variables ``thS*``.
    private_a: converged variables ``thA*``.
    private_b: converged variables ``thB*``.
    objective: the full Eq. 3 on the held-out A and B, with ``c(A, B)`` from
      the private models on that data.
    converged: Algorithm 1's indicator, ``objective < eps``.
    histories: ``{'private_a', 'private_b', 'joint'}`` -> the stage's
      :attr:`nflax.fitting.FitResult.history` (the joint ``val_loss`` is Eq. 3
      on the held-out data).
  """
  flow_variables: Variables
  shared_variables: Variables
  private_a: Variables
  private_b: Variables
  objective: float
  converged: bool
  histories: dict[str, list[dict]]


def _check_data(**arrays: Array) -> None:
  shapes = {}
  for name, x in arrays.items():
    if x.ndim < 2 or x.shape[0] == 0:
      raise ValueError(f'{name} must be a non-empty (n, *event) array, got shape {x.shape}')
    shapes[name] = x.shape[1:]
  if len(set(shapes.values())) != 1:
    raise ValueError(f'A and B must share one event shape (T maps X onto itself), got {shapes}')


def _as_variables(result: fitting.FitResult) -> Variables:
  return {'params': result.params, **result.model_state}


def train_lrmf(*, flow: nn.Module, density: nn.Module, a_train: Array, b_train: Array,
               a_val: Array, b_val: Array, key: Array, eps: float,
               private_runner: fitting.StageRunner, joint_runner: fitting.StageRunner,
               flow_variables: Variables | None = None, init_batch_size: int = 256,
               eval_batch_size: int = 1024) -> LRMFResult:
  """Algorithm 1 (Sec. 8.1): aligns ``T(A)`` with ``B`` with respect to the family ``M``.

  (i) Fits ``thA`` on ``a_train`` and ``thB`` on ``b_train`` by maximum
  likelihood (``private_runner`` with stages ``'private_a'``, ``'private_b'``,
  selected on ``a_val``, ``b_val``); (ii) starts ``thS`` at ``thB`` and ``phi``
  at ``flow_variables`` or the flow's initialisation; (iii) minimises Eq. 3
  jointly over ``(phi, thS)`` (``joint_runner``, stage ``'joint'``, on
  independent minibatches ``Independent((a, b))``; its held-out loss is the
  full Eq. 3 on ``(a_val, b_val)`` with ``c(A, B)`` from the private models on
  that data); (iv) recomputes Eq. 3 on the held-out data at the best
  ``(phi, thS)``; (v) flags convergence when it is below ``eps``.

  Args:
    flow: the flow ``T`` (forward maps A towards B).
    density: the density family ``M`` (private and shared models).
    a_train: ``(n_a, *event)`` training samples of A.
    b_train: ``(n_b, *event)`` training samples of B.
    a_val: ``(m_a, *event)`` held-out samples of A.
    b_val: ``(m_b, *event)`` held-out samples of B.
    key: the run's key.
    eps: convergence threshold on the held-out objective.
    private_runner: runs the two private stages (e.g. :func:`nflax.fitting.fit_runner`).
    joint_runner: runs the joint stage.
    flow_variables: initial ``phi``; by default ``flow.init`` on the first
      ``init_batch_size`` examples of ``a_train``.
    init_batch_size: examples used to initialise the modules (data-dependent
      initialisations such as ActNorm and batch statistics see them).
    eval_batch_size: chunk size of held-out evaluations.

  Returns:
    An :class:`LRMFResult`.

  Raises:
    ValueError: data sets that are empty or have different event shapes.
    nflax.fitting.NonFiniteError: a loss or gradient became NaN/Inf (from the
      default runner).
  """
  a_train, b_train, a_val, b_val = map(jnp.asarray, (a_train, b_train, a_val, b_val))
  _check_data(a_train=a_train, b_train=b_train, a_val=a_val, b_val=b_val)
  if math.isnan(eps):
    raise ValueError('eps must be a number, got NaN')
  key_a, key_b, key_flow, key_fit_a, key_fit_b, key_joint = jax.random.split(key, 6)

  def init(init_fn, x, init_key):
    params_key, probe_key = jax.random.split(init_key)
    return init_fn({'params': params_key, 'hutchinson': probe_key}, x[:init_batch_size])

  init_density = jax.jit(density.init)
  nll = fitting.nll_objective(density, eval_batch_size=eval_batch_size)
  fit_a = private_runner('private_a', nll, init(init_density, a_train, key_a), a_train, a_val,
                         key_fit_a)
  fit_b = private_runner('private_b', nll, init(init_density, b_train, key_b), b_train, b_val,
                         key_fit_b)
  private_a, private_b = _as_variables(fit_a), _as_variables(fit_b)
  if flow_variables is None:
    flow_variables = init(jax.jit(flow.init), a_train, key_flow)
  constant = evaluate_constant(density=density, private_a=private_a, private_b=private_b,
                               a=a_val, b=b_val, batch_size=eval_batch_size)
  objective = lrmf_objective(flow=flow, density=density, constant=constant,
                             eval_batch_size=eval_batch_size)
  fit_joint = joint_runner(
      'joint', objective, joint_variables(flow_variables, private_b),
      fitting.Independent((a_train, b_train)), fitting.Independent((a_val, b_val)), key_joint)
  flow_final, shared_final = _split(fit_joint.params, fit_joint.model_state)
  value = float(fitting.evaluate(fit_joint.params, fit_joint.model_state,
                                 fitting.Independent((a_val, b_val)),
                                 eval_loss=objective.eval_loss))
  return LRMFResult(
      flow_variables=flow_final, shared_variables=shared_final, private_a=private_a,
      private_b=private_b, objective=value, converged=value < eps,
      histories={'private_a': fit_a.history, 'private_b': fit_b.history,
                 'joint': fit_joint.history})
