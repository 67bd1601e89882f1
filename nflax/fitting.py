"""Gradient-descent fitting of any minibatch objective, through :mod:`nflax.engine`.

The pieces, from the inside out:

* an :class:`Objective` pairs a training loss
  ``train_loss(params, model_state, batch, key) -> (loss, new_model_state)``
  with an evaluation loss ``eval_loss(params, model_state, data) -> scalar``
  over a whole held-out set; :func:`nll_objective` builds the negative
  log-likelihood of a density module, :func:`per_class_nll_objective` the sum
  of such NLLs for one density per class (stacked parameters, one program);
* :class:`GradientStep` is the engine step of one optimiser update on a
  :class:`FitState`;
* :func:`fit` trains every replica of a run (seeds, settings) with the engine:
  scanned dispatches, the NaN guard, evaluation (:class:`HeldOutLoss`), best
  parameters (:func:`params_and_model_state`) and early stopping per replica,
  and :func:`fit_result` selects what it returns; :func:`fit_runner` wraps it
  as a :class:`StageRunner`, the contract multi-stage methods (LRMF, FDRE)
  train through (``harness.stages`` runs the same pieces with checkpoints);
* :func:`evaluate` computes one replica's evaluation loss (jitted);
  :func:`mean_over_batches` averages per-example losses over a large set in
  fixed-size chunks.

Replicated arguments (states, variables, data, keys) carry a leading replica
axis ``R`` on every leaf (:func:`nflax.engine.add_replica_axis` makes one replica).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh

from nflax import engine, parallel

__all__ = [
    'TrainLoss', 'EvalLoss', 'Objective', 'nll_objective', 'per_class_nll_objective', 'FitState',
    'init_fit_state', 'GradientStep', 'HeldOutLoss', 'params_and_model_state', 'map_over_batches',
    'mean_over_batches', 'evaluate', 'FitResult', 'init_fit_run', 'fit_result', 'fit',
    'StageCallback', 'StageRunner', 'fit_runner'
]

Array = jax.Array
PyTree = Any
TrainLoss = Callable[[PyTree, PyTree, PyTree, Array], tuple[Array, PyTree]]
EvalLoss = Callable[[PyTree, PyTree, PyTree], Array]


class Objective(NamedTuple):
  """A minibatch objective.

  Attributes:
    train_loss: ``(params, model_state, batch, key) -> (scalar loss,
      new_model_state)``; ``model_state`` holds non-trainable collections such
      as ``{'batch_stats': ...}`` (``{}`` if none).
    eval_loss: ``(params, model_state, data) -> scalar`` on a whole held-out
      set in evaluation mode (running statistics, no randomness); lower is
      better (it drives best-parameter tracking and early stopping).
  """
  train_loss: TrainLoss
  eval_loss: EvalLoss


def nll_objective(density: nn.Module, eval_batch_size: int = 1024) -> Objective:
  """Negative log-likelihood ``-1/n sum_i log p(x_i; theta)`` of a density module.

  ``density`` is any module with a ``log_prob(x) -> (batch,)`` method
  (:mod:`nflax.densities`). In training calls the model-state collections are
  mutable (batch statistics are used and updated) and the key is available as
  the ``'hutchinson'`` rng (stochastic trace estimators). Evaluation averages
  ``-log p`` over the held-out set ``eval_batch_size`` examples at a time.
  """
  method = type(density).log_prob

  def train_loss(params, model_state, batch, key):
    variables = {'params': params, **model_state}
    rngs = {'hutchinson': key}
    if model_state:
      log_prob, new_state = density.apply(
          variables, batch, method=method, mutable=list(model_state), rngs=rngs)
    else:
      log_prob, new_state = density.apply(variables, batch, method=method, rngs=rngs), {}
    return -jnp.mean(log_prob), new_state

  def eval_loss(params, model_state, data):
    variables = {'params': params, **model_state}
    rngs = {'hutchinson': jax.random.PRNGKey(0)}
    return mean_over_batches(
        lambda batch: -density.apply(variables, batch, method=method, rngs=rngs),
        data, eval_batch_size)

  return Objective(train_loss, eval_loss)


def per_class_nll_objective(density: nn.Module, eval_batch_size: int = 1024) -> Objective:
  """Sum over classes ``c`` of the NLL of class-``c`` data under its own parameters ``theta_c``.

  ``sum_c -1/n sum_i log p(x_ic; theta_c)``: one independent density per class in one
  compiled program (:func:`nll_objective` vmapped over classes). Parameters and model state
  are stacked over classes on their leading axis (e.g. ``jax.vmap(density.init)``); data are
  ``(n, num_classes, *event)``, example ``i`` of every class in row ``i``, so a minibatch of
  rows draws the same number of examples of every class. The gradient with respect to
  ``theta_c`` is that of class ``c``'s NLL alone, so with an elementwise optimiser (Adam)
  training equals training every class's density on its own.
  """
  nll = nll_objective(density, eval_batch_size)

  def train_loss(params, model_state, batch, key):
    losses, states = jax.vmap(nll.train_loss, in_axes=(0, 0, 1, None))(
        params, model_state, batch, key)
    return jnp.sum(losses), states

  def eval_loss(params, model_state, data):
    return jnp.sum(jax.vmap(nll.eval_loss, in_axes=(0, 0, 1))(params, model_state, data))

  return Objective(train_loss, eval_loss)


class FitState(struct.PyTreeNode):
  """A gradient-descent training state; a checkpointable pytree.

  In the engine every leaf carries a leading replica axis (:func:`init_fit_state`).

  Attributes:
    step: number of optimiser steps taken (int32).
    params: trainable parameters.
    model_state: non-trainable collections (``{}`` if none).
    opt_state: optimiser state.
  """
  step: Array
  params: PyTree
  model_state: PyTree
  opt_state: PyTree


def init_fit_state(variables: PyTree, optimizer: optax.GradientTransformation) -> FitState:
  """Replicated :class:`FitState` s from replicated Flax ``variables`` (``{'params': ...}``).

  Every leaf of ``variables`` has a leading replica axis ``R``; the optimiser state is
  initialised per replica.
  """
  if 'params' not in variables:
    raise ValueError("variables must contain a 'params' collection, got "
                     f'{sorted(variables)}')
  params = variables['params']
  count = engine.num_replicas(params)
  return FitState(
      step=jnp.zeros((count,), jnp.int32), params=params,
      model_state={k: v for k, v in variables.items() if k != 'params'},
      opt_state=jax.vmap(optimizer.init)(params))


@dataclasses.dataclass(frozen=True)
class GradientStep:
  """The engine step of gradient descent on ``objective.train_loss`` (one replica).

  ``(state, batch, key) -> (state, metrics)`` with ``metrics`` ``loss``, ``grad_norm``
  and ``update_norm``, the norm of the change applied to the parameters (``new - old``,
  finite exactly when the updated parameters are, which the engine's guard relies on).
  It is taken from the parameters rather than from the optimiser's update, which would
  otherwise be written out a second time each step (see ``benchmarks/RESULTS.md``). A
  frozen dataclass, so equal steps share one compilation.
  """
  objective: Objective
  optimizer: optax.GradientTransformation

  def __call__(self, state: FitState, batch: PyTree, key: Array) -> tuple[FitState, dict]:
    grad_fn = jax.value_and_grad(self.objective.train_loss, has_aux=True)
    (loss, model_state), grads = grad_fn(state.params, state.model_state, batch, key)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, model_state=model_state,
                              opt_state=opt_state)
    change = jax.tree.map(jnp.subtract, params, state.params)
    return new_state, {'loss': loss, 'grad_norm': optax.tree.norm(grads),
                       'update_norm': optax.tree.norm(change)}


@dataclasses.dataclass(frozen=True)
class HeldOutLoss:
  """The engine's ``evaluate(state, data) -> scalar`` of a :class:`FitState` (one replica):
  an :class:`Objective`'s ``eval_loss`` on the whole held-out ``data``. A frozen
  dataclass, so equal evaluations share one compilation."""
  eval_loss: EvalLoss

  def __call__(self, state: FitState, data: PyTree) -> Array:
    return self.eval_loss(state.params, state.model_state, data)


def params_and_model_state(state: FitState) -> tuple[PyTree, PyTree]:
  """The engine's ``snapshot`` of a :class:`FitState`: what best-parameter tracking keeps
  (``run.best == (params, model_state)``)."""
  return state.params, state.model_state


def map_over_batches(per_example: Callable[[PyTree], Array], data: PyTree,
                     batch_size: int) -> Array:
  """``per_example(batch) -> (batch, *shape)`` over all of ``data`` in chunks: ``(n, *shape)``.

  The data set is padded to a multiple of ``batch_size`` (at most ``n``) and mapped with
  ``lax.map`` so memory stays bounded by one chunk; padded examples are dropped.
  """
  n = engine.num_examples(data)
  if n < 1 or batch_size < 1:
    raise ValueError(f'map_over_batches needs examples and batch_size >= 1, got {n} examples '
                     f'and batch_size {batch_size}')
  batch_size = min(batch_size, n)
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  padded = jax.tree.map(
      lambda a: jnp.concatenate([a, jnp.repeat(a[:1], pad, 0)]).reshape(
          (num_batches, batch_size) + a.shape[1:]), data)
  mapped = jax.lax.map(per_example, padded)
  return mapped.reshape((num_batches * batch_size,) + mapped.shape[2:])[:n]


def mean_over_batches(per_example: Callable[[PyTree], Array], data: PyTree,
                      batch_size: int) -> Array:
  """Mean of ``per_example(batch) -> (batch,)`` over ``data``, in chunks
  (:func:`map_over_batches`)."""
  return jnp.mean(map_over_batches(per_example, data, batch_size))


@functools.partial(jax.jit, static_argnames=('eval_loss',))
def evaluate(params: PyTree, model_state: PyTree, data: PyTree, *,
             eval_loss: EvalLoss) -> Array:
  """``eval_loss(params, model_state, data)`` of one replica, compiled."""
  return eval_loss(params, model_state, data)


@dataclasses.dataclass
class FitResult:
  """What :func:`fit` returns; every array has the leading replica axis.

  Attributes:
    params: each replica's best parameters on the validation set (the final ones when no
      validation set was given or ``keep_best`` is off).
    model_state: the model state that goes with ``params``.
    run: the final :class:`nflax.engine.Run` (for resuming or inspection).
    history: one record per dispatch (:class:`nflax.engine.Result`): ``step``, ``loss``,
      ``grad_norm``, ``update_norm`` (``(R,)`` means over the dispatch), ``val_loss``
      ``(R,)`` where evaluated, ``steps_per_sec``.
  """
  params: PyTree
  model_state: PyTree
  run: engine.Run
  history: list[dict]

  @property
  def state(self) -> FitState:
    return self.run.state

  @property
  def stopped_early(self) -> np.ndarray:
    """``(R,)`` whether ``patience`` ended each replica."""
    return np.asarray(parallel.to_host(self.run.stopped))


def init_fit_run(variables: PyTree, optimizer: optax.GradientTransformation) -> engine.Run:
  """The engine's :class:`~nflax.engine.Run` of a fresh fit (best-parameter tracking on)."""
  return engine.init_run(init_fit_state(variables, optimizer), params_and_model_state)


