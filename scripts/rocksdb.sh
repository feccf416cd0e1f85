#!/usr/bin/env bash
# Source this file: it makes sure a prebuilt static RocksDB (the C++ library
# that librocksdb-sys would otherwise compile) exists in a per-machine cache and
# exports ROCKSDB_LIB_DIR/ROCKSDB_STATIC so cargo links it instead of compiling.
#
# Why: RocksDB's C++ takes 18-26 minutes on 2 cores, and cargo recompiles it
# whenever a feature change anywhere among the build-time crates (syn, cc,
# libc, ...) changes the hash of its build script, and once more for
# `cargo clippy`. Built once per RocksDB version here, it never is again.
#
# The library is built from the very librocksdb-sys version in Cargo.lock
# (same sources, same headers as the bindings), with LZ4 like the workspace.

_popbase_rocksdb() {
  local root version cache lib prebuild out
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  version="$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")"
  if [ -z "$version" ]; then
    echo "rocksdb.sh: librocksdb-sys not found in Cargo.lock" >&2
    return 1
  fi
  cache="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}/rocksdb/$version-lz4"
  lib="$cache/lib/librocksdb.a"
  if [ ! -f "$lib" ]; then
    echo "rocksdb.sh: building RocksDB $version once for this machine (18-26 minutes on 2 cores)" >&2
    prebuild="$cache/prebuild"
    mkdir -p "$prebuild/src" "$cache/lib"
    cat > "$prebuild/Cargo.toml" <<TOML
[package]
name = "popbase-rocksdb-prebuild"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
librocksdb-sys = { version = "=$version", default-features = false, features = ["static", "lz4", "bindgen-runtime"] }

[profile.dev.package.librocksdb-sys]
opt-level = 3
debug = false
TOML
    : > "$prebuild/src/lib.rs"
    (cd "$prebuild" && env -u ROCKSDB_LIB_DIR -u ROCKSDB_STATIC CARGO_TARGET_DIR="$prebuild/target" cargo build --quiet) || return 1
    out="$( (ls -d "$prebuild"/target/debug/build/librocksdb-sys-*/out 2>/dev/null || true) | while read -r d; do if [ -f "$d/librocksdb.a" ]; then echo "$d"; fi; done | head -n 1)"
    if [ -z "$out" ]; then
      echo "rocksdb.sh: the prebuild produced no librocksdb.a" >&2
      return 1
    fi
    # Debug sections make the archive 1.5 GB and every link slow; the engine's
    # own symbols stay for backtraces.
    strip --strip-debug -o "$lib.tmp" "$out/librocksdb.a" && mv "$lib.tmp" "$lib"
    rm -rf "$prebuild/target"
  fi
  export ROCKSDB_LIB_DIR="$cache/lib"
  export ROCKSDB_STATIC=1
}
_popbase_rocksdb
