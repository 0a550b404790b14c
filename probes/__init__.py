"""probes: a synthetic end-to-end probe and load harness for upload-then-poll backends."""

__version__ = "0.1.0"
