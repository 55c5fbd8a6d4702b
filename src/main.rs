fn main() -> std::process::ExitCode {
    hazgate::app::main()
}
