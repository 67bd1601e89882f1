"""Algorithm 1 (featurized DRE) and the training modes of Sec. 3.3.

Algorithm 1: fit a flow ``f`` by maximum likelihood on the union of ``D_p`` and
``D_q`` (:func:`fit_flow_on_mixture`), encode both sets, run any base
estimator on the encodings, and compose (:func:`compose`): by Lemma 1,
``p(x) / q(x) = p'(f(x)) / q'(f(x))``, so ``r_z o f`` is a ratio on input space.

Training modes of the probabilistic-classifier estimator (:func:`fit_log_ratio`):

* ``'baseline'``: a classifier on ``x`` (no flow);
* ``'separate'``: Algorithm 1 - flow first, then a classifier on ``z = f(x)``;
* ``'joint'``: flow and classifier together, ``alpha L_sup + (1 - alpha) L_flow`` (Eq. 1);
* ``'discriminative'``: the classifier ``c(f(x))`` with the flow inside, trained
  by the logistic loss only (Eq. 1 with ``alpha = 1``).

Training runs through a :class:`nflax.fitting.StageRunner` (stages ``'flow'``,
``'classifier'``, ``'joint'``) so callers choose optimiser, budgets and
checkpointing; :func:`nflax.fitting.fit_runner` is the plain in-memory one.

Everything that trains is *replicated* (:mod:`nflax.engine`): the sample sets carry a
leading replica axis ``R`` (``(R, n, *event)``: independent seeds, each its own data draw),
keys are ``(R, 2)``, initialisation is ``jax.vmap(module.init)`` over the replicas, and the
fitted maps take and return arrays with that axis (``(R, n, *event) -> (R, n)``). One
replica is ``R = 1`` (:func:`nflax.engine.add_replica_axis`, ``x[None]``). The modules,
objectives and base estimators (:mod:`fdre.estimators`) stay per-replica pure functions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdre import estimators
from nflax import densities, fitting, nets
from nflax.bijectors.base import Bijector

__all__ = [
    'MODES', 'RatioClassifier', 'FlowClassifier', 'hybrid_loss', 'classifier_objective',
    'hybrid_objective', 'labelled_union', 'fit_flow_on_mixture', 'encoder', 'compose',
    'fit_classifier', 'FittedRatio', 'fit_log_ratio'
]

Array = jax.Array
PyTree = Any

MODES = ('baseline', 'separate', 'joint', 'discriminative')
"""Training modes of :func:`fit_log_ratio`."""


class RatioClassifier(nn.Module):
  """MLP classifier of App. E.2 (Table 5): ReLU layers of ``hidden``, one logit.

  Maps ``(batch, *event)`` (flattened) to ``(batch,)`` logits of ``P(y = 1 | x)``.
  """

  hidden: Sequence[int] = (100, 100, 100)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    flat = x.reshape(x.shape[0], -1)
    return nets.MLP(tuple(self.hidden), 1, zero_init_output=False)(flat)[:, 0]


class FlowClassifier(nn.Module):
  """A classifier on a flow's features, ``c(f(x))``, with the flow density alongside.

  ``__call__(x) -> (logits (batch,), log_prob (batch,))`` where
  ``log_prob = log base(f(x)) + log|det df/dx|``. Parameters are
  ``{'flow': ..., 'classifier': ...}``; the ``'flow'`` subtree is the same as
  that of a :class:`nflax.densities.FlowDensity` with the same flow.

  Attributes:
    flow: the bijector ``f`` (data -> latent).
    base: the latent density (usually ``StandardNormal``).
    classifier: maps features to logits.
  """

  flow: Bijector
  base: densities.Density
  classifier: nn.Module

  def __call__(self, x: Array) -> tuple[Array, Array]:
    z, log_det = self.flow.forward_and_log_det(x)
    return self.classifier(z), self.base.log_prob(z) + log_det

  def encode(self, x: Array) -> Array:
    """``z = f(x)``."""
    return self.flow.forward(x)

  def decode(self, z: Array) -> Array:
    """``x = f^{-1}(z)``."""
    return self.flow.inverse(z)


def hybrid_loss(*, logits: Array, labels: Array, log_prob: Array, alpha: float) -> Array:
  """``L_joint = alpha L_sup + (1 - alpha) L_flow`` (Eq. 1).

  ``L_sup`` is :func:`fdre.estimators.logistic_loss`, ``L_flow = -mean log p(x)``
  the flow's negative log-likelihood on the same batch (both sets). ``alpha = 1``
  is discriminative training, ``alpha = 0`` maximum likelihood only.

  Args:
    logits: ``(batch,)`` classifier logits.
    labels: ``(batch,)`` labels (1 for ``D_p``, 0 for ``D_q``).
    log_prob: ``(batch,)`` flow log-densities of the inputs.
    alpha: weight in ``[0, 1]``.
  """
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f'alpha must lie in [0, 1], got {alpha}')
  supervised = estimators.logistic_loss(logits=logits, labels=labels)
  if alpha == 1.0:
    return supervised
  return alpha * supervised - (1.0 - alpha) * jnp.mean(log_prob)


def _apply(module: nn.Module, params: PyTree, model_state: PyTree, x: Array, train: bool):
  """``module.apply`` with batch statistics updated in training calls; returns (out, state)."""
  variables = {'params': params, **model_state}
  if train and model_state:
    return module.apply(variables, x, mutable=list(model_state))
  return module.apply(variables, x), model_state


def classifier_objective(classifier: nn.Module, eval_batch_size: int = 1024) -> fitting.Objective:
  """Logistic loss of ``classifier`` on ``{'x', 'label'}`` batches (baseline, separate)."""
  def per_example(params, model_state, batch, train):
    logits, state = _apply(classifier, params, model_state, batch['x'], train)
    return estimators.binary_cross_entropy(logits=logits, labels=batch['label']), state

  def train_loss(params, model_state, batch, key):
    del key
    losses, state = per_example(params, model_state, batch, True)
    return jnp.mean(losses), state

  def eval_loss(params, model_state, data):
    return fitting.mean_over_batches(
        lambda batch: per_example(params, model_state, batch, False)[0], data, eval_batch_size)

  return fitting.Objective(train_loss, eval_loss)


def hybrid_objective(model: FlowClassifier, *, alpha: float,
                     eval_batch_size: int = 1024) -> fitting.Objective:
  """:func:`hybrid_loss` of a :class:`FlowClassifier` on ``{'x', 'label'}`` batches.

  The held-out loss is the same ``alpha L_sup + (1 - alpha) L_flow`` on the
  validation set (model selection on validation data).
  """
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f'alpha must lie in [0, 1], got {alpha}')

  def train_loss(params, model_state, batch, key):
    del key
    (logits, log_prob), state = _apply(model, params, model_state, batch['x'], True)
    return hybrid_loss(logits=logits, labels=batch['label'], log_prob=log_prob,
                       alpha=alpha), state

  def per_example(params, model_state, batch):
    logits, log_prob = _apply(model, params, model_state, batch['x'], False)[0]
    supervised = estimators.binary_cross_entropy(logits=logits, labels=batch['label'])
    return supervised if alpha == 1.0 else alpha * supervised - (1 - alpha) * log_prob

  def eval_loss(params, model_state, data):
    return fitting.mean_over_batches(
        lambda batch: per_example(params, model_state, batch), data, eval_batch_size)

  return fitting.Objective(train_loss, eval_loss)


def labelled_union(p: Array, q: Array) -> dict[str, np.ndarray]:
  """``{'x': [p; q], 'label': [1...1, 0...0]}``, the classifier's data set, per replica.

  Args:
    p: ``(R, n_p, *event)`` samples of ``p`` (label 1).
    q: ``(R, n_q, *event)`` samples of ``q`` (label 0).

  Returns:
    ``{'x': (R, n_p + n_q, *event), 'label': (R, n_p + n_q)}`` float32.
  """
  p, q = np.asarray(p, np.float32), np.asarray(q, np.float32)
  if p.ndim < 2 or p.shape[0] != q.shape[0] or p.shape[2:] != q.shape[2:]:
    raise ValueError(f'D_p and D_q need shapes (R, n, *event) with the same replicas R and '
                     f'event shape, got {p.shape} and {q.shape}')
  count = p.shape[0]
  labels = np.concatenate([np.ones(p.shape[1], np.float32), np.zeros(q.shape[1], np.float32)])
  return {'x': np.concatenate([p, q], axis=1),
          'label': np.broadcast_to(labels, (count, len(labels))).copy()}


def _split_keys(keys: Array, num: int) -> tuple[Array, ...]:
  """``(R, 2)`` keys -> ``num`` arrays of ``(R, 2)``: ``jax.random.split(keys[r], num)``."""
  return tuple(jnp.moveaxis(jax.vmap(lambda key: jax.random.split(key, num))(keys), 1, 0))


def _init(module: nn.Module, keys: Array, x: Array) -> PyTree:
  """``jax.vmap(module.init)``: replicated variables from ``(R, 2)`` keys, ``(R, b, *event)``."""
  return jax.jit(jax.vmap(module.init))(keys, jnp.asarray(x))


def _variables(fitted: fitting.FitResult) -> PyTree:
  """Replicated Flax variables ``{'params': ..., **model_state}`` of a fit."""
  return {'params': fitted.params, **fitted.model_state}


def _replicated(module: nn.Module, variables: PyTree, method=None) -> Callable[[Array], Array]:
  """``x (R, n, ...) -> module.apply(variables[r], x[r])`` per replica (evaluation mode), compiled."""
  apply = jax.jit(jax.vmap(lambda v, x: module.apply(v, x, method=method)))
  return lambda x: apply(variables, jnp.asarray(x))


def fit_flow_on_mixture(*, density: densities.FlowDensity, p_train: Array, q_train: Array,
                        p_val: Array, q_val: Array, keys: Array,
                        runner: fitting.StageRunner) -> fitting.FitResult:
  """Algorithm 1, lines 1-3: maximum likelihood of ``density`` on ``D = D_p u D_q``, per replica.

  Stage ``'flow'``; the validation set is the union of ``p_val`` and ``q_val``.

  Args:
    density: the flow density ``h(x) = base(f(x)) |det df/dx|``.
    p_train, q_train: ``(R, n_p, *event)``, ``(R, n_q, *event)`` training samples.
    p_val, q_val: ``(R, m_p, *event)``, ``(R, m_q, *event)`` validation samples.
    keys: ``(R, 2)`` the replicas' keys (initialisation and training).
    runner: runs the stage.

  Returns:
    The runner's :class:`~nflax.fitting.FitResult`: parameters with the leading axis ``R``.
  """
  train = {'x': labelled_union(p_train, q_train)['x']}
  val = {'x': labelled_union(p_val, q_val)['x']}
  key_init, key_fit = _split_keys(keys, 2)
  variables = _init(density, key_init, train['x'][:, :256])
  nll = fitting.nll_objective(density)
  objective = fitting.Objective(
      lambda params, state, batch, k: nll.train_loss(params, state, batch['x'], k),
      lambda params, state, data: nll.eval_loss(params, state, data['x']))
  return runner('flow', objective, variables, train, val, key_fit)


def encoder(density: densities.FlowDensity, variables: PyTree) -> Callable[[Array], Array]:
  """The fitted feature maps ``x (R, n, *event) -> z = f_r(x_r) (R, n, *event)``, compiled.

  ``variables``: replicated Flax variables (leading axis ``R``); evaluation mode.
  """
  return _replicated(density, variables, densities.FlowDensity.encode)


def compose(log_ratio_z: Callable[[Array], Array],
            encode: Callable[[Array], Array]) -> Callable[[Array], Array]:
  """Algorithm 1, line 6 / Lemma 1: ``log r(x) = log r_z(f(x))`` on input space.

  Shape-agnostic: replicated maps compose to a replicated map.
  """
  return lambda x: log_ratio_z(encode(x))


def fit_classifier(*, classifier: nn.Module, train: dict[str, np.ndarray],
                   val: dict[str, np.ndarray], keys: Array, runner: fitting.StageRunner,
                   n_p: int, n_q: int) -> tuple[Callable[[Array], Array], PyTree]:
  """Stage ``'classifier'``: ``classifier`` by the logistic loss on ``{'x', 'label'}`` sets.

  The probabilistic-classification estimator of Sec. 2.2 on any points (``x`` for the
  baseline, ``z = f(x)`` for Algorithm 1, lines 4-5). the labels may be soft (in ``[0, 1]``):
  the cross-entropy with the Bayes posterior ``P(y = 1 | x)`` as the label has that
  posterior's logit as its minimiser, which is how a control trains the same classifier on
  the true ratio.

  Args:
    classifier: logits module.
    train, val: ``{'x': (R, n, *event), 'label': (R, n)}`` (:func:`labelled_union`).
    keys: ``(R, 2, 2)``: per replica the initialisation key and the training key.
    runner: runs the stage.
    n_p, n_q: the training-set sizes of ``p`` and ``q`` (the prior shift of the logits).

  Returns:
    ``(log_ratio, variables)``: ``x (R, n, *event) -> (R, n)`` the estimate of ``log r``
    (compiled, evaluation mode) and the fitted replicated Flax variables.
  """
  keys = jnp.asarray(keys)
  init = _init(classifier, keys[:, 0], train['x'][:, :8])
  fitted = runner('classifier', classifier_objective(classifier), init, train, val, keys[:, 1])
  variables = _variables(fitted)
  logits = _replicated(classifier, variables)
  return (lambda x: estimators.classifier_log_ratio(logits=logits(x), n_p=n_p, n_q=n_q),
          variables)


@dataclasses.dataclass
class FittedRatio:
  """A fitted log-ratio estimator of one training mode, for every replica.

  Every map takes ``(R, n, *event)`` (replica ``r``'s points in row ``r``) and applies
  replica ``r``'s fit to them; :func:`nflax.engine.replica` gives one replica's variables.

  Attributes:
    mode: one of :data:`MODES`.
    log_ratio: ``x (R, n, *event) -> (R, n)`` estimates of ``log p(x)/q(x)``
      (corrected for the set sizes), compiled.
    encode: ``x (R, n, *event) -> z (R, n, *event)``, the feature map (``None`` for
      ``'baseline'``).
    decode: ``z (R, n, *event) -> x = f^{-1}(z)`` (``None`` for ``'baseline'``).
    log_prob: ``x (R, n, *event) -> (R, n)`` ``log h(x)`` of the flow (``None`` for
      ``'baseline'``).
    variables: the fitted replicated Flax variables by stage (leading axis ``R``).
  """
  mode: str
  log_ratio: Callable[[Array], Array]
  encode: Callable[[Array], Array] | None
  decode: Callable[[Array], Array] | None
  log_prob: Callable[[Array], Array] | None
  variables: dict[str, PyTree]


def fit_log_ratio(*, mode: str, flow: Bijector, classifier: nn.Module, p_train: Array,
                  q_train: Array, p_val: Array, q_val: Array, keys: Array,
                  runner: fitting.StageRunner, alpha: float = 0.5) -> FittedRatio:
  """Trains a probabilistic-classifier ratio estimator in one of the modes of Sec. 3.3.

  Every replica (leading axis ``R``) trains on its own samples from its own key, side by
  side in one program per stage; replica ``r`` gives the numbers of a one-replica call on
  ``p_train[r:r + 1], ..., keys[r:r + 1]`` (up to float reassociation).

  Args:
    mode: one of :data:`MODES`.
    flow: the flow ``f`` (unused for ``'baseline'``).
    classifier: logits module (e.g. :class:`RatioClassifier`).
    p_train, q_train: ``(R, n_p, *event)``, ``(R, n_q, *event)`` samples (label 1 / 0).
    p_val, q_val: ``(R, m_p, *event)``, ``(R, m_q, *event)`` validation samples (early
      stopping, best parameters).
    keys: ``(R, 2)`` the replicas' PRNG keys.
    runner: runs the stages (``'flow'`` + ``'classifier'`` for separate (Algorithm 1),
      ``'classifier'`` for baseline, ``'joint'`` for joint/discriminative (Eq. 1)).
    alpha: Eq. 1 weight of ``L_sup`` for ``'joint'`` (ignored otherwise).

  Returns:
    A :class:`FittedRatio` whose ``log_ratio`` includes ``log(n_q / n_p)``.
  """
  if mode not in MODES:
    raise ValueError(f'unknown training mode {mode!r}; available: {MODES}')
  keys = jnp.asarray(keys)
  if keys.ndim != 2 or np.ndim(p_train) < 2 or keys.shape[0] != np.shape(p_train)[0]:
    raise ValueError(f'fit_log_ratio needs (R, 2) keys and (R, n, *event) samples, got keys '
                     f'{keys.shape} and p_train {np.shape(p_train)}')
  n_p, n_q = np.shape(p_train)[1], np.shape(q_train)[1]
  base = densities.StandardNormal(tuple(np.shape(p_train)[2:]))
  key_flow, key_init, key_fit = _split_keys(keys, 3)
  train, val = labelled_union(p_train, q_train), labelled_union(p_val, q_val)
  if mode in ('baseline', 'separate'):
    variables: dict[str, PyTree] = {}
    encode = decode = log_prob = None
    if mode == 'separate':
      density = densities.FlowDensity(flow=flow, base=base)
      fitted = fit_flow_on_mixture(density=density, p_train=p_train, q_train=q_train,
                                   p_val=p_val, q_val=q_val, keys=key_flow, runner=runner)
      variables['flow'] = _variables(fitted)
      encode = encoder(density, variables['flow'])
      decode = _replicated(density, variables['flow'], densities.FlowDensity.decode)
      log_prob = _replicated(density, variables['flow'])
      train = {**train, 'x': np.asarray(encode(train['x']))}
      val = {**val, 'x': np.asarray(encode(val['x']))}
    log_ratio_z, variables['classifier'] = fit_classifier(
        classifier=classifier, train=train, val=val, keys=jnp.stack([key_init, key_fit], 1),
        runner=runner, n_p=n_p, n_q=n_q)
    log_ratio = log_ratio_z if encode is None else compose(log_ratio_z, encode)
    return FittedRatio(mode, log_ratio, encode, decode, log_prob, variables)
  model = FlowClassifier(flow=flow, base=base, classifier=classifier)
  weight = 1.0 if mode == 'discriminative' else alpha
  init = _init(model, key_init, train['x'][:, :256])
  fitted = runner('joint', hybrid_objective(model, alpha=weight), init, train, val, key_fit)
  joint_vars = _variables(fitted)
  forward = _replicated(model, joint_vars)
  encode = _replicated(model, joint_vars, FlowClassifier.encode)
  decode = _replicated(model, joint_vars, FlowClassifier.decode)
  log_ratio = lambda x: estimators.classifier_log_ratio(logits=forward(x)[0], n_p=n_p, n_q=n_q)
  return FittedRatio(mode, log_ratio, encode, decode, lambda x: forward(x)[1],
                     {'joint': joint_vars})
