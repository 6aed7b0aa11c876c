# `{{name}}` — {{title}}

Crate: `{{crate}}`. Made by `cargo xtask new-provider`: objects as files under a
folder. Replace this page with what an operator needs to know about the service (its config
keys, how ids map to the service's names, what it cannot do), as the other pages in
docs/providers/ do. docs.rs shows this page as the crate's documentation.

| key | type | default | meaning |
|---|---|---|---|
| `root` | path | | folder that holds the objects; created when missing |

Verified: full conformance suite on a local folder.
