"""Alternating generator / critic updates for AlignFlow (Eq. 7) and its CycleGAN baseline.

Pure pieces, all jit-compatible:

* :class:`HistoryPool`, :func:`init_pool`, :func:`query_pool`: the history of generated
  samples that the critics are trained on (Shrivastava et al. 2017; CycleGAN's and the
  public AlignFlow code's image pool of 50), as a functional buffer;
* :func:`alignflow_objective`: the flows' side of Eq. 7 for a model, critics and weights;
* :func:`train_step`: one generator update (on the objective) followed by one update of
  both critics against real samples and pooled generated samples: a step of the one
  training engine (:mod:`nflax.engine`), which scans it over dispatches, replicas and
  devices, guards it against NaN/Inf and checkpoints its state.

A generator objective is any function
``objective(params, model_state, critic_params, a, b, key) -> (loss, (fake_a, fake_b,
metrics))`` with ``fake_a = G_{B->A}(b)`` and ``fake_b = G_{A->B}(a)``; the same step
trains AlignFlow (adversarial-only, hybrid or MLE-only, one code path) and CycleGAN.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from alignflow import losses
from nflax import engine, gan, two_player

__all__ = [
    'GeneratorObjective', 'HistoryPool', 'init_pool', 'query_pool', 'init_state',
    'alignflow_objective', 'train_step', 'AlternatingStep'
]

Array = jax.Array
PyTree = Any
GeneratorObjective = Callable[..., tuple[Array, tuple[Array, Array, dict]]]


class HistoryPool(struct.PyTreeNode):
  """A buffer of up to ``capacity`` past generated samples.

  Attributes:
    samples: ``(capacity, *event_shape)`` stored samples (the first ``count`` are valid).
    count: number of valid samples, an int32 scalar.
  """
  samples: Array
  count: Array


def init_pool(capacity: int, event_shape: tuple[int, ...]) -> HistoryPool:
  """An empty pool of ``capacity`` samples of ``event_shape`` (``capacity=0``: no pool)."""
  if capacity < 0:
    raise ValueError(f'pool capacity must be >= 0, got {capacity}')
  return HistoryPool(samples=jnp.zeros((capacity, *event_shape), jnp.float32),
                     count=jnp.zeros((), jnp.int32))


@jax.jit
def query_pool(pool: HistoryPool, fakes: Array, key: Array) -> tuple[HistoryPool, Array]:
  """Mixes new generated samples with past ones, one sample at a time.

  For each sample of ``fakes``, in order: while the pool is not full it is stored and
  returned; once full, with probability 1/2 a uniformly chosen stored sample is returned
  and replaced by the new one, otherwise the new one is returned.

  Args:
    pool: from :func:`init_pool`.
    fakes: ``(batch, *event_shape)`` new generated samples.
    key: PRNG key of the coin flips and slot choices.

  Returns:
    ``(new_pool, returned)``, ``returned`` of the shape of ``fakes``. A pool of capacity
    0 returns ``fakes`` unchanged.
  """
  capacity = pool.samples.shape[0]
  if capacity == 0:
    return pool, fakes
  if fakes.shape[1:] != pool.samples.shape[1:]:
    raise ValueError(f'query_pool: samples of shape {fakes.shape[1:]} do not fit a pool of '
                     f'{pool.samples.shape[1:]}')

  def one(pool, inputs):
    fake, sample_key = inputs
    coin_key, slot_key = jax.random.split(sample_key)
    full = pool.count >= capacity
    swap = full & jax.random.bernoulli(coin_key)
    slot = jnp.where(full, jax.random.randint(slot_key, (), 0, capacity), pool.count)
    returned = jnp.where(swap, pool.samples[slot], fake)
    store = ~full | swap
    samples = pool.samples.at[slot].set(jnp.where(store, fake, pool.samples[slot]))
    return HistoryPool(samples, jnp.minimum(pool.count + 1, capacity)), returned

  keys = jax.random.split(key, fakes.shape[0])
  return jax.lax.scan(one, pool, (fakes.astype(pool.samples.dtype), keys))


def init_state(*, variables: PyTree, critic_params: PyTree,
               optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation, pool_size: int,
               event_shape: tuple[int, ...]) -> two_player.TwoPlayerState:
  """A fresh :class:`nflax.two_player.TwoPlayerState` of AlignFlow or CycleGAN (one
  replica): the generator is the model (AlignFlow's two flows, or CycleGAN's two nets),
  the critic player both critics ``{'a': C_A, 'b': C_B}``, and ``extras`` the history
  pools ``{'pool_a': generated A samples, 'pool_b': generated B samples}``.

  Args:
    variables: the generator's Flax variables (``{'params': ..., ...}``).
    critic_params: ``{'a': ..., 'b': ...}`` critic parameters.
    optimizer: the generator's optax transformation.
    critic_optimizer: the critics' optax transformation.
    pool_size: capacity of each history pool (0: none).
    event_shape: shape of one sample.
  """
  if set(critic_params) != {'a', 'b'}:
    raise ValueError(f"critic_params must be {{'a': ..., 'b': ...}}, got {sorted(critic_params)}")
  return two_player.init_state(
      variables=variables, critic_variables={'params': critic_params}, optimizer=optimizer,
      critic_optimizer=critic_optimizer,
      extras={'pool_a': init_pool(pool_size, event_shape),
              'pool_b': init_pool(pool_size, event_shape)})


def alignflow_objective(*, model: nn.Module, critic: nn.Module, form: str, lam_a: float,
                        lam_b: float, adversarial_weight: float,
                        dequantization_width: float = 0.0) -> GeneratorObjective:
  """The flows' side of Eq. 7 for an :class:`~alignflow.model.AlignFlow` ``model``.

  ``loss = w (g_A + g_B) - lam_A E log p_A(a) - lam_B E log p_B(b)`` (:func:`~alignflow.
  losses.hybrid_loss`) with ``g_A = generator_loss(C_A(G_{B->A}(b)))`` and ``g_B`` alike.
  ``w = 0`` skips the critics (MLE-only). With ``dequantization_width = delta > 0`` the
  real data are first perturbed by ``U[-delta/2, delta/2)`` noise, the dequantisation
  that keeps the likelihood of quantised pixels finite (RealNVP Sec. 4.1).

  Returns:
    ``objective(params, model_state, critic_params, a, b, key) -> (loss, (fake_a,
    fake_b, metrics))``; ``metrics`` holds ``log_likelihood_a/b`` (nats per example)
    and ``generator_gan_a/b``.
  """
  losses.hybrid_loss(gan_a=0.0, gan_b=0.0, log_likelihood_a=0.0, log_likelihood_b=0.0,
                     lam_a=lam_a, lam_b=lam_b, adversarial_weight=adversarial_weight)

  def objective(params, model_state, critic_params, a, b, key):
    if dequantization_width > 0:
      key_a, key_b = jax.random.split(key)
      a = a + dequantization_width * (jax.random.uniform(key_a, a.shape) - 0.5)
      b = b + dequantization_width * (jax.random.uniform(key_b, b.shape) - 0.5)
    fake_b, fake_a, log_prob_a, log_prob_b = model.apply(
        {'params': params, **model_state}, a, b, method=type(model).translate_with_log_probs)
    if adversarial_weight > 0:
      gan_a = gan.generator_loss(
          fake_logits=critic.apply({'params': critic_params['a']}, fake_a), form=form)
      gan_b = gan.generator_loss(
          fake_logits=critic.apply({'params': critic_params['b']}, fake_b), form=form)
    else:
      gan_a = gan_b = jnp.zeros(())
    log_likelihood_a = losses.mle_value(log_prob=log_prob_a)
    log_likelihood_b = losses.mle_value(log_prob=log_prob_b)
    loss = losses.hybrid_loss(
        gan_a=gan_a, gan_b=gan_b, log_likelihood_a=log_likelihood_a,
        log_likelihood_b=log_likelihood_b, lam_a=lam_a, lam_b=lam_b,
        adversarial_weight=adversarial_weight)
    metrics = {'log_likelihood_a': log_likelihood_a, 'log_likelihood_b': log_likelihood_b,
               'generator_gan_a': gan_a, 'generator_gan_b': gan_b}
    return loss, (fake_a, fake_b, metrics)

  return objective


def train_step(state: two_player.TwoPlayerState, batch: engine.Independent, key: Array, *,
               objective: GeneratorObjective, critic: nn.Module, form: str,
               optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               train_critics: bool) -> tuple[two_player.TwoPlayerState, dict[str, Array]]:
  """One alternating update: the generator on ``objective``, then both critics.

  1. The generator takes one optimiser step on ``objective`` against the current
     critics, producing ``fake_a = G_{B->A}(b)`` and ``fake_b = G_{A->B}(a)``.
  2. With ``train_critics``, the generated samples go through the history pools and
     ``C_A`` (real ``a`` vs pooled ``fake_a``) and ``C_B`` (real ``b`` vs pooled
     ``fake_b``) take one optimiser step on :func:`~nflax.gan.critic_loss`
     (i.e. they maximise ``L_GAN``, Eq. 7).

  Pure: :class:`AlternatingStep` binds the keyword arguments into an :mod:`nflax.engine`
  step.

  Args:
    state: from :func:`init_state`.
    batch: ``engine.Independent((a, b))``, unpaired batches of the two domains.
    key: this step's key.
    objective: the generator objective (e.g. :func:`alignflow_objective`).
    critic: the critic module (applied with ``critic_params['a']`` and ``['b']``).
    form: GAN form of the critics' loss, one of :data:`nflax.gan.GAN_FORMS`.
    optimizer: the generator's optax transformation.
    critic_optimizer: the critics' optax transformation.
    train_critics: update the critics (off for MLE-only training).

  Returns:
    ``(new_state, metrics)``: the generator's ``loss``, ``grad_norm``, ``update_norm``,
    with ``train_critics`` the critics' ``critic_loss`` (``critic_loss_a + critic_loss_b``),
    ``critic_grad_norm``, ``critic_update_norm`` (:mod:`nflax.two_player`), and the
    objective's metrics.
  """
  a, b = batch.parts
  key_objective, key_pool_a, key_pool_b = jax.random.split(key, 3)
  (loss, (fake_a, fake_b, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(
      state.params, state.model_state, state.critic_params, a, b, key_objective)
  state, norms = two_player.update_generator(state, grads, optimizer)
  metrics = {**metrics, 'loss': loss, **norms}
  if train_critics:
    pool_a, fake_a = query_pool(state.extras['pool_a'], jax.lax.stop_gradient(fake_a),
                                key_pool_a)
    pool_b, fake_b = query_pool(state.extras['pool_b'], jax.lax.stop_gradient(fake_b),
                                key_pool_b)

    def critics_loss(critic_params):
      loss_a = gan.critic_loss(
          real_logits=critic.apply({'params': critic_params['a']}, a),
          fake_logits=critic.apply({'params': critic_params['a']}, fake_a), form=form)
      loss_b = gan.critic_loss(
          real_logits=critic.apply({'params': critic_params['b']}, b),
          fake_logits=critic.apply({'params': critic_params['b']}, fake_b), form=form)
      return loss_a + loss_b, (loss_a, loss_b)

    (critic_loss, (loss_a, loss_b)), critic_grads = jax.value_and_grad(
        critics_loss, has_aux=True)(state.critic_params)
    state, critic_norms = two_player.update_critic(state, critic_grads, critic_optimizer)
    state = state.replace(extras={'pool_a': pool_a, 'pool_b': pool_b})
    metrics.update(critic_loss=critic_loss, critic_loss_a=loss_a, critic_loss_b=loss_b,
                   **critic_norms)
  return state.replace(step=state.step + 1), metrics


@dataclasses.dataclass(frozen=True)
class AlternatingStep:
  """:func:`train_step` with its settings bound: the :mod:`nflax.engine` step of a stage.

  A frozen dataclass, so two equal steps (the same objective, critic, optimisers) share one
  compilation, e.g. when a stage is continued in several calls.
  """
  objective: GeneratorObjective
  critic: nn.Module
  form: str
  optimizer: optax.GradientTransformation
  critic_optimizer: optax.GradientTransformation
  train_critics: bool

  def __call__(self, state: two_player.TwoPlayerState, batch: engine.Independent,
               key: Array) -> tuple[two_player.TwoPlayerState, dict[str, Array]]:
    return train_step(state, batch, key, objective=self.objective, critic=self.critic,
                      form=self.form, optimizer=self.optimizer,
                      critic_optimizer=self.critic_optimizer, train_critics=self.train_critics)
