"""What the reproduction report runs and reads: :class:`Run` (a config over seeds at two
sizes) and :class:`Row` (one claim of a paper, read from one run by a check of
:mod:`harness.verdicts`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from experiments import launch
from harness.verdicts import Ordering, Value

TIERS = ('fast', 'paper')


@dataclasses.dataclass(frozen=True)
class Run:
  """One config trained over seeds, at two sizes.

  Attributes:
    name: the run's folder under ``<workdir>/<tier>`` and its ``--runs`` name.
    config: the config file.
    variant: its variant in the fast tier (``''``: the default config).
    fast: ``(field, value)`` overrides of the fast tier.
    fast_note: what the fast tier makes smaller than the config, in words.
    paper_variant: the variant of the paper tier (``None``: as the fast tier's variant).
    paper: overrides of the paper tier.
    paper_cost: what the paper tier costs, in words.
    fast_seeds, paper_seeds: number of seeds (0, 1, ...) of each tier.
    tiers: the tiers that run it; a run too costly for the fast tier's 30 minutes at any size
      that still says something (FFJORD: hours on a CPU) is ``('paper',)``, and its rows in
      the fast report point to the paper tier's report.
  """
  name: str
  config: str
  variant: str = ''
  fast: tuple[tuple[str, Any], ...] = ()
  fast_note: str = 'as the config'
  paper_variant: str | None = None
  paper: tuple[tuple[str, Any], ...] = ()
  paper_cost: str = 'as the fast tier'
  fast_seeds: int = 5
  paper_seeds: int = 5
  tiers: tuple[str, ...] = TIERS

  def spec(self, tier: str) -> str:
    variant = self.variant if tier == 'fast' or self.paper_variant is None else self.paper_variant
    return self.config + (f':{variant}' if variant else '')

  def overrides(self, tier: str) -> tuple[tuple[str, Any], ...]:
    return self.fast if tier == 'fast' else self.paper

  def seeds(self, tier: str) -> tuple[int, ...]:
    """Seeds 0, 1, ... of ``tier``; none in a tier that does not run it."""
    if tier not in self.tiers:
      return ()
    return tuple(range(self.fast_seeds if tier == 'fast' else self.paper_seeds))

  def command(self, tier: str) -> str:
    """The ``experiments.run`` command(s) of this run (a loop over seeds where the experiment
    takes one seed per run)."""
    flags_ = ' '.join(f"--config.{k}='{_flag_value(v)}'" for k, v in self.overrides(tier))
    seeds = self.seeds(tier)
    base = f'python -m experiments.run --config={self.spec(tier)}'
    if side_by_side(self, tier):
      seeds_flag = f"--config.seeds='{_flag_value(seeds)}'"
      return f'{base} --workdir=runs/{self.name} {seeds_flag} {flags_}'.strip()
    return (f'for s in {" ".join(map(str, seeds))}; do {base} --workdir=runs/{self.name}/seed_$s '
            f'--config.seeds="($s,)" {flags_}; done').replace('  ', ' ')


def _flag_value(value: Any, inside: bool = False) -> str:
  """``value`` as a ``--config.<field>='...'`` flag writes it: tuples as Python literals
  (their strings double-quoted), a string field as it is."""
  if isinstance(value, tuple):
    return '(' + ','.join(_flag_value(v, True) for v in value) + (',)' if len(value) == 1 else ')')
  return f'"{value}"' if inside and isinstance(value, str) else str(value)


@dataclasses.dataclass(frozen=True)
class Row:
  """One line of the report: the paper's claim, its number, and how ours is read."""
  method: str
  claim: str
  paper: str
  run: Run
  check: Value | Ordering


def runs_of(rows: Sequence[Row]) -> list[Run]:
  """The distinct runs of ``rows``, in row order."""
  return list({row.run.name: row.run for row in rows}.values())


# ---------------------------------------------------------------------------------------------
# Running.


def side_by_side(run: Run, tier: str) -> bool:
  """Whether ``run``'s experiment trains its seeds side by side in one program."""
  return load_config(run, tier).experiment in launch.SEEDS_SIDE_BY_SIDE


def load_config(run: Run, tier: str, seeds: Sequence[int] | None = None):
  """``run``'s config of ``tier`` with its overrides (and ``seeds`` when given), validated
  against the config file's own values (:func:`experiments.launch.point_config`, the one way
  overrides are applied to a config file)."""
  point = dict(run.overrides(tier))
  if seeds is not None:
    point['seeds'] = tuple(seeds)
  return launch.point_config(run.spec(tier), point)[0]

