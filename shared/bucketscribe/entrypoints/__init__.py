"""The cloud-neutral halves of the function entry points (one use case each, its metrics and
logs); each cloud's folder reads its own events into them, and ``functions/`` re-exports those."""
