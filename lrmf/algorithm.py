"""Algorithm 1 of LRMF (Sec. 8.1) for any density family and any flow.

1. Fit private models ``thA`` on A and ``thB`` on B by maximum likelihood to
   convergence (held-out early stopping).
2. Start the shared model ``thS`` from ``thB`` and the flow ``phi`` from its
   initialisation (the ``nflax`` flows start at the identity).
3. Minimise the LRMF objective (Eq. 3) jointly over ``(phi, thS)`` on
   independent minibatches of A and B (optionally from several restarts, the one with the
   lowest Eq. 3 on the training data kept: :func:`train_lrmf`).
4. Recompute the objective on held-out data, with ``c(A, B)`` from the private
   models on that same data, and flag convergence (:func:`convergence_check`).

The convergence rule. Algorithm 1 flags convergence when the held-out objective is below
``eps``. That one-sided rule calls a large *negative* value converged, although Eq. 3 is
about 0 at alignment and a value well below 0 only says that the private models fit the
held-out data worse than the shared one (their ``c(A, B)`` is off); and a held-out mean of a
few hundred points can be dominated by a handful of points where a private flow density has
almost no mass (one point at ``-log p = 1467`` moves a 500-point mean by 0.65 nats on its
own). So here the held-out objective is an average of per-point terms
(:func:`objective_terms`) reported with its standard error over the points, and
"converged" means that its interval ``L +- z SE`` (``z = 1.96``) lies inside
``[-eps, eps]``; the share of the mean that comes from the worst 1% of points is reported
next to it.

Eq. 3 is 0 at alignment only when the family fits ``T(A)`` as well as ``A``. With ``T(A)``
distributed as ``B`` and ``thS = thB``, Eq. 3 equals ``log P_M(A; thA) - log P_M(T(A); thB)
- log|det dT|``, which is ``-E_bias`` of Lemma 2.2 (:func:`_bias_fn`): a family that
fits the target set worse than the source (Real NVP's axis-aligned couplings and a rotated
set) leaves the objective above 0 at a perfect alignment, and the flag then stays off. Read
the flag next to the run's E_bias.

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
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lrmf import losses
from nflax import densities, engine, fitting

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
    :func:`_shared_terms_fn`, the one held-out form of Eq. 3 in this module (held-out sets
    are too large for one :func:`~lrmf.losses.lrmf_loss` call, whose training mode also
    differs: batch statistics of the minibatch).

  Args:
    flow: the flow ``T`` (an ``nflax`` bijector; forward maps A towards B).
    density: the density family ``M``.
    eval_batch_size: chunk size of the evaluation.

  Returns:
    The objective.
  """
  shared_terms = _shared_terms_fn(flow, density, eval_batch_size)

  def train_loss(params, model_state, batch, key):
    a, b = batch.parts
    flow_variables, shared = _split(params, model_state)
    loss, (flow_state, shared_state) = losses.lrmf_loss(
        flow=flow, density=density, flow_variables=flow_variables, shared=shared, a=a, b=b,
        mutable=True, key=key)
    return loss, joint_variables(flow_state, shared_state)

  def eval_loss(params, model_state, data):
    terms_a, terms_b = shared_terms(*_split(params, model_state), data.a, data.b)
    return jnp.mean(terms_a) + jnp.mean(terms_b) + data.constant

  return fitting.Objective(train_loss, eval_loss)


def _log_prob_fn(module: nn.Module, batch_size: int) -> Callable[[Variables, Array], Array]:
  """Traceable ``(variables, x) -> (n,)`` log-densities of ``module`` in evaluation mode,
  ``batch_size`` examples at a time."""
  rngs = {'hutchinson': jax.random.PRNGKey(0)}

  def log_prob(variables, x):
    return fitting.map_over_batches(
        lambda batch: module.apply(variables, batch, method=type(module).log_prob, rngs=rngs),
        x, batch_size)

  return log_prob


def _shared_terms_fn(flow: nn.Module, density: nn.Module, batch_size: int
                     ) -> Callable[[Variables, Variables, Array, Array], tuple[Array, Array]]:
  """Traceable ``(flow_variables, shared, a, b) -> (v_A (n_a,), v_B (n_b,))``: the per-point
  terms of Eq. 3 without ``c(A, B)``, in evaluation mode,

  ``v_A(a) = -log|det dT(a)/da| - log P_M(T(a); thS)`` (the negative log-density of ``a``
  under the flow density ``FlowDensity(T, M)``) and ``v_B(b) = -log P_M(b; thS)``.

  Every held-out Eq. 3 of this module is made of these: the joint stage's validation loss
  (:func:`lrmf_objective`) is ``mean(v_A) + mean(v_B) + c``, and the per-point terms of the
  final check (:func:`objective_terms`) add each point's private log-density to them.
  """
  pushforward = _log_prob_fn(densities.FlowDensity(flow=flow, base=density), batch_size)
  log_prob = _log_prob_fn(density, batch_size)

  def terms(flow_variables, shared, a, b):
    joined: dict[str, dict[str, PyTree]] = {}  # FlowDensity's scopes: 'flow', 'base'
    for scope, variables in (('flow', flow_variables), ('base', shared)):
      for collection, tree in variables.items():
        joined.setdefault(collection, {})[scope] = tree
    return -pushforward(joined, a), -log_prob(shared, b)

  return terms


