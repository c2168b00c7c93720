"""The message model and parser, and the detection of automatic mail."""
