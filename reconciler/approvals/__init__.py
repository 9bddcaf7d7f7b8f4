"""Approvals: signed records under `.cloned/approvals/` that let gated changes through.

A request names one change (its hash) and the rules that gated it; an approval is an Ed25519
signature by an approver the *applied* Workspace lists, over a record that binds that change
hash, the workspace and an expiry. Records are files so they can be reviewed and committed in a
pull request; requests live in the state database.
"""
