"""Maximum-likelihood density estimation (registry key ``density``): a flow or a Gaussian
family fitted to one data set, the building block every method's private fits repeat."""
