"""Checkpointed, logged, resumable training: ``nflax.fitting.fit`` plus a workdir.

Every experiment trains through :func:`train`, one call per stage (a stage is
one model being fitted, e.g. ``'flow'`` or ``'private_a'``). A stage
checkpoints its :class:`~nflax.fitting.FitState` with orbax every
``checkpoint_every`` steps and at its end; rerunning the experiment restores
the latest checkpoint and continues, and a finished stage is restored without
training. Because batches and keys are derived from ``(seed, step)``, the
resumed run ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import optax
import orbax.checkpoint as ocp
from absl import logging

from experiments import workdir as workdir_lib
from nflax import fitting


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam (AdamW with ``weight_decay > 0``), optional clipping and learning-rate schedule.

  ``schedule``: ``'constant'`` (default) or ``'cosine'`` (decay from ``lr`` to 0 over
  ``num_steps``; lets maximum-likelihood fits settle, which LRMF's c(A, B) needs).
  """
  schedule = train_config.get('schedule', 'constant')
  if schedule == 'cosine':
    lr = optax.cosine_decay_schedule(train_config.lr, train_config.num_steps)
  elif schedule == 'constant':
    lr = train_config.lr
  else:
    raise ValueError(f"train schedule must be 'constant' or 'cosine', got {schedule!r}")
  if train_config.get('weight_decay', 0.0) > 0:
    opt = optax.adamw(lr, weight_decay=train_config.weight_decay)
  else:
    opt = optax.adam(lr)
  clip = train_config.get('grad_clip', 0.0)
  return optax.chain(optax.clip_by_global_norm(clip), opt) if clip > 0 else opt


def restore_stage(state: Any, *, workdir: str, stage: str,
                  metrics: workdir_lib.MetricsLog) -> tuple[ocp.CheckpointManager, Any]:
  """The stage's checkpoint manager and its latest state (``state`` if none is saved yet).

  Checkpoints live in ``<workdir>/checkpoints/<stage>`` (the two latest are kept); on
  restore, the metrics log of the stage is truncated to the restored step so that a
  resumed run logs every step once. ``state`` is any checkpointable pytree and defines
  the structure to restore.
  """
  manager = ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints', stage)),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
  latest = manager.latest_step()
  if latest is not None:
    state = manager.restore(latest, args=ocp.args.StandardRestore(state))
    logging.info('[%s] resuming from the checkpoint at step %d', stage, latest)
    metrics.truncate_after(stage, latest)
  return manager, state


def train(objective: fitting.Objective, variables: Any, train_data: Any, val_data: Any,
          *, train_config: ml_collections.ConfigDict, workdir: str, stage: str,
          key: jax.Array, metrics: workdir_lib.MetricsLog) -> fitting.FitResult:
  """Fits ``objective`` for one stage with checkpoints, logs and resume.

  Args:
    objective: the losses to minimise.
    variables: freshly initialised Flax variables (define the state's shapes).
    train_data: training pytree (common leading axis).
    val_data: held-out pytree or ``None``.
    train_config: fields ``num_steps, batch_size, lr, steps_per_dispatch,
      eval_every, patience, checkpoint_every`` (and optional ``weight_decay``,
      ``grad_clip``, ``schedule``, ``keep_best``).
    workdir: the experiment's workdir; checkpoints go to
      ``<workdir>/checkpoints/<stage>``.
    stage: name of this training stage.
    key: the stage's key.
    metrics: the run's metrics log.

  Returns:
    The :class:`~nflax.fitting.FitResult` (history only of the steps run now).

  Raises:
    RuntimeError: the loss or a gradient became NaN/Inf; the message names the
      step and the last good checkpoint, which is kept.
  """
  optimizer = make_optimizer(train_config)
  manager, state = restore_stage(fitting.init_fit_state(variables, optimizer), workdir=workdir,
                                 stage=stage, metrics=metrics)
  log_progress = fitting.progress_logger(train_config.num_steps, prefix=f'[{stage}] ')
  every = train_config.checkpoint_every

  def on_dispatch(state: fitting.FitState, record: dict) -> None:
    metrics.write(stage, record['step'], record)
    log_progress(state, record)
    if record['step'] % every == 0 or record['step'] >= train_config.num_steps:
      manager.save(record['step'], args=ocp.args.StandardSave(state))

  try:
    result = fitting.fit(
        objective, state, train_data, val_data, optimizer=optimizer,
        num_steps=train_config.num_steps, batch_size=train_config.batch_size, key=key,
        steps_per_dispatch=train_config.steps_per_dispatch,
        eval_every=train_config.eval_every, patience=train_config.get('patience'),
        keep_best=train_config.get('keep_best', True), callback=on_dispatch)
  except fitting.NonFiniteError as err:
    manager.wait_until_finished()
    kept = manager.latest_step()
    where = (f'the last good checkpoint (step {kept}) is kept in {manager.directory}'
             if kept is not None else 'no checkpoint had been written yet')
    raise RuntimeError(f'[{stage}] training stopped: {err}; {where}. Lower the learning '
                       'rate or check the data before rerunning.') from err
  manager.wait_until_finished()
  if int(result.state.step) != manager.latest_step():
    manager.save(int(result.state.step), args=ocp.args.StandardSave(result.state),
                 force=True)
    manager.wait_until_finished()
  manager.close()
  return result
