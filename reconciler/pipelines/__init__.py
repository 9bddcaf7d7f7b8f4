"""Pipelines' pure parts: the `${...}` expressions that steps, prompts and outputs are built
from (`expressions`), and how a string is split into text and templates (`templates`).

A foundation: it imports nothing of Cloned but `errors` and `canonical`, so the loader checks
expressions statically and the runner evaluates them with the same code."""
