"""Evaluation of the AlignFlow translation experiments: paired errors, exact cycles, plots.

* :class:`PairedValidationMSE`: the paired validation MSE logged while a stage trains;
* :func:`cycle_report`: the cycle errors of trained translators (Prop. 1) in float64 and
  float32, in data space and between the flows' pre-processed spaces;
* :func:`paired_mses`, :func:`chance_levels`: Table 1's paired test MSE, and the MSE of
  translations that ignore the pairing;
* :func:`plot_translations`, :func:`plot_latent`, :func:`plot_validation_curves`: figures.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from alignflow import losses
from alignflow import model as model_lib
from experiments.alignflow import paired_data
from harness import plots
from harness import workdir as workdir_lib
from nflax import two_player


@dataclasses.dataclass(frozen=True, eq=False)
class PairedValidationMSE:
  """The engine's ``evaluate(state, (a, b))``: paired MSE averaged over both directions,
  ``(|G_{A->B}(a) - b|^2 + |G_{B->A}(b) - a|^2) / 2`` per pixel (Table 1's metric on the
  validation pairs), logged as ``val_loss`` after every evaluation of a stage."""
  model: nn.Module

  def __call__(self, state: two_player.TwoPlayerState, pairs) -> jax.Array:
    a, b = pairs
    variables = {'params': state.params, **state.model_state}
    fake_b = self.model.apply(variables, a, method=type(self.model).a_to_b)
    fake_a = self.model.apply(variables, b, method=type(self.model).b_to_a)
    return 0.5 * (losses.paired_mse(translated=fake_b, target=b)
                  + losses.paired_mse(translated=fake_a, target=a))


def translators(model: nn.Module, variables) -> tuple[Callable, Callable]:
  """Compiled ``(a_to_b, b_to_a)`` of a trained model (``(n, *event)`` in and out, in
  chunks of bounded memory: :func:`alignflow.model.translator`)."""
  a_to_b, b_to_a = (model_lib.translator(model, method)
                    for method in (type(model).a_to_b, type(model).b_to_a))
  return (lambda x: a_to_b(variables, x)), (lambda x: b_to_a(variables, x))


def _cycle_errors(cycled: np.ndarray, original: np.ndarray) -> tuple[float, float]:
  """Largest ``|cycled - original|`` over finite round trips, and the non-finite fraction.

  A round trip is non-finite when a translated pixel's post-processing sigmoid rounded
  to exactly 0 or 1 (see :func:`alignflow.model.round_trips`): a limit of the number
  format, not of the bijection, reported separately.
  """
  error = np.abs(cycled - original).reshape(len(original), -1)
  finite = np.all(np.isfinite(error), axis=1)
  largest = float(np.max(error[finite])) if finite.any() else float('nan')
  return largest, float(1.0 - np.mean(finite))


SIGMOID_LIMIT_FLOAT64 = 53 * math.log(2.0)
"""``|h|`` beyond which a logit post-processing loses a float64 round trip: ``sigmoid(h)``
lies within one rounding step (``2**-53``) of the interval's end, so ``logit(sigmoid(h))``
no longer gives ``h`` back (about 36.7)."""


def cycle_report(model: nn.Module, variables, a: np.ndarray, b: np.ndarray
                 ) -> tuple[list[dict[str, float]], model_lib.RoundTrips]:
  """Exact cycle consistency (Prop. 1) of trained translators, both ways, for R replicas.

  ``variables`` (every leaf), ``a`` and ``b`` carry a leading replica axis ``R``; each
  direction is compiled once for all replicas in each precision
  (:func:`alignflow.model.round_trips`). Per replica, ``<x>`` in ``a``, ``b``:

  * ``max_cycle_error_float64_<x>``: the largest ``|G_{B->A}(G_{A->B}(a)) - a|`` (and
    ``B -> A -> B``) over finite round trips computed in float64, and
    ``non_finite_cycle_fraction_float64_<x>`` the share that is not finite even there; the
    same in the model's own float32 (``..._float32_<x>``; a saturated sigmoid may also come
    back finite but wrong, as ``sigmoid(inf) = 1``);
  * AlignFlow only: ``max_cycle_error_flow_float64_<x>``, the same round trip between
    pre-processed spaces (:meth:`alignflow.model.AlignFlow.preprocessed_a_to_b`: the flows
    alone, the bijection Prop. 1 is about), and, with a pre-processing,
    ``max_abs_translated_preprocessed_<x>``, the largest ``|preprocess(G(x))|`` of a
    translation, and ``saturated_translation_fraction_<x>``, the share of translations with
    a value beyond :data:`SIGMOID_LIMIT_FLOAT64`: their data-space round trips are lost to
    float64's rounding of the post-processing, not to the flows.

  Returns:
    ``(reports, translated)``: one dict per replica, and the float32 :class:`RoundTrips`
    (``(R, n, *event)`` arrays), whose translations serve the paired errors.
  """
  reports = [{} for _ in range(len(a))]

  def add(name, trips):
    for replica, report in enumerate(reports):
      for start, x, again in (('a', trips.a, trips.a_again), ('b', trips.b, trips.b_again)):
        error, non_finite = _cycle_errors(again[replica], x[replica])
        report[f'max_cycle_error_{name}_{start}'] = error
        if name != 'flow_float64':
          report[f'non_finite_cycle_fraction_{name}_{start}'] = non_finite

  for precision, float64 in (('float64', True), ('float32', False)):
    trips = model_lib.round_trips(model, variables, a, b, float64=float64, replicas=True)
    add(precision, trips)
    if not float64:
      translated = trips
  if isinstance(model, model_lib.AlignFlow):
    flow_trips = model_lib.round_trips(model, variables, a, b, float64=True, replicas=True,
                                       preprocessed=True)
    add('flow_float64', flow_trips)
    if model.preprocess is not None:
      for replica, report in enumerate(reports):
        for start, image in (('a', flow_trips.a_to_b), ('b', flow_trips.b_to_a)):
          largest = np.abs(image[replica]).reshape(len(image[replica]), -1).max(axis=1)
          report[f'max_abs_translated_preprocessed_{start}'] = float(largest.max())
          report[f'saturated_translation_fraction_{start}'] = float(
              np.mean(largest > SIGMOID_LIMIT_FLOAT64))
  return reports, translated


def paired_mses(translated: model_lib.RoundTrips, a: np.ndarray, b: np.ndarray,
                rows: slice) -> dict[str, float]:
  """Table 1's paired MSE both ways on ``rows`` of one replica's translations:
  ``mse_a_to_b`` of ``G_{A->B}(a)`` to ``b`` and ``mse_b_to_a`` of ``G_{B->A}(b)`` to ``a``."""
  return {'mse_a_to_b': float(losses.paired_mse(translated=translated.a_to_b[rows],
                                                target=b[rows])),
          'mse_b_to_a': float(losses.paired_mse(translated=translated.b_to_a[rows],
                                                target=a[rows]))}


def chance_levels(data: dict[str, np.ndarray]) -> dict[str, float]:
  """Paired test MSEs of translations that ignore the pairing, for one seed's ``data``
  (:func:`~experiments.alignflow.paired_data.load_paired_domains`).

  ``mse_identity/a_to_b``: ``a`` left as it is; per direction ``mse_mean_image/<direction>``:
  every test example sent to the mean training example of the other domain, and
  ``mse_wrong_pair/<direction>``: to the true pair of another test example (a plausible
  translation with the wrong pairing; ``np.roll`` by one pairs each with its neighbour's).
  """
  result = {'mse_identity/a_to_b': float(losses.paired_mse(translated=data['test_a'],
                                                           target=data['test_b']))}
  for direction, source, target in (('a_to_b', 'train_b', 'test_b'),
                                    ('b_to_a', 'train_a', 'test_a')):
    truth = data[target]
    result[f'mse_mean_image/{direction}'] = float(losses.paired_mse(
        translated=np.broadcast_to(data[source].mean(0), truth.shape), target=truth))
    result[f'mse_wrong_pair/{direction}'] = float(losses.paired_mse(
        translated=np.roll(truth, 1, axis=0), target=truth))
  return result


def plot_translations(stage, a_to_b, b_to_a, data, out_dir) -> str:
  """Test examples of both domains and their translations by ``a_to_b`` and ``b_to_a``:
  image rows for images, scatter plots coloured by the first coordinate for points."""
  a, b = data['test_a'], data['test_b']
  path = os.path.join(out_dir, f'translation_{stage}.png')
  if paired_data.is_image(a.shape[1:]):
    k = 10
    return plots.image_rows([('A', a[:k]), ('B (the true pairs of A)', b[:k]),
                             (f'G_A->B(A) [{stage}]', np.asarray(a_to_b(a[:k]))),
                             (f'G_B->A(B) [{stage}]', np.asarray(b_to_a(b[:k])))], path,
                            low=-1.0, high=1.0)
  colour = a[:, 0]
  return plots.scatter_panels(
      [('A (test)', a), ('B (test)', b), (f'G_A->B(A) [{stage}]', np.asarray(a_to_b(a))),
       (f'G_B->A(B) [{stage}]', np.asarray(b_to_a(b)))], path,
      colors=[colour, colour, colour, colour])


def plot_latent(stage, model, variables, data, key, out_dir) -> list[str]:
  """Paired samples from ``Z`` and polar interpolations decoded into both domains."""
  event_shape = data['test_a'].shape[1:]
  z = jax.random.normal(key, (10 if paired_data.is_image(event_shape) else 1000, *event_shape))
  sample_a, sample_b = model.apply(variables, z, method=model_lib.AlignFlow.sample_pairs)
  z_ends, _ = model.apply(variables, data['test_a'][:2], method=model_lib.AlignFlow.encode_a)
  path_z = model_lib.polar_interpolation(z1=z_ends[0], z2=z_ends[1],
                                         angles=jnp.linspace(0.0, jnp.pi / 2, 10))
  along_a = model.apply(variables, path_z, method=model_lib.AlignFlow.decode_a)[0]
  along_b = model.apply(variables, path_z, method=model_lib.AlignFlow.decode_b)[0]
  if paired_data.is_image(event_shape):
    return [
        plots.image_rows([('z ~ p_Z -> A', np.asarray(sample_a)),
                          ('same z -> B', np.asarray(sample_b))],
                         os.path.join(out_dir, f'paired_samples_{stage}.png'), low=-1.0, high=1.0),
        plots.image_rows([('interpolation in Z -> A', np.asarray(along_a)),
                          ('same latents -> B', np.asarray(along_b))],
                         os.path.join(out_dir, f'interpolation_{stage}.png'), low=-1.0, high=1.0)]
  colour = np.asarray(z[:, 0])
  return [plots.scatter_panels(
      [('z ~ p_Z', np.asarray(z)), ('G_Z->A(z)', np.asarray(sample_a)),
       ('G_Z->B(z)', np.asarray(sample_b))],
      os.path.join(out_dir, f'paired_samples_{stage}.png'), colors=[colour] * 3)]


def plot_validation_curves(workdir: str, stages: list[str], path: str) -> None:
  """Paired validation MSE (both directions averaged) against steps, every stage and seed in
  one figure (a colour per stage, its seeds thin, their mean thick): AlignFlow's modes and
  CycleGAN trained alike, side by side."""
  groups = []
  for stage in stages:
    records = [r for r in workdir_lib.read_metrics(workdir, stage) if 'val_loss' in r]
    if records:
      values = np.array([r.get('val_loss/replicas', [r['val_loss']]) for r in records], float)
      groups.append((stage, np.array([r['step'] for r in records]), values))
  if groups:
    plots.seed_curves(groups, path, ylabel='paired validation MSE')
