r"""Runs the paper experiments over seeds and writes the reproduction report.

  python -m experiments.reproduce --tier=fast [--runs=lrmf_moons,fdre_gaussians] \
      [--workdir=runs/reproduce] [--report=REPRODUCTION.md] [--data_root=/datasets]

Two tiers of the same rows:

* ``fast``: every row on a 2-core CPU, aimed at 30 minutes in all (the report's header gives
  the measured total); each :class:`Run` says
  what it makes smaller than its config (``fast``: overrides, ``fast_note``: in words);
* ``paper``: the papers' sizes (the configs' ``paper`` variants where they exist), for
  accelerators; each run says what it costs (``paper_cost``). With ``--data_root``, each run
  whose papers' data sets are under it (``<data_root>/<folder>``, :attr:`Run.paper_data`;
  README "Running on the papers' data") reads them instead of its stand-ins.

Every run records the data it read (``results.json``'s ``data_source``); the runs table gives
it, and a row whose run read the paper's data no longer counts a stand-in as its reason.

Every :class:`Run` is one config trained for several seeds: side by side in one program where
the experiment supports it (:data:`experiments.launch.SEEDS_SIDE_BY_SIDE`), otherwise one run
per seed (``<run>/seed_<s>``). Its results go to ``<workdir>/<tier>/<run>`` and resume like any
run; a finished seed is read, not rerun. Every :class:`Row` reads one or two metrics of one run
over its seeds and states a verdict (:func:`verdict`, by the equivalence rule of
:mod:`harness.verdicts`): a :class:`Value` row reports ``mean +- SE (n seeds)`` and *matches*,
*differs* or is *inconclusive*; an :class:`Ordering` row reports the paired difference
``lower - higher`` with its p-value and *holds*, is *reversed* or is *not shown*; a row is
*not comparable* where our number cannot confirm or refute the paper's (an absolute number on
other data, no number in the paper). A row without a run says why nothing here reads it.

Every row names the paper's :class:`Claim` it checks, or is a check of our own machinery
(:data:`MACHINERY`: listed apart, not counted). The header counts each paper's claims by status
(:func:`claim_statuses`: reproduces, does not reproduce, reversed, inconclusive, untested) and
gives each claim not reproduced with its reason class (stand-in data set, not run, smaller than
the paper, our recipe).

The report's header states the tier, the package versions, the machine, the git commit(s)
the runs' results came from (each run's ``environment.json``: :func:`code_of`) and the total wall
time (the sum of the runs' wall times as measured here, compilation included). Rows whose
run is not rerun now (``--runs``) keep their cells from the existing report, so a partial rerun
never erases finished numbers.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import platform
import re
import time
from typing import Sequence

import jax
from absl import app, flags, logging

from experiments import launch
from experiments.claims import (CLAIMS, MACHINERY, REASONS, ROWS, Claim, Row, Run, load_config,
                               reason_of, runs_of, side_by_side)
from experiments.claims.schema import TIERS
from harness import provenance, verdicts
from harness import workdir as workdir_lib
from harness import workdir_guards
from harness.data import paper_data

REPORTED_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'scipy',
                     'scikit-learn', 'diffrax')



def _read(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _parts(run: Run, tier: str, workdir: str) -> list[tuple[str, tuple[int, ...]]]:
  """``(folder, seeds)`` of each invocation of ``run``: one, or one per seed."""
  seeds = run.seeds(tier)
  if side_by_side(run, tier):
    return [(workdir, seeds)]
  return [(os.path.join(workdir, f'seed_{s}'), (s,)) for s in seeds]


def per_seed_results(run: Run, tier: str, workdir: str, execute: bool, environment: str = '',
                     data_root: str = '') -> tuple[list[dict] | None, float | None]:
  """``run``'s per-seed metrics and its wall time (seconds, compilation included).

  Finished seeds are read from ``workdir``; the others are run when ``execute`` (resuming
  from their checkpoints) and skipped otherwise, which gives ``(None, None)``. The wall time
  is that of the invocations that trained (``wall.json``, with the ``environment`` they
  ran in: :func:`measured_in`), summed over seeds. With ``data_root``, the run reads the
  papers' data sets under it where they are (:meth:`Run.data_overrides`).

  Raises:
    ValueError: with the papers' data sets, ``workdir`` holds results of other data.
  """
  per_seed, wall = [], 0.0
  on_paper_data = bool(run.data_overrides(tier, data_root))
  for folder, part_seeds in _parts(run, tier, workdir):
    results = _read(os.path.join(folder, 'results.json'))
    if results is not None and on_paper_data:
      wanted = paper_data.data_source(
          load_config(run, tier, part_seeds, data_root).data.to_dict())
      if results.get('data_source') != wanted:
        raise ValueError(f"{folder} holds results on {results.get('data_source', 'a stand-in')}, "
                         f'not on {wanted}: give another --workdir')
    if results is None:
      if not execute:
        return None, None
      start = time.time()
      launch.run_experiment(load_config(run, tier, part_seeds, data_root), folder,
                            defaults=launch.default_config(run.spec(tier)))
      with open(os.path.join(folder, 'wall.json'), 'w') as f:
        json.dump({'seconds': time.time() - start, 'environment': environment}, f)
      logging.info('%s seeds %s done in %.0f s', run.name, part_seeds, time.time() - start)
      results = _read(os.path.join(folder, 'results.json'))  # as a later read sees them
    timing = _read(os.path.join(folder, 'wall.json')) or {'seconds': results.get('seconds', 0)}
    wall += float(timing['seconds'])
    per_seed += results.get('per_seed', [results])
  return per_seed, wall


def measured_in(run: Run, tier: str, workdir: str) -> str | None:
  """The environment ``run``'s wall times were measured in (as :func:`per_seed_results`
  recorded it), ``None`` when no invocation recorded one."""
  recorded = {(_read(os.path.join(folder, 'wall.json')) or {}).get('environment')
              for folder, _ in _parts(run, tier, workdir)} - {None, ''}
  return '; '.join(sorted(recorded)) or None


def code_of(run: Run, tier: str, workdir: str) -> str | None:
  """The code ``run``'s results came from: the commit each finished part recorded in its
  ``environment.json`` (:func:`harness.provenance.code_label`, the invocation that finished
  it), ``None`` when no part has finished."""
  recorded = {provenance.code_label(workdir_lib.read_environment(folder).get('code'))
              for folder, _ in _parts(run, tier, workdir)
              if os.path.exists(os.path.join(folder, 'results.json'))}
  return '; '.join(sorted(recorded)) or None


def header_code(codes: dict[str, list[str]]) -> list[str]:
  """The header's lines on the code: one per commit the results came from, with its runs
  when there are several (``codes``: :func:`code_of` -> run names)."""
  if not codes:
    return ['- Code: no finished run.']
  if len(codes) == 1:
    return [f'- Code: git commit {next(iter(codes))}.']
  return [f'- Code: git commit {code} [runs: {", ".join(names)}].'
          for code, names in codes.items()]


def data_of(run: Run, tier: str, workdir: str, data_root: str = '') -> str:
  """The data ``run`` read in ``tier`` (the ``data_source`` its finished parts recorded in
  ``results.json``), else the data its config reads (with ``data_root``:
  :func:`load_config`)."""
  recorded = {(_read(os.path.join(folder, 'results.json')) or {}).get('data_source')
              for folder, _ in _parts(run, tier, workdir)} - {None}
  if recorded:
    return ' // '.join(sorted(recorded))
  config = load_config(run, tier, data_root=data_root)
  return paper_data.data_source(config.data.to_dict() if 'data' in config else {})


def header_environment(environments: dict[str, list[str]], current: str) -> str:
  """The header's environment: the one every run was measured in, or each with its runs
  (``environments``: environment -> run names); ``current`` when none was recorded."""
  if not environments:
    return current
  if len(environments) == 1:
    return next(iter(environments))
  return ' // '.join(f'{env} [runs: {", ".join(names)}]' for env, names in environments.items())


# ---------------------------------------------------------------------------------------------
# The report.

OURS = 'ours (mean +- SE over seeds)'
_COLUMNS = ('claim id', 'method', 'claim', 'paper', OURS, 'verdict', 'run', 'config', 'command')


def _cells(line: str) -> list[str]:
  return [cell.strip() for cell in re.split(r'(?<!\\)\|', line)[1:-1]]


def _table_records(report: str, needed: set[str]):
  """``{column: cell}`` of every body row of the markdown tables of ``report`` whose header
  has the columns ``needed``."""
  columns = None
  lines = report.splitlines()
  for index, line in enumerate(lines):
    if not line.startswith('|') or line.startswith('|---'):
      continue
    cells = _cells(line)
    if index + 1 < len(lines) and lines[index + 1].startswith('|---'):  # a table's header
      columns = cells if needed <= set(cells) else None
    elif columns is not None:
      yield dict(zip(columns, cells))


def previous_rows(report: str) -> dict[tuple[str, str], dict[str, str]]:
  """``(method, escaped claim) -> {column: cell}`` of the rows tables (the papers' claims and
  our own checks) of an existing report; rows whose cell says ``not run`` are left out. A
  table is a rows table when its header has ``method`` and ``claim`` columns."""
  return {(record['method'], record['claim']): record
          for record in _table_records(report, {'method', 'claim'})
          if not record.get(OURS, 'not run').startswith('not run')}


def previous_runs(report: str) -> dict[str, dict[str, str]]:
  """``run name -> {'wall', 'data', 'code', 'environment'}`` of the runs an existing report
  measured (a wall time in its runs table): the table's wall time and data, and the header's
  commit and environment of the run (a header line without ``[runs: ...]`` is every such
  run's). A partial rerun keeps them for the runs it does not run, as it keeps their cells."""
  runs = {record['run']: {'wall': record['wall (s)'], 'data': record['data']}
          for record in _table_records(report, {'run', 'wall (s)', 'data'})
          if record['wall (s)'] != '-'}
  for line in report.splitlines():
    if line.startswith('- Code: git commit '):
      match = re.fullmatch(r'- Code: git commit (.+?)(?: \[runs: (.*)\])?\.', line)
      if match:
        for name in match.group(2).split(', ') if match.group(2) else runs:
          runs.get(name, {})['code'] = match.group(1)
    elif line.startswith('- Environment: '):
      for part in line[len('- Environment: '):].rstrip('.').split(' // '):
        match = re.fullmatch(r'(.+?)(?: \[runs: (.*)\])?', part)
        for name in match.group(2).split(', ') if match.group(2) else runs:
          runs.get(name, {})['environment'] = match.group(1)
  return runs


def cpu_model(cpuinfo: str = '/proc/cpuinfo') -> str:
  """The processor's model name (Linux's ``cpuinfo``, else :func:`platform.processor`; ``''``
  when neither says). XLA compiles for the processor it runs on, so the rounding of a run,
  and with it where a chaotic training run ends, can differ between processor models."""
  try:
    with open(cpuinfo) as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def environment_line() -> str:
  """Versions, Python, machine (with the processor model) and devices, for the report
  header."""
  import jax  # pylint: disable=g-import-not-at-top
  versions = []
  for name in REPORTED_PACKAGES:
    try:
      versions.append(f'{name} {importlib.metadata.version(name)}')
    except importlib.metadata.PackageNotFoundError:
      pass
  devices = jax.devices()
  model = cpu_model()
  return (f'{", ".join(versions)}; Python {platform.python_version()}; {platform.machine()} '
          f'{platform.system()}, {os.cpu_count()} CPU cores{f" ({model})" if model else ""}; '
          f'devices: {len(devices)} x {devices[0].device_kind}')


def row_cells(row: Row, tier: str, results: dict[str, tuple[list[dict] | None, float | None]],
              previous: dict[tuple[str, str], dict[str, str]], failures: dict[str, str],
              on_paper_data: bool = False) -> tuple[str, str, bool]:
  """``(ours, verdict, measured)`` of ``row`` in ``tier``: from ``results`` (run name ->
  (per-seed metrics, wall)), else ``failed: <error>`` for the runs of ``failures``, else the
  cells kept in ``previous`` judged again by the current rule, else ``not run``; a row of a run
  that ``tier`` does not run points to the tier that does, and a row without a run says why.
  ``measured``: whether the row has numbers (new or kept) of this tier. ``on_paper_data``:
  whether the row's run read the papers' data sets (:meth:`Row.check_for`)."""
  check = row.check_for(on_paper_data)
  if row.run is None:
    return f'not run: {row.not_run}', '-', False
  if tier not in row.run.tiers:
    return (f'{" / ".join(row.run.tiers)} tier only',
            f'not comparable: not run in this tier ({row.run.paper_cost})', False)
  per_seed, _ = results.get(row.run.name, (None, None))
  if per_seed is not None:
    return (*verdicts.verdict(check, per_seed, row.paper), True)
  if row.run.name in failures:
    return 'failed: ' + failures[row.run.name].replace('|', '/'), '-', False
  record = previous.get((row.method, row.claim.replace('|', '\\|')), {})
  ours = record.get(OURS, 'not run')
  judged = verdicts.rejudge(check, ours, row.paper)
  return ours, judged or record.get('verdict', '-'), judged is not None


_STATUS_COUNTS = {'reproduces': 'reproduce', 'does not reproduce': 'do not reproduce',
                  'reversed': 'reversed', 'inconclusive': 'inconclusive', 'untested': 'untested'}


def claim_statuses(claims: Sequence[Claim], rows: Sequence[Row],
                   cells: Sequence[tuple[str, str, bool]], tier: str,
                   paper_data_runs: frozenset[str] = frozenset()
                   ) -> dict[str, tuple[str, str, str]]:
  """``claim id -> (status, reason class, its rows' verdicts in words)`` of every claim of
  ``claims`` from the verdicts of the rows that name it (``cells``: :func:`row_cells` of each
  row). The reason (:data:`experiments.claims.REASONS`, ``-`` for a claim that reproduces) is
  the first of the reasons of the rows that decide the status (all rows of an untested
  claim); the rows of the runs of ``paper_data_runs`` read the papers' data sets."""
  summaries = {}
  for claim in claims:
    mine = [(row, cell) for row, cell in zip(rows, cells) if row.claim_id == claim.id]
    kinds = [verdicts.kind_of(judged) for _, (_, judged, _) in mine]
    status = verdicts.claim_status(kinds)
    reason = '-'
    if status != 'reproduces':
      deciding = {reason_of(row, tier, measured,
                            row.run is not None and row.run.name in paper_data_runs)
                  for (row, (_, _, measured)), kind in zip(mine, kinds)
                  if verdicts.status_of_kind(kind) == status}
      reason = next((r for r in REASONS if r in deciding), 'not run')
    words = {}
    for (_, (ours, _, _)), kind in zip(mine, kinds):
      word = ('other tier' if ours.endswith(' tier only') else kind if kind in verdicts.KINDS
              else 'failed' if ours.startswith('failed') else 'not run')
      words[word] = words.get(word, 0) + 1
    summaries[claim.id] = (status, reason, ', '.join(f'{k} {v}' for k, v in words.items()))
  return summaries


def report_lines(tier: str, results: dict[str, tuple[list[dict] | None, float | None]],
                 previous: dict[tuple[str, str], dict[str, str]], environment: str,
                 rows: Sequence[Row] = ROWS, failures: dict[str, str] | None = None,
                 claims: Sequence[Claim] = CLAIMS, data: dict[str, str] | None = None,
                 data_root: str = '', codes: dict[str, list[str]] | None = None,
                 kept_walls: dict[str, float] | None = None) -> list[str]:
  """The report of ``tier``: a header (environment, the commits the results came from
  (``codes``: :func:`header_code`), wall time, the claims of ``claims`` by
  status per paper, and a table of those that do not reproduce with their reason class), the
  claims, a rows table of the papers' claims and one of our own checks (rows of
  :data:`MACHINERY`, not counted; cells: :func:`row_cells`), and a runs table (sizes, seeds,
  the data each run read (``data``: run name -> :func:`data_of`), wall time and command of
  each run, on the papers' data sets under ``data_root`` where they are; ``kept_walls``: the
  wall times of runs not rerun, from the existing report: :func:`previous_runs`)."""
  failures = failures or {}
  data = data or {}
  walls = dict(kept_walls or {})
  walls.update((name, wall) for name, (_, wall) in results.items() if wall is not None)
  paper_data_runs = frozenset(name for name, text in data.items()
                              if paper_data.is_paper_data(text))
  cells = [row_cells(row, tier, results, previous, failures,
                     row.run is not None and row.run.name in paper_data_runs) for row in rows]
  tables, counts = {False: [], True: []}, {False: {}, True: {}}
  for row, (ours, judged, _) in zip(rows, cells):
    own = row.claim_id == MACHINERY
    kind = verdicts.kind_of(judged)
    kind = kind if kind in verdicts.KINDS else 'failed' if ours.startswith('failed') else 'not run'
    counts[own][kind] = counts[own].get(kind, 0) + 1
    run = ('-', '-', '-') if row.run is None else (
        row.run.name, f'`{row.run.spec(tier)}`',
        f'`python -m experiments.reproduce --tier={tier} --runs={row.run.name}`')
    claim = row.claim.replace('|', '\\|')
    tables[own].append(f'| {row.claim_id} | {row.method} | {claim} | {row.paper} | {ours} | '
                       f'{judged} | {" | ".join(run)} |')
  statuses = claim_statuses(claims, rows, cells, tier, paper_data_runs)
  papers = list(dict.fromkeys(claim.paper for claim in claims))
  per_paper = []
  for paper in papers:
    of_paper = [statuses[claim.id][0] for claim in claims if claim.paper == paper]
    per_paper.append(f'{paper} {len(of_paper)}: ' + ', '.join(
        f'{word} {of_paper.count(status)}' for status, word in _STATUS_COUNTS.items()))
  total = sum(walls.values())
  header = ['| ' + ' | '.join(_COLUMNS) + ' |', '|' + '---|' * len(_COLUMNS)]
  lines = ['# Reproduction report', '',
           f'Tier **{tier}**, regenerated by `python -m experiments.reproduce --tier={tier}` '
           '(claims, rows and runs: `experiments/claims/`). Every number is a mean +- standard '
           'error over seeds. Verdicts (`harness/verdicts.py`) follow an equivalence rule: a '
           'value *matches* when the whole 90% Student-t interval of our mean lies inside '
           "the paper's value +- the tolerance shown (what the claim allows, plus half a unit "
           "in the paper's last printed digit): two one-sided tests at "
           f'{verdicts.SIGNIFICANCE}; it *differs* when the interval lies wholly outside that band, and '
           'is *inconclusive* otherwise (too few seeds or too noisy). An ordering row shows '
           'the paired difference lower - higher over seeds with its one-sided paired t-test '
           f'p-value: it *holds* at p < {verdicts.SIGNIFICANCE}, is *reversed* when the opposite '
           'direction is significant, and is *not shown* otherwise. Rows of runs not rerun '
           'keep their cells and are judged again from them by the current rule.', '',
           'Each claim of the papers\' experiments (a numbered table, a figure with numbers, '
           'a stated ordering) has rows; its status comes from their verdicts: it is '
           '*reversed* when a row is reversed, *does not reproduce* when a row differs, is '
           '*inconclusive* when a row is inconclusive or not shown, *reproduces* when its rows '
           'match or hold, and is *untested* when no row has a verdict (not run here, or not '
           'comparable: an absolute number on other data). A claim not reproduced carries the '
           'reason class of the rows that decide it: stand-in data set, not run, smaller than '
           'the paper (the fast tier shrinks its run) or our recipe (our run is at the '
           "paper's size on the paper's data). Rows that check our own machinery or recipe "
           'are listed apart and not counted.', '',
           f'- Environment: {environment}.',
           *header_code(codes or {}),
           f'- Total wall time of the runs: {total:.0f} s ({total / 60:.1f} min; each run timed '
           'from its start to its results, compilation included).',
           '- Claims by status: ' + '; '.join(per_paper) + '.',
           '- Verdicts of the rows of paper claims: ' + ', '.join(
               f'{k} {v}' for k, v in sorted(counts[False].items())) + '; of our own checks: '
           + ', '.join(f'{k} {v}' for k, v in sorted(counts[True].items())) + '.',
           '', '| claim | paper | status | reason | rows |', '|---|---|---|---|---|']
  lines += [f'| {claim.id} | {claim.paper} | {statuses[claim.id][0]} | {statuses[claim.id][1]} '
            f'| {statuses[claim.id][2]} |' for claim in claims
            if statuses[claim.id][0] != 'reproduces']
  lines += ['', '## Claims', '', '| claim | paper | source | statement | status |',
            '|---|---|---|---|---|']
  lines += [f'| {claim.id} | {claim.paper} | {claim.source} | '
            f'{claim.statement.replace("|", chr(92) + "|")} | {statuses[claim.id][0]} |'
            for claim in claims]
  lines += ['', "## Rows of the papers' claims", '', *header, *tables[False]]
  lines += ['', '## Checks of our own (not paper claims, not counted)', '',
            'The LRMF convergence flag against fresh data, its objective at other angles than '
            "the paper's, estimates of E_bias, and chance levels of ours.", '', *header,
            *tables[True]]
  lines += ['', '## Runs', '',
            '| run | config | seeds | sizes of this tier | paper tier | data | wall (s) | command |',
            '|---|---|---|---|---|---|---|---|']
  for run in runs_of(rows):
    wall = walls.get(run.name)
    sizes = run.fast_note if tier == 'fast' else 'the paper\'s sizes'
    command = run.command(tier, data_root)
    if tier not in run.tiers:
      sizes, command = 'not run in this tier', run.command(run.tiers[0])
    lines.append(f'| {run.name} | `{run.spec(tier)}` | {len(run.seeds(tier))} | {sizes} | '
                 f'{run.paper_cost} | {data.get(run.name, "-")} | '
                 f'{"-" if wall is None else f"{wall:.0f}"} | `{command}` |')
  return lines


_TIER = flags.DEFINE_enum('tier', 'fast', TIERS, 'Which sizes to run (see the module doc).')
_RUNS = flags.DEFINE_list('runs', None, 'Run only these runs (names in the report\'s runs '
                          'table); the other rows keep their cells from the existing report.')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/reproduce', 'Where the runs go '
                               '(<workdir>/<tier>/<run>).')
