//! mkit-bridge command-line entry point: parse, run, map the outcome to a
//! sysexits code. Everything else lives in the library and `cli`.

mod cli;

fn main() {
    std::process::exit(i32::from(cli::main()));
}
