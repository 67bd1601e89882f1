"""What the reproduction report runs and reads: :class:`Claim` (one claim of a paper's
experiments: a numbered table, a figure with numbers, a stated ordering), :class:`Run` (a config
over seeds at two sizes) and :class:`Row` (one line of the report: a claim read from one run by
a check of :mod:`harness.verdicts`, or a row that says why no run reads it here).

A claim's status comes from its rows' verdicts (:func:`harness.verdicts.claim_status`); a claim
that does not reproduce carries a reason class (:data:`REASONS`, :func:`reason_of`). Rows that
check our own machinery or recipe rather than a paper (the LRMF flag against fresh data, chance
levels of ours, other angles than the paper's) name :data:`MACHINERY` instead of a claim and
are not counted."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from experiments import launch, sweep_jobs
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
    paper_data: ``(config field, folder)`` of each paper's data set its stand-ins stand for:
      given a data root (``experiments.reproduce --data_root``), the paper tier sets each
      field (a data block's ``root``, :mod:`harness.data.paper_data`) to
      ``<data root>/<folder>``.
    on_paper_data: overrides the paper tier adds on the paper's data (its image size, the
      data sets' split sizes).
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
  paper_data: tuple[tuple[str, str], ...] = ()
  on_paper_data: tuple[tuple[str, Any], ...] = ()

  def spec(self, tier: str) -> str:
    variant = self.variant if tier == 'fast' or self.paper_variant is None else self.paper_variant
    return self.config + (f':{variant}' if variant else '')

  def data_overrides(self, tier: str, data_root: str = '') -> tuple[tuple[str, Any], ...]:
    """The overrides that point the paper tier at the paper's data sets under ``data_root``:
    each field of ``paper_data`` set to its folder, then ``on_paper_data``; none in the fast
    tier, without a ``data_root`` or when none of the run's folders is there.

    Raises:
      ValueError: some of the run's folders are under ``data_root`` and others are not.
    """
    if tier != 'paper' or not data_root or not self.paper_data:
      return ()
    folders = {field: os.path.join(data_root, folder) for field, folder in self.paper_data}
    missing = [folder for folder in folders.values() if not os.path.isdir(folder)]
    if len(missing) == len(folders):
      return ()
    if missing:
      raise ValueError(f'run {self.name} needs every one of {sorted(folders.values())}; '
                       f'missing: {missing}')
    return tuple(folders.items()) + self.on_paper_data

  def overrides(self, tier: str, data_root: str = '') -> tuple[tuple[str, Any], ...]:
    """The tier's overrides, and with ``data_root`` those of :meth:`data_overrides`."""
    if tier == 'fast':
      return self.fast
    return self.paper + self.data_overrides(tier, data_root)

  def seeds(self, tier: str) -> tuple[int, ...]:
    """Seeds 0, 1, ... of ``tier``; none in a tier that does not run it."""
    if tier not in self.tiers:
      return ()
    return tuple(range(self.fast_seeds if tier == 'fast' else self.paper_seeds))

  def command(self, tier: str, data_root: str = '') -> str:
    """The ``experiments.run`` command(s) of this run (a loop over seeds where the experiment
    takes one seed per run), on the paper's data sets under ``data_root`` where they are."""
    flags_ = ' '.join(f"--config.{k}='{_flag_value(v)}'"
                      for k, v in self.overrides(tier, data_root))
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


STAND_IN = 'stand-in data set'
"""The reason class of a row whose run reads a stand-in for the paper's data set."""
REASONS = (STAND_IN, 'not run', 'smaller than the paper', 'our recipe')
"""Why a claim does not reproduce here, most telling first (a claim whose deciding rows give
several takes the first): our data stand in for the paper's; no run of this tier reads it
(the data are not on this machine, or its run belongs to another tier); the fast tier makes its
run smaller than the paper's; our run is at the paper's size on the paper's data, so our recipe
is what differs."""

MACHINERY = 'machinery'
"""The claim id of a row that checks our own machinery or recipe, not a paper."""


