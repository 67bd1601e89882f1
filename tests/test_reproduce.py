"""The reproduction report: rows from runs, and finished numbers kept across partial reruns."""

import os

from experiments import reproduce

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _key(row):
  return row.method, row.claim.replace('|', '\\|')


def test_report_rows_come_from_runs_then_from_the_previous_report():
  lrmf_row, fdre_row = reproduce.LRMF_ROWS[0], reproduce.FDRE_ROWS[0]
  assert '|' in fdre_row.claim  # an escaped bar inside a cell must survive the parse
  old_table = '\n'.join([  # the table before the wall column, as the report once was
      '| method | claim | paper | ours | config | command |', '|---|---|---|---|---|---|',
      f'| lrmf | {_key(lrmf_row)[1]} | p | 0.5 | `c` | `x` |',
      f'| fdre | {_key(fdre_row)[1]} | p | 0.25 | `c` | `x` |'])
  previous = reproduce.previous_values(old_table)
  assert previous == {_key(lrmf_row): ('0.5', '-'), _key(fdre_row): ('0.25', '-')}

  lines = reproduce.report_lines({lrmf_row.run_id: {lrmf_row.metric: 0.75, 'seconds': 12.4}},
                                 previous)
  assert reproduce._HEADER[0] in lines
  report = reproduce.previous_values('\n'.join(lines))  # rows that are not 'not run'
  assert report[_key(lrmf_row)] == ('0.75', '12')  # from the run, with its wall time
  assert report[_key(fdre_row)] == ('0.25', '-')  # kept from the previous report
  assert set(report) == {_key(lrmf_row), _key(fdre_row)}  # the others say 'not run'
  assert sum('| not run |' in line for line in lines) == len(reproduce.ROWS) - len(report)


def test_the_committed_report_parses_and_has_every_row():
  with open(os.path.join(REPO, 'REPRODUCTION.md')) as f:
    text = f.read()
  rows = [line for line in text.splitlines() if line.startswith('| ') and '---' not in line]
  assert len(rows) == len(reproduce.ROWS) + 1, 'REPRODUCTION.md and experiments/reproduce.py differ'
  assert set(reproduce.previous_values(text)) <= {_key(row) for row in reproduce.ROWS}
