"""The one two-player state and its updates (nflax.two_player)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nflax import two_player


def _state():
  variables = {'params': {'w': jnp.array([1.0, -2.0])}, 'batch_stats': {'m': jnp.zeros(2)}}
  critic_variables = {'params': {'v': jnp.array([[0.5]])}}
  return two_player.init_state(variables=variables, critic_variables=critic_variables,
                               optimizer=optax.adam(0.1), critic_optimizer=optax.sgd(0.5),
                               extras={'pool': jnp.arange(3.0)})


def test_init_splits_each_players_variables_and_keeps_extras():
  state = _state()
  assert int(state.step) == 0
  assert set(state.params) == {'w'} and set(state.model_state) == {'batch_stats'}
  assert set(state.critic_params) == {'v'} and state.critic_model_state == {}
  np.testing.assert_array_equal(state.extras['pool'], [0.0, 1.0, 2.0])
  with pytest.raises(ValueError, match="critic_variables must contain a 'params'"):
    two_player.init_state(variables={'params': {}}, critic_variables={'batch_stats': {}},
                          optimizer=optax.sgd(1.0), critic_optimizer=optax.sgd(1.0))


def test_each_update_is_one_optimiser_step_of_its_own_player():
  state = _state()
  grads = {'w': jnp.array([0.3, -0.1])}
  new, norms = two_player.update_generator(state, grads, optax.adam(0.1))
  updates, _ = optax.adam(0.1).update(grads, optax.adam(0.1).init(state.params), state.params)
  expected = optax.apply_updates(state.params, updates)
  np.testing.assert_allclose(new.params['w'], expected['w'], rtol=1e-6)
  # the norm of the applied change (new - old), and the gradient's
  np.testing.assert_allclose(norms['update_norm'], jnp.linalg.norm(expected['w'] - state.params['w']),
                             rtol=1e-5)
  np.testing.assert_allclose(norms['grad_norm'], jnp.linalg.norm(grads['w']), rtol=1e-6)
  # the other player, the model state and the extras are untouched
  assert new.critic_params is state.critic_params and new.model_state is state.model_state
  assert new.extras is state.extras and int(new.step) == 0

  critic_grads = {'v': jnp.array([[2.0]])}
  stats = {'batch_stats': {'u': jnp.ones(1)}}
  new, norms = two_player.update_critic(state, critic_grads, optax.sgd(0.5), model_state=stats)
  np.testing.assert_allclose(new.critic_params['v'], [[0.5 - 0.5 * 2.0]])
  np.testing.assert_allclose(norms['critic_update_norm'], 1.0, rtol=1e-6)
  np.testing.assert_allclose(norms['critic_grad_norm'], 2.0, rtol=1e-6)
  assert new.critic_model_state is stats and new.params is state.params


def test_a_non_finite_gradient_shows_in_the_update_norm():
  """The engine's guard halts on non-finite metrics: a NaN gradient must not pass silently."""
  state = _state()
  _, norms = two_player.update_generator(state, {'w': jnp.array([jnp.nan, 0.0])},
                                         optax.adam(0.1))
  assert not np.isfinite(norms['update_norm'])
  assert jax.tree.structure(state) == jax.tree.structure(
      two_player.update_critic(state, {'v': jnp.zeros((1, 1))}, optax.sgd(0.5))[0])
