fn main() -> std::process::ExitCode {
    audience::cli::main()
}
