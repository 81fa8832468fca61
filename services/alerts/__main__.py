"""``python -m services.alerts``: run the alerts service on RabbitMQ + PostgreSQL from SEYMOUR_* settings."""

from services.cli import serve_main

serve_main("alerts")
