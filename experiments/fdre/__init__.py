"""Featurized density-ratio experiments (registry keys ``fdre.<module>``): training modes on
synthetic data and MI, domain adaptation, targeted generation, importance-weighted
augmentation."""
