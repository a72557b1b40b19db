fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_notification::SERVICE, jiesu_notification::run)
}
