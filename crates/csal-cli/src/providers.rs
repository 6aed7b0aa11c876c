//! The provider crates linked into the `csal` binary: all of them, through
//! the `csal-providers` facade (feature `all`), whose list `cargo xtask docs`
//! generates from the workspace. Naming the facade here is what links them
//! (see csal_core::link_providers!).

csal_core::link_providers!(csal_providers);
