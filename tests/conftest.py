"""Test-session setup that runs before JAX starts: core pinning and a compilation cache.

* Each pytest-xdist worker is pinned to its own CPU core: two workers whose XLA thread
  pools share both cores of a small machine slow each other down erratically.
* XLA's persistent compilation cache (keyed by the compiled program, the compile options
  and the JAX version) is shared by the workers and by the launcher subprocesses the tests
  start, so a program compiled once -- the same flow fitted to domain A and to domain B,
  a straight run and its kill-and-resume twin -- is not compiled again. Most of the suite's
  time is compilation; results are unchanged, a cache hit loads the same executable.
"""

import os
import tempfile

_worker = os.environ.get('PYTEST_XDIST_WORKER', '')
if _worker.startswith('gw') and hasattr(os, 'sched_setaffinity'):
  _cores = sorted(os.sched_getaffinity(0))
  if len(_cores) > 1:
    os.sched_setaffinity(0, {_cores[int(_worker[2:]) % len(_cores)]})

os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), f'jax-test-cache-{os.getuid()}'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.3')
