"""The install: the core (the library) installs alone with what it imports, the lock file pins
every requirement, the core imports without distrax, the public modules declare ``__all__``."""

import ast
import functools
import importlib
import importlib.metadata
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import sysconfig

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LIBRARY = ('nflax', 'lrmf', 'alignflow', 'fdre')
"""The packages ``pip install .`` installs (the core); harness, experiments and configs run
from the checkout."""

NEEDS_EXTRA = {'nflax.distrax_views': 'distrax'}
"""Library modules that need an extra on top of the core's dependencies."""

PROJECT = 'nflax-alignment'
"""The distribution's name, which its extra ``test`` names to include ``experiments``."""

UNLOCKED_EXTRAS = ('benchmarks',)
"""Extras the lock leaves out: the benchmarks' PyTorch, pinned exactly in setup.py itself
(a CPU wheel; never in the core or test installs)."""


def _setup_keywords() -> dict:
  """The literal keywords of setup.py's ``setup()`` call, read without running it, and the
  ``include`` patterns of its ``find_packages`` call as ``'packages'``."""
  tree = ast.parse(open(os.path.join(ROOT, 'setup.py')).read())
  call = next(node for node in ast.walk(tree)
              if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'setup')
  keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords
              if k.arg in ('install_requires', 'extras_require')}
  packages = next(k.value for k in call.keywords if k.arg == 'packages')
  keywords['packages'] = next(ast.literal_eval(k.value) for k in packages.keywords
                              if k.arg == 'include')
  return keywords


def _setup_requirements() -> list[Requirement]:
  """install_requires and every locked extra of setup.py, without the extras' references
  to the project's own other extras."""
  keywords = _setup_keywords()
  specs = list(keywords['install_requires'])
  for name, extra in keywords['extras_require'].items():
    if name not in UNLOCKED_EXTRAS:
      specs += extra
  requirements = [Requirement(spec) for spec in specs]
  return [r for r in requirements if canonicalize_name(r.name) != PROJECT]


def test_only_the_library_is_installed_and_the_test_extra_holds_the_experiments():
  """``pip install .`` installs the four library packages and no top-level ``harness``,
  ``experiments`` or ``configs`` (names a user's own code has); ``.[test]`` includes
  ``.[experiments]``."""
  keywords = _setup_keywords()
  assert {pattern.split('.')[0] for pattern in keywords['packages']} == set(LIBRARY)
  assert f'{PROJECT}[experiments]' in keywords['extras_require']['test']


def _lock() -> dict[str, str]:
  pins = {}
  for line in open(os.path.join(ROOT, 'requirements', 'lock.txt')):
    line = line.split('#')[0].strip()
    if line:
      name, _, version = line.partition('==')
      assert version, f'lock line without an exact pin: {line!r}'
      pins[canonicalize_name(name)] = version
  return pins


def test_lock_pins_every_requirement_within_its_range():
  pins = _lock()
  for requirement in _setup_requirements():
    name = canonicalize_name(requirement.name)
    assert name in pins, f'{requirement.name} is in setup.py but not in requirements/lock.txt'
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f'lock pins {name}=={pins[name]}, outside setup.py range {requirement}')


def _closure(requirements: list[Requirement]) -> set[str]:
  """The installed distributions ``requirements`` pull, transitively (each one's own
  requirements as its metadata lists them, without those of its extras)."""
  names, todo = set(), list(requirements)
  while todo:
    requirement = todo.pop()
    name = canonicalize_name(requirement.name)
    if name in names or (requirement.marker and not requirement.marker.evaluate({'extra': ''})):
      continue
    try:
      requires = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
      continue
    names.add(name)
    todo += [Requirement(spec) for spec in requires]
  return names


