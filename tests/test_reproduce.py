"""The reproduction report: verdicts over seeds, its plumbing on smoke runs, the committed report."""

import ast
import dataclasses
import json
import math
import os
import re

import numpy as np
import pytest
from scipy import stats

from experiments import claims, launch, reproduce
from experiments.claims import schema
from harness import config_checks, verdicts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _seeds(**metrics):
  """Per-seed metric dicts from per-metric lists."""
  n = len(next(iter(metrics.values())))
  return [{name: values[i] for name, values in metrics.items()} for i in range(n)]


def test_value_verdict_is_an_equivalence_test_of_the_90_percent_interval():
  x = np.array([0.9, 1.0, 1.1, 1.0, 1.0])
  per_seed = _seeds(x=x)
  half = stats.t.ppf(0.95, 4) * x.std(ddof=1) / math.sqrt(5)  # the 90% interval: 1 +- half
  ours, judged = verdicts.verdict(verdicts.Value('x', 1.0, 1.01 * half), per_seed)
  assert judged.startswith('matches') and ours.endswith('(5 seeds)')
  # the interval pokes out of the band on one side: not enough seeds to tell
  assert verdicts.verdict(verdicts.Value('x', 1.0, 0.99 * half), per_seed)[1].startswith(
      'inconclusive (5 seeds')
  # the paper's value inside our interval is no longer a match when the band is narrow
  assert verdicts.verdict(verdicts.Value('x', 1.0 + 0.5 * half, 0.01), per_seed)[1].startswith(
      'inconclusive')
  # the whole interval outside the band
  assert verdicts.verdict(verdicts.Value('x', 1.0 + 1.2 * half, 0.1 * half),
                          per_seed)[1].startswith('differs')
  assert verdicts.verdict(verdicts.Value('x', None), per_seed)[1].startswith('not comparable')
  assert verdicts.verdict(verdicts.Value('x', 1.0, not_comparable='data differ'),
                          per_seed)[1] == 'not comparable: data differ'
  assert verdicts.verdict(verdicts.Value('x', 1.0, 1.0), per_seed[:1])[1].startswith(
      'inconclusive: 1 seed')
  # a seed without the metric (or NaN) is left out of the mean, not counted as 0
  ours, _ = verdicts.verdict(verdicts.Value('x', 1.0), per_seed + [{'x': float('nan')}, {}])
  assert ours.endswith('(5 seeds)')


def test_noise_never_passes_for_agreement_and_exact_agreement_is_not_a_failure():
  # the report's old rule called these "matches": a noisy objective against ~0, and a
  # noisy cycle error against exact invertibility
  assert verdicts.verdict(verdicts.Value('x', 0.0, 0.05), _seeds(
      x=[1.2, 6.5, 3.2]))[1].startswith('inconclusive')
  assert verdicts.verdict(verdicts.Value('x', 0.0, 1e-6), _seeds(
      x=[0.01, 0.11, 0.21]))[1].startswith('inconclusive')
  # every seed far outside: differs
  assert verdicts.verdict(verdicts.Value('x', 0.0, 0.05), _seeds(
      x=[0.8, 0.9, 1.0]))[1].startswith('differs')
  # seeds that agree exactly (SE 0) inside the band match; outside it they differ
  assert verdicts.verdict(verdicts.Value('x', 0.99, 0.01), _seeds(x=[1.0] * 5),
                          '0.99')[1].startswith('matches')
  assert verdicts.verdict(verdicts.Value('x', 1.0), _seeds(x=[0.0] * 5))[1].startswith('differs')


def test_the_papers_printed_precision_widens_the_band():
  assert verdicts.rounding_tolerance('0.99 +- 0.0003') == pytest.approx(0.005)
  assert verdicts.rounding_tolerance('-1.168') == pytest.approx(0.0005)
  assert verdicts.rounding_tolerance('16.61 (true)') == pytest.approx(0.005)
  assert verdicts.rounding_tolerance('0') == 0.0  # an exact claim
  assert verdicts.rounding_tolerance('qualitative') == 0.0
  per_seed = _seeds(x=[0.9935, 0.9940, 0.9945])  # inside 0.99 +- 0.005, not 0.990 +- 0.0005
  assert verdicts.verdict(verdicts.Value('x', 0.99), per_seed, '0.99')[1].startswith('matches')
  assert verdicts.verdict(verdicts.Value('x', 0.99), per_seed, '0.990')[1].startswith('differs')


