"""Builds the wheel: compiles the Rust crate at ../../Cargo.toml with cargo (via
setuptools-rust, as a plain cdylib) and ships libwasithreads.so inside the package.

Cargo's target dir is cargo's own choice: ``$CARGO_TARGET_DIR`` if set, else the
repository's ``target/`` (the one ``cargo test --release`` uses). The build is
``cargo rustc --lib --release --locked --crate-type cdylib,staticlib,rlib``: the same
profile, features and crate types as ``cargo build --release``, so after
``cargo test --release`` / ``cargo build --release`` nothing is compiled again.

``WASITHREADS_PREBUILT_LIB=/path/to/libwasithreads.so`` skips cargo and packages that file.
``WASITHREADS_WHEEL_PLATFORM`` replaces the wheel's platform tag (``linux_<arch>``), e.g.
with the ``manylinux_2_<N>_<arch>`` tag that scripts/dist.sh finds the library allows.
"""

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools_rust import Binding, RustExtension
from setuptools_rust.build import build_rust

HERE = Path(__file__).resolve().parent
MANIFEST = HERE.parent.parent / "Cargo.toml"
LIB_NAME = "libwasithreads.so"

if sys.version_info >= (3, 11):
    import tomllib
else:  # build requirement on 3.9 / 3.10
    import tomli as tomllib


def cargo_package():
    if not MANIFEST.is_file():
        sys.exit(
            f"wasithreads: {MANIFEST} not found. The Python package is built from the "
            "wasithreads repository (pip install ./bindings/python); sdists are not supported."
        )
    with open(MANIFEST, "rb") as f:
        return tomllib.load(f)


CARGO = cargo_package()
VERSION = CARGO["package"]["version"]
# Passing the crate's own crate types to `cargo rustc` keeps the unit identical to the one
# `cargo build --release` builds (setuptools-rust would otherwise pass `--crate-type
# cdylib`, a different unit that recompiles the crate, and the next `cargo build` again).
CRATE_TYPES = ",".join(CARGO.get("lib", {}).get("crate-type", ["cdylib"]))
if "cdylib" not in CRATE_TYPES.split(","):
    sys.exit("wasithreads: the crate must build a cdylib")


class BuildRust(build_rust):
    """Names the library plainly (``wasithreads/libwasithreads.so``, not with a CPython
    extension suffix: it is not a Python extension module) and honours
    ``WASITHREADS_PREBUILT_LIB``."""

    def get_dylib_ext_path(self, ext, target_fname):
        build_ext = self.get_finalized_command("build_ext")
        full = Path(build_ext.get_ext_fullpath(target_fname))
        return str(full.with_name(LIB_NAME))

    def build_extension(self, ext, *args, **kwargs):
        prebuilt = os.environ.get("WASITHREADS_PREBUILT_LIB")
        if prebuilt:
            if not Path(prebuilt).is_file():
                sys.exit(f"wasithreads: WASITHREADS_PREBUILT_LIB={prebuilt!r}: no such file")
            print(f"wasithreads: packaging prebuilt {prebuilt} (no cargo build)", file=sys.stderr)
            return [(ext.name, str(Path(prebuilt).resolve()))], None
        target = os.environ.get("CARGO_TARGET_DIR") or str(MANIFEST.parent / "target")
        print(f"wasithreads: cargo build of {MANIFEST} in target dir {target}", file=sys.stderr)
        return super().build_extension(ext, *args, **kwargs)


cmdclass = {"build_rust": BuildRust}

try:  # The library does not use the Python C API: one wheel serves every Python 3.
    try:
        from setuptools.command.bdist_wheel import bdist_wheel
    except ImportError:
        from wheel.bdist_wheel import bdist_wheel

    class BdistWheel(bdist_wheel):
        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", os.environ.get("WASITHREADS_WHEEL_PLATFORM") or plat

    cmdclass["bdist_wheel"] = BdistWheel
except ImportError:
    pass

setup(
    version=VERSION,
    rust_extensions=[
        RustExtension(
            "wasithreads.libwasithreads",
            path=str(MANIFEST),
            binding=Binding.NoBinding,
            debug=False,  # the release profile, as `cargo test --release` uses
            args=["--locked", "--crate-type", CRATE_TYPES],
            py_limited_api=False,
        )
    ],
    cmdclass=cmdclass,
)
