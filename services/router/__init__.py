"""The router: fans a ``CheckDue`` out into one ``RunCheck`` per region, and records runs that never ran.

Consumes ``CheckDue`` (router.due), dead runs (router.dead-runs) and runner heartbeats (a private feed).
Publishes ``RunCheck`` (routing key = region, with an expiry) and ``RunMissed``.
"""
