"""Who may write into a folder: a run's workdir is new, empty or its own; a folder is
writable; one live process runs in a workdir.

:func:`check_own` refuses a workdir holding files the project did not write, and
:func:`check_folder` the same for a command's own folder layout (a sweep's, a
reproduction's): both read only and raise :class:`ForeignFolderError` before anything is
written. :func:`check_writable` probes a folder; :class:`WorkdirLock` is the
``<workdir>/lock`` that names the process running there.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Callable

from absl import logging

from nflax import parallel


class ForeignFolderError(ValueError):
  """A folder that is not new, empty or the project's own (:func:`check_own`,
  :func:`check_folder`): refused before anything is written into it."""


RUN_LEFTOVERS = ('lock', 'error.txt', 'config.json.tmp')
"""What a run (or a sweep's job) that stopped before writing ``config.json`` may leave in
its workdir, besides ``lock.<pid>.tmp`` and ``.write_probe.<pid>``: such a workdir is
still the run's."""


def _listing(names: list[str], limit: int = 10) -> str:
  shown = ', '.join(names[:limit])
  return shown + (f' and {len(names) - limit} more' if len(names) > limit else '')


def is_json_object_with(path: str, field: str) -> bool:
  try:
    with open(path) as f:
      payload = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError):
    return False
  return isinstance(payload, dict) and field in payload


def _is_run_leftover(name: str) -> bool:
  return (name in RUN_LEFTOVERS or name.startswith('.write_probe.')
          or (name.startswith('lock.') and name.endswith('.tmp')))


def check_own(workdir: str, what: str = 'workdir') -> None:
  """Refuses a ``workdir`` that is neither new, empty nor a run's own; reads only.

  A run's own workdir holds its ``config.json`` (a JSON object with an ``experiment``
  field), or only what a run that stopped before writing it leaves (:data:`RUN_LEFTOVERS`).
  Anything else (a project folder, a home folder, a folder of someone's results) raises
  :class:`ForeignFolderError` naming the files found, before anything is written into it:
  a run never writes beside, nor overwrites, files the project did not write.
  """
  if not os.path.isdir(workdir):
    return  # new (or not a folder: check_writable names that)
  names = sorted(os.listdir(workdir))
  config = os.path.join(workdir, 'config.json')
  if 'config.json' in names:
    if os.path.isfile(config) and is_json_object_with(config, 'experiment'):
      return
    raise ForeignFolderError(
        f'{what} {os.path.abspath(workdir)} holds a config.json that is not a run\'s '
        f'config (a JSON object with an "experiment" field) and {len(names)} entries '
        f'({_listing(names)}); refusing to write into it, nothing was changed. Use a new or '
        'empty --workdir.')
  foreign = [name for name in names if not _is_run_leftover(name)]
  if foreign:
    raise ForeignFolderError(
        f'{what} {os.path.abspath(workdir)} is not empty and holds no run (no config.json): '
        f'it holds {_listing(foreign)}; refusing to write into it, nothing was changed. Use '
        'a new or empty --workdir (e.g. a new subfolder of it).')


def check_folder(folder: str, own: Callable[[str, bool], bool], what: str,
                 hint: str = 'Use a new or empty --workdir.') -> None:
  """Refuses ``folder`` when it holds an entry that ``own(name, is_dir)`` does not claim
  (the layout of a command's own folder, e.g. a sweep's or a reproduction's), raising
  :class:`ForeignFolderError` naming those entries; reads only. A new or empty folder
  passes."""
  if not os.path.isdir(folder):
    return
  foreign = sorted(name for name in os.listdir(folder)
                   if not own(name, os.path.isdir(os.path.join(folder, name))))
  if foreign:
    raise ForeignFolderError(f'{what} {os.path.abspath(folder)} holds {_listing(foreign)}, '
                             'which it did not write; refusing to write into it, nothing was '
                             f'changed. {hint}')


def check_writable(path: str, what: str) -> None:
  """Creates the folder ``path`` and writes a probe file into it; raises ``OSError``
  naming ``what`` and ``path`` if either fails (process 0 only)."""
  if not parallel.is_writer():
    return
  probe = os.path.join(path, f'.write_probe.{os.getpid()}')
  try:
    os.makedirs(path, exist_ok=True)
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as err:
    raise OSError(f'{what} {path} is not a writable folder: {err.strerror or err} '
                  f'({type(err).__name__})') from err


class WorkdirLock:
  """``<workdir>/lock`` names the process that runs in the workdir (``pid``, ``host``).

  Taken by process 0 (:func:`nflax.parallel.is_writer`) before anything is written and
  released when the run ends. A lock whose process is alive (same host: ``os.kill(pid,
  0)``; another host cannot be checked) refuses a second run, naming the holder; a lock
  left by a process that no longer exists on this host is taken over with a warning.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, 'lock')
    self._held = False

  @staticmethod
  def _alive(pid: int) -> bool:
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    except PermissionError:
      return True
    return True

  def _holder(self) -> dict | None:
    try:
      with open(self.path) as f:
        return json.load(f)
    except FileNotFoundError:
      return None
    except (OSError, json.JSONDecodeError):
      return {}

  def acquire(self) -> 'WorkdirLock':
    if not parallel.is_writer():
      return self
    me = {'pid': os.getpid(), 'host': socket.gethostname()}
    tmp = f'{self.path}.{me["pid"]}.tmp'
    with open(tmp, 'w') as f:
      json.dump(me, f)
    try:
      for _ in range(3):
        try:
          os.link(tmp, self.path)  # atomic: fails if a lock exists, never half-written
          self._held = True
          return self
        except FileExistsError:
          pass
        holder = self._holder()
        if holder is None:
          continue
        pid, host = holder.get('pid'), holder.get('host')
        if host == me['host'] and isinstance(pid, int) and not self._alive(pid):
          logging.warning('%s: taking over the lock of process %d on %s, which no longer '
                          'exists (a killed run)', self.path, pid, host)
          self._remove_if(holder)
          continue
        if host != me['host'] or not isinstance(pid, int):
          raise RuntimeError(
              f'workdir {os.path.dirname(self.path)} is locked by process {pid} on host '
              f'{host} ({self.path}), which cannot be checked from {me["host"]}; delete the '
              'lock file if that run is gone')
        raise RuntimeError(
            f'workdir {os.path.dirname(self.path)} is in use by process {pid} on host {host} '
            f'(lock {self.path}); wait for it or stop it, or use another --workdir')
      raise RuntimeError(f'could not take the lock {self.path}')
    finally:
      os.remove(tmp)

  def _remove_if(self, holder: dict) -> None:
    if self._holder() == holder:
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass

  def release(self) -> None:
    if self._held:
      self._remove_if({'pid': os.getpid(), 'host': socket.gethostname()})
      self._held = False


def check_reproduction_folder(workdir: str, tiers: Any, tier: str, run_names: Any) -> None:
  """Refuses a ``python -m experiments.reproduce --workdir`` that is neither new, empty nor
  a reproduction's own: ``<workdir>`` may hold only folders of ``tiers``, ``<workdir>/<tier>``
  only folders of the runs ``run_names`` and ``xla_cache``; reads only. Each run's folder is
  checked when it runs (:func:`experiments.launch.run_experiment`)."""
  hint = 'Use a new or empty --workdir for the reproduction.'
  check_folder(workdir, lambda name, is_dir: is_dir and name in tiers,
               'reproduction workdir', hint)
  check_folder(
      os.path.join(workdir, tier),
      lambda name, is_dir: is_dir and (name in run_names or name == 'xla_cache'),
      f'reproduction folder of tier {tier!r}', hint)
