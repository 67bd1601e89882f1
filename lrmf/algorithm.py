"""Algorithm 1 of LRMF (Sec. 8.1) for any density family and any flow.

1. Fit private models ``thA`` on A and ``thB`` on B by maximum likelihood to
   convergence (held-out early stopping); the two fits are independent and, where A's and
   B's splits have the same shapes, train side by side as replicas of one stage.
2. Start the shared model ``thS`` from ``thB`` and the flow ``phi`` from its
   initialisation (the ``nflax`` flows start at the identity).
3. Minimise the LRMF objective (Eq. 3) jointly over ``(phi, thS)`` on
   independent minibatches of A and B (optionally from several restarts, the one with the
   lowest Eq. 3 on the training data kept: :func:`train_lrmf`).
4. Recompute the objective on held-out data, with ``c(A, B)`` from the private
   models on that same data, and flag convergence
   (:func:`lrmf.held_out.convergence_check`).

The convergence rule and the held-out terms of step 4 are in :mod:`lrmf.held_out`.

Every array argument of :func:`train_lrmf` carries a leading replica axis ``R``
(independent seeds trained side by side in one program, :mod:`nflax.engine`), and so
does every result. Every stage is one call of a :class:`nflax.fitting.StageRunner`;
:func:`nflax.fitting.fit_runner` is the plain in-memory one, and callers that
checkpoint their stages pass their own. The joint stage optimises the params pytree
``{'flow': phi, 'shared': thS}``; the other collections of both modules
(batch statistics, Glow's ``'constants'``) travel in the fit state's
``model_state`` as ``{collection: {'flow': ..., 'shared': ...}}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lrmf import held_out, losses
from nflax import engine, fitting

__all__ = [
    'joint_variables', 'split_joint_variables', 'HeldOut', 'lrmf_objective', 'LRMFResult',
    'train_lrmf'
]

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


def split_joint_variables(params: PyTree,
                          model_state: PyTree) -> tuple[Variables, Variables]:
  """Inverse of :func:`joint_variables`: ``(flow_variables, shared_variables)`` from the
  joint stage's ``params`` and model state."""
  variables = {'params': params, **model_state}
  return tuple({collection: tree[part] for collection, tree in variables.items()
                if part in tree} for part in _PARTS)


@struct.dataclass
class HeldOut:
  """Held-out sets of the joint stage and the ``c(A, B)`` of the private models on them.

  Attributes:
    a: ``(m_a, *event)`` held-out samples of A.
    b: ``(m_b, *event)`` held-out samples of B.
    constant: ``c(A, B)`` (Eq. 3) of converged private models on exactly ``a`` and ``b``
      (:func:`lrmf.losses.lrmf_constant`), a scalar. Computed on other data it shifts the
      objective, which then no longer sits at 0 at alignment and can drift below it.
  """
  a: Array
  b: Array
  constant: Array