def test_ordering_verdict_holds_is_reversed_or_is_not_shown():
  lower, higher = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 5.5]  # differences -1 -2 -3 -1.5
  d = np.subtract(lower, higher)
  t = d.mean() / (d.std(ddof=1) / 2)
  p = stats.t.cdf(t, 3)  # by hand: P(T_3 <= t)
  assert p < 0.05
  mean, se, p_got, n = verdicts.paired_ordering(lower, higher)
  assert n == 4 and mean == pytest.approx(-1.875) and p_got == pytest.approx(p)
  assert se == pytest.approx(d.std(ddof=1) / 2)
  ours, judged = verdicts.verdict(verdicts.Ordering('a', 'b'), _seeds(a=lower, b=higher))
  assert judged == 'holds' and '(p=' in ours
  # the opposite claim is significantly reversed
  assert verdicts.verdict(verdicts.Ordering('b', 'a'), _seeds(a=lower, b=higher))[1].startswith(
      'reversed')
  # a difference lost in the noise shows nothing either way
  assert verdicts.verdict(verdicts.Ordering('a', 'b'), _seeds(
      a=[1.0, 2.0, 3.0], b=[2.0, 1.0, 3.1]))[1] == 'not shown'
  # identical differences: p is 0 or 1, not NaN
  assert verdicts.paired_ordering([0, 0, 0], [1, 1, 1])[2] == 0.0
  assert verdicts.paired_ordering([1, 1, 1], [0, 0, 0])[2] == 1.0
  assert verdicts.verdict(verdicts.Ordering('a', 'b'), _seeds(a=[1] * 3, b=[0] * 3))[1].startswith(
      'reversed')


def test_a_kept_cell_is_judged_again_by_the_current_rule():
  value = verdicts.Value('x', 0.0, 0.05)
  x = [1.2, 6.5, 3.2]
  ours, judged = verdicts.verdict(value, _seeds(x=x))
  # the cell prints 4 digits: the same verdict, its interval to those digits
  assert verdicts.kind_of(verdicts.rejudge(value, ours)) == verdicts.kind_of(judged)
  ordering = verdicts.Ordering('a', 'b')
  ours, judged = verdicts.verdict(ordering, _seeds(a=[1.0, 2.0, 3.0], b=[2.5, 4.0, 4.5]))
  assert verdicts.rejudge(ordering, ours) == judged == 'holds'
  assert verdicts.rejudge(value, 'not run') is None
  assert verdicts.rejudge(value, 'failed: ValueError: x') is None
  assert verdicts.kind_of('inconclusive (3 seeds: too few or too noisy): ...') == 'inconclusive'
  assert verdicts.kind_of('not comparable: data differ') == 'not comparable'


def test_a_claims_status_comes_from_its_rows_verdicts():
  status = verdicts.claim_status
  assert status(['matches', 'holds', 'not comparable']) == 'reproduces'
  assert status(['matches', 'differs', 'not shown']) == 'does not reproduce'
  assert status(['differs', 'reversed', 'holds']) == 'reversed'
  assert status(['matches', 'not shown']) == 'inconclusive'
  assert status(['holds', 'inconclusive']) == 'inconclusive'
  # rows without a verdict (not run, not comparable, failed) test nothing
  assert status(['not comparable', '-', 'failed: x']) == 'untested'
  assert status([]) == 'untested'
  assert set(map(verdicts.status_of_kind, verdicts.KINDS)) == set(verdicts.STATUSES)


_FAKE = claims.Run('fake', 'configs/lrmf_vanishing_gradient.py', fast_seeds=3, paper_seeds=3)
_FAKE_SHRUNK = dataclasses.replace(_FAKE, name='fake_shrunk', fast=(('num_samples', 4000),))
_FAKE_PAPER = dataclasses.replace(_FAKE, name='fake_paper', tiers=('paper',), paper_cost='hours')


