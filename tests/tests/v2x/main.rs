//! End-to-end tests of the V2X authorities and the vehicle, in one test binary: real
//! servers on loopback, separated authorities, IEEE 1609.2.1 clients, and the independent
//! `rasn-its` codec.
//!
//! Each module was its own test binary; shared set-up is `common` (the test kit).

use trustca_testkit as common;

mod etsi_http;
mod etsi_metrics;
mod etsi_register;
mod etsi_reload;
mod etsi_roles;
mod etsi_serve;
mod etsi_vehicle;
mod role_hangup;
mod ticket_reload;
mod tickets;
mod v2x_authorities;
mod v2x_dot1;
mod v2x_hierarchy;
mod v2x_rasn_its;
mod v2x_separation;
mod v2x_vehicle_cli;
