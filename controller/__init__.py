"""Sluice: GitOps for machine-learning workflows on Kubernetes."""

__version__ = "0.1.0"
