"""The api: REST under ``/api/v1`` and the server-rendered UI (Litestar).

Stores check configurations, publishes ``CheckChanged`` and (for *Run now*) ``CheckDue``, and reads
runs, incidents and runner health from the database.
"""
