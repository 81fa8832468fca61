"""The results service: stores every ``CheckCompleted`` and ``RunMissed`` once, in batches.

Consumes results.store (CheckCompleted, CheckCompletedBatch, RunMissed, RunMissedBatch,
RunnerHeartbeat). Publishes nothing.
A message is acked only after the batch holding it is committed; writes are idempotent on ``run_id``.
"""
