"""MNIST digits against a transformed copy: two domains with a known pairing.

AlignFlow's Table 1 scores unpaired translation by the MSE to the true pair on paired
test sets (Facades, Maps, CityScapes), which this machine does not have. This loader
builds a paired set from the 5,000 bundled MNIST digits: domain A is the digit, domain B
the same digit after a fixed bijection of ``[0, 1]^{size x size}`` -- a pixel-wise
intensity map, or a quarter turn of the image (a permutation of the pixels that moves
most of them across the image, so no local filter computes it) -- so ``b[i]`` is the
exact pair of ``a[i]``. Training code must draw A and B from disjoint indices to keep
the task unpaired.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from harness.data.bundled import MNIST_MAX_VALUE, mnist_5000, resize_images, to_unit_interval

TRANSFORMS = {
    'invert': lambda x: 1.0 - x,
    'gamma': np.sqrt,
    'invert_gamma': lambda x: np.square(1.0 - x),
    'rotate90': lambda x: np.rot90(x, k=1, axes=(1, 2)),
}
"""Bijections of ``(n, size, size, 1)`` images in ``[0, 1]`` onto themselves. Pixel-wise:
inverted intensities (affine), ``sqrt`` (gamma 0.5, non-linear) and inversion followed by
squaring (gamma 2). Spatial: ``rotate90``, a counter-clockwise quarter turn,
``b[i, r, c] = a[i, c, size - 1 - r]`` (intensities unchanged)."""


class PairedImages(NamedTuple):
  """Paired images of two domains; ``a[i]`` and ``b[i]`` show the same digit.

  Attributes:
    a: ``(n, size, size, 1)`` float32 in ``[-1, 1]``, domain A.
    b: ``(n, size, size, 1)`` float32 in ``[-1, 1]``, domain B.
    labels: ``(n,)`` int32 digit classes.
  """
  a: np.ndarray
  b: np.ndarray
  labels: np.ndarray


def mnist_transformed_pair(n: int | None = None, seed: int = 0, size: int = 16,
                           transform: str = 'invert_gamma') -> PairedImages:
  """MNIST digits (A) and their transformed copies (B), scaled to ``[-1, 1]``.

  Args:
    n: size of a random subset of the 5,000 digits, or None for all.
    seed: seed of the subset.
    size: side of the (antialiased) resized images; 28 keeps the original resolution.
    transform: one of :data:`TRANSFORMS`, applied to the images in ``[0, 1]``.

  Returns:
    :class:`PairedImages`; ``b = 2 T((a + 1) / 2) - 1`` for the chosen map ``T``.
  """
  if transform not in TRANSFORMS:
    raise ValueError(f'unknown transform {transform!r}; available: {sorted(TRANSFORMS)}')
  digits = mnist_5000(n=n, seed=seed)
  unit = np.clip(resize_images(to_unit_interval(digits.images, 0.0, MNIST_MAX_VALUE), size),
                 0.0, 1.0)
  transformed = TRANSFORMS[transform](unit)
  return PairedImages(a=(2 * unit - 1).astype(np.float32),
                      b=(2 * transformed - 1).astype(np.float32), labels=digits.labels)
