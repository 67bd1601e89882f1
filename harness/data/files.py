"""Loaders for full data sets kept on local disk (the path comes from a config).

* :func:`mnist_idx` - MNIST-format IDX files (``train-images-idx3-ubyte`` and
  ``train-labels-idx1-ubyte``, or the ``t10k-`` test pair), plain or ``.gz``.
  Fashion-MNIST and the EMNIST splits use the same format.
* :func:`usps_libsvm` - USPS in the LIBSVM text format (``usps`` /
  ``usps.t``), plain or ``.bz2``.
* :func:`paired_image_folders` - pix2pix-style pairs ``root/A/<name>`` and
  ``root/B/<name>`` matched by file name.
* :func:`side_by_side_image_pairs` - pix2pix "AB" files, each image holding
  A on the left half and B on the right half.
* :func:`svhn_mat` - SVHN's cropped digits, ``train_32x32.mat`` /
  ``test_32x32.mat``.
* :func:`omniglot_folders` - Omniglot's ``images_background`` /
  ``images_evaluation`` folders of ``<alphabet>/<character>/*.png``.

Every loader raises ``FileNotFoundError`` naming the paths it tried when a
file is missing and ``ValueError`` naming the file when its content is
malformed. Images come back NHWC float32 at the data set's own size, with
values in ``[0, 255]`` (USPS: ``[-1, 1]``, as its files hold them;
:func:`harness.data.paper_data.prepare_images` brings them to an
experiment's size, channels and range); labels int32. ``n`` and
``seed`` draw a random subset without replacement, deterministic in ``seed``.
"""

from __future__ import annotations

import gzip
import os
import struct
from typing import IO, Callable, NamedTuple, Sequence

import numpy as np
import scipy.io
from PIL import Image
from sklearn import datasets as sk_datasets

IDX_IMAGES_MAGIC = 2051
"""Magic number of an IDX file of unsigned-byte images: 0x00000803."""
IDX_LABELS_MAGIC = 2049
"""Magic number of an IDX file of unsigned-byte labels: 0x00000801."""
USPS_SIDE = 16
USPS_NUM_FEATURES = USPS_SIDE * USPS_SIDE
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')

_IDX_HEADER = struct.Struct('>I')
_MNIST_PREFIXES = {'train': 'train', 'test': 't10k'}
_USPS_FILES = {'train': 'usps', 'test': 'usps.t'}
_SVHN_FILES = {'train': 'train_32x32.mat', 'test': 'test_32x32.mat'}
_OMNIGLOT_FOLDERS = {'background': 'images_background', 'evaluation': 'images_evaluation'}
SVHN_SIDE = 32


class LabelledImages(NamedTuple):
  """Images with integer class labels.

  Attributes:
    images: ``(n, height, width, channels)`` float32; the range is stated by
      the loader that returns it.
    labels: ``(n,)`` int32 class labels.
  """

  images: np.ndarray
  labels: np.ndarray


class ImagePair(NamedTuple):
  """Aligned images of two domains; ``a[i]`` and ``b[i]`` show the same scene.

  Attributes:
    a: ``(n, height, width, channels)`` float32 images of domain A.
    b: ``(n, height, width, channels)`` float32 images of domain B.
  """

  a: np.ndarray
  b: np.ndarray


def random_subset(arrays: Sequence[np.ndarray], n: int | None, seed: int,
                  source: str) -> list[np.ndarray]:
  """The same ``n`` random rows of every array, or all rows when ``n`` is None.

  Args:
    arrays: arrays sharing their leading dimension ``total``.
    n: number of rows to keep, ``1 <= n <= total``, or None for all.
    seed: integer seed of the draw (without replacement).
    source: name of the data set or file, used in error messages.

  Returns:
    The arrays indexed by one random permutation prefix of length ``n``.
  """
  if n is None:
    return list(arrays)
  total = len(arrays[0])
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
    raise ValueError(f'{source}: n must be an integer in [1, {total}] (the size of the '
                     f'data set) or None, got {n!r}')
  keep = np.random.default_rng(seed).permutation(total)[:n]
  return [array[keep] for array in arrays]


def _first_existing(candidates: Sequence[str], what: str) -> str:
  for path in candidates:
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f'{what} not found; tried: {", ".join(candidates)}')


def _open_maybe_compressed(path: str) -> IO[bytes]:
  """Opens ``path`` for reading bytes, decompressing ``.gz`` files."""
  if path.endswith('.gz'):
    return gzip.open(path, 'rb')
  return open(path, 'rb')


