"""Tests of harness.data: synthetic sets, bundled real data, file loaders, registry."""

from __future__ import annotations

import bz2
import gzip
import inspect
import math
import os
import struct

import ml_collections
import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import pdist

from harness import data
from harness.data import bundled, files, synthetic

SYNTHETIC_SHAPES = {
    'blobs': {'a': (2,), 'b': (2,)},
    'moons': {'x': (2,), 'labels': ()},
    'gaussian_mixture_2d': {'source_x': (2,), 'source_labels': (),
                            'target_x': (2,), 'target_labels': ()},
    'correlated_gaussians': {'x': (20,), 'y': (20,)},
    's_curve': {'points': (3,), 'coordinate': ()},
    'swiss_roll': {'points': (3,), 'coordinate': ()},
}


@pytest.fixture(scope='module')
def mnist():
  return bundled.mnist_5000()


# Synthetic data.


@pytest.mark.parametrize('name', sorted(SYNTHETIC_SHAPES))
def test_synthetic_shapes_dtypes_and_determinism(name):
  dataset = data.load(name, n=50, seed=3)
  data.validate_fields(dataset, name, SYNTHETIC_SHAPES[name])
  for field, array in dataset._asdict().items():
    assert len(array) == 50, field
    expected_dtype = np.int32 if field.endswith('labels') else np.float32
    assert array.dtype == expected_dtype, field
  again = data.load(name, n=50, seed=3)
  other = data.load(name, n=50, seed=4)
  for first, second, third in zip(dataset, again, other):
    np.testing.assert_array_equal(first, second)
  assert any(not np.array_equal(first, third) for first, third in zip(dataset, other))


def test_rotate_2d_quarter_turn_about_centre():
  points = np.array([[2.0, 1.0], [1.0, 1.0]])
  rotated = synthetic.rotate_2d(points, 90.0, centre=(1.0, 1.0))
  np.testing.assert_allclose(rotated, [[1.0, 2.0], [1.0, 1.0]], atol=1e-12)


def test_moons_rotation_preserves_distances_labels_and_centre():
  plain = synthetic.moons(300, seed=0)
  rotated = synthetic.moons(300, seed=0, rotation_degrees=50.0)
  np.testing.assert_array_equal(plain.labels, rotated.labels)
  np.testing.assert_allclose(pdist(rotated.x), pdist(plain.x), atol=1e-5)
  assert not np.allclose(rotated.x, plain.x)
  np.testing.assert_allclose(rotated.x.mean(0), plain.x.mean(0), atol=0.02)
  np.testing.assert_allclose(plain.x.mean(0), synthetic.MOONS_CENTRE, atol=0.02)


def test_standardized_moons_are_centred_scaled_then_rotated_about_the_origin():
  plain = synthetic.moons(2000, seed=3)
  standard = synthetic.moons(2000, seed=3, standardize=True)
  expected = (plain.x - plain.x.mean(0)) / plain.x.std(0)
  np.testing.assert_allclose(standard.x, expected, atol=1e-5)
  rotated = synthetic.moons(2000, seed=3, standardize=True, rotation_degrees=50.0)
  np.testing.assert_allclose(np.linalg.norm(rotated.x, axis=1),
                             np.linalg.norm(standard.x, axis=1), atol=1e-5)
  np.testing.assert_allclose(rotated.x.mean(0), 0.0, atol=1e-5)
  angle = np.deg2rad(50.0)
  turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  np.testing.assert_allclose(rotated.x, standard.x @ turn.T, atol=1e-5)
  with pytest.raises(ValueError, match='standardize'):
    synthetic.moons(100, seed=0, standardize='yes')


