"""Two-player (generator / critic) training: one state and one update rule for every
adversarial stage.

AlignFlow's flows against its critics (``alignflow.training``), LRMF's SN-GAN baseline
(``lrmf.baselines``) and the VAE-GAN (``nflax.vae``) all carry the same state,
:class:`TwoPlayerState`, and update each player with the same two functions, so their
:mod:`nflax.engine` steps report the same metric names:

* the generator (the player whose output is judged): ``loss``, ``grad_norm``,
  ``update_norm``;
* the critic: ``critic_loss``, ``critic_grad_norm``, ``critic_update_norm``.

``update_norm`` is, as in :class:`nflax.fitting.GradientStep`, the norm of the change
applied to the parameters (``new - old``): finite exactly when the updated parameters are,
which the engine's NaN/Inf guard relies on. Each method's step decides what the players'
losses are and in which order they move (alternating, simultaneous); this module only holds
the state and applies an optimiser step to one player.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

__all__ = ['TwoPlayerState', 'init_state', 'update_generator', 'update_critic']

Array = jax.Array
PyTree = Any


class TwoPlayerState(struct.PyTreeNode):
  """Everything a generator / critic stage needs to continue; a checkpointable pytree.

  In the engine every leaf carries a leading replica axis.

  Attributes:
    step: number of steps taken (int32).
    params: the generator's parameters.
    model_state: the generator's non-trainable collections (``{}`` if none).
    opt_state: the generator's optimiser state.
    critic_params: the critic's parameters (several critics as one pytree, e.g.
      AlignFlow's ``{'a': C_A, 'b': C_B}``).
    critic_model_state: the critic's non-trainable collections, e.g. spectral
      normalisation's ``{'batch_stats': ...}`` (``{}`` if none).
    critic_opt_state: the critic's optimiser state.
    extras: what else a method carries from step to step (AlignFlow's history pools;
      ``{}`` if nothing).
  """
  step: Array
  params: PyTree
  model_state: PyTree
  opt_state: PyTree
  critic_params: PyTree
  critic_model_state: PyTree
  critic_opt_state: PyTree
  extras: PyTree


def _split_variables(variables: PyTree, who: str) -> tuple[PyTree, PyTree]:
  if 'params' not in variables:
    raise ValueError(f"{who} must contain a 'params' collection, got {sorted(variables)}")
  return variables['params'], {k: v for k, v in variables.items() if k != 'params'}


def init_state(*, variables: PyTree, critic_variables: PyTree,
               optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               extras: PyTree = None) -> TwoPlayerState:
  """A fresh :class:`TwoPlayerState` (one replica) from the players' Flax variables.

  Args:
    variables: the generator's variables, ``{'params': ..., <collections>}``.
    critic_variables: the critic's variables, ``{'params': ..., <collections>}``.
    optimizer: the generator's optax transformation.
    critic_optimizer: the critic's optax transformation.
    extras: see :class:`TwoPlayerState` (default ``{}``).
  """
  params, model_state = _split_variables(variables, 'variables')
  critic_params, critic_model_state = _split_variables(critic_variables, 'critic_variables')
  return TwoPlayerState(
      step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
      opt_state=optimizer.init(params), critic_params=critic_params,
      critic_model_state=critic_model_state,
      critic_opt_state=critic_optimizer.init(critic_params),
      extras={} if extras is None else extras)


def _step(params: PyTree, opt_state: PyTree, grads: PyTree,
          optimizer: optax.GradientTransformation) -> tuple[PyTree, PyTree, Array, Array]:
  updates, opt_state = optimizer.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  change = jax.tree.map(jnp.subtract, new_params, params)
  return new_params, opt_state, optax.tree.norm(grads), optax.tree.norm(change)


def update_generator(state: TwoPlayerState, grads: PyTree,
                     optimizer: optax.GradientTransformation, *,
                     model_state: PyTree | None = None
                     ) -> tuple[TwoPlayerState, dict[str, Array]]:
  """One optimiser step of the generator on ``grads``; ``model_state``: its updated
  collections (kept when ``None``). Returns the state and ``grad_norm``, ``update_norm``."""
  params, opt_state, grad_norm, update_norm = _step(state.params, state.opt_state, grads,
                                                    optimizer)
  state = state.replace(params=params, opt_state=opt_state,
                        model_state=state.model_state if model_state is None else model_state)
  return state, {'grad_norm': grad_norm, 'update_norm': update_norm}


def update_critic(state: TwoPlayerState, grads: PyTree,
                  optimizer: optax.GradientTransformation, *,
                  model_state: PyTree | None = None
                  ) -> tuple[TwoPlayerState, dict[str, Array]]:
  """One optimiser step of the critic on ``grads``; ``model_state``: its updated
  collections (kept when ``None``). Returns the state and ``critic_grad_norm``,
  ``critic_update_norm``."""
  params, opt_state, grad_norm, update_norm = _step(state.critic_params,
                                                    state.critic_opt_state, grads, optimizer)
  state = state.replace(
      critic_params=params, critic_opt_state=opt_state,
      critic_model_state=state.critic_model_state if model_state is None else model_state)
  return state, {'critic_grad_norm': grad_norm, 'critic_update_norm': update_norm}
