# {{crate}}

The CSAL `{{name}}` provider. Made by `cargo xtask new-provider {{name}}`: it
stores objects as files under a folder, which passes the conformance suite
as generated; replace `src/module.rs` with the service's own calls (see
docs/writing-a-provider.md).

```json
{ "root": "/var/lib/csal/{{name}}" }
```