def test_blobs_moments_follow_options():
  pair = synthetic.blobs(4000, seed=0, dim=3, mean_a=(1.0, 2.0, 3.0), std_a=2.0,
                         mean_b=-1.0, std_b=0.5)
  np.testing.assert_allclose(pair.a.mean(0), [1.0, 2.0, 3.0], atol=0.15)
  np.testing.assert_allclose(pair.a.std(0), 2.0, atol=0.1)
  np.testing.assert_allclose(pair.b.mean(0), -1.0, atol=0.05)
  np.testing.assert_allclose(pair.b.std(0), 0.5, atol=0.03)
  with pytest.raises(ValueError, match='mean_a must be a scalar or have 3 entries'):
    synthetic.blobs(10, seed=0, dim=3, mean_a=(0.0, 0.0))


def test_gaussian_mixture_matches_fdre_appendix():
  split = synthetic.gaussian_mixture_2d(seed=0)
  assert split.source_x.shape == split.target_x.shape == (1000, 2)
  assert np.bincount(split.source_labels).tolist() == [990, 10]
  assert np.bincount(split.target_labels).tolist() == [10, 990]
  near_origin = split.target_x[split.target_labels == 1]
  far = split.source_x[split.source_labels == 0]
  np.testing.assert_allclose(near_origin.mean(0), [0.0, 0.0], atol=0.15)
  np.testing.assert_allclose(far.mean(0), [3.0, 3.0], atol=0.15)
  assert synthetic.gaussian_mixture_2d(n=100, seed=0, n_target=7).target_x.shape == (7, 2)
  with pytest.raises(ValueError, match='sum to 1'):
    synthetic.gaussian_mixture_2d(seed=0, source_weights=(0.5, 0.6))


def test_correlated_gaussians_correlation_and_true_mi():
  pair = synthetic.correlated_gaussians(20_000, seed=0, dim=4, rho=0.9)
  for i in range(4):
    assert abs(np.corrcoef(pair.x[:, i], pair.y[:, i])[0, 1] - 0.9) < 0.01
  assert abs(np.corrcoef(pair.x[:, 0], pair.y[:, 1])[0, 1]) < 0.03
  np.testing.assert_allclose(pair.y.std(0), 1.0, atol=0.03)
  assert round(synthetic.correlated_gaussians_true_mi(20, 0.9), 2) == 16.61
  assert math.isclose(synthetic.correlated_gaussians_true_mi(1, 0.0), 0.0)
  with pytest.raises(ValueError, match=r'rho must lie in \(-1, 1\)'):
    synthetic.correlated_gaussians_true_mi(20, 1.0)


def test_manifolds_return_points_and_coordinate():
  curve = synthetic.s_curve(200, seed=0)
  assert curve.points.shape == (200, 3) and curve.coordinate.shape == (200,)
  assert np.all(np.abs(curve.coordinate) <= 1.5 * np.pi + 1e-5)
  roll = synthetic.swiss_roll(200, seed=0, noise=0.1)
  assert roll.points.shape == (200, 3) and roll.coordinate.shape == (200,)


@pytest.mark.parametrize('kwargs, message', [
    ({'n': 0}, 'n must be a positive integer'),
    ({'n': 10, 'seed': -1}, 'seed must be a non-negative integer'),
    ({'n': 10, 'noise': -0.1}, 'noise must be >= 0'),
])
def test_synthetic_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    synthetic.moons(**kwargs)


# Bundled real data.


def test_mnist_5000(mnist):
  data.validate_fields(mnist, 'mnist_5000', {'images': (28, 28, 1), 'labels': ()})
  assert mnist.images.shape == (5000, 28, 28, 1) and mnist.images.dtype == np.float32
  assert mnist.images.min() == 0.0 and mnist.images.max() == bundled.MNIST_MAX_VALUE
  assert np.bincount(mnist.labels).tolist() == [500] * 10
  unit = bundled.to_unit_interval(mnist.images, 0.0, bundled.MNIST_MAX_VALUE)
  assert unit.dtype == np.float32 and unit.min() == 0.0 and unit.max() == 1.0


