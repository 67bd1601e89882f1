"""Importance-weighted augmentation (Table 3 pipeline): per-class splits."""

import numpy as np
import pytest

from experiments.fdre import augmentation as fdre_augmentation


def test_split_per_class_is_disjoint_balanced_and_checks_sizes():
  labels = np.repeat(np.arange(3), [6, 7, 8])
  train, val, test = fdre_augmentation.split_per_class(
      labels, 0, train_per_class=2, val_per_class=3)
  assert len(set(train) | set(val) | set(test)) == len(labels)
  np.testing.assert_array_equal(np.bincount(labels[train]), [2, 2, 2])
  np.testing.assert_array_equal(np.bincount(labels[val]), [3, 3, 3])
  with pytest.raises(ValueError, match='class 0 has 6 examples'):
    fdre_augmentation.split_per_class(labels, 0, train_per_class=3, val_per_class=3)
