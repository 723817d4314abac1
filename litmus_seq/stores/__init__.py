"""The three stores downstream of the engine (DESIGN §5), all plain subscribers of the event bus.

* :mod:`litmus_seq.stores.events` — the event store: every event of a session, Arrow IPC stream.
* :mod:`litmus_seq.stores.channels` — arrays and waveforms, one Arrow IPC file each.
* :mod:`litmus_seq.stores.materializer` — one parquet file per run (``PARQUET.md``), the same
  code live (in the engine's process) and offline (``litmus-seq recover`` replaying events).

Nothing is imported here: pyarrow costs ~30 ms and ``litmus-seq --help`` must not pay it.
"""
