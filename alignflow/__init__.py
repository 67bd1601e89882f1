"""AlignFlow (Grover et al. 2020): two normalizing flows through one shared latent space.

Modules:

* :mod:`alignflow.model`: :class:`~alignflow.model.AlignFlow` (``G_{A->Z}``, ``G_{B->Z}``
  with optional shared layers; translation both ways, densities, paired sampling) and
  :func:`~alignflow.model.polar_interpolation`;
* :mod:`alignflow.losses`: pure MLE and hybrid losses (Eq. 7), cycle loss (Eq. 10),
  paired MSE (Table 1); the GAN terms (Eq. 1, 6; cross-entropy and least-squares) are
  :mod:`nflax.gan`;
* :mod:`alignflow.critics`: PatchGAN and MLP critics;
* :mod:`alignflow.training`: the alternating generator / critic step, its ``lax.scan``
  form and the history pool;
* :mod:`alignflow.cyclegan`: the CycleGAN baseline trained by the same step;
* :mod:`alignflow.theory`: optimal critics for a fixed translation (Theorem 2).
"""
