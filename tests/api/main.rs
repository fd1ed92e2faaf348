//! HTTP tests against the real server: one binary, one module per concern.

mod analytics;
mod audit;
mod auth;
mod bad_input;
mod concurrency;
mod connections;
mod contract;
mod crash;
mod export;
mod faults;
mod helpers;
mod hostile;
mod identity;
mod load;
mod metrics;
mod overload;
mod process;
mod restart;
mod retention;
mod rules;
mod startup;
mod tamper;
