"""trace-tui: a terminal trace explorer and stratified judge sampler for MLflow traces."""

__version__ = "0.1.0"
