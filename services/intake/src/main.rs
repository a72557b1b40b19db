fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_intake::SERVICE, jiesu_intake::run)
}
