"""Pure AlignFlow losses: MLE terms, the hybrid objective (Eq. 7), cycle loss and paired MSE.

The GAN terms of Eq. 1 and 6 are :mod:`nflax.gan` (shared with LRMF's SN-GAN
baseline): ``gan.gan_value`` is ``L_GAN(C, G)``, maximised by the critic, with critics
that output real-valued *logits* ``D(x)`` of any shape and two forms, ``'cross_entropy'``
(Eq. 1, 6: ``L_GAN = E_real log C(x) + E_fake log(1 - C(G(y)))``, ``C = sigmoid(D)``)
and ``'least_squares'`` (LSGAN, Mao et al. 2017; what the public AlignFlow code trains
with); ``gan.critic_loss`` is ``-L_GAN`` and ``gan.generator_loss`` the generator's
surrogate.

Eq. 7: ``L_AlignFlow = L_GAN(C_A, G_{B->A}) + L_GAN(C_B, G_{A->B}) - lam_A L_MLE(G_{Z->A})
- lam_B L_MLE(G_{Z->B})``, minimised by the flows and maximised by the critics, where
``L_MLE(G_{Z->A}) = E_{a ~ p*_A} log p_A(a)`` (nats per example, summed over the event).
``lam = 0`` is adversarial-only training; the MLE-only limit ``lam -> inf`` is reached
in the same code by ``adversarial_weight = 0`` (the objective divided by ``lam``).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

__all__ = ['mle_value', 'hybrid_loss', 'cycle_loss', 'paired_mse']

Array = jax.Array


def mle_value(*, log_prob: Array) -> Array:
  """``L_MLE(G_{Z->X}) = E_{x ~ p*_X} log p_X(x)`` from per-example log-densities ``(batch,)``."""
  if log_prob.ndim != 1:
    raise ValueError(f'mle_value expects per-example log-densities (batch,), got shape '
                     f'{log_prob.shape}')
  return jnp.mean(log_prob)


def hybrid_loss(*, gan_a: Array, gan_b: Array, log_likelihood_a: Array,
                log_likelihood_b: Array, lam_a: float, lam_b: float,
                adversarial_weight: float = 1.0) -> Array:
  """The AlignFlow objective (Eq. 7), scaled: ``w (gan_a + gan_b) - lam_A ll_A - lam_B ll_B``.

  With ``w = 1`` this is Eq. 7 exactly. ``lam_a = lam_b = 0`` is adversarial-only
  training; ``w = 0`` with ``lam_a = lam_b = 1`` is the MLE-only limit ``lam -> inf``
  (Eq. 7 divided by ``lam``).

  Args:
    gan_a: ``L_GAN(C_A, G_{B->A})`` (from :func:`nflax.gan.gan_value`) or, for the
      flows' update, its generator surrogate (:func:`nflax.gan.generator_loss`).
    gan_b: ``L_GAN(C_B, G_{A->B})`` or its generator surrogate.
    log_likelihood_a: ``L_MLE(G_{Z->A})`` (:func:`mle_value`), nats per example.
    log_likelihood_b: ``L_MLE(G_{Z->B})``.
    lam_a: weight ``lam_A >= 0``.
    lam_b: weight ``lam_B >= 0``.
    adversarial_weight: ``w >= 0``, the weight of the GAN terms.

  Returns:
    Scalar objective, minimised by the flows. The four terms must be scalars (checked).
  """
  for name, value in (('lam_a', lam_a), ('lam_b', lam_b),
                      ('adversarial_weight', adversarial_weight)):
    if isinstance(value, (int, float)) and not value >= 0:
      raise ValueError(f'hybrid_loss: {name} must be >= 0, got {value}')
  # Scalars only: per-example log-likelihoods (batch,) instead of mle_value would broadcast
  # into a (batch,) "loss".
  chex.assert_rank([gan_a, gan_b, log_likelihood_a, log_likelihood_b], 0)
  return (adversarial_weight * (gan_a + gan_b)
          - lam_a * log_likelihood_a - lam_b * log_likelihood_b)


def cycle_loss(*, reconstructed: Array, original: Array) -> Array:
  """Cycle-consistency loss ``E ||G_{B->A}(G_{A->B}(a)) - a||_1`` (Eq. 10).

  Zero for AlignFlow by construction (Prop. 1); trained on by the CycleGAN baseline.
  Inputs are ``(batch, *event_shape)``; returns the mean absolute error over all entries
  (the L1 norm divided by the event size, as CycleGAN trains it).
  """
  if reconstructed.shape != original.shape:
    raise ValueError(f'cycle_loss needs equal shapes, got {reconstructed.shape} and '
                     f'{original.shape}')
  return jnp.mean(jnp.abs(reconstructed - original))


def paired_mse(*, translated: Array, target: Array) -> Array:
  """Pixel-wise mean squared error of translations against their true pairs (Table 1)."""
  if translated.shape != target.shape:
    raise ValueError(f'paired_mse needs equal shapes, got {translated.shape} and '
                     f'{target.shape}')
  return jnp.mean((translated - target)**2)
