"""Queue adapters (the dead-letter queue the reconciler drains)."""
