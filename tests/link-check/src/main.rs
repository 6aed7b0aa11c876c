//! An application that depends on two provider crates and names them once
//! with `link_providers!`: both registrations are present, nothing else.

csal_core::link_providers!(csal_local_fs, csal_memory);

fn main() {
    for provider in csal_core::registered_providers() {
        println!("{}", provider.provider_type);
    }
}
