"""carpctl: a CARP clustered-service controller."""

__version__ = "0.1.0"