def test_claims_are_counted_per_paper_with_the_reason_of_the_rows_that_decide_them():
  value, ordering = verdicts.Value('x', 1.0, 0.1), verdicts.Ordering('x', 'y')
  row = lambda text, run, check, claim, **kw: claims.Row('p', text, '1', run, check,
                                                          claim_id=claim, **kw)
  rows = (
      row('matches', _FAKE, value, 'p.a'), row('holds', _FAKE, ordering, 'p.a'),
      row('differs, shrunk', _FAKE_SHRUNK, verdicts.Value('y', 1.0, 0.1), 'p.b'),
      row('matches too', _FAKE, value, 'p.b', reason='stand-in data set'),  # decides nothing
      row('reversed', _FAKE, verdicts.Ordering('y', 'x'), 'p.c', reason='stand-in data set'),
      row('not comparable', _FAKE, verdicts.Value('x', 1.0, not_comparable='other data'), 'p.c',
          reason='stand-in data set'),
      claims.not_run('p', 'no data', '-', 'p.d', 'needs the X data set'),
      row('other tier', _FAKE_PAPER, value, 'p.e'),
      row('differs, as the paper', _FAKE, verdicts.Value('y', 1.0, 0.1), 'q.f'),
      row('machinery differs', _FAKE, verdicts.Value('y', 1.0, 0.1), claims.MACHINERY))
  known = [claims.Claim(f'p.{c}', 'p', f'claim {c}', 'Table 1') for c in 'abcde']
  known.append(claims.Claim('q.f', 'q', 'claim f', 'Fig. 1'))
  per_seed = _seeds(x=[1.0, 1.01, 0.99], y=[2.0, 2.1, 1.9])
  results = {'fake': (per_seed, 1.0), 'fake_shrunk': (per_seed, 1.0)}
  text = '\n'.join(reproduce.report_lines('fast', results, {}, 'env', rows=rows, claims=known))
  assert ('- Claims by status: p 5: reproduce 1, do not reproduce 1, reversed 1, inconclusive 0, '
          'untested 2; q 1: reproduce 0, do not reproduce 1, reversed 0, inconclusive 0, '
          'untested 0.') in text
  header = text.split('## Claims')[0]
  assert '| p.a |' not in header  # reproduced: not in the table of claims not reproduced
  assert '| p.b | p | does not reproduce | smaller than the paper | differs 1, matches 1 |' in header
  assert '| p.c | p | reversed | stand-in data set | reversed 1, not comparable 1 |' in header
  assert '| p.d | p | untested | not run | not run 1 |' in header
  assert '| p.e | p | untested | not run | other tier 1 |' in header
  assert '| q.f | q | does not reproduce | our recipe | differs 1 |' in header
  listed = text.split('## Claims')[1].split('## Rows')[0]
  assert '| p.a | p | Table 1 | claim a | reproduces |' in listed
  # the machinery row: in its own section, in no claim's count
  papers_rows, own_rows = text.split('## Checks of our own')
  assert '| machinery differs |' in own_rows and '| machinery differs |' not in papers_rows
  assert 'of our own checks: differs 1.' in text
  # a row without a run renders without one and is not read back as a measured cell
  assert '| p.d | p | no data | - | not run: needs the X data set | - | - | - | - |' in text
  kept = reproduce.previous_rows(text)
  assert ('p', 'no data') not in kept and kept['p', 'machinery differs']['verdict'].startswith(
      'differs')
  assert len(kept) == len(rows) - 1  # both tables are read back
  assert kept['p', 'other tier'][reproduce.OURS] == 'paper tier only'


