"""Biased subsamples of real data sets: a source domain drawn with a selection bias against a
target domain drawn without (the covariate-shift splits of papers/fdre.txt, App. D.2), the
data set ``breast_cancer_biased`` of :mod:`experiments.fdre.adaptation`."""

from __future__ import annotations

import numpy as np

from harness import domains
from harness.data import bundled
from harness.data.synthetic import DomainAdaptationSplit


def breast_cancer_biased(n: int | None = None, seed: int = 0, *, target_fraction: float = 0.75,
                         keep_positive: float = 0.1,
                         keep_negative: float = 0.9) -> DomainAdaptationSplit:
  """Breast cancer with the class-biased source sampling of App. D.2 (after Huang et al. 2006).

  A random ``target_fraction`` of the rows is the target domain
  (:func:`harness.domains.split_indices` drawn from ``seed``); the rest is subsampled into
  the source (draws of the child stream ``(seed, 1)``, :func:`harness.domains.generator`)
  with ``P(s = 1 | y = 1) = keep_positive`` (benign) and ``P(s = 1 | y = 0) =
  keep_negative`` (malignant). Features are then standardised to mean 0 and variance 1 with
  the statistics of all rows used. Uses scikit-learn's 569 x 30 table (the paper used UCI's
  699 x 9 one, which no installed package ships).

  Args:
    n: size of a random subset of the table before splitting, or None for all.
    seed: integer seed of the split and the subsampling.
    target_fraction: fraction of the rows in the target domain, in (0, 1).
    keep_positive: probability that a benign (label 1) source row is kept.
    keep_negative: probability that a malignant (label 0) source row is kept.

  Returns:
    A :class:`DomainAdaptationSplit` of float32 ``(n_source, 30)`` /
    ``(n_target, 30)`` features and int32 labels (1 benign, 0 malignant).
  """
  if not 0.0 < target_fraction < 1.0:
    raise ValueError(f'breast_cancer_biased: target_fraction must lie in (0, 1), got '
                     f'{target_fraction!r}')
  for name, value in (('keep_positive', keep_positive), ('keep_negative', keep_negative)):
    if not 0.0 < value <= 1.0:
      raise ValueError(f'breast_cancer_biased: {name} must lie in (0, 1], got {value!r}')
  table = bundled.breast_cancer(n=n, seed=seed)
  num_target = int(round(target_fraction * len(table.x)))
  target, rest = domains.split_indices(len(table.x), (num_target, len(table.x) - num_target),
                                       seed, 'breast_cancer')
  keep = np.where(table.labels[rest] == 1, keep_positive, keep_negative)
  source = rest[domains.generator((seed, 1)).random(len(rest)) < keep]
  used = np.concatenate([source, target])
  mean, std = table.x[used].mean(0), table.x[used].std(0) + 1e-8
  scale = lambda rows: ((table.x[rows] - mean) / std).astype(np.float32)
  return DomainAdaptationSplit(scale(source), table.labels[source].astype(np.int32),
                               scale(target), table.labels[target].astype(np.int32))