def test_mnist_5000_subset_is_deterministic(mnist):
  subset = bundled.mnist_5000(n=20, seed=5)
  np.testing.assert_array_equal(subset.images, bundled.mnist_5000(n=20, seed=5).images)
  index = next(i for i, image in enumerate(mnist.images)
               if np.array_equal(image, subset.images[0]))
  assert mnist.labels[index] == subset.labels[0]
  with pytest.raises(ValueError, match=r'mnist_5000: n must be an integer in \[1, 5000\]'):
    bundled.mnist_5000(n=5001)
  changed = bundled.mnist_5000()
  changed.images[:] = -1.0
  np.testing.assert_array_equal(bundled.mnist_5000().images, mnist.images)


def test_sklearn_digits_and_breast_cancer():
  digits = bundled.sklearn_digits()
  assert digits.images.shape == (1797, 8, 8, 1) and digits.images.dtype == np.float32
  assert digits.images.max() == bundled.DIGITS_MAX_VALUE and digits.labels.dtype == np.int32
  cancer = bundled.breast_cancer()
  assert cancer.x.shape == (569, 30) and cancer.x.dtype == np.float32
  assert np.bincount(cancer.labels).tolist() == [212, 357]


def test_resize_images_brings_digit_sets_to_one_resolution(mnist):
  digits = bundled.sklearn_digits(n=5, seed=0).images
  up = bundled.resize_images(digits, 16)
  down = bundled.resize_images(mnist.images[:5], (16, 16))
  assert up.shape == down.shape == (5, 16, 16, 1) and up.dtype == np.float32
  assert up.min() >= 0.0 and up.max() <= bundled.DIGITS_MAX_VALUE + 1e-4
  assert down.min() >= -1e-3 and down.max() <= bundled.MNIST_MAX_VALUE + 1e-3
  np.testing.assert_allclose(down.mean((1, 2, 3)), mnist.images[:5].mean((1, 2, 3)), rtol=0.05)
  constant = np.full((2, 7, 9, 3), 4.0, np.float32)
  np.testing.assert_allclose(bundled.resize_images(constant, (3, 5)), 4.0, rtol=1e-6)
  with pytest.raises(ValueError, match='NHWC'):
    bundled.resize_images(digits[..., 0], 16)


# File loaders.


def write_idx(path, array, magic, compress=False):
  header = struct.pack(f'>I{array.ndim}I', magic, *array.shape)
  content = header + array.astype(np.uint8).tobytes()
  opener = gzip.open if compress else open
  with opener(path, 'wb') as stream:
    stream.write(content)


def write_mnist(root, prefix, images, labels, compress):
  suffix = '.gz' if compress else ''
  write_idx(os.path.join(root, f'{prefix}-images-idx3-ubyte{suffix}'), images,
            files.IDX_IMAGES_MAGIC, compress)
  write_idx(os.path.join(root, f'{prefix}-labels-idx1-ubyte{suffix}'), labels,
            files.IDX_LABELS_MAGIC, compress)


@pytest.mark.parametrize('compress', [False, True])
@pytest.mark.parametrize('split, prefix', [('train', 'train'), ('test', 't10k')])
def test_mnist_idx_round_trip(tmp_path, compress, split, prefix):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
  labels = np.arange(6, dtype=np.uint8)
  write_mnist(tmp_path, prefix, images, labels, compress)
  loaded = data.load('mnist_idx', root=str(tmp_path), split=split)
  assert loaded.images.shape == (6, 28, 28, 1) and loaded.images.dtype == np.float32
  np.testing.assert_array_equal(loaded.images[..., 0], images)
  np.testing.assert_array_equal(loaded.labels, labels)
  assert loaded.labels.dtype == np.int32
  subset = files.mnist_idx(str(tmp_path), split, n=3, seed=1)
  for image, label in zip(subset.images, subset.labels):
    np.testing.assert_array_equal(image[..., 0], images[label])


