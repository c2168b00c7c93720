"""The core loop: analysis of one message, the pipeline that records it, its outcomes, the ticket service."""
