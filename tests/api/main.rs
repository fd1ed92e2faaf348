//! HTTP tests against the real server: one binary, one module per concern.

mod auth;
mod bad_input;
mod concurrency;
mod contract;
mod crash;
mod helpers;
mod restart;
mod rules;
