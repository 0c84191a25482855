"""The ``openami`` command.

Its batch work (VEE, determinants, compaction, the demo, the benchmarks) frees and
allocates large arrays chunk after chunk, so the command keeps freed memory for reuse
(``openami.allocators``). This has to happen before Polars or PyArrow is loaded, hence
here, first.
"""

from openami.allocators import keep_freed_memory

keep_freed_memory()