@functools.cache
def _allowed(extras: tuple[str, ...] = ()) -> frozenset[str]:
  """The distributions the core's ``install_requires`` (and its ``extras``) pull."""
  keywords = _setup_keywords()
  specs = keywords['install_requires'] + [
      spec for extra in extras for spec in keywords['extras_require'][extra]]
  return frozenset(_closure([Requirement(spec) for spec in specs]))


@functools.cache
def _providers() -> dict[str, frozenset[str]]:
  """Top-level module name -> the installed distributions that provide it."""
  return {name: frozenset(canonicalize_name(d) for d in distributions)
          for name, distributions in importlib.metadata.packages_distributions().items()}


def _undeclared(top_level_names: set[str], extras: tuple[str, ...] = ()) -> dict[str, list]:
  """The top-level module names that are neither the standard library, the library's own
  packages nor in a distribution that the core's ``install_requires`` (and ``extras``)
  pull, with the distributions that provide them (``[]``: none installed)."""
  return {name: sorted(_providers().get(name, ()))
          for name in sorted(top_level_names - set(sys.stdlib_module_names) - set(LIBRARY))
          if not _providers().get(name, frozenset()) & _allowed(extras)}


def _standard_library_file(origin: str | None) -> bool:
  """Whether ``origin`` is a file of the standard library's folder (outside site-packages),
  for the modules there that ``sys.stdlib_module_names`` leaves out (``_sysconfigdata_*``)."""
  paths = sysconfig.get_paths()
  return bool(origin) and origin.startswith(paths['stdlib'] + os.sep) and not any(
      origin.startswith(paths[key] + os.sep) for key in ('purelib', 'platlib'))


def test_the_dependency_check_names_an_undeclared_import():
  """The checks below would catch a library module that imports scikit-learn."""
  assert _undeclared({'jax', 'flax', 'json', 'nflax', 'sklearn'}) == {
      'sklearn': ['scikit-learn']}


_IMPORT_THE_LIBRARY = """
import importlib, importlib.abc, json, pkgutil, sys
library, skip, hidden = json.loads(sys.argv[1])

class Hide(importlib.abc.MetaPathFinder):  # what a core-only install does not have
  def find_spec(self, name, path, target=None):
    if name.split('.')[0] in hidden:
      raise ModuleNotFoundError(f'{name}: not a dependency of the core', name=name)

sys.meta_path.insert(0, Hide())
before = set(sys.modules)
for package in library:
  for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + '.'):
    if info.name not in skip:
      importlib.import_module(info.name)
loaded = {}
for name in set(sys.modules) - before:
  spec = getattr(sys.modules[name], '__spec__', None)
  if spec is not None:
    loaded.setdefault(spec.name.split('.')[0], spec.origin)
print(json.dumps(loaded))
"""


def test_the_library_imports_only_its_declared_dependencies():
  """Every module of the library, imported in a fresh interpreter where the installed
  distributions outside the core's dependencies are hidden (as in a core-only install:
  the dependencies' optional imports fail), loads only the standard library, the library
  and what the core's ``install_requires`` pull. A module that needs an extra
  (:data:`NEEDS_EXTRA`) is checked by the next test and by the one without distrax."""
  hidden = sorted(name for name, distributions in _providers().items()
                  if name not in LIBRARY and not distributions & _allowed())
  argument = json.dumps([LIBRARY, sorted(NEEDS_EXTRA), hidden])
  result = subprocess.run([sys.executable, '-c', _IMPORT_THE_LIBRARY, argument], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-2000:]
  loaded = json.loads(result.stdout.splitlines()[-1])
  undeclared = {name: distributions for name, distributions in _undeclared(set(loaded)).items()
                if distributions or not _standard_library_file(loaded[name])}
  assert 'jax' in loaded and not undeclared, undeclared


