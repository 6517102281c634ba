//! Shared by the end-to-end tests: every service in one process (`stack`), and the
//! builder with the pusher on a project of the test run (`build`).

// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod build;
pub mod gate;
pub mod procs;
pub mod stack;
