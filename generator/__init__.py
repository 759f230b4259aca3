"""sweetspot: firmware generator and host build orchestrator for intermittent TinyML."""

__version__ = "0.1.0"

from pathlib import Path

#: the project's root (boards/, templates/, pipelines/, SConstruct sit there)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
