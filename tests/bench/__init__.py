"""Cloned's benchmark (`make bench`); not collected by pytest."""
