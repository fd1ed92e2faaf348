//! HTTP tests against the real server: one binary, one module per concern.

mod analytics;
mod audit;
mod auth;
mod bad_input;
mod concurrency;
mod contract;
mod crash;
mod export;
mod faults;
mod faulty_disk;
mod format;
mod hardening;
mod helpers;
mod hostile;
mod listings;
mod load;
mod metrics;
mod overload;
mod process;
mod raw;
mod restart;
mod retention;
mod rules;
mod startup;
mod tamper;
