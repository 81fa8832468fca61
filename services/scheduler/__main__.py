"""``python -m services.scheduler``: run the scheduler on RabbitMQ + PostgreSQL from SEYMOUR_* settings."""

from services.cli import serve_main

serve_main("scheduler")
