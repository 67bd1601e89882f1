"""The papers' data sets read from a local folder, and the one transform to an experiment's images.

A config's data block (``config.data``, or a domain ``config.data.a``) that has a ``root``
field reads the paper's data set from that folder when ``root`` is set, and its stand-in
(bundled or synthetic data) when it is ``''``. The folder's format is recognised from the
files in it (:func:`format_of`); one data root holds one folder per data set::

  <data_root>/maps/train/*.jpg, maps/val/*.jpg   pix2pix side-by-side pairs (A left, B right);
  <data_root>/facades/..., cityscapes/...        the test split is test/ where it exists, else val/
  <data_root>/mnist/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...
  <data_root>/usps/usps[.bz2], usps/usps.t[.bz2]                     LIBSVM text
  <data_root>/svhn/train_32x32.mat, svhn/test_32x32.mat
  <data_root>/omniglot/images_background/<alphabet>/<character>/*.png, images_evaluation/...

Every format has a ``'train'`` and a ``'test'`` split (:func:`load_split`; Omniglot's are its
background and evaluation sets) with images in ``[0, 255]`` (USPS's ``[-1, 1]`` mapped there) at
the data set's own size; :func:`prepare_images` is the one transform to what an experiment takes
(its side, grey or RGB, its value range), and :func:`load_labelled` reads a labelled split in
that form. :func:`data_source` says in words which data a config reads, for ``results.json``
and the report.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

import numpy as np

from harness.data import bundled, files


@dataclasses.dataclass(frozen=True)
class Format:
  """How a data-set folder of one format is recognised and read.

  Attributes:
    markers: paths relative to the folder; any one of them existing identifies the format.
    load: ``(root, split, n, seed, size) -> dataset`` with ``split`` ``'train'`` or
      ``'test'``; ``size`` (``None``: the data set's own) is a side its images may be
      resized to as they are read (the large pix2pix images are; the others at their own size).
    what: the format in words, for errors.
  """
  markers: tuple[str, ...]
  load: Callable[..., Any]
  what: str


def _pix2pix(root: str, split: str, n: int | None, seed: int,
             size: int | None = None) -> files.ImagePair:
  """Side-by-side pairs, each half resized to ``size`` as it is read (Maps' 600x600 halves
  would take gigabytes at their own size)."""
  folder = os.path.join(root, 'train')
  if split == 'test':
    folder = next((os.path.join(root, name) for name in ('test', 'val')
                   if os.path.isdir(os.path.join(root, name))), os.path.join(root, 'test'))
  each_half = None
  if size is not None:
    each_half = lambda half: (bundled.resize_images(half[None], size)[0]
                              if half.shape[:2] != (size, size) else half)
  return files.side_by_side_image_pairs(folder, n=n, seed=seed, mode='RGB', each_half=each_half)


def _usps(root: str, split: str, n: int | None, seed: int) -> files.LabelledImages:
  """USPS with its ``[-1, 1]`` pixels mapped onto the other loaders' ``[0, 255]``."""
  digits = files.usps_libsvm(root, split, n=n, seed=seed)
  return digits._replace(images=127.5 * (digits.images + 1.0))


FORMATS: dict[str, Format] = {
    'side_by_side_image_pairs': Format(
        ('train',), _pix2pix, 'pix2pix side-by-side pairs in train/ and test/ or val/'),
    'mnist_idx': Format(
        tuple(f'train-images{sep}idx3-ubyte{ext}' for sep in ('-', '.') for ext in ('', '.gz')),
        lambda root, split, n, seed, size: files.mnist_idx(root, split, n=n, seed=seed),
        'MNIST IDX files (train-images-idx3-ubyte, ...)'),
    'usps_libsvm': Format(('usps', 'usps.bz2'), lambda root, split, n, seed, size: _usps(
        root, split, n, seed), 'USPS LIBSVM files (usps, usps.t)'),
    'svhn_mat': Format(
        ('train_32x32.mat', 'test_32x32.mat'),
        lambda root, split, n, seed, size: files.svhn_mat(root, split, n=n, seed=seed),
        'SVHN MATLAB files (train_32x32.mat, test_32x32.mat)'),
    'omniglot_folders': Format(
        ('images_background', 'images_evaluation'),
        lambda root, split, n, seed, size: files.omniglot_folders(
            root, {'train': 'background', 'test': 'evaluation'}[split], n=n, seed=seed),
        'Omniglot folders (images_background/, images_evaluation/)'),
}
"""Format name (the loader of :data:`harness.data.DATASETS` that reads it) -> :class:`Format`."""

SPLITS = ('train', 'test')


def format_of(root: str) -> str:
  """The name of the :data:`FORMATS` entry whose files are in the folder ``root``.

  Raises:
    FileNotFoundError: ``root`` is not a folder.
    ValueError: no format's files, or the files of several formats, are in ``root``.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f'data root not found: {root} is not a folder')
  found = [name for name, data_format in FORMATS.items()
           if any(os.path.exists(os.path.join(root, marker)) for marker in data_format.markers)]
  if not found:
    expected = '; '.join(data_format.what for data_format in FORMATS.values())
    raise ValueError(f'{root} holds none of the papers\' data formats; expected one of: '
                     f'{expected}')
  if len(found) > 1:
    raise ValueError(f'{root} holds files of several data formats {found}: give the folder '
                     'of one data set')
  return found[0]


def load_split(root: str, split: str, *, n: int | None = None, seed: int = 0,
               size: int | None = None):
  """The ``split`` (``'train'`` or ``'test'``) of the data set in the folder ``root``.

  ``size``: the side the caller will bring the images to (:func:`prepare_images`); formats of
  large images resize each one to it as it is read, the others return their own size.

  Returns:
    The format's loader's result (:data:`FORMATS`): :class:`harness.data.files.ImagePair`
    for side-by-side pairs, else :class:`harness.data.files.LabelledImages`; images
    ``(n, height, width, channels)`` float32 in ``[0, 255]``.
  """
  if split not in SPLITS:
    raise ValueError(f'unknown split {split!r}; expected one of {SPLITS}')
  return FORMATS[format_of(root)].load(root, split, n, seed, size)


def load_labelled(root: str, split: str, *, size: int, channels: int,
                  value_range: tuple[float, float]) -> files.LabelledImages:
  """The ``split`` of the labelled image set in the folder ``root`` (:func:`load_split`)
  brought to an experiment's images by :func:`prepare_images`.

  Returns:
    :class:`harness.data.files.LabelledImages`: ``images`` ``(n, size, size, channels)``
    float32 in ``value_range``, ``labels`` ``(n,)`` int32.

  Raises:
    ValueError: the folder holds image pairs, not labelled images.
  """
  dataset = load_split(root, split, size=size)
  if not hasattr(dataset, 'labels'):
    raise ValueError(f'{root} holds {format_of(root)}, not labelled images')
  return files.LabelledImages(
      prepare_images(dataset.images, size=size, channels=channels, value_range=value_range),
      dataset.labels)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""ITU-R 601 weights of R, G, B in the grey level (those of PIL's ``convert('L')``)."""
_CHUNK = 512
"""Images resized at a time, which bounds the memory of a large data set at its own size."""


def prepare_images(images: np.ndarray, *, size: int, channels: int,
                   value_range: tuple[float, float]) -> np.ndarray:
  """The one transform from a loader's images to an experiment's.

  Args:
    images: ``(n, height, width, c)`` with ``c`` 1 (grey) or 3 (RGB), values in ``[0, 255]``.
    size: the side of the square output (antialiased bilinear resizing:
      :func:`harness.data.bundled.resize_images`, as the stand-ins are resized).
    channels: 1 (RGB becomes its grey level) or 3 (grey is repeated).
    value_range: ``(low, high)``: 0 becomes ``low`` and 255 ``high``, e.g. ``(-1, 1)``.

  Returns:
    ``(n, size, size, channels)`` float32 in ``[low, high]``.

  Raises:
    ValueError: not a batch of grey or RGB images, values outside ``[0, 255]``, or a bad
      ``size``, ``channels`` or ``value_range``.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[3] not in (1, 3) or not len(images):
    raise ValueError(f'prepare_images expects (n, height, width, 1 or 3) images, got shape '
                     f'{images.shape}')
  if images.min() < 0 or images.max() > 255:
    raise ValueError(f'prepare_images expects values in [0, 255], got '
                     f'[{images.min():.4g}, {images.max():.4g}]')
  if channels not in (1, 3):
    raise ValueError(f'channels must be 1 (grey) or 3 (RGB), got {channels!r}')
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
    raise ValueError(f'size must be a positive int, got {size!r}')
  low, high = value_range
  if not high > low:
    raise ValueError(f'value_range {value_range!r}: high must exceed low')
  out = []
  for start in range(0, len(images), _CHUNK):
    chunk = images[start:start + _CHUNK].astype(np.float32)
    if chunk.shape[3] != channels:
      chunk = (chunk @ _LUMA)[..., None] if channels == 1 else np.repeat(chunk, 3, axis=3)
    if chunk.shape[1:3] != (size, size):
      chunk = bundled.resize_images(chunk, size)
    out.append(np.clip(chunk, 0.0, 255.0) * ((high - low) / 255.0) + low)
  return np.concatenate(out).astype(np.float32)


STAND_IN = 'stand-in: '
"""How :func:`data_source` starts the description of a stand-in for a paper's data set."""


def _describe_block(block: Mapping[str, Any]) -> str:
  name = block.get('name', '')
  source = (block.get('options') or {}).get('source')
  name = f'{name}({source})' if source else name
  if block.get('root'):
    root = os.path.abspath(block['root'])
    return f'{format_of(root)}:{root}'
  if 'root' in block:
    return STAND_IN + (name or 'bundled data')
  return name or 'generated by the experiment'


def data_source(data_config: Mapping[str, Any]) -> str:
  """Which data a run's ``config.data`` reads, in words (``results.json``'s ``data_source``).

  ``'<format>:<root>'`` for a paper's data set read from its folder (:func:`format_of`),
  ``'stand-in: <name>'`` for a block that takes a ``root`` but has none, the data set's name
  for data that are the experiment's own (``'moons'``); two domains ``config.data.a`` /
  ``config.data.b`` as ``'A: ...; B: ...'``.
  """
  domains = [(key, data_config[key]) for key in ('a', 'b')
             if isinstance(data_config.get(key), Mapping)]
  if domains:
    return '; '.join(f'{key.upper()}: {_describe_block(block)}' for key, block in domains)
  return _describe_block(data_config)


def is_paper_data(source: str) -> bool:
  """Whether a :func:`data_source` text says that every data set read is a paper's own one
  from a folder (no stand-in, no data of the experiment's own)."""
  parts = [part.split(': ', 1)[-1] for part in source.split('; ')] if source else []
  return bool(parts) and all(part.split(':', 1)[0] in FORMATS for part in parts)
