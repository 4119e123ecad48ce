//! The part of the tasks other crates share: how the built site is served ([`site`]), used by
//! `cargo xtask serve` and by the page tests' server.

pub mod site;
