"""The reconcile engine: read actual state, plan against desired state, apply the plan."""
