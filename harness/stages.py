"""Checkpointed, logged, resumable training stages: :mod:`nflax.engine` plus a workdir.

Every stage of every experiment is a :class:`Stage` (a step function, its state and data,
its settings) run by :func:`run_stage`: :func:`train` builds and runs the stage of gradient
descent on an :class:`nflax.fitting.Objective`, :func:`stage_runner` is the checkpointing
:class:`nflax.fitting.StageRunner` of the multi-stage methods. A stage checkpoints the
engine's :class:`~nflax.engine.Run` (every replica) with orbax every ``checkpoint_every``
steps and at its end; rerunning the experiment restores the latest checkpoint and
continues, and a finished stage is restored without training. Because batches and keys
are derived from ``(seed, step)``, the resumed run ends with the same metrics as an
uninterrupted one.

:func:`make_optimizer` is the one optimiser and schedule factory of every config's
training block.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging

from harness import workdir as workdir_lib
from harness import workdir_guards
from nflax import engine, fitting, parallel

SCHEDULES = ('constant', 'cosine', 'linear_decay_second_half')
WEIGHT_DECAY_STYLES = ('decoupled', 'l2')


PER_REPLICA_FIELDS = ('lr', 'weight_decay')
"""Fields of a training block that may differ between replicas (they live in the
optimiser's state, :func:`set_per_replica`)."""


def make_optimizer(train_config: ml_collections.ConfigDict, grad_clip: float | None = None,
                   per_replica: tuple[str, ...] = (), num_steps: int | None = None
                   ) -> optax.GradientTransformation:
  """Adam (AdamW with ``weight_decay > 0``), optional clipping and learning-rate schedule.

  Fields of ``train_config``: ``lr``, ``num_steps`` (for a schedule), optional ``b1`` (0.9), ``b2``
  (0.999), ``weight_decay`` (0), ``grad_clip`` (0: none; the ``grad_clip`` argument
  overrides it) and ``schedule``: ``'constant'`` (default), ``'cosine'`` (decay from
  ``lr`` to 0 over ``num_steps``; lets maximum-likelihood fits settle, which LRMF's
  c(A, B) needs) or ``'linear_decay_second_half'`` (constant for the first half, then
  linearly to 0: AlignFlow App. B.1 and CycleGAN).

  The update is ``-lr * shape(step) * adam(g)`` (``+ weight_decay * params`` before the
  learning rate, as AdamW), or with ``weight_decay_style='l2'`` ``-lr * shape(step) * adam(g +
  weight_decay * params)``: PyTorch's ``Adam(weight_decay=...)``, an L2 penalty whose gradient
  Adam rescales (the papers' recipes written for PyTorch Adam mean this; at a small learning
  rate it regularises far more than the decoupled decay of the same number). ``lr`` and
  ``weight_decay`` are held in the optimiser state
  (``optax.inject_hyperparams``), so replicas may train with different values in one
  program: name them in ``per_replica`` and set them with :func:`set_per_replica`.
  ``num_steps`` overrides the block's: the length of the schedule of an optimiser that steps
  inside another block's loop (a critic in its generator's stage).
  """
  unknown = set(per_replica) - set(PER_REPLICA_FIELDS)
  if unknown:
    raise ValueError(f'only {PER_REPLICA_FIELDS} may differ between replicas, got '
                     f'{sorted(unknown)}')
  schedule = train_config.get('schedule', 'constant')
  num_steps = train_config.get('num_steps') if num_steps is None else num_steps
  if schedule != 'constant' and num_steps is None:
    raise ValueError(f'train.schedule {schedule!r} needs the block\'s num_steps')
  if schedule == 'cosine':
    shape = optax.cosine_decay_schedule(1.0, num_steps)
  elif schedule == 'linear_decay_second_half':
    half = num_steps // 2
    shape = optax.join_schedules(
        [optax.constant_schedule(1.0),
         optax.linear_schedule(1.0, 0.0, max(num_steps - half, 1))], [half])
  elif schedule == 'constant':
    shape = None
  else:
    raise ValueError(f'train.schedule must be one of {SCHEDULES}, got {schedule!r}')
  parts = []
  clip = train_config.get('grad_clip', 0.0) if grad_clip is None else grad_clip
  if clip > 0:
    parts.append(optax.clip_by_global_norm(clip))
  style = train_config.get('weight_decay_style', 'decoupled')
  if style not in WEIGHT_DECAY_STYLES:
    raise ValueError(f'train.weight_decay_style must be one of {WEIGHT_DECAY_STYLES}, got '
                     f'{style!r}')
  weight_decay = train_config.get('weight_decay', 0.0)
  decay = ([optax.inject_hyperparams(optax.add_decayed_weights)(weight_decay=weight_decay)]
           if weight_decay > 0 or 'weight_decay' in per_replica else [])
  if style == 'l2':
    parts.extend(decay)
  parts.append(optax.scale_by_adam(b1=train_config.get('b1', 0.9),
                                   b2=train_config.get('b2', 0.999)))
  if style == 'decoupled':
    parts.extend(decay)
  if shape is not None:
    parts.append(optax.scale_by_schedule(shape))
  parts.append(optax.inject_hyperparams(optax.scale)(step_size=-train_config.lr))
  return optax.chain(*parts)


def set_per_replica(opt_state: Any, values: dict[str, Any]) -> Any:
  """Replicated ``opt_state`` of :func:`make_optimizer` with per-replica ``lr`` and
  ``weight_decay`` from ``values`` (``(R,)`` arrays; missing fields keep their value)."""
  names = {'lr': 'step_size', 'weight_decay': 'weight_decay'}
  updates = {}
  for field, value in values.items():
    if field not in names:
      raise ValueError(f'only {PER_REPLICA_FIELDS} may differ between replicas, got {field!r}')
    value = np.asarray(value, np.float32)
    updates[names[field]] = jnp.asarray(-value if field == 'lr' else value, jnp.float32)
  return optax.tree_utils.tree_set(opt_state, **updates) if updates else opt_state


def _manager(workdir: str, stage: str) -> ocp.CheckpointManager:
  directory = os.path.abspath(os.path.join(workdir, 'checkpoints', stage))
  workdir_guards.check_writable(directory, f'the checkpoint folder of stage {stage!r}')
  # One unnamed item (``<step>/default``), fixed here: left to orbax, the first step folder
  # it reads decides, and a step folder without that item (an empty one) would turn every
  # later restore of this manager into a multi-item one that fails.
  return ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
      item_handlers=ocp.StandardCheckpointHandler())


