"""Figures written by the experiments (PNG files, matplotlib's Agg backend)."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from nflax import parallel


_image_sink: Callable[[str], None] | None = None


@contextlib.contextmanager
def images_to(sink: Callable[[str], None]) -> Iterator[None]:
  """While active, :func:`save` also hands the path of every PNG it writes to
  ``sink(path)`` (:func:`harness.workdir.finish_run`: the run's TensorBoard event file)."""
  global _image_sink
  previous, _image_sink = _image_sink, sink
  try:
    yield
  finally:
    _image_sink = previous


def save(fig: plt.Figure, path: str) -> str:
  """Every figure's one save path (process 0 of a multi-host job writes it); inside
  :func:`images_to`, the figure also goes to its sink."""
  if not parallel.is_writer():
    plt.close(fig)
    return path
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  if _image_sink is not None:
    _image_sink(path)
  return path


def scatter_panels(panels: Sequence[tuple[str, np.ndarray]], path: str,
                   colors: Sequence[np.ndarray | None] | None = None) -> str:
  """One scatter plot per ``(title, points (n, >=2))`` panel, same axes limits.

  Points with more than two coordinates are shown by their first two.
  """
  colors = colors or [None] * len(panels)
  everything = np.concatenate([p[:, :2] for _, p in panels])
  lo, hi = np.percentile(everything, 0.5, 0), np.percentile(everything, 99.5, 0)
  pad = 0.1 * (hi - lo)
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
  for ax, (title, points), color in zip(axes[0], panels, colors):
    if color is None:
      ax.scatter(points[:, 0], points[:, 1], s=3)
    else:
      ax.scatter(points[:, 0], points[:, 1], s=3, c=color, cmap='viridis')
    ax.set_title(title)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect('equal', adjustable='box')
  return save(fig, path)


def density_grid(log_prob: Callable[[np.ndarray], np.ndarray], points: np.ndarray,
                 resolution: int = 120, margin: float = 0.5) -> tuple[np.ndarray, ...]:
  """Evaluates ``log_prob`` on a grid around ``points`` (n, 2).

  Returns ``(xs (r,), ys (r,), log_density (r, r), cell_area)``.
  """
  lo, hi = points.min(0) - margin, points.max(0) + margin
  xs, ys = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
  grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
  values = np.asarray(log_prob(grid)).reshape(resolution, resolution)
  return xs, ys, values, (xs[1] - xs[0]) * (ys[1] - ys[0])


def density_panels(panels: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray]]],
                   points: np.ndarray, path: str) -> str:
  """Heat maps of 2-D densities (one per ``(title, log_prob)``) with ``points``."""
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
  for ax, (title, log_prob) in zip(axes[0], panels):
    xs, ys, values, _ = density_grid(log_prob, points)
    ax.pcolormesh(xs, ys, np.exp(values), shading='auto', cmap='magma')
    ax.scatter(points[:, 0], points[:, 1], s=1, c='cyan', alpha=0.3)
    ax.set_title(title)
    ax.set_aspect('equal', adjustable='box')
  return save(fig, path)


def replica_series(label: str, records: Sequence[dict], name: str,
                   seeds: Sequence[int] | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
  """:func:`curves` series of metric ``name`` from ``metrics.jsonl`` records, one per seed.

  A record of a multi-seed stage holds every replica's value under ``<name>/replicas``
  (:func:`harness.stages.run_stage`); a one-seed record only ``name``.
  """
  records = [r for r in records if name in r]
  steps = np.array([r['step'] for r in records])
  if not records or f'{name}/replicas' not in records[0]:
    return [(label, steps, np.array([r[name] for r in records], float))]
  values = np.array([r[f'{name}/replicas'] for r in records], float)
  seeds = list(range(values.shape[1])) if seeds is None else list(seeds)
  return [(f'{label}, seed {seed}', steps, values[:, index]) for index, seed in enumerate(seeds)]


def curves(series: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str, *,
           ylabel: str = 'loss', hline: float | None = None,
           title: str | None = None) -> str:
  """Line plot of ``(label, steps, values)`` series, optional horizontal line; with more
  than six series the legend goes beside the axes, where it hides no curve."""
  many = len(series) > 6
  fig, ax = plt.subplots(figsize=(9, 4) if many else (6, 4))
  for label, steps, values in series:
    ax.plot(steps, values, label=label)
  if hline is not None:
    ax.axhline(hline, color='k', lw=0.8, ls='--')
  ax.set_xlabel('step')
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  if many:
    ax.legend(fontsize='x-small', loc='upper left', bbox_to_anchor=(1.01, 1.0))
  else:
    ax.legend()
  return save(fig, path)


def seed_curves(groups: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str, *,
                ylabel: str = 'loss') -> str:
  """One colour per ``(label, steps (T,), values (T, R))`` group: each of its ``R`` seeds as
  a thin line and their mean as a thick one, so models trained alike compare at a glance."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for index, (label, steps, values) in enumerate(groups):
    colour = f'C{index % 10}'
    ax.plot(steps, values, color=colour, lw=0.7, alpha=0.5)
    ax.plot(steps, values.mean(axis=1), color=colour, lw=2.0,
            label=f'{label} (mean of {values.shape[1]})')
  ax.set_xlabel('step')
  ax.set_ylabel(ylabel)
  ax.legend(fontsize='small')
  return save(fig, path)


def image_rows(rows: Sequence[tuple[str, np.ndarray]], path: str, *,
               low: float = 0.0, high: float = 1.0) -> str:
  """A grid of grey-scale images, one labelled row per ``(title, images (n, H, W, 1))``.

  Rows may differ in length; values are shown on the fixed scale ``[low, high]``
  so that rows are comparable.
  """
  columns = max(len(images) for _, images in rows)
  fig, axes = plt.subplots(len(rows), columns, figsize=(0.9 * columns + 1.5, 1.0 * len(rows)),
                           squeeze=False)
  for (title, images), row_axes in zip(rows, axes):
    for index, ax in enumerate(row_axes):
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_visible(False)
      if index < len(images):
        ax.imshow(np.asarray(images[index])[..., 0], cmap='gray', vmin=low, vmax=high)
    row_axes[0].set_ylabel(title, rotation=0, ha='right', va='center', fontsize=8)
  return save(fig, path)
