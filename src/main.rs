fn main() -> std::process::ExitCode {
    hazgate::cli::main()
}
