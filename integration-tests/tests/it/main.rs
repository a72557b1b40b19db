//! Jiesu's integration tests: one binary, each test against real NATS and real databases.
//! The PostgreSQL tests need the server named by `JIESU_TEST_PG_URL` (default: the local one);
//! they fail, not skip, when it is missing — CI runs them.

mod bad_input;
mod broker_trust;
mod classification;
mod crash;
mod failover;
mod flow;
mod limits;
mod pii;
mod replay;
mod tracing;
mod wire;
