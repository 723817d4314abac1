"""Fleet scale: compaction of run files, the results lake, and analytics over either.

* :mod:`litmus_seq.lake.store` -- a data folder or a lake (local folder or object store);
* :mod:`litmus_seq.lake.compact` -- ``litmus-seq compact``: run files into date/station parts;
* :mod:`litmus_seq.lake.manifest` -- which files a reader reads, so that each run counts once;
* :mod:`litmus_seq.lake.read` -- the DuckDB view ``runs`` over all of that;
* :mod:`litmus_seq.lake.push` -- ``litmus-seq push``: a station's run files into a lake;
* :mod:`litmus_seq.lake.analytics` -- yield, first-pass yield, Pareto, Cpk/Ppk (DuckDB and Spark);
* :mod:`litmus_seq.lake.spark` -- the same on Spark's parquet reader (``read_runs`` and friends).

User guide: ``docs/lake.md``.
"""
