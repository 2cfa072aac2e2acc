"""Lambda/FunctionGraph entry points: event → one use case → response. ``functions/`` re-exports them."""
