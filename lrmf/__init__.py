"""LRMF: log-likelihood ratio minimizing flows (Usman et al.).

``lrmf.losses`` holds the pure objective (Eq. 3), the constant c(A, B) and the
log-likelihood ratio distance (Definition 2.1). Depends only on ``nflax``.
"""
