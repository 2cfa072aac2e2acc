"""The ``bucketscribe`` command line (not part of what is deployed): the parser and exit codes, the
commands for a deployed pipeline (jobs, status, redrive), offline conversions (normalize, render,
job-id), and the progress board; the local dev kit adds its commands through an entry point."""
