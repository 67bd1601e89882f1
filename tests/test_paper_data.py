"""The papers' data sets from a local folder: tiny files in the real formats, the one image
transform, provenance in results.json and the report, and the reproduction's --data_root."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import struct

import numpy as np
import pytest
import scipy.io
from PIL import Image

from experiments import claims, launch, reproduce
from experiments.alignflow import adaptation, paired_data
from experiments.fdre import augmentation, targeted
from experiments.claims import schema
from harness import domains, verdicts
from harness import workdir as workdir_lib
from harness.data import files, paper_data


def write_idx(path, array, magic):
  with open(path, 'wb') as f:
    f.write(struct.pack(f'>I{array.ndim}I', magic, *array.shape) + array.tobytes())


def write_mnist(root, num_train=12, num_test=6, side=28):
  rng = np.random.default_rng(0)
  os.makedirs(root, exist_ok=True)
  for prefix, count in (('train', num_train), ('t10k', num_test)):
    write_idx(os.path.join(root, f'{prefix}-images-idx3-ubyte'),
              rng.integers(0, 256, (count, side, side), dtype=np.uint8), files.IDX_IMAGES_MAGIC)
    write_idx(os.path.join(root, f'{prefix}-labels-idx1-ubyte'),
              (np.arange(count) % 10).astype(np.uint8), files.IDX_LABELS_MAGIC)
  return str(root)


def write_usps(root, num_train=10, num_test=5):
  rng = np.random.default_rng(1)
  os.makedirs(root, exist_ok=True)
  for name, count in (('usps', num_train), ('usps.t', num_test)):
    images = rng.uniform(-1, 1, (count, 16, 16)).astype(np.float32)
    images[0] = -1.0  # the darkest and the brightest value of the format
    images[1] = 1.0
    labels = np.arange(count) % 10 + 1
    with open(os.path.join(root, name), 'w') as f:
      for image, label in zip(images, labels):
        f.write(f'{label} ' + ' '.join(f'{index + 1}:{value:.6f}'
                                       for index, value in enumerate(image.ravel())) + '\n')
  return str(root)


def write_svhn(root, num_train=7, num_test=3):
  rng = np.random.default_rng(2)
  os.makedirs(root, exist_ok=True)
  for name, count in (('train_32x32.mat', num_train), ('test_32x32.mat', num_test)):
    scipy.io.savemat(os.path.join(root, name), {
        'X': rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8),
        'y': (np.arange(count) % 10 + 1).reshape(-1, 1).astype(np.uint8)})
  return str(root)


def write_omniglot(root, side=20):
  rng = np.random.default_rng(3)
  for split, alphabets in (('images_background', ('Greek', 'Latin')),
                           ('images_evaluation', ('Braille',))):
    for alphabet in alphabets:
      for character in ('character01', 'character02'):
        folder = os.path.join(root, split, alphabet, character)
        os.makedirs(folder)
        for drawer in range(3):
          Image.fromarray(rng.integers(0, 2, (side, side), dtype=np.uint8) * 255).save(
              os.path.join(folder, f'{character}_{drawer:02d}.png'))
  return str(root)


def write_pix2pix(root, num_train=24, num_val=8, side=12, extension='.png'):
  """pix2pix side-by-side pairs: B is the photo A with its colours inverted."""
  rng = np.random.default_rng(4)
  for split, count in (('train', num_train), ('val', num_val)):
    os.makedirs(os.path.join(root, split))
    for index in range(count):
      a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
      Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(
          os.path.join(root, split, f'{index}{extension}'))
  return str(root)


WRITERS = {'mnist_idx': write_mnist, 'usps_libsvm': write_usps, 'svhn_mat': write_svhn,
           'omniglot_folders': write_omniglot, 'side_by_side_image_pairs': write_pix2pix}


@pytest.mark.parametrize('name', sorted(WRITERS))
def test_every_format_is_recognised_and_read_in_0_255(tmp_path, name):
  root = WRITERS[name](str(tmp_path / name))
  assert paper_data.format_of(root) == name
  for split in paper_data.SPLITS:
    dataset = paper_data.load_split(root, split)
    for images in ([dataset.images] if hasattr(dataset, 'labels') else [dataset.a, dataset.b]):
      assert images.ndim == 4 and images.dtype == np.float32
      assert images.min() >= 0 and images.max() <= 255
  assert paper_data.load_split(root, 'train', n=3, seed=1)[0].shape[0] == 3


def test_loaders_give_shapes_labels_and_the_usps_range(tmp_path):
  mnist = paper_data.load_split(write_mnist(str(tmp_path / 'mnist')), 'test')
  assert mnist.images.shape == (6, 28, 28, 1) and mnist.labels.tolist() == [0, 1, 2, 3, 4, 5]
  usps = paper_data.load_split(write_usps(str(tmp_path / 'usps')), 'train')
  assert usps.images.shape == (10, 16, 16, 1)
  np.testing.assert_allclose(usps.images[0], 0.0, atol=1e-3)  # -1 in the file
  np.testing.assert_allclose(usps.images[1], 255.0, atol=1e-3)  # +1 in the file
  svhn = paper_data.load_split(write_svhn(str(tmp_path / 'svhn')), 'train')
  assert svhn.images.shape == (7, 32, 32, 3)
  assert svhn.labels.tolist() == [1, 2, 3, 4, 5, 6, 7]  # SVHN's label 10 is the digit 0
  assert paper_data.load_split(str(tmp_path / 'svhn'), 'train', n=7).labels.max() <= 9
  omniglot = paper_data.load_split(write_omniglot(str(tmp_path / 'omniglot')), 'train')
  assert omniglot.images.shape == (12, 20, 20, 1)
  assert sorted(set(omniglot.labels.tolist())) == [0, 1, 2, 3]  # 2 alphabets x 2 characters
  assert set(np.unique(omniglot.images).tolist()) <= {0.0, 255.0}
  pairs = paper_data.load_split(write_pix2pix(str(tmp_path / 'maps'), extension='.jpg'), 'test')
  assert pairs.a.shape == pairs.b.shape == (8, 12, 12, 3)  # val/ is the test split
  assert np.abs(pairs.a + pairs.b - 255).mean() < 20  # B is A inverted, up to JPEG's loss


def test_bad_folders_say_what_is_wrong(tmp_path):
  with pytest.raises(FileNotFoundError, match='data root not found'):
    paper_data.format_of(str(tmp_path / 'nowhere'))
  with pytest.raises(ValueError, match="none of the papers' data formats; expected one of: "
                     'pix2pix side-by-side pairs'):
    paper_data.format_of(str(tmp_path))
  write_mnist(str(tmp_path))
  write_usps(str(tmp_path))
  with pytest.raises(ValueError, match=r"several data formats \['mnist_idx', 'usps_libsvm'\]"):
    paper_data.format_of(str(tmp_path))
  with pytest.raises(ValueError, match="unknown split 'val'"):
    paper_data.load_split(str(tmp_path), 'val')
  svhn = tmp_path / 'svhn'
  svhn.mkdir()
  scipy.io.savemat(str(svhn / 'train_32x32.mat'), {'X': np.zeros((28, 28, 3, 2), np.uint8),
                                                    'y': np.ones((2, 1), np.uint8)})
  with pytest.raises(ValueError, match=r'X has shape \(28, 28, 3, 2\), expected \(32, 32, 3, n\)'):
    paper_data.load_split(str(svhn), 'train')
  with pytest.raises(FileNotFoundError, match='SVHN test file not found'):
    paper_data.load_split(str(svhn), 'test')
  (svhn / 'train_32x32.mat').write_text('not a MATLAB file')
  with pytest.raises(ValueError, match='cannot read the MATLAB file'):
    paper_data.load_split(str(svhn), 'train')
  omniglot = tmp_path / 'omniglot' / 'images_background'
  omniglot.mkdir(parents=True)
  with pytest.raises(ValueError, match='no <alphabet>/<character> folders'):
    paper_data.load_split(str(tmp_path / 'omniglot'), 'train')
  with pytest.raises(FileNotFoundError, match='Omniglot evaluation folder not found'):
    paper_data.load_split(str(tmp_path / 'omniglot'), 'test')


def test_prepare_images_size_range_and_channels():
  grey = np.full((3, 10, 10, 1), 255.0, np.float32)
  grey[:, :5] = 0.0  # black top half, white bottom half
  out = paper_data.prepare_images(grey, size=4, channels=1, value_range=(-1.0, 1.0))
  assert out.shape == (3, 4, 4, 1) and out.dtype == np.float32
  np.testing.assert_allclose(out[:, 0], -1.0, atol=1e-6)
  np.testing.assert_allclose(out[:, -1], 1.0, atol=1e-6)
  np.testing.assert_allclose(out.mean(), 0.0, atol=1e-6)
  rgb = paper_data.prepare_images(grey, size=10, channels=3, value_range=(0.0, 1.0))
  assert rgb.shape == (3, 10, 10, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
  colour = np.zeros((1, 2, 2, 3), np.float32)
  colour[..., 1] = 255.0  # pure green: its grey level is 0.587 (ITU-R 601, as PIL's 'L')
  np.testing.assert_allclose(paper_data.prepare_images(
      colour, size=2, channels=1, value_range=(0.0, 1.0)), 0.587, atol=1e-6)
  for images, kwargs, message in (
      (np.zeros((2, 4, 4, 2)), {}, r'\(n, height, width, 1 or 3\) images'),
      (np.full((2, 4, 4, 1), 300.0), {}, r'values in \[0, 255\]'),
      (grey, {'channels': 2}, 'channels must be 1'),
      (grey, {'size': 0}, 'size must be a positive int'),
      (grey, {'value_range': (1.0, 1.0)}, 'high must exceed low')):
    with pytest.raises(ValueError, match=message):
      paper_data.prepare_images(images, **{'size': 4, 'channels': 1, 'value_range': (0.0, 1.0),
                                           **kwargs})


def test_data_source_names_the_data_and_its_folder(tmp_path):
  mnist = write_mnist(str(tmp_path / 'mnist'))
  stand_in = {'name': 'digit_images', 'options': {'source': 'mnist_5000'}, 'root': ''}
  assert paper_data.data_source(stand_in) == 'stand-in: digit_images(mnist_5000)'
  assert paper_data.data_source({'name': 'moons'}) == 'moons'
  both = {'a': {**stand_in, 'root': mnist}, 'b': stand_in}
  text = paper_data.data_source(both)
  assert text == f'A: mnist_idx:{mnist}; B: stand-in: digit_images(mnist_5000)'
  assert not paper_data.is_paper_data(text) and not paper_data.is_paper_data('moons')
  assert paper_data.is_paper_data(paper_data.data_source({'a': both['a'], 'b': both['a']}))


def test_a_domain_with_a_root_reads_the_paper_digits_as_its_stand_in_would(tmp_path):
  config = launch.default_config('configs/lrmf_digits.py:smoke')
  config.data.a.root = write_usps(str(tmp_path / 'usps'))
  domain = domains.load_domain(config.data.a, (6, 4, 5), seed=0)
  stand_in = domains.load_domain(config.data.b, (6, 4, 5), seed=0)
  for split, count in (('train', 6), ('val', 4), ('test', 5)):
    x = domain[f'{split}_x']
    assert x.shape == (count,) + stand_in[f'{split}_x'].shape[1:]
    assert x.min() >= 0 and x.max() <= 1 and domain[f'{split}_labels'].dtype == np.int32
  # train and validation are disjoint draws of the training split
  assert not set(map(bytes, domain['train_x'])) & set(map(bytes, domain['val_x']))
  with pytest.raises(ValueError, match=r'splits \(8, 4\) need 12 examples; the train split'):
    domains.load_domain(config.data.a, (8, 4, 5), seed=0)
  config.data.a.root = write_pix2pix(str(tmp_path / 'maps'))
  with pytest.raises(ValueError, match='holds side_by_side_image_pairs, not labelled images'):
    domains.load_domain(config.data.a, (6, 4, 5), seed=0)


def test_split_indices_are_disjoint_draws_of_their_seed_and_of_a_child_stream():
  parts = domains.split_indices(20, (5, 3, 4), seed=2)
  assert [len(part) for part in parts] == [5, 3, 4]
  assert len(set(np.concatenate(parts))) == 12 and np.concatenate(parts).max() < 20
  np.testing.assert_array_equal(np.concatenate(parts),
                                np.random.default_rng(2).permutation(20)[:12])
  children = [domains.split_indices(20, (12,), seed=(2, k))[0] for k in (0, 1)]
  for child in children:  # other streams of the same seed (numpy's spawned children)
    assert not np.array_equal(child, np.concatenate(parts))
  assert not np.array_equal(*children)
  spawned = np.random.SeedSequence(2).spawn(2)[1]
  np.testing.assert_array_equal(children[1],
                                np.random.default_rng(spawned).permutation(20)[:12])
  with pytest.raises(ValueError, match=r'splits \(15, 6\) need 21 examples; the toy has 20'):
    domains.split_indices(20, (15, 6), seed=0, what='the toy')


def test_split_indices_per_class_take_each_class_in_the_order_of_one_permutation():
  labels = np.repeat(np.arange(3), [6, 7, 8])
  train, val, rest = domains.split_indices_per_class(labels, (2, 3), seed=0)
  assert sorted(np.concatenate([train, val, rest])) == list(range(len(labels)))
  np.testing.assert_array_equal(np.bincount(labels[train]), [2, 2, 2])
  np.testing.assert_array_equal(np.bincount(labels[val]), [3, 3, 3])
  np.testing.assert_array_equal(np.bincount(labels[rest]), [1, 2, 3])
  order = domains.split_indices(len(labels), (len(labels),), seed=0)[0]
  for label in range(3):  # a class's first examples of the permutation, in its order
    in_order = order[labels[order] == label]
    np.testing.assert_array_equal(train[labels[train] == label], in_order[:2])
    np.testing.assert_array_equal(val[labels[val] == label], in_order[2:5])
  other = domains.split_indices_per_class(labels, (2, 3), seed=1)[0]
  assert not np.array_equal(other, train)
  with pytest.raises(ValueError, match=r'splits \(4, 3\) of every class need 7 examples of '
                                       'each; class 0 of the toy has 6'):
    domains.split_indices_per_class(labels, (4, 3), seed=0, what='the toy')


def test_translation_reads_pix2pix_pairs_at_the_config_size(tmp_path):
  config = launch.default_config('configs/alignflow_mnist.py:smoke')
  config.data.root = write_pix2pix(str(tmp_path / 'maps'))
  data = paired_data.load_paired_domains(config, seed=0)
  assert data['train_a'].shape == (16, 8, 8, 3) and data['test_b'].shape == (8, 8, 8, 3)
  assert data['val_a'].shape == (8, 8, 8, 3)
  assert all(-1 <= array.min() and array.max() <= 1 for array in data.values())
  np.testing.assert_allclose(data['test_a'], -data['test_b'], atol=1e-5)  # the true pairs
  config.data.root = write_mnist(str(tmp_path / 'mnist'))
  with pytest.raises(ValueError, match='holds mnist_idx, not side-by-side image pairs'):
    paired_data.load_paired_domains(config, seed=0)


def test_pix2pix_halves_resized_as_read_equal_the_full_size_images_resized(tmp_path):
  """``load_split(..., size=...)`` resizes each half as its file is read (a large data set
  never sits in memory at its own size) to what :func:`prepare_images` makes of the halves
  read at their own size."""
  root = write_pix2pix(str(tmp_path / 'maps'), side=12)
  full = paper_data.load_split(root, 'train')
  small = paper_data.load_split(root, 'train', size=8)
  assert full.a.shape[1:] == (12, 12, 3) and small.a.shape[1:] == (8, 8, 3)
  for read_small, read_full in zip(small, full):
    np.testing.assert_allclose(
        paper_data.prepare_images(read_small, size=8, channels=3, value_range=(-1, 1)),
        paper_data.prepare_images(read_full, size=8, channels=3, value_range=(-1, 1)),
        atol=1e-5)


def test_smoke_run_on_a_fake_maps_folder_records_its_data(tmp_path):
  config = launch.default_config('configs/alignflow_mnist.py:smoke')
  config.data.root = write_pix2pix(str(tmp_path / 'maps'))
  config.modes = ('mle',)
  workdir = str(tmp_path / 'run')
  launch.run_experiment(config, workdir)
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert results['data_source'] == f'side_by_side_image_pairs:{config.data.root}'
  assert np.isfinite(results['mse_a_to_b/mle'])


def test_targeted_generation_reads_mnist_idx_files_at_28x28(tmp_path):
  config = launch.default_config('configs/fdre_targeted_mnist.py:paper')
  assert paper_data.data_source(config.data.to_dict()) == 'stand-in: mnist_5000'
  config.data.root = write_mnist(str(tmp_path / 'mnist'), num_train=40)
  x, labels = targeted.dequantized_digits(config.data, seed=0)
  assert x.shape == (40, 28 * 28) and x.dtype == np.float32
  np.testing.assert_array_equal(labels, np.arange(40) % 10)
  raw = files.mnist_idx(config.data.root).images.reshape(40, -1)  # 28x28: no resizing
  np.testing.assert_allclose(x, (raw + 0.5) / 256, atol=0.5 / 256 + 1e-6)  # dequantised levels
  assert paper_data.data_source(config.data.to_dict()) == f'mnist_idx:{config.data.root}'


def test_smoke_run_of_targeted_generation_on_a_fake_mnist_folder_records_its_data(tmp_path):
  config = launch.default_config('configs/fdre_targeted_mnist.py:smoke')
  config.data.root = write_mnist(str(tmp_path / 'mnist'), num_train=500)
  workdir = str(tmp_path / 'run')
  launch.run_experiment(config, workdir)
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert results['data_source'] == f'mnist_idx:{config.data.root}'
  assert results['perc_0.5/n_p'] == 51  # 85% of 60% of the 100 digits 1 and 2 of the file
  assert 0 <= results['perc_0.5/iw_z'] <= 1
  gap = results['perc_0.5/flow_nll_held_out'] - results['perc_0.5/flow_nll_train']
  assert np.isfinite(gap) and np.isclose(results['perc_0.5/flow_nll_gap'], gap)


def test_augmentation_reads_omniglot_characters_background_first(tmp_path):
  config = launch.default_config('configs/fdre_augmentation.py:paper')
  assert paper_data.data_source(config.data.to_dict()) == 'stand-in: mnist_5000'
  config.data.root = write_omniglot(str(tmp_path / 'omniglot'))
  config.data.size = 28  # the paper's size, from the files' 20x20
  x, labels = augmentation.real_examples(config.data, seed=0)
  assert x.shape == (18, 28 * 28) and 0 <= x.min() and x.max() < 1
  np.testing.assert_array_equal(labels, np.repeat(np.arange(6), 3))  # 4 background characters
  evaluation = paper_data.load_labelled(config.data.root, 'test', size=28, channels=1,
                                        value_range=(0.0, 1.0)).images.reshape(6, -1)
  # then the evaluation set's, dequantised
  np.testing.assert_allclose(x[12:], (np.round(evaluation * 255) + 0.5) / 256,
                             atol=0.5 / 256 + 1e-6)
  config.data.classes = 5  # the first five characters
  first, first_labels = augmentation.real_examples(config.data, seed=0)
  np.testing.assert_array_equal(first, x[:15])
  np.testing.assert_array_equal(first_labels, labels[:15])
  assert paper_data.data_source(config.data.to_dict()) == f'omniglot_folders:{config.data.root}'


def test_svhn_to_mnist_reads_both_in_rgb_at_32x32_on_stand_ins_or_the_files(tmp_path):
  config = launch.default_config('configs/alignflow_digits_adaptation.py:svhn_mnist')
  config.data.splits_a, config.data.splits_b = (4, 3, 3), (8, 4, 6)
  stand_in = adaptation.load_domains(config)  # scikit-learn's digits for SVHN, bundled MNIST
  for name in ('a', 'b'):
    x = stand_in[name]['train_x']
    assert x.shape[1:] == (32, 32, 3) and np.array_equal(x[..., 0], x[..., 2])  # grey repeated
  config.data.a.root = write_svhn(str(tmp_path / 'svhn'))
  config.data.b.root = write_mnist(str(tmp_path / 'mnist'))
  read = adaptation.load_domains(config)
  for name, sizes in (('a', (4, 3, 3)), ('b', (8, 4, 6))):
    for split, count in zip(('train', 'val', 'test'), sizes):
      x = read[name][f'{split}_x']
      assert x.shape == (count, 32, 32, 3) and -1 <= x.min() and x.max() <= 1
  # SVHN keeps its colours, MNIST's grey level is repeated
  assert not np.array_equal(read['a']['train_x'][..., 0], read['a']['train_x'][..., 2])
  assert np.array_equal(read['b']['train_x'][..., 0], read['b']['train_x'][..., 2])
  assert paper_data.data_source(config.data.to_dict()) == (
      f'A: svhn_mat:{config.data.a.root}; B: mnist_idx:{config.data.b.root}')


def test_a_workdir_from_before_the_root_field_resumes(tmp_path):
  config = launch.default_config('configs/alignflow_mnist.py:smoke')
  saved = config.to_dict()
  del saved['data']['root']
  workdir_lib.write_json(str(tmp_path / 'config.json'), saved)
  (tmp_path / 'metrics.jsonl').write_text('')
  workdir_lib.check_resumable(config, str(tmp_path))  # root '' is the stand-in it ran on
  config.data.root = '/datasets/maps'
  with pytest.raises(ValueError, match=r"data.root: '<absent>' in the workdir"):
    workdir_lib.check_resumable(config, str(tmp_path))


_RUN = schema.Run('af', 'configs/alignflow_mnist.py', variant='smoke',
                  paper_data=(('data.root', 'maps'),),
                  on_paper_data=(('data.options.size', 8), ('data.splits', (16, 8, 8))),
                  fast_seeds=1, paper_seeds=1)


def test_the_data_root_points_the_paper_tier_at_the_folders_that_are_there(tmp_path):
  root = str(tmp_path)
  assert _RUN.data_overrides('paper', root) == ()  # no maps folder: the stand-in
  assert schema.load_config(_RUN, 'paper', data_root=root).data.root == ''
  write_pix2pix(os.path.join(root, 'maps'))
  maps = os.path.join(root, 'maps')
  assert _RUN.data_overrides('fast', root) == ()
  assert _RUN.data_overrides('paper', root) == (('data.root', maps),) + _RUN.on_paper_data
  assert schema.load_config(_RUN, 'paper', data_root=root).data.root == maps
  assert f"--config.data.root='{maps}'" in _RUN.command('paper', root)
  both = dataclasses.replace(_RUN, paper_data=(('data.root', 'maps'), ('data.a.root', 'usps')))
  with pytest.raises(ValueError, match=r'run af needs every one of .*missing: .*usps'):
    both.data_overrides('paper', root)


def test_every_run_of_a_paper_data_set_reads_its_folder_in_the_paper_tier(tmp_path):
  root = str(tmp_path)
  for folder, writer in (('maps', write_pix2pix), ('mnist', write_mnist), ('usps', write_usps),
                         ('svhn', write_svhn), ('omniglot', write_omniglot)):
    writer(os.path.join(root, folder))
  runs = [run for run in claims.runs_of(claims.ROWS) if run.paper_data]
  assert {'fdre_targeted_mnist', 'fdre_targeted_background', 'fdre_augmentation',
          'alignflow_svhn_mnist'} <= {run.name for run in runs}
  for run in runs:
    config = schema.load_config(run, 'paper', data_root=root)
    for field, folder in run.paper_data:
      assert functools.reduce(getattr, field.split('.'), config) == os.path.join(root, folder)
    assert paper_data.is_paper_data(paper_data.data_source(config.data.to_dict())), run.name


def test_a_run_on_the_paper_data_drops_the_stand_in_reason_and_says_its_data(tmp_path):
  row = schema.Row('alignflow', 'maps mse', '0.02', _RUN,
                   verdicts.Value('mse', 0.02, not_comparable='data differ'),
                   claim_id='c', reason=schema.STAND_IN,
                   check_on_paper_data=verdicts.Value('mse', 0.02, 0.001))
  claim = schema.Claim('c', 'alignflow', 'maps', 'Table 1')
  assert schema.reason_of(row, 'paper', True) == schema.STAND_IN
  assert schema.reason_of(row, 'paper', True, on_paper_data=True) == 'our recipe'
  results = {'af': ([{'mse': 0.5}, {'mse': 0.6}], 10.0)}
  maps = os.path.join(str(tmp_path), 'maps')
  for data, reason, verdict in (('stand-in: mnist_transformed_pair', schema.STAND_IN,
                                 'not comparable'),
                                (f'side_by_side_image_pairs:{maps}', 'our recipe', 'differs')):
    text = '\n'.join(reproduce.report_lines('paper', results, {}, 'env', rows=(row,),
                                            claims=(claim,), data={'af': data}))
    assert f'| c | alignflow | does not reproduce | {reason} |' in text or (
        verdict == 'not comparable' and f'| c | alignflow | untested | {reason} |' in text)
    assert f'| {data} |' in text.split('## Runs')[1]  # the runs table's data column
    assert f'| {verdict}' in text.split('## Rows')[1].split('## Runs')[0]


def test_reproduce_refuses_stand_in_results_for_a_run_on_the_paper_data(tmp_path):
  root = str(tmp_path / 'datasets')
  write_pix2pix(os.path.join(root, 'maps'))
  workdir = str(tmp_path / 'af')
  os.makedirs(workdir)
  workdir_lib.write_json(os.path.join(workdir, 'results.json'),
                         {'data_source': 'stand-in: mnist_transformed_pair', 'mse': 1.0})
  assert reproduce.per_seed_results(_RUN, 'paper', workdir, execute=False)[0] == [
      {'data_source': 'stand-in: mnist_transformed_pair', 'mse': 1.0}]
  with pytest.raises(ValueError, match='holds results on stand-in: mnist_transformed_pair, not '
                     'on side_by_side_image_pairs:.*give another --workdir'):
    reproduce.per_seed_results(_RUN, 'paper', workdir, execute=False, data_root=root)
  assert reproduce.data_of(_RUN, 'paper', workdir) == 'stand-in: mnist_transformed_pair'
  assert reproduce.data_of(_RUN, 'paper', str(tmp_path / 'new'), root) == (
      f"side_by_side_image_pairs:{os.path.join(root, 'maps')}")


def test_flow_generalization_reads_medians_of_the_flows_nll_on_each_set():
  """Medians of -log h over the training and held-out digits, and their difference, from the
  fitted flow's replicated log_prob (here log h(x) = -sum(x), so the NLL is the row sum)."""
  from fdre import featurize
  fitted = featurize.FittedRatio(mode='separate', log_ratio=None, encode=None, decode=None,
                                 log_prob=lambda x: -x.sum(-1), variables={})
  train = np.array([[1.0, 0.0], [2.0, 0.0], [9.0, 0.0]])
  held_out = np.array([[5.0, 0.0], [np.inf, 0.0], [4.0, 3.0]])
  assert targeted.flow_generalization(fitted, train, held_out, 'perc_1') == {
      'perc_1/flow_nll_train': 2.0, 'perc_1/flow_nll_held_out': 7.0, 'perc_1/flow_nll_gap': 5.0}
