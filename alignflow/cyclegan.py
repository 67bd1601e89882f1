"""CycleGAN (Zhu et al. 2017), the approximately cycle-consistent baseline of Table 1.

Two independent translators ``G_{A->B}``, ``G_{B->A}`` trained with the same GAN terms
and critics as AlignFlow plus the cycle-consistency loss of Eq. 10 in both directions:

  loss = g_A + g_B + cycle_weight (L_cycle(G_{B->A}, G_{A->B}) + L_cycle(G_{A->B}, G_{B->A})).

:func:`cyclegan_objective` has the generator-objective signature of
:mod:`alignflow.training`, so the same alternating :func:`~alignflow.training.train_step`
trains it.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from alignflow import losses
from alignflow.training import GeneratorObjective
from nflax import gan, nets

__all__ = ['ImageTranslator', 'VectorTranslator', 'CycleGAN', 'cyclegan_objective']

Array = jax.Array


class ImageTranslator(nn.Module):
  """Residual convolutional translator ``(batch, H, W, C) -> (batch, H, W, C)`` in ``(-1, 1)``.

  ``tanh(ResNet(x))`` with :class:`nflax.nets.ResNet` (3x3 convolutions, ``num_blocks``
  residual blocks of ``hidden_channels``), a small version of CycleGAN's ResNet generator.

  Attributes:
    hidden_channels: channels of the residual blocks.
    num_blocks: residual blocks.
  """

  hidden_channels: int = 32
  num_blocks: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    residual = nets.ResNet(out_channels=x.shape[-1], hidden_channels=self.hidden_channels,
                           num_blocks=self.num_blocks)(x)
    return jnp.tanh(residual)


class VectorTranslator(nn.Module):
  """MLP translator ``(batch, d) -> (batch, d)``, ``x + MLP(x)`` (starts at the identity).

  Attributes:
    hidden: hidden widths of the MLP.
  """

  hidden: tuple[int, ...] = (128, 128)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return x + nets.MLP(hidden=tuple(self.hidden), out_features=x.shape[-1])(x)


class CycleGAN(nn.Module):
  """Two translators; ``__call__(a, b) = (G_{A->B}(a), G_{B->A}(b))`` creates all parameters.

  Attributes:
    a_to_b_net: the translator ``G_{A->B}``.
    b_to_a_net: the translator ``G_{B->A}``.
  """

  a_to_b_net: nn.Module
  b_to_a_net: nn.Module

  def a_to_b(self, a: Array) -> Array:
    return self.a_to_b_net(a)

  def b_to_a(self, b: Array) -> Array:
    return self.b_to_a_net(b)

  def __call__(self, a: Array, b: Array) -> tuple[Array, Array]:
    return self.a_to_b(a), self.b_to_a(b)


def cyclegan_objective(*, model: CycleGAN, critic: nn.Module, form: str,
                       cycle_weight: float = 10.0) -> GeneratorObjective:
  """The generators' CycleGAN loss: GAN surrogates plus ``cycle_weight`` x Eq. 10 both ways.

  Returns:
    ``objective(params, model_state, critic_params, a, b, key) -> (loss, (fake_a,
    fake_b, metrics))`` with ``metrics['cycle_a']``, ``['cycle_b']``,
    ``['generator_gan_a']``, ``['generator_gan_b']``.
  """
  if cycle_weight < 0:
    raise ValueError(f'cycle_weight must be >= 0, got {cycle_weight}')

  def objective(params, model_state, critic_params, a, b, key):
    del key
    variables = {'params': params, **model_state}
    fake_b, fake_a = model.apply(variables, a, b)
    cycled_b, cycled_a = model.apply(variables, fake_a, fake_b)
    gan_a = gan.generator_loss(
        fake_logits=critic.apply({'params': critic_params['a']}, fake_a), form=form)
    gan_b = gan.generator_loss(
        fake_logits=critic.apply({'params': critic_params['b']}, fake_b), form=form)
    cycle_a = losses.cycle_loss(reconstructed=cycled_a, original=a)
    cycle_b = losses.cycle_loss(reconstructed=cycled_b, original=b)
    loss = gan_a + gan_b + cycle_weight * (cycle_a + cycle_b)
    metrics = {'cycle_a': cycle_a, 'cycle_b': cycle_b, 'generator_gan_a': gan_a,
               'generator_gan_b': gan_b}
    return loss, (fake_a, fake_b, metrics)

  return objective
