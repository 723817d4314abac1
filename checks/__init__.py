"""The example project's Python checks (``python: checks.<module>:<function>`` in sequences)."""
