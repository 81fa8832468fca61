"""``python -m services.router``: run the router on RabbitMQ + PostgreSQL from SEYMOUR_* settings."""

from services.cli import serve_main

serve_main("router")