def _read_bytes(path: str) -> bytes:
  try:
    with _open_maybe_compressed(path) as stream:
      return stream.read()
  except (OSError, EOFError) as error:
    raise ValueError(f'{path}: cannot read the file ({error})') from error


def read_idx_ubyte(path: str, expected_magic: int) -> np.ndarray:
  """Reads an IDX file of unsigned bytes (the MNIST format).

  The file starts with a big-endian 32-bit magic number ``0x000008NN``
  (``0x08`` = unsigned byte, ``NN`` = number of dimensions), then one
  big-endian 32-bit size per dimension, then the values in C order.

  Args:
    path: the file, plain or gzip-compressed (name ending in ``.gz``).
    expected_magic: :data:`IDX_IMAGES_MAGIC` (3 dimensions) or
      :data:`IDX_LABELS_MAGIC` (1 dimension).

  Returns:
    uint8 array of the shape the header gives.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: wrong magic number, or a data size that disagrees with the
      header (truncated file or trailing bytes).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'IDX file not found: {path}')
  content = _read_bytes(path)
  if len(content) < _IDX_HEADER.size:
    raise ValueError(f'{path}: truncated IDX file, {len(content)} bytes is shorter than '
                     'the 4-byte magic number')
  (magic,) = _IDX_HEADER.unpack_from(content, 0)
  if magic != expected_magic:
    raise ValueError(f'{path}: bad IDX magic number {magic} (0x{magic:08x}), expected '
                     f'{expected_magic} (0x{expected_magic:08x}); is this the right file?')
  num_dims = magic & 0xFF
  header_size = _IDX_HEADER.size * (1 + num_dims)
  if len(content) < header_size:
    raise ValueError(f'{path}: truncated IDX header, expected {header_size} bytes, '
                     f'found {len(content)}')
  shape = struct.unpack_from(f'>{num_dims}I', content, _IDX_HEADER.size)
  expected_size = int(np.prod(shape, dtype=np.int64))
  data_size = len(content) - header_size
  if data_size < expected_size:
    raise ValueError(f'{path}: truncated IDX file, header shape {shape} needs '
                     f'{expected_size} data bytes, found {data_size}')
  if data_size > expected_size:
    raise ValueError(f'{path}: {data_size - expected_size} unexpected trailing bytes after '
                     f'the {expected_size} data bytes of shape {shape}')
  return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)


def _check_split(split: str, known: dict[str, str], loader: str) -> None:
  if split not in known:
    raise ValueError(f'{loader}: unknown split {split!r}; expected one of {sorted(known)}')


def _idx_path(root: str, prefix: str, kind: str, dims: int) -> str:
  stems = (f'{prefix}-{kind}-idx{dims}-ubyte', f'{prefix}-{kind}.idx{dims}-ubyte')
  candidates = [os.path.join(root, stem + suffix) for stem in stems for suffix in ('', '.gz')]
  return _first_existing(candidates, f'MNIST {prefix} {kind} file')


def mnist_idx(root: str, split: str = 'train', *, n: int | None = None,
              seed: int = 0) -> LabelledImages:
  """MNIST (or any 28x28 IDX digit set) from ``root``.

  Looks for ``{prefix}-images-idx3-ubyte`` and ``{prefix}-labels-idx1-ubyte``
  (also spelt ``{prefix}-images.idx3-ubyte``), each optionally ``.gz``, where
  ``prefix`` is ``train`` or ``t10k``.

  Args:
    root: folder holding the files.
    split: ``'train'`` or ``'test'``.
    n: size of a random subset, or None for the whole split.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, rows, cols, 1)`` float32 with
    integer values in ``[0, 255]``; ``labels`` ``(n,)`` int32.

  Raises:
    FileNotFoundError: a file is missing.
    ValueError: bad magic number, truncated file, or image and label counts
      that differ.
  """
  _check_split(split, _MNIST_PREFIXES, 'mnist_idx')
  prefix = _MNIST_PREFIXES[split]
  images_path = _idx_path(root, prefix, 'images', 3)
  labels_path = _idx_path(root, prefix, 'labels', 1)
  images = read_idx_ubyte(images_path, IDX_IMAGES_MAGIC)
  labels = read_idx_ubyte(labels_path, IDX_LABELS_MAGIC)
  if len(images) != len(labels):
    raise ValueError(f'{images_path} holds {len(images)} images but {labels_path} holds '
                     f'{len(labels)} labels')
  images, labels = random_subset([images, labels], n, seed, images_path)
  return LabelledImages(images[..., None].astype(np.float32), labels.astype(np.int32))


def read_libsvm(path: str, num_features: int) -> tuple[np.ndarray, np.ndarray]:
  """Reads a LIBSVM text file densely, with scikit-learn's ``load_svmlight_file``.

  Each line is ``label index:value ...`` with 1-based indices, ascending within the line;
  omitted features are 0, blank lines and ``#`` comments are skipped.

  Args:
    path: the file, plain or compressed (name ending in ``.gz`` or ``.bz2``).
    num_features: number of features.

  Returns:
    ``(features, labels)``: ``(n, num_features)`` float32 and ``(n,)`` int64
    labels as written in the file.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: naming the file: malformed content (scikit-learn's reason: an index
      outside ``[1, num_features]``, indices not ascending, a token that is no number,
      an unreadable compressed file), a label that is not an integer, or no data lines.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'LIBSVM file not found: {path}')
  try:
    features, labels = sk_datasets.load_svmlight_file(
        path, n_features=num_features, dtype=np.float32, zero_based=False)
  except (ValueError, OSError, EOFError) as error:
    raise ValueError(
        f"{path}: malformed LIBSVM file (expected lines 'label index:value ...' with "
        f'ascending indices in [1, {num_features}]): {error}') from error
  if not labels.size:
    raise ValueError(f'{path}: no data lines')
  fractional = np.unique(labels[labels != np.round(labels)])
  if fractional.size:
    raise ValueError(f'{path}: labels must be integers, found {fractional[:5].tolist()}')
  return features.toarray(), labels.astype(np.int64)


