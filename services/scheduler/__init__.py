"""Scheduler: consumes ``CheckChanged``, publishes one ``CheckDue`` per check slot while it is the leader."""
