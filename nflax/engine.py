"""The one training engine: replicas of any training state, many steps per dispatch.

Every training stage of every method (maximum likelihood, LRMF's joint stage, FDRE's
classifiers, AlignFlow's alternating critic and flow updates, the GAN and OT baselines)
is a *step*::

    step(state, batch, key) -> (state, metrics)

on one replica: ``state`` is any pytree with an integer ``step`` field counting the steps
taken, ``batch`` a minibatch of the replica's data, ``key`` that step's PRNG key, and
``metrics`` a dict of scalars. The engine owns everything around it:

* **Replicas.** Independent seeds and shape-preserving settings (learning rates, loss
  weights) are a leading axis ``R`` of the state, of the data and of the keys; the step is
  ``jax.vmap``-ed over it, so ``R`` runs train in one compiled program. A replica's
  numbers do not depend on the others (up to float reassociation).
* **Dispatches.** ``num_steps`` steps run in one ``lax.scan``; the minibatch indices of the
  whole dispatch are drawn before the scan from epoch permutations, so step ``s`` of a
  replica always sees the batch of ``(key, s)`` and its loss randomness is
  ``fold_in(key, s)``: a resumed run reproduces an uninterrupted one.
* **The NaN/Inf guard**, inside the scan and per replica: a step whose metrics are not
  all finite (a step should report its loss, gradient norm and the norm of the update it
  applied, which covers the updated parameters) is not applied; that replica is frozen at
  its last good state and flagged ``halted``; the others go on to the end of the
  dispatch, after which :func:`train` raises :class:`NonFiniteError` naming each halted
  replica and the step it met the bad value. Stopping the whole run (rather than
  finishing the healthy replicas) keeps every replica's state a checkpointable last good
  one and makes a bad setting visible at once. (While no replica is frozen,
  :func:`train` runs a dispatch without the guard's per-step select over the state and,
  should a replica come back halted, redoes it from the same run with the guard.)
* **Evaluation, best-state tracking and early stopping**, per replica: ``evaluate(state,
  val_data) -> scalar`` (lower is better) is vmapped; ``snapshot(state)`` is kept at each
  replica's lowest value; a replica whose value has not improved for ``patience``
  evaluations is frozen while the others train on; the run ends when all have stopped.
* **Devices.** One mesh over every device of every host (:func:`nflax.parallel.mesh`),
  axes ``('replica', 'data')``: replicas are spread over devices where there are enough
  of them, the batch is split otherwise.
* **Progress** with steps/s and the time left, compilation left out (each program a
  :func:`train` call dispatches is compiled ahead of its first dispatch and the seconds
  that took logged once), and a per-dispatch ``callback(run, record)`` for checkpoints and
  metrics.

The engine's own checkpointable pytree is :class:`Run`: the method's state plus the
tracking of the best state, the early-stopping counters and the halt flags.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nflax import parallel

__all__ = [
    'Step', 'Evaluate', 'Snapshot', 'Independent', 'num_examples', 'num_replicas',
    'add_replica_axis', 'replica', 'interleave_replicas', 'epoch_batch_indices', 'Run',
    'init_run', 'dispatch', 'NonFiniteError', 'Result', 'train'
]

Array = jax.Array
PyTree = Any
Step = Callable[[PyTree, PyTree, Array], tuple[PyTree, dict[str, Array]]]
"""``step(state, batch, key) -> (state, metrics)`` on one replica."""
Evaluate = Callable[[PyTree, PyTree], Array]
"""``evaluate(state, val_data) -> scalar`` on one replica; lower is better."""
Snapshot = Callable[[PyTree], PyTree]
"""``snapshot(state) -> pytree``: the part of a state that best-tracking keeps."""

_PERMUTATION_BUDGET = 1 << 24
"""Largest number of indices of epoch permutations drawn ahead for one dispatch."""


@struct.dataclass
class Independent:
  """Data sets sampled independently of each other, ``batch_size`` from each.

  ``Independent((a, b))`` as training data gives each step the batch
  ``Independent((a_batch, b_batch))``; ``a`` and ``b`` may differ in size, and each is
  drawn from its own epoch permutations.
  """
  parts: tuple


def num_examples(data: PyTree, replicated: bool = False) -> int:
  """Size of a data set (the smallest part of :class:`Independent` data).

  ``replicated``: the leaves carry a leading replica axis before the example axis.
  """
  if isinstance(data, Independent):
    return min(num_examples(part, replicated) for part in data.parts)
  axis = 1 if replicated else 0
  sizes = {leaf.shape[axis] for leaf in jax.tree.leaves(data)}
  if len(sizes) != 1:
    raise ValueError(f'all arrays of a data set need the same number of examples, got {sizes}')
  return sizes.pop()


def num_replicas(tree: PyTree) -> int:
  """The common leading (replica) axis of every leaf of ``tree``."""
  sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
  if len(sizes) != 1 or None in sizes:
    raise ValueError(f'every leaf of a replicated pytree needs one leading replica axis, got '
                     f'leading sizes {sizes}')
  return sizes.pop()


def add_replica_axis(tree: PyTree) -> PyTree:
  """``tree`` as a single replica: a leading axis of size 1 on every leaf."""
  return jax.tree.map(lambda leaf: jnp.asarray(leaf)[None], tree)


def replica(tree: PyTree, index: int) -> PyTree:
  """Replica ``index`` of a replicated pytree (the leading axis removed)."""
  return jax.tree.map(lambda leaf: leaf[index], tree)


def interleave_replicas(trees: list[PyTree], replicas: int) -> PyTree:
  """Replicated pytrees ``trees[0], ..., trees[D-1]`` that hold ``J`` rows for each of
  ``replicas`` replicas (leaves ``(replicas J, ...)``, replica ``r``'s rows ``r J, ...,
  r J + J - 1``, e.g. its restarts) as one pytree of ``replicas D J`` rows, each replica's
  rows together: replica ``r``'s rows of ``trees[d]`` at ``r D J + d J + j``. Used to train
  independent fits of several data sets of one shape side by side, with per-replica
  settings repeated ``D J`` times."""
  if len(trees) == 1:
    return trees[0]

  def join(*leaves):
    blocks = [jnp.asarray(leaf).reshape(replicas, -1, *np.shape(leaf)[1:]) for leaf in leaves]
    return jnp.concatenate(blocks, axis=1).reshape(-1, *np.shape(leaves[0])[1:])

  return jax.tree.map(join, *trees)


def epoch_batch_indices(key: Array, first_step: Array, *, num_examples: int,
                        batch_size: int, num_steps: int) -> Array:
  """Example indices of steps ``first_step, ..., first_step + num_steps - 1``.

  Epoch ``e`` is the permutation of ``range(num_examples)`` drawn from ``fold_in(key, e)``;
  step ``s`` takes slice ``s mod (n // batch_size)`` of epoch ``s // (n // batch_size)``
  (the remainder of each permutation is dropped). Only the epochs the steps touch are
  drawn, once each, so the cost per step does not grow with the data set.

  Returns:
    ``(num_steps, batch_size)`` int32 indices.
  """
  steps_per_epoch = num_examples // batch_size
  steps = first_step + jnp.arange(num_steps)
  epochs, positions = jnp.divmod(steps, steps_per_epoch)
  offsets = positions[:, None] * batch_size + jnp.arange(batch_size)[None, :]
  num_epochs = num_steps // steps_per_epoch + 2
  if num_epochs * num_examples > _PERMUTATION_BUDGET:
    def one(epoch, offset):
      return jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)[offset]
    return jax.vmap(one)(epochs, offsets)
  first_epoch = first_step // steps_per_epoch
  orders = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), num_examples))(
      first_epoch + jnp.arange(num_epochs))
  return orders[(epochs - first_epoch)[:, None], offsets]


def _indices(data: PyTree, key: Array, first_step: Array, batch_size: int,
             num_steps: int) -> PyTree:
  """Per-part batch indices of a dispatch for one replica (see :func:`epoch_batch_indices`)."""
  if isinstance(data, Independent):
    return tuple(_indices(part, jax.random.fold_in(key, index), first_step, batch_size,
                          num_steps) for index, part in enumerate(data.parts))
  return epoch_batch_indices(key, first_step, num_examples=num_examples(data),
                             batch_size=batch_size, num_steps=num_steps)


def _gather(data: PyTree, indices: PyTree) -> PyTree:
  if isinstance(data, Independent):
    return Independent(tuple(_gather(part, idx) for part, idx in zip(data.parts, indices)))
  return jax.tree.map(lambda leaf: leaf[indices], data)


def _all_finite(metrics: dict[str, Array]) -> Array:
  flags = [jnp.all(jnp.isfinite(value)) for value in jax.tree.leaves(metrics)
           if jnp.issubdtype(jnp.result_type(value), jnp.inexact)]
  return jnp.all(jnp.stack(flags)) if flags else jnp.ones((), bool)


@struct.dataclass
class Run:
  """The engine's checkpointable pytree; every leaf has the leading replica axis ``R``.

  Attributes:
    state: the method's training state (``state.step``: ``(R,)`` steps taken).
    best: ``snapshot(state)`` at each replica's lowest evaluation (``None`` without one).
    best_val_loss: ``(R,)`` lowest evaluation so far (``+inf`` before any).
    evals_since_best: ``(R,)`` evaluations since the lowest.
    halted: ``(R,)`` a non-finite value stopped the replica (its state is the last good).
    stopped: ``(R,)`` early stopping ended the replica.
  """
  state: PyTree
  best: PyTree
  best_val_loss: Array
  evals_since_best: Array
  halted: Array
  stopped: Array

  @property
  def frozen(self) -> Array:
    """``(R,)`` replicas that no longer train."""
    return self.halted | self.stopped


def init_run(state: PyTree, snapshot: Snapshot | None = None) -> Run:
  """A fresh :class:`Run` around a replicated training ``state``."""
  count = num_replicas(state)
  return Run(state=state, best=None if snapshot is None else snapshot(state),
             best_val_loss=jnp.full((count,), jnp.inf, jnp.float32),
             evals_since_best=jnp.zeros((count,), jnp.int32),
             halted=jnp.zeros((count,), bool), stopped=jnp.zeros((count,), bool))


@functools.partial(jax.jit,
                   static_argnames=('step_fn', 'batch_size', 'num_steps', 'mesh', 'guard'))
def dispatch(run: Run, data: PyTree, keys: Array, *, step_fn: Step, batch_size: int,
             num_steps: int, mesh: Mesh | None = None,
             guard: bool = True) -> tuple[Run, dict[str, Array]]:
  """``num_steps`` steps of every replica in one ``lax.scan``.

  Args:
    run: the replicated run to continue.
    data: replicated training data, leaves ``(R, n, ...)`` (``Independent`` parts may
      differ in ``n``).
    keys: ``(R, 2)`` the replicas' training keys; replica ``r``'s batches come from
      ``fold_in(keys[r], 0)`` and its step keys are ``fold_in(fold_in(keys[r], 1), s)``.
    step_fn: the per-replica step.
    batch_size: examples per replica per step (from each part of ``Independent`` data).
    num_steps: steps in this dispatch.
    mesh: a :func:`nflax.parallel.mesh`; ``None`` for one device.
    guard: keep each replica's state where a step must not be applied (below). ``False``
      applies every step of every replica and only flags ``halted``: a cheaper program
      (no select over the whole state each step) for a run with no frozen replica, whose
      result must be discarded, and the dispatch redone with the guard, if any replica
      comes back ``halted``. :func:`train` does this.

  Returns:
    ``(run, metrics)`` with every metric of ``step_fn`` stacked to ``(num_steps, R)``.
    A frozen replica does not change; a replica whose step reports a non-finite metric
    is frozen before that step is applied and flagged ``halted``.
  """
  data_keys = jax.vmap(lambda key: jax.random.fold_in(key, 0))(keys)
  step_keys = jax.vmap(lambda key: jax.random.fold_in(key, 1))(keys)
  indices = jax.vmap(lambda d, k, s: _indices(d, k, s, batch_size, num_steps))(
      data, data_keys, run.state.step)
  indices = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), indices)  # (T, R, B)
  state, halted, stopped = run.state, run.halted, run.stopped
  # One replica runs without the vmap: a vmap of size 1 makes every matmul a batched one
  # and every carried leaf a (1, ...) array, which XLA's CPU backend runs slower.
  single = keys.shape[0] == 1
  if single:
    state, halted, stopped, data, step_keys = jax.tree.map(
        lambda x: x[0], (state, halted, stopped, data, step_keys))
    indices = jax.tree.map(lambda x: x[:, 0], indices)
    per_replica = lambda f: f
    batch_spec = PartitionSpec(parallel.DATA_AXIS)
  else:
    per_replica = jax.vmap
    batch_spec = PartitionSpec(parallel.REPLICA_AXIS, parallel.DATA_AXIS)

  def one_step(carry, step_indices):
    state, halted = carry
    batch = per_replica(_gather)(data, step_indices)
    if mesh is not None:
      sharding = NamedSharding(mesh, batch_spec)
      batch = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batch)
    step_key = per_replica(jax.random.fold_in)(step_keys, state.step)
    candidate, metrics = per_replica(step_fn)(state, batch, step_key)
    ok = per_replica(_all_finite)(metrics)
    if guard:
      apply = ok & ~halted & ~stopped

      def pick(new, old):
        return jnp.where(apply.reshape(apply.shape + (1,) * (new.ndim - apply.ndim)), new,
                         old)

      state = jax.tree.map(pick, candidate, state)
    else:
      state = candidate
    return (state, halted | (~ok & ~stopped)), metrics

  (state, halted), metrics = jax.lax.scan(one_step, (state, halted), indices)
  if single:
    state, halted = jax.tree.map(lambda x: x[None], (state, halted))
    metrics = jax.tree.map(lambda x: jnp.expand_dims(x, 1), metrics)  # (T, 1)
  return run.replace(state=state, halted=halted), metrics


@functools.partial(jax.jit, static_argnames=('evaluate', 'snapshot', 'patience'))
def _evaluate_and_track(run: Run, val_data: PyTree, *, evaluate: Evaluate,
                        snapshot: Snapshot | None, patience: int | None
                        ) -> tuple[Run, Array]:
  values = jax.vmap(evaluate)(run.state, val_data)
  live = ~run.frozen
  improved = live & (values < run.best_val_loss)

  def pick(new, old):
    return jnp.where(improved.reshape(improved.shape + (1,) * (new.ndim - 1)), new, old)

  best = run.best if snapshot is None else jax.tree.map(pick, snapshot(run.state), run.best)
  evals_since_best = jnp.where(improved, 0, run.evals_since_best + live.astype(jnp.int32))
  stopped = run.stopped
  if patience is not None:
    stopped = stopped | (live & (evals_since_best >= patience))
  return run.replace(best=best, best_val_loss=jnp.where(improved, values, run.best_val_loss),
                     evals_since_best=evals_since_best, stopped=stopped), values


class NonFiniteError(FloatingPointError):
  """A replica met a NaN/Inf; ``run`` holds every replica's last good state."""

  def __init__(self, message: str, run: Run, replicas: list[int], steps: list[int]):
    super().__init__(message)
    self.run = run
    self.replicas = replicas
    self.steps = steps


@dataclasses.dataclass
class Result:
  """What :func:`train` returns.

  Attributes:
    run: the final :class:`Run` (for resuming or inspection).
    history: one record per dispatch: ``step``, every metric as an ``(R,)`` mean over the
      dispatch, ``val_loss`` ``(R,)`` where evaluated, ``steps_per_sec`` (of the
      dispatch and its evaluation, compilation left out).
  """
  run: Run
  history: list[dict]

  @property
  def state(self) -> PyTree:
    return self.run.state



def train(step_fn: Step, run: Run, train_data: PyTree, keys: Array, *, num_steps: int,
          batch_size: int, val_data: PyTree | None = None, evaluate: Evaluate | None = None,
          snapshot: Snapshot | None = None, steps_per_dispatch: int = 100,
          eval_every: int | None = None, patience: int | None = None,
          mesh: Mesh | None = None, name: str = '', stop_on_nonfinite_validation: bool = False,
          callback: Callable[[Run, dict], None] | None = None) -> Result:
  """Trains every replica of ``run`` until step ``num_steps`` (or early stopping).

  The run continues from its replicas' ``state.step`` (a restored checkpoint resumes);
  dispatches end at multiples of ``steps_per_dispatch``, so a run resumed from a
  checkpoint taken at a dispatch boundary ends exactly where an uninterrupted one ends.

  Args:
    step_fn: the per-replica step ``(state, batch, key) -> (state, metrics)``.
    run: from :func:`init_run` or a restored checkpoint.
    train_data: replicated training data, leaves ``(R, n, ...)``.
    keys: ``(R, 2)`` training keys, one per replica.
    num_steps: total steps of the stage.
    batch_size: examples per replica per step, in ``[1, n]``.
    val_data: replicated held-out data for ``evaluate``.
    evaluate: per-replica ``(state, val_data) -> scalar`` (lower is better).
    snapshot: what best-tracking keeps of a state (must match ``init_run``'s).
    steps_per_dispatch: steps compiled into one ``lax.scan``.
    eval_every: evaluate when a dispatch reaches a multiple of this many steps (default:
      every dispatch); the last dispatch is always evaluated.
    patience: freeze a replica after this many evaluations without improvement.
    mesh: ``None`` for :func:`nflax.parallel.mesh` over every device.
    name: prefix of progress lines.
    stop_on_nonfinite_validation: a replica whose held-out loss turns NaN/Inf while its
      training steps stay finite, after an earlier finite evaluation, stops there as early
      stopping would (the held-out loss has diverged; its best snapshot stands, and a
      warning names it). For stages that return their best-on-validation state; off, or
      without an earlier finite evaluation, the run raises :class:`NonFiniteError`.
    callback: ``callback(run, record)`` after every dispatch.

  Returns:
    A :class:`Result`.

  Raises:
    ValueError: inconsistent sizes or settings.
    NonFiniteError: a replica met a NaN/Inf (in training or evaluation).
  """
  count = num_replicas(run.state.step)
  n = num_examples(train_data, replicated=True)
  if not 0 < batch_size <= n:
    raise ValueError(f'{name or "training"}: batch_size {batch_size} must be in [1, {n}] '
                     '(the training-set size)')
  if steps_per_dispatch < 1:
    raise ValueError(f'steps_per_dispatch must be >= 1, got {steps_per_dispatch}')
  if num_steps < 0:
    raise ValueError(f'num_steps must be >= 0, got {num_steps}')
  if eval_every is not None and eval_every < 1:
    raise ValueError(f'eval_every must be >= 1, got {eval_every}')
  if patience is not None and patience < 1:
    raise ValueError(f'patience must be >= 1, got {patience}')
  if (val_data is None) != (evaluate is None):
    raise ValueError('val_data and evaluate go together')
  if keys.shape[0] != count or num_replicas(train_data) != count:
    raise ValueError(f'state, training data and keys need the same number of replicas, got '
                     f'{count}, {num_replicas(train_data)} and {keys.shape[0]}')
  eval_every = eval_every or steps_per_dispatch
  mesh = parallel.mesh(count) if mesh is None else mesh
  parallel.check_divisible(batch_size, mesh)
  run, train_data, keys = parallel.place_replicated((run, train_data, keys), mesh)
  if val_data is not None:
    val_data = parallel.place_replicated(val_data, mesh)
  history: list[dict] = []
  steps = parallel.to_host(run.state.step)
  frozen = parallel.to_host(run.frozen)
  step = int(np.max(np.where(frozen, 0, steps))) if not frozen.all() else int(np.max(steps))
  clock = time.perf_counter()
  if val_data is not None and step < num_steps and not frozen.all():
    _compile_ahead(f'{name}compiled the evaluation', _evaluate_and_track, run, val_data,
                   evaluate=evaluate, snapshot=snapshot, patience=patience)
  compiled: set[tuple[int, bool]] = set()
  while step < num_steps and not frozen.all():
    chunk = min(steps_per_dispatch - step % steps_per_dispatch, num_steps - step)
    # Optimistically without the guard's per-step select while no replica is frozen; a
    # dispatch that met a non-finite value is redone with the guard, from the same run.
    guard = bool(frozen.any())
    if (chunk, guard) not in compiled:
      _compile_ahead(f'{name}compiled a dispatch of {chunk} steps', dispatch, run, train_data,
                     keys, step_fn=step_fn, batch_size=batch_size, num_steps=chunk, mesh=mesh,
                     guard=guard)
      compiled.add((chunk, guard))
    start = time.perf_counter()
    stepped, metrics = dispatch(run, train_data, keys, step_fn=step_fn,
                                batch_size=batch_size, num_steps=chunk, mesh=mesh, guard=guard)
    halted = parallel.to_host(stepped.halted)
    if halted.any() and not guard:
      stepped, metrics = dispatch(run, train_data, keys, step_fn=step_fn,
                                  batch_size=batch_size, num_steps=chunk, mesh=mesh,
                                  guard=True)
      halted = parallel.to_host(stepped.halted)
    run = stepped
    metrics = parallel.to_host(metrics)
    if halted.any():
      _raise_non_finite(run, metrics, halted, step, name)
    step += chunk
    record: dict[str, Any] = {'step': step}
    live = ~frozen
    for metric, values in metrics.items():
      record[metric] = np.where(live, np.mean(values, axis=0), np.nan)
    if val_data is not None and (step // eval_every > (step - chunk) // eval_every
                                 or step == num_steps):
      run, values = _evaluate_and_track(run, val_data, evaluate=evaluate, snapshot=snapshot,
                                        patience=patience)
      values = parallel.to_host(values)
      bad = live & ~np.isfinite(values)
      if stop_on_nonfinite_validation and snapshot is not None and bad.any():
        diverged = bad & np.isfinite(parallel.to_host(run.best_val_loss))
        if diverged.any():
          logging.warning('%snon-finite validation loss at step %d in replica(s) %s: stopped '
                          'there, their best-on-validation state kept', name, step,
                          np.flatnonzero(diverged).tolist())
          run = run.replace(stopped=run.stopped | parallel.place_replicated(diverged, mesh))
          bad = bad & ~diverged
      if bad.any():
        raise NonFiniteError(
            f'{name}non-finite validation loss at step {step} in replica(s) '
            f'{np.flatnonzero(bad).tolist()}', run, np.flatnonzero(bad).tolist(),
            [step] * int(bad.sum()))
      record['val_loss'] = np.where(live, values, np.nan)
    frozen = parallel.to_host(run.frozen)
    record['steps_per_sec'] = chunk / (time.perf_counter() - start)
    history.append(record)
    _log_progress(name, record, num_steps, step, clock, count)
    if callback is not None:
      callback(run, record)
  return Result(run, history)


def _compile_ahead(what: str, jitted: Callable, *args, **static) -> None:
  """Compiles ``jitted`` for these arguments into ``jax.jit``'s cache, where the call that
  follows finds it, and logs ``'<what> in <seconds> s'``, so that the steps/s of the
  dispatch making that call leave compilation out."""
  start = time.perf_counter()
  jitted.lower(*args, **static).compile()
  logging.info('%s in %.1f s', what, time.perf_counter() - start)


def _raise_non_finite(run: Run, metrics: dict, halted: np.ndarray, first: int, name: str):
  replicas = np.flatnonzero(halted).tolist()
  steps, details = [], []
  for index in replicas:
    bad = [i for i in range(len(next(iter(metrics.values()))))
           if not all(np.all(np.isfinite(v[i, index])) for v in metrics.values())]
    at = first + (bad[0] if bad else 0) + 1
    steps.append(at)
    values = ', '.join(f'{k} {float(np.asarray(v[bad[0], index]).mean()):.4g}'
                       for k, v in metrics.items()) if bad else ''
    details.append(f'replica {index} at step {at} ({values})')
  raise NonFiniteError(
      f'{name}non-finite values in training: {"; ".join(details)}. That step was not '
      'applied: the run holds every replica\'s last good state', run, replicas, steps)


def _log_progress(name: str, record: dict, num_steps: int, step: int, clock: float,
                  count: int) -> None:
  rate = record['steps_per_sec']
  eta = (num_steps - step) / max(rate, 1e-9)
  loss = record.get('loss')
  loss_text = f'  loss {np.nanmean(loss):.4f}' if loss is not None else ''
  val = f"  val {np.nanmean(record['val_loss']):.4f}" if 'val_loss' in record else ''
  replicas = f' x{count} replicas' if count > 1 else ''
  logging.info('%sstep %d/%d%s%s  %.1f steps/s%s  elapsed %s  ETA %s', name, step, num_steps,
               loss_text, val, rate, replicas,
               time.strftime('%H:%M:%S', time.gmtime(time.perf_counter() - clock)),
               time.strftime('%H:%M:%S', time.gmtime(eta)))

