"""Compares the runs of a directory (``python -m experiments.summarize DIR``, and the end of
every sweep).

Every sub-directory of ``DIR`` that holds a run (``config.json``, ``results.json`` or
``error.txt``) is a row, and so is every point of ``DIR/sweep.json`` (written by
``python -m experiments.sweep``) that has not started. Writes

* ``DIR/summary.csv`` and ``DIR/summary.md``: one row per run with its swept fields, its
  status (``done``, ``failed: <first line of its error.txt>``, ``unfinished``) and its final
  metrics, the mean over seeds and, where several seeds ran, the standard error
  (``<metric>_se`` of ``results.json``), then the code it ran (``commit``: the short hash,
  ``+dirty`` when the tree was dirty; :func:`harness.provenance.code_label`) and its command
  line (``command``), both from its ``environment.json``;
* ``DIR/plots/summary_<metric>.png``: each metric (mean +- SE) against the swept field
  ``--x``, one line per combination of the other swept fields.

Swept fields are the sweep's override fields (``sweep.json``), or for a directory of
ordinary runs the config fields whose values differ between the runs. Default metrics: the
numeric metrics that every finished run reports.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Sequence

import matplotlib.pyplot as plt

from harness import plots, provenance
from harness import workdir as workdir_lib

SWEEP_FILE = 'sweep.json'
"""``{'config', 'sweep', 'points': {name: overrides}}`` of the sweeps run into a directory."""

NON_SWEPT = ('distributed',)
"""Config fields never shown as swept (they do not change results)."""


def _load(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def _flatten(config: dict, prefix: str = '') -> dict[str, Any]:
  flat = {}
  for name, value in config.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{name}.'))
    else:
      flat[f'{prefix}{name}'] = tuple(value) if isinstance(value, list) else value
  return flat


def _status(error: str | None, done: bool) -> str:
  if done:
    return 'done'
  if error is not None:
    first = error.strip().splitlines()[:1] or ['(empty error.txt)']
    return f'failed: {first[0].strip()}'
  return 'unfinished'


def scan(directory: str) -> tuple[list[dict], list[str]]:
  """``(rows, swept fields)`` of the runs in ``directory``.

  A row is ``{'point', 'fields': {field: value}, 'status', 'results', 'commit', 'command'}``
  (``results`` is ``results.json``, or ``{}``; ``commit`` and ``command`` are ``''`` for a run
  without ``environment.json``), rows in name order.
  """
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'{directory} is not a directory')
  sweep_path = os.path.join(directory, SWEEP_FILE)
  points = _load(sweep_path)['points'] if os.path.exists(sweep_path) else None
  names = {name for name in os.listdir(directory)
           if not name.startswith(('_', '.')) and name != 'plots'
           and os.path.isdir(os.path.join(directory, name))
           and any(os.path.exists(os.path.join(directory, name, f))
                   for f in ('config.json', 'results.json', workdir_lib.ERROR_FILE))}
  names |= set(points or ())
  rows = []
  for name in sorted(names):
    run = os.path.join(directory, name)
    done = os.path.exists(os.path.join(run, 'results.json'))
    config_path = os.path.join(run, 'config.json')
    environment = workdir_lib.read_environment(run)
    rows.append({
        'point': name,
        'config': _flatten(_load(config_path)) if os.path.exists(config_path) else {},
        'status': _status(workdir_lib.read_error(run), done),
        'results': _load(os.path.join(run, 'results.json')) if done else {},
        'commit': provenance.code_label(environment.get('code')) if environment else '',
        'command': environment.get('command', ''),
    })
  if points is not None:
    swept = list(dict.fromkeys(field for point in points.values() for field in point))
    for row in rows:
      row['fields'] = {f: _value(points.get(row['point'], {}).get(f)) for f in swept}
  else:
    configs = [row['config'] for row in rows if row['config']]  # a run may have none yet
    every = list(dict.fromkeys(f for config in configs for f in config))
    swept = [f for f in every if f not in NON_SWEPT
             and len({repr(config.get(f, '<absent>')) for config in configs}) > 1]
    for row in rows:
      row['fields'] = {f: row['config'].get(f) for f in swept}
  return rows, swept


def _value(value: Any) -> Any:
  return tuple(value) if isinstance(value, list) else value


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def default_metrics(rows: Sequence[dict]) -> list[str]:
  """The numeric metrics (not ``<m>_se``) that every finished row reports."""
  finished = [row['results'] for row in rows if row['results']]
  if not finished:
    return []
  names = [k for k, v in finished[0].items() if _is_number(v) and not k.endswith('_se')]
  return [k for k in names if all(_is_number(r.get(k)) for r in finished)]


def _text(value: Any) -> str:
  if isinstance(value, tuple):
    return '(' + ', '.join(_text(v) for v in value) + (',)' if len(value) == 1 else ')')
  if isinstance(value, float):
    return f'{value:.4g}'
  return '' if value is None else str(value)


def _mean_se(results: dict, metric: str) -> tuple[float | None, float | None]:
  value, se = results.get(metric), results.get(f'{metric}_se')
  return (value if _is_number(value) else None), (se if _is_number(se) else None)


def _cell(results: dict, metric: str) -> str:
  value, se = _mean_se(results, metric)
  if value is None:
    return ''
  return f'{value:.4g} ± {se:.2g}' if se is not None else f'{value:.4g}'


def write_tables(directory: str, rows: Sequence[dict], swept: Sequence[str],
                 metrics: Sequence[str]) -> tuple[str, str]:
  """``DIR/summary.csv`` (full precision, ``<m>`` and ``<m>_se`` columns, the error) and
  ``DIR/summary.md`` (``mean ± SE``), each ending in the ``commit`` and ``command`` columns;
  returns their paths."""
  csv_path, md_path = (os.path.join(directory, 'summary.csv'),
                       os.path.join(directory, 'summary.md'))
  with open(csv_path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['point', *swept, 'status']
                    + [c for m in metrics for c in (m, f'{m}_se')] + ['commit', 'command'])
    for row in rows:
      values = [v for m in metrics for v in _mean_se(row['results'], m)]
      writer.writerow([row['point'], *(_text(row['fields'][s]) for s in swept), row['status'],
                       *('' if v is None else repr(v) for v in values), row['commit'],
                       row['command']])
  escape = lambda text: text.replace('|', '\\|').replace('\n', ' ')
  lines = ['| ' + ' | '.join(['point', *swept, 'status', *metrics, 'commit', 'command']) + ' |',
           '|' + '---|' * (len(swept) + 4 + len(metrics))]
  for row in rows:
    status = row['status'] if len(row['status']) <= 160 else row['status'][:157] + '...'
    cells = [row['point'], *(_text(row['fields'][s]) for s in swept), status,
             *(_cell(row['results'], m) for m in metrics), row['commit'],
             f"`{row['command']}`" if row['command'] else '']
    lines.append('| ' + ' | '.join(escape(c) for c in cells) + ' |')
  with open(md_path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return csv_path, md_path


def plot_metric(directory: str, rows: Sequence[dict], swept: Sequence[str], metric: str,
                x: str | None) -> str | None:
  """``DIR/plots/summary_<metric>.png``: mean +- SE of ``metric`` over the finished rows
  against field ``x`` (numbers on a numeric axis, log-scaled when they span two decades;
  other values as categories), one line per combination of the other swept fields; against
  the point names if there is no swept field. ``None`` if no finished row has the metric."""
  finished = [row for row in rows if _mean_se(row['results'], metric)[0] is not None]
  if not finished:
    return None
  xs = [row['fields'][x] if x else row['point'] for row in finished]
  numeric = all(_is_number(v) for v in xs)
  categories = list(dict.fromkeys(_text(v) for v in xs))
  groups: dict[str, list[tuple[Any, float, float]]] = {}
  for row, value in zip(finished, xs):
    label = ', '.join(f'{s}={_text(row["fields"][s])}' for s in swept if s != x)
    mean, se = _mean_se(row['results'], metric)
    position = value if numeric else categories.index(_text(value))
    groups.setdefault(label, []).append((position, mean, se or 0.0))
  fig, ax = plt.subplots(figsize=(6, 4))
  for label, points in groups.items():
    points.sort(key=lambda p: p[0])
    ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                marker='o', capsize=3, label=label or None)
  if numeric and min(xs) > 0 and max(xs) >= 100 * min(xs):
    ax.set_xscale('log')
  if not numeric:
    ax.set_xticks(range(len(categories)), categories, rotation=30 if x else 60, ha='right')
  ax.set_xlabel(x or 'run')
  ax.set_ylabel(metric)
  if any(groups):
    ax.legend(fontsize=7)
  return plots.save(fig, os.path.join(directory, 'plots', f'summary_{metric}.png'))


def summarize(directory: str, metrics: Sequence[str] | None = None,
              x: str | None = None) -> dict[str, Any]:
  """Writes the tables and figures of ``directory`` (module docstring).

  Args:
    directory: a sweep's directory or any directory of runs.
    metrics: metric names of ``results.json`` (default: :func:`default_metrics`).
    x: the swept field on the figures' x axis (default: the first swept field whose value
      varies, else the first swept field).

  Returns:
    ``{'rows', 'csv', 'markdown', 'figures'}``.

  Raises:
    ValueError: an ``x`` that is not a swept field, or a metric no finished run reports,
      naming what exists.
  """
  rows, swept = scan(directory)
  if x is not None and x not in swept:
    raise ValueError(f'--x={x} is not a swept field; swept: {", ".join(swept) or "none"}')
  if x is None and swept:
    varying = [s for s in swept if len({repr(row['fields'][s]) for row in rows}) > 1]
    x = (varying or swept)[0]
  available = {k for row in rows for k, v in row['results'].items() if _is_number(v)}
  metrics = list(metrics) if metrics else default_metrics(rows)
  unknown = [m for m in metrics if m not in available]
  if unknown and any(row['results'] for row in rows):
    raise ValueError(f'no finished run reports {", ".join(unknown)}; metrics: '
                     f'{", ".join(sorted(available))}')
  csv_path, md_path = write_tables(directory, rows, swept, metrics)
  figures = [path for path in (plot_metric(directory, rows, swept, m, x) for m in metrics)
             if path is not None]
  return {'rows': rows, 'csv': csv_path, 'markdown': md_path, 'figures': figures}
