"""Maximum-likelihood fitting (and any other minibatch objective) in pure JAX.

The pieces, from the inside out:

* an :class:`Objective` pairs a training loss
  ``train_loss(params, model_state, batch, key) -> (loss, new_model_state)``
  with an evaluation loss ``eval_loss(params, model_state, data) -> scalar``
  over a whole held-out set; :func:`nll_objective` builds the negative
  log-likelihood of a density module, :func:`per_class_nll_objective` the sum
  of such NLLs for one density per class (stacked parameters, one program);
* :func:`train_steps` runs several optimiser steps in one compiled
  ``lax.scan`` (one dispatch), drawing each batch from the replicated data set
  with keys derived by ``fold_in(key, step)``, so a resumed run reproduces an
  uninterrupted one exactly; :class:`Independent` data sets (e.g. the two
  domains of an alignment problem) are sampled independently;
* :func:`evaluate` computes the evaluation loss (jitted);
  :func:`mean_over_batches` averages per-example losses over a large set in
  fixed-size chunks;
* :func:`fit` is the host loop: dispatch, evaluate, keep the best parameters,
  stop early after ``patience`` evaluations without improvement, call a
  callback (checkpointing, logging) and return a history.

Every piece works on a :class:`FitState`, a pytree that can be checkpointed.
A non-finite loss or gradient halts the scan before the bad update is applied;
:func:`fit` then raises :class:`NonFiniteError` and the state it carries is the
last good one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import logging
from flax import struct
from jax.sharding import Mesh

from nflax import parallel

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
  """Everything a training run needs to continue; a checkpointable pytree.

  Attributes:
    step: number of optimiser steps taken (int32 scalar).
    params: trainable parameters.
    model_state: non-trainable collections (``{}`` if none).
    opt_state: optimiser state.
    best_params: parameters at the lowest validation loss seen so far.
    best_model_state: model state that goes with ``best_params``.
    best_val_loss: lowest validation loss so far (``+inf`` before any).
    evals_since_best: evaluations since ``best_val_loss`` last improved.
    halted: set when a non-finite loss or gradient stopped the scan.
  """
  step: Array
  params: PyTree
  model_state: PyTree
  opt_state: PyTree
  best_params: PyTree
  best_model_state: PyTree
  best_val_loss: Array
  evals_since_best: Array
  halted: Array


def init_fit_state(variables: PyTree, optimizer: optax.GradientTransformation) -> FitState:
  """A fresh :class:`FitState` from Flax ``variables`` (``{'params': ...}``)."""
  if 'params' not in variables:
    raise ValueError("variables must contain a 'params' collection, got "
                     f'{sorted(variables)}')
  params = variables['params']
  model_state = {k: v for k, v in variables.items() if k != 'params'}
  return FitState(
      step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
      opt_state=optimizer.init(params), best_params=params,
      best_model_state=model_state, best_val_loss=jnp.array(jnp.inf, jnp.float32),
      evals_since_best=jnp.zeros((), jnp.int32), halted=jnp.zeros((), bool))


@struct.dataclass
class Independent:
  """Data sets sampled independently of each other, ``batch_size`` from each.

  ``Independent((a, b))`` as training data gives each step the batch
  ``Independent((a_batch, b_batch))``; ``a`` and ``b`` may differ in size,
  and each is drawn from its own epoch permutations.
  """
  parts: tuple


def _num_examples(data: PyTree) -> int:
  if isinstance(data, Independent):
    return min(_num_examples(part) for part in data.parts)
  sizes = {leaf.shape[0] for leaf in jax.tree.leaves(data)}
  if len(sizes) != 1:
    raise ValueError(f'all arrays of a data set need the same leading size, got {sizes}')
  return sizes.pop()


def batch_at(data: PyTree, step: Array, key: Array, batch_size: int) -> PyTree:
  """The minibatch of ``step``: epochs are fresh permutations of the data.

  Epoch ``e = step // (n // batch_size)`` uses the permutation drawn from
  ``fold_in(key, e)``; the remainder of each permutation is dropped. The
  parts of :class:`Independent` data are drawn with keys ``fold_in(key, part)``.
  """
  if isinstance(data, Independent):
    return Independent(tuple(
        batch_at(part, step, jax.random.fold_in(key, index), batch_size)
        for index, part in enumerate(data.parts)))
  n = _num_examples(data)
  steps_per_epoch = n // batch_size
  epoch, position = jnp.divmod(step, steps_per_epoch)
  order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
  idx = jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)
  return jax.tree.map(lambda a: a[idx], data)


@functools.partial(jax.jit, static_argnames=(
    'train_loss', 'optimizer', 'batch_size', 'num_steps', 'mesh'))
def train_steps(state: FitState, data: PyTree, key: Array, *, train_loss: TrainLoss,
                optimizer: optax.GradientTransformation, batch_size: int,
                num_steps: int, mesh: Mesh | None = None) -> tuple[FitState, dict]:
  """Runs ``num_steps`` optimiser steps in one ``lax.scan``.

  Args:
    state: the state to continue from.
    data: the training set, a pytree of arrays with a common leading axis n.
    key: the run's key; step ``s`` draws its batch from ``fold_in(key_data,
      epoch)`` and its loss randomness from ``fold_in(key_loss, s)``.
    train_loss: see :class:`Objective`.
    optimizer: an optax transformation.
    batch_size: examples per step (divisible by the mesh's devices).
    num_steps: steps in this dispatch.
    mesh: a :func:`nflax.parallel.data_mesh`; ``None`` for a single device.

  Returns:
    ``(state, metrics)`` with ``metrics['loss']`` and ``metrics['grad_norm']``
    of shape ``(num_steps,)``. Once a step's loss or gradient is non-finite
    the state stops changing and ``state.halted`` is set.
  """
  key_data, key_loss = jax.random.split(key)
  grad_fn = jax.value_and_grad(train_loss, has_aux=True)

  def one_step(state, _):
    batch = batch_at(data, state.step, key_data, batch_size)
    if mesh is not None:
      batch = parallel.shard_batch(batch, mesh)
    (loss, model_state), grads = grad_fn(
        state.params, state.model_state, batch, jax.random.fold_in(key_loss, state.step))
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    grad_norm = optax.tree.norm(grads)
    ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & ~state.halted
    stepped = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, updates),
        model_state=model_state, opt_state=opt_state)
    new_state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), stepped, state)
    new_state = new_state.replace(halted=state.halted | ~ok)
    return new_state, {'loss': loss, 'grad_norm': grad_norm}

  return jax.lax.scan(one_step, state, None, length=num_steps)


def mean_over_batches(per_example: Callable[[PyTree], Array], data: PyTree,
                      batch_size: int) -> Array:
  """Mean of ``per_example(batch) -> (batch,)`` over ``data``, in chunks.

  The data set is padded to a multiple of ``batch_size`` and mapped with
  ``lax.map`` so memory stays bounded; padded examples are not counted.
  """
  n = _num_examples(data)
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  padded = jax.tree.map(
      lambda a: jnp.concatenate([a, jnp.repeat(a[:1], pad, 0)]).reshape(
          (num_batches, batch_size) + a.shape[1:]), data)
  losses = jax.lax.map(per_example, padded)
  return jnp.sum(losses.reshape(-1)[:n]) / n


@functools.partial(jax.jit, static_argnames=('eval_loss',))
def evaluate(params: PyTree, model_state: PyTree, data: PyTree, *,
             eval_loss: EvalLoss) -> Array:
  """``eval_loss(params, model_state, data)``, compiled."""
  return eval_loss(params, model_state, data)


@jax.jit
def _track_best(state: FitState, val_loss: Array) -> FitState:
  improved = val_loss < state.best_val_loss
  pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(improved, a, b), new, old)
  return state.replace(
      best_params=pick(state.params, state.best_params),
      best_model_state=pick(state.model_state, state.best_model_state),
      best_val_loss=jnp.where(improved, val_loss, state.best_val_loss),
      evals_since_best=jnp.where(improved, 0, state.evals_since_best + 1))


class NonFiniteError(FloatingPointError):
  """Training met a NaN/Inf; ``state`` is the last good :class:`FitState`."""

  def __init__(self, message: str, state: FitState):
    super().__init__(message)
    self.state = state


@dataclasses.dataclass
class FitResult:
  """What :func:`fit` returns.

  Attributes:
    params: the best parameters on the validation set (the final ones when no
      validation set was given or ``keep_best`` is off).
    model_state: the model state that goes with ``params``.
    state: the final :class:`FitState` (for resuming or inspection).
    history: one record per dispatch: ``step``, ``train_loss`` (mean over the
      dispatch), ``grad_norm``, ``val_loss`` where evaluated, ``steps_per_sec``.
    stopped_early: whether ``patience`` ended the run.
  """
  params: PyTree
  model_state: PyTree
  state: FitState
  history: list[dict]
  stopped_early: bool


def fit(objective: Objective, state: FitState, train_data: PyTree,
        val_data: PyTree | None = None, *, optimizer: optax.GradientTransformation,
        num_steps: int, batch_size: int, key: Array, steps_per_dispatch: int = 100,
        eval_every: int | None = None, patience: int | None = None,
        mesh: Mesh | None = None, keep_best: bool = True,
        callback: Callable[[FitState, dict], None] | None = None) -> FitResult:
  """Minimises ``objective`` from ``state`` until ``num_steps`` steps in total.

  ``state.step`` may already be positive (a resumed run): the loop continues
  from there and, since batches and keys depend only on ``(key, step)``,
  reaches the same result as an uninterrupted run when resumed at a dispatch
  boundary. Dispatches end at multiples of ``steps_per_dispatch``.

  Args:
    objective: the losses (:func:`nll_objective` for maximum likelihood).
    state: from :func:`init_fit_state` or a restored checkpoint.
    train_data: pytree of arrays with a common leading axis.
    val_data: held-out data for evaluation, best-parameter tracking and early
      stopping; ``None`` to train blind for ``num_steps``.
    optimizer: the optax transformation ``state.opt_state`` belongs to.
    num_steps: total number of steps of the run.
    batch_size: examples per step, at most the training-set size.
    key: the run's key.
    steps_per_dispatch: steps compiled into one ``lax.scan``.
    eval_every: evaluate when a dispatch reaches a multiple of this many steps
      (default: every dispatch); the last dispatch is always evaluated.
    patience: stop after this many evaluations without improvement.
    mesh: data-parallel mesh; ``None`` uses all local devices.
    keep_best: return the parameters with the lowest validation loss (else
      the last ones; for objectives whose held-out value is noisy around its
      optimum, selecting the minimum is biased low).
    callback: called as ``callback(state, record)`` after every dispatch.

  Returns:
    A :class:`FitResult`.

  Raises:
    NonFiniteError: a loss or gradient became NaN/Inf.
  """
  n = _num_examples(train_data)
  if not 0 < batch_size <= n:
    raise ValueError(f'batch_size {batch_size} must be in [1, {n}] (training-set size)')
  if steps_per_dispatch < 1 or num_steps < 0:
    raise ValueError('steps_per_dispatch must be >= 1 and num_steps >= 0')
  eval_every = eval_every or steps_per_dispatch
  mesh = parallel.data_mesh() if mesh is None else mesh
  parallel.check_divisible(batch_size, mesh)
  train_data = parallel.replicate(train_data, mesh)
  state = parallel.replicate(state, mesh)
  history: list[dict] = []
  stopped_early = patience is not None and int(state.evals_since_best) >= patience
  step = int(state.step)
  while step < num_steps and not stopped_early:
    chunk = min(steps_per_dispatch - step % steps_per_dispatch, num_steps - step)
    start = time.perf_counter()
    new_state, metrics = train_steps(
        state, train_data, key, train_loss=objective.train_loss, optimizer=optimizer,
        batch_size=batch_size, num_steps=chunk, mesh=mesh)
    if bool(new_state.halted):
      bad = int(new_state.step)
      raise NonFiniteError(
          f'non-finite loss or gradient at step {bad} (loss '
          f'{float(metrics["loss"][bad - step])}, grad norm '
          f'{float(metrics["grad_norm"][bad - step])}); training stopped, the '
          'returned state holds the last finite parameters', new_state.replace(
              halted=jnp.zeros((), bool)))
    state, step = new_state, step + chunk
    record = {'step': step, 'train_loss': float(jnp.mean(metrics['loss'])),
              'grad_norm': float(jnp.mean(metrics['grad_norm']))}
    if val_data is not None and (step // eval_every > (step - chunk) // eval_every
                                 or step == num_steps):
      val_loss = evaluate(state.params, state.model_state, val_data,
                          eval_loss=objective.eval_loss)
      if not math.isfinite(float(val_loss)):
        raise NonFiniteError(f'non-finite validation loss at step {step}', state)
      state = _track_best(state, val_loss)
      record['val_loss'] = float(val_loss)
      stopped_early = patience is not None and int(state.evals_since_best) >= patience
    record['steps_per_sec'] = chunk / (time.perf_counter() - start)
    history.append(record)
    if callback is not None:
      callback(state, record)
  if val_data is None or not keep_best:
    return FitResult(state.params, state.model_state, state, history, stopped_early)
  return FitResult(state.best_params, state.best_model_state, state, history, stopped_early)


def progress_logger(num_steps: int, prefix: str = '') -> Callable[[FitState, dict], None]:
  """A ``fit`` callback logging step, losses, steps/s and the time left."""
  def log(state: FitState, record: dict) -> None:
    del state
    rate = record['steps_per_sec']
    eta = (num_steps - record['step']) / max(rate, 1e-9)
    val = f" val {record['val_loss']:.4f}" if 'val_loss' in record else ''
    logging.info('%sstep %d/%d  loss %.4f%s  %.1f steps/s  ETA %s', prefix,
                 record['step'], num_steps, record['train_loss'], val, rate,
                 time.strftime('%H:%M:%S', time.gmtime(eta)))
  return log


StageCallback = Callable[[str, FitState, dict], None]
"""``callback(stage, state, record)`` after every dispatch of a stage."""


class StageRunner(Protocol):
  """Runs one named training stage of a multi-stage method; returns its :class:`FitResult`.

  Called as ``runner(stage, objective, variables, train_data, val_data, key)``:
  ``stage`` names the stage (e.g. LRMF's ``'private_a'``, ``'private_b'``,
  ``'joint'``; FDRE's ``'flow'``, ``'classifier'``, ``'joint'``), ``variables``
  are the starting Flax variables (for :func:`init_fit_state`), and the
  result's ``params`` / ``model_state`` must be the best ones on ``val_data``.
  The runner owns the optimiser, step budget, batch size, early stopping and
  any checkpointing, so methods stay free of I/O; :func:`fit_runner` is the
  plain in-memory one, experiment code passes checkpointing runners.
  """

  def __call__(self, stage: str, objective: Objective, variables: PyTree, train_data: PyTree,
               val_data: PyTree, key: Array) -> FitResult:
    ...


def fit_runner(*, optimizer: optax.GradientTransformation, num_steps: int, batch_size: int,
               patience: int | None = None, steps_per_dispatch: int = 100,
               eval_every: int | None = None,
               callback: StageCallback | None = None) -> StageRunner:
  """A :class:`StageRunner` that calls :func:`fit` from a fresh state.

  Args:
    optimizer: the optax transformation.
    num_steps: step budget of the stage.
    batch_size: examples per step (from each part of :class:`Independent`
      data), capped at the size of the training set.
    patience: stop after this many evaluations without improvement on the
      held-out data (``None``: run ``num_steps``).
    steps_per_dispatch: steps compiled into one ``lax.scan``.
    eval_every: evaluation period in steps (default: every dispatch).
    callback: called as ``callback(stage, state, record)`` after every dispatch.

  Returns:
    The runner.
  """

  def run(stage, objective, variables, train_data, val_data, key):
    on_dispatch = None
    if callback is not None:
      on_dispatch = lambda state, record: callback(stage, state, record)
    return fit(objective, init_fit_state(variables, optimizer), train_data, val_data,
               optimizer=optimizer, num_steps=num_steps,
               batch_size=min(batch_size, _num_examples(train_data)), key=key,
               steps_per_dispatch=steps_per_dispatch, eval_every=eval_every,
               patience=patience, callback=on_dispatch)

  return run
