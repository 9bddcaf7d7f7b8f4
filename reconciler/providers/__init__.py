"""Providers: one module per resource kind, all implementing `base.Provider`.

The engine never branches on kind; it asks `registry.provider_for(kind)`. Adding a kind means
adding one module here and registering it, nothing else.
"""
