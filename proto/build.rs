//! Compiles `popbase/**/*.proto` with protox (a pure-Rust protoc), so the build
//! needs no system protoc. Also writes the descriptor set that gRPC reflection serves.

use std::path::{Path, PathBuf};

use prost::Message;

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=popbase");
    let mut protos = Vec::new();
    collect_protos(Path::new("popbase"), &mut protos)?;
    protos.sort();
    let descriptors = protox::compile(&protos, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("popbase_descriptor.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // prost's codec, but a body that does not decode is INVALID_ARGUMENT.
        .codec_path("crate::codec::PopbaseCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
