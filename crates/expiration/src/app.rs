//! The service's name; its state is the [`Queue`](crate::queue::Queue) itself.

pub const NAME: &str = "expiration";
