"""The ``litmus-seq`` command line. Each command lives in its own module, imported on use."""
