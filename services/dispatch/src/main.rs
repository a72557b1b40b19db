fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_dispatch::SERVICE, jiesu_dispatch::run)
}