def test_idx_bad_magic_names_the_file(tmp_path):
  path = tmp_path / 'train-images-idx3-ubyte'
  write_idx(path, np.zeros((2, 28, 28)), files.IDX_LABELS_MAGIC)
  with pytest.raises(ValueError, match=r'train-images-idx3-ubyte: bad IDX magic number 2049'):
    files.read_idx_ubyte(str(path), files.IDX_IMAGES_MAGIC)


def test_idx_truncated_and_trailing_bytes(tmp_path):
  path = tmp_path / 'labels.gz'
  write_idx(path, np.arange(10), files.IDX_LABELS_MAGIC, compress=True)
  assert files.read_idx_ubyte(str(path), files.IDX_LABELS_MAGIC).tolist() == list(range(10))
  with gzip.open(path, 'wb') as stream:
    stream.write(struct.pack('>II', files.IDX_LABELS_MAGIC, 10) + bytes(7))
  with pytest.raises(ValueError, match=r'labels.gz: truncated IDX file.*needs 10 data bytes, '
                     r'found 7'):
    files.read_idx_ubyte(str(path), files.IDX_LABELS_MAGIC)
  with gzip.open(path, 'wb') as stream:
    stream.write(struct.pack('>II', files.IDX_LABELS_MAGIC, 10) + bytes(12))
  with pytest.raises(ValueError, match='2 unexpected trailing bytes'):
    files.read_idx_ubyte(str(path), files.IDX_LABELS_MAGIC)
  path.write_bytes(b'\x00\x00')
  with pytest.raises(ValueError, match='cannot read the file'):
    files.read_idx_ubyte(str(path), files.IDX_LABELS_MAGIC)


def test_mnist_idx_missing_file_and_count_mismatch(tmp_path):
  with pytest.raises(FileNotFoundError, match='MNIST train images file not found; tried:'):
    files.mnist_idx(str(tmp_path))
  write_idx(tmp_path / 'train-images-idx3-ubyte', np.zeros((3, 28, 28)), files.IDX_IMAGES_MAGIC)
  write_idx(tmp_path / 'train-labels-idx1-ubyte', np.zeros(2), files.IDX_LABELS_MAGIC)
  with pytest.raises(ValueError, match='holds 3 images but .* holds 2 labels'):
    files.mnist_idx(str(tmp_path))
  with pytest.raises(ValueError, match="unknown split 'valid'"):
    files.mnist_idx(str(tmp_path), 'valid')


def libsvm_lines(images, labels):
  for image, label in zip(images, labels):
    features = ' '.join(f'{index + 1}:{value:.6f}' for index, value in enumerate(image.ravel()))
    yield f'{label} {features}\n'


@pytest.mark.parametrize('compress', [False, True])
def test_usps_libsvm_round_trip(tmp_path, compress):
  rng = np.random.default_rng(0)
  images = rng.uniform(-1.0, 1.0, size=(5, 16, 16)).astype(np.float32)
  images[0, 0, 0] = -1.0
  labels = np.array([1, 10, 3, 4, 5])
  text = ''.join(libsvm_lines(images, labels)).encode('ascii')
  if compress:
    (tmp_path / 'usps.t.bz2').write_bytes(bz2.compress(text))
  else:
    (tmp_path / 'usps.t').write_bytes(text)
  loaded = data.load('usps_libsvm', root=str(tmp_path), split='test')
  assert loaded.images.shape == (5, 16, 16, 1) and loaded.images.dtype == np.float32
  np.testing.assert_allclose(loaded.images[..., 0], images, atol=1e-6)
  assert loaded.labels.tolist() == [0, 9, 2, 3, 4] and loaded.labels.dtype == np.int32


def test_usps_sparse_lines_fill_zeros(tmp_path):
  (tmp_path / 'usps').write_text('7 1:0.5 256:-0.25\n\n# a comment\n3 2:1\n')
  loaded = files.usps_libsvm(str(tmp_path))
  assert loaded.labels.tolist() == [6, 2]
  flat = loaded.images.reshape(2, -1)
  assert flat[0, 0] == 0.5 and flat[0, 255] == -0.25 and flat[1, 1] == 1.0
  assert np.count_nonzero(flat) == 3