CHECKPOINT_METADATA = '_CHECKPOINT_METADATA'
"""The file orbax writes into every step folder it saves; a step folder without it (an
empty one, a copy interrupted mid-way, unrelated files) is not a checkpoint."""


def _step_folders(directory: str) -> list[int]:
  """The steps of the folders in ``directory`` named like a step (``<digits>``), newest
  first."""
  try:
    names = os.listdir(directory)
  except FileNotFoundError:
    return []
  return sorted((int(name) for name in names
                 if name.isdigit() and os.path.isdir(os.path.join(directory, name))),
                reverse=True)


def _move_aside(directory: str, step: int) -> str:
  """Renames ``<directory>/<step>`` to ``<step>.corrupt`` (``<step>.corrupt.<n>`` when that
  exists already); returns the new name. Nothing is deleted."""
  target, n = f'{step}.corrupt', 1
  while os.path.lexists(os.path.join(directory, target)):
    target, n = f'{step}.corrupt.{n}', n + 1
  os.replace(os.path.join(directory, str(step)), os.path.join(directory, target))
  return target


def restore_stage(run: engine.Run, *, workdir: str, stage: str,
                  metrics: workdir_lib.MetricsLog) -> tuple[ocp.CheckpointManager, engine.Run]:
  """The stage's checkpoint manager and its newest readable run (``run`` if none is saved
  yet).

  Checkpoints live in ``<workdir>/checkpoints/<stage>`` (the two latest are kept). A step
  folder that is not a checkpoint (no :data:`CHECKPOINT_METADATA`: an empty folder, a copy
  interrupted mid-way, unrelated files), at any step, and a checkpoint newer than the
  restored one that cannot be read (a truncated or missing file) are skipped with a warning
  naming each step, why, and the folder, and renamed ``<step>.corrupt`` (never deleted) so
  that orbax neither resumes from nor garbage-collects them; the newest readable one is
  restored. A failed restore leaves nothing behind for the next (the manager's layout is
  fixed, not inferred from the folder it reads first). With step folders but none readable
  the stage fails with one line naming the folder, and nothing is moved or deleted. The
  metrics log of the stage is truncated to the restored step (to step 0 when the stage
  starts afresh), so that a resumed run logs every step once. ``run`` defines the
  structure to restore.
  """
  manager = _manager(workdir, stage)
  directory = str(manager.directory)
  skipped: dict[int, str] = {}  # step -> why it was skipped
  for step in _step_folders(directory):
    if not os.path.isfile(os.path.join(directory, str(step), CHECKPOINT_METADATA)):
      skipped[step] = f'no {CHECKPOINT_METADATA}: not a (complete) checkpoint'
  restored = 0
  for step in sorted(set(manager.all_steps()) - set(skipped), reverse=True):
    try:
      run = manager.restore(step, args=ocp.args.StandardRestore(run))
    except Exception as err:  # pylint: disable=broad-except
      skipped[step] = (f'{type(err).__name__}: '
                       f'{str(err).splitlines()[0][:200] if str(err) else ""}')
      logging.warning('[%s] the checkpoint at step %d in %s cannot be read (%s); trying '
                      'the one before', stage, step, directory, skipped[step])
      continue
    restored = step
    logging.info('[%s] resuming from the checkpoint at step %d', stage, step)
    break
  if not skipped:
    metrics.truncate_after(stage, restored)
    return manager, run
  manager.close()
  steps = sorted(skipped, reverse=True)
  reasons = '; '.join(f'step {step}: {skipped[step]}' for step in steps)
  if not restored:
    raise RuntimeError(f'[{stage}] no readable checkpoint in {directory} (step(s) {steps} '
                       f'cannot be read: {reasons}); nothing was moved or deleted. Copy the '
                       'checkpoints again if they came from elsewhere, or move that folder '
                       'aside to train the stage from scratch')
  moved = [_move_aside(directory, step) for step in steps] if parallel.is_writer() else []
  logging.warning('[%s] skipped step folder(s) %s of %s (%s), moved aside as %s; continuing '
                  'from the checkpoint at step %d', stage, steps, directory, reasons,
                  ', '.join(moved) or '<step>.corrupt', restored)
  metrics.truncate_after(stage, restored)
  return _manager(workdir, stage), run