def usps_libsvm(root: str, split: str = 'train', *, n: int | None = None,
                seed: int = 0) -> LabelledImages:
  """USPS digits from the LIBSVM files ``usps`` / ``usps.t`` (optionally ``.bz2``).

  Each line is ``label 1:v1 ... 256:v256`` with labels 1..10 (digit + 1) and
  pixel values in ``[-1, 1]``, row-major 16x16.

  Args:
    root: folder holding the files.
    split: ``'train'`` (``usps``, 7291 digits) or ``'test'`` (``usps.t``, 2007).
    n: size of a random subset, or None for the whole split.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, 16, 16, 1)`` float32 in
    ``[-1, 1]``; ``labels`` ``(n,)`` int32 digits in ``0..9``.

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: a malformed line, a label outside 1..10 or a value outside
      ``[-1, 1]``.
  """
  _check_split(split, _USPS_FILES, 'usps_libsvm')
  name = _USPS_FILES[split]
  path = _first_existing([os.path.join(root, name), os.path.join(root, name + '.bz2')],
                         f'USPS {split} file')
  features, labels = read_libsvm(path, USPS_NUM_FEATURES)
  bad_labels = np.unique(labels[(labels < 1) | (labels > 10)])
  if bad_labels.size:
    raise ValueError(f'{path}: USPS labels must lie in 1..10, found {bad_labels.tolist()}')
  tolerance = 1e-6
  if features.min() < -1 - tolerance or features.max() > 1 + tolerance:
    raise ValueError(f'{path}: USPS pixel values must lie in [-1, 1], found '
                     f'[{features.min()}, {features.max()}]')
  features, labels = random_subset([features, labels], n, seed, path)
  images = np.clip(features, -1.0, 1.0).reshape(-1, USPS_SIDE, USPS_SIDE, 1)
  return LabelledImages(images, (labels - 1).astype(np.int32))


def _read_image(path: str, mode: str) -> np.ndarray:
  """``(height, width, channels)`` float32 in ``[0, 255]`` from an image file."""
  try:
    with Image.open(path) as image:
      pixels = np.asarray(image.convert(mode), dtype=np.float32)
  except OSError as error:
    raise ValueError(f'{path}: cannot read the image ({error})') from error
  return pixels[..., None] if pixels.ndim == 2 else pixels


def _image_names(folder: str, extensions: Sequence[str]) -> list[str]:
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'image folder not found: {folder}')
  names = sorted(name for name in os.listdir(folder)
                 if name.lower().endswith(tuple(extensions)))
  if not names:
    raise ValueError(f'{folder}: no images with extensions {tuple(extensions)}')
  return names


