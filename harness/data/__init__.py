"""Data sets of the paper experiments and the one registry that names them.

Calling convention. Every entry of :data:`DATASETS` is a function whose
arguments are all keywords with JSON-like values (ints, floats, strings,
tuples), so an ``ml_collections`` config drives it directly::

  config.data.name = 'moons'
  config.data.options = ml_collections.ConfigDict(
      {'n': 2000, 'seed': 0, 'rotation_degrees': 50.0})
  dataset = harness.data.load(config.data.name, **config.data.options)
  harness.data.validate_fields(dataset, config.data.name)

* Every loader accepts ``n`` and ``seed``. Synthetic sets draw ``n`` points
  (default: the paper's size); real sets return all rows for ``n=None`` or a
  random subset of ``n`` rows. The result is a deterministic function of the
  options.
* File loaders also need the local path (``root`` or ``folder``) and most
  take ``split``. :mod:`harness.data.paper_data` reads a paper's data set from a folder
  whose format it recognises, and prepares its images for an experiment.
* Every loader returns a ``NamedTuple`` of numpy arrays (float32 points or NHWC
  images, int32 labels), e.g. ``LabelledPoints(x, labels)``,
  ``DomainPair(a, b)``, ``LabelledImages(images, labels)``; each loader's
  docstring states shapes and value ranges.

:func:`load` rejects unknown names and options with a ``ValueError`` before
calling the loader; :func:`validate` and :func:`validate_fields` check loaded
arrays for NaN/Inf and shape.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from harness.data import bundled, files, paired_digits, synthetic

Dataset = tuple[np.ndarray, ...]
"""What a loader returns: a ``NamedTuple`` of numpy arrays."""

DATASETS: dict[str, Callable[..., Dataset]] = {
    'blobs': synthetic.blobs,
    'moons': synthetic.moons,
    'gaussian_mixture_2d': synthetic.gaussian_mixture_2d,
    'correlated_gaussians': synthetic.correlated_gaussians,
    's_curve': synthetic.s_curve,
    'swiss_roll': synthetic.swiss_roll,
    'mnist_5000': bundled.mnist_5000,
    'sklearn_digits': bundled.sklearn_digits,
    'digit_images': bundled.digit_images,
    'breast_cancer': bundled.breast_cancer,
    'mnist_idx': files.mnist_idx,
    'usps_libsvm': files.usps_libsvm,
    'paired_image_folders': files.paired_image_folders,
    'side_by_side_image_pairs': files.side_by_side_image_pairs,
    'svhn_mat': files.svhn_mat,
    'omniglot_folders': files.omniglot_folders,
    'mnist_transformed_pair': paired_digits.mnist_transformed_pair,
}
"""Data-set name -> loader; the only place a shared data set's name is bound to code (a
data set of one family's experiments only lives with them)."""

GENERATED = frozenset({'blobs', 'moons', 'gaussian_mixture_2d', 'correlated_gaussians',
                       's_curve', 'swiss_roll'})
"""Data sets drawn from a generator: any number of fresh, independent draws exist (the others
are finite collections; a draw with another seed resamples the same points)."""


def load(name: str, **options: Any) -> Dataset:
  """Loads the data set ``name`` with keyword ``options``.

  Args:
    name: a key of :data:`DATASETS`.
    **options: keyword arguments of that loader (``n``, ``seed``, a path...).

  Returns:
    The loader's ``NamedTuple`` of numpy arrays.

  Raises:
    ValueError: ``name`` is not registered, an option is not one the loader
      takes, or a required option (such as a path) is missing.
  """
  if name not in DATASETS:
    raise ValueError(f"unknown data set '{name}'; available: {', '.join(sorted(DATASETS))}")
  loader = DATASETS[name]
  parameters = inspect.signature(loader).parameters
  unknown = sorted(set(options) - set(parameters))
  if unknown:
    raise ValueError(f"data set '{name}' has no option(s) {unknown}; "
                     f'its options are {list(parameters)}')
  missing = [key for key, parameter in parameters.items()
             if parameter.default is inspect.Parameter.empty and key not in options]
  if missing:
    raise ValueError(f"data set '{name}' needs option(s) {missing}")
  return loader(**options)


def validate(array: Any, name: str,
             expected_shape_suffix: Sequence[int | None] | None = None) -> np.ndarray:
  """Checks that a loaded array is a non-empty, finite batch of the right shape.

  Args:
    array: a batch, leading axis = examples, numeric dtype.
    name: what the array is (e.g. ``'mnist_5000.images'``), used in errors.
    expected_shape_suffix: the trailing shape after the batch axis, e.g.
      ``(28, 28, 1)`` for MNIST images or ``()`` for labels; ``None`` entries
      accept any size; ``None`` skips the shape check.

  Returns:
    ``array`` as a numpy array (not copied when it already is one).

  Raises:
    ValueError: a non-numeric dtype, no batch axis, no examples, NaN or Inf
      values, or a trailing shape other than ``expected_shape_suffix``.
  """
  array = np.asarray(array)
  if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
    raise ValueError(f"data set '{name}': expected a numeric array, got dtype {array.dtype}")
  if array.ndim == 0:
    raise ValueError(f"data set '{name}': expected a batch with a leading example axis, "
                     'got a scalar')
  if array.shape[0] == 0 or array.size == 0:
    raise ValueError(f"data set '{name}': empty array of shape {array.shape}")
  if np.issubdtype(array.dtype, np.inexact):
    finite = np.isfinite(array)
    if not finite.all():
      num_nan = int(np.isnan(array).sum())
      num_inf = int(np.isinf(array).sum())
      first_bad_example = int(np.argmin(finite.reshape(array.shape[0], -1).all(axis=1)))
      raise ValueError(f"data set '{name}': {num_nan} NaN and {num_inf} Inf values in an "
                       f'array of shape {array.shape}; first bad example at index '
                       f'{first_bad_example}')
  if expected_shape_suffix is not None:
    suffix = tuple(expected_shape_suffix)
    actual = array.shape[1:]
    matches = len(actual) == len(suffix) and all(
        want is None or want == got for want, got in zip(suffix, actual))
    if not matches:
      expected_text = ', '.join('any' if size is None else str(size) for size in suffix)
      raise ValueError(f"data set '{name}': expected shape (batch, {expected_text}), "
                       f'got {array.shape}')
  return array


def validate_fields(dataset: Dataset, name: str,
                    expected_shape_suffixes: Mapping[str, Sequence[int | None]] | None = None
                    ) -> Dataset:
  """Applies :func:`validate` to every field of a loaded data set.

  Args:
    dataset: a loader's ``NamedTuple`` of arrays.
    name: the data-set name; errors name the field as ``'<name>.<field>'``.
    expected_shape_suffixes: optional field name -> trailing shape.

  Returns:
    ``dataset`` unchanged.

  Raises:
    TypeError: ``dataset`` is not a ``NamedTuple``.
    ValueError: a field fails :func:`validate`, or ``expected_shape_suffixes``
      names a field the data set does not have.
  """
  if not (isinstance(dataset, tuple) and hasattr(dataset, '_asdict')):
    raise TypeError(f"data set '{name}': expected a NamedTuple of arrays, "
                    f'got {type(dataset).__name__}')
  fields = dataset._asdict()
  suffixes = dict(expected_shape_suffixes or {})
  unknown = sorted(set(suffixes) - set(fields))
  if unknown:
    raise ValueError(f"data set '{name}' has no field(s) {unknown}; fields: {list(fields)}")
  for field, array in fields.items():
    validate(array, f'{name}.{field}', suffixes.get(field))
  return dataset
