"""Alerts for the admins: listing and acknowledging them, and the digest email that tells them."""