@jax.jit
def _finite_leaves(tree: Any) -> jax.Array:
  flags = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
           if jnp.issubdtype(leaf.dtype, jnp.inexact)]
  return jnp.stack(flags) if flags else jnp.ones((0,), bool)


def _non_finite_leaves(tree: Any) -> list[str]:
  """Paths of the float leaves of ``tree`` holding a NaN/Inf."""
  flags = np.asarray(parallel.to_host(_finite_leaves(tree)))
  if flags.all():
    return []
  paths = [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
           if jnp.issubdtype(leaf.dtype, jnp.inexact)]
  return [path for path, ok in zip(paths, flags) if not ok]


def _loggable(record: dict) -> dict:
  """A dispatch record for ``metrics.jsonl``: each ``(R,)`` metric as its mean over the
  replicas that trained, plus ``<name>/replicas`` (every replica's value) when ``R > 1``."""
  out: dict[str, Any] = {}
  for name, value in record.items():
    value = np.asarray(value)
    if value.ndim == 0:
      out[name] = value.item()
      continue
    finite = value[np.isfinite(value)]
    out[name] = float(finite.mean()) if finite.size else float('nan')
    if value.size > 1:
      out[f'{name}/replicas'] = value.tolist()
  return out


@dataclasses.dataclass(frozen=True)
class Stage:
  """One training stage: an engine step with its state, data and settings.

  A stage is one model or one pair of adversaries being trained (e.g. ``'flow'``,
  ``'private_a'`` or ``'hybrid_lam0.001'``) for every replica; :func:`run_stage` runs it.
  Maximum likelihood and every other objective are a stage of
  :class:`nflax.fitting.GradientStep` (:func:`train` builds it), the two-player stages
  (AlignFlow, CycleGAN, the SN-GAN baseline, the VAE-GAN) a stage of their alternating step.

  Attributes:
    name: the stage's checkpoint folder ``<workdir>/checkpoints/<name>``, its key in
      ``metrics.jsonl`` and the prefix of its progress lines.
    step_fn: the per-replica engine step ``(state, batch, key) -> (state, metrics)``.
    state: the fresh replicated training state (leaves ``(R, ...)``, ``state.step``
      ``(R,)``); the stage's latest checkpoint replaces it.
    train_data: replicated training data, leaves ``(R, n, ...)`` (parts of an
      :class:`nflax.engine.Independent` may differ in ``n``).
    keys: ``(R, 2)`` the stage's keys.
    train_config: the stage's training block: ``num_steps``, ``batch_size``,
      ``steps_per_dispatch``, ``checkpoint_every``, optional ``eval_every`` (default: every
      dispatch) and ``patience`` (default: none).
    val_data: replicated held-out data for ``evaluate``, or ``None``.
    evaluate: per-replica ``evaluate(state, val_data) -> scalar``, lower is better
      (:func:`nflax.engine.train`), or ``None``.
    snapshot: what best-tracking keeps of a state (the run's ``best``), or ``None``.
    annotate: ``annotate(run, record) -> record`` adds entries (a metric measured outside
      the step, e.g. on the run's current state) to each dispatch's record before it is
      logged, or ``None``.
  """
  name: str
  step_fn: engine.Step
  state: Any
  train_data: Any
  keys: jax.Array
  train_config: ml_collections.ConfigDict
  val_data: Any = None
  evaluate: engine.Evaluate | None = None
  snapshot: engine.Snapshot | None = None
  annotate: Callable[[engine.Run, dict], dict] | None = None


