"""The ``edge-ae`` command line: each command is a few lines over the library."""
