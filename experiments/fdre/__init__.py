"""Featurized density-ratio experiments (registry keys ``fdre.<module>``): training modes on
synthetic data and MI, domain adaptation (with its biased breast-cancer split,
:mod:`experiments.fdre.biased_sampling`), targeted generation, importance-weighted
augmentation."""
