"""AlignFlow domain adaptation: the labelled digit domains."""

import ml_collections
import pytest

from configs import lrmf_digits
from experiments.alignflow import adaptation as alignflow_adaptation


def _config(size_b):
  config = ml_collections.ConfigDict()
  config.seeds = (0,)
  config.data = ml_collections.ConfigDict({
      'a': lrmf_digits.digit_domain('sklearn_digits', 40),
      'b': lrmf_digits.digit_domain('sklearn_digits', 30),
      'splits_a': (20, 10, 10), 'splits_b': (10, 10, 10)})
  config.data.b.options.size = size_b
  return config


def test_domains_are_labelled_splits_in_signed_pixels():
  domains = alignflow_adaptation.load_domains(_config(16))
  for name, sizes in (('a', (20, 10, 10)), ('b', (10, 10, 10))):
    for split, size in zip(('train', 'val', 'test'), sizes):
      x, labels = domains[name][f'{split}_x'], domains[name][f'{split}_labels']
      assert x.shape == (size, 16, 16, 1) and labels.shape == (size,)
      assert x.min() == -1.0 and x.max() <= 1.0  # background 0 -> -1
  with pytest.raises(ValueError, match='differ in image shape'):
    alignflow_adaptation.load_domains(_config(8))