def fit_result(result: engine.Result, val_data: PyTree | None, keep_best: bool) -> FitResult:
  """The :class:`FitResult` of an engine run of :class:`GradientStep`.

  Its ``params`` / ``model_state`` are each replica's best on ``val_data`` (the run's
  ``best``, tracked with :func:`params_and_model_state`) when there was held-out data, the
  run tracked a best and ``keep_best`` is on; the final ones otherwise (for objectives
  whose held-out value is noisy around its optimum, selecting the minimum is biased low).
  """
  final = result.run
  if val_data is None or not keep_best or final.best is None:
    params, model_state = final.state.params, final.state.model_state
  else:
    params, model_state = final.best
  return FitResult(params, model_state, final, result.history)


def fit(objective: Objective, run: engine.Run, train_data: PyTree,
        val_data: PyTree | None = None, *, optimizer: optax.GradientTransformation,
        num_steps: int, batch_size: int, keys: Array, steps_per_dispatch: int = 100,
        eval_every: int | None = None, patience: int | None = None,
        mesh: Mesh | None = None, keep_best: bool = True, name: str = '',
        callback: Callable[[engine.Run, dict], None] | None = None) -> FitResult:
  """Minimises ``objective`` for every replica of ``run`` until ``num_steps`` steps.

  The engine (:func:`nflax.engine.train`) runs :class:`GradientStep`; ``run`` may be
  resumed from a checkpoint (its replicas' ``state.step`` positive), and since batches and
  keys depend only on ``(key, step)`` the result equals an uninterrupted run's.

  Args:
    objective: the losses (:func:`nll_objective` for maximum likelihood).
    run: from :func:`init_fit_run` or a restored checkpoint.
    train_data: replicated training data, leaves ``(R, n, ...)``.
    val_data: replicated held-out data for evaluation, best-parameter tracking and
      early stopping; ``None`` to train blind for ``num_steps``.
    optimizer: the optax transformation the states' ``opt_state`` belong to.
    num_steps: total number of steps.
    batch_size: examples per replica per step, at most the training-set size.
    keys: ``(R, 2)`` the replicas' keys.
    steps_per_dispatch, eval_every, patience, mesh, name, callback: see
      :func:`nflax.engine.train`.
    keep_best: return the parameters with the lowest validation loss, else the last ones
      (:func:`fit_result`).

  Returns:
    A :class:`FitResult`.

  Raises:
    nflax.engine.NonFiniteError: a loss, gradient or update became NaN/Inf.
  """
  result = engine.train(
      GradientStep(objective, optimizer), run, train_data, keys, num_steps=num_steps,
      batch_size=batch_size, val_data=val_data,
      evaluate=None if val_data is None else HeldOutLoss(objective.eval_loss),
      snapshot=params_and_model_state if run.best is not None else None,
      steps_per_dispatch=steps_per_dispatch, eval_every=eval_every, patience=patience,
      mesh=mesh, name=name, stop_on_nonfinite_validation=keep_best, callback=callback)
  return fit_result(result, val_data, keep_best)


