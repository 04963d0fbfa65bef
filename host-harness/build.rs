//! Builds the connector component for `wasm32-wasip2` so that the harness
//! embeds the very component the repository's sources describe, and plain
//! `cargo build` / `cargo test` need no separate step.
//!
//! The nested cargo uses a target directory of its own (the outer build holds
//! the lock on the workspace's) and runs without the outer build's compiler
//! wrappers and flags, which belong to the host target.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "component";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host-harness lives in the workspace");
    for watched in [
        "connector/src",
        "connector/Cargo.toml",
        "tests/faulty-connector",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=OAUTH_CONNECTOR_WASM");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let embedded = out_dir.join("connector.wasm");
    let faulty = out_dir.join("faulty-connector.wasm");
    // The deliberately faulty component the host's tests load.
    println!("cargo:rustc-env=FAULTY_CONNECTOR_WASM={}", faulty.display());

    // A prebuilt component may be supplied instead, e.g. by a packager.
    let prebuilt = env::var_os("OAUTH_CONNECTOR_WASM");
    let mut packages = vec!["faulty-connector"];
    if prebuilt.is_none() {
        packages.push("connector");
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    ensure_target_installed();
    let target_dir = workspace.join("target").join("component");
    let mut build = Command::new(&cargo);
    build.current_dir(workspace).arg("build");
    for package in &packages {
        build.args(["--package", package]);
    }
    let status = build
        .args(["--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .status()
        .unwrap_or_else(|e| panic!("failed to run `{}`: {e}", cargo.to_string_lossy()));
    assert!(
        status.success(),
        "building the connector component for {TARGET} failed (see the errors above)"
    );
    let built = target_dir.join(TARGET).join(PROFILE);
    copy(&built.join("faulty_connector.wasm"), &faulty);
    match prebuilt {
        Some(prebuilt) => copy(Path::new(&prebuilt), &embedded),
        None => copy(&built.join("connector.wasm"), &embedded),
    }
}

/// A fresh machine has the toolchain without the wasm target, and rustup
/// does not add a toolchain file's targets to an already installed
/// toolchain: add it, or say how to.
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|root| root.join("lib/rustlib").join(TARGET).is_dir());
    if installed {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        added,
        "the {TARGET} target is missing: run `rustup target add {TARGET}`"
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| {
        panic!(
            "failed to copy the component {} to {}: {e}",
            from.display(),
            to.display()
        )
    });
}
