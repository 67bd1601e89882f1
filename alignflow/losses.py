"""Pure AlignFlow losses: GAN terms (Eq. 1, 6), MLE terms and the hybrid objective (Eq. 7).

Critics output real-valued *logits* ``D(x)``; the cross-entropy critic of the paper is
``C(x) = sigmoid(D(x))``. Logits may have any shape (``(batch,)`` for vectors,
``(batch, h, w)`` patches for a PatchGAN critic); every expectation is a mean over all
entries. Two GAN forms are provided (``form``):

* ``'cross_entropy'``: ``L_GAN(C, G) = E_real log C(x) + E_fake log(1 - C(G(y)))``
  (Eq. 1, 6), maximised by the critic;
* ``'least_squares'`` (LSGAN, Mao et al. 2017; what the public AlignFlow code trains
  with): ``L_GAN = -1/2 E_real (D(x) - 1)^2 - 1/2 E_fake D(G(y))^2``, likewise maximised
  by the critic.

The generator side minimises the GAN term; :func:`generator_loss` gives the usual
surrogates (non-saturating ``-E log C(G(y))`` for cross-entropy, ``1/2 E (D(G(y)) - 1)^2``
for least squares).

Eq. 7: ``L_AlignFlow = L_GAN(C_A, G_{B->A}) + L_GAN(C_B, G_{A->B}) - lam_A L_MLE(G_{Z->A})
- lam_B L_MLE(G_{Z->B})``, minimised by the flows and maximised by the critics, where
``L_MLE(G_{Z->A}) = E_{a ~ p*_A} log p_A(a)`` (nats per example, summed over the event).
``lam = 0`` is adversarial-only training; the MLE-only limit ``lam -> inf`` is reached
in the same code by ``adversarial_weight = 0`` (the objective divided by ``lam``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

GAN_FORMS = ('cross_entropy', 'least_squares')


def _check_form(form: str) -> None:
  if form not in GAN_FORMS:
    raise ValueError(f'unknown GAN form {form!r}; expected one of {GAN_FORMS}')


def gan_value(*, real_logits: Array, fake_logits: Array, form: str) -> Array:
  """The GAN term ``L_GAN(C, G)`` of Eq. 1 / 6, maximised by the critic.

  Args:
    real_logits: critic logits on real samples of the critic's domain, any shape.
    fake_logits: critic logits on translated samples ``G(y)``, any shape.
    form: ``'cross_entropy'`` (``E log sigmoid(D_real) + E log(1 - sigmoid(D_fake))``)
      or ``'least_squares'`` (``-1/2 E (D_real - 1)^2 - 1/2 E D_fake^2``).

  Returns:
    Scalar value (at most 0 in both forms).
  """
  _check_form(form)
  if form == 'cross_entropy':
    return jnp.mean(jax.nn.log_sigmoid(real_logits)) + jnp.mean(jax.nn.log_sigmoid(-fake_logits))
  return -0.5 * jnp.mean((real_logits - 1.0)**2) - 0.5 * jnp.mean(fake_logits**2)


def critic_loss(*, real_logits: Array, fake_logits: Array, form: str) -> Array:
  """``-L_GAN(C, G)``: what a critic minimises (binary cross-entropy or LSGAN loss)."""
  return -gan_value(real_logits=real_logits, fake_logits=fake_logits, form=form)


def generator_loss(*, fake_logits: Array, form: str) -> Array:
  """Generator surrogate of the GAN term, minimised by the translation ``G``.

  ``'cross_entropy'``: the non-saturating ``-E log sigmoid(D(G(y)))`` (same fixed points
  as minimising ``E log(1 - C(G(y)))`` of Eq. 6, stronger gradients early on).
  ``'least_squares'``: ``1/2 E (D(G(y)) - 1)^2``.

  Args:
    fake_logits: critic logits on translated samples, any shape.
    form: one of :data:`GAN_FORMS`.

  Returns:
    Scalar loss.
  """
  _check_form(form)
  if form == 'cross_entropy':
    return -jnp.mean(jax.nn.log_sigmoid(fake_logits))
  return 0.5 * jnp.mean((fake_logits - 1.0)**2)


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
    gan_a: ``L_GAN(C_A, G_{B->A})`` (from :func:`gan_value`) or, for the flows'
      update, its generator surrogate (:func:`generator_loss`).
    gan_b: ``L_GAN(C_B, G_{A->B})`` or its generator surrogate.
    log_likelihood_a: ``L_MLE(G_{Z->A})`` (:func:`mle_value`), nats per example.
    log_likelihood_b: ``L_MLE(G_{Z->B})``.
    lam_a: weight ``lam_A >= 0``.
    lam_b: weight ``lam_B >= 0``.
    adversarial_weight: ``w >= 0``, the weight of the GAN terms.

  Returns:
    Scalar objective, minimised by the flows.
  """
  for name, value in (('lam_a', lam_a), ('lam_b', lam_b),
                      ('adversarial_weight', adversarial_weight)):
    if isinstance(value, (int, float)) and not value >= 0:
      raise ValueError(f'hybrid_loss: {name} must be >= 0, got {value}')
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
