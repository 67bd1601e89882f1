"""The AlignFlow model: two flows through one shared latent space (AlignFlow Sec. 3.2).

Domains ``A`` and ``B`` (same event shape) are each modelled by an invertible map to a
latent space ``Z`` with prior ``p_Z = N(0, I)``; in the ``nflax`` orientation the forward
direction is data -> latent:

  G_{A->Z} = shared o private_a o preprocess,   G_{B->Z} = shared o private_b o preprocess,

so ``G_{Z->A} = G_{A->Z}^{-1}``. ``shared`` holds the layers whose parameters the two
flows share (the config choice "how many layers the two share"; ``None`` for none),
``private_a`` / ``private_b`` the rest. ``preprocess`` is a fixed bijection (e.g.
``[-1, 1] -> [0, 1] -> logit``) so that the whole data -> data map stays a bijection and
Prop. 1 (exact cycle consistency) holds in data space, post-processing included.

Translation (Eq. 3-5): ``G_{A->B} = G_{Z->B} o G_{A->Z}`` and ``G_{B->A} = G_{A->B}^{-1}``.
Densities (Eq. 2): ``log p_A(a) = log p_Z(G_{A->Z}(a)) + log|det dG_{A->Z}/da|``.
Paired sampling (Sec. 3.4): ``(G_{Z->A}(z), G_{Z->B}(z))`` with ``z ~ p_Z``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nflax import fitting
from nflax.bijectors import Bijector

__all__ = ['AlignFlow', 'polar_interpolation', 'RoundTrips', 'translator', 'round_trips']

Array = jax.Array

_LOG_2PI = math.log(2.0 * math.pi)


def _standard_normal_log_prob(z: Array) -> Array:
  """``log N(z; 0, I)`` summed over the event axes of ``(batch, *event)``; ``(batch,)``."""
  flat = z.reshape(z.shape[0], -1)
  return -0.5 * jnp.sum(flat**2, -1) - 0.5 * flat.shape[-1] * _LOG_2PI


class AlignFlow(Bijector):
  """Two flows ``G_{A->Z}``, ``G_{B->Z}`` with a shared latent prior ``N(0, I)``.

  As a :class:`~nflax.bijectors.Bijector` the module is ``G_{A->B}`` (forward: A -> B,
  inverse: B -> A) with its log-determinant, so it composes with the rest of ``nflax``.
  Inputs of every method are ``(batch, *event_shape)``; log-densities and
  log-determinants are ``(batch,)``.

  ``__call__(a, b)`` returns ``(log p_A(a), log p_B(b))`` and creates every parameter:
  initialise with ``model.init(key, a, b)`` on a batch of each domain (ActNorm layers
  take their data-dependent initial values from it; the shared layers see the latents
  of ``a``).

  Attributes:
    private_a: flow of domain A before the shared layers (data -> latent direction).
    private_b: flow of domain B before the shared layers.
    shared: layers used by both flows after the private ones, or ``None``.
    preprocess: fixed bijection applied to the data of both domains first, or ``None``.
  """

  private_a: Bijector
  private_b: Bijector
  shared: Bijector | None = None
  preprocess: Bijector | None = None

  def _layers(self, private: Bijector, preprocessed: bool = False) -> list[Bijector]:
    """The layers of ``G_{X->Z}`` in application order (data -> latent); without the fixed
    pre-processing when the inputs are ``preprocessed`` already."""
    first = None if preprocessed else self.preprocess
    return [layer for layer in (first, private, self.shared) if layer is not None]

  def _encode(self, private: Bijector, x: Array,
              preprocessed: bool = False) -> tuple[Array, Array]:
    x = jnp.asarray(x)
    log_det = jnp.zeros(x.shape[:1], x.dtype)
    for layer in self._layers(private, preprocessed):
      x, layer_log_det = layer.forward_and_log_det(x)
      log_det = log_det + layer_log_det
    return x, log_det

  def _decode(self, private: Bijector, z: Array,
              preprocessed: bool = False) -> tuple[Array, Array]:
    z = jnp.asarray(z)
    log_det = jnp.zeros(z.shape[:1], z.dtype)
    for layer in reversed(self._layers(private, preprocessed)):
      z, layer_log_det = layer.inverse_and_log_det(z)
      log_det = log_det + layer_log_det
    return z, log_det

  def encode_a(self, a: Array) -> tuple[Array, Array]:
    """``z = G_{A->Z}(a)`` and ``log|det dz/da|``."""
    return self._encode(self.private_a, a)

  def encode_b(self, b: Array) -> tuple[Array, Array]:
    """``z = G_{B->Z}(b)`` and ``log|det dz/db|``."""
    return self._encode(self.private_b, b)

  def decode_a(self, z: Array) -> tuple[Array, Array]:
    """``a = G_{Z->A}(z)`` and ``log|det da/dz|``."""
    return self._decode(self.private_a, z)

  def decode_b(self, z: Array) -> tuple[Array, Array]:
    """``b = G_{Z->B}(z)`` and ``log|det db/dz|``."""
    return self._decode(self.private_b, z)

  def log_prob_a(self, a: Array) -> Array:
    """``log p_A(a) = log p_Z(G_{A->Z}(a)) + log|det dG_{A->Z}/da|`` (Eq. 2)."""
    z, log_det = self.encode_a(a)
    return _standard_normal_log_prob(z) + log_det

  def log_prob_b(self, b: Array) -> Array:
    """``log p_B(b) = log p_Z(G_{B->Z}(b)) + log|det dG_{B->Z}/db|`` (Eq. 2)."""
    z, log_det = self.encode_b(b)
    return _standard_normal_log_prob(z) + log_det

  def forward_and_log_det(self, a: Array) -> tuple[Array, Array]:
    """``G_{A->B}(a) = G_{Z->B}(G_{A->Z}(a))`` (Eq. 3) and its log-determinant."""
    z, log_det_in = self.encode_a(a)
    b, log_det_out = self.decode_b(z)
    return b, log_det_in + log_det_out

  def inverse_and_log_det(self, b: Array) -> tuple[Array, Array]:
    """``G_{B->A}(b) = G_{Z->A}(G_{B->Z}(b))`` (Eq. 4, 5) and its log-determinant."""
    z, log_det_in = self.encode_b(b)
    a, log_det_out = self.decode_a(z)
    return a, log_det_in + log_det_out

  def a_to_b(self, a: Array) -> Array:
    """Translation ``G_{A->B}(a)``."""
    return self.forward_and_log_det(a)[0]

  def b_to_a(self, b: Array) -> Array:
    """Translation ``G_{B->A}(b)``."""
    return self.inverse_and_log_det(b)[0]

  def preprocessed(self, x: Array) -> Array:
    """``h = preprocess(x)``, the fixed pre-processing of either domain (``x`` itself when
    there is none); ``(batch, *event)``. The flows' own layers act on ``h``."""
    return x if self.preprocess is None else self.preprocess.forward(x)

  def preprocessed_a_to_b(self, h: Array) -> Array:
    """``G_{A->B}`` between pre-processed spaces, ``h_a = preprocess(a) -> preprocess(G_{A->B}(a))``.

    The translation without the fixed post-processing ``preprocess^{-1}``: with a logit
    pre-processing this is the map between logit images, whose round trips (Prop. 1) are
    exact up to the layers' rounding wherever the translated logits lie, while the sigmoid of
    the post-processing rounds logits beyond about 36.7 (float64) to the interval's end.
    """
    z, _ = self._encode(self.private_a, h, preprocessed=True)
    return self._decode(self.private_b, z, preprocessed=True)[0]

  def preprocessed_b_to_a(self, h: Array) -> Array:
    """``G_{B->A}`` between pre-processed spaces (see :meth:`preprocessed_a_to_b`)."""
    z, _ = self._encode(self.private_b, h, preprocessed=True)
    return self._decode(self.private_a, z, preprocessed=True)[0]

  def translate_with_log_probs(self, a: Array, b: Array) -> tuple[Array, Array, Array, Array]:
    """``(G_{A->B}(a), G_{B->A}(b), log p_A(a), log p_B(b))``, encoding each input once."""
    z_a, log_det_a = self.encode_a(a)
    z_b, log_det_b = self.encode_b(b)
    return (self.decode_b(z_a)[0], self.decode_a(z_b)[0],
            _standard_normal_log_prob(z_a) + log_det_a,
            _standard_normal_log_prob(z_b) + log_det_b)

  def sample_pairs(self, z: Array) -> tuple[Array, Array]:
    """Paired samples ``(G_{Z->A}(z), G_{Z->B}(z))`` from latents ``z ~ p_Z`` (Sec. 3.4).

    Pass ``z = jax.random.normal(key, (n, *event_shape))``; each of the two is
    also an unconditional sample of its domain.
    """
    return self.decode_a(z)[0], self.decode_b(z)[0]

  def __call__(self, a: Array, b: Array) -> tuple[Array, Array]:
    """``(log p_A(a), log p_B(b))``, each ``(batch,)``; creates all parameters."""
    return self.log_prob_a(a), self.log_prob_b(b)


