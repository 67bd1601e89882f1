"""Downstream digit classifiers of the adaptation experiments and their paired test.

Used by LRMF setup 3 (:mod:`experiments.lrmf.digits`) and AlignFlow's unsupervised
domain adaptation (:mod:`experiments.alignflow.adaptation`): a classifier is fitted on
(aligned or translated) labelled source images and scored on the target's test images;
McNemar's exact test compares two classifiers' hits on the same test images.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn import linear_model
from threadpoolctl import threadpool_limits


def classifier_hits(train_images: np.ndarray, train_labels: np.ndarray,
                    test_images: np.ndarray, test_labels: np.ndarray, *, c: float) -> np.ndarray:
  """Hits of a logistic-regression classifier on pixels, ``(n_test,)`` booleans.

  Multinomial logistic regression (L-BFGS, L2 penalty ``1 / c``) on the flattened
  pixels; deterministic for given inputs. BLAS runs on one thread: the matrices are
  small, and BLAS threads competing with JAX's for the cores slow such fits down by more
  than an order of magnitude on a small machine.

  Args:
    train_images: ``(n_train, *event_shape)`` training images.
    train_labels: ``(n_train,)`` integer labels.
    test_images: ``(n_test, *event_shape)`` images to classify.
    test_labels: ``(n_test,)`` their true labels.
    c: inverse L2 regularisation strength, > 0.
  """
  if c <= 0:
    raise ValueError(f'classifier c (inverse regularisation) must be > 0, got {c}')
  flat = lambda images: np.asarray(images).reshape(len(images), -1)
  classifier = linear_model.LogisticRegression(C=c, max_iter=2000)
  with threadpool_limits(limits=1, user_api='blas'):
    classifier.fit(flat(train_images), train_labels)
    return classifier.predict(flat(test_images)) == test_labels


def mcnemar_p_value(correct_1: np.ndarray, correct_2: np.ndarray) -> float:
  """Exact two-sided McNemar test that two classifiers have the same accuracy.

  Only the discordant pairs count: ``n_12`` examples right for the first and
  wrong for the second, ``n_21`` the reverse. Under the null each discordant
  example goes either way with probability 1/2, so the p-value is the
  two-sided binomial tail of ``min(n_12, n_21)`` in ``n_12 + n_21`` trials.

  Args:
    correct_1: ``(n,)`` booleans, the first classifier's hits on a test set.
    correct_2: ``(n,)`` booleans, the second's on the same examples.

  Returns:
    The p-value (1.0 when no example is discordant).
  """
  correct_1, correct_2 = np.asarray(correct_1, bool), np.asarray(correct_2, bool)
  if correct_1.shape != correct_2.shape:
    raise ValueError(f'McNemar needs paired predictions, got {correct_1.shape} and '
                     f'{correct_2.shape}')
  n_12 = int(np.sum(correct_1 & ~correct_2))
  n_21 = int(np.sum(~correct_1 & correct_2))
  if n_12 + n_21 == 0:
    return 1.0
  return float(stats.binomtest(min(n_12, n_21), n_12 + n_21, 0.5).pvalue)
