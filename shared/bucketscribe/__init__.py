"""bucketscribe: recordings that land in a bucket become transcripts next to them."""

__version__ = "0.1.0"