def test_a_partial_rerun_keeps_the_wall_time_code_and_environment_of_runs_it_does_not_run():
  rows = (claims.Row('p', 'fake row', '1', _FAKE, verdicts.Value('x', 1.0, 0.1),
                     claim_id=claims.MACHINERY),
          claims.Row('p', 'shrunk row', '1', _FAKE_SHRUNK, verdicts.Value('x', 1.0, 0.1),
                     claim_id=claims.MACHINERY))
  per_seed = _seeds(x=[1.0, 1.01, 0.99])
  first = '\n'.join(reproduce.report_lines(
      'fast', {'fake': (per_seed, 12.0), 'fake_shrunk': (per_seed, 30.0)}, {}, 'env A [runs: '
      'fake] // env B [runs: fake_shrunk]', rows=rows, codes={'abc': ['fake'], 'def': [
          'fake_shrunk']}))
  kept = reproduce.previous_runs(first)
  assert kept['fake'] == {'wall': '12', 'data': '-', 'code': 'abc', 'environment': 'env A'}, kept
  assert kept['fake_shrunk']['code'] == 'def' and kept['fake_shrunk']['wall'] == '30'
  # one header line without [runs: ...] belongs to every measured run
  single = '\n'.join(reproduce.report_lines('fast', {'fake': (per_seed, 5.0)}, {}, 'env C',
                                             rows=rows, codes={'ghi': ['fake']}))
  assert reproduce.previous_runs(single) == {
      'fake': {'wall': '5', 'data': '-', 'code': 'ghi', 'environment': 'env C'}}
  again = '\n'.join(reproduce.report_lines(
      'fast', {'fake': (per_seed, 7.0), 'fake_shrunk': (None, None)}, reproduce.previous_rows(
          first), 'env A', rows=rows, codes={'xyz': ['fake']}, kept_walls={'fake_shrunk': 30.0}))
  assert '- Total wall time of the runs: 37 s' in again


def test_every_claim_has_a_row_and_every_row_names_a_known_claim():
  ids = [claim.id for claim in claims.CLAIMS]
  assert len(ids) == len(set(ids))
  for claim in claims.CLAIMS:
    assert claim.paper in ('lrmf', 'fdre', 'alignflow')
    assert claim.id.startswith(claim.paper + '.') and claim.statement and claim.source
    assert any(row.claim_id == claim.id for row in claims.ROWS), f'{claim.id} has no row'
  for row in claims.ROWS:
    assert row.claim_id in set(ids) | {claims.MACHINERY}, (row.claim, row.claim_id)
    assert row.reason in ('',) + claims.REASONS, row.claim
    if row.run is None:
      assert row.check is None and row.not_run, row.claim
    else:
      assert row.check is not None and not row.not_run, row.claim
      if row.claim_id != claims.MACHINERY:  # a paper's row reads its paper's claim
        assert row.claim_id.split('.')[0] == row.method, row.claim


def test_every_run_validates_in_both_tiers_and_seeds_follow_the_experiment():
  for run in claims.runs_of(claims.ROWS):
    assert run.tiers and set(run.tiers) <= set(schema.TIERS)
    for tier in run.tiers:
      config = claims.load_config(run, tier, run.seeds(tier))
      config_checks.validate(config, launch.default_config(run.spec(tier)))
      assert config.experiment in launch.EXPERIMENTS
      assert len(run.seeds(tier)) >= 3, f'{run.name}: the report needs at least 3 seeds'
      assert f'--config={run.spec(tier)}' in run.command(tier)
      assert reproduce.data_of(run, tier, '/nonexistent')  # every config says what it reads
      for field, value in run.overrides(tier):  # the command's flags parse back to the values
        written = re.search(rf"--config\.{re.escape(field)}='([^']*)'", run.command(tier))[1]
        assert (ast.literal_eval(written) if isinstance(value, tuple) else written) == (
            value if isinstance(value, (tuple, str)) else str(value)), (run.name, field)
  names = [run.name for run in claims.runs_of(claims.ROWS)]
  assert len(names) == len(set(names))


_SMOKE_SIDE_BY_SIDE = claims.Run('smoke_lrmf', 'configs/lrmf_moons.py', 'smoke',
                                    fast=(('estimate_bias', False),), fast_seeds=2)
_SMOKE_ONE_SEED = claims.Run('smoke_vanishing', 'configs/lrmf_vanishing_gradient.py', 'smoke',
                                fast_seeds=2)
