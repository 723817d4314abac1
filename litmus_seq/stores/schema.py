"""The run parquet file's fixed columns and their types (``PARQUET.md``), in file order.

Kept as plain tuples of ``(name, kind)`` so that importing this module costs nothing; the Arrow
types are built on demand by :func:`arrow_type`. The schema is additive only: a column may be
added at the end of its group, never renamed or retyped (readers use ``union_by_name=true``).

Columns beyond ``PARQUET.md`` (additive): ``run_error``, ``step_error``, ``vector_error`` (why a
run, step or vector did not pass), ``limit_marginal_low``/``limit_marginal_high``,
``instrument_cal_exception`` and ``step_instruments_cal_exception`` (an instrument ran with an
expired calibration, and who allowed it), ``step_instruments_idn_check`` (the ``expect_idn``
decision) and ``run_retry_count`` (attempts run again after a failed one, over the whole run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "SCHEMA_VERSION", "LIMIT_KEYS", "RUN_CONTEXT", "COLUMNS", "COLUMN_NAMES", "INSTRUMENT_FIELDS",
    "arrow_type", "fixed_schema",
]

#: Bumped on every additive change to the fixed columns (file metadata ``schema_version``).
SCHEMA_VERSION = "3"

#: Keys of :meth:`litmus_seq.limits.ResolvedLimit.as_dict` (the ``limit`` of a measurement event).
LIMIT_KEYS: tuple[str, ...] = (
    "comparator", "low", "high", "nominal", "equals", "pattern", "units", "marginal_low",
    "marginal_high", "spec_low", "spec_high", "guardband_pct", "source", "characteristic_id",
    "spec_ref",
)

#: ``run.started`` fields copied to a column of the same name on every row.
RUN_CONTEXT: tuple[str, ...] = (
    "operator_id", "operator_name", "dut_serial", "dut_part_number", "dut_revision",
    "dut_lot_number", "product_id", "product_name", "product_revision", "station_id",
    "station_name", "station_hostname", "fixture_id", "test_phase", "project_name",
    "sequence_name", "sequence_version", "sequence_file", "git_commit", "git_branch",
    "python_version", "litmus_seq_version", "run_selection",
)

#: The per-instrument traceability fields, as ``step_instruments_<field>`` list columns.
INSTRUMENT_FIELDS: tuple[str, ...] = (
    "name", "driver", "resource", "manufacturer", "model", "serial", "firmware", "cal_due",
    "cal_certificate", "mocked", "cal_exception", "idn_check",
)

# kinds: s string, f float64, i64 int64, i32 int32, b bool, t timestamp[us, UTC],
# ls list<string>, lb list<bool>
COLUMNS: tuple[tuple[str, str], ...] = (
    # identity and timing
    ("record_type", "s"), ("session_id", "s"), ("run_id", "s"), ("slot_id", "s"),
    ("run_started_at", "t"), ("run_ended_at", "t"),
    ("step_name", "s"), ("step_index", "i64"), ("step_path", "s"), ("parent_path", "s"),
    ("step_node_id", "s"), ("step_file", "s"), ("step_line", "i64"), ("step_kind", "s"),
    ("step_started_at", "t"), ("step_ended_at", "t"), ("step_vector_count", "i32"),
    ("vector_index", "i64"), ("vector_retry", "i64"), ("vector_started_at", "t"),
    ("vector_ended_at", "t"),
    # who, what, where
    *((name, "s") for name in RUN_CONTEXT),
    # measurement
    ("measurement_name", "s"), ("measurement_timestamp", "t"), ("measurement_value", "f"),
    ("measurement_text", "s"), ("measurement_units", "s"), ("measurement_outcome", "s"),
    ("measurement_marginal", "b"),
    ("limit_low", "f"), ("limit_high", "f"), ("limit_nominal", "f"), ("limit_comparator", "s"),
    ("limit_equals", "s"), ("limit_pattern", "s"), ("limit_spec_low", "f"), ("limit_spec_high", "f"),
    ("limit_guardband_pct", "f"), ("limit_source", "s"), ("characteristic_id", "s"), ("spec_ref", "s"),
    ("limit_marginal_low", "f"), ("limit_marginal_high", "f"),
    # signal-path traceability
    ("dut_pin", "s"), ("fixture_connection", "s"), ("instrument_name", "s"),
    ("instrument_resource", "s"), ("instrument_channel", "s"), ("instrument_manufacturer", "s"),
    ("instrument_model", "s"), ("instrument_serial", "s"), ("instrument_firmware", "s"),
    ("instrument_cal_due", "s"), ("instrument_cal_certificate", "s"), ("instrument_mocked", "b"),
    ("instrument_cal_exception", "s"),
    *((f"step_instruments_{f}", "lb" if f == "mocked" else "ls") for f in INSTRUMENT_FIELDS),
    # roll-ups
    ("step_outcome", "s"), ("vector_outcome", "s"), ("run_outcome", "s"),
    ("run_error", "s"), ("step_error", "s"), ("vector_error", "s"), ("run_retry_count", "i64"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)
KINDS: dict[str, str] = dict(COLUMNS)


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a column kind (see :data:`COLUMNS`)."""
    import pyarrow as pa

    if kind == "s":
        return pa.string()
    if kind == "f":
        return pa.float64()
    if kind == "i64":
        return pa.int64()
    if kind == "i32":
        return pa.int32()
    if kind == "b":
        return pa.bool_()
    if kind == "t":
        return pa.timestamp("us", tz="UTC")
    if kind == "ls":
        return pa.list_(pa.string())
    if kind == "lb":
        return pa.list_(pa.bool_())
    raise ValueError(f"unknown column kind {kind!r}")  # pragma: no cover


def fixed_schema() -> pa.Schema:
    """The fixed columns as an Arrow schema (dynamic ``in_``/``out_``/``custom_`` come after)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, arrow_type(kind)) for name, kind in COLUMNS])
