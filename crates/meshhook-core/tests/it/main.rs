//! Integration tests of meshhook-core (one test binary, per the repo's
//! convention).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jmespath_compliance;
