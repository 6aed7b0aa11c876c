[package]
name = "{{crate}}"
version = "0.1.0"
description = "CSAL {{name}} provider (made by `cargo xtask new-provider`: objects in a local folder until you write the service's own calls)"
readme = "README.md"
keywords = ["storage", "csal"]
categories = ["filesystem"]
edition.workspace = true
rust-version.workspace = true
license.workspace = true
repository.workspace = true
authors.workspace = true

# A CSAL provider crate: `cargo xtask docs` lists it (facade feature, README and
# ARCHITECTURE tables); `status` is its README line.
[package.metadata.csal]
status = "new: the template of `cargo xtask new-provider` (objects in a local folder); full conformance"

[dependencies]
csal-core.workspace = true
async-trait.workspace = true
futures.workspace = true
serde.workspace = true
serde_json.workspace = true
tokio.workspace = true
ulid.workspace = true

[dev-dependencies]
csal-conformance.workspace = true
tempfile.workspace = true
tokio = { workspace = true, features = ["rt-multi-thread"] }
