"""The Continuous Coordination server."""

__version__ = "0.1.0"
