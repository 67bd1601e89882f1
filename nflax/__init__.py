"""nflax: normalizing flows in Flax, shared by the LRMF, AlignFlow and featurized-DRE packages.

Modules: ``bijectors`` (the flow layers), ``densities`` (Gaussian, mixture and
flow densities), ``nets`` (conditioner networks), ``fitting`` (maximum-likelihood
training), ``gan`` (GAN critic and generator losses), ``parallel`` (data-parallel meshes).
"""

__version__ = "0.1.0"
