"""The paired domains of the AlignFlow translation experiments (Table 1 protocol).

Two domains with a known pairing, split into disjoint unpaired training halves and paired
validation and test splits: a paired data set with fields ``a`` and ``b``
(``mnist_transformed_pair``), two point sets drawn with the same seed (moons and the same
moons rotated), or the paper's pix2pix pairs (Maps, Facades, CityScapes) from a folder.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from harness import data as data_lib
from harness import domains, replicas
from harness.data import files, paper_data


def is_image(event_shape: tuple[int, ...]) -> bool:
  """Whether examples of ``event_shape`` are images ``(H, W, C)`` (else points)."""
  return len(event_shape) == 3


def load_paired_domains(config: ml_collections.ConfigDict,
                        seed: int) -> dict[str, np.ndarray]:
  """Unpaired training halves and paired validation / test splits of the two domains.

  ``seed`` draws the split and moves a synthetic data set's own ``seed`` option
  (:func:`harness.replicas.with_data_seed`; unchanged for seed 0). With ``config.data.root``
  set, the pairs are the paper's (:func:`load_paper_pairs`).

  Returns:
    ``train_a``, ``train_b`` (disjoint source examples), ``val_a``, ``val_b``,
    ``test_a``, ``test_b`` (``val_b[i]`` is the pair of ``val_a[i]``).
  """
  data = config.data
  if data.get('root'):
    return load_paper_pairs(data, seed)
  if 'name' in data:
    pair = data_lib.load(data.name, **replicas.with_data_seed(data.options, seed))
    a, b = (np.asarray(data_lib.validate(getattr(pair, field), f'{data.name}.{field}'))
            for field in ('a', 'b'))
  else:
    a, b = (np.asarray(data_lib.validate(
        getattr(data_lib.load(domain.name, **replicas.with_data_seed(domain.options, seed)),
                domain.field),
        f'{domain.name}.{domain.field}'), np.float32) for domain in (data.a, data.b))
  if a.shape != b.shape:
    raise ValueError(f'paired domains need equal shapes, got {a.shape} and {b.shape}')
  num_train, num_val, num_test = data.splits
  parts = domains.split_indices(len(a), (num_train, num_train, num_val, num_test), seed,
                                'the paired data set (two disjoint training halves)')
  return {'train_a': a[parts[0]], 'train_b': b[parts[1]], 'val_a': a[parts[2]],
          'val_b': b[parts[2]], 'test_a': a[parts[3]], 'test_b': b[parts[3]]}


def load_paper_pairs(data: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
  """A pix2pix data set (Maps, Facades, CityScapes) from the folder ``data.root``
  (:mod:`harness.data.paper_data`), RGB at ``data.options.size`` pixels a side in ``[-1, 1]``.

  ``data.splits = (num_train, num_val, num_test)``: ``num_train + num_val`` pairs of the
  training split, drawn with ``seed``, give the training images of both domains (the same
  scenes; training draws A and B batches independently, as CycleGAN's unaligned protocol
  does) and the validation pairs; ``num_test`` pairs of the test split (``test/``, else
  ``val/``) the test pairs.

  Returns:
    As :func:`load_paired_domains`: ``(n, size, size, 3)`` float32 arrays in ``[-1, 1]``.
  """
  num_train, num_val, num_test = data.splits
  out = {}
  for split, parts, sizes in (('train', ('train', 'val'), (num_train, num_val)),
                              ('test', ('test',), (num_test,))):
    pairs = paper_data.load_split(data.root, split, size=data.options.size)
    if not isinstance(pairs, files.ImagePair):
      raise ValueError(f'config.data.root: {data.root} holds '
                       f'{paper_data.format_of(data.root)}, not side-by-side image pairs')
    a, b = (paper_data.prepare_images(images, size=data.options.size, channels=3,
                                      value_range=(-1.0, 1.0))
            for images in pairs)
    for part, index in zip(parts, domains.split_indices(
        len(a), sizes, seed, f'the {split} split of {data.root}')):
      out[f'{part}_a'], out[f'{part}_b'] = a[index], b[index]
  return out
