"""What the local SIS and DashScope emulators share: the clock they live on, the fault dice for
lost answers and callback delivery, the ``/_emulator/*`` admin routes and the job listing that
tests and benchmarks read. Each emulator keeps only its own wire format and job model.
"""
