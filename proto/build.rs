//! Compiles `jiesu/v1/*.proto` with protox (pure Rust, no system `protoc`) and generates the
//! prost messages and tonic services, plus a descriptor set for gRPC reflection.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let protos: Vec<PathBuf> = std::fs::read_dir(dir.join("jiesu/v1"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let fds = protox::compile(&protos, [&dir])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("jiesu_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