def polar_interpolation(*, z1: Array, z2: Array, angles: Sequence[float] | Array) -> Array:
  """Latent interpolation ``z(phi) = z1 sin(phi) + z2 cos(phi)`` (Sec. 5.3, Fig. 2 and 4).

  With ``phi`` from 0 to ``pi / 2`` the path runs from ``z2`` to ``z1`` and keeps the norm
  of two independent standard-normal latents on average (RealNVP's polar interpolation).

  Args:
    z1: latent ``(*event_shape)``.
    z2: latent of the same shape.
    angles: ``(k,)`` angles ``phi``.

  Returns:
    ``(k, *event_shape)`` latents, one per angle.
  """
  z1, z2 = jnp.asarray(z1), jnp.asarray(z2)
  if z1.shape != z2.shape:
    raise ValueError(f'polar_interpolation needs latents of one shape, got {z1.shape} '
                     f'and {z2.shape}')
  phi = jnp.asarray(angles).reshape((-1,) + (1,) * z1.ndim)
  return z1 * jnp.sin(phi) + z2 * jnp.cos(phi)


class RoundTrips(NamedTuple):
  """Translations and cycles of :func:`round_trips` (numpy arrays of the inputs' shapes)."""
  a_to_b: np.ndarray  # G_{A->B}(a)
  b_to_a: np.ndarray  # G_{B->A}(b)
  a_again: np.ndarray  # G_{B->A}(G_{A->B}(a))
  b_again: np.ndarray  # G_{A->B}(G_{B->A}(b))
  a: np.ndarray  # the start of the first cycle: a (preprocess(a) for preprocessed trips)
  b: np.ndarray  # the start of the second: b (preprocess(b))