def run_stage(stage: Stage, *, workdir: str, metrics: workdir_lib.MetricsLog,
              until: int | None = None) -> engine.Result:
  """Runs ``stage`` through :func:`nflax.engine.train` with checkpoints, logs and resume.

  The stage's latest checkpoint, if any, replaces its fresh state (:func:`restore_stage`);
  every dispatch's record is written to ``metrics`` (:func:`_loggable`), and the run is
  checkpointed every ``checkpoint_every`` steps and at its end.

  Args:
    stage: the stage.
    workdir: the experiment's workdir.
    metrics: the run's metrics log.
    until: stop at this step instead of ``train_config.num_steps`` (a later call continues
      the same stage, whose optimiser schedule still spans ``num_steps``).

  Returns:
    The engine's :class:`~nflax.engine.Result` (history only of the steps run now).

  Raises:
    RuntimeError: a replica met a NaN/Inf; the message names the replica, the step and
      the last good checkpoint, which is kept.
    ValueError: the stage's checkpoint is already past ``until``.
  """
  settings = stage.train_config
  until = settings.num_steps if until is None else until
  manager, run = restore_stage(engine.init_run(stage.state, stage.snapshot), workdir=workdir,
                               stage=stage.name, metrics=metrics)
  reached = int(np.max(parallel.to_host(run.state.step)))
  if reached > until:
    manager.close()
    raise ValueError(f'[{stage.name}] asked to train to step {until}, but its checkpoint in '
                     f'{workdir} is at step {reached}; move checkpoints/{stage.name} aside to '
                     'redo it')

  def save(step: int, run: engine.Run, force: bool = False) -> None:
    # A checkpoint the run calls good is finite: the guard checks each step's metrics
    # (loss, gradient and update norms); this checks the whole state it is about to save.
    bad = _non_finite_leaves(run.state)
    if bad:
      raise engine.NonFiniteError(
          f'the state at step {step} holds NaN/Inf in {len(bad)} leaves ({", ".join(bad[:3])}'
          f'{", ..." if len(bad) > 3 else ""}) although its metrics were finite; it was not '
          'saved', run, [], [step])
    try:
      manager.save(step, args=ocp.args.StandardSave(run), force=force)
      manager.check_for_errors()
    except Exception as err:  # pylint: disable=broad-except
      raise OSError(f'[{stage.name}] saving the checkpoint of step {step} into '
                    f'{manager.directory} failed: {type(err).__name__}: {err}') from err

  def wait() -> None:
    try:
      manager.wait_until_finished()
    except Exception as err:  # pylint: disable=broad-except
      raise OSError(f'[{stage.name}] writing a checkpoint into {manager.directory} failed: '
                    f'{type(err).__name__}: {err}') from err

  def on_dispatch(run: engine.Run, record: dict) -> None:
    if stage.annotate is not None:
      record = stage.annotate(run, record)
    metrics.write(stage.name, record['step'], _loggable(record))
    if record['step'] % settings.checkpoint_every == 0 or record['step'] >= until:
      save(record['step'], run)

  try:
    result = engine.train(
        stage.step_fn, run, stage.train_data, stage.keys, num_steps=until,
        batch_size=settings.batch_size, val_data=stage.val_data, evaluate=stage.evaluate,
        snapshot=stage.snapshot, steps_per_dispatch=settings.steps_per_dispatch,
        eval_every=settings.get('eval_every'), patience=settings.get('patience'),
        name=f'[{stage.name}] ',
        stop_on_nonfinite_validation=settings.get('keep_best', True),
        callback=on_dispatch)
    wait()
    final_step = int(np.max(parallel.to_host(result.run.state.step)))
    if manager.latest_step() != final_step:
      save(final_step, result.run, force=True)
  except engine.NonFiniteError as err:
    wait()
    kept = manager.latest_step()
    where = (f'the last good checkpoint (step {kept}) is kept in {manager.directory}'
             if kept is not None else 'no checkpoint had been written yet')
    manager.close()
    raise RuntimeError(f'[{stage.name}] training stopped: {err}; {where}. Lower the learning '
                       'rate or check the data, then rerun in a new workdir (or delete this '
                       'stage\'s checkpoints).') from err
  wait()
  manager.close()
  return result


