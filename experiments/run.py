r"""Launches one experiment: ``python -m experiments.run --config=... --workdir=...``.

Example::

  python -m experiments.run --config=configs/density_moons.py --workdir=runs/moons \
      --config.train.density.lr=3e-4

Any config field can be overridden with ``--config.<field>=<value>``; the
config is locked, so a mistyped field fails at once. Rerunning the same
command resumes from the workdir's checkpoints. ``--list`` prints every config, its
variants and sweeps. Compiled programs are kept in XLA's persistent compilation cache
(``--compilation_cache``, on by default), so a second run of a config does not compile
again; ``--compilation_cache=none`` switches it off.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import launch
from harness import workdir_guards

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file under configs/ (optionally "file.py:variant").',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for config, metrics, plots and checkpoints; a rerun resumes.')
_LIST = flags.DEFINE_bool('list', False, 'Print every config, its variants and sweeps; exit.')
_CACHE = flags.DEFINE_string(
    'compilation_cache', launch.DEFAULT_COMPILATION_CACHE,
    "XLA's persistent compilation cache directory ('none': off). The environment variable "
    'JAX_COMPILATION_CACHE_DIR, when set, takes precedence.')


_ONE_LINE_ERRORS = (ValueError, RuntimeError, OSError, FileNotFoundError,
                    workdir_guards.ForeignFolderError)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _LIST.value:
    print(launch.describe_configs())
    return
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required (or --list)')
  launch.log_through_absl()
  launch.use_compilation_cache(_CACHE.value)
  try:
    launch.run_experiment(_CONFIG.value, _WORKDIR.value,
                          defaults=launch.default_config(config_flags.get_config_filename(
                              flags.FLAGS['config'])))
  except Exception as err:  # pylint: disable=broad-except
    # The launcher's own errors (a bad setting; a workdir that is foreign, of another
    # config, locked or unwritable; a diverged run, no readable checkpoint) end in one
    # line, their traceback at --verbosity=1; any other exception with its traceback.
    # os._exit: orbax's background threads, waiting on a failed save, would hold the
    # interpreter open forever.
    if type(err) in _ONE_LINE_ERRORS:
      logging.vlog(1, 'traceback:', exc_info=True)
    else:
      logging.exception('traceback:')
    logging.error('run failed: %s: %s', type(err).__name__, err)
    logging.flush()
    sys.stderr.flush()
    os._exit(1)  # pylint: disable=protected-access


if __name__ == '__main__':
  app.run(main)