def lrmf_objective(*, flow: nn.Module, density: nn.Module,
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
  * ``eval_loss(params, model_state, HeldOut(a, b, constant))`` is the full Eq. 3
    on whole held-out sets in evaluation mode, ``eval_batch_size`` examples at
    a time, plus ``constant`` (:class:`HeldOut`): the means of the per-point terms of
    :func:`lrmf.held_out.shared_terms_fn`, the one held-out form of Eq. 3 (held-out sets
    are too large for one :func:`~lrmf.losses.lrmf_loss` call, whose training mode also
    differs: batch statistics of the minibatch).

  Args:
    flow: the flow ``T`` (an ``nflax`` bijector; forward maps A towards B).
    density: the density family ``M``.
    eval_batch_size: chunk size of the evaluation.

  Returns:
    The objective.
  """
  shared_terms = held_out.shared_terms_fn(flow, density, eval_batch_size)

  def train_loss(params, model_state, batch, key):
    a, b = batch.parts
    flow_variables, shared = split_joint_variables(params, model_state)
    loss, (flow_state, shared_state) = losses.lrmf_loss(
        flow=flow, density=density, flow_variables=flow_variables, shared=shared, a=a, b=b,
        mutable=True, key=key)
    return loss, joint_variables(flow_state, shared_state)

  def eval_loss(params, model_state, data):
    terms_a, terms_b = shared_terms(*split_joint_variables(params, model_state), data.a,
                                    data.b)
    return jnp.mean(terms_a) + jnp.mean(terms_b) + data.constant

  return fitting.Objective(train_loss, eval_loss)


@dataclasses.dataclass
class LRMFResult:
  """What :func:`train_lrmf` returns; every leaf has the leading replica axis ``R``.

  Attributes:
    flow_variables: best-on-validation variables ``phi*`` of ``T`` (of the kept restart).
    shared_variables: best-on-validation variables ``thS*`` (of the kept restart).
    private_a: converged variables ``thA*``.
    private_b: converged variables ``thB*``.
    constant: ``(R,)`` ``c(A, B)`` of the private models on the held-out A and B.
    objective: ``(R,)`` the full Eq. 3 on the held-out A and B, with ``c(A, B)`` from
      the private models on that data.
    objective_se: ``(R,)`` its standard error over the held-out points.
    converged: ``(R,)`` Algorithm 1's indicator, two-sided
      (:func:`lrmf.held_out.convergence_check`).
    histories: ``{'private_a', 'private_b', 'joint'}`` (and ``'private_transformed'``)
      -> the stage's :attr:`nflax.fitting.FitResult.history` (A's and B's replicas of a
      side-by-side ``'private'`` stage each under their domain's name; the joint
      ``val_loss`` is Eq. 3 on the held-out data).
    bias: ``(R,)`` the estimate of ``E_bias`` of Lemma 2.2 on the held-out A
      (:func:`lrmf.held_out.bias_fn`), or ``None`` when it was not asked for.
    restart_objectives: ``(R, K)`` Eq. 3 on the training sets at the end of every restart
      of the joint stage (the lowest was kept; ``K = 1`` without restarts): the objective
      LRMF Fig. 2 and 9(c) plot over training, with ``c(A, B)`` from the private models on
      the training sets.
  """
  flow_variables: Variables
  shared_variables: Variables
  private_a: Variables
  private_b: Variables
  constant: np.ndarray
  objective: np.ndarray
  objective_se: np.ndarray
  converged: np.ndarray
  histories: dict[str, list[dict]]
  bias: np.ndarray | None = None
  restart_objectives: np.ndarray | None = None  # None only in results built by hand

  def replica(self, index: int) -> 'LRMFResult':
    """Replica ``index`` alone: every field without its leading replica axis."""
    pick = lambda tree: engine.replica(tree, index)
    return dataclasses.replace(
        self, flow_variables=pick(self.flow_variables),
        shared_variables=pick(self.shared_variables), private_a=pick(self.private_a),
        private_b=pick(self.private_b), constant=self.constant[index],
        objective=self.objective[index], objective_se=self.objective_se[index],
        converged=self.converged[index],
        bias=None if self.bias is None else self.bias[index],
        restart_objectives=(None if self.restart_objectives is None
                            else self.restart_objectives[index]))


def _check_data(**arrays: Array) -> None:
  shapes, replicas = {}, {}
  for name, x in arrays.items():
    if x.ndim < 3 or x.shape[1] == 0:
      raise ValueError(f'{name} must be a non-empty (R, n, *event) array (a leading replica '
                       f'axis, then examples), got shape {x.shape}')
    shapes[name], replicas[name] = x.shape[2:], x.shape[0]
  if len(set(shapes.values())) != 1:
    raise ValueError(f'A and B must share one event shape (T maps X onto itself), got {shapes}')
  if len(set(replicas.values())) != 1:
    raise ValueError(f'every data set needs the same number of replicas, got {replicas}')


def _as_variables(result: fitting.FitResult) -> Variables:
  return {'params': result.params, **result.model_state}


def train_lrmf(*, flow: nn.Module, density: nn.Module, a_train: Array, b_train: Array,
               a_val: Array, b_val: Array, keys: Array, eps: float | Array,
               private_runner: fitting.StageRunner, joint_runner: fitting.StageRunner,
               flow_variables: Variables | None = None, init_batch_size: int = 256,
               eval_batch_size: int = 1024, estimate_bias: bool = False,
               restarts: int = 1, private_restarts: int = 1) -> LRMFResult:
  """Algorithm 1 (Sec. 8.1): aligns ``T(A)`` with ``B`` with respect to the family ``M``.

  For every replica (leading axis ``R`` of every array; replicas are independent runs
  trained side by side): (i) fits ``thA`` on ``a_train`` and ``thB`` on ``b_train`` by
  maximum likelihood, selected on ``a_val``, ``b_val`` (``private_runner`` with the one
  stage ``'private'`` that trains both fits side by side when A's and B's training and
  validation sets have the same shapes, replica ``r``'s fits of A and B at rows ``2r`` and
  ``2r + 1``; otherwise two stages ``'private_a'``, ``'private_b'``); (ii) starts ``thS``
  at ``thB`` and ``phi`` at ``flow_variables`` or the flow's initialisation; (iii)
  minimises Eq. 3 jointly over ``(phi, thS)`` (``joint_runner``, stage ``'joint'``, on
  independent minibatches ``Independent((a, b))``; its held-out loss is the full Eq. 3 on
  ``(a_val, b_val)`` with ``c(A, B)`` from the private models on that data,
  :class:`HeldOut`); (iv) recomputes Eq. 3 on the held-out data at the best
  ``(phi, thS)``; (v) flags convergence when its interval lies inside ``[-eps, eps]``
  (:func:`lrmf.held_out.convergence_check`).

  Restarts. Eq. 3 is not convex in ``phi``: from the same private models, data and
  initial ``thS = thB``, some runs of the joint stage fold part of ``T(A)`` onto the wrong
  branch of ``B`` (moons rotated away from the paper's angle) and stay there with Eq. 3 well
  above 0, and whether a run does can change with rounding alone (one seed trained alone or
  beside others). With ``restarts = K > 1`` the joint stage trains ``K`` restarts of
  ``(phi, thS)`` per replica side by side (restart ``k`` draws ``T``'s initialisation and
  its minibatches from ``fold_in(key, k)``; restart 0 draws what the run with ``K = 1``
  draws) and keeps, per replica, the restart with the lowest Eq. 3 on the *training* sets,
  so the held-out values stay unbiased estimates for the kept models. This is the model
  selection that a single objective allows (Sec. 1); the training objectives of all
  restarts are returned (:attr:`LRMFResult.restart_objectives`). Restarts do not help
  where every one of them falls into the same basin.

  Args:
    flow: the flow ``T`` (forward maps A towards B).
    density: the density family ``M`` (private and shared models).
    a_train: ``(R, n_a, *event)`` training samples of A.
    b_train: ``(R, n_b, *event)`` training samples of B.
    a_val: ``(R, m_a, *event)`` held-out samples of A.
    b_val: ``(R, m_b, *event)`` held-out samples of B.
    keys: ``(R, 2)`` the replicas' keys.
    eps: convergence threshold on the held-out objective, a float or ``(R,)`` (one per
      replica).
    private_runner: runs the two private stages (e.g. :func:`nflax.fitting.fit_runner`).
    joint_runner: runs the joint stage.
    flow_variables: initial replicated ``phi``; by default ``flow.init`` on the first
      ``init_batch_size`` examples of each replica's ``a_train``.
    init_batch_size: examples used to initialise the modules (data-dependent
      initialisations such as ActNorm and batch statistics see them).
    eval_batch_size: chunk size of held-out evaluations.
    estimate_bias: also fit ``thAT`` to ``T(A)`` by maximum likelihood (stage
      ``'private_transformed'`` of ``private_runner``) and report the estimate of
      ``E_bias`` (:func:`lrmf.held_out.bias_fn`).
    restarts: ``K``, restarts of the joint stage per replica (above). Its runner then
      trains ``R K`` replicas, replica ``r``'s restarts at ``r K, ..., r K + K - 1``.
    private_restarts: ``J``, restarts of each private fit per replica (initialisation and
      minibatches from ``fold_in(key, j)``, restart 0 the run with ``J = 1``), the one with
      the lowest validation NLL kept: Algorithm 1 needs ``thA``, ``thB`` at the family's
      maximum, since ``c(A, B)`` is computed from them and a private fit that stops short
      of it reads as a negative Eq. 3 once the shared model, trained further, passes it.
      Each private fit then trains ``R J`` replicas, laid out as the joint restarts (side
      by side, the stage ``'private'`` trains ``2 R J``: replica ``r``'s ``J`` restarts of
      A, then its ``J`` of B, at rows ``2 r J + d J + j`` for domain ``d``).

  Returns:
    An :class:`LRMFResult`.

  Raises:
    ValueError: data sets that are empty, differ in event shape or in replicas.
    nflax.engine.NonFiniteError: a loss or gradient became NaN/Inf (from the
      default runner).
  """
  a_train, b_train, a_val, b_val = map(jnp.asarray, (a_train, b_train, a_val, b_val))
  _check_data(a_train=a_train, b_train=b_train, a_val=a_val, b_val=b_val)
  eps = np.asarray(eps, np.float64)
  if np.isnan(eps).any() or eps.ndim > 1 or (eps.ndim == 1 and eps.shape != (a_train.shape[0],)):
    raise ValueError(f'eps must be a number or one per replica, got {eps}')
  if keys.shape != (a_train.shape[0], 2):
    raise ValueError(f'keys must be (R, 2) = ({a_train.shape[0]}, 2), got {keys.shape}')
  for name, value in (('restarts', restarts), ('private_restarts', private_restarts)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f'{name} must be a positive integer, got {value!r}')
  key_a, key_b, key_flow, key_fit_a, key_fit_b, key_joint = jnp.moveaxis(
      jax.vmap(lambda key: jax.random.split(key, 6))(keys), 1, 0)

  def init(module, x, init_keys):
    def one(init_key, x):
      params_key, probe_key = jax.random.split(init_key)
      return module.init({'params': params_key, 'hutchinson': probe_key}, x[:init_batch_size])
    return jax.jit(jax.vmap(one))(init_keys, x)

  nll = fitting.nll_objective(density, eval_batch_size=eval_batch_size)

  def fit_private(stage, x_train, x_val, init_keys, fit_keys):
    """One private stage of ``D`` domains side by side (``x_train``, ``x_val``,
    ``init_keys``, ``fit_keys``: tuples of one entry per domain, same shapes), with
    ``private_restarts`` restarts per replica and domain: per domain, the kept variables
    (lowest validation NLL) and the history of the kept restarts."""
    per_domain = private_restarts * len(x_train)
    replicas = a_train.shape[0]
    more = lambda tree: _repeat(tree, private_restarts)
    joined = lambda trees: engine.interleave_replicas(trees, replicas)
    val = joined([more(x) for x in x_val])
    fitted = private_runner(
        stage, nll,
        joined([init(density, more(x), _restart_keys(keys, private_restarts))
                for x, keys in zip(x_train, init_keys)]),
        joined([more(x) for x in x_train]), val,
        joined([_restart_keys(keys, private_restarts) for keys in fit_keys]))
    variables = _as_variables(fitted)
    if private_restarts > 1:
      val_nll = jax.jit(jax.vmap(lambda v, x: nll.eval_loss(
          v['params'], {k: value for k, value in v.items() if k != 'params'}, x)))(
              variables, val)
      val_nll = np.asarray(val_nll, np.float64).reshape(replicas, per_domain)
    kept = []
    for d in range(len(x_train)):
      best = (np.argmin(val_nll[:, d * private_restarts:(d + 1) * private_restarts], axis=1)
              if private_restarts > 1 else np.zeros(replicas, int))
      rows = d * private_restarts + best  # within the replica's per_domain block
      kept.append((_keep(variables, rows, per_domain),
                   [_keep_record(record, rows, per_domain) for record in fitted.history]))
    return kept

  if a_train.shape == b_train.shape and a_val.shape == b_val.shape:
    # A's and B's fits are independent and shaped alike: one stage trains both side by side.
    (private_a, history_a), (private_b, history_b) = fit_private(
        'private', (a_train, b_train), (a_val, b_val), (key_a, key_b), (key_fit_a, key_fit_b))
  else:
    (private_a, history_a), = fit_private('private_a', (a_train,), (a_val,), (key_a,),
                                          (key_fit_a,))
    (private_b, history_b), = fit_private('private_b', (b_train,), (b_val,), (key_b,),
                                          (key_fit_b,))
  many = lambda tree: _repeat(tree, restarts)
  if flow_variables is None:
    flow_start = init(flow, many(a_train), _restart_keys(key_flow, restarts))
  else:
    flow_start = many(flow_variables)
  constants = jax.jit(jax.vmap(held_out.constant_fn(density, eval_batch_size)))(
      private_a, private_b, a_val, b_val)
  objective = lrmf_objective(flow=flow, density=density, eval_batch_size=eval_batch_size)
  validation = HeldOut(a_val, b_val, constants)
  fit_joint = joint_runner(
      'joint', objective, joint_variables(flow_start, many(private_b)),
      engine.Independent((many(a_train), many(b_train))), many(validation),
      _restart_keys(key_joint, restarts))
  flow_final, shared_final = split_joint_variables(fit_joint.params, fit_joint.model_state)
  joint_history = fit_joint.history
  train_constants = jax.jit(jax.vmap(held_out.constant_fn(density, eval_batch_size)))(
      private_a, private_b, a_train, b_train)
  restart_objectives = jax.jit(jax.vmap(_objective_fn(flow, density, eval_batch_size)))(
      flow_final, shared_final, many(HeldOut(a_train, b_train, train_constants)))
  restart_objectives = np.asarray(restart_objectives, np.float64).reshape(-1, restarts)
  if restarts > 1:
    kept = np.argmin(restart_objectives, axis=1)
    flow_final, shared_final = (_keep(tree, kept, restarts) for tree in (flow_final,
                                                                         shared_final))
    joint_history = [_keep_record(record, kept, restarts) for record in joint_history]
  checks = held_out.held_out_checks(flow=flow, density=density, flow_variables=flow_final,
                           shared=shared_final, private_a=private_a, private_b=private_b,
                           a=a_val, b=b_val, eps=eps, batch_size=eval_batch_size)
  result = LRMFResult(
      flow_variables=flow_final, shared_variables=shared_final, private_a=private_a,
      private_b=private_b, constant=np.asarray(constants),
      objective=np.array([check.objective for check in checks]),
      objective_se=np.array([check.standard_error for check in checks]),
      converged=np.array([check.converged for check in checks]),
      histories={'private_a': history_a, 'private_b': history_b, 'joint': joint_history},
      restart_objectives=restart_objectives)
  if not estimate_bias:
    return result
  move = jax.jit(jax.vmap(lambda variables, x: flow.apply(
      variables, x, method=type(flow).forward, rngs={'hutchinson': jax.random.PRNGKey(0)})))
  moved_train, moved_val = move(flow_final, a_train), move(flow_final, a_val)
  fit_moved = private_runner('private_transformed', nll,
                             init(density, moved_train, key_flow), moved_train, moved_val,
                             jax.vmap(lambda key: jax.random.fold_in(key, 1))(key_fit_a))
  bias = jax.jit(jax.vmap(held_out.bias_fn(flow, density, eval_batch_size)))(
      flow_final, private_a, _as_variables(fit_moved), a_val)
  result.histories['private_transformed'] = fit_moved.history
  return dataclasses.replace(result, bias=np.asarray(bias))


def _repeat(tree: PyTree, restarts: int) -> PyTree:
  """Every leaf's replica ``r`` repeated ``restarts`` times in a row: ``(R, ...) -> (R K, ...)``."""
  if restarts == 1:
    return tree
  return jax.tree.map(lambda leaf: jnp.repeat(leaf, restarts, axis=0), tree)


def _restart_keys(keys: Array, restarts: int) -> Array:
  """``(R, 2) -> (R K, 2)``: restart ``k`` of replica ``r`` gets ``fold_in(keys[r], k)``,
  restart 0 the key itself (so ``K = 1`` is the run without restarts)."""
  if restarts == 1:
    return keys
  def per_replica(key):
    return jnp.stack([key] + [jax.random.fold_in(key, k) for k in range(1, restarts)])
  return jax.vmap(per_replica)(keys).reshape(-1, *keys.shape[1:])


def _keep(tree: PyTree, kept: np.ndarray, restarts: int) -> PyTree:
  """``(R K, ...) -> (R, ...)``: replica ``r``'s restart ``kept[r]``."""
  rows = np.arange(len(kept)) * restarts + kept
  return jax.tree.map(lambda leaf: leaf[rows], tree)


def _keep_record(record: dict, kept: np.ndarray, restarts: int) -> dict:
  """A history record of the joint stage with only the kept restart of every replica (its
  per-replica ``(R K,)`` values become ``(R,)``; scalars such as ``steps_per_sec`` stay)."""
  rows = np.arange(len(kept)) * restarts + kept
  return {name: (np.asarray(value)[rows]
                 if np.ndim(value) == 1 and len(value) == len(kept) * restarts else value)
          for name, value in record.items()}


def _objective_fn(flow: nn.Module, density: nn.Module,
                  batch_size: int) -> Callable[[Variables, Variables, HeldOut], Array]:
  """Traceable ``(flow_variables, shared, HeldOut(a, b, c)) -> Eq. 3`` on whole data sets."""
  objective = lrmf_objective(flow=flow, density=density, eval_batch_size=batch_size)

  def value(flow_variables, shared, data):
    return objective.eval_loss(*_params_and_state(joint_variables(flow_variables, shared)),
                               data)

  return value
