"""GAN losses from critic logits, shared by the adversarial methods (AlignFlow, LRMF's SN-GAN).

A critic outputs real-valued *logits* ``D(x)``; the cross-entropy critic is the
classifier ``C(x) = sigmoid(D(x))``. Logits may have any shape (``(batch,)`` for a
vector critic, ``(batch, h, w)`` for a PatchGAN); every expectation ``E`` is a mean
over all entries, ``E_real`` over the logits of real samples ``x``, ``E_fake`` over
those of generated samples ``G(y)``. Two forms (``form``, one of :data:`GAN_FORMS`):

* ``'cross_entropy'`` (Goodfellow et al. 2014, "Generative adversarial nets"):
  ``V(C, G) = E_real log C(x) + E_fake log(1 - C(G(y)))``;
* ``'least_squares'`` (LSGAN, Mao et al. 2017, "Least squares generative adversarial
  networks", with targets ``a = 0`` for fake and ``b = c = 1`` for real):
  ``V(D, G) = -1/2 E_real (D(x) - 1)^2 - 1/2 E_fake D(G(y))^2``.

The critic maximises ``V`` (:func:`gan_value`), i.e. minimises :func:`critic_loss`
``= -V``; the generator minimises the surrogate :func:`generator_loss`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ['GAN_FORMS', 'gan_value', 'critic_loss', 'generator_loss']

Array = jax.Array

GAN_FORMS = ('cross_entropy', 'least_squares')


def _check_form(form: str) -> None:
  if form not in GAN_FORMS:
    raise ValueError(f'unknown GAN form {form!r}; expected one of {GAN_FORMS}')


def gan_value(*, real_logits: Array, fake_logits: Array, form: str) -> Array:
  """The GAN value ``V`` that the critic maximises.

  ``'cross_entropy'``: ``E log sigmoid(D_real) + E log(1 - sigmoid(D_fake))
  = E log sigmoid(D_real) + E log sigmoid(-D_fake)`` (Goodfellow et al. 2014, Eq. 1),
  computed stably for any logit.
  ``'least_squares'``: ``-1/2 E (D_real - 1)^2 - 1/2 E D_fake^2`` (Mao et al. 2017).

  Args:
    real_logits: critic logits on real samples, any shape.
    fake_logits: critic logits on generated samples ``G(y)``, any shape.
    form: one of :data:`GAN_FORMS` (a static Python string).

  Returns:
    Scalar value, at most 0 in both forms.
  """
  _check_form(form)
  if form == 'cross_entropy':
    return jnp.mean(jax.nn.log_sigmoid(real_logits)) + jnp.mean(jax.nn.log_sigmoid(-fake_logits))
  return -0.5 * jnp.mean((real_logits - 1.0)**2) - 0.5 * jnp.mean(fake_logits**2)


def critic_loss(*, real_logits: Array, fake_logits: Array, form: str) -> Array:
  """``-V``, what a critic minimises.

  ``'cross_entropy'``: the binary cross-entropy of real (label 1) against fake
  (label 0), ``E softplus(-D_real) + E softplus(D_fake)``.
  ``'least_squares'``: ``1/2 E (D_real - 1)^2 + 1/2 E D_fake^2``.

  Args:
    real_logits: critic logits on real samples, any shape.
    fake_logits: critic logits on generated samples, any shape.
    form: one of :data:`GAN_FORMS`.

  Returns:
    Scalar loss, at least 0.
  """
  return -gan_value(real_logits=real_logits, fake_logits=fake_logits, form=form)


def generator_loss(*, fake_logits: Array, form: str) -> Array:
  """The generator's surrogate of ``V``, minimised by ``G``.

  ``'cross_entropy'``: the non-saturating ``-E log sigmoid(D(G(y)))
  = E softplus(-D(G(y)))`` (Goodfellow et al. 2014, Sec. 3: same fixed points as
  minimising ``E log(1 - C(G(y)))``, stronger gradients while the critic wins).
  ``'least_squares'``: ``1/2 E (D(G(y)) - 1)^2`` (Mao et al. 2017, ``c = 1``).

  Args:
    fake_logits: critic logits on generated samples, any shape.
    form: one of :data:`GAN_FORMS`.

  Returns:
    Scalar loss, at least 0.
  """
  _check_form(form)
  if form == 'cross_entropy':
    return -jnp.mean(jax.nn.log_sigmoid(fake_logits))
  return 0.5 * jnp.mean((fake_logits - 1.0)**2)
