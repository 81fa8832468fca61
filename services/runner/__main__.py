"""``python -m services.runner``: run one region's runner on RabbitMQ from SEYMOUR_* settings."""

from services.cli import serve_main

serve_main("runner")
