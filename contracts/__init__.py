"""The wire: versioned message models and the bus topology shared by every Seymour service."""
