"""Python steps of the run-test project (``python: run_checks.steps:<function>``; not ``checks``, which the example project uses)."""