def translator(model: nn.Module, method: Callable[..., Array], batch_size: int = 64, *,
               replicas: bool = False) -> Callable[[Any, Array], Array]:
  """``method`` of ``model`` (e.g. ``AlignFlow.a_to_b``) as a compiled
  ``(variables, x) -> y`` that maps ``batch_size`` examples at a time.

  ``x`` is ``(n, *event_shape)`` (``(R, n, *event_shape)`` with ``replicas``, every leaf of
  ``variables`` then with a leading axis ``R``: one program for the ``R`` models) and ``y``
  has the method's per-example output shape. The examples run in ``ceil(n / batch_size)``
  chunks (``lax.map``, :func:`nflax.fitting.map_over_batches`), so a translator's memory is
  that of one chunk whatever ``n`` is (a whole test set at the paper's sizes, through the
  CycleGAN baseline in float64, does not fit in one call).
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')

  def apply(variables, x):
    return fitting.map_over_batches(
        lambda chunk: model.apply(variables, chunk, method=method), x, batch_size)

  return jax.jit(jax.vmap(apply) if replicas else apply)


def round_trips(model: nn.Module, variables: Any, a: Array, b: Array, *,
                float64: bool = False, replicas: bool = False,
                preprocessed: bool = False, batch_size: int = 64) -> RoundTrips:
  """The cycles ``G_{B->A}(G_{A->B}(a))`` and ``G_{A->B}(G_{B->A}(b))`` (Prop. 1).

  Prop. 1: for AlignFlow both are the inputs exactly in real arithmetic, pre- and
  post-processing included. In float32 a translated pixel whose post-processing sigmoid
  rounds to exactly 1 (or 0) -- any logit above about 16.6 -- comes back as an infinite
  logit, so the round trip is lost (non-finite, or finite but wrong where the infinity
  reaches a sigmoid unmixed, ``sigmoid(inf) = 1``), and logits of 10 or so already lose
  most digits of ``1 - sigmoid``. With ``float64=True`` the floating-point parameters and inputs are
  cast to float64 and the translations run inside ``jax.enable_x64``, where the sigmoid
  saturates only above about 36.7 and ``1 - sigmoid`` keeps 16 digits instead of 7, so
  the measured error is float rounding of the bijection unless latents approach that
  limit too. With ``preprocessed=True`` (an :class:`AlignFlow`) the inputs are first
  pre-processed (``h = preprocess(x)``, in the working precision) and the cycles run between
  pre-processed spaces (:meth:`AlignFlow.preprocessed_a_to_b`): the flows' own round trip,
  which no saturating post-processing limits. Each direction is compiled on its own, so translated images are
  materialised in the working precision, as stored translations would be; one call
  compiles each direction once (for every replica when ``replicas``, and for ``a`` and
  ``b`` together when they have one shape). Each direction translates ``batch_size``
  examples (of every replica) at a time (:func:`translator`), so memory does not grow with
  the number of examples.

  Args:
    model: a module with ``a_to_b`` and ``b_to_a`` methods (:class:`AlignFlow`, or the
      approximately cycle-consistent :class:`~alignflow.cyclegan.CycleGAN`).
    variables: the module's Flax variables; with ``replicas``, every leaf has a leading
      replica axis ``R``.
    a: ``(batch_a, *event_shape)`` samples of domain A (``(R, batch_a, *event_shape)`` with
      ``replicas``).
    b: ``(batch_b, *event_shape)`` samples of domain B (likewise).
    float64: evaluate in float64 instead of the variables' precision.
    replicas: ``variables``, ``a`` and ``b`` hold ``R`` independent models and their data
      (``jax.vmap`` over the leading axis).
    preprocessed: cycle the pre-processed inputs through the flows only (AlignFlow).
    batch_size: examples (per replica) translated at a time.

  Returns:
    :class:`RoundTrips` of numpy arrays of the shapes of ``a`` and ``b`` (translations of
    ``a`` have its shape), float64 with ``float64=True``; with ``preprocessed``, every array
    (the starts ``a`` and ``b`` too) lives in the pre-processed space.
  """
  def direction(method):
    return translator(model, method, batch_size, replicas=replicas)

  kind = type(model)
  if preprocessed:
    a_to_b, b_to_a = direction(kind.preprocessed_a_to_b), direction(kind.preprocessed_b_to_a)
  else:
    a_to_b, b_to_a = direction(kind.a_to_b), direction(kind.b_to_a)

  def cycles(variables, a, b):
    if preprocessed:
      to_flow_space = direction(kind.preprocessed)
      a, b = to_flow_space(variables, a), to_flow_space(variables, b)
    forward, backward = a_to_b(variables, a), b_to_a(variables, b)
    return RoundTrips(np.asarray(forward), np.asarray(backward),
                      np.asarray(b_to_a(variables, forward)),
                      np.asarray(a_to_b(variables, backward)), np.asarray(a), np.asarray(b))

  if not float64:
    return cycles(variables, a, b)
  with jax.enable_x64(True):
    wide = jax.tree.map(
        lambda leaf: jnp.asarray(leaf, jnp.float64)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating) else leaf, variables)
    return cycles(wide, jnp.asarray(a, jnp.float64), jnp.asarray(b, jnp.float64))