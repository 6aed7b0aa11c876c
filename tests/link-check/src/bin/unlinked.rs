//! The same dependencies, but the provider crates are never named: rustc
//! does not link them, so their registrations are missing. This is why
//! `link_providers!` exists.

fn main() {
    for provider in csal_core::registered_providers() {
        println!("{}", provider.provider_type);
    }
}
