//! The warm standby and failover.
