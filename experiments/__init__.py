"""Paper experiments: data -> train -> evaluate -> write, one module per family.

``python -m experiments.run`` calls :func:`experiments.launch.run_experiment`,
which dispatches on ``config.experiment`` through the one registry
:data:`experiments.launch.EXPERIMENTS`. Only this package reads files, parses
flags and writes outputs.
"""
