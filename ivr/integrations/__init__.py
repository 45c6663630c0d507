"""Talking to the integrator's systems: lookups during calls (later: outcome webhooks)."""
