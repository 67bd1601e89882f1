"""Verdicts of a reproduction: our numbers over seeds against a paper's claims.

A claim is read by a *check*: a :class:`Value` (our mean over seeds of one metric against the
paper's number) or an :class:`Ordering` (the paper's ``lower < higher`` of two metrics, paired
over seeds). :func:`verdict` turns a check and the per-seed metrics into the report's cells.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np
from scipy import stats

SIGNIFICANCE = 0.05
"""Ordering rows match at a one-sided paired p-value below this."""


@dataclasses.dataclass(frozen=True)
class Value:
  """Our mean over seeds of ``metric`` against the paper's number ``paper``.

  ``tolerance`` widens our interval by what the paper's claim allows (e.g. "~0" as
  ``|x| <= 0.05``); ``not_comparable`` is the reason, when there is one, that our number
  cannot confirm or refute the paper's (other data, other scale); ``paper=None``: the paper
  gives no number.
  """
  metric: str
  paper: float | None
  tolerance: float = 0.0
  not_comparable: str = ''


@dataclasses.dataclass(frozen=True)
class Ordering:
  """The paper's ordering ``lower < higher`` of two metrics of one run, paired over seeds."""
  lower: str
  higher: str
  not_comparable: str = ''


# ---------------------------------------------------------------------------------------------
# Statistics.


def summary(values: Sequence[float]) -> tuple[float, float | None, int]:
  """``(mean, standard error, n)`` of the finite values (SE ``None`` for n < 2)."""
  x = np.asarray(values, np.float64)
  x = x[np.isfinite(x)]
  if not x.size:
    return float('nan'), None, 0
  se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
  return float(x.mean()), se, int(x.size)


def interval_half_width(se: float | None, n: int, level: float = 0.95) -> float:
  """Half width of the Student-t interval of a mean over ``n`` seeds."""
  if se is None or n < 2:
    return float('nan')
  return float(stats.t.ppf(0.5 + level / 2, n - 1) * se)


def paired_ordering(lower: Sequence[float], higher: Sequence[float]
                    ) -> tuple[float, float | None, float, int]:
  """Paired difference ``lower - higher`` over seeds: ``(mean, SE, p, n)``.

  ``p`` is the one-sided paired t-test's p-value of "lower < higher" (seeds where either
  value is not finite are dropped). Identical differences (SE 0) give p = 0 when they are
  all negative and 1 otherwise.
  """
  a, b = np.asarray(lower, np.float64), np.asarray(higher, np.float64)
  keep = np.isfinite(a) & np.isfinite(b)
  d = a[keep] - b[keep]
  mean, se, n = summary(d)
  if n < 2:
    return mean, se, float('nan'), n
  if se == 0:
    return mean, se, 0.0 if mean < 0 else 1.0, n
  return mean, se, float(stats.ttest_1samp(d, 0.0, alternative='less').pvalue), n


def format_number(x: float | None) -> str:
  if x is None or not math.isfinite(x):
    return '-' if x is None else str(x)
  return f'{x:.4g}' if abs(x) >= 1e-3 or x == 0 else f'{x:.2e}'


def rounding_tolerance(paper: str) -> float:
  """Half a unit in the last digit of the first decimal number of a paper cell: the paper's
  number is known only to the digits it prints (``'0.99 +- 0.0003'`` -> 0.005). Integers
  (``'0'``, ``'1 (every run)'``) are exact claims: 0."""
  match = re.search(r'-?\d+(?:\.(\d+))?', paper)
  if match is None or match.group(1) is None:
    return 0.0
  return 0.5 * 10.0**-len(match.group(1))


def verdict(check: Value | Ordering, per_seed: Sequence[dict],
            paper: str = '') -> tuple[str, str]:
  """``(ours, verdict)`` cells of a row from its run's per-seed metrics; ``paper`` is the
  row's paper cell, whose printed precision widens a :class:`Value`'s interval
  (:func:`rounding_tolerance`)."""
  def values(name):
    return [float(r[name]) if isinstance(r.get(name), (int, float, bool)) else float('nan')
            for r in per_seed]

  if isinstance(check, Ordering):
    mean, se, p, n = paired_ordering(values(check.lower), values(check.higher))
    ours = f'{format_number(mean)} +- {format_number(se)} (p={format_number(p)}, {n} seeds)'
    if check.not_comparable:
      return ours, f'not comparable: {check.not_comparable}'
    if n < 2:
      return ours, 'not comparable: fewer than 2 seeds'
    return ours, 'matches' if p < SIGNIFICANCE else 'differs'
  mean, se, n = summary(values(check.metric))
  ours = f'{format_number(mean)} +- {format_number(se)} ({n} seeds)' if n > 1 else f'{format_number(mean)} ({n} seed)'
  if check.not_comparable:
    return ours, f'not comparable: {check.not_comparable}'
  if check.paper is None:
    return ours, 'not comparable: no number in the paper'
  if n < 2:
    return ours, 'not comparable: fewer than 2 seeds'
  half = interval_half_width(se, n) + check.tolerance + rounding_tolerance(paper)
  return ours, 'matches' if abs(mean - check.paper) <= half else 'differs'
