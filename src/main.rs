//! The `corral` command: everything is in `corral::cli`.

fn main() -> std::process::ExitCode {
    corral::main()
}
