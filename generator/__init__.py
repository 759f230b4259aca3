"""sweetspot: firmware generator and host build orchestrator for intermittent TinyML."""

__version__ = "0.1.0"
