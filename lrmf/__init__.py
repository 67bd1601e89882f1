"""LRMF: log-likelihood ratio minimizing flows (Usman et al.).

* ``lrmf.losses``: the pure objective (Eq. 3), the constant c(A, B) and the
  log-likelihood ratio distance (Definition 2.1);
* ``lrmf.algorithm``: Algorithm 1 (private fits, joint training, held-out
  objective with a consistent c(A, B), convergence flag);
* ``lrmf.gaussian``: the closed forms of Example 2.1 and Sec. 8.3;
* ``lrmf.baselines``: the alignment baselines of Fig. 3/4 (MMD, Sinkhorn/EMD,
  back-to-back F o G^-1, spectrally normalised adversarial critic) and the
  1-NN local-structure metric;
* ``lrmf.vanishing_gradient``: the simulation of Example 2.2 (Fig. 7).

Depends only on ``nflax``.
"""
