r"""Launches one experiment: ``python -m experiments.run --config=... --workdir=...``.

Example::

  python -m experiments.run --config=configs/density_moons.py --workdir=runs/moons \
      --config.train.lr=3e-4

Any config field can be overridden with ``--config.<field>=<value>``; the
config is locked, so a mistyped field fails at once. Rerunning the same
command resumes from the workdir's checkpoints.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import launch

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file under configs/ (optionally "file.py:variant").',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for config, metrics, plots and checkpoints; a rerun resumes.')
flags.mark_flags_as_required(['config', 'workdir'])


class _QuietLibraries(logging.logging.Filter):
  """Drops the INFO chatter of orbax's checkpoint threads; keeps warnings."""

  def filter(self, record):
    return record.levelno >= logging.logging.WARNING or '/orbax/' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  launch.run_experiment(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