_REPORT = flags.DEFINE_string('report', None, 'The report to (re)write; default '
                              'REPRODUCTION.md (fast tier) or REPRODUCTION_paper.md.')
_DATA_ROOT = flags.DEFINE_string(
    'data_root', '', "A folder of the papers' data sets, one folder each (<data_root>/maps, "
    "mnist, usps, ...: README \"Running on the papers' data\"): each paper-tier run whose data "
    'sets are there reads them instead of its stand-ins (its rows and the runs table say so).')
_CACHE = flags.DEFINE_string(
    'compilation_cache', None,
    "XLA's persistent compilation cache directory (default <workdir>/<tier>/xla_cache; "
    "'none': off). Runs clear JAX's in-memory caches when they end, and per-seed runs build "
    'their programs anew for every seed: the cache is where the later runs and seeds find '
    'them. The report header says whether it held programs when the report started.')


def cache_note(directory: str | None) -> str:
  """The header's words on the persistent compilation cache ``directory`` (``None``: off),
  read before the runs start: an empty cache means the wall times include every compilation."""
  if directory is None:
    return 'persistent compilation cache off'
  state = 'empty' if not (os.path.isdir(directory) and os.listdir(directory)) else (
      'holding earlier programs (wall times lower than a first run\'s)')
  return f'persistent compilation cache {directory}, {state} at the start'