def _constant_fn(density: nn.Module,
                 batch_size: int) -> Callable[[Variables, Variables, Array, Array], Array]:
  """Traceable ``(private_a, private_b, a, b) -> c(A, B)`` of Eq. 3 in evaluation mode, in
  chunks: the mean log-density of each set under its own private model (the same quantity
  as :func:`lrmf.losses.lrmf_constant`)."""
  log_prob = _log_prob_fn(density, batch_size)

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
    converged: ``|objective| + z standard_error <= eps``.
  """
  objective: float
  standard_error: float
  worst_percent: float
  converged: bool


def objective_terms(*, flow: nn.Module, density: nn.Module, flow_variables: Variables,
                    shared: Variables, private_a: Variables, private_b: Variables, a: Array,
                    b: Array, batch_size: int = 1024) -> tuple[Array, Array]:
  """Eq. 3 on whole data sets as per-point terms, ``L = mean(u_A) + mean(u_B)``.

  ``u_A(a) = log P_M(a; thA) - log P_M(T(a); thS) - log|det dT(a)/da|`` and
  ``u_B(b) = log P_M(b; thB) - log P_M(b; thS)``: each point's log-likelihood ratio of
  its private model against the shared model (through ``T`` for A), in evaluation mode.
  Their means add up to the held-out Eq. 3 with ``c(A, B)`` from the private models on
  ``a`` and ``b`` (:func:`_shared_terms_fn` gives the shared model's part).

  Returns:
    ``(u_A (n_a,), u_B (n_b,))``.
  """
  terms = jax.jit(_objective_terms_fn(flow, density, batch_size))
  return terms(flow_variables, shared, private_a, private_b, a, b)


def _objective_terms_fn(flow: nn.Module, density: nn.Module, batch_size: int
                        ) -> Callable[..., tuple[Array, Array]]:
  """Traceable ``(flow_variables, shared, private_a, private_b, a, b) -> (u_A, u_B)`` of
  :func:`objective_terms` (vmap it over replicas)."""
  shared_terms = _shared_terms_fn(flow, density, batch_size)
  log_prob = _log_prob_fn(density, batch_size)

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
  its worst 1% of points, and the two-sided convergence flag (module docstring)."""
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
                      converged=bool(abs(value) + z * standard_error <= float(eps)))


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
    converged: ``(R,)`` Algorithm 1's indicator, two-sided (:func:`convergence_check`).
    histories: ``{'private_a', 'private_b', 'joint'}`` (and ``'private_transformed'``)
      -> the stage's :attr:`nflax.fitting.FitResult.history` (the joint ``val_loss`` is
      Eq. 3 on the held-out data).
    bias: ``(R,)`` the estimate of ``E_bias`` of Lemma 2.2 on the held-out A
      (:func:`_bias_fn`), or ``None`` when it was not asked for.
    restart_objectives: ``(R, K)`` Eq. 3 on the training sets at the end of every restart
      of the joint stage (the lowest was kept), or ``None`` without restarts.
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
  restart_objectives: np.ndarray | None = None

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
               restarts: int = 1) -> LRMFResult:
  """Algorithm 1 (Sec. 8.1): aligns ``T(A)`` with ``B`` with respect to the family ``M``.

  For every replica (leading axis ``R`` of every array; replicas are independent runs
  trained side by side): (i) fits ``thA`` on ``a_train`` and ``thB`` on ``b_train`` by
  maximum likelihood (``private_runner`` with stages ``'private_a'``, ``'private_b'``,
  selected on ``a_val``, ``b_val``); (ii) starts ``thS`` at ``thB`` and ``phi`` at
  ``flow_variables`` or the flow's initialisation; (iii) minimises Eq. 3 jointly over
  ``(phi, thS)`` (``joint_runner``, stage ``'joint'``, on independent minibatches
  ``Independent((a, b))``; its held-out loss is the full Eq. 3 on ``(a_val, b_val)``
  with ``c(A, B)`` from the private models on that data, :class:`HeldOut`); (iv)
  recomputes Eq. 3 on the held-out data at the best ``(phi, thS)``; (v) flags
  convergence when its interval lies inside ``[-eps, eps]`` (:func:`convergence_check`).

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
      ``'private_transformed'`` of ``private_runner``) and report the estimate of ``E_bias`` (:func:`_bias_fn`).
    restarts: ``K``, restarts of the joint stage per replica (above). Its runner then
      trains ``R K`` replicas, replica ``r``'s restarts at ``r K, ..., r K + K - 1``.

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
  if not isinstance(restarts, (int, np.integer)) or restarts < 1:
    raise ValueError(f'restarts must be a positive integer, got {restarts!r}')
  key_a, key_b, key_flow, key_fit_a, key_fit_b, key_joint = jnp.moveaxis(
      jax.vmap(lambda key: jax.random.split(key, 6))(keys), 1, 0)

  def init(module, x, init_keys):
    def one(init_key, x):
      params_key, probe_key = jax.random.split(init_key)
      return module.init({'params': params_key, 'hutchinson': probe_key}, x[:init_batch_size])
    return jax.jit(jax.vmap(one))(init_keys, x)

  nll = fitting.nll_objective(density, eval_batch_size=eval_batch_size)
  fit_a = private_runner('private_a', nll, init(density, a_train, key_a), a_train, a_val,
                         key_fit_a)
  fit_b = private_runner('private_b', nll, init(density, b_train, key_b), b_train, b_val,
                         key_fit_b)
  private_a, private_b = _as_variables(fit_a), _as_variables(fit_b)
  many = lambda tree: _repeat(tree, restarts)
  if flow_variables is None:
    flow_start = init(flow, many(a_train), _restart_keys(key_flow, restarts))
  else:
    flow_start = many(flow_variables)
  constants = jax.jit(jax.vmap(_constant_fn(density, eval_batch_size)))(
      private_a, private_b, a_val, b_val)
  objective = lrmf_objective(flow=flow, density=density, eval_batch_size=eval_batch_size)
  held_out = HeldOut(a_val, b_val, constants)
  fit_joint = joint_runner(
      'joint', objective, joint_variables(flow_start, many(private_b)),
      engine.Independent((many(a_train), many(b_train))), many(held_out),
      _restart_keys(key_joint, restarts))
  flow_final, shared_final = _split(fit_joint.params, fit_joint.model_state)
  restart_objectives = None
  joint_history = fit_joint.history
  if restarts > 1:
    train_constants = jax.jit(jax.vmap(_constant_fn(density, eval_batch_size)))(
        private_a, private_b, a_train, b_train)
    restart_objectives = jax.jit(jax.vmap(_objective_fn(flow, density, eval_batch_size)))(
        flow_final, shared_final, many(HeldOut(a_train, b_train, train_constants)))
    restart_objectives = np.asarray(restart_objectives, np.float64).reshape(-1, restarts)
    kept = np.argmin(restart_objectives, axis=1)
    flow_final, shared_final = (_keep(tree, kept, restarts) for tree in (flow_final,
                                                                         shared_final))
    joint_history = [_keep_record(record, kept, restarts) for record in joint_history]
  checks = held_out_checks(flow=flow, density=density, flow_variables=flow_final,
                           shared=shared_final, private_a=private_a, private_b=private_b,
                           a=a_val, b=b_val, eps=eps, batch_size=eval_batch_size)
  result = LRMFResult(
      flow_variables=flow_final, shared_variables=shared_final, private_a=private_a,
      private_b=private_b, constant=np.asarray(constants),
      objective=np.array([check.objective for check in checks]),
      objective_se=np.array([check.standard_error for check in checks]),
      converged=np.array([check.converged for check in checks]),
      histories={'private_a': fit_a.history, 'private_b': fit_b.history,
                 'joint': joint_history},
      restart_objectives=restart_objectives)
  if not estimate_bias:
    return result
  move = jax.jit(jax.vmap(lambda variables, x: flow.apply(
      variables, x, method=type(flow).forward, rngs={'hutchinson': jax.random.PRNGKey(0)})))
  moved_train, moved_val = move(flow_final, a_train), move(flow_final, a_val)
  fit_moved = private_runner('private_transformed', nll,
                             init(density, moved_train, key_flow), moved_train, moved_val,
                             jax.vmap(lambda key: jax.random.fold_in(key, 1))(key_fit_a))
  bias = jax.jit(jax.vmap(_bias_fn(flow, density, eval_batch_size)))(
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


def _bias_fn(flow: nn.Module, density: nn.Module, batch_size: int) -> Callable[..., Array]:
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

