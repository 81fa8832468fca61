"""Seymour's services: scheduler, router, runner, results, alerts, api, and the plumbing they share."""

__version__ = "0.1.0"