_SMOKE_ROWS = (
    claims.Row('lrmf', 'smoke objective', '~0', _SMOKE_SIDE_BY_SIDE,
               verdicts.Value('test_objective', 0.0, 100.0), claim_id='smoke.objective'),
    claims.Row('lrmf', 'smoke ordering', '< 0', _SMOKE_SIDE_BY_SIDE,
               verdicts.Ordering('one_nn_accuracy_identity_map', 'one_nn_accuracy'),
               claim_id='smoke.ordering'),
    claims.Row('lrmf', 'smoke slope', '0.6', _SMOKE_ONE_SEED, verdicts.Value('a', 0.6, 10.0),
               claim_id=claims.MACHINERY),
)
_SMOKE_CLAIMS = (claims.Claim('smoke.objective', 'lrmf', 'objective ~0', 'smoke'),
                 claims.Claim('smoke.ordering', 'lrmf', 'an ordering', 'smoke'))


def test_report_plumbing_on_smoke_runs(tmp_path):
  """Seeds side by side and one run per seed, read back without training, aggregated into
  rows with verdicts; a partial rerun keeps the other rows' cells."""
  results = {}
  for run in (_SMOKE_SIDE_BY_SIDE, _SMOKE_ONE_SEED):
    workdir = str(tmp_path / run.name)
    per_seed, wall = reproduce.per_seed_results(run, 'fast', workdir, execute=True)
    assert [r['seed'] for r in per_seed if 'seed' in r] in ([0, 1], [])
    assert len(per_seed) == 2 and wall > 0
    results[run.name] = (per_seed, wall)
    # a second read trains nothing: same metrics, same wall time, measured where it ran
    assert reproduce.per_seed_results(run, 'fast', workdir, execute=False) == (per_seed, wall)
    assert reproduce.measured_in(run, 'fast', workdir) is None  # no environment was given
  assert os.path.isdir(tmp_path / 'smoke_vanishing' / 'seed_1')  # one workdir per seed
  # the two seeds are different runs
  assert results['smoke_vanishing'][0][0]['a'] != results['smoke_vanishing'][0][1]['a']

  lines = reproduce.report_lines('fast', results, {}, 'env', rows=_SMOKE_ROWS,
                                 claims=_SMOKE_CLAIMS)
  text = '\n'.join(lines)
  assert 'Tier **fast**' in text and '- Environment: env.' in text
  total = sum(wall for _, wall in results.values())
  assert f'Total wall time of the runs: {total:.0f} s' in text
  rows = reproduce.previous_rows(text)
  objective = rows['lrmf', 'smoke objective']
  assert objective['verdict'].startswith(('matches', 'inconclusive', 'differs'))
  assert '(2 seeds)' in objective[reproduce.OURS]
  assert objective['verdict'] == verdicts.verdict(_SMOKE_ROWS[0].check, results['smoke_lrmf'][0],
                                                  '~0')[1]
  mean = np.mean([r['test_objective'] for r in results['smoke_lrmf'][0]])
  assert objective[reproduce.OURS].startswith(f'{mean:.4g} +- ')
  assert rows['lrmf', 'smoke ordering']['verdict'].startswith(('holds', 'reversed', 'not shown'))
  assert '(p=' in rows['lrmf', 'smoke ordering'][reproduce.OURS]
  assert '--runs=smoke_vanishing' in rows['lrmf', 'smoke slope']['command']
  assert '| smoke_vanishing | `configs/lrmf_vanishing_gradient.py:smoke` | 2 |' in text
  # the machinery row is in its own section, not among the papers' rows nor in the counts
  claims_part, own_part = text.split('## Checks of our own')
  assert '| smoke slope |' in own_part and '| smoke slope |' not in claims_part
  assert '- Claims by status: lrmf 2: ' in text

  # a rerun of one run keeps the other run's rows from the previous report
  partial = reproduce.report_lines('fast', {'smoke_vanishing': results['smoke_vanishing']},
                                   rows, 'env', rows=_SMOKE_ROWS, claims=_SMOKE_CLAIMS)
  kept = reproduce.previous_rows('\n'.join(partial))['lrmf', 'smoke objective']
  assert kept[reproduce.OURS] == objective[reproduce.OURS]
  # its verdict is judged again from the kept cell (4 digits: the interval's digits may move)
  assert verdicts.kind_of(kept['verdict']) == verdicts.kind_of(objective['verdict'])
  # a failed run says so in its rows (the previous cells are not passed off as current)
  failed = reproduce.report_lines('fast', {}, rows, 'env', rows=_SMOKE_ROWS,
                                  failures={'smoke_lrmf': 'ValueError: a | b'},
                                  claims=_SMOKE_CLAIMS)
  line = next(l for l in failed if '| smoke objective |' in l)
  assert '| failed: ValueError: a / b | - |' in line
  # a run of the paper tier only: its rows and its line in the runs table say so
  paper_only = dataclasses.replace(_SMOKE_ONE_SEED, tiers=('paper',), paper_cost='hours')
  lines = reproduce.report_lines('fast', {}, {}, 'env', rows=(
      dataclasses.replace(_SMOKE_ROWS[2], run=paper_only),), claims=())
  line = next(l for l in lines if '| smoke slope |' in l)
  assert '| paper tier only | not comparable: not run in this tier (hours) |' in line
  assert any(l.startswith('| smoke_vanishing |') and 'not run in this tier' in l for l in lines)


