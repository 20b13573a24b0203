"""Deployment files and their checks: compose, kustomize, nginx, and the local process cluster."""
