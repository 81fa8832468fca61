"""Alerts: consumes CheckCompleted, CheckCompletedBatch and RunMissed (``alerts.evaluate``), folds them
into incidents per check, and delivers each transition once per channel; publishes
``CheckDue(trigger="confirmation")``."""
