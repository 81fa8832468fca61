"""The runner: sends checks from one region and reports what happened.

Consumes ``RunCheck`` from ``runner.<region>`` (``contracts.topology.runner_queue``). Publishes
``CheckCompleted`` for every run it makes (runs that complete close together as one
``CheckCompletedBatch``, see :mod:`services.runner.outbox`), ``RunMissed`` (reason ``expired``) for a
run it received after its ``expires_at``, and a ``RunnerHeartbeat`` every ``heartbeat_interval``
seconds, all to the results exchange.
"""
