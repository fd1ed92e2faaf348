//! The warm standby: follows the stream and applies each change.
