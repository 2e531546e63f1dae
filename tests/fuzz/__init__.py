"""The archive fuzzer (issue 11, "Hostile archives"): mutants of small valid archives, and a runner.

:mod:`fuzz.mutate` makes the mutants (three families, each a deterministic function of the seed
archives and a mutant index), :mod:`fuzz.runner` runs them in a restartable, memory-capped worker
process and classifies the outcome of each. ``benchmarks/fuzz.py`` is the command line over the runner;
``test_fuzz.py`` runs a few hundred mutants per family, and ``test_corpus.py`` the committed
reproductions of ``corpus/`` (made by ``make_corpus.py``).

The package is imported as ``fuzz`` with ``tests/`` on ``sys.path`` (pytest puts it there, as it
does for ``conftest``).
"""
