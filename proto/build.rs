//! Compiles `proto/*.proto` with protox (pure Rust), so building needs no
//! system `protoc`, and keeps the descriptor set for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/trustca.proto",
        "proto/registry.proto",
        "proto/v2x.proto",
        "proto/systems.proto",
        "proto/attestation.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("trustca_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        // A signed assertion's buffers are shared with the trust engine's
        // cache, so an answer carries them without a copy.
        .bytes(".trustca.v1.SignedAssertion")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
