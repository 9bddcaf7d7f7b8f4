"""The vault: where secret values live, outside git (SPEC section 7, specs/vault.md).

Git holds only references (SecretRef resources, `vault://name`); a provider holds the values.
`types` is the contract every provider keeps (status, get, exists, set, delete, names) and the
one error tree callers branch on; `dev` is a local AES-256-GCM file for development, `azure`
Azure Key Vault through the Azure SDK (the only importer of `azure`). Every value a provider
reads is registered with the process's redactor (`types.revealed`) before it is returned, so
no output can show it."""