def _stack_same_size(images: Sequence[np.ndarray], paths: Sequence[str]) -> np.ndarray:
  reference_shape = images[0].shape
  for image, path in zip(images, paths):
    if image.shape != reference_shape:
      raise ValueError(f'{path}: image of shape {image.shape} (height, width, channels) '
                       f'differs from {reference_shape} of {paths[0]}')
  return np.stack(images)


def _check_mode(mode: str) -> None:
  if mode not in ('L', 'RGB'):
    raise ValueError(f"image mode must be 'L' (grey, 1 channel) or 'RGB' (3 channels), "
                     f'got {mode!r}')


def paired_image_folders(root: str, *, n: int | None = None, seed: int = 0,
                         mode: str = 'RGB',
                         extensions: Sequence[str] = IMAGE_EXTENSIONS) -> ImagePair:
  """Pairs ``root/A/<name>`` with ``root/B/<name>`` (pix2pix-style folders).

  Args:
    root: folder with sub-folders ``A`` and ``B`` holding equally named images.
    n: size of a random subset of pairs, or None for all.
    seed: integer seed of the subset.
    mode: ``'RGB'`` (3 channels) or ``'L'`` (grey, 1 channel).
    extensions: file name endings (lower case) that count as images.

  Returns:
    :class:`ImagePair`: ``a`` and ``b`` ``(n, height, width, channels)``
    float32 with integer values in ``[0, 255]``, pairs in file-name order
    (or subset order).

  Raises:
    FileNotFoundError: ``root/A`` or ``root/B`` is missing.
    ValueError: names present in one folder only, images of differing sizes,
      or an unreadable image.
  """
  _check_mode(mode)
  folder_a, folder_b = os.path.join(root, 'A'), os.path.join(root, 'B')
  names_a = _image_names(folder_a, extensions)
  names_b = _image_names(folder_b, extensions)
  only_a = sorted(set(names_a) - set(names_b))
  only_b = sorted(set(names_b) - set(names_a))
  if only_a or only_b:
    raise ValueError(f'{root}: unmatched image names; only in A: {only_a[:5]} '
                     f'({len(only_a)} in all), only in B: {only_b[:5]} ({len(only_b)} in all)')
  (names,) = random_subset([np.asarray(names_a)], n, seed, root)
  paths_a = [os.path.join(folder_a, name) for name in names]
  paths_b = [os.path.join(folder_b, name) for name in names]
  images_a = [_read_image(path, mode) for path in paths_a]
  images_b = [_read_image(path, mode) for path in paths_b]
  return ImagePair(_stack_same_size(images_a, paths_a), _stack_same_size(images_b, paths_b))


def side_by_side_image_pairs(folder: str, *, n: int | None = None, seed: int = 0,
                             mode: str = 'RGB',
                             extensions: Sequence[str] = IMAGE_EXTENSIONS,
                             each_half: Callable[[np.ndarray], np.ndarray] | None = None
                             ) -> ImagePair:
  """Splits pix2pix "AB" images (A on the left half, B on the right) into pairs.

  Args:
    folder: folder of images of even width ``2 * width``, e.g. ``maps/train``.
    n: size of a random subset of pairs, or None for all.
    seed: integer seed of the subset.
    mode: ``'RGB'`` (3 channels) or ``'L'`` (grey, 1 channel).
    extensions: file name endings (lower case) that count as images.
    each_half: applied to every half ``(height, width, channels)`` as soon as its image is
      read (e.g. resizing, so that a large data set never sits in memory at its own size).

  Returns:
    :class:`ImagePair`: ``a`` and ``b`` ``(n, height, width, channels)``
    float32 with integer values in ``[0, 255]`` (as ``each_half`` leaves them), in file-name
    order (or subset order).

  Raises:
    FileNotFoundError: ``folder`` is missing.
    ValueError: an image of odd width, images of differing sizes, or an
      unreadable image.
  """
  _check_mode(mode)
  (names,) = random_subset([np.asarray(_image_names(folder, extensions))], n, seed, folder)
  paths = [os.path.join(folder, name) for name in names]
  transform = each_half or (lambda half: half)
  halves_a, halves_b = [], []
  for path in paths:
    image = _read_image(path, mode)
    if image.shape[1] % 2:
      raise ValueError(f'{path}: side-by-side image has odd width {image.shape[1]}; '
                       'expected A and B halves of equal width')
    half = image.shape[1] // 2
    halves_a.append(transform(image[:, :half]))
    halves_b.append(transform(image[:, half:]))
  return ImagePair(_stack_same_size(halves_a, paths), _stack_same_size(halves_b, paths))


