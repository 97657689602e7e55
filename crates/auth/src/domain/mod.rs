//! Auth's rules: what an e-mail and a password must look like, and how passwords are hashed.
//! No I/O.

mod credentials;
pub mod password;

pub use credentials::{Email, Password};
