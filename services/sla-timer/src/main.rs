fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_sla_timer::SERVICE, jiesu_sla_timer::run)
}
