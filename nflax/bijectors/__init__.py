"""Bijectors: Flax modules with ``forward_and_log_det`` / ``inverse_and_log_det``.

Forward is the normalising direction (data -> latent); see :mod:`.base`.

* linear maps: :class:`ElementwiseAffine`, :class:`PositiveDefiniteAffine`,
  :class:`Permutation`, :class:`Reverse`;
* coupling flows: :class:`AffineCoupling` (vector and image masks), :func:`realnvp`;
* autoregressive flows: :class:`MADE`, :class:`MAFLayer`, :class:`BatchNorm`, :func:`maf`;
* Glow and multi-scale image flows: :class:`ActNorm`, :class:`Invertible1x1Conv`,
  :class:`Squeeze`, :class:`MultiScale`, :func:`glow`, :func:`realnvp_image`;
* continuous flows: :class:`FFJORD`, :func:`ffjord`;
* exactly invertible image pre-processing: :class:`Logit`, :class:`ScaleShift`,
  and the (non-bijective) :func:`dequantize` with :func:`bits_per_dim`.
"""

from nflax.bijectors.autoregressive import MADE, MAFLayer, maf
from nflax.bijectors.base import Bijector, Chain, Inverse
from nflax.bijectors.batchnorm import BatchNorm
from nflax.bijectors.continuous import FFJORD, ffjord
from nflax.bijectors.coupling import AffineCoupling, realnvp
from nflax.bijectors.linear import ElementwiseAffine, Permutation, PositiveDefiniteAffine, Reverse
from nflax.bijectors.multiscale import (ActNorm, Invertible1x1Conv, MultiScale, Squeeze, glow,
                                        realnvp_image)
from nflax.bijectors.preprocessing import Logit, ScaleShift, bits_per_dim, dequantize

__all__ = [
    'MADE', 'MAFLayer', 'maf', 'Bijector', 'Chain', 'Inverse', 'BatchNorm', 'FFJORD', 'ffjord',
    'AffineCoupling', 'realnvp', 'ElementwiseAffine', 'Permutation', 'PositiveDefiniteAffine',
    'Reverse', 'ActNorm', 'Invertible1x1Conv', 'MultiScale', 'Squeeze', 'glow', 'realnvp_image',
    'Logit', 'ScaleShift', 'bits_per_dim', 'dequantize'
]
