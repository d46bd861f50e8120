"""``polyloss bench``: polyloss against each framework's native losses, timed and sized.

- :mod:`~polyloss.bench.registry`: families, sizes and the three sides of each benchmark
  (native, canonical ``polyloss``, the framework's ``mirror``);
- :mod:`~polyloss.bench.families`: one module per family group, each registering its families
  (a new family is a new module there, nothing else changes);
- :mod:`~polyloss.bench.drivers`: per framework: threads, arrays, fwd / fwd+bwd steps, the
  compiled form (``torch.compile``, ``tf.function(jit_compile=True)``, ``jax.jit``, Gluon
  ``hybridize``) and peak memory;
- :mod:`~polyloss.bench.timing`: interleaved medians;
- :mod:`~polyloss.bench.worker` / :mod:`~polyloss.bench.runner`: one process per framework
  (and per peak-RSS measurement), fixed threads;
- :mod:`~polyloss.bench.targets`: the performance targets and each cell's verdict;
- :mod:`~polyloss.bench.report`: terminal table, JSON, CSV and the results file.

Nothing here is imported by ``import polyloss``; docs/performance.md describes the method.
"""
