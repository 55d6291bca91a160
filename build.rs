//! Sets the shared library's SONAME and generates `include/wasithreads.h` (and the Go
//! package's copy, `bindings/go/wasithreads.h`) from the FFI sources with cbindgen. Both
//! are committed; `.ci/run` fails when a build changes them.

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets the version");
    // While 0.x every release may break the ABI, so the SONAME is the full version: a
    // program linked against 0.1.0 never loads 0.1.1 by mistake. scripts/install.sh
    // installs libwasithreads.so.X.Y.Z under this name, plus the libwasithreads.so link.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwasithreads.so.{version}");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("reading cbindgen.toml");
    config.after_includes = Some(version_macros(&version) + config.after_includes.as_deref().unwrap_or(""));
    match cbindgen::Builder::new().with_crate(&dir).with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(format!("{dir}/include/wasithreads.h"));
            // The Go package carries a copy, so that `go mod vendor` keeps it (cgo finds
            // headers only inside the package).
            bindings.write_to_file(format!("{dir}/bindings/go/wasithreads.h"));
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