def train(objective: fitting.Objective, variables: Any, train_data: Any, val_data: Any,
          *, train_config: ml_collections.ConfigDict, workdir: str, stage: str,
          keys: jax.Array, metrics: workdir_lib.MetricsLog,
          per_replica: dict[str, Any] | None = None,
          annotate: Callable[[engine.Run, dict], dict] | None = None) -> fitting.FitResult:
  """Fits ``objective`` as one checkpointed stage (every replica): :func:`run_stage` of
  :class:`nflax.fitting.GradientStep`, then :func:`nflax.fitting.fit_result`.

  The held-out evaluation and best-parameter tracking are those of
  :func:`nflax.fitting.fit`, so the result equals that of ``fit`` with the same settings.

  Args:
    objective: the losses to minimise.
    variables: freshly initialised replicated Flax variables (define the state's shapes).
    train_data: replicated training pytree, leaves ``(R, n, ...)``.
    val_data: replicated held-out pytree or ``None``.
    train_config: the fields of :class:`Stage`'s ``train_config``, ``lr`` and the optional
      fields of :func:`make_optimizer`, and ``keep_best`` (default on: return the
      parameters of lowest held-out loss).
    workdir: the experiment's workdir.
    stage: name of this training stage.
    keys: ``(R, 2)`` the stage's keys.
    metrics: the run's metrics log.
    per_replica: ``{field: (R,) values}`` of :data:`PER_REPLICA_FIELDS` that differ
      between replicas (settings trained side by side).
    annotate: the stage's :attr:`Stage.annotate` (its run's state is a
      :class:`nflax.fitting.FitState`), or ``None``.

  Returns:
    The :class:`~nflax.fitting.FitResult` (history only of the steps run now).
  """
  per_replica = per_replica or {}
  optimizer = make_optimizer(train_config, per_replica=tuple(per_replica))
  state = fitting.init_fit_state(variables, optimizer)
  state = state.replace(opt_state=set_per_replica(state.opt_state, per_replica))
  result = run_stage(
      Stage(name=stage, step_fn=fitting.GradientStep(objective, optimizer), state=state,
            train_data=train_data, keys=keys, train_config=train_config, val_data=val_data,
            evaluate=None if val_data is None else fitting.HeldOutLoss(objective.eval_loss),
            snapshot=fitting.params_and_model_state, annotate=annotate),
      workdir=workdir, metrics=metrics)
  return fitting.fit_result(result, val_data, train_config.get('keep_best', True))


def stage_runner(workdir: str, metrics: workdir_lib.MetricsLog,
                 train_config_of: Callable[[str], ml_collections.ConfigDict],
                 prefix: str = '',
                 per_replica_of: Callable[[str], dict[str, Any]] | None = None,
                 annotate_of: Callable[[str], Callable[[engine.Run, dict], dict] | None]
                 | None = None) -> fitting.StageRunner:
  """The one checkpointing :class:`~nflax.fitting.StageRunner` of the experiments.

  Stage ``s`` of a method (LRMF's ``'private_a'``, FDRE's ``'classifier'``, ...) trains
  through :func:`train` with ``train_config_of(s)`` as the checkpointed stage
  ``<prefix>_<s>`` (``s`` without a prefix), ``per_replica_of(s)`` the training
  settings that differ between its replicas (see :func:`train`) and ``annotate_of(s)`` its
  :attr:`Stage.annotate` (``None``: none), e.g. a quality measured on the current model at
  every evaluation.
  """
  def run(stage, objective, variables, train_data, val_data, keys) -> fitting.FitResult:
    return train(objective, variables, train_data, val_data,
                 train_config=train_config_of(stage), workdir=workdir,
                 stage=f'{prefix}_{stage}' if prefix else stage, keys=keys, metrics=metrics,
                 per_replica=per_replica_of(stage) if per_replica_of else None,
                 annotate=annotate_of(stage) if annotate_of else None)
  return run
