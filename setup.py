"""Installs the library: nflax (the flow library) and the methods lrmf, alignflow, fdre.

The experiment framework (harness), the experiments and their configs run from the checkout
(``python -m experiments.run`` from its root) and are not installed as packages: their
names would clash with a user's own. Their dependencies come with the extra ``experiments``.
"""

from setuptools import find_packages, setup

setup(
    name="nflax-alignment",
    version="0.1.0",
    description=("Normalizing-flow distribution alignment and density-ratio "
                 "estimation in JAX: LRMF, AlignFlow, featurized DRE."),
    packages=find_packages(include=["nflax", "nflax.*", "lrmf", "lrmf.*", "alignflow",
                                    "alignflow.*", "fdre", "fdre.*"]),
    package_data={name: ["py.typed"] for name in ("nflax", "lrmf", "alignflow", "fdre")},
    python_requires=">=3.10",
    # What the four library packages import (tests/test_packaging.py checks it).
    install_requires=[
        "jax>=0.4.30",
        "jaxlib>=0.4.30",
        "flax>=0.10",
        "optax>=0.2.5",
        "chex>=0.1.86",
        "diffrax>=0.6",
        "numpy>=1.26",
        "scipy>=1.11",
        "absl-py>=2.0",
    ],
    extras_require={
        # harness, experiments and configs, run from the checkout.
        "experiments": [
            "orbax-checkpoint>=0.6",
            "ml-collections>=0.1.1",
            "matplotlib>=3.8",
            "scikit-learn>=1.4",
            "threadpoolctl>=3",
            "mlxtend>=0.23",
            "pillow>=10",
            "tensorboardX>=2.6",
            "submitit>=1.5",
        ],
        # distrax pulls tfp-nightly (a new build every day); only nflax.distrax_views needs it.
        "distrax": ["distrax>=0.1.5"],
        "test": ["nflax-alignment[experiments]", "pytest>=8", "pytest-xdist>=3",
                 "distrax>=0.1.5"],
        # benchmarks/originals/ only (the originals' PyTorch versions); never core or test.
        "benchmarks": ["torch==2.13.0", "torchdiffeq>=0.2.5"],
    },
)
