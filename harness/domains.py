"""One data split and one domain loader for every experiment family.

:func:`split_indices` is the one way a data set is cut into disjoint parts (a permutation
drawn from the replica's seed, or from a child stream of it: :func:`generator`),
:func:`split_indices_per_class` the same class by class; :func:`load_domain` loads one
registered data set's array field (and labels), validates it and splits it into train /
validation / test, or, where the domain config's ``root`` names a folder, the paper's data
set in it (:mod:`harness.data.paper_data`).
"""

from __future__ import annotations

from typing import Sequence

import ml_collections
import numpy as np

from harness import data as data_lib
from harness.data import paper_data
from harness import replicas

SPLITS = ('train', 'val', 'test')


def generator(seed: int | Sequence[int]) -> np.random.Generator:
  """The numpy generator of ``seed``: an int, or ``(seed, k, ...)``, the child stream of
  :class:`numpy.random.SeedSequence` ``(seed)`` with spawn key ``(k, ...)`` (what
  ``SeedSequence(seed).spawn`` gives as its ``k``-th child): independent of the seed's own
  stream (``default_rng(seed)``, which data sets drawn from ``seed`` use) and of the other
  children, so several cuts drawn from one seed are independent draws.
  """
  if isinstance(seed, (int, np.integer)):
    return np.random.default_rng(int(seed))
  root, *path = (int(part) for part in seed)
  return np.random.default_rng(np.random.SeedSequence(root, spawn_key=tuple(path)))


def split_indices(num_examples: int, sizes: Sequence[int], seed: int | Sequence[int],
                  what: str = 'the data set') -> list[np.ndarray]:
  """Disjoint index sets of the given ``sizes`` from one permutation drawn from ``seed``
  (an int or a child stream ``(seed, k, ...)``: :func:`generator`).

  Raises:
    ValueError: the sizes need more examples than ``what`` has, or one is negative.
  """
  sizes = tuple(int(size) for size in sizes)
  if any(size < 0 for size in sizes):
    raise ValueError(f'split sizes must be >= 0, got {sizes}')
  if sum(sizes) > num_examples:
    raise ValueError(f'splits {sizes} need {sum(sizes)} examples; {what} has {num_examples}')
  order = generator(seed).permutation(num_examples)
  bounds = np.cumsum((0,) + sizes)
  return [order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]


def split_indices_per_class(labels: np.ndarray, sizes: Sequence[int],
                            seed: int | Sequence[int],
                            what: str = 'the data set') -> list[np.ndarray]:
  """:func:`split_indices` by class: part ``k`` holds ``sizes[k]`` examples of every class,
  and a last part holds the rest of every class (``len(sizes) + 1`` parts).

  Each class's examples are taken in the order of one permutation of all ``(n,)`` ``labels``
  drawn from ``seed`` (:func:`split_indices`); within a part the indices are grouped by class
  (classes ascending), each group in that order.

  Raises:
    ValueError: a size is negative, or a class has fewer than ``sum(sizes)`` examples.
  """
  labels = np.asarray(labels)
  sizes = tuple(int(size) for size in sizes)
  if any(size < 0 for size in sizes):
    raise ValueError(f'split sizes must be >= 0, got {sizes}')
  (order,) = split_indices(len(labels), (len(labels),), seed, what)
  bounds = np.cumsum((0,) + sizes)
  parts = [[] for _ in range(len(sizes) + 1)]
  for label in np.unique(labels):
    members = order[labels[order] == label]
    if len(members) < bounds[-1]:
      raise ValueError(f'splits {sizes} of every class need {bounds[-1]} examples of each; '
                       f'class {label} of {what} has {len(members)}')
    for part, lo, hi in zip(parts, bounds, tuple(bounds[1:]) + (len(members),)):
      part.append(members[lo:hi])
  return [np.concatenate(part) for part in parts]


def load_array(domain_config: ml_collections.ConfigDict, seed: int,
               event_shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
  """``(x, labels)`` of ``domain_config`` (``name``, ``options``, ``field``, optional
  ``label_field``), checked finite and of ``event_shape``; labels are zeros without a
  label field. ``seed`` moves a synthetic data set's own ``seed`` option
  (:func:`harness.replicas.with_data_seed`; unchanged for seed 0)."""
  dataset = data_lib.load(domain_config.name,
                          **replicas.with_data_seed(domain_config.options, seed))
  fields = getattr(dataset, '_fields', ())
  for field in (domain_config.field, domain_config.get('label_field')):
    if field and field not in fields:
      raise ValueError(f"data set '{domain_config.name}' has no field '{field}'; "
                       f'its fields are {list(fields)}')
  x = np.asarray(data_lib.validate(getattr(dataset, domain_config.field),
                                   f'{domain_config.name}.{domain_config.field}',
                                   event_shape), np.float32)
  labels = (np.asarray(getattr(dataset, domain_config.label_field))
            if domain_config.get('label_field') else np.zeros(len(x), np.int32))
  return x, labels


def load_paper_domain(domain_config: ml_collections.ConfigDict, splits: Sequence[int],
                      seed: int) -> dict[str, np.ndarray]:
  """The labelled image data set in the folder ``domain_config.root`` in the form of the
  ``digit_images`` stand-in: ``options.size`` pixels a side, ``options.channels`` channels
  (1 when not given: grey, an RGB set's grey level; 3: RGB, a grey set's level repeated), in ``[0, 1]``.

  Training and validation images are drawn disjointly from the data set's training split,
  test images from its test split (``splits`` = their sizes; ``seed`` draws them).

  Returns:
    ``{train,val,test}_x`` ``(n, size, size, channels)`` float32 in ``[0, 1]`` and
    ``{train,val,test}_labels`` ``(n,)`` int32.

  Raises:
    ValueError: the domain's options have no ``size``, the folder holds image pairs rather
      than labelled images, or ``splits`` ask for more images than a split has.
  """
  root = domain_config.root
  options = domain_config.get('options') or {}
  size = options.get('size')
  if size is None:
    raise ValueError(f"domain '{domain_config.name}' with root {root}: its options give no "
                     "'size', the side its images are prepared to")
  num_train, num_val, num_test = splits
  out = {}
  for split, names, sizes in (('train', ('train', 'val'), (num_train, num_val)),
                              ('test', ('test',), (num_test,))):
    x, labels = paper_data.load_labelled(root, split, size=size,
                                         channels=options.get('channels', 1),
                                         value_range=(0.0, 1.0))
    parts = split_indices(len(x), sizes, seed, f"the {split} split of {root}")
    for name, index in zip(names, parts):
      out[f'{name}_x'], out[f'{name}_labels'] = x[index], labels[index]
  return out


def load_domain(domain_config: ml_collections.ConfigDict, splits: Sequence[int],
                seed: int) -> dict[str, np.ndarray]:
  """One domain split into ``{train,val,test}_x`` and ``{train,val,test}_labels``.

  ``seed`` draws the data (synthetic sets) and the split (:func:`split_indices`). A domain
  config with a non-empty ``root`` reads the paper's data set there
  (:func:`load_paper_domain`) instead of its stand-in.
  """
  if domain_config.get('root'):
    return load_paper_domain(domain_config, splits, seed)
  x, labels = load_array(domain_config, seed, domain_config.get('event_shape'))
  parts = split_indices(len(x), splits, seed, f"'{domain_config.name}'")
  out = {}
  for name, index in zip(SPLITS, parts):
    out[f'{name}_x'], out[f'{name}_labels'] = x[index], labels[index]
  return out
