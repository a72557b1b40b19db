fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_classification::SERVICE, jiesu_classification::run)
}
