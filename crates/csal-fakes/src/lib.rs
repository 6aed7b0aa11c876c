//! In-process fakes of cloud storage APIs for CSAL tests.

pub mod mega;
pub mod pcloud;
