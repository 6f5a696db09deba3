//! The only home of `unsafe`, `fork`, `exec` and raw file descriptors.
//!
//! Everything here hands out owned, typed values (`OwnedFd`, listeners,
//! streams, shared memory slots) so the rest of the crate stays safe code.
//! Each `unsafe` block states the invariant it relies on. The crate root
//! denies `unsafe_code` everywhere else; the compiler holds that fence.

pub mod net;
pub mod process;
pub mod python;
pub mod shm;

pub use net::{Listener, Stream};
