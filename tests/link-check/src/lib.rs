//! The README's example, compiled as a doctest (`cargo test --doc`, part
//! of `cargo xtask test`), so the first code a user copies cannot rot.
//! Only this test crate sees it: the README lives outside every published
//! crate. Its dependencies are this crate's dev-dependencies.
#![cfg_attr(doctest, doc = include_str!("../../../README.md"))]
