"""Verdicts of a reproduction: our numbers over seeds against a paper's claims.

A claim is read by a *check*: a :class:`Value` (our mean over seeds of one metric against the
paper's number, within a stated tolerance) or an :class:`Ordering` (the paper's ``lower <
higher`` of two metrics, paired over seeds). The rule is one of equivalence, so that noise
never passes for agreement:

* a value *matches* when the whole 90% Student-t interval of our mean lies inside the paper's
  value +- its tolerance (two one-sided tests at 5%), *differs* when the interval lies wholly
  outside that band, and is *inconclusive* otherwise (too few seeds or too noisy: it asks for
  more seeds, not for a verdict);
* an ordering *holds* at a one-sided paired t-test p < 0.05 over seeds, is *reversed* when
  the opposite direction is significant, and is *not shown* otherwise.

The tolerance of a value is what its claim allows (``Value.tolerance``, e.g. "converges to
0" read as ``|L| <= eps``) plus half a unit in the last digit the paper prints
(:func:`rounding_tolerance`). :func:`verdict` judges from per-seed metrics;
:func:`rejudge` judges again from a report cell's printed summary, so a report's kept rows
follow the current rule.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np
from scipy import stats

SIGNIFICANCE = 0.05
"""The level of every one-sided test: a value matches when both one-sided tests of its
equivalence band reject at this level (its 90% interval inside the band); an ordering holds
when the paired test of its direction does."""


@dataclasses.dataclass(frozen=True)
class Value:
  """Our mean over seeds of ``metric`` against the paper's number ``paper``.

  ``tolerance``: how far from ``paper`` the claim allows a value (e.g. "~0" as ``|x| <=
  0.05``; an accuracy "0.99" met or beaten as ``0.99 +- 0.01``); the band is ``paper +-
  (tolerance + the paper's rounding)``. ``not_comparable`` is the reason, when there is one,
  that our number cannot confirm or refute the paper's (other data, other scale);
  ``paper=None``: the paper gives no number.
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
  return mean, se, one_sided_p_values(mean, se, n)[0], n


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


def interval(mean: float, se: float | None, n: int, level: float = 1 - 2 * SIGNIFICANCE
             ) -> tuple[float, float]:
  """The two-sided ``level`` Student-t interval of a mean over ``n`` seeds (a point when the
  seeds agree exactly, SE 0); ``(nan, nan)`` below two seeds."""
  if se is None or n < 2:
    return float('nan'), float('nan')
  half = float(stats.t.ppf(0.5 + level / 2, n - 1) * se)
  return mean - half, mean + half


def judge_value(mean: float, se: float | None, n: int, *, paper: float,
                tolerance: float) -> str:
  """The equivalence verdict of a mean over seeds against ``paper +- tolerance``.

  Two one-sided tests at :data:`SIGNIFICANCE`: *matches* when the whole 90% interval
  (:func:`interval`) lies inside the band, *differs* when it lies wholly outside, otherwise
  *inconclusive* (too few seeds or too noisy to tell), which asks for more seeds, not for a
  verdict. A single seed is inconclusive: a per-run claim needs the spread over seeds.
  """
  band = f'{format_number(paper)} +- {format_number(tolerance)}'
  if n < 2:
    return f'inconclusive: {n} seed{"s" if n != 1 else ""}, no interval'
  low, high = interval(mean, se, n)
  span = f'90% interval [{format_number(low)}, {format_number(high)}]'
  if paper - tolerance <= low and high <= paper + tolerance:
    return f'matches: {span} inside {band}'
  if high < paper - tolerance or low > paper + tolerance:
    return f'differs: {span} outside {band}'
  return f'inconclusive ({n} seeds: too few or too noisy): {span} overlaps the edge of {band}'


def judge_ordering(mean: float, se: float | None, n: int) -> str:
  """The verdict of a paired difference ``lower - higher`` over ``n`` seeds (mean, SE):
  *holds* when the one-sided paired t-test of ``lower < higher`` gives p below
  :data:`SIGNIFICANCE`, *reversed* when the opposite direction does, else *not shown*."""
  if n < 2 or se is None:
    return f'inconclusive: {n} seed{"s" if n != 1 else ""}, no test'
  p_less, p_greater = one_sided_p_values(mean, se, n)
  if p_less < SIGNIFICANCE:
    return 'holds'
  if p_greater < SIGNIFICANCE:
    return f'reversed (p={format_number(p_greater)} for the opposite order)'
  return 'not shown'


def one_sided_p_values(mean: float, se: float, n: int) -> tuple[float, float]:
  """``(p of mean < 0, p of mean > 0)`` of a one-sample t-test over ``n`` paired differences
  with mean ``mean`` and standard error ``se``. Identical differences (SE 0) give 0 or 1."""
  if se == 0:
    return (0.0 if mean < 0 else 1.0), (0.0 if mean > 0 else 1.0)
  t = mean / se
  return float(stats.t.cdf(t, n - 1)), float(stats.t.sf(t, n - 1))


KINDS = ('matches', 'differs', 'inconclusive', 'holds', 'reversed', 'not shown',
         'not comparable')
"""What a verdict says, before its details."""


def kind_of(judged: str) -> str:
  """The kind of a verdict cell (one of :data:`KINDS`), or the cell itself (``-``)."""
  return next((kind for kind in KINDS if judged.startswith(kind)), judged)


STATUSES = ('reproduces', 'does not reproduce', 'reversed', 'inconclusive', 'untested')
"""The status of a paper's claim, from the verdicts of the rows that check it."""

_STATUS_OF_KIND = {'matches': 'reproduces', 'holds': 'reproduces',
                   'differs': 'does not reproduce', 'reversed': 'reversed',
                   'inconclusive': 'inconclusive', 'not shown': 'inconclusive'}
_PRECEDENCE = ('reversed', 'does not reproduce', 'inconclusive', 'reproduces')


def status_of_kind(kind: str) -> str:
  """What one row's verdict kind says of its claim: *untested* for rows without a verdict
  (not run, not comparable, failed)."""
  return _STATUS_OF_KIND.get(kind, 'untested')


def claim_status(kinds: Sequence[str]) -> str:
  """The status of a claim from the verdict kinds of its rows: *reversed* when a row is
  reversed, else *does not reproduce* when a row differs, else *inconclusive* when a row is
  inconclusive or not shown, else *reproduces* when a row matches or holds, else *untested*
  (no row with a verdict; rows without one add no evidence either way)."""
  statuses = {status_of_kind(kind) for kind in kinds}
  return next((status for status in _PRECEDENCE if status in statuses), 'untested')


def verdict(check: Value | Ordering, per_seed: Sequence[dict],
            paper: str = '') -> tuple[str, str]:
  """``(ours, verdict)`` cells of a row from its run's per-seed metrics; ``paper`` is the
  row's paper cell, whose printed precision widens a :class:`Value`'s band
  (:func:`rounding_tolerance`). Seeds without the metric (or with NaN) are left out."""
  def values(name):
    return [float(r[name]) if isinstance(r.get(name), (int, float, bool)) else float('nan')
            for r in per_seed]

  if isinstance(check, Ordering):
    mean, se, p, n = paired_ordering(values(check.lower), values(check.higher))
    ours = f'{format_number(mean)} +- {format_number(se)} (p={format_number(p)}, {n} seeds)'
  else:
    mean, se, n = summary(values(check.metric))
    ours = (f'{format_number(mean)} +- {format_number(se)} ({n} seeds)' if n > 1
            else f'{format_number(mean)} ({n} seed)')
  return ours, judge(check, mean, se, n, paper)


def judge(check: Value | Ordering, mean: float, se: float | None, n: int,
          paper: str = '') -> str:
  """The verdict of ``check`` from the summary of its seeds: ``mean``, ``se`` and ``n`` of
  the metric (:class:`Value`) or of the paired difference ``lower - higher``
  (:class:`Ordering`)."""
  if check.not_comparable:
    return f'not comparable: {check.not_comparable}'
  if isinstance(check, Ordering):
    return judge_ordering(mean, se, n)
  if check.paper is None:
    return 'not comparable: no number in the paper'
  return judge_value(mean, se, n, paper=check.paper,
                     tolerance=check.tolerance + rounding_tolerance(paper))


_NUMBER = r'(-?(?:nan|inf|[\d.]+(?:e[-+]?\d+)?))'


def rejudge(check: Value | Ordering, ours: str, paper: str = '') -> str | None:
  """The verdict of a report's ``ours`` cell (as :func:`verdict` writes it) under the current
  rule, or ``None`` when the cell holds no summary (``not run``, ``failed: ...``). The cell
  prints four significant digits, so a verdict at the very edge of its band may differ from
  one judged from the seeds."""
  if isinstance(check, Ordering):
    match = re.fullmatch(rf'{_NUMBER} \+- {_NUMBER} \(p=\S+, (\d+) seeds\)', ours.strip())
  else:
    match = (re.fullmatch(rf'{_NUMBER} \+- {_NUMBER} \((\d+) seeds\)', ours.strip())
             or re.fullmatch(rf'{_NUMBER} \((\d+) seed\)', ours.strip()))
  if match is None:
    return None
  groups = match.groups()
  mean, n = float(groups[0]), int(groups[-1])
  se = float(groups[1]) if len(groups) == 3 and groups[1] != '-' else None
  return judge(check, mean, se, n, paper)
