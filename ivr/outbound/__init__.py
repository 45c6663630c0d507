"""Outbound notifications: calling policy (hours, categories, opt-outs, caps), scheduling, retries.

``policy`` holds the pure decisions (with ``policy_hours`` for time zones and calling windows
and ``policy_rules`` for categories, caps and opt-outs); the scheduler that acts on them loads
the facts from the store and owns the clock.
"""
