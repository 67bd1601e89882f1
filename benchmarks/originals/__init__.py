"""Our flows against the papers' original implementations: ``python -m benchmarks.originals``.

``__main__`` holds the command line (its flags, ``main`` and the table; its docstring
describes the rows and the measurements); :mod:`benchmarks.originals.timing` the shared
timing machinery (paired measurements, the ``Ours`` / ``Theirs`` wrappers, the matmul
GFLOP/s of JAX and PyTorch); one module per row the PyTorch version written here after the
original and its ``row_*`` function: :mod:`~benchmarks.originals.alignflow`,
:mod:`~benchmarks.originals.maf`, :mod:`~benchmarks.originals.ffjord` and
:mod:`~benchmarks.originals.glow` (``glow16`` and ``glow32``). Importing them defines no flags.
"""
