"""Installs nflax (the flow library), lrmf, alignflow, fdre, the experiment framework harness, experiments and configs."""

from setuptools import find_packages, setup

setup(
    name="nflax-alignment",
    version="0.1.0",
    description=("Normalizing-flow distribution alignment and density-ratio "
                 "estimation in JAX: LRMF, AlignFlow, featurized DRE."),
    packages=find_packages(include=["nflax*", "lrmf*", "alignflow*", "fdre*",
                                    "harness*", "experiments*", "configs*"]),
    package_data={name: ["py.typed"] for name in ("nflax", "lrmf", "alignflow", "fdre")},
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.30",
        "jaxlib>=0.4.30",
        "flax>=0.10",
        "optax>=0.2.5",
        "chex>=0.1.86",
        "orbax-checkpoint>=0.6",
        "diffrax>=0.6",
        "numpy>=1.26",
        "scipy>=1.11",
        "absl-py>=2.0",
        "ml-collections>=0.1.1",
        "matplotlib>=3.8",
        "scikit-learn>=1.4",
        "threadpoolctl>=3",
        "mlxtend>=0.23",
        "pillow>=10",
        "tensorboardX>=2.6",
        "submitit>=1.5",
    ],
    extras_require={
        # distrax pulls tfp-nightly (a new build every day); only nflax.distrax_views needs it.
        "distrax": ["distrax>=0.1.5"],
        "test": ["pytest>=8", "pytest-xdist>=3", "distrax>=0.1.5"],
        # benchmarks/originals.py only (the originals' PyTorch versions); never core or test.
        "benchmarks": ["torch==2.13.0", "torchdiffeq>=0.2.5"],
    },
)
