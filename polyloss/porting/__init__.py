"""``polyloss port``: a loss call in one framework's spelling, written in every other.

``port(text, targets)`` reads the call (parsed, never evaluated), finds its row in the porting
table (:mod:`polyloss.porting.table`) and gives, for each target convention, the native
equivalent as a runnable snippet with how exact it is (or why there is none), the polyloss
mirror of the source convention and the canonical spelling;
``polyloss.porting.check.check(port)`` runs every side on random inputs against the source's
native loss; ``markdown()`` is docs/porting.md.
Importing this package imports no framework.
"""

from polyloss.porting.core import Port, Target, port
from polyloss.porting.docs import markdown
from polyloss.porting.spelling import SpellingError

__all__ = ["port", "markdown", "Port", "Target", "SpellingError"]
