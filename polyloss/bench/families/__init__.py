"""Benchmark families, one module per group; each module registers its families on import
(:func:`polyloss.bench.registry.load_families` imports every module here whose name does not
start with ``_``)."""