@dataclasses.dataclass(frozen=True)
class Claim:
  """One claim of a paper's experiments.

  Attributes:
    id: a short stable id, ``<paper>.<source>.<what>`` (``lrmf.fig4.one_nn``).
    paper: ``lrmf``, ``fdre`` or ``alignflow`` (papers/<paper>.txt).
    statement: the claim in one line.
    source: where the paper makes it (table, figure, section).
  """
  id: str
  paper: str
  statement: str
  source: str


@dataclasses.dataclass(frozen=True)
class Row:
  """One line of the report: the paper's claim, its number, and how ours is read.

  ``claim_id``: the :class:`Claim` it checks, or :data:`MACHINERY`. ``reason``: the reason
  class (:data:`REASONS`) where the row knows it (``stand-in data set``: only while its run
  reads a stand-in); empty, it is derived (:func:`reason_of`). A row without a run (``run`` and
  ``check`` ``None``) says in ``not_run`` why nothing here reads its claim (``needs the USPS
  data set``). ``check_on_paper_data``: the check where the run read the paper's data sets
  (``Run.paper_data``), e.g. a value that only the stand-in made not comparable; ``None``:
  ``check`` on either data.
  """
  method: str
  claim: str
  paper: str
  run: Run | None
  check: Value | Ordering | None
  claim_id: str = ''
  reason: str = ''
  not_run: str = ''
  check_on_paper_data: Value | Ordering | None = None

  def check_for(self, on_paper_data: bool) -> Value | Ordering | None:
    """The check of this row where its run read the paper's data (or a stand-in)."""
    return self.check_on_paper_data if on_paper_data and self.check_on_paper_data else self.check


def not_run(method: str, claim: str, paper: str, claim_id: str, why: str) -> Row:
  """A row that no run can read here; ``why`` says what it needs."""
  return Row(method, claim, paper, None, None, claim_id=claim_id, not_run=why)


def runs_of(rows: Sequence[Row]) -> list[Run]:
  """The distinct runs of ``rows``, in row order (rows without a run have none)."""
  return list({row.run.name: row.run for row in rows if row.run is not None}.values())


def shrunk_in_fast(run: Run) -> bool:
  """Whether the fast tier runs ``run`` smaller than the paper tier (other overrides or
  variant, fewer seeds)."""
  return (run.fast != run.paper or run.paper_variant not in (None, run.variant)
          or run.fast_seeds < run.paper_seeds)


def reason_of(row: Row, tier: str, measured: bool, on_paper_data: bool = False) -> str:
  """The reason class of ``row`` in ``tier`` when its claim does not reproduce; ``measured``:
  whether the row has numbers of this tier (or kept ones); ``on_paper_data``: whether its run
  read the paper's data sets (then a ``stand-in data set`` reason no longer holds)."""
  if row.run is None or tier not in row.run.tiers or not measured:
    return 'not run'
  if row.reason and not (on_paper_data and row.reason == STAND_IN):
    return row.reason
  return 'smaller than the paper' if tier == 'fast' and shrunk_in_fast(row.run) else 'our recipe'


# ---------------------------------------------------------------------------------------------
# Running.


def side_by_side(run: Run, tier: str) -> bool:
  """Whether ``run``'s experiment trains its seeds side by side in one program."""
  return load_config(run, tier).experiment in launch.SEEDS_SIDE_BY_SIDE


def load_config(run: Run, tier: str, seeds: Sequence[int] | None = None, data_root: str = ''):
  """``run``'s config of ``tier`` with its overrides (and ``seeds`` when given; on the paper's
  data sets under ``data_root`` where they are: :meth:`Run.data_overrides`), validated against
  the config file's own values (:func:`experiments.sweep_jobs.point_config`, the one way overrides
  are applied to a config file)."""
  point = dict(run.overrides(tier, data_root))
  if seeds is not None:
    point['seeds'] = tuple(seeds)
  return sweep_jobs.point_config(run.spec(tier), point)[0]

