//! Runs the two binaries of this crate and checks what each one sees.

use std::process::Command;

fn providers_of(bin: &str) -> Vec<String> {
    let out = Command::new(bin).output().expect("run the binary");
    assert!(out.status.success(), "{bin} failed");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn link_providers_links_exactly_the_listed_crates() {
    assert_eq!(providers_of(env!("CARGO_BIN_EXE_csal-link-check")), vec!["local_fs", "memory"]);
}

#[test]
fn crates_only_in_cargo_toml_are_not_linked() {
    assert_eq!(providers_of(env!("CARGO_BIN_EXE_unlinked")), Vec::<String>::new());
}
