"""The callback function's HTTP routes, one module per route family, shared by every platform."""
