"""Each cloud in a folder of its own; ``registry.py`` lists them."""
