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

impl v1::Urgency {
    /// The name stored in databases and configuration: `normal`, `emergency`, `complex`.
    pub fn key(self) -> &'static str {
        match self {
            v1::Urgency::Unspecified => "unspecified",
            v1::Urgency::Normal => "normal",
            v1::Urgency::Emergency => "emergency",
            v1::Urgency::Complex => "complex",
        }
    }

    /// The inverse of [`key`](Self::key); anything else is `Unspecified`.
    pub fn from_key(key: &str) -> Self {
        match key {
            "normal" => v1::Urgency::Normal,
            "emergency" => v1::Urgency::Emergency,
            "complex" => v1::Urgency::Complex,
            _ => v1::Urgency::Unspecified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::v1::Urgency;

    #[test]
    fn urgency_keys_round_trip() {
        for u in [Urgency::Unspecified, Urgency::Normal, Urgency::Emergency, Urgency::Complex] {
            assert_eq!(Urgency::from_key(u.key()), u);
        }
        assert_eq!(Urgency::from_key("紧急"), Urgency::Unspecified);
    }
}
