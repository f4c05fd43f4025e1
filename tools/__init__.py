"""Local development stack: the embedded PostgreSQL, the demo runner and the UI screenshot."""