_MALFORMED = r"usps: malformed LIBSVM file \(expected lines 'label index:value \.\.\.' "


@pytest.mark.parametrize('content, message', [
    ('11 1:0.5\n', r'usps: USPS labels must lie in 1..10, found \[11\]'),
    ('1 1:0.5\n2 1:1.5\n', r'usps: USPS pixel values must lie in \[-1, 1\]'),
    ('1 1:0.5\n2 300:0.1\n', _MALFORMED + r'.*contains 300 features'),
    ('1 0:0.5\n', _MALFORMED + r'.*\[1, 256\]\): Invalid index 0'),
    ('1 3:0.5 2:0.1\n', _MALFORMED + '.*sorted and unique'),
    ('1 1:0.5\n2 1=0.1\n', _MALFORMED),
    ('1 1:0.5\nseven 1:0.5\n', _MALFORMED + ".*b'seven'"),
    ('1.5 1:0.5\n', r'usps: labels must be integers, found \[1.5\]'),
    ('\n\n', 'usps: no data lines'),
    ('# only a comment\n', 'usps: no data lines'),
])
def test_usps_bad_content_names_the_file_and_problem(tmp_path, content, message):
  (tmp_path / 'usps').write_text(content)
  with pytest.raises(ValueError, match=message):
    files.usps_libsvm(str(tmp_path))


def test_usps_unreadable_compressed_file_names_it(tmp_path):
  (tmp_path / 'usps.bz2').write_bytes(b'not bzip2 data')
  with pytest.raises(ValueError, match=r'usps\.bz2: malformed LIBSVM file .*Invalid data'):
    files.usps_libsvm(str(tmp_path))


def test_usps_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'USPS train file not found; tried: .*usps, '
                     r'.*usps.bz2'):
    files.usps_libsvm(str(tmp_path))


def write_png(path, array):
  Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def make_pair_folders(root, names, size=(6, 4)):
  rng = np.random.default_rng(0)
  for domain in ('A', 'B'):
    os.makedirs(root / domain)
  pairs = {}
  for name in names:
    a = rng.integers(0, 256, size=(*size, 3))
    b = rng.integers(0, 256, size=(*size, 3))
    write_png(root / 'A' / name, a)
    write_png(root / 'B' / name, b)
    pairs[name] = (a, b)
  return pairs


def test_paired_image_folders_round_trip(tmp_path):
  pairs = make_pair_folders(tmp_path, ['b.png', 'a.png', 'c.png'])
  (tmp_path / 'A' / 'notes.txt').write_text('not an image')
  loaded = data.load('paired_image_folders', root=str(tmp_path))
  assert loaded.a.shape == loaded.b.shape == (3, 6, 4, 3) and loaded.a.dtype == np.float32
  for index, name in enumerate(['a.png', 'b.png', 'c.png']):
    np.testing.assert_array_equal(loaded.a[index], pairs[name][0])
    np.testing.assert_array_equal(loaded.b[index], pairs[name][1])
  grey = files.paired_image_folders(str(tmp_path), mode='L', n=2, seed=0)
  assert grey.a.shape == (2, 6, 4, 1)


def test_paired_image_folders_errors(tmp_path):
  make_pair_folders(tmp_path, ['a.png', 'b.png'])
  write_png(tmp_path / 'A' / 'extra.png', np.zeros((6, 4)))
  with pytest.raises(ValueError, match=r"unmatched image names; only in A: \['extra.png'\]"):
    files.paired_image_folders(str(tmp_path))
  write_png(tmp_path / 'B' / 'extra.png', np.zeros((5, 4)))
  with pytest.raises(ValueError, match=r'extra.png: image of shape \(5, 4, 3\)'):
    files.paired_image_folders(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='image folder not found'):
    files.paired_image_folders(str(tmp_path / 'missing'))


