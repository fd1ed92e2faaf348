//! HTTP tests against the real server: one binary, one module per concern.

mod analytics;
mod assign;
mod audit;
mod auth;
mod bad_input;
mod concurrency;
mod connections;
mod contract;
mod crash;
mod export;
mod faults;
mod faulty_disk;
mod format;
mod hardening;
mod helpers;
mod hostile;
mod identity;
mod listings;
mod load;
mod metrics;
#[path = "../support/oneroster.rs"]
mod oneroster;
mod overload;
mod process;
mod raw;
mod request_ids;
mod restart;
mod retention;
mod roster;
mod rules;
mod startup;
mod tamper;
