//! One integration-test binary (as ripgrep does): every module below drives
//! the real `sumatra-server` binary, over its command line or a real socket.

mod util;

mod api;
mod cli;
mod html;

mod client_suite;
mod hardening;
mod loaddata;
mod reliability;
mod search;
mod security;
mod transport;
