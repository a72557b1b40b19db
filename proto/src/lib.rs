//! The Jiesu contract (`jiesu.v1`): the case model, every event payload and every gRPC service,
//! generated from `proto/jiesu/v1/*.proto` at build time (protox, no system `protoc`).

#![allow(clippy::all)]

/// Messages and services of `jiesu.v1`.
pub mod v1 {
    tonic::include_proto!("jiesu.v1");
}

/// The encoded `FileDescriptorSet` of `jiesu.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jiesu_descriptor.bin"));

pub use prost_types::Timestamp;
