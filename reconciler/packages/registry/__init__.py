"""Signed registries: a connector registry is a TUF repository (specs/registry-format.md).

`publishing` and `repository` make and sign its metadata with python-tuf's Metadata API and the
OpenSSH keys of `signing`; `serve` serves a folder on loopback; `client` is what the Connector
provider calls, python-tuf's `ngclient.Updater` bootstrapped from the Registry's pin, reading
through `fetcher`, with every failure named by `refusals`."""
