r"""Compares the runs of a directory: ``python -m experiments.summarize DIR``.

Example::

  python -m experiments.summarize runs/density_sweep --metrics=test_nll,val_nll --x=model.hidden

Writes ``DIR/summary.csv``, ``DIR/summary.md`` and ``DIR/plots/summary_<metric>.png`` for a
sweep's directory or any directory of runs (:mod:`harness.summary`) and prints the
Markdown table.
"""

from absl import app, flags, logging

from harness import summary

_METRICS = flags.DEFINE_list('metrics', None, 'Metrics of results.json to show (default: '
                             'the numeric metrics every finished run reports).')
_X = flags.DEFINE_string('x', None, 'The swept field on the x axis of the figures.')


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('usage: python -m experiments.summarize DIR [--metrics=a,b] [--x=f]')
  out = summary.summarize(argv[1], _METRICS.value, _X.value)
  logging.info('%d runs: %s, %s, %d figures', len(out['rows']), out['csv'], out['markdown'],
               len(out['figures']))
  with open(out['markdown']) as f:
    print(f.read())


if __name__ == '__main__':
  app.run(main)
