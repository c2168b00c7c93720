"""What operators run the daemon with: log masking (and, later, metrics and health)."""
