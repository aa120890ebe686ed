//! The `hikwatch` binary: everything lives in the library; see `hikwatch --help`.
fn main() -> std::process::ExitCode {
    hikwatch::cli::main(std::env::args_os().skip(1).collect())
}
