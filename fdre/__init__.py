"""Featurized density ratio estimation (Choi et al., papers/fdre.txt).

* ``fdre.estimators``: the base estimators as pure functions - the
  probabilistic classifier's log-ratio with the set-size correction, its
  logistic loss, the Gaussian kernel, KMM (the QP of App. A) and KLIEP;
* ``fdre.featurize``: Algorithm 1 (flow on the mixture of D_p and D_q, encode,
  estimate, compose: Lemma 1) and the training modes of Sec. 3.3 (separate,
  joint ``alpha L_sup + (1 - alpha) L_flow`` (Eq. 1), discriminative);
* ``fdre.weighting``: importance weights in practice (App. D.1:
  self-normalisation, flattening ``r^gamma``) and sampling-importance-resampling
  from a flow fitted on a mixture, with the mixture correction of App. D.4;
* ``fdre.mutual_information``: MI as the mean log-ratio between the joint and
  the product of marginals (Sec. 5.2).

Depends only on ``nflax`` (and jax/flax/optax).
"""
