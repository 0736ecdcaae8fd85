//! The integration tests, one binary (each module was its own test binary before;
//! linking the crate once builds faster).

mod common;

mod attest;
mod checkout;
mod differential;
mod export_memory;
mod export_props;
mod export_run;
mod fixtures;
mod fork;
mod format_patch;
mod fsck;
mod golden_export;
mod golden_fastcdc;
mod golden_import;
mod golden_objects;
mod import_behaviour;
mod import_pins;
mod import_run;
mod integrity;
mod interrupt;
mod jobs;
mod local_export;
mod mirror;
mod never_panic;
mod prefilter;
mod pull_status;
mod refs_keys;
mod refusal_cache;
mod refusal_report;
mod repo_interop;
mod staging;
mod state;
mod verify_audit;
