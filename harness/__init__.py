"""The experiment framework: everything the paper experiments share that is not a method.

Launch helpers, the workdir (config, metrics, lock, results), checkpointed training stages
and the one optimiser factory, replicas of seeds and settings, sweeps and their summary,
settings checks, data sets and their one split, model builders, downstream classifiers,
plots and the reproduction report's machinery. It reads and writes files; the method
packages (``nflax``, ``lrmf``, ``alignflow``, ``fdre``) never import it, and it never imports
``experiments``.
"""
