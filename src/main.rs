fn main() -> std::process::ExitCode {
    mailflow::cli::main()
}