def main(argv):
  del argv
  tier = _TIER.value
  every_run = {run.name: run for run in runs_of(ROWS)}
  known = {name: run for name, run in every_run.items() if tier in run.tiers}
  wanted = _RUNS.value or list(known)
  unknown = sorted(set(wanted) - set(every_run))
  if unknown:
    raise app.UsageError(f'unknown runs {unknown}; known: {sorted(every_run)}')
  elsewhere = {name: every_run[name].tiers for name in wanted if name not in known}
  if elsewhere:
    raise app.UsageError(f'runs not in the {tier} tier: {elsewhere} (run name: its tiers)')
  report = _REPORT.value or ('REPRODUCTION.md' if tier == 'fast' else 'REPRODUCTION_paper.md')
  try:  # a foreign folder is refused before anything (the cache, a run) is written into it
    workdir_guards.check_reproduction_folder(_WORKDIR.value, TIERS, tier, every_run)
  except ValueError as err:
    raise SystemExit(f'reproduction refused: {err}') from err
  launch.log_through_absl()
  requested = _CACHE.value or os.path.join(_WORKDIR.value, tier, 'xla_cache')
  note = cache_note(launch.compilation_cache_dir(requested))  # before the runs fill it
  launch.use_compilation_cache(requested)
  current = f'{environment_line()}; {note}'
  results, failures = {}, {}  # runs not wanted now are read from the workdir if finished there
  for name, run in known.items():
    try:
      results[name] = per_seed_results(run, tier, os.path.join(_WORKDIR.value, tier, name),
                                       execute=name in wanted, environment=current,
                                       data_root=_DATA_ROOT.value)
    except Exception as err:  # pylint: disable=broad-except
      # One failed run must not lose the others: its rows say so, the exit status too.
      logging.exception('run %s failed', name)
      failures[name] = f'{type(err).__name__}: {err}'.splitlines()[0][:200]
      results[name] = (None, None)
    # Every compiled CPU program holds memory mappings of its machine code; a process that
    # runs the whole report accumulates thousands and LLVM then fails to map more ("Unable
    # to allocate section memory", after vm.max_map_count mappings). The seeds of one run
    # share programs, so the caches are kept until the run is done; programs that later runs
    # share (AlignFlow's evaluation, per-seed runs' steps) come back from the persistent cache.
    jax.clear_caches()
    gc.collect()
  previous_text = ''
  if os.path.exists(report):
    with open(report) as f:
      previous_text = f.read()
  previous = previous_rows(previous_text)
  # The header states where the wall times were measured and the code, run by run.
  environments, codes = {}, {}
  for name, run in known.items():
    if results[name][0] is None:
      continue
    recorded = measured_in(run, tier, os.path.join(_WORKDIR.value, tier, name))
    if recorded:
      environments.setdefault(recorded, []).append(name)
    code = code_of(run, tier, os.path.join(_WORKDIR.value, tier, name))
    if code:
      codes.setdefault(code, []).append(name)
  data = {name: data_of(run, tier, os.path.join(_WORKDIR.value, tier, name), _DATA_ROOT.value)
          for name, run in known.items() if name not in failures}
  # Runs measured before and not found now keep their wall time, data, code and environment.
  kept_walls = {}
  for name, old in previous_runs(previous_text).items():
    if name not in known or name in failures or results[name][0] is not None:
      continue
    kept_walls[name] = float(old['wall'])
    data[name] = old['data']
    if old.get('code'):
      codes.setdefault(old['code'], []).append(name)
    if old.get('environment'):
      environments.setdefault(old['environment'], []).append(name)
  lines = report_lines(tier, results, previous, header_environment(environments, current),
                       failures=failures, data=data, data_root=_DATA_ROOT.value, codes=codes,
                       kept_walls=kept_walls)
  with open(report, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  if failures:
    raise SystemExit(f'{len(failures)} run(s) failed: {", ".join(sorted(failures))}')


if __name__ == '__main__':
  app.run(main)
