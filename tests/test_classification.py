"""The downstream digit classifier and McNemar's exact test (harness/classification.py)."""

import numpy as np
import pytest

from harness import classification


def test_classifier_hits_on_separable_images_and_bad_c():
  rng = np.random.default_rng(0)
  labels = np.arange(40) % 2
  images = (labels[:, None, None, None] * 2.0 - 1.0) + 0.1 * rng.normal(size=(40, 4, 4, 1))
  hits = classification.classifier_hits(images[:20], labels[:20], images[20:], labels[20:],
                                        c=1.0)
  assert hits.shape == (20,) and hits.all()
  with pytest.raises(ValueError, match='must be > 0'):
    classification.classifier_hits(images, labels, images, labels, c=0.0)


def test_mcnemar_exact_p_value_by_hand():
  # 10 examples right only for the first classifier, 2 only for the second, 20 ties:
  # p = 2 * P(Binomial(12, 1/2) <= 2) = 2 * (1 + 12 + 66) / 4096.
  first = np.array([True] * 10 + [False] * 2 + [True] * 15 + [False] * 5)
  second = np.array([False] * 10 + [True] * 2 + [True] * 15 + [False] * 5)
  np.testing.assert_allclose(classification.mcnemar_p_value(first, second), 2 * 79 / 4096)
  np.testing.assert_allclose(classification.mcnemar_p_value(second, first), 2 * 79 / 4096)
  assert classification.mcnemar_p_value(first, first) == 1.0
  with pytest.raises(ValueError, match='paired'):
    classification.mcnemar_p_value(first, second[:5])
