"""Cloned: desired state for AI agent workspaces, reconciled the GitOps way.

The import package is kept empty on purpose: `cloned --help` must start fast, so every
module imports its heavy dependencies itself, when a command needs them.
"""

__version__ = "0.1.0"
