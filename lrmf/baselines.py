"""The alignment baselines LRMF is compared with (LRMF Sec. 4, setup 1; Fig. 3 and 4).

Each baseline trains (or builds) a map ``T`` that sends data set A towards B:

* MMD (Fig. 4): minimise :func:`lrmf.discrepancies.mmd_loss` between ``T(A)`` and ``B``.
* EMD (Fig. 4): minimise the Sinkhorn divergence
  :func:`lrmf.discrepancies.sinkhorn_divergence` between ``T(A)`` and ``B``;
  :func:`lrmf.discrepancies.exact_emd` is the exact cost for evaluation.
* ``F o G^-1`` (Fig. 4, Sec. 3 "Composition of inverted flows"): no training
  of ``T``; :func:`back_to_back` composes the flow of a density fitted to A
  (data -> latent) with the inverse of the flow of a density fitted to B.
* CORAL and the EMD (optimal-transport) map (setup 3, digit embeddings): closed-form maps
  in :mod:`lrmf.discrepancies`.
* SN-GAN (Fig. 3, Fig. 4): adversarial alignment against a spectrally
  normalised critic (:class:`SpectralNormCritic`, :func:`adversarial_step`)
  with the cross-entropy GAN losses of :mod:`nflax.gan`.

The local-structure metric of setup 1 is :func:`one_nn_accuracy`: a
1-nearest-neighbour classifier fitted to B's points and labels, scored on
``T(A)`` with A's labels (paper, Fig. 4: RealNVP LRMF 0.99 +- 0.0003,
RealNVP ``F o G^-1`` 0.91 +- 0.05, SN-GAN 0.7 to 1.0 depending on when it
is stopped).

The sample-based discrepancies plug into :func:`nflax.fitting.fit` through
:func:`alignment_objective`, e.g. the EMD baseline is
``alignment_objective(flow=T, discrepancy=functools.partial(
discrepancies.sinkhorn_divergence, epsilon=0.01, num_iters=200))`` trained on ``engine.Independent((a, b))``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrmf import discrepancies
from nflax import densities, engine, fitting, gan, two_player
from nflax.bijectors.base import Bijector, Chain, Inverse

__all__ = [
    'Discrepancy', 'alignment_objective', 'back_to_back', 'back_to_back_variables',
    'back_to_back_from_densities', 'SpectralNormCritic', 'init_adversarial_state',
    'adversarial_step', 'one_nn_accuracy'
]

Array = jax.Array
Variables = Any
Discrepancy = Callable[..., Array]


def _apply_flow(flow: Bijector, params: Variables, model_state: Variables, a: Array,
                key: Array) -> tuple[Array, Variables]:
  """``T(a)`` in training mode: model-state collections are used and updated."""
  variables = {'params': params, **model_state}
  rngs = {'hutchinson': key}
  if model_state:
    return flow.apply(variables, a, method=type(flow).forward, mutable=list(model_state),
                      rngs=rngs)
  return flow.apply(variables, a, method=type(flow).forward, rngs=rngs), model_state


def alignment_objective(*, flow: Bijector, discrepancy: Discrepancy) -> fitting.Objective:
  """Trains ``T`` to minimise a sample discrepancy between ``T(A)`` and ``B`` (MMD/EMD baselines).

  ``discrepancy(x=T(a), y=b) -> scalar`` is :func:`lrmf.discrepancies.mmd_loss` or
  :func:`lrmf.discrepancies.sinkhorn_divergence` with its hyper-parameters bound by
  ``functools.partial``. Batches and data sets are
  ``nflax.engine.Independent((a, b))`` with ``a (n_a, d)``, ``b (n_b, d)``; the
  evaluation loss is the discrepancy between the whole held-out sets (``n_a x
  n_b`` kernel or cost matrices, fine for a few thousand points). The flow's
  forward map is ``T``; its key is passed as the ``'hutchinson'`` rng (FFJORD).

  Args:
    flow: the transformation ``T`` (forward: A -> B).
    discrepancy: keyword-only function of ``x`` and ``y``.

  Returns:
    A :class:`nflax.fitting.Objective` for :func:`nflax.fitting.fit`.
  """

  def train_loss(params, model_state, batch, key):
    a, b = batch.parts
    transformed, new_state = _apply_flow(flow, params, model_state, a, key)
    return discrepancy(x=transformed, y=b), new_state

  def eval_loss(params, model_state, data):
    a, b = data.parts
    transformed = flow.apply({'params': params, **model_state}, a, method=type(flow).forward,
                             rngs={'hutchinson': jax.random.PRNGKey(0)})
    return discrepancy(x=transformed, y=b)

  return fitting.Objective(train_loss, eval_loss)


def back_to_back(flow_a: Bijector, flow_b: Bijector) -> Chain:
  """The map A -> B ``x -> flow_b^{-1}(flow_a(x))`` (Fig. 4 "F o G^-1", AlignFlow-style).

  ``flow_a`` and ``flow_b`` are the data -> latent flows of density models
  fitted to A and to B with the same base density, so the composition pushes
  A's model onto B's model. Its log-determinant is
  ``log|det d flow_a/dx| + log|det d flow_b^{-1}/dz|`` at ``z = flow_a(x)``.
  Both flows are deep-copied, so passing one architecture instance twice
  still gives two independent parameter sets.

  Args:
    flow_a: flow of the model fitted to A.
    flow_b: flow of the model fitted to B.

  Returns:
    ``Chain((flow_a, Inverse(flow_b)))``; its variables are
    :func:`back_to_back_variables` of the two fitted flows' variables.
  """
  return Chain((flow_a.copy(), Inverse(flow_b.copy())))


def back_to_back_variables(variables_a: Variables, variables_b: Variables) -> Variables:
  """Variables of :func:`back_to_back` from the fitted flows' variables.

  The chain stores ``flow_a`` under ``layers_0`` and ``flow_b`` under
  ``layers_1/bijector`` in every collection (``params``, ``batch_stats``...).

  Args:
    variables_a: Flax variables of ``flow_a`` (``{'params': ..., ...}``).
    variables_b: Flax variables of ``flow_b``.

  Returns:
    ``{collection: {'layers_0': ..., 'layers_1': {'bijector': ...}}}``.
  """
  combined: dict[str, dict] = {}
  for collection, tree in variables_a.items():
    combined.setdefault(collection, {})['layers_0'] = tree
  for collection, tree in variables_b.items():
    combined.setdefault(collection, {})['layers_1'] = {'bijector': tree}
  return combined


def back_to_back_from_densities(*, density_a: densities.FlowDensity, variables_a: Variables,
                                density_b: densities.FlowDensity,
                                variables_b: Variables) -> tuple[Chain, Variables]:
  """:func:`back_to_back` of two fitted :class:`nflax.densities.FlowDensity` models.

  The composition only maps A's model onto B's when both latents follow the
  same fixed base density, so the bases must be equal and parameter-free
  (e.g. ``StandardNormal``).

  Args:
    density_a: flow density fitted to A.
    variables_a: its variables (``{'params': {'flow': ...}, ...}``).
    density_b: flow density fitted to B.
    variables_b: its variables.

  Returns:
    ``(bijector, variables)`` with ``bijector.apply(variables, a)`` giving
    ``(F o G^-1)(a)`` and its log-determinant.
  """
  for name, density in (('density_a', density_a), ('density_b', density_b)):
    if not isinstance(density, densities.FlowDensity):
      raise ValueError(f'{name} must be a FlowDensity, got {type(density).__name__}')
  if density_a.base != density_b.base:
    raise ValueError('back-to-back composition needs the same base density for both models, '
                     f'got {density_a.base} and {density_b.base}')
  for name, variables in (('variables_a', variables_a), ('variables_b', variables_b)):
    if any('base' in tree for tree in variables.values()):
      raise ValueError(f'{name} has base-density variables; the composition needs a fixed, '
                       'parameter-free base shared by both models')

  def flow_part(variables):
    return {collection: tree['flow'] for collection, tree in variables.items() if 'flow' in tree}

  return (back_to_back(density_a.flow, density_b.flow),
          back_to_back_variables(flow_part(variables_a), flow_part(variables_b)))


class SpectralNormCritic(nn.Module):
  """MLP critic whose every dense kernel is spectrally normalised (SN-GAN, Fig. 3).

  ``logit(x) = W_L(phi(... phi(W_1 x + c_1) ...)) + c_L`` with each
  ``W_l = V_l / sigma(V_l)``, ``sigma`` the largest singular value of the
  stored kernel ``V_l`` estimated by power iteration
  (:class:`flax.linen.SpectralNorm`; Miyato et al. 2018). The power-iteration
  vectors ``u`` and estimates ``sigma`` live in the ``'batch_stats'``
  collection: train with ``update_stats=True`` and
  ``mutable=['batch_stats']`` so the estimate sharpens across steps, evaluate
  with ``update_stats=False``.

  Attributes:
    hidden: widths of the hidden layers.
    activation: non-linearity ``phi`` (leaky ReLU, slope 0.2, by default).
    power_iterations: power-iteration steps per call.
  """

  hidden: Sequence[int] = (128, 128)
  activation: Callable[[Array], Array] = functools.partial(nn.leaky_relu, negative_slope=0.2)
  power_iterations: int = 1

  @nn.compact
  def __call__(self, x: Array, *, update_stats: bool) -> Array:
    """Logits ``(batch,)`` for inputs ``(batch, d)``."""
    if x.ndim != 2:
      raise ValueError(f'SpectralNormCritic expects inputs (batch, d), got {tuple(x.shape)}')
    for width in self.hidden:
      x = nn.SpectralNorm(nn.Dense(width), n_steps=self.power_iterations)(
          x, update_stats=update_stats)
      x = self.activation(x)
    x = nn.SpectralNorm(nn.Dense(1), n_steps=self.power_iterations)(x, update_stats=update_stats)
    return x[:, 0]


def init_adversarial_state(*, flow_variables: Variables, critic_variables: Variables,
                           flow_optimizer: optax.GradientTransformation,
                           critic_optimizer: optax.GradientTransformation
                           ) -> two_player.TwoPlayerState:
  """A fresh :class:`nflax.two_player.TwoPlayerState` of the SN-GAN baseline: the
  generator is ``T``, the critic a :class:`SpectralNormCritic` whose ``'batch_stats'``
  (power-iteration vectors) are its model state."""
  if 'batch_stats' not in critic_variables:
    raise ValueError("critic_variables must contain the 'batch_stats' collection of "
                     'SpectralNorm (initialise the critic with update_stats=False)')
  return two_player.init_state(variables=flow_variables, critic_variables=critic_variables,
                               optimizer=flow_optimizer, critic_optimizer=critic_optimizer)


def adversarial_step(state: two_player.TwoPlayerState, batch: engine.Independent, key: Array, *,
                     flow: Bijector, critic: nn.Module,
                     flow_optimizer: optax.GradientTransformation,
                     critic_optimizer: optax.GradientTransformation
                     ) -> tuple[two_player.TwoPlayerState, dict[str, Array]]:
  """One SN-GAN alignment step: a critic update, then a transform update.

  1. ``T(a)`` is computed once (its VJP kept for step 3).
  2. The critic takes one optimiser step on the binary cross-entropy
     ``nflax.gan.critic_loss(form='cross_entropy')`` over the batch ``[b; T(a)]``
     (one forward, so one power-iteration update of the spectral-norm statistics).
  3. ``T`` takes one optimiser step on the non-saturating
     ``nflax.gan.generator_loss(form='cross_entropy')`` against the updated critic
     (statistics frozen).

  Pure, an :mod:`nflax.engine` step once the static arguments are bound
  (``functools.partial(adversarial_step, flow=..., critic=..., flow_optimizer=...,
  critic_optimizer=...)``).

  Args:
    state: from :func:`init_adversarial_state`.
    batch: ``engine.Independent((a, b))``, ``a (n, d)`` from A, ``b (m, d)`` from B.
    key: randomness of this step (the flow's ``'hutchinson'`` rng).
    flow: the transformation ``T`` (forward: A -> B).
    critic: a :class:`SpectralNormCritic` (any module with an ``update_stats``
      keyword and a ``'batch_stats'`` collection).
    flow_optimizer: optax transformation of ``T``.
    critic_optimizer: optax transformation of the critic.

  Returns:
    ``(new_state, metrics)``: the generator's (``T``'s) ``loss`` against the updated
    critic, ``grad_norm`` and ``update_norm``, and the critic's ``critic_loss`` (before its
    update), ``critic_grad_norm`` and ``critic_update_norm`` (:mod:`nflax.two_player`).
  """
  a, b = batch.parts
  fake, flow_vjp, flow_state = jax.vjp(
      lambda params: _apply_flow(flow, params, state.model_state, a, key), state.params,
      has_aux=True)
  fake_const = jax.lax.stop_gradient(fake)
  num_real = b.shape[0]

  def critic_objective(params):
    logits, updates = critic.apply(
        {'params': params, **state.critic_model_state},
        jnp.concatenate([b, fake_const]), update_stats=True, mutable=['batch_stats'])
    loss = gan.critic_loss(real_logits=logits[:num_real], fake_logits=logits[num_real:],
                           form='cross_entropy')
    return loss, updates

  (c_loss, critic_model_state), critic_grads = jax.value_and_grad(
      critic_objective, has_aux=True)(state.critic_params)
  state, critic_norms = two_player.update_critic(state, critic_grads, critic_optimizer,
                                                 model_state=critic_model_state)

  def transform_objective(transformed):
    logits = critic.apply({'params': state.critic_params, **state.critic_model_state},
                          transformed, update_stats=False)
    return gan.generator_loss(fake_logits=logits, form='cross_entropy')

  g_loss, fake_grads = jax.value_and_grad(transform_objective)(fake)
  (flow_grads,) = flow_vjp(fake_grads)
  state, norms = two_player.update_generator(state, flow_grads, flow_optimizer,
                                             model_state=flow_state)
  return state.replace(step=state.step + 1), {'loss': g_loss, **norms,
                                              'critic_loss': c_loss, **critic_norms}


def one_nn_accuracy(*, reference_x: np.ndarray, reference_labels: np.ndarray, x: np.ndarray,
                    labels: np.ndarray, chunk_size: int = 1024) -> float:
  """Accuracy of a 1-nearest-neighbour classifier fitted to B, scored on ``T(A)`` (Fig. 4).

  Each ``x_i`` gets the label of its Euclidean nearest neighbour in
  ``reference_x`` (ties: the first); the result is the fraction matching
  ``labels``. Distances are computed ``chunk_size`` query points at a time
  on the host (float64), so memory is ``O(chunk_size * n_ref)``.

  Args:
    reference_x: ``(n_ref, d)`` points of B.
    reference_labels: ``(n_ref,)`` labels of B.
    x: ``(n, d)`` transformed points ``T(A)``.
    labels: ``(n,)`` labels of A.
    chunk_size: query points per chunk.

  Returns:
    Accuracy in ``[0, 1]``.
  """
  reference_x, x = np.asarray(reference_x, np.float64), np.asarray(x, np.float64)
  reference_labels, labels = np.asarray(reference_labels), np.asarray(labels)
  discrepancies.check_point_sets(x, reference_x, 'one_nn_accuracy')
  if reference_labels.shape != reference_x.shape[:1] or labels.shape != x.shape[:1]:
    raise ValueError('one_nn_accuracy needs one label per point, got '
                     f'{reference_labels.shape} labels for {reference_x.shape[0]} reference '
                     f'points and {labels.shape} labels for {x.shape[0]} points')
  if reference_x.shape[0] == 0 or x.shape[0] == 0:
    raise ValueError('one_nn_accuracy needs non-empty point sets')
  if chunk_size < 1:
    raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
  reference_sq = np.sum(reference_x**2, 1)
  correct = 0
  for start in range(0, x.shape[0], chunk_size):
    query = x[start:start + chunk_size]
    distances = reference_sq[None, :] - 2.0 * query @ reference_x.T
    nearest = np.argmin(distances, axis=1)
    correct += int(np.sum(reference_labels[nearest] == labels[start:start + chunk_size]))
  return correct / x.shape[0]
