"""The `sportello` command line."""
