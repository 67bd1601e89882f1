r"""Runs a config's sweep, one submitit job per point: ``python -m experiments.sweep``.

Example::

  python -m experiments.sweep --config=configs/density_moons.py --workdir=runs/density_sweep
  python -m experiments.sweep --config=configs/density_moons.py --sweep=smoke \
      --workdir=/tmp/sweep --executor=local --max_parallel=2 --config.train.density.num_steps=500

The points are ``get_sweep(--sweep)`` of the config file (:mod:`harness.sweeps`).
``--config`` is the config flag of ``python -m experiments.run``: ``--config.<field>=<value>``
overrides apply to every point, under the point's own fields (a swept field keeps its swept
values). Every point is checked before any job is submitted: the overrides and its fields
applied to the config file's config (in the point's variant, else in ``--config``'s) and
validated against that config
(:func:`experiments.sweep_jobs.point_config`), names distinct, and a point folder that already
holds a run of another config, or files but no run, refused; so is a ``--workdir`` that is
neither new, empty nor a sweep's (its ``sweep.json``). Any failure names the point and the
field, or the files found; nothing is written.

Point ``p`` runs into ``<workdir>/<sweeps.point_name(p)>`` through
:func:`experiments.sweep_jobs.run_point` (:func:`experiments.sweep_jobs.run_sweep` submits
them), so each has everything a single run has: points with a ``results.json`` are skipped,
unfinished ones resume from their checkpoints. Jobs go through
submitit (``<workdir>/_submitit`` holds their logs): ``--executor=local`` runs them as
processes of this machine (``--max_parallel`` at a time: one submitit array after another),
``slurm`` as a Slurm job array (``--max_parallel``: the array's parallelism), ``debug`` one
after another inside this process (with ``--distributed`` on every host of a TPU pod: each
point runs across the whole pod; ``--distributed`` with another executor is refused).
Per-job resources are the config file's ``SWEEP_RESOURCES`` (submitit's ``timeout_min``,
``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_partition``, ...) updated by
``--resources``.

A job that reaches its time limit is requeued and resumes from the point's checkpoints
(:class:`experiments.sweep_jobs.SweepPointJob`, submitit's checkpointing).

A failed point leaves ``<point>/error.txt`` and does not stop the others. At the end the
sweep writes its summary (:mod:`harness.summary`, ``--metrics``, ``--x``). Exit status:
0, 1 if any point failed, 2 if the sweep was refused (nothing submitted) or its summary
could not be written.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from harness import summary
from experiments import launch, sweep_jobs
from nflax import parallel

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file that defines get_sweep() ("configs/x.py", or '
    '"configs/x.py:variant" when the points set no variant); --config.<field>=<value> '
    'overrides apply to every point.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Sweep directory: one folder per point.')
_SWEEP = flags.DEFINE_string('sweep', '', "Name of the sweep: get_sweep(name) ('': default).")
_EXECUTOR = flags.DEFINE_enum('executor', 'local', ['local', 'slurm', 'debug'],
                              'submitit executor that runs the points.')
_MAX_PARALLEL = flags.DEFINE_integer('max_parallel', None,
                                     'At most this many points at once (default: all).')
_RESOURCES = flags.DEFINE_string(
    'resources', '', 'Overrides of SWEEP_RESOURCES, "name=value,...", e.g. '
    '"slurm_partition=gpu,timeout_min=30".')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-host: join the hosts of this job once '
    '(jax.distributed.initialize) and run every point with config.distributed=True; use '
    'with --executor=debug on every host of a TPU pod (refused with other executors).')
_CACHE = flags.DEFINE_string(
    'compilation_cache', launch.DEFAULT_COMPILATION_CACHE,
    "XLA's persistent compilation cache directory of the jobs ('none': off); "
    'JAX_COMPILATION_CACHE_DIR, when set, takes precedence.')
_METRICS = flags.DEFINE_list('metrics', None, 'Metrics of the summary (default: the numeric '
                             'metrics every finished point reports).')
_X = flags.DEFINE_string('x', None, 'The swept field on the x axis of the summary figures.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required')
  config_flag = flags.FLAGS['config']
  try:
    failed = sweep_jobs.run_sweep(config_flags.get_config_filename(config_flag), _WORKDIR.value,
                              sweep=_SWEEP.value,
                              overrides=config_flags.get_override_values(config_flag),
                              executor=_EXECUTOR.value, max_parallel=_MAX_PARALLEL.value,
                              resources=sweep_jobs.parse_resources(_RESOURCES.value),
                              compilation_cache=_CACHE.value, distributed=_DISTRIBUTED.value)
  except (ValueError, OSError) as err:
    logging.error('sweep refused: %s', err)
    sys.exit(2)
  if not _DISTRIBUTED.value or parallel.is_writer():
    try:
      out = summary.summarize(_WORKDIR.value, _METRICS.value, _X.value)
    except ValueError as err:  # --metrics or --x that the runs do not have
      logging.error('summary not written: %s', err)
      sys.exit(2)
    logging.info('summary: %s, %s', out['csv'], out['markdown'])
  if failed:
    logging.error('%d point(s) failed: %s', len(failed), ', '.join(failed))
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