def test_side_by_side_image_pairs(tmp_path):
  rng = np.random.default_rng(0)
  combined = [rng.integers(0, 256, size=(5, 8, 3)) for _ in range(2)]
  for index, image in enumerate(combined):
    write_png(tmp_path / f'{index}.png', image)
  loaded = data.load('side_by_side_image_pairs', folder=str(tmp_path))
  assert loaded.a.shape == loaded.b.shape == (2, 5, 4, 3)
  np.testing.assert_array_equal(loaded.a[1], combined[1][:, :4])
  np.testing.assert_array_equal(loaded.b[1], combined[1][:, 4:])
  write_png(tmp_path / '2.png', np.zeros((5, 7, 3)))
  with pytest.raises(ValueError, match='2.png: side-by-side image has odd width 7'):
    files.side_by_side_image_pairs(str(tmp_path))


# Registry and validation.


def test_every_loader_takes_n_and_seed_keywords():
  for name, loader in data.DATASETS.items():
    parameters = inspect.signature(loader).parameters
    assert {'n', 'seed'} <= set(parameters), name


def test_load_rejects_unknown_names_and_options():
  with pytest.raises(ValueError, match="unknown data set 'x'; available: blobs, breast_cancer"):
    data.load('x')
  with pytest.raises(ValueError, match=r"data set 'moons' has no option\(s\) \['noize'\]"):
    data.load('moons', noize=0.1)
  with pytest.raises(ValueError, match=r"data set 'mnist_idx' needs option\(s\) \['root'\]"):
    data.load('mnist_idx', split='train')


def test_load_from_ml_collections_config():
  config = ml_collections.ConfigDict()
  config.name = 'moons'
  config.options = ml_collections.ConfigDict({'n': 40, 'seed': 2, 'rotation_degrees': 50.0})
  loaded = data.load(config.name, **config.options)
  expected = synthetic.moons(40, 2, rotation_degrees=50.0)
  np.testing.assert_array_equal(loaded.x, expected.x)


def test_validate_accepts_good_arrays():
  images = np.zeros((3, 4, 5, 1), np.float32)
  assert data.validate(images, 'images', (4, None, 1)) is images
  data.validate(np.arange(3), 'labels', ())


@pytest.mark.parametrize('array, suffix, message', [
    (np.array([[0.0, np.nan], [1.0, 2.0]]), None,
     "data set 'toy': 1 NaN and 0 Inf values .* first bad example at index 0"),
    (np.array([[0.0], [np.inf]], np.float32), None, 'toy.*0 NaN and 1 Inf.*index 1'),
    (np.zeros((2, 28, 28)), (28, 28, 1), r"'toy': expected shape \(batch, 28, 28, 1\), "
     r'got \(2, 28, 28\)'),
    (np.zeros((2, 3)), (None, 4), r'expected shape \(batch, any, 4\)'),
    (np.zeros((0, 3)), None, 'empty array of shape'),
    (np.float32(1.0), None, 'got a scalar'),
    (np.array(['a', 'b']), None, 'expected a numeric array'),
])
def test_validate_rejects_bad_arrays(array, suffix, message):
  with pytest.raises(ValueError, match=message):
    data.validate(array, 'toy', suffix)


def test_validate_fields_names_the_field():
  pair = synthetic.blobs(5, seed=0)
  bad = pair._replace(b=np.where(np.arange(5)[:, None] == 2, np.nan, pair.b))
  with pytest.raises(ValueError, match=r"data set 'blobs.b': 2 NaN .* index 2"):
    data.validate_fields(bad, 'blobs')
  with pytest.raises(ValueError, match=r"data set 'blobs' has no field\(s\) \['x'\]"):
    data.validate_fields(pair, 'blobs', {'x': (2,)})
  with pytest.raises(TypeError, match='expected a NamedTuple'):
    data.validate_fields((pair.a,), 'blobs')
