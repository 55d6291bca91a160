//! Generates `include/wasithreads.h` from the FFI sources with cbindgen.
//! The header is committed; `.ci/run` fails when a build changes it.

fn main() {
    // The shared library's SONAME, as installed by scripts/install.sh (libwasithreads.so.0
    // -> libwasithreads.so.0.1.0). Bump the major with every ABI break.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwasithreads.so.{major}");
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets the version");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("reading cbindgen.toml");
    config.after_includes = Some(version_macros(&version) + config.after_includes.as_deref().unwrap_or(""));
    match cbindgen::Builder::new().with_crate(&dir).with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(format!("{dir}/include/wasithreads.h"));
        }
        // A syntax error in the sources: let rustc report it instead of failing here.
        Err(cbindgen::Error::ParseSyntaxError { .. }) => {}
        Err(e) => panic!("cbindgen: {e}"),
    }
}

/// The header's version macros, from Cargo.toml's version.
fn version_macros(version: &str) -> String {
    let part = |name: &str| std::env::var(format!("CARGO_PKG_VERSION_{name}")).expect("cargo sets the version");
    format!(
        "
/**
 * The version of this header; `wt_version()` gives the library's, which is the same
 * for a library and header of one release.
 */
#define WT_VERSION \"{version}\"
#define WT_VERSION_MAJOR {}
#define WT_VERSION_MINOR {}
#define WT_VERSION_PATCH {}

",
        part("MAJOR"),
        part("MINOR"),
        part("PATCH")
    )
}
