"""Intake adapters: the ways raw messages reach the pipeline (IMAP; files through `sportello ingest`)."""
