//! Integration tests of meshhook-core (one test binary, per the repo's
//! convention).

mod jmespath_compliance;
