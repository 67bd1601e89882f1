"""Optimal cross-entropy critics of AlignFlow for a fixed translation (Sec. 4.2, Theorem 2).

For a fixed invertible ``G_{A->B}`` with ``J(a) = |det dG_{A->B}/da|``, the generated
samples are ``G_{B->A}(b)``, ``b ~ p*_B`` (density ``p_A(a) = p*_B(G_{A->B}(a)) J(a)``,
Eq. 14 with the data density ``p*_B``) and ``G_{A->B}(a)``, ``a ~ p*_A`` (density
``p_B(b) = p*_A(G_{B->A}(b)) / J(G_{B->A}(b))``). The Bayes-optimal critics of the
cross-entropy GAN terms are (Eq. 13, 16; Goodfellow et al. 2014, Prop. 1)

  C*_A(a) = p*_A(a) / (p*_A(a) + p*_B(b) J(a)),   C*_B(b) = p*_B(b) / (p*_B(b) + p*_A(a) / J(a)),

with ``b = G_{A->B}(a)``. Dividing the two shows that they are tied by

  C*_A(a) = 1 - C*_B(G_{A->B}(a)),

the relation between the two optimal critics that Theorem 2 is after: a generated A
sample at ``a`` is a real B sample at ``b``, so the two likelihood ratios are reciprocal.
The printed Eq. 9 substitutes the *model* density ``p_B`` of Eq. 16 where Eq. 14 needs the
data density ``p*_B``; it does not hold in general (not even at the optimum, where it
gives ``C*_A = 1/3`` instead of ``1/2``). :func:`printed_eq9_critic_a` evaluates it for
comparison; ``tests/test_alignflow_theory.py`` checks all of this numerically.
"""

from __future__ import annotations

import jax

__all__ = ['optimal_critic_a', 'optimal_critic_b', 'critic_a_from_critic_b', 'printed_eq9_critic_a']

Array = jax.Array


def optimal_critic_a(*, log_p_data_a: Array, log_p_data_b_at_translation: Array,
                     log_abs_det_a_to_b: Array) -> Array:
  """``C*_A(a) = p*_A(a) / (p*_A(a) + p*_B(G_{A->B}(a)) J(a))`` (Eq. 13 with Eq. 14).

  Args:
    log_p_data_a: ``log p*_A(a)``, any shape.
    log_p_data_b_at_translation: ``log p*_B(G_{A->B}(a))``, same shape.
    log_abs_det_a_to_b: ``log J(a) = log|det dG_{A->B}/da|``, same shape.

  Returns:
    ``C*_A(a)`` in ``(0, 1)``, computed as a sigmoid of the log-ratio.
  """
  return jax.nn.sigmoid(log_p_data_a - log_p_data_b_at_translation - log_abs_det_a_to_b)


def optimal_critic_b(*, log_p_data_b: Array, log_p_data_a_at_translation: Array,
                     log_abs_det_a_to_b_at_translation: Array) -> Array:
  """``C*_B(b) = p*_B(b) / (p*_B(b) + p*_A(a) / J(a))`` with ``a = G_{B->A}(b)`` (Eq. 16).

  Args:
    log_p_data_b: ``log p*_B(b)``, any shape.
    log_p_data_a_at_translation: ``log p*_A(G_{B->A}(b))``, same shape.
    log_abs_det_a_to_b_at_translation: ``log J(G_{B->A}(b))``, same shape.
  """
  return jax.nn.sigmoid(log_p_data_b - log_p_data_a_at_translation
                        + log_abs_det_a_to_b_at_translation)


def critic_a_from_critic_b(*, critic_b_at_translation: Array) -> Array:
  """``C*_A(a) = 1 - C*_B(G_{A->B}(a))``: the optimal critics determine each other."""
  return 1.0 - critic_b_at_translation


def printed_eq9_critic_a(*, critic_b_at_translation: Array, p_data_a: Array,
                         p_data_b_at_translation: Array, abs_det_a_to_b: Array) -> Array:
  """Eq. 9 as printed: ``C*_B(b) p*_A(a) / (p*_A(a) + p*_B(b) (1 - C*_B(b)) J(a))``.

  Kept to document (and test) that the printed formula differs from the optimal critic.
  """
  c_b = critic_b_at_translation
  return c_b * p_data_a / (p_data_a + p_data_b_at_translation * (1.0 - c_b) * abs_det_a_to_b)
