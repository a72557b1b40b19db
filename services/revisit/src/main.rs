fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_revisit::SERVICE, jiesu_revisit::run)
}