def svhn_mat(root: str, split: str = 'train', *, n: int | None = None,
             seed: int = 0) -> LabelledImages:
  """SVHN's cropped digits from ``train_32x32.mat`` / ``test_32x32.mat`` (MATLAB files).

  Each file holds ``X``, ``(32, 32, 3, n)`` uint8 RGB images, and ``y``, ``(n, 1)`` labels
  1..10 where 10 stands for the digit 0.

  Args:
    root: folder holding the files.
    split: ``'train'`` (73,257 digits) or ``'test'`` (26,032).
    n: size of a random subset, or None for the whole split.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, 32, 32, 3)`` float32 with integer values in
    ``[0, 255]``; ``labels`` ``(n,)`` int32 digits in ``0..9``.

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: not a MATLAB file, no ``X`` or ``y``, images not 32x32x3, image and label
      counts that differ, or labels outside 1..10.
  """
  _check_split(split, _SVHN_FILES, 'svhn_mat')
  path = _first_existing([os.path.join(root, _SVHN_FILES[split])], f'SVHN {split} file')
  try:
    content = scipy.io.loadmat(path)
  except (scipy.io.matlab.MatReadError, ValueError, TypeError, OSError) as error:
    raise ValueError(f'{path}: cannot read the MATLAB file ({error})') from error
  missing = [key for key in ('X', 'y') if key not in content]
  if missing:
    raise ValueError(f'{path}: no variable(s) {missing} (SVHN files hold X and y)')
  images, labels = np.asarray(content['X']), np.asarray(content['y']).reshape(-1)
  if images.ndim != 4 or images.shape[:3] != (SVHN_SIDE, SVHN_SIDE, 3):
    raise ValueError(f'{path}: X has shape {images.shape}, expected (32, 32, 3, n)')
  if images.shape[3] != len(labels):
    raise ValueError(f'{path}: X holds {images.shape[3]} images but y holds {len(labels)} '
                     'labels')
  bad_labels = np.unique(labels[(labels < 1) | (labels > 10)])
  if bad_labels.size:
    raise ValueError(f'{path}: SVHN labels must lie in 1..10, found {bad_labels.tolist()}')
  images, labels = random_subset([np.moveaxis(images, 3, 0), labels], n, seed, path)
  return LabelledImages(images.astype(np.float32), (labels % 10).astype(np.int32))


def _subfolders(folder: str) -> list[str]:
  return sorted(name for name in os.listdir(folder)
                if os.path.isdir(os.path.join(folder, name)))


def omniglot_folders(root: str, split: str = 'background', *, n: int | None = None,
                     seed: int = 0) -> LabelledImages:
  """Omniglot's handwritten characters, ``root/images_<split>/<alphabet>/<character>/*.png``.

  Every character folder is a class; classes are numbered in sorted (alphabet, character)
  order. The images are grey, 105x105 in the original release, white background.

  Args:
    root: folder holding ``images_background`` (964 characters of 30 alphabets) and / or
      ``images_evaluation`` (659 characters of 20 alphabets).
    split: ``'background'`` or ``'evaluation'``.
    n: size of a random subset, or None for every image.
    seed: integer seed of the subset.

  Returns:
    :class:`LabelledImages`: ``images`` ``(n, height, width, 1)`` float32 with integer
    values in ``[0, 255]`` (strokes dark, 0); ``labels`` ``(n,)`` int32 character classes.

  Raises:
    FileNotFoundError: the split's folder is missing.
    ValueError: no character folders, a character folder without images, images of
      differing sizes, or an unreadable image.
  """
  _check_split(split, _OMNIGLOT_FOLDERS, 'omniglot_folders')
  folder = os.path.join(root, _OMNIGLOT_FOLDERS[split])
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'Omniglot {split} folder not found: {folder}')
  characters = [os.path.join(folder, alphabet, character) for alphabet in _subfolders(folder)
                for character in _subfolders(os.path.join(folder, alphabet))]
  paths, labels = [], []
  for label, character_folder in enumerate(characters):
    names = _image_names(character_folder, ('.png',))
    paths += [os.path.join(character_folder, name) for name in names]
    labels += [label] * len(names)
  if not paths:
    raise ValueError(f'{folder}: no <alphabet>/<character> folders of images')
  paths, labels = random_subset([np.asarray(paths), np.asarray(labels)], n, seed, folder)
  images = [_read_image(path, 'L') for path in paths]
  return LabelledImages(_stack_same_size(images, paths), labels.astype(np.int32))