def test_the_library_source_imports_only_its_declared_dependencies():
  """Every import statement of the library's source, those inside functions (imported
  when used) included, names the standard library, the library or what the core's
  ``install_requires`` pull, or what the extra of a module in :data:`NEEDS_EXTRA` adds."""
  for package in LIBRARY:
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
      for file in (f for f in files if f.endswith('.py')):
        path = os.path.join(folder, file)
        module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.').removesuffix('.__init__')
        names = set()
        for node in ast.walk(ast.parse(open(path).read())):
          if isinstance(node, ast.Import):
            names |= {alias.name.split('.')[0] for alias in node.names}
          elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split('.')[0])
        extras = (NEEDS_EXTRA[module],) if module in NEEDS_EXTRA else ()
        assert not _undeclared(names, extras), (module, _undeclared(names, extras))


def test_core_imports_without_distrax():
  """Every package but nflax.distrax_views imports with distrax and tfp unavailable."""
  code = '\n'.join([
      'import importlib.abc, sys',
      'class Block(importlib.abc.MetaPathFinder):',
      '  def find_spec(self, name, path, target=None):',
      "    if name.split('.')[0] in ('distrax', 'tensorflow_probability'):",
      "      raise ImportError('blocked ' + name)",
      'sys.meta_path.insert(0, Block())',
      'import nflax, nflax.densities, nflax.bijectors, nflax.engine, nflax.fitting',
      'import lrmf, alignflow, fdre, experiments.launch',
      'try:',
      '  import nflax.distrax_views',
      'except ImportError as err:',
      "  assert '.[distrax]' in str(err), err",
      'else:',
      "  raise AssertionError('nflax.distrax_views imported without distrax')",
  ])
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-2000:]


def test_the_library_imports_without_diffrax_and_ships_its_type_marker():
  """``import nflax`` (and the methods) does not pay for diffrax, which only FFJORD's ODE solve
  imports; every library package carries ``py.typed``."""
  code = ('import sys, nflax, nflax.bijectors, lrmf.algorithm, alignflow.training, fdre.featurize\n'
          "assert 'diffrax' not in sys.modules, 'diffrax imported by the library'")
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-2000:]
  for package in ('nflax', 'lrmf', 'alignflow', 'fdre'):
    assert os.path.exists(os.path.join(ROOT, package, 'py.typed')), package


def _modules_declaring_all() -> list[str]:
  names = []
  for package in LIBRARY:
    path = importlib.import_module(package).__path__
    names += [info.name for info in pkgutil.walk_packages(path, f'{package}.')]
  return names


@pytest.mark.parametrize('name', _modules_declaring_all())
def test_all_lists_the_public_names_a_star_import_gives(name):
  """A module's ``__all__`` names exist, hold every public class and function it defines and
  nothing it imports, and are exactly what ``from <module> import *`` binds; a subpackage's
  ``__all__`` re-exports names from its modules' ``__all__``."""
  if name == 'nflax.distrax_views':
    pytest.importorskip('distrax')
  module = importlib.import_module(name)
  listed = set(module.__all__)
  assert len(listed) == len(module.__all__), f'{name}.__all__ repeats a name'
  assert all(hasattr(module, attribute) for attribute in listed), name
  namespace = {}
  exec(f'from {name} import *', namespace)  # pylint: disable=exec-used
  assert set(namespace) - {'__builtins__'} == listed
  values = {attribute: getattr(module, attribute) for attribute in listed}
  if hasattr(module, '__path__'):
    for attribute, value in values.items():
      source = importlib.import_module(value.__module__)
      assert attribute in source.__all__, f'{name} re-exports {attribute}, not public there'
    return
  defined = {attribute for attribute, value in vars(module).items()
             if not attribute.startswith('_') and (inspect.isclass(value) or
                                                   inspect.isfunction(value))
             and value.__module__ == name}
  assert defined <= listed, f'{name}.__all__ misses {sorted(defined - listed)}'
  imported = {attribute for attribute, value in values.items()
              if (inspect.isclass(value) or inspect.isfunction(value))
              and value.__module__ != name}
  assert not imported, f'{name}.__all__ lists imported {sorted(imported)}'
