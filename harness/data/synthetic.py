"""Synthetic data sets of the three papers, drawn with scikit-learn or numpy.

Every generator is deterministic given ``seed`` (an integer ``>= 0``), returns
``float32`` points and ``int32`` labels, and takes keyword options that a
config can set (see :func:`harness.data.load`). Defaults follow the papers:

* :func:`blobs` - LRMF setup 1, two Gaussian domains of ``N = 100`` points.
* :func:`moons` - LRMF setup 1, ``make_moons(noise=0.05)``, 2000 points per
  domain, the second domain rotated by 50 degrees.
* :func:`gaussian_mixture_2d` - FDRE App. D.2 / F.2, a source and a target
  mixture of ``N([0, 0], I)`` and ``N([3, 3], I)`` with weights 0.01 / 0.99
  and 0.99 / 0.01, 1000 points each.
* :func:`correlated_gaussians` - FDRE App. D.3, mutual information
  between two 20-d Gaussians with per-coordinate correlation 0.9.
* :func:`s_curve`, :func:`swiss_roll` - 3-d surfaces with a known manifold
  coordinate, stand-ins for the LRMF mesh point clouds (setup 2).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
from sklearn import datasets as sk_datasets

MOONS_CENTRE = (0.5, 0.25)
"""Centre of the noise-free ``make_moons`` shape, the default rotation pivot."""


class DomainPair(NamedTuple):
  """Unlabelled samples from two domains.

  Attributes:
    a: ``(n_a, dim)`` float32 samples of domain A (the one to be moved).
    b: ``(n_b, dim)`` float32 samples of domain B (the target).
  """

  a: np.ndarray
  b: np.ndarray


class LabelledPoints(NamedTuple):
  """Points with integer class labels.

  Attributes:
    x: ``(n, dim)`` float32 points.
    labels: ``(n,)`` int32 class labels.
  """

  x: np.ndarray
  labels: np.ndarray


class DomainAdaptationSplit(NamedTuple):
  """Labelled source and target samples of a covariate-shift task.

  Attributes:
    source_x: ``(n_source, dim)`` float32 source points.
    source_labels: ``(n_source,)`` int32 source labels.
    target_x: ``(n_target, dim)`` float32 target points.
    target_labels: ``(n_target,)`` int32 target labels (for evaluation only).
  """

  source_x: np.ndarray
  source_labels: np.ndarray
  target_x: np.ndarray
  target_labels: np.ndarray


class CorrelatedPair(NamedTuple):
  """Jointly Gaussian pairs ``(x, y)`` with ``corr(x_i, y_i) = rho``.

  Attributes:
    x: ``(n, dim)`` float32, marginally ``N(0, I)``.
    y: ``(n, dim)`` float32, marginally ``N(0, I)``; ``y_i`` depends on ``x_i``
      only.
  """

  x: np.ndarray
  y: np.ndarray


class ManifoldSample(NamedTuple):
  """Points on a 3-d surface with the intrinsic coordinate that generated them.

  Attributes:
    points: ``(n, 3)`` float32 points.
    coordinate: ``(n,)`` float32 position along the main manifold direction,
      the colouring used to judge whether an alignment preserves structure.
  """

  points: np.ndarray
  coordinate: np.ndarray


def _check_count(value: int, what: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f'{what} must be a positive integer, got {value!r}')


def _check_seed(seed: int, who: str) -> None:
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f'{who}: seed must be a non-negative integer, got {seed!r}')


def _check_noise(noise: float, what: str) -> None:
  if not noise >= 0.0:
    raise ValueError(f'{what}: noise must be >= 0, got {noise!r}')


def _child_seeds(seed: int, count: int) -> list[int]:
  """``count`` independent integer seeds derived from ``seed``."""
  return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def rotate_2d(points: np.ndarray, degrees: float,
              centre: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
  """Rotates 2-d points counter-clockwise about ``centre``.

  Args:
    points: ``(n, 2)`` array of any float dtype.
    degrees: rotation angle in degrees; positive is counter-clockwise.
    centre: ``(2,)`` pivot of the rotation.

  Returns:
    ``(n, 2)`` array of ``points``' dtype; pairwise distances are unchanged.
  """
  points = np.asarray(points)
  if points.ndim != 2 or points.shape[1] != 2:
    raise ValueError(f'rotate_2d expects points of shape (n, 2), got {points.shape}')
  angle = math.radians(degrees)
  rotation = np.array([[math.cos(angle), -math.sin(angle)],
                       [math.sin(angle), math.cos(angle)]])
  pivot = np.asarray(centre, dtype=np.float64)
  rotated = (points.astype(np.float64) - pivot) @ rotation.T + pivot
  return rotated.astype(points.dtype)


def blobs(n: int = 100, seed: int = 0, *, dim: int = 2,
          mean_a: float | Sequence[float] = 0.0, std_a: float = 1.0,
          mean_b: float | Sequence[float] = (3.0, 1.0),
          std_b: float = 0.5) -> DomainPair:
  """Two isotropic Gaussian domains (LRMF setup 1, "blobs").

  The paper samples ``N = 100`` points from each of two 2-d Gaussians; the
  text of its appendix omits their parameters, so the defaults here pick a
  pair that differs in both mean and scale (what an affine LRMF must fix).

  Args:
    n: points per domain.
    seed: integer seed.
    dim: dimension of the points.
    mean_a: centre of domain A, a scalar (broadcast) or a ``(dim,)`` sequence.
    std_a: per-coordinate standard deviation of domain A, ``> 0``.
    mean_b: centre of domain B, like ``mean_a``.
    std_b: per-coordinate standard deviation of domain B, ``> 0``.

  Returns:
    A :class:`DomainPair` with ``a`` and ``b`` of shape ``(n, dim)``, float32.
  """
  _check_count(n, 'blobs: n')
  _check_seed(seed, 'blobs')
  _check_count(dim, 'blobs: dim')
  centres = []
  for which, mean, std in (('a', mean_a, std_a), ('b', mean_b, std_b)):
    centre = np.asarray(mean, dtype=np.float64)
    if centre.ndim == 0:
      centre = np.full((dim,), float(centre))
    if centre.shape != (dim,):
      raise ValueError(f'blobs: mean_{which} must be a scalar or have {dim} entries, '
                       f'got shape {centre.shape}')
    if not std > 0:
      raise ValueError(f'blobs: std_{which} must be > 0, got {std!r}')
    centres.append(centre)
  seed_a, seed_b = _child_seeds(seed, 2)
  a, _ = sk_datasets.make_blobs(n_samples=n, n_features=dim, centers=centres[0][None],
                                cluster_std=std_a, random_state=seed_a)
  b, _ = sk_datasets.make_blobs(n_samples=n, n_features=dim, centers=centres[1][None],
                                cluster_std=std_b, random_state=seed_b)
  return DomainPair(a.astype(np.float32), b.astype(np.float32))


def moons(n: int = 2000, seed: int = 0, *, noise: float = 0.05,
          rotation_degrees: float = 0.0, standardize: bool = False) -> LabelledPoints:
  """Two interleaving half circles (``make_moons``), optionally rotated.

  LRMF aligns a pair of moons with a copy rotated by 50 degrees: call this
  twice with different seeds and ``rotation_degrees=0`` / ``50``.

  Args:
    n: number of points (split evenly between the two moons).
    seed: integer seed, passed to scikit-learn as ``random_state``.
    noise: standard deviation of the Gaussian noise added to each point.
    rotation_degrees: counter-clockwise rotation about :data:`MOONS_CENTRE`,
      the centre of the noise-free shape, so the rotated set stays in place.
    standardize: first move the sample to zero mean and unit variance per coordinate
      (its own statistics) and rotate about the origin, its mean. The two coordinates are
      scaled differently (the raw shape is about 1.7 times wider than high), so a rotation
      of the standardised set is another alignment problem than one of the raw set. LRMF
      (Sec. 8.3) names ``make_moons`` and the angle but not this step; the report's control
      run ``lrmf_moons_standardized`` sets Fig. 4's numbers beside both readings.

  Returns:
    :class:`LabelledPoints`: ``x`` of shape ``(n, 2)`` float32, roughly in
    ``[-1.2, 2.2] x [-0.7, 1.2]`` before rotation (about ``[-1.9, 1.9]^2``
    standardised); ``labels`` ``(n,)`` int32 in ``{0, 1}`` (which moon).
  """
  _check_count(n, 'moons: n')
  _check_seed(seed, 'moons')
  _check_noise(noise, 'moons')
  if not isinstance(standardize, (bool, np.bool_)):
    raise ValueError(f'moons: standardize must be True or False, got {standardize!r}')
  x, labels = sk_datasets.make_moons(n_samples=n, noise=noise, random_state=seed)
  if standardize:
    x = (x - x.mean(0)) / x.std(0)
  x = rotate_2d(x, rotation_degrees, (0.0, 0.0) if standardize else MOONS_CENTRE)
  return LabelledPoints(x.astype(np.float32), labels.astype(np.int32))


def _exact_counts(weights: np.ndarray, n: int) -> np.ndarray:
  """Splits ``n`` into integer counts proportional to ``weights`` (largest remainder)."""
  raw = weights * n
  counts = np.floor(raw).astype(np.int64)
  shortfall = n - int(counts.sum())
  order = np.argsort(-(raw - counts), kind='stable')
  counts[order[:shortfall]] += 1
  return counts


def _sample_mixture(rng: np.random.Generator, n: int, weights: np.ndarray,
                    means: np.ndarray, std: float,
                    labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  counts = _exact_counts(weights, n)
  points = np.concatenate([
      mean + std * rng.standard_normal((count, means.shape[1]))
      for mean, count in zip(means, counts)])
  point_labels = np.repeat(labels, counts)
  order = rng.permutation(n)
  return points[order].astype(np.float32), point_labels[order].astype(np.int32)


def _check_weights(weights: Sequence[float], num_components: int,
                   what: str) -> np.ndarray:
  array = np.asarray(weights, dtype=np.float64)
  if array.shape != (num_components,):
    raise ValueError(f'gaussian_mixture_2d: {what} needs {num_components} entries '
                     f'(one per mean), got shape {array.shape}')
  if np.any(array < 0) or not math.isclose(array.sum(), 1.0, abs_tol=1e-6):
    raise ValueError(f'gaussian_mixture_2d: {what} must be non-negative and sum to 1, '
                     f'got {array.tolist()}')
  return array


def gaussian_mixture_2d(
    n: int = 1000, seed: int = 0, *,
    n_target: int | None = None,
    means: Sequence[Sequence[float]] = ((0.0, 0.0), (3.0, 3.0)),
    std: float = 1.0,
    source_weights: Sequence[float] = (0.01, 0.99),
    target_weights: Sequence[float] = (0.99, 0.01),
    component_labels: Sequence[int] = (1, 0)) -> DomainAdaptationSplit:
  """Source and target 2-d Gaussian mixtures with shifted weights (FDRE App. F.2).

  With the defaults, the source is ``0.01 N([0,0], I) + 0.99 N([3,3], I)``,
  the target ``0.99 N([0,0], I) + 0.01 N([3,3], I)``, ``n = 1000`` each, and
  points of ``N([0,0], I)`` have label 1, those of ``N([3,3], I)`` label 0.
  As in App. D.2, each component gets an exact share of the points (10 and
  990), not a binomial one; the points are then shuffled.

  Args:
    n: number of source points.
    seed: integer seed.
    n_target: number of target points; ``None`` means ``n``.
    means: ``(k, d)`` component centres.
    std: per-coordinate standard deviation of every component, ``> 0``.
    source_weights: ``(k,)`` mixture weights of the source, summing to 1.
    target_weights: ``(k,)`` mixture weights of the target, summing to 1.
    component_labels: ``(k,)`` class label of each component.

  Returns:
    A :class:`DomainAdaptationSplit` with ``(n, d)`` / ``(n_target, d)``
    float32 points and int32 labels taken from ``component_labels``.
  """
  n_target = n if n_target is None else n_target
  _check_count(n, 'gaussian_mixture_2d: n')
  _check_seed(seed, 'gaussian_mixture_2d')
  _check_count(n_target, 'gaussian_mixture_2d: n_target')
  centres = np.asarray(means, dtype=np.float64)
  if centres.ndim != 2 or centres.shape[0] < 1:
    raise ValueError(f'gaussian_mixture_2d: means must have shape (k, d), got {centres.shape}')
  num_components = centres.shape[0]
  source = _check_weights(source_weights, num_components, 'source_weights')
  target = _check_weights(target_weights, num_components, 'target_weights')
  labels = np.asarray(component_labels, dtype=np.int64)
  if labels.shape != (num_components,):
    raise ValueError(f'gaussian_mixture_2d: component_labels needs {num_components} '
                     f'entries, got shape {labels.shape}')
  if not std > 0:
    raise ValueError(f'gaussian_mixture_2d: std must be > 0, got {std!r}')
  rng = np.random.default_rng(seed)
  source_x, source_labels = _sample_mixture(rng, n, source, centres, std, labels)
  target_x, target_labels = _sample_mixture(rng, n_target, target, centres, std, labels)
  return DomainAdaptationSplit(source_x, source_labels, target_x, target_labels)


def gaussian_mixture_2d_log_ratio(
    x: np.ndarray, *,
    means: Sequence[Sequence[float]] = ((0.0, 0.0), (3.0, 3.0)),
    std: float = 1.0,
    source_weights: Sequence[float] = (0.01, 0.99),
    target_weights: Sequence[float] = (0.99, 0.01),
    **unused) -> np.ndarray:
  """Closed-form ``log q(x) / p(x)`` (target over source) of :func:`gaussian_mixture_2d`.

  The true importance weight of a source point for the target, with the same keyword
  options as the generator (others, such as ``n``, are ignored): the mixtures share their
  isotropic components, so ``log q / p = logsumexp_k(log t_k - |x - m_k|^2 / (2 std^2))
  - logsumexp_k(log s_k - |x - m_k|^2 / (2 std^2))``.

  Args:
    x: ``(n, d)`` points.

  Returns:
    ``(n,)`` float64 log-ratios.
  """
  del unused
  centres = np.asarray(means, dtype=np.float64)
  source = _check_weights(source_weights, centres.shape[0], 'source_weights')
  target = _check_weights(target_weights, centres.shape[0], 'target_weights')
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2 or x.shape[1] != centres.shape[1]:
    raise ValueError(f'gaussian_mixture_2d_log_ratio: x must be (n, {centres.shape[1]}), '
                     f'got {x.shape}')
  half_sq = -np.sum((x[:, None, :] - centres[None]) ** 2, -1) / (2.0 * std**2)

  def log_mix(weights):
    with np.errstate(divide='ignore'):
      terms = half_sq + np.log(weights)[None]
    top = np.max(terms, 1, keepdims=True)
    return (top + np.log(np.sum(np.exp(terms - top), 1, keepdims=True)))[:, 0]

  return log_mix(target) - log_mix(source)


def _check_rho(rho: float) -> None:
  if not -1.0 < rho < 1.0:
    raise ValueError(f'correlated_gaussians: rho must lie in (-1, 1), got {rho!r}')


def correlated_gaussians(n: int = 100_000, seed: int = 0, *, dim: int = 20,
                         rho: float = 0.9) -> CorrelatedPair:
  """Pairs ``(x, y)`` of standard Gaussians with ``corr(x_i, y_i) = rho`` (FDRE D.3).

  ``x ~ N(0, I)`` and ``y = rho x + sqrt(1 - rho^2) eps`` with independent
  ``eps ~ N(0, I)``; coordinates ``i != j`` are independent. The paper draws
  100K pairs and splits them 80K / 10K / 10K.

  Args:
    n: number of pairs.
    seed: integer seed.
    dim: dimension of ``x`` and of ``y``.
    rho: per-coordinate correlation in ``(-1, 1)``.

  Returns:
    A :class:`CorrelatedPair`, each array ``(n, dim)`` float32.
  """
  _check_count(n, 'correlated_gaussians: n')
  _check_seed(seed, 'correlated_gaussians')
  _check_count(dim, 'correlated_gaussians: dim')
  _check_rho(rho)
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, dim))
  y = rho * x + math.sqrt(1.0 - rho**2) * rng.standard_normal((n, dim))
  return CorrelatedPair(x.astype(np.float32), y.astype(np.float32))


def correlated_gaussians_true_mi(dim: int = 20, rho: float = 0.9) -> float:
  """Mutual information ``I(x; y) = -dim / 2 * log(1 - rho^2)`` in nats.

  Args:
    dim: dimension of ``x`` and ``y``.
    rho: per-coordinate correlation in ``(-1, 1)``.

  Returns:
    The true MI of :func:`correlated_gaussians`; 16.61 nats for the defaults.
  """
  _check_count(dim, 'correlated_gaussians_true_mi: dim')
  _check_rho(rho)
  return -0.5 * dim * math.log1p(-rho**2)


def s_curve(n: int = 2000, seed: int = 0, *, noise: float = 0.0) -> ManifoldSample:
  """Points on an S-shaped surface (``make_s_curve``).

  Args:
    n: number of points.
    seed: integer seed, passed to scikit-learn as ``random_state``.
    noise: standard deviation of the Gaussian noise added to each point.

  Returns:
    :class:`ManifoldSample`: ``points`` ``(n, 3)`` float32 in about
    ``[-1, 1] x [0, 2] x [-2, 2]``; ``coordinate`` ``(n,)`` float32 in
    ``[-3 pi / 2, 3 pi / 2]``, the position along the S.
  """
  _check_count(n, 's_curve: n')
  _check_seed(seed, 's_curve')
  _check_noise(noise, 's_curve')
  points, coordinate = sk_datasets.make_s_curve(n_samples=n, noise=noise, random_state=seed)
  return ManifoldSample(points.astype(np.float32), coordinate.astype(np.float32))


def swiss_roll(n: int = 2000, seed: int = 0, *, noise: float = 0.0) -> ManifoldSample:
  """Points on a rolled-up sheet (``make_swiss_roll``).

  Args:
    n: number of points.
    seed: integer seed, passed to scikit-learn as ``random_state``.
    noise: standard deviation of the Gaussian noise added to each point.

  Returns:
    :class:`ManifoldSample`: ``points`` ``(n, 3)`` float32 in about
    ``[-10, 13] x [0, 21] x [-12, 15]``; ``coordinate`` ``(n,)`` float32 in
    ``[3 pi / 2, 9 pi / 2]``, the angle along the spiral.
  """
  _check_count(n, 'swiss_roll: n')
  _check_seed(seed, 'swiss_roll')
  _check_noise(noise, 'swiss_roll')
  points, coordinate = sk_datasets.make_swiss_roll(n_samples=n, noise=noise, random_state=seed)
  return ManifoldSample(points.astype(np.float32), coordinate.astype(np.float32))
