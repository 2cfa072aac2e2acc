"""Media handling: what a file is, and turning it into what a provider wants."""
