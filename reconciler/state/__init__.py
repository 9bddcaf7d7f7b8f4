"""The state store: SQLite under `.cloned/state/` (git-ignored). The only package that imports
sqlite3 (STYLE practice 1); everything else goes through its typed functions.
"""
