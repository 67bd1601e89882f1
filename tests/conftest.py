"""Pins each pytest-xdist worker to its own CPU core before JAX starts its thread pools.

Two workers whose XLA thread pools share both cores of a small machine slow each other
down erratically; one core per worker keeps the suite's wall time steady.
"""

import os

_worker = os.environ.get('PYTEST_XDIST_WORKER', '')
if _worker.startswith('gw') and hasattr(os, 'sched_setaffinity'):
  _cores = sorted(os.sched_getaffinity(0))
  if len(_cores) > 1:
    os.sched_setaffinity(0, {_cores[int(_worker[2:]) % len(_cores)]})
