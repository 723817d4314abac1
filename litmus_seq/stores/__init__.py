"""The three stores downstream of the engine (DESIGN §5), all plain subscribers of the event bus.

* :mod:`litmus_seq.stores.events` — the event store: every event of a session, Arrow IPC stream.
* :mod:`litmus_seq.stores.channels` — arrays and waveforms, one Arrow IPC file each.
* :mod:`litmus_seq.stores.materializer` — one parquet file per run (``PARQUET.md``), the same
  code live (in the engine's process) and offline (``litmus-seq recover`` replaying events).

Nothing is imported here: pyarrow costs ~30 ms and ``litmus-seq --help`` must not pay it.
"""

from __future__ import annotations

import os

__all__ = ["use_system_allocator"]


_pool_chosen = False


def use_system_allocator() -> bool:
    """Make the C library's allocator pyarrow's default memory pool, once per process and unless
    the user chose one (``ARROW_DEFAULT_MEMORY_POOL``); returns whether it changed anything. A
    pool the program sets after the first session is left alone.

    Why: a run allocates and frees Arrow buffers batch after batch. mimalloc (pyarrow's default
    on Linux) keeps what was freed for reuse, so a long run's resident memory only grows: the
    1,000,000-measurement benchmark peaks ~60 MB lower with the system allocator, at the same
    speed (bench/RESULTS.md). Called when a :class:`~litmus_seq.engine.Session` opens its stores.
    """
    global _pool_chosen
    if _pool_chosen or os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    _pool_chosen = True
    import pyarrow as pa

    pool = pa.system_memory_pool()
    if pa.default_memory_pool().backend_name == pool.backend_name:
        return False
    pa.set_memory_pool(pool)
    return True