@pytest.mark.parametrize('report, tier', [('REPRODUCTION.md', 'fast'),
                                          ('REPRODUCTION_paper.md', 'paper')])
def test_the_committed_report_has_every_row_with_its_paper_value_and_command(report, tier):
  with open(os.path.join(REPO, report)) as f:
    text = f.read()
  assert f'Tier **{tier}**' in text
  assert re.search(r'Total wall time of the runs: \d+ s', text)
  assert re.search(r'jax \d+\.\d+', text)
  rows = reproduce.previous_rows(text)
  expected = {(row.method, row.claim.replace('|', '\\|')): row for row in claims.ROWS}
  tables = text.split("## Rows of the papers' claims")[1].split('## Runs')[0]
  table_rows = [line for line in tables.splitlines()
                if line.startswith('| ') and not line.startswith('| claim id')]
  assert len(table_rows) == len(claims.ROWS), f'{report} and experiments/claims differ'
  assert set(rows) <= set(expected)
  for key, record in rows.items():
    row = expected[key]
    assert record['paper'] == row.paper and record['claim id'] == row.claim_id
    assert record['command'] == (f'`python -m experiments.reproduce --tier={tier} '
                                 f'--runs={row.run.name}`')
    assert verdicts.kind_of(record['verdict']) in verdicts.KINDS
    # every kept verdict is the current rule's reading of its cell
    judged = verdicts.rejudge(row.check, record[reproduce.OURS], record['paper'])
    assert judged is None or verdicts.kind_of(judged) == verdicts.kind_of(record['verdict']), key
  # the machinery rows, and only they, are in their own section
  own = text.split('## Checks of our own')[1].split('## Runs')[0]
  assert sum(line.startswith('| machinery |') for line in own.splitlines()) == sum(
      row.claim_id == claims.MACHINERY for row in claims.ROWS)
  assert not any(line.startswith('| machinery |') for line in tables.split('## Checks')[0]
                 .splitlines())


@pytest.mark.parametrize('report, tier', [('REPRODUCTION.md', 'fast'),
                                          ('REPRODUCTION_paper.md', 'paper')])
