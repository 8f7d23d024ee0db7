//! Integration tests: wildmatch tables and differential tests against stock
//! rsync (which must be installed; these tests fail without it).

mod daemon_diff;
mod implied_diff;
mod random;
mod receiver;
mod robustness;
mod scenarios;
mod sender;
mod trace;
mod util;
mod wildmatch_table;
mod wire_diff;
