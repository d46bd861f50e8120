"""A loss over data larger than memory: polyloss on lazy, chunked Dask arrays.

Builds 10-class logits of ``--gigabytes`` GB (default 10: 125 million rows of float64) and
their class labels (``-1``, about one in eleven, is ignored) as lazy Dask arrays, chunked by
rows. ``polyloss.cross_entropy(..., reduction="parts")`` and ``polyloss.mse`` only build a
graph; ``dask.compute`` then streams the chunks through the loss and a tree of partial sums,
so memory holds a few chunks at a time, never the arrays. Prints one JSON object: the losses,
the number of chunks, the seconds taken and the process's peak resident memory. With
``--check`` (sizes up to 1 GB) it also computes the same losses with NumPy on the materialised
arrays and reports the relative differences.

    python examples/distributed_dask.py                      # 10 GB of logits in < 300 MB
    python examples/distributed_dask.py --gigabytes 0.05 --check
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time

import dask
import dask.array as da
import numpy as np

import polyloss

CLASSES = 10
IGNORE = -1


def lazy_data(gigabytes: float, chunk_mb: float, seed: int = 0) -> tuple:
    """Logits ``(rows, 10)`` float64 and labels ``(rows,)`` as lazy Dask arrays, chunked by rows."""
    rows = int(gigabytes * 1e9 / (8 * CLASSES))
    chunk_rows = max(1, int(chunk_mb * 1e6 / (8 * CLASSES)))
    rng = da.random.default_rng(seed)
    logits = rng.normal(size=(rows, CLASSES), chunks=(chunk_rows, CLASSES))
    labels = rng.integers(IGNORE, CLASSES, size=(rows,), chunks=(chunk_rows,))
    return logits, labels


def lazy_losses(logits, labels) -> dict:
    """The losses as lazy Dask results: nothing is computed here."""
    parts = polyloss.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="parts")
    return {
        "cross_entropy_total": parts.total,
        "cross_entropy_valid_count": parts.normalizer,
        "mse_logits_vs_zero": polyloss.mse(logits, da.zeros_like(logits)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=10.0, help="size of the logits array")
    parser.add_argument("--chunk-mb", type=float, default=16.0, help="size of one chunk of logits")
    parser.add_argument("--check", action="store_true", help="compare with NumPy (<= 1 GB)")
    args = parser.parse_args(argv)
    logits, labels = lazy_data(args.gigabytes, args.chunk_mb)
    lazy = lazy_losses(logits, labels)
    assert all(isinstance(v, da.Array) for v in lazy.values())  # still lazy

    start = time.perf_counter()
    values = dict(zip(lazy, (float(v) for v in dask.compute(*lazy.values())), strict=True))
    seconds = time.perf_counter() - start
    values["cross_entropy"] = values["cross_entropy_total"] / values["cross_entropy_valid_count"]
    report = {
        "logits_gigabytes": logits.nbytes / 1e9, "rows": int(logits.shape[0]),
        "chunks": int(math.prod(logits.numblocks)), "chunk_megabytes": logits.blocks[0].nbytes / 1e6,
        "seconds": round(seconds, 2),
        "peak_rss_megabytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **values,
    }
    if args.check:
        if args.gigabytes > 1:
            parser.error("--check materialises the arrays: use --gigabytes <= 1")
        x, y = dask.compute(logits, labels)
        expected = {"cross_entropy": polyloss.cross_entropy(x, y, ignore_index=IGNORE),
                    "mse_logits_vs_zero": polyloss.mse(x, np.zeros_like(x))}
        report["numpy_max_rel"] = max(abs(values[k] - float(v)) / abs(float(v))
                                      for k, v in expected.items())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