def test_the_committed_report_lists_every_claim_as_its_own_cells_give_it(report, tier):
  """Every claim once in the claims table, and the header, claims and rows are what the
  report's own cells give under the current claims and rule (a claim or row added without
  regenerating the report fails here)."""
  with open(os.path.join(REPO, report)) as f:
    text = f.read()
  listed = [reproduce._cells(line) for line in
            text.split('## Claims')[1].split('## Rows')[0].splitlines()
            if line.startswith('| ') and not line.startswith('| claim |')]
  assert [cells[0] for cells in listed] == [claim.id for claim in claims.CLAIMS]
  assert all(cells[-1] in verdicts.STATUSES for cells in listed)
  for paper in ('lrmf', 'fdre', 'alignflow'):
    of_paper = [cells[-1] for cells in listed if cells[1] == paper]
    assert f'{paper} {len(of_paper)}: reproduce {of_paper.count("reproduces")}, ' in text
  environment = re.search(r'^- Environment: (.*)\.$', text, re.M)[1]
  regenerated = '\n'.join(reproduce.report_lines(
      tier, {}, reproduce.previous_rows(text), environment))
  # A report written from the seeds prints each verdict's interval (or a reversed ordering's
  # p-value) from the exact summary; judged again from the 4-digit cells, their last digit may
  # move: compare all but those details.
  interval = re.compile(r': 90% interval \[[^\]]*\] (inside|outside|overlaps the edge of) [^|]*'
                        r'| \(p=\S+ for the opposite order\)')
  after_time = lambda t: interval.sub('', t.split('- Claims by status')[1].split('## Runs')[0])
  assert after_time(regenerated) == after_time(text)


def test_the_header_says_whether_the_compilation_cache_held_programs(tmp_path):
  assert reproduce.cache_note(None) == 'persistent compilation cache off'
  cache = tmp_path / 'xla_cache'
  assert 'empty at the start' in reproduce.cache_note(str(cache))  # not created yet
  cache.mkdir()
  assert 'empty at the start' in reproduce.cache_note(str(cache))
  (cache / 'program').write_bytes(b'x')
  assert 'holding earlier programs' in reproduce.cache_note(str(cache))


def test_the_environment_line_names_the_processor_model(tmp_path):
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text('processor\t: 0\nvendor_id\t: X\nmodel name\t: Some CPU 9000 @ 3GHz\n')
  assert reproduce.cpu_model(str(cpuinfo)) == 'Some CPU 9000 @ 3GHz'
  assert reproduce.cpu_model(str(tmp_path / 'missing')) == reproduce.platform.processor()
  model = reproduce.cpu_model()
  assert (f'CPU cores ({model});' if model else 'CPU cores;') in reproduce.environment_line()


def test_the_header_names_where_each_runs_wall_time_was_measured(tmp_path):
  run = claims.Run('smoke_vanishing', 'configs/lrmf_vanishing_gradient.py', 'smoke',
                      fast_seeds=2)
  reproduce.per_seed_results(run, 'fast', str(tmp_path), execute=True, environment='here')
  assert reproduce.measured_in(run, 'fast', str(tmp_path)) == 'here'
  assert reproduce.header_environment({}, 'now') == 'now'
  assert reproduce.header_environment({'here': ['a', 'b']}, 'now') == 'here'
  both = reproduce.header_environment({'here': ['a'], 'there': ['b']}, 'now')
  assert 'here [runs: a]' in both and 'there [runs: b]' in both


def test_the_header_names_the_commit_each_runs_results_came_from(tmp_path):
  run = claims.Run('smoke_vanishing', 'configs/lrmf_vanishing_gradient.py', 'smoke',
                   fast_seeds=2)
  assert reproduce.code_of(run, 'fast', str(tmp_path)) is None  # nothing finished
  for folder, _ in reproduce._parts(run, 'fast', str(tmp_path)):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'results.json'), 'w') as f:
      json.dump({'per_seed': []}, f)
    with open(os.path.join(folder, 'environment.json'), 'w') as f:
      json.dump({'code': {'commit': '0123456789' * 4, 'dirty': True}}, f)
  assert reproduce.code_of(run, 'fast', str(tmp_path)) == '0123456+dirty'
  assert reproduce.header_code({'0123456+dirty': ['a', 'b']}) == [
      '- Code: git commit 0123456+dirty.']
  assert reproduce.header_code({'0123456': ['a'], 'abcdef0': ['b']}) == [
      '- Code: git commit 0123456 [runs: a].', '- Code: git commit abcdef0 [runs: b].']
  lines = reproduce.report_lines('fast', {}, {}, 'here', rows=(), claims=(),
                                 codes={'0123456': ['a']})
  assert '- Code: git commit 0123456.' in lines
