"""Offline voice robot / IVR service."""