StageCallback = Callable[[str, engine.Run, dict], None]
"""``callback(stage, run, record)`` after every dispatch of a stage."""


class StageRunner(Protocol):
  """Runs one named training stage of a multi-stage method; returns its :class:`FitResult`.

  Called as ``runner(stage, objective, variables, train_data, val_data, keys)`` with
  replicated ``variables`` (the starting Flax variables), data and ``(R, 2)`` keys:
  ``stage`` names the stage (e.g. LRMF's ``'private_a'``, ``'private_b'``, ``'joint'``;
  FDRE's ``'flow'``, ``'classifier'``, ``'joint'``), and the result's ``params`` /
  ``model_state`` must be each replica's best on ``val_data``. The runner owns the
  optimiser, step budget, batch size, early stopping and any checkpointing, so methods
  stay free of I/O; :func:`fit_runner` is the plain in-memory one, experiment code
  passes checkpointing runners.
  """

  def __call__(self, stage: str, objective: Objective, variables: PyTree, train_data: PyTree,
               val_data: PyTree, keys: Array) -> FitResult:
    ...


def fit_runner(*, optimizer: optax.GradientTransformation, num_steps: int, batch_size: int,
               patience: int | None = None, steps_per_dispatch: int = 100,
               eval_every: int | None = None,
               callback: StageCallback | None = None) -> StageRunner:
  """A :class:`StageRunner` that calls :func:`fit` from a fresh state.

  Args:
    optimizer: the optax transformation.
    num_steps: step budget of the stage.
    batch_size: examples per step (from each part of :class:`~nflax.engine.Independent`
      data), capped at the size of the training set.
    patience: stop after this many evaluations without improvement on the
      held-out data (``None``: run ``num_steps``).
    steps_per_dispatch: steps compiled into one ``lax.scan``.
    eval_every: evaluation period in steps (default: every dispatch).
    callback: called as ``callback(stage, run, record)`` after every dispatch.

  Returns:
    The runner.
  """

  def run(stage, objective, variables, train_data, val_data, keys):
    on_dispatch = None
    if callback is not None:
      on_dispatch = lambda state, record: callback(stage, state, record)
    return fit(objective, init_fit_run(variables, optimizer), train_data, val_data,
               optimizer=optimizer, num_steps=num_steps,
               batch_size=min(batch_size, engine.num_examples(train_data, replicated=True)),
               keys=keys, steps_per_dispatch=steps_per_dispatch, eval_every=eval_every,
               patience=patience, name=f'[{stage}] ', callback=on_dispatch)

  return run
